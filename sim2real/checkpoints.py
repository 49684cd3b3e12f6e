"""Training checkpoints written atomically: a folder per checkpoint, complete or absent, with a manifest.

A checkpoint is built in a hidden temp folder (model with its optimizer, optional replay buffer, observation
normaliser, randomizer state, random-generator states, manifest with a SHA-256 per file), fsynced, renamed to
`checkpoints/step-<N>`, and only then named in `checkpoints/LATEST` (itself replaced atomically). A kill at any
moment leaves either the previous checkpoint as LATEST or the new one complete; loading verifies every hash and
falls back to the newest checkpoint that verifies.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from policies.bundle import sha256_file
from randomization.atomic_files import publish_dir, staged_dir
from sim2real.artifacts import write_atomic, write_json

SCHEMA_VERSION = 1
MODEL = "model.zip"
REPLAY = "replay_buffer.pkl"
VECNORM = "vecnormalize.pkl"
RANDOMIZATION = "randomization.json"
RNG = "rng.pt"


class CheckpointError(RuntimeError):
    """No usable checkpoint (missing, corrupt, or from another run)."""


@dataclass(frozen=True)
class Checkpoint:
    """A verified checkpoint folder and what its manifest says."""

    path: Path
    step: int
    manifest: dict[str, Any]

    def file(self, name: str) -> Path | None:
        """Path of a stored file, or None when this checkpoint does not hold it."""
        return self.path / name if name in self.manifest["files"] else None


def save_checkpoint(
    run_dir: Path,
    step: int,
    model: Any,
    randomization_state: dict[str, Any] | None,
    vecnormalize: Any | None = None,
    save_replay_buffer: bool = False,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write checkpoint `step` of `model` (an SB3 algorithm) under run_dir/checkpoints; returns its folder."""
    import numpy as np
    import torch

    root = run_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:09d}"
    with staged_dir(final) as tmp:
        model.save(tmp / MODEL)
        if save_replay_buffer and getattr(model, "replay_buffer", None) is not None:
            model.save_replay_buffer(tmp / REPLAY)
        if vecnormalize is not None:
            vecnormalize.save(str(tmp / VECNORM))
        if randomization_state is not None:
            write_json(tmp / RANDOMIZATION, randomization_state)
        # SB3 draws replay batches from the legacy global numpy generator: its state is part of the run
        torch.save({"torch": torch.get_rng_state(), "numpy": np.random.get_state()}, tmp / RNG)  # noqa: NPY002
        files = {p.name: sha256_file(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "step": step,
            "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "files": files,
            **(extra or {}),
        }
        write_json(tmp / "manifest.json", manifest)
        if final.exists():  # this step again (a resumed run's final checkpoint): this process's own folder
            shutil.rmtree(final)
        publish_dir(tmp, final)
        write_atomic(root / "LATEST", final.name.encode())
    return final


def verify(path: Path) -> Checkpoint:
    """The checkpoint at `path` if its manifest is readable and every file matches its hash."""
    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path}: no readable manifest.json ({e})") from None
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise CheckpointError(f"{path}: schema_version {manifest.get('schema_version')!r}, expected {SCHEMA_VERSION}")
    for name, digest in manifest.get("files", {}).items():
        f = path / name
        if not f.is_file():
            raise CheckpointError(f"{path}: {name} is missing")
        if sha256_file(f) != digest:
            raise CheckpointError(f"{path}: {name} does not match its SHA-256 (truncated or altered)")
    if MODEL not in manifest.get("files", {}):
        raise CheckpointError(f"{path}: holds no {MODEL}")
    return Checkpoint(path, int(manifest["step"]), manifest)


def load_latest(run_dir: Path) -> tuple[Checkpoint, list[str]]:
    """The newest verified checkpoint of a run, and warnings about newer ones that failed verification."""
    root = run_dir / "checkpoints"
    if not root.is_dir():
        raise CheckpointError(f"{run_dir}: no checkpoints folder; nothing to resume")
    named = (root / "LATEST").read_text().strip() if (root / "LATEST").is_file() else None
    candidates = sorted((p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-")), reverse=True)
    if named and (root / named) in candidates:  # LATEST first, then the others newest first
        candidates.remove(root / named)
        candidates.insert(0, root / named)
    warnings: list[str] = []
    for path in candidates:
        try:
            return verify(path), warnings
        except CheckpointError as e:
            warnings.append(str(e))
    raise CheckpointError(f"{run_dir}: no checkpoint verifies; " + ("; ".join(warnings) or "none written yet"))


def restore_rng(ckpt: Checkpoint) -> None:
    """Put back the global torch and numpy generator states saved with the checkpoint (SB3 samples replay
    batches and policy noise from them), so a resumed run makes the same next update."""
    import numpy as np
    import torch

    path = ckpt.file(RNG)
    if path is None:
        return
    state = torch.load(path, weights_only=False)
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
