"""Each backend against the description, and the two backends against each other."""

from __future__ import annotations

import numpy as np
import pytest

from sim.backend import Backend
from sim.camera import project
from sim.engines import make_backend
from sim.robot import panda
from sim.scene import NEUTRAL_ARM_Q_RAD, SceneSpec, cube
from sim.transforms import quat_angle_rad

#: Documented parity tolerance for the same joint-target sequence (rad): both engines run the same PD law with
#: gravity compensation, MuJoCo implicitly and PyBullet explicitly, so they differ by integration error only.
TRAJECTORY_PARITY_RAD = 2e-3
NEUTRAL = np.array(NEUTRAL_ARM_Q_RAD)


def _base() -> np.ndarray:
    t = np.eye(4)
    t[:3, 3] = SceneSpec().robot_base_pos_m
    return t


def _random_q(rng: np.random.Generator) -> np.ndarray:
    lim = panda().arm_limits_rad
    return rng.uniform(lim[:, 0] + 0.05, lim[:, 1] - 0.05)


def test_forward_kinematics_matches_the_description(cube_backend: Backend, rng: np.random.Generator) -> None:
    r = cube_backend.robot
    links = ["panda_link3", "panda_link7", "panda_hand", r.ee_link, "panda_leftfinger"]
    for _ in range(10):
        q = _random_q(rng)
        cube_backend.reset(q, 0.03, {})
        for link in links:
            pos, quat = cube_backend.link_pose(link)
            ref_pos, ref_quat = r.link_pose(link, np.concatenate([q, [0.03, 0.03]]), base=_base())
            assert np.abs(pos - ref_pos).max() < 1e-5, link
            assert quat_angle_rad(quat, ref_quat) < 1e-5, link
        js, jv = cube_backend.joint_state()
        np.testing.assert_allclose(js[:7], q, atol=1e-9)
        np.testing.assert_allclose(jv, 0.0, atol=1e-12)


def test_jacobian_matches_finite_differences(cube_backend: Backend, rng: np.random.Generator) -> None:
    r = cube_backend.robot
    q = _random_q(rng)
    cube_backend.reset(q, 0.0, {})
    jac = cube_backend.arm_jacobian(r.ee_link)
    assert jac.shape == (6, 7)
    eps = 1e-6
    p0 = r.link_pose(r.ee_link, q, base=_base())[0]
    for i in range(7):
        dq = q.copy()
        dq[i] += eps
        np.testing.assert_allclose(jac[:3, i], (r.link_pose(r.ee_link, dq, base=_base())[0] - p0) / eps, atol=1e-4)


def test_pd_with_gravity_compensation_holds_and_tracks(cube_backend: Backend) -> None:
    cube_backend.reset(NEUTRAL, 0.0, {})
    for _ in range(25):
        cube_backend.step(NEUTRAL, 0.0)
    assert np.abs(cube_backend.joint_state()[0][:7] - NEUTRAL).max() < 1e-3
    target = NEUTRAL + np.array([0.2, -0.2, 0.2, 0.2, -0.2, 0.2, 0.2])
    for _ in range(25):  # 1 s
        cube_backend.step(target, 0.04)
    q, qd = cube_backend.joint_state()
    assert np.abs(q[:7] - target).max() < 2e-3
    assert np.abs(q[7:] - 0.04).max() < 2e-3
    assert np.abs(qd).max() < 0.05


def test_same_joint_targets_give_the_same_motion_on_both_engines() -> None:
    """The documented parity: final joint positions agree within TRAJECTORY_PARITY_RAD."""
    rng = np.random.default_rng(7)
    targets = [NEUTRAL + rng.uniform(-0.3, 0.3, 7) for _ in range(5)]
    finals = {}
    for name in ("mujoco", "pybullet"):
        b = make_backend(name, SceneSpec(target=None))
        b.reset(NEUTRAL, 0.0, {})
        mid = []
        for t in targets:
            for _ in range(10):
                b.step(t, 0.02)
            mid.append(b.joint_state()[0])
        finals[name] = np.array(mid)
        b.close()
    err = np.abs(finals["mujoco"] - finals["pybullet"])
    assert err[-1].max() < TRAJECTORY_PARITY_RAD, err


