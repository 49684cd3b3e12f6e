"""Camera calibration from checkerboard views: intrinsics (OpenCV), camera-to-robot extrinsics by hand-eye calibration,
the checks that refuse degenerate inputs, and camera.yaml (a randomization space centred on the measurement).

Frames: the camera's optical frame is OpenCV's (x right, y down, z forward); the board frame is sim.fiducials'
pattern frame (origin at the centre of the print, x right, y towards its top row, z out of the print). The robot's
base frame is its URDF root (`panda_link0`); the link is the one the board (scene mount) or the camera (wrist mount)
is fixed to. Rotations go through numpy-quaternion (conversions, averages, spreads); cv2 and scipy are imported
where used.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from calibration.rotations import (
    board_tilt_rms_deg,
    invert,
    robust_mean_pose,
    rotation_angles_deg,
    rotation_spread_deg,
)
from sim.transforms import homogeneous

#: Version of the `provenance.camera_calibration` mapping in camera.yaml.
SCHEMA_VERSION = 1
#: Where the camera is: `scene` (fixed in the cell, the board on the robot's link: eye-to-hand) or `wrist` (on the
#: link, the board fixed in the cell: eye-in-hand).
MOUNTS = ("scene", "wrist")
#: Lens models fitted: plumb_bob without k3 (k1, k2, p1, p2; OpenCV's advice for ordinary lenses, k3 only trades
#: off against the focal length), all five plumb_bob coefficients, or none (a rectified or simulated camera).
DISTORTION_MODELS = ("plumb_bob", "plumb_bob_k3", "none")
#: Fewest usable views. Intrinsics need 3 views of a plane for K (Zhang) and more for distortion; hand-eye needs
#: two motions about non-parallel axes. 8 views give 28 view pairs, enough redundancy to see a bad view.
MIN_VIEWS = 8
#: Least RMS angle (deg) of the board normals about their mean, seen from the camera. Zhang's method gets the focal
#: length from the foreshortening of tilted views; parallel planes (pure translations) give no constraint. Measured on
#: renders (BENCHMARKS, camera calibration): at 7 deg RMS the focal length is off by up to 2.3 % (PyBullet, 0.2 px
#: corner noise), at 12 deg within 1 %, at 25 deg within 0.3 %.
MIN_BOARD_TILT_RMS_DEG = 10.0
#: Least RMS spread (deg) of the link's orientations about their mean along the second principal axis: hand-eye
#: calibration needs rotations about at least two non-parallel axes (Tsai and Lenz), and its translation error grows
#: as 1 / sin(rotation). Measured on renders: 11 mm at 5 deg, 4.4 mm at 8 deg, under 1 mm at 16 deg.
MIN_ROTATION_SPREAD_DEG = 7.0
#: A view whose own reprojection RMS exceeds max(this, 3 x the median) is dropped (a misdetection or motion blur).
MAX_VIEW_RMS_PX = 1.0
#: Refuse intrinsics whose 1-sigma uncertainty (OpenCV's) exceeds this fraction of f (fx, fy) or of the image
#: size (cx, cy): the views do not pin the camera down.
MAX_INTRINSIC_STD_FRACTION = 0.01
#: The chain base -> link -> board -> camera must close: a median residual above these (mm, deg) means the joints,
#: the URDF, --board-link or --mount do not describe the views, and no extrinsics are written.
MAX_CHAIN_RESIDUAL_MM = 10.0
MAX_CHAIN_RESIDUAL_DEG = 2.0
#: A view off the chain by more than max(these, 3 x the median) is dropped (a joint reading from another instant).
VIEW_OUTLIER_FLOOR_MM = 2.0
VIEW_OUTLIER_FLOOR_DEG = 0.5


class CameraCalibrationError(ValueError):
    """Inputs that give no trustworthy calibration; the message names the files, rows or setting at fault."""


@dataclass(frozen=True)
class BoardSpec:
    """A printed checkerboard: `cols` squares along its x (left to right), `rows` along its y, `square_m` each.

    The top-left square is black (sim.fiducials.checkerboard_cells). One of cols and rows must be odd and the
    other even: then the board looks different turned by 180 deg and every view's corners are put in one order.
    """

    cols: int
    rows: int
    square_m: float

    def __post_init__(self) -> None:
        if self.cols < 3 or self.rows < 3:
            raise CameraCalibrationError(f"--board: a checkerboard needs at least 3x3 squares, got {self.label}")
        if (self.cols + self.rows) % 2 == 0:
            raise CameraCalibrationError(
                f"--board {self.label}: one side must have an odd and the other an even number of squares (7x6, "
                "9x6): a board that looks the same turned by 180 deg gives views in two orders"
            )
        if not (math.isfinite(self.square_m) and self.square_m > 0):
            raise CameraCalibrationError(f"--square-m must be a positive length in metres, got {self.square_m}")

    @property
    def label(self) -> str:
        """COLSxROWS squares, as --board takes it."""
        return f"{self.cols}x{self.rows}"

    @property
    def pattern_size(self) -> tuple[int, int]:
        """OpenCV's pattern size: inner corners per row, per column."""
        return self.cols - 1, self.rows - 1

    @property
    def n_corners(self) -> int:
        return (self.cols - 1) * (self.rows - 1)

    def object_points(self) -> np.ndarray:
        """The inner corners (N, 3) float32 in the board frame, row by row from the top left (detect_corners' order)."""
        s = self.square_m
        x0, y0 = -0.5 * self.cols * s, 0.5 * self.rows * s
        pts = [(x0 + (c + 1) * s, y0 - (r + 1) * s, 0.0) for r in range(self.rows - 1) for c in range(self.cols - 1)]
        return np.asarray(pts, np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"squares": self.label, "cols": self.cols, "rows": self.rows, "square_m": self.square_m,
                "inner_corners": list(self.pattern_size), "top_left": "black"}  # fmt: skip

    @classmethod
    def parse(cls, text: str, square_m: float) -> BoardSpec:
        """`7x6` (squares across, squares down) and the square side in metres."""
        cols, sep, rows = text.lower().partition("x")
        if not (sep and cols.strip().isdigit() and rows.strip().isdigit()):
            raise CameraCalibrationError(f"--board must be COLSxROWS squares such as 7x6, got {text!r}")
        return cls(int(cols), int(rows), float(square_m))


