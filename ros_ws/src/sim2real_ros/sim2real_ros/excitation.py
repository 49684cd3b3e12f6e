"""The excitation signal of `sim2real excite` (numpy only): per joint a multisine around the start pose, windowed
so it starts and ends at the start pose with zero velocity, inside the joint limits and under a velocity cap.

Joint j moves as q0_j + A_j w(t) s_j(t) / max|s_j|, where s_j is a sum of `n_sines` sines with seeded random
phases, w a raised-cosine window (0 -> 1 over the first `ramp_s`, 1 -> 0 over the last), and the frequencies a
log-spaced grid over [f_min_hz, f_max_hz] shuffled across joints, so no two joints share one (their responses
separate in a spectrum: informative for damping, friction and gain identification). The amplitude A_j starts at
`amplitude_rad` and shrinks (1) to keep q0_j +- A_j `limit_margin_rad` inside the joint's limits and (2) so the
peak speed, on a grid 20x finer than the control rate, stays under `max_velocity_rad_s` with a 5% reserve; the speed
between consecutive control samples is then below it too (their mean over the interval).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Velocity reserve: the dense-grid peak is scaled to this share of the cap.
VELOCITY_RESERVE = 0.95
#: Dense-grid points per control period for the velocity bound.
OVERSAMPLE = 20


@dataclass(frozen=True)
class ExcitationSpec:
    """How the excitation is shaped (the defaults of `sim2real excite`)."""

    duration_s: float = 20.0
    """Length of the windowed signal (s), ramps included."""
    amplitude_rad: float = 0.2
    """Largest excursion of a joint from the start pose (rad), before the limit and velocity scaling."""
    max_velocity_rad_s: float = 0.5
    """Cap on every joint's commanded speed (rad/s)."""
    ramp_s: float = 2.0
    """Raised-cosine ramp in and out (s); at most a quarter of duration_s is used."""
    n_sines: int = 4
    """Sines per joint."""
    f_min_hz: float = 0.1
    f_max_hz: float = 1.0
    """Frequency band of the sines (Hz)."""
    limit_margin_rad: float = 0.1
    """Distance kept from every joint limit (rad); more than the safety gate's margin, so the gate never clamps."""
    rate_hz: float = 25.0
    """Control rate: one sample per period."""

    def check(self) -> None:
        """ValueError naming the field that cannot make a signal."""
        if not (np.isfinite(self.duration_s) and self.duration_s >= 4.0 / self.rate_hz):
            raise ValueError(f"duration_s must be finite and at least 4 control periods, got {self.duration_s}")
        if not (np.isfinite(self.amplitude_rad) and self.amplitude_rad >= 0):
            raise ValueError(f"amplitude_rad must be finite and >= 0, got {self.amplitude_rad}")
        if not (np.isfinite(self.max_velocity_rad_s) and self.max_velocity_rad_s > 0):
            raise ValueError(f"max_velocity_rad_s must be finite and > 0, got {self.max_velocity_rad_s}")
        if not (np.isfinite(self.rate_hz) and self.rate_hz > 0):
            raise ValueError(f"rate_hz must be > 0, got {self.rate_hz}")
        if self.n_sines < 1:
            raise ValueError(f"n_sines must be >= 1, got {self.n_sines}")
        if not (0 < self.f_min_hz <= self.f_max_hz < self.rate_hz / 2):
            raise ValueError(f"need 0 < f_min_hz <= f_max_hz < rate_hz / 2, got {self.f_min_hz}, {self.f_max_hz}")
        if not (np.isfinite(self.ramp_s) and self.ramp_s > 0) or not self.limit_margin_rad >= 0:
            raise ValueError("ramp_s must be > 0 and limit_margin_rad >= 0")


