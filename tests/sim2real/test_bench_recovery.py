"""The recovery bench's scoring and its hidden arm: values within 10% and the delay exact (as whole steps) meet the
target, one value off or a slow fit does not; across engines only the held-out ratio counts; the hidden arm is a
randomization YAML whose every range is a single point."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from randomization import space_from
from sim2real.bench_recovery import HIDDEN, hidden_space, score


def _report(scale: float = 1.0, delay: tuple[float, int, int] = (2.04, 2, 2), holdout: float = 0.2) -> dict[str, Any]:
    params: dict[str, Any] = {n: {"posterior": {"mean": v * scale}, "identifiable": True} for n, v in HIDDEN.items()}
    params["action_delay"] = {"posterior": {"mean": delay[0], "low": delay[1], "high": delay[2]}}
    disc = {"train": {"nominal": 1.0, "calibrated": 0.1}, "holdout": {"nominal": 1.0, "calibrated": holdout}}
    return {"params": params, "discrepancy": disc, "evaluations": 900}


def test_within_ten_percent_with_the_delay_exact_in_time_is_met() -> None:
    r = score("recovery_mujoco", _report(1.05), 120.0, 3, 900)
    assert r["met"] and r["within_10pct"] and r["delay_exact"]
    assert all(abs(p["rel_error"] - 0.05) < 1e-9 for p in r["params"].values())


def test_a_value_off_a_delay_between_steps_or_a_slow_fit_is_not_met() -> None:
    assert not score("recovery_mujoco", _report(1.15), 120.0, 3, 900)["met"]
    assert not score("recovery_mujoco", _report(1.0, (2.4, 2, 3)), 120.0, 3, 900)["met"]
    assert not score("recovery_mujoco", _report(1.0), 301.0, 3, 900)["met"]


def test_the_velocity_feedback_sum_is_scored_where_damping_and_kd_trade_off() -> None:
    rep = _report()
    rep["params"]["joint_damping:panda_joint[1-7]"]["posterior"]["mean"] = 0.0  # kept at the prior's nominal
    rep["params"]["actuator_kd:panda_joint[1-7]"]["posterior"]["mean"] = 1.2 + 2.0 / 100.0  # took it up on joint 1
    fb = score("recovery_mujoco", rep, 120.0, 3, 900)["velocity_feedback"]
    assert fb["true"][0] == pytest.approx(122.0) and fb["fitted"][0] == pytest.approx(122.0)
    assert fb["max_rel_error"] == pytest.approx(1.0 / 62.0)  # joints 5-7 (kd0 = 50) miss 1 N m s/rad of 62


def test_across_engines_counts_the_held_out_ratio() -> None:
    assert score("across_engines", _report(1.5, holdout=0.5), 100.0, 3, 900)["met"]
    assert not score("across_engines", _report(1.0, holdout=0.51), 100.0, 3, 900)["met"]


def test_the_hidden_arm_is_a_space_of_single_points(tmp_path: Path) -> None:
    space = space_from(str(hidden_space(tmp_path / "hidden.yaml")))
    assert space.names == list(HIDDEN)
    for p in space.parameters:
        assert float(np.ravel(p.low)[0]) == float(np.ravel(p.high)[0]) == HIDDEN[p.name]
