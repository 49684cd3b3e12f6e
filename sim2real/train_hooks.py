"""What runs inside SB3's learning loop on env-step counts: periodic evaluation, checkpoints, randomization
metrics to TensorBoard, the progress bar, and the stop that SIGINT/SIGTERM request."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback


def next_multiple(done: int, every: int) -> int:
    """The first multiple of `every` after `done` (0 when `every` is 0: never)."""
    return (done // every + 1) * every if every else 0


class TrainHooks(BaseCallback):
    """Evaluation every `eval_every` env steps (`evaluate(step)` returns the row it recorded), a checkpoint every
    `checkpoint_every` (`checkpoint(step)`), the sampler's metrics() every 1000 steps, a progress bar; training
    stops at the first step after `should_stop()` turns true."""

    def __init__(
        self,
        total_steps: int,
        done_steps: int,
        eval_every: int,
        checkpoint_every: int,
        evaluate: Callable[[int], dict[str, float]],
        checkpoint: Callable[[int], Path],
        should_stop: Callable[[], bool],
        sampler: Any = None,
        n_envs: int = 1,
        progress: bool = True,
    ) -> None:
        super().__init__()
        self.total_steps, self.progress, self.n_envs = total_steps, progress, n_envs
        self.eval_every, self.checkpoint_every = eval_every, checkpoint_every
        self.evaluate, self.checkpoint, self.should_stop, self.sampler = evaluate, checkpoint, should_stop, sampler
        self.next_eval = next_multiple(done_steps, eval_every)
        self.next_ckpt = next_multiple(done_steps, checkpoint_every)
        self.done_steps = done_steps
        self.bar: Any = None
        self.recent: list[float] = []
        self.last_eval: dict[str, float] | None = None

    def _on_training_start(self) -> None:
        if self.progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total_steps, initial=self.done_steps, unit="step", dynamic_ncols=True)

    def _on_step(self) -> bool:
        if self.should_stop():  # SIGINT/SIGTERM: stop here; train() checkpoints this step
            return False
        for info in self.locals.get("infos", []):
            if "episode" in info:
                self.recent = (self.recent + [float(info.get("is_success", 0.0))])[-50:]
        step = self.num_timesteps
        self._show(step)
        if self.next_eval and step >= self.next_eval:
            self.last_eval = self.evaluate(step)
            for k, v in self.last_eval.items():
                if k != "step":
                    self.logger.record(f"eval/{k}", v)
            self.next_eval += self.eval_every
        if self.next_ckpt and step >= self.next_ckpt:
            self.checkpoint(step)
            self.next_ckpt += self.checkpoint_every
        if self.sampler is not None and step % 1000 < self.n_envs:
            for k, v in self.sampler.metrics().items():
                self.logger.record(f"randomization/{k}", v)
        return True

    def _show(self, step: int) -> None:
        if self.bar is None:
            return
        self.bar.n = min(step, self.total_steps)
        post = {"success": f"{np.mean(self.recent):.2f}" if self.recent else "-"}
        if self.last_eval:
            post["eval"] = f"{self.last_eval.get('nominal_success', 0):.2f}"
        self.bar.set_postfix(post, refresh=False)
        self.bar.update(0)

    def _on_training_end(self) -> None:
        if self.bar is not None:
            self.bar.close()
