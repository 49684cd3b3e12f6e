"""The object tracker's decisions without ROS: camera model checks, marker detection and the object's pose in the
robot's base frame (sim2real_ros.object_tracker_node only moves messages). numpy and OpenCV only.

Chain of frames: base <- camera optical frame (the extrinsics, `camera_pose`) <- marker (ArUco + planar PnP on the
camera_info intrinsics) <- object (the marker's place on the object: sim.fiducials.marker_frames, a `cube` layout
with ids marker_id..marker_id+4 on the top and four sides, or a `top` layout with one marker). When several of the
object's markers are seen, the one seen largest gives the pose.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from sim.fiducials import (
    OBJECT_MARKER_DICTIONARY,
    OBJECT_MARKER_ID,
    OBJECT_MARKER_SIZE_M,
    marker_corners_m,
    marker_frames,
)
from sim.marker_pose import MarkerDetector, MarkerError, check_transform, rigid_pose
from sim.transforms import homogeneous, mat_to_quat, quat_to_mat
from sim2real_ros.messages import MessageError, image_to_rgb

#: Marker layouts: how many faces carry a marker (sim.fiducials.CUBE_FACES order).
LAYOUTS = {"cube": 5, "top": 1}
#: Distortion models the tracker understands (OpenCV's 5-coefficient model under its ROS name); zeros for none.
DISTORTION_MODELS = ("plumb_bob", "rational_polynomial", "")


@dataclass(frozen=True)
class TrackerSettings:
    """What the tracker looks for and what it trusts (ROS parameters of the same names)."""

    marker_id: int = OBJECT_MARKER_ID
    """The ArUco id on the object's top face; a cube's sides carry the next four."""
    marker_size_m: float = OBJECT_MARKER_SIZE_M
    """Printed side of the marker, black border included (m)."""
    dictionary: str = OBJECT_MARKER_DICTIONARY
    """OpenCV's name of the ArUco dictionary."""
    layout: str = "cube"
    """Which faces carry markers: cube (top and four sides) or top."""
    face_half_m: float = 0.02
    """Distance from the object's centre to its marked faces (m; the 4 cm cube's 0.02)."""
    base_frame: str = "panda_link0"
    """frame_id of the published poses: the robot's base frame, which camera_pose is given in."""
    max_reprojection_px: float = 1.5
    """A pose whose corners reproject further than this (RMS px) is not published (blur, partial occlusion)."""
    min_side_px: float = 12.0
    """A marker seen smaller than this (px) is not trusted."""
    max_rigid_reprojection_px: float = 2.5
    """Several faces seen: their joint pose is used when it reprojects within this (RMS px), else the best face's."""
    max_view_angle_deg: float = 65.0
    """A marker seen more obliquely than this (its normal against the line of sight) is not trusted: planar
    poses of grazing squares flip."""

    def check(self) -> TrackerSettings:
        if not self.marker_size_m > 0:
            raise MarkerError(f"marker_size_m must be > 0, got {self.marker_size_m}")
        if self.marker_id < 0:
            raise MarkerError(f"marker_id must be >= 0, got {self.marker_id}")
        if self.layout not in LAYOUTS:
            raise MarkerError(f"layout must be one of {list(LAYOUTS)}, got {self.layout!r}")
        if not (math.isfinite(self.face_half_m) and self.face_half_m > 0):
            raise MarkerError(f"face_half_m must be > 0 (m), got {self.face_half_m}")
        if not self.base_frame:
            raise MarkerError("base_frame must not be empty")
        return self


@dataclass(frozen=True)
class ObjectPose:
    """The object's pose in the base frame at the image's stamp, and what it rests on."""

    stamp_s: float
    pos_m: np.ndarray
    quat_wxyz: np.ndarray
    reprojection_px: float
    side_px: float
    processing_s: float


def parse_camera_pose(text: str | Sequence[float]) -> np.ndarray:
    """`camera_pose` as 7 numbers x, y, z (m), qw, qx, qy, qz: the camera's optical frame (OpenCV: x right, y down,
    z forward) in the base frame -> its 4x4 transform; refuses anything else with the reason."""
    values: list[float]
    try:
        if isinstance(text, str):
            values = [float(v) for v in text.replace(",", " ").split()]
        else:
            values = [float(v) for v in text]
    except ValueError as e:
        raise MarkerError(f"camera_pose must be 7 numbers 'x,y,z,qw,qx,qy,qz', got {text!r}") from e
    if len(values) != 7 or not all(math.isfinite(v) for v in values):
        raise MarkerError(f"camera_pose must be 7 finite numbers 'x,y,z,qw,qx,qy,qz', got {text!r}")
    q = np.asarray(values[3:])
    if abs(float(np.linalg.norm(q)) - 1.0) > 1e-3:
        raise MarkerError(f"camera_pose: the quaternion {values[3:]} is not a unit quaternion")
    return check_transform(homogeneous(quat_to_mat(q), np.asarray(values[:3])), "camera_pose")


