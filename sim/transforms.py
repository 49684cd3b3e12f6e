"""Rotation helpers in plain numpy. Quaternions are (w, x, y, z) everywhere in our API."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def rpy_to_mat(rpy: np.ndarray) -> np.ndarray:
    """URDF roll-pitch-yaw (3,) rad -> rotation matrix (3, 3), R = Rz(yaw) Ry(pitch) Rx(roll)."""
    r, p, y = rpy
    cr, sr, cp, sp, cy, sy = np.cos(r), np.sin(r), np.cos(p), np.sin(p), np.cos(y), np.sin(y)
    return np.array(
        [
            [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
            [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
            [-sp, cp * sr, cp * cr],
        ]
    )


def mat_to_quat(m: np.ndarray) -> np.ndarray:
    """Rotation matrix (3, 3) -> unit quaternion (4,) wxyz with w >= 0."""
    tr = m[0, 0] + m[1, 1] + m[2, 2]
    if tr > 0:
        s = 2.0 * np.sqrt(tr + 1.0)
        q = np.array([0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s])
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = np.array([(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s])
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = np.array([(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s])
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = np.array([(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s])
    q /= np.linalg.norm(q)
    return q if q[0] >= 0 else -q


def quat_to_mat(q: np.ndarray) -> np.ndarray:
    """Quaternion (4,) wxyz -> rotation matrix (3, 3)."""
    w, x, y, z = np.asarray(q, dtype=float) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def xyzw_to_wxyz(q: np.ndarray | tuple[float, ...]) -> np.ndarray:
    """PyBullet (x, y, z, w) -> our (w, x, y, z)."""
    return np.array([q[3], q[0], q[1], q[2]], dtype=float)


def wxyz_to_xyzw(q: np.ndarray | tuple[float, ...]) -> list[float]:
    """Our (w, x, y, z) -> PyBullet (x, y, z, w)."""
    return [float(q[1]), float(q[2]), float(q[3]), float(q[0])]


def quat_angle_rad(q1: np.ndarray, q2: np.ndarray) -> float:
    """Angle (rad) of the rotation between two unit quaternions (either sign)."""
    d = abs(float(np.dot(q1, q2)) / float(np.linalg.norm(q1) * np.linalg.norm(q2)))
    return 2.0 * float(np.arccos(min(1.0, d)))


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a * b of quaternions (4,) wxyz: the rotation b, then a."""
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return np.array([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw])  # fmt: skip


def rotation_vector(q_from: np.ndarray, q_to: np.ndarray) -> np.ndarray:
    """The rotation (3,) rad, axis times angle in the world frame, that turns orientation `q_from` into `q_to`
    (wxyz, either sign): the shorter way, angle in [0, pi]."""
    d = quat_mul(np.asarray(q_to, float), np.array([q_from[0], -q_from[1], -q_from[2], -q_from[3]], float))
    d /= np.linalg.norm(d)
    if d[0] < 0:
        d = -d
    s = float(np.linalg.norm(d[1:]))
    if s < 1e-12:
        return 2.0 * d[1:]  # small angle: sin(a/2) ~ a/2
    return (2.0 * np.arctan2(s, d[0]) / s) * d[1:]


def look_at_quat(eye: np.ndarray, target: np.ndarray, up: tuple[float, float, float] = (0.0, 0.0, 1.0)) -> np.ndarray:
    """Camera orientation (4,) wxyz for a camera at `eye` looking at `target`.

    Camera frame convention (MuJoCo's): the camera looks along its -z axis, +y is image up, +x image right.
    """
    forward = np.asarray(target, float) - np.asarray(eye, float)
    forward /= np.linalg.norm(forward)
    z = -forward
    x = np.cross(np.asarray(up, float), z)
    if np.linalg.norm(x) < 1e-9:  # looking straight along `up`
        x = np.cross(np.array([0.0, 1.0, 0.0]), z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return mat_to_quat(np.stack([x, y, z], axis=1))


def homogeneous(rotation: np.ndarray, translation: np.ndarray | Sequence[float]) -> np.ndarray:
    """The 4x4 rigid transform of a rotation (3, 3) and a translation (3,)."""
    t = np.eye(4)
    t[:3, :3] = rotation
    t[:3, 3] = np.asarray(translation, float).reshape(3)
    return t


def pose_string(t: np.ndarray) -> str:
    """A 4x4 transform as `x,y,z,qw,qx,qy,qz` (m; the object tracker's camera_pose, `sim2real deploy
    --camera-pose`)."""
    q = mat_to_quat(np.asarray(t, float)[:3, :3])
    return ",".join(f"{v:.6f}" for v in np.asarray(t, float)[:3, 3]) + "," + ",".join(f"{v:.7f}" for v in q)


def box_in_frame(
    low_m: np.ndarray, high_m: np.ndarray, frame_pos_m: np.ndarray, frame_quat_wxyz: np.ndarray
) -> np.ndarray:
    """An axis-aligned box given in the parent frame, seen from a frame at `frame_pos_m`, `frame_quat_wxyz` in it:
    the bounds (2, 3) of its corners there (the box itself when the frame is not rotated)."""
    lo, hi = np.asarray(low_m, float), np.asarray(high_m, float)
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    local = (corners - np.asarray(frame_pos_m, float)) @ quat_to_mat(np.asarray(frame_quat_wxyz, float))
    return np.stack([local.min(axis=0), local.max(axis=0)])
