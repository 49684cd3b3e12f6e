"""The training benchmark cases: every one resolves to settings the trainer accepts, before hours of training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim2real.bench_train import CASES, PUSH_ON_TWO_CORES, case_config
from sim2real.train import make_sampler, make_train_env, resolve


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_case_resolves(tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import sim2real.bench_train as bench

    monkeypatch.setattr(bench, "LEVER_DEMO_EPISODES", 2)  # the demonstrations the lever cases collect once
    cfg, settings = resolve(case_config(name, tmp_path, seed=3, steps=None, n_envs=1, device="cpu"))
    assert cfg.steps == CASES[name][0].steps and cfg.seed == 3
    assert Path(cfg.out) == tmp_path / f"{name}-s3"
    for key, value in CASES[name][0].settings.items():
        assert settings[key] == value


def test_the_two_core_push_case_updates_once_per_four_env_steps(tmp_path: Path) -> None:
    from policies.agents import build_agent

    cfg, settings = resolve(case_config("push_uniform_cpu", tmp_path, seed=0, steps=None, n_envs=1, device="cpu"))
    assert settings["batch_size"] == 256 and settings["her"]["goal_selection_strategy"] == "future"
    env = make_train_env(cfg, make_sampler(cfg))
    agent_settings = {k: v for k, v in settings.items() if k not in ("total_steps", "normalize")}
    model = build_agent(cfg.agent, env, {**agent_settings, "buffer_size": 1000}, seed=0, device="cpu")
    assert (model.train_freq.frequency, model.gradient_steps) == (4, 1)
    assert model.batch_size == 256
    assert [layer.out_features for layer in model.actor.latent_pi if hasattr(layer, "out_features")] == [256] * 3
    assert model.critic.n_critics == PUSH_ON_TWO_CORES["policy_kwargs"]["n_critics"]
    env.close()


def test_action_noise_std_explores_off_policy_agents_only(tmp_path: Path) -> None:
    from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise

    from policies.agents import build_agent

    cfg, settings = resolve(case_config("push_uniform_cpu", tmp_path, seed=0, steps=None, n_envs=1, device="cpu"))
    env = make_train_env(cfg, make_sampler(cfg))
    base = {k: v for k, v in settings.items() if k not in ("total_steps", "normalize")} | {"buffer_size": 1000}
    model = build_agent("tqc_her", env, base, seed=0, device="cpu")
    assert isinstance(model.action_noise, OrnsteinUhlenbeckActionNoise)
    assert np.allclose(model.action_noise._sigma, [0.3, 0.3, 0.3]) and model.learning_starts == 10_000
    normal = build_agent("tqc_her", env, base | {"action_noise_type": "normal"}, seed=0, device="cpu")
    assert isinstance(normal.action_noise, NormalActionNoise)
    # OU noise is correlated from step to step (the arm filters out independent noise); Gaussian is not
    ou_draws = np.array([model.action_noise() for _ in range(4000)])[:, 0]
    normal_draws = np.array([normal.action_noise() for _ in range(4000)])[:, 0]
    assert np.corrcoef(ou_draws[:-1], ou_draws[1:])[0, 1] > 0.7
    assert abs(np.corrcoef(normal_draws[:-1], normal_draws[1:])[0, 1]) < 0.1
    with pytest.raises(ValueError, match="action_noise_type must be one of"):
        build_agent("tqc_her", env, base | {"action_noise_type": "pink"}, seed=0, device="cpu")
    assert build_agent("tqc_her", env, base | {"action_noise_std": 0.0}, seed=0, device="cpu").action_noise is None
    with pytest.raises(ValueError, match="action_noise_std must be a finite number >= 0"):
        build_agent("tqc_her", env, base | {"action_noise_std": -0.1}, seed=0, device="cpu")
    with pytest.raises(ValueError, match="action_noise_std is for tqc_her and sac_her"):
        build_agent("ppo", env, {"action_noise_std": 0.3}, seed=0, device="cpu")
    env.close()


def test_the_lever_cases_differ_from_the_base_by_their_lever_alone(tmp_path: Path) -> None:
    from sim2real.bench_train import LEVERS

    base = CASES["push_lever_base"][0]
    assert base.settings == PUSH_ON_TWO_CORES and base.steps == 150_000 and base.eval_episodes == 30
    for name, (fields, extra) in LEVERS.items():
        cfg = CASES[name][0]
        assert {k: v for k, v in cfg.settings.items() if PUSH_ON_TWO_CORES.get(k) != v} == extra
        assert cfg.env.obs_layout == fields.get("obs_layout", 1) and bool(cfg.demos) == ("demos" in fields)
        assert (cfg.steps, cfg.eval_every_steps, cfg.seed) == (base.steps, base.eval_every_steps, base.seed)


def test_the_target_cases_are_the_combination_at_500k_with_100_episode_evaluations(tmp_path: Path) -> None:
    from sim2real.bench_train import LEVERS, case_config

    combo = CASES["push_lever_combo"][0]
    small = {"policy_kwargs": {"net_arch": [256, 256], "n_critics": 2}}
    for name, framework, over in (
        ("push_combo_cpu", "sb3", {}),
        ("push_combo_small_cpu", "sb3", small),
        ("push_combo_sbx_cpu", "sbx", {}),
        ("push_combo_small_sbx_cpu", "sbx", small),
    ):
        cfg = CASES[name][0]
        assert (cfg.steps, cfg.eval_episodes, CASES[name][3]) == (500_000, 100, 0.90)
        assert cfg.env.obs_layout == 2 and cfg.demos == LEVERS["push_lever_combo"][0]["demos"]
        assert cfg.framework == framework
        differ = {k: v for k, v in cfg.settings.items() if combo.settings.get(k) != v}
        assert differ == over, name
    placed = case_config("push_combo_cpu", tmp_path, 1, None, 1, "cpu")
    assert placed.out == str(tmp_path / "push_combo_cpu-s1") and placed.eval_every_steps == 50_000
    assert placed.demos == str(tmp_path / "demos_push_solved")
