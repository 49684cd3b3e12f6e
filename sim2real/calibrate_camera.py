"""`sim2real calibrate-camera`: checkerboard views (an image folder with joints.csv, or a bag) -> intrinsics and
hand-eye extrinsics -> camera.yaml, a randomization space for the simulated camera with the calibration in its
provenance; `--render-views DIR` renders such a folder in the simulator, with the true camera in truth.json."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

#: camera.yaml's provenance.camera_calibration.written_by: what --force may replace.
WRITTEN_BY = "sim2real calibrate-camera"


@dataclass(frozen=True)
class CalibrateCameraConfig:
    """One camera calibration. Every field has a default that works except the source and the output file."""

    source: str
    """A folder of images with joints.csv (file, then the arm joints in rad), or a rosbag2 bag from sim2real record
    (camera/image_raw and joint_states)."""
    out: str
    """camera.yaml to write; an existing file is never replaced (with --force only one this command wrote)."""
    board: str = "9x6"
    """The checkerboard: squares across x down (9x6 has 8x5 inner corners); one count odd, the other even."""
    square_m: float = 0.03
    """Side of one square of the print (m), measured on the print."""
    mount: str = "scene"
    """scene: a fixed camera, the board on the robot (eye-to-hand); wrist: the camera on the robot, the board fixed
    in the cell (eye-in-hand)."""
    board_link: str = "panda_hand"
    """The URDF link the board is fixed to (scene mount) or the camera is on (wrist mount)."""
    urdf: str = ""
    """The arm's URDF for the forward kinematics; empty: the Panda that pybullet ships."""
    camera_name: str = ""
    """The simulated camera that camera.yaml places (camera_pos:<name>, camera_quat:<name>, camera_fovy:<name>);
    empty: scene for --mount scene, wrist for --mount wrist."""
    distortion: str = "plumb_bob"
    """Lens model fitted: plumb_bob (k1 k2 p1 p2; k3 held at 0), plumb_bob_k3 (all five) or none."""
    pos_range_m: float = 0.01
    """camera_pos is drawn within +- this of the measured position (m) in training."""
    fovy_range_deg: float = 1.0
    """camera_fovy is drawn within +- this of the measured field of view (deg) in training."""
    namespace: str = ""
    """Bags: the namespace of the camera and joint_states topics (empty: any, if there is one of each)."""
    max_pair_ms: float = 20.0
    """Bags: an image is used only with joint_states stamped this close to it (ms)."""
    force: bool = False
    """Replace --out if it is a camera.yaml this command wrote (never any other file)."""


class CalibrateCameraError(ValueError):
    """A camera calibration that cannot run or must not be written; the message names what is wrong."""


def _refuse_out(out: Path, force: bool) -> None:
    """Refuse to replace a file this command did not write (or any file without --force)."""
    if not out.exists():
        if out.parent.exists() and not out.parent.is_dir():
            raise CalibrateCameraError(f"--out {out}: {out.parent} is not a folder")
        return
    if out.is_dir():
        raise CalibrateCameraError(f"--out {out} is a folder; give the camera.yaml file to write")
    if not force:
        raise CalibrateCameraError(f"--out {out} already exists; calibrate-camera writes a new file and never replaces "
                                   "one (--force replaces a camera.yaml it wrote itself)")  # fmt: skip
    import yaml

    try:
        data = yaml.safe_load(out.read_text())
        mine = data["provenance"]["camera_calibration"]["written_by"] == WRITTEN_BY
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError):
        mine = False
    if not mine:
        raise CalibrateCameraError(f"--out {out} exists and was not written by {WRITTEN_BY}: it is never replaced, "
                                   "even with --force")  # fmt: skip


def _robot(urdf: str) -> Any:
    import xml.etree.ElementTree as ET

    from sim.robot import panda, parse_urdf

    if not urdf:
        try:
            return panda()
        except (ImportError, FileNotFoundError) as e:
            raise CalibrateCameraError(f"no Panda description here ({e}): pass --urdf PATH, the arm's URDF") from None
    try:
        return parse_urdf(urdf)
    except (OSError, ET.ParseError, ValueError) as e:
        raise CalibrateCameraError(f"--urdf {urdf}: {e}") from None


def forward_kinematics(robot: Any, link: str) -> tuple[Callable[[np.ndarray], np.ndarray], list[str]]:
    """base_from_link (4, 4) of the URDF's `link` from the arm joints, and the arm joint names (the columns)."""
    try:
        chain = robot.kinematic_chain(link)
    except KeyError:
        links = [lk.name for lk in robot.links]
        raise CalibrateCameraError(
            f"--board-link {link!r} is not a link of {robot.urdf_path}; links: {links}"
        ) from None
    arm = list(robot.arm_joint_names)
    moving = chain.moving_joint_names
    extra = [n for n in moving if n not in arm]
    if extra:
        raise CalibrateCameraError(f"--board-link {link}: its pose depends on {extra}, which are not arm joints "
                                   f"{arm}: fix the board to a link of the arm (the hand, a flange)")  # fmt: skip

    def fk(joints: np.ndarray) -> np.ndarray:
        return chain.transform(dict(zip(arm, (float(v) for v in joints))))

    return fk, arm


