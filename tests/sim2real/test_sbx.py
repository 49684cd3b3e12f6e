"""`--framework sbx` (stable-baselines3's JAX port) for tqc_her and sac_her: every lever of the SB3 agents (HER,
demonstration share, Q-filtered behaviour cloning in JAX, n-step returns, observation layout 2, normalisation),
checkpoints and resume, an ONNX bundle that acts as JAX's predict does, and clear refusals."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sbx")

from sim2real.demos import CollectDemosConfig, collect_demos  # noqa: E402
from sim2real.train import ConfigError, train  # noqa: E402
from tests.quick_runs import SMALL, quick_config  # noqa: E402

TINY_TQC = {**SMALL["tqc_her"], "policy_kwargs": {"net_arch": [32, 32], "n_critics": 2}}


@pytest.fixture(scope="module")
def demos_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demos") / "push"
    collect_demos(CollectDemosConfig(out=str(out), episodes=4, shard_episodes=4))
    return out


def _env(layout: int = 1):  # type: ignore[no-untyped-def]
    import gymnasium as gym
    from stable_baselines3.common.vec_env import DummyVecEnv

    import sim  # noqa: F401

    return DummyVecEnv([lambda: gym.make("Sim2Real/Push-v0", control="ee", obs_layout=layout)])


@pytest.mark.parametrize("agent", ["tqc_her", "sac_her"])
def test_every_lever_trains_resumes_and_exports_a_bundle_that_acts_as_jax(
    agent: str, demos_dir: Path, tmp_path: Path
) -> None:
    """Demonstration share, BC, 3-step HER, layout 2 and normalisation on SBX: a run checkpointed at 100 steps
    resumes to 300 with its replay buffer, and over a whole episode the exported ONNX graph's actions equal the
    JAX agent's deterministic predict on the normalised observations to 1e-4."""
    from stable_baselines3.common.vec_env import VecNormalize

    from policies.agents import load_agent
    from policies.bundle import load_bundle
    from sim2real.export_run import export_run

    settings = {**copy.deepcopy(TINY_TQC if agent == "tqc_her" else SMALL[agent]), "normalize": True,
                "demo_share": 0.25, "bc_weight": 1.0, "her": {"n_sampled_goal": 4, "n_steps": 3}}  # fmt: skip
    kw = dict(task="push", agent=agent, framework="sbx", control="ee", obs_layout=2, demos=str(demos_dir),
              settings=settings, checkpoint_every_steps=100, save_replay_buffer=True)  # fmt: skip
    train(quick_config(tmp_path / "run", steps=150, **kw), progress=False)
    run = train(quick_config(tmp_path / "run", steps=300, **kw), resume=True, progress=False)
    assert json.loads((run / "config.json").read_text())["framework"] == "sbx"
    venv = _env(layout=2)
    vecnorm = VecNormalize.load(str(run / "vecnormalize.pkl"), venv)
    model = load_agent(agent, str(run / "model.zip"), vecnorm, framework="sbx")
    assert type(model).__module__ == "policies.sbx_agents" and model.num_timesteps == 300
    assert model.bc_weight == 1.0 and model.replay_buffer_kwargs["demo_share"] == 0.25
    bundle = load_bundle(export_run(run, tmp_path / "bundle"))
    env = venv.envs[0]
    obs, _ = env.reset(seed=3)
    done, steps = False, 0
    while not done:
        out = bundle.run(obs)
        want, _ = model.predict(vecnorm.normalize_obs(obs), deterministic=True)
        np.testing.assert_allclose(out["action"], want, atol=1e-4, err_msg=f"step {steps}")
        obs, _, terminated, truncated, _ = env.step(out["action"])
        done, steps = terminated or truncated, steps + 1
    assert steps == 50


@pytest.mark.parametrize("agent", ["tqc_her", "sac_her"])
def test_jax_behaviour_cloning_pulls_the_policy_to_the_demonstrations(agent: str, demos_dir: Path) -> None:
    """Without the Q-filter every row counts and BC steps alone close most of the gap between the deterministic
    policy and the demonstrated actions; with it the kept share is a fraction in [0, 1]."""
    import jax.numpy as jnp

    from policies.agents import build_agent
    from policies.sbx_agents import flat_observations
    from sim2real.demos_dataset import demo_buffer, load_demos

    env = _env(layout=2)
    her = {"n_sampled_goal": 4, "goal_relative_slice": env.get_attr("goal_relative_slice")[0]}
    settings = {**copy.deepcopy(TINY_TQC if agent == "tqc_her" else SMALL[agent]), "her": her,
                "bc_weight": 1.0, "bc_q_filter": False, "bc_batch_size": 64}  # fmt: skip
    model = build_agent(agent, env, settings, seed=0, framework="sbx")
    model.replay_buffer.attach_demos(demo_buffer(model.replay_buffer, load_demos(demos_dir), 2))
    keys = list(model.observation_space.spaces)

    def gap() -> float:
        data = model.replay_buffer.demos.sample(256)
        obs = flat_observations({k: v.numpy() for k, v in data.observations.items()}, keys)
        pi = np.asarray(model.policy.select_action(model.policy.actor_state, jnp.asarray(obs)))
        return float(((pi - data.actions.numpy()) ** 2).sum(-1).mean())

    before = gap()
    for _ in range(200):
        loss, kept = model.bc_step()
        assert kept == 1.0 and np.isfinite(loss)
    assert gap() < 0.7 * before
    model.bc_q_filter = True
    assert all(0.0 <= model.bc_step()[1] <= 1.0 for _ in range(5))


def test_the_torch_rebuild_is_refused_when_it_differs_from_jax(tmp_path: Path) -> None:
    from policies.agents import build_agent
    from policies.sbx_agents import torch_actor

    model = build_agent("tqc_her", _env(), copy.deepcopy(TINY_TQC), seed=0, framework="sbx")
    assert torch_actor(model) is not None  # agrees with JAX
    model.policy.select_action = lambda state, obs: np.zeros((len(obs), 3), np.float32)  # a JAX side that differs
    with pytest.raises(ValueError, match="differs from JAX by"):
        torch_actor(model)


def test_sbx_refusals_name_what_to_change(tmp_path: Path) -> None:
    from policies.agents import build_agent
    from sim2real.train import resolve

    with pytest.raises(ConfigError, match=r"framework sbx runs \['sac_her', 'tqc_her'\]; agent ppo runs on sb3 only"):
        resolve(quick_config(tmp_path / "a", task="reach", agent="ppo", framework="sbx"))
    with pytest.raises(ConfigError, match="framework must be one of"):
        resolve(quick_config(tmp_path / "b", task="reach", framework="jax"))
    with pytest.raises(ConfigError, match="SBX's TQC has two critics, got 1"):
        resolve(quick_config(tmp_path / "c", task="reach", framework="sbx"))  # SMALL's n_critics 1, given
    cfg, settings = resolve(quick_config(tmp_path / "d", task="reach", framework="sbx", settings={}))
    assert settings["policy_kwargs"]["n_critics"] == 2  # the tuned Reach settings' one critic becomes SBX's two
    with pytest.raises(ValueError, match="SBX's TQC has two critics"):
        build_agent("tqc_her", _env(), copy.deepcopy(SMALL["tqc_her"]), seed=0, framework="sbx")
    with pytest.raises(ValueError, match="runs on sb3 only"):
        build_agent("ppo", _env(), {}, seed=0, framework="sbx")
