"""The simulated arm behind sim_arm_robot, without ROS: position-controller semantics and real-time pacing.

`JointCommand` holds the arm joints' targets over time the way ros2_control's position controllers set them:
joint_trajectory_controller (linear interpolation from the current command through time-parameterised points,
then hold the last point; `cmd_timeout` counted from the end of the trajectory, after which it holds the measured
position) and forward_command_controller (the values become the target at once and are held with no timeout).
`parse_trajectory` and `parse_forward_command` turn message fields into those commands or refuse them with the
reasons the controllers would give. `RealTimePacer` decides how many physics steps keep simulated time level with
the wall clock, and `SimulatedArm` drives an engine backend with all of it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from sim2real_ros.messages import MessageError, validate_joint_trajectory

if TYPE_CHECKING:
    from sim.backend import Backend

#: One trajectory point as message fields: positions, velocities, accelerations, effort, time_from_start (s).
TrajectoryPoint = tuple[Sequence[float], Sequence[float], Sequence[float], Sequence[float], float]


class JointCommand:
    """Targets (rad) of the arm joints as a function of simulated time.

    `limits_rad` (n, 2): every target is clamped into these bounds when it is set, as the controller manager does
    with `enforce_command_limits` (true by default in Kilted). Not thread-safe: SimulatedArm locks around it.
    """

    def __init__(self, hold_rad: np.ndarray, limits_rad: np.ndarray, cmd_timeout_s: float = 0.0) -> None:
        self._lo = np.asarray(limits_rad, dtype=float)[:, 0].copy()
        self._hi = np.asarray(limits_rad, dtype=float)[:, 1].copy()
        #: Seconds after the end of a trajectory before the arm holds where it is measured (0 disables).
        self.cmd_timeout_s = float(cmd_timeout_s)
        #: How many trajectories ended in a cmd_timeout hold.
        self.timeout_holds = 0
        self._hold_rad = self._clamp(hold_rad)
        self._times_s: np.ndarray | None = None  # absolute simulated times (K+1,) of the trajectory's knots
        self._points_rad: np.ndarray | None = None  # (K+1, n) knot positions, the first one the start command

    @property
    def trajectory_active(self) -> bool:
        """A trajectory is being followed or its last point held (and may still time out)."""
        return self._times_s is not None

    def set_positions(self, q_rad: np.ndarray) -> None:
        """Target `q_rad` (n,) from now on, dropping any trajectory: a forward command, a hold, a reset."""
        self._hold_rad = self._clamp(q_rad)
        self._times_s = self._points_rad = None

    def set_trajectory(self, now_s: float, times_from_start_s: np.ndarray, positions_rad: np.ndarray) -> None:
        """Replace any trajectory by one that starts at `now_s` from the current target and passes through
        `positions_rad` (K, n) at `now_s + times_from_start_s` (K,) (strictly increasing, > 0)."""
        start = self.target_rad(now_s)
        self._times_s = np.concatenate([[now_s], now_s + np.asarray(times_from_start_s, dtype=float)])
        self._points_rad = np.vstack([start, self._clamp(positions_rad)])
        self._hold_rad = self._points_rad[-1].copy()

    def check_timeout(self, now_s: float, measured_rad: np.ndarray) -> bool:
        """Apply cmd_timeout: when `now_s` lies more than cmd_timeout_s past the end of the trajectory, drop it and
        hold `measured_rad` (n,). Returns whether that happened now."""
        if self._times_s is None or self.cmd_timeout_s <= 0.0:
            return False
        if now_s - self._times_s[-1] <= self.cmd_timeout_s:
            return False
        self.set_positions(measured_rad)
        self.timeout_holds += 1
        return True

    def target_rad(self, now_s: float) -> np.ndarray:
        """The target (n,) at simulated time `now_s`: linear between knots, the last point after the end."""
        if self._times_s is None or self._points_rad is None:
            return self._hold_rad.copy()
        times, points = self._times_s, self._points_rad
        if now_s >= times[-1]:
            return points[-1].copy()
        if now_s <= times[0]:
            return points[0].copy()
        i = int(np.searchsorted(times, now_s, side="right")) - 1
        alpha = (now_s - times[i]) / (times[i + 1] - times[i])
        return points[i] + alpha * (points[i + 1] - points[i])

    def _clamp(self, q_rad: np.ndarray) -> np.ndarray:
        return np.minimum(np.maximum(np.asarray(q_rad, dtype=float), self._lo), self._hi)


def parse_trajectory(
    joint_names: Sequence[str], points: Sequence[TrajectoryPoint], arm_joints: Sequence[str], stamp_s: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """JointTrajectory fields -> (times_from_start_s (K,), positions_rad (K, n) in `arm_joints` order).

    Raises MessageError with every reason joint_trajectory_controller would refuse the message for (see
    messages.validate_joint_trajectory: names, sizes, times, final velocity, zero stamp, finite values), plus
    accelerations of the wrong size and efforts (a position-only controller has no effort interface). Velocities
    are checked but not used: the points are joined linearly.
    """
    problems = validate_joint_trajectory(
        joint_names, [(pos, vel, t) for pos, vel, _, _, t in points], arm_joints, stamp_s
    )
    for i, (_, _, acc, eff, _) in enumerate(points):
        if len(acc) not in (0, len(joint_names)):
            problems.append(f"point {i}: {len(acc)} accelerations for {len(joint_names)} joints")
        if len(eff):
            problems.append(f"point {i}: effort given but the controller has no effort interface")
    if problems:
        raise MessageError("; ".join(problems))
    column = [list(joint_names).index(j) for j in arm_joints]
    positions = np.array([[float(pos[c]) for c in column] for pos, *_ in points])
    return np.array([float(p[4]) for p in points]), positions


def parse_gripper_command(data: Sequence[float], finger_limits_m: tuple[float, float]) -> float:
    """A gripper forward command's data -> the finger width (m): exactly one finite value; a width beyond the
    fingers' range is clamped by the arm, a negative one refused (MessageError)."""
    if len(data) != 1:
        raise MessageError(f"gripper command has {len(data)} values, expected 1 (the finger width, m)")
    width = float(data[0])
    if not math.isfinite(width) or width < 0:
        raise MessageError(f"gripper command width {width} must be finite and >= 0 (m)")
    if width > 2 * finger_limits_m[1] + 1e-6:
        raise MessageError(f"gripper command width {width} m exceeds the fingers' {2 * finger_limits_m[1]:.3f} m")
    return width


