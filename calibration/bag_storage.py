"""Opening rosbag2 bags without ROS (storage files, fallbacks for a missing metadata.yaml, a truncated MCAP or a
corrupt SQLite file, message definitions) and one streamed pass gathering the topics calibration reads into compact
per-topic arrays, arm joints re-indexed by name; other topics are never deserialized."""

from __future__ import annotations

import contextlib
import hashlib
import math
import re
import struct
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from rosbags.interfaces import MessageDefinition, MessageDefinitionFormat
from rosbags.rosbag2 import Reader
from rosbags.typesys import Stores, get_types_from_idl, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

#: Storage file suffix -> rosbag2 storage plugin.
STORAGE_SUFFIXES: dict[str, str] = {".mcap": "mcap", ".db3": "sqlite3"}
#: Largest MCAP record the salvage reader loads (a corrupt length field must not allocate gigabytes).
SALVAGE_RECORD_LIMIT_BYTES = 256 * 2**20

#: (topic, message type) -> whether to decode its messages. Everything else is skipped undecoded.
Selector = Callable[[str, str], bool]


#: Relative topic names (a namespace may precede them) and the message type each must have.
JOINT_STATES = "joint_states"
JOINT_TRAJECTORY = "joint_trajectory_controller/joint_trajectory"
FORWARD_COMMANDS = "forward_position_controller/commands"
DIAGNOSTICS = "diagnostics"
#: The camera's topics: only their header stamps are used (the camera's latency), camera_info's when recorded
#: (every frame has one, and it is small), else the (decimated) images'.
CAMERA_INFO = "camera/camera_info"
CAMERA_IMAGE = "camera/image_raw"
TOPIC_TYPES: dict[str, str] = {
    JOINT_STATES: "sensor_msgs/msg/JointState",
    JOINT_TRAJECTORY: "trajectory_msgs/msg/JointTrajectory",
    FORWARD_COMMANDS: "std_msgs/msg/Float64MultiArray",
    DIAGNOSTICS: "diagnostic_msgs/msg/DiagnosticArray",
    CAMERA_INFO: "sensor_msgs/msg/CameraInfo",
    CAMERA_IMAGE: "sensor_msgs/msg/Image",
}


def _normalized_namespace(namespace: str) -> str:
    return "/" + namespace.strip("/") if namespace.strip("/") else ""


def topic_role(topic: str, namespace: str | None = None) -> str | None:
    """Which of the read topics `topic` is (JOINT_STATES, ...), matching the relative name as a suffix; with a
    `namespace`, only topics under exactly that namespace match (the absolute /diagnostics always does)."""
    name = "/" + topic.strip("/")
    for role in TOPIC_TYPES:
        if name == "/" + role or name.endswith("/" + role):
            prefix = name[: -len(role) - 1]
            if role == DIAGNOSTICS or namespace is None or prefix == _normalized_namespace(namespace):
                return role
    return None


@dataclass(frozen=True)
class Decoded:
    """One message of a selected topic, deserialized."""

    topic: str
    msgtype: str
    log_time_ns: int
    """The bag's timestamp: receive time for our recorder and `ros2 bag record`."""
    msg: Any


def natural_key(name: str) -> list[Any]:
    """Sort key that orders `bag_2.mcap` before `bag_10.mcap`."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def storage_files(path: Path) -> list[Path]:
    """The bag's storage files (.mcap / .db3), in recording order; `path` may be a bag folder or one file."""
    if path.is_file():
        return [path] if path.suffix in STORAGE_SUFFIXES else []
    if not path.is_dir():
        return []
    files = [p for p in path.iterdir() if p.is_file() and p.suffix in STORAGE_SUFFIXES]
    return sorted(files, key=lambda p: natural_key(p.name))


def bag_sha256(path: Path) -> str:
    """SHA-256 over the contents of the bag's data files (.mcap, .db3, and .zstd where rosbag2 compressed whole
    files), in recording order ("" when it has none)."""
    files = storage_files(path)
    if path.is_dir():
        zstd = [p for p in path.iterdir() if p.is_file() and p.suffix == ".zstd"]
        files = sorted(files + zstd, key=lambda p: natural_key(p.name))
    if not files:
        return ""
    digest = hashlib.sha256()
    for file in files:
        with file.open("rb") as f:
            for block in iter(lambda: f.read(2**20), b""):
                digest.update(block)
    return digest.hexdigest()


