"""How bags become episodes: `BagReadSettings`, the reader's thresholds (gaps, bad samples, clocks, units, halts)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BagReadSettings:
    """How bags become episodes. The defaults suit a 25 Hz position-controlled arm with joint_states at 25-1000 Hz."""

    namespace: str | None = None
    """Read only topics under this namespace (e.g. "/arm1"); None: any, refused when several arms' topics match."""
    forward_joint_names: tuple[str, ...] | None = None
    """The joint order of forward_position_controller/commands values; None: the model's arm order."""
    max_gap_s: float = 0.1
    """joint_states gaps up to this long are bridged by interpolation; longer ones split the episode."""
    max_command_gap_s: float = 0.2
    """Commands are held across silences up to this long; longer ones split the episode."""
    resampled_gap_periods: float = 2.5
    """A bridged gap longer than this many median joint_states periods flags the episode gaps_resampled."""
    min_episode_s: float = 1.0
    """Shorter stretches are dropped (and reported)."""
    max_bad_fraction: float = 0.1
    """Stretches where a larger share of joint samples was dropped (NaN/inf, duplicate or zero stamps, outside
    the limits) are excluded."""
    zero_stamp_fraction: float = 0.5
    """When more joint_states than this share carry stamp 0, receive times replace all their stamps; else those
    samples are dropped."""
    clock_jump_s: float = 1.0
    """Header stamps and receive times that disagree by more than this between consecutive joint_states are a
    clock jump: the recording is split there and each side gets its own stamp-to-receive-time offset."""
    synced_clock_s: float = 0.02
    """A stamp-to-receive offset within this is transport latency on synchronised clocks (same host, or NTP/PTP):
    commands without a header stamp then keep their receive times, when the controller got them as the recorder
    did (the joint_states' latency is theirs alone); a larger offset is a clock difference and is mapped out."""
    max_latency_s: float = 0.5
    """A median stamp-to-receive offset (joint_states, camera) between 0 and this is a latency, which calibration
    writes into the observation and image delays; outside it, a clock difference (unsynchronised hosts, sim time),
    and no delay is derived from it."""
    clock_drift_s: float = 0.05
    """The stamp-to-receive offset (a running median, which maps receive times onto header time) changing by more
    than this within a clock epoch flags clock_drift."""
    sim_time_before_s: float = 1e9
    """Header stamps before this (s since 1970; 1e9 is September 2001) are simulated time: flagged sim_time."""
    limit_margin_rad: float = 0.05
    """Positions (measured or commanded) this far outside the URDF limits are implausible."""
    max_out_of_limits_fraction: float = 0.01
    """A joint with a larger share of implausible positions or velocities rejects the bag (degrees instead of
    radians, a flipped sign); fewer are dropped as glitches."""
    velocity_limit_factor: float = 2.0
    """Measured velocities above this multiple of the URDF velocity limit are implausible."""
    static_range_rad: float = 0.005
    """A joint moving less than this over an episode is flagged unexcited:<joint>; all of them: static."""
    saturation_margin_rad: float = 0.01
    """Commands within this of a URDF limit are saturated..."""
    saturated_fraction: float = 0.05
    """...and a joint whose commands are saturated on more than this share of rows is flagged saturated:<joint>."""
    halt_window_s: float = 0.5
    """Window of the e-stop test: joint_states frozen while commands move."""
    frozen_range_rad: float = 1e-3
    """Joints moving less than this over the window are frozen..."""
    halt_command_range_rad: float = 0.02
    """...and commands moving more than this over the same window mean the arm ignored them: halted, excluded."""
    halt_patterns: tuple[str, ...] = ("halted", "e-stop", "emergency stop")
    """/diagnostics messages containing one of these (any case) mark the arm halted until the status clears."""
    command_rate_tolerance: float = 0.1
    """Commands whose median period differs from control_dt_s by more than this share are reported."""
    default_typestore: str = "ros2_kilted"
    """rosbags typestore (rosbags.typesys.Stores value) for messages whose bag stores no usable definition."""
