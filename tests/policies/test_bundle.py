"""Policy bundles: export matches torch, the runtime refuses altered or incomplete bundles and bad inputs, and
loading a bundle needs neither torch nor pickle."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from policies.bundle import BundleError, load_bundle
from policies.manifest import ImagePreprocessing, ObservationInput
from sim2real.export_run import export_run
from sim2real.train import ConfigError
from tests.quick_runs import quick_run


def _short_run(out: Path, **kw: object) -> Path:
    """64 steps, no evaluation or checkpoints on the way."""
    return quick_run(out, steps=64, **kw)


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A short PPO run in joint control (observation normaliser on), exported: (run, bundle)."""
    tmp = tmp_path_factory.mktemp("bundle")
    run = _short_run(
        tmp / "run",
        task="push",
        agent="ppo",
        control="joint",
        randomization="object_dynamics",
        settings={"n_steps": 64, "batch_size": 32, "policy_kwargs": {"net_arch": [32, 32]}},
    )
    return run, export_run(run, tmp / "bundle")


def test_bundle_matches_the_trained_policy(bundle_dir: tuple[Path, Path]) -> None:
    import gymnasium as gym
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    import sim  # noqa: F401

    run, path = bundle_dir
    bundle = load_bundle(path)
    m = bundle.manifest
    assert m.joint_names == tuple(f"panda_joint{i}" for i in range(1, 8)) and m.control_rate_hz == pytest.approx(25)
    assert m.randomization is not None and m.randomization["sampler"] == "uniform"
    assert (m.env.task, m.env.control, m.env.randomization) == ("push", "joint", "object_dynamics")
    assert [o.name for o in m.outputs] == ["action", "joint_target_rad"]
    env = gym.make("Sim2Real/Push-v0", control="joint")
    model = PPO.load(run / "model.zip", device="cpu")
    norm = VecNormalize.load(str(run / "vecnormalize.pkl"), DummyVecEnv([lambda: gym.make("Sim2Real/Push-v0")]))
    limits = np.asarray(m.joint_limits_rad)
    for seed in range(5):
        obs, _ = env.reset(seed=seed)
        want, _ = model.predict(norm.normalize_obs(obs), deterministic=True)
        got = bundle.run(obs)
        assert np.abs(got["action"] - np.clip(want, -1, 1)).max() < 1e-4
        q = obs["observation"][:7]
        target = np.clip(q + 0.05 * got["action"], limits[:, 0], limits[:, 1])
        assert np.abs(got["joint_target_rad"] - target).max() < 1e-5
    batch = bundle.run({k: np.stack([v, v]) for k, v in obs.items()})  # a batch of two
    assert batch["action"].shape == (2, 7)