#: Types of which only the header stamp is read (their payload, an image, is never copied out of the bag).
HEADER_ONLY_TYPES = frozenset({"sensor_msgs/msg/Image"})


@dataclass(frozen=True)
class _Stamp:
    sec: int
    nanosec: int


@dataclass(frozen=True)
class HeaderOnly:
    """A message of which only `header.stamp` was decoded."""

    header: Any


def header_stamp(raw: bytes | memoryview) -> HeaderOnly:
    """The std_msgs/Header stamp at the start of a CDR message: the 4-byte encapsulation (its second byte: 1 little
    endian, 0 big endian), then int32 sec and uint32 nanosec. ValueError for anything else."""
    head = bytes(raw[:12])
    if len(head) < 12 or head[1] not in (0, 1):
        raise ValueError("not a CDR message with a header")
    order = "<" if head[1] == 1 else ">"
    sec, nanosec = struct.unpack(order + "iI", head[4:12])
    if nanosec >= 1_000_000_000:
        raise ValueError(f"header stamp nanosec {nanosec} >= 1e9")
    return HeaderOnly(SimpleNamespace(stamp=_Stamp(sec, nanosec)))


class _Decoder:
    """Deserializes one topic's CDR bytes: with the definition stored in the bag when it has a usable one, else
    (or when that fails on a message) with the default typestore; notes which it used. HEADER_ONLY_TYPES give
    their header stamp alone."""

    def __init__(
        self,
        topic: str,
        msgtype: str,
        msgdef: MessageDefinition,
        default: Typestore,
        notes: list[str],
        whole: bool = False,
    ):
        self.topic, self.msgtype, self.notes = topic, msgtype, notes
        self.default = default
        self.failures = 0
        self.header_only = msgtype in HEADER_ONLY_TYPES and not whole
        self.typestore: Typestore | None = None if self.header_only else _stored_typestore(msgtype, msgdef)
        if self.typestore is None and not self.header_only:
            if msgtype not in default.fielddefs:
                notes.append(f"{topic}: no usable definition of {msgtype} stored and none in the default typestore")
            else:
                notes.append(f"{topic}: no usable {msgtype} definition stored in the bag; using the default typestore")
                self.typestore = default

    def __call__(self, raw: bytes | memoryview) -> Any | None:
        if self.header_only:
            try:
                return header_stamp(raw)
            except (ValueError, struct.error):
                self.failures += 1
                return None
        if self.typestore is None:
            self.failures += 1
            return None
        try:
            return self.typestore.deserialize_cdr(raw, self.msgtype)
        except Exception as err:  # corrupt bytes raise anything from struct to numpy
            if self.typestore is not self.default and self.msgtype in self.default.fielddefs:
                try:
                    msg = self.default.deserialize_cdr(raw, self.msgtype)
                except Exception:
                    pass
                else:
                    self.notes.append(
                        f"{self.topic}: the stored {self.msgtype} definition does not decode ({err}); "
                        "using the default typestore"
                    )
                    self.typestore = self.default
                    return msg
            self.failures += 1
            return None


def _stored_typestore(msgtype: str, msgdef: MessageDefinition) -> Typestore | None:
    """A typestore built from the definition the bag stores for `msgtype`, or None when it stores none usable."""
    text = msgdef.data if isinstance(msgdef.data, str) else ""
    if msgdef.format == MessageDefinitionFormat.NONE or not text.strip():
        return None
    try:
        if msgdef.format == MessageDefinitionFormat.MSG:
            types = get_types_from_msg(text, msgtype)
        else:
            sep = "=" * 80 + "\n"
            types = {}
            if text.startswith(f"{sep}IDL: "):
                for part in text.split(sep)[1:]:
                    types.update(get_types_from_idl(part.split("\n", 1)[1]))
            else:
                types.update(get_types_from_idl(text))
        store = get_typestore(Stores.EMPTY)
        store.register(types)
        consts, fields = store.fielddefs[msgtype]
    except Exception:  # a malformed definition fails in the parser in many ways
        return None
    return store if fields else None


