"""How firmly the recordings pin each fitted parameter: the discrepancy's rise when a parameter moves alone, and when
the others move too to make up for it (its profile). Two parameters with the same effect on the trajectories (a
joint's viscous damping and the controller's velocity gain both push back in proportion to the joint velocity) each
raise the discrepancy when moved alone, yet the pair is fixed only in sum: moving one while the other compensates
costs next to nothing. The profile test sees that; the one-at-a-time test cannot.

All in the unit box of the prior (0 = low, 1 = high). The simulated trajectories at the fit and with each parameter
moved alone by `step` give the trajectory's sensitivity J (one column per parameter, a secant over the step). For
parameter i, the others' compensating move is the least-squares one, J_-i d = -J_i step, kept inside their prior
box; the discrepancy is then measured there (a real replay, not a model of the discrepancy, which is L1 + L2 and not
quadratic). 2n + 1 replays in all. The posterior correlation reported beside it is that of (J'J)^-1, the
Gauss-Newton (Laplace) covariance."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

#: A parameter whose compensating move cancels this share of another's effect is named as confounded with it.
CONFOUNDED_SHARE = 0.1
#: An identifiable parameter's profile rise must reach this share of the threshold: the threshold itself at twice
#: the step, for a discrepancy quadratic near its minimum (the profile's compensated error is small).
PROFILE_SHARE = 0.25


@dataclass(frozen=True)
class Sensitivity:
    """Per parameter: the discrepancy rise moving it alone by `step` of its prior range, and its profile rise (the
    others moved to make up for it); `correlation` (n, n) is the posterior correlation (NaN rows for parameters
    without a range)."""

    rise: np.ndarray
    profile_rise: np.ndarray
    correlation: np.ndarray
    threshold: float
    """The least rise of an identifiable parameter moved alone (PROFILE_SHARE of it against the others)."""
    free: np.ndarray
    """Per parameter: its prior range is not a single value."""
    u0: np.ndarray
    """The probed fit (unit box)."""
    jacobian: np.ndarray
    """(m, n): the weighted trajectory's secant sensitivity to each parameter (zero columns for fixed ones)."""
    compensation: np.ndarray
    """(n, n): row i, the share of parameter i's effect on the trajectory (its step's) that each other parameter's
    compensating move cancels (1: all of it, 0: none; the linearised trajectory)."""
    best_u: np.ndarray | None = None
    """The probed point with the lowest discrepancy when it is below the fit's (the fit had not converged), else
    None."""
    best_score: float = math.inf
    """Its discrepancy."""

    @property
    def identifiable(self) -> np.ndarray:
        """Moving the parameter by `step` raises the discrepancy by the threshold alone, and by PROFILE_SHARE of it
        when the others make up for it."""
        return self.free & (self.rise >= self.threshold) & (self.profile_rise >= PROFILE_SHARE * self.threshold)

    def make_up_for(self, u: np.ndarray, movable: np.ndarray) -> np.ndarray:
        """`u` (unit box; some parameters moved off the fit, e.g. back to their nominal) with the `movable` ones
        moved by the least-squares step that brings the linearised trajectory back to the fit's, inside the box."""
        from scipy.optimize import lsq_linear

        u = np.asarray(u, float).copy()
        cols = [i for i in range(len(u)) if movable[i] and self.free[i]]
        if not cols or not np.any(self.jacobian[:, cols]):
            return u
        fixed = [i for i in range(len(u)) if i not in cols]
        offset = self.jacobian[:, fixed] @ (u[fixed] - self.u0[fixed])
        res = lsq_linear(self.jacobian[:, cols], -offset, bounds=(-self.u0[cols], 1.0 - self.u0[cols]))
        u[cols] = np.clip(self.u0[cols] + res.x, 0.0, 1.0)
        return u

    def confounded_with(self, i: int, names: Sequence[str]) -> list[str]:
        """The parameters that make up for parameter i: where they take away at least half of its rise, those whose
        compensating move cancels at least CONFOUNDED_SHARE of its effect (largest first). (The posterior correlation is
        reported apart: on a short excitation most pairs correlate strongly without making up for each other.)"""
        if not (self.rise[i] > 0 and self.profile_rise[i] <= 0.5 * self.rise[i]):
            return []
        share = self.compensation[i]
        return [names[j] for j in np.argsort(-share) if j != i and share[j] >= CONFOUNDED_SHARE]


