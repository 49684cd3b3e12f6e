"""The recorded trajectory as calibration consumes it: `Episode`, commanded and measured arm joints on a fixed
control-rate grid, joints in the simulated robot's order, plus what the reader found on the way (`BagReport`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Episode.flags the bag reader sets; `<joint>` stands for a joint name.
GAPS_RESAMPLED = "gaps_resampled"  # joint_states gaps shorter than the split threshold were bridged by interpolation
SAMPLES_DROPPED = "samples_dropped"  # NaN/inf, duplicate, zero-stamp or out-of-limit samples were dropped
REORDERED = "reordered"  # samples arrived out of header-stamp order and were sorted
VELOCITY_DIFFERENCED = "velocity_differenced"  # some rows' velocities are finite differences (none recorded)
COMMAND_RATE = "command_rate_mismatch"  # commands arrived at another rate than the control period
SIM_TIME = "sim_time"  # header stamps are simulated time, not wall-clock time
CLOCK_DRIFT = "clock_drift"  # the stamp-to-receive-time offset varies: command times are approximate
STATIC = "static"  # no joint moved: nothing is identifiable from this episode (keep prior ranges)
UNEXCITED = "unexcited:"  # + <joint>: this joint did not move
SATURATED = "saturated:"  # + <joint>: its commands sat at a URDF limit
BEFORE_HALT = "before_halt"  # the episode ends where a halted (excluded) stretch begins
AFTER_HALT = "after_halt"  # the episode starts where a halted (excluded) stretch ends


@dataclass(frozen=True)
class Episode:
    """One stretch of a recording without large gaps, resampled to the control rate.

    Row k of every array is time `t0_ns + k * dt_s`. Each command sits on the row nearest its stamp (row k is the tick
    command k was sent at, so jitter under half a period never shifts it) and is held until the next, as a position
    controller holds its target."""

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
    cmd_offset_s: np.ndarray | None = None
    """(T,) each row's command's send time minus the row's time (within half a period; 0 on rows no new command
    reached); None: commands sat exactly on their rows. The replay applies them at their recorded times."""
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
    latency_s: float | None = None
    """Median receive (log) time minus header stamp of the joint_states, in s: transport latency, or a clock offset
    when large (unsynchronised clocks, sim time). None when the stamps were unusable and receive times replaced
    them."""
    camera_latency_s: float | None = None
    """The same for the camera's frames (camera_info, else image_raw): None when the bag has no camera topic with
    stamps."""
