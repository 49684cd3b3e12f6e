"""The calibrated space is a randomization YAML training reads: fitted parameters become truncated normals inside
their prior, unidentifiable ones keep the prior, ranges never invert, and the env builds and steps at the extreme
ends of every range (ROS.md B.4 case 50); the report holds what the issue lists; the plots are drawn."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import sim  # noqa: F401  (registers the env ids)
from calibration.fit import FitResult
from calibration.output import calibrated_space, plot_parameters, plot_trajectories, report
from randomization import ParameterSpace

PRIOR = ParameterSpace.from_dict(
    {
        "schema_version": 1,
        "parameters": [
            {"name": "joint_damping:panda_joint*", "nominal": 0.0, "low": 0.0, "high": 10.0, "per_element": True},
            {"name": "actuator_kp:panda_joint*", "nominal": 1.0, "low": 0.5, "high": 1.5, "apply": "scale"},
            {"name": "action_delay", "nominal": 0, "low": 0, "high": 3, "integer": True},
        ],
    }
)
NAMES = [f"joint_damping:panda_joint{i}" for i in range(1, 8)] + ["actuator_kp:panda_joint*"]


def _result() -> FitResult:
    lo, hi = np.array([0.0] * 7 + [0.5]), np.array([10.0] * 7 + [1.5])
    mean = np.array([9.99, 3.0, 0.0, 5.0, 5.0, 5.0, 5.0, 0.8])  # one at the top bound, one at the bottom
    std = np.array([0.5, 0.2, 0.1, 1e-9, 0.3, 0.3, 0.3, 0.05])  # one collapsed to (almost) nothing
    ident = np.array([True, True, True, True, False, True, True, True])
    return FitResult(NAMES, lo, hi, np.array([0.0] * 7 + [1.0]), mean, std, ident, 2, 0.01, 0.001, 123, [0.1, 0.01])


def test_the_calibrated_space_keeps_every_range_valid_and_the_prior_where_unidentifiable(tmp_path: Path) -> None:
    space = calibrated_space(PRIOR, _result(), {"bags": [{"path": "b", "sha256": "ab"}], "robot": "panda"})
    path = tmp_path / "calibrated.yaml"
    space.save(path)
    loaded = ParameterSpace.load(path)  # schema-validated on the way back
    by_name = {p.name: p for p in loaded.parameters}
    assert set(by_name) == {*NAMES, "action_delay"}
    for p in loaded.numeric:
        assert np.all(p.low <= p.nominal) and np.all(p.nominal <= p.high) and np.all(p.low < p.high) or p.is_fixed
    j1 = by_name["joint_damping:panda_joint1"]
    assert float(j1.high) == 10.0 and float(j1.low) == pytest.approx(8.99) and j1.distribution == "truncnormal"
    j4 = by_name["joint_damping:panda_joint4"]  # collapsed std: the range is 1% of the prior, not a point
    assert float(j4.high - j4.low) == pytest.approx(0.1)
    j5 = by_name["joint_damping:panda_joint5"]  # unidentifiable: the prior entry
    assert (float(j5.low), float(j5.high), float(j5.nominal)) == (0.0, 10.0, 0.0) and "unidentifiable" in j5.doc
    delay = by_name["action_delay"]
    assert float(delay.nominal) == float(delay.low) == float(delay.high) == 2.0 and delay.integer
    assert loaded.provenance["robot"] == "panda"


@pytest.mark.parametrize("backend", ["mujoco", "pybullet"])
def test_the_env_builds_and_steps_at_both_ends_of_every_calibrated_range(tmp_path: Path, backend: str) -> None:
    space = calibrated_space(PRIOR, _result(), {})
    for end in ("low", "high"):
        data = space.to_dict()
        for entry in data["parameters"]:
            entry["nominal"] = entry[end]
        env = gym.make("Sim2Real/Reach-v0", backend=backend, randomization=data)
        obs, _ = env.reset(seed=0, options={"nominal": True})
        for _ in range(3):
            obs, *_ = env.step(env.action_space.sample())
        assert all(np.all(np.isfinite(v)) for v in obs.values())
        env.close()


def test_the_report_and_the_plots(tmp_path: Path) -> None:
    result = _result()
    disc = {"train": {"nominal": 0.01, "calibrated": 0.001}, "holdout": {"nominal": None, "calibrated": None}}
    rep = report(result, disc, 0.012, [{"path": "b", "sha256": "ab", "episodes": 2}], "cma", 12.5)
    json.dumps(rep, allow_nan=False)  # plain JSON
    assert rep["params"]["joint_damping:panda_joint5"]["identifiable"] is False
    assert rep["params"]["action_delay"]["posterior"]["mean"] == 2.0
    assert set(rep) >= {"schema_version", "params", "discrepancy", "latency_s", "bags", "method", "evaluations",
                        "wall_s"}  # fmt: skip
    png = plot_parameters(tmp_path / "params.png", result)
    t = np.arange(20) * 0.04
    q = np.zeros((20, 7))
    traj = plot_trajectories(
        tmp_path / "traj.png", "episode 0", t, q, q + 0.1, q + 0.01, tuple(f"j{i}" for i in range(7))
    )
    assert png.stat().st_size > 5000 and traj.stat().st_size > 5000


def test_a_measured_delay_becomes_whole_steps_within_a_quarter_else_both_neighbours() -> None:
    from calibration.output import delay_steps

    assert delay_steps(2.0) == delay_steps(2.2) == delay_steps(1.8) == (2, 2, 2)
    assert delay_steps(2.4) == (2, 2, 3) and delay_steps(2.6) == (3, 2, 3) and delay_steps(0.1) == (0, 0, 0)


def test_the_measured_latency_becomes_the_observation_delay() -> None:
    space = calibrated_space(PRIOR, _result(), {}, obs_delay_steps=1.4)
    obs = next(p for p in space.parameters if p.name == "obs_delay")
    assert (float(obs.nominal), float(obs.low), float(obs.high), obs.integer) == (1.0, 1.0, 2.0, True)
    assert "obs_delay" not in calibrated_space(PRIOR, _result(), {}).names  # no latency measured: none written


def test_the_camera_latency_becomes_the_image_delay() -> None:
    space = calibrated_space(PRIOR, _result(), {}, obs_delay_steps=0.1, image_delay_steps=2.05)
    got = {p.name: p for p in space.parameters}
    img = got["image_delay"]
    assert (float(img.nominal), float(img.low), float(img.high), img.integer) == (2.0, 2.0, 2.0, True)
    assert float(got["obs_delay"].high) == 0.0
    assert "camera latency" in str(img.doc)
    assert "image_delay" not in calibrated_space(PRIOR, _result(), {}, obs_delay_steps=1.0).names
