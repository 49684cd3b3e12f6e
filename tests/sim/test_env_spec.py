"""EnvSpec: the one description of an env that train, evaluate and export build from."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from sim.env_spec import TASKS, EnvSpec, EnvSpecError, make_env, make_sampler, task_class
from sim.registration import ENV_IDS


def test_every_task_name_names_a_registered_id() -> None:
    assert set(TASKS.values()) == set(ENV_IDS)


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"task": "stack"}, "task must be one of"),
        ({"backend": "gazebo"}, "backend must be one of"),
        ({"control": "torque"}, "control must be one of"),
        ({"obs_mode": "depth"}, "obs_mode must be one of"),
        ({"reward": "shaped"}, "reward must be one of"),
    ],
)
def test_check_names_the_field(changes: dict[str, str], needle: str) -> None:
    with pytest.raises(EnvSpecError, match=needle):
        EnvSpec(**changes).check()


def test_make_env_is_gym_make_of_the_spec() -> None:
    spec = EnvSpec(task="push", backend="pybullet", control="joint", reward="dense")
    ours, theirs = (
        make_env(spec),
        gym.make("Sim2Real/Push-v0", backend="pybullet", control="joint", reward_type="dense"),
    )
    a, _ = ours.reset(seed=3)
    b, _ = theirs.reset(seed=3)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    action = np.full(ours.action_space.shape, 0.3, np.float32)
    assert ours.step(action)[1] == theirs.step(action)[1]
    assert ours.action_space.shape == (7,)
    ours.close()
    theirs.close()


def test_make_sampler_binds_the_space_and_none_without_one() -> None:
    assert make_sampler(EnvSpec(), "uniform", np.random.default_rng(0)) is None
    spec = EnvSpec(task="reach", randomization="dynamics")
    assert make_sampler(spec, "none", np.random.default_rng(0)) is None
    sampler = make_sampler(spec, "uniform", np.random.default_rng(0))
    env = make_env(spec, sampler)
    env.reset(seed=0)
    assert env.unwrapped.randomizer is not None  # type: ignore[attr-defined]
    env.close()
    assert task_class(EnvSpec(task="reach")).__name__ == "ReachEnv"
