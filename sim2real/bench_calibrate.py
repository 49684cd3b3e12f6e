"""`sim2real bench calibrate`: what one replay costs, the unit of every calibration's budget (a 10 s excitation, the
multisine of `sim2real excite`, 250 control steps, 5000 physics steps, replayed in each engine, against a bare
`mj_step` loop of the same length and against `mujoco.rollout` with 1 and 2 threads; medians over repeats), then
whether calibration recovers an off-nominal simulated arm over DDS (sim2real.bench_recovery)."""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

CASES = {
    "replay_mujoco": "calibration.replay.Replayer.rollout, MuJoCo (the fit's replay)",
    "replay_pybullet": "calibration.replay.Replayer.rollout, PyBullet",
    "mj_step_bare": "one mj_step(nstep=5000) call on the same model (the floor)",
    "rollout_1_thread": "mujoco.rollout of 16 models, 1 thread, per replay",
    "rollout_2_threads": "mujoco.rollout of 16 models, 2 threads, per replay",
    "scale_1_worker": "candidate evaluations per second, one 10 s MuJoCo episode, in this process",
    "scale_2_workers": "the same with 2 local worker processes",
    "scale_ray_2_actors": "the same with 2 actors on a local Ray instance (--ray-address local)",
    "recovery_mujoco": "MuJoCo arm over DDS -> 3 bags -> calibrate in MuJoCo: values within 10%, delay exact, < 5 min",
    "recovery_pybullet": "PyBullet arm over DDS -> 1 bag -> calibrate in PyBullet: the same targets",
    "across_engines": "PyBullet arm over DDS -> 3 bags -> calibrate in MuJoCo: held-out discrepancy <= 50% nominal",
    "closed_loop": "Reach trained on calibrated / wide / nominal ranges, deployed over ROS 2 to the off-nominal arm",
}
DURATION_S = 10.0
BATCH = 16


def _excitation() -> tuple[np.ndarray, float]:
    from sim.robot import panda
    from sim.scene import NEUTRAL_ARM_Q_RAD
    from sim2real_ros.excitation import ExcitationSpec, multisine

    limits = panda().arm_limits_rad
    spec = ExcitationSpec(duration_s=DURATION_S)
    return multisine(np.asarray(NEUTRAL_ARM_Q_RAD), limits[:, 0], limits[:, 1], spec, seed=0).q_rad, 1 / spec.rate_hz


def _timer(case: str) -> Callable[[], float]:
    """A function that runs the case once and returns its seconds per replay."""
    from calibration.replay import Replayer
    from randomization import space_from

    cmd, dt_s = _excitation()
    backend = "pybullet" if case == "replay_pybullet" else "mujoco"
    replayer = Replayer(space_from("arm_identification"), backend)
    if case.startswith("replay"):

        def replay() -> float:
            t = time.perf_counter()
            replayer.rollout(cmd[0], cmd, dt_s, {"joint_damping:panda_joint[1-7]": 1.0})
            return time.perf_counter() - t

        return replay
    import mujoco
    from mujoco import rollout

    sim: Any = replayer.sim
    model, data = sim.model, sim.data
    n_sub = round(dt_s / replayer.scene.physics_dt_s)
    steps = (len(cmd) - 1) * n_sub
    if case == "mj_step_bare":

        def bare() -> float:
            sim.reset(cmd[0], 0.02, {})
            t = time.perf_counter()
            mujoco.mj_step(model, data, nstep=steps)
            return time.perf_counter() - t

        return bare
    sim.reset(cmd[0], 0.02, {})
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    x0 = np.empty(mujoco.mj_stateSize(model, spec))
    mujoco.mj_getState(model, data, x0, spec)
    ctrl = np.repeat(np.concatenate([cmd[:-1], np.full((len(cmd) - 1, model.nu - 7), 0.02)], axis=1), n_sub, axis=0)
    models = [copy.copy(model) for _ in range(BATCH)]
    datas = [mujoco.MjData(model) for _ in range(2 if case.endswith("2_threads") else 1)]

    def batched() -> float:
        t = time.perf_counter()
        rollout.rollout(models, datas, np.tile(x0, (BATCH, 1)), np.tile(ctrl[None], (BATCH, 1, 1)))
        return (time.perf_counter() - t) / BATCH

    return batched


