"""`sim2real collect demos`: demonstration datasets from a scripted policy on randomized scenes, versioned, written
shard by shard and resumable (the format and its reader: sim2real.demos_dataset).
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from randomization.atomic_files import write_atomic
from sim2real.demos_dataset import (
    DEMOS_SCHEMA_VERSION,
    EPISODE_STEPS,
    MANIFEST,
    DemosError,
    read_manifest,
)

#: Scripted demonstrators: name -> the task they solve.
SCRIPTS = {"pusher": "push"}


@dataclass(frozen=True)
class CollectDemosConfig:
    """What `sim2real collect demos` collects (its flags)."""

    out: str
    """The dataset folder: new or empty, or a dataset of these same settings to continue."""
    task: str = "push"
    """The task (the script must solve it)."""
    script: str = "pusher"
    """The scripted demonstrator (SCRIPTS)."""
    episodes: int = 100
    """Episodes in the finished dataset (kept ones, with successful_only)."""
    backend: str = "mujoco"
    """Physics engine."""
    randomization: str = "object_dynamics"
    """Randomization of the scenes (a preset or YAML; 'none' for nominal scenes): a fresh draw each episode."""
    seed: int = 0
    """Episode k is reset with seed + k (tried episodes, kept or not)."""
    successful_only: bool = False
    """Keep only the episodes the script solved."""
    shard_episodes: int = 50
    """Episodes per shard file (a stopped collection resumes after the last whole shard)."""

    def check(self) -> CollectDemosConfig:
        if self.script not in SCRIPTS:
            raise DemosError(f"--script {self.script!r}: known scripts are {sorted(SCRIPTS)}")
        if SCRIPTS[self.script] != self.task:
            raise DemosError(f"--script {self.script} solves {SCRIPTS[self.script]!r}, not --task {self.task!r}")
        if self.episodes < 1 or self.shard_episodes < 1:
            raise DemosError(f"--episodes and shard size must be >= 1, got {self.episodes}, {self.shard_episodes}")
        return self

    def settings(self) -> dict[str, Any]:
        """What a resumed collection must share with the one it continues (all but the episode count)."""
        d = asdict(self)
        d.pop("out")
        d.pop("episodes")
        return d


def _pusher(obs: dict[str, np.ndarray]) -> np.ndarray:
    from sim2real.scripted_push import scripted_push_action

    return scripted_push_action(obs["observation"], obs["achieved_goal"], obs["desired_goal"])


#: Scripted demonstrators: name -> the action it takes for an observation dict (SCRIPTS names their tasks).
ACTIONS: dict[str, Callable[[dict[str, np.ndarray]], np.ndarray]] = {"pusher": _pusher}


def _episode(env: Any, act: Callable[[dict[str, np.ndarray]], np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """One episode from reset(seed), padded to EPISODE_STEPS (pads repeat the last observation, zero actions)."""
    obs, info = env.reset(seed=seed)
    keys = ("observation", "achieved_goal", "desired_goal")
    seen = {k: [np.asarray(obs[k], np.float32)] for k in keys}
    actions, rewards = [], []
    success = False
    for _ in range(EPISODE_STEPS):
        a = np.asarray(act(obs), np.float32)
        obs, reward, terminated, truncated, info = env.step(a)
        actions.append(a)
        rewards.append(np.float32(reward))
        for k in keys:
            seen[k].append(np.asarray(obs[k], np.float32))
        success = bool(info.get("is_success", False))
        if terminated or truncated:
            break
    n = len(actions)
    out: dict[str, np.ndarray] = {k: np.stack(v + [v[-1]] * (EPISODE_STEPS - n)) for k, v in seen.items()}
    out["action"] = np.stack(actions + [np.zeros_like(actions[0])] * (EPISODE_STEPS - n))
    out["reward"] = np.array(rewards + [np.float32(0.0)] * (EPISODE_STEPS - n), np.float32)
    out["length"], out["success"], out["seed"] = np.array(n, np.int32), np.array(success), np.array(seed, np.int64)
    return out


def collect_demos(cfg: CollectDemosConfig, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Collect (or continue) the dataset of `cfg`; returns its manifest. `progress(kept, wanted)` after each
    episode. A collection stopped midway keeps its whole shards; the same command continues after them."""
    from sim.env_spec import EnvSpec, make_env

    cfg.check()
    out = Path(cfg.out)
    manifest = read_manifest(out)
    if manifest is not None and manifest.get("settings") != cfg.settings():
        diff = {k: (manifest.get("settings", {}).get(k), v) for k, v in cfg.settings().items()
                if manifest.get("settings", {}).get(k) != v}  # fmt: skip
        raise DemosError(f"--out {out} holds a dataset collected with other settings {diff} (theirs, yours): "
                         "continue it with the same settings, or choose a new folder")  # fmt: skip
    spec = EnvSpec(task=cfg.task, backend=cfg.backend, control="ee", obs_mode="state").check()
    randomization = None if cfg.randomization.lower() in ("", "none") else cfg.randomization
    if manifest is None:
        from sim.observation import field_slices

        layout = {k: [v.start, v.stop] for k, v in field_slices(True).items()}
        manifest = {"schema_version": DEMOS_SCHEMA_VERSION, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                    "written_by": "sim2real collect demos", "settings": cfg.settings(),
                    "env": {"id": spec.env_id, **spec.kwargs(), "randomization": randomization},
                    "episode_steps": EPISODE_STEPS, "observation_layout": layout, "shards": [], "tried": 0}  # fmt: skip
    kept = sum(s["episodes"] for s in manifest["shards"])
    tried = int(manifest["tried"])
    if kept >= cfg.episodes:
        return manifest
    env = make_env(spec, randomization)
    act = ACTIONS[cfg.script]
    batch: list[dict[str, np.ndarray]] = []
    try:
        while kept + len(batch) < cfg.episodes:
            ep = _episode(env, act, cfg.seed + tried)
            tried += 1
            if ep["success"] or not cfg.successful_only:
                batch.append(ep)
                if progress is not None:
                    progress(kept + len(batch), cfg.episodes)
            if len(batch) == cfg.shard_episodes or kept + len(batch) >= cfg.episodes:
                _write_shard(out, manifest, batch, tried)
                kept += len(batch)
                batch = []
            elif cfg.successful_only and tried > 20 * cfg.episodes + 100:
                raise DemosError(f"the {cfg.script} solved {kept + len(batch)} of {tried} episodes; "
                                 f"--successful-only cannot reach {cfg.episodes}")  # fmt: skip
    finally:
        env.close()
    return manifest


def _write_shard(out: Path, manifest: dict[str, Any], batch: list[dict[str, np.ndarray]], tried: int) -> None:
    """Write one shard, then the manifest that lists it (atomically both: a reader never sees half of either)."""
    name = f"shard_{len(manifest['shards']):05d}.npz"
    arrays = {k: np.stack([ep[k] for ep in batch]) for k in batch[0]}
    buf = io.BytesIO()
    np.savez_compressed(buf, allow_pickle=False, **arrays)
    write_atomic(out / name, buf.getvalue())
    manifest["shards"].append({"file": name, "episodes": len(batch), "successes": int(arrays["success"].sum()),
                               "transitions": int(arrays["length"].sum())})  # fmt: skip
    manifest["tried"] = tried
    write_atomic(out / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
