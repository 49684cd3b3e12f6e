"""The node behind `sim2real-sim-arm` (sim2real_ros.sim_arm_node): a task's simulated scene as a ROS 2 robot, to
rehearse a deployment before the real arm.

The node `sim_arm` runs the physics of a sim2real env (MuJoCo or PyBullet, optionally with a randomization draw so
the simulated robot differs from the training nominal) in real time and speaks what a ros2_control robot speaks:

* publishes `joint_states` (sensor_msgs/JointState, all 9 movable joints: 7 arm joints then 2 fingers) at
  `joint_state_rate_hz`, as joint_state_broadcaster does (reliable, depth 10); `joint_states_layout` rehearses
  drivers that publish the arm alone (arm_only) or the fingers on `gripper/joint_states` (split);
* with `camera_rate_hz` > 0, publishes `camera/image_raw` (rgb8, row 0 at the top) and its sibling
  `camera/camera_info` (pinhole K of the camera as it is simulated, plumb_bob with zero distortion), frame
  `<camera_name>_optical_frame`, stamped at acquisition (reliable, depth 5, as drivers do);
* takes arm commands on exactly one topic, chosen by `command_interface`:
  `joint_trajectory_controller/joint_trajectory` (trajectory_msgs/JointTrajectory: refused as
  joint_trajectory_controller refuses it, plus non-finite values; accepted ones are followed from the current
  command by linear interpolation and their last point held; `cmd_timeout_s` after a trajectory's end the arm
  holds its measured position) or `forward_position_controller/commands` (std_msgs/Float64MultiArray: 7 values in
  arm joint order, held until the next one with NO timeout, as forward_command_controller does; wrong-length and
  non-finite messages are dropped). Targets are clamped to the joint limits. The fingers follow the
  JointTrajectory with `gripper_in_trajectory` (it then names the 7 arm joints and both fingers), else
  `gripper_controller/commands` (Float64MultiArray: one value, the finger width in m, held; a forward command
  controller on the gripper);
* for tasks with an object, `sim/object_pose` (geometry_msgs/PoseStamped, panda_link0) with the object's true pose
  at each joint-state tick: the ground truth a tracker is scored against, or a stand-in for one; with
  `object_marker` the object carries the ArUco marker `sim2real-object-tracker` looks for;
* service `~/reset` (std_srvs/Trigger): the arm back to the task's start pose (neutral; Push: gripper low), a fresh
  randomization draw, no trajectory;
* `/diagnostics` at 1 Hz: status `<node name>: robot` (hardware_id `sim:<backend>`) with the counters of commands
  received (refused ones included), refused, cmd_timeout holds and resets, and the rates reached;
* with `publish_clock`, `/clock` (rosgraph_msgs/Clock) with the simulated time, so other nodes can run with
  `use_sim_time:=true`.

Simulated time follows the wall (steady) clock: each joint-state tick simulates the physics steps due since the
last one, so a late tick (a slow camera frame holds the engine) catches up; more than MAX_LAG_S at once is skipped.
joint_states are stamped with the instant their state is of (the start plus the simulated time, skips included).
A command takes effect at the simulated time it arrived (the physics is brought up to that time first, so a command
never acts on time before it was received), or `command_delay_s` later.
Every callback runs on the main thread (a single-threaded executor): MuJoCo's EGL renderer is bound to the thread
that created it, and the engine cannot step while it renders anyway. A 640x480 frame costs about 30 ms with MuJoCo
and 180 ms with PyBullet's CPU renderer on a 2-core CPU; ticks due meanwhile are dropped. So that joint_states keep
flowing, the camera gets at most half the time: after a frame that took d seconds the next one waits at least d, and
the camera rate falls below camera_rate_hz where rendering is slow (diagnostics then WARN with the rate reached).
Env-level randomization (action delay, observation noise, control jitter) is not applied: only the engine's
physical properties are drawn. Run with `--help` for the parameters.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import rclpy
from builtin_interfaces.msg import Time as TimeMsg
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from rclpy.clock import Clock, ClockType
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile
from rclpy.signals import SignalHandlerOptions
from rclpy.time import Time
from rclpy.utilities import remove_ros_args
from rosgraph_msgs.msg import Clock as ClockMsg
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from sim.engines import BACKENDS
from sim.registration import TASKS
from sim2real_ros.arm_sim import (
    JointCommand,
    RealTimePacer,
    SimulatedArm,
    parse_forward_command,
    parse_gripper_command,
    parse_trajectory,
)
from sim2real_ros.controller_config import (
    COMMAND_INTERFACES,
    COMMAND_TOPICS,
    FORWARD_POSITION,
    GRIPPER_TOPIC,
    JOINT_TRAJECTORY,
)
from sim2real_ros.messages import MessageError
from sim2real_ros.parameters import ParamSpec, declare_parameters, parameters_help

#: Largest stretch of wall time simulated in one tick; beyond it the simulation falls behind for good.
MAX_LAG_S = 0.25
DIAGNOSTICS_PERIOD_S = 1.0


PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec("task", "reach", f"Scene to simulate: one of {sorted(TASKS)}"),
    ParamSpec("backend", "mujoco", "Physics engine: mujoco or pybullet"),
    ParamSpec(
        "randomization",
        "",
        "Randomization of the simulated robot: a preset name (e.g. dynamics), a YAML path, or '' (or none) for the "
        "nominal scene; drawn at start and at each ~/reset",
    ),
    ParamSpec("seed", 0, "Seed of the first randomization draw; each ~/reset uses the next one"),
    ParamSpec("joint_state_rate_hz", 100.0, "Physics tick and joint_states rate (Hz)", range=(1.0, 1000.0)),
    ParamSpec(
        "camera_name", "scene", "Simulated camera published on camera/image_raw: scene, wrist or front (the tracker's)"
    ),
    ParamSpec("camera_rate_hz", 0.0, "Camera frame rate (Hz); 0 publishes no camera", range=(0.0, 120.0)),
    ParamSpec("image_width", 640, "Camera image width (pixels)", range=(8, 4096)),
    ParamSpec("image_height", 480, "Camera image height (pixels)", range=(8, 4096)),
    ParamSpec("publish_clock", False, "Publish the simulated time on /clock (for use_sim_time:=true)"),
    ParamSpec(
        "cmd_timeout_s",
        0.5,
        "joint_trajectory_controller cmd_timeout (s): this long after a trajectory's last point the arm holds its "
        "measured position; 0 disables; no effect on forward_position (which never times out)",
        read_only=False,
        range=(0.0, 3600.0),
    ),
    ParamSpec(
        "command_delay_s",
        0.0,
        "Extra command latency (s) to rehearse a laggy arm: each command takes effect this long after it arrives",
        range=(0.0, 1.0),
    ),
    ParamSpec(
        "table_height_m", 0.0, "Table top height in the robot base frame (m, <= 0): the cell's", range=(-1.0, 0.0)
    ),
    ParamSpec(
        "start_joints",
        "",
        "Arm start pose (and ~/reset's): neutral, ready or 7 comma-separated angles in rad; empty: the task's",
    ),
    ParamSpec(
        "object_marker",
        False,
        "Object tasks: print the ArUco marker (sim.fiducials) on the object's top face, for sim2real-object-tracker",
    ),
    ParamSpec(
        "publish_object_pose",
        False,
        "Object tasks: also publish the true pose on object_pose (a rehearsal without a tracker)",
    ),
    ParamSpec(
        "joint_states_layout",
        "all",
        "What joint_states carries, to rehearse real drivers: all (7 arm joints then 2 fingers), arm_only (the 7 "
        "arm joints, as franka_ros2; no finger joints anywhere), split (arm on joint_states, fingers on "
        "gripper/joint_states)",
    ),
    ParamSpec(
        "gripper_in_trajectory",
        False,
        "The trajectory controller owns the fingers too (JointTrajectory names the 7 arm joints and the 2 fingers); "
        "false: the fingers take gripper_controller/commands (one value: the finger width, m)",
    ),
    ParamSpec(
        "command_interface",
        JOINT_TRAJECTORY,
        f"Command topic to subscribe: {JOINT_TRAJECTORY} ({COMMAND_TOPICS[JOINT_TRAJECTORY]}) or {FORWARD_POSITION} "
        f"({COMMAND_TOPICS[FORWARD_POSITION]})",
    ),
)


#: joint_states_layout values (see PARAMETERS).
JOINT_STATE_LAYOUTS = ("all", "arm_only", "split")
#: Arm joints first in joint_names; the fingers follow.
N_ARM = 7


def _stamp_s(stamp: Any) -> float:
    return float(stamp.sec) + 1e-9 * float(stamp.nanosec)


def _randomization_arg(value: str) -> str | None:
    """The randomization parameter as the env takes it: '' and 'none' mean the nominal scene."""
    return None if value.strip().lower() in ("", "none") else value


def _choice(name: str, value: str, allowed: Any) -> str:
    if value not in allowed:
        raise ValueError(f"parameter {name} must be one of {sorted(allowed)}, got {value!r}")
    return value


class SimArmNode(Node):
    """The simulated robot; see the module docstring. `close()` releases the engine."""

    def __init__(self, **node_kwargs: Any) -> None:
        super().__init__("sim_arm", **node_kwargs)
        cfg = declare_parameters(self, PARAMETERS)
        self.task = _choice("task", cfg["task"], TASKS)
        self.backend_name = _choice("backend", cfg["backend"], BACKENDS)
        self.command_interface = _choice("command_interface", cfg["command_interface"], COMMAND_INTERFACES)
        self.camera_name: str = cfg["camera_name"]
        self._next_seed = int(cfg["seed"])
        self._closed = False
        self.counters = {"commands_received": 0, "commands_rejected": 0, "gripper_commands": 0, "resets": 0}
        self._camera_rate_hz = float(cfg["camera_rate_hz"])
        self._camera_ready_at_s = 0.0  # monotonic time before which no frame is rendered (the half-time budget)
        self._window = {"joint_states": 0, "frames": 0}  # published since the last diagnostics
        self._window_start_s = time.monotonic()
        self._command_delay_s = float(cfg["command_delay_s"])
        self._pending: deque[tuple[float, Callable[[], None]]] = deque()  # (due wall time since start, apply)

        self.env = self._make_env(cfg)
        sim = self.env.unwrapped.sim
        self.joint_names: list[str] = [j.name for j in sim.robot.movable_joints]
        self.arm_joint_names: list[str] = list(sim.robot.arm_joint_names)
        self.gripper_in_trajectory = bool(cfg["gripper_in_trajectory"])
        if self.gripper_in_trajectory and self.command_interface != JOINT_TRAJECTORY:
            raise ValueError("gripper_in_trajectory needs command_interface joint_trajectory")
        #: The joints the trajectory (or forward) command names: the arm's, and the fingers when the JTC owns them.
        self.command_joint_names = self.joint_names if self.gripper_in_trajectory else self.arm_joint_names
        limits = sim.robot.arm_limits_rad
        if self.gripper_in_trajectory:
            limits = np.vstack([limits, [sim.robot.finger_limits_m] * (len(self.joint_names) - N_ARM)])
        command = JointCommand(np.zeros(len(self.command_joint_names)), limits, cfg["cmd_timeout_s"])
        period_s = 1.0 / cfg["joint_state_rate_hz"]
        tick_substeps = max(1, round(period_s / sim.scene.physics_dt_s))
        self.arm = SimulatedArm(sim, command, tick_substeps)
        self.arm.rehome()
        self.pacer = RealTimePacer(sim.scene.physics_dt_s, MAX_LAG_S)
        self._published_steps = -1  # physics steps behind the last joint_states (each state is published once)
        self._camera_info = self._make_camera_info(cfg["image_width"], cfg["image_height"])

        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._joint_pub = self.create_publisher(JointState, "joint_states", QoSProfile(depth=10))
        self.layout = _choice("joint_states_layout", cfg["joint_states_layout"], JOINT_STATE_LAYOUTS)
        self._gripper_pub = (
            self.create_publisher(JointState, "gripper/joint_states", QoSProfile(depth=10))
            if self.layout == "split"
            else None
        )
        self._clock_pub = (
            self.create_publisher(ClockMsg, "/clock", QoSProfile(depth=10)) if cfg["publish_clock"] else None
        )
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", QoSProfile(depth=10))
        self._truth_pubs = (  # the object's true pose, to score a tracker or stand in for it in a rehearsal
            [self.create_publisher(PoseStamped, t, QoSProfile(depth=10))
             for t in ("sim/object_pose", *(("object_pose",) if cfg["publish_object_pose"] else ()))]
            if sim.scene.objects else []
        )  # fmt: skip
        self._base_m = np.asarray(sim.scene.robot_base_pos_m, float)
        self._subscribe_commands()
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.add_post_set_parameters_callback(self._on_parameters_set)
        self._wall_start_s = time.monotonic()
        self._ros_start_ns = self.get_clock().now().nanoseconds  # the node's clock at the same instant
        self.create_timer(period_s, self._on_physics_tick, clock=steady)
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics, clock=steady)
        if cfg["camera_rate_hz"] > 0.0:
            self._image_pub = self.create_publisher(Image, "camera/image_raw", QoSProfile(depth=5))
            self._info_pub = self.create_publisher(CameraInfo, "camera/camera_info", QoSProfile(depth=5))
            self.create_timer(1.0 / cfg["camera_rate_hz"], self._on_camera_tick, clock=steady)
        randomization = _randomization_arg(cfg["randomization"]) or "none"
        self.get_logger().info(
            f"simulating {self.task} on {self.backend_name} (randomization {randomization}): "
            f"joint_states at {cfg['joint_state_rate_hz']:g} Hz, camera {self.camera_name} at "
            f"{cfg['camera_rate_hz']:g} Hz, commands on {COMMAND_TOPICS[self.command_interface]}"
        )

    # -- set-up --------------------------------------------------------------------------------------------
    def _make_env(self, cfg: dict[str, Any]) -> Any:
        from sim.env_spec import EnvSpec, make_env

        size = (int(cfg["image_width"]), int(cfg["image_height"]))
        spec = EnvSpec(task=self.task, backend=self.backend_name, table_height_m=float(cfg["table_height_m"]),
                       start_joints=str(cfg["start_joints"])).check()  # fmt: skip
        randomization = _randomization_arg(cfg["randomization"])  # the env draws uniformly from it at each reset
        extra = {"object_marker": True} if cfg["object_marker"] else {}
        env = make_env(spec, randomization, image_size=size, cameras=(self.camera_name,), **extra)
        env.reset(seed=self._next_seed)
        self._next_seed += 1
        return env

    def _make_camera_info(self, width: int, height: int) -> CameraInfo:
        """CameraInfo of the camera as simulated now (a randomized field of view included), stamp left empty."""
        from sim.camera import intrinsics

        name = f"camera_fovy:{self.camera_name}"
        fovy_deg = float(self.env.unwrapped.get_property(name)[name])
        k = intrinsics(fovy_deg, width, height)
        info = CameraInfo(width=width, height=height, distortion_model="plumb_bob")
        info.header.frame_id = f"{self.camera_name}_optical_frame"
        info.d = [0.0] * 5
        info.k = k.ravel().tolist()
        info.r = np.eye(3).ravel().tolist()
        info.p = np.hstack([k, np.zeros((3, 1))]).ravel().tolist()
        return info

    def _subscribe_commands(self) -> None:
        topic = COMMAND_TOPICS[self.command_interface]
        if self.command_interface == JOINT_TRAJECTORY:
            self.create_subscription(JointTrajectory, topic, self._on_trajectory, QoSProfile(depth=10))
        else:
            self.create_subscription(Float64MultiArray, topic, self._on_forward_command, QoSProfile(depth=10))
        if not self.gripper_in_trajectory:
            self.create_subscription(Float64MultiArray, GRIPPER_TOPIC, self._on_gripper_command, QoSProfile(depth=10))

    # -- callbacks -----------------------------------------------------------------------------------------
    def _on_physics_tick(self) -> None:
        if self._closed:
            return
        now_s = self._elapsed_s()
        while self._pending and self._pending[0][0] <= now_s:
            due_s, apply = self._pending.popleft()
            self._advance_to(due_s)
            apply()
        self._advance_to(now_s)
        steps = self.pacer.steps_done + self.pacer.steps_skipped
        if steps == self._published_steps:  # a tick right after the last (a slow frame's backlog): no new state
            return
        self._published_steps = steps
        q, qd = self.arm.backend.joint_state()
        sim_time_s = self.arm.sim_time_s
        n = len(self.joint_names) if self.layout == "all" else N_ARM
        msg = JointState(name=self.joint_names[:n], position=q[:n].tolist(), velocity=qd[:n].tolist())
        # stamped with the instant the state is of (as a driver stamps its read), not when stepping it ended
        state_s = steps * self.pacer.physics_dt_s
        # (never later than now: the pacer rounds to the nearest physics step, up to half a step ahead of the clock)
        stamp_ns = min(self._ros_start_ns + round(state_s * 1e9), self.get_clock().now().nanoseconds)
        msg.header.stamp = Time(nanoseconds=stamp_ns).to_msg()
        self._joint_pub.publish(msg)
        if self._gripper_pub is not None:
            fingers = JointState(name=self.joint_names[N_ARM:], position=q[N_ARM:].tolist(),
                                 velocity=qd[N_ARM:].tolist())  # fmt: skip
            fingers.header.stamp = msg.header.stamp
            self._gripper_pub.publish(fingers)
        self._window["joint_states"] += 1
        if self._truth_pubs:
            self._publish_truth(msg.header.stamp)
        if self._clock_pub is not None:
            self._clock_pub.publish(ClockMsg(clock=Time(nanoseconds=round(sim_time_s * 1e9)).to_msg()))

    def _publish_truth(self, stamp: TimeMsg) -> None:
        pos, quat = self.arm.backend.object_pose("object")
        pose = PoseStamped()
        pose.header.stamp, pose.header.frame_id = stamp, "panda_link0"
        p, o = pose.pose.position, pose.pose.orientation
        p.x, p.y, p.z = (float(v) for v in pos - self._base_m)
        o.w, o.x, o.y, o.z = (float(v) for v in quat)
        for pub in self._truth_pubs:
            pub.publish(pose)

    def _elapsed_s(self) -> float:
        return time.monotonic() - self._wall_start_s

    def _advance_to(self, elapsed_s: float) -> None:
        """Simulate up to `elapsed_s` of wall time since the start."""
        self.arm.advance(self.pacer.steps_due(elapsed_s))

    def _command(self, apply: Callable[[], None]) -> None:
        """Apply a parsed command at its arrival time plus command_delay_s (now, or at the tick after it is due)."""
        now_s = self._elapsed_s()
        if self._command_delay_s > 0.0:
            self._pending.append((now_s + self._command_delay_s, apply))
            return
        self._advance_to(now_s)
        apply()

    def _on_camera_tick(self) -> None:
        start_s = time.monotonic()
        if self._closed or start_s < self._camera_ready_at_s:
            return
        stamp = self.get_clock().now().to_msg()  # acquisition time: the state rendered is the one at this instant
        rgb = self.arm.backend.render(self.camera_name)
        end_s = time.monotonic()
        self._camera_ready_at_s = end_s + (end_s - start_s)
        self._publish_image(np.asarray(rgb), stamp, self._camera_info)
        self._window["frames"] += 1

    def _publish_image(self, rgb: np.ndarray, stamp: TimeMsg, info: CameraInfo) -> None:
        height, width = rgb.shape[:2]
        img = Image(height=height, width=width, encoding="rgb8", is_bigendian=0, step=3 * width)
        img.header.stamp, img.header.frame_id = stamp, info.header.frame_id
        img.data = np.ascontiguousarray(rgb, dtype=np.uint8).tobytes()
        info.header.stamp = stamp
        self._image_pub.publish(img)
        self._info_pub.publish(info)

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        self.counters["commands_received"] += 1
        points = [
            (p.positions, p.velocities, p.accelerations, p.effort, _stamp_s(p.time_from_start)) for p in msg.points
        ]
        try:
            times_s, positions_rad = parse_trajectory(
                msg.joint_names, points, self.command_joint_names, _stamp_s(msg.header.stamp)
            )
        except MessageError as e:
            self._reject("JointTrajectory", str(e))
            return
        self._command(lambda: self.arm.command_trajectory(times_s, positions_rad))

    def _on_forward_command(self, msg: Float64MultiArray) -> None:
        self.counters["commands_received"] += 1
        try:
            q_rad = parse_forward_command(msg.data, len(self.arm_joint_names))
        except MessageError as e:
            self._reject("Float64MultiArray", str(e))
            return
        self._command(lambda: self.arm.command_positions(q_rad))

    def _on_gripper_command(self, msg: Float64MultiArray) -> None:
        self.counters["gripper_commands"] += 1
        try:
            width_m = parse_gripper_command(msg.data, self.arm.backend.robot.finger_limits_m)
        except MessageError as e:
            self._reject("gripper command", str(e))
            return
        self._command(lambda: self.arm.command_gripper(width_m))

    def _reject(self, what: str, reason: str) -> None:
        self.counters["commands_rejected"] += 1
        self.get_logger().warning(f"refused {what}, keeping the current command: {reason}", throttle_duration_sec=1.0)

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        if self._closed:
            response.success, response.message = False, "shutting down"
            return response
        seed = self._next_seed
        self.env.reset(seed=seed)
        self._next_seed += 1
        self._pending.clear()
        self.arm.rehome()
        self._camera_info = self._make_camera_info(self._camera_info.width, self._camera_info.height)
        self.counters["resets"] += 1
        response.success, response.message = True, f"arm at the {self.task} start pose (seed {seed})"
        return response

    def _on_parameters_set(self, parameters: list[Parameter]) -> None:
        for p in parameters:
            if p.name == "cmd_timeout_s":
                self.arm.set_cmd_timeout(float(p.value))

    def _publish_diagnostics(self) -> None:
        now_s = time.monotonic()
        elapsed_s = max(now_s - self._window_start_s, 1e-9)
        joint_state_hz, camera_hz = (self._window[k] / elapsed_s for k in ("joint_states", "frames"))
        self._window = {"joint_states": 0, "frames": 0}
        self._window_start_s = now_s
        level, message = DiagnosticStatus.OK, f"simulating {self.task} on {self.backend_name}"
        if self._camera_rate_hz > 0.0 and camera_hz < 0.8 * self._camera_rate_hz:
            level = DiagnosticStatus.WARN
            message += f"; camera renders {camera_hz:.1f} Hz of the {self._camera_rate_hz:g} Hz asked (too slow)"
        values = {
            **self.counters,
            "cmd_timeout_holds": self.arm.command.timeout_holds,
            "trajectory_active": self.arm.command.trajectory_active,
            "command_interface": self.command_interface,
            "joint_states_hz": round(joint_state_hz, 1),
            "camera_hz": round(camera_hz, 1),
            "sim_time_s": round(self.arm.sim_time_s, 3),
            "skipped_s": round(self.pacer.skipped_s, 3),
            "task": self.task,
        }
        status = DiagnosticStatus(
            level=level,
            name=f"{self.get_name()}: robot",
            message=message,
            hardware_id=f"sim:{self.backend_name}",
            values=[KeyValue(key=k, value=str(v)) for k, v in values.items()],
        )
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(msg)

    def close(self) -> None:
        """Stop simulating and release the engine (callbacks arriving later do nothing)."""
        if not self._closed:
            self._closed = True
            self.env.close()


def _parse_args(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="sim2real-sim-arm",
        description="A sim2real scene (MuJoCo or PyBullet) as a ROS 2 robot: joint_states, camera, ros2_control-style "
        "command topics, ~/reset, /diagnostics.",
        epilog=parameters_help(PARAMETERS),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.parse_args(argv)


def run(argv: list[str]) -> int:
    """Run the node until SIGINT or SIGTERM; exit code 0, 1 when the node cannot start."""
    _parse_args(remove_ros_args(argv)[1:])
    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        node = SimArmNode()
    except Exception as e:  # a bad parameter or randomization file: one clear line, not a traceback
        print(f"sim2real-sim-arm: {e}", file=sys.stderr)
        rclpy.shutdown()
        return 1
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        while rclpy.ok() and not stop.is_set():
            executor.spin_once(timeout_sec=0.05)
    finally:
        executor.shutdown()
        node.close()
        node.destroy_node()
        rclpy.shutdown()
    return 0
