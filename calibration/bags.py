"""Bags -> episodes: rosbag2 recordings of the real arm (our recorder's or `ros2 bag record`'s, MCAP or SQLite3) read
into control-rate `Episode`s, every fault of ROS.md B.4 37-48 handled and reported in the bag's `BagReport`."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from calibration.bag_settings import BagReadSettings
from calibration.bag_storage import (
    FORWARD_COMMANDS,
    JOINT_STATES,
    JOINT_TRAJECTORY,
    TOPIC_TYPES,
    BagStorage,
    Samples,
    bag_sha256,
    gather,
    storage_files,
    topic_role,
)
from calibration.bag_timeline import (
    FAR_NS,
    NS,
    Epoch,
    Interval,
    Series,
    halted_rows,
    hold,
    hold_offsets,
    interpolate,
    intersect,
    runs,
    split_epochs,
    subtract,
    true_runs,
)
from calibration.episodes import (
    AFTER_HALT,
    BEFORE_HALT,
    GAPS_RESAMPLED,
    REORDERED,
    SAMPLES_DROPPED,
    SATURATED,
    STATIC,
    UNEXCITED,
    VELOCITY_DIFFERENCED,
    BagReport,
    Episode,
)
from sim.robot import RobotDescription, panda


class _Skip(Exception):
    """The bag gives no episodes; the message says why."""


def read_bag(
    path: str | Path,
    joint_names: Sequence[str],
    control_dt_s: float = 0.04,
    settings: BagReadSettings | None = None,
    robot: RobotDescription | None = None,
) -> BagReport:
    """Read one bag (a rosbag2 folder, or a bare .mcap/.db3 file) into episodes of `joint_names` (the simulated
    arm's order, checked against `robot`, default the Panda) on a `control_dt_s` grid. Raises only for bad
    arguments: a bag that gives nothing comes back with `skipped` saying why, and all that was handled on the way
    is in `warnings`.

    The grid is in joint_states header time. An episode's row 0 is its first command (receive times mapped onto
    header time by the stamp-to-receive offset; a JointTrajectory's own stamp when set); every command takes effect
    at its nearest row and is held, so control jitter under half a period never moves it; the last command is
    held one more row. Positions and velocities are interpolated linearly from joint_states; velocities it lacks
    are central differences of the positions half a period either side."""
    reader = _BagReader(Path(path), tuple(joint_names), control_dt_s, settings or BagReadSettings(), robot or panda())
    try:
        reader.run()
    except _Skip as skip:
        reader.report.skipped = str(skip)
        reader.report.episodes = []
    return reader.report


def read_bags(
    paths: Iterable[str | Path],
    joint_names: Sequence[str],
    control_dt_s: float = 0.04,
    settings: BagReadSettings | None = None,
    robot: RobotDescription | None = None,
) -> list[BagReport]:
    """read_bag for each path, in order; an unexpected error in one bag skips that bag, never the run."""
    robot, settings = robot or panda(), settings or BagReadSettings()
    _arm_limits(tuple(joint_names), control_dt_s, robot)  # bad arguments raise here, not once per bag
    reports = []
    for path in paths:
        try:
            reports.append(read_bag(path, joint_names, control_dt_s, settings, robot))
        except Exception as err:  # a storage fault nobody foresaw: report it and go on with the other bags
            reports.append(BagReport(str(path), skipped=f"reading failed: {type(err).__name__}: {err}"))
    return reports


def collect_episodes(reports: Sequence[BagReport], min_total_s: float) -> list[Episode]:
    """Every episode of `reports`; refuses (ValueError, with each skipped bag's reason) when they last less than
    `min_total_s` in all: a calibration from too little data would only return its prior."""
    episodes = [e for r in reports for e in r.episodes]
    total_s = sum(e.duration_s for e in episodes)
    if total_s < min_total_s:
        why = "; ".join(f"{r.path}: {r.skipped}" for r in reports if r.skipped) or "no bag was skipped"
        raise ValueError(f"{total_s:.1f} s of usable episodes in {len(reports)} bag(s), need {min_total_s} s ({why})")
    return episodes


def _arm_limits(joints: tuple[str, ...], dt_s: float, robot: RobotDescription) -> tuple[np.ndarray, np.ndarray]:
    """Position limits (n, 2) (+-inf for a joint without) and velocity limits (n,) from the URDF; ValueError for
    joints the robot lacks or a control period <= 0."""
    by_name = {j.name: j for j in robot.joints}
    unknown = [n for n in joints if n not in by_name or by_name[n].type not in ("revolute", "continuous")]
    if unknown or not joints:
        raise ValueError(f"joints {unknown or list(joints)} are not revolute joints of {robot.name}")
    if not dt_s > 0:
        raise ValueError(f"control_dt_s must be > 0, got {dt_s}")
    limited = [by_name[n].lower < by_name[n].upper for n in joints]
    limits = np.array(
        [(by_name[n].lower, by_name[n].upper) if ok else (-np.inf, np.inf) for n, ok in zip(joints, limited)]
    )
    return limits, np.array([by_name[n].velocity or np.inf for n in joints])


class _BagReader:
    """One read_bag call: the steps in order, the report they fill."""

    def __init__(
        self, path: Path, joints: tuple[str, ...], dt_s: float, settings: BagReadSettings, robot: RobotDescription
    ):
        self.limits, self.vel_limits = _arm_limits(joints, dt_s, robot)
        self.path, self.joints, self.dt_s, self.s = path, joints, dt_s, settings
        self.dt_ns = int(round(dt_s * NS))
        self.forward = settings.forward_joint_names or tuple(robot.arm_joint_names)
        self.min_rows = int(math.ceil(settings.min_episode_s / dt_s - 1e-9)) + 1
        self.report = BagReport(str(path))
        self.warn = self.report.warnings.append
        self.lost: list[str] = []  # why stretches gave no episode (the skip reason when none remains)
        self.command_role = ""

    def run(self) -> None:
        if not self.path.exists():
            raise _Skip(f"{self.path} does not exist")
        if not storage_files(self.path) and not (self.path / "metadata.yaml").is_file():
            raise _Skip("no .mcap or .db3 storage file: not a rosbag2 bag")
        self.report.sha256 = bag_sha256(self.path)
        storage = BagStorage(self.path, self.s.default_typestore)
        got = gather(storage, self.joints, self.forward, self.s.namespace, self.s.halt_patterns)
        self.report.warnings.extend(storage.notes + got.notes)
        if storage.unreadable:
            if not storage.counts:
                raise _Skip("; ".join(storage.unreadable))
            self.report.warnings.extend(storage.unreadable)
        if not storage.topics:
            raise _Skip("the bag is empty: no topics, no messages")
        js = self._pick(got.joint_states, JOINT_STATES, storage.topics)
        cmd = self._pick(got.commands, "command", storage.topics)
        self.command_role = cmd.role
        self._check_plausible(js, cmd)
        epochs, self.report.latency_s = split_epochs(js, cmd, got.statuses, self.s, self.dt_ns, self.warn)
        if got.camera_offsets_ns:
            self.report.camera_latency_s = float(np.median(got.camera_offsets_ns)) / NS
        for epoch in epochs:
            self._episodes(epoch)
        if not self.report.episodes:
            lost = self.lost or ["joint_states and commands never overlap"]
            more = f" (+{len(lost) - 3} more)" if len(lost) > 3 else ""
            raise _Skip("no usable episode: " + "; ".join(lost[:3]) + more)

    # -- ROS.md B.4 39 and 41: the topics, the joints by name ----------------------------------------------------
    def _pick(self, found: dict[str, Samples], what: str, topics: dict[str, str]) -> Samples:
        """The one topic that carries the arm's joints, its name mapping logged; skip the bag without one."""
        roles = (JOINT_STATES,) if what == JOINT_STATES else (JOINT_TRAJECTORY, FORWARD_COMMANDS)
        carrying = {t: x for t, x in found.items() if x.present.any()}  # others (gripper/joint_states) are ignored
        if not carrying:
            names = sorted({n for x in found.values() for layout in x.layouts for n in layout})
            if names:
                raise _Skip(f"no {what} message carries the arm joints {list(self.joints)}; names seen: {names}")
            if malformed := [f"{t} ({x.malformed})" for t, x in sorted(found.items()) if x.malformed]:
                raise _Skip(
                    f"no {what} message has as many values as joint names: {', '.join(malformed)} "
                    f"(forward commands are read in the order {list(self.forward)})"
                )
            listed = sorted(t for t in topics if topic_role(t, self.s.namespace) in roles)
            if listed:
                types = sorted({TOPIC_TYPES[r] for r in roles})
                raise _Skip(f"no {what} messages of type {' or '.join(types)} on {', '.join(listed)}")
            where = f" under namespace {self.s.namespace!r}" if self.s.namespace is not None else ""
            raise _Skip(f"no {' or '.join(roles)} topic{where}; topics in the bag: {sorted(topics)}")
        if what == JOINT_STATES and len(carrying) > 1:
            raise _Skip(
                f"several joint_states topics carry the arm joints: {sorted(carrying)}; set "
                "BagReadSettings.namespace to choose one arm"
            )
        topic = max(sorted(carrying), key=lambda t: carrying[t].n_messages)
        for other in sorted(set(carrying) - {topic}):
            self.warn(f"commands read from {topic} ({carrying[topic].n_messages} messages); {other} ignored")
        samples = carrying[topic]
        missing = [n for n, ok in zip(self.joints, np.asarray(samples.present.any(axis=0))) if not ok]
        if missing:
            names = sorted({n for layout in samples.layouts for n in layout})
            raise _Skip(f"{topic} never carries the arm joints {missing} (names seen: {names}): bag rejected")
        if samples.n_messages < 2:
            raise _Skip(f"only {samples.n_messages} {what} message on {topic}: too little data")
        self._log_mapping(samples)
        return samples

    def _log_mapping(self, samples: Samples) -> None:
        topic, arm = samples.topic, set(self.joints)
        if samples.malformed:
            self.warn(f"{topic}: dropped {samples.malformed} messages whose values do not match their joint names")
        if samples.role == FORWARD_COMMANDS:
            self.warn(f"{topic}: values taken in the joint order {list(self.forward)}")
        extra = sorted({n for layout in samples.layouts for n in layout if n not in arm})
        if extra:
            self.warn(f"{topic}: ignored joints not in the arm: {extra}")
        model_order = [[n for n in lay if n in arm] != [n for n in self.joints if n in lay] for lay in samples.layouts]
        if any(model_order):
            layout = list(samples.layouts)[model_order.index(True)]
            self.warn(f"{topic}: joint order {list(layout)} differs from the model's: re-indexed by name")
        partial = [lay for lay in samples.layouts if not arm <= set(lay)]
        if partial:
            self.warn(
                f"{topic}: {len(partial)} name lists carry only some arm joints (e.g. {list(partial[0])}): merged"
            )

    # -- ROS.md B.4 45: units and signs -------------------------------------------------------------------------------
    def _check_plausible(self, js: Samples, cmd: Samples) -> None:
        """Positions, commands and velocities against the URDF: many implausible values reject the bag (units,
        sign), a few are dropped as glitches (set NaN in place)."""
        lo, hi = self.limits[:, 0] - self.s.limit_margin_rad, self.limits[:, 1] + self.s.limit_margin_rad
        for samples, what in ((js, "positions"), (cmd, "commands")):
            for j, name in enumerate(self.joints):
                values = samples.q[:, j]
                finite = samples.present[:, j] & np.isfinite(values)
                out = finite & ((values < lo[j]) | (values > hi[j]))
                share = out.sum() / max(finite.sum(), 1)
                if share > self.s.max_out_of_limits_fraction:
                    raise _Skip(self._implausible(samples.topic, what, name, values[finite], j, share))
                if out.any():
                    values[out] = np.nan
                    self.warn(f"{samples.topic}: dropped {out.sum()} {name} {what} outside the URDF limits (glitches)")
        cap = self.vel_limits * self.s.velocity_limit_factor
        for j, name in enumerate(self.joints):
            qd = js.qd[:, j]
            out = np.isfinite(qd) & (np.abs(qd) > cap[j])
            share = out.sum() / max(np.isfinite(qd).sum(), 1)
            if share > self.s.max_out_of_limits_fraction:
                raise _Skip(
                    f"{js.topic}: {share:.0%} of {name} velocities exceed {cap[j]:.2f} rad/s "
                    f"({self.s.velocity_limit_factor}x the URDF limit): recorded in deg/s? Bag skipped"
                )
            qd[out] = np.nan
        if not np.isfinite(js.qd).any():
            self.warn(f"{js.topic}: no velocities recorded: finite differences of the resampled positions")
        elif missing := int((js.present & ~np.isfinite(js.qd) & np.isfinite(js.q)).sum()):
            self.warn(f"{js.topic}: {missing} velocities missing or implausible: finite differences there")

    def _implausible(self, topic: str, what: str, name: str, values: np.ndarray, j: int, share: float) -> str:
        lower, upper = self.limits[j]
        m = self.s.limit_margin_rad
        peak = float(values[np.argmax(np.abs(values))])
        as_rad = np.deg2rad(values)
        if abs(peak) > math.pi + m and np.all((as_rad >= lower - m) & (as_rad <= upper + m)):
            hint = "recorded in degrees, not radians?"
        elif np.all((-values >= lower - m) & (-values <= upper + m)):
            hint = "the joint's sign convention is flipped?"
        else:
            hint = "wrong units, sign convention or robot?"
        return (
            f"{topic}: {share:.0%} of {name} {what} lie outside the URDF limits [{lower:.3f}, {upper:.3f}] rad "
            f"(up to {peak:.2f}): {hint} Bag skipped"
        )

    # -- ROS.md B.4 43 and 46: stretches, the grid, flags ------------------------------------------------------------
    def _episodes(self, epoch: Epoch) -> None:
        """Split at long gaps, silences and halts; each stretch long enough becomes episodes on the grid."""
        s, dt = self.s, self.dt_ns
        measured: list[Interval] = [(-FAR_NS, FAR_NS)]
        for series in epoch.series:
            measured = intersect(measured, runs(series.t_ns, int(s.max_gap_s * NS)))
        commanded: list[Interval] = [(-FAR_NS, FAR_NS)]
        for j in range(len(self.joints)):
            ok = np.isfinite(epoch.cmd_q[:, j])
            # a command takes effect at its nearest row and holds one period: it covers up to 1.5 periods after it
            commanded = intersect(commanded, runs(epoch.cmd_t_ns[ok], int(s.max_command_gap_s * NS), dt + dt // 2 - 1))
        if len(measured) > 1:
            self.warn(f"joint_states: split at {len(measured) - 1} gap(s) longer than max_gap_s {s.max_gap_s} s")
        if len(commanded) > 1:
            self.warn(f"commands: split at {len(commanded) - 1} silence(s) over {s.max_command_gap_s} s")
        any_cmd = epoch.cmd_t_ns[np.isfinite(epoch.cmd_q).any(axis=1)]
        for a, b in subtract(intersect(measured, commanded), epoch.halts):
            first = int(np.searchsorted(any_cmd, a, side="left"))
            if first < any_cmd.size and any_cmd[first] <= b:
                t0 = int(any_cmd[first])
                after, before = any(a == hi for _, hi in epoch.halts), any(b == lo for lo, _ in epoch.halts)
                self._grid(epoch, t0, (b - t0) // dt + 1, after, before)

    def _grid(self, epoch: Epoch, t0: int, n_rows: int, after: bool, before: bool) -> None:
        """Resample one stretch from row t0; exclude it when too many samples were bad; cut out e-stop rows."""
        s = self.s
        rows = t0 + np.arange(n_rows, dtype=np.int64) * self.dt_ns
        cmd = np.column_stack([self._hold(epoch, j, t0, n_rows) for j in range(len(self.joints))])
        sent = np.isfinite(epoch.cmd_q).any(axis=1)
        offset = hold_offsets(epoch.cmd_t_ns[sent], t0, self.dt_ns, n_rows)
        complete = np.isfinite(cmd).all(axis=1)
        lead = int(np.argmax(complete)) if complete.any() else n_rows
        rows, cmd, offset = rows[lead:], cmd[lead:], offset[lead:]
        if rows.size < self.min_rows:
            self.lost.append(f"a stretch at {t0} ns lasts {max(rows.size - 1, 0) * self.dt_s:.2f} s < min_episode_s")
            return
        lo_ns, hi_ns = int(rows[0]), int(rows[-1])
        bad = sum(_count(x.bad_ns, lo_ns, hi_ns) for x in epoch.series)
        good = sum(_count(x.t_ns, lo_ns, hi_ns) for x in epoch.series)
        if bad > s.max_bad_fraction * max(bad + good, 1):
            share = bad / (bad + good)
            self.lost.append(f"a stretch at {lo_ns} ns has {share:.0%} bad joint samples")
            self.warn(
                f"excluded {(rows.size - 1) * self.dt_s:.2f} s from {lo_ns} ns: {share:.0%} of its joint samples "
                f"were bad (> max_bad_fraction {s.max_bad_fraction})"
            )
            return
        q = np.column_stack([interpolate(x.t_ns, x.q, rows) for x in epoch.series])
        qd = np.column_stack([interpolate(x.t_ns, x.qd, rows) for x in epoch.series])
        differenced = ~np.isfinite(qd)
        for j in np.flatnonzero(differenced.any(axis=0)):
            qd[differenced[:, j], j] = self._difference(epoch.series[j], rows)[differenced[:, j]]
        window = max(int(round(s.halt_window_s / self.dt_s)), 2)
        halted = halted_rows(q, cmd, window, s.frozen_range_rad, s.halt_command_range_rad)
        if halted.any():
            self.warn(
                f"excluded {halted.sum() * self.dt_s:.2f} s from {rows[np.argmax(halted)]} ns: joint_states frozen "
                "while the commands moved (e-stop or brakes)"
            )
        for lo, hi in true_runs(~halted):
            if hi - lo < self.min_rows:
                self.lost.append(f"a stretch at {rows[lo]} ns lasts {(hi - lo - 1) * self.dt_s:.2f} s < min_episode_s")
                continue
            flags = list(epoch.flags)
            flags += [AFTER_HALT] if lo > 0 or after else []
            flags += [BEFORE_HALT] if hi < rows.size or before else []
            flags += self._flags(epoch, rows[lo:hi], q[lo:hi], cmd[lo:hi], differenced[lo:hi])
            self.report.episodes.append(
                Episode(
                    source=f"{self.path}#{len(self.report.episodes)}",
                    joint_names=self.joints,
                    dt_s=self.dt_s,
                    t0_ns=int(rows[lo]),
                    q_rad=q[lo:hi].copy(),
                    qd_rad_s=qd[lo:hi].copy(),
                    q_cmd_rad=cmd[lo:hi].copy(),
                    cmd_offset_s=offset[lo:hi].copy(),
                    command_topic=self.command_role,
                    flags=tuple(flags),
                )
            )

    def _difference(self, x: Series, rows: np.ndarray) -> np.ndarray:
        """Velocity (T,) at `rows` as the central difference of the measured positions half a period either side
        (a period's span: less noise than differencing 1 kHz samples, less lag than differencing the grid)."""
        hi = np.minimum(rows + self.dt_ns // 2, x.t_ns[-1])
        lo = np.maximum(rows - self.dt_ns // 2, x.t_ns[0])
        span_s = np.maximum(hi - lo, 1) / NS
        return np.asarray((interpolate(x.t_ns, x.q, hi) - interpolate(x.t_ns, x.q, lo)) / span_s)

    def _hold(self, epoch: Epoch, j: int, t0: int, n_rows: int) -> np.ndarray:
        ok = np.isfinite(epoch.cmd_q[:, j])
        return hold(epoch.cmd_t_ns[ok], epoch.cmd_q[ok, j], t0, self.dt_ns, n_rows)

    def _flags(self, epoch: Epoch, rows: np.ndarray, q: np.ndarray, cmd: np.ndarray, fd: np.ndarray) -> list[str]:
        s, lo_ns, hi_ns = self.s, int(rows[0]), int(rows[-1])
        flags = []
        for x in epoch.series:
            i, k = np.searchsorted(x.t_ns, [lo_ns, hi_ns])
            steps = np.diff(x.t_ns[max(i - 1, 0) : k + 1])
            if steps.size and steps.max() > s.resampled_gap_periods * x.period_ns:
                flags.append(GAPS_RESAMPLED)
                break
        if any(_count(x.bad_ns, lo_ns, hi_ns) for x in epoch.series):
            flags.append(SAMPLES_DROPPED)
        if any(_count(x.reordered_ns, lo_ns, hi_ns) for x in epoch.series):
            flags.append(REORDERED)
        if fd.any():
            flags.append(VELOCITY_DIFFERENCED)
        still = (q.max(axis=0) - q.min(axis=0)) < s.static_range_rad
        flags += [STATIC] if still.all() else [UNEXCITED + n for n, st in zip(self.joints, still) if st]
        m = s.saturation_margin_rad
        near = (cmd <= self.limits[:, 0] + m) | (cmd >= self.limits[:, 1] - m)
        flags += [SATURATED + n for n, share in zip(self.joints, near.mean(axis=0)) if share > s.saturated_fraction]
        return flags


def _count(sorted_ns: np.ndarray, lo_ns: int, hi_ns: int) -> int:
    """How many of `sorted_ns` lie in [lo_ns, hi_ns]."""
    return int(np.searchsorted(sorted_ns, hi_ns, side="right") - np.searchsorted(sorted_ns, lo_ns, side="left"))
