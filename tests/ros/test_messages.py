"""Message checks of the policy node without ROS (fault plan B.1 #4-6, #9-10 and B.2 #27 of ROS.md): image
decoding without cv_bridge, joint_states by name, and JointTrajectory validation as the controller does it."""

from __future__ import annotations

import numpy as np
import pytest

from sim2real_ros.messages import MessageError, image_to_rgb, joint_positions, validate_joint_trajectory

RGB = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)  # 2 rows, 3 columns, distinct values


def test_rgb8_and_bgr8_decode_to_the_same_rgb_array() -> None:
    assert np.array_equal(image_to_rgb(2, 3, "rgb8", 9, RGB.tobytes()), RGB)
    assert np.array_equal(image_to_rgb(2, 3, "bgr8", 9, RGB[..., ::-1].tobytes()), RGB)
    rgba = np.concatenate([RGB, np.full((2, 3, 1), 255, np.uint8)], axis=2)
    assert np.array_equal(image_to_rgb(2, 3, "rgba8", 12, rgba.tobytes()), RGB)
    bgra = np.concatenate([RGB[..., ::-1], np.zeros((2, 3, 1), np.uint8)], axis=2)
    assert np.array_equal(image_to_rgb(2, 3, "bgra8", 12, bgra.tobytes()), RGB)
    mono = image_to_rgb(2, 3, "mono8", 3, RGB[..., 0].tobytes())
    assert mono.shape == (2, 3, 3) and np.array_equal(mono[..., 2], RGB[..., 0])


def test_row_padding_is_dropped_and_row_zero_stays_on_top() -> None:
    padded = np.concatenate([RGB.reshape(2, 9), np.full((2, 3), 77, np.uint8)], axis=1)  # step 12 > 9
    out = image_to_rgb(2, 3, "rgb8", 12, padded.tobytes())
    assert np.array_equal(out, RGB) and out[0, 0, 0] == 0  # first bytes = top-left pixel


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ((2, 3, "yuyv", 6, bytes(12)), "not supported"),
        ((2, 3, "bayer_rggb8", 3, bytes(6)), "not supported"),
        ((2, 3, "16UC1", 6, bytes(12)), "not supported"),
        ((2, 3, "rgb8", 8, bytes(16)), "shorter than width x channels"),
        ((2, 3, "rgb8", 9, bytes(17)), "expected step x height = 18"),
        ((0, 3, "rgb8", 9, b""), "empty"),
    ],
)
def test_bad_images_are_refused(args: tuple, needle: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(MessageError, match=needle):
        image_to_rgb(*args)


ARM = [f"panda_joint{i}" for i in range(1, 8)]


def test_joint_states_are_read_by_name_in_any_order_with_extra_joints() -> None:
    names = ["panda_finger_joint1", *reversed(ARM)]
    pos = [0.04, *[float(i) for i in range(7, 0, -1)]]
    q, qd = joint_positions(names, pos, [], ARM)
    assert np.array_equal(q, np.arange(1.0, 8.0)) and qd is None
    q, qd = joint_positions(names, pos, pos, ARM)
    assert qd is not None and np.array_equal(qd, q)


@pytest.mark.parametrize(
    ("names", "pos", "vel", "needle"),
    [
        (ARM[:6], [0.0] * 6, [], "lacks joints"),
        ([*ARM, "panda_joint1"], [0.0] * 8, [], "twice"),
        (ARM, [0.0] * 6, [], "7 names but 6 positions"),
        (ARM, [0.0] * 7, [0.0] * 3, "velocities"),
        (ARM, [0.0] * 6 + [float("nan")], [], "non-finite"),
    ],
)
def test_faulty_joint_states_are_refused(names: list[str], pos: list[float], vel: list[float], needle: str) -> None:
    with pytest.raises(MessageError, match=needle):
        joint_positions(names, pos, vel, ARM)


def test_a_hold_trajectory_passes_the_controllers_checks() -> None:
    assert validate_joint_trajectory(ARM, [([0.1] * 7, [0.0] * 7, 0.1)], ARM) == []
    assert validate_joint_trajectory(ARM, [([0.1] * 7, [], 0.04), ([0.2] * 7, [], 0.08)], ARM) == []


@pytest.mark.parametrize(
    ("names", "points", "stamp", "needle"),
    [
        ([], [([], [], 0.1)], 0.0, "empty joint_names"),
        (ARM, [], 0.0, "empty trajectory"),
        (ARM[:6], [([0.0] * 6, [], 0.1)], 0.0, "do not cover"),
        ([*ARM[:6], "elbow"], [([0.0] * 7, [], 0.1)], 0.0, "unknown joints"),
        (ARM, [([0.0] * 7, [], 0.1), ([0.0] * 7, [], 0.1)], 0.0, "increase strictly"),
        (ARM, [([0.0] * 7, [], 0.0)], 0.0, "increase strictly"),
        (ARM, [([0.0] * 6, [], 0.1)], 0.0, "6 positions for 7 joints"),
        (ARM, [([0.0] * 7, [0.1] * 7, 0.1)], 0.0, "non-zero velocity"),
        (ARM, [([float("nan")] * 7, [], 0.1)], 0.0, "non-finite"),
        (ARM, [([0.0] * 7, [], 0.1)], 5.0, "header.stamp"),
    ],
)
def test_trajectories_the_controller_would_refuse(names: list[str], points: list, stamp: float, needle: str) -> None:  # type: ignore[type-arg]
    assert any(needle in p for p in validate_joint_trajectory(names, points, ARM, stamp))


def test_stamp_and_limit_checks_name_what_is_wrong() -> None:
    import numpy as np
    import pytest

    from sim2real_ros.messages import MessageError, check_stamp, limits_violation

    check_stamp("joint_states", 10.0, 10.1, max_age_s=0.5, max_lead_s=0.05)  # fresh enough: no error
    for stamp, needle in ((0.0, "is zero"), (9.0, "s old"), (10.5, "in the future")):
        with pytest.raises(MessageError, match=needle):
            check_stamp("joint_states", stamp, 10.1, max_age_s=0.5, max_lead_s=0.05)
    limits = np.array([[-1.0, 1.0], [-2.0, 2.0]])
    assert limits_violation(np.array([0.0, 2.01]), ["a", "b"], limits, tolerance_rad=0.02) is None
    assert "['b'] outside the joint limits" in str(limits_violation(np.array([0.0, 2.1]), ["a", "b"], limits, 0.02))