@dataclass(frozen=True)
class Excitation:
    """The sampled signal: row k is the target at t_s[k] = k / rate_hz."""

    t_s: np.ndarray
    """(T,) sample times from 0 (s)."""
    q_rad: np.ndarray
    """(T, n) joint targets; rows 0 and T-1 equal q0."""
    q0_rad: np.ndarray
    """(n,) the start pose."""
    amplitude_rad: np.ndarray
    """(n,) each joint's excursion after the limit and velocity scaling (0: the joint stays still)."""
    frequencies_hz: np.ndarray
    """(n, n_sines) each joint's sine frequencies (all distinct)."""
    phases_rad: np.ndarray
    """(n, n_sines) their phases."""

    @property
    def period_s(self) -> float:
        return float(self.t_s[1] - self.t_s[0])

    @property
    def peak_velocity_rad_s(self) -> float:
        """Largest speed between consecutive samples, over all joints."""
        return float(np.max(np.abs(np.diff(self.q_rad, axis=0))) / self.period_s)


def window(t_s: np.ndarray, duration_s: float, ramp_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Raised-cosine window and its time derivative at t_s: 0 at both ends with zero slope, 1 in between."""
    t = np.asarray(t_s, float)
    w, dw = np.ones_like(t), np.zeros_like(t)
    for x, sign in ((t, 1.0), (duration_s - t, -1.0)):
        ramp = x < ramp_s
        phase = np.pi * np.clip(x[ramp], 0.0, ramp_s) / ramp_s
        w[ramp] = np.minimum(w[ramp], 0.5 * (1.0 - np.cos(phase)))
        dw[ramp] = sign * 0.5 * np.pi / ramp_s * np.sin(phase)
    return w, dw


def multisine(
    q0_rad: np.ndarray, lower_rad: np.ndarray, upper_rad: np.ndarray, spec: ExcitationSpec, seed: int
) -> Excitation:
    """The excitation around q0 (n,) for joints with limits lower/upper (n,); deterministic for a seed."""
    spec.check()
    q0 = np.asarray(q0_rad, float)
    lo, hi = np.asarray(lower_rad, float), np.asarray(upper_rad, float)
    if q0.ndim != 1 or lo.shape != q0.shape or hi.shape != q0.shape or not np.all(np.isfinite(q0)):
        raise ValueError(f"q0 and the limits must be finite (n,) arrays, got {q0.shape}, {lo.shape}, {hi.shape}")
    n, k = q0.size, spec.n_sines
    rng = np.random.default_rng(seed)
    grid = np.geomspace(spec.f_min_hz, spec.f_max_hz, n * k) if n * k > 1 else np.array([spec.f_min_hz])
    freqs = np.sort(rng.permutation(grid).reshape(n, k), axis=1)
    phases = rng.uniform(0.0, 2 * np.pi, size=(n, k))

    period_s = 1.0 / spec.rate_hz
    n_samples = int(round(spec.duration_s * spec.rate_hz)) + 1
    duration_s = (n_samples - 1) * period_s
    ramp_s = min(spec.ramp_s, duration_s / 4)
    dense = np.linspace(0.0, duration_s, (n_samples - 1) * OVERSAMPLE + 1)  # includes every control sample
    arg = 2 * np.pi * freqs[None] * dense[:, None, None] + phases[None]  # (D, n, k)
    s = np.sin(arg).sum(axis=2)  # (D, n)
    ds = (2 * np.pi * freqs[None] * np.cos(arg)).sum(axis=2)
    w, dw = window(dense, duration_s, ramp_s)
    peak = np.max(np.abs(w[:, None] * s), axis=0)  # normalise what the window lets through
    shape, dshape = w[:, None] * s / peak, (dw[:, None] * s + w[:, None] * ds) / peak

    room = np.minimum(q0 - (lo + spec.limit_margin_rad), (hi - spec.limit_margin_rad) - q0)
    amp = np.clip(np.minimum(spec.amplitude_rad, room), 0.0, None)
    v_unit = np.max(np.abs(dshape), axis=0)  # peak speed per rad of amplitude
    amp = np.minimum(amp, VELOCITY_RESERVE * spec.max_velocity_rad_s / v_unit)
    q = q0 + amp * shape[::OVERSAMPLE]
    q[0], q[-1] = q0, q0  # the window is exactly 0 there; no round-off either
    return Excitation(np.arange(n_samples) * period_s, q, q0.copy(), amp, freqs, phases)
