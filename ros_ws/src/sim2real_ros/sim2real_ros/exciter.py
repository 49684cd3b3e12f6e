"""The node behind `sim2real excite`: a multisine excitation of the arm for calibration,
sent on the policy node's command topic through the policy node's safety gate (sim2real_ros.exciter_core).

Node `exciter`: subscribes to `joint_states` (sensor QoS, arm joints looked up by name), publishes
`joint_trajectory_controller/joint_trajectory` (one point per tick, zero final velocity, time_from_start one period)
or `forward_position_controller/commands` (reliable, depth 10), both relative so `--namespace` moves them. It waits
for fresh joint_states and a subscriber on the command topic, takes the measured pose as the start pose, commands it
for a lead-in, streams the excitation at 25 Hz, commands the start pose again to settle, and exits 0 with a summary.
Stale joint_states (older than the policy node's joint_state_timeout_s, steady clock), bad ones (NaN, a missing arm
joint, a zero or old stamp, outside the limits) or a halt of the gate: it publishes the last measured position as
a hold and exits 1 with the reason. SIGINT/SIGTERM: the same hold, exit 130/143 (rclpy's own handlers are off so
the hold can still be published, ROS.md 0.5).
"""

from __future__ import annotations

import threading
import time
import xml.etree.ElementTree as ET
from typing import Any

import numpy as np
import rclpy
from builtin_interfaces.msg import Duration
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from sim2real_ros.controller_config import COMMAND_TOPICS, FORWARD_POSITION
from sim2real_ros.exciter_core import (
    ExciteError,
    ExciteOptions,
    ExciterCore,
    ExciteSummary,
)
from sim2real_ros.stop_signals import stop_on_signals

#: After a hold, how long the node keeps spinning so the reliable hold reaches the controller.
HOLD_FLUSH_S = 0.2


def _stamp_s(stamp: Any) -> float:
    return float(stamp.sec) + 1e-9 * float(stamp.nanosec)


def arm_description(urdf: str = "") -> tuple[list[str], np.ndarray]:
    """The arm's joint names and limits (7, 2) from a URDF: `urdf`, or the Panda's that pybullet ships. ValueError
    naming the file when it cannot be read, or what to pass on a robot PC without pybullet."""
    from sim.robot import panda, parse_urdf

    if urdf:
        try:
            robot = parse_urdf(urdf)
        except (OSError, ET.ParseError, ValueError) as e:
            raise ValueError(f"--urdf {urdf}: {e}") from None
    else:
        try:
            robot = panda()
        except ImportError:
            raise ValueError("no Panda description here (pybullet_data comes with the sim extra): pass --urdf PATH, "
                             "the arm's URDF") from None  # fmt: skip
    if len(robot.arm_joint_names) != 7:
        raise ValueError(f"--urdf {urdf}: {len(robot.arm_joint_names)} revolute arm joints, the Panda's 7 expected")
    return list(robot.arm_joint_names), np.asarray(robot.arm_limits_rad, float)


class ExciterNode(Node):
    """Moves joint_states into an ExciterCore and its commands out; the loop is in `run`."""

    def __init__(self, options: ExciteOptions, core: ExciterCore, context: Any = None) -> None:
        super().__init__("exciter", namespace=options.namespace or None, context=context)
        self.core, self.interface = core, options.controller
        self.create_subscription(JointState, "joint_states", self._on_joint_state, qos_profile_sensor_data)
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        msg_type = Float64MultiArray if self.interface == FORWARD_POSITION else JointTrajectory
        self.command_pub = self.create_publisher(msg_type, COMMAND_TOPICS[self.interface], reliable)

    def _on_joint_state(self, msg: JointState) -> None:
        reason = self.core.on_joint_state(
            msg.name, msg.position, msg.velocity, _stamp_s(msg.header.stamp),
            self.get_clock().now().nanoseconds * 1e-9, time.monotonic(),
        )  # fmt: skip
        if reason is not None and self.core.fault == reason:
            self.get_logger().error(reason, once=True)

    def publish(self, command_rad: np.ndarray | None) -> bool:
        if command_rad is None:
            return False
        values = [float(x) for x in command_rad]
        if self.interface == FORWARD_POSITION:
            self.command_pub.publish(Float64MultiArray(data=values))
        else:
            t = self.core.period_s
            point = JointTrajectoryPoint(
                positions=values, velocities=[0.0] * len(values), time_from_start=Duration(nanosec=int(t * 1e9))
            )
            self.command_pub.publish(JointTrajectory(joint_names=list(self.core.joint_names), points=[point]))
        self.core.summary.sent += 1
        return True


