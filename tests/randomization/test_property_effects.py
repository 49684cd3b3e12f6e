"""Every randomizable property kind, on both engines, measurably changes the simulation: joint responses,
object motion, rendered pixels, delayed or corrupted observations (not merely what a getter reads back)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import sim  # noqa: F401  (registers the Sim2Real envs)
from sim.backend import Backend
from sim.camera import project
from sim.engines import BACKENDS, make_backend
from sim.properties import KINDS, TEXTURE_SIZE
from sim.scene import NEUTRAL_ARM_Q_RAD, SceneSpec, cube
from sim.transforms import mat_to_quat, quat_angle_rad, quat_to_mat

NEUTRAL = np.array(NEUTRAL_ARM_Q_RAD)
#: Arm pose with the hand vertical and the end-effector 1.6 cm above the table at x = y = 0 (joints 2, 4, 6 bent
#: further than NEUTRAL), from which a base-joint rotation sweeps the closed fingers through a cube on the table
#: (higher, the fingers catch the cube's top edge and ride over it in PyBullet).
LOW_ARM_Q_RAD = np.array([0.0, 0.671, 0.0, -1.989, 0.0, 2.66, 0.79])
IDENTITY_QUAT = np.array([1.0, 0.0, 0.0, 0.0])
NOMINAL_GRAVITY = np.array([0.0, 0.0, -9.81])
#: Where the cube rests when the scene is built (and after `reset` without an object pose).
CUBE_HOME_M = (0.1, 0.15, 0.02)
CUBE_HALF_M = 0.02

#: Property kinds this file measures; the meta-test checks it against sim.properties.KINDS.
COVERED: set[str] = set()


def _covers(*kinds: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Record that the decorated test measures the effect of these property kinds."""

    def mark(test: Callable[..., None]) -> Callable[..., None]:
        COVERED.update(kinds)
        return test

    return mark


