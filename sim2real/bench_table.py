"""Printing benchmark results as tables."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _print_rates(result: dict[str, Any], rate_key: str, rate_title: str, fmt: str = "{:.0f}") -> None:
    """Cases (median rate, spread, what) and ratios with their targets, as two tables; `fmt` formats the rates."""
    console = Console()
    t = Table(title=f"sim2real bench {result['bench']} - {result['machine']} - {result['date']}")
    t.add_column("case")
    t.add_column(rate_title, justify="right")
    t.add_column("min..max", justify="right")
    t.add_column("what")
    for name, c in result["cases"].items():
        s = c["samples"]
        t.add_row(name, fmt.format(c[rate_key]), f"{fmt.format(min(s))}..{fmt.format(max(s))}", c["what"])
    console.print(t)
    r = Table(title="ratios (medians)")
    r.add_column("ratio")
    r.add_column("value", justify="right")
    r.add_column("target")
    targets = result.get("targets", {})
    for name, v in result["ratios"].items():
        shown = f"{100 * v:+.1f}%" if "overhead" in name else f"{v:.2f}x"
        r.add_row(name, shown, targets.get(name, ""))
    console.print(r)


def print_env_bench(result: dict[str, Any]) -> None:
    """Cases (median steps/s, spread) and ratios with their targets."""
    _print_rates(result, "median_steps_per_s", "median steps/s")


def print_randomization_bench(result: dict[str, Any]) -> None:
    """Cases (median operations/s, spread) and cost ratios with their targets."""
    _print_rates(result, "median_per_s", "median /s")


def print_train_bench(result: dict[str, Any]) -> None:
    """One row per training case: steps, wall-clock, final success on nominal and randomized scenes, target."""
    console = Console()
    t = Table(title=f"sim2real bench train - {result['machine']} - {result['date']}")
    for col in ("case", "steps", "wall", "nominal", "randomized", "target", "met"):
        t.add_column(col)
    for name, c in result["cases"].items():
        f = c["final"]
        met = "-" if c["met"] is None else ("yes" if c["met"] else "no")
        t.add_row(
            name,
            str(c["steps"]),
            f"{c['wall_s'] / 60:.1f} min",
            f"{100 * f.get('nominal_success', 0):.0f}%",
            f"{100 * f.get('randomized_success', 0):.0f}%",
            c["target"],
            met,
        )
    console.print(t)


DEPLOY_TARGETS = {
    "ratio": ">= 0.9 (ROS success / in-sim success)",
    "tick_compute_ms_p99": "<= 10 ms",
    "missed_ticks": "0",
}


def print_deploy_bench(result: dict[str, Any]) -> None:
    """Success in sim and over ROS 2, and the node's timing, with targets."""
    console = Console()
    t = Table(title=f"sim2real bench deploy - {result['machine']} - {result['date']} - {result['backend']}")
    t.add_column("figure")
    t.add_column("value", justify="right")
    t.add_column("target")
    for name, v in result["figures"].items():
        shown = "n/a" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)
        t.add_row(name, shown, DEPLOY_TARGETS.get(name, ""))
    console.print(t)


def print_calibrate_bench(result: dict[str, Any]) -> None:
    """Cases (median ms per replay, spread) and the ratios against the bare mj_step loop; the recovery cases."""
    console = Console()
    if result.get("cases"):
        _print_rates(result, "median_ms", "median ms / 10 s replay", fmt="{:.1f}")
    if result.get("scale"):
        t = Table(title="population evaluation rate (one 10 s MuJoCo episode per candidate)")
        for col in ("case", "evals/s", "min..max", "what"):
            t.add_column(col)
        for case, r in result["scale"].items():
            t.add_row(case, f"{r['evals_per_s']:.2f}", f"{min(r['samples']):.2f}..{max(r['samples']):.2f}", r["what"])
        console.print(t)
    loop = result.get("closed_loop")
    if loop:
        t = Table(
            title=f"closed loop: Reach ({loop['steps']} steps) on the off-nominal arm over ROS 2, {loop['goals']} goals"
        )
        for col in ("trained on", "success", "median time to goal"):
            t.add_column(col)
        for name, r in loop.items():
            if isinstance(r, dict) and "error" in r:
                t.add_row(name, "failed", r["error"].splitlines()[0])
            elif isinstance(r, dict) and "success" in r:
                took = "n/a" if r["median_time_to_goal_s"] is None else f"{r['median_time_to_goal_s']:.2f} s"
                t.add_row(name, f"{100 * r['success']:.0f}%", took)
        console.print(t)
    for case, r in result.get("recovery", {}).items():
        t = Table(title=f"{case}: {r['what']} ({'met' if r['met'] else 'NOT met'})")
        for col in ("parameter", "true", "fitted", "error", "identifiable"):
            t.add_column(col)
        for name, p in r["params"].items():
            tied = p.get("confounded_with") or []
            ident = "yes" if p["identifiable"] else "no, prior kept" + (f"; with {', '.join(tied)}" if tied else "")
            t.add_row(name, f"{p['true']:g}", f"{p['fitted']:.4g}", f"{100 * p['rel_error']:.1f}%", ident)
        fb = r.get("velocity_feedback")
        if fb:
            t.add_row("kd x kd0 + damping (N m s/rad)", " ".join(f"{x:.0f}" for x in fb["true"]),
                      " ".join(f"{x:.0f}" for x in fb["fitted"]), f"{100 * fb['max_rel_error']:.1f}% (worst joint)",
                      "the sum")  # fmt: skip
        d = r["delay_steps"]
        t.add_row("action_delay (steps)", str(d["true"]), f"{d['fitted']:.3f}" if d["fitted"] is not None else "n/a",
                  f"trains on {d['trained_on']}")  # fmt: skip
        disc = r["discrepancy"]
        for split in ("train", "holdout"):
            nominal, calibrated = disc[split]["nominal"], disc[split]["calibrated"]
            if nominal is not None:
                t.add_row(f"discrepancy {split}", f"{nominal:.3g} nominal", f"{calibrated:.3g}",
                          f"{calibrated / nominal:.1%}")  # fmt: skip
        t.add_row("wall", "", f"{r['wall_s']:.0f} s", f"{r['evaluations']} evaluations")
        console.print(t)


def print_vision_bench(result: dict[str, Any]) -> None:
    """The tracker case: pose error against the ground truth and processing time per engine, with the targets."""
    console = Console()
    rows = result["cases"].get("tracker")
    if not rows:
        return
    t = Table(title=f"sim2real bench vision: tracker - {result['machine']} - {result['date']}")
    for col in ("engine", "tracked", "pos mm median / p95", "angle deg median / p95", "ms median / p99"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["backend"], f"{r['tracked']}/{r['frames']}",
                  f"{r['position_mm_median']:.2f} / {r['position_mm_p95']:.2f}",
                  f"{r['angle_deg_median']:.2f} / {r['angle_deg_p95']:.2f}",
                  f"{r['processing_ms_median']:.2f} / {r['processing_ms_p99']:.2f}")  # fmt: skip
    console.print(t)
    targets = result["targets"]
    console.print(
        f"targets: position median <= {targets['position_mm_median']} mm, angle median <= "
        f"{targets['angle_deg_median']} deg, processing p99 <= {targets['processing_ms_p99']} ms"
    )
