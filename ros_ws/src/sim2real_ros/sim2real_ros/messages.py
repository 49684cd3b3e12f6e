"""Checks and conversions for the messages the policy node reads and writes, on plain values (no rclpy):
sensor_msgs/Image to RGB without cv_bridge, joint_states indexed by name, and JointTrajectory validation as
ros2_control's joint_trajectory_controller does it (plus the finiteness check it lacks)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sim.transforms import box_in_frame

#: Encodings the node accepts -> (channels, index of R, G, B in a pixel; None for mono).
ENCODINGS: dict[str, tuple[int, tuple[int, int, int] | None]] = {
    "rgb8": (3, (0, 1, 2)),
    "bgr8": (3, (2, 1, 0)),
    "rgba8": (4, (0, 1, 2)),
    "bgra8": (4, (2, 1, 0)),
    "mono8": (1, None),
}


class MessageError(ValueError):
    """A message the node must not act on; the text says which field is wrong."""


def image_to_rgb(
    height: int, width: int, encoding: str, step: int, data: bytes | bytearray | Sequence[int]
) -> np.ndarray:
    """sensor_msgs/Image fields -> (H, W, 3) uint8 RGB, row 0 at the top (the renderers' orientation).

    Row padding (`step` > width x channels) is dropped; Bayer, YUV and 16-bit encodings are refused, as are
    buffers whose length is not step x height.
    """
    if encoding not in ENCODINGS:
        raise MessageError(f"image encoding {encoding!r} is not supported; use one of {sorted(ENCODINGS)}")
    channels, order = ENCODINGS[encoding]
    if height <= 0 or width <= 0:
        raise MessageError(f"image size {width}x{height} is empty")
    if step < width * channels:
        raise MessageError(f"image step {step} is shorter than width x channels = {width * channels}")
    try:  # rclpy's Image.data is an array.array: read it in place, no copy
        view = memoryview(data)  # type: ignore[arg-type]
    except TypeError:  # a plain sequence of ints
        view = memoryview(bytes(data))
    buf = np.frombuffer(view, np.uint8)
    if buf.size != step * height:
        raise MessageError(f"image data holds {buf.size} bytes, expected step x height = {step * height}")
    rows = buf.reshape(height, step)[:, : width * channels].reshape(height, width, channels)
    if order is None:
        return np.repeat(rows, 3, axis=2)
    if order == (0, 1, 2):  # rgb8 / rgba8: a view when rows are unpadded (the common case costs no copy)
        return np.ascontiguousarray(rows[..., :3])
    out = np.empty((height, width, 3), np.uint8)  # bgr8 / bgra8: channel by channel is 8x faster than rows[..., ::-1]
    for dst, src in enumerate(order):
        out[..., dst] = rows[..., src]
    return out


def check_joint_state_shape(
    topic: str, names: Sequence[str], position: Sequence[float], velocity: Sequence[float]
) -> list[str]:
    """The names of a sensor_msgs/JointState as a list; MessageError for duplicate names and for positions (or
    non-empty velocities) not matching the names in number."""
    names = list(names)
    if len(set(names)) != len(names):
        raise MessageError(f"{topic} names joints twice: {sorted({n for n in names if names.count(n) > 1})}")
    if len(position) != len(names):
        raise MessageError(f"{topic} has {len(names)} names but {len(position)} positions")
    if len(velocity) not in (0, len(names)):
        raise MessageError(f"{topic} has {len(names)} names but {len(velocity)} velocities (empty or equal)")
    return names


def joint_positions(
    names: Sequence[str], position: Sequence[float], velocity: Sequence[float], required: Sequence[str]
) -> tuple[np.ndarray, np.ndarray | None]:
    """sensor_msgs/JointState -> positions (and velocities, None when the message has none) of `required`, in
    that order, looked up by name: order, extra joints (a gripper) and partial messages are normal; a missing
    required joint, duplicates, mismatched lengths and non-finite values are faults."""
    names = check_joint_state_shape("joint_states", names, position, velocity)
    index = {n: i for i, n in enumerate(names)}
    missing = [j for j in required if j not in index]
    if missing:
        raise MessageError(f"joint_states lacks joints {missing} (has {names})")
    sel = [index[j] for j in required]
    q = np.asarray(position, dtype=float)[sel]
    qd = np.asarray(velocity, dtype=float)[sel] if len(velocity) else None
    if not np.all(np.isfinite(q)) or (qd is not None and not np.all(np.isfinite(qd))):
        raise MessageError(f"joint_states holds non-finite values for {list(required)}")
    return q, qd


def check_stamp(topic: str, stamp_s: float, ros_s: float, max_age_s: float, max_lead_s: float) -> None:
    """MessageError unless a header stamp is set, at most `max_age_s` older and `max_lead_s` newer than now."""
    if stamp_s <= 0.0:
        raise MessageError(f"{topic}: header.stamp is zero; unstamped messages are never accepted")
    if ros_s - stamp_s > max_age_s:
        raise MessageError(f"{topic}: header.stamp is {ros_s - stamp_s:.3f} s old (> max_stamp_age_s {max_age_s})")
    if stamp_s - ros_s > max_lead_s:
        raise MessageError(f"{topic}: header.stamp is {stamp_s - ros_s:.3f} s in the future")


def limits_violation(q: np.ndarray, names: Sequence[str], limits_rad: np.ndarray, tolerance_rad: float) -> str | None:
    """Why joint positions `q` (n,) cannot be the arm's (some outside `limits_rad` (n, 2) by more than the
    tolerance: another robot, or degrees), or None."""
    outside = (q < limits_rad[:, 0] - tolerance_rad) | (q > limits_rad[:, 1] + tolerance_rad)
    if not np.any(outside):
        return None
    bad = [names[int(i)] for i in np.flatnonzero(outside)]
    return f"joint_states: {bad} outside the joint limits (wrong robot or units?)"


def validate_joint_trajectory(
    joint_names: Sequence[str],
    points: Sequence[tuple[Sequence[float], Sequence[float], float]],
    controller_joints: Sequence[str],
    stamp_s: float = 0.0,
) -> list[str]:
    """Why joint_trajectory_controller would refuse this JointTrajectory (empty: it accepts it).

    `points`: (positions, velocities, time_from_start_s) each. Mirrors validate_trajectory_msg (kilted): joint
    names all known and complete (allow_partial_joints_goal false), no empty names or points, strictly increasing
    time_from_start, sizes equal to the joint count, zero last-point velocity when velocities are given, a zero
    header stamp (start now) from our side; and adds the check the controller lacks: finite values.
    """
    problems = []
    names = list(joint_names)
    if not names:
        problems.append("empty joint_names")
    unknown = [n for n in names if n not in controller_joints]
    if unknown:
        problems.append(f"unknown joints {unknown}")
    if sorted(names) != sorted(controller_joints):
        problems.append(f"joint_names {names} do not cover the controller's {list(controller_joints)}")
    if not points:
        problems.append("empty trajectory (no points)")
    if stamp_s != 0.0:
        problems.append("header.stamp must be 0 (start now)")
    last_t = 0.0
    for i, (pos, vel, t) in enumerate(points):
        if len(pos) != len(names):
            problems.append(f"point {i}: {len(pos)} positions for {len(names)} joints")
        if len(vel) not in (0, len(names)):
            problems.append(f"point {i}: {len(vel)} velocities for {len(names)} joints")
        if not (np.all(np.isfinite(pos)) and np.all(np.isfinite(vel)) and np.isfinite(t)):
            problems.append(f"point {i}: non-finite values")
        if not t > last_t:
            problems.append(f"point {i}: time_from_start {t} s does not increase strictly (> {last_t} s)")
        last_t = t
    if points and len(points[-1][1]) and np.any(np.asarray(points[-1][1], float) != 0.0):
        problems.append("last point has non-zero velocity")
    return problems


def workspace_text(
    goal: Any, base_pos_m: Sequence[float] | np.ndarray, base_quat_wxyz: Sequence[float] | np.ndarray
) -> str:
    """A manifest's trained goal box (`goal`: world_low_m, world_high_m, frame_id) as a user reads it, in the base
    frame at `base_pos_m`, `base_quat_wxyz`: x [lo, hi], y [..], z [..] m (frame)."""
    lo, hi = np.asarray(goal.world_low_m, float), np.asarray(goal.world_high_m, float)
    box = box_in_frame(lo, hi, np.asarray(base_pos_m, float), np.asarray(base_quat_wxyz, float))
    axes = ", ".join(f"{a} [{box[0, k]:.3f}, {box[1, k]:.3f}]" for k, a in enumerate("xyz"))
    return f"{axes} m ({goal.frame_id})"
