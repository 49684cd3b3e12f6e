"""`sim2real collect demos`: demonstration datasets from a scripted policy on randomized scenes (versioned, written
shard by shard, resumable), and their reader.

A dataset is a folder: `demos.json` (schema_version, what collected it, the env, the observation layout, the
shards) and `shard_NNNNN.npz` files, each holding whole episodes padded to the episode length:
`observation` (E, T+1, D), `achieved_goal` and `desired_goal` (E, T+1, 3) float32, `action` (E, T, A) float32,
`reward` (E, T) float32, `length` (E,) int32 (steps taken; an episode ends on success), `success` (E,) bool,
`seed` (E,) int64 (the reset seed: the same seed gives the same scene and episode).
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

DEMOS_SCHEMA_VERSION = 1
MANIFEST = "demos.json"
#: Scripted demonstrators: name -> the task they solve.
SCRIPTS = {"pusher": "push"}
#: Episode length of the tasks (their TimeLimit).
EPISODE_STEPS = 50


class DemosError(ValueError):
    """A dataset that cannot be written or read as asked; the message names the file or setting."""


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


@dataclass
class Demos:
    """A loaded dataset: the manifest and every shard's arrays concatenated along episodes."""

    manifest: dict[str, Any]
    arrays: dict[str, np.ndarray]

    @property
    def n_episodes(self) -> int:
        return int(self.arrays["length"].shape[0])

    @property
    def n_transitions(self) -> int:
        return int(self.arrays["length"].sum())


def _action(script: str) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    from sim2real.scripted_push import scripted_push_action

    return lambda obs: scripted_push_action(obs["observation"], obs["achieved_goal"], obs["desired_goal"])


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


def _read_manifest(out: Path) -> dict[str, Any] | None:
    """The dataset manifest in `out`, None for a new or empty folder; DemosError for anything else there."""
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return None
    if not out.is_dir():
        raise DemosError(f"--out {out} is a file, not a dataset folder")
    path = out / MANIFEST
    if not path.is_file():
        raise DemosError(f"--out {out} holds files but no {MANIFEST}: not a demonstration dataset; choose a new folder")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DemosError(f"{path}: not JSON ({e})") from None
    version = manifest.get("schema_version") if isinstance(manifest, dict) else None
    if version != DEMOS_SCHEMA_VERSION:
        raise DemosError(f"{path}: schema_version {version!r}; this version reads {DEMOS_SCHEMA_VERSION}")
    return manifest


def collect_demos(cfg: CollectDemosConfig, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Collect (or continue) the dataset of `cfg`; returns its manifest. `progress(kept, wanted)` after each
    episode. A collection stopped midway keeps its whole shards; the same command continues after them."""
    from sim.env_spec import EnvSpec, make_env

    cfg.check()
    out = Path(cfg.out)
    manifest = _read_manifest(out)
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
    act = _action(cfg.script)
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


def load_demos(path: str | Path) -> Demos:
    """Read a dataset folder written by collect_demos; DemosError names the file that is missing or wrong."""
    folder = Path(path)
    manifest = _read_manifest(folder)
    if manifest is None:
        raise DemosError(f"{folder}: no demonstration dataset there (empty or missing)")
    parts: dict[str, list[np.ndarray]] = {}
    for shard in manifest["shards"]:
        file = folder / shard["file"]
        try:
            with np.load(file) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError) as e:
            raise DemosError(f"{file}: unreadable shard ({e})") from None
        if arrays.get("length", np.empty(0)).shape != (shard["episodes"],):
            raise DemosError(f"{file}: holds {arrays.get('length', np.empty(0)).shape} episodes, {MANIFEST} says "
                             f"{shard['episodes']}")  # fmt: skip
        for k, v in arrays.items():
            parts.setdefault(k, []).append(v)
    if not parts:
        raise DemosError(f"{folder}: the dataset has no shards yet")
    return Demos(manifest, {k: np.concatenate(v) for k, v in parts.items()})


def check_demos_for(demos_path: str, task: str, control: str, obs_mode: str) -> Demos:
    """The dataset at `demos_path`, checked against the run it is to train (same task, control and observation);
    DemosError naming what differs."""
    demos = load_demos(demos_path)
    env = demos.manifest.get("env", {})
    want = {"id": f"Sim2Real/{''.join(w.capitalize() for w in task.split('_'))}-v0", "control": control,
            "obs_mode": obs_mode}  # fmt: skip
    wrong = {k: (env.get(k), v) for k, v in want.items() if env.get(k) != v}
    if wrong:
        raise DemosError(f"--demos {demos_path}: collected for another env {wrong} (dataset's, run's)")
    return demos


def prefill_replay_buffer(buffer: Any, demos: Demos) -> int:
    """Add the demonstrations to an SB3 (HER) replay buffer of `buffer.n_envs` env columns, as if those envs had
    played them: episodes are dealt round-robin to the columns and streamed step by step; so that every column
    ends at an episode boundary, each stops after the shortest column's transitions (its episode then ends as a
    time-limit truncation, which HER samples like any episode). Returns the transitions added."""
    a = demos.arrays
    n_envs = int(buffer.n_envs)
    columns: list[list[tuple[int, int]]] = [[] for _ in range(n_envs)]  # (episode, step) per transition
    for e in range(demos.n_episodes):
        columns[e % n_envs].extend((e, t) for t in range(int(a["length"][e])))
    steps = min(len(c) for c in columns)
    keys = ("observation", "achieved_goal", "desired_goal")
    for i in range(steps):
        rows = [c[i] for c in columns]
        obs = {k: np.stack([a[k][e, t] for e, t in rows]) for k in keys}
        nxt = {k: np.stack([a[k][e, t + 1] for e, t in rows]) for k in keys}
        last = [t + 1 == int(a["length"][e]) for e, t in rows]
        cut = [i + 1 == steps for _ in rows]  # the column's final transition: end its episode here
        done = np.array([lst or c for lst, c in zip(last, cut)])
        truncated = [bool(d) and not (lst and bool(a["success"][e])) for d, lst, (e, _) in zip(done, last, rows)]
        infos = [{"TimeLimit.truncated": tr} for tr in truncated]
        buffer.add(obs, nxt, np.stack([a["action"][e, t] for e, t in rows]),
                   np.array([a["reward"][e, t] for e, t in rows]), done, infos)  # fmt: skip
    return steps * n_envs