# -- fixtures: one backend and two envs per engine for the whole module ------------------------------------
@pytest.fixture(scope="module", params=BACKENDS)
def engine(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """A backend with a cube on the table; tests restore every property they change."""
    b = make_backend(str(request.param), SceneSpec(objects=(cube("object", CUBE_HOME_M, CUBE_HALF_M),)))
    yield b
    b.close()


@pytest.fixture(scope="module", params=BACKENDS)
def reach_env(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Reach with state observations and joint control (the unwrapped env holds the env-level properties)."""
    env = gym.make("Sim2Real/Reach-v0", backend=str(request.param))
    yield env
    env.close()


@pytest.fixture(scope="module", params=BACKENDS)
def pixel_env(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Reach with 64x64 images from the scene camera."""
    env = gym.make("Sim2Real/Reach-v0", backend=str(request.param), obs_mode="pixels", image_size=64)
    yield env
    env.close()


@contextlib.contextmanager
def changed(target: Any, values: Mapping[str, object]) -> Iterator[None]:
    """Set properties on a backend or an env for the duration of the block, then restore the old values."""
    old: dict[str, np.ndarray] = {}
    for name in values:
        old.update(target.get_property(name))
    target.set_properties(values)
    try:
        yield
    finally:
        target.set_properties(old)


# -- measurements ------------------------------------------------------------------------------------------
def joint_response(b: Backend, joint: str, delta_rad: float = 0.3, n_steps: int = 2) -> float:
    """From rest at NEUTRAL, command `joint` `delta_rad` away for `n_steps` control steps; how far it moved (rad)."""
    j = b.robot.arm_joint_names.index(joint)
    b.reset(NEUTRAL, 0.0, {})
    target = NEUTRAL.copy()
    target[j] += delta_rad
    for _ in range(n_steps):
        b.step(target, 0.0)
    return float(b.joint_state()[0][j] - NEUTRAL[j])


def sweep_push_m(b: Backend) -> float:
    """Rotate the base joint 0.3 rad with the fingertips low, sweeping them through a cube 5 cm to the side;
    how far the cube was pushed across the table (m)."""
    start = np.array([0.0, 0.05, CUBE_HALF_M])
    b.reset(LOW_ARM_Q_RAD, 0.0, {"object": (start, IDENTITY_QUAT)})
    for k in range(10):  # the base-joint target ramps to 0.3 rad over 0.2 s, then holds
        target = LOW_ARM_Q_RAD.copy()
        target[0] = 0.3 * min(1.0, (k + 1) / 5)
        b.step(target, 0.0)
    return float(np.linalg.norm(b.object_pose("object")[0][:2] - start[:2]))


def topple_deg(b: Backend, tilt_deg: float = 40.0, n_steps: int = 3) -> float:
    """Stand the cube on one edge, tilted `tilt_deg` about x (off balance), and let it fall for `n_steps`
    control steps; how far it rotated (deg)."""
    a = np.deg2rad(tilt_deg)
    quat = np.array([np.cos(a / 2), np.sin(a / 2), 0.0, 0.0])
    z = CUBE_HALF_M * (np.cos(a) + np.sin(a)) + 1e-4  # lowest edge just above the table
    b.reset(NEUTRAL, 0.0, {"object": (np.array([0.1, 0.2, z]), quat)})
    for _ in range(n_steps):
        b.step(NEUTRAL, 0.0)
    return float(np.rad2deg(quat_angle_rad(b.object_pose("object")[1], quat)))


def drop_displacement_m(b: Backend, n_steps: int = 3) -> np.ndarray:
    """Release the cube at rest 0.3 m above the table; its displacement (3,) m after `n_steps` control steps."""
    start = np.array([0.1, 0.2, 0.3])
    b.reset(NEUTRAL, 0.0, {"object": (start, IDENTITY_QUAT)})
    for _ in range(n_steps):
        b.step(NEUTRAL, 0.0)
    return b.object_pose("object")[0] - start


def incline_slide_m(b: Backend, incline_deg: float = 25.0, n_steps: int = 5) -> float:
    """Tilt gravity as if the table were inclined by `incline_deg` about y; how far the resting cube slides
    downhill (m) in `n_steps` control steps."""
    a = np.deg2rad(incline_deg)
    start = np.array([0.1, 0.2, CUBE_HALF_M])
    with changed(b, {"gravity": 9.81 * np.array([-np.sin(a), 0.0, -np.cos(a)])}):
        b.reset(NEUTRAL, 0.0, {"object": (start, IDENTITY_QUAT)})
        for _ in range(n_steps):
            b.step(NEUTRAL, 0.0)
        return float(start[0] - b.object_pose("object")[0][0])


def render_scene(b: Backend) -> np.ndarray:
    """The scene camera's image (H, W, 3) uint8 with the arm at NEUTRAL and the cube at home."""
    b.reset(NEUTRAL, 0.0, {})
    return b.render("scene")  # type: ignore[return-value]


def cube_pixel(b: Backend) -> np.ndarray:
    """Where the cube's centre projects in the scene camera, (u, v) pixels, from the backend's camera state."""
    spec = b.scene.camera("scene")
    pos, quat = b.camera_pose("scene")
    fovy = float(b.get_property("camera_fovy:scene")["camera_fovy:scene"])
    return project(np.array([CUBE_HOME_M]), pos, quat, fovy, spec.width, spec.height)[0]


def green_centroid(rgb: np.ndarray) -> np.ndarray:
    """Centroid (u, v) of the clearly green pixels (the cube) of an (H, W, 3) uint8 image."""
    c = rgb.astype(int)
    vs, us = np.nonzero((c[..., 1] > c[..., 0] + 30) & (c[..., 1] > c[..., 2] + 30))
    assert len(us) >= 4, "the cube is not visible"
    return np.array([us.mean(), vs.mean()])


def high_frequency_energy(img: np.ndarray) -> float:
    """Mean squared difference between horizontally and vertically neighbouring pixel values."""
    f = img.astype(float)
    return float((np.diff(f, axis=0) ** 2).mean() + (np.diff(f, axis=1) ** 2).mean())


def checker(square_px: int = 4) -> np.ndarray:
    """Black-and-white checkerboard texture (TEXTURE_SIZE, TEXTURE_SIZE, 3) in [0, 1]."""
    i = np.arange(TEXTURE_SIZE) // square_px
    board = ((i[:, None] + i[None, :]) % 2).astype(float)
    return np.repeat(board[:, :, None], 3, axis=2)


# -- engine properties: dynamics of the arm ----------------------------------------------------------------
@_covers("actuator_kp")
@pytest.mark.parametrize("joint", ["panda_joint1", "panda_joint7"])
def test_lower_kp_slows_the_joint(engine: Backend, joint: str) -> None:
    nominal = joint_response(engine, joint)
    with changed(engine, {f"actuator_kp:{joint}": 20.0}):
        soft = joint_response(engine, joint)
    assert nominal > 0.05 and soft < 0.25 * nominal, (nominal, soft)


@_covers("actuator_kd")
@pytest.mark.parametrize("joint", ["panda_joint1", "panda_joint7"])
def test_higher_kd_slows_the_joint(engine: Backend, joint: str) -> None:
    nominal = joint_response(engine, joint)
    with changed(engine, {f"actuator_kd:{joint}": 1000.0}):
        damped = joint_response(engine, joint)
    assert nominal > 0.05 and damped < 0.4 * nominal, (nominal, damped)


@_covers("joint_damping")
@pytest.mark.parametrize("joint", ["panda_joint1", "panda_joint7"])
def test_joint_damping_slows_the_joint(engine: Backend, joint: str) -> None:
    nominal = joint_response(engine, joint)
    with changed(engine, {f"joint_damping:{joint}": 500.0}):
        damped = joint_response(engine, joint)
    assert nominal > 0.05 and damped < 0.25 * nominal, (nominal, damped)


@_covers("joint_armature")
@pytest.mark.parametrize("joint", ["panda_joint1", "panda_joint7"])
def test_joint_armature_slows_the_joint(engine: Backend, joint: str) -> None:
    nominal = joint_response(engine, joint)
    with changed(engine, {f"joint_armature:{joint}": 20.0}):
        heavy = joint_response(engine, joint)
    assert nominal > 0.05 and heavy < 0.25 * nominal, (nominal, heavy)


@_covers("joint_frictionloss")
@pytest.mark.parametrize("joint", ["panda_joint1", "panda_joint7"])
def test_joint_frictionloss_slows_the_joint(engine: Backend, joint: str) -> None:
    nominal = joint_response(engine, joint)
    effort = {"panda_joint1": 87.0, "panda_joint7": 12.0}[joint]  # a dry friction close to the torque limit
    with changed(engine, {f"joint_frictionloss:{joint}": 0.8 * effort}):
        sticky = joint_response(engine, joint)
    assert nominal > 0.05 and sticky < 0.5 * nominal, (nominal, sticky)


@_covers("joint_range")
@pytest.mark.parametrize("joint", ["panda_joint1", "panda_joint7"])
def test_joint_range_stops_the_joint_at_the_new_limit(engine: Backend, joint: str) -> None:
    q0 = NEUTRAL[engine.robot.arm_joint_names.index(joint)]
    up = joint_response(engine, joint, delta_rad=0.3, n_steps=15)
    down = joint_response(engine, joint, delta_rad=-0.3, n_steps=15)
    assert abs(up - 0.3) < 0.02 and abs(down + 0.3) < 0.02, (up, down)
    with changed(engine, {f"joint_range:{joint}": [q0 - 0.05, q0 + 0.1]}):
        up_limited = joint_response(engine, joint, delta_rad=0.3, n_steps=15)
        down_limited = joint_response(engine, joint, delta_rad=-0.3, n_steps=15)
    assert abs(up_limited - 0.1) < 0.01 and abs(down_limited + 0.05) < 0.01, (up_limited, down_limited)


@_covers("body_mass")
def test_heavier_hand_slows_the_base_joint(engine: Backend) -> None:
    nominal = joint_response(engine, "panda_joint1")
    mass = float(engine.get_property("body_mass:panda_hand")["body_mass:panda_hand"])
    with changed(engine, {"body_mass:panda_hand": 20.0 * mass}):
        heavy = joint_response(engine, "panda_joint1")
    assert nominal > 0.05 and heavy < 0.8 * nominal, (nominal, heavy)


@_covers("body_inertia")
def test_larger_link_inertia_slows_the_wrist(engine: Backend) -> None:
    nominal = joint_response(engine, "panda_joint7")
    inertia = engine.get_property("body_inertia:panda_link7")["body_inertia:panda_link7"]
    with changed(engine, {"body_inertia:panda_link7": 20.0 * inertia}):
        heavy = joint_response(engine, "panda_joint7")
    assert nominal > 0.05 and heavy < 0.5 * nominal, (nominal, heavy)


# -- engine properties: the object and the world -----------------------------------------------------------
@_covers("body_mass")
def test_heavier_cube_is_pushed_less_far_by_the_same_sweep(engine: Backend) -> None:
    nominal = sweep_push_m(engine)  # 1 kg: the arm drags it along
    with changed(engine, {"body_mass:object": 20.0}):  # needs ~200 N to slide, more than the base joint gives
        heavy = sweep_push_m(engine)
    assert nominal > 0.08 and heavy < 0.3 * nominal, (nominal, heavy)


@_covers("body_inertia")
def test_larger_cube_inertia_slows_its_toppling(engine: Backend) -> None:
    nominal = topple_deg(engine)
    inertia = engine.get_property("body_inertia:object")["body_inertia:object"]
    with changed(engine, {"body_inertia:object": 100.0 * inertia}):
        heavy = topple_deg(engine)
    assert nominal > 6.0 and heavy < 0.2 * nominal, (nominal, heavy)


@_covers("geom_friction")
def test_lower_friction_lets_the_cube_slide_down_an_incline(engine: Backend) -> None:
    # MuJoCo combines two geoms' friction by their maximum and PyBullet by their product, so both surfaces change
    nominal = incline_slide_m(engine)  # tan 25 deg = 0.47 < 1: it sticks
    slick = [0.1, 0.005, 0.0001]
    with changed(engine, {"geom_friction:object": slick, "geom_friction:table": slick}):
        sliding = incline_slide_m(engine)
    assert nominal < 0.005 and sliding > 0.04, (nominal, sliding)


@_covers("gravity")
def test_gravity_sets_how_far_and_where_a_released_cube_falls(engine: Backend) -> None:
    t_s = 3 * engine.scene.control_dt_s
    nominal = drop_displacement_m(engine)
    with changed(engine, {"gravity": [3.0, 0.0, -2.0]}):
        weak = drop_displacement_m(engine)
    np.testing.assert_allclose(nominal, 0.5 * NOMINAL_GRAVITY * t_s**2, atol=0.005)
    np.testing.assert_allclose(weak, 0.5 * np.array([3.0, 0.0, -2.0]) * t_s**2, atol=0.002)


@_covers("object_scale")
def test_a_larger_cube_rests_higher_and_covers_more_pixels(engine: Backend) -> None:
    def settle_and_look() -> tuple[float, int]:
        engine.reset(
            NEUTRAL,
            0.0,
            {"object": (np.array([*CUBE_HOME_M[:2], engine.object_half_height_m("object")]), IDENTITY_QUAT)},
        )
        for _ in range(5):
            engine.step(NEUTRAL, 0.0)
        c = render_scene_keep(engine).astype(int)
        green = int(np.count_nonzero((c[..., 1] > c[..., 0] + 30) & (c[..., 1] > c[..., 2] + 30)))
        return float(engine.object_pose("object")[0][2]), green

    z1, px1 = settle_and_look()
    with changed(engine, {"object_scale:object": 2.0, "geom_friction:object": [0.3, 0.005, 0.0001]}):
        z2, px2 = settle_and_look()
        assert np.allclose(engine.get_property("geom_friction:object")["geom_friction:object"], [0.3, 0.005, 0.0001])
    z3, px3 = settle_and_look()
    assert abs(z1 - CUBE_HALF_M) < 2e-3 and abs(z2 - 2 * CUBE_HALF_M) < 2e-3, (z1, z2)  # rests on its new base
    assert px2 > 2.5 * px1, (px1, px2)  # a twice larger cube covers about four times the pixels
    assert abs(z3 - z1) < 1e-4 and abs(px3 - px1) <= 2  # restored


def render_scene_keep(b: Backend) -> np.ndarray:
    """The scene camera's image (H, W, 3) uint8 of the current state (no reset)."""
    return b.render("scene")  # type: ignore[return-value]


# -- engine properties: what the cameras see ---------------------------------------------------------------
@_covers("geom_rgba")
def test_object_colour_changes_its_pixels(engine: Backend) -> None:
    u, v = np.round(cube_pixel(engine)).astype(int)
    nominal = render_scene(engine)[v - 1 : v + 2, u - 1 : u + 2].reshape(-1, 3).mean(0)
    with changed(engine, {"geom_rgba:object": [0.0, 0.0, 1.0, 1.0]}):
        blue = render_scene(engine)[v - 1 : v + 2, u - 1 : u + 2].reshape(-1, 3).mean(0)
    assert nominal[1] > nominal[2] + 30, nominal  # green cube
    assert blue[2] > blue[1] + 30, blue


@_covers("texture")
def test_checker_texture_adds_edges_to_the_table(engine: Backend) -> None:
    # the table in front of the robot, left of the cube and below the arm (rows and columns of an 84x84 image)
    rows, cols = slice(62, 80), slice(10, 40)
    nominal = high_frequency_energy(render_scene(engine)[rows, cols])
    with changed(engine, {"texture:table": checker()}):
        textured = high_frequency_energy(render_scene(engine)[rows, cols])
    assert textured > 10.0 * max(nominal, 1.0), (nominal, textured)


@_covers("light_pos")
def test_moving_the_light_away_darkens_the_scene(engine: Backend) -> None:
    nominal = render_scene(engine).mean()
    with changed(engine, {"light_pos:key": [0.3, -5.0, 1.5]}):  # far to the side: its cone misses the table
        moved = render_scene(engine).mean()
    assert moved < 0.75 * nominal, (nominal, moved)


@_covers("light_dir")
def test_pointing_the_light_up_darkens_the_scene(engine: Backend) -> None:
    nominal = render_scene(engine).mean()
    with changed(engine, {"light_dir:key": [0.0, 0.0, 1.0]}):
        turned = render_scene(engine).mean()
    assert turned < 0.75 * nominal, (nominal, turned)


@_covers("light_diffuse")
def test_dimmer_diffuse_light_darkens_the_scene(engine: Backend) -> None:
    nominal = render_scene(engine).mean()
    with changed(engine, {"light_diffuse:key": [0.1, 0.1, 0.1]}):
        dim = render_scene(engine).mean()
    assert dim < 0.75 * nominal, (nominal, dim)


@_covers("light_ambient")
def test_stronger_ambient_light_brightens_the_scene(engine: Backend) -> None:
    nominal = render_scene(engine).mean()
    with changed(engine, {"light_ambient:key": [1.0, 1.0, 1.0]}):
        bright = render_scene(engine).mean()
    assert bright > 1.4 * nominal, (nominal, bright)


def _assert_cube_moves_as_projected(engine: Backend, values: Mapping[str, object], min_shift_px: float) -> None:
    before = green_centroid(render_scene(engine))
    with changed(engine, values):
        after = green_centroid(render_scene(engine))
        expected = cube_pixel(engine)
    assert np.linalg.norm(after - before) > min_shift_px, (before, after)
    assert np.linalg.norm(after - expected) < 3.0, (after, expected)


@_covers("camera_pos")
def test_camera_position_moves_the_projected_cube(engine: Backend) -> None:
    pos = engine.get_property("camera_pos:scene")["camera_pos:scene"]
    _assert_cube_moves_as_projected(engine, {"camera_pos:scene": pos + [0.0, 0.1, 0.0]}, 5.0)


@_covers("camera_quat")
def test_camera_orientation_moves_the_projected_cube(engine: Backend) -> None:
    quat = engine.get_property("camera_quat:scene")["camera_quat:scene"]
    a = np.deg2rad(8.0)  # pan about the camera's own y (up) axis
    pan = np.array([[np.cos(a), 0.0, np.sin(a)], [0.0, 1.0, 0.0], [-np.sin(a), 0.0, np.cos(a)]])
    _assert_cube_moves_as_projected(engine, {"camera_quat:scene": mat_to_quat(quat_to_mat(quat) @ pan)}, 5.0)


@_covers("camera_fovy")
def test_narrower_field_of_view_moves_the_cube_outward(engine: Backend) -> None:
    centre = np.array([engine.scene.camera("scene").width, engine.scene.camera("scene").height]) / 2.0
    before = green_centroid(render_scene(engine))
    _assert_cube_moves_as_projected(engine, {"camera_fovy:scene": 30.0}, 5.0)
    with changed(engine, {"camera_fovy:scene": 30.0}):
        after = green_centroid(render_scene(engine))
    assert np.linalg.norm(after - centre) > 1.4 * np.linalg.norm(before - centre), (before, after)


# -- env-level properties: delays, noise, jitter --------------------------------------------------------------
def _joint_trace(env: Any, actions: list[np.ndarray]) -> np.ndarray:
    """Reset (seed 0) and apply the actions; true arm joint positions (len(actions) + 1, 7) after each."""
    sim_ = env.unwrapped.sim
    env.reset(seed=0)
    trace = [sim_.joint_state()[0][:7]]
    for a in actions:
        env.step(a)
        trace.append(sim_.joint_state()[0][:7])
    return np.array(trace)


@_covers("action_delay")
def test_action_delay_shifts_the_joint_motion_by_k_steps(reach_env: Any) -> None:
    k, n = 2, 6
    kick = np.zeros(7, np.float32)
    kick[0] = 1.0
    actions = [kick] + [np.zeros(7, np.float32)] * n
    nominal = _joint_trace(reach_env, actions)
    with changed(reach_env.unwrapped, {"action_delay": k}):
        delayed = _joint_trace(reach_env, actions)
    assert nominal[1, 0] - nominal[0, 0] > 0.01  # without delay the kick moves joint 1 in the first step
    np.testing.assert_allclose(delayed[: k + 1], np.repeat(delayed[:1], k + 1, axis=0), atol=1e-6)
    np.testing.assert_allclose(delayed[k:], nominal[: n + 1 - k + 1], atol=1e-6)


@_covers("obs_delay")
def test_obs_delay_returns_the_observation_from_k_steps_earlier(reach_env: Any) -> None:
    k = 3
    env, sim_ = reach_env, reach_env.unwrapped.sim
    push = np.full(7, 0.5, np.float32)
    with changed(env.unwrapped, {"obs_delay": k}):
        obs, _ = env.reset(seed=0)
        observed, truth = [obs["observation"][:7]], [sim_.joint_state()[0][:7].astype(np.float32)]
        for _ in range(8):
            obs, *_ = env.step(push)
            observed.append(obs["observation"][:7])
            truth.append(sim_.joint_state()[0][:7].astype(np.float32))
    observed_arr, truth_arr = np.array(observed), np.array(truth)
    assert np.abs(np.diff(truth_arr, axis=0)).max(axis=1).min() > 1e-3  # the arm moves every step
    np.testing.assert_array_equal(observed_arr[:k], np.repeat(truth_arr[:1], k, axis=0))
    np.testing.assert_array_equal(observed_arr[k:], truth_arr[:-k])


@_covers("obs_noise")
def test_obs_noise_perturbs_joint_positions_with_the_set_std(reach_env: Any) -> None:
    env, sim_ = reach_env, reach_env.unwrapped.sim
    std = 0.05
    hold = np.zeros(7, np.float32)

    def deviations() -> tuple[np.ndarray, np.ndarray]:
        """(steps, 7) deviations of observed joint positions and velocities from the true ones."""
        obs, _ = env.reset(seed=0)
        dq, dqd = [], []
        for _ in range(40):
            q, qd = sim_.joint_state()
            dq.append(obs["observation"][:7] - q[:7].astype(np.float32))
            dqd.append(obs["observation"][7:14] - qd[:7].astype(np.float32))
            obs, *_ = env.step(hold)
        return np.array(dq), np.array(dqd)

    dq0, _ = deviations()
    with changed(env.unwrapped, {"obs_noise:joint_pos": std}):
        dq, dqd = deviations()
    assert np.abs(dq0).max() == 0.0
    assert abs(dq.std() - std) < 0.15 * std and abs(dq.mean()) < 0.2 * std, (dq.mean(), dq.std())
    assert np.abs(dqd).max() == 0.0  # other fields untouched


def _image_after_reset(env: Any) -> np.ndarray:
    """The scene camera image (64, 64, 3) uint8 of the first observation after reset(seed=0)."""
    return env.reset(seed=0)[0]["image_scene"]


@_covers("image_delay")
def test_image_delay_returns_the_images_from_k_steps_earlier_and_leaves_the_state_on_time(pixel_env: Any) -> None:
    """A camera later than the joints (its own latency, measured by calibration): images from image_delay steps
    ago, the observation vector from obs_delay steps ago (here 0 and 1), each the episode's first until then."""
    k = 2
    push = np.full(7, 0.5, np.float32)

    def run() -> tuple[np.ndarray, np.ndarray]:
        obs, _ = pixel_env.reset(seed=0)
        images, states = [obs["image_scene"]], [obs["observation"]]
        for _ in range(6):
            obs, *_ = pixel_env.step(push)
            images.append(obs["image_scene"])
            states.append(obs["observation"])
        return np.array(images), np.array(states)

    images, states = run()
    assert all(np.abs(images[i + 1].astype(int) - images[i]).max() > 0 for i in range(6))  # the arm is seen moving
    with changed(pixel_env.unwrapped, {"image_delay": k}):
        late_images, same_states = run()
    np.testing.assert_array_equal(late_images[: k + 1], np.repeat(images[:1], k + 1, axis=0))
    np.testing.assert_array_equal(late_images[k:], images[:-k])
    np.testing.assert_array_equal(same_states, states)  # the joints are not late
    with changed(pixel_env.unwrapped, {"image_delay": k, "obs_delay": 1}):
        late_images, late_states = run()
    np.testing.assert_array_equal(late_images[k:], images[:-k])
    np.testing.assert_array_equal(late_states[1:], states[:-1])


@_covers("image_noise")
def test_image_noise_adds_pixel_noise_of_the_set_std(pixel_env: Any) -> None:
    clean = _image_after_reset(pixel_env).astype(float)
    with changed(pixel_env.unwrapped, {"image_noise": 0.05}):
        noisy = _image_after_reset(pixel_env).astype(float)
    unclipped = (clean > 60) & (clean < 195)  # noise of 3 std stays inside 0..255 there
    diff = (noisy - clean)[unclipped]
    assert unclipped.mean() > 0.3
    assert abs(diff.std() - 0.05 * 255) < 0.1 * 0.05 * 255 and abs(diff.mean()) < 1.0, (diff.mean(), diff.std())


@_covers("image_salt_pepper")
def test_salt_and_pepper_sets_the_given_fraction_of_pixels_to_black_or_white(pixel_env: Any) -> None:
    clean = _image_after_reset(pixel_env)
    with changed(pixel_env.unwrapped, {"image_salt_pepper": 0.2}):
        dirty = _image_after_reset(pixel_env)

    def black_white(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (img == 0).all(-1), (img == 255).all(-1)

    clean_black, clean_white = black_white(clean)
    assert (clean_black | clean_white).mean() < 0.5
    grey = ~(clean_black | clean_white)  # pixels whose corruption is visible
    black, white = black_white(dirty)
    assert abs(black[grey].mean() - 0.1) < 0.025 and abs(white[grey].mean() - 0.1) < 0.025
    untouched = ~(black | white)
    np.testing.assert_array_equal(dirty[untouched], clean[untouched])


@_covers("image_blur")
def test_image_blur_removes_high_frequencies(pixel_env: Any) -> None:
    sharp = _image_after_reset(pixel_env)
    with changed(pixel_env.unwrapped, {"image_blur": 1.5}):
        blurred = _image_after_reset(pixel_env)
    e_sharp, e_blur = high_frequency_energy(sharp), high_frequency_energy(blurred)
    assert e_blur < 0.4 * e_sharp, (e_sharp, e_blur)
    assert abs(blurred.mean() - sharp.mean()) < 0.03 * sharp.mean()  # blur redistributes, it does not darken


@_covers("control_jitter")
def test_control_jitter_varies_the_motion_of_identical_steps(reach_env: Any) -> None:
    env, sim_ = reach_env, reach_env.unwrapped.sim
    push = np.ones(7, np.float32)

    def displacements() -> np.ndarray:
        """Joint-1 displacement (rad) of one full-action step from the reset pose, 8 times."""
        env.reset(seed=0)
        out = []
        for _ in range(8):
            env.reset()  # same arm state every time; the env's generator moves on
            q0 = sim_.joint_state()[0][0]
            env.step(push)
            out.append(sim_.joint_state()[0][0] - q0)
        return np.array(out)

    steady = displacements()
    with changed(env.unwrapped, {"control_jitter": 0.5}):
        jittered = displacements()
    assert steady.min() > 0.005 and np.ptp(steady) < 1e-9, steady
    assert np.ptp(jittered) > 0.3 * steady.mean(), jittered


# -- coverage -----------------------------------------------------------------------------------------------
def test_every_property_kind_has_an_effect_test() -> None:
    assert set(KINDS) - COVERED == set(), f"property kinds without an effect test: {sorted(set(KINDS) - COVERED)}"
    assert COVERED - set(KINDS) == set(), f"effect tests for unknown kinds: {sorted(COVERED - set(KINDS))}"
