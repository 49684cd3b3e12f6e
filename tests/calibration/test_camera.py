"""Camera calibration (calibration.camera, sim2real calibrate-camera): a known simulated camera recovered on both
engines from rendered checkerboard views (intrinsics within 1 %, extrinsics within 5 mm and 1 deg), from an image
folder and from a bag; camera.yaml loads as a randomization space and trains; every degenerate input refused by
name."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

from calibration.camera import MIN_VIEWS, BoardSpec, CameraCalibrationError, View, calibrate, detect_corners  # noqa: E402
from calibration.camera_views import RenderedViews, render_views, write_views  # noqa: E402
from calibration.rotations import (  # noqa: E402
    average_rotation,
    board_tilt_rms_deg,
    robust_mean_pose,
    rotation_angles_deg,
    rotation_spread_deg,
)
from randomization.space import Parameter  # noqa: E402
from sim.transforms import homogeneous  # noqa: E402
from sim2real.calibrate_camera import (  # noqa: E402
    CalibrateCameraConfig,
    CalibrateCameraError,
    calibrate_camera,
    forward_kinematics,
    truth_errors,
)

#: The targets of issue 16 (section 5).
FOCAL_PCT, CENTRE_PCT, POSITION_MM, ANGLE_DEG = 1.0, 1.0, 5.0, 1.0
N_VIEWS = 20
_RENDERS: dict[tuple[Any, ...], RenderedViews] = {}


def views_of(backend: str, n: int = N_VIEWS, **kw: Any) -> RenderedViews:
    """Rendered views, once per process for each setting (renders are the slow part)."""
    key = (backend, n, tuple(sorted(kw.items())))
    if key not in _RENDERS:
        _RENDERS[key] = render_views(backend, n_views=n, seed=kw.pop("seed", 0), **kw)
    return _RENDERS[key]


def as_views(v: RenderedViews) -> list[View]:
    import cv2

    return [View(n, cv2.cvtColor(im, cv2.COLOR_RGB2GRAY), q) for n, im, q in zip(v.names, v.images, v.joints_rad)]


def assert_recovered(k: np.ndarray, x: np.ndarray, v: RenderedViews) -> dict[str, float]:
    e = truth_errors(k, x, v.k, v.x)
    assert e["fx_pct"] < FOCAL_PCT and e["fy_pct"] < FOCAL_PCT, e
    assert e["cx_pct"] < CENTRE_PCT and e["cy_pct"] < CENTRE_PCT, e
    assert e["position_mm"] < POSITION_MM and e["angle_deg"] < ANGLE_DEG, e
    return e


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The MuJoCo views as --render-views writes them (PNGs, joints.csv, truth.json)."""
    return write_views(tmp_path_factory.mktemp("views") / "mujoco", views_of("mujoco"))


def copy_of(folder: Path, tmp_path: Path) -> Path:
    out = tmp_path / "views"
    shutil.copytree(folder, out)
    return out


def run(source: Path, out: Path, **kw: Any) -> dict[str, Any]:
    return calibrate_camera(CalibrateCameraConfig(source=str(source), out=str(out), **kw))


# -- recovery -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["mujoco", "pybullet"])
def test_a_known_scene_camera_is_recovered(backend: str, tmp_path: Path) -> None:
    """20 rendered 640x480 views, the board on the hand: K within 1 %, the optical frame in the base frame within
    5 mm and 1 deg, and the camera_pose string is what the object tracker parses to the same transform."""
    from sim2real_ros.tracker_core import parse_camera_pose

    v = views_of(backend)
    src = write_views(tmp_path / "views", v)
    summary = run(src, tmp_path / "camera.yaml")
    c = summary["calibration"]
    k, pose = np.asarray(c["K"]), parse_camera_pose(c["base_from_optical"]["camera_pose"])
    e = assert_recovered(k, pose, v)
    assert summary["against_truth"] == pytest.approx(e, abs=1e-3)  # truth.json read back
    assert c["views"]["used"] == N_VIEWS and c["views"]["dropped"] == 0
    assert c["reprojection_rms_px"] < 0.5
    assert c["sim_camera"]["fovy_deg"] == pytest.approx(v.fovy_deg, rel=0.01)
    assert c["hand_eye"]["chain_residual_mm"]["median"] < 2.0


def test_a_wrist_camera_is_recovered_in_its_link() -> None:
    """--mount wrist: the board on the table, the camera on the hand (eye-in-hand)."""
    v = views_of("mujoco", 15, mount="wrist")
    fk, _ = forward_kinematics(_panda(), "panda_hand")
    cal = calibrate(as_views(v), v.board, fk, "wrist")
    assert_recovered(cal.k, cal.x, v)