@dataclass(frozen=True)
class View:
    """One image and the joint positions the arm had when it was taken."""

    name: str
    """The file name, or where in a bag (topic and stamp)."""
    gray: np.ndarray
    """(H, W) uint8."""
    joints_rad: np.ndarray
    """(n,) the arm joints, in the order of the chain's moving joints."""


@dataclass(frozen=True)
class Dropped:
    """An input not used, and why."""

    name: str
    reason: str


@dataclass(frozen=True)
class CameraCalibration:
    """The result: intrinsics, the extrinsics the mount gives and how well everything fits."""

    mount: str
    link: str
    width: int
    height: int
    k: np.ndarray
    """(3, 3) camera matrix."""
    dist: np.ndarray
    """(5,) plumb_bob k1, k2, p1, p2, k3."""
    distortion_model: str
    rms_px: float
    """Reprojection RMS of the intrinsic calibration over the views used."""
    k_std: np.ndarray
    """(4,) 1-sigma uncertainty of fx, fy, cx, cy (px)."""
    x: np.ndarray = field(default_factory=lambda: np.eye(4))
    """(4, 4) the extrinsics: base_from_optical (scene mount) or link_from_optical (wrist mount)."""
    y: np.ndarray = field(default_factory=lambda: np.eye(4))
    """(4, 4) the other end of the chain: link_from_board (scene mount) or base_from_board (wrist mount)."""
    chain_rms_px: float = 0.0
    """Reprojection RMS of the board corners through the whole chain (joints, x, y) after refinement."""
    chain_residual_mm: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """(N,) per view: distance between the board seen by the camera and where the chain puts it."""
    chain_residual_deg: np.ndarray = field(default_factory=lambda: np.zeros(0))
    view_rms_px: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """(N,) per view: reprojection RMS of the intrinsic calibration."""
    used: tuple[str, ...] = ()
    dropped: tuple[Dropped, ...] = ()
    board_tilt_rms_deg: float = 0.0
    rotation_spread_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    hand_eye_method: str = ""
    coverage: float = 0.0
    """Share of the image (in a 8 x 6 grid of cells) that some view's corners fall in."""


# -- corners and intrinsics -----------------------------------------------------------------------------------------


