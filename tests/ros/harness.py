"""Test harness for real rclpy over real DDS: an in-process probe node spun in a thread, and console scripts
started as subprocesses (launch_testing is not installable here; ROS.md section 1.14)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

rclpy = pytest.importorskip("rclpy", reason="needs the [ros] extra (ros-kilted-rclpy)")

from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402

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


class Probe:
    """A plain node in its own context, spun by a background executor; collects what it subscribes to."""

    def __init__(self, name: str = "probe") -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = Node(name, context=self.context)
        self.executor = MultiThreadedExecutor(num_threads=2, context=self.context)
        self.executor.add_node(self.node)
        self.received: dict[str, list[Any]] = {}
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        with contextlib.suppress(Exception):  # the context shut down under the executor: the probe is closing
            self.executor.spin()

    def collect(self, msg_type: Any, topic: str, qos: Any = 10) -> list[Any]:
        """Subscribe and keep every message in `received[topic]` (returned)."""
        box: list[Any] = self.received.setdefault(topic, [])
        self.node.create_subscription(msg_type, topic, box.append, qos)
        return box

    def call(self, srv_type: Any, name: str, request: Any = None, timeout_s: float = 10.0) -> Any:
        """Call a service and return its response."""
        client = self.node.create_client(srv_type, name)
        wait_for(lambda: client.wait_for_service(timeout_sec=0.1), timeout_s, f"service {name}")
        future = client.call_async(request if request is not None else srv_type.Request())
        wait_for(future.done, timeout_s, f"a response from {name}")
        return future.result()

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=1.0)  # ends the spin; join before tearing the node down under it
        self._thread.join(timeout=2.0)
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


@contextmanager
def probe(name: str = "probe") -> Iterator[Probe]:
    p = Probe(name)
    try:
        yield p
    finally:
        p.close()


@contextmanager
def console_script(name: str, *args: str, ros_args: tuple[str, ...] = ()) -> Iterator[subprocess.Popen[str]]:
    """Start one of our console scripts (`BIN/name`) with the test's DDS isolation; SIGINT, then kill, at exit."""
    cmd = [str(BIN / name), *args] + (["--ros-args", *ros_args] if ros_args else [])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ))
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=8)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


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
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray
        from trajectory_msgs.msg import JointTrajectory

        self.probe, self.q, self.publishing = probe, list(NEUTRAL_Q), True
        self.stamp = stamp or (lambda: probe.node.get_clock().now().to_msg())  # header stamps (sim time if given)
        reliability = ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE
        self.pub = probe.node.create_publisher(
            JointState, f"{ns}/joint_states", QoSProfile(depth=10, reliability=reliability)
        )
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
    """Ask a lifecycle node for a transition (configure, activate, deactivate, cleanup); True if it succeeded."""
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState

    ids = {"configure": Transition.TRANSITION_CONFIGURE, "activate": Transition.TRANSITION_ACTIVATE,
           "deactivate": Transition.TRANSITION_DEACTIVATE, "cleanup": Transition.TRANSITION_CLEANUP}  # fmt: skip
    req = ChangeState.Request()
    req.transition.id = ids[transition]
    return bool(probe.call(ChangeState, f"{node}/change_state", req).success)


def lifecycle_state(probe: Probe, node: str) -> str:
    from lifecycle_msgs.srv import GetState

    return str(probe.call(GetState, f"{node}/get_state").current_state.label)
