"""Test harness for real DDS: the console scripts started as subprocesses, a stand-in robot driver, and the probe
node from sim2real_ros.probe (rclpy lives in ros_ws only; these tests skip without the [ros] extra)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from sim2real.child_processes import interrupt

_probe = pytest.importorskip("sim2real_ros.probe", reason="needs the [ros] extra (ros-kilted-rclpy)")
Probe, probe = _probe.Probe, _probe.probe

BIN = Path(sys.executable).parent


def wait_for(predicate: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """Poll until predicate() is truthy; fail the test naming `what` on timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


@contextmanager
def console_script(
    name: str, *args: str, ros_args: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[str]]:
    """Start one of our console scripts (`BIN/name`) with the test's DDS isolation (and `env` on top of it);
    SIGINT, then kill, at exit."""
    cmd = [str(BIN / name), *args] + (["--ros-args", *ros_args] if ros_args else [])
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})}
    )
    try:
        yield proc
    finally:
        interrupt(proc, 8.0)


def output_of(proc: subprocess.Popen[str]) -> str:
    """Everything a finished process printed (stdout and stderr)."""
    assert proc.stdout is not None
    return proc.stdout.read()


ARM_JOINTS = [f"panda_joint{i}" for i in range(1, 8)]
ALL_JOINTS = ARM_JOINTS + ["panda_finger_joint1", "panda_finger_joint2"]
NEUTRAL_Q = [0.0, 0.41, 0.0, -1.85, 0.0, 2.26, 0.79]


class FakeArm:
    """A stand-in robot driver on a Probe: publishes joint_states at `rate_hz` (positions `q`, stamped now) and
    collects what arrives on the JTC (or FCC) command topic, as a ros2_control controller subscribes to it."""

    def __init__(
        self,
        probe: Probe,
        ns: str = "",
        rate_hz: float = 50.0,
        best_effort: bool = False,
        fcc: bool = False,
        stamp: Callable[[], Any] | None = None,
    ):
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray
        from trajectory_msgs.msg import JointTrajectory

        self.probe, self.q, self.publishing = probe, list(NEUTRAL_Q), True
        self.stamp = stamp or (lambda: probe.node.get_clock().now().to_msg())  # header stamps (sim time if given)
        self.pub = probe.publisher(JointState, f"{ns}/joint_states", "best_effort" if best_effort else "reliable")
        topic = (
            f"{ns}/forward_position_controller/commands"
            if fcc
            else f"{ns}/joint_trajectory_controller/joint_trajectory"
        )
        self.commands = probe.collect(Float64MultiArray if fcc else JointTrajectory, topic)
        self._msg_type = JointState
        probe.node.create_timer(1.0 / rate_hz, self._publish)

    def _publish(self) -> None:
        if not self.publishing:
            return
        msg = self._msg_type(name=ALL_JOINTS, position=[*self.q, 0.0, 0.0], velocity=[0.0] * 9)
        msg.header.stamp = self.stamp()
        self.pub.publish(msg)

    def send_goal(self, xyz_base_m: tuple[float, float, float], ns: str = "", frame: str = "panda_link0") -> None:
        from geometry_msgs.msg import PoseStamped

        if not hasattr(self, "_goal_pub"):
            self._goal_pub = self.probe.node.create_publisher(PoseStamped, f"{ns}/goal_pose", 1)
        msg = PoseStamped()
        msg.header.frame_id = frame
        msg.header.stamp = self.stamp()
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = xyz_base_m
        msg.pose.orientation.w = 1.0
        wait_for(lambda: self._goal_pub.get_subscription_count() > 0, 10, "a goal_pose subscriber")
        self._goal_pub.publish(msg)


def change_state(probe: Probe, node: str, transition: str) -> bool:
    return bool(probe.change_state(node, transition))


def lifecycle_state(probe: Probe, node: str) -> str:
    return str(probe.lifecycle_state(node))