def detect_corners(gray: np.ndarray, board: BoardSpec) -> np.ndarray | None:
    """The board's inner corners (N, 2) float32 in the image (px, OpenCV's convention: pixel centres at integers),
    in BoardSpec.object_points' order, or None when the whole board is not found. findChessboardCorners, then
    cornerSubPix with a window under half a square; the order is fixed by the board's handedness and colours."""
    import cv2

    flags = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE | cv2.CALIB_CB_FAST_CHECK
    found, corners = cv2.findChessboardCorners(gray, board.pattern_size, flags=flags)
    if not found or corners is None or len(corners) != board.n_corners:
        return None
    w, h = board.pattern_size
    grid = corners.reshape(h, w, 2)
    spacing = float(np.median(np.linalg.norm(np.diff(grid, axis=1), axis=2)))
    half = int(np.clip(0.4 * spacing, 2, 11))
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 1e-4)
    refined = cv2.cornerSubPix(gray, corners, (half, half), (-1, -1), criteria)
    ordered = _ordered(gray, np.asarray(refined, np.float64).reshape(h, w, 2))
    return None if ordered is None else ordered.reshape(-1, 2).astype(np.float32)


def _ordered(gray: np.ndarray, grid: np.ndarray) -> np.ndarray | None:
    """The corner grid (rows, cols, 2) starting at the top-left inner corner of the print, rows along its x: the
    print is seen from its front (right-handed in the image) and the square outside the first corner is black."""
    dx, dy = grid[0, 1] - grid[0, 0], grid[1, 0] - grid[0, 0]
    if dx[0] * dy[1] - dx[1] * dy[0] < 0:  # mirrored order: start from the other end of each row
        grid = grid[:, ::-1]
    dx, dy = grid[0, 1] - grid[0, 0], grid[1, 0] - grid[0, 0]
    c = grid[0, 0]
    black = [_sample(gray, c - 0.5 * dx - 0.5 * dy), _sample(gray, c + 0.5 * dx + 0.5 * dy)]
    white = [_sample(gray, c + 0.5 * dx - 0.5 * dy), _sample(gray, c - 0.5 * dx + 0.5 * dy)]
    if any(v is None for v in black + white):
        return grid
    if float(np.mean(black)) > float(np.mean(white)):  # type: ignore[arg-type]
        grid = grid[::-1, ::-1]  # turned by 180 deg
    return grid


def _sample(gray: np.ndarray, p: np.ndarray) -> float | None:
    """Mean grey of the 3x3 pixels around p (None outside the image)."""
    u, v = int(round(float(p[0]))), int(round(float(p[1])))
    if not (1 <= u < gray.shape[1] - 1 and 1 <= v < gray.shape[0] - 1):
        return None
    return float(gray[v - 1 : v + 2, u - 1 : u + 2].mean())


@dataclass(frozen=True)
class Intrinsics:
    """calibrateCamera's result over the views kept."""

    k: np.ndarray
    dist: np.ndarray
    rms_px: float
    k_std: np.ndarray
    view_rms_px: np.ndarray
    """(N,) each kept view's RMS."""
    optical_from_board: np.ndarray
    """(N, 4, 4) the board's pose in each kept view."""
    kept: np.ndarray
    """(N_in,) bool: which of the given views were kept."""
    first_rms_px: np.ndarray
    """(N_in,) each given view's RMS in the first calibration (before outliers were dropped)."""


