"""A few properties that visibly change the simulation (the full per-parameter set is the randomization
engine's job): heavier cube, lower friction, light, field of view, gains."""

from __future__ import annotations

import numpy as np

from sim.backend import Backend
from sim.camera import project
from sim.scene import NEUTRAL_ARM_Q_RAD

NEUTRAL = np.array(NEUTRAL_ARM_Q_RAD)


def _slide(b: Backend, speed_m_s: float = 0.6) -> float:
    """Launch the cube along +x on the table and return how far it slides in 0.4 s."""
    b.reset(NEUTRAL, 0.0, {"object": (np.array([-0.1, 0.15, 0.02]), np.array([1.0, 0, 0, 0]))})
    start = b.object_pose("object")[0]
    if b.name == "mujoco":
        import mujoco

        m, d = b.model, b.data  # type: ignore[attr-defined]
        j = m.body_jntadr[m.body("object").id]
        d.qvel[m.jnt_dofadr[j]] = speed_m_s
        mujoco.mj_forward(m, d)
    else:
        import pybullet as p

        p.resetBaseVelocity(b._obj_ids["object"], [speed_m_s, 0, 0], [0, 0, 0], physicsClientId=b._cid)  # type: ignore[attr-defined]
    for _ in range(10):
        b.step(NEUTRAL, 0.0)
    return float(b.object_pose("object")[0][0] - start[0])


def test_friction_changes_how_far_the_cube_slides(cube_backend: Backend) -> None:
    cube_backend.set_property("geom_friction:object", [1.0, 0.005, 0.0001])
    cube_backend.set_property("geom_friction:table", [1.0, 0.005, 0.0001])
    rough = _slide(cube_backend)
    cube_backend.set_property("geom_friction:object", [0.1, 0.005, 0.0001])
    cube_backend.set_property("geom_friction:table", [0.1, 0.005, 0.0001])
    slick = _slide(cube_backend)
    assert slick > rough + 0.05, (rough, slick)


def test_light_changes_pixel_statistics(cube_backend: Backend) -> None:
    cube_backend.reset(NEUTRAL, 0.0, {})
    bright = cube_backend.render("scene").mean()
    cube_backend.set_property("light_diffuse:key", [0.1, 0.1, 0.1])
    cube_backend.set_property("light_ambient:key", [0.05, 0.05, 0.05])
    dark = cube_backend.render("scene").mean()
    assert dark < 0.7 * bright, (bright, dark)


def test_fovy_moves_the_projected_object(cube_backend: Backend) -> None:
    cube_backend.reset(NEUTRAL, 0.0, {})
    spec = cube_backend.scene.camera("scene")
    obj, _ = cube_backend.object_pose("object")

    def green_centroid() -> np.ndarray:
        rgb = cube_backend.render("scene").astype(int)
        ys, xs = np.nonzero((rgb[..., 1] > rgb[..., 0] + 40) & (rgb[..., 1] > rgb[..., 2] + 40))
        return np.array([xs.mean(), ys.mean()])

    c0 = green_centroid()
    cube_backend.set_property("camera_fovy:scene", 30.0)
    c1 = green_centroid()
    pos, quat = cube_backend.camera_pose("scene")
    expected = project(obj[None], pos, quat, 30.0, spec.width, spec.height)[0]
    centre = np.array([spec.width / 2, spec.height / 2])
    assert np.linalg.norm(c1 - centre) > 1.2 * np.linalg.norm(c0 - centre)
    assert np.linalg.norm(c1 - expected) < 3.0


def test_lower_gain_tracks_more_slowly(cube_backend: Backend) -> None:
    target = NEUTRAL + 0.3

    def error_after_one_step() -> float:
        # joints 1-4: the wrist joints are torque-limited (12 N m) so their response hardly depends on the gain
        cube_backend.reset(NEUTRAL, 0.0, {})
        for _ in range(3):
            cube_backend.step(target, 0.0)
        return float(np.abs(cube_backend.joint_state()[0][:4] - target[:4]).mean())

    stiff = error_after_one_step()
    cube_backend.set_property("actuator_kp:panda_joint*", 50.0)
    cube_backend.set_property("actuator_kd:panda_joint*", 5.0)
    soft = error_after_one_step()
    assert soft > stiff + 0.05, (stiff, soft)


def test_heavier_gravity_makes_a_dropped_cube_fall_faster(cube_backend: Backend) -> None:
    def drop() -> float:
        cube_backend.reset(NEUTRAL, 0.0, {"object": (np.array([0.1, 0.15, 0.3]), np.array([1.0, 0, 0, 0]))})
        cube_backend.step(NEUTRAL, 0.0)  # 0.04 s
        return float(0.3 - cube_backend.object_pose("object")[0][2])

    normal = drop()
    cube_backend.set_property("gravity", [0.0, 0.0, -20.0])
    heavy = drop()
    assert heavy > 1.8 * normal, (normal, heavy)