def _msgdef_from_schema(encoding: str, data: bytes) -> MessageDefinition:
    fmt = {"ros2msg": MessageDefinitionFormat.MSG, "ros2idl": MessageDefinitionFormat.IDL}.get(encoding)
    if fmt is None:
        return MessageDefinition(MessageDefinitionFormat.NONE, "")
    return MessageDefinition(fmt, data.decode("utf-8", errors="replace"))


class BagStorage:
    """One bag opened for streaming. After `messages()` ran: `topics` holds every topic seen (name -> type),
    `counts` the messages decoded per topic, `notes` the fallbacks taken and problems met (one line each), and
    `unreadable` why the storage files that gave nothing failed."""

    def __init__(self, path: Path, default_typestore: str = "ros2_kilted", whole_images: bool = False):
        self.path = path
        self.whole_images = whole_images
        """Deserialize images and camera_info whole (camera calibration); by default only their header stamps."""
        self.default = get_typestore(Stores(default_typestore))
        self.topics: dict[str, str] = {}
        self.counts: dict[str, int] = {}
        self.notes: list[str] = []
        self.unreadable: list[str] = []
        self._decoders: dict[tuple[str, str], _Decoder] = {}

    def messages(self, select: Selector) -> Iterator[Decoded]:
        """Decoded messages of the selected topics: in log-time order per storage file (salvaged files: in file
        order). Unselected topics are never deserialized."""
        files = storage_files(self.path)
        if self.path.is_dir() and (self.path / "metadata.yaml").exists():
            try:
                reader = Reader(self.path)
                reader.open()
            except Exception as err:  # rosbags raises ReaderError, OSError, KeyError, YAML errors
                self.notes.append(f"the bag folder did not open ({err}); reading its storage files one by one")
            else:
                yield from self._read(reader, self.path.name, select)
                return
        elif self.path.is_dir() and files:
            names = ", ".join(f.name for f in files)
            self.notes.append(f"no metadata.yaml (the recorder did not close the bag?): reading {names} directly")
        for file in files:
            try:
                reader = Reader(file)
                reader.open()
            except Exception as err:
                if file.suffix == ".mcap":
                    yield from self._salvage(file, str(err), select)
                else:
                    self.unreadable.append(f"{file.name}: corrupt SQLite storage ({err})")
                continue
            yield from self._read(reader, file.name, select)

    def _decoder(self, topic: str, msgtype: str, msgdef: MessageDefinition) -> _Decoder:
        key = (topic, msgtype)
        if key not in self._decoders:
            self._decoders[key] = _Decoder(topic, msgtype, msgdef, self.default, self.notes, self.whole_images)
        return self._decoders[key]

    def _read(self, reader: Reader, label: str, select: Selector) -> Iterator[Decoded]:
        last_ns = None  # log time of the last message read from this file
        try:
            for conn in reader.connections:
                self.topics.setdefault(conn.topic, conn.msgtype)
            conns = [c for c in reader.connections if select(c.topic, c.msgtype)]
            if not conns:
                return
            for conn, log_ns, raw in reader.messages(conns):
                last_ns = log_ns
                decoder = self._decoder(conn.topic, conn.msgtype, conn.msgdef)
                msg = decoder(raw)
                if msg is not None:
                    self.counts[conn.topic] = self.counts.get(conn.topic, 0) + 1
                    yield Decoded(conn.topic, conn.msgtype, log_ns, msg)
        except Exception as err:  # a corrupt chunk or page raises from the storage backend
            if last_ns is None:
                self.unreadable.append(f"{label}: reading failed before the first message ({err})")
            else:
                self.notes.append(f"{label}: reading stopped after log time {last_ns} ns ({err}); the rest is lost")
        finally:
            reader.close()

    def _salvage(self, file: Path, why: str, select: Selector) -> Iterator[Decoded]:
        """Complete chunks of an MCAP file without a readable footer (a recorder killed mid-write)."""
        from mcap.reader import NonSeekingReader

        salvaged = 0
        stop = "at the end of the file"
        with file.open("rb") as f:
            reader = NonSeekingReader(f, record_size_limit=SALVAGE_RECORD_LIMIT_BYTES)
            try:
                for schema, channel, message in reader.iter_messages(log_time_order=False):
                    msgtype = schema.name if schema is not None else ""
                    self.topics.setdefault(channel.topic, msgtype)
                    if channel.message_encoding != "cdr" or not select(channel.topic, msgtype):
                        continue
                    msgdef = _msgdef_from_schema(schema.encoding, schema.data) if schema is not None else None
                    decoder = self._decoder(
                        channel.topic, msgtype, msgdef or MessageDefinition(MessageDefinitionFormat.NONE, "")
                    )
                    msg = decoder(message.data)
                    if msg is not None:
                        salvaged += 1
                        self.counts[channel.topic] = self.counts.get(channel.topic, 0) + 1
                        yield Decoded(channel.topic, msgtype, message.log_time, msg)
            except Exception as err:  # EndOfFile, a record cut short, a bad chunk
                stop = f"where the file breaks off ({type(err).__name__}{': ' + str(err) if str(err) else ''})"
        line = (
            f"{file.name}: unreadable as an indexed MCAP ({why}; truncated by a killed recorder, or damaged): "
            f"salvaged {salvaged} messages of the topics read from its complete chunks, stopping {stop}"
        )
        if salvaged:
            self.notes.append(line)
        else:
            self.unreadable.append(line)


