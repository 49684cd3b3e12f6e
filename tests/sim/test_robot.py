"""The Panda description parsed from the URDF: names, limits, forward kinematics."""

import numpy as np
import pytest

from sim.robot import panda, parse_urdf
from sim.transforms import mat_to_quat, quat_angle_rad, quat_to_mat, rpy_to_mat


def test_joint_names_and_limits_come_from_the_urdf() -> None:
    r = panda()
    assert r.arm_joint_names == tuple(f"panda_joint{i}" for i in range(1, 8))
    assert r.finger_joint_names == ("panda_finger_joint1", "panda_finger_joint2")
    np.testing.assert_allclose(r.arm_limits_rad[3], [-3.1416, 0.0])
    np.testing.assert_allclose(r.arm_limits_rad[5], [-0.0873, 3.8223])
    assert r.finger_limits_m == (0.0, 0.04)
    assert r.base_link == "panda_link0"


def test_meshes_resolve_to_files_on_disk() -> None:
    r = panda()
    paths = [p for link in r.links for p, _ in link.visual_meshes + link.collision_meshes]
    assert len(paths) == 22  # 11 links with a visual and a collision mesh each
    assert all(not p.startswith("package://") for p in paths)
    import os

    assert all(os.path.isfile(p) for p in paths)


def test_fk_at_zero_matches_the_panda_dh_geometry() -> None:
    # At q = 0 the Panda flange is at x = 0.088, z = 0.333 + 0.316 + 0.384 - 0.107 (flange points down).
    r = panda()
    pos, quat = r.link_pose("panda_link8", np.zeros(9))
    np.testing.assert_allclose(pos, [0.088, 0.0, 0.333 + 0.316 + 0.384 - 0.107], atol=1e-9)
    # The grasp target sits 0.105 m further along the flange axis (downwards).
    ee, _ = r.link_pose(r.ee_link, np.zeros(9))
    np.testing.assert_allclose(ee - pos, [0.0, 0.0, -0.105], atol=1e-9)


def test_fk_joint1_rotates_the_whole_arm_about_z() -> None:
    r = panda()
    q = np.array([0.0, 0.3, 0.0, -1.5, 0.0, 1.8, 0.7, 0.0, 0.0])
    p0, _ = r.link_pose(r.ee_link, q)
    q[0] = np.pi / 2
    p1, _ = r.link_pose(r.ee_link, q)
    np.testing.assert_allclose(p1, [-p0[1], p0[0], p0[2]], atol=1e-12)


def test_fk_base_transform_and_dict_input() -> None:
    r = panda()
    base = np.eye(4)
    base[:3, 3] = [-0.6, 0.1, 0.0]
    q = {"panda_joint2": 0.4, "panda_joint4": -1.9}
    p, _ = r.link_pose(r.ee_link, q, base=base)
    p0, _ = r.link_pose(r.ee_link, q)
    np.testing.assert_allclose(p - p0, [-0.6, 0.1, 0.0], atol=1e-12)


def test_unknown_link_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="no link 'gripper'"):
        panda().link_pose("gripper", np.zeros(9))


def test_parse_rejects_a_urdf_with_two_roots(tmp_path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "bad.urdf"
    f.write_text('<robot name="x"><link name="a"/><link name="b"/></robot>')
    with pytest.raises(ValueError, match="one root link"):
        parse_urdf(f)


def test_rotation_round_trips(rng: np.random.Generator) -> None:
    for _ in range(50):
        m = rpy_to_mat(rng.uniform(-np.pi, np.pi, 3))
        np.testing.assert_allclose(quat_to_mat(mat_to_quat(m)), m, atol=1e-12)
        q = mat_to_quat(m)
        assert quat_angle_rad(q, -q) < 1e-6
