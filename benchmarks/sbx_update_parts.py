"""Where one SBX update of push_combo_sbx_cpu goes: the replay samples (HER n-step rows, demonstration rows, the
behaviour-cloning batch), the Q-filtered behaviour-cloning step, one whole update (TQC + BC), an action and an env
step, on a buffer filled with FILL random transitions (the case's own buffer, demonstrations and normalisation);
ms per call, mean over calls after one warm-up call.

Run: .venv/bin/python benchmarks/sbx_update_parts.py [FILL]   (nothing else running; about a minute per 10k FILL)
XLA's matmuls single-threaded: XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def timed(name: str, f: Callable[[], object], n: int = 200) -> None:
    f()
    t = time.perf_counter()
    for _ in range(n):
        f()
    print(f"{name:34s} {1000 * (time.perf_counter() - t) / n:7.2f} ms", flush=True)


def main(fill: int) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from combo_cost import build

    work = Path(tempfile.mkdtemp(prefix="sbx_parts_"))
    # random actions only while the buffer fills
    env, model, _ = build("push_combo_sbx_cpu", "sbx", work, learning_starts=fill)
    model.learn(fill + 200)
    rb, venv = model.replay_buffer, model._vec_normalize_env
    timed("replay sample, 256 rows", lambda: rb.sample(256, venv))
    timed("  of them HER n-step rows, 192", lambda: rb._sample_own(192, venv))
    timed("  of them demonstration rows, 64", lambda: rb.demos.sample(64, venv))
    timed("behaviour-cloning batch, 128", lambda: rb.demos.sample(128, venv))
    timed("behaviour-cloning step (with batch)", model.bc_step)
    timed("one update: TQC + BC", lambda: model.train(1, 256), 100)
    obs = env.reset()
    timed("action (predict)", lambda: model.predict(obs, deterministic=False))
    timed("env step (normalised)", lambda: env.step(np.zeros((1, 3), np.float32)), 500)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
