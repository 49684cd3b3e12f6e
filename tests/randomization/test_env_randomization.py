"""Randomization applied through the envs: every task and both engines, nominal resets, restore, seeding,
feedback to learning samplers, mid-episode resampling, and clear errors for spaces the scene cannot take."""

from __future__ import annotations

import json
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import sim  # noqa: F401  (registers the ids)
from randomization import ADRConfig, AutomaticDR, SpaceError, space_from
from sim.registration import ENV_IDS


def _space(*params: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"schema_version": 1, "parameters": list(params), **top}


MASS_SCALE = {"name": "body_mass:panda_link7", "nominal": 1.0, "low": 0.5, "high": 2.0, "apply": "scale"}


def _make(env_id: str = "Sim2Real/Reach-v0", backend: str = "mujoco", **kw: Any) -> Any:
    return gym.make(env_id, backend=backend, **kw)


@pytest.mark.parametrize("env_id", list(ENV_IDS))
def test_presets_apply_on_every_task_and_engine(env_id: str, backend_name: str) -> None:
    presets = ["dynamics", "visual"] + (["object_dynamics"] if "Reach" not in env_id else [])
    for preset in presets:
        env = _make(env_id, backend_name, randomization=preset)
        u = env.unwrapped
        seen = []
        for seed in (0, 1):
            env.reset(seed=seed)
            for _ in range(3):
                obs, *_ = env.step(env.action_space.sample())
                assert np.all(np.isfinite(obs["observation"]))
            values = u.randomizer.values_for(u.randomizer.current)
            for name, value in values.items():  # what the draw asked for is what the scene now holds
                got = u.get_property(name)[name]
                tol = 1.0 / 255 if name.startswith("texture") else 1e-6
                assert np.allclose(got, value, atol=tol), (preset, name)
            seen.append(values)
        changed = [n for n in seen[0] if not np.allclose(seen[0][n], seen[1][n])]
        assert changed, f"{preset}: two draws set identical values"
        env.close()


def test_nominal_reset_and_restore(backend_name: str) -> None:
    with pytest.raises(SpaceError, match="nominal"):  # nominal outside [low, high]: refused while parsing
        _make(randomization=_space({"name": "action_delay", "nominal": 0, "low": 1, "high": 2, "integer": True}))
    own = _make(backend=backend_name).unwrapped.get_property("body_mass:panda_link7")["body_mass:panda_link7"]
    env = _make(
        backend=backend_name,
        randomization=_space(MASS_SCALE, {"name": "action_delay", "nominal": 1, "low": 1, "high": 2, "integer": True}),
    )
    u = env.unwrapped
    masses = set()
    for seed in range(5):
        env.reset(seed=seed)
        masses.add(round(float(u.get_property("body_mass:panda_link7")["body_mass:panda_link7"]), 6))
    assert len(masses) == 5
    env.reset(options={"nominal": True})
    assert np.isclose(u.get_property("body_mass:panda_link7")["body_mass:panda_link7"], own)  # scale 1.0
    assert float(u.get_property("action_delay")["action_delay"]) == 1.0  # the space's nominal, not the scene's
    u.randomizer.restore()
    assert float(u.get_property("action_delay")["action_delay"]) == 0.0
    env.close()


def test_same_seed_same_draws_and_different_seed_differs() -> None:
    def masses(seed: int) -> list[float]:
        env = _make(randomization="dynamics")
        out = []
        env.reset(seed=seed)
        for _ in range(3):
            out.append(float(env.unwrapped.get_property("joint_armature:panda_joint3")["joint_armature:panda_joint3"]))
            env.reset()
        env.close()
        return out

    assert masses(4) == masses(4)
    assert masses(4) != masses(5)


