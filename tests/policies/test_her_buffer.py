"""HER replay of layout-2 observations: relabelled goals rewrite the goal-relative slice of `observation`."""

from __future__ import annotations

import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from policies.agents import build_agent
from policies.her_buffer import HerBuffer


def _model(layout: int, normalize: bool = False):  # type: ignore[no-untyped-def]
    import gymnasium as gym

    import sim  # noqa: F401

    venv = DummyVecEnv([lambda: gym.make("Sim2Real/Push-v0", obs_layout=layout)])
    keys = ["observation", "achieved_goal", "desired_goal"]
    env = VecNormalize(venv, norm_reward=False, clip_obs=1e9, norm_obs_keys=keys) if normalize else venv
    her: dict = {"n_sampled_goal": 4, "goal_selection_strategy": "future"}
    if layout == 2:
        her["goal_relative_slice"] = venv.get_attr("goal_relative_slice")[0]
    settings = {"learning_starts": 10_000, "buffer_size": 2000, "batch_size": 64, "her": her,
                "policy_kwargs": {"net_arch": [16]}}  # fmt: skip
    return build_agent("sac_her", env, settings, seed=0, device="cpu"), env


def test_relabelled_samples_carry_their_own_goal_relative_slice() -> None:
    model, _ = _model(2)
    assert isinstance(model.replay_buffer, HerBuffer)
    model.learn(150)  # 3 episodes of random actions, no update (learning_starts)
    start, stop = model.replay_buffer.goal_relative_slice
    batch = model.replay_buffer.sample(512)
    for part in (batch.observations, batch.next_observations):
        obs = {k: v.numpy() for k, v in part.items()}
        np.testing.assert_allclose(obs["observation"][:, start:stop], obs["desired_goal"] - obs["achieved_goal"],
                                   atol=1e-6)  # fmt: skip
    # most of the batch was relabelled (future goals differ from the episode's): the slice was rewritten, not stored
    stored = model.replay_buffer.observations
    n = model.replay_buffer.pos
    real = stored["desired_goal"][:n, 0]
    assert not np.isin(batch.observations["desired_goal"].numpy()[:, 0], real[:, 0]).all()


def test_the_rewrite_happens_before_normalisation() -> None:
    model, env = _model(2, normalize=True)
    model.learn(150)
    start, stop = model.replay_buffer.goal_relative_slice
    batch = model.replay_buffer.sample(256, env=env)
    obs = {k: v.numpy() for k, v in batch.observations.items()}
    raw = env.unnormalize_obs(obs)
    np.testing.assert_allclose(raw["observation"][:, start:stop], raw["desired_goal"] - raw["achieved_goal"],
                               atol=1e-4)  # fmt: skip


def test_layout_1_rewrites_nothing_and_bad_slices_are_refused() -> None:
    model, _ = _model(1)
    assert model.replay_buffer.goal_relative_slice is None and model.replay_buffer.demos is None
    import gymnasium as gym

    import sim  # noqa: F401

    env = DummyVecEnv([lambda: gym.make("Sim2Real/Push-v0", obs_layout=2)])
    for bad, why in (([37, 41], "start \\+ 3"), ([40, 43], "outside the 40-value observation")):
        settings = {"buffer_size": 100, "her": {"goal_relative_slice": bad}, "policy_kwargs": {"net_arch": [8]}}
        with pytest.raises(ValueError, match=why):
            build_agent("sac_her", env, settings, seed=0, device="cpu")
