"""The policy node's decisions without ROS: input checks, watchdogs, inference, the safety gate, hold and halt.

`policy_node` only moves messages in and out of a PolicyCore; everything ROS.md's fault plan asks of the node's
behaviour is decided here on plain values, with times passed in (`ros_s`: the node's ROS clock, compared with
header stamps; `steady_s`: a steady clock, for every watchdog), so it is unit-tested exactly.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from policies.bundle import BundleError, PolicyBundle
from policies.safety import GateResult, SafetyGate, SafetyLimits
from sim.ik import ee_step_target
from sim.kinematics import KinematicChain
from sim.observation import (
    OBSERVATION_LAYOUTS,
    ObjectMotion,
    build_observation,
    observation_dim,
    signals_from_joints,
    with_layout,
)
from sim.transforms import mat_to_quat, quat_to_mat, xyzw_to_wxyz
from sim2real_ros.joint_merge import JointMerger
from sim2real_ros.messages import MessageError, check_stamp, image_to_rgb, limits_violation, workspace_text

OK, WARN, ERROR, STALE = 0, 1, 2, 3
#: Largest |action| accepted from the graph (it clamps to [-1, 1]; anything past this is a broken model).
ACTION_TOLERANCE = 1e-3


@dataclass(frozen=True)
class CoreSettings:
    """The node's safety parameters (see the README's policy_node table for units and defaults)."""

    joint_state_timeout_s: float = 0.2
    """Hold when the newest joint_states arrived longer ago than this (steady clock)."""
    image_timeout_s: float = 0.2
    """Hold when the newest image arrived longer ago than this (pixel policies)."""
    goal_timeout_s: float = 0.0
    """Hold when the goal is older than this; 0: a goal stays valid until replaced."""
    max_stamp_age_s: float = 0.5
    """Messages whose header.stamp lags the node's clock by more than this are stale (zero stamps always are)."""
    max_stamp_lead_s: float = 0.05
    """Messages stamped further than this in the future are refused (clock offset between hosts)."""
    halt_after_stale_s: float = 1.0
    """A hold on stale inputs that lasts this long becomes a latched halt (only ~/resume clears it)."""
    fresh_inputs_to_resume: int = 3
    """Consecutive fresh, valid joint_states (and images) needed before acting again after a stale hold."""
    position_margin_rad: float = 0.05
    """Commands keep this far inside every joint limit."""
    max_joint_velocity_rad_s: float = 1.0
    """Largest joint speed a command may ask for."""
    velocity_scale: float = 1.0
    """Multiplies max_joint_velocity_rad_s (0 < scale <= 1): slow a first deployment down."""
    max_consecutive_invalid: int = 3
    """Rejected policy outputs in a row before a latched halt."""
    max_inference_s: float = 0.0
    """An inference slower than this is not applied (hold this tick); 0: one control period."""
    joint_limit_tolerance_rad: float = 0.02
    """Measured joints this far outside the URDF limits are a fault (sensor error or wrong robot)."""
    goal_workspace_tolerance_m: float = 0.02
    """Goals may lie this far outside the trained goal box."""
    object_pose_timeout_s: float = 0.3
    """Object tasks: hold when the newest object_pose arrived longer ago than this (steady clock)."""
    object_region_tolerance_m: float = 0.1
    """Object tasks: an object_pose this far (m) beyond the trained object/goal box across the table, or more than
    3 cm below its bottom (off the table), is refused."""
    max_finger_velocity_m_s: float = 0.1
    """Policies that command the gripper: the largest finger speed a command may ask for (m/s, each finger)."""
    max_object_speed_m_s: float = 1.0
    """Object tasks: an object_pose that moved faster than this since the previous one (plus 1 cm) is a jump
    (a wrong detection) and is refused."""


#: One /diagnostics entry: task name, level (OK..STALE), message, key-value details.
Status = tuple[str, int, str, dict[str, str]]


@dataclass
class Tick:
    """One control tick's outcome: `command_rad` to publish (None: publish nothing) and why."""

    status: str
    """act (policy command) | hold (one hold command) | held (holding, nothing new) | idle (not acting yet)."""
    command_rad: np.ndarray | None = None
    reasons: list[str] = field(default_factory=list)


