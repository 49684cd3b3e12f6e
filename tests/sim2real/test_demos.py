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


def _model_with_demos(demos_dir: Path, agent: str = "tqc_her", layout: int = 1, **settings: object):  # type: ignore[no-untyped-def]
    import gymnasium as gym
    from stable_baselines3.common.vec_env import DummyVecEnv

    import sim  # noqa: F401
    from policies.agents import build_agent
    from sim2real.demos_dataset import demo_buffer
    from tests.quick_runs import SMALL

    env = DummyVecEnv([lambda: gym.make("Sim2Real/Push-v0", control="ee", obs_layout=layout)])
    her: dict = {"n_sampled_goal": 4}
    if layout == 2:
        her["goal_relative_slice"] = env.get_attr("goal_relative_slice")[0]
    model = build_agent(agent, env, {**copy.deepcopy(SMALL[agent]), "her": her, **settings}, seed=0)
    model.replay_buffer.attach_demos(demo_buffer(model.replay_buffer, load_demos(demos_dir), layout))
    return model


def test_a_demo_share_of_every_batch_comes_from_the_demonstrations(demos_dir: Path) -> None:
    model = _model_with_demos(demos_dir, layout=2, demo_share=0.25)
    buf = model.replay_buffer
    assert buf.demo_share == 0.25 and buf.demos.size() == load_demos(demos_dir).n_transitions
    model.learn(60)  # some experience of its own (no update yet: learning_starts 50 is near)
    batch = buf.sample(40)
    assert buf.last_demo_rows == 10 and batch.observations["observation"].shape == (40, 40)
    demo_actions = buf.demos.actions[: buf.demos.size(), 0]
    rows = batch.actions.numpy()
    is_demo = [bool(np.any(np.all(np.isclose(demo_actions, a), axis=1))) for a in rows]
    assert all(is_demo[:10]) and not any(is_demo[10:])  # the first rows are demonstrations, the rest its own
    obs = {k: v.numpy() for k, v in batch.observations.items()}  # relabelled demos keep the goal slice consistent
    np.testing.assert_allclose(obs["observation"][:, 37:40], obs["desired_goal"] - obs["achieved_goal"], atol=1e-6)


@pytest.mark.parametrize("agent", ["tqc_her", "sac_her"])
def test_behaviour_cloning_pulls_the_policy_to_the_demonstrations(demos_dir: Path, agent: str) -> None:
    """Without the Q-filter, BC steps alone bring the deterministic policy closer to the demonstrated actions; with
    it, only rows whose demonstrated action the critic rates higher count (the share is logged)."""
    import torch as th

    model = _model_with_demos(demos_dir, agent, bc_weight=1.0, bc_q_filter=False, bc_batch_size=64)
    model._setup_learn(100)  # a logger for bc_step's records

    def gap() -> float:
        data = model.replay_buffer.demos.sample(256)
        with th.no_grad():
            return float(((model.actor(data.observations, deterministic=True) - data.actions) ** 2).sum(-1).mean())

    before = gap()
    for _ in range(300):
        _, kept = model.bc_step()
        assert kept == 1.0
    assert gap() < 0.7 * before
    model.bc_q_filter = True
    kept = [model.bc_step()[1] for _ in range(5)]
    assert all(0.0 <= k <= 1.0 for k in kept)


def test_demo_settings_need_demos_and_sensible_values(tmp_path: Path) -> None:
    from sim2real.train import ConfigError
    from tests.quick_runs import quick_run

    with pytest.raises(ConfigError, match="settings.bc_weight learns from demonstrations: pass --demos"):
        quick_run(tmp_path / "a", task="push", agent="tqc_her", control="ee", settings={"bc_weight": 1.0})
    with pytest.raises(ConfigError, match=r"settings.demo_share must be in \[0.0, 0.9\]"):
        quick_run(tmp_path / "b", task="push", agent="tqc_her", control="ee", settings={"demo_share": 1.5})
    with pytest.raises(ConfigError, match="unknown key 'bc_weight' for ppo"):
        quick_run(tmp_path / "c", task="push", agent="ppo", control="ee", settings={"bc_weight": 1.0})


def test_training_with_a_demo_share_and_bc_resumes_with_them(demos_dir: Path, tmp_path: Path) -> None:
    from policies.agents import load_agent
    from sim2real.train import train
    from tests.quick_runs import SMALL, quick_config

    settings = {**SMALL["tqc_her"], "demo_share": 0.25, "bc_weight": 0.5}
    kw = dict(task="push", agent="tqc_her", control="ee", demos=str(demos_dir), settings=settings,
              checkpoint_every_steps=100)  # fmt: skip
    train(quick_config(tmp_path / "run", steps=100, **kw), progress=False)
    run = train(quick_config(tmp_path / "run", steps=200, **kw), resume=True, progress=False)
    import gymnasium as gym
    from stable_baselines3.common.vec_env import DummyVecEnv

    env = DummyVecEnv([lambda: gym.make("Sim2Real/Push-v0", control="ee")])
    model = load_agent("tqc_her", str(run / "model.zip"), env)
    assert model.bc_weight == 0.5 and model.replay_buffer_kwargs["demo_share"] == 0.25
    assert type(model).__module__ == "policies.demo_learning"