def _panda() -> Any:
    from sim.robot import panda

    return panda()


# -- camera.yaml ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def camera_yaml(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("yaml") / "camera.yaml"
    run(folder, out)
    return out


def test_camera_yaml_is_a_randomization_space_centred_on_the_measurement(camera_yaml: Path) -> None:
    from randomization import space_from

    space = space_from(str(camera_yaml))
    assert space.names == ["camera_pos:scene", "camera_quat:scene", "camera_fovy:scene"]
    c = space.provenance["camera_calibration"]
    assert c["schema_version"] == 1 and c["written_by"] == "sim2real calibrate-camera"
    for key in ("image_width", "image_height", "K", "distortion", "reprojection_rms_px", "base_from_optical", "views",
                "board", "sim_camera"):  # fmt: skip
        assert key in c
    assert len(c["distortion"]) == 5 and np.asarray(c["K"]).shape == (3, 3)
    pos, fovy, quat = space["camera_pos:scene"], space["camera_fovy:scene"], space["camera_quat:scene"]
    assert isinstance(pos, Parameter) and isinstance(fovy, Parameter) and isinstance(quat, Parameter)
    np.testing.assert_allclose(pos.nominal, c["sim_camera"]["pos_m"])
    np.testing.assert_allclose(pos.high - pos.nominal, 0.01)
    np.testing.assert_allclose(pos.nominal - pos.low, 0.01)
    assert float(fovy.nominal) == pytest.approx(c["sim_camera"]["fovy_deg"])
    assert quat.is_fixed
    # the world pose is the base-frame optical frame moved by the scene's base and turned to MuJoCo's convention
    from calibration.rotations import rotation_matrix
    from sim.camera import base_from_optical

    x = base_from_optical(np.asarray(c["sim_camera"]["pos_m"]), np.asarray(c["sim_camera"]["quat_wxyz"]),
                          np.asarray(c["sim_camera"]["world_from_base_m"]))  # fmt: skip
    np.testing.assert_allclose(x[:3, 3], c["base_from_optical"]["position_m"], atol=1e-9)
    np.testing.assert_allclose(x[:3, :3], rotation_matrix(np.asarray(c["base_from_optical"]["quat_wxyz"])), atol=1e-9)


@pytest.mark.parametrize("backend", ["mujoco", "pybullet"])
def test_train_takes_camera_yaml(camera_yaml: Path, backend: str) -> None:
    """What `sim2real train --randomization camera.yaml` builds: the env resets with the camera at the draw."""
    from randomization import space_from
    from sim.env_spec import EnvSpec, make_env, make_sampler

    space = space_from(str(camera_yaml))
    spec = EnvSpec(task="reach", backend=backend, randomization=str(camera_yaml)).check()
    env = make_env(spec, make_sampler(spec, "uniform", np.random.default_rng(0)))
    try:
        env.reset(seed=0)
        u: Any = env.unwrapped
        pos = u.get_property("camera_pos:scene")["camera_pos:scene"]
        p, q, f = space["camera_pos:scene"], space["camera_quat:scene"], space["camera_fovy:scene"]
        assert isinstance(p, Parameter) and isinstance(q, Parameter) and isinstance(f, Parameter)
        assert np.all(pos >= p.low - 1e-9) and np.all(pos <= p.high + 1e-9)
        quat = u.get_property("camera_quat:scene")["camera_quat:scene"]
        assert min(np.linalg.norm(quat - q.nominal), np.linalg.norm(quat + q.nominal)) < 1e-6
        fovy = float(u.get_property("camera_fovy:scene")["camera_fovy:scene"])
        assert float(f.low) - 1e-9 <= fovy <= float(f.high) + 1e-9
    finally:
        env.close()


# -- from a bag -----------------------------------------------------------------------------------------------------


