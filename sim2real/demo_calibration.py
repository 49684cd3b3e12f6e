"""The demo's calibration part: the simulated MuJoCo arm, made off-nominal by a randomization the calibration does
not see (sim2real.bench_recovery.HIDDEN and a 2-step command delay), is excited and recorded over ROS 2; the bags
are calibrated with the default prior; the discrepancy before and after and the fitted values are printed."""

from __future__ import annotations

import shutil
from pathlib import Path

from rich.console import Console
from rich.table import Table

#: Fit budget: about a minute on 2 cores for one 10 s training bag.
BUDGET = 400
#: Marks the folders this part wrote, so that a later demo replaces them and nothing else.
DEMO_MARKER = ".sim2real-demo"
MARK = "written by sim2real demo; a later demo replaces this folder\n"


def remove_own(path: Path) -> bool:
    """Remove `path` if an earlier demo wrote it (it carries the marker); True when nothing is left in the way."""
    if not path.exists():
        return True
    if path.is_dir() and (path / DEMO_MARKER).is_file():
        shutil.rmtree(path)
        return True
    return False


def run(console: Console, out: Path) -> None:
    """Record two excitations (train, holdout) of the hidden arm under `out`, calibrate, print the result.
    Skipped, saying why, without the [ros] extra."""
    from sim2real.bench_recovery import HIDDEN_DELAY_STEPS, record_bags, score
    from sim2real.calibrate import CalibrateConfig, calibrate
    from sim2real.deploy import DeployError, require_ros

    console.rule("[bold]calibrate: record an off-nominal simulated arm over ROS 2, fit the randomization to it")
    try:
        require_ros()
    except DeployError as e:
        console.print(f"[yellow]skipping calibration: {e}")
        return
    bags_dir, cal = out / "calibration-bags", out / "calibration"
    refused = [str(p) for p in (bags_dir, cal) if not remove_own(p)]
    if refused:
        console.print(f"[yellow]skipping calibration: {', '.join(refused)} exist and are not this demo's output")
        return
    bags_dir.mkdir(parents=True)
    (bags_dir / DEMO_MARKER).write_text(MARK)
    with console.status("recording") as status:
        bags = record_bags(bags_dir, "mujoco", 2, log=status.update)
    console.print(f"recorded {len(bags)} excitations of the hidden arm: {', '.join(bags)}")
    cfg = CalibrateConfig(bags=(bags[0],), holdout=(bags[1],), out=str(cal), budget=BUDGET, workers=2, seed=0)
    try:
        rep = calibrate(cfg, progress=True)
    finally:  # the folder is this run's (remove_own cleared the way): mark it even when calibrate stopped halfway
        if cal.is_dir():
            (cal / DEMO_MARKER).write_text(MARK)
    scored = score("recovery_mujoco", rep, float(rep["wall_s"]), 1, BUDGET)
    t = Table(title="hidden vs fitted (one 10 s training bag)")
    for col in ("parameter", "hidden", "fitted", "error"):
        t.add_column(col)
    for name, p in scored["params"].items():
        t.add_row(name, f"{p['true']:g}", f"{p['fitted']:.4g}", f"{100 * p['rel_error']:.1f}%")
    d = scored["delay_steps"]
    shown = f"{d['fitted']:.2f}" if d["fitted"] is not None else "n/a"
    t.add_row("action_delay (control steps)", str(HIDDEN_DELAY_STEPS), shown, f"trains on {d['trained_on']}")
    console.print(t)
    disc = rep["discrepancy"]
    console.print(
        f"[bold]discrepancy before -> after calibration: training bag {disc['train']['nominal']:.4g} -> "
        f"{disc['train']['calibrated']:.4g}, held-out bag {disc['holdout']['nominal']:.4g} -> "
        f"{disc['holdout']['calibrated']:.4g}[/bold] ({rep['evaluations']} evaluations, {rep['wall_s']:.0f} s); "
        f"{cal}/calibrated.yaml trains with: sim2real train --randomization {cal}/calibrated.yaml"
    )
