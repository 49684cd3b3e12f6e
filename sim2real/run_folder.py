"""The rules of a run folder: a fresh run starts only in a new or empty folder, and a resume continues only the
same experiment (a larger budget is the one change allowed) from a checkpoint that verifies."""

from __future__ import annotations

from pathlib import Path

from sim2real.checkpoints import Checkpoint, CheckpointError, load_latest
from sim2real.run_lock import LOCK_FILE
from sim2real.train_config import ConfigError, TrainConfig, resume_changes, saved_config


def check_fresh_folder(run: Path) -> None:
    """ConfigError unless `run` is new or empty: a fresh run never writes into a run or a folder of other files."""
    if run.exists() and not run.is_dir():
        raise ConfigError(f"--out {run} is a file, not a folder")
    if saved_config(run) is not None:
        raise ConfigError(f"{run} already holds a run; pass --resume to continue it or choose another --out")
    others = sorted(p.name for p in run.iterdir() if p.name != LOCK_FILE) if run.is_dir() else []
    if others:
        raise ConfigError(
            f"--out {run} is not empty and is not a sim2real run (it holds {others[:5]}); choose a new or empty folder"
        )


def resume_point(cfg: TrainConfig, run: Path) -> tuple[Checkpoint, bool]:
    """The checkpoint to continue `run` from, and whether the budget grows (config.json is then rewritten);
    ConfigError for any other change, a finished run, or a run with no checkpoint."""
    saved = saved_config(run) or {}
    changes = resume_changes(saved, cfg)
    if changes:
        raise ConfigError(
            f"--resume may change only --steps (to a larger budget), but this would change {'; '.join(changes)}. "
            "Resume with the run's own settings (flags left out keep them), or train a new run with another --out"
        )
    try:
        ckpt, warnings = load_latest(run)
    except CheckpointError as e:
        raise ConfigError(
            f"--resume: {e} (a run stopped before its first checkpoint cannot resume: delete {run} yourself or "
            "choose another --out)"
        ) from None
    for w in warnings:
        print(f"warning: skipped a checkpoint that does not verify: {w}")
    saved_steps, steps = int(saved.get("steps") or 0), int(cfg.steps or 0)
    if steps < saved_steps:
        raise ConfigError(f"--resume: --steps {steps} is fewer than the run's budget of {saved_steps}; resume may only "
                          "raise it")  # fmt: skip
    finished = (run / "summary.json").is_file() and (run / "model.zip").is_file() and ckpt.step >= steps
    if finished:
        raise ConfigError(
            f"--resume: {run} has finished its {saved_steps} steps; pass a larger --steps to train on (nothing changed)"
        )
    if steps > saved_steps:
        print(f"extending {run} from {saved_steps} to {steps} steps (config.json records the new budget)")
    return ckpt, steps > saved_steps
