"""The policy node: a ROS 2 lifecycle node that feeds camera, joint and goal messages to a PolicyCore and publishes
its joint commands to ros2_control (JointTrajectory or Float64MultiArray), with halt/resume and /diagnostics.

configure = load and verify the bundle, open the topics; activate = fresh inputs, matching contracts (joints,
limits, control rate, camera), a matched command subscriber and a running clock, then a steady-clock control timer;
deactivate = one hold command; SIGINT/SIGTERM = one final hold, then exit 0 (ROS.md sections 1.7, 2.8).
"""

from __future__ import annotations

import functools
import gc
import signal
import threading
import time
from typing import Any

import numpy as np
import rclpy
from builtin_interfaces.msg import Duration
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from policies.bundle import BundleError, load_bundle
from sim2real_ros.controller_config import (
    COMMAND_INTERFACES,
    COMMAND_TOPICS,
    FORWARD_POSITION,
    GRIPPER_TOPIC,
    JOINT_TRAJECTORY,
)
from sim2real_ros.parameters import ParamSpec, declare_parameters
from sim2real_ros.policy_core import CoreSettings, PolicyCore

NODE_NAME = "policy_node"
#: JointState topics merged by joint name (remap either): the arm driver's, and a gripper's own when it has one.
JOINT_STATE_TOPICS = ("joint_states", "gripper/joint_states")


def _core(name: str, description: str, read_only: bool = True, range: tuple[float, float] | None = None) -> ParamSpec:
    """A safety parameter: one per CoreSettings field, whose default it takes."""
    return ParamSpec(name, getattr(CoreSettings(), name), description, read_only, range)


#: The node's own parameters.
NODE_PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec("bundle", "", "policy bundle folder (policy.onnx + manifest.json)"),
    ParamSpec("command_interface", JOINT_TRAJECTORY, f"{JOINT_TRAJECTORY} (JTC) or {FORWARD_POSITION} (FCC)"),
    ParamSpec(
        "control_rate_hz", 0.0, "control rate; 0 = the bundle's; anything else must equal it", range=(0.0, 1000.0)
    ),
    ParamSpec("trajectory_time_from_start_s", 0.0, "JTC point time_from_start; 0 = one period", range=(0.0, 1.0)),
    ParamSpec("trigger", "timer", "timer: act every control period; image: act on each new image (pixel policies)"),
    ParamSpec("autostart", False, "configure and activate by itself (retrying activation at 2 Hz)"),
    ParamSpec("require_command_subscriber", True, "refuse to activate until the controller subscribes"),
    ParamSpec(
        "gripper_in_trajectory",
        False,
        "policies that command the gripper, joint_trajectory interface: the finger joints go in the JointTrajectory "
        "(the controller owns them); false: the finger width on gripper_controller/commands",
    ),
)
#: The safety parameters, passed to PolicyCore as its CoreSettings.
CORE_PARAMETERS: tuple[ParamSpec, ...] = (
    _core("joint_state_timeout_s", "hold when joint_states are older (steady clock)", range=(0.001, 10.0)),
    _core("image_timeout_s", "hold when images are older (pixel policies)", range=(0.001, 10.0)),
    _core("goal_timeout_s", "hold when the goal is older; 0 = never", range=(0.0, 3600.0)),
    _core("max_stamp_age_s", "refuse messages whose header.stamp lags the clock more", range=(0.001, 60.0)),
    _core("halt_after_stale_s", "a stale-input hold this long latches a halt", range=(0.0, 60.0)),
    _core("fresh_inputs_to_resume", "fresh messages needed to act again after a stale hold", range=(1, 100)),
    _core("position_margin_rad", "commands keep this far inside the joint limits", range=(0.0, 0.5)),
    _core("max_joint_velocity_rad_s", "largest joint speed a command may ask for", range=(0.001, 10.0)),
    _core(
        "velocity_scale",
        "scales max_joint_velocity_rad_s; may only decrease while active",
        read_only=False,
        range=(0.0, 1.0),
    ),
    _core("max_consecutive_invalid", "invalid policy outputs in a row before a latched halt", range=(1, 1000)),
    _core("max_inference_s", "a slower inference is not applied; 0 = one control period", range=(0.0, 1.0)),
    _core("object_pose_timeout_s", "object tasks: hold when object_pose is older (steady clock)", range=(0.001, 10.0)),
    _core(
        "object_region_tolerance_m",
        "object tasks: refuse object poses this far off the trained region",
        range=(0.0, 1.0),
    ),  # fmt: skip
    _core(
        "max_finger_velocity_m_s", "gripper policies: largest finger speed a command may ask for", range=(0.001, 1.0)
    ),  # fmt: skip
    _core("max_object_speed_m_s", "object tasks: faster object_pose motion is a jump (refused)", range=(0.01, 10.0)),
)
PARAMETERS: tuple[ParamSpec, ...] = NODE_PARAMETERS + CORE_PARAMETERS


