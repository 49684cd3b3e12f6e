"""SimOpt-style fitting (Chebotar et al. 2019): a Gaussian over chosen randomization parameters whose replays of the
recorded episodes match the records, searched with CMA-ES (the `cma` package) or REPS, population members evaluated
in parallel worker processes. The action delay, an integer, is searched by enumeration: a short search of the other
parameters per candidate delay, then the best one refined; parameters the recordings cannot tell apart keep their
prior and are marked unidentifiable."""

from __future__ import annotations

import math
import multiprocessing as mp
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from calibration.discrepancy import DiscrepancyWeights, discrepancy
from calibration.episodes import Episode
from calibration.replay import ACTION_DELAY, Replayer
from calibration.sensitivity import Sensitivity, sensitivity
from randomization import ParameterSpace
from randomization.space import Parameter

METHODS = ("cma", "reps")
#: Times the fit moves to a sensitivity probe that replayed closer than it (by more than the threshold) and probes
#: again: a search stopped by its budget before it converged.
SENSITIVITY_MOVES = 2
#: The refining search (after the delay is chosen) starts this much narrower than sigma0.
REFINE_SIGMA = 0.4
#: REPS's floor on each coordinate's search spread (unit box): weighted refits collapse the spread of weakly
#: identified coordinates long before they are found; the floor keeps them explored.
REPS_MIN_STD = 0.03


@dataclass(frozen=True)
class FitSettings:
    """How to search. The defaults fit ~10 parameters from a few 10 s episodes in minutes on 2 cores."""

    method: str = "cma"
    """cma (CMA-ES, the `cma` package) | reps (relative entropy policy search, as SimOpt)."""
    budget: int = 300
    """Candidate evaluations (each replays every training episode once)."""
    population: int = 0
    """Candidates per generation; 0: the method's default (CMA-ES: 4 + 3 ln n; REPS: 4n + 4, at least 12)."""
    workers: int = 1
    """Worker processes evaluating a generation's candidates in parallel (Ray actors with ray_address)."""
    ray_address: str = ""
    """Evaluate on a Ray cluster instead of local processes: its address (`auto`, `ray://host:10001`, `host:6379`),
    or `local` to start a Ray instance on this machine. Empty: local worker processes."""
    seed: int = 0
    """Seed of the search (the same seed gives the same result)."""
    sigma0: float = 0.25
    """Initial search spread as a fraction of each prior range."""
    reps_epsilon: float = 1.0
    """REPS: the KL bound between successive search distributions."""
    identifiable_rel: float = 0.02
    """A parameter is identifiable when moving it by 10% of its prior range raises the discrepancy by at least
    this fraction of the fitted discrepancy (and by at least 1e-6), alone and when the other parameters move to
    make up for it (calibration.sensitivity)."""
    weights: DiscrepancyWeights = field(default_factory=DiscrepancyWeights)
    """Weights of the discrepancy's terms."""

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {list(METHODS)}, got {self.method!r}")
        if self.budget < 1 or self.workers < 1 or self.population < 0:
            raise ValueError(f"budget and workers must be >= 1 and population >= 0, got {self.budget}, "
                             f"{self.workers}, {self.population}")  # fmt: skip
        if not 0 < self.sigma0 <= 1:
            raise ValueError(f"sigma0 must be in (0, 1], got {self.sigma0}")


@dataclass
class FitResult:
    """The fitted Gaussian over the parameters (prior units: what the YAML's values mean) and how it was found."""

    names: list[str]
    """Engine parameters, wildcards expanded (action_delay is reported apart)."""
    prior_low: np.ndarray
    prior_high: np.ndarray
    prior_nominal: np.ndarray
    mean: np.ndarray
    """Posterior mean (the prior nominal for unidentifiable parameters)."""
    std: np.ndarray
    """Posterior standard deviation (for unidentifiable parameters: the prior range / sqrt(12), a uniform's)."""
    identifiable: np.ndarray
    """Per parameter: the recordings constrain it."""
    action_delay: float | None
    """The fitted command-to-motion delay in control steps, fractional (None when the space does not calibrate
    it)."""
    discrepancy_nominal: float
    """Mean discrepancy of the training episodes at the prior's nominal values, delay included (uncalibrated)."""
    discrepancy_fitted: float
    """Mean discrepancy at the posterior mean."""
    evaluations: int
    """Candidate evaluations spent (delay enumeration and sensitivity checks included)."""
    history: list[float] = field(default_factory=list)
    """Best discrepancy after each generation."""
    sensitivity: Sensitivity | None = None
    """How firmly the recordings pin each parameter at the fit, alone and against the others (what `identifiable`
    was decided from)."""

    def values(self, x: np.ndarray | None = None) -> dict[str, object]:
        """Parameter values for a replay: `x` (default the mean), with the fitted delay."""
        out: dict[str, object] = dict(zip(self.names, (self.mean if x is None else x).tolist()))
        if self.action_delay is not None:
            out[ACTION_DELAY] = self.action_delay
        return out


