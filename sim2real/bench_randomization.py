"""`sim2real bench randomization`: the cost of randomized resets and steps against unrandomized ones.

The randomized cases draw every in-place property of the Push scene at each reset (every concrete engine
property: masses, inertias, frictions, colours, textures, joints, gains, lights, cameras, gravity), through
uniform DR. Each case runs in its own fresh process; cases are interleaved over repeats; medians and ratios.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sim.engines import BACKENDS
from sim2real.bench_env import child_main, machine_description, run_interleaved

#: Case -> what it measures; `{b}` is the backend.
CASE_KINDS: dict[str, str] = {
    "reset_plain": "env.reset(), no randomization",
    "reset_numeric": "env.reset() drawing and applying every numeric engine property (uniform DR)",
    "reset_inplace": "env.reset() drawing and applying every in-place engine property, procedural textures too",
    "step_plain": "env.step(), no randomization",
    "step_nominal": "env.step() with every engine property bound to the randomizer but held at nominal",
    "step_inplace": "env.step() in an episode whose engine properties were all randomized at reset",
    "step_env_effects": "env.step() with action delay 1, obs noise, control jitter 0.1 on (extra work per step)",
}
CASES = {f"{k}_{b}": f"{v} [{b}]" for b in BACKENDS for k, v in CASE_KINDS.items()}
#: Targets from the issue.
TARGET_RESET_COST = 2.0
TARGET_STEP_OVERHEAD = 0.05


def inplace_space(env: Any, textures: bool = True, low: float = 0.9) -> dict[str, Any]:
    """A randomization space (as YAML data) over every concrete in-place engine property of `env` (unwrapped):
    numeric ones scaled by U(low, 1.0) of the scene's value, textures drawn from every pattern. Geometry
    (object_scale, which may rebuild a body) is not in-place and is left out."""
    params: list[dict[str, Any]] = []
    for name in env.sim.property_names():
        if name.startswith("object_scale:"):
            continue
        if name.startswith("texture:"):
            if textures:
                params.append({"name": name})
        else:
            params.append({"name": name, "nominal": 1.0, "low": low, "high": 1.0, "apply": "scale"})
    return {"schema_version": 1, "parameters": params}


EFFECTS_SPACE = {
    "schema_version": 1,
    "parameters": [
        {"name": "action_delay", "nominal": 1, "low": 1, "high": 1, "integer": True},
        {"name": "control_jitter", "nominal": 0.1, "low": 0.1, "high": 0.1},
        {"name": "obs_noise:joint_pos", "nominal": 0.001, "low": 0.001, "high": 0.001},
        {"name": "obs_noise:object_pos", "nominal": 0.002, "low": 0.002, "high": 0.002},
    ],
}


def _make(backend: str, randomized: str) -> Any:
    import gymnasium as gym

    import sim  # noqa: F401

    env = gym.make("Sim2Real/Push-v0", backend=backend)
    if randomized in ("inplace", "numeric", "nominal"):
        space = inplace_space(
            env.unwrapped, textures=randomized == "inplace", low=1.0 if randomized == "nominal" else 0.9
        )
        env.close()
        env = gym.make("Sim2Real/Push-v0", backend=backend, randomization=space)
    elif randomized == "effects":
        env.close()
        env = gym.make("Sim2Real/Push-v0", backend=backend, randomization=EFFECTS_SPACE)
    return env


def _resets(backend: str, randomized: str, n: int, seed: int) -> float:
    env = _make(backend, randomized)
    env.reset(seed=seed)
    for _ in range(10):  # warm-up
        env.reset()
    t0 = time.perf_counter()
    for _ in range(n):
        env.reset()
    rate = n / (time.perf_counter() - t0)
    env.close()
    return rate


def _steps(backend: str, randomized: str, n: int, seed: int) -> float:
    env = _make(backend, randomized)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(n + 50)]
    # time steps only: episodes are reset outside the clock
    for a in actions[:50]:
        env.step(a)
    elapsed = 0.0
    done = 0
    while done < n:
        chunk = actions[50 + done : 50 + min(n, done + 50)]
        env.reset()
        t0 = time.perf_counter()
        for a in chunk:
            env.step(a)
        elapsed += time.perf_counter() - t0
        done += len(chunk)
    env.close()
    return n / elapsed


def run_case(case: str, n: int, seed: int) -> float:
    """Operations per second of one case in this process."""
    kind, _, backend = case.rpartition("_")
    runners: dict[str, Callable[[], float]] = {
        "reset_plain": lambda: _resets(backend, "", n, seed),
        "reset_numeric": lambda: _resets(backend, "numeric", n, seed),
        "reset_inplace": lambda: _resets(backend, "inplace", n, seed),
        "step_plain": lambda: _steps(backend, "", n, seed),
        "step_nominal": lambda: _steps(backend, "nominal", n, seed),
        "step_inplace": lambda: _steps(backend, "inplace", n, seed),
        "step_env_effects": lambda: _steps(backend, "effects", n, seed),
    }
    if case not in CASES:
        raise KeyError(f"unknown bench case {case!r}; cases: {list(CASES)}")
    return runners[kind]()


def bench_randomization(
    resets: int = 300,
    steps: int = 2000,
    repeats: int = 3,
    seed: int = 0,
    cases: list[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Every case `repeats` times, interleaved, each in a fresh process; medians and ratios."""
    cases = list(cases or CASES)
    n_of = lambda case: resets if case.startswith("reset") else steps  # noqa: E731
    samples, med = run_interleaved("sim2real.bench_randomization", cases, n_of, repeats, seed, progress)
    ratios: dict[str, float] = {}
    for b in BACKENDS:
        for kind in ("reset_numeric", "reset_inplace"):
            if f"reset_plain_{b}" in med and f"{kind}_{b}" in med:
                ratios[f"{kind}_cost_vs_plain_{b}"] = med[f"reset_plain_{b}"] / med[f"{kind}_{b}"]
        for kind in ("step_nominal", "step_inplace", "step_env_effects"):
            if f"step_plain_{b}" in med and f"{kind}_{b}" in med:
                ratios[f"{kind}_overhead_{b}"] = med[f"step_plain_{b}"] / med[f"{kind}_{b}"] - 1.0
    return {
        "bench": "randomization",
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine_description(),
        "settings": {"resets": resets, "steps": steps, "repeats": repeats, "seed": seed, "task": "Sim2Real/Push-v0"},
        "cases": {c: {"what": CASES[c], "median_per_s": med[c], "samples": samples[c]} for c in cases},
        "ratios": ratios,
        "targets": {
            **{
                f"reset_{k}_cost_vs_plain_{b}": f"<= {TARGET_RESET_COST}x"
                for b in BACKENDS
                for k in ("numeric", "inplace")
            },
            **{
                f"step_{k}_overhead_{b}": f"<= {TARGET_STEP_OVERHEAD:.0%}"
                for b in BACKENDS
                for k in ("nominal", "inplace")
            },
        },
    }


def main(argv: list[str] | None = None) -> None:
    """Entry for one randomization bench case in a child process."""
    child_main(argv, "randomization", list(CASES), run_case, "per_s")


if __name__ == "__main__":
    main()
