"""The recorded trajectory as calibration consumes it: `Episode`, commanded and measured arm joints on a fixed
control-rate grid, joints in the simulated robot's order, plus what the reader found on the way (`BagReport`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Episode:
    """One stretch of a recording without large gaps, resampled to the control rate.

    Row k of every array is time `t0_ns + k * dt_s`. Commands are zero-order held (the last command received at or
    before the row's time), as a position controller holds its target."""

    source: str
    """Where it came from: the bag path and the episode's index in it."""
    joint_names: tuple[str, ...]
    """The arm joints, in the simulated robot's order (recordings are re-indexed by name)."""
    dt_s: float
    """Grid spacing: the control period the commands were sent at."""
    t0_ns: int
    """Header stamp (ns) of row 0."""
    q_rad: np.ndarray
    """(T, n) measured joint positions."""
    qd_rad_s: np.ndarray
    """(T, n) measured joint velocities (from joint_states; finite differences where the driver sent none)."""
    q_cmd_rad: np.ndarray
    """(T, n) commanded joint positions, held between commands."""
    command_topic: str = ""
    """The command topic the targets came from (joint_trajectory_controller/joint_trajectory or
    forward_position_controller/commands)."""
    flags: tuple[str, ...] = ()
    """What the reader noticed about this stretch (resampled gaps, dropped samples, saturation, a halt)."""

    @property
    def n_steps(self) -> int:
        """Rows on the grid."""
        return int(self.q_rad.shape[0])

    @property
    def duration_s(self) -> float:
        """Time from the first row to the last."""
        return (self.n_steps - 1) * self.dt_s


@dataclass
class BagReport:
    """What reading one bag gave: its episodes, or why it gave none, and every problem met on the way (each a line a
    user can act on). `skipped` bags give no episodes; the others may still carry warnings."""

    path: str
    """The bag folder or file."""
    episodes: list[Episode] = field(default_factory=list)
    """The usable stretches."""
    warnings: list[str] = field(default_factory=list)
    """Problems handled (a fallback taken, samples dropped, a gap resampled or split, a mapping applied)."""
    skipped: str = ""
    """Why the bag gave nothing (empty: it gave episodes)."""
    sha256: str = ""
    """SHA-256 over the bag's data files (provenance of a calibration)."""
