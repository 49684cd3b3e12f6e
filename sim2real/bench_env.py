"""`sim2real bench env`: env steps per second of our Push against panda-gym's PandaPush-v3 and the bare physics.

Every case runs in its own fresh process (`python -m sim2real.bench_env --case NAME`), with random actions and
resets at episode ends, the clock started after construction, the first reset and a warm-up. Cases are
interleaved over repeats and reported as medians, with ratios, because the machines are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

#: Case name -> (what it measures, steps per repeat scale).
CASES: dict[str, str] = {
    "ours_push_mujoco": "Sim2Real/Push-v0, MuJoCo backend, state observations",
    "ours_push_pybullet": "Sim2Real/Push-v0, PyBullet backend, state observations",
    "panda_gym_push": "panda-gym PandaPush-v3 (PyBullet), state observations",
    "bare_mj_step": "mj_step(nstep=20) replaying our MuJoCo Push case's controls and resets: the physics alone",
    "ours_push_mujoco_pixels84": "Sim2Real/Push-v0, MuJoCo, 84x84 RGB scene camera every step",
    "ours_push_pybullet_pixels84": "Sim2Real/Push-v0, PyBullet, 84x84 RGB scene camera every step",
    "panda_gym_push_pixels84": "PandaPush-v3 with an 84x84 render() after every step",
}
PIXEL_CASES = {k for k in CASES if k.endswith("pixels84")}
#: Targets from the issue: MuJoCo Push >= 3x panda-gym; env overhead over the bare physics loop <= 15%.
TARGET_SPEEDUP = 3.0
TARGET_OVERHEAD = 0.15


def _gym_loop(env_id: str, steps: int, seed: int, render: bool = False, **kwargs: Any) -> float:
    import gymnasium as gym

    if env_id.startswith("Sim2Real/"):
        import sim  # noqa: F401  (registers the ids)
    else:
        import panda_gym  # noqa: F401

    env = gym.make(env_id, **kwargs)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(steps + 50)]

    def run(acts: list[np.ndarray]) -> None:
        for a in acts:
            _, _, terminated, truncated, _ = env.step(a)
            if render:
                env.render()
            if terminated or truncated:
                env.reset()

    run(actions[:50])  # warm-up: renderer contexts, caches
    t0 = time.perf_counter()
    run(actions[50:])
    elapsed = time.perf_counter() - t0
    env.close()
    return steps / elapsed


def _bare_mj_step(steps: int, seed: int) -> float:
    """The physics our MuJoCo Push case does, replayed without the env: the same control targets (recorded from
    the env under the same seed and actions) and the same episode starts, through bare mj_step calls."""
    import gymnasium as gym
    import mujoco

    import sim  # noqa: F401

    env = gym.make("Sim2Real/Push-v0", backend="mujoco")
    env.reset(seed=seed)
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(steps + 50)]
    u = env.unwrapped
    m, d, n = u.sim.model, u.sim.data, u.sim.scene.n_substeps  # type: ignore[attr-defined]
    # record: (state to restore first, or None), control vector, for every step after the warm-up
    script: list[tuple[np.ndarray | None, np.ndarray]] = []
    start: np.ndarray | None = None
    for i, a in enumerate(actions):
        _, _, terminated, truncated, _ = env.step(a)
        if i >= 50:
            script.append((start, d.ctrl.copy()))
        start = None
        if terminated or truncated:
            env.reset()
            start = np.concatenate([d.qpos, d.qvel])
    nq = m.nq
    first = np.concatenate([d.qpos, d.qvel])
    d.qpos[:], d.qvel[:] = first[:nq], first[nq:]
    t0 = time.perf_counter()
    for state, ctrl in script:
        if state is not None:
            mujoco.mj_resetData(m, d)
            d.qpos[:], d.qvel[:] = state[:nq], state[nq:]
        d.ctrl[:] = ctrl
        mujoco.mj_step(m, d, nstep=n)
    rate = steps / (time.perf_counter() - t0)
    env.close()
    return rate


def run_case(case: str, steps: int, seed: int) -> float:
    """Steps per second of one case in this process."""
    runners: dict[str, Callable[[], float]] = {
        "ours_push_mujoco": lambda: _gym_loop("Sim2Real/Push-v0", steps, seed, backend="mujoco"),
        "ours_push_pybullet": lambda: _gym_loop("Sim2Real/Push-v0", steps, seed, backend="pybullet"),
        "panda_gym_push": lambda: _gym_loop("PandaPush-v3", steps, seed),
        "bare_mj_step": lambda: _bare_mj_step(steps, seed),
        "ours_push_mujoco_pixels84": lambda: _gym_loop(
            "Sim2Real/Push-v0", steps, seed, backend="mujoco", obs_mode="pixels", image_size=84
        ),
        "ours_push_pybullet_pixels84": lambda: _gym_loop(
            "Sim2Real/Push-v0", steps, seed, backend="pybullet", obs_mode="pixels", image_size=84
        ),
        "panda_gym_push_pixels84": lambda: _gym_loop(
            "PandaPush-v3",
            steps,
            seed,
            render=True,
            render_mode="rgb_array",
            render_width=84,
            render_height=84,
        ),
    }
    if case not in runners:
        raise KeyError(f"unknown bench case {case!r}; cases: {list(runners)}")
    return runners[case]()


def run_in_subprocess(module: str, case: str, n: int, seed: int) -> float:
    """Run `python -m module --case case --steps n --seed seed` in a fresh process; its rate per second.

    The child prints one JSON line whose only number besides the case name is the rate."""
    env = dict(os.environ, MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    cmd = [sys.executable, "-m", module, "--case", case, "--steps", str(n), "--seed", str(seed)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"bench case {case} failed (exit {out.returncode}):\n{out.stderr[-2000:]}")
    line = json.loads(out.stdout.strip().splitlines()[-1])
    return float(next(v for k, v in line.items() if k != "case"))


def run_interleaved(
    module: str,
    cases: list[str],
    n_of: Callable[[str], int],
    repeats: int,
    seed: int,
    progress: Callable[[str], None] | None,
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Every case `repeats` times, interleaved over repeats, each in a fresh process (`python -m module`);
    the samples per case and their medians."""
    samples: dict[str, list[float]] = {c: [] for c in cases}
    for r in range(repeats):
        for case in cases:
            if progress:
                progress(f"repeat {r + 1}/{repeats}: {case}")
            samples[case].append(run_in_subprocess(module, case, n_of(case), seed + r))
    return samples, {c: float(np.median(v)) for c, v in samples.items()}


