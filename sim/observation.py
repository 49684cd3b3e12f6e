"""The one observation pipeline: raw robot and object signals -> the policy's `observation` vector.

Pure numpy and free of any engine, so the ROS node can build the identical array from ROS messages.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.kinematics import KinematicChain
from sim.transforms import rotation_vector

#: Layout of the proprioceptive block, in order: name and length.
PROPRIO_FIELDS: tuple[tuple[str, int], ...] = (
    ("arm_q_rad", 7),
    ("arm_qd_rad_s", 7),
    ("ee_pos_m", 3),
    ("ee_linvel_m_s", 3),
    ("finger_width_m", 1),
)
#: Layout of the object block (state observations of tasks with an object).
OBJECT_FIELDS: tuple[tuple[str, int], ...] = (
    ("object_pos_m", 3),
    ("object_quat_wxyz", 4),
    ("object_linvel_m_s", 3),
    ("object_angvel_rad_s", 3),
)
PROPRIO_DIM = sum(n for _, n in PROPRIO_FIELDS)
OBJECT_DIM = sum(n for _, n in OBJECT_FIELDS)
#: Observation layouts: 1 is the fields above; 2 appends FetchPush's relative features (RELATIVE_FIELDS). A
#: manifest names its layout (bundles without one are layout 1).
OBSERVATION_LAYOUTS = (1, 2)
#: Layout 2's extra fields, after the layout-1 vector: the object relative to the end-effector (object tasks only)
#: and the goal relative to the achieved goal (desired - achieved: the object, or the end-effector in Reach).
#: The goal-relative field depends on the goal, so HER relabelling rewrites it (policies.her_buffer).
RELATIVE_FIELDS: tuple[tuple[str, int], ...] = (("object_rel_ee_m", 3), ("goal_rel_achieved_m", 3))


@dataclass(frozen=True)
class RawSignals:
    """What a robot (simulated or real) reports at one instant. Shapes as in PROPRIO_FIELDS / OBJECT_FIELDS."""

    arm_q_rad: np.ndarray
    arm_qd_rad_s: np.ndarray
    ee_pos_m: np.ndarray
    ee_linvel_m_s: np.ndarray
    finger_width_m: float
    object_pos_m: np.ndarray | None = None
    object_quat_wxyz: np.ndarray | None = None
    object_linvel_m_s: np.ndarray | None = None
    object_angvel_rad_s: np.ndarray | None = None


def signals_from_joints(
    chain: KinematicChain, arm_q_rad: np.ndarray, arm_qd_rad_s: np.ndarray, finger_width_m: float
) -> RawSignals:
    """RawSignals of a robot that reports only its joints (the ROS node's case): the end-effector position and
    velocity come from forward kinematics of `chain` (base -> end-effector link, arm joints in chain order)."""
    names = chain.moving_joint_names
    q = dict(zip(names, np.asarray(arm_q_rad, float).tolist()))
    qd = dict(zip(names, np.asarray(arm_qd_rad_s, float).tolist()))
    ee_pos, ee_vel = chain.position_velocity(q, qd)
    return RawSignals(np.asarray(arm_q_rad, float), np.asarray(arm_qd_rad_s, float), ee_pos, ee_vel, finger_width_m)


class ObjectMotion:
    """The object's velocities as every observation defines them: finite differences of its pose between
    successive observations, (pos - pos_prev) / dt and the rotation vector from quat_prev to quat over dt.

    The simulator feeds it the object's pose at each control step, the policy node the newest object_pose at each
    control tick (stamped by the tracker), so a robot and the simulator give the same numbers for the same motion.
    A pose no newer than the last one leaves the velocities as they were; the first after `reset` gives zeros.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next pose gives zero velocities."""
        self._t_s: float | None = None
        self._pos = np.zeros(3)
        self._quat = np.array([1.0, 0.0, 0.0, 0.0])
        self.linvel_m_s = np.zeros(3)
        self.angvel_rad_s = np.zeros(3)

    def update(self, t_s: float, pos_m: np.ndarray, quat_wxyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Take the pose at time `t_s` (s); returns (linvel_m_s (3,), angvel_rad_s (3,)) in the world frame."""
        pos, quat = np.asarray(pos_m, float), np.asarray(quat_wxyz, float)
        if self._t_s is not None and t_s > self._t_s:
            dt = t_s - self._t_s
            self.linvel_m_s = (pos - self._pos) / dt
            self.angvel_rad_s = rotation_vector(self._quat, quat) / dt
        if self._t_s is None or t_s > self._t_s:
            self._t_s, self._pos, self._quat = t_s, pos.copy(), quat.copy()
        return self.linvel_m_s.copy(), self.angvel_rad_s.copy()


def observation_dim(with_object: bool, layout: int = 1) -> int:
    """Length of the observation vector."""
    base = PROPRIO_DIM + (OBJECT_DIM if with_object else 0)
    return base if layout == 1 else base + sum(n for _, n in _relative_fields(with_object))


def check_layout(layout: object) -> int:
    """The layout number itself when it is one of OBSERVATION_LAYOUTS; ValueError naming them otherwise."""
    if isinstance(layout, bool) or layout not in OBSERVATION_LAYOUTS:
        raise ValueError(f"obs_layout must be one of {list(OBSERVATION_LAYOUTS)}, got {layout!r}")
    return int(layout)


def _relative_fields(with_object: bool) -> tuple[tuple[str, int], ...]:
    return RELATIVE_FIELDS if with_object else RELATIVE_FIELDS[1:]


def with_layout(
    observation: np.ndarray, achieved_goal: np.ndarray, desired_goal: np.ndarray, with_object: bool, layout: int
) -> np.ndarray:
    """The layout-`layout` vector from a layout-1 `observation` (as build_observation, and any sensor noise or delay
    made it) and the goals beside it, (..., D) arrays: layout 1 unchanged, layout 2 with RELATIVE_FIELDS appended
    (float32)."""
    if layout == 1:
        return observation
    check_layout(layout)
    obs = np.asarray(observation, np.float32)
    goal_rel = np.asarray(desired_goal, np.float32) - np.asarray(achieved_goal, np.float32)
    if not with_object:
        return np.concatenate([obs, goal_rel], axis=-1)
    ee, pos = _LAYOUT1_OBJECT["ee_pos_m"], _LAYOUT1_OBJECT["object_pos_m"]
    return np.concatenate([obs, obs[..., pos] - obs[..., ee], goal_rel], axis=-1)


def build_observation(raw: RawSignals, with_object: bool) -> np.ndarray:
    """Concatenate the fields in the documented order into a float32 vector (observation_dim(with_object),).

    Object quaternions are sign-normalised (w >= 0) so the same rotation always gives the same numbers.
    """
    if with_object and (raw.object_pos_m is None or raw.object_quat_wxyz is None):
        raise ValueError("this task observes an object but no object state was given")
    parts = [raw.arm_q_rad, raw.arm_qd_rad_s, raw.ee_pos_m, raw.ee_linvel_m_s, (raw.finger_width_m,)]
    if with_object:
        quat = np.asarray(raw.object_quat_wxyz, dtype=float)
        parts += [
            raw.object_pos_m,
            -quat if quat[0] < 0 else quat,
            _ZERO3 if raw.object_linvel_m_s is None else raw.object_linvel_m_s,  # missing velocities stay zero
            _ZERO3 if raw.object_angvel_rad_s is None else raw.object_angvel_rad_s,
        ]
    out = np.concatenate(parts, dtype=np.float32)  # type: ignore[arg-type]
    if out.shape != (observation_dim(with_object),):
        raise ValueError(
            f"observation fields have the wrong sizes: got {out.size} values, want {observation_dim(with_object)}"
        )
    return out


_ZERO3 = np.zeros(3)


def field_slices(with_object: bool, layout: int = 1) -> dict[str, slice]:
    """Where each field (PROPRIO_FIELDS, then OBJECT_FIELDS, then layout 2's RELATIVE_FIELDS) sits in the
    observation vector."""
    fields = PROPRIO_FIELDS + (OBJECT_FIELDS if with_object else ())
    if layout != 1:
        fields += _relative_fields(with_object)
    offsets = np.cumsum([0] + [n for _, n in fields])
    return {name: slice(int(a), int(b)) for (name, _), a, b in zip(fields, offsets[:-1], offsets[1:])}


_LAYOUT1_OBJECT = field_slices(True)
