"""`sim2real deploy` end to end: the launch runner starts sim2real-sim-arm and sim2real-policy-node in their own
processes, the goal client drives episodes over DDS (halt, reset, goal, resume), and bad input is refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sim2real.deploy import DeployError, launch_arguments, run_goals

pytestmark = pytest.mark.ros


def test_a_rehearsal_runs_goal_episodes_over_ros(reach_bundle: Path, tmp_path: Path) -> None:
    pytest.importorskip("sim2real_ros.probe", reason="needs the [ros] extra")
    seen = []
    result = run_goals(reach_bundle, 2, backend="pybullet", log_path=tmp_path / "deploy.log", on_episode=seen.append)
    assert len(result["episodes"]) == len(seen) == 2 and 0.0 <= result["success"] <= 1.0
    for ep in result["episodes"]:  # an untrained policy: it may or may not reach, but it ran and was measured
        assert len(ep["goal_base_m"]) == 3 and ep["final_distance_m"] < 1.0
    assert int(result["timing"]["published_ticks"]) > 50 and result["timing"]["tick_compute_ms_p99"]
    assert result["launch_exit_code"] == 0  # both nodes stopped cleanly on the runner's SIGINT
    log = (tmp_path / "deploy.log").read_text()
    assert "[sim2real-sim-arm-1]" in log and "[sim2real-policy-node-2]" in log and "final hold" in log


@pytest.mark.parametrize("layout", ["arm_only", "split"])
def test_a_driver_that_publishes_the_arm_alone_or_the_gripper_apart_is_deployed_to(
    reach_bundle: Path, tmp_path: Path, layout: str
) -> None:
    """issue 16.1: franka_ros2 publishes the seven arm joints only (the gripper on its own topic, or nowhere); the
    node merges by name and a blocked-gripper policy observes its trained finger width."""
    pytest.importorskip("sim2real_ros.probe", reason="needs the [ros] extra")
    log_path = tmp_path / "deploy.log"
    result = run_goals(reach_bundle, 1, backend="mujoco", log_path=log_path, joint_states_layout=layout)
    assert int(result["timing"]["published_ticks"]) > 20  # it activated and acted
    log = log_path.read_text()
    assert "activation refused" not in log
    assert ("observes the trained finger width" in log) == (layout == "arm_only")


def test_bad_deploy_input_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DeployError, match="not a policy bundle"):
        launch_arguments(tmp_path, sim=True)
    cli = [sys.executable, "-m", "sim2real.cli"]
    r = subprocess.run([*cli, "deploy", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "not a policy bundle" in r.stderr
    r = subprocess.run([*cli, "bench", "deploy"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--bundle" in r.stderr


def test_deploy_print_shows_the_processes(reach_bundle: Path) -> None:
    cmd = [sys.executable, "-m", "sim2real.cli", "deploy", str(reach_bundle), "--sim", "--print"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = r.stdout + r.stderr
    assert "sim2real-sim-arm --ros-args" in out and "sim2real-policy-node --ros-args" in out