def parse_forward_command(data: Sequence[float], n_joints: int) -> np.ndarray:
    """Float64MultiArray data -> positions (n,) in arm joint order; refuses a wrong length and non-finite values
    (forward_command_controller >= 5.4 drops those) with MessageError."""
    if len(data) != n_joints:
        raise MessageError(f"command has {len(data)} values, expected {n_joints} (one per arm joint, in order)")
    values = [float(v) for v in data]
    if not all(map(math.isfinite, values)):
        raise MessageError(f"command holds non-finite values {values}")
    return np.array(values)


class RealTimePacer:
    """Counts the physics steps that keep simulated time level with the wall clock.

    Each call gets the steps due since the last one (so a late timer catches up); when more than `max_lag_s` is
    due at once (the process was stalled) only that much is simulated and the rest is skipped for good: simulated
    time then lags the wall clock by the skipped amount (`skipped_s`).
    """

    def __init__(self, physics_dt_s: float, max_lag_s: float) -> None:
        self.physics_dt_s = float(physics_dt_s)
        self.max_steps = max(1, round(max_lag_s / physics_dt_s))
        self.steps_done = 0
        self.steps_skipped = 0

    @property
    def sim_time_s(self) -> float:
        """Simulated time (s) since the start."""
        return self.steps_done * self.physics_dt_s

    @property
    def skipped_s(self) -> float:
        """Wall time (s) that was not simulated because the process fell too far behind."""
        return self.steps_skipped * self.physics_dt_s

    def steps_due(self, wall_elapsed_s: float) -> int:
        """Physics steps to take now, `wall_elapsed_s` after the start; counts them as done."""
        due = round(wall_elapsed_s / self.physics_dt_s) - self.steps_done - self.steps_skipped
        n = min(max(due, 0), self.max_steps)
        self.steps_skipped += max(due - n, 0)
        self.steps_done += n
        return n