#: The version of camera.yaml's provenance.camera_calibration this tracker reads (sim2real calibrate-camera's).
CAMERA_YAML_SCHEMA = 1


@dataclass(frozen=True)
class CalibratedCamera:
    """What the tracker takes from camera.yaml (sim2real calibrate-camera): the extrinsics, and the intrinsics
    camera_info must agree with."""

    base_from_optical: np.ndarray
    k: np.ndarray
    width: int
    height: int


def read_camera_yaml(path: str) -> CalibratedCamera:
    """camera.yaml's `provenance.camera_calibration` (a fixed scene camera's); MarkerError naming the file and the
    field otherwise."""
    import yaml

    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except OSError as e:
        raise MarkerError(f"camera_yaml {path}: cannot read it ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise MarkerError(f"camera_yaml {path}: not YAML ({e})") from None
    cal = ((data or {}).get("provenance") or {}).get("camera_calibration") if isinstance(data, dict) else None
    if not isinstance(cal, dict):
        raise MarkerError(f"camera_yaml {path}: no provenance.camera_calibration (write it with sim2real "
                          "calibrate-camera)")  # fmt: skip
    if cal.get("schema_version") != CAMERA_YAML_SCHEMA:
        raise MarkerError(f"camera_yaml {path}: provenance.camera_calibration.schema_version "
                          f"{cal.get('schema_version')!r}; this tracker reads {CAMERA_YAML_SCHEMA}")  # fmt: skip
    extrinsics = cal.get("base_from_optical")
    if not isinstance(extrinsics, dict) or "camera_pose" not in extrinsics:
        raise MarkerError(f"camera_yaml {path}: no base_from_optical.camera_pose (a wrist camera's calibration "
                          f"(mount {cal.get('mount')!r}) cannot place a fixed tracker camera)")  # fmt: skip
    k = np.asarray(cal.get("K"), float)
    if k.shape != (3, 3) or not np.all(np.isfinite(k)):
        raise MarkerError(f"camera_yaml {path}: K must be a finite 3x3 matrix")
    try:
        width, height = int(cal["image_width"]), int(cal["image_height"])
    except (KeyError, TypeError, ValueError):
        raise MarkerError(f"camera_yaml {path}: image_width and image_height must be integers") from None
    return CalibratedCamera(parse_camera_pose(str(extrinsics["camera_pose"])), k, width, height)


class ObjectTracker:
    """Turns camera images into object poses in the base frame. Give it camera_info before images."""

    def __init__(
        self, settings: TrackerSettings, base_from_optical: np.ndarray, calibrated: CalibratedCamera | None = None
    ) -> None:
        self.settings = settings.check()
        self.base_from_optical = check_transform(base_from_optical, "camera_pose")
        self.calibrated = calibrated
        """The calibration the extrinsics came from: camera_info must match its size and intrinsics (2%)."""
        frames = marker_frames(settings.face_half_m, LAYOUTS[settings.layout])
        #: marker id -> the object's pose in that marker's frame
        self.marker_from_object = {settings.marker_id + k: np.linalg.inv(t) for k, t in frames.items()}
        corners = np.c_[marker_corners_m(settings.marker_size_m), np.ones(4)]
        #: marker id -> its corners (4, 3) in the object's frame
        self.corners_in_object = {settings.marker_id + k: (corners @ t.T)[:, :3] for k, t in frames.items()}
        self.detector: MarkerDetector | None = None
        self.frame_id: str | None = None
        self.size: tuple[int, int] | None = None
        self._camera: tuple[Any, ...] | None = None
        self.counts = {"images": 0, "published": 0, "not_seen": 0, "refused": 0}

    def on_camera_info(
        self, width: int, height: int, k: Sequence[float], d: Sequence[float], distortion_model: str, frame_id: str
    ) -> str | None:
        """Take sensor_msgs/CameraInfo; returns why it cannot be used (None: the detector uses it)."""
        key = (width, height, tuple(k), tuple(d), distortion_model, frame_id)
        if key == self._camera:
            return None
        try:
            if width <= 0 or height <= 0:
                raise MarkerError(f"camera_info: resolution {width}x{height} is empty")
            if distortion_model not in DISTORTION_MODELS:
                raise MarkerError(f"camera_info: distortion model {distortion_model!r} is not supported; "
                                  f"use one of {[m for m in DISTORTION_MODELS if m]}")  # fmt: skip
            if len(k) != 9:
                raise MarkerError(f"camera_info: k has {len(k)} values, not 9")
            c = self.calibrated
            if c is not None and (
                (width, height) != (c.width, c.height)
                or not np.allclose(np.asarray(k, float), c.k.ravel(), rtol=0.02, atol=1.0)
            ):
                raise MarkerError(f"camera_info: {width}x{height}, k {list(k)} differ from the calibration's "
                                  f"{c.width}x{c.height}, k {c.k.ravel().tolist()} (by more than 2%): another "
                                  "camera, resolution or zoom than the one calibrated")  # fmt: skip
            dist = np.zeros(5) if not len(d) else np.asarray(d, float)
            detector = MarkerDetector(self.settings.marker_size_m, np.asarray(k, float), dist,
                                      self.settings.dictionary)  # fmt: skip
        except MarkerError as e:
            self.detector, self._camera = None, None
            return str(e).replace("camera matrix k", "camera_info: k")
        self.detector, self.frame_id, self.size, self._camera = detector, frame_id, (width, height), key
        return None

    def on_image(
        self, height: int, width: int, encoding: str, step: int, data: Any, frame_id: str, stamp_s: float
    ) -> ObjectPose | str:
        """Take sensor_msgs/Image; returns the object's pose, or why there is none this frame."""
        started = time.perf_counter()
        self.counts["images"] += 1
        try:
            if self.detector is None or self.size is None:
                raise MessageError("no usable camera/camera_info yet")
            if (width, height) != self.size:
                raise MessageError(f"camera/image_raw is {width}x{height}, camera_info says {self.size[0]}x"
                                   f"{self.size[1]}")  # fmt: skip
            if frame_id != self.frame_id:
                raise MessageError(f"camera/image_raw frame_id {frame_id!r} differs from camera_info's "
                                   f"{self.frame_id!r}")  # fmt: skip
            if not (math.isfinite(stamp_s) and stamp_s > 0):
                raise MessageError("camera/image_raw has a zero stamp")
            rgb = image_to_rgb(height, width, encoding, step, data)
        except MessageError as e:
            self.counts["refused"] += 1
            return str(e)
        s = self.settings
        ids = sorted(self.marker_from_object)
        sightings = [x for x in self.detector.detect(rgb) if x.marker_id in self.marker_from_object]
        counts = np.bincount([x.marker_id for x in sightings], minlength=max(ids) + 1)
        if np.any(counts > 1):
            self.counts["not_seen"] += 1  # two prints of one id: which is the object's is unknown
            return f"marker {int(np.argmax(counts))} seen {int(counts.max())} times: ambiguous"
        min_cos = math.cos(math.radians(s.max_view_angle_deg))
        trusted = [x for x in sightings if x.side_px >= s.min_side_px and x.reprojection_px <= s.max_reprojection_px
                   and x.facing >= min_cos]  # fmt: skip
        if not trusted:
            self.counts["not_seen"] += 1
            if not sightings:
                return f"none of the object's markers {ids} seen"
            x = max(sightings, key=lambda v: v.side_px)
            oblique = math.degrees(math.acos(max(-1.0, min(1.0, x.facing))))
            return (f"marker {x.marker_id} not trusted: {x.side_px:.1f} px wide (min {s.min_side_px}), "
                    f"reprojection {x.reprojection_px:.2f} px (max {s.max_reprojection_px}), seen {oblique:.0f} deg "
                    f"obliquely (max {s.max_view_angle_deg})")  # fmt: skip
        seen = max(trusted, key=lambda v: v.side_px * v.facing)  # the largest, most frontal print
        pose = self.base_from_optical @ homogeneous(seen.rot_cam_marker, seen.pos_cam_marker_m)
        pose = pose @ self.marker_from_object[seen.marker_id]
        usable = [x for x in sightings if x.side_px >= s.min_side_px]
        if len(usable) > 1:  # several faces: one pose from all their corners (no planar ambiguity), if it fits
            try:
                in_optical, rms = rigid_pose(self.detector, usable, self.corners_in_object)
            except MarkerError:
                rms = math.inf
            if rms <= s.max_rigid_reprojection_px:
                pose = self.base_from_optical @ in_optical
                seen = replace(seen, reprojection_px=rms)
        self.counts["published"] += 1
        return ObjectPose(stamp_s, pose[:3, 3].copy(), mat_to_quat(pose[:3, :3]), seen.reprojection_px,
                          seen.side_px, time.perf_counter() - started)  # fmt: skip
