"""Where a printed square marker is, from one camera image: ArUco detection and a planar PnP (OpenCV).

Shared by the object tracker node (robot side) and camera calibration; numpy and OpenCV only (cv2 is imported when
a detector is built). Frames: the camera's optical frame is OpenCV's (x right, y down, z forward); the marker frame
is sim.fiducials' (x right, y up, z out of the print).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.fiducials import OBJECT_MARKER_DICTIONARY, marker_corners_m
from sim.transforms import homogeneous

#: Images are gray or RGB uint8; anything else is refused by name.
GRAY, RGB = 2, 3


class MarkerError(ValueError):
    """An image or camera model the detector cannot work with."""


@dataclass(frozen=True)
class Sighting:
    """One marker seen in one image: its pose in the camera's optical frame and how well it fits."""

    marker_id: int
    corners_px: np.ndarray
    """(4, 2) image corners, OpenCV's order (top-left, top-right, bottom-right, bottom-left of the print)."""
    rot_cam_marker: np.ndarray
    """(3, 3) marker axes in the optical frame."""
    pos_cam_marker_m: np.ndarray
    """(3,) marker centre in the optical frame."""
    reprojection_px: float
    """RMS distance between the detected corners and the pose's projection of them."""

    @property
    def facing(self) -> float:
        """Cosine of the angle between the print's normal and the line of sight to the camera (1: head-on)."""
        to_camera = -self.pos_cam_marker_m / float(np.linalg.norm(self.pos_cam_marker_m))
        return float(self.rot_cam_marker[:, 2] @ to_camera)

    @property
    def side_px(self) -> float:
        """Mean side length of the marker in the image (px): how large it is seen."""
        c = self.corners_px
        return float(np.mean(np.linalg.norm(c - np.roll(c, -1, axis=0), axis=1)))


class MarkerDetector:
    """Finds ArUco markers of `dictionary` and estimates their poses (side `marker_size_m`, border included) with
    the pinhole model `k` (3, 3) and distortion `dist` (plumb_bob: k1, k2, p1, p2, k3; zeros for none)."""

    def __init__(
        self,
        marker_size_m: float,
        k: np.ndarray,
        dist: np.ndarray | None = None,
        dictionary: str = OBJECT_MARKER_DICTIONARY,
    ) -> None:
        import cv2

        if not marker_size_m > 0:
            raise MarkerError(f"marker_size_m must be > 0, got {marker_size_m}")
        k = np.asarray(k, float).reshape(3, 3)
        if not (np.all(np.isfinite(k)) and k[0, 0] > 0 and k[1, 1] > 0 and k[2, 2] == 1.0):
            raise MarkerError(f"camera matrix k must be finite with fx, fy > 0 and k[2][2] = 1, got {k.tolist()}")
        code = getattr(cv2.aruco, dictionary, None)
        if not dictionary.startswith("DICT_") or code is None:
            raise MarkerError(f"unknown ArUco dictionary {dictionary!r} (OpenCV names such as DICT_4X4_50)")
        self.cv2 = cv2
        self.k = k
        self.dist = np.zeros(5) if dist is None else np.asarray(dist, float).reshape(-1)
        if not np.all(np.isfinite(self.dist)):
            raise MarkerError(f"distortion must be finite, got {self.dist.tolist()}")
        self.marker_size_m = float(marker_size_m)
        params = cv2.aruco.DetectorParameters()
        params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
        self._detector = cv2.aruco.ArucoDetector(cv2.aruco.getPredefinedDictionary(code), params)
        self._object_points = marker_corners_m(self.marker_size_m).astype(np.float64)

    def detect(self, image: np.ndarray) -> list[Sighting]:
        """Every marker of the dictionary in `image` ((H, W) gray or (H, W, 3) RGB uint8), with its pose."""
        cv2 = self.cv2
        if image.dtype != np.uint8 or image.ndim not in (GRAY, RGB) or (image.ndim == RGB and image.shape[2] != 3):
            raise MarkerError(f"images must be (H, W) gray or (H, W, 3) RGB uint8, got {image.shape} {image.dtype}")
        gray = image if image.ndim == GRAY else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        corners, ids, _ = self._detector.detectMarkers(gray)
        if ids is None:
            return []
        return [s for c, i in zip(corners, ids.ravel()) if (s := self._pose(int(i), c.reshape(4, 2))) is not None]

    def _pose(self, marker_id: int, corners_px: np.ndarray) -> Sighting | None:
        """The planar PnP solution (IPPE for squares) that reprojects best; None when there is none."""
        cv2 = self.cv2
        n, rvecs, tvecs, errors = cv2.solvePnPGeneric(
            self._object_points, corners_px.astype(np.float64), self.k, self.dist, flags=cv2.SOLVEPNP_IPPE_SQUARE
        )
        if not n:
            return None
        best = int(np.argmin(np.asarray(errors).ravel()))
        rot, _ = cv2.Rodrigues(rvecs[best])
        pos = np.asarray(tvecs[best], float).ravel()
        if pos[2] <= 0 or not np.all(np.isfinite(rot)):
            return None
        return Sighting(marker_id, corners_px.astype(float), rot, pos, float(np.asarray(errors).ravel()[best]))


def rigid_pose(
    detector: MarkerDetector, sightings: list[Sighting], points_by_id: dict[int, np.ndarray]
) -> tuple[np.ndarray, float]:
    """One rigid body carrying several of the seen markers: its 4x4 pose in the optical frame from all their
    corners at once (SQPnP, then Levenberg-Marquardt), and the RMS reprojection error (px). `points_by_id`: each
    marker's corners (4, 3) in the body's frame, in OpenCV's order. Corners on several faces are not coplanar, so
    the planar pose's two-fold ambiguity is gone."""
    cv2 = detector.cv2
    obj = np.concatenate([points_by_id[s.marker_id] for s in sightings]).astype(np.float64)
    img = np.concatenate([s.corners_px for s in sightings]).astype(np.float64)
    ok, rvec, tvec = cv2.solvePnP(obj, img, detector.k, detector.dist, flags=cv2.SOLVEPNP_SQPNP)
    if not ok:
        raise MarkerError("no rigid pose fits the seen markers")
    rvec, tvec = cv2.solvePnPRefineLM(obj, img, detector.k, detector.dist, rvec, tvec)
    projected, _ = cv2.projectPoints(obj, rvec, tvec, detector.k, detector.dist)
    rms = float(np.sqrt(np.mean(np.sum((projected.reshape(-1, 2) - img) ** 2, axis=1))))
    rot, _ = cv2.Rodrigues(rvec)
    return homogeneous(rot, np.asarray(tvec, float).ravel()), rms


def check_transform(t: Any, what: str) -> np.ndarray:
    """A 4x4 rigid transform as floats, or a MarkerError naming `what`."""
    t = np.asarray(t, float)
    if t.shape != (4, 4) or not np.all(np.isfinite(t)):
        raise MarkerError(f"{what} must be a finite 4x4 transform, got shape {t.shape}")
    r = t[:3, :3]
    if np.abs(r @ r.T - np.eye(3)).max() > 1e-6 or np.linalg.det(r) < 0 or np.any(t[3] != [0, 0, 0, 1]):
        raise MarkerError(f"{what} is not a rigid transform (rotation not orthonormal or last row not 0 0 0 1)")
    return t