def _image_msg(stamp_ns: int, rgb: np.ndarray, encoding: str) -> Any:
    from tests.calibration.bag_factory import TYPESTORE

    t = TYPESTORE.types
    data = {"rgb8": rgb, "bgr8": rgb[..., ::-1], "mono8": rgb.mean(axis=2).astype(np.uint8)}[encoding]
    h, w = rgb.shape[:2]
    header = t["std_msgs/msg/Header"](
        stamp=t["builtin_interfaces/msg/Time"](sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9), frame_id="camera"
    )
    return t["sensor_msgs/msg/Image"](header=header, height=h, width=w, encoding=encoding, is_bigendian=0,
                                      step=data.size // h, data=np.ascontiguousarray(data).reshape(-1))  # fmt: skip


def write_calibration_bag(path: Path, v: RenderedViews, n: int) -> Path:
    """A bag as `sim2real record` writes it while the arm stops at each view: joint_states at 100 Hz (held 0.3 s at
    each view, moving in between), an image at each stop, and images that must be dropped: a second image of a
    stop, one mid-move, one where joint_states are missing, one where they hold a NaN."""
    from tests.calibration.bag_factory import ARM, Extra, JointStateSample, write_bag

    period, hold = 500_000_000, 150_000_000
    stops = [1_000_000_000 + i * period for i in range(n)]
    t_end = stops[-1] + 1_000_000_000
    gap = (stops[-1] + 400_000_000, stops[-1] + 600_000_000)  # joint_states missing here
    nan_at = stops[-1] + 800_000_000
    states = []
    for t in range(0, t_end, 10_000_000):
        if gap[0] <= t < gap[1]:
            continue
        i = max(0, min(n - 1, (t - stops[0] + hold) // period))
        q, qd = v.joints_rad[i], np.zeros(7)
        if stops[i] + hold < t and i + 1 < n:  # moving towards the next stop
            s = (t - stops[i] - hold) / (period - 2 * hold)
            if s < 1.0:
                q = (1 - s) * v.joints_rad[i] + s * v.joints_rad[i + 1]
                qd = (v.joints_rad[i + 1] - v.joints_rad[i]) / ((period - 2 * hold) / 1e9)
            else:
                q = v.joints_rad[i + 1]
        if t == nan_at:
            q = q.copy()
            q[2] = np.nan
        states.append(JointStateSample(t, ARM, list(q), list(qd)))
    images: list[tuple[int, np.ndarray, str]] = [
        (s, v.images[i], ("rgb8", "bgr8", "mono8")[i % 3]) for i, s in enumerate(stops)
    ]
    images += [(stops[0] + 50_000_000, v.images[0], "rgb8"),  # the same pose again
               (stops[0] + period // 2, v.images[0], "rgb8"),  # mid-move
               ((gap[0] + gap[1]) // 2, v.images[-1], "rgb8"),  # no joint_states near
               (nan_at, v.images[-1], "rgb8")]  # fmt: skip
    extra = [Extra("/camera/image_raw", "sensor_msgs/msg/Image", t + 5_000_000, _image_msg(t, im, enc))
             for t, im, enc in sorted(images, key=lambda x: x[0])]  # fmt: skip
    return write_bag(path, joint_states=states, extra=extra, latency_ns=2_000_000)


def test_a_bag_pairs_still_images_with_their_joint_states(tmp_path: Path) -> None:
    v = views_of("mujoco")
    n = 15
    bag = write_calibration_bag(tmp_path / "bag", v, n)
    summary = run(bag, tmp_path / "camera.yaml")
    c = summary["calibration"]
    assert c["views"]["used"] == n, c["views"]
    reasons = " | ".join(d["reason"] for d in c["views"]["dropped_why"])
    assert c["views"]["dropped"] == 4, reasons
    for why in ("the same pose as", "the arm was moving", "no joint_states within 20 ms", "non-finite positions"):
        assert why in reasons
    assert "panda_joint3 = nan" in reasons
    assert_recovered(np.asarray(c["K"]), _pose(c), v)
    assert c["source"]["kind"] == "bag" and c["source"]["images"] == n + 4


def _pose(c: dict[str, Any]) -> np.ndarray:
    from calibration.rotations import rotation_matrix

    return homogeneous(
        rotation_matrix(np.asarray(c["base_from_optical"]["quat_wxyz"])), c["base_from_optical"]["position_m"]
    )


def test_a_bag_without_the_camera_is_refused_naming_its_topics(tmp_path: Path) -> None:
    from tests.calibration.bag_factory import ARM, JointStateSample, write_bag

    bag = write_bag(
        tmp_path / "bag", joint_states=[JointStateSample(t * 10_000_000, ARM, [0.0] * 7) for t in range(10)]
    )
    with pytest.raises(CalibrateCameraError, match=r"no camera/image_raw topic .* its topics: /joint_states"):
        run(bag, tmp_path / "camera.yaml")


# -- degenerate inputs ----------------------------------------------------------------------------------------------


def test_too_few_views_are_refused(folder: Path, tmp_path: Path) -> None:
    src = copy_of(folder, tmp_path)
    keep = [f"view_{i:03d}.png" for i in range(MIN_VIEWS - 1)]
    for p in src.glob("*.png"):
        if p.name not in keep:
            p.unlink()
    rows = [r for r in csv.reader((src / "joints.csv").open()) if r[0] in keep or r[0] == "file"]
    with (src / "joints.csv").open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    with pytest.raises(CalibrateCameraError, match=rf"{MIN_VIEWS - 1} usable images, at least {MIN_VIEWS} needed"):
        run(src, tmp_path / "camera.yaml")


def test_a_board_never_found_names_the_files(folder: Path, tmp_path: Path) -> None:
    import cv2

    src = copy_of(folder, tmp_path)
    for p in src.glob("*.png"):
        cv2.imwrite(str(p), np.full((480, 640), 128, np.uint8))
    with pytest.raises(CalibrateCameraError, match=r"found in 0 of 20 images.*not found in: view_000.png, view_001"):
        run(src, tmp_path / "camera.yaml")
    assert not (tmp_path / "camera.yaml").exists()


def test_a_wrong_board_spec_finds_nothing(folder: Path, tmp_path: Path) -> None:
    with pytest.raises(
        CalibrateCameraError,
        match=r"7x6 board \(6x5 inner corners.*found in [0-7] of 20 images, 8 needed.*Check --board",
    ):
        run(folder, tmp_path / "camera.yaml", board="7x6")
    with pytest.raises(CalibrateCameraError, match="one side must have an odd and the other an even"):
        run(folder, tmp_path / "camera.yaml", board="8x6")


@pytest.mark.parametrize(("tilt_deg", "roll_deg"), [((0.0, 0.0), 0.0), ((0.0, 0.0), 30.0), ((2.0, 6.0), 6.0)])
def test_views_without_rotation_spread_are_refused(tilt_deg: tuple[float, float], roll_deg: float) -> None:
    """Boards all in one plane orientation (translations only), turned about their normal only, or tilted a few
    degrees (where hand-eye errors reach 10 mm, BENCHMARKS): hand-eye and the focal length are undetermined."""
    v = views_of("mujoco", 10, parallel=True, tilt_deg=tilt_deg, roll_deg=roll_deg)
    fk, _ = forward_kinematics(_panda(), "panda_hand")
    with pytest.raises(CameraCalibrationError, match=r"barely rotate the panda_hand.*all views coplanar"):
        calibrate(as_views(v), v.board, fk, "scene")


def test_nan_joints_name_the_row(folder: Path, tmp_path: Path) -> None:
    src = copy_of(folder, tmp_path)
    rows = list(csv.reader((src / "joints.csv").open()))
    rows[4][3] = "nan"
    with (src / "joints.csv").open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    with pytest.raises(CalibrateCameraError, match=r"joints.csv line 5 \(view_003.png\): panda_joint3 is nan"):
        run(src, tmp_path / "camera.yaml")


def test_an_image_without_a_row_is_named(folder: Path, tmp_path: Path) -> None:
    src = copy_of(folder, tmp_path)
    rows = [r for r in csv.reader((src / "joints.csv").open()) if r[0] != "view_007.png"]
    with (src / "joints.csv").open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    with pytest.raises(CalibrateCameraError, match=r"has no row for view_007.png"):
        run(src, tmp_path / "camera.yaml")


def test_an_unreadable_image_is_named(folder: Path, tmp_path: Path) -> None:
    src = copy_of(folder, tmp_path)
    (src / "view_002.png").write_bytes(b"not a png")
    with pytest.raises(CalibrateCameraError, match=r"view_002.png: not a readable image"):
        run(src, tmp_path / "camera.yaml")


@pytest.mark.parametrize(
    ("kw", "why"),
    [({"board_link": "panda_link4"}, "the kinematic chain does not close"),
     ({"square_m": 0.025}, "the kinematic chain does not close"),
     ({"board_link": "nowhere"}, "--board-link 'nowhere' is not a link"),
     ({"urdf": "/nonexistent/arm.urdf"}, "--urdf /nonexistent/arm.urdf"),
     ({"camera_name": "wrist"}, "rides on panda_hand")],
)  # fmt: skip
def test_a_chain_that_does_not_describe_the_views_is_refused(folder: Path, tmp_path: Path, kw: dict, why: str) -> None:
    """The board on another link, or a wrong square size: the joints do not explain the views; no file is written."""
    with pytest.raises(CalibrateCameraError, match=why):
        run(folder, tmp_path / "camera.yaml", **kw)
    assert not (tmp_path / "camera.yaml").exists()


# -- corners and rotations ------------------------------------------------------------------------------------------


def test_corners_come_in_the_print_order_whichever_way_the_image_is_turned() -> None:
    import cv2

    v = views_of("mujoco")
    gray = cv2.cvtColor(v.images[0], cv2.COLOR_RGB2GRAY)
    c = detect_corners(gray, v.board)
    turned = detect_corners(np.ascontiguousarray(gray[::-1, ::-1]), v.board)
    assert c is not None and turned is not None
    h, w = gray.shape
    np.testing.assert_allclose(turned, np.stack([w - 1 - c[:, 0], h - 1 - c[:, 1]], axis=1), atol=0.05)


def test_board_specs_are_checked() -> None:
    assert BoardSpec.parse("9x6", 0.03).pattern_size == (8, 5)
    pts = BoardSpec(9, 6, 0.03).object_points()
    np.testing.assert_allclose(pts[0], [-0.105, 0.06, 0.0], atol=1e-7)  # top-left inner corner
    for text, match in (("9by6", "COLSxROWS"), ("2x3", "at least 3x3"), ("7x7", "odd and the other an even")):
        with pytest.raises(CameraCalibrationError, match=match):
            BoardSpec.parse(text, 0.03)
    with pytest.raises(CameraCalibrationError, match="--square-m"):
        BoardSpec(9, 6, 0.0)


def _rot(axis: Any, deg: float) -> np.ndarray:
    from calibration.camera_views import _axis_angle

    return _axis_angle(np.asarray(axis, float), np.radians(deg))


def test_rotation_averages_spreads_and_robust_poses() -> None:
    rng = np.random.default_rng(3)
    mean = _rot([1, 2, 3], 70)
    rots = np.stack([mean @ _rot(rng.normal(size=3), rng.normal(0, 2)) for _ in range(50)])
    assert rotation_angles_deg(average_rotation(rots)[None], mean)[0] < 0.5
    one_axis = np.stack([mean @ _rot([0, 0, 1], a) for a in np.linspace(-30, 30, 11)])
    s = rotation_spread_deg(one_axis)
    assert s[0] > 15 and s[1] < 1e-6
    poses = np.stack([homogeneous(r, [0.1, 0.2, 0.3]) for r in rots])
    poses[7] = homogeneous(_rot([0, 1, 0], 40) @ mean, [0.5, 0.2, 0.3])  # an outlier
    robust, keep = robust_mean_pose(poses)
    assert not keep[7] and keep.sum() >= 40
    np.testing.assert_allclose(robust[:3, 3], [0.1, 0.2, 0.3], atol=1e-9)
    facing = np.stack([homogeneous(np.eye(3), [0, 0, 1])] * 5)
    assert board_tilt_rms_deg(facing) == pytest.approx(0.0, abs=1e-9)


# -- the command line -----------------------------------------------------------------------------------------------


def test_cli_writes_camera_yaml_and_never_replaces_what_it_did_not_write(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sim2real.cli import main

    out = tmp_path / "camera.yaml"
    assert main(["calibrate-camera", str(folder), "--out", str(out), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "calibrated from 20 views (0 dropped)" in err and "camera_pose" in err and f"wrote {out}" in err
    before = out.read_text()
    assert main(["calibrate-camera", str(folder), "--out", str(out), "--no-progress"]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_text() == before
    assert main(["calibrate-camera", str(folder), "--out", str(out), "--force", "--no-progress"]) == 0  # its own file
    other = tmp_path / "notes.yaml"
    other.write_text("schema_version: 1\nparameters: []\n")
    assert main(["calibrate-camera", str(folder), "--out", str(other), "--force", "--no-progress"]) == 2
    assert "was not written by sim2real calibrate-camera" in capsys.readouterr().err
    assert other.read_text() == "schema_version: 1\nparameters: []\n"


def test_cli_renders_demo_views(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from sim2real.cli import main

    out = tmp_path / "demo"
    assert main(["calibrate-camera", "--render-views", str(out), "--views", "2", "--backend", "pybullet",
                 "--no-progress"]) == 0  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == ["joints.csv", "truth.json", "view_000.png", "view_001.png"]
    header = next(csv.reader((out / "joints.csv").open()))
    assert header == ["file"] + [f"panda_joint{i}" for i in range(1, 8)]
    assert json.loads((out / "truth.json").read_text())["backend"] == "pybullet"
    assert "calibrate with: sim2real calibrate-camera" in capsys.readouterr().err
    assert main(["calibrate-camera", "--render-views", str(out), "--no-progress"]) == 2  # never into a full folder
    assert "already exists" in capsys.readouterr().err
    assert main(["calibrate-camera", "--no-progress"]) == 2