@pytest.mark.parametrize(
    ("entry", "needle"),
    [
        ({"name": "body_mass:no_such_body", "nominal": 1, "low": 0.5, "high": 2}, "matches no element"),
        ({"name": "bodymass:object", "nominal": 1, "low": 0.5, "high": 2}, "unknown property kind"),
        ({"name": "body_mass:panda_link7", "nominal": 1, "low": -1, "high": 2}, "physical domain"),
        ({"name": "body_mass:panda_link7", "nominal": 1, "low": -0.5, "high": 2, "apply": "scale"}, "physical domain"),
        ({"name": "geom_friction:table", "nominal": 0, "low": -2, "high": 0, "apply": "offset"}, "physical domain"),
        (
            {"name": "body_mass:panda_link7", "nominal": 1, "low": 0.5, "high": 2, "distribution": "normal"},
            "truncnormal",
        ),
        ({"name": "geom_friction:table", "nominal": 1, "low": 0.5, "high": 2}, "shape"),
        ({"name": "action_delay", "nominal": 0, "low": 0, "high": 2}, "integer: true"),
        ({"name": "texture:table", "nominal": 0, "low": 0, "high": 1}, "unknown key"),
        ({"name": "image_noise", "nominal": 0, "low": 0, "high": 2}, "physical domain"),
        (
            {"name": "joint_range:panda_joint1", "nominal": [0, 0], "low": [0, -6], "high": [3, 0], "apply": "offset"},
            "lower >= upper",
        ),
    ],
)
def test_spaces_the_scene_cannot_take_fail_at_construction(entry: dict[str, Any], needle: str) -> None:
    with pytest.raises(SpaceError) as e:
        _make(randomization=_space(entry))
    assert needle in str(e.value)
    assert entry["name"] in str(e.value)


def test_nothing_changes_when_one_value_is_bad() -> None:
    env = _make()
    u = env.unwrapped
    before = u.get_property("joint_damping:panda_joint1")["joint_damping:panda_joint1"].copy()
    with pytest.raises(ValueError, match="body_mass"):
        u.set_properties({"joint_damping:panda_joint1": 3.0, "action_delay": 2, "body_mass:panda_link7": -1.0})
    assert np.array_equal(u.get_property("joint_damping:panda_joint1")["joint_damping:panda_joint1"], before)
    assert float(u.get_property("action_delay")["action_delay"]) == 0.0
    with pytest.raises(ValueError, match="whole numbers"):
        u.set_property("action_delay", 1.5)
    with pytest.raises(KeyError, match="set it with env.unwrapped.set_property"):
        u.sim.set_property("action_delay", 1)
    env.close()


def test_env_level_names_are_listed() -> None:
    env = _make("Sim2Real/Push-v0")
    names = env.unwrapped.property_names()
    for n in (
        "action_delay",
        "obs_delay",
        "control_jitter",
        "image_blur",
        "obs_noise:joint_pos",
        "obs_noise:object_pos",
    ):
        assert n in names
    assert "body_mass:object" in names
    env.close()
    env = _make("Sim2Real/Reach-v0")
    assert "obs_noise:object_pos" not in env.unwrapped.property_names()  # Reach has no object
    env.close()


def test_adr_gets_episode_feedback_through_the_env() -> None:
    space = space_from(_space(MASS_SCALE)).expand(lambda n: [n])
    adr = AutomaticDR(
        space,
        np.random.default_rng(0),
        ADRConfig(buffer_size=2, boundary_prob=1.0, threshold_low=-1.0, threshold_high=0.0),
    )
    env = _make(randomization=adr)
    env.reset(seed=0)
    for _ in range(8):  # every episode pins a boundary; threshold 0 means any result widens it
        for _ in range(2):
            env.step(env.action_space.sample())
        env.reset()
    lo, hi = adr.ranges()["body_mass:panda_link7"]
    assert float(lo) < 1.0 or float(hi) > 1.0
    state = env.unwrapped.randomization_state()
    assert json.loads(json.dumps(state))["sampler"] == "adr"
    env.close()


def test_resample_every_steps_changes_values_mid_episode() -> None:
    env = _make(randomization=_space(MASS_SCALE, resample_every_steps=2))
    u = env.unwrapped
    env.reset(seed=0)
    values = []
    for _ in range(6):
        env.step(np.zeros(7, np.float32))
        values.append(float(u.get_property("body_mass:panda_link7")["body_mass:panda_link7"]))
    assert values[0] != values[1] and values[1] == values[2] and values[2] != values[3]
    env.reset(options={"nominal": True})
    for _ in range(4):
        env.step(np.zeros(7, np.float32))
    assert len({float(u.get_property("body_mass:panda_link7")["body_mass:panda_link7"])}) == 1  # nominal stays
    env.close()


