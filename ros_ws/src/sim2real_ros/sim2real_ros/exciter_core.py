"""The decisions of `sim2real excite` without ROS: its flags, the joint_states checks, the plan (a lead-in at the
start pose, the multisine of sim2real_ros.excitation, a settle at the start pose) streamed through the policy node's
SafetyGate with the policy node's default limits, the hold on stale or bad input, and the summary.

Times are passed in (`steady_s`: a steady clock for the staleness watchdog; `ros_s`: the node's clock, compared
with header stamps), so every rule is unit-tested on plain values.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from policies.safety import SafetyGate, SafetyLimits
from sim2real_ros.controller_config import COMMAND_INTERFACES, JOINT_TRAJECTORY
from sim2real_ros.dataclass_flags import add_config_flags, given_fields
from sim2real_ros.excitation import Excitation, ExcitationSpec, multisine
from sim2real_ros.messages import MessageError, check_stamp, joint_positions, limits_violation
from sim2real_ros.policy_core import CoreSettings

SCRIPT = "sim2real excite"
#: The bundles' control rate: one command per period.
CONTROL_RATE_HZ = 25.0
EXIT_OK, EXIT_FAULT, EXIT_REFUSED, EXIT_SIGINT, EXIT_SIGTERM = 0, 1, 2, 130, 143


class ExciteError(ValueError):
    """An excitation that cannot start (a bad flag); nothing was sent. The message names the flag."""


@dataclass(frozen=True)
class ExciteOptions:
    """`sim2real excite`'s flags."""

    duration_s: float = 20.0
    """Length of the excitation (s), its ramps included; lead-in and settle come on top."""
    seed: int = 0
    """Seed of the sines' frequencies and phases."""
    controller: str = JOINT_TRAJECTORY
    """Command interface: joint_trajectory | forward_position."""
    amplitude_rad: float = 0.2
    """Largest excursion of a joint from the start pose (rad); shrunk near limits and to keep the velocity cap."""
    max_velocity_rad_s: float = 0.5
    """Cap on every joint's commanded speed (rad/s); at most the policy node's max_joint_velocity_rad_s."""
    namespace: str = ""
    """Namespace of the node and its topics."""
    startup_timeout_s: float = 10.0
    """How long to wait for fresh joint_states and a controller subscribed to the command topic."""
    lead_in_s: float = 3.0
    """The start pose is commanded this long before the motion: DDS discovery of a new publisher took up to 2.5 s
    here, so a recorder started alongside subscribes to the command topic before the motion."""
    settle_s: float = 1.0
    """The start pose is commanded this long after the motion, then the remaining error is measured."""
    joint_state_timeout_s: float = CoreSettings.joint_state_timeout_s
    """joint_states older than this are stale: hold and exit non-zero (the policy node's default)."""
    urdf: str = ""
    """The arm's URDF, for its joint names and limits; empty: the Panda that pybullet ships (the sim extra)."""

    def core_settings(self) -> CoreSettings:
        """The policy node's safety settings with this staleness timeout."""
        return replace(CoreSettings(), joint_state_timeout_s=self.joint_state_timeout_s)

    def spec(self) -> ExcitationSpec:
        return ExcitationSpec(
            duration_s=self.duration_s,
            amplitude_rad=self.amplitude_rad,
            max_velocity_rad_s=self.max_velocity_rad_s,
            rate_hz=CONTROL_RATE_HZ,
        )


