"""Properties by name through the one protocol (sim.property_target): the backend holds the engine's, the signal
effects the env-level ones, the env routes between them, and the randomizer writes any PropertyTarget."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import sim  # noqa: F401  (registers the ids)
from randomization import space_from
from sim.backend import Backend
from sim.randomized import Randomizer
from sim.signal_effects import SignalEffects


@pytest.fixture
def push(backend_name: str) -> Any:
    env = gym.make("Sim2Real/Push-v0", backend=backend_name)
    yield env.unwrapped
    env.close()


def test_the_env_routes_each_name_to_its_holder(push: Any) -> None:
    assert push.concrete_property_names("joint_damping:panda_joint*") == push.sim.concrete_property_names(
        "joint_damping:panda_joint*"
    )
    assert push.concrete_property_names("joint_damping:panda_joint*")[0] == "joint_damping:panda_joint1"
    assert push.concrete_property_names("gravity") == ["gravity"]
    assert push.concrete_property_names("obs_noise:object_*") == [
        "obs_noise:object_pos",
        "obs_noise:object_quat",
        "obs_noise:object_linvel",
        "obs_noise:object_angvel",
    ]
    assert push.property_names() == push.sim.property_names() + push.effects.property_names()
    with pytest.raises(KeyError, match="unknown property kind"):
        push.concrete_property_names("bodymass:object")
    with pytest.raises(KeyError, match="matches no element"):
        push.concrete_property_names("obs_noise:no_such_field")
    with pytest.raises(KeyError, match="not an env-level one"):
        push.effects.concrete_property_names("body_mass:object")


def test_compiled_setter_writes_interleaved_engine_and_env_level_names(push: Any) -> None:
    names = ["action_delay", "body_mass:object", "obs_noise:joint_pos", "gravity", "image_noise"]
    write = push.compile_setter(names)
    write(np.array([2.0, 0.7, 0.01, 0.0, 0.0, -5.0, 0.1]))
    got = {n: push.get_property(n)[n] for n in names}
    assert float(got["action_delay"]) == 2.0 and float(got["image_noise"]) == 0.1
    assert np.isclose(got["body_mass:object"], 0.7) and np.isclose(got["obs_noise:joint_pos"], 0.01)
    assert np.allclose(got["gravity"], [0.0, 0.0, -5.0])
    assert push.effects.active


def test_set_properties_with_wildcards_on_both_holders(push: Any) -> None:
    push.set_properties({"obs_noise:joint_*": 0.02, "joint_damping:panda_joint*": 2.0})
    assert {float(v) for v in push.get_property("obs_noise:joint_*").values()} == {0.02}
    assert all(float(v) == 2.0 for v in push.get_property("joint_damping:panda_joint*").values())
    with pytest.raises(ValueError, match="image_noise"):  # the env-level value is checked before the engine's change
        push.set_properties({"joint_damping:panda_joint1": 3.0, "image_noise": 2.0})
    assert float(push.get_property("joint_damping:panda_joint1")["joint_damping:panda_joint1"]) == 2.0


def test_signal_effects_compile_only_concrete_env_level_names() -> None:
    effects = SignalEffects(with_object=False)
    with pytest.raises(KeyError, match="is a pattern"):
        effects.compile_setter(["obs_noise:joint_*"])
    with pytest.raises(KeyError, match="not an env-level one"):
        effects.compile_setter(["body_mass:panda_link7"])
    effects.compile_setter(["obs_noise:joint_pos", "obs_delay"])(np.array([0.5, 3.0]))
    assert effects.get_property("obs_noise:joint_pos") == {"obs_noise:joint_pos": 0.5}
    assert effects.get_property("obs_delay") == {"obs_delay": 3.0}


def test_the_randomizer_writes_a_bare_backend(cube_backend: Backend) -> None:
    space = {
        "schema_version": 1,
        "parameters": [
            {"name": "body_mass:object", "nominal": 1.0, "low": 0.5, "high": 2.0, "apply": "scale"},
            {
                "name": "geom_friction:table",
                "nominal": [1.0, 0.005, 0.0001],
                "low": [0.5, 0, 0],
                "high": [1.5, 0.01, 0.001],
            },
        ],
    }
    own = cube_backend.get_property("body_mass:object")["body_mass:object"]
    r = Randomizer(cube_backend, space_from(space))
    r.begin_episode(nominal=False)
    assert r.current is not None
    for name, value in r.values_for(r.current).items():
        assert np.allclose(cube_backend.get_property(name)[name], value)
    r.restore()
    assert np.array_equal(cube_backend.get_property("body_mass:object")["body_mass:object"], own)
