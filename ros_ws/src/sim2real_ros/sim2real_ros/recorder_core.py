"""What the recorder (`sim2real-recorder`, sim2real_ros.recorder) does that is testable without DDS: its options
and their checks, the default topics, the QoS choice per topic, the per-topic counting (duplicates, sequence gaps,
decimation) and the summary it prints. No ROS import: `sim2real record --help` and the pipeline use it without the
[ros] extra."""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from sim2real_ros.availability import INSTALL_HINT
from sim2real_ros.controller_config import COMMAND_TOPICS, FORWARD_POSITION, JOINT_TRAJECTORY

SCRIPT = "sim2real-recorder"
IMAGE_TOPIC = "camera/image_raw"
#: What a calibration needs from a deployment, relative names resolved in the recorder's namespace: the measured
#: joints, both command topics (whichever the controller uses), the gripper, goals and the tracked object, the
#: camera, and the nodes' diagnostics (halts, stale inputs and rejected outputs mark segments to exclude).
DEFAULT_TOPICS: tuple[str, ...] = (
    "joint_states",
    COMMAND_TOPICS[JOINT_TRAJECTORY],
    COMMAND_TOPICS[FORWARD_POSITION],
    "gripper/joint_states",
    "gripper_controller/commands",
    "goal_pose",
    "object_pose",
    "camera/camera_info",
    IMAGE_TOPIC,
    "/diagnostics",
)
DEFAULT_IMAGE_EVERY = 10
#: Message types recorded one in `image_every` (camera frames: 921 KB each at 640x480); the rest are kept whole.
DECIMATED_TYPES = frozenset({"sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage"})
#: Key of the recorder's entry in the bag's metadata custom_data (a JSON object with a schema_version).
CUSTOM_DATA_KEY = "sim2real.recorder"
CUSTOM_DATA_SCHEMA_VERSION = 1


class RecorderError(ValueError):
    """A recording that cannot start (an --out that exists, a bad option or name); the message says which."""


class RecordingFailed(RuntimeError):
    """Writing the bag failed while recording (disk full, say); what was written until then stays in the folder."""


@dataclass(frozen=True)
class RecorderOptions:
    """What to record and where (`sim2real record` and `sim2real-recorder` take the same flags)."""

    out: Path
    """The bag folder to create; refused if anything exists there (the recorder never replaces or deletes)."""
    duration_s: float = 0.0
    """Stop after this long (steady clock, from the start); 0: until SIGINT or SIGTERM."""
    topics: tuple[str, ...] = DEFAULT_TOPICS
    """Topics to record; relative names resolve in `namespace` (and through `--ros-args -r` remaps)."""
    namespace: str = ""
    """Namespace of the recorder node, hence of the relative topic names ('' or '/': the root)."""
    image_every: int = DEFAULT_IMAGE_EVERY
    """Keep one image in this many on image topics (DECIMATED_TYPES); 1 keeps every frame."""


