"""Pinhole projection conventions."""

import numpy as np

from sim.camera import intrinsics, project
from sim.transforms import look_at_quat


def test_look_at_target_projects_to_the_image_centre() -> None:
    eye, target = np.array([0.5, 0.2, 0.6]), np.array([-0.1, 0.0, 0.0])
    uv = project(target[None], eye, look_at_quat(eye, target), 45.0, 84, 64)
    np.testing.assert_allclose(uv[0], [42.0, 32.0], atol=1e-9)


def test_up_is_up_and_right_is_right() -> None:
    eye, target = (
        np.array([1.0, 0.0, 0.0]),
        np.zeros(3),
    )  # looking along -x with z up: image right is world +y
    q = look_at_quat(eye, target)
    above, right = project(np.array([[0, 0, 0.1], [0, 0.1, 0]]), eye, q, 60.0, 100, 100)
    assert above[1] < 50 and abs(above[0] - 50) < 1e-9
    assert right[0] > 50 and abs(right[1] - 50) < 1e-9


def test_fovy_sets_the_focal_length_and_points_behind_are_nan() -> None:
    k = intrinsics(90.0, 100, 100)
    assert abs(k[1, 1] - 50.0) < 1e-9
    eye = np.zeros(3)
    q = look_at_quat(eye, np.array([1.0, 0, 0]))
    assert np.isnan(project(np.array([[-1.0, 0, 0]]), eye, q, 60.0, 10, 10)).all()