class RingBuffer:
    """The last `n` rows of `width` numbers, preallocated: timing statistics that never grow the node's memory."""

    def __init__(self, n: int, width: int) -> None:
        self.rows = np.full((n, width), np.nan)
        self.count = 0

    def add(self, row: tuple[float, ...]) -> None:
        self.rows[self.count % len(self.rows)] = row
        self.count += 1

    def values(self) -> np.ndarray:
        """The stored rows (oldest order not kept): (min(count, n), width)."""
        return self.rows[: min(self.count, len(self.rows))]


class PolicyNode(LifecycleNode):
    """Lifecycle policy node; all decisions are PolicyCore's, this class moves messages."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        declare_parameters(self, PARAMETERS)
        self.add_on_set_parameters_callback(self._check_parameters)
        self.lock = threading.Lock()
        self.core: PolicyCore | None = None
        self.steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.control_group = MutuallyExclusiveCallbackGroup()
        self.input_group = MutuallyExclusiveCallbackGroup()
        self.control_timer: Any = None
        self.command_pub: Any = None
        self.gripper_pub: Any = None
        self.fingers_in_trajectory = False
        self.interface = ""
        self.trigger = "timer"
        self.point_time_s = 0.0
        self.handles: list[Any] = []
        self.last_ros_s = 0.0
        #: per published tick, seconds: tick start -> publish done; newest input's arrival -> publish done; the
        #: image's arrival -> publish done (NaN for state policies)
        self.timing = RingBuffer(30_000, 3)
        #: per accepted image, seconds: the callback's conversion and checks
        self.image_cost = RingBuffer(30_000, 1)
        self.last_tick_s = 0.0
        self.missed_ticks = 0
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(1.0, self._publish_diagnostics, clock=self.steady)
        self.create_service(Trigger, "~/halt", self._on_halt)
        self.create_service(Trigger, "~/resume", self._on_resume)
        if self.get_parameter("autostart").value:
            self.create_timer(0.5, self._autostart, clock=self.steady)

    # -- parameters ----------------------------------------------------------------------------
    def _check_parameters(self, params: list[Any]) -> SetParametersResult:
        for p in params:
            if p.name == "velocity_scale":
                if not p.value > 0.0:
                    return SetParametersResult(successful=False, reason="velocity_scale must be > 0")
                current = float(self.get_parameter("velocity_scale").value)
                if self.core is not None and self.core.active and p.value > current:
                    return SetParametersResult(
                        successful=False, reason="velocity_scale may only decrease while active (deactivate first)"
                    )
                if self.core is not None:
                    with self.lock:
                        self.core.gate.set_max_velocity(self.core.max_velocity(float(p.value)))
        return SetParametersResult(successful=True)

    def _settings(self) -> CoreSettings:
        return CoreSettings(**{p.name: self.get_parameter(p.name).value for p in CORE_PARAMETERS})

    # -- clocks --------------------------------------------------------------------------------
    def _now(self) -> tuple[float, float]:
        return self.get_clock().now().nanoseconds * 1e-9, time.monotonic()

    # -- lifecycle -----------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        path = str(self.get_parameter("bundle").value)
        self.interface = str(self.get_parameter("command_interface").value)
        self.trigger = str(self.get_parameter("trigger").value)
        if self.trigger not in ("timer", "image"):
            self.get_logger().error(f"trigger {self.trigger!r} is not timer or image")
            return TransitionCallbackReturn.FAILURE
        if self.interface not in COMMAND_INTERFACES:
            self.get_logger().error(f"command_interface {self.interface!r} is not one of {list(COMMAND_INTERFACES)}")
            return TransitionCallbackReturn.FAILURE
        try:
            if not path:
                raise BundleError("parameter 'bundle' is empty: pass -p bundle:=<bundle folder>")
            self.core = PolicyCore(load_bundle(path), self._settings())
            if self.trigger == "image" and not self.core.image_inputs:
                raise BundleError(f"trigger 'image' needs a pixel policy; {path} observes no camera")
        except (BundleError, OSError, ValueError) as e:
            self.get_logger().error(f"configure failed: {e}")
            self.core = None
            return TransitionCallbackReturn.FAILURE
        sensor, group, goal_qos = qos_profile_sensor_data, self.input_group, QoSProfile(depth=1)
        self.handles = [
            self.create_subscription(
                JointState, topic, functools.partial(self._on_joint_state, topic), sensor, callback_group=group
            )
            for topic in JOINT_STATE_TOPICS  # merged by joint name: the arm's driver and the gripper's
        ] + [self.create_subscription(PoseStamped, "goal_pose", self._on_goal, goal_qos, callback_group=group)]
        if self.core.has_object:  # the tracker's poses (sim2real-object-tracker), latest only
            self.handles.append(
                self.create_subscription(PoseStamped, "object_pose", self._on_object_pose, sensor, callback_group=group)
            )
        if self.core.image_inputs:
            self.handles += [
                self.create_subscription(Image, "camera/image_raw", self._on_image, sensor, callback_group=group),
                self.create_subscription(CameraInfo, "camera/camera_info", self._on_info, sensor, callback_group=group),
            ]
        self.point_time_s = float(self.get_parameter("trajectory_time_from_start_s").value) or self.core.period_s
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        msg_type = JointTrajectory if self.interface == JOINT_TRAJECTORY else Float64MultiArray
        self.command_pub = self.create_lifecycle_publisher(msg_type, COMMAND_TOPICS[self.interface], reliable)
        self.fingers_in_trajectory = bool(self.get_parameter("gripper_in_trajectory").value)
        if self.fingers_in_trajectory and self.interface != JOINT_TRAJECTORY:
            self.get_logger().error("gripper_in_trajectory needs command_interface joint_trajectory")
            return TransitionCallbackReturn.FAILURE
        self.gripper_pub = (  # a forward command controller on the gripper: finger width (m)
            self.create_lifecycle_publisher(Float64MultiArray, GRIPPER_TOPIC, reliable)
            if self.core.gripper is not None and not self.fingers_in_trajectory
            else None
        )
        m = self.core.bundle.manifest
        self.get_logger().info(
            f"configured: bundle {self.core.bundle.path} ({m.policy.agent} {m.env.task}, "
            f"sha256 {m.onnx_sha256[:12]}), {1 / self.core.period_s:g} Hz -> {self.command_pub.topic_name}"
            + (f" and {self.gripper_pub.topic_name}" if self.gripper_pub is not None else "")
        )
        return TransitionCallbackReturn.SUCCESS

    def _activation_problem(self) -> str | None:
        assert self.core is not None
        rate = float(self.get_parameter("control_rate_hz").value)
        if rate and abs(rate - 1.0 / self.core.period_s) > 1e-6:
            return f"control_rate_hz {rate:g} differs from the bundle's {1.0 / self.core.period_s:g} Hz"
        ros_s, steady_s = self._now()
        if ros_s <= 0.0:
            return "the ROS clock reads zero (use_sim_time without /clock?)"
        if self.get_parameter("require_command_subscriber").value:
            for pub in (self.command_pub, self.gripper_pub):
                if pub is not None and pub.get_subscription_count() < 1:
                    return f"nothing subscribes to {pub.topic_name} (controller not running, or QoS mismatch)"
        with self.lock:
            return self.core.activate(steady_s)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self.core is None:
            return TransitionCallbackReturn.FAILURE
        problem = self._activation_problem()
        if problem is not None:
            self.get_logger().error(f"activation refused: {problem}")
            return TransitionCallbackReturn.FAILURE
        # Move everything alive now (the bundle, onnxruntime, rclpy) out of the collector's reach, so a full
        # collection during control does not walk it: the long-lived heap is what makes gen-2 pauses long.
        gc.collect()
        gc.freeze()
        self.control_timer = self.create_timer(
            self.core.period_s, self._on_timer, callback_group=self.control_group, clock=self.steady
        )
        for note in self.core.notices:
            self.get_logger().info(note)
        self.core.notices.clear()
        self.get_logger().info("active: acting on the policy")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_control()
        if self.core is not None:
            with self.lock:
                hold = self.core.deactivate()
            self._publish(hold)
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        for h in self.handles:
            self.destroy_subscription(h)
        self.handles = []
        for pub in (self.command_pub, self.gripper_pub):
            if pub is not None:
                self.destroy_lifecycle_publisher(pub)
        self.command_pub = self.gripper_pub = None
        self.core = None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.final_hold()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_control()
        if self.core is not None:
            with self.lock:
                hold = self.core.halt("lifecycle error")
            self._publish(hold)
        return TransitionCallbackReturn.SUCCESS

    def _autostart(self) -> None:
        label = self._state_machine.current_state[1]
        if label == "unconfigured":
            self.trigger_configure()
        elif label == "inactive":
            self.trigger_activate()

    def _stop_control(self) -> None:
        if self.control_timer is not None:
            self.destroy_timer(self.control_timer)
            self.control_timer = None

    def final_hold(self) -> bool:
        """On the way out (SIGINT/SIGTERM/shutdown): one hold command if the node was acting; True if sent."""
        self._stop_control()
        if self.core is None or not self.core.active:
            return False
        with self.lock:
            hold = self.core.deactivate()
        self._publish(hold)
        return hold is not None

    # -- inputs ----------------------------------------------------------------------------------
    def _on_joint_state(self, topic: str, msg: JointState) -> None:
        ros_s, steady_s = self._now()
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        assert self.core is not None
        with self.lock:
            why = self.core.on_joint_state(msg.name, msg.position, msg.velocity, stamp, ros_s, steady_s, topic)
        if why:
            self.get_logger().warning(f"{topic} refused: {why}", throttle_duration_sec=2.0)

    def _on_image(self, msg: Image) -> None:
        started = time.perf_counter()
        ros_s, steady_s = self._now()
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        assert self.core is not None
        with self.lock:
            why = self.core.on_image(
                msg.height, msg.width, msg.encoding, msg.step, msg.data, msg.header.frame_id, stamp, ros_s, steady_s
            )
        if why:
            self.get_logger().warning(f"image refused: {why}", throttle_duration_sec=2.0)
            return
        self.image_cost.add((time.perf_counter() - started,))
        # trigger=image: act now on this frame, at most at the control rate (a camera at the bundle's rate gives
        # exactly that rate; frames closer than 3/4 of a period to the last tick wait for the next one)
        due = steady_s - self.last_tick_s >= 0.75 * self.core.period_s
        if self.trigger == "image" and self.control_timer is not None and due:
            self._control_tick()

    def _on_info(self, msg: CameraInfo) -> None:
        assert self.core is not None
        with self.lock:
            why = self.core.on_camera_info(msg.width, msg.height, list(msg.k), msg.header.frame_id)
        if why:
            self.get_logger().error(why, throttle_duration_sec=2.0)

    def _on_goal(self, msg: PoseStamped) -> None:
        p, o = msg.pose.position, msg.pose.orientation
        assert self.core is not None
        with self.lock:
            why = self.core.on_goal(msg.header.frame_id, (p.x, p.y, p.z), (o.x, o.y, o.z, o.w), time.monotonic())
        if why:
            self.get_logger().warning(f"goal refused: {why}")

    def _on_object_pose(self, msg: PoseStamped) -> None:
        ros_s, steady_s = self._now()
        p, o = msg.pose.position, msg.pose.orientation
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        assert self.core is not None
        with self.lock:
            why = self.core.on_object_pose(msg.header.frame_id, (p.x, p.y, p.z), (o.x, o.y, o.z, o.w), stamp, ros_s,
                                           steady_s)  # fmt: skip
        if why:
            self.get_logger().warning(f"object_pose refused: {why}", throttle_duration_sec=2.0)

    # -- output ---------------------------------------------------------------------------------
    def _on_timer(self) -> None:
        """The control timer. With trigger=image it is only the watchdog: frames act, and the timer runs a tick
        (which holds) when inputs went stale or a halt is latched, so a stopped camera still holds on time."""
        if self.core is None:
            return
        if self.trigger == "image":
            with self.lock:
                fresh = self.core.inputs_ready(time.monotonic()) is None and not self.core.halted
            if fresh:
                return
        self._control_tick()

    def _control_tick(self) -> None:
        if self.core is None:
            return
        ros_s, steady_s = self._now()
        period = self.core.period_s
        if self.trigger == "timer" and self.last_tick_s and steady_s - self.last_tick_s > 1.5 * period:
            self.missed_ticks += round((steady_s - self.last_tick_s) / period) - 1
        self.last_tick_s = steady_s
        if ros_s < self.last_ros_s - 1e-3:  # the clock jumped back (bag replay, sim restart): stop trusting inputs
            self.get_logger().warning(f"ROS time jumped back {self.last_ros_s - ros_s:.3f} s: holding")
            with self.lock:
                self.core.joints_in.steady_s = -np.inf
        self.last_ros_s = ros_s
        with self.lock:
            tick = self.core.tick(steady_s)
        if tick.status == "hold":
            self.get_logger().warning(f"hold: {'; '.join(tick.reasons)}", throttle_duration_sec=1.0)
        self._publish(tick.command_rad)
        if tick.command_rad is not None:
            done = time.monotonic()
            image = done - self.core.image_in.steady_s if self.core.image_inputs else float("nan")
            newest = max(self.core.joints_in.steady_s, self.core.image_in.steady_s if self.core.image_inputs else 0.0)
            self.timing.add((done - steady_s, done - newest, image))

    def _publish(self, command_rad: np.ndarray | None) -> None:
        if command_rad is None or self.command_pub is None or self.core is None:
            return
        values = [float(x) for x in command_rad]
        names = list(self.core.joint_names)
        if self.core.gripper is not None:  # the last value is one finger's position
            finger = values.pop()
            if self.gripper_pub is not None:
                self.gripper_pub.publish(Float64MultiArray(data=[2.0 * finger]))
            elif self.fingers_in_trajectory:
                names += list(self.core.finger_names)
                values += [finger] * len(self.core.finger_names)
        if self.interface == FORWARD_POSITION:
            self.command_pub.publish(Float64MultiArray(data=values))
            return
        t = self.point_time_s
        point = JointTrajectoryPoint(
            positions=values,
            velocities=[0.0] * len(values),
            time_from_start=Duration(sec=int(t), nanosec=int(round((t % 1.0) * 1e9))),
        )
        self.command_pub.publish(JointTrajectory(joint_names=names, points=[point]))

    def _publish_diagnostics(self) -> None:
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        name = self.get_name()
        if self.core is None:
            state = self._state_machine.current_state[1]
            msg.status = [DiagnosticStatus(level=DiagnosticStatus.WARN, name=f"{name}: control", message=state)]
        else:
            with self.lock:
                statuses = self.core.diagnostics(time.monotonic())
            hardware = f"policy:{self.core.bundle.manifest.onnx_sha256[:12]}"
            statuses.append(self._timing_status())
            msg.status = [
                DiagnosticStatus(
                    level=bytes([level]),
                    name=f"{name}: {task}",
                    message=message,
                    hardware_id=hardware,
                    values=[KeyValue(key=k, value=v) for k, v in values.items()],
                )
                for task, level, message, values in statuses
            ]
        self.diag_pub.publish(msg)

    def _timing_status(self) -> tuple[str, int, str, dict[str, str]]:
        """Control-loop timing over the last 30k ticks: compute and input-to-publish percentiles, missed ticks."""
        values = {"published_ticks": str(self.timing.count), "missed_ticks": str(self.missed_ticks)}
        if self.timing.count:
            arr = self.timing.values() * 1e3
            labels = ["tick_compute_ms", "input_to_publish_ms"] + (
                ["image_to_publish_ms"] if self.image_cost.count else []
            )
            for i, label in enumerate(labels):
                p50, p99, worst = np.percentile(arr[:, i], [50, 99, 100])
                values.update(
                    {f"{label}_p50": f"{p50:.3f}", f"{label}_p99": f"{p99:.3f}", f"{label}_max": f"{worst:.3f}"}
                )
        if self.image_cost.count:
            for q, v in zip(("p50", "p99"), np.percentile(self.image_cost.values() * 1e3, [50, 99])):
                values[f"image_callback_ms_{q}"] = f"{v:.3f}"
        level = 1 if self.missed_ticks else 0
        return ("timing", level, f"{self.missed_ticks} missed ticks", values)

    # -- services ---------------------------------------------------------------------------------
    def _on_halt(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        if self.core is None:
            response.success, response.message = False, "not configured"
            return response
        with self.lock:
            hold = self.core.halt()
        self._publish(hold)
        response.success, response.message = True, "halted: holding; call ~/resume to act again"
        self.get_logger().warning("halt requested: holding")
        return response

    def _on_resume(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        if self.core is None:
            response.success, response.message = False, "not configured"
            return response
        with self.lock:
            why = self.core.resume(time.monotonic())
        response.success, response.message = why is None, why or "resumed"
        return response


def _spin(executor: Any) -> None:
    try:
        executor.spin()
    except Exception:  # shut down under it: the main thread is stopping the node
        return


def run(argv: list[str]) -> int:
    """Spin the node until SIGINT/SIGTERM, then publish a final hold and exit 0 (ROS.md 2.8)."""
    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    node = PolicyNode()
    # One thread: measured with the Kilted wheels on 2 cores, rclpy's MultiThreadedExecutor missed 49 of 250 control
    # ticks in 10 s (tick p99 21 ms, input-to-publish p99 161 ms); the single-threaded one missed none (p99 5.5 ms).
    # Staleness is judged at each tick from steady-clock arrival times, so a slow callback cannot hide stale inputs.
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=_spin, args=(executor,), daemon=True)
    spinner.start()
    try:
        while rclpy.ok() and spinner.is_alive() and not stop.wait(0.1):
            pass
        if node.final_hold():  # the context is still valid: the message goes out
            node.get_logger().info("final hold published")
            time.sleep(0.2)  # let DDS deliver it
    finally:
        executor.shutdown(timeout_sec=1.0)  # wakes and ends the spinning thread
        spinner.join(timeout=2.0)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
