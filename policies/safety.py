"""The safety gate between a policy's output and the joint command sent to a real arm (numpy only).

Order, per control tick (ROS.md): reject a non-finite or mis-shaped target and hold, never repair it; clamp to the
joint limits minus a margin; limit each joint's change to max velocity x control period; after K consecutive
rejections latch a halt that only `resume()` clears. Every command it returns is finite, inside the margin-reduced
limits and within one tick's velocity budget of the previous command.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class SafetyLimits:
    """Limits the gate enforces. Arrays are per joint, in the bundle's joint order."""

    lower_rad: np.ndarray
    """Lower joint limits (n,) rad."""
    upper_rad: np.ndarray
    """Upper joint limits (n,) rad."""
    margin_rad: np.ndarray | float = 0.05
    """Distance kept from every limit ((n,) or one value; rad, or m for a finger)."""
    max_velocity_rad_s: np.ndarray | float = 1.0
    """Largest joint speed a command may ask for ((n,) or one value), rad/s."""
    control_period_s: float = 0.04
    """Time between commands (1 / control rate)."""
    max_consecutive_rejects: int = 3
    """Rejected targets in a row before the gate latches a halt (K)."""

    def __post_init__(self) -> None:
        lo, hi = np.asarray(self.lower_rad, float), np.asarray(self.upper_rad, float)
        if lo.shape != hi.shape or lo.ndim != 1 or not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            raise ValueError(f"joint limits must be two finite (n,) arrays, got {lo.shape} and {hi.shape}")
        margin = np.broadcast_to(np.asarray(self.margin_rad, float), lo.shape)
        if not np.all(margin >= 0) or np.any(hi - lo <= 2 * margin):
            raise ValueError(f"margin_rad {self.margin_rad} must be >= 0 and leave room inside every joint range")
        v = np.broadcast_to(np.asarray(self.max_velocity_rad_s, float), lo.shape)
        if not (np.all(np.isfinite(v)) and np.all(v > 0)):
            raise ValueError(f"max_velocity_rad_s must be finite and > 0, got {self.max_velocity_rad_s}")
        if not (np.isfinite(self.control_period_s) and self.control_period_s > 0):
            raise ValueError(f"control_period_s must be > 0, got {self.control_period_s}")
        if self.max_consecutive_rejects < 1:
            raise ValueError(f"max_consecutive_rejects must be >= 1, got {self.max_consecutive_rejects}")

    @property
    def n(self) -> int:
        return int(np.asarray(self.lower_rad).shape[0])


@dataclass
class GateResult:
    """What the gate decided for one tick: the command to send and why."""

    command_rad: np.ndarray
    """The joint-position command (n,) to publish (a hold repeats the previous command)."""
    status: str
    """ok | hold (target rejected this tick) | halted (latched until resume)."""
    reasons: list[str] = field(default_factory=list)
    """What was rejected, clamped or rate-limited this tick."""


class SafetyGate:
    """Filters policy targets into safe commands. Call `reset(measured_q)` before the first tick."""

    def __init__(self, limits: SafetyLimits) -> None:
        self.limits = limits
        margin = np.broadcast_to(np.asarray(limits.margin_rad, float), np.shape(limits.lower_rad))
        self._lo = np.asarray(limits.lower_rad, float) + margin
        self._hi = np.asarray(limits.upper_rad, float) - margin
        self._step = np.broadcast_to(np.asarray(limits.max_velocity_rad_s, float), self._lo.shape) * (
            limits.control_period_s
        )
        self._last: np.ndarray | None = None
        self.rejects = 0
        self.halted = False

    def reset(self, measured_q_rad: np.ndarray) -> None:
        """Start from the measured joints (clamped into the safe box); clears the reject counter, not a halt."""
        q = np.asarray(measured_q_rad, float)
        if q.shape != self._lo.shape or not np.all(np.isfinite(q)):
            raise ValueError(f"measured joints must be finite with shape {self._lo.shape}, got {q.shape}")
        self._last = np.clip(q, self._lo, self._hi)
        self.rejects = 0

    def resume(self, measured_q_rad: np.ndarray) -> None:
        """Clear a latched halt and restart from the measured joints."""
        self.halted = False
        self.reset(measured_q_rad)

    def set_max_velocity(self, max_velocity_rad_s: np.ndarray | float) -> None:
        """A new velocity limit ((n,) or one value, rad/s, finite and > 0) from the next tick on; the caller decides
        when raising it is allowed (the node allows only lowering it while active)."""
        v = np.broadcast_to(np.asarray(max_velocity_rad_s, float), self._lo.shape)
        if not (np.all(np.isfinite(v)) and np.all(v > 0)):
            raise ValueError(f"max_velocity_rad_s must be finite and > 0, got {max_velocity_rad_s}")
        self._step = v * self.limits.control_period_s

    def halt(self) -> GateResult:
        """Latch a halt now (the ~/halt service): hold the last command from here on."""
        self.halted = True
        return self._hold("halted", ["halt requested"])

    def reject(self, reason: str) -> GateResult:
        """Refuse this tick's target (also for failures before the gate, such as a model error): hold the last
        command and count it; the K-th reject in a row latches a halt."""
        self.rejects += 1
        if self.rejects >= self.limits.max_consecutive_rejects:
            self.halted = True
            return self._hold("halted", [reason, f"{self.rejects} rejects in a row: halt latched"])
        return self._hold("hold", [reason])

    def filter(self, target_rad: object) -> GateResult:
        """One tick: the policy's joint target in, the command to publish out."""
        if self._last is None:
            raise RuntimeError("SafetyGate.filter before reset(measured_q): no command to hold")
        if self.halted:
            return self._hold("halted", ["halted: call resume"])
        try:
            t = np.asarray(target_rad, dtype=float)
        except (TypeError, ValueError):
            t = np.full(1, np.nan)
        reason = None
        if t.shape != self._lo.shape:
            reason = f"target shape {t.shape}, expected {self._lo.shape}"
        elif not np.all(np.isfinite(t)):
            reason = f"non-finite target at joints {np.flatnonzero(~np.isfinite(t)).tolist()}"
        if reason is not None:
            return self.reject(reason)
        self.rejects = 0
        reasons = []
        clamped = np.clip(t, self._lo, self._hi)
        if np.any(clamped != t):
            reasons.append("clamped to limits minus margin")
        step = np.clip(clamped - self._last, -self._step, self._step)
        command = self._last + step
        if np.any(command != clamped):
            reasons.append("rate-limited")
        # round-off can put last + step a hair outside the box: the box wins
        command = np.clip(command, self._lo, self._hi)
        self._last = command
        return GateResult(command.copy(), "ok", reasons)

    def _hold(self, status: str, reasons: list[str]) -> GateResult:
        assert self._last is not None
        return GateResult(self._last.copy(), status, reasons)