def test_object_lies_where_the_camera_projection_says(cube_backend: Backend) -> None:
    """Render the scene camera and check the cube's projected centre falls on cube-green pixels."""
    cube_backend.reset(NEUTRAL, 0.0, {"object": (np.array([0.05, 0.05, 0.02]), np.array([1.0, 0, 0, 0]))})
    cube_backend.set_object_pose("target", np.array([0.0, 0.0, -1.0]), np.array([1.0, 0, 0, 0]))  # out of view
    spec = cube_backend.scene.camera("scene")
    rgb, depth = cube_backend.render("scene", depth=True)
    assert rgb.shape == (spec.height, spec.width, 3) and rgb.dtype == np.uint8
    assert depth.shape == (spec.height, spec.width)
    pos, quat = cube_backend.camera_pose("scene")
    obj_pos, _ = cube_backend.object_pose("object")
    u, v = project(obj_pos[None], pos, quat, spec.fovy_deg, spec.width, spec.height)[0]
    px = rgb[int(v), int(u)].astype(int)
    assert px[1] > px[0] + 40 and px[1] > px[2] + 40, px  # the cube is green; table brown, floor grey
    # depth at that pixel is the distance along the optical axis to the cube's near face
    dist = float(np.dot(obj_pos - pos, -_axis_z(quat)))
    assert abs(float(depth[int(v), int(u)]) - dist) < 0.03
    # and a pixel far from the cube is not green
    far = rgb[int(v), (int(u) + spec.width // 2) % spec.width].astype(int)
    assert not (far[1] > far[0] + 40 and far[1] > far[2] + 40)


def _axis_z(quat: np.ndarray) -> np.ndarray:
    from sim.transforms import quat_to_mat

    return quat_to_mat(quat)[:, 2]


def test_wrist_camera_follows_the_hand(cube_backend: Backend) -> None:
    cube_backend.reset(NEUTRAL, 0.0, {})
    p0, _ = cube_backend.camera_pose("wrist")
    q = NEUTRAL.copy()
    q[0] += 0.5
    cube_backend.reset(q, 0.0, {})
    p1, _ = cube_backend.camera_pose("wrist")
    assert np.linalg.norm(p1 - p0) > 0.05
    hand, _ = cube_backend.link_pose("panda_hand")
    assert np.linalg.norm(p1 - hand) < 0.1


def test_both_engines_see_the_same_scene() -> None:
    """The two renderers differ in shading, but the cube lands on the same pixels in both."""
    masks = []
    for name in ("mujoco", "pybullet"):
        b = make_backend(name, SceneSpec(objects=(cube("object", (0.0, -0.05, 0.02)),), target=None))
        b.reset(NEUTRAL, 0.0, {})
        rgb = b.render("scene").astype(int)
        masks.append((rgb[..., 1] > rgb[..., 0] + 40) & (rgb[..., 1] > rgb[..., 2] + 40))
        b.close()
    inter = (masks[0] & masks[1]).sum()
    union = (masks[0] | masks[1]).sum()
    assert masks[0].sum() > 5 and inter / union > 0.5, (masks[0].sum(), masks[1].sum(), inter, union)


def test_bad_inputs_are_clear_errors(cube_backend: Backend) -> None:
    cube_backend.reset(NEUTRAL, 0.0, {})
    with pytest.raises(ValueError, match="shape"):
        cube_backend.step(np.zeros(6), 0.0)
    with pytest.raises(ValueError, match="finite"):
        cube_backend.step(np.full(7, np.nan), 0.0)
    with pytest.raises(KeyError, match="unknown camera 'top'"):
        cube_backend.render("top")
    with pytest.raises(KeyError, match="unknown object"):
        cube_backend.object_pose("mug")
    with pytest.raises(ValueError, match="unknown backend"):
        make_backend("isaac", SceneSpec())


def test_properties_round_trip_on_every_element(cube_backend: Backend) -> None:
    """Every concrete property can be read, set to a changed valid value, and read back."""
    names = cube_backend.property_names()
    assert "body_mass:object" in names and "camera_fovy:wrist" in names and "gravity" in names
    for name in names:
        if name.startswith("joint_armature:panda_finger") and cube_backend.name == "pybullet":
            continue  # pybullet has no armature on prismatic joints (documented there)
        (value,) = cube_backend.get_property(name).values()
        new = _changed(name, value)
        cube_backend.set_property(name, new)
        (got,) = cube_backend.get_property(name).values()
        np.testing.assert_allclose(got, new, rtol=1e-6, atol=1e-9, err_msg=name)


def _changed(name: str, value: np.ndarray) -> np.ndarray:
    kind = name.split(":")[0]
    if kind == "camera_quat":
        return np.array([0.9, 0.1, 0.0, 0.0]) / np.linalg.norm([0.9, 0.1, 0.0, 0.0])
    if kind == "joint_range":
        return value + np.array([-0.01, 0.01])
    if kind == "geom_rgba":
        return np.array([0.2, 0.3, 0.4, 1.0])
    if kind == "texture":
        return _checker(value.shape[0])
    return value * 1.1 + 0.01


def _checker(n: int, cell: int = 8) -> np.ndarray:
    """A blue/yellow checkerboard (n, n, 3) in [0, 1]."""
    c = ((np.indices((n, n)) // cell).sum(0) % 2).astype(float)
    return np.stack([c, c, 1.0 - c], axis=-1)


def test_texture_draws_a_pattern_on_the_table(cube_backend: Backend) -> None:
    cube_backend.reset(NEUTRAL, 0.0, {})
    spec = cube_backend.scene.camera("scene")
    # table pixels: project the table's near half onto the image and sample there
    pos, quat = cube_backend.camera_pose("scene")
    pts = np.array([[x, y, 0.0] for x in np.linspace(-0.1, 0.2, 6) for y in np.linspace(-0.25, 0.25, 6)])
    uv = project(pts, pos, quat, spec.fovy_deg, spec.width, spec.height).astype(int)
    plain = cube_backend.render("scene")[uv[:, 1], uv[:, 0]].astype(float)
    cube_backend.set_property("geom_rgba:table", [1.0, 1.0, 1.0, 1.0])
    cube_backend.set_property(
        "texture:table", _checker(cube_backend.get_property("texture:table")["texture:table"].shape[0])
    )
    patterned = cube_backend.render("scene")[uv[:, 1], uv[:, 0]].astype(float)
    assert plain.std(axis=0).max() < 25  # flat brown table
    assert patterned[:, 2].std() > 40  # blue and yellow cells alternate under the sample points
    with pytest.raises(ValueError, match="<= 1.0"):
        cube_backend.set_property("texture:table", np.full((64, 64, 3), 2.0))
    with pytest.raises(ValueError, match="shape"):
        cube_backend.set_property("texture:table", np.zeros((8, 8, 3)))


def test_same_element_lists_on_both_engines() -> None:
    lists = []
    for name in ("mujoco", "pybullet"):
        b = make_backend(name, SceneSpec(objects=(cube(),)))
        lists.append(sorted(b.property_names()))
        b.close()
    assert lists[0] == lists[1]


def test_property_errors_name_the_field(cube_backend: Backend) -> None:
    with pytest.raises(KeyError, match="unknown property kind 'body_volume'"):
        cube_backend.set_property("body_volume:object", 1.0)
    with pytest.raises(KeyError, match="matches no element"):
        cube_backend.set_property("body_mass:mug*", 1.0)
    with pytest.raises(ValueError, match="body_mass:object.*> 0"):
        cube_backend.set_property("body_mass:object", -0.5)
    with pytest.raises(ValueError, match="geom_friction:table.*>= 0"):
        cube_backend.set_property("geom_friction:table", [-1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="shape"):
        cube_backend.set_property("gravity", [0.0, -9.81])
    with pytest.raises(ValueError, match="finite"):
        cube_backend.set_property("joint_damping:panda_joint1", float("nan"))
    with pytest.raises(ValueError, match="lower limit must be below upper"):
        cube_backend.set_property("joint_range:panda_joint1", [1.0, -1.0])
    before = cube_backend.get_property("body_mass:object")["body_mass:object"]
    assert before > 0  # nothing changed by the failed calls


def test_wildcards_set_every_match(cube_backend: Backend) -> None:
    cube_backend.set_property("joint_damping:panda_joint*", 3.0)
    values = cube_backend.get_property("joint_damping:panda_joint*")
    assert len(values) == 7 and all(float(v) == 3.0 for v in values.values())