def _check_camera(cfg: CalibrateCameraConfig) -> CalibrateCameraConfig:
    """The config with its camera name resolved, or CalibrateCameraError for a camera that does not fit."""
    from calibration.camera import DISTORTION_MODELS, MOUNTS
    from sim.scene import SceneSpec

    if cfg.mount not in MOUNTS:
        raise CalibrateCameraError(f"--mount must be one of {list(MOUNTS)}, got {cfg.mount!r}")
    if cfg.distortion not in DISTORTION_MODELS:
        raise CalibrateCameraError(f"--distortion must be one of {list(DISTORTION_MODELS)}, got {cfg.distortion!r}")
    if not cfg.camera_name:
        cfg = replace(cfg, camera_name="wrist" if cfg.mount == "wrist" else "scene")
    scene = SceneSpec()
    names = [c.name for c in scene.cameras]
    if cfg.camera_name not in names:
        raise CalibrateCameraError(f"--camera-name {cfg.camera_name!r} is not a simulated camera; they are {names}")
    parent = scene.camera(cfg.camera_name).parent
    if cfg.mount == "scene" and parent is not None:
        raise CalibrateCameraError(f"--camera-name {cfg.camera_name} rides on {parent}; a scene-mount calibration "
                                   "places a fixed camera (scene, front)")  # fmt: skip
    if cfg.mount == "wrist" and parent != cfg.board_link:
        raise CalibrateCameraError(f"--mount wrist: the simulated camera {cfg.camera_name!r} is "
                                   f"{'on ' + parent if parent else 'fixed in the cell'}, not on --board-link "
                                   f"{cfg.board_link}")  # fmt: skip
    if not cfg.max_pair_ms > 0:
        raise CalibrateCameraError(f"--max-pair-ms must be > 0, got {cfg.max_pair_ms}")
    return cfg


