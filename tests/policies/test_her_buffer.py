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


def _filled(n_steps: int, gamma: float = 0.9):  # type: ignore[no-untyped-def]
    import gymnasium as gym

    import sim  # noqa: F401

    env = DummyVecEnv([lambda: gym.make("Sim2Real/Push-v0", obs_layout=2, control="ee")])
    her = {"n_sampled_goal": 4, "goal_selection_strategy": "future", "n_steps": n_steps,
           "goal_relative_slice": env.get_attr("goal_relative_slice")[0]}  # fmt: skip
    settings = {"learning_starts": 10_000, "buffer_size": 2000, "gamma": gamma, "her": her,
                "policy_kwargs": {"net_arch": [16]}}  # fmt: skip
    model = build_agent("tqc_her", env, settings, seed=0, device="cpu")
    model.learn(160)  # 3 whole episodes of random actions and part of a 4th, no update
    return model


def test_n_step_returns_sum_the_rewards_under_each_rows_goal() -> None:
    """The known answer, from the stored episode: sum_i gamma^i r(next achieved_{t+i}, g) up to n steps or the
    episode's end, next observation after the last step, discount gamma^k."""
    model = _filled(3)
    buf = model.replay_buffer
    batch = buf.sample(256)
    b, e, goals = buf.last_sample
    env = model.get_env().envs[0].unwrapped
    for row in range(256):
        t, start, length = int(b[row]), int(buf.ep_start[b[row], e[row]]), int(buf.ep_length[b[row], e[row]])
        k = min(3, start + length - t)
        want = sum(0.9**i * float(env.compute_reward(buf.next_observations["achieved_goal"][t + i, 0], goals[row], {}))
                   for i in range(k))  # fmt: skip
        assert batch.rewards[row, 0].item() == pytest.approx(want, abs=1e-5)
        assert batch.discounts[row, 0].item() == pytest.approx(0.9**k)
        np.testing.assert_allclose(batch.next_observations["achieved_goal"][row].numpy(),
                                   buf.next_observations["achieved_goal"][t + k - 1, 0])  # fmt: skip
        np.testing.assert_allclose(batch.observations["desired_goal"][row].numpy(), goals[row])
    obs = {key: v.numpy() for key, v in batch.next_observations.items()}  # the goal slice follows the goal
    np.testing.assert_allclose(obs["observation"][:, 37:40], obs["desired_goal"] - obs["achieved_goal"], atol=1e-6)
    assert (batch.discounts < 0.9**2 + 1e-6).float().mean() > 0.5  # most rows summed all 3 steps


def test_n_step_1_is_sb3s_sampling_and_episodes_in_progress_are_never_sampled() -> None:
    model = _filled(2)
    buf = model.replay_buffer
    for _ in range(5):
        buf.sample(512)
        b, _, _ = buf.last_sample
        assert np.all(b < 150)  # the 4th episode (steps 150..159) has not ended: none of its steps
    one = _filled(1).replay_buffer
    batch = one.sample(64)
    assert batch.discounts is None and one.last_sample is None  # SB3's own path


def test_agents_train_on_n_step_samples() -> None:
    model = _filled(3)
    model.learning_starts = 100
    model.learn(60, reset_num_timesteps=False)
    assert model._n_updates > 0  # TQC's update took the n-step rewards and discounts


def test_kept_sampleable_indices_give_sb3s_batches_through_wraparound_and_truncation() -> None:
    """The cached valid indices (HerBuffer._draw) against SB3's scan per sample: a small buffer filled with episodes
    of uneven length past its end twice (old episodes deleted as they are overwritten), sampled after every add
    with the same generator state, gives SB3's batches exactly; likewise after truncate_last_trajectory and pickling."""
    import pickle

    import gymnasium as gym
    from stable_baselines3 import HerReplayBuffer

    import sim  # noqa: F401

    env = DummyVecEnv([lambda: gym.make("Sim2Real/Push-v0", control="ee")])
    space, act = env.observation_space, env.action_space
    kwargs = {"env": env, "n_sampled_goal": 4, "goal_selection_strategy": "future", "device": "cpu"}
    ours, theirs = HerBuffer(97, space, act, **kwargs), HerReplayBuffer(97, space, act, **kwargs)
    rng = np.random.default_rng(3)

    def same_batches(a: HerReplayBuffer, b: HerReplayBuffer) -> None:
        for _ in range(2):
            np.random.seed(int(rng.integers(1 << 30)))  # noqa: NPY002
            state = np.random.get_state()  # noqa: NPY002
            x = a.sample(32)
            np.random.set_state(state)  # noqa: NPY002
            y = b.sample(32)
            for fx, fy in zip(x, y):
                if fx is None:  # n-step discounts: none on SB3's path
                    assert fy is None
                    continue
                for k in fx if isinstance(fx, dict) else [None]:
                    u, v = (fx[k], fy[k]) if k is not None else (fx, fy)
                    np.testing.assert_array_equal(u.numpy(), v.numpy())

    sampled, t = 0, 0
    for _ in range(260):
        obs = {k: rng.normal(size=(1, *s.shape)).astype(np.float32) for k, s in space.spaces.items()}
        nxt = {k: rng.normal(size=(1, *s.shape)).astype(np.float32) for k, s in space.spaces.items()}
        t += 1
        done = np.array([t >= rng.integers(3, 30)])
        t, action = 0 if done[0] else t, rng.uniform(-1, 1, size=(1, 3)).astype(np.float32)
        for buf in (ours, theirs):
            buf.add(obs, nxt, action, np.zeros(1), done, [{"TimeLimit.truncated": False}])
        if (theirs.ep_length > 0).any():
            same_batches(ours, theirs)
            sampled += 1
    assert ours.full and sampled > 200 and np.array_equal(ours.ep_length, theirs.ep_length)
    assert t > 0  # an episode in progress, then truncated on both
    for buf in (ours, theirs):
        with pytest.warns(UserWarning):
            buf.truncate_last_trajectory()
    same_batches(ours, theirs)
    again = pickle.loads(pickle.dumps(ours))
    assert again._valid is None
    again.set_env(env)
    same_batches(again, theirs)
