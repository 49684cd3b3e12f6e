"""Stopping a training run cleanly on SIGINT (Ctrl-C) or SIGTERM: the signal sets a flag the learning loop
polls; the trainer checkpoints the step it reached and raises TrainingInterrupted."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Any


class TrainingInterrupted(Exception):
    """SIGINT or SIGTERM stopped a training run; the step it reached was checkpointed first."""

    def __init__(self, run: Path, step: int, checkpoint: Path, signal_name: str) -> None:
        super().__init__(f"{signal_name}: stopped at step {step}; checkpoint {checkpoint}")
        self.run, self.step, self.checkpoint, self.signal_name = run, step, checkpoint, signal_name


class StopOnSignal:
    """While entered (main thread only), SIGINT and SIGTERM set `signum` instead of killing: the training loop
    polls it, stops after the env step it is in and writes a checkpoint. A second signal aborts at once."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.saving = False
        """True while the final checkpoint is written: further signals wait for it (only SIGKILL cuts it short)."""
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.saving:
            print(f"\n{signal.Signals(signum).name}: writing the checkpoint, a moment", file=sys.stderr, flush=True)
            return
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        print(
            f"\n{signal.Signals(signum).name}: stopping after this step and writing a checkpoint "
            "(signal again to abort without one)",
            file=sys.stderr,
            flush=True,
        )

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()
