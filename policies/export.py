"""Export a trained SB3 policy to a bundle: one ONNX graph of the inference path and a JSON manifest.

The graph takes the raw observation arrays, applies the observation normaliser (baked in as constants), runs the
policy deterministically and outputs `action` in [-1, 1]; with `joint_target` settings it also outputs
`joint_target_rad`, the joint-position targets (measured joints + step x action, clamped to the limits). Export
runs the torch model and the ONNX graph on the same inputs and refuses a bundle where they differ by more than
1e-4. Bundles are written atomically (temp folder, then rename).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from policies.bundle import MANIFEST, ONNX, PolicyBundle, load_bundle, sha256_file
from policies.manifest import (
    ActionSpec,
    ImagePreprocessing,
    Manifest,
    Normalization,
    Observation,
    ObservationInput,
    OutputSpec,
    StateSpec,
)
from randomization.atomic_files import publish_dir, staged_dir, write_atomic

#: Largest |torch - onnx| accepted at export.
PARITY_TOLERANCE = 1e-4


class ExportError(RuntimeError):
    """The policy cannot be exported (unsupported kind) or its ONNX graph disagrees with torch."""


#: The files a bundle folder holds; a folder with anything else is not one and export never replaces it.
BUNDLE_FILES = frozenset({MANIFEST, ONNX})


def check_bundle_target(out_dir: str | Path, force: bool = False) -> None:
    """ExportError unless a bundle may be written to `out_dir`: a new path, an empty folder, or (force=True) a
    folder holding a bundle and nothing else. Export never replaces a file or a folder of other things."""
    out = Path(out_dir)
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise ExportError(f"--out {out} exists and is not a folder; choose another --out")
    if not out.exists():
        return
    names = {p.name for p in out.iterdir()}
    if not names:
        return
    others = sorted(names - BUNDLE_FILES)
    if others or MANIFEST not in names:
        raise ExportError(
            f"--out {out} exists and is not a policy bundle (it holds {others[:5] or sorted(names)}); export never "
            "replaces other files: choose a new --out"
        )
    if not force:
        raise ExportError(f"--out {out} already holds a policy bundle; pass --force to replace it")


def image_preprocessing(camera_hw: tuple[int, int], trained_hw: tuple[int, int]) -> ImagePreprocessing:
    """How a camera frame (H, W) becomes the trained image (h, w): a centre crop to the trained aspect ratio (same
    vertical field of view when the width is cropped), an integer average pool, then bilinear resampling."""
    (ch, cw), (th, tw) = camera_hw, trained_hw
    if ch < th or cw < tw:
        raise ExportError(f"camera {cw}x{ch} is smaller than the trained images {tw}x{th}")
    crop_h, crop_w = (ch, round(ch * tw / th)) if cw * th >= ch * tw else (round(cw * th / tw), cw)
    y0, x0 = (ch - crop_h) // 2, (cw - crop_w) // 2
    pool = max(1, min(crop_h // th, crop_w // tw))
    return ImagePreprocessing(crop_yxhw=(y0, x0, crop_h, crop_w), pool=pool, resize_hw=(th, tw))


def preprocess_image(x: Any, prep: ImagePreprocessing) -> Any:
    """Camera frames (B, H, W, 3) uint8 RGB -> (B, 3, h, w) float 0..255 as rendered in training (torch, traced
    into the graph): the crop, pool and resampling of image_preprocessing()."""
    import torch.nn.functional as F

    y0, x0, h, w = prep.crop_yxhw
    x = x[:, y0 : y0 + h, x0 : x0 + w, :].permute(0, 3, 1, 2).float()
    if prep.pool > 1:
        x = F.avg_pool2d(x, prep.pool)
    return F.interpolate(x, size=tuple(prep.resize_hw), mode="bilinear", align_corners=False)


def _graph(
    policy: Any,
    keys: list[str],
    normalization: dict[str, Any] | None,
    joint_target: dict[str, Any] | None,
    images: dict[str, ImagePreprocessing] | None = None,
) -> Any:
    """The torch module that the ONNX graph is traced from. `images`: per image key, image_preprocessing()."""
    import torch
    from stable_baselines3.common.policies import BaseModel

    class Inference(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.policy = policy
            self.keys = keys
            self.recurrent = hasattr(policy, "lstm_actor")
            self.norm: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
            if normalization is not None:
                eps, self.clip = float(normalization["epsilon"]), float(normalization["clip_obs"])
                for k, stats in normalization["keys"].items():
                    mean = torch.as_tensor(np.asarray(stats["mean"], np.float32))
                    std = torch.as_tensor(np.sqrt(np.asarray(stats["var"], np.float64) + eps).astype(np.float32))
                    self.norm[k] = (mean, std)
            if joint_target is not None:
                q0, q1 = joint_target["q_slice"]
                self.q_slice = slice(int(q0), int(q1))
                self.step = float(joint_target["step_rad"])
                limits = np.asarray(joint_target["limits_rad"], np.float32)
                self.lo, self.hi = torch.as_tensor(limits[:, 0]), torch.as_tensor(limits[:, 1])
                self.n_joints = q1 - q0

        def forward(self, *xs: torch.Tensor) -> Any:
            raw = dict(zip(self.keys, xs[: len(self.keys)]))
            obs = {}
            for k, x in raw.items():
                if images and k in images:
                    x = preprocess_image(x, images[k])
                elif k in self.norm:
                    mean, std = self.norm[k]
                    x = torch.clamp((x - mean) / std, -self.clip, self.clip)
                obs[k] = x
            state: tuple[torch.Tensor, ...] = ()
            if self.recurrent:  # state in and out as (B, layers, hidden); the LSTM wants (layers, B, hidden)
                h, c = (x.transpose(0, 1).contiguous() for x in xs[len(self.keys) :])
                policy = self.policy
                if hasattr(policy, "recurrent_step"):  # our own recurrent agents (policies.recurrent_sac_her)
                    action, (h, c) = policy.recurrent_step(obs, (h, c))
                else:
                    # BaseModel's extractor (ActorCriticPolicy overrides it to run both actor and critic extractors)
                    features = BaseModel.extract_features(policy, obs, policy.pi_features_extractor)
                    out, (h, c) = policy.lstm_actor(features.unsqueeze(0), (h, c))
                    latent = policy.mlp_extractor.forward_actor(out.squeeze(0))
                    action = policy.action_net(latent)  # the Gaussian's mean: the deterministic action
                state = (h.transpose(0, 1), c.transpose(0, 1))
            else:
                action = self.policy._predict(obs, deterministic=True)
            action = torch.clamp(action, -1.0, 1.0)
            outs: tuple[torch.Tensor, ...] = (action,)
            if joint_target is not None:
                q = raw["observation"][:, self.q_slice]
                outs += (torch.maximum(torch.minimum(q + self.step * action[:, : self.n_joints], self.hi), self.lo),)
            outs += state
            return outs[0] if len(outs) == 1 else outs

    return Inference().eval()


def export_bundle(
    model: Any,
    out_dir: str | Path,
    manifest_fields: Mapping[str, Any],
    normalization: dict[str, Any] | None = None,
    joint_target: dict[str, Any] | None = None,
    seed: int = 0,
    camera_hw: tuple[int, int] | None = None,
    force: bool = False,
) -> Path:
    """Write the bundle of `model` (an SB3 or SBX algorithm with dict observations, feed-forward or LSTM) to out_dir.

    Image observations (`image_<camera>`, trained channel-first (3, h, w)) become graph inputs (H, W, 3) in RGB
    0..255 at the deployed camera's `camera_hw` (default: the trained size); the graph crops, pools and resamples.

    `manifest_fields`: the policies.manifest.Manifest fields that describe the run rather than the graph, as typed
    values (policy, env, joint_names, joint_limits_rad, robot, goal, control_rate_hz, camera, randomization,
    source); the exporter fills created, observation, action, state, outputs and onnx_sha256, and writes
    Manifest.to_dict(). `normalization`: the run's obs_normalization.json data. `joint_target`: q_slice, step_rad,
    limits_rad for joint control. `out_dir` must be new or empty, or hold a bundle that `force` replaces
    (check_bundle_target).
    """
    import torch
    from gymnasium import spaces

    lstm = getattr(model.policy, "lstm_actor", None)
    state_specs: tuple[StateSpec, ...] = (
        ()
        if lstm is None
        else tuple(StateSpec(name=n, shape=(lstm.num_layers, lstm.hidden_size)) for n in ("lstm_h", "lstm_c"))
    )
    space = model.observation_space
    if not isinstance(space, spaces.Dict):
        raise ExportError(f"export takes dict observation policies, got {type(space).__name__}")
    keys = sorted(space.spaces)
    shapes = {k: tuple(space.spaces[k].shape or ()) for k in keys}
    images: dict[str, ImagePreprocessing] = {}
    for k in keys:
        if k.startswith("image_") and len(shapes[k]) == 3 and shapes[k][0] == 3:
            trained = (int(shapes[k][1]), int(shapes[k][2]))
            images[k] = image_preprocessing(camera_hw or trained, trained)
            shapes[k] = (*(camera_hw or trained), 3)
        elif len(shapes[k]) != 1:
            raise ExportError(f"observation {k!r} has shape {shapes[k]}: export takes vectors and (3, h, w) images")
    if len(images) > 1:
        raise ExportError(f"one camera per bundle; this policy observes {sorted(images)}")
    out = Path(out_dir)
    check_bundle_target(out, force)
    policy = model.policy
    if hasattr(policy, "actor_state"):  # an SBX agent: its JAX actor rebuilt in torch, checked against JAX
        from policies.sbx_agents import torch_actor

        try:
            policy = torch_actor(model)
        except ValueError as e:
            raise ExportError(str(e)) from None
    module = _graph(policy.to("cpu"), keys, normalization, joint_target, images)
    with staged_dir(out) as tmp:
        state_names = [s.name for s in state_specs]
        outputs = ["action"] + (["joint_target_rad"] if joint_target else []) + [f"{n}_out" for n in state_names]
        example = tuple(torch.zeros(1, *shapes[k], dtype=torch.uint8 if k in images else torch.float32) for k in keys)
        example += tuple(torch.zeros(1, *s.shape) for s in state_specs)
        torch.onnx.export(
            module,
            example,
            str(tmp / ONNX),
            input_names=keys + state_names,
            output_names=outputs,
            dynamic_axes={n: {0: "batch"} for n in keys + state_names + outputs},
            opset_version=17,
            dynamo=False,
        )
        n_act = int(np.prod(model.action_space.shape or (1,)))
        stats = normalization["keys"] if normalization is not None else {}
        observation = Observation(
            inputs=tuple(
                ObservationInput(
                    name=k,
                    shape=tuple(int(n) for n in shapes[k]),
                    dtype="uint8" if k in images else "float32",
                    normalization=_normalization(stats.get(k)),
                    units="RGB 0..255, row 0 at the top" if k in images else None,
                    preprocessing=images.get(k),
                )
                for k in keys
            ),
            normalization_epsilon=None if normalization is None else float(normalization["epsilon"]),
            normalization_clip=None if normalization is None else float(normalization["clip_obs"]),
        )
        joint_outputs = (
            ()
            if joint_target is None
            else (
                OutputSpec(
                    name="joint_target_rad",
                    shape=(joint_target["q_slice"][1] - joint_target["q_slice"][0],),
                    units="rad",
                    step_rad=float(joint_target["step_rad"]),
                ),
            )
        )
        manifest = Manifest(
            created=time.strftime("%Y-%m-%dT%H:%M:%S"),
            **manifest_fields,
            observation=observation,
            action=ActionSpec(name="action", shape=(n_act,), low=-1.0, high=1.0),
            state=state_specs,
            outputs=(
                OutputSpec(name="action", shape=(n_act,), units="normalised [-1, 1]"),
                *joint_outputs,
                *(OutputSpec(name=f"{s.name}_out", shape=s.shape, units="LSTM state") for s in state_specs),
            ),
            onnx_sha256=sha256_file(tmp / ONNX),
        )
        write_atomic(tmp / MANIFEST, (json.dumps(manifest.to_dict(), indent=2) + "\n").encode())
        _check_parity(module, load_bundle(tmp), keys, seed, batch=4 if images else 64)
        _put_in_place(tmp, out, force)
    return out


def _put_in_place(tmp: Path, out: Path, force: bool) -> None:
    """Rename the finished bundle `tmp` to `out`; with force, the bundle already there (checked again now: only
    bundle files) is moved aside first and deleted only once the new one is in place."""
    check_bundle_target(out, force)
    old = None
    if out.exists() and any(out.iterdir()):
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
    publish_dir(tmp, out)
    if old is not None:
        for name in BUNDLE_FILES:
            (old / name).unlink(missing_ok=True)
        old.rmdir()  # only bundle files were there: anything else makes this fail rather than delete it


def _normalization(stats: Mapping[str, Any] | None) -> Normalization | None:
    """An input's statistics from obs_normalization.json (mean, var) as the manifest holds them; None without."""
    if stats is None:
        return None
    return Normalization(mean=tuple(float(v) for v in stats["mean"]), var=tuple(float(v) for v in stats["var"]))