def _spin_until(executor: SingleThreadedExecutor, until_s: float, stop: threading.Event) -> None:
    while not stop.is_set():
        remaining = until_s - time.monotonic()
        if remaining <= 0:
            return
        executor.spin_once(timeout_sec=min(remaining, 0.01))


def _excite(node: ExciterNode, executor: SingleThreadedExecutor, options: ExciteOptions, stop: threading.Event) -> str:
    """Wait, plan and stream; returns '' when done, else why it stopped (the caller holds)."""
    core = node.core
    deadline = time.monotonic() + options.startup_timeout_s
    while True:
        _spin_until(executor, time.monotonic() + 0.02, stop)
        if stop.is_set():
            return "stopped"
        if core.fault is not None:
            return core.fault
        waiting = core.stale(time.monotonic())
        if waiting is None and node.command_pub.get_subscription_count() == 0:
            waiting = f"nothing subscribes to {node.command_pub.topic_name} (controller not running, or QoS mismatch)"
        if waiting is None:
            break
        if time.monotonic() > deadline:
            return f"{waiting} within --startup-timeout-s {options.startup_timeout_s:g} s"
    ex = core.start(options)
    node.get_logger().info(
        f"exciting {len(core.joint_names)} joints for {ex.t_s[-1]:.1f} s on {node.command_pub.topic_name}: "
        f"amplitudes {np.round(ex.amplitude_rad, 3).tolist()} rad, planned peak {ex.peak_velocity_rad_s:.3f} rad/s"
    )
    start_s = next_s = time.monotonic()
    while not core.done:
        _spin_until(executor, next_s, stop)
        if stop.is_set():
            return "stopped"
        command, fault = core.tick(time.monotonic())
        if fault is not None:
            return fault
        node.publish(command)
        core.summary.duration_s = time.monotonic() - start_s
        next_s = max(next_s + core.period_s, time.monotonic() - core.period_s)  # late: no burst to catch up
    _spin_until(executor, time.monotonic() + 2 * core.period_s, stop)  # the newest joint_states for the error
    core.summary.final_error_rad = core.final_error_rad()
    return ""


def run(options: ExciteOptions, argv: list[str] | None = None) -> ExciteSummary:
    """Run the excitation (SIGINT/SIGTERM handled when on the main thread); the summary, whose outcome says how it
    ended. ExciteError before anything is sent (a bad ROS argument or namespace, an unsafe start pose)."""
    stop = threading.Event()
    with stop_on_signals(stop) as stopped_by:
        return _run(options, argv, stop, stopped_by)


def _run(options: ExciteOptions, argv: list[str] | None, stop: threading.Event, stopped_by: list[str]) -> ExciteSummary:
    """run() with the signals already turned into `stop` (their names in `stopped_by`)."""
    try:
        names, limits = arm_description(options.urdf)
    except ValueError as e:
        raise ExciteError(str(e)) from None
    core = ExciterCore(names, limits, options.core_settings())
    context = rclpy.Context()
    try:
        try:
            rclpy.init(args=argv, context=context, signal_handler_options=SignalHandlerOptions.NO)
            node = ExciterNode(options, core, context)
        except Exception as e:  # a bad ROS argument or namespace
            raise ExciteError(str(e).splitlines()[0] if str(e) else type(e).__name__) from None
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        core.summary.topic = node.command_pub.topic_name
        reason = _excite(node, executor, options, stop)
        summary = core.summary
        if reason:
            summary.outcome = stopped_by[0] if stopped_by else "fault"
            summary.reason = f"stopped by {stopped_by[0]}" if stopped_by else reason
            if node.publish(core.hold_command()):
                flush = threading.Event()
                _spin_until(executor, time.monotonic() + HOLD_FLUSH_S, flush)
        else:
            summary.outcome = "done"
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        return summary
    finally:
        rclpy.try_shutdown(context=context)
