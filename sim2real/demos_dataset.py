"""Demonstration datasets on disk (the format `sim2real collect demos` writes): the reader, the check against a
run's env, and the replay-buffer prefill `sim2real train --demos` uses. numpy only (SB3's buffer is passed in).

A dataset is a folder: `demos.json` (schema_version, what collected it, the env, the observation layout, the
shards) and `shard_NNNNN.npz` files, each holding whole episodes padded to the episode length:
`observation` (E, T+1, D), `achieved_goal` and `desired_goal` (E, T+1, 3) float32, `action` (E, T, A) float32,
`reward` (E, T) float32, `length` (E,) int32 (steps taken; an episode ends on success), `success` (E,) bool,
`seed` (E,) int64 (the reset seed: the same seed gives the same scene and episode).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DEMOS_SCHEMA_VERSION = 1
MANIFEST = "demos.json"
#: Episode length of the tasks (their TimeLimit).
EPISODE_STEPS = 50


class DemosError(ValueError):
    """A dataset that cannot be written or read as asked; the message names the file or setting."""


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


def read_manifest(out: Path) -> dict[str, Any] | None:
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


def load_demos(path: str | Path) -> Demos:
    """Read a dataset folder written by collect_demos; DemosError names the file that is missing or wrong."""
    folder = Path(path)
    manifest = read_manifest(folder)
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


def demo_buffer(buffer: Any, demos: Demos, obs_layout: int = 1) -> Any:
    """A replay buffer of the demonstrations alone, of `buffer`'s class and settings (spaces, env, HER strategy,
    goal-relative slice) and one env column, filled with every episode: what policies.her_buffer.HerBuffer's
    attach_demos takes."""
    own = type(buffer)(
        demos.n_transitions + 1,
        buffer.observation_space,
        buffer.action_space,
        env=buffer.env,
        device=buffer.device,
        n_envs=1,
        n_sampled_goal=buffer.n_sampled_goal,
        goal_selection_strategy=buffer.goal_selection_strategy,
        copy_info_dict=buffer.copy_info_dict,
        goal_relative_slice=buffer.goal_relative_slice,
    )
    prefill_replay_buffer(own, demos, obs_layout)
    return own


def prefill_replay_buffer(buffer: Any, demos: Demos, obs_layout: int = 1) -> int:
    """Add the demonstrations to an SB3 (HER) replay buffer of `buffer.n_envs` env columns, as if those envs had
    played them: episodes are dealt round-robin to the columns and streamed step by step; so that every column
    ends at an episode boundary, each stops after the shortest column's transitions (its episode then ends as a
    time-limit truncation, which HER samples like any episode). Datasets hold layout-1 observations; `obs_layout`
    is the run's (sim.observation.with_layout builds it from them). Returns the transitions added."""
    a = demos.arrays
    if obs_layout != 1:
        from sim.observation import with_layout

        vec = with_layout(a["observation"], a["achieved_goal"], a["desired_goal"], True, obs_layout)
        a = {**a, "observation": vec}
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