def _check_parity(module: Any, bundle: PolicyBundle, keys: list[str], seed: int, batch: int = 64) -> None:
    """Torch and ONNX on the same inputs (around the manifest's normalisation statistics when known; images in
    0..255)."""
    import torch

    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in bundle.manifest.observation.inputs:
        shape = (batch, *spec.shape)
        stats = spec.normalization
        if spec.preprocessing is not None:
            feeds[spec.name] = rng.integers(0, 256, shape, dtype=np.uint8)
            continue
        elif stats is not None:
            x = np.asarray(stats.mean) + np.sqrt(np.asarray(stats.var)) * rng.standard_normal(shape)
        else:
            x = rng.standard_normal(shape)
        feeds[spec.name] = x.astype(np.float32)
    for state in bundle.manifest.state:
        feeds[state.name] = rng.standard_normal((batch, *state.shape)).astype(np.float32)
    got = bundle.run(feeds)
    names = keys + [s.name for s in bundle.manifest.state]
    with torch.no_grad():
        want = module(*[torch.as_tensor(feeds[k]) for k in names])
    want = want if isinstance(want, tuple) else (want,)
    for (name, value), ref in zip(got.items(), want):
        err = float(np.abs(value - ref.numpy()).max())
        if err > PARITY_TOLERANCE:
            raise ExportError(f"ONNX output {name!r} differs from torch by {err:.2e} (> {PARITY_TOLERANCE})")