def bench_env(
    steps: int = 3000,
    pixel_steps: int = 300,
    repeats: int = 3,
    seed: int = 0,
    cases: list[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Run every case `repeats` times (interleaved), each in a fresh process; returns medians and ratios."""
    cases = list(cases or CASES)
    n_of = lambda case: pixel_steps if case in PIXEL_CASES else steps  # noqa: E731
    samples, med = run_interleaved("sim2real.bench_env", cases, n_of, repeats, seed, progress)
    ratios: dict[str, float] = {}

    def ratio(name: str, num: str, den: str) -> None:
        if num in med and den in med:
            ratios[name] = med[num] / med[den]

    ratio("mujoco_vs_panda_gym", "ours_push_mujoco", "panda_gym_push")
    ratio("pybullet_vs_panda_gym", "ours_push_pybullet", "panda_gym_push")
    ratio("mujoco_pixels_vs_panda_gym_pixels", "ours_push_mujoco_pixels84", "panda_gym_push_pixels84")
    ratio("pybullet_pixels_vs_panda_gym_pixels", "ours_push_pybullet_pixels84", "panda_gym_push_pixels84")
    if "bare_mj_step" in med and "ours_push_mujoco" in med:
        ratios["mujoco_env_overhead_vs_bare_physics"] = med["bare_mj_step"] / med["ours_push_mujoco"] - 1.0
    return {
        "bench": "env",
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine_description(),
        "settings": {
            "steps": steps,
            "pixel_steps": pixel_steps,
            "repeats": repeats,
            "seed": seed,
            "control_hz": 25,
            "physics_dt_s": 0.002,
            "substeps": 20,
        },
        "cases": {c: {"what": CASES[c], "median_steps_per_s": med[c], "samples": samples[c]} for c in cases},
        "ratios": ratios,
        "targets": {
            "mujoco_vs_panda_gym": f">= {TARGET_SPEEDUP}",
            "mujoco_env_overhead_vs_bare_physics": f"<= {TARGET_OVERHEAD}",
        },
    }


def machine_description() -> str:
    """CPU model and core count, for the record."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


def child_main(
    argv: list[str] | None, what: str, cases: list[str], run: Callable[[str, int, int], float], key: str
) -> None:
    """Entry for one bench case in a child process (see run_in_subprocess): prints one JSON line."""
    ap = argparse.ArgumentParser(description=f"run one {what} bench case in this process")
    ap.add_argument("--case", required=True, choices=cases)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    print(json.dumps({"case": args.case, key: run(args.case, args.steps, args.seed)}))


def main(argv: list[str] | None = None) -> None:
    """Entry for one env bench case in a child process."""
    child_main(argv, "env", list(CASES), run_case, "steps_per_s")


if __name__ == "__main__":
    main()
