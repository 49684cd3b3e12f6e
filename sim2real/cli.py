"""The `sim2real` command line. Heavy libraries are imported inside the commands so `--help` stays fast."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable


def _cmd_bench(args: argparse.Namespace) -> int:
    from rich.console import Console

    from sim2real.artifacts import write_json

    console = Console(stderr=True)
    cases = [c for c in args.cases.split(",") if c] or None
    if args.what == "env":
        from sim2real.bench_env import CASES, bench_env
        from sim2real.bench_table import print_env_bench as show

        run = lambda progress: bench_env(  # noqa: E731
            steps=args.steps or 3000,
            pixel_steps=args.pixel_steps,
            repeats=args.repeats,
            seed=args.seed,
            cases=cases,
            progress=progress,
        )
    elif args.what == "randomization":
        from sim2real.bench_randomization import CASES, bench_randomization
        from sim2real.bench_table import print_randomization_bench as show

        run = lambda progress: bench_randomization(  # noqa: E731
            resets=args.resets,
            steps=args.steps or 2000,
            repeats=args.repeats,
            seed=args.seed,
            cases=cases,
            progress=progress,
        )
    else:
        console.print(f"[red]sim2real bench {args.what}: not available yet; available: env, randomization")
        return 2
    for c in cases or []:
        if c not in CASES:
            console.print(f"[red]unknown case {c!r}; cases: {', '.join(CASES)}")
            return 2
    out = args.out or f"bench_{args.what}.json"
    with console.status("benchmarking") as status:
        result = run(lambda m: status.update(m))
    write_json(out, result)
    show(result)
    console.print(f"wrote {out}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from sim2real.demo import run_demo

    return run_demo(args.out)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every available command."""
    ap = argparse.ArgumentParser(
        prog="sim2real",
        description="Train robot-arm policies in randomized MuJoCo/PyBullet scenes and deploy them over ROS 2.",
    )
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    b = sub.add_parser(
        "bench",
        help="measure speed against a named peer; prints a table, writes JSON",
        description="Benchmarks. `env`: env steps/s of our Push (MuJoCo, PyBullet) vs panda-gym's "
        "PandaPush-v3 and the bare mj_step loop, plus 84x84 pixel observations. `randomization`: randomized "
        "reset and step cost against unrandomized ones on both engines. Each case in its own process, medians "
        "over repeats, ratios.",
    )
    b.add_argument("what", choices=["env", "randomization"], help="which benchmark")
    b.add_argument(
        "--steps", type=int, default=0, help="env steps per case and repeat (default: env 3000, randomization 2000)"
    )
    b.add_argument("--resets", type=int, default=300, help="randomization: resets per reset case and repeat")
    b.add_argument("--pixel-steps", type=int, default=300, help="env steps per pixel case and repeat")
    b.add_argument("--repeats", type=int, default=3, help="repeats per case; the median is reported")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--cases", default="", help="comma-separated subset of cases (default: all)")
    b.add_argument("--out", default="", help="where to write the JSON results (default bench_<what>.json)")
    b.set_defaults(func=_cmd_bench)

    d = sub.add_parser(
        "demo",
        help="a short end-to-end run of what exists: scenes on both engines, parity, images",
        description="Builds every task on both engines, rolls a scripted reach on each, prints "
        "the parity figures and writes side-by-side camera PNGs to OUT.",
    )
    d.add_argument("--out", default="out/demo", help="output folder")
    d.set_defaults(func=_cmd_demo)
    return ap


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point."""
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