class SimulatedArm:
    """An engine backend driven like a position-controlled arm: the arm joints track a JointCommand; the fingers
    too when the command has more values than arm joints (the trajectory controller owns them: their mean is each
    finger's target), else they hold where the last reset or `command_gripper` put them.

    `chunk_substeps`: physics steps taken per target update (the command is sampled at the end of each chunk, as a
    controller samples its trajectory once per update). Commands may come from other threads than `advance`.
    """

    def __init__(self, backend: Backend, command: JointCommand, chunk_substeps: int) -> None:
        self.backend = backend
        self.command = command
        self.chunk_substeps = max(1, int(chunk_substeps))
        self.physics_dt_s = float(backend.scene.physics_dt_s)
        self.steps_done = 0
        self._n_arm = len(backend.robot.arm_joint_names)
        self._n_cmd = int(np.asarray(command.target_rad(0.0)).shape[0])  # arm joints, fingers too if it owns them
        self._lock = threading.Lock()
        self._finger_m = float(backend.joint_state()[0][self._n_arm])

    @property
    def sim_time_s(self) -> float:
        """Simulated time (s) since the start (resets do not rewind it)."""
        return self.steps_done * self.physics_dt_s

    def rehome(self) -> None:
        """After the engine was reset: hold the arm where it now is, fingers too, forgetting any trajectory."""
        q, _ = self.backend.joint_state()
        self._finger_m = float(q[self._n_arm])
        with self._lock:
            self.command.set_positions(q[: self._n_cmd])

    def command_gripper(self, width_m: float) -> None:
        """A gripper forward command: both fingers to width_m / 2 each (clamped to their limits), held."""
        lo, hi = self.backend.robot.finger_limits_m
        with self._lock:
            self._finger_m = float(np.clip(0.5 * width_m, lo, hi))

    def command_trajectory(self, times_from_start_s: np.ndarray, positions_rad: np.ndarray) -> None:
        """Follow a trajectory (parse_trajectory's output) from now, replacing any other."""
        with self._lock:
            self.command.set_trajectory(self.sim_time_s, times_from_start_s, positions_rad)

    def command_positions(self, q_rad: np.ndarray) -> None:
        """Target `q_rad` (n,) at once and hold it (forward command)."""
        with self._lock:
            self.command.set_positions(q_rad)

    def set_cmd_timeout(self, cmd_timeout_s: float) -> None:
        """Change the command timeout (s; 0 disables)."""
        with self._lock:
            self.command.cmd_timeout_s = float(cmd_timeout_s)

    def target_rad(self) -> np.ndarray:
        """The arm target (n,) now."""
        with self._lock:
            return self.command.target_rad(self.sim_time_s)

    def advance(self, n_substeps: int) -> None:
        """Simulate `n_substeps` physics steps in chunks, sampling the command at the end of each chunk."""
        while n_substeps > 0:
            k = min(n_substeps, self.chunk_substeps)
            q, _ = self.backend.joint_state()
            with self._lock:
                self.command.check_timeout(self.sim_time_s, q[: self._n_cmd])
                target = self.command.target_rad((self.steps_done + k) * self.physics_dt_s)
                finger = float(np.mean(target[self._n_arm :])) if self._n_cmd > self._n_arm else self._finger_m
            self.backend.step(target[: self._n_arm], finger, k)
            self.steps_done += k
            n_substeps -= k