def calibrate_intrinsics(
    corners: Sequence[np.ndarray], board: BoardSpec, size: tuple[int, int], distortion: str = "plumb_bob"
) -> Intrinsics:
    """Intrinsics from the corners (N_in views of (M, 2)) of images of `size` (width, height): OpenCV's
    calibrateCameraExtended, once more without the views whose own RMS exceeds max(MAX_VIEW_RMS_PX, 3 x median)."""
    import cv2

    if distortion not in DISTORTION_MODELS:
        raise CameraCalibrationError(f"--distortion must be one of {list(DISTORTION_MODELS)}, got {distortion!r}")
    fixed = cv2.CALIB_FIX_K1 | cv2.CALIB_FIX_K2 | cv2.CALIB_FIX_K3 | cv2.CALIB_ZERO_TANGENT_DIST
    flags = {"plumb_bob": cv2.CALIB_FIX_K3, "plumb_bob_k3": 0, "none": fixed}[distortion]
    obj = board.object_points()
    kept = np.ones(len(corners), bool)
    first = np.full(len(corners), np.nan)
    criteria = (cv2.TERM_CRITERIA_COUNT + cv2.TERM_CRITERIA_EPS, 200, 1e-12)
    for attempt in range(2):
        idx = [int(i) for i in np.flatnonzero(kept)]
        try:
            rms, k, dist, rvecs, tvecs, std_in, _, per_view = cv2.calibrateCameraExtended(  # type: ignore[call-overload]
                [obj] * len(idx), [corners[i].reshape(-1, 1, 2) for i in idx], size, None, None,
                flags=flags, criteria=criteria,
            )  # fmt: skip
        except cv2.error as e:
            raise CameraCalibrationError(
                f"OpenCV could not calibrate from these {len(idx)} views ({str(e).strip().splitlines()[-1]}): are "
                "they all of the board at one orientation (coplanar)? Tilt it by 20-30 deg in different directions"
            ) from None
        per_view = np.asarray(per_view, float).reshape(-1)
        if attempt == 0:
            first[:] = per_view
        bad = per_view > max(MAX_VIEW_RMS_PX, 3.0 * float(np.median(per_view)))
        if attempt or not bad.any() or len(idx) - bad.sum() < MIN_VIEWS:
            break
        kept[np.asarray(idx)[bad]] = False
    poses = np.stack([homogeneous(cv2.Rodrigues(r)[0], t) for r, t in zip(rvecs, tvecs)])
    std = np.asarray(std_in, float).reshape(-1)[:4]
    return Intrinsics(np.asarray(k, float), np.asarray(dist, float).reshape(-1)[:5], float(rms), std, per_view,
                      poses, kept, first)  # fmt: skip


def coverage(corners: Sequence[np.ndarray], size: tuple[int, int], cells: tuple[int, int] = (8, 6)) -> float:
    """Share of an (8 x 6) grid of image cells that holds a corner of some view."""
    hit = np.zeros(cells[::-1], bool)
    for c in corners:
        u = np.clip((c[:, 0] / size[0] * cells[0]).astype(int), 0, cells[0] - 1)
        v = np.clip((c[:, 1] / size[1] * cells[1]).astype(int), 0, cells[1] - 1)
        hit[v, u] = True
    return float(hit.mean())


# -- hand-eye -------------------------------------------------------------------------------------------------------

#: OpenCV's hand-eye solvers tried; the one whose chain closes best is refined.
HAND_EYE_METHODS = ("TSAI", "PARK", "HORAUD", "DANIILIDIS")


def _chain_inputs(base_from_link: np.ndarray, mount: str) -> np.ndarray:
    """A_i of A_i X B_i = Y: link_from_base (scene mount, X = base_from_optical, Y = link_from_board) or
    base_from_link (wrist mount, X = link_from_optical, Y = base_from_board)."""
    return invert(base_from_link) if mount == "scene" else np.asarray(base_from_link, float)