def check_options(options: ExciteOptions, settings: CoreSettings | None = None) -> None:
    """ExciteError naming the flag that cannot run."""
    s = settings or CoreSettings()
    cap = s.max_joint_velocity_rad_s * s.velocity_scale
    if options.controller not in COMMAND_INTERFACES:
        raise ExciteError(f"--controller must be one of {list(COMMAND_INTERFACES)}, got {options.controller!r}")
    if not (math.isfinite(options.max_velocity_rad_s) and 0 < options.max_velocity_rad_s <= cap):
        raise ExciteError(
            f"--max-velocity-rad-s must be in (0, {cap:g}] (the safety gate's cap), got {options.max_velocity_rad_s}"
        )
    if not (math.isfinite(options.amplitude_rad) and 0 < options.amplitude_rad <= 1.0):
        raise ExciteError(f"--amplitude-rad must be in (0, 1], got {options.amplitude_rad}")
    for flag, value in (
        ("--duration-s", options.duration_s),
        ("--startup-timeout-s", options.startup_timeout_s),
        ("--joint-state-timeout-s", options.joint_state_timeout_s),
    ):
        if not (math.isfinite(value) and value > 0):
            raise ExciteError(f"{flag} must be a positive number of seconds, got {value}")
    if not (math.isfinite(options.lead_in_s) and 0 <= options.lead_in_s <= 60):
        raise ExciteError(f"--lead-in-s must be in [0, 60] s, got {options.lead_in_s}")
    try:
        options.spec().check()
    except ValueError as e:
        raise ExciteError(f"--duration-s: {e}") from None


def add_excite_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of `sim2real excite` (and its node), generated from ExciteOptions' fields and docstrings."""
    add_config_flags(parser, ExciteOptions, {"controller": COMMAND_INTERFACES}, skip=("settle_s",))


def options_from_args(args: argparse.Namespace) -> ExciteOptions:
    """ExciteOptions with the flags given on top of its defaults."""
    return ExciteOptions(**given_fields(args, ExciteOptions))


@dataclass
class ExciteSummary:
    """What an excitation did (printed at the end, also after a fault)."""

    outcome: str
    """done | fault | SIGINT | SIGTERM."""
    reason: str = ""
    """Why it stopped early (one line), '' when done."""
    topic: str = ""
    duration_s: float = 0.0
    """Time spent commanding (s)."""
    sent: int = 0
    """Commands published (holds included)."""
    rejected: int = 0
    """Targets the safety gate refused (held instead)."""
    limited: int = 0
    """Commands the gate clamped or rate-limited (0 for a signal inside its limits)."""
    peak_velocity_rad_s: float = 0.0
    """Largest commanded joint speed between consecutive commands."""
    final_error_rad: float = math.nan
    """Largest |measured - start pose| at the end (NaN when it did not end normally)."""
    amplitude_rad: list[float] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return {"done": EXIT_OK, "SIGINT": EXIT_SIGINT, "SIGTERM": EXIT_SIGTERM}.get(self.outcome, EXIT_FAULT)


def format_summary(s: ExciteSummary) -> str:
    """The summary line(s) `sim2real excite` prints."""
    head = (
        f"excited {s.duration_s:.1f} s on {s.topic}: {s.sent} commands sent, {s.rejected} rejected by the safety gate"
        f" ({s.limited} limited), peak commanded velocity {s.peak_velocity_rad_s:.3f} rad/s"
    )
    if s.outcome == "done":
        amp = ", ".join(f"{a:.3f}" for a in s.amplitude_rad)
        return f"{head}; back at the start pose within {s.final_error_rad:.4f} rad\n  amplitudes (rad): {amp}"
    return f"{SCRIPT}: {s.outcome}: {s.reason}; held at the measured pose\n  {head}"


