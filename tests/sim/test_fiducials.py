"""Prints drawn as geometry (sim.fiducials): the cells, their boxes, the marker cube's layout, and the prints on
both engines where the scene says, untouched by the object's colour randomization."""

from __future__ import annotations

import os

import numpy as np
import pytest

from sim.fiducials import (
    CUBE_FACES,
    PatternSpec,
    aruco_cells,
    black_boxes,
    checkerboard_cells,
    marker_corners_m,
    marker_frames,
)

os.environ.setdefault("MUJOCO_GL", "egl")


def test_aruco_cells_are_opencvs_marker_with_its_border() -> None:
    cells = np.array(aruco_cells("DICT_4X4_50", 0))
    assert cells.shape == (6, 6)
    assert cells[0].all() and cells[-1].all() and cells[:, 0].all() and cells[:, -1].all()  # black border
    assert not cells[1:-1, 1:-1].all()  # the id's bits
    assert aruco_cells("DICT_4X4_50", 1) != aruco_cells("DICT_4X4_50", 0)
    with pytest.raises(ValueError, match="not in DICT_4X4_50"):
        aruco_cells("DICT_4X4_50", 50)
    with pytest.raises(ValueError, match="unknown ArUco dictionary"):
        aruco_cells("DICT_9X9", 0)


def test_black_boxes_cover_exactly_the_black_cells() -> None:
    p = PatternSpec("p", "object", aruco_cells("DICT_4X4_50", 7), 0.005)
    boxes = black_boxes(p)
    area = sum(4 * hx * hy for _, (hx, hy) in boxes)
    assert area == pytest.approx(np.sum(p.cells) * 0.005**2)
    board = PatternSpec("b", "object", checkerboard_cells(4, 5), 0.01)
    assert len(black_boxes(board)) == 10  # alternating cells: no runs to merge
    centres = {(round(x, 4), round(y, 4)) for (x, y), _ in black_boxes(board)}
    assert (-0.02, 0.015) in centres  # top-left square is black: x = -cols/2 + 0.5 cells, y = rows/2 - 0.5


def test_marker_cube_layout_is_outward_and_right_handed() -> None:
    frames = marker_frames(0.02)
    assert sorted(frames) == [f[0] for f in CUBE_FACES]
    for offset, normal, _ in CUBE_FACES:
        t = frames[offset]
        np.testing.assert_allclose(t[:3, :3] @ t[:3, :3].T, np.eye(3), atol=1e-12)
        assert np.linalg.det(t[:3, :3]) == pytest.approx(1.0)
        np.testing.assert_allclose(t[:3, 2], normal)  # the print faces out of its face
        assert float(t[:3, 3] @ np.asarray(normal)) > 0.02
    np.testing.assert_allclose(marker_corners_m(0.032)[0], [-0.016, 0.016, 0.0])


@pytest.mark.parametrize("kw", [{"cells": ()}, {"cells": ((True,), (True, False))}, {"cell_m": 0.0}])
def test_bad_patterns_are_refused(kw: dict) -> None:
    base = {"name": "p", "parent": "object", "cells": ((True,),), "cell_m": 0.01}
    with pytest.raises(ValueError, match="pattern 'p'"):
        PatternSpec(**{**base, **kw})


@pytest.mark.parametrize("backend", ["mujoco", "pybullet"])
def test_prints_follow_the_object_and_keep_their_colours(backend: str) -> None:
    """The marker seen where the object is, after it moved, and still there after a geom_rgba:object draw (the
    prints are not the object's geoms)."""
    import gymnasium as gym

    import sim  # noqa: F401
    from sim.camera import base_from_optical, intrinsics
    from sim.marker_pose import MarkerDetector
    from sim.scene import NEUTRAL_ARM_Q_RAD

    env = gym.make("Sim2Real/Push-v0", backend=backend, object_marker=True, image_size=(640, 480),
                   cameras=("front",), start_arm_q_rad=NEUTRAL_ARM_Q_RAD)  # fmt: skip
    u = env.unwrapped
    env.reset(seed=2)
    k = intrinsics(float(u.get_property("camera_fovy:front")["camera_fovy:front"]), 640, 480)
    det = MarkerDetector(0.032, k)
    cam = base_from_optical(*u.sim.camera_pose("front"), np.zeros(3))  # the optical frame in the world
    for pos in ([0.05, 0.05, 0.02], [0.1, -0.1, 0.02]):
        u.sim.set_object_pose("object", np.array(pos), np.array([1.0, 0.0, 0.0, 0.0]))
        top = [s for s in det.detect(np.asarray(u.sim.render("front"))) if s.marker_id == 0]
        assert top, f"top marker not seen with the object at {pos}"
        world = cam[:3, :3] @ top[0].pos_cam_marker_m + cam[:3, 3]
        assert np.linalg.norm(world - (np.array(pos) + [0, 0, 0.0207])) < 0.01
    u.set_property("geom_rgba:object", np.array([0.9, 0.1, 0.1, 1.0]))
    assert any(s.marker_id == 0 for s in det.detect(np.asarray(u.sim.render("front"))))
    env.close()


def test_object_marker_needs_an_object_with_a_flat_top() -> None:
    import gymnasium as gym

    import sim  # noqa: F401

    with pytest.raises(ValueError, match="Reach has no object"):
        gym.make("Sim2Real/Reach-v0", object_marker=True)
    with pytest.raises(ValueError, match="a sphere has no flat top"):
        gym.make("Sim2Real/Push-v0", object_marker=True, object_shape="sphere")


def test_a_print_on_a_missing_parent_is_refused() -> None:
    from dataclasses import replace

    from sim.engines import make_backend
    from sim.scene import SceneSpec

    scene = replace(SceneSpec(), patterns=(PatternSpec("p", "nowhere", ((True,),), 0.01),))
    for backend in ("mujoco", "pybullet"):
        with pytest.raises(KeyError, match="parent 'nowhere' is neither"):
            make_backend(backend, scene)
