"""Rotation and rigid-transform helpers of camera calibration on numpy-quaternion: conversions, robust averages,
spreads, and poses as the tracker's `camera_pose` strings."""

from __future__ import annotations

import math

import numpy as np


def quat_wxyz(rotation: np.ndarray) -> np.ndarray:
    """Rotation matrix (3, 3) or (N, 3, 3) -> unit quaternion(s) (4,) / (N, 4) wxyz with w >= 0."""
    import quaternion

    q = quaternion.as_float_array(quaternion.from_rotation_matrix(np.asarray(rotation, float), nonorthogonal=False))
    q = np.array(q, float).reshape(-1, 4)
    q[q[:, 0] < 0] *= -1.0
    return q[0] if np.ndim(rotation) == 2 else q


def rotation_matrix(q_wxyz: np.ndarray) -> np.ndarray:
    """Quaternion(s) (4,) / (N, 4) wxyz -> rotation matrix (3, 3) / (N, 3, 3)."""
    import quaternion

    q = np.asarray(q_wxyz, float)
    return np.asarray(quaternion.as_rotation_matrix(quaternion.as_quat_array(q.reshape(-1, 4)))).reshape(
        q.shape[:-1] + (3, 3)
    )


def average_rotation(rotations: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """The mean (3, 3) of rotations (N, 3, 3): the rotation whose quaternion maximises sum w (q . q_i)^2 (Markley
    et al. 2007; the sign of each quaternion does not matter)."""
    q = quat_wxyz(np.asarray(rotations, float).reshape(-1, 3, 3))
    w = np.ones(len(q)) if weights is None else np.asarray(weights, float)
    _, vecs = np.linalg.eigh((q * w[:, None]).T @ q)
    return rotation_matrix(vecs[:, -1])


def rotation_angles_deg(rotations: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Angle (N,) in degrees of each rotation (N, 3, 3) from `reference` (3, 3)."""
    import quaternion

    q = quaternion.from_rotation_matrix(np.asarray(rotations, float).reshape(-1, 3, 3), nonorthogonal=False)
    r = quaternion.from_rotation_matrix(np.asarray(reference, float), nonorthogonal=False)
    return np.degrees(np.asarray(quaternion.rotation_intrinsic_distance(q, r), float)).reshape(-1)


def robust_mean_pose(poses: np.ndarray, rounds: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """A robust mean (4, 4) of rigid transforms (N, 4, 4): rotation average and mean translation over the poses
    within max(3 x the median, 1 mm / 0.1 deg) of the current mean, a few rounds; and which poses were kept (N,)."""
    poses = np.asarray(poses, float)
    keep = np.ones(len(poses), bool)
    mean = np.eye(4)
    for _ in range(rounds):
        mean[:3, :3] = average_rotation(poses[keep, :3, :3])
        mean[:3, 3] = np.mean(poses[keep, :3, 3], axis=0)
        ang = rotation_angles_deg(poses[:, :3, :3], mean[:3, :3])
        dist = np.linalg.norm(poses[:, :3, 3] - mean[:3, 3], axis=1)
        new = (ang <= max(3.0 * float(np.median(ang[keep])), 0.1)) & (
            dist <= max(3.0 * float(np.median(dist[keep])), 1e-3)
        )
        if new.sum() < max(3, len(poses) // 2) or np.array_equal(new, keep):
            break
        keep = new
    return mean, keep


def rotation_spread_deg(rotations: np.ndarray) -> tuple[float, float, float]:
    """How far rotations (N, 3, 3) spread about their mean: the RMS (deg) of their rotation vectors from the mean
    along each principal axis, largest first. Rotations about one axis only give (a, 0, 0)."""
    import quaternion

    rotations = np.asarray(rotations, float).reshape(-1, 3, 3)
    mean = quaternion.from_rotation_matrix(average_rotation(rotations), nonorthogonal=False)
    q = quaternion.from_rotation_matrix(rotations, nonorthogonal=False)
    rv = np.asarray(quaternion.as_rotation_vector(mean.conjugate() * q), float).reshape(-1, 3)
    s = np.linalg.svd(rv, compute_uv=False) / math.sqrt(len(rv))
    s = np.concatenate([s, np.zeros(3 - len(s))])
    return float(np.degrees(s[0])), float(np.degrees(s[1])), float(np.degrees(s[2]))


def board_tilt_rms_deg(optical_from_board: np.ndarray) -> float:
    """RMS angle (deg) between the board normals (N views, seen from the camera) and their mean direction."""
    normals = np.asarray(optical_from_board, float)[:, :3, 2]
    mean = normals.mean(axis=0)
    mean /= np.linalg.norm(mean)
    ang = np.arccos(np.clip(normals @ mean, -1.0, 1.0))
    return float(np.degrees(np.sqrt(np.mean(ang**2))))


def invert(t: np.ndarray) -> np.ndarray:
    """Inverse of rigid transform(s) (4, 4) or (N, 4, 4)."""
    t = np.asarray(t, float)
    out = np.zeros_like(t)
    rt = np.swapaxes(t[..., :3, :3], -1, -2)
    out[..., :3, :3] = rt
    out[..., :3, 3] = -np.einsum("...ij,...j->...i", rt, t[..., :3, 3])
    out[..., 3, 3] = 1.0
    return out
