"""The `sim2real` command line. Heavy libraries are imported inside the commands so `--help` stays fast."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from typing import Any


def _refuse(console: Any, command: str, error: Exception) -> int:
    """Print a bad-input error of `sim2real <command>` (its message names the field) and return exit code 2."""
    message = error.args[0] if error.args else error
    console.print(f"sim2real {command}: {message}", style="red", markup=False, highlight=False, soft_wrap=True)
    return 2


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
    elif args.what == "train":
        from pathlib import Path

        from sim2real.bench_table import print_train_bench as show
        from sim2real.bench_train import CASES as TRAIN_CASES
        from sim2real.bench_train import bench_train

        cases = cases or ["reach_uniform", "reach_adr"]
        run = lambda progress: bench_train(  # noqa: E731
            cases, Path(args.out_dir), seed=args.seed, steps=args.steps or None, n_envs=args.n_envs, device=args.device
        )
    elif args.what == "deploy":
        from pathlib import Path

        from sim2real.bench_table import print_deploy_bench as show
        from sim2real.deploy import bench_deploy

        if not args.bundle:
            return _refuse(console, "bench deploy", ValueError("--bundle BUNDLE is required (sim2real export RUN)"))
        CASES = {}
        run = lambda progress: bench_deploy(  # noqa: E731
            Path(args.bundle), goals=args.goals, backend=args.backend, seed=args.seed,
            duration_s=args.duration_s, progress=progress, camera=args.camera, trigger=args.trigger,
            randomization=args.randomization, object_pose=args.object_pose, start_joints=args.start_joints,
            episode_ticks=args.episode_ticks, params_file=args.params_file,
        )  # fmt: skip
    elif args.what == "vision":
        from sim2real.bench_table import print_vision_bench as show
        from sim2real.bench_vision import CASES, bench_vision

        run = lambda progress: bench_vision(cases, frames=args.frames, seed=args.seed, progress=progress)  # noqa: E731
    elif args.what == "calibrate":
        from sim2real.bench_calibrate import CASES, bench_calibrate
        from sim2real.bench_table import print_calibrate_bench as show

        run = lambda progress: bench_calibrate(  # noqa: E731
            repeats=args.repeats, cases=cases, progress=progress, train_steps=args.steps, seed=args.seed
        )
    else:
        console.print(
            f"[red]sim2real bench {args.what}: not available yet; available: env, randomization, train, vision, "
            "deploy, "
            "calibrate"
        )
        return 2
    known = TRAIN_CASES if args.what == "train" else CASES
    for c in cases or []:
        if c not in known:
            console.print(f"[red]unknown case {c!r}; cases: {', '.join(known)}")
            return 2
    out = args.out or f"bench_{args.what}.json"
    if args.what == "train":  # long: the runs show their own progress bars
        result = run(None)
    else:
        try:
            with console.status("benchmarking") as status:
                result = run(lambda m: status.update(m))
        except (ValueError, TimeoutError) as e:  # DeployError is a ValueError
            return _refuse(console, f"bench {args.what}", e)
    write_json(out, result)
    show(result)
    console.print(f"wrote {out}")
    return 0


def _train_config(args: argparse.Namespace) -> object:
    """A TrainConfig from --config (YAML/JSON experiment file), then the flags given on the command line. With
    --resume the run's own config.json is the base instead of the defaults (train() refuses real changes)."""

    import yaml

    from sim2real.train_config import CONFIG_KEYS, ConfigError, config_for_resume, config_from_dict

    data: dict[str, object] = {}
    if args.config:
        path = args.config
        try:
            with open(path) as fh:
                loaded = yaml.safe_load(fh) or {}
        except OSError as e:
            raise ConfigError(f"cannot read --config {path}: {e.strerror or e}") from None
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
            raise ConfigError(f"--config {path} is not valid YAML{where}: {getattr(e, 'problem', None) or e}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"--config {path} must hold a mapping of config keys, got {type(loaded).__name__}")
        data.update(loaded)
    for key in CONFIG_KEYS:
        value = getattr(args, key, None)
        if value is not None and key != "settings":
            data[key] = value
    settings = data.get("settings", {}) or {}
    if not isinstance(settings, dict):
        raise ConfigError(f"settings must be a mapping of agent settings, got {settings!r}")
    settings = dict(settings)
    for item in args.set or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set takes key=value, got {item!r}")
        try:
            settings[key] = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise ConfigError(f"--set {item}: the value is not valid YAML") from None
    data["settings"] = settings
    source = args.config or "command line"
    if args.resume:
        naming = {k: v for k, v in data.items() if k in ("task", "agent", "randomization", "randomizer", "seed", "out")}
        run = config_from_dict(naming, source=source).run_dir()  # the folder the flags name
        given = {k: v for k, v in data.items() if k != "settings"}
        return config_for_resume(run, {**given, "settings": settings}, source=source)
    return config_from_dict(data, source=source)


def _steps(text: str) -> int | None:
    """--steps: 'auto' (the tuned budget) or a positive integer."""
    if text == "auto":
        return None
    try:
        return _positive(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected 'auto' or a positive number of env steps, got {text!r} (a budget of 0 trains nothing)"
        ) from None


def _positive(text: str) -> int:
    """A positive whole number (episode counts)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def _cmd_train(args: argparse.Namespace) -> int:
    from rich.console import Console

    from sim2real.run_lock import RunLockedError
    from sim2real.train import ConfigError, TrainingInterrupted, train

    console = Console(stderr=True)
    try:
        cfg = _train_config(args)
        run = train(cfg, resume=args.resume, progress=not args.no_progress)  # type: ignore[arg-type]
    except (ConfigError, KeyError, ValueError, FileNotFoundError, RunLockedError) as e:
        return _refuse(console, "train", e)
    except TrainingInterrupted as e:
        console.print(
            f"sim2real train: {e.signal_name} at step {e.step}: checkpoint written to {e.checkpoint}; "
            f"continue with: sim2real train --out {e.run} --resume",
            style="yellow", markup=False, highlight=False, soft_wrap=True,
        )  # fmt: skip
        return 130
    except KeyboardInterrupt:
        console.print("sim2real train: aborted; the run keeps its last checkpoint (if it wrote one)", style="yellow")
        return 130
    import json

    summary = json.loads((run / "summary.json").read_text())
    final = summary["final"]
    rates = ", ".join(
        f"{k.removesuffix('_success')} {100 * v:.0f}%" for k, v in final.items() if k.endswith("_success")
    )
    console.print(
        f"trained {summary['steps']} steps in {summary['wall_s']:.0f} s on {summary['device']}; success: {rates}; "
        f"results in {run}"
    )
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from sim2real.train import ConfigError, evaluate_run

    console = Console(stderr=True)
    try:
        if (Path(args.run) / "manifest.json").is_file():  # a policy bundle: run the exported ONNX graph
            from sim2real.export_run import evaluate_bundle

            result = evaluate_bundle(Path(args.run), args.episodes, args.backend, args.randomization, args.seed)
        else:
            result = evaluate_run(Path(args.run), args.episodes, args.backend, args.randomization, args.seed)
    except (ConfigError, KeyError, ValueError, FileNotFoundError) as e:
        return _refuse(console, "evaluate", e)
    t = Table(title=f"{args.run} on {result['backend']} ({args.episodes} episodes per kind)")
    for col in ("scenes", "success", "mean return", "mean length"):
        t.add_column(col)
    for kind in ("nominal", "randomized"):
        if kind in result:
            r = result[kind]
            ret, length = r.get("return"), r.get("length")
            t.add_row(
                kind,
                f"{100 * r['success']:.0f}%",
                "-" if ret is None else f"{ret:.1f}",
                "-" if length is None else f"{length:.1f}",
            )
    Console().print(t)
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console

    from policies.export import ExportError
    from sim2real.export_run import export_run
    from sim2real.train import ConfigError

    console = Console(stderr=True)
    try:
        size = None
        if args.camera_size:
            w, _, h = args.camera_size.partition("x")
            if not (w.isdigit() and h.isdigit()):
                raise ConfigError(f"--camera-size must be WIDTHxHEIGHT such as 640x480, got {args.camera_size!r}")
            size = (int(w), int(h))
        if args.run == SCRIPTED_PUSHER:  # no training: the scripted pusher as a bundle (rehearse object tasks)
            from sim2real.scripted_push import export_scripted_push_bundle

            if not args.out:
                raise ConfigError(f"{SCRIPTED_PUSHER} needs --out DIR")
            path = export_scripted_push_bundle(Path(args.out), force=args.force)
        else:
            path = export_run(Path(args.run), Path(args.out) if args.out else None, size, force=args.force)
    except (ConfigError, ExportError, FileNotFoundError) as e:
        return _refuse(console, "export", e)
    console.print(f"bundle written to [bold]{path}[/bold] (policy.onnx + manifest.json; ONNX matches torch)")
    return 0


def _cmd_deploy(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console

    from sim2real.deploy import (
        DeployError,
        describe_episode,
        launch_arguments,
        require_ros,
        run_goals,
        verified_manifest,
        workspace_line,
    )  # fmt: skip
    from sim2real.launch_runner import main as launch_main

    console = Console(stderr=True)
    bundle = Path(args.bundle)
    try:
        launch = launch_arguments(
            bundle, args.sim or args.goals > 0, args.backend, args.randomization, args.controller,
            args.namespace, args.params_file, autostart=not args.no_autostart, trigger=args.trigger,
            object_pose=args.object_pose, start_joints=args.start_joints, camera_pose=args.camera_pose,
        )  # fmt: skip
        console.print(workspace_line(verified_manifest(bundle)), highlight=False)
        if args.goals <= 0:
            if not args.print:
                require_ros()
            return launch_main([*launch, *(["--print"] if args.print else [])])
        if args.namespace:
            raise DeployError("--goals drives the rehearsal in the root namespace; drop --namespace")

        def show(ep: Any) -> None:
            console.print(describe_episode(ep))

        result = run_goals(bundle, args.goals, args.backend, args.randomization, args.controller, args.seed,
                           on_episode=show, trigger=args.trigger, object_pose=args.object_pose,
                           start_joints=args.start_joints, episode_ticks=args.episode_ticks,
                           params_file=args.params_file)  # fmt: skip
    except (DeployError, TimeoutError, RuntimeError) as e:
        return _refuse(console, "deploy", e)
    n = len(result["episodes"])
    console.print(
        f"[bold]deployed over ROS 2 to the simulated arm ({args.backend}): {result['success']:.0%} of {n} goals "
        f"reached[/bold]; node timing p99 {result['timing'].get('tick_compute_ms_p99', '?')} ms per tick; "
        f"log: {result['log']}"
    )
    return 0


def _cmd_record(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console

    from sim2real.record import RecordError, RecordingFailed, record
    from sim2real_ros.recorder_core import format_summary

    console = Console(stderr=True)
    try:
        summary = record(Path(args.out), args.duration_s, args.topics, args.namespace, args.image_every)
    except RecordError as e:
        return _refuse(console, "record", e)
    except RecordingFailed as e:
        console.print(f"sim2real record: {e}", style="red", markup=False, highlight=False, soft_wrap=True)
        return 1
    print(format_summary(summary), flush=True)
    return 0


def _cmd_excite(args: argparse.Namespace) -> int:
    from rich.console import Console

    from sim2real.excite import ExciteError, excite
    from sim2real_ros.exciter_core import format_summary, options_from_args

    console = Console(stderr=True)
    try:
        summary = excite(options_from_args(args))
    except ExciteError as e:
        return _refuse(console, "excite", e)
    print(format_summary(summary), file=sys.stdout if summary.outcome == "done" else sys.stderr, flush=True)
    return summary.exit_code


def _box(text: str) -> tuple[float, ...]:
    """--goal-workspace XLO,YLO,ZLO,XHI,YHI,ZHI (empty: the task's own box)."""
    from sim.cell import CellError, parse_box

    if not text.strip():
        return ()
    try:
        return parse_box(text)
    except CellError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from rich.console import Console

    from sim2real.calibrate import CalibrateConfig, CalibrateError, calibrate

    console = Console(stderr=True)
    # every config field has its flag (add_config_flags); bags, out and holdout are the positional and own flags
    keys = [f.name for f in dataclasses.fields(CalibrateConfig) if f.name not in ("bags", "out", "holdout")]
    given = {k: getattr(args, k) for k in keys}
    cfg = CalibrateConfig(
        bags=tuple(args.bags), holdout=tuple(args.holdout or ()), out=args.out,
        **{k: v for k, v in given.items() if v is not None},
    )  # fmt: skip
    try:
        rep = calibrate(cfg, progress=not args.no_progress)
    except CalibrateError as e:
        return _refuse(console, "calibrate", e)
    d = rep["discrepancy"]
    hold = d["holdout"]
    held = "" if hold["nominal"] is None else f"; held out {hold['nominal']:.4g} -> {hold['calibrated']:.4g}"
    weak = [n for n, p in rep["params"].items() if not p["identifiable"]]
    tied = {n: w for n in weak if (w := rep["params"][n].get("sensitivity", {}).get("confounded_with"))}
    console.print(
        f"calibrated in {rep['wall_s']:.0f} s ({rep['evaluations']} evaluations): discrepancy "
        f"{d['train']['nominal']:.4g} -> {d['train']['calibrated']:.4g}{held}"
        + (f"; kept the prior for {weak} (not identifiable from these recordings)" if weak else "")
        + "".join(f"; {n} is fixed only together with {', '.join(w)}" for n, w in tied.items())
        + f"; train on it with: sim2real train --randomization {args.out}/calibrated.yaml",
        markup=False, highlight=False, soft_wrap=True,
    )  # fmt: skip
    return 0


def _cmd_calibrate_camera(args: argparse.Namespace) -> int:
    import contextlib

    from rich.console import Console

    from sim2real.calibrate_camera import (
        CalibrateCameraConfig,
        CalibrateCameraError,
        RenderViewsConfig,
        calibrate_camera,
        render_views,
        summary_lines,
    )  # fmt: skip
    from sim2real_ros.dataclass_flags import given_fields

    console = Console(stderr=True)
    # every config field has its flag (add_config_flags); source and out are the positional and --out
    given = given_fields(args, CalibrateCameraConfig)
    status = contextlib.nullcontext() if args.no_progress else console.status("calibrate-camera")
    try:
        if args.render_views:
            if args.source:
                raise CalibrateCameraError("give SOURCE to calibrate or --render-views DIR to render views, not both")
            render = RenderViewsConfig(
                out=args.render_views, backend=args.backend, camera=args.camera, views=args.views,
                mount=given.get("mount", "scene"), seed=args.seed, board=given.get("board", "9x6"),
                square_m=given.get("square_m", 0.0),
            )  # fmt: skip
            with status as s:
                truth = render_views(render, progress=s.update if s is not None else None)
            b = truth["board"]
            pose = truth.get("base_from_optical", truth.get("link_from_optical", {})).get("camera_pose", "")
            mount = "" if truth["mount"] == "scene" else " --mount wrist"
            camera = (
                "" if truth["camera"] == "scene" or truth["mount"] == "wrist" else f" --camera-name {truth['camera']}"
            )
            console.print(
                f"rendered {truth['views']} views of a {b['squares']} board ({b['square_m']} m squares) in the "
                f"{truth['camera']} camera on {truth['backend']} into {args.render_views} (truth.json: fovy "
                f"{truth['fovy_deg']} deg, camera_pose {pose}); calibrate with: sim2real calibrate-camera "
                f"{args.render_views} --board {b['squares']} --square-m {b['square_m']}{mount}{camera} "
                "--out camera.yaml",
                markup=False, highlight=False, soft_wrap=True,
            )  # fmt: skip
            return 0
        if not args.source or not args.out:
            raise CalibrateCameraError(
                "give the views (an image folder with joints.csv, or a bag) and --out camera.yaml"
            )
        with status as s:
            summary = calibrate_camera(CalibrateCameraConfig(**given), progress=s.update if s is not None else None)
    except CalibrateCameraError as e:
        return _refuse(console, "calibrate-camera", e)
    for line in summary_lines(summary):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    return 0


def _cmd_collect(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from sim2real.demos import CollectDemosConfig, collect_demos
    from sim2real_ros.dataclass_flags import given_fields

    console = Console(stderr=True)
    try:  # every config field has its flag (add_config_flags)
        cfg = CollectDemosConfig(**{**given_fields(args, CollectDemosConfig), "out": args.out}).check()
        columns = (TextColumn("demos"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=console) as bar:
            task = bar.add_task("demos", total=cfg.episodes)
            manifest = collect_demos(cfg, lambda done, total: bar.update(task, completed=done))
    except (ValueError, KeyError) as e:  # DemosError is a ValueError; KeyError: an unknown preset or camera
        return _refuse(console, "collect demos", e)
    kept = sum(s["episodes"] for s in manifest["shards"])
    wins = sum(s["successes"] for s in manifest["shards"])
    console.print(f"[bold]{kept} episodes[/bold] ({wins} solved, {manifest['tried']} tried) in {args.out}; "
                  f"{sum(s['transitions'] for s in manifest['shards'])} transitions")  # fmt: skip
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from sim2real.demo import run_demo

    return run_demo(args.out)


#: `sim2real export scripted:push --out DIR`: the stateless scripted pusher (sim2real.scripted_push) as a bundle.
SCRIPTED_PUSHER = "scripted:push"
#: Flags of `deploy` and `bench deploy` for object tasks on the simulated arm.
OBJECT_POSE_FLAG = (
    ("--object-pose",),
    {"choices": ["truth", "truth_filmed", "tracker"], "default": "truth", "dest": "object_pose",
     "help": "object tasks on the simulated arm: the object's pose from the simulator (truth_filmed: while the arm "
     "also renders the tracker's camera, the same load), or from sim2real-object-tracker on the marked object in "
     "the front camera (640x480, 30 Hz)"},
)  # fmt: skip
START_JOINTS_FLAG = (
    ("--start-joints",),
    {"default": "", "dest": "start_joints",
     "help": "the simulated arm's start pose instead of the bundle's: neutral, ready or 7 angles (rad)"},
)  # fmt: skip

EPISODE_TICKS_FLAG = (
    ("--episode-ticks",),
    {"type": int, "default": 50, "dest": "episode_ticks",
     "help": "control periods per goal episode on the simulated arm (default 50: the training episode)"},
)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every available command."""
    from calibration.fit import METHODS
    from sim.engines import BACKENDS
    from sim.env_spec import CHOICES as ENV_CHOICES
    from sim.env_spec import EnvSpec
    from sim2real.calibrate import CalibrateConfig
    from sim2real.demos import SCRIPTS, CollectDemosConfig
    from sim2real.train_config import TRAIN_CHOICES, TrainConfig
    from sim2real_ros.controller_config import COMMAND_INTERFACES, JOINT_TRAJECTORY
    from sim2real_ros.dataclass_flags import add_config_flags
    from sim2real_ros.exciter_core import add_excite_flags
    from sim2real_ros.recorder_core import add_record_flags

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
        "over repeats, ratios. `train`: the training benchmarks (reach_uniform, reach_adr, push_uniform, "
        "push_lstm, push_ff), trained unless a finished run exists, success against the targets. `calibrate`: the "
        "cost of one 10 s calibration replay per engine against a bare mj_step loop and mujoco.rollout.",
    )
    b.add_argument(
        "what", choices=["env", "randomization", "train", "vision", "deploy", "calibrate"], help="which benchmark"
    )
    b.add_argument("--frames", type=int, default=200, help="vision tracker: rendered frames per engine")
    b.add_argument(*OBJECT_POSE_FLAG[0], **OBJECT_POSE_FLAG[1])  # type: ignore[arg-type]
    b.add_argument(*START_JOINTS_FLAG[0], **START_JOINTS_FLAG[1])  # type: ignore[arg-type]
    b.add_argument(*EPISODE_TICKS_FLAG[0], **EPISODE_TICKS_FLAG[1])  # type: ignore[arg-type]
    b.add_argument("--params-file", dest="params_file", default="", help="deploy: policy_node parameters (YAML)")
    b.add_argument("--bundle", default="", help="deploy: the policy bundle to deploy")
    b.add_argument("--goals", type=int, default=20, help="deploy: goal episodes (in sim and over ROS 2)")
    b.add_argument("--backend", choices=BACKENDS, default="pybullet", help="deploy: simulated arm")
    b.add_argument("--trigger", choices=["timer", "image"], default="timer", help="deploy: when the policy node acts")
    b.add_argument(
        "--randomization", default="none",
        help="deploy: the simulated arm's randomization draw (none, a preset such as dynamics, or a YAML)",
    )  # fmt: skip
    b.add_argument(
        "--camera", choices=["sim", "replay"], default="sim",
        help="deploy, pixel bundles: the simulated arm renders (sim) or one real frame is replayed at 30 Hz (replay)",
    )  # fmt: skip
    b.add_argument(
        "--duration-s", dest="duration_s", type=float, default=0.0,
        help="deploy: run episodes for this long instead (memory and missed ticks over a long run)",
    )  # fmt: skip
    b.add_argument("--out-dir", dest="out_dir", default="runs/bench", help="train: where the runs go")
    b.add_argument("--n-envs", dest="n_envs", type=int, default=1, help="train: envs per run")
    b.add_argument("--device", default="auto", help="train: torch device")
    b.add_argument(
        "--steps", type=int, default=0,
        help="env steps per case and repeat (default: env 3000, randomization 2000); calibrate closed_loop: training "
        "steps per policy (default 12000)",
    )  # fmt: skip
    b.add_argument("--resets", type=int, default=300, help="randomization: resets per reset case and repeat")
    b.add_argument("--pixel-steps", type=int, default=300, help="env steps per pixel case and repeat")
    b.add_argument("--repeats", type=int, default=3, help="repeats per case; the median is reported")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--cases", default="", help="comma-separated subset of cases (default: all)")
    b.add_argument("--out", default="", help="where to write the JSON results (default bench_<what>.json)")
    b.set_defaults(func=_cmd_bench)

    t = sub.add_parser(
        "train",
        help="train a policy in (randomized) simulation; writes a results folder",
        description="Train one experiment: tuned defaults per task and agent, uniform / ADR / Active DR "
        "randomization, periodic nominal and randomized evaluation, atomic checkpoints, TensorBoard logs, "
        "and a results folder with the resolved config, evaluations.csv, learning_curve.png and rollout.gif.",
    )
    t.add_argument("--config", default="", help="YAML experiment file with TrainConfig keys (flags override it)")
    # one flag per config field, generated from the dataclasses: their docstrings, defaults and choice tables
    add_config_flags(
        t,
        EnvSpec,
        ENV_CHOICES,
        parsers={"goal_workspace_base_m": _box},
        aliases={"goal_workspace_base_m": "--goal-workspace"},
    )
    add_config_flags(t, TrainConfig, TRAIN_CHOICES, parsers={"steps": _steps})
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a tuned agent setting (repeatable)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=_cmd_train)

    ev = sub.add_parser(
        "evaluate",
        help="evaluate a trained run on nominal and randomized scenes, on either engine",
        description="Loads a finished run's model (and observation normaliser) and runs deterministic episodes on "
        "nominal and randomized scenes. --backend evaluates on another engine (sim-to-sim transfer); "
        "--randomization under another space. Writes evaluation-<backend>-<space>.json into the run. Given a "
        "policy bundle instead, runs the exported ONNX graph through the bundle runtime, as the robot would.",
    )
    ev.add_argument("run", help="a run folder written by sim2real train, or a policy bundle from sim2real export")
    ev.add_argument("--episodes", type=_positive, default=50, help="episodes per scene kind")
    ev.add_argument("--backend", choices=BACKENDS, default=None, help="default: the training engine")
    ev.add_argument("--randomization", default=None, help="preset or YAML (default: the training space)")
    ev.add_argument("--seed", type=int, default=20_000, help="first episode seed")
    ev.set_defaults(func=_cmd_evaluate)

    ex = sub.add_parser(
        "export",
        help="export a trained run to a policy bundle (policy.onnx + manifest.json)",
        description="Writes a bundle folder: an ONNX graph of the inference path (observation normaliser, policy, "
        "action clamp, joint-position targets for joint control) and a manifest (schema version, inputs, outputs, "
        "joint names and limits, control rate, camera, randomization provenance, SHA-256 of the ONNX file). "
        "Refuses to write a bundle whose ONNX outputs differ from torch by more than 1e-4.",
    )
    ex.add_argument(
        "run", help=f"a run folder written by sim2real train, or {SCRIPTED_PUSHER} (the scripted Push pusher)"
    )
    ex.add_argument("--out", default="", help="bundle folder (default bundles/<run name>)")
    ex.add_argument(
        "--force", action="store_true", help="replace the bundle already in --out (only a bundle, nothing else)"
    )
    ex.add_argument(
        "--camera-size", dest="camera_size", default="", help="pixel policies: deployed camera WIDTHxHEIGHT (640x480)"
    )
    ex.set_defaults(func=_cmd_export)

    la = sub.add_parser(
        "launch",
        help="run a ROS 2 YAML launch file without ROS (launch/*.launch.yaml)",
        description="Runs a ROS 2 YAML launch file (the subset: arg, let, executable, node with exec, include, "
        "group, set_env, push-ros-namespace, if/unless; $(var), $(env), $(dirname), $(find-exec)) without ROS: "
        "`sim2real launch FILE name:=value ... [--print]`. The same file runs under `ros2 launch`. Ctrl-C stops "
        "every process: SIGINT, then SIGTERM after 5 s, then SIGKILL after 5 s; the exit code is the first "
        "non-zero one of its processes.",
    )
    la.add_argument("file", help="launch file")
    la.add_argument("assignments", nargs="*", metavar="name:=value", help="launch arguments")
    la.add_argument("--print", action="store_true", help="show the resolved processes without starting them")

    de = sub.add_parser(
        "deploy",
        help="run a policy bundle on a ROS 2 arm (or rehearse on the simulated arm)",
        description="Starts launch/deploy.launch.yaml (the policy node; the arm's drivers run elsewhere) or, with "
        "--sim, launch/deploy_sim.launch.yaml (the policy node plus sim2real-sim-arm as the robot). With --goals N "
        "it rehearses N goal episodes on the simulated arm over DDS and prints the success rate. Needs the [ros] "
        "extra. Ctrl-C stops the nodes (the policy node publishes a final hold).",
    )
    de.add_argument("bundle", help="policy bundle folder (sim2real export)")
    de.add_argument("--sim", action="store_true", help="start the simulated arm too")
    de.add_argument("--goals", type=int, default=0, help="rehearse this many goal episodes on the simulated arm")
    de.add_argument("--backend", choices=BACKENDS, default="pybullet", help="engine of the simulated arm")
    de.add_argument("--randomization", default="none", help="the simulated robot: none, a preset or a YAML path")
    de.add_argument("--controller", choices=COMMAND_INTERFACES, default=JOINT_TRAJECTORY, help="the command interface")
    de.add_argument("--namespace", default="", help="namespace of the nodes and topics")
    de.add_argument("--params-file", dest="params_file", default="", help="policy_node parameters (ROS 2 YAML)")
    de.add_argument("--trigger", choices=["timer", "image"], default="timer", help="act every period or per frame")
    de.add_argument(*OBJECT_POSE_FLAG[0], **OBJECT_POSE_FLAG[1])  # type: ignore[arg-type]
    de.add_argument(*START_JOINTS_FLAG[0], **START_JOINTS_FLAG[1])  # type: ignore[arg-type]
    de.add_argument(*EPISODE_TICKS_FLAG[0], **EPISODE_TICKS_FLAG[1])  # type: ignore[arg-type]
    de.add_argument(
        "--camera-pose", dest="camera_pose", default="",
        help="real arm, object tasks: run sim2real-object-tracker with this camera: camera.yaml from sim2real "
        "calibrate-camera, or the optical frame in the base frame as x,y,z,qw,qx,qy,qz",
    )  # fmt: skip
    de.add_argument("--no-autostart", action="store_true", help="real arm: wait for a lifecycle manager to activate")
    de.add_argument("--seed", type=int, default=0, help="--goals: seed of the goal draws")
    de.add_argument("--print", action="store_true", help="show the processes without starting them")
    de.set_defaults(func=_cmd_deploy)

    rc = sub.add_parser(
        "record",
        help="record the robot's topics into a rosbag2 folder (MCAP) for calibration",
        description="Records joint_states, both command topics, the gripper, goal_pose, object_pose, the camera "
        "(one frame in --image-every) and /diagnostics into a new rosbag2 folder with MCAP storage, the serialized "
        "messages unchanged and stamped with their receive time; QoS follows each topic's publishers. Ctrl-C, "
        "SIGTERM or --duration-s closes the bag cleanly (footer and metadata.yaml written) and prints the messages "
        "per topic. Refuses an --out that exists. Needs the [ros] extra (the same recorder runs as "
        "sim2real-recorder on a robot PC).",
    )
    add_record_flags(rc)
    rc.set_defaults(func=_cmd_record)

    xc = sub.add_parser(
        "excite",
        help="move the arm with a safe multisine excitation around its current pose, to record for calibration",
        description="Waits for fresh joint_states and a controller on the command topic, takes the measured pose as "
        "the start pose and streams, at 25 Hz through the policy node's safety gate, per joint a sum of sines "
        "(seeded phases, frequencies spread over joints) ramped in and out so it starts and ends at that pose at "
        "rest, inside the joint limits and under --max-velocity-rad-s. Stale or bad joint_states, a halt of the "
        "gate, Ctrl-C or SIGTERM: it holds the measured pose and exits non-zero (1; 130/143 for the signals) with "
        "the reason. Exit 0 prints the commands sent and rejected and the peak commanded velocity. Run sim2real "
        "record alongside (launch/calibrate.launch.yaml does both). Needs the [ros] extra.",
    )
    add_excite_flags(xc)
    xc.set_defaults(func=_cmd_excite)

    ca = sub.add_parser(
        "calibrate",
        help="fit randomization ranges to trajectories recorded on the arm (SimOpt-style); writes calibrated.yaml",
        description="Reads the bags (rosbag2 MCAP or SQLite3, from sim2real record or ros2 bag record) into "
        "episodes of commanded and measured joints, replays each command sequence in the chosen engine, and fits "
        "the prior's parameters (--params: a preset or YAML; default arm_identification: joint damping, "
        "frictionloss, armature, kp/kd scale, action delay) with CMA-ES or REPS. Writes OUT/calibrated.yaml (what "
        "sim2real train --randomization reads), OUT/report.json, OUT/params.png and trajectory plots. Parameters "
        "the recordings do not constrain keep their prior range and are reported as unidentifiable.",
    )
    ca.add_argument("bags", nargs="+", help="recorded bags to fit to")
    ca.add_argument("--out", required=True, help="output folder (must not exist)")
    ca.add_argument("--holdout", nargs="*", default=[], help="bags kept out of the fit, to measure it on")
    add_config_flags(
        ca, CalibrateConfig, {"backend": BACKENDS, "task": ENV_CHOICES["task"], "method": METHODS},
        parsers={"budget": _positive, "workers": _positive}, skip=("bags", "out", "holdout"),
    )  # fmt: skip
    ca.add_argument("--no-progress", action="store_true", help="no progress bar")
    ca.set_defaults(func=_cmd_calibrate)

    from calibration.camera import DISTORTION_MODELS, MOUNTS
    from sim2real.calibrate_camera import CalibrateCameraConfig

    cc = sub.add_parser(
        "calibrate-camera",
        help="camera intrinsics and camera-to-base extrinsics from checkerboard views; writes camera.yaml",
        description="Finds a checkerboard (--board COLSxROWS squares of --square-m) in each view (OpenCV "
        "findChessboardCorners + cornerSubPix), fits the intrinsics (calibrateCamera: K and plumb_bob distortion) "
        "and, from the arm's joint positions at each view (forward kinematics of --urdf, default the Panda), the "
        "extrinsics by hand-eye calibration (calibrateHandEye, then refined on every corner through the chain): "
        "--mount scene, a fixed camera with the board on --board-link (eye-to-hand), gives the camera's optical "
        "frame in the base frame (the camera_pose sim2real-object-tracker and deploy --camera-pose take); --mount "
        "wrist, the camera on --board-link and the board fixed, gives it in that link. SOURCE is a folder of images "
        "with joints.csv (file, then the arm joints in rad) or a rosbag2 bag from sim2real record (camera/image_raw "
        "paired with the joint_states nearest each stamp, within --max-pair-ms, only while the arm stands still). "
        "Writes --out camera.yaml: a randomization space (sim2real train --randomization camera.yaml) that places "
        "the simulated camera (camera_pos, camera_quat, camera_fovy of --camera-name) centred on the measurement, "
        "with the calibration in provenance.camera_calibration. Refuses too few views, a board never found, views "
        "without rotation spread, non-finite joints and a chain that does not close, naming the files. "
        "--render-views DIR renders demo views in the simulator instead (PNGs, joints.csv, truth.json).",
    )
    cc.add_argument("source", nargs="?", default="", help="image folder with joints.csv, or a rosbag2 bag")
    cc.add_argument("--out", default="", help="camera.yaml to write (an existing file is never replaced)")
    add_config_flags(
        cc, CalibrateCameraConfig, {"mount": MOUNTS, "distortion": DISTORTION_MODELS}, skip=("source", "out")
    )
    cc.add_argument(
        "--render-views", dest="render_views", default="", metavar="DIR",
        help="render checkerboard views in the simulator into the new folder DIR (view_NNN.png, joints.csv, "
        "truth.json with the exact camera) instead of calibrating",
    )  # fmt: skip
    cc.add_argument("--backend", choices=BACKENDS, default="mujoco", help="--render-views: the engine that renders")
    cc.add_argument(
        "--camera", default="", help="--render-views: the simulated camera (default scene; wrist with --mount wrist)"
    )
    cc.add_argument("--views", type=_positive, default=20, help="--render-views: how many views (default 20)")
    cc.add_argument("--seed", type=int, default=0, help="--render-views: seed of the drawn poses")
    cc.add_argument("--no-progress", action="store_true", help="no progress display")
    cc.set_defaults(func=_cmd_calibrate_camera)

    co = sub.add_parser(
        "collect",
        help="collect datasets: demonstrations of a scripted policy on randomized scenes",
        description="`collect demos`: episodes of a scripted demonstrator (the Push pusher) on randomized scenes, "
        "written shard by shard into OUT (demos.json + shard_NNNNN.npz: observations, goals, actions, rewards, "
        "lengths, successes, reset seeds; README, Training). Run the same command again to continue a stopped one.",
    )
    co.add_argument("what", choices=["demos"], help="what to collect")
    co.add_argument("--out", required=True, help="dataset folder (new or empty, or a dataset to continue)")
    add_config_flags(co, CollectDemosConfig, {"backend": BACKENDS, "script": SCRIPTS}, skip=("out",),
                     parsers={"episodes": _positive, "shard_episodes": _positive})  # fmt: skip
    co.set_defaults(func=_cmd_collect)

    d = sub.add_parser(
        "demo",
        help="the whole pipeline in a few minutes: scenes, randomization, training, export, ROS 2 deployment",
        description="Builds every task on both engines, prints parity figures and camera PNGs, shows the "
        "randomization presets, trains Reach (TQC + HER, `dynamics` randomization, 12k steps), exports it and "
        "deploys the bundle to the simulated PyBullet arm over ROS 2 (policy node and sim_arm in their own "
        "processes), printing the success over 10 goals; last records an off-nominal simulated arm over ROS 2 and "
        "calibrates the randomization to it, printing the discrepancy before and after. Writes everything to OUT.",
    )
    d.add_argument("--out", default="out/demo", help="output folder")
    d.set_defaults(func=_cmd_demo)
    return ap


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["launch"] and not ({"-h", "--help"} & set(argv[1:2])):
        from sim2real.launch_runner import main as launch_main  # `name:=value` arguments are not argparse's

        return launch_main(argv[1:])
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