def chain_residuals(
    a: np.ndarray, x: np.ndarray, y: np.ndarray, optical_from_board: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per view, how far the board the camera saw (B_i) is from where the chain puts it (X^-1 A_i^-1 Y): distance
    of the board centres (mm) and angle (deg)."""
    predicted = invert(x) @ invert(a) @ y
    mm = 1e3 * np.linalg.norm(predicted[:, :3, 3] - optical_from_board[:, :3, 3], axis=1)
    deg = np.array([rotation_angles_deg(p[None, :3, :3], b[:3, :3])[0] for p, b in zip(predicted, optical_from_board)])
    return mm, deg


def solve_hand_eye(
    base_from_link: np.ndarray, optical_from_board: np.ndarray, mount: str
) -> tuple[np.ndarray, np.ndarray, str]:
    """X and Y of A_i X B_i = Y (see _chain_inputs) from OpenCV's calibrateHandEye (each method in
    HAND_EYE_METHODS; the one with the smallest median chain residual), then robust averages of the per-view
    estimates of Y and X in turn (numpy-quaternion). Returns X, Y and the method's name."""
    import cv2

    if not hasattr(cv2, "calibrateHandEye"):  # OpenCV 5 moved hand-eye calibration out of the main package
        raise CameraCalibrationError(
            f"hand-eye calibration needs cv2.calibrateHandEye, which OpenCV {cv2.__version__} lacks: "
            "install opencv-python-headless>=4.8,<5 (pyproject's range)"
        )
    a = _chain_inputs(base_from_link, mount)
    b = np.asarray(optical_from_board, float)
    best: tuple[float, np.ndarray, np.ndarray, str] | None = None
    for method in HAND_EYE_METHODS:
        try:
            r, t = cv2.calibrateHandEye(list(a[:, :3, :3]), list(a[:, :3, 3]), list(b[:, :3, :3]), list(b[:, :3, 3]),
                                        method=getattr(cv2, f"CALIB_HAND_EYE_{method}"))  # fmt: skip
        except cv2.error:
            continue
        x = homogeneous(np.asarray(r, float), np.asarray(t, float))
        if not np.all(np.isfinite(x)) or abs(np.linalg.det(x[:3, :3]) - 1.0) > 1e-6:
            continue
        y, _ = robust_mean_pose(a @ x @ b)
        mm, deg = chain_residuals(a, x, y, b)
        score = float(np.median(mm) + 10.0 * np.median(deg))  # 1 deg ~ 10 mm at the board's distance
        if best is None or score < best[0]:
            best = (score, x, y, method)
    if best is None:
        raise CameraCalibrationError("cv2.calibrateHandEye found no solution with any method: the views are degenerate")
    _, x, y, method = best
    for _ in range(2):  # alternate: Y from every view given X, then X from every view given Y
        y, _ = robust_mean_pose(a @ x @ b)
        x, _ = robust_mean_pose(invert(a) @ y @ invert(b))
    return x, y, method