def bench_calibrate(
    repeats: int = 5, cases: list[str] | None = None, progress: Any = None, train_steps: int = 0, seed: int = 0
) -> dict[str, Any]:
    """Every case (default: all but the long closed_loop): median milliseconds per 10 s replay and the ratios
    against the bare mj_step loop, evaluation rates, recovery and closed-loop results. `train_steps` (0: the
    default) and `seed` are the closed-loop case's training steps per policy and training seed."""
    from sim2real.bench_env import machine_description
    from sim2real.bench_recovery import RECOVERY_CASES, run_recovery

    out: dict[str, Any] = {}
    recovery: dict[str, Any] = {}
    scale: dict[str, Any] = {}
    closed_loop: dict[str, Any] = {}
    for case in cases or [c for c in CASES if c != "closed_loop"]:
        if progress:
            progress(f"{case}: {CASES[case]}")
        if case in RECOVERY_CASES:
            recovery[case] = run_recovery(case, log=progress)
            continue
        if case == "closed_loop":
            from sim2real.bench_closed_loop import STEPS, run_closed_loop

            closed_loop = run_closed_loop(steps=train_steps or STEPS, seed=seed, log=progress)
            continue
        if case.startswith("scale_"):
            scale[case] = _scale(case, repeats)
            continue
        run = _timer(case)
        run()  # warm-up
        samples = [1000.0 * run() for _ in range(repeats)]
        out[case] = {"median_ms": statistics.median(samples), "samples": samples, "what": CASES[case]}
    ratios = {
        f"{c} / mj_step_bare": out[c]["median_ms"] / out["mj_step_bare"]["median_ms"]
        for c in out
        if c != "mj_step_bare" and "mj_step_bare" in out
    }
    return {
        "bench": "calibrate",
        "machine": machine_description(),
        "date": time.strftime("%Y-%m-%d"),
        "settings": {"repeats": repeats, "duration_s": DURATION_S, "batch": BATCH},
        "cases": out,
        "ratios": ratios,
        "scale": scale,
        "recovery": recovery,
        "closed_loop": closed_loop,
    }


#: Candidates per scale measurement (a few CMA-ES generations).
SCALE_EVALUATIONS = 48


def _scale(case: str, repeats: int) -> dict[str, Any]:
    """Evaluations per second of Evaluator (the fit's) on one 10 s episode, candidates in generations of 12; the
    start-up (worker processes, Ray) is excluded. Median over `repeats` batches."""
    from calibration.episodes import Episode
    from calibration.fit import Evaluator, FitSettings
    from calibration.replay import Replayer
    from randomization import space_from

    space = space_from("arm_identification")
    cmd, dt_s = _excitation()
    replayer = Replayer(space, "mujoco")
    q, qd = replayer.rollout(cmd[0], cmd, dt_s, {})
    episode = Episode("bench", replayer.joint_names, dt_s, 0, q, qd, cmd)
    names = replayer.parameter_names
    replayer.close()
    rng = np.random.default_rng(0)
    candidates: list[dict[str, object]] = [
        {n: float(rng.uniform(0.9, 1.1)) for n in names} for _ in range(SCALE_EVALUATIONS)
    ]
    workers = 1 if case == "scale_1_worker" else 2
    settings = FitSettings(workers=workers, ray_address="local" if "ray" in case else "")
    evaluate = Evaluator(space, "mujoco", [episode], settings)
    try:
        evaluate(candidates[:workers])  # warm-up: every worker has replayed once
        rates = []
        for _ in range(repeats):
            t = time.perf_counter()
            for i in range(0, len(candidates), 12):
                evaluate(candidates[i : i + 12])
            rates.append(len(candidates) / (time.perf_counter() - t))
    finally:
        evaluate.close()
    return {"evals_per_s": statistics.median(rates), "samples": rates, "what": CASES[case]}
