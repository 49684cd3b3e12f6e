"""One clock for a bag's signals and the control-rate grid: header-stamp time base (stamp 0, clock jumps, sim time,
the stamp-to-receive offset that maps commands and halts), per-joint cleaning, time intervals, and resampling
(linear for measurements, zero-order hold for commands) with the e-stop test."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from calibration.bag_storage import DIAGNOSTICS, Samples, StatusSample
from calibration.episodes import CLOCK_DRIFT, COMMAND_RATE, SIM_TIME

if TYPE_CHECKING:
    from calibration.bag_settings import BagReadSettings

NS = 1_000_000_000
#: Stands for "before / after everything" in intervals.
FAR_NS = 2**62
#: A closed time interval (start_ns, end_ns).
Interval = tuple[int, int]


@dataclass(frozen=True)
class Series:
    """One joint's cleaned samples within one clock epoch: sorted by header stamp, unique stamps, finite."""

    t_ns: np.ndarray
    q: np.ndarray
    qd: np.ndarray
    """Velocities, NaN where none was recorded."""
    bad_ns: np.ndarray
    """Times of the samples dropped (NaN/inf, duplicate stamp, stamp 0, outside the limits)."""
    reordered_ns: np.ndarray
    """Times of the samples that arrived out of stamp order (kept, sorted)."""
    period_ns: float
    """Median sample period."""


@dataclass
class Epoch:
    """A stretch of the recording on one clock, in header-stamp time: each arm joint's series, the commands
    (sorted, (K, n) NaN where a command did not set a joint), the halted intervals, and flags for its episodes."""

    series: list[Series]
    cmd_t_ns: np.ndarray
    cmd_q: np.ndarray
    halts: list[Interval] = field(default_factory=list)
    flags: tuple[str, ...] = ()