@dataclass(frozen=True)
class Samples:
    """One topic's messages in receive order: joint values re-indexed to the model's order, NaN where a message
    did not carry a joint. Joint states fill `qd` (NaN without velocities); commands leave it NaN."""

    topic: str
    role: str
    log_ns: np.ndarray
    """(M,) int64 receive times."""
    stamp_ns: np.ndarray
    """(M,) int64 header stamps (0: unset; forward commands have no header)."""
    q: np.ndarray
    """(M, n) positions (joint states) or targets (commands)."""
    qd: np.ndarray
    """(M, n) velocities."""
    present: np.ndarray
    """(M, n) bool: the message named the joint."""
    layouts: dict[tuple[str, ...], int]
    """Distinct name lists seen (in order of first appearance) and how many messages had each."""
    malformed: int
    """Messages dropped because their arrays did not match their names (or held no trajectory point)."""

    @property
    def n_messages(self) -> int:
        return int(self.log_ns.shape[0])


class TopicBuffer:
    """Compact growing storage for one topic (arrays of C doubles, not Python objects per message)."""

    def __init__(self, topic: str, role: str, joint_names: Sequence[str]):
        self.topic, self.role = topic, role
        self.index = {name: i for i, name in enumerate(joint_names)}
        self.n = len(joint_names)
        self.log, self.stamp = array("q"), array("q")
        self.q, self.qd, self.present = array("d"), array("d"), array("b")
        self.layouts: dict[tuple[str, ...], int] = {}
        self.maps: dict[tuple[str, ...], list[tuple[int, int]]] = {}
        self.malformed = 0

    def add(self, log_ns: int, stamp_ns: int, names: Sequence[str], q: Sequence[float], qd: Sequence[float]) -> None:
        key = tuple(names)
        if len(q) != len(key):
            self.malformed += 1
            return
        self.layouts[key] = self.layouts.get(key, 0) + 1
        pairs = self.maps.get(key)
        if pairs is None:
            first: dict[str, int] = {}
            for i, name in enumerate(key):
                first.setdefault(name, i)
            pairs = self.maps[key] = [(i, self.index[name]) for name, i in first.items() if name in self.index]
        row_q, row_qd, row_p = [math.nan] * self.n, [math.nan] * self.n, [0] * self.n
        has_qd = len(qd) == len(key)
        for i, j in pairs:
            row_q[j] = float(q[i])
            row_p[j] = 1
            if has_qd:
                row_qd[j] = float(qd[i])
        self.log.append(log_ns)
        self.stamp.append(stamp_ns)
        self.q.extend(row_q)
        self.qd.extend(row_qd)
        self.present.extend(row_p)

    def samples(self) -> Samples:
        m = len(self.log)
        return Samples(
            self.topic,
            self.role,
            np.frombuffer(self.log, np.int64).copy() if m else np.zeros(0, np.int64),
            np.frombuffer(self.stamp, np.int64).copy() if m else np.zeros(0, np.int64),
            np.frombuffer(self.q, np.float64).reshape(m, self.n).copy() if m else np.zeros((0, self.n)),
            np.frombuffer(self.qd, np.float64).reshape(m, self.n).copy() if m else np.zeros((0, self.n)),
            np.frombuffer(self.present, np.int8).reshape(m, self.n).astype(bool) if m else np.zeros((0, self.n), bool),
            dict(self.layouts),
            self.malformed,
        )


