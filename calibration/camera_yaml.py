"""camera.yaml: a calibration as a randomization space centred on the measurement (the simulated camera's pose and
field of view, `sim2real train --randomization` reads it), the calibration itself in `provenance.camera_calibration`
(intrinsics, distortion, extrinsics, errors, views; the object tracker reads it)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from calibration.camera import SCHEMA_VERSION, BoardSpec, CameraCalibration, CameraCalibrationError
from calibration.rotations import quat_wxyz
from sim.transforms import pose_string

#: MuJoCo's camera frame (looks along -z, +y up) is the optical frame turned 180 deg about x.
_OPTICAL_TO_SIM = np.diag([1.0, -1.0, -1.0])


def fovy_deg(fy_px: float, height: int) -> float:
    """The vertical field of view (deg) of a pinhole camera with focal length fy over `height` rows."""
    return float(np.degrees(2.0 * math.atan(0.5 * height / fy_px)))


def sim_camera_pose(cal: CameraCalibration, world_from_base: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """The simulated camera's pose in MuJoCo's convention: position (3,) m, quaternion (4,) wxyz and its frame, in
    the world (scene mount; `world_from_base` (4, 4) places the robot's base there) or in the link (wrist mount)."""
    parent = world_from_base @ cal.x if cal.mount == "scene" else cal.x
    rot = parent[:3, :3] @ _OPTICAL_TO_SIM
    return parent[:3, 3].copy(), quat_wxyz(rot), "world" if cal.mount == "scene" else cal.link


def provenance(
    cal: CameraCalibration,
    board: BoardSpec,
    camera_name: str,
    world_from_base: np.ndarray,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The `provenance.camera_calibration` mapping of camera.yaml: plain YAML data."""
    pos, quat, frame = sim_camera_pose(cal, world_from_base)
    x_quat = quat_wxyz(cal.x[:3, :3])
    extrinsics_key = "base_from_optical" if cal.mount == "scene" else "link_from_optical"
    extrinsics: dict[str, Any] = {
        "frame": "optical (OpenCV: x right, y down, z forward)",
        "parent": "base" if cal.mount == "scene" else cal.link,
        "position_m": _floats(cal.x[:3, 3]),
        "quat_wxyz": _floats(x_quat),
        "camera_pose": pose_string(cal.x),
    }
    out: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "written_by": "sim2real calibrate-camera",
        "mount": cal.mount,
        "link": cal.link,
        "image_width": cal.width,
        "image_height": cal.height,
        "K": [_floats(row) for row in cal.k],
        "K_std_px": dict(zip(("fx", "fy", "cx", "cy"), _floats(cal.k_std))),
        "distortion_model": "plumb_bob",
        "distortion_fitted": cal.distortion_model,
        "distortion": _floats(cal.dist),
        "reprojection_rms_px": float(cal.rms_px),
        "chain_reprojection_rms_px": float(cal.chain_rms_px),
        extrinsics_key: extrinsics,
        "hand_eye": {
            "method": f"cv2.calibrateHandEye {cal.hand_eye_method}, refined on all corners through the chain",
            "other_end": {
                "name": "link_from_board" if cal.mount == "scene" else "base_from_board",
                "position_m": _floats(cal.y[:3, 3]),
                "quat_wxyz": _floats(quat_wxyz(cal.y[:3, :3])),
            },
            "chain_residual_mm": {
                "median": float(np.median(cal.chain_residual_mm)),
                "max": float(np.max(cal.chain_residual_mm)),
            },
            "chain_residual_deg": {
                "median": float(np.median(cal.chain_residual_deg)),
                "max": float(np.max(cal.chain_residual_deg)),
            },
            "rotation_spread_deg": _floats(cal.rotation_spread_deg),
        },  # fmt: skip
        "board": board.to_dict(),
        "board_tilt_rms_deg": float(cal.board_tilt_rms_deg),
        "image_coverage": float(cal.coverage),
        "views": {
            "used": len(cal.used),
            "dropped": len(cal.dropped),
            "used_names": list(cal.used),
            "per_view_rms_px": _floats(cal.view_rms_px),
            "dropped_why": [{"name": d.name, "reason": d.reason} for d in cal.dropped],
        },
        "sim_camera": {
            "name": camera_name,
            "frame": frame,
            "convention": "MuJoCo: looks along -z, +y up (the optical frame turned 180 deg about x)",
            "pos_m": _floats(pos),
            "quat_wxyz": _floats(quat),
            "fovy_deg": fovy_deg(float(cal.k[1, 1]), cal.height),
            "world_from_base_m": _floats(world_from_base[:3, 3]),
            "note": "the simulator's pinhole has square pixels, a centred principal point and no distortion; "
            "fovy comes from fy",
        },
    }
    out.update(extra or {})
    return out


def camera_space(
    cal: CameraCalibration,
    board: BoardSpec,
    camera_name: str,
    world_from_base: np.ndarray,
    pos_range_m: float,
    fovy_range_deg: float,
    extra: dict[str, Any] | None = None,
) -> Any:
    """camera.yaml as a randomization ParameterSpace: `camera_pos:<name>` and `camera_fovy:<name>` drawn uniformly
    within +-pos_range_m / +-fovy_range_deg of the measurement, `camera_quat:<name>` held at it, and the
    calibration in `provenance.camera_calibration`."""
    from randomization.space import Parameter, ParameterSpace

    if not (pos_range_m >= 0 and fovy_range_deg >= 0):
        raise CameraCalibrationError(
            f"--pos-range-m and --fovy-range-deg must be >= 0, got {pos_range_m}, {fovy_range_deg}"
        )
    pos, quat, frame = sim_camera_pose(cal, world_from_base)
    fovy = fovy_deg(float(cal.k[1, 1]), cal.height)
    if fovy - fovy_range_deg <= 0 or fovy + fovy_range_deg >= 180:
        raise CameraCalibrationError(
            f"--fovy-range-deg {fovy_range_deg} takes the field of view {fovy:.2f} deg out of (0, 180)"
        )
    params = (
        Parameter(f"camera_pos:{camera_name}", pos, pos - pos_range_m, pos + pos_range_m,
                  doc=f"calibrated camera position ({frame} frame, m) +- {pos_range_m:g} m"),
        Parameter(f"camera_quat:{camera_name}", quat, quat.copy(), quat.copy(),
                  doc=f"calibrated camera orientation ({frame} frame, wxyz, MuJoCo's camera convention), held"),
        Parameter(f"camera_fovy:{camera_name}", np.array(fovy), np.array(fovy - fovy_range_deg),
                  np.array(fovy + fovy_range_deg),
                  doc=f"calibrated vertical field of view (deg, from fy) +- {fovy_range_deg:g}"),
    )  # fmt: skip
    doc = (f"The {camera_name} camera as calibrated by sim2real calibrate-camera ({len(cal.used)} views, "
           f"{cal.rms_px:.2f} px RMS): its pose and field of view, centred on the measurement")  # fmt: skip
    calibration = provenance(cal, board, camera_name, world_from_base, extra)
    return ParameterSpace(params, doc=doc, provenance={"camera_calibration": calibration})


def _floats(values: Any) -> list[float]:
    return [float(v) for v in np.asarray(values, float).reshape(-1)]
