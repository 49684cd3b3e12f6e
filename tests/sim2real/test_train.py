"""Training: a short smoke run of every agent on every task, exact resume from a checkpoint, checkpoints that
survive a kill, and bad configs refused before anything trains."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sim2real import checkpoints
from sim2real.train import ConfigError, TrainConfig, config_from_dict, resolve, train, train_config
from tests.quick_runs import SMALL, quick_config


def _cfg(tmp_path: Path, **kw: Any) -> TrainConfig:
    return quick_config(tmp_path / "run", **kw)


@pytest.mark.parametrize("task", ["reach", "push", "pick_and_place"])
@pytest.mark.parametrize("agent", ["tqc_her", "sac_her", "recurrent_sac_her", "ppo", "recurrent_ppo"])
def test_every_agent_trains_on_every_task(tmp_path: Path, task: str, agent: str) -> None:
    run = train(_cfg(tmp_path, task=task, agent=agent, randomization="dynamics"), progress=False)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] >= 200
    assert 0.0 <= summary["final"]["nominal_success"] <= 1.0 and "randomized_success" in summary["final"]
    assert (run / "model.zip").is_file() and (run / "checkpoints" / "LATEST").is_file()
    assert json.loads((run / "randomization_state.json").read_text())["sampler"] == "uniform"
    # HER relabels sparse goals; on-policy agents learn from the dense distance reward
    assert json.loads((run / "config.json").read_text())["reward"] == ("sparse" if "her" in agent else "dense")
    if agent in ("ppo", "recurrent_ppo"):  # these normalise observations: the statistics travel with the run
        norm = json.loads((run / "obs_normalization.json").read_text())
        assert set(norm["keys"]) == {"observation", "achieved_goal", "desired_goal"}
        assert all(np.all(np.asarray(v["var"]) > 0) for v in norm["keys"].values())
        ckpt, _ = checkpoints.load_latest(run)
        assert ckpt.file(checkpoints.VECNORM) is not None


def test_resume_restores_the_observation_normaliser(tmp_path: Path) -> None:
    first = train(_cfg(tmp_path, agent="ppo", steps=64), progress=False)
    before = json.loads((first / "obs_normalization.json").read_text())
    run = train(_cfg(tmp_path, agent="ppo", steps=128), resume=True, progress=False)
    after = json.loads((run / "obs_normalization.json").read_text())
    # the resumed run kept updating the statistics it had, instead of starting from zero
    assert not np.allclose(before["keys"]["observation"]["mean"], after["keys"]["observation"]["mean"])


def test_her_agent_normalises_without_blowing_up_still_fields(tmp_path: Path) -> None:
    """HER with normalisation (push_uniform_cpu's setting): the resting object's quaternion barely varies, and a
    small turn of it must read as a small change, not a jump to the clip bound (the std floor, NORM_EPSILON)."""
    import gymnasium as gym
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    import sim  # noqa: F401  (registers the env ids)
    from sim.observation import field_slices

    run = train(_cfg(tmp_path, task="push", settings={**SMALL["tqc_her"], "normalize": True}), progress=False)
    norm = VecNormalize.load(str(run / "vecnormalize.pkl"), DummyVecEnv([lambda: gym.make("Sim2Real/Push-v0")]))
    quat = field_slices(with_object=True)["object_quat_wxyz"]
    obs = {k: rms.mean[None].astype(np.float32) for k, rms in norm.obs_rms.items()}
    turned = {k: v.copy() for k, v in obs.items()}
    turned["observation"][0, quat] += np.float32(0.02)  # a 2-degree turn's worth of quaternion change
    change = norm.normalize_obs(turned)["observation"][0, quat] - norm.normalize_obs(obs)["observation"][0, quat]
    assert np.all(np.abs(change) <= 0.2 + 1e-5), change
    assert json.loads((run / "obs_normalization.json").read_text())["epsilon"] == pytest.approx(1e-2)


def test_results_folder_has_curve_gif_and_tensorboard(tmp_path: Path) -> None:
    run = train(_cfg(tmp_path, eval_every_steps=100, gif=True, randomization="dynamics", randomizer="adr"), False)
    rows = (run / "evaluations.csv").read_text().splitlines()
    assert rows[0].startswith("step,") and len(rows) == 3  # header, step 100, step 200
    assert (run / "learning_curve.png").stat().st_size > 5000
    from PIL import Image

    with Image.open(run / "rollout.gif") as gif:
        assert gif.n_frames > 5
    assert list((run / "tensorboard").rglob("events.out.tfevents.*"))
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["steps"] == 200 and cfg["randomizer"] == "adr" and cfg["schema_version"] == 1
    assert "ranges" in json.loads((run / "randomization_state.json").read_text())


def test_resume_makes_the_same_next_update_as_an_uninterrupted_run(tmp_path: Path) -> None:
    from policies.agents import build_agent, load_agent
    from sim2real.train import make_train_env

    cfg, settings = resolve(_cfg(tmp_path))
    settings.pop("total_steps")
    env = make_train_env(cfg, None)
    model = build_agent("tqc_her", env, settings, seed=3)
    model.learn(150)
    ckpt_dir = checkpoints.save_checkpoint(tmp_path, 150, model, None, None, save_replay_buffer=True)
    model.train(gradient_steps=3, batch_size=32)  # the uninterrupted run's next update
    expected = [p.detach().clone() for p in model.policy.parameters()]

    env2 = make_train_env(cfg, None)
    ckpt = checkpoints.verify(ckpt_dir)
    resumed = load_agent("tqc_her", str(ckpt.file(checkpoints.MODEL)), env2)
    resumed.load_replay_buffer(str(ckpt.file(checkpoints.REPLAY)))
    np.random.seed(12345)  # noqa: NPY002  (whatever the process did in between: SB3 uses the global generator)
    checkpoints.restore_rng(ckpt)
    from stable_baselines3.common.logger import configure

    resumed.set_logger(configure(None, []))
    resumed.train(gradient_steps=3, batch_size=32)
    got = list(resumed.policy.parameters())
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert np.array_equal(a.detach().numpy(), b.numpy())
    before = [
        p.detach().clone() for p in load_agent("tqc_her", str(ckpt.file(checkpoints.MODEL)), env2).policy.parameters()
    ]
    assert any(not np.array_equal(a.numpy(), b.numpy()) for a, b in zip(before, expected))  # the update did move


def test_resume_continues_the_run_from_its_checkpoint(tmp_path: Path) -> None:
    first = train(_cfg(tmp_path, steps=100, eval_every_steps=100), progress=False)
    first_wall = json.loads((first / "summary.json").read_text())["wall_s"]
    run = train(_cfg(tmp_path, steps=200, eval_every_steps=100), resume=True, progress=False)
    assert run == first
    manifest = json.loads((run / "checkpoints" / "step-000000100" / "manifest.json").read_text())
    assert manifest["wall_s"] == pytest.approx(first_wall, abs=1.0)  # the summary counts every resumed segment
    assert json.loads((run / "summary.json").read_text())["wall_s"] > manifest["wall_s"]
    steps = [float(r.split(",")[0]) for r in (run / "evaluations.csv").read_text().splitlines()[1:]]
    assert steps == [100.0, 200.0]
    assert json.loads((run / "summary.json").read_text())["steps"] == 200
    assert sorted(p.name for p in (run / "checkpoints").glob("step-*")) == ["step-000000100", "step-000000200"]


def test_resume_refuses_a_run_of_another_task_and_fresh_runs_refuse_an_existing_folder(tmp_path: Path) -> None:
    train(_cfg(tmp_path, steps=60), progress=False)
    with pytest.raises(ConfigError, match=r"task='push' \(the run has 'reach'\)"):
        train(_cfg(tmp_path, steps=120, task="push"), resume=True, progress=False)
    with pytest.raises(ConfigError, match="already holds a run"):
        train(_cfg(tmp_path, steps=60), progress=False)
    with pytest.raises(ConfigError, match="nothing to resume"):
        train(_cfg(tmp_path / "other", steps=60), resume=True, progress=False)


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"task": "stack"}, "task must be one of"),
        ({"agent": "dqn"}, "agent must be one of"),
        ({"steps": 0}, "a budget of 0 trains nothing"),
        ({"randomizer": "adr", "randomization": ""}, "needs a randomization space"),
        ({"randomization": "no_such_preset"}, "neither a file nor a preset"),
        ({"settings": {"batch_sise": 64}}, "unknown key 'batch_sise'"),
        ({"her_strategy": "random"}, "her_strategy must be one of"),
        ({"subproc": True, "randomizer": "adr", "randomization": "dynamics"}, "keeps one learning state"),
        ({"randomizer": "adr", "randomization": "dynamics", "randomizer_settings": {"buffer": 3}}, "buffer"),
    ],
)
def test_bad_configs_fail_before_training(tmp_path: Path, kw: dict[str, Any], needle: str) -> None:
    with pytest.raises((ConfigError, FileNotFoundError)) as e:
        train(_cfg(tmp_path, **kw), progress=False)
    assert needle in str(e.value)
    assert not (tmp_path / "run").exists()  # nothing was written


def test_unknown_config_keys_are_errors() -> None:
    with pytest.raises(ConfigError, match=r"unknown config key\(s\) \['lr'\]"):
        config_from_dict({"task": "reach", "lr": 0.1}, source="exp.yaml")


def test_cli_reports_bad_input_with_exit_code_2(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "sim2real.cli", "train", "--steps", "0", "--out", str(tmp_path / "x")]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert out.returncode == 2 and "trains nothing" in out.stderr
    cmd = [sys.executable, "-m", "sim2real.cli", "train", "--set", "nope=1", "--out", str(tmp_path / "x")]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert out.returncode == 2 and "unknown key 'nope'" in out.stderr


_WRITER = """
import sys, numpy as np
from pathlib import Path
from policies.agents import build_agent
from sim2real import checkpoints
from sim2real.train import TrainConfig, make_train_env, resolve
cfg, settings = resolve(TrainConfig(steps=100, settings={"learning_starts": 55, "batch_size": 16, "buffer_size": 5000}))
settings.pop("total_steps")
model = build_agent("tqc_her", make_train_env(cfg, None), settings, seed=0)
model.learn(80)
run = Path(sys.argv[1])
step = 0
while True:
    step += 1
    checkpoints.save_checkpoint(run, step, model, {"sampler": "none", "step": step}, None, save_replay_buffer=True)
    print(step, flush=True)
"""


def test_a_kill_during_checkpoint_writes_never_leaves_one_that_loads_wrong(tmp_path: Path) -> None:
    env = dict(os.environ, MUJOCO_GL="egl")
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    for _ in range(3):  # let a few checkpoints complete, then kill it in the middle of writing the next ones
        proc.stdout.readline()
    time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    ckpt, _ = checkpoints.load_latest(tmp_path)
    assert ckpt.step >= 3
    state = json.loads(ckpt.file(checkpoints.RANDOMIZATION).read_text())  # type: ignore[union-attr]
    assert state["step"] == ckpt.step  # the files belong together
    from policies.agents import load_agent
    from sim2real.train import make_train_env

    cfg, _ = resolve(TrainConfig(steps=100))
    load_agent("tqc_her", str(ckpt.file(checkpoints.MODEL)), make_train_env(cfg, None))  # and the model loads

    # a checkpoint altered after the fact is skipped, with a warning, for the newest one that verifies
    with open(ckpt.file(checkpoints.MODEL), "r+b") as f:  # type: ignore[arg-type]
        f.truncate(100)
    older, warnings = checkpoints.load_latest(tmp_path)
    # another one that verifies: an older one, or a newer one the kill finished writing before LATEST named it
    assert older.step != ckpt.step and any("SHA-256" in w for w in warnings)


def test_pixel_observations_train_and_refuse_an_oversized_image_buffer(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="GB of 84x84 images"):
        resolve(train_config(obs_mode="pixels"))
    settings = {**SMALL["tqc_her"], "buffer_size": 1000, "learning_starts": 55, "batch_size": 8}
    run = train(_cfg(tmp_path, obs_mode="pixels", steps=80, settings=settings), progress=False)
    assert json.loads((run / "summary.json").read_text())["steps"] == 80


def test_evaluate_a_run_on_the_other_engine(tmp_path: Path) -> None:
    from sim2real.train import evaluate_run

    run = train(_cfg(tmp_path, agent="ppo", steps=64, randomization="dynamics"), progress=False)
    result = evaluate_run(run, episodes=2, backend="pybullet")
    assert result["backend"] == "pybullet" and set(result) >= {"nominal", "randomized"}
    assert 0.0 <= result["randomized"]["success"] <= 1.0
    assert all(result[k]["length"] >= 1 for k in ("nominal", "randomized"))  # episodes really ran
    assert json.loads((run / "evaluation-pybullet-dynamics.json").read_text())["backend"] == "pybullet"
    with pytest.raises(ConfigError, match="not a finished run"):
        evaluate_run(tmp_path / "nothing")


def test_the_config_is_flat_on_disk_and_an_env_spec_plus_training_in_code() -> None:
    from sim.env_spec import EnvSpec

    cfg = config_from_dict({"task": "push", "backend": "pybullet", "agent": "ppo", "seed": 3})
    assert cfg.env == EnvSpec(task="push", backend="pybullet") and cfg.agent == "ppo" and cfg.seed == 3
    flat = cfg.to_dict()
    assert "env" not in flat and flat["task"] == "push" and flat["agent"] == "ppo"
    assert config_from_dict(flat) == cfg
    assert cfg.with_env(backend="mujoco").env.backend == "mujoco" and cfg.env.backend == "pybullet"
    with pytest.raises(ConfigError, match=r"unknown config key\(s\) \['env'\]"):
        config_from_dict({"env": {"task": "push"}})


def test_a_layout_2_run_trains_resumes_with_its_buffer_and_exports(tmp_path: Path) -> None:
    """obs_layout 2 (sim.observation's relative features): the HER buffer rewrites the goal slice of relabelled
    samples (policies.her_buffer), a resume keeps that buffer, and the bundle's env carries the layout."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    from policies.agents import load_agent
    from policies.her_buffer import HerBuffer
    from sim.env_spec import EnvSpec, make_env
    from sim2real.export_run import evaluate_bundle, export_run

    cfg = dict(task="push", control="ee", obs_layout=2, save_replay_buffer=True, checkpoint_every_steps=100)
    train(_cfg(tmp_path, steps=100, **cfg), progress=False)
    run = train(_cfg(tmp_path, steps=200, **cfg), resume=True, progress=False)
    env = make_env(EnvSpec(task="push", obs_layout=2))
    model = load_agent("tqc_her", str(run / "model.zip"), DummyVecEnv([lambda: env]))
    assert isinstance(model.replay_buffer, HerBuffer)
    assert model.replay_buffer.goal_relative_slice == (37, 40)
    assert model.observation_space["observation"].shape == (40,)
    bundle = export_run(run, tmp_path / "bundle")
    assert json.loads((bundle / "manifest.json").read_text())["env"]["obs_layout"] == 2
    assert evaluate_bundle(bundle, episodes=1)["nominal"]["episodes"] == 1  # the env it builds has the layout