@dataclass(frozen=True)
class StatusSample:
    """One /diagnostics status: when it arrived, whose it is, and whether it says the arm is halted."""

    log_ns: int
    name: str
    halted: bool


@dataclass
class Gathered:
    """Everything read from one bag, per topic."""

    joint_states: dict[str, Samples] = field(default_factory=dict)
    commands: dict[str, Samples] = field(default_factory=dict)
    statuses: list[StatusSample] = field(default_factory=list)
    camera_offsets_ns: list[int] = field(default_factory=list)
    """Receive (log) time minus header stamp of each camera message with a stamp (camera_info's, else images')."""
    notes: list[str] = field(default_factory=list)


def _stamp_ns(msg: object) -> int:
    stamp = msg.header.stamp  # type: ignore[attr-defined]
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def gather(
    storage: BagStorage,
    joint_names: Sequence[str],
    forward_joint_names: Sequence[str],
    namespace: str | None,
    halt_patterns: Sequence[str],
) -> Gathered:
    """Stream the bag once, decoding only joint_states, the two command topics, /diagnostics and the camera's
    camera_info (or, without it, its images)."""
    out = Gathered()
    decided: dict[tuple[str, str], bool] = {}

    def select(topic: str, msgtype: str) -> bool:
        key = (topic, msgtype)
        if key not in decided:
            role = topic_role(topic, namespace)
            decided[key] = role is not None and TOPIC_TYPES[role] == msgtype
            if role == CAMERA_IMAGE and any(topic_role(t, namespace) == CAMERA_INFO for t in storage.topics):
                decided[key] = False  # camera_info carries the same stamps: the images are never decoded
                return False
            if role is not None and not decided[key]:
                out.notes.append(f"{topic} has type {msgtype or 'unknown'}, not {TOPIC_TYPES[role]}: ignored")
        return decided[key]

    buffers: dict[str, TopicBuffer] = {}
    patterns = tuple(p.lower() for p in halt_patterns)
    for item in storage.messages(select):
        role = topic_role(item.topic, namespace)
        assert role is not None
        if role in (CAMERA_INFO, CAMERA_IMAGE):
            with contextlib.suppress(AttributeError, TypeError, ValueError):
                stamp = _stamp_ns(item.msg)
                if stamp > 0:
                    out.camera_offsets_ns.append(item.log_time_ns - stamp)
            continue
        if role == DIAGNOSTICS:
            for status in item.msg.status:
                text = str(status.message).lower()
                out.statuses.append(StatusSample(item.log_time_ns, str(status.name), any(p in text for p in patterns)))
            continue
        buf = buffers.get(item.topic)
        if buf is None:
            buf = buffers[item.topic] = TopicBuffer(item.topic, role, joint_names)
        try:
            _add(buf, item, forward_joint_names)
        except (AttributeError, TypeError, ValueError, IndexError):  # decoded, but not the fields we expect
            buf.malformed += 1
    for topic in sorted(buffers):
        samples = buffers[topic].samples()
        (out.joint_states if samples.role == JOINT_STATES else out.commands)[topic] = samples
    return out


def _add(buf: TopicBuffer, item: Decoded, forward_joint_names: Sequence[str]) -> None:
    msg = item.msg
    if buf.role == JOINT_STATES:
        buf.add(item.log_time_ns, _stamp_ns(msg), msg.name, msg.position, msg.velocity)
    elif buf.role == JOINT_TRAJECTORY:
        if not msg.points:
            buf.malformed += 1
            return
        buf.add(item.log_time_ns, _stamp_ns(msg), msg.joint_names, msg.points[0].positions, ())
    else:
        buf.add(item.log_time_ns, 0, forward_joint_names, msg.data, ())
