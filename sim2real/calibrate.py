"""`sim2real calibrate`: recorded bags -> episodes -> a SimOpt-style fit of randomization parameters -> an output
folder with calibrated.yaml (what `sim2real train --randomization` reads), report.json and plots."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: Seconds of usable episodes below which a calibration refuses to fit (it would only return its prior).
MIN_TRAIN_S = 2.0
#: Trajectory plots drawn (held-out episodes first, else training ones).
PLOTTED_EPISODES = 2


@dataclass(frozen=True)
class CalibrateConfig:
    """One calibration. Every field has a default that works except the bags and the output folder."""

    bags: tuple[str, ...]
    """Recorded bags (rosbag2 folders or bare .mcap/.db3 files) to fit to."""
    out: str
    """Output folder: must not exist yet (nothing is ever replaced)."""
    holdout: tuple[str, ...] = ()
    """Bags kept out of the fit, to measure the calibrated model on trajectories it has not seen."""
    backend: str = "mujoco"
    """The engine whose model is calibrated (sim.engines.BACKENDS)."""
    task: str = "reach"
    """The task the calibrated ranges are for (sim.registration.TASKS); the replay uses its robot."""
    params: str = "arm_identification"
    """The prior: a randomization preset or YAML whose scalar parameters are fitted (ranges bound the search)."""
    method: str = "cma"
    """cma | reps."""
    budget: int = 300
    """Candidate evaluations (each replays every training episode once)."""
    workers: int = 1
    """Worker processes (or Ray actors) evaluating candidates in parallel."""
    ray_address: str = ""
    """Evaluate on a Ray cluster: its address (auto, ray://host:10001), or local to start Ray here; empty: local
    worker processes."""
    seed: int = 0
    """Seed of the search: the same seed and bags give the same output."""


class CalibrateError(ValueError):
    """A calibration that cannot run; the message names what is wrong."""


def calibrate(cfg: CalibrateConfig, progress: bool = True) -> dict[str, Any]:
    """Run the calibration and write its folder; returns the report (report.json's content)."""
    from calibration.bags import collect_episodes, read_bags
    from calibration.fit import FitSettings, fit
    from calibration.output import calibrated_space, plot_parameters, plot_trajectories, report
    from randomization import SpaceError, space_from
    from sim.engines import BACKENDS
    from sim.registration import TASKS
    from sim.robot import panda
    from sim.scene import SceneSpec
    from sim2real.artifacts import write_json

    t0 = time.perf_counter()
    out = Path(cfg.out)
    if out.exists():
        raise CalibrateError(f"--out {out} already exists; calibrate writes a new folder and never replaces one")
    if cfg.backend not in BACKENDS or cfg.task not in TASKS:
        raise CalibrateError(f"backend must be one of {list(BACKENDS)} and task one of {sorted(TASKS)}, got "
                             f"{cfg.backend!r} and {cfg.task!r}")  # fmt: skip
    if not cfg.bags:
        raise CalibrateError("no bags given: record some with `sim2real record` (and `sim2real excite`)")
    try:
        prior = space_from(cfg.params)
        settings = FitSettings(method=cfg.method, budget=cfg.budget, workers=cfg.workers, seed=cfg.seed,
                               ray_address=cfg.ray_address)  # fmt: skip
    except (SpaceError, FileNotFoundError, ValueError) as e:
        raise CalibrateError(str(e)) from None
    robot = panda()
    dt_s = SceneSpec().control_dt_s
    train_reports = read_bags(cfg.bags, robot.arm_joint_names, dt_s)
    hold_reports = read_bags(cfg.holdout, robot.arm_joint_names, dt_s) if cfg.holdout else []
    try:
        episodes = collect_episodes(train_reports, MIN_TRAIN_S)
    except ValueError as e:
        raise CalibrateError(f"too little usable data: {e}") from None
    holdout = [e for r in hold_reports for e in r.episodes]

    bar = _Bar(cfg.budget) if progress else None
    try:
        result = fit(prior, episodes, cfg.backend, settings, bar.update if bar else None)
    except ValueError as e:
        raise CalibrateError(str(e)) from None
    finally:
        if bar is not None:
            bar.close()

    nominal_values = result.values(result.prior_nominal)
    calibrated_values = result.values()
    hold_nominal, hold_calibrated, trajectories = _holdout(cfg, prior, holdout, nominal_values, calibrated_values)
    bags = [_bag_entry(r, "train") for r in train_reports] + [_bag_entry(r, "holdout") for r in hold_reports]
    provenance = {
        "calibrated_by": "sim2real calibrate",
        "backend": cfg.backend,
        "task": cfg.task,
        "method": cfg.method,
        "seed": cfg.seed,
        "robot": {"name": robot.name, "arm_joints": list(robot.arm_joint_names)},
        "bags": [{"path": b["path"], "sha256": b["sha256"], "role": b["role"]} for b in bags],
    }
    latency_s, latency_notes = _latency(train_reports, "latency_s", "joint_states")
    camera_s, camera_notes = _latency(train_reports, "camera_latency_s", "camera")
    discrepancy: dict[str, dict[str, float | None]] = {
        "train": {"nominal": result.discrepancy_nominal, "calibrated": result.discrepancy_fitted},
        "holdout": {"nominal": hold_nominal, "calibrated": hold_calibrated},
    }
    out.mkdir(parents=True)
    obs_delay = None if latency_s is None else latency_s / dt_s
    image_delay = None if camera_s is None else camera_s / dt_s
    calibrated_space(prior, result, provenance, obs_delay, image_delay).save(out / "calibrated.yaml")
    rep = report(result, discrepancy, latency_s, bags, cfg.method,
                 time.perf_counter() - t0)  # fmt: skip
    rep["camera_latency_s"] = camera_s
    rep["latency_notes"] = latency_notes + camera_notes
    plot_parameters(out / "params.png", result)
    shown = trajectories or _replays(cfg, prior, episodes[:PLOTTED_EPISODES], nominal_values, calibrated_values)
    for i, (ep, nom, cal) in enumerate(shown[:PLOTTED_EPISODES]):
        t = np.arange(ep.n_steps) * ep.dt_s
        plot_trajectories(out / f"trajectory_{i}.png", ep.source, t, ep.q_rad, nom, cal, ep.joint_names)
    rep["evaluated_on"] = {"workers": cfg.workers, "ray_address": cfg.ray_address or None}
    rep["wall_s"] = time.perf_counter() - t0
    write_json(out / "report.json", rep)
    return rep


def _latency(reports: Sequence[Any], key: str, what: str) -> tuple[float | None, list[str]]:
    """The median over bags of a receive-minus-stamp offset, when it is a latency (0..max_latency_s); else None,
    with a note per bag whose offset is a clock difference instead."""
    from calibration.bag_settings import BagReadSettings

    bound = BagReadSettings().max_latency_s
    usable, notes = [], []
    for r in reports:
        x = getattr(r, key, None)
        if x is None:
            continue
        if 0.0 <= x <= bound:
            usable.append(float(x))
        else:
            notes.append(f"{r.path}: {what} stamps are {x:+.3f} s from receive time, outside 0..{bound} s: a clock "
                         f"difference, not a latency (no {what} delay taken from it)")  # fmt: skip
    return (float(np.median(usable)) if usable else None), notes


def _bag_entry(r: Any, role: str) -> dict[str, Any]:
    return {"path": r.path, "sha256": r.sha256, "role": role, "episodes": len(r.episodes), "skipped": r.skipped,
            "warnings": list(r.warnings)}  # fmt: skip


def _replays(
    cfg: CalibrateConfig, prior: Any, episodes: Sequence[Any], nominal: dict[str, object], calibrated: dict[str, object]
) -> list[tuple[Any, np.ndarray, np.ndarray]]:
    """Each episode with its simulated positions at the nominal and at the calibrated values."""
    from calibration.replay import Replayer

    replayer = Replayer(prior, cfg.backend)
    try:
        return [(ep, replayer.replay(ep, nominal)[0], replayer.replay(ep, calibrated)[0]) for ep in episodes]
    finally:
        replayer.close()


def _holdout(
    cfg: CalibrateConfig, prior: Any, episodes: Sequence[Any], nominal: dict[str, object], calibrated: dict[str, object]
) -> tuple[float | None, float | None, list[tuple[Any, np.ndarray, np.ndarray]]]:
    """Mean discrepancy of the held-out episodes at the nominal and at the calibrated values (None without any)."""
    from calibration.discrepancy import discrepancy
    from calibration.replay import Replayer

    if not episodes:
        return None, None, []
    replayer = Replayer(prior, cfg.backend)
    scores: dict[str, list[float]] = {"nominal": [], "calibrated": []}
    shown = []
    try:
        for ep in episodes:
            sims = {}
            for kind, values in (("nominal", nominal), ("calibrated", calibrated)):
                q, qd = replayer.replay(ep, values)
                scores[kind].append(discrepancy(q, qd, ep.q_rad, ep.qd_rad_s))
                sims[kind] = q
            shown.append((ep, sims["nominal"], sims["calibrated"]))
    finally:
        replayer.close()
    return float(np.mean(scores["nominal"])), float(np.mean(scores["calibrated"])), shown


class _Bar:
    """A tqdm bar over candidate evaluations, showing the best discrepancy."""

    def __init__(self, budget: int) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=budget, unit="eval", desc="fitting", dynamic_ncols=True)

    def update(self, done: int, budget: int, best: float) -> None:
        self.bar.n = min(done, budget)
        self.bar.set_postfix({"best": f"{best:.3g}"}, refresh=False)
        self.bar.update(0)

    def close(self) -> None:
        self.bar.close()
