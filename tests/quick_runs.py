"""Short, cheap training runs for tests: every evaluation, checkpoint and GIF off, small networks per agent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sim2real.train import TrainConfig, train, train_config

#: Settings that make a 200-step run cheap while still updating the networks.
SMALL = {
    "tqc_her": {
        "learning_starts": 50,
        "batch_size": 32,
        "buffer_size": 5000,
        "policy_kwargs": {"net_arch": [32, 32], "n_critics": 1},
    },
    "sac_her": {"learning_starts": 50, "batch_size": 32, "buffer_size": 5000, "policy_kwargs": {"net_arch": [32, 32]}},
    "recurrent_sac_her": {
        "learning_starts": 50,
        "batch_size": 4,
        "buffer_size": 5000,
        "policy_kwargs": {"net_arch": [32], "lstm_hidden_size": 16},
    },
    "ppo": {"n_steps": 64, "batch_size": 32, "policy_kwargs": {"net_arch": [32, 32]}},
    "recurrent_ppo": {
        "n_steps": 64,
        "batch_size": 32,
        "policy_kwargs": {"net_arch": [32, 32], "lstm_hidden_size": 16, "n_lstm_layers": 1},
    },
}


def quick_config(out: Path, **kw: Any) -> TrainConfig:
    """A 200-step config writing to `out` (keywords override; `settings` default to SMALL for the agent)."""
    base: dict[str, Any] = {
        "steps": 200,
        "eval_every_steps": 0,
        "eval_episodes": 1,
        "checkpoint_every_steps": 0,
        "gif": False,
        "out": str(out),
    }
    base.update(kw)
    base.setdefault("settings", SMALL.get(base.get("agent", "tqc_her"), {}))
    return train_config(**base)


def quick_run(out: Path, **kw: Any) -> Path:
    """Train quick_config(out, **kw) without a progress bar; the run folder."""
    return train(quick_config(out, **kw), progress=False)
