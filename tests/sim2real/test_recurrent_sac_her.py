"""`--agent recurrent_sac_her` in the pipeline: training and resume from checkpoints, the recurrent predict
protocol, layout-2 goals rewritten in relabelled sequences before normalisation, and clear refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.quick_runs import quick_config

TINY = {
    "learning_starts": 100,
    "batch_size": 4,
    "buffer_size": 5000,
    "policy_kwargs": {"net_arch": [16], "lstm_hidden_size": 8},
}


def _cfg(tmp_path: Path, **kw: object):  # type: ignore[no-untyped-def]
    base = {"task": "push", "agent": "recurrent_sac_her", "control": "ee", "settings": TINY, "steps": 200,
            "checkpoint_every_steps": 100, "save_replay_buffer": True}  # fmt: skip
    return quick_config(tmp_path / "run", **{**base, **kw})


def test_it_trains_checkpoints_and_resumes_with_its_replay(tmp_path: Path) -> None:
    from policies.agents import load_agent
    from sim2real.train import train

    train(_cfg(tmp_path), progress=False)
    run = train(_cfg(tmp_path, steps=300), resume=True, progress=False)
    assert json.loads((run / "summary.json").read_text())["steps"] == 300
    import gymnasium as gym
    from stable_baselines3.common.vec_env import DummyVecEnv

    env = DummyVecEnv([lambda: gym.make("Sim2Real/Push-v0", control="ee")])
    model = load_agent("recurrent_sac_her", str(run / "model.zip"), env)
    assert model.num_timesteps == 300 and model.n_updates > 0
    ckpt = sorted((run / "checkpoints").glob("step-*"))[-1]
    model.load_replay_buffer(ckpt / "replay_buffer.pkl")
    assert model.replay_buffer.size == 6  # six 50-step episodes
    assert model.replay_buffer.nbytes < 2e6  # buffer_size 5000 transitions: 100 episodes of room, bounded
    from policies.sequence_replay import SequenceReplay

    other = tmp_path / "other_replay.npz"  # a replay of another agent's shape is refused, the loaded one kept
    SequenceReplay(2, 50, 3, 3, 3, 8).save(other)
    with pytest.raises(ValueError, match="other_replay.npz: replay array observation"):
        model.load_replay_buffer(other)
    assert model.replay_buffer.size == 6


def test_predict_carries_the_state_and_resets_it_at_episode_starts(tmp_path: Path) -> None:
    import gymnasium as gym
    from stable_baselines3.common.vec_env import DummyVecEnv

    from policies.agents import build_agent

    env = DummyVecEnv([lambda: gym.make("Sim2Real/Push-v0", control="ee")])
    model = build_agent("recurrent_sac_her", env, {**TINY, "her": {"n_sampled_goal": 4}}, seed=0, device="cpu")
    obs = {k: v[0] for k, v in env.reset().items()}
    a0, s1 = model.predict(obs, None, np.ones(1, bool), deterministic=True)
    a1, s2 = model.predict(obs, s1, np.zeros(1, bool), deterministic=True)
    assert a0.shape == (3,) and s1.shape == (1, model.net.state_dim) and not np.allclose(s1, 0)
    assert not np.allclose(a0, a1)  # the state changed the action for the same observation
    again, _ = model.predict(obs, s2, np.ones(1, bool), deterministic=True)  # a new episode: the zero state
    np.testing.assert_allclose(again, a0, atol=1e-6)


def test_layout_2_sequences_carry_their_own_goal_before_normalisation(tmp_path: Path) -> None:
    import gymnasium as gym
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    from policies.agents import build_agent

    venv = DummyVecEnv([lambda: gym.make("Sim2Real/Push-v0", control="ee", obs_layout=2)])
    env = VecNormalize(venv, norm_reward=False, clip_obs=1e9)
    her = {"n_sampled_goal": 4, "goal_relative_slice": venv.get_attr("goal_relative_slice")[0]}
    model = build_agent("recurrent_sac_her", env, {**TINY, "learning_starts": 1000, "her": her}, seed=0, device="cpu")
    model.learn(150)  # three episodes, no update
    batch = model._normalized_batch(model.replay_buffer.sample(16, model._compute_reward))
    raw = env.unnormalize_obs({"observation": batch.observation, "achieved_goal": batch.achieved_goal,
                               "desired_goal": batch.desired_goal})  # fmt: skip
    np.testing.assert_allclose(raw["observation"][..., 37:40], raw["desired_goal"] - raw["achieved_goal"], atol=1e-4)


def test_refusals_name_what_is_missing(tmp_path: Path) -> None:
    from sim2real.train import ConfigError, train

    with pytest.raises(ConfigError, match="agent recurrent_sac_her has none"):
        train(_cfg(tmp_path, demos=str(tmp_path)), progress=False)
    with pytest.raises(ConfigError, match="HER settings \\['n_steps'\\] are not supported"):
        train(_cfg(tmp_path, settings={**TINY, "her": {"n_steps": 3}}), progress=False)


def test_the_bundle_acts_as_the_trained_agent_with_its_lstm_state(tmp_path: Path) -> None:
    """Export: the ONNX graph takes and returns the actor's LSTM state; over a whole episode its actions equal the
    agent's own predict (normalised observations, state carried, the zero state at the start)."""
    import gymnasium as gym

    from policies.agents import load_agent
    from policies.bundle import load_bundle
    from sim2real.export_run import export_run
    from sim2real.train import train

    run = train(_cfg(tmp_path, steps=200, settings={**TINY, "normalize": True}), progress=False)
    bundle = load_bundle(export_run(run, tmp_path / "bundle"))
    assert [s.name for s in bundle.manifest.state] == ["lstm_h", "lstm_c"] and bundle.manifest.policy.recurrent
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    env = gym.make("Sim2Real/Push-v0", control="ee")
    vecnorm = VecNormalize.load(str(run / "vecnormalize.pkl"), DummyVecEnv([lambda: env]))
    model = load_agent("recurrent_sac_her", str(run / "model.zip"), vecnorm)
    obs, _ = env.reset(seed=5)
    state, torch_state, done, steps = bundle.initial_state(), None, False, 0
    while not done:
        out = bundle.run({**obs, **state})
        want, torch_state = model.predict(vecnorm.normalize_obs(obs), torch_state, np.array([steps == 0]), True)
        np.testing.assert_allclose(out["action"], want, atol=1e-4, err_msg=f"step {steps}")
        state = {s.name: out[f"{s.name}_out"] for s in bundle.manifest.state}
        obs, _, terminated, truncated, _ = env.step(out["action"])
        done, steps = terminated or truncated, steps + 1
    assert steps > 5
