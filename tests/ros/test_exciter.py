"""`sim2real excite` over real DDS against the simulated arm in its own process: an excitation recorded by
`sim2real record` reads back (calibration.bags.read_bag) as an episode with commands and motion, the commands keep
the velocity cap and the arm ends at its start pose; when joint_states stop (the arm killed mid-run) the exciter
holds the last measured pose and exits 1 with the reason."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

harness = pytest.importorskip("tests.ros.harness")

CLI = [sys.executable, "-m", "sim2real.cli"]
ARM_JOINTS = harness.ARM_JOINTS
VMAX = 0.4


@contextmanager
def _sim_arm(ns: str, controller: str) -> Iterator[tuple[subprocess.Popen[str], Any, list[Any]]]:
    """The simulated arm (PyBullet, no camera) under `ns` and a probe collecting its joint_states."""
    from sensor_msgs.msg import JointState

    ros_args = ("-r", f"__ns:={ns}", "-p", "backend:=pybullet", "-p", f"command_interface:={controller}")
    with harness.console_script("sim2real-sim-arm", ros_args=ros_args) as proc, harness.probe(f"p{ns[1:]}") as p:
        js = p.collect(JointState, f"{ns}/joint_states")
        harness.wait_for(lambda: js or proc.poll() is not None, 60.0, "the sim arm's joint_states")
        assert proc.poll() is None, harness.output_of(proc)
        yield proc, p, js


def _arm_q(msg: Any) -> np.ndarray:
    index = {n: i for i, n in enumerate(msg.name)}
    return np.array([msg.position[index[j]] for j in ARM_JOINTS])


def _commands(bag: Path, topic: str) -> np.ndarray:
    """The commanded positions (K, 7) in the bag, in order (the first point of each JointTrajectory)."""
    from rosbags.highlevel import AnyReader

    rows = []
    with AnyReader([bag]) as reader:
        conns = [c for c in reader.connections if c.topic == topic]
        for connection, _, raw in reader.messages(connections=conns):
            msg: Any = reader.deserialize(raw, connection.msgtype)
            rows.append(np.asarray(msg.points[0].positions, float))
    return np.array(rows)


@pytest.mark.ros
def test_an_excitation_recorded_reads_back_as_an_episode_and_ends_at_the_start_pose(tmp_path: Path) -> None:
    from calibration.bags import read_bag

    ns, bag = "/exc", tmp_path / "bag"
    with _sim_arm(ns, "joint_trajectory") as (_, p, js):
        time.sleep(0.5)  # the arm settles after its start
        q0 = _arm_q(js[-1])
        rec = subprocess.Popen([*CLI, "record", "--out", str(bag), "--namespace", "exc", "--topics", "joint_states",
                                "joint_trajectory_controller/joint_trajectory"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
        try:
            subs = p.node.get_subscriptions_info_by_topic
            harness.wait_for(
                lambda: any(i.node_name == "recorder" for i in subs(f"{ns}/joint_states")) or rec.poll() is not None,
                30.0, "the recorder on joint_states",
            )  # fmt: skip
            done = subprocess.run(
                [*CLI, "excite", "--duration-s", "4", "--namespace", "exc", "--seed", "2",
                 "--max-velocity-rad-s", str(VMAX), "--amplitude-rad", "0.3", "--lead-in-s", "2",
                 "--joint-state-timeout-s", "1.0"],  # a loaded CI machine can pause the simulated arm 0.2 s
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert done.returncode == 0, done.stdout + done.stderr
            time.sleep(0.3)
            q_end = _arm_q(js[-1])
        finally:
            rec.send_signal(signal.SIGINT)
            rec.wait(timeout=15)
        assert rec.returncode == 0, harness.output_of(rec)
    summary = done.stdout
    assert summary.startswith("excited ") and "0 rejected by the safety gate" in summary, summary
    assert "back at the start pose within" in summary
    assert np.max(np.abs(q_end - q0)) < 0.02  # back at the start pose, at rest

    commands = _commands(bag, f"{ns}/joint_trajectory_controller/joint_trajectory")
    assert len(commands) >= 25 * (4 + 1)  # the motion and the settle at least (the lead-in covers discovery)
    np.testing.assert_allclose(commands[-1], q0, atol=1e-6)  # the last command is the start pose
    step = np.max(np.abs(np.diff(commands, axis=0)))
    assert step <= VMAX * 0.04 + 1e-9  # the velocity cap, command to command
    assert step > 0.5 * VMAX * 0.04  # and it was used

    report = read_bag(bag, ARM_JOINTS)
    assert report.skipped is None or report.skipped == "", report.skipped
    episode = max(report.episodes, key=lambda e: e.duration_s)
    assert episode.duration_s >= 3.5 and episode.command_topic.endswith("joint_trajectory")
    assert np.all(np.ptp(episode.q_cmd_rad, axis=0) > 0.05)  # every joint commanded to move...
    assert np.all(np.ptp(episode.q_rad, axis=0) > 0.03)  # ...and moving
    assert not any(f == "static" or f.startswith("unexcited") for f in episode.flags), episode.flags


@pytest.mark.ros
def test_when_joint_states_stop_the_exciter_holds_and_exits_1(tmp_path: Path) -> None:
    from std_msgs.msg import Float64MultiArray

    ns = "/exk"
    with _sim_arm(ns, "forward_position") as (arm, p, js):
        commands = p.collect(Float64MultiArray, f"{ns}/forward_position_controller/commands")
        argv = [*CLI, "excite", "--duration-s", "20", "--namespace", "exk", "--controller", "forward_position"]
        exc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            harness.wait_for(lambda: len(commands) > 50 or exc.poll() is not None, 40.0, "the excitation")
            assert exc.poll() is None, harness.output_of(exc)
            arm.kill()  # joint_states stop without a goodbye
            arm.wait()
            last = [_arm_q(m) for m in js[-3:]]  # the exciter's sensor-QoS subscription may miss the very last
            code = exc.wait(timeout=10)
        finally:
            if exc.poll() is None:
                exc.kill()
        out = harness.output_of(exc)
        assert code == 1, out
        (line,) = [ln for ln in out.splitlines() if ln.startswith("sim2real excite: fault: ")]
        assert "joint_states stale" in line and line.endswith("held at the measured pose"), line
        time.sleep(0.2)
        hold = np.asarray(commands[-1].data)
        assert min(np.max(np.abs(hold - q)) for q in last) < 1e-9  # the hold: the last measured pose
