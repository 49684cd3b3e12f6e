"""The observation vector layout."""

import numpy as np
import pytest

from sim.observation import OBJECT_DIM, PROPRIO_DIM, RawSignals, build_observation, observation_dim


def _raw(with_object: bool) -> RawSignals:
    obj = (np.array([1.0, 2, 3]), np.array([-1.0, 0, 0, 0]), np.ones(3), 2 * np.ones(3)) if with_object else ()
    return RawSignals(np.arange(7.0), np.arange(7.0) + 10, np.array([0.1, 0.2, 0.3]), np.zeros(3), 0.05, *obj)


def test_layout_and_dtype() -> None:
    obs = build_observation(_raw(True), with_object=True)
    assert obs.dtype == np.float32 and obs.shape == (observation_dim(True),) == (PROPRIO_DIM + OBJECT_DIM,)
    np.testing.assert_array_equal(obs[:7], np.arange(7))
    np.testing.assert_allclose(obs[14:17], [0.1, 0.2, 0.3])
    assert obs[20] == np.float32(0.05)
    np.testing.assert_array_equal(obs[21:24], [1, 2, 3])
    np.testing.assert_array_equal(obs[24:28], [1, 0, 0, 0])  # quaternion sign-normalised


def test_missing_object_state_is_an_error() -> None:
    with pytest.raises(ValueError, match="no object state"):
        build_observation(_raw(False), with_object=True)
    assert build_observation(_raw(False), with_object=False).shape == (PROPRIO_DIM,)


def test_engine_fast_reads_equal_the_generic_pipeline(backend_name: str) -> None:
    """MuJoCo's direct read of the signals gives the same RawSignals (and so the same observation) as the
    generic read through the backend's public methods, with and without the object."""
    from sim.backend import Backend
    from sim.engines import make_backend
    from sim.observation import build_observation
    from sim.scene import NEUTRAL_ARM_Q_RAD, SceneSpec, cube

    b = make_backend(backend_name, SceneSpec(objects=(cube("object", (0.05, 0.05, 0.02)),)))
    q0 = np.array(NEUTRAL_ARM_Q_RAD)
    b.reset(
        q0,
        0.01,
        {"object": (np.array([0.0, 0.0, 0.2]), np.array([0.9, 0.1, 0.3, 0.3]) / np.linalg.norm([0.9, 0.1, 0.3, 0.3]))},
    )
    for k in range(3):
        b.step(q0 + 0.1 * (k + 1), 0.02)  # moving arm, falling and turning cube
    for obj in (None, "object"):
        fast, q_fast = b.read_signals(obj)
        slow, q_slow = Backend.read_signals(b, obj)
        assert np.array_equal(q_fast, q_slow)
        with_object = obj is not None
        assert np.array_equal(build_observation(fast, with_object), build_observation(slow, with_object))
    b.close()


def test_object_motion_is_the_pose_difference_over_time() -> None:
    from sim.observation import ObjectMotion
    from sim.transforms import rotation_vector

    m = ObjectMotion()
    q0 = np.array([1.0, 0.0, 0.0, 0.0])
    lin, ang = m.update(1.0, np.zeros(3), q0)
    assert not lin.any() and not ang.any()  # the first pose: nothing to difference
    yaw = 0.2
    q1 = np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])
    lin, ang = m.update(1.04, np.array([0.004, -0.002, 0.0]), q1)
    np.testing.assert_allclose(lin, [0.1, -0.05, 0.0], atol=1e-12)
    np.testing.assert_allclose(ang, [0.0, 0.0, yaw / 0.04], atol=1e-9)
    again = m.update(1.04, np.array([9.0, 9.0, 9.0]), q0)  # not newer: ignored, velocities kept
    np.testing.assert_allclose(again[0], lin)
    np.testing.assert_allclose(rotation_vector(q1, -q0), [0.0, 0.0, -yaw], atol=1e-12)  # either sign, shorter way
    m.reset()
    assert not m.update(2.0, np.ones(3), q1)[0].any()


def test_layout_2_appends_the_relative_features() -> None:
    from sim.observation import check_layout, field_slices, with_layout

    base = build_observation(_raw(True), with_object=True)
    achieved, desired = np.array([1.0, 2, 3], np.float32), np.array([1.5, 1.0, 3.0], np.float32)
    obs = with_layout(base, achieved, desired, True, 2)
    assert obs.dtype == np.float32 and obs.shape == (observation_dim(True, 2),) == (PROPRIO_DIM + OBJECT_DIM + 6,)
    np.testing.assert_array_equal(obs[: base.size], base)  # layout 1's fields keep their places
    where = field_slices(True, 2)
    np.testing.assert_allclose(obs[where["object_rel_ee_m"]], [0.9, 1.8, 2.7], rtol=1e-6)  # object - ee
    np.testing.assert_allclose(obs[where["goal_rel_achieved_m"]], [0.5, -1.0, 0.0])  # desired - achieved
    reach = with_layout(build_observation(_raw(False), False), achieved, desired, False, 2)
    assert reach.shape == (observation_dim(False, 2),) == (PROPRIO_DIM + 3,)
    np.testing.assert_allclose(reach[field_slices(False, 2)["goal_rel_achieved_m"]], [0.5, -1.0, 0.0])
    batch = with_layout(np.stack([base, base]), np.stack([achieved, desired]), np.stack([desired, desired]), True, 2)
    np.testing.assert_allclose(batch[1, -3:], 0.0)  # (..., D) arrays: each row its own goals
    assert with_layout(base, achieved, desired, True, 1) is base
    for bad in (0, 3, True, "2"):
        with pytest.raises(ValueError, match="obs_layout must be one of"):
            check_layout(bad)


def test_layout_2_env_observation_follows_noise_and_goal() -> None:
    """The env builds layout 2 from the observation it emits (sensor noise included) and the goals beside it."""
    import gymnasium as gym

    import sim  # noqa: F401
    from sim.observation import field_slices

    env = gym.make("Sim2Real/Push-v0", obs_layout=2)
    env.unwrapped.set_property("obs_noise:*", 0.01)
    obs, _ = env.reset(seed=0)
    assert env.unwrapped.effects.active
    where = field_slices(True, 2)
    for _ in range(3):
        vec = obs["observation"]
        assert env.observation_space.contains(obs)
        np.testing.assert_allclose(vec[where["object_rel_ee_m"]], vec[where["object_pos_m"]] - vec[where["ee_pos_m"]],
                                   atol=1e-6)  # fmt: skip
        np.testing.assert_allclose(vec[where["goal_rel_achieved_m"]], obs["desired_goal"] - obs["achieved_goal"],
                                   atol=1e-6)  # fmt: skip
        obs, *_ = env.step(env.action_space.sample())
    assert env.unwrapped.goal_relative_slice == [where["goal_rel_achieved_m"].start, where["goal_rel_achieved_m"].stop]
    env.close()