def check_options(options: RecorderOptions) -> None:
    """RecorderError naming the first problem with `options`; nothing is created."""
    out = options.out
    if out.exists() or out.is_symlink():
        raise RecorderError(f"--out {out} exists; the recorder writes a new folder and never replaces one")
    parent = out.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise RecorderError(f"--out {out}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise RecorderError(f"--out {out}: cannot create it in {parent} (permission denied)")
    if not math.isfinite(options.duration_s) or options.duration_s < 0.0:
        raise RecorderError(
            f"--duration-s must be a number of seconds >= 0 (0: until stopped), got {options.duration_s}"
        )
    if options.image_every < 1:
        raise RecorderError(f"--image-every must be at least 1 (1 keeps every frame), got {options.image_every}")
    if not options.topics:
        raise RecorderError("--topics needs at least one topic")
    for topic in options.topics:
        if not topic or topic.strip() != topic:
            raise RecorderError(f"--topics: {topic!r} is not a topic name")


class Delivery(NamedTuple):
    """The two QoS policies that decide whether a subscription hears a publisher at all."""

    reliable: bool
    transient_local: bool

    def describe(self) -> str:
        return ("reliable" if self.reliable else "best effort") + (", transient local" if self.transient_local else "")


def subscription_delivery(offered: Sequence[Delivery], current: Delivery | None = None) -> Delivery:
    """The reliability and durability to subscribe with, given what the topic's publishers offer (as `ros2 bag
    record` adapts them): reliable only if every publisher is (a reliable subscription hears nothing from a
    best-effort publisher), transient local only if every publisher is (a transient-local subscription hears no
    volatile one). Never stronger than `current`, the subscription's: a topic only ever re-subscribes weaker."""
    reliable = all(d.reliable for d in offered)
    transient_local = bool(offered) and all(d.transient_local for d in offered)
    if current is not None:
        reliable, transient_local = reliable and current.reliable, transient_local and current.transient_local
    return Delivery(reliable, transient_local)


@dataclass
class TopicStats:
    """What one recorded topic saw. `received` counts messages that arrived (not duplicates), `written` those in
    the bag; the rest of `received` were `decimated`. `lost` counts gaps in a publisher's sequence numbers after its
    first message reached the recorder: messages sent but never delivered (best effort, a full reader queue)."""

    received: int = 0
    written: int = 0
    decimated: int = 0
    duplicates: int = 0
    lost: int = 0
    _last_seq: dict[bytes, int] = field(default_factory=dict, repr=False)

    def admit(self, publisher: bytes | None, seq: int | None, keep_every: int = 1) -> bool:
        """Count one arriving message from `publisher` (its GID) with sequence number `seq` (None where the
        middleware gives none); True if it goes into the bag. A message already seen from that publisher (delivered
        twice while a topic re-subscribes) is dropped; with keep_every N the 1st, (N+1)th, ... are kept."""
        if publisher is not None and seq is not None:
            last = self._last_seq.get(publisher)
            if last is not None and seq <= last:
                self.duplicates += 1
                return False
            if last is not None:
                self.lost += seq - last - 1
            self._last_seq[publisher] = seq
        self.received += 1
        if (self.received - 1) % keep_every:
            self.decimated += 1
            return False
        self.written += 1
        return True


@dataclass
class TopicSummary:
    """One requested topic at the end of a recording; `msgtype` is '' when no publisher ever appeared."""

    topic: str
    msgtype: str = ""
    delivery: str = ""
    stats: TopicStats = field(default_factory=TopicStats)


@dataclass
class RecordingSummary:
    """What a recording wrote: the bag folder, how long it ran, each requested topic, problems met on the way."""

    path: Path
    recorded_s: float
    topics: list[TopicSummary]
    stopped_by: str = ""
    """What ended it: SIGINT, SIGTERM or duration."""
    bag_bytes: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def messages(self) -> int:
        return sum(t.stats.written for t in self.topics)


def format_summary(summary: RecordingSummary) -> str:
    """The lines printed at the end: a header, then `topic  type  written  QoS [note]` per topic, then warnings."""
    width = max([len(t.topic) for t in summary.topics] + [10])
    type_width = max([len(t.msgtype) for t in summary.topics] + [10])
    lines = [
        f"recorded {summary.messages} messages in {summary.recorded_s:.1f} s to {summary.path} "
        f"(rosbag2, mcap, {summary.bag_bytes / 1e6:.1f} MB; stopped by {summary.stopped_by or 'an error'})"
    ]
    for t in summary.topics:
        s = t.stats
        if not t.msgtype:
            lines.append(f"  {t.topic:<{width}}  {'-':<{type_width}}  {0:>7}  (no publisher)")
            continue
        notes = []
        if s.decimated:
            notes.append(f"of {s.received} received")
        if s.lost:
            notes.append(f"{s.lost} lost before reaching the recorder")
        note = f" ({'; '.join(notes)})" if notes else ""
        lines.append(f"  {t.topic:<{width}}  {t.msgtype:<{type_width}}  {s.written:>7}  {t.delivery}{note}")
    lines += [f"warning: {w}" for w in summary.warnings]
    return "\n".join(lines)


def missing_rosbags() -> str | None:
    """None when the rosbags library is installed; else the line to print."""
    if importlib.util.find_spec("rosbags") is None:
        return f"{SCRIPT} needs the rosbags library (the [ros] extra): {INSTALL_HINT}"
    return None


def build_parser(prog: str = SCRIPT) -> argparse.ArgumentParser:
    """The recorder's flags (`sim2real record` has the same ones)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Record the robot's topics into a new rosbag2 folder (MCAP storage) for calibration: messages "
        "unchanged as serialized, stamped with their receive time. Ctrl-C or SIGTERM closes the bag cleanly. ROS "
        "arguments follow --ros-args (remaps, use_sim_time).",
    )
    add_record_flags(parser)
    return parser


def add_record_flags(parser: argparse.ArgumentParser) -> None:
    """--out, --duration-s, --topics, --namespace, --image-every on `parser`."""
    parser.add_argument("--out", required=True, help="bag folder to create (refused if it exists)")
    parser.add_argument(
        "--duration-s", dest="duration_s", type=float, default=0.0, help="stop after this long (default: when stopped)"
    )
    parser.add_argument(
        "--topics",
        nargs="+",
        default=None,
        metavar="TOPIC",
        help=f"topics to record instead of the defaults: {' '.join(DEFAULT_TOPICS)}",
    )
    parser.add_argument("--namespace", default="", help="namespace the relative topic names resolve in")
    parser.add_argument(
        "--image-every",
        dest="image_every",
        type=int,
        default=DEFAULT_IMAGE_EVERY,
        help=f"keep one camera frame in N (default {DEFAULT_IMAGE_EVERY}; 1: all)",
    )


def options_from_args(args: argparse.Namespace) -> RecorderOptions:
    """RecorderOptions from parsed add_record_flags flags."""
    topics = tuple(args.topics) if args.topics else DEFAULT_TOPICS
    return RecorderOptions(Path(args.out), args.duration_s, topics, args.namespace, args.image_every)