def _copy(path: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(path, dst)
    return dst


def test_altered_incomplete_or_unknown_bundles_are_refused(bundle_dir: tuple[Path, Path], tmp_path: Path) -> None:
    _, path = bundle_dir
    b = _copy(path, tmp_path)
    with open(b / "policy.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(BundleError, match="SHA-256"):
        load_bundle(b)
    for change, needle in (
        (lambda m: m.pop("joint_names"), "joint_names is missing"),
        (lambda m: m.update(schema_version=1), "schema_version 1 is not 3; .*re-export the policy"),
        (lambda m: m.update(schema_version=4), "schema_version 4 is not 3; .*re-export the policy"),
        (lambda m: m.update(extra=1), r"unknown field\(s\) \['extra'\]"),
    ):
        shutil.rmtree(b)
        b = _copy(path, tmp_path)
        manifest = json.loads((b / "manifest.json").read_text())
        change(manifest)
        (b / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(BundleError, match=needle):
            load_bundle(b)
    with pytest.raises(BundleError, match="not a policy bundle"):
        load_bundle(tmp_path / "nothing")


def test_runtime_refuses_bad_inputs(bundle_dir: tuple[Path, Path]) -> None:
    bundle = load_bundle(bundle_dir[1])
    good = {s.name: np.zeros(s.shape, np.float32) for s in bundle.inputs}
    bundle.run(good)
    with pytest.raises(BundleError, match="non-finite"):
        bundle.run({**good, "observation": np.full_like(good["observation"], np.nan)})
    with pytest.raises(BundleError, match="must have shape"):
        bundle.run({**good, "desired_goal": np.zeros(4)})
    with pytest.raises(BundleError, match="missing"):
        bundle.run({k: v for k, v in good.items() if k != "achieved_goal"})
    with pytest.raises(BundleError, match="unknown input"):
        bundle.run({**good, "image_scene": np.zeros(3)})


def test_loading_a_bundle_needs_no_torch(bundle_dir: tuple[Path, Path]) -> None:
    code = (
        "import sys; from policies.bundle import load_bundle; import numpy as np; "
        f"b = load_bundle({str(bundle_dir[1])!r}); "
        "b.run({s.name: np.zeros(s.shape) for s in b.inputs}); "
        "bad = [m for m in ('torch', 'stable_baselines3', 'pickle', 'sim') if m in sys.modules]; "
        "print(bad); sys.exit(1 if set(bad) - {'pickle'} else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_unsupported_runs_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a finished run"):
        export_run(tmp_path)


def test_recurrent_policies_export_with_their_lstm_state(tmp_path: Path) -> None:
    import gymnasium as gym
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    import sim  # noqa: F401

    run = _short_run(
        tmp_path / "run",
        task="reach",
        agent="recurrent_ppo",
        settings={
            "n_steps": 64,
            "batch_size": 32,
            "policy_kwargs": {"net_arch": [16], "lstm_hidden_size": 8, "n_lstm_layers": 1},
        },
    )
    bundle = load_bundle(export_run(run, tmp_path / "bundle"))
    assert bundle.recurrent and bundle.manifest.policy.recurrent
    assert [s.shape for s in bundle.manifest.state] == [(1, 8), (1, 8)]
    model = RecurrentPPO.load(run / "model.zip", device="cpu")
    norm = VecNormalize.load(str(run / "vecnormalize.pkl"), DummyVecEnv([lambda: gym.make("Sim2Real/Reach-v0")]))
    env = gym.make("Sim2Real/Reach-v0", control="ee")
    obs, _ = env.reset(seed=1)
    state, sb3_state, start = bundle.initial_state(), None, np.ones(1, bool)
    for _ in range(8):  # the state carried over steps gives the same actions as SB3's predict
        want, sb3_state = model.predict(
            norm.normalize_obs(obs), state=sb3_state, episode_start=start, deterministic=True
        )
        start = np.zeros(1, bool)
        out = bundle.run({**obs, **state})
        assert np.abs(out["action"] - np.clip(want, -1, 1)).max() < 1e-4
        state = {"lstm_h": out["lstm_h_out"], "lstm_c": out["lstm_c_out"]}
        obs, *_ = env.step(out["action"])
    with pytest.raises(BundleError, match="missing"):
        bundle.run(obs)  # the state is an input like any other


def test_a_bundle_runs_the_simulated_task_through_the_runtime(bundle_dir: tuple[Path, Path]) -> None:
    from sim2real.export_run import evaluate_bundle

    result = evaluate_bundle(bundle_dir[1], episodes=2, backend="pybullet", randomization="object_dynamics")
    assert result["backend"] == "pybullet" and set(result) >= {"nominal", "randomized"}
    assert 0.0 <= result["randomized"]["success"] <= 1.0 and result["randomized"]["episodes"] == 2


@pytest.fixture(scope="module")
def pixel_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """64 steps of a CNN + LSTM policy (RecurrentPPO on 84x84 scene images plus proprioception), joint control."""
    return _short_run(
        tmp_path_factory.mktemp("pixels") / "run",
        task="reach",
        agent="recurrent_ppo",
        obs_mode="pixels",
        control="joint",
        settings={"n_steps": 64, "batch_size": 32, "policy_kwargs": {"net_arch": [16], "lstm_hidden_size": 8}},
    )


def test_pixel_lstm_policies_export_with_their_cnn(pixel_run: Path, tmp_path: Path) -> None:
    """At the trained image size the graph's preprocessing is the identity: actions equal SB3's over 6 steps."""
    import gymnasium as gym
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    import sim  # noqa: F401

    bundle = load_bundle(export_run(pixel_run, tmp_path / "bundle"))
    spec = {s.name: s for s in bundle.inputs}["image_scene"]
    assert spec.shape == (84, 84, 3) and spec.dtype == "uint8"
    assert bundle.manifest.camera is not None and bundle.manifest.camera.width == 84
    model = RecurrentPPO.load(pixel_run / "model.zip", device="cpu")
    make = lambda: gym.make("Sim2Real/Reach-v0", obs_mode="pixels", control="joint")  # noqa: E731
    norm = VecNormalize.load(str(pixel_run / "vecnormalize.pkl"), DummyVecEnv([make]))
    env = make()
    obs, _ = env.reset(seed=2)
    state, sb3_state, start = bundle.initial_state(), None, np.ones(1, bool)
    for _ in range(6):
        sb3_obs = norm.normalize_obs({k: v[None] for k, v in obs.items()})
        sb3_obs["image_scene"] = np.transpose(sb3_obs["image_scene"], (0, 3, 1, 2))  # SB3 trained channel-first
        want, sb3_state = model.predict(sb3_obs, state=sb3_state, episode_start=start, deterministic=True)
        start = np.zeros(1, bool)
        out = bundle.run({**obs, **state})
        assert np.abs(out["action"] - np.clip(want[0], -1, 1)).max() < 1e-4
        state = {"lstm_h": out["lstm_h_out"], "lstm_c": out["lstm_c_out"]}
        obs, *_ = env.step(out["action"])


def test_pixel_bundles_take_the_deployed_camera_resolution(pixel_run: Path, tmp_path: Path) -> None:
    from sim.camera import intrinsics

    bundle = load_bundle(export_run(pixel_run, tmp_path / "bundle640", camera_size=(640, 480)))
    cam = bundle.manifest.camera
    assert cam is not None and (cam.width, cam.height, cam.trained_width, cam.trained_height) == (640, 480, 84, 84)
    assert np.allclose(cam.k, intrinsics(50.0, 640, 480))
    spec = {s.name: s for s in bundle.inputs}["image_scene"]
    assert isinstance(spec, ObservationInput) and spec.shape == (480, 640, 3)
    assert spec.preprocessing == ImagePreprocessing(
        crop_yxhw=(0, 80, 480, 480),  # the centre square keeps the vertical field of view
        pool=5,
        resize_hw=(84, 84),
    )
    frame = np.zeros((480, 640, 3), np.uint8)
    out = bundle.run({"observation": np.zeros(21), "achieved_goal": np.zeros(3), "desired_goal": np.zeros(3),
                      "image_scene": frame, **bundle.initial_state()})  # fmt: skip
    assert out["joint_target_rad"].shape == (7,)
    with pytest.raises(BundleError, match=r"\(480, 640, 3\)"):
        bundle.run({**{s.name: np.zeros(s.shape) for s in bundle.inputs},
                    "image_scene": np.zeros((84, 84, 3), np.uint8)})  # fmt: skip


@pytest.mark.parametrize("backend", ["mujoco", "pybullet"])
def test_camera_frames_preprocess_like_the_training_renders(backend: str) -> None:
    """A 640x480 frame of the scene camera, cropped, pooled and resampled by the graph's preprocessing, looks
    like the 84x84 frame the policy was trained on (same state, same camera)."""
    import gymnasium as gym
    import torch

    import sim  # noqa: F401
    from policies.export import image_preprocessing, preprocess_image

    frames = {}
    for w, h in ((84, 84), (640, 480)):
        env = gym.make("Sim2Real/Reach-v0", backend=backend, obs_mode="pixels", image_size=(w, h))
        obs, _ = env.reset(seed=4)
        frames[(w, h)] = obs["image_scene"]
        env.close()
    prep = image_preprocessing((480, 640), (84, 84))
    got = preprocess_image(torch.as_tensor(frames[(640, 480)][None]), prep)[0].permute(1, 2, 0).numpy()
    err = np.abs(got - frames[(84, 84)].astype(np.float32))
    assert err.mean() < 6.0, err.mean()  # out of 255: anti-aliasing differs, the picture does not
    shifted = np.abs(np.roll(got, 4, axis=1) - frames[(84, 84)].astype(np.float32)).mean()
    assert shifted > err.mean()  # a 4-pixel misalignment would show