# -- evaluating candidates, in this process or in workers ---------------------------------------------------------
_WORKER: dict[str, Any] = {}


def _init_worker(space: dict[str, Any], backend: str, episodes: list[Episode], weights: DiscrepancyWeights) -> None:
    _WORKER["replayer"] = Replayer(ParameterSpace.from_dict(space), backend)
    _WORKER["episodes"], _WORKER["weights"] = episodes, weights


def _evaluate(values: dict[str, object]) -> float:
    """Mean discrepancy of the worker's episodes replayed under `values`."""
    return _replay(values, flat=False)[1]


def _trajectory(values: dict[str, object]) -> tuple[np.ndarray, float]:
    """The worker's episodes replayed under `values`: as one flat vector weighted as the discrepancy weighs them
    (positions, velocities x velocity_l1 / position_l1, each episode over the root of its size), and their mean
    discrepancy, from the same replays."""
    flat, score = _replay(values, flat=True)
    assert flat is not None
    return flat, score


def _replay(values: dict[str, object], flat: bool) -> tuple[np.ndarray | None, float]:
    replayer, w = _WORKER["replayer"], _WORKER["weights"]
    vel = w.velocity_l1 / w.position_l1 if w.position_l1 > 0 else 1.0
    parts, scores = [], []
    for ep in _WORKER["episodes"]:
        q, qd = replayer.replay(ep, values)
        scores.append(discrepancy(q, qd, ep.q_rad, ep.qd_rad_s, w))
        if flat:
            parts.append(np.concatenate([q.ravel(), vel * qd.ravel()]) / math.sqrt(2 * q.size))
    return (np.concatenate(parts) if flat else None), float(np.mean(scores))


_TASKS = {"evaluate": _evaluate, "trajectory": _trajectory}


class _RayWorker:
    """One Ray actor: a replayer of its own and the training episodes (sent once)."""

    def __init__(self, *args: Any) -> None:
        _init_worker(*args)

    def run(self, task: str, values: dict[str, object]) -> Any:
        return _TASKS[task](values)


class Evaluator:
    """Mean discrepancy of candidate value sets over the training episodes: in this process, `workers` local
    processes at a time, or `workers` Ray actors with `settings.ray_address`. Results come back in candidate
    order, so every way gives the same fit."""

    def __init__(self, space: ParameterSpace, backend: str, episodes: Sequence[Episode], settings: FitSettings):
        args = (space.to_dict(), backend, list(episodes), settings.weights)
        self.pool: Any = None
        self.actors: list[Any] = []
        self._ray: Any = None
        self._started_ray = False
        if settings.ray_address:
            self._start_ray(settings, args)
        elif settings.workers > 1:
            self.pool = mp.get_context("spawn").Pool(settings.workers, _init_worker, args)
        else:
            _init_worker(*args)
        self.count = 0

    def _start_ray(self, settings: FitSettings, args: tuple[Any, ...]) -> None:
        try:
            import ray
        except ImportError:
            raise ValueError("--ray-address needs Ray: pip install 'sim2real[distributed]'") from None
        self._ray = ray
        if not ray.is_initialized():
            local = settings.ray_address == "local"
            try:
                ray.init(address=None if local else settings.ray_address, include_dashboard=False,
                         log_to_driver=False, num_cpus=max(settings.workers, 1) if local else None)  # fmt: skip
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise ValueError(f"--ray-address {settings.ray_address}: cannot connect to Ray: {e}") from None
            self._started_ray = True
        actor = ray.remote(num_cpus=1)(_RayWorker)
        shared = [ray.put(a) for a in args]
        self.actors = [actor.remote(*shared) for _ in range(settings.workers)]

    def __call__(self, candidates: Sequence[dict[str, object]]) -> np.ndarray:
        """The candidates' mean discrepancies (C,)."""
        return np.asarray(self._map("evaluate", candidates), float)

    def trajectories(self, candidates: Sequence[dict[str, object]]) -> tuple[np.ndarray, np.ndarray]:
        """The candidates' replayed trajectories, one flat weighted vector each (C, m), and their discrepancies (C,)
        from the same replays; see _trajectory."""
        got = self._map("trajectory", candidates)
        return np.asarray([g[0] for g in got], float), np.asarray([g[1] for g in got], float)

    def _map(self, task: str, candidates: Sequence[dict[str, object]]) -> list[Any]:
        self.count += len(candidates)
        if self.actors:
            n = len(self.actors)
            return list(self._ray.get([self.actors[i % n].run.remote(task, c) for i, c in enumerate(candidates)]))
        if self.pool is not None:
            return list(self.pool.map(_TASKS[task], candidates, chunksize=1))
        return [_TASKS[task](c) for c in candidates]

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool.join()
        if self.actors:
            for a in self.actors:
                self._ray.kill(a)
            self.actors = []
        if self._started_ray:
            self._ray.shutdown()
            self._started_ray = False