def calibrate_camera(cfg: CalibrateCameraConfig, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the calibration and write camera.yaml; returns a summary (the provenance, the path, truth errors when
    the source holds a truth.json from --render-views)."""
    from calibration.camera import BoardSpec, CameraCalibrationError, calibrate
    from calibration.camera_data import read_views
    from calibration.camera_yaml import camera_space
    from randomization import space_from
    from sim.scene import SceneSpec

    out = Path(cfg.out)
    _refuse_out(out, cfg.force)
    cfg = _check_camera(cfg)
    try:
        board = BoardSpec.parse(cfg.board, cfg.square_m)
        robot = _robot(cfg.urdf)
        fk, joint_names = forward_kinematics(robot, cfg.board_link)
        data = read_views(cfg.source, joint_names, cfg.namespace or None, cfg.max_pair_ms / 1e3, progress)
        cal = calibrate(data.views, board, fk, cfg.mount, cfg.board_link, cfg.distortion, data.dropped, progress)
        world_from_base = np.eye(4)
        world_from_base[:3, 3] = SceneSpec().robot_base_pos_m
        extra = {
            "source": {"path": str(Path(cfg.source).resolve()), "kind": data.kind, "images": data.images_seen,
                       "notes": list(data.notes)},
            "robot": {"urdf": str(robot.urdf_path), "base_link": robot.base_link, "arm_joints": joint_names},
            "created": _now(),
        }  # fmt: skip
        space = camera_space(cal, board, cfg.camera_name, world_from_base, cfg.pos_range_m, cfg.fovy_range_deg, extra)
    except CameraCalibrationError as e:
        raise CalibrateCameraError(str(e)) from None
    _refuse_out(out, cfg.force)  # again: the calibration took a while
    space.save(out)
    space_from(str(out))  # what train --randomization does: it must load
    summary = {"out": str(out), "calibration": space.provenance["camera_calibration"]}
    truth = _truth_errors(Path(cfg.source), cal)
    if truth:
        summary["against_truth"] = truth
    return summary


def _now() -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _truth_errors(source: Path, cal: Any) -> dict[str, float] | None:
    """Errors against truth.json when the images came from --render-views (None otherwise)."""
    from calibration.camera_views import TRUTH_JSON

    path = source / TRUTH_JSON
    if not path.is_file():
        return None
    try:
        t = json.loads(path.read_text())
        k = np.asarray(t["K"], float)
        x = np.asarray(t["base_from_optical" if cal.mount == "scene" else "link_from_optical"]["matrix"], float)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return truth_errors(cal.k, cal.x, k, x)


def truth_errors(k: np.ndarray, x: np.ndarray, k_true: np.ndarray, x_true: np.ndarray) -> dict[str, float]:
    """Relative errors (%) of fx, fy, cx, cy against the truth, and the extrinsics' position (mm) and angle (deg)
    errors."""
    from calibration.rotations import rotation_angles_deg

    rel = [100.0 * abs(k[i, j] - k_true[i, j]) / abs(k_true[i, j]) for i, j in ((0, 0), (1, 1), (0, 2), (1, 2))]
    return {
        "fx_pct": rel[0], "fy_pct": rel[1], "cx_pct": rel[2], "cy_pct": rel[3],
        "position_mm": 1e3 * float(np.linalg.norm(x[:3, 3] - x_true[:3, 3])),
        "angle_deg": float(rotation_angles_deg(x[None, :3, :3], x_true[:3, :3])[0]),
    }  # fmt: skip


@dataclass(frozen=True)
class RenderViewsConfig:
    """`--render-views DIR`: simulated demo views of the board."""

    out: str
    """A new (or empty) folder for the PNGs, joints.csv and truth.json."""
    backend: str = "mujoco"
    """The engine that renders."""
    camera: str = ""
    """The simulated camera (default: scene for --mount scene, wrist for --mount wrist)."""
    views: int = 20
    """How many views."""
    mount: str = "scene"
    """scene: the board on the hand in a fixed camera; wrist: the board on the table in the wrist camera."""
    seed: int = 0
    """Seed of the drawn poses."""
    board: str = "9x6"
    """The board printed on the hand (scene mount) or the table (wrist mount)."""
    square_m: float = 0.0
    """Its squares (m); 0: 3 cm, or 1.5 cm for the front camera (which looks at the table from 30 cm)."""
    width: int = 640
    height: int = 480


def render_views(cfg: RenderViewsConfig, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Render the views and write the folder; returns truth.json's content."""
    from calibration.camera import BoardSpec, CameraCalibrationError
    from calibration.camera_views import DEFAULT_SQUARE_M, truth, write_views
    from calibration.camera_views import render_views as render

    out = Path(cfg.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CalibrateCameraError(f"--render-views {out} already exists and is not an empty folder; choose a new one")
    try:
        camera = cfg.camera or ("wrist" if cfg.mount == "wrist" else "scene")
        board = BoardSpec.parse(cfg.board, cfg.square_m or DEFAULT_SQUARE_M.get(camera, 0.03))
        views = render(cfg.backend, camera, cfg.views, cfg.seed, (cfg.width, cfg.height), cfg.mount, board,
                       progress=progress)  # fmt: skip
        write_views(out, views)
    except CameraCalibrationError as e:
        raise CalibrateCameraError(str(e)) from None
    return truth(views)


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """What the command prints: views, RMS, K, the extrinsics and the file written."""
    c = summary["calibration"]
    k = np.asarray(c["K"])
    views = c["views"]
    dropped = views["dropped_why"]
    lines = [f"calibrated from {views['used']} views ({views['dropped']} dropped"
             + (": " + "; ".join(f"{d['name']}: {d['reason']}" for d in dropped[:8])
                + (f"; and {len(dropped) - 8} more" if len(dropped) > 8 else "") if dropped else "")
             + f"); reprojection RMS {c['reprojection_rms_px']:.3f} px (through the chain "
             f"{c['chain_reprojection_rms_px']:.3f} px)"]  # fmt: skip
    dist = np.round(c["distortion"], 5).tolist()
    lines.append(f"K: fx {k[0, 0]:.2f} fy {k[1, 1]:.2f} cx {k[0, 2]:.2f} cy {k[1, 2]:.2f} px "
                 f"({c['image_width']}x{c['image_height']}); distortion {dist}")  # fmt: skip
    he = c["hand_eye"]
    if c["mount"] == "scene":
        lines.append(f"camera_pose (optical frame in the base frame): {c['base_from_optical']['camera_pose']}")
    else:
        lines.append(f"optical frame in {c['link']}: {c['link_from_optical']['camera_pose']}")
    lines.append(f"chain closes to a median {he['chain_residual_mm']['median']:.2f} mm / "
                 f"{he['chain_residual_deg']['median']:.3f} deg per view; sim camera {c['sim_camera']['name']}: fovy "
                 f"{c['sim_camera']['fovy_deg']:.3f} deg")  # fmt: skip
    truth = summary.get("against_truth")
    if truth:
        lines.append(f"against the renderer's truth: fx {truth['fx_pct']:.3f} %, fy {truth['fy_pct']:.3f} %, cx "
                     f"{truth['cx_pct']:.3f} %, cy {truth['cy_pct']:.3f} %, position {truth['position_mm']:.2f} mm, "
                     f"angle {truth['angle_deg']:.3f} deg")  # fmt: skip
    use = f"sim2real train --randomization {summary['out']}"
    if c["mount"] == "scene":
        use += f"; sim2real deploy BUNDLE --camera-pose {c['base_from_optical']['camera_pose']}"
    lines.append(f"wrote {summary['out']}: {use}")
    return lines
