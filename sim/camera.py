"""Pinhole camera maths shared by both backends: intrinsics from a vertical field of view, and projection."""

from __future__ import annotations

import numpy as np

from sim.transforms import homogeneous, quat_to_mat


def intrinsics(fovy_deg: float, width: int, height: int) -> np.ndarray:
    """Camera matrix K (3, 3) for square pixels and a vertical field of view, principal point at the centre."""
    f = 0.5 * height / np.tan(np.deg2rad(fovy_deg) / 2.0)
    return np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])


def project(
    points_w: np.ndarray,
    cam_pos_m: np.ndarray,
    cam_quat: np.ndarray,
    fovy_deg: float,
    width: int,
    height: int,
) -> np.ndarray:
    """Project world points (N, 3) to pixel coordinates (N, 2) as (column u, row v) from the image's top left.

    The camera looks along its -z axis with +y up (MuJoCo's convention); points behind it give NaN.
    """
    r = quat_to_mat(cam_quat)
    p_cam = (np.atleast_2d(points_w) - cam_pos_m) @ r  # world -> camera frame
    k = intrinsics(fovy_deg, width, height)
    depth = -p_cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = k[0, 2] + k[0, 0] * p_cam[:, 0] / depth
        v = k[1, 2] - k[1, 1] * p_cam[:, 1] / depth
    out = np.stack([u, v], axis=1)
    out[depth <= 0] = np.nan
    return out


def base_from_optical(
    camera_pos_m: np.ndarray,
    camera_quat_wxyz: np.ndarray,
    base_pos_m: np.ndarray,
    base_quat_wxyz: np.ndarray | None = None,
) -> np.ndarray:
    """The 4x4 pose of a simulated camera's optical frame (OpenCV: x right, y down, z forward) in the robot's base
    frame, from the camera's and the base's world poses (the camera looks along its -z, +y up): the extrinsics a
    camera calibration measures, exact."""
    optical = quat_to_mat(np.asarray(camera_quat_wxyz, float)) @ np.diag([1.0, -1.0, -1.0])
    base = np.eye(3) if base_quat_wxyz is None else quat_to_mat(np.asarray(base_quat_wxyz, float))
    return homogeneous(base.T @ optical, base.T @ (np.asarray(camera_pos_m, float) - np.asarray(base_pos_m, float)))