@dataclass
class _Input:
    steady_s: float = -math.inf
    fresh: int = 0


class PolicyCore:
    """Decides, per control tick, what the node publishes. Build with a loaded bundle; `activate` before ticking."""

    def __init__(self, bundle: PolicyBundle, settings: CoreSettings | None = None) -> None:
        self.bundle = bundle
        self.settings = s = settings or CoreSettings()
        m = bundle.manifest
        if not 0 < s.velocity_scale <= 1:
            raise ValueError(f"velocity_scale must be in (0, 1], got {s.velocity_scale}")
        self.ee_control = m.policy.ee_control
        if "joint_target_rad" not in {o.name for o in m.outputs} and self.ee_control is None:
            raise BundleError(
                f"{bundle.path}: the policy outputs no joint_target_rad and its manifest has no policy.ee_control; "
                "re-export it with this version of sim2real"
            )
        inputs = {spec.name: spec for spec in m.observation.inputs}
        self.image_inputs = sorted(n for n, spec in inputs.items() if spec.is_image)
        obs_dim = inputs["observation"].shape[0] if "observation" in inputs else 0
        self.gripper = m.robot.gripper
        """How the policy's last action value moves the fingers (None: the gripper is blocked)."""
        if m.env.task == "pick_and_place" and self.gripper is None:
            raise BundleError(f"{bundle.path}: a pick_and_place policy commands its gripper but the manifest has no "
                              "robot.gripper; re-export it with this version of sim2real")  # fmt: skip
        self.has_object = m.env.task != "reach"
        """The policy observes an object: its pose comes on object_pose (sim2real-object-tracker, or a mocap)."""
        self.obs_layout = layout = m.env.obs_layout or 1
        """The observation vector's layout (sim.observation); the node builds it as the simulator does."""
        if layout not in OBSERVATION_LAYOUTS:
            raise BundleError(f"{bundle.path}: env.obs_layout {layout} is not one this node builds "
                              f"({list(OBSERVATION_LAYOUTS)}): update sim2real on the robot")  # fmt: skip
        allowed = (0, observation_dim(False, layout)) + ((observation_dim(True, layout),) if self.has_object else ())
        if obs_dim not in allowed:  # pixel modes observe proprioception only; state modes of object tasks the object
            raise BundleError(f"{bundle.path}: the observation has {obs_dim} values; a {m.env.task} policy's has "
                              f"{' or '.join(map(str, allowed[1:]))} (re-export it with this version)")  # fmt: skip
        self.observes_object_state = obs_dim == observation_dim(True, layout)
        self.joint_names = list(m.joint_names)
        self.finger_names = list(m.robot.finger_joint_names)
        self.blocked_finger_width_m = m.robot.blocked_finger_width_m
        self.joints = JointMerger(self.joint_names, self.finger_names)
        self.notices: list[str] = []
        """Things the node says once (at activation): e.g. that the blocked gripper's width stands in for fingers."""
        self.limits_rad = np.asarray(m.joint_limits_rad, float)
        self.chain = KinematicChain.from_dict(
            m.robot.ee_chain.to_dict(), f"{bundle.path}/manifest.json: robot.ee_chain"
        )
        if self.chain.moving_joint_names != self.joint_names:
            raise BundleError(f"{bundle.path}: robot.ee_chain joints {self.chain.moving_joint_names} != joint_names")
        self.period_s = 1.0 / m.control_rate_hz
        self.action_shape = m.action.shape
        self.camera = m.camera
        self.goal_spec = m.goal
        # the gate filters the arm joints and, for a policy that commands its gripper, one finger's position
        gate_limits = self.limits_rad
        margins = np.full(len(self.joint_names), s.position_margin_rad)
        if self.gripper is not None:
            gate_limits = np.vstack([gate_limits, self.gripper.finger_limits_m])
            margins = np.r_[margins, 0.0]  # finger limits are end stops: a command may close them fully
        self.gate = SafetyGate(
            SafetyLimits(
                gate_limits[:, 0],
                gate_limits[:, 1],
                margin_rad=margins,
                max_velocity_rad_s=self.max_velocity(s.velocity_scale),
                control_period_s=self.period_s,
                max_consecutive_rejects=s.max_consecutive_invalid,
            )
        )
        self.q: np.ndarray | None = None
        self.qd: np.ndarray | None = None
        self.finger_width_m = 0.0
        self.image: np.ndarray | None = None
        self.goal_world_m: np.ndarray | None = None
        self.goal_steady_s = -math.inf
        self.object_world: tuple[float, np.ndarray, np.ndarray] | None = None  # stamp, position, quaternion
        self.object_in = _Input()
        self.motion = ObjectMotion()
        self.camera_info_ok: bool | None = None
        self.camera_frame_id: str | None = None
        self.joints_in = _Input()
        self.image_in = _Input()
        self.state = bundle.initial_state()
        self.active = False
        self.halted = False
        self.halt_reason = ""
        self.holding = False
        self.hold_since_s = math.inf
        self.counts = {"ticks": 0, "acted": 0, "holds": 0, "rejected_outputs": 0, "rejected_inputs": 0, "overruns": 0}
        self.last_reasons: list[str] = []
        self.last_inference_s = 0.0
        self.input_errors: dict[str, str] = {}

    def max_velocity(self, scale: float) -> np.ndarray:
        """The gate's velocity limits: the arm joints' x `scale` (rad/s) and, with a gripper, the finger's (m/s)."""
        s = self.settings
        v = np.full(len(self.joint_names), s.max_joint_velocity_rad_s * scale)
        return v if self.gripper is None else np.r_[v, s.max_finger_velocity_m_s * scale]

    def _measured(self) -> np.ndarray:
        """What the gate holds and starts from: the measured arm joints, and the measured finger position."""
        assert self.q is not None
        return self.q.copy() if self.gripper is None else np.r_[self.q, 0.5 * self.finger_width_m]

    # -- inputs ---------------------------------------------------------------------------------
    def _check_stamp(self, topic: str, stamp_s: float, ros_s: float) -> None:
        check_stamp(topic, stamp_s, ros_s, self.settings.max_stamp_age_s, self.settings.max_stamp_lead_s)

    def _reject(self, topic: str, err: Exception, counter: _Input | None) -> str:
        self.counts["rejected_inputs"] += 1
        self.input_errors[topic] = str(err)
        if counter is not None:
            counter.fresh = 0
        return str(err)

    def on_joint_state(
        self,
        names: Sequence[str],
        position: Sequence[float],
        velocity: Sequence[float],
        stamp_s: float,
        ros_s: float,
        steady_s: float,
        topic: str = "joint_states",
    ) -> str | None:
        """Take a sensor_msgs/JointState from `topic` (joint_states or gripper/joint_states); returns why it was
        refused (None: accepted). Messages are merged by joint name: one may carry any of the arm and finger joints
        (several broadcasters, a gripper on its own topic); the arm counts once all its joints have arrived."""
        try:
            self._check_stamp(topic, stamp_s, ros_s)
            reading = self.joints.read(topic, names, position, velocity)
            if not reading.names:
                raise MessageError(f"{topic} carries none of the policy's joints {self.joint_names + self.finger_names}"
                                   f" (has {list(names)})")  # fmt: skip
            arm, q_arm = reading.of(self.joint_names)
            if arm:
                rows = [self.joint_names.index(n) for n in arm]
                tol = self.settings.joint_limit_tolerance_rad
                reason = limits_violation(q_arm, arm, self.limits_rad[rows], tol)
                if reason is not None:
                    if self.active and not self.halted:  # while acting: hold and latch now, not after a timeout
                        self._latch(reason)
                    raise MessageError(reason)
        except MessageError as e:
            return self._reject(topic, e, self.joints_in)
        self.input_errors.pop(topic, None)
        self.joints.take(reading, steady_s)
        if not self.joints.missing(self.finger_names) and reading.of(self.finger_names)[0]:
            self.finger_width_m = float(np.sum(self.joints.values(self.finger_names)[0]))
        if arm and not self.joints.missing(self.joint_names):
            self.q, self.qd = self.joints.values(self.joint_names)
            self.joints_in.steady_s = steady_s - self.joints.age_s(self.joint_names, steady_s)  # the oldest joint's
            self.joints_in.fresh += 1
        return None

    def _fingers(self, steady_s: float) -> tuple[float | None, str | None]:
        """The finger width to observe and why there is none: the published finger joints while fresh, else the
        manifest's blocked width (a policy whose gripper is blocked), else None (the policy needs its fingers)."""
        age = self.joints.age_s(self.finger_names, steady_s)
        if age <= self.settings.joint_state_timeout_s:
            return float(np.sum(self.joints.values(self.finger_names)[0])), None
        if self.blocked_finger_width_m is not None:
            return self.blocked_finger_width_m, None
        missing = self.joints.missing(self.finger_names)
        if missing:
            why = (f"no finger joints {missing} on joint_states or gripper/joint_states, and the policy uses its "
                   "gripper (or its bundle predates robot.blocked_finger_width_m: re-export it)")  # fmt: skip
            return None, why
        return None, f"finger joints stale ({age:.2f} s > {self.settings.joint_state_timeout_s} s)"

    def on_image(
        self,
        height: int,
        width: int,
        encoding: str,
        step: int,
        data: Any,
        frame_id: str,
        stamp_s: float,
        ros_s: float,
        steady_s: float,
    ) -> str | None:
        """Take a sensor_msgs/Image (pixel policies); returns why it was refused (None: accepted)."""
        if not self.image_inputs:
            return None
        assert self.camera is not None  # image inputs come with a camera (the manifest's rule)
        try:
            self._check_stamp("camera/image_raw", stamp_s, ros_s)
            want = (self.camera.height, self.camera.width)
            if (height, width) != want:
                raise MessageError(f"camera/image_raw is {width}x{height}, the policy takes {want[1]}x{want[0]}")
            if self.camera_frame_id is not None and frame_id != self.camera_frame_id:
                raise MessageError(
                    f"camera/image_raw frame_id {frame_id!r} differs from camera_info's {self.camera_frame_id!r}"
                )
            rgb = image_to_rgb(height, width, encoding, step, data)
        except MessageError as e:
            return self._reject("camera/image_raw", e, self.image_in)
        self.input_errors.pop("camera/image_raw", None)
        self.image = rgb
        self.image_in.steady_s = steady_s
        self.image_in.fresh += 1
        return None

    def on_camera_info(self, width: int, height: int, k: Sequence[float], frame_id: str) -> str | None:
        """Compare sensor_msgs/CameraInfo with the camera the policy was trained for; returns the mismatch."""
        if not self.image_inputs:
            return None
        cam = self.camera
        assert cam is not None  # image inputs come with a camera (the manifest's rule)
        problems = []
        if (width, height) != (cam.width, cam.height):
            problems.append(f"resolution {width}x{height} != trained {cam.width}x{cam.height}")
        k_want = np.asarray(cam.k, float).reshape(-1)
        if not np.allclose(np.asarray(k, float).reshape(-1), k_want, rtol=0.02, atol=1.0):
            problems.append(f"intrinsics k {list(k)} differ from trained {k_want.tolist()} by more than 2%")
        reason = "; ".join(f"camera/camera_info: {p}" for p in problems) or None
        self.camera_info_ok = reason is None
        self.camera_frame_id = frame_id
        if reason:
            self.input_errors["camera/camera_info"] = reason
            if self.active:
                self._latch(reason)
        else:
            self.input_errors.pop("camera/camera_info", None)
        return reason

    def on_goal(
        self, frame_id: str, position_m: Sequence[float], quat_xyzw: Sequence[float], steady_s: float
    ) -> str | None:
        """Take a geometry_msgs/PoseStamped goal in the robot's base frame; a refused goal keeps the previous one."""
        try:
            want = self.goal_spec.frame_id
            if frame_id != want:
                raise MessageError(f"goal_pose: frame_id {frame_id!r}; goals must be in {want!r} (no tf2 here)")
            p, qn = np.asarray(position_m, float), np.asarray(quat_xyzw, float)
            if not (np.all(np.isfinite(p)) and np.all(np.isfinite(qn))):
                raise MessageError("goal_pose: non-finite position or orientation")
            if abs(float(np.linalg.norm(qn)) - 1.0) > 1e-3:
                raise MessageError(f"goal_pose: orientation is not a unit quaternion (norm {np.linalg.norm(qn):.4f})")
            world = quat_to_mat(self.chain.base_quat_wxyz) @ p + self.chain.base_pos_m
            lo = np.asarray(self.goal_spec.world_low_m, float) - self.settings.goal_workspace_tolerance_m
            hi = np.asarray(self.goal_spec.world_high_m, float) + self.settings.goal_workspace_tolerance_m
            if np.any(world < lo) or np.any(world > hi):
                box = workspace_text(self.goal_spec, self.chain.base_pos_m, self.chain.base_quat_wxyz)
                raise MessageError(f"goal_pose: {np.round(p, 4).tolist()} m ({want}) is outside the trained workspace "
                                   f"{box}")  # fmt: skip
        except MessageError as e:
            self.counts["rejected_inputs"] += 1
            self.input_errors["goal_pose"] = str(e)
            return str(e)
        self.input_errors.pop("goal_pose", None)
        if self.goal_world_m is None or not np.allclose(world, self.goal_world_m):
            self.state = self.bundle.initial_state()  # a new episode for the policy
            self.motion.reset()
        self.goal_world_m, self.goal_steady_s = world, steady_s
        return None

    def on_object_pose(
        self,
        frame_id: str,
        position_m: Sequence[float],
        quat_xyzw: Sequence[float],
        stamp_s: float,
        ros_s: float,
        steady_s: float,
    ) -> str | None:
        """Take a geometry_msgs/PoseStamped of the object in the base frame (object tasks); returns why it was
        refused (None: accepted). Stale, non-finite, off-table and jumping poses are refused, and the node holds
        once the last good one is older than object_pose_timeout_s."""
        if not self.has_object:
            return None
        topic, s = "object_pose", self.settings
        try:
            self._check_stamp(topic, stamp_s, ros_s)
            want = self.goal_spec.frame_id
            if frame_id != want:
                raise MessageError(f"{topic}: frame_id {frame_id!r}; object poses must be in {want!r} (no tf2 here)")
            p, qn = np.asarray(position_m, float), np.asarray(quat_xyzw, float)
            if p.shape != (3,) or qn.shape != (4,) or not (np.all(np.isfinite(p)) and np.all(np.isfinite(qn))):
                raise MessageError(f"{topic}: non-finite position or orientation")
            if abs(float(np.linalg.norm(qn)) - 1.0) > 1e-3:
                raise MessageError(f"{topic}: orientation is not a unit quaternion (norm {np.linalg.norm(qn):.4f})")
            base_rot = quat_to_mat(self.chain.base_quat_wxyz)
            world = base_rot @ p + self.chain.base_pos_m
            quat = mat_to_quat(base_rot @ quat_to_mat(xyzw_to_wxyz(qn)))
            lo = np.asarray(self.goal_spec.world_low_m, float)
            hi = np.asarray(self.goal_spec.world_high_m, float)
            tol = s.object_region_tolerance_m
            if np.any(world[:2] < lo[:2] - tol) or np.any(world[:2] > hi[:2] + tol) or world[2] < lo[2] - 0.03:
                box = workspace_text(self.goal_spec, self.chain.base_pos_m, self.chain.base_quat_wxyz)
                raise MessageError(f"{topic}: the object at {np.round(p, 3).tolist()} m ({want}) is off the table: "
                                   f"more than {tol} m outside the trained region {box} or below it")  # fmt: skip
            if self.object_world is not None:
                last_s, last_pos, _ = self.object_world
                if stamp_s <= last_s:
                    raise MessageError(f"{topic}: stamp {stamp_s:.3f} s is not newer than the last pose's")
                moved = float(np.linalg.norm(world - last_pos))
                if moved > s.max_object_speed_m_s * (stamp_s - last_s) + 0.01:
                    self.object_world = None  # a jump: trust neither pose until a fresh one arrives
                    raise MessageError(f"{topic}: the object jumped {moved * 100:.1f} cm in "
                                       f"{stamp_s - last_s:.3f} s (max {s.max_object_speed_m_s} m/s)")  # fmt: skip
        except MessageError as e:
            return self._reject(topic, e, self.object_in)
        self.input_errors.pop(topic, None)
        self.object_world = (stamp_s, world, quat)
        self.object_in.steady_s = steady_s
        self.object_in.fresh += 1
        return None

    # -- lifecycle -----------------------------------------------------------------------------
    def inputs_ready(self, steady_s: float) -> str | None:
        """Why the node cannot act now (None: every input the policy needs is fresh and valid; the finger width to
        observe is then taken, see _fingers)."""
        s = self.settings
        if self.q is None:
            missing = self.joints.missing(self.joint_names)
            if len(missing) < len(self.joint_names):
                return f"joint_states lacks arm joints {missing} (none of the merged messages carried them)"
            return "no valid joint_states received" + _because(self.input_errors.get("joint_states"))
        if steady_s - self.joints_in.steady_s > s.joint_state_timeout_s:
            return f"joint_states stale ({steady_s - self.joints_in.steady_s:.2f} s > {s.joint_state_timeout_s} s)"
        width, why = self._fingers(steady_s)
        if width is None:
            return why
        self.finger_width_m = width
        if self.has_object:
            if self.object_world is None:
                return "no valid object_pose received" + _because(self.input_errors.get("object_pose"))
            if steady_s - self.object_in.steady_s > s.object_pose_timeout_s:
                return (f"object_pose stale ({steady_s - self.object_in.steady_s:.2f} s > {s.object_pose_timeout_s} "
                        "s): is the marker in view?")  # fmt: skip
        if self.image_inputs:
            if self.image is None:
                return "no valid image received" + _because(self.input_errors.get("camera/image_raw"))
            if steady_s - self.image_in.steady_s > s.image_timeout_s:
                return f"camera/image_raw stale ({steady_s - self.image_in.steady_s:.2f} s > {s.image_timeout_s} s)"
            if self.camera_info_ok is not True:
                return self.input_errors.get("camera/camera_info", "no camera/camera_info received")
        return None

    def activate(self, steady_s: float) -> str | None:
        """Start acting: needs fresh inputs; resets the LSTM state and the gate. Returns why not (None: active)."""
        reason = self.inputs_ready(steady_s)
        if reason is None and self.halted:
            reason = f"halted ({self.halt_reason}); call ~/resume"
        if reason is not None:
            return reason
        assert self.q is not None
        self.gate.reset(self._measured())
        self.state = self.bundle.initial_state()
        self.motion.reset()
        self.active, self.holding, self.hold_since_s = True, False, math.inf
        if self.joints.missing(self.finger_names) and self.blocked_finger_width_m is not None:
            note = (f"no finger joints on joint_states or gripper/joint_states: the policy's gripper is blocked, so "
                    f"it observes the trained finger width {self.blocked_finger_width_m:.4f} m")  # fmt: skip
            if note not in self.notices:
                self.notices.append(note)
        return None

    def deactivate(self) -> np.ndarray | None:
        """Stop acting; returns the hold command (measured joints) to publish once."""
        self.active = False
        return self.hold_command()

    def halt(self, reason: str = "~/halt called") -> np.ndarray | None:
        """Latch a halt (until resume); returns the hold command, which the following ticks do not repeat."""
        self._latch(reason)
        if self.active and not self.holding:
            self.holding = True  # hold_since_s stays: a latched halt needs no stale-input escalation
            self.counts["holds"] += 1
        return self.hold_command()

    def resume(self, steady_s: float) -> str | None:
        """Clear a latched halt; refused (returns why) while inputs are not fresh."""
        reason = self.inputs_ready(steady_s)
        if reason is not None:
            return f"resume refused: {reason}"
        assert self.q is not None
        self.halted, self.halt_reason = False, ""
        self.gate.resume(self._measured())
        self.state = self.bundle.initial_state()
        self.holding, self.hold_since_s = False, math.inf
        return None

    def hold_command(self) -> np.ndarray | None:
        """Hold = the measured joints, and the measured finger position for a policy that commands its gripper
        (None before any joint_states arrived)."""
        return None if self.q is None else self._measured()

    def _latch(self, reason: str) -> None:
        self.halted, self.halt_reason = True, reason
        self.gate.halted = True
        self.state = self.bundle.initial_state()

    # -- the control tick ----------------------------------------------------------------------
    def tick(self, steady_s: float) -> Tick:
        """One control period: act, hold (once, on entering a hold), or stay held/idle."""
        self.counts["ticks"] += 1
        if not self.active:
            return Tick("idle", None, ["inactive"])
        if self.halted:
            return self._hold(steady_s, [f"halted: {self.halt_reason}"])
        reason = self.inputs_ready(steady_s)
        if reason is None and self.holding and not self._fresh_enough():
            reason = f"waiting for {self.settings.fresh_inputs_to_resume} fresh inputs after a hold"
        if reason is not None:
            if steady_s - self.hold_since_s >= self.settings.halt_after_stale_s:
                self._latch(f"inputs stale for {self.settings.halt_after_stale_s} s: {reason}")
            return self._hold(steady_s, [reason])
        if self.goal_world_m is None:
            return Tick("idle", None, ["waiting for a goal on goal_pose"])
        s = self.settings
        if s.goal_timeout_s > 0 and steady_s - self.goal_steady_s > s.goal_timeout_s:
            return self._hold(steady_s, [f"goal older than goal_timeout_s ({s.goal_timeout_s} s)"])
        if self.holding:  # fresh again: start over from the measured joints with a fresh LSTM state
            assert self.q is not None
            self.gate.reset(self._measured())
            self.state = self.bundle.initial_state()
            self.holding, self.hold_since_s = False, math.inf
        return self._act(steady_s)

    def _fresh_enough(self) -> bool:
        n = self.settings.fresh_inputs_to_resume
        return (self.joints_in.fresh >= n and (not self.image_inputs or self.image_in.fresh >= n)
                and (not self.has_object or self.object_in.fresh >= n))  # fmt: skip

    def _hold(self, steady_s: float, reasons: list[str]) -> Tick:
        self.last_reasons = reasons
        if self.holding:
            return Tick("held", None, reasons)
        self.holding, self.hold_since_s = True, steady_s
        self.joints_in.fresh = self.image_in.fresh = self.object_in.fresh = 0
        self.state = self.bundle.initial_state()
        self.motion.reset()
        self.counts["holds"] += 1
        return Tick("hold", self.hold_command(), reasons)

    def observation(self) -> dict[str, np.ndarray]:
        """The policy's inputs from the latest messages (the same pipeline as the simulator's)."""
        assert self.q is not None and self.qd is not None and self.goal_world_m is not None
        raw = signals_from_joints(self.chain, self.q, self.qd, self.finger_width_m)
        achieved = raw.ee_pos_m
        if self.has_object:
            assert self.object_world is not None
            stamp_s, pos, quat = self.object_world
            lin, ang = self.motion.update(stamp_s, pos, quat)
            raw = replace(raw, object_pos_m=pos, object_quat_wxyz=quat, object_linvel_m_s=lin, object_angvel_rad_s=ang)
            achieved = pos
        achieved, desired = achieved.astype(np.float32), self.goal_world_m.astype(np.float32)
        vec = build_observation(raw, self.observes_object_state)
        obs = {
            "observation": with_layout(vec, achieved, desired, self.observes_object_state, self.obs_layout),
            "achieved_goal": achieved,
            "desired_goal": desired,
        }
        for name in self.image_inputs:
            assert self.image is not None
            obs[name] = self.image
        return obs

    def _act(self, steady_s: float) -> Tick:
        s = self.settings
        budget = s.max_inference_s or self.period_s
        started = time.perf_counter()
        try:
            out = self.bundle.run({**self.observation(), **self.state})
            action = np.asarray(out["action"], float)
            if action.shape != self.action_shape:
                raise BundleError(f"action has shape {action.shape}")
            if np.any(np.abs(action) > 1.0 + ACTION_TOLERANCE):
                raise BundleError(f"action {action.tolist()} outside the trained range [-1, 1]")
            target = out["joint_target_rad"] if self.ee_control is None else self._ee_target(action)
            if self.gripper is not None:  # the env's finger step: measured position + step x the last action value
                g = self.gripper
                finger = 0.5 * self.finger_width_m + g.step_m * float(action.reshape(-1)[-1])
                lo, hi = g.finger_limits_m
                target = np.r_[np.asarray(target, float).reshape(-1), min(max(finger, lo), hi)]
        except Exception as e:  # a broken model or a non-finite output: never act on it
            return self._invalid(steady_s, self.gate.reject(f"policy output rejected: {e}"))
        finally:
            self.last_inference_s = time.perf_counter() - started
        if self.last_inference_s > budget:
            self.counts["overruns"] += 1
            self.last_reasons = [f"inference took {self.last_inference_s * 1e3:.1f} ms > {budget * 1e3:.1f} ms"]
            return Tick("held", None, self.last_reasons)  # a late action is not applied; the next tick tries again
        result = self.gate.filter(target)
        if result.status != "ok":
            return self._invalid(steady_s, result)
        self.state = {spec.name: out[f"{spec.name}_out"] for spec in self.bundle.manifest.state}
        self.counts["acted"] += 1
        self.last_reasons = result.reasons
        return Tick("act", result.command_rad, result.reasons)

    def _ee_target(self, action: np.ndarray) -> np.ndarray:
        """End-effector control: the env's IK step on forward kinematics of the measured joints, then the limits."""
        assert self.q is not None and self.ee_control is not None
        c = self.ee_control
        q = dict(zip(self.joint_names, self.q.tolist()))
        pos, quat = self.chain.pose(q)
        target = ee_step_target(
            self.q, pos, quat, self.chain.jacobian(q), c.max_step_m * action[:3],
            np.asarray(c.down_quat_wxyz, float), np.asarray(c.bounds_world_m, float),
            c.ik_damping, c.orientation_gain,
        )  # fmt: skip
        return np.clip(target, self.limits_rad[:, 0], self.limits_rad[:, 1])

    def _invalid(self, steady_s: float, result: GateResult) -> Tick:
        """A rejected output (counted once, by the gate): hold; the gate's K-th reject in a row latches a halt."""
        self.counts["rejected_outputs"] += 1
        reason = "; ".join(result.reasons)
        if result.status == "halted":
            self._latch(f"invalid policy outputs in a row ({reason})")
        tick = self._hold(steady_s, [reason])
        if not self.halted:  # a rejected output holds once; the next tick tries the policy again
            self.holding, self.hold_since_s = False, math.inf
        return tick

    # -- diagnostics ----------------------------------------------------------------------------
    def diagnostics(self, steady_s: float) -> list[Status]:
        """(task name, level, message, values) for /diagnostics."""
        ready = self.inputs_ready(steady_s)
        age = steady_s - self.joints_in.steady_s
        level = OK if ready is None else (WARN if self.q is not None else ERROR)
        if self.input_errors:  # a refused message: ERROR for contract faults (camera mismatch), else WARN
            level = max(level, ERROR if "camera/camera_info" in self.input_errors else WARN)
        problems = "; ".join(f"{k}: {v}" for k, v in sorted(self.input_errors.items()))
        inputs = (
            "inputs",
            level,
            ready or problems or "fresh",
            {"joint_states_age_s": f"{age:.3f}", "rejected_inputs": str(self.counts["rejected_inputs"])},
        )
        control: Status
        if self.halted:
            control = ("control", ERROR, f"halted: {self.halt_reason}", {})
        elif not self.active:
            control = ("control", OK, "inactive", {})
        elif self.holding:
            control = ("control", WARN, "holding: " + "; ".join(self.last_reasons), {})
        else:
            control = ("control", OK, "acting" if self.goal_world_m is not None else "waiting for a goal", {})
        control[3].update({k: str(v) for k, v in self.counts.items()})
        control[3]["last_inference_ms"] = f"{self.last_inference_s * 1e3:.2f}"
        limiter = ", ".join(self.last_reasons) if self.last_reasons else "none"
        policy = ("policy", OK, f"bundle {self.bundle.path.name}", {"sha256": self.bundle.manifest.onnx_sha256})
        limiting = "clamped" in limiter or "rate-limited" in limiter
        safety: Status = ("safety", WARN if limiting else OK, f"limiter: {limiter}", {})
        return [inputs, control, policy, safety]


def _because(error: str | None) -> str:
    return f" (last refused: {error})" if error else ""