def sensitivity(
    trajectories: Callable[[list[np.ndarray]], tuple[np.ndarray, np.ndarray]],
    score: Callable[[list[np.ndarray]], np.ndarray],
    u0: np.ndarray,
    d0: float,
    free: np.ndarray,
    step: float = 0.1,
    threshold: float = 1e-6,
) -> Sensitivity:
    """Probe around the fit `u0` (its discrepancy `d0`): `trajectories(points)` gives each unit-box point's simulated
    trajectory as one flat vector (P, m), weighted as the discrepancy weighs positions and velocities, and its
    discrepancy (P,) from the same replay; `score(points)` the discrepancies alone. `free` marks the parameters with
    a range. Steps go inwards where `u0` lies within `step` of the box's upper edge."""
    u0 = np.asarray(u0, float)
    n = len(u0)
    free = np.asarray(free, bool)
    idx = [i for i in range(n) if free[i]]
    rise, profile = np.zeros(n), np.zeros(n)
    corr = np.full((n, n), np.nan)
    if not idx:
        return Sensitivity(rise, profile, corr, threshold, free, u0, np.zeros((0, n)), np.zeros((n, n)))
    move = np.where(u0 + step <= 1.0 + 1e-12, step, -step)  # signed step per parameter
    alone = [_moved(u0, {i: move[i]}) for i in idx]
    sims, sim_scores = trajectories([u0, *alone])
    sims = np.asarray(sims, float)
    jac = (sims[1:] - sims[0]).T / move[idx]  # (m, k): d trajectory / d u, one column per free parameter
    rise[idx] = np.asarray(sim_scores, float)[1:] - d0
    comp = np.zeros((n, n))
    compensated = []
    for a, i in enumerate(idx):
        others = _compensation(jac, a, move[i], u0, idx)
        effect = jac[:, a] * move[i]
        norm = float(effect @ effect)
        for j, d in others.items():
            comp[i, j] = -float(jac[:, idx.index(j)] * d @ effect) / norm if norm > 0 else 0.0
        compensated.append(_moved(u0, {i: move[i], **others}))
    profile_scores = np.asarray(score(compensated), float)
    profile[idx] = np.minimum(rise[idx], profile_scores - d0)
    probed = [*alone, *compensated]
    scores = np.concatenate([rise[idx] + d0, profile_scores])
    k_best = int(np.argmin(scores))
    best_u, best_score = (probed[k_best], float(scores[k_best])) if scores[k_best] < d0 else (None, math.inf)
    corr[np.ix_(idx, idx)] = _correlation(jac.T @ jac)
    full = np.zeros((jac.shape[0], n))
    full[:, idx] = jac
    return Sensitivity(rise, profile, corr, threshold, free, u0, full, comp, best_u, best_score)


def _moved(u0: np.ndarray, by: dict[int, float]) -> np.ndarray:
    u = u0.copy()
    for i, d in by.items():
        u[i] += d
    return np.clip(u, 0.0, 1.0)


def _compensation(jac: np.ndarray, a: int, move: float, u0: np.ndarray, idx: list[int]) -> dict[int, float]:
    """The other free parameters' least-squares move making up for column a's `move`, inside the unit box."""
    from scipy.optimize import lsq_linear

    others = [b for b in range(len(idx)) if b != a]
    if not others or not np.any(jac[:, others]):
        return {}
    u = u0[[idx[b] for b in others]]
    res = lsq_linear(jac[:, others], -jac[:, a] * move, bounds=(-u, 1.0 - u))
    return {idx[b]: float(d) for b, d in zip(others, res.x)}


def _correlation(info: np.ndarray) -> np.ndarray:
    """The correlation of the (pseudo-)inverse of the information matrix, its null directions floored."""
    vals, vecs = np.linalg.eigh(0.5 * (info + info.T))
    if not vals.max() > 0:  # the trajectories do not move with any parameter: no correlation to speak of
        return np.full(info.shape, np.nan)
    floor = 1e-12 * float(vals.max())
    cov = (vecs / np.maximum(vals, floor)) @ vecs.T
    sd = np.sqrt(np.diag(cov))
    return np.clip(cov / np.outer(sd, sd), -1.0, 1.0)
