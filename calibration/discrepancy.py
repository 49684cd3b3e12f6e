"""How far a simulated joint trajectory is from a recorded one: the weighted L1 + L2 discrepancy of SimOpt
(Chebotar et al. 2019) over joint positions and velocities, one number per episode pair."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DiscrepancyWeights:
    """Weights of the four terms. Each term is a mean over rows and joints, so the discrepancy does not grow with an
    episode's length or the number of joints; velocities weigh less because they are noisier and ~10x larger."""

    position_l1: float = 1.0
    """Weight of mean |q_sim - q_rec| (rad)."""
    position_l2: float = 1.0
    """Weight of mean (q_sim - q_rec)^2 (rad^2)."""
    velocity_l1: float = 0.1
    """Weight of mean |qd_sim - qd_rec| (rad/s)."""
    velocity_l2: float = 0.01
    """Weight of mean (qd_sim - qd_rec)^2 (rad^2/s^2)."""

    def __post_init__(self) -> None:
        for name, w in self.__dict__.items():
            if not (np.isfinite(w) and w >= 0):
                raise ValueError(f"discrepancy weight {name} must be finite and >= 0, got {w}")


def discrepancy(
    q_sim_rad: np.ndarray,
    qd_sim_rad_s: np.ndarray,
    q_rec_rad: np.ndarray,
    qd_rec_rad_s: np.ndarray,
    weights: DiscrepancyWeights | None = None,
) -> float:
    """The weighted L1 + L2 discrepancy between a simulated and a recorded trajectory, all arrays (T, n):

    D = w_p1 mean|e_q| + w_p2 mean(e_q^2) + w_v1 mean|e_qd| + w_v2 mean(e_qd^2), e = simulated - recorded.
    0 for identical trajectories; ValueError for mismatched shapes or non-finite values."""
    w = weights or DiscrepancyWeights()
    arrays = [np.asarray(a, float) for a in (q_sim_rad, qd_sim_rad_s, q_rec_rad, qd_rec_rad_s)]
    if len({a.shape for a in arrays}) != 1 or arrays[0].ndim != 2:
        raise ValueError(f"trajectories must all be (T, n) of one shape, got {[a.shape for a in arrays]}")
    if not all(np.all(np.isfinite(a)) for a in arrays):
        raise ValueError("trajectories hold non-finite values")
    e_q, e_v = arrays[0] - arrays[2], arrays[1] - arrays[3]
    return float(
        w.position_l1 * np.mean(np.abs(e_q))
        + w.position_l2 * np.mean(e_q**2)
        + w.velocity_l1 * np.mean(np.abs(e_v))
        + w.velocity_l2 * np.mean(e_v**2)
    )
