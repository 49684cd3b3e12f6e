"""Checkerboard views rendered in the simulator, with the exact camera that took them: demo and test data for camera
calibration (`sim2real calibrate-camera --render-views DIR`: PNGs, joints.csv and truth.json)."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from calibration.camera import MOUNTS, BoardSpec, CameraCalibrationError, detect_corners
from calibration.rotations import invert, quat_wxyz
from sim.transforms import homogeneous, pose_string

#: The board the demo renders: OpenCV's classic 9 x 6 squares (8 x 5 inner corners), of 3 cm, on a white plate
#: with a 1.5 cm margin: an A4 print (30 x 21 cm).
DEFAULT_BOARD = BoardSpec(9, 6, 0.03)
#: The square per camera when none is given: the front camera looks at the table from 30 cm, where a board held
#: above the table must be small (1.5 cm squares: 13.5 x 9 cm).
DEFAULT_SQUARE_M = {"scene": 0.03, "front": 0.015, "wrist": 0.03}
BOARD_MARGIN_M = 0.015
#: Scene mount: the board is held by the hand, 13 cm out along the fingers (beyond their tips), its print facing
#: along them, its x along the hand's x.
HAND_FROM_BOARD_POS_M = (0.0, 0.0, 0.13)
#: Wrist mount: the board lies on the table at this world position (printed side up), under the arm's reach.
TABLE_BOARD_WORLD_POS_M = (0.0, 0.0, 0.0)
#: The camera that sees each mount's board, and the link that carries the board (scene) or the camera (wrist).
DEFAULT_CAMERA = {"scene": "scene", "wrist": "wrist"}
LINK = "panda_hand"
#: Views are drawn around the board facing the camera from a distance where it spans this share of the image height,
#: its centre in a 3 x 3 grid of cells over the middle CENTRE_SPAN of the image (view i in cell i mod 9).
BOARD_FILL = 0.45
CENTRE_SPAN = 0.6
#: Joint-space seeds of the inverse kinematics (rad): the neutral pose, and the hand turned towards the cell's front.
IK_SEEDS: tuple[tuple[float, ...], ...] = (
    (0.0, 0.41, 0.0, -1.85, 0.0, 2.26, 0.79),
    (0.0, 0.2, 0.0, -1.9, 0.0, 0.6, 0.79),
    (0.0, -0.3, 0.0, -2.2, 0.0, 0.4, 0.79),
    (0.0, 0.5, 0.0, -1.2, 0.0, 0.2, 0.79),
)
TRUTH_JSON = "truth.json"
#: Scene mount: the plate is kept this far (m) above the table top (a board held over the table, not through it).
TABLE_CLEARANCE_M = 0.03


@dataclass(frozen=True)
class RenderedViews:
    """Rendered views of the board and the camera's exact intrinsics and extrinsics."""

    backend: str
    camera: str
    mount: str
    link: str
    board: BoardSpec
    joint_names: tuple[str, ...]
    names: tuple[str, ...]
    images: tuple[np.ndarray, ...]
    """(H, W, 3) uint8 RGB each."""
    joints_rad: np.ndarray
    """(N, 7) arm joints of each view."""
    k: np.ndarray
    """(3, 3) the simulated camera's intrinsics (sim.camera.intrinsics)."""
    fovy_deg: float
    x: np.ndarray
    """(4, 4) exact extrinsics: base_from_optical (scene mount) or link_from_optical (wrist mount)."""
    y: np.ndarray
    """(4, 4) exact link_from_board (scene mount) or base_from_board (wrist mount)."""
    tried: int = 0
    """Candidate poses drawn (those out of reach, out of view or with the board not found are skipped)."""


def board_patterns(board: BoardSpec, mount: str, margin_m: float = BOARD_MARGIN_M) -> tuple[Any, ...]:
    """The board as a sim.fiducials print on the hand (scene mount) or on the table (wrist mount)."""
    from sim.fiducials import PATTERN_LIFT_M, PatternSpec, checkerboard_cells
    from sim.scene import SceneSpec

    cells = checkerboard_cells(board.rows, board.cols)
    if mount == "scene":
        parent, origin = LINK, np.asarray(HAND_FROM_BOARD_POS_M, float)
    else:
        table = SceneSpec().table
        parent = "table"
        origin = np.asarray(TABLE_BOARD_WORLD_POS_M) - np.asarray(table.pos_m) + [0.0, 0.0, PATTERN_LIFT_M]
    pos = tuple(float(v) for v in origin)  # the board frame is the parent's, unrotated
    return (PatternSpec("calibration_board", parent, cells, board.square_m, pos, margin_m=margin_m),)  # type: ignore[arg-type]


