"""`sim2real collect demos`: the scripted pusher's episodes on randomized scenes as a versioned dataset; what it
holds is what the env gave; a stopped collection continues to the same data; bad folders and settings refused."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import numpy as np
import pytest

from sim2real.demos import CollectDemosConfig, collect_demos
from sim2real.demos_dataset import EPISODE_STEPS, MANIFEST, DemosError, load_demos

os.environ.setdefault("MUJOCO_GL", "egl")


def _cfg(out: Path, **kw: object) -> CollectDemosConfig:
    return CollectDemosConfig(out=str(out), **{"episodes": 4, "shard_episodes": 2, **kw})  # type: ignore[arg-type]


def test_a_dataset_holds_what_the_env_gave(tmp_path: Path) -> None:
    import gymnasium as gym

    import sim  # noqa: F401

    manifest = collect_demos(_cfg(tmp_path / "d"))
    assert manifest["schema_version"] == 1 and [s["file"] for s in manifest["shards"]] == ["shard_00000.npz",
                                                                                        "shard_00001.npz"]  # fmt: skip
    d = load_demos(tmp_path / "d")
    a = d.arrays
    assert d.n_episodes == 4 and a["observation"].shape == (4, EPISODE_STEPS + 1, 34)
    assert a["action"].shape == (4, EPISODE_STEPS, 3) and np.all(np.abs(a["action"]) <= 1.0)
    assert a["success"].sum() >= 1  # the pusher solves randomized scenes too
    env = gym.make("Sim2Real/Push-v0", control="ee")
    for e in range(4):
        n = int(a["length"][e])
        rewards = env.unwrapped.compute_reward(a["achieved_goal"][e, 1 : n + 1], a["desired_goal"][e, 1 : n + 1], {})
        np.testing.assert_array_equal(rewards, a["reward"][e, :n])  # rewards recomputable: HER can relabel them
        assert bool(a["success"][e]) == (rewards[-1] == 0.0)
        assert not a["action"][e, n:].any()  # padding after the end
    env.close()


def test_a_stopped_collection_continues_to_the_same_data(tmp_path: Path) -> None:
    collect_demos(_cfg(tmp_path / "part", episodes=2))
    collect_demos(_cfg(tmp_path / "part", episodes=4))
    collect_demos(_cfg(tmp_path / "whole", episodes=4))
    part, whole = load_demos(tmp_path / "part").arrays, load_demos(tmp_path / "whole").arrays
    for k in whole:
        np.testing.assert_array_equal(part[k], whole[k], err_msg=k)


def test_successful_only_keeps_solved_episodes(tmp_path: Path) -> None:
    manifest = collect_demos(_cfg(tmp_path / "d", episodes=3, successful_only=True))
    d = load_demos(tmp_path / "d")
    assert d.arrays["success"].all() and d.n_episodes == 3 and manifest["tried"] >= 3


def test_bad_folders_and_settings_are_refused(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(DemosError, match="no demos.json: not a demonstration dataset"):
        collect_demos(_cfg(other))
    assert (other / "notes.txt").read_text() == "mine" and sorted(p.name for p in other.iterdir()) == ["notes.txt"]
    collect_demos(_cfg(tmp_path / "d", episodes=2))
    with pytest.raises(DemosError, match="other settings .*'seed': \\(0, 5\\)"):
        collect_demos(_cfg(tmp_path / "d", seed=5))
    with pytest.raises(DemosError, match="solves 'push', not --task 'reach'"):
        _cfg(tmp_path / "x", task="reach").check()
    with pytest.raises(DemosError, match="known scripts"):
        _cfg(tmp_path / "x", script="grasper").check()
    manifest = json.loads((tmp_path / "d" / MANIFEST).read_text())
    (tmp_path / "d" / manifest["shards"][0]["file"]).write_bytes(b"not an npz")
    with pytest.raises(DemosError, match="shard_00000.npz: unreadable shard"):
        load_demos(tmp_path / "d")
    with pytest.raises(DemosError, match="no demonstration dataset"):
        load_demos(tmp_path / "empty")


def test_the_command(tmp_path: Path) -> None:
    from sim2real.cli import main

    assert main(["collect", "demos", "--out", str(tmp_path / "d"), "--episodes", "2"]) == 0
    assert load_demos(tmp_path / "d").n_episodes == 2
    assert main(["collect", "demos", "--out", str(tmp_path / "d"), "--episodes", "2", "--seed", "3"]) == 2


@pytest.fixture(scope="module")
def demos_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demos") / "push"
    collect_demos(_cfg(out, episodes=5, shard_episodes=5))
    return out


def test_demos_fill_a_her_buffer_with_whole_episodes(demos_dir: Path) -> None:
    """Two env columns: episodes dealt round-robin, every column ending at an episode boundary, and HER samples
    relabelled goals from them."""
    import gymnasium as gym
    from stable_baselines3.common.vec_env import DummyVecEnv

    import sim  # noqa: F401
    from policies.agents import build_agent
    from sim2real.demos_dataset import prefill_replay_buffer
    from tests.quick_runs import SMALL

    env = DummyVecEnv([lambda: gym.make("Sim2Real/Push-v0", control="ee")] * 2)
    settings = {**copy.deepcopy(SMALL["tqc_her"]), "her": {"n_sampled_goal": 4}}  # build_agent fills in its dicts
    model = build_agent("tqc_her", env, settings, seed=0)
    demos = load_demos(demos_dir)
    added = prefill_replay_buffer(model.replay_buffer, demos)
    buf = model.replay_buffer
    lengths = demos.arrays["length"]
    shortest = min(int(lengths[0::2].sum()), int(lengths[1::2].sum()))
    assert added == 2 * shortest and buf.size() == shortest
    assert np.all(buf.ep_length[: buf.size()] > 0)  # every stored transition belongs to a finished episode
    np.testing.assert_array_equal(buf.actions[0, 0], demos.arrays["action"][0, 0])
    batch = buf.sample(32, env=None)
    assert batch.observations["desired_goal"].shape == (32, 3)
    env.close()


def test_training_takes_demos_and_refuses_the_wrong_ones(demos_dir: Path, tmp_path: Path) -> None:
    from sim2real.train import ConfigError
    from tests.quick_runs import quick_run

    run = quick_run(tmp_path / "run", task="push", agent="tqc_her", control="ee", steps=64, demos=str(demos_dir))
    assert json.loads((run / "config.json").read_text())["demos"] == str(demos_dir)
    with pytest.raises(ConfigError, match="agent ppo has none"):
        quick_run(tmp_path / "ppo", task="push", agent="ppo", control="ee", steps=64, demos=str(demos_dir))
    with pytest.raises(ConfigError, match="collected for another env .*'control': \\('ee', 'joint'\\)"):
        quick_run(tmp_path / "joint", task="push", agent="tqc_her", control="joint", steps=64, demos=str(demos_dir))
