"""A policy trained for a user's cell carries it into its bundle: the manifest holds the workspace, table height and
start pose; its goal box and end-effector bounds are the cell's; `sim2real deploy` prints the workspace in the base
frame, the node's refusal names it, and `sim2real train` refuses an impossible cell naming the bound."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from policies.bundle import load_bundle
from sim.cell import NAMED_POSES
from sim.scene import SceneSpec
from sim2real.deploy import workspace_line
from sim2real.export_run import export_run
from tests.bundle_edits import without_fields
from tests.quick_runs import quick_run

BOX = (0.3, -0.25, 0.25, 0.5, 0.25, 0.5)
BASE = np.array(SceneSpec().robot_base_pos_m)


@pytest.fixture(scope="module")
def cell_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cell")
    run = quick_run(out / "run", task="reach", agent="ppo", control="ee", steps=64, goal_workspace_base_m=BOX,
                    table_height_m=-0.1, start_joints="ready")  # fmt: skip
    return export_run(run, out / "bundle")


def test_the_manifest_carries_the_cell(cell_bundle: Path) -> None:
    m = load_bundle(cell_bundle).manifest
    assert m.env.goal_workspace_base_m == BOX and m.env.table_height_m == -0.1
    np.testing.assert_allclose(m.env.start_joints, NAMED_POSES["ready"], atol=1e-6)
    np.testing.assert_allclose(m.goal.world_low_m, np.array(BOX[:3]) + BASE)
    np.testing.assert_allclose(m.goal.world_high_m, np.array(BOX[3:]) + BASE)
    bounds = np.array(m.policy.ee_control.bounds_world_m)  # type: ignore[union-attr]
    assert np.all(bounds[0] <= np.array(BOX[:3]) + BASE) and np.all(bounds[1] >= np.array(BOX[3:]) + BASE)
    line = workspace_line(m)
    assert "x [0.300, 0.500], y [-0.250, 0.250], z [0.250, 0.500] m (panda_link0)" in line


def test_the_node_refuses_a_goal_outside_naming_the_box(cell_bundle: Path) -> None:
    pytest.importorskip("sim2real_ros.policy_core", reason="needs the ros package on the path")
    from sim2real_ros.policy_core import PolicyCore

    core = PolicyCore(load_bundle(cell_bundle))
    why = core.on_goal("panda_link0", (0.6, 0.0, 0.1), (0.0, 0.0, 0.0, 1.0), 1.0) or ""
    assert "outside the trained workspace x [0.300, 0.500], y [-0.250, 0.250], z [0.250, 0.500] m" in why
    assert core.on_goal("panda_link0", (0.4, 0.1, 0.3), (0.0, 0.0, 0.0, 1.0), 1.0) is None


def test_old_manifests_without_the_cell_still_load(cell_bundle: Path, tmp_path: Path) -> None:
    fields = ("env.goal_workspace_base_m", "env.table_height_m", "env.start_joints")
    old = without_fields(cell_bundle, tmp_path / "old", *fields)
    assert load_bundle(old).manifest.env.goal_workspace_base_m is None


def test_train_refuses_an_impossible_cell_naming_the_bound(tmp_path: Path) -> None:
    cli = [
        sys.executable,
        "-m",
        "sim2real.cli",
        "train",
        "--task",
        "reach",
        "--steps",
        "64",
        "--out",
        str(tmp_path / "r"),
    ]
    r = subprocess.run([*cli, "--goal-workspace", "0.5,-0.1,0.0,0.95,0.1,0.3"], capture_output=True, text=True,
                       timeout=120)  # fmt: skip
    assert r.returncode == 2 and "from the shoulder; the arm reaches 0.855 m" in r.stderr, r.stderr
    r = subprocess.run([*cli, "--goal-workspace", "0.5,0.1"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "takes 6 numbers" in r.stderr
    assert not (tmp_path / "r").exists()


def test_a_run_trained_on_a_camera_calibration_exports_the_measured_intrinsics(tmp_path: Path) -> None:
    """camera.yaml (sim2real calibrate-camera) as the training randomization: the bundle's camera K is the
    measured one, scaled to the deployed size, so the node checks camera_info against the real camera."""
    import yaml

    from sim2real.export_run import calibrated_intrinsics

    k = [[610.0, 0.0, 318.0], [0.0, 612.0, 243.0], [0.0, 0.0, 1.0]]
    cal = {"schema_version": 1, "image_width": 640, "image_height": 480, "K": k}
    space = {"schema_version": 1, "parameters": [{"name": "camera_fovy:scene", "nominal": 43.0, "low": 42.0,
             "high": 44.0}], "provenance": {"camera_calibration": cal}}  # fmt: skip
    path = tmp_path / "camera.yaml"
    path.write_text(yaml.safe_dump(space))
    np.testing.assert_allclose(calibrated_intrinsics(str(path), 640, 480), k)
    np.testing.assert_allclose(calibrated_intrinsics(str(path), 320, 240)[:2], [[305.0, 0, 159.0], [0, 306.0, 121.5]])
    assert calibrated_intrinsics("dynamics", 640, 480) is None  # a preset: no calibration in it
    assert calibrated_intrinsics(None, 640, 480) is None
