"""The closed-loop case of `sim2real bench calibrate`: does training on the calibrated ranges pay off on the arm they
were fitted to? The off-nominal simulated MuJoCo arm of sim2real.bench_recovery is recorded and calibrated; Reach
is trained (TQC + HER, the demo's settings) on the calibrated ranges, on the wide `dynamics` preset and on the
nominal scene; each policy is exported and deployed over ROS 2 (policy node and sim arm in their own processes) to
that off-nominal arm (hidden randomization and command delay): success and median time to goal, side by side."""

from __future__ import annotations

import shutil
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Training steps per policy (the demo's Reach: about 5 minutes on 2 cores).
STEPS = 12_000
GOALS = 20


def run_closed_loop(
    steps: int = STEPS, goals: int = GOALS, seed: int = 0, log: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Calibrate, train three policies, deploy each to the off-nominal arm. Everything lives in a temporary folder,
    removed after."""
    from sim2real.bench_recovery import CONTROL_DT_S, HIDDEN_DELAY_STEPS, hidden_space, record_and_calibrate
    from sim2real.deploy import DeployError, run_goals
    from sim2real.export_run import export_run
    from sim2real.train import train, train_config

    work = Path(tempfile.mkdtemp(prefix="sim2real_bench_closed_loop_"))
    try:
        rep, _ = record_and_calibrate("recovery_mujoco", work, log=log)
        hidden = str(hidden_space(work / "hidden_arm.yaml"))
        ranges = {"calibrated": str(work / "calibration" / "calibrated.yaml"), "wide (dynamics)": "dynamics",
                  "nominal": ""}  # fmt: skip
        out: dict[str, Any] = {"steps": steps, "goals": goals, "seed": seed,
                               "calibration_discrepancy": rep["discrepancy"]}  # fmt: skip
        for i, (name, randomization) in enumerate(ranges.items()):
            if log:
                log(f"training Reach on the {name} ranges ({steps} steps)")
            run = work / f"run_{i}"
            cfg = train_config(task="reach", randomization=randomization, steps=steps, out=str(run), eval_episodes=10,
                               checkpoint_every_steps=0, seed=seed)  # fmt: skip
            train(cfg)
            bundle = export_run(run, work / f"bundle_{i}")
            if log:
                log(f"deploying the {name} policy to the off-nominal arm over ROS 2 ({goals} goals)")
            try:
                delay_s = HIDDEN_DELAY_STEPS * CONTROL_DT_S
                result = run_goals(bundle, goals, backend="mujoco", randomization=hidden,
                                   log_path=work / f"deploy_{i}.log", command_delay_s=delay_s)  # fmt: skip
            except DeployError as e:  # one failed deployment (its log's last lines in the message) spoils no other
                out[name] = {"error": str(e)}
                continue
            times = [e["time_to_goal_s"] for e in result["episodes"] if e["success"]]
            out[name] = {
                "randomization": {"dynamics": "dynamics", "": "none"}.get(randomization, "calibrated.yaml"),
                "success": result["success"],
                "median_time_to_goal_s": statistics.median(times) if times else None,
            }
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)