class ExciterCore:
    """Checks joint_states, plans from the measured start pose and filters each tick's target through the gate."""

    def __init__(self, joint_names: Sequence[str], limits_rad: np.ndarray, settings: CoreSettings | None = None):
        self.settings = s = settings or CoreSettings()
        self.joint_names = list(joint_names)
        self.limits_rad = np.asarray(limits_rad, float)
        self.period_s = 1.0 / CONTROL_RATE_HZ
        self.gate = SafetyGate(
            SafetyLimits(
                self.limits_rad[:, 0], self.limits_rad[:, 1], margin_rad=s.position_margin_rad,
                max_velocity_rad_s=s.max_joint_velocity_rad_s * s.velocity_scale, control_period_s=self.period_s,
                max_consecutive_rejects=s.max_consecutive_invalid,
            )
        )  # fmt: skip
        self.q: np.ndarray | None = None
        self.js_steady_s = -math.inf
        self.fault: str | None = None
        self.plan: np.ndarray | None = None
        self.excitation: Excitation | None = None
        self.row = 0
        self.last_command: np.ndarray | None = None
        self.summary = ExciteSummary("running")

    def on_joint_state(
        self,
        names: Sequence[str],
        position: Sequence[float],
        velocity: Sequence[float],
        stamp_s: float,
        ros_s: float,
        steady_s: float,
    ) -> str | None:
        """Take a sensor_msgs/JointState; a bad one latches a fault (returned), as do later ones only the first."""
        s = self.settings
        try:
            check_stamp("joint_states", stamp_s, ros_s, s.max_stamp_age_s, s.max_stamp_lead_s)
            q, _ = joint_positions(names, position, velocity, self.joint_names)
            reason = limits_violation(q, self.joint_names, self.limits_rad, s.joint_limit_tolerance_rad)
            if reason is not None:
                raise MessageError(reason)
        except MessageError as e:
            self.fault = self.fault or f"bad joint_states: {e}"
            return self.fault
        self.q, self.js_steady_s = q, steady_s
        return None

    def stale(self, steady_s: float) -> str | None:
        """Why the joint_states cannot be acted on now (None: fresh)."""
        if self.q is None:
            return "no valid joint_states received"
        age = steady_s - self.js_steady_s
        if age > self.settings.joint_state_timeout_s:
            return f"joint_states stale ({age:.2f} s > {self.settings.joint_state_timeout_s} s)"
        return None

    def start(self, options: ExciteOptions) -> Excitation:
        """Plan from the measured pose: lead-in at q0, the multisine, settle at q0. ExciteError if q0 is unsafe."""
        assert self.q is not None
        q0 = self.q.copy()
        lo = self.limits_rad[:, 0] + self.settings.position_margin_rad
        hi = self.limits_rad[:, 1] - self.settings.position_margin_rad
        near = [self.joint_names[i] for i in np.flatnonzero((q0 < lo) | (q0 > hi))]
        if near:
            raise ExciteError(f"joints {near} start within the safety margin of their limits; move them away first")
        ex = multisine(q0, self.limits_rad[:, 0], self.limits_rad[:, 1], options.spec(), options.seed)
        lead = np.repeat(q0[None], int(round(options.lead_in_s / self.period_s)), axis=0)
        settle = np.repeat(q0[None], int(round(options.settle_s / self.period_s)), axis=0)
        self.plan = np.concatenate([lead, ex.q_rad, settle])
        self.excitation, self.row = ex, 0
        self.gate.reset(q0)
        self.last_command = q0
        self.summary.amplitude_rad = [float(a) for a in ex.amplitude_rad]
        return ex

    @property
    def done(self) -> bool:
        return self.plan is not None and self.row >= len(self.plan)

    def tick(self, steady_s: float) -> tuple[np.ndarray | None, str | None]:
        """One control period: (command to publish, fault). A fault's command is the hold (measured joints)."""
        assert self.plan is not None and self.last_command is not None
        reason = self.fault or self.stale(steady_s)
        if reason is not None:
            return self.hold_command(), reason
        target = self.plan[self.row]
        result = self.gate.filter(target)
        if result.status != "ok":
            self.summary.rejected += 1
            if result.status == "halted":
                return self.hold_command(), "safety gate halted: " + "; ".join(result.reasons)
        elif np.max(np.abs(result.command_rad - target)) > 1e-9:  # not round-off in last + step
            self.summary.limited += 1
        self.row += 1
        cmd = result.command_rad
        speed = float(np.max(np.abs(cmd - self.last_command))) / self.period_s
        self.summary.peak_velocity_rad_s = max(self.summary.peak_velocity_rad_s, speed)
        self.last_command = cmd
        return cmd, None

    def hold_command(self) -> np.ndarray | None:
        """Hold = the last measured joints (None before any valid joint_states)."""
        return None if self.q is None else self.q.copy()

    def final_error_rad(self) -> float:
        if self.q is None or self.excitation is None:
            return math.nan
        return float(np.max(np.abs(self.q - self.excitation.q0_rad)))