def split_epochs(
    js: Samples,
    cmd: Samples,
    statuses: Sequence[StatusSample],
    settings: BagReadSettings,
    dt_ns: int,
    warn: Callable[[str], None],
) -> tuple[list[Epoch], float | None]:
    """ROS.md B.4 42 and 44: the joint_states time base and everything mapped onto it. Returns the epochs (one per
    clock: a jump splits) and the median receive-minus-stamp latency in s (None when stamps were replaced)."""
    s = settings
    order = np.argsort(js.log_ns, kind="stable")
    log, stamp = js.log_ns[order], js.stamp_ns[order].copy()
    q, qd, present = js.q[order], js.qd[order], js.present[order]
    zero = stamp <= 0
    replaced = bool(zero.mean() > s.zero_stamp_fraction)
    if replaced:
        warn(f"{js.topic}: {zero.sum()} of {zero.size} header stamps are 0: receive times used instead")
        stamp, zero = log.copy(), np.zeros_like(zero)
    elif zero.any():
        warn(f"{js.topic}: dropped {zero.sum()} messages with header stamp 0")
    valid = np.flatnonzero(~zero)
    step = np.diff(stamp[valid]) - np.diff(log[valid])
    jumps = np.flatnonzero(np.abs(step) > s.clock_jump_s * NS)
    for k in jumps:
        warn(
            f"{js.topic}: clock jump: header stamps move {step[k] / NS:+.3f} s against receive time at log time "
            f"{log[valid[k + 1]]} ns; split there"
        )
    epoch_of_valid = np.zeros(valid.size, np.int64)
    epoch_of_valid[jumps + 1] = 1
    epoch_of_valid = np.cumsum(epoch_of_valid)
    starts_log = log[valid[np.concatenate(([0], jumps + 1))]]
    offsets = log[valid] - stamp[valid]
    latency_s = None if replaced else float(np.median(offsets)) / NS
    # receive time -> header time per epoch: a running median of the offset (robust to late messages, follows drift)
    maps = [
        _running_offset(log[valid][epoch_of_valid == e], offsets[epoch_of_valid == e]) for e in range(starts_log.size)
    ]

    def epoch_at(log_ns: np.ndarray) -> np.ndarray:
        return np.maximum(np.searchsorted(starts_log, log_ns, side="right") - 1, 0)

    def to_stamp(log_ns: np.ndarray, received: bool = False) -> np.ndarray:
        """Receive times onto header time. `received`: times things reached the robot as they reached the
        recorder (commands): on synchronised clocks the offset is the joint_states' own latency, not theirs."""
        out, at = np.array(log_ns, np.int64), epoch_at(log_ns)
        for e, (centers, medians) in enumerate(maps):
            if received and abs(float(np.median(medians))) <= s.synced_clock_s * NS:
                continue
            out[at == e] -= np.round(_offset_at(log_ns[at == e], centers, medians)).astype(np.int64)
        return out

    c_order = np.argsort(cmd.log_ns, kind="stable")
    c_log, c_stamp, c_q = cmd.log_ns[c_order], cmd.stamp_ns[c_order], cmd.q[c_order].copy()
    c_q[~cmd.present[c_order]] = np.nan
    c_t = to_stamp(c_log, received=True)
    stamped = c_stamp > 0
    if stamped.any():
        disagree = abs(float(np.median(c_log[stamped] - c_stamp[stamped])) - float(np.median(offsets)))
        if disagree <= s.clock_jump_s * NS:
            c_t[stamped] = c_stamp[stamped]
        else:
            warn(f"{cmd.topic}: header stamps are {disagree / NS:.3f} s off the joint_states clock: receive times used")
    zero_t, zero_epoch, c_epoch = to_stamp(log[zero]), epoch_at(log[zero]), epoch_at(c_log)
    epochs = []
    for e in range(starts_log.size):
        rows = valid[epoch_of_valid == e]
        flags = []
        if float(np.median(stamp[rows])) < s.sim_time_before_s * NS:
            flags.append(SIM_TIME)
            warn(f"{js.topic}: header stamps from {stamp[rows[0]] / NS:.3f} s are sim time, not wall-clock time")
        medians = maps[e][1]
        if not replaced and abs(float(np.median(medians))) > s.clock_jump_s * NS:
            warn(
                f"{js.topic}: from log time {starts_log[e]} ns receive times lag header stamps by "
                f"{float(np.median(medians)) / NS:.3f} s (clocks not synchronised, or sim time): receive-time stamps "
                "are mapped by the running offset"
            )
        if float(medians.max() - medians.min()) > s.clock_drift_s * NS:
            flags.append(CLOCK_DRIFT)
            warn(
                f"{js.topic}: the stamp-to-receive offset drifts by {(medians.max() - medians.min()) / NS:.3f} s "
                "(sim time slower than real time, or drifting clocks): receive-time stamps follow it"
            )
        sort = np.argsort(c_t[c_epoch == e], kind="stable")
        ct, cq = c_t[c_epoch == e][sort], c_q[c_epoch == e][sort]
        if ct.size > 2:
            period = float(np.median(np.diff(ct)))
            if abs(period - dt_ns) > s.command_rate_tolerance * dt_ns:
                flags.append(COMMAND_RATE)
                warn(
                    f"{cmd.topic}: commands arrive every {period / NS:.4f} s, not every control period "
                    f"{dt_ns / NS} s: held onto the grid, the latest per row"
                )
        zero_e = zero_t[zero_epoch == e]
        series = [
            _series(stamp[rows], q[rows, j], qd[rows, j], present[rows, j], zero_e, dt_ns) for j in range(q.shape[1])
        ]
        epochs.append(Epoch(series, ct, cq, flags=tuple(flags)))
    reordered = sum(x.reordered_ns.size for ep in epochs for x in ep.series)
    dropped = sum(x.bad_ns.size for ep in epochs for x in ep.series)
    if reordered:
        warn(f"{js.topic}: sorted {reordered} joint samples that arrived out of header-stamp order")
    if dropped:
        warn(f"{js.topic}: dropped {dropped} joint samples (NaN/inf, duplicate stamps, stamp 0, outside the limits)")
    for lo_log, hi_log in _halts(statuses, warn):
        ends_log = np.array([lo_log, min(hi_log, int(log[-1]) + NS)], np.int64)
        (e_lo, e_hi), (lo, hi) = epoch_at(ends_log), to_stamp(ends_log)
        for e in range(int(e_lo), int(e_hi) + 1):
            epochs[e].halts.append((int(lo) if e == e_lo else -FAR_NS, int(hi) if e == e_hi else FAR_NS))
    return epochs, latency_s