def board_origin(mount: str) -> np.ndarray:
    """Where the board frame is: in the hand frame (scene mount) or the world (wrist mount), unrotated."""
    if mount == "scene":
        return np.asarray(HAND_FROM_BOARD_POS_M, float)
    from sim.fiducials import PATTERN_LIFT_M

    return np.asarray(TABLE_BOARD_WORLD_POS_M, float) + [0.0, 0.0, PATTERN_LIFT_M]


def _axis_angle(axis: np.ndarray, angle_rad: float) -> np.ndarray:
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + math.sin(angle_rad) * k + (1.0 - math.cos(angle_rad)) * (k @ k)


def board_in_camera(
    rng: np.random.Generator,
    k: np.ndarray,
    size: tuple[int, int],
    distance_m: float,
    tilt_deg: tuple[float, float],
    roll_deg: float,
    index: int = 0,
    parallel: bool = False,
) -> np.ndarray:
    """A board pose optical_from_board (4, 4): its centre on the ray through a random pixel of cell `index` mod 9
    of a 3 x 3 grid over the middle CENTRE_SPAN of the image, at `distance_m` +-15 %, facing the camera with its
    top up, then tilted by tilt_deg[0]..[1] about a random axis in its plane and turned by +-roll_deg about its
    normal. `parallel`: facing along the optical axis before the tilt instead (untilted, every board in one plane
    orientation: the degenerate views a calibration must refuse)."""
    w, h = size
    lo, cell = 0.5 * (1.0 - CENTRE_SPAN), CENTRE_SPAN / 3.0
    u = (lo + (index % 3 + rng.uniform()) * cell) * w
    v = (lo + ((index // 3) % 3 + rng.uniform()) * cell) * h
    ray = np.linalg.solve(k, np.array([u, v, 1.0]))
    ray /= np.linalg.norm(ray)
    z = np.array([0.0, 0.0, -1.0]) if parallel else -ray
    y = np.array([0.0, -1.0, 0.0]) - z * (-z[1])
    y /= np.linalg.norm(y)
    rot = np.stack([np.cross(y, z), y, z], axis=1)
    phi = rng.uniform(0.0, 2 * math.pi)
    in_plane = rot[:, 0] * math.cos(phi) + rot[:, 1] * math.sin(phi)
    tilt = math.radians(rng.uniform(*tilt_deg))
    roll = math.radians(rng.uniform(-roll_deg, roll_deg))
    rot = _axis_angle(in_plane, tilt) @ _axis_angle(z, roll) @ rot
    return homogeneous(rot, distance_m * rng.uniform(0.85, 1.15) * ray)


def solve_ik(chain: Any, target: np.ndarray, seeds: Sequence[np.ndarray], limits: np.ndarray) -> np.ndarray | None:
    """Arm joints (7,) that put the chain's last link at `target` (4, 4, base frame) within 0.1 mm and 0.01 deg
    (damped least squares from each seed in turn, inside the joint limits), or None."""
    from sim.transforms import mat_to_quat, rotation_vector

    names = chain.moving_joint_names
    q_goal = mat_to_quat(target[:3, :3])
    for seed in seeds:
        q = np.clip(np.asarray(seed, float), limits[:, 0], limits[:, 1])
        for _ in range(300):
            d = dict(zip(names, q))
            t = chain.transform(d)
            err = np.concatenate([target[:3, 3] - t[:3, 3], rotation_vector(mat_to_quat(t[:3, :3]), q_goal)])
            if np.linalg.norm(err[:3]) < 1e-4 and np.linalg.norm(err[3:]) < math.radians(0.01):
                return q
            jac = chain.jacobian(d)
            dq = jac.T @ np.linalg.solve(jac @ jac.T + 0.05**2 * np.eye(6), err)
            scale = max(1.0, float(np.max(np.abs(dq))) / 0.2)
            q = np.clip(q + dq / scale, limits[:, 0], limits[:, 1])
    return None


def render_views(
    backend: str = "mujoco",
    camera: str = "",
    n_views: int = 15,
    seed: int = 0,
    size: tuple[int, int] = (640, 480),
    mount: str = "scene",
    board: BoardSpec = DEFAULT_BOARD,
    tilt_deg: tuple[float, float] = (15.0, 40.0),
    roll_deg: float = 25.0,
    parallel: bool = False,
    progress: Callable[[str], None] | None = None,
) -> RenderedViews:
    """Render `n_views` views of the board in `camera` of the default scene at `size`: the board on the hand facing
    a fixed camera (scene mount) or on the table under the wrist camera (wrist mount), at poses drawn around the
    board facing the camera (board_in_camera), reached by inverse kinematics. Poses out of reach, with the board
    not wholly in the image or not found by detect_corners are skipped (up to 20 candidates per view)."""
    import os

    os.environ.setdefault("MUJOCO_GL", "egl")
    from sim.camera import base_from_optical, intrinsics
    from sim.engines import BACKENDS, make_backend
    from sim.robot import panda
    from sim.scene import SceneSpec

    if mount not in MOUNTS:
        raise CameraCalibrationError(f"--mount must be one of {list(MOUNTS)}, got {mount!r}")
    if backend not in BACKENDS:
        raise CameraCalibrationError(f"--backend must be one of {list(BACKENDS)}, got {backend!r}")
    camera = camera or DEFAULT_CAMERA[mount]
    base = SceneSpec()
    names = [c.name for c in base.cameras]
    if camera not in names:
        raise CameraCalibrationError(f"--camera {camera!r} is not a camera of the scene; it has {names}")
    spec = base.camera(camera)
    if (spec.parent is None) != (mount == "scene"):
        where = f"on {spec.parent}" if spec.parent else "fixed in the cell"
        raise CameraCalibrationError(f"--camera {camera} is {where}: it does not fit --mount {mount}")
    if n_views < 1:
        raise CameraCalibrationError(f"--views must be positive, got {n_views}")
    scene = replace(base, target=None, patterns=board_patterns(board, mount)).with_image_size(*size)
    robot = panda()
    chain = robot.kinematic_chain(LINK)
    limits = robot.arm_limits_rad
    k = intrinsics(spec.fovy_deg, *size)
    say = progress or (lambda _: None)
    sim = make_backend(backend, scene, robot)
    try:
        base_pos = np.asarray(scene.robot_base_pos_m, float)
        sim.reset(np.asarray(IK_SEEDS[0]), 0.04, {})
        cam_pos, cam_quat = sim.camera_pose(camera)
        world_from_optical = base_from_optical(cam_pos, cam_quat, np.zeros(3))
        if mount == "scene":
            x = base_from_optical(cam_pos, cam_quat, base_pos)
            y = homogeneous(np.eye(3), board_origin(mount))
        else:
            link_pos, link_quat = sim.link_pose(LINK)
            from sim.transforms import quat_to_mat

            x = invert(homogeneous(quat_to_mat(link_quat), link_pos)) @ world_from_optical
            y = homogeneous(np.eye(3), board_origin(mount) - base_pos)
        table_top_m = scene.table.pos_m[2] + scene.table.size_m[2]
        rows = board.rows * board.square_m + 2 * BOARD_MARGIN_M
        distance = float(np.clip(k[1, 1] * rows / (BOARD_FILL * size[1]), 0.25, 1.2))
        rng = np.random.default_rng(seed)
        images: list[np.ndarray] = []
        joints: list[np.ndarray] = []
        seeds = [np.asarray(s) for s in IK_SEEDS]
        tried = 0
        while len(images) < n_views and tried < 20 * n_views:
            tried += 1
            drawn = board_in_camera(rng, k, size, distance, tilt_deg, roll_deg, tried - 1, parallel)
            b = fit_in_view(drawn, board, k, size)
            if b is None:
                continue
            if mount == "scene" and _plate_low_m(x @ b, board) + base_pos[2] < table_top_m + TABLE_CLEARANCE_M:
                continue
            target = x @ b @ invert(y) if mount == "scene" else y @ invert(b) @ invert(x)
            q = solve_ik(chain, target, seeds, limits)
            if q is None:
                continue
            sim.reset(q, 0.04, {})
            rgb = np.asarray(sim.render(camera))
            gray = (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]).astype(np.uint8)
            if detect_corners(gray, board) is None:
                continue
            images.append(rgb)
            joints.append(q)
            seeds = [q, *seeds[: len(IK_SEEDS)]]
            say(f"rendered view {len(images)}/{n_views} on {backend}")
        if len(images) < n_views:
            raise CameraCalibrationError(f"only {len(images)} of {n_views} views could be rendered in {tried} tries")
    finally:
        sim.close()
    return RenderedViews(backend, camera, mount, LINK, board, robot.arm_joint_names,
                         tuple(f"view_{i:03d}.png" for i in range(len(images))), tuple(images), np.stack(joints), k,
                         float(spec.fovy_deg), x, y, tried)  # fmt: skip


def _plate_px(optical_from_board: np.ndarray, board: BoardSpec, k: np.ndarray) -> np.ndarray | None:
    """The plate's four outer corners in the image (2, 4), or None when it is behind the camera or seen from the
    back."""
    hx = 0.5 * board.cols * board.square_m + BOARD_MARGIN_M
    hy = 0.5 * board.rows * board.square_m + BOARD_MARGIN_M
    corners = np.array([[-hx, -hy, 0, 1], [hx, -hy, 0, 1], [hx, hy, 0, 1], [-hx, hy, 0, 1]], float)
    p = (optical_from_board @ corners.T)[:3]
    if np.any(p[2] <= 0.05) or float(optical_from_board[:3, 2] @ optical_from_board[:3, 3]) >= 0:
        return None
    return (k @ p)[:2] / p[2]


def fit_in_view(
    optical_from_board: np.ndarray, board: BoardSpec, k: np.ndarray, size: tuple[int, int], border_px: float = 8.0
) -> np.ndarray | None:
    """The board pose slid parallel to the image plane until the whole plate lies `border_px` inside the image
    (a board drawn near an edge is kept there, just inside), or None when it does not fit at all."""
    t = np.array(optical_from_board, float)
    for _ in range(4):
        uv = _plate_px(t, board, k)
        if uv is None:
            return None
        lo, hi = uv.min(axis=1), uv.max(axis=1)
        room = np.array([size[0] - 1.0, size[1] - 1.0]) - 2 * border_px
        if np.any(hi - lo > room):
            return None
        shift = np.maximum(0.0, border_px - lo) - np.maximum(0.0, hi - (np.array(size) - 1.0 - border_px))
        if np.all(np.abs(shift) < 0.5):
            return t
        depth = float(t[2, 3])
        t[:2, 3] += depth * (shift * 1.05) / np.array([k[0, 0], k[1, 1]])
    return None


def _plate_low_m(base_from_board: np.ndarray, board: BoardSpec) -> float:
    """The height (base frame, m) of the plate's lowest corner."""
    hx = 0.5 * board.cols * board.square_m + BOARD_MARGIN_M
    hy = 0.5 * board.rows * board.square_m + BOARD_MARGIN_M
    corners = np.array([[-hx, -hy, 0, 1], [hx, -hy, 0, 1], [hx, hy, 0, 1], [-hx, hy, 0, 1]], float)
    return float((base_from_board @ corners.T)[2].min())


def truth(views: RenderedViews) -> dict[str, Any]:
    """truth.json: what the renderer's camera really is, for checking a calibration against it."""
    key = "base_from_optical" if views.mount == "scene" else "link_from_optical"
    other = "link_from_board" if views.mount == "scene" else "base_from_board"
    h, w = views.images[0].shape[:2]
    return {
        "schema_version": 1,
        "written_by": "sim2real calibrate-camera --render-views",
        "backend": views.backend,
        "camera": views.camera,
        "mount": views.mount,
        "link": views.link,
        "board": views.board.to_dict(),
        "image_width": w,
        "image_height": h,
        "fovy_deg": views.fovy_deg,
        "K": views.k.tolist(),
        key: {"matrix": views.x.tolist(), "camera_pose": pose_string(views.x)},
        other: {"position_m": views.y[:3, 3].tolist(), "quat_wxyz": quat_wxyz(views.y[:3, :3]).tolist()},
        "views": len(views.names),
        "candidates_tried": views.tried,
    }


def write_views(out: Path, views: RenderedViews) -> Path:
    """Write the views into a new folder `out` (or an empty one): view_NNN.png, joints.csv (file, then the arm
    joints in rad) and truth.json; built aside and renamed into place."""
    import cv2

    from randomization.atomic_files import publish_dir, staged_dir

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CameraCalibrationError(f"--render-views {out} already exists and is not an empty folder; it is never "
                                     "replaced: choose a new folder")  # fmt: skip
    with staged_dir(out) as tmp:
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(["file", *views.joint_names])
        for name, image, q in zip(views.names, views.images, views.joints_rad):
            ok, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            if not ok:
                raise CameraCalibrationError(f"could not encode {name} as PNG")
            (tmp / name).write_bytes(png.tobytes())
            writer.writerow([name, *(f"{v:.17g}" for v in q)])
        (tmp / "joints.csv").write_text(text.getvalue())
        (tmp / TRUTH_JSON).write_text(json.dumps(truth(views), indent=2) + "\n")
        publish_dir(tmp, out)
    return out