# -- the fit ---------------------------------------------------------------------------------------------------
def fit(
    space: ParameterSpace,
    episodes: Sequence[Episode],
    backend: str = "mujoco",
    settings: FitSettings | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> FitResult:
    """Fit the space's parameters (scalar numeric ones: engine properties and action_delay) to the episodes.

    The prior is the space: each parameter's [low, high] bounds the search and its nominal starts it. Returns the
    posterior Gaussian; `progress(evaluations, budget, best)` is called after each generation."""
    s = settings or FitSettings()
    if not episodes:
        raise ValueError("no episodes to fit: every bag was skipped (see the bag reports)")
    probe = Replayer(space, backend)
    engine = probe.space  # expanded against the scene
    scene_dt_s = probe.scene.physics_dt_s
    probe.close()
    params = [p for p in engine.parameters if isinstance(p, Parameter)]
    if len(params) != len(engine.parameters) or any(np.size(p.nominal) != 1 for p in params):
        raise ValueError("calibration fits scalar numeric parameters only (textures and vector values cannot be "
                         "fitted to joint trajectories)")  # fmt: skip
    delay_param = next((p for p in space.parameters if p.name == ACTION_DELAY and isinstance(p, Parameter)), None)
    names = [p.name for p in params]
    lo = np.array([float(np.ravel(p.low)[0]) for p in params])
    hi = np.array([float(np.ravel(p.high)[0]) for p in params])
    nominal = np.array([float(np.ravel(p.nominal)[0]) for p in params])
    full = ParameterSpace(tuple(params) + ((delay_param,) if delay_param else ()))
    evaluate = Evaluator(full, backend, episodes, s)
    try:
        delay_nominal = None if delay_param is None else int(round(float(np.ravel(delay_param.nominal)[0])))

        def values(x: np.ndarray, delay: float | None) -> dict[str, object]:
            return {**dict(zip(names, x.tolist())), **({} if delay is None else {ACTION_DELAY: delay})}

        d_nominal = float(evaluate([values(nominal, delay_nominal)])[0])  # the uncalibrated model
        width = np.where(hi > lo, hi - lo, 1.0)
        search = _cma if s.method == "cma" else _reps
        overall = [math.inf]  # the best discrepancy over every stage (each search restarts its own)

        def report(best: float) -> None:
            overall[0] = min(overall[0], best)
            if progress is not None:
                progress(evaluate.count, s.budget, overall[0])

        def run(
            delay: float | None,
            x0: np.ndarray,
            budget: int,
            sigma0: float,
            delay_box: tuple[float, float] | None = None,
        ) -> tuple[np.ndarray, float | None, np.ndarray, list[float]]:
            """Search the parameters at `delay`; with `delay_box`, the delay too, as a last coordinate in it."""
            box_lo, box_hi, start = lo, hi, x0
            if delay_box is not None and delay is not None:
                box_lo, box_hi, start = np.append(lo, delay_box[0]), np.append(hi, delay_box[1]), np.append(x0, delay)
            box_w = np.where(box_hi > box_lo, box_hi - box_lo, 1.0)

            def split(u: np.ndarray) -> tuple[np.ndarray, float | None]:
                v = box_lo + np.clip(u, 0.0, 1.0) * box_w
                return (v[:-1], float(v[-1])) if len(v) > len(lo) else (v, delay)

            def objective(us: list[np.ndarray]) -> np.ndarray:
                return evaluate([values(*split(u)) for u in us])

            mean_u, std_u, found = search(
                objective, (start - box_lo) / box_w, replace(s, sigma0=sigma0), max(1, budget), report
            )
            x, d = split(mean_u)
            return x, d, std_u[: len(lo)], found

        def extend(found: list[float]) -> None:
            history.extend(min(h, history[-1]) if history else h for h in found)

        # The delay trades off against the gains (a softer arm looks like a later one): a short search per whole
        # number of control steps (a third of the budget in all); a real arm's latency is no whole number of
        # periods, so the delay is then scanned in physics steps within half a period of the best one, and the
        # rest of the budget refines the best one's result there with a narrower start, the delay free within a
        # physics step (the replay applies commands between physics steps continuously).
        delays = _delays(delay_param)
        trials = {d: run(d, nominal, (s.budget // 3) // len(delays), s.sigma0) for d in delays}
        best = min(delays, key=lambda d: (trials[d][3][-1] if trials[d][3] else math.inf, delays.index(d)))
        x, delay, std_u, found = trials[best]
        history: list[float] = [float(h) for h in np.minimum.accumulate([h for d in delays for h in trials[d][3]])]
        box = None
        if delay_param is not None and best is not None:
            lo_d, hi_d = float(np.ravel(delay_param.low)[0]), float(np.ravel(delay_param.high)[0])
            n_sub = max(1, round(episodes[0].dt_s / scene_dt_s))
            scan = [d for j in range(-(n_sub // 2), n_sub // 2 + 1) if lo_d <= (d := best + j / n_sub) <= hi_d]
            scores = evaluate([values(x, d) for d in scan])
            delay = scan[int(np.argmin(scores))]
            box = (max(lo_d, delay - 1.0 / n_sub), min(hi_d, delay + 1.0 / n_sub))  # within a physics step
            extend([float(scores.min())])
            report(history[-1])
        left = s.budget - evaluate.count
        if left > 0:  # at the scanned delay, then (half the rest) with the delay free within a physics step
            x, delay, std_u, found = run(delay, x, left if box is None else left - left // 2, REFINE_SIGMA * s.sigma0)
            extend(found)
        if box is not None and s.budget - evaluate.count > 0:
            x, delay, std_u, found = run(delay, x, s.budget - evaluate.count, REFINE_SIGMA * s.sigma0, box)
            extend(found)
        mean = x
        std = np.maximum(std_u * width, 1e-6 * width)
        d_fit = float(evaluate([values(mean, delay)])[0])

        def at(us: list[np.ndarray]) -> list[dict[str, object]]:
            return [values(lo + np.clip(u, 0.0, 1.0) * width, delay) for u in us]

        def probe_at(x: np.ndarray, d: float) -> Sensitivity:
            return sensitivity(
                lambda us: evaluate.trajectories(at(us)), lambda us: evaluate(at(us)), (x - lo) / width, d, hi > lo,
                threshold=max(1e-6, s.identifiable_rel * d),
            )  # fmt: skip

        sens = probe_at(mean, d_fit)
        for _ in range(SENSITIVITY_MOVES):  # a probe replayed closer than the fit: the search had not converged
            if sens.best_u is None or sens.best_score > d_fit - sens.threshold:
                break
            mean, d_fit = lo + sens.best_u * width, sens.best_score
            sens = probe_at(mean, d_fit)
        ident = sens.identifiable
        prior_std = (hi - lo) / math.sqrt(12.0)
        std = np.where(ident, std, prior_std)
        if not ident.all():
            # the unidentifiable ones go back to their nominal; the identifiable ones take up what they did (a
            # least-squares step on the trajectory's sensitivity), kept where it replays closer than without
            back = np.where(ident, (mean - lo) / width, (nominal - lo) / width)
            tries = [lo + back * width, lo + sens.make_up_for(back, ident) * width]
            scores = evaluate([values(x, delay) for x in tries])
            mean, d_fit = tries[int(np.argmin(scores))], float(scores.min())
        return FitResult(
            names, lo, hi, nominal, mean, std, ident, delay, d_nominal, d_fit, evaluate.count, history, sens
        )
    finally:
        evaluate.close()


def _delays(p: Parameter | None) -> list[int | None]:
    """Every integer delay (control steps) in the parameter's range; [None] when the space has no action_delay."""
    if p is None:
        return [None]
    low, high = int(math.ceil(float(np.ravel(p.low)[0]))), int(math.floor(float(np.ravel(p.high)[0])))
    return list(range(low, high + 1))


def _cma(
    f: Callable[[list[np.ndarray]], np.ndarray], x0: np.ndarray, s: FitSettings, budget: int,
    report: Callable[[float], None],
) -> tuple[np.ndarray, np.ndarray, list[float]]:  # fmt: skip
    """CMA-ES in the unit box: the final mean and per-coordinate standard deviation (sigma * sqrt(diag C))."""
    import cma

    opts: dict[str, Any] = {"bounds": [0.0, 1.0], "seed": s.seed + 1, "verbose": -9, "maxfevals": budget}
    if s.population:
        opts["popsize"] = s.population
    es = cma.CMAEvolutionStrategy(np.clip(x0, 0.0, 1.0).tolist(), s.sigma0, opts)
    history: list[float] = []
    best = math.inf
    while not es.stop():
        xs = es.ask()
        scores = f(xs)
        es.tell(xs, scores.tolist())
        best = min(best, float(scores.min()))
        history.append(best)
        report(best)
    std = es.sigma * np.sqrt(np.diag(es.C))
    # the best candidate seen, not the search mean: with a small budget the mean may not have settled yet
    x_best = es.result.xbest if es.result.xbest is not None else es.mean
    return np.asarray(x_best, float), np.asarray(std, float), history


def _reps(
    f: Callable[[list[np.ndarray]], np.ndarray], x0: np.ndarray, s: FitSettings, budget: int,
    report: Callable[[float], None],
) -> tuple[np.ndarray, np.ndarray, list[float]]:  # fmt: skip
    """Episodic REPS over a diagonal Gaussian in the unit box (Peters et al. 2010, as SimOpt uses it): each
    generation samples the Gaussian, weights samples by exp(-D / eta) with eta from the dual under the KL bound
    epsilon, and refits the mean and variances to the weighted samples."""
    from scipy.optimize import minimize_scalar

    rng = np.random.default_rng(s.seed)
    n = len(x0)
    pop = s.population or max(12, 4 * n + 4)
    mean, std = np.clip(x0, 0.0, 1.0), np.full(n, s.sigma0)
    history: list[float] = []
    best, x_best = math.inf, mean
    spent = 0
    while spent + pop <= budget or not history:
        xs = np.clip(mean + std * rng.standard_normal((pop, n)), 0.0, 1.0)
        scores = f(list(xs))
        spent += pop
        if scores.min() < best:
            best, x_best = float(scores.min()), xs[int(np.argmin(scores))]
        history.append(best)
        report(best)
        mean, std = _reps_update(xs, scores, s.reps_epsilon, minimize_scalar)
    return x_best, std, history


def _reps_update(xs: np.ndarray, scores: np.ndarray, epsilon: float, minimize_scalar: Any) -> tuple[np.ndarray, ...]:
    """One REPS step: weights exp(r / eta) of the samples (r = best score - score, <= 0), eta minimising the dual
    eta * epsilon + eta * log mean exp(r / eta); the weighted mean and standard deviation."""
    r = -(scores - scores.min())

    def dual(eta: float) -> float:
        return float(eta * epsilon + eta * np.log(np.mean(np.exp(r / eta))))

    eta = float(minimize_scalar(dual, bounds=(1e-8, 1e8), method="bounded").x)
    w = np.exp(r / eta)
    w /= w.sum()
    mean = w @ xs
    return mean, np.sqrt(np.maximum(w @ (xs - mean) ** 2, REPS_MIN_STD**2))