def test_geometry_is_kept_apart_and_rebuilt_only_when_it_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    import pybullet as pb

    space = _space(
        {"name": "object_scale:object", "nominal": 1.0, "low": 1.0, "high": 1.5},
        {"name": "body_mass:object", "nominal": 1.0, "low": 0.5, "high": 2.0, "apply": "scale"},
    )
    env = _make("Sim2Real/Push-v0", "pybullet", randomization=space)
    u = env.unwrapped
    assert [t.name for t in u.randomizer.rebuilds] == ["object_scale:object"]
    assert [t.name for t in u.randomizer.targets] == ["body_mass:object"]  # the in-place, compiled part
    made: list[str] = []
    real = u.sim._make_object
    monkeypatch.setattr(u.sim, "_make_object", lambda spec: made.append(spec.name) or real(spec))

    def half_extent_m() -> float:
        shape = pb.getCollisionShapeData(u.sim._obj_ids["object"], -1, physicsClientId=u.sim._cid)[0]
        return float(shape[3][0]) / 2  # box dimensions are full extents

    for seed in range(3):
        env.reset(seed=seed)
        scale = float(u.get_property("object_scale:object")["object_scale:object"])
        assert abs(half_extent_m() - 0.02 * scale) < 1e-6  # PyBullet made the body anew at the drawn size
        drawn_mass = float(u.get_property("body_mass:object")["body_mass:object"])
        dyn_mass = pb.getDynamicsInfo(u.sim._obj_ids["object"], -1, physicsClientId=u.sim._cid)[0]
        assert abs(dyn_mass - drawn_mass) < 1e-9  # and carried the drawn mass over
    assert made == ["object"] * 3
    env.reset(options={"nominal": True})
    env.reset(options={"nominal": True})  # unchanged scale: no second rebuild
    assert made == ["object"] * 4
    env.close()


def test_active_dr_learns_from_episodes_run_through_the_env() -> None:
    from randomization.active import ActiveDR, ActiveDRConfig

    space = space_from(
        _space({"name": "actuator_kp:panda_joint[1-4]", "nominal": 1.0, "low": 0.2, "high": 1.0, "apply": "scale"})
    )
    active = ActiveDR(space, np.random.default_rng(0), ActiveDRConfig(n_particles=3, discriminator_steps=2))
    env = _make(randomization=active)
    env.reset(seed=0)
    kinds = []
    for _ in range(8):  # two rounds of three particle episodes and one reference episode
        kinds.append("reference" if env.unwrapped.randomizer.current.tag.get("reference") else "particle")
        for _ in range(5):
            env.step(env.action_space.sample())
        env.reset()
    assert kinds == ["particle"] * 3 + ["reference"] + ["particle"] * 3 + ["reference"]
    assert active.n_updates == 2  # every particle and the reference had a rollout, twice
    state = json.loads(json.dumps(env.unwrapped.randomization_state()))
    assert state["sampler"] == "active" and state["n_updates"] == 2
    env.close()


def test_compiled_setter_normalises_quaternions_and_checks_limits(backend_name: str) -> None:
    env = _make(backend=backend_name)
    u = env.unwrapped
    names = ["camera_quat:scene", "joint_range:panda_joint1", "light_dir:key"]
    write = u.compile_setter(names)
    write(np.array([2.0, 0.0, 0.0, 0.0, -1.0, 1.0, 0.0, 0.0, -1.0]))
    assert np.allclose(u.get_property("camera_quat:scene")["camera_quat:scene"], [1.0, 0.0, 0.0, 0.0])
    assert np.allclose(u.get_property("joint_range:panda_joint1")["joint_range:panda_joint1"], [-1.0, 1.0])
    with pytest.raises(ValueError, match="lower limit must be below upper"):
        write(np.array([1.0, 0.0, 0.0, 0.0, 1.0, -1.0, 0.0, 0.0, -1.0]))
    with pytest.raises(ValueError, match="non-zero"):
        write(np.array([0.0, 0.0, 0.0, 0.0, -1.0, 1.0, 0.0, 0.0, -1.0]))
    env.close()
