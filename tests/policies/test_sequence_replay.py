"""Sequence replay for recurrent SAC + HER: windows, burn-in, stored states, one goal per sequence, bounded memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from policies.sequence_replay import SequenceReplay, SequenceSpec


def _reward(achieved: np.ndarray, desired: np.ndarray) -> np.ndarray:
    import gymnasium as gym

    import sim  # noqa: F401

    return gym.make("Sim2Real/Push-v0").unwrapped.compute_reward(achieved, desired, None)


def _episode(steps: int, k: int) -> dict:
    """An episode whose values say where they come from: observation[t] = [k, t], achieved[t] = [k, t, 0]/100."""
    t = np.arange(steps + 1, dtype=np.float32)
    return {
        "observation": np.stack([np.full_like(t, k), t], 1),
        "achieved_goal": np.stack([np.full_like(t, k), t, 0 * t], 1) / 100,
        "desired_goal": np.array([k, 30, 0], np.float32) / 100,
        "action": np.stack([t[:-1]], 1),
        "terminated": steps < 50,
        "states": np.stack([1000 * k + t[:-1]] * 2, 1),
    }


def _replay(**kw: object) -> SequenceReplay:
    return SequenceReplay(capacity_episodes=4, max_steps=50, obs_dim=2, goal_dim=3, action_dim=1, state_dim=2, **kw)  # type: ignore[arg-type]


def test_windows_tile_the_episode_after_their_burn_in_from_stored_states() -> None:
    replay = _replay(her_ratio=0.0)
    replay.add_episode(**_episode(50, 1))
    replay.add_episode(**_episode(35, 2))  # a shorter one, ended by success
    batch = replay.sample(400, _reward)
    seen = set()
    for i in range(400):
        ep, start, window = int(batch.episode[i]), int(batch.start[i]), int(batch.window[i])
        k, steps = (1, 50) if ep == 0 else (2, 35)
        assert window in (0, 20, 40) and window < steps and start == max(0, window - 10)
        seen.add((k, window))
        t = batch.observation[i, :, 1]
        inside = start + np.arange(30) < steps
        np.testing.assert_array_equal(t[inside], start + np.arange(30)[inside])  # consecutive steps of its episode
        assert np.all(batch.observation[i, :, 0] == k)
        want_mask = inside & (start + np.arange(30) >= window) & (start + np.arange(30) < window + 20)
        np.testing.assert_array_equal(batch.loss_mask[i], want_mask.astype(np.float32))
        np.testing.assert_array_equal(batch.next_observation[i, inside, 1], t[inside] + 1)
        # the stored state is the acting network's at the sequence's first step; zeros at the episode's start
        np.testing.assert_array_equal(batch.state[i], [0, 0] if start == 0 else [1000 * k + start] * 2)
        assert batch.terminated[i].sum() == (1.0 if k == 2 and start + 30 > 34 else 0.0)
    assert seen == {(1, 0), (1, 20), (1, 40), (2, 0), (2, 20)}  # every window of both episodes


def test_one_goal_per_sequence_with_rewards_recomputed_for_it() -> None:
    replay = _replay(her_ratio=0.8, goal_strategy="future", seed=3)
    replay.add_episode(**_episode(50, 1))
    replay.add_episode(**_episode(50, 2))
    batch = replay.sample(500, _reward)
    own = 0
    for i in range(500):
        goal = batch.desired_goal[i]
        assert np.all(goal == goal[0])  # the same goal at every step, burn-in included
        k = int(batch.observation[i, 0, 0])
        if np.allclose(goal[0], [k / 100, 0.3, 0]):
            own += 1
        else:  # an achieved goal of the same episode, from after the window's first step
            assert goal[0, 0] == pytest.approx(k / 100) and goal[0, 1] * 100 > batch.window[i]
        inside = batch.start[i] + np.arange(30) < 50
        want = _reward(batch.next_achieved_goal[i], goal) * inside
        np.testing.assert_array_equal(batch.reward[i], want)
    assert 0.1 < own / 500 < 0.35  # her_ratio 0.8 (a future goal may equal the own one only by chance)
    assert (batch.reward == 0).any() and (batch.reward == -1).any()  # relabelled goals are reached in windows


def test_memory_is_bounded_and_the_oldest_episode_goes_first() -> None:
    replay = _replay()
    before = replay.nbytes
    assert before == 4 * ((51 * 2 + 51 * 3 + 3 + 50 * 1 + 50) * 4 + 8 + 3 * 2 * 4)
    for k in range(6):
        replay.add_episode(**_episode(50, k))
    assert replay.size == 4 and replay.nbytes == before
    assert sorted(int(v) for v in replay.observation[:, 0, 0]) == [2, 3, 4, 5]


def test_refresh_rewrites_the_stored_states() -> None:
    replay = _replay(her_ratio=0.0)
    replay.add_episode(**_episode(50, 1))
    replay.refresh_states(np.array([0, 0]), lambda obs, ag, goal: np.stack([obs[:, 1] + 0.5, obs[:, 1] * 0], 1))
    np.testing.assert_array_equal(replay.state[0, :, 0], [0, 10.5, 30.5])  # starts 0 (zero state), 10, 30


def test_bad_settings_and_episodes_are_refused() -> None:
    with pytest.raises(ValueError, match="train must be an integer >= 1"):
        _replay(spec=SequenceSpec(train=0))
    with pytest.raises(ValueError, match="goal_strategy must be one of"):
        _replay(goal_strategy="random")
    replay = _replay()
    with pytest.raises(RuntimeError, match="no episode stored yet"):
        replay.sample(4, _reward)
    bad = _episode(50, 1)
    bad["states"] = bad["states"][:10]
    with pytest.raises(ValueError, match="states need one row per step"):
        replay.add_episode(**bad)
    with pytest.raises(ValueError, match="an episode must have 1..50 steps"):
        replay.add_episode(**_episode(60, 1))


def test_a_saved_replay_loads_equal_and_samples_the_same_as_the_original(tmp_path: Path) -> None:
    replay = _replay(spec=SequenceSpec(burn_in=5, train=10, stride=10), her_ratio=0.5, goal_strategy="final", seed=3)
    for k in range(6):  # wraps the 4-episode capacity
        replay.add_episode(**_episode(30 + 4 * k, k))  # type: ignore[arg-type]
    replay.sample(8, _reward)  # the generator moved on from its seed
    path = tmp_path / "replay_buffer.pkl"  # the checkpoint's name; the content is an .npz archive
    replay.save(path)
    with np.load(path, allow_pickle=False) as archive:  # plain arrays: nothing in the file executes when read
        assert "observation" in archive.files
    loaded = SequenceReplay.load(path)
    assert (loaded.size, loaded.episodes_added, loaded.spec, loaded.her_ratio, loaded.goal_strategy) == (
        4, 6, replay.spec, 0.5, "final",
    )  # fmt: skip
    for name in SequenceReplay.ARRAYS:
        np.testing.assert_array_equal(getattr(loaded, name), getattr(replay, name), err_msg=name)
    a, b = replay.sample(16, _reward), loaded.sample(16, _reward)
    for name in ("observation", "desired_goal", "reward", "loss_mask", "state", "episode", "start"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    replay.add_episode(**_episode(20, 9))  # type: ignore[arg-type]
    loaded.add_episode(**_episode(20, 9))  # type: ignore[arg-type]
    np.testing.assert_array_equal(loaded.observation, replay.observation)  # the write position travelled too


def test_a_file_that_is_not_a_saved_replay_is_refused_by_name(tmp_path: Path) -> None:
    bad = tmp_path / "replay_buffer.pkl"
    bad.write_bytes(b"\x80\x04not a replay")
    with pytest.raises(ValueError, match="replay_buffer.pkl"):
        SequenceReplay.load(bad)
    np.savez(tmp_path / "other.npz", observation=np.zeros(3))
    with pytest.raises(ValueError, match="other.npz"):
        SequenceReplay.load(tmp_path / "other.npz")