def refine_chain(
    a: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    corners: Sequence[np.ndarray],
    board: BoardSpec,
    k: np.ndarray,
    dist: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, float]:
    """X and Y refined together on the reprojection error of every corner through the chain (scipy's
    least_squares, soft-L1 loss beyond 1 px): the joints and the corners of all views at once, rather than one
    board pose per view. Returns X, Y and the chain's reprojection RMS (px)."""
    import cv2
    from scipy.optimize import least_squares

    obj = board.object_points().astype(np.float64)
    seen = np.concatenate([np.asarray(c, float).reshape(-1, 2) for c in corners])
    a_inv = invert(a)

    def unpack(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (homogeneous(cv2.Rodrigues(p[0:3])[0], p[3:6] + x[:3, 3]),
                homogeneous(cv2.Rodrigues(p[6:9])[0], p[9:12] + y[:3, 3]))  # fmt: skip

    def residual(p: np.ndarray) -> np.ndarray:
        xx, yy = unpack(p)
        b = invert(xx) @ a_inv @ yy
        out = []
        for bi in b:
            proj, _ = cv2.projectPoints(obj, cv2.Rodrigues(bi[:3, :3])[0], bi[:3, 3], k, dist)
            out.append(proj.reshape(-1, 2))
        return (np.concatenate(out) - seen).ravel()

    p0 = np.concatenate([cv2.Rodrigues(x[:3, :3])[0].ravel(), np.zeros(3), cv2.Rodrigues(y[:3, :3])[0].ravel(),
                         np.zeros(3)])  # fmt: skip
    fit = least_squares(residual, p0, loss="soft_l1", f_scale=1.0, x_scale="jac", max_nfev=200)
    xx, yy = unpack(fit.x)
    r = residual(fit.x).reshape(-1, 2)
    return xx, yy, float(np.sqrt(np.mean(np.sum(r**2, axis=1))))


# -- the whole calibration ------------------------------------------------------------------------------------------


def calibrate(
    views: Sequence[View],
    board: BoardSpec,
    forward_kinematics: Callable[[np.ndarray], np.ndarray],
    mount: str = "scene",
    link: str = "panda_hand",
    distortion: str = "plumb_bob",
    dropped: Sequence[Dropped] = (),
    progress: Callable[[str], None] | None = None,
) -> CameraCalibration:
    """Intrinsics and extrinsics from views of the board. `forward_kinematics(joints)` gives base_from_link (4, 4)
    for a view's joints. CameraCalibrationError, naming files and thresholds, for inputs that give no trustworthy
    calibration: too few views, the board not found, all views at one orientation, a chain that does not close."""
    if mount not in MOUNTS:
        raise CameraCalibrationError(f"--mount must be one of {list(MOUNTS)}, got {mount!r}")
    say = progress or (lambda _: None)
    dropped = list(dropped)
    if len(views) < MIN_VIEWS:
        raise CameraCalibrationError(_too_few(len(views), "usable images", dropped))
    sizes = {v.gray.shape for v in views}
    if len(sizes) != 1:
        first = views[0].gray.shape
        odd = next(v.name for v in views if v.gray.shape != first)
        raise CameraCalibrationError(f"images differ in size: {views[0].name} is {first[1]}x{first[0]}, {odd} is "
                                     f"{sizes - {first}}: one camera at one resolution per calibration")  # fmt: skip
    height, width = views[0].gray.shape
    found: list[tuple[View, np.ndarray]] = []
    missing: list[str] = []
    for i, v in enumerate(views):
        say(f"finding the {board.label} board: image {i + 1}/{len(views)}")
        c = detect_corners(v.gray, board)
        if c is None:
            missing.append(v.name)
            dropped.append(Dropped(v.name, f"the {board.label} board was not found (whole board in view?)"))
        else:
            found.append((v, c))
    if len(found) < MIN_VIEWS:
        where = ", ".join(missing[:20]) + (f" and {len(missing) - 20} more" if len(missing) > 20 else "")
        raise CameraCalibrationError(
            f"the {board.label} board ({board.pattern_size[0]}x{board.pattern_size[1]} inner corners, "
            f"{board.square_m * 1e3:g} mm squares) was found in {len(found)} of {len(views)} images, {MIN_VIEWS} "
            f"needed; not found in: {where}. Check --board (squares across x down, not inner corners) and that the "
            "whole board is in view"
        )
    base_from_link = np.stack([_checked_fk(forward_kinematics, v) for v, _ in found])
    spread = rotation_spread_deg(base_from_link[:, :3, :3])
    if spread[1] < MIN_ROTATION_SPREAD_DEG:
        raise CameraCalibrationError(
            f"the views barely rotate the {link}: its orientations spread {spread[0]:.1f} and {spread[1]:.1f} deg RMS "
            f"about their two main axes ({MIN_ROTATION_SPREAD_DEG:g} deg needed about both): with the board (or "
            "camera) only translated or turned about one axis, the hand-eye calibration and the focal length are "
            "undetermined (all views coplanar). Tilt the board 20-30 deg in different directions between views"
        )
    say(f"calibrating intrinsics from {len(found)} views")
    intr = calibrate_intrinsics([c for _, c in found], board, (width, height), distortion)
    for (v, _), keep, rms in zip(found, intr.kept, intr.first_rms_px):
        if not keep:
            dropped.append(Dropped(v.name, f"reprojection outlier ({rms:.2f} px RMS)"))
    found = [f for f, keep in zip(found, intr.kept) if keep]
    base_from_link = base_from_link[intr.kept]
    if len(found) < MIN_VIEWS:
        raise CameraCalibrationError(_too_few(len(found), "views that fit the camera model", dropped))
    tilt = board_tilt_rms_deg(intr.optical_from_board)
    if tilt < MIN_BOARD_TILT_RMS_DEG:
        raise CameraCalibrationError(
            f"the board normals spread only {tilt:.1f} deg RMS as the camera sees them ({MIN_BOARD_TILT_RMS_DEG:g} deg "
            "needed): views of the board at one orientation (coplanar) leave the focal length undetermined. Tilt "
            "it 20-30 deg towards and away from the camera, in different directions"
        )
    _check_intrinsics(intr, width, height)

    say("hand-eye calibration")
    a = _chain_inputs(base_from_link, mount)
    x, y, method = solve_hand_eye(base_from_link, intr.optical_from_board, mount)
    corners = [c for _, c in found]
    x, y, chain_rms = refine_chain(a, x, y, corners, board, intr.k, intr.dist)
    mm, deg = chain_residuals(a, x, y, intr.optical_from_board)
    outlier = (mm > max(VIEW_OUTLIER_FLOOR_MM, 3.0 * float(np.median(mm)))) | (
        deg > max(VIEW_OUTLIER_FLOOR_DEG, 3.0 * float(np.median(deg)))
    )
    if outlier.any() and len(found) - outlier.sum() >= MIN_VIEWS:
        for (v, _), m, d in zip([f for f, o in zip(found, outlier) if o], mm[outlier], deg[outlier]):
            dropped.append(Dropped(v.name, f"off the kinematic chain by {m:.1f} mm / {d:.2f} deg (joints read at "
                                           "another instant, or a misdetection)"))  # fmt: skip
        keep = ~outlier
        found = [f for f, k_ in zip(found, keep) if k_]
        a, corners = a[keep], [c for c, k_ in zip(corners, keep) if k_]
        b = intr.optical_from_board[keep]
        x, y, chain_rms = refine_chain(a, x, y, corners, board, intr.k, intr.dist)
        mm, deg = chain_residuals(a, x, y, b)
        view_rms = intr.view_rms_px[keep]
        base_from_link = base_from_link[keep]
    else:
        view_rms = intr.view_rms_px
    if float(np.median(mm)) > MAX_CHAIN_RESIDUAL_MM or float(np.median(deg)) > MAX_CHAIN_RESIDUAL_DEG:
        raise CameraCalibrationError(
            f"the kinematic chain does not close: the board the camera sees is a median {np.median(mm):.1f} mm / "
            f"{np.median(deg):.2f} deg from where the joints put it (limits {MAX_CHAIN_RESIDUAL_MM:g} mm, "
            f"{MAX_CHAIN_RESIDUAL_DEG:g} deg). Is the board fixed to --board-link {link}, --mount {mount} right, the "
            "URDF the arm's, and are the joint columns the arm's joints at each image?"
        )
    return CameraCalibration(
        mount=mount, link=link, width=width, height=height, k=intr.k, dist=intr.dist, distortion_model=distortion,
        rms_px=intr.rms_px, k_std=intr.k_std, x=x, y=y, chain_rms_px=chain_rms, chain_residual_mm=mm,
        chain_residual_deg=deg, view_rms_px=view_rms, used=tuple(v.name for v, _ in found), dropped=tuple(dropped),
        board_tilt_rms_deg=tilt, rotation_spread_deg=rotation_spread_deg(base_from_link[:, :3, :3]),
        hand_eye_method=method, coverage=coverage(corners, (width, height)),
    )  # fmt: skip


def _too_few(n: int, what: str, dropped: Sequence[Dropped]) -> str:
    why = "; ".join(f"{d.name}: {d.reason}" for d in dropped[:12]) + (
        f"; and {len(dropped) - 12} more" if len(dropped) > 12 else ""
    )
    return (f"{n} {what}, at least {MIN_VIEWS} needed (intrinsics with distortion and a hand-eye calibration "
            f"with two independent rotations)" + (f"; dropped: {why}" if why else ""))  # fmt: skip


def _checked_fk(fk: Callable[[np.ndarray], np.ndarray], view: View) -> np.ndarray:
    if not np.all(np.isfinite(view.joints_rad)):
        raise CameraCalibrationError(f"{view.name}: joint positions are not finite: {view.joints_rad.tolist()}")
    return np.asarray(fk(view.joints_rad), float)


def _check_intrinsics(intr: Intrinsics, width: int, height: int) -> None:
    fx, fy, cx, cy = intr.k[0, 0], intr.k[1, 1], intr.k[0, 2], intr.k[1, 2]
    if not np.all(np.isfinite(intr.k)) or fx <= 0 or fy <= 0 or not (0 < cx < width and 0 < cy < height):
        raise CameraCalibrationError(f"the intrinsic calibration diverged (K = {np.round(intr.k, 2).tolist()})")
    scale = np.array([fx, fy, width, height])
    rel = intr.k_std / scale
    if not np.all(np.isfinite(rel)) or np.any(rel > MAX_INTRINSIC_STD_FRACTION):
        names = ("fx", "fy", "cx", "cy")
        worst = ", ".join(
            f"{n} +- {s:.1f} px" for n, s, r in zip(names, intr.k_std, rel) if not r <= MAX_INTRINSIC_STD_FRACTION
        )
        raise CameraCalibrationError(
            f"the views do not pin the intrinsics down ({worst}, more than {100 * MAX_INTRINSIC_STD_FRACTION:g} % "
            "of f or of the image size): take more views, tilted, with the board in every part of the image"
        )
