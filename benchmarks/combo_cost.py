"""Wall-clock cost of issue 17's target runs per env step, SB3 (torch) against SBX (JAX): the bench cases
push_combo_cpu (three 256-unit layers) and push_combo_small_cpu (two) exactly as `sim2real bench train` builds them
(TQC + HER, one update per 4 env steps, batch 256, demonstrations a quarter of every batch, the Q-filtered
behaviour-cloning step, 3-step returns, observation layout 2, normalised observations), each in a fresh process
so the runs share nothing; the median over repeats of training steps after the 10k random ones, and the 500k-step
budget projected from it (evaluations not counted).

Run: .venv/bin/python benchmarks/combo_cost.py [REPEATS] [STEPS]   (nothing else running)
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CASES = ("push_combo_cpu", "push_combo_small_cpu")
FRAMEWORKS = ("sb3", "sbx")


def build(case: str, framework: str, work: Path, **settings_over: Any) -> tuple[Any, Any, dict[str, Any]]:
    """The case's training env and agent on the framework as `sim2real bench train` builds them (demonstrations
    attached), its settings overridden by `settings_over`, under `work`; (env, model, settings)."""
    from sim2real import train as T
    from sim2real.bench_train import case_config

    cfg = case_config(case, work, 0, None, 1, "cpu")
    cfg, settings = T.resolve(dataclasses.replace(cfg, framework=framework, out=str(work / f"{case}-{framework}")))
    settings = {**settings, **settings_over}
    env, _ = T._training_env(cfg, settings, T.make_sampler(cfg), None)
    run = Path(cfg.out)
    run.mkdir(parents=True, exist_ok=True)
    model = T._agent(cfg, settings, env, run, None)
    T._add_demos(cfg, settings, model, fresh=True)
    return env, model, settings


def one(case: str, framework: str, steps: int, work: Path) -> float:
    """ms per env step of `steps` training steps of the case on the framework, after its 10k random steps."""
    _, model, settings = build(case, framework, work)
    model.learn(int(settings["learning_starts"]) + 400)  # past the random steps; SBX's jit compiled
    t = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    return 1000 * (time.perf_counter() - t) / steps


def main(repeats: int, steps: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="combo_cost_"))
    from sim2real.bench_train import LEVER_DEMOS, _lever_demos

    _lever_demos(work / LEVER_DEMOS)  # collected once, before any timing
    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(repeats):
        for case in CASES:
            for framework in FRAMEWORKS:
                here, at = str(Path(__file__).parent), str(work)
                code = (
                    f"import json, sys, pathlib; sys.path.insert(0, {here!r}); from combo_cost import one; "
                    f"print(json.dumps(one({case!r}, {framework!r}, {steps}, pathlib.Path({at!r}))))"
                )
                out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
                results.setdefault((case, framework), []).append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{'case':24s} {'framework':9s} {'ms/env step':>12s} {'vs sb3':>7s} {'500k steps':>11s}   repeats")
    for case in CASES:
        base = statistics.median(results[(case, "sb3")])
        for framework in FRAMEWORKS:
            med = statistics.median(results[(case, framework)])
            print(f"{case:24s} {framework:9s} {med:12.2f} {med / base:7.2f} {med * 500_000 / 60_000:8.1f} min   "
                  f"{[round(v, 2) for v in results[(case, framework)]]}")  # fmt: skip


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3, int(sys.argv[2]) if len(sys.argv) > 2 else 4000)