#: joint_states per block of the running stamp-to-receive offset (its median per block, interpolated between).
OFFSET_BLOCK = 50


def _running_offset(log_ns: np.ndarray, offset_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Block centres (receive time) and block medians of the offset, for np.interp."""
    blocks = np.array_split(np.arange(log_ns.size), max(1, log_ns.size // OFFSET_BLOCK))
    centers = np.array([float(np.median(log_ns[b])) for b in blocks])
    medians = np.array([float(np.median(offset_ns[b])) for b in blocks])
    return centers, medians


def _offset_at(log_ns: np.ndarray, centers: np.ndarray, medians: np.ndarray) -> np.ndarray:
    """The running offset at `log_ns`: interpolated between block centres, extrapolated along the outer blocks."""
    out = np.interp(log_ns, centers, medians)
    if centers.size > 1:
        head, tail = log_ns < centers[0], log_ns > centers[-1]
        out[head] = medians[0] + (log_ns[head] - centers[0]) * (medians[1] - medians[0]) / (centers[1] - centers[0])
        slope = (medians[-1] - medians[-2]) / (centers[-1] - centers[-2])
        out[tail] = medians[-1] + (log_ns[tail] - centers[-1]) * slope
    return np.asarray(out)


def _series(
    t: np.ndarray, q: np.ndarray, qd: np.ndarray, present: np.ndarray, zero_ns: np.ndarray, dt_ns: int
) -> Series:
    """One joint's samples (receive order) cleaned: non-finite and duplicate-stamp samples dropped, sorted."""
    t, q, qd = t[present], q[present], qd[present]
    reordered = t[1:][t[1:] < np.maximum.accumulate(t)[:-1]] if t.size > 1 else t[:0]
    finite = np.isfinite(q)
    bad = t[~finite]
    t, q, qd = t[finite], q[finite], qd[finite]
    sort = np.argsort(t, kind="stable")
    t, q, qd = t[sort], q[sort], qd[sort]
    dup = np.concatenate(([False], np.diff(t) == 0))
    bad = np.sort(np.concatenate((bad, t[dup], zero_ns)))
    t, q, qd = t[~dup], q[~dup], qd[~dup]
    period = float(np.median(np.diff(t))) if t.size > 1 else float(dt_ns)
    return Series(t, q, qd, bad, np.sort(reordered), period)


def _halts(statuses: Sequence[StatusSample], warn: Callable[[str], None]) -> list[Interval]:
    """Receive-time intervals in which a /diagnostics status said the arm was halted (until that status cleared)."""
    out: list[Interval] = []
    since: dict[str, StatusSample] = {}
    for st in sorted(statuses, key=lambda x: x.log_ns):
        if st.halted and st.name not in since:
            since[st.name] = st
        elif not st.halted and st.name in since:
            out.append((since.pop(st.name).log_ns, st.log_ns))
    out += [(st.log_ns, FAR_NS) for st in since.values()]
    for lo, hi in sorted(out):
        end = "the end" if hi == FAR_NS else f"{hi} ns"
        warn(f"/{DIAGNOSTICS}: the arm was halted from log time {lo} ns to {end}: excluded")
    return sorted(out)


def runs(t_ns: np.ndarray, max_gap_ns: int, tail_ns: int = 0) -> list[Interval]:
    """Stretches of sorted times `t_ns` (M,) with no step longer than `max_gap_ns`; each ends `tail_ns` after its
    last time (a held command stays valid for a while)."""
    if t_ns.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(t_ns) > max_gap_ns)
    starts = np.concatenate(([0], breaks + 1))
    ends = np.concatenate((breaks, [t_ns.size - 1]))
    return [(int(t_ns[a]), int(t_ns[b]) + tail_ns) for a, b in zip(starts, ends)]


