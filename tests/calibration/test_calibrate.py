"""`sim2real calibrate` end to end on bags the simulated arm recorded with off-nominal dynamics: the output folder
holds calibrated.yaml (a space training reads), report.json (the fields the issue lists) and plots; the fit
recovers the hidden values; held-out bags improve; a static recording keeps the prior; nothing is replaced."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from calibration.replay import Replayer
from randomization import ParameterSpace, space_from
from sim2real.calibrate import CalibrateConfig, CalibrateError, calibrate
from tests.calibration.bag_factory import Extra, camera_info, commands_from, joint_states_from, write_bag
from tests.calibration.test_replay import excitation

PRIOR = {
    "schema_version": 1,
    "parameters": [
        {"name": "joint_damping:panda_joint[1-7]", "nominal": 0.0, "low": 0.0, "high": 5.0},
        {"name": "actuator_kp:panda_joint[1-7]", "nominal": 1.0, "low": 0.5, "high": 1.5, "apply": "scale"},
        {"name": "action_delay", "nominal": 0, "low": 0, "high": 3, "integer": True},
    ],
}
HIDDEN = {"joint_damping:panda_joint[1-7]": 2.0, "actuator_kp:panda_joint[1-7]": 0.75, "action_delay": 1}
T0_NS = 1_700_000_000_000_000_000  # a wall-clock stamp (2023), not sim time


def record(
    path: Path,
    values: dict[str, object],
    phase: int,
    amplitude: float = 0.25,
    steps: int = 100,
    clock_offset_ns: int = 0,
    **bag: Any,
) -> Path:
    """A bag of the MuJoCo arm driven by sums of sines under `values`: joint_states and commands at 25 Hz, logged
    `clock_offset_ns` after their stamps (a recorder whose clock is ahead); `bag`: more write_bag arguments."""
    r = Replayer(ParameterSpace.from_dict(PRIOR), "mujoco")
    cmd = np.roll(excitation(steps, amplitude_rad=amplitude), phase, axis=0)
    q, qd = r.rollout(cmd[0], cmd, 0.04, values)
    r.close()
    t = T0_NS + np.arange(steps) * 40_000_000
    cmds = [c._replace(log_ns=c.stamp_ns + clock_offset_ns) for c in commands_from(t, cmd)]
    js = joint_states_from(t, q, qd)
    return write_bag(path, joint_states=js, commands=cmds, latency_ns=bag.pop("latency_ns", 0) + clock_offset_ns, **bag)


@pytest.fixture(scope="module")
def bags(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    root = tmp_path_factory.mktemp("bags")
    train = [str(record(root / f"train{i}", HIDDEN, 9 * i)) for i in range(2)]
    holdout = [str(record(root / "holdout", HIDDEN, 31))]
    return {"train": train, "holdout": holdout}


def test_calibrate_writes_a_space_a_report_and_plots_and_recovers_the_hidden_values(
    tmp_path: Path, bags: dict[str, list[str]]
) -> None:
    prior = tmp_path / "prior.yaml"
    ParameterSpace.from_dict(PRIOR).save(prior)
    out = tmp_path / "cal"
    cfg = CalibrateConfig(bags=tuple(bags["train"]), holdout=tuple(bags["holdout"]), out=str(out), params=str(prior),
                          budget=300, seed=0)  # fmt: skip
    rep = calibrate(cfg, progress=False)
    assert sorted(p.name for p in out.iterdir()) == [
        "calibrated.yaml", "params.png", "report.json", "trajectory_0.png",
    ]  # fmt: skip
    assert json.loads((out / "report.json").read_text()) == json.loads(json.dumps(rep))
    params = rep["params"]
    assert params["joint_damping:panda_joint[1-7]"]["posterior"]["mean"] == pytest.approx(2.0, rel=0.1)
    assert params["actuator_kp:panda_joint[1-7]"]["posterior"]["mean"] == pytest.approx(0.75, rel=0.1)
    delay = params["action_delay"]["posterior"]
    assert delay["mean"] == pytest.approx(1.0, abs=0.05)  # fractional steps, found to the physics step (0.05)
    assert (delay["low"], delay["high"]) == (1, 1)
    d = rep["discrepancy"]
    assert d["train"]["calibrated"] < 0.1 * d["train"]["nominal"]
    assert d["holdout"]["calibrated"] < 0.1 * d["holdout"]["nominal"]  # trajectories it did not fit
    assert {b["role"] for b in rep["bags"]} == {"train", "holdout"} and all(len(b["sha256"]) == 64 for b in rep["bags"])
    assert rep["method"] == "cma" and rep["evaluations"] >= 100 and rep["wall_s"] > 0
    space = space_from(str(out / "calibrated.yaml"))  # what `sim2real train --randomization` reads
    assert {b["sha256"] for b in space.provenance["bags"]} == {b["sha256"] for b in rep["bags"]}
    assert space.provenance["robot"]["name"] == "panda"
    trained_delay = next(p for p in space.parameters if p.name == "action_delay")
    assert (trained_delay.nominal, trained_delay.low, trained_delay.high, trained_delay.integer) == (1, 1, 1, True)


def test_a_static_recording_keeps_the_prior(tmp_path: Path) -> None:
    bag = record(tmp_path / "still", HIDDEN, 0, amplitude=0.0)
    rep = calibrate(CalibrateConfig(bags=(str(bag),), out=str(tmp_path / "cal"), budget=20), progress=False)
    assert not any(p["identifiable"] for n, p in rep["params"].items() if n != "action_delay")


def test_refusals_change_nothing(tmp_path: Path, bags: dict[str, list[str]]) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(CalibrateError, match="already exists"):
        calibrate(CalibrateConfig(bags=tuple(bags["train"]), out=str(tmp_path / "taken")), progress=False)
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"
    empty = write_bag(tmp_path / "empty")
    with pytest.raises(CalibrateError, match="too little usable data"):
        calibrate(CalibrateConfig(bags=(str(empty),), out=str(tmp_path / "cal")), progress=False)
    with pytest.raises(CalibrateError, match="method must be one of"):
        calibrate(CalibrateConfig(bags=tuple(bags["train"]), out=str(tmp_path / "cal"), method="bayes"), False)
    assert not (tmp_path / "cal").exists()


def test_the_command_line_calibrates_and_refuses_in_one_line(tmp_path: Path, bags: dict[str, list[str]]) -> None:
    import subprocess
    import sys

    prior = tmp_path / "prior.yaml"
    ParameterSpace.from_dict(PRIOR).save(prior)
    cmd = [sys.executable, "-m", "sim2real.cli", "calibrate", *bags["train"], "--holdout", *bags["holdout"],
           "--params", str(prior), "--budget", "30", "--no-progress", "--out", str(tmp_path / "cal"),
           "--workers", "2", "--ray-address", "local"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)
    assert out.returncode == 0, out.stderr
    rep = json.loads((tmp_path / "cal" / "report.json").read_text())
    assert rep["evaluated_on"] == {"workers": 2, "ray_address": "local"}  # every config flag reaches the fit
    assert "discrepancy" in out.stderr and "--randomization" in out.stderr
    again = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)
    assert again.returncode == 2 and "already exists" in again.stderr and "Traceback" not in again.stderr


def test_latencies_become_the_observation_and_image_delays_and_clock_differences_do_not(tmp_path: Path) -> None:
    def frames(latency_s: float) -> list[Extra]:
        t = T0_NS + np.arange(0, 100, 3) * 40_000_000
        info = "sensor_msgs/msg/CameraInfo"
        return [Extra("/camera/camera_info", info, int(x + latency_s * 1e9), camera_info(int(x))) for x in t]

    synced = record(tmp_path / "synced", HIDDEN, 0, latency_ns=3_000_000, extra=frames(0.081))
    rep = calibrate(CalibrateConfig(bags=(str(synced),), out=str(tmp_path / "a"), budget=20), progress=False)
    assert rep["latency_s"] == pytest.approx(0.003) and rep["camera_latency_s"] == pytest.approx(0.081)
    space = {p.name: p for p in space_from(str(tmp_path / "a" / "calibrated.yaml")).parameters}
    assert (float(space["image_delay"].low), float(space["image_delay"].high)) == (2.0, 2.0)  # 81 ms at 25 Hz
    assert float(space["obs_delay"].high) == 0.0
    # a robot clock 5 s behind the recorder's: no latency, so no delays, and the report says why
    apart = record(tmp_path / "apart", HIDDEN, 0, clock_offset_ns=5_000_000_000, extra=frames(5.08))
    rep = calibrate(CalibrateConfig(bags=(str(apart),), out=str(tmp_path / "b"), budget=20), progress=False)
    assert rep["latency_s"] is None and rep["camera_latency_s"] is None
    assert len(rep["latency_notes"]) == 2 and all("clock difference" in n for n in rep["latency_notes"])
    names = space_from(str(tmp_path / "b" / "calibrated.yaml")).names
    assert "obs_delay" not in names and "image_delay" not in names