def intersect(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    """Where both sorted, disjoint interval lists hold."""
    out: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo < hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def subtract(a: Sequence[Interval], cuts: Sequence[Interval]) -> list[Interval]:
    """`a` without the (possibly overlapping, unsorted) intervals `cuts`."""
    out = list(a)
    for c_lo, c_hi in sorted(cuts):
        nxt: list[Interval] = []
        for lo, hi in out:
            if c_hi <= lo or c_lo >= hi:
                nxt.append((lo, hi))
                continue
            if lo < c_lo:
                nxt.append((lo, c_lo))
            if c_hi < hi:
                nxt.append((c_hi, hi))
        out = nxt
    return out


def interpolate(t_ns: np.ndarray, values: np.ndarray, rows_ns: np.ndarray) -> np.ndarray:
    """Linear interpolation of `values` (M,) sampled at sorted `t_ns` (M,) at `rows_ns` (T,), inside the sampled
    span; NaN samples make the rows they bracket NaN (so a caller can tell where a value was missing)."""
    idx = np.clip(np.searchsorted(t_ns, rows_ns, side="right") - 1, 0, t_ns.size - 1)
    nxt = np.minimum(idx + 1, t_ns.size - 1)
    span = (t_ns[nxt] - t_ns[idx]).astype(np.float64)
    w = np.divide((rows_ns - t_ns[idx]).astype(np.float64), span, out=np.zeros(rows_ns.shape), where=span > 0)
    w = np.clip(w, 0.0, 1.0)
    left, right = values[idx], values[nxt]
    with np.errstate(invalid="ignore"):
        out = left + w * (right - left)
    out[w == 0.0] = left[w == 0.0]
    out[w == 1.0] = right[w == 1.0]
    return np.asarray(out)


def hold(t_ns: np.ndarray, values: np.ndarray, t0_ns: int, dt_ns: int, n_rows: int) -> np.ndarray:
    """Zero-order hold of commands `values` (M,) sent at sorted `t_ns` (M,) on the grid t0 + k dt (k < n_rows):
    each command takes effect at its nearest row, so jitter under half a period never moves it by a row, and the
    latest command wins a row that several reach. NaN before the first command."""
    row_of = np.floor((t_ns - t0_ns) / dt_ns + 0.5).astype(np.int64)
    idx = np.searchsorted(row_of, np.arange(n_rows), side="right") - 1
    out = np.full(n_rows, np.nan)
    ok = idx >= 0
    out[ok] = values[idx[ok]]
    return out


def hold_offsets(t_ns: np.ndarray, t0_ns: int, dt_ns: int, n_rows: int) -> np.ndarray:
    """Per grid row (as `hold` places commands sent at sorted `t_ns`): the send time of the command that takes
    effect on that row minus the row's time, in s (within half a period); 0 on rows no new command reaches."""
    row_of = np.floor((t_ns - t0_ns) / dt_ns + 0.5).astype(np.int64)
    out = np.zeros(n_rows)
    inside = (row_of >= 0) & (row_of < n_rows)
    # the latest command wins a row that several reach (later assignments overwrite earlier ones)
    out[row_of[inside]] = (t_ns[inside] - t0_ns - row_of[inside] * dt_ns) / 1e9
    return out


def halted_rows(
    q: np.ndarray, q_cmd: np.ndarray, window_rows: int, frozen_range_rad: float, command_range_rad: float
) -> np.ndarray:
    """(T,) bool: rows inside a window of `window_rows` where the measured joints (T, n) stay within
    `frozen_range_rad` while the commands (T, n) move more than `command_range_rad` (an e-stop or brake: the arm
    ignores its targets), plus one window before it (the arm stopping)."""
    steps = q.shape[0]
    if steps < window_rows or window_rows < 2:
        return np.zeros(steps, bool)
    qw = np.lib.stride_tricks.sliding_window_view(q, window_rows, axis=0)
    cw = np.lib.stride_tricks.sliding_window_view(q_cmd, window_rows, axis=0)
    frozen = (qw.max(-1) - qw.min(-1)).max(-1) < frozen_range_rad
    moving = (cw.max(-1) - cw.min(-1)).max(-1) > command_range_rad
    hit = (frozen & moving).astype(np.int64)
    # window i covers rows i .. i + W - 1; the one before it rows i - W .. i - 1
    covered = np.convolve(hit, np.ones(2 * window_rows, np.int64))[window_rows : window_rows + steps]
    return np.asarray(covered > 0)


def true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) index pairs of the runs of True in `mask` (T,)."""
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]
