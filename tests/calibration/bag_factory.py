"""Synthetic rosbag2 bags for the calibration tests: joint_states, commands, /diagnostics and any other topic written
with rosbags' Writer (MCAP or SQLite3, CDR from the Kilted typestore), as our recorder or `ros2 bag record` would."""

from __future__ import annotations

import heapq
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

#: The typestore the messages are built and serialized with.
TYPESTORE = get_typestore(Stores.ROS2_KILTED)
ARM = tuple(f"panda_joint{i}" for i in range(1, 8))
FINGERS = ("panda_finger_joint1", "panda_finger_joint2")
JOINT_TRAJECTORY = "joint_trajectory"
FORWARD_POSITION = "forward_position"
COMMAND_TOPICS = {
    JOINT_TRAJECTORY: ("joint_trajectory_controller/joint_trajectory", "trajectory_msgs/msg/JointTrajectory"),
    FORWARD_POSITION: ("forward_position_controller/commands", "std_msgs/msg/Float64MultiArray"),
}
#: A type hash for connections written without a definition (rosbags' Writer insists on one).
NO_HASH = "RIHS01_" + "0" * 64


class JointStateSample(NamedTuple):
    """One sensor_msgs/JointState: header stamp, names and values in that order; log (receive) time defaults to
    the stamp plus write_bag's latency_ns."""

    stamp_ns: int
    names: Sequence[str]
    q: Sequence[float]
    qd: Sequence[float] | None = None
    log_ns: int | None = None


class CommandSample(NamedTuple):
    """One command sent at `stamp_ns` (its log time unless `log_ns`), values in `names` order. A JointTrajectory
    carries `header_stamp_ns` (0: "now", as the policy node sends); a Float64MultiArray only the values."""

    stamp_ns: int
    names: Sequence[str]
    q_cmd: Sequence[float]
    log_ns: int | None = None
    header_stamp_ns: int = 0


class StatusSample(NamedTuple):
    """One /diagnostics array with one status."""

    log_ns: int
    name: str
    level: int
    message: str


class Extra(NamedTuple):
    """Any other message: a message object (serialized with the factory's typestore) or raw CDR bytes."""

    topic: str
    msgtype: str
    log_ns: int
    msg: Any


def _time(ns: int) -> Any:
    return TYPESTORE.types["builtin_interfaces/msg/Time"](sec=int(ns) // 1_000_000_000, nanosec=int(ns) % 1_000_000_000)


def _header(ns: int) -> Any:
    return TYPESTORE.types["std_msgs/msg/Header"](stamp=_time(ns), frame_id="")


def joint_state(stamp_ns: int, names: Sequence[str], q: Sequence[float], qd: Sequence[float] | None = None) -> Any:
    """A sensor_msgs/msg/JointState message object."""
    return TYPESTORE.types["sensor_msgs/msg/JointState"](
        header=_header(stamp_ns),
        name=list(names),
        position=np.array(q, np.float64),
        velocity=np.array(qd if qd is not None else [], np.float64),
        effort=np.zeros(0, np.float64),
    )


def joint_trajectory(header_stamp_ns: int, names: Sequence[str], q_cmd: Sequence[float]) -> Any:
    """A trajectory_msgs/msg/JointTrajectory with one point (time_from_start 0.1 s), as the policy node sends."""
    point = TYPESTORE.types["trajectory_msgs/msg/JointTrajectoryPoint"](
        positions=np.array(q_cmd, np.float64),
        velocities=np.zeros(0),
        accelerations=np.zeros(0),
        effort=np.zeros(0),
        time_from_start=TYPESTORE.types["builtin_interfaces/msg/Duration"](sec=0, nanosec=100_000_000),
    )
    return TYPESTORE.types["trajectory_msgs/msg/JointTrajectory"](
        header=_header(header_stamp_ns), joint_names=list(names), points=[point]
    )


def forward_command(q_cmd: Sequence[float]) -> Any:
    """A std_msgs/msg/Float64MultiArray of the targets."""
    layout = TYPESTORE.types["std_msgs/msg/MultiArrayLayout"](dim=[], data_offset=0)
    return TYPESTORE.types["std_msgs/msg/Float64MultiArray"](layout=layout, data=np.array(q_cmd, np.float64))


def diagnostics(log_ns: int, name: str, level: int, message: str) -> Any:
    """A diagnostic_msgs/msg/DiagnosticArray with one status."""
    status = TYPESTORE.types["diagnostic_msgs/msg/DiagnosticStatus"](
        level=level, name=name, message=message, hardware_id="", values=[]
    )
    return TYPESTORE.types["diagnostic_msgs/msg/DiagnosticArray"](header=_header(log_ns), status=[status])


def image(stamp_ns: int, n_bytes: int) -> Any:
    """A mono8 sensor_msgs/msg/Image of `n_bytes` pixels (one row)."""
    return TYPESTORE.types["sensor_msgs/msg/Image"](
        header=_header(stamp_ns),
        height=1,
        width=n_bytes,
        encoding="mono8",
        is_bigendian=0,
        step=n_bytes,
        data=np.zeros(n_bytes, np.uint8),
    )


def camera_info(stamp_ns: int) -> Any:
    """A sensor_msgs/msg/CameraInfo of a 640x480 pinhole camera."""
    types = TYPESTORE.types
    roi = types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    k = np.array([500.0, 0, 320, 0, 500.0, 240, 0, 0, 1])
    p = np.array([500.0, 0, 320, 0, 0, 500.0, 240, 0, 0, 0, 1, 0])
    return types["sensor_msgs/msg/CameraInfo"](
        header=_header(stamp_ns), height=480, width=640, distortion_model="plumb_bob", d=np.zeros(5), k=k,
        r=np.eye(3).ravel(), p=p, binning_x=0, binning_y=0, roi=roi,
    )  # fmt: skip


def typestore_with(definitions: Mapping[str, str]) -> Typestore:
    """The Kilted typestore plus custom message types (type name -> .msg text); a definition of a type Kilted has
    replaces Kilted's (a bag written with another distro's or a vendor's definition)."""
    custom: dict[str, Any] = {}
    for name, text in definitions.items():
        custom.update(get_types_from_msg(text, name))
    store = get_typestore(Stores.EMPTY)
    store.register({k: v for k, v in get_typestore(Stores.ROS2_KILTED).fielddefs.items() if k not in custom} | custom)
    return store


def joint_states_from(
    t_ns: Sequence[int], q: np.ndarray, qd: np.ndarray | None = None, names: Sequence[str] = ARM
) -> list[JointStateSample]:
    """Samples from arrays: stamps (M,), positions (M, n), velocities (M, n) or None, in `names` order."""
    return [JointStateSample(int(t), names, q[i], None if qd is None else qd[i]) for i, t in enumerate(t_ns)]


def commands_from(t_ns: Sequence[int], q_cmd: np.ndarray, names: Sequence[str] = ARM) -> list[CommandSample]:
    """Commands from arrays: send times (K,), targets (K, n) in `names` order."""
    return [CommandSample(int(t), names, q_cmd[i]) for i, t in enumerate(t_ns)]


def write_bag(
    path: Path,
    *,
    joint_states: Iterable[JointStateSample | tuple[Any, ...]] = (),
    commands: Iterable[CommandSample | tuple[Any, ...]] = (),
    statuses: Iterable[StatusSample | tuple[Any, ...]] = (),
    extra: Iterable[Extra] = (),
    storage: str = "mcap",
    command_kind: str = JOINT_TRAJECTORY,
    namespace: str = "",
    latency_ns: int = 0,
    definitions: bool = True,
    metadata: bool = True,
    typestore: Typestore | None = None,
    broken_definitions: Mapping[str, str] | None = None,
    version: int = 9,
) -> Path:
    """Write a bag folder at `path` (which must not exist) with rosbags' Writer, as our recorder does; return it.

    joint_states, commands: samples (or plain tuples in their field order) on `<namespace>/joint_states` and the
    `command_kind` topic; statuses on /diagnostics; `extra` may be a generator (sorted by log time), so a large
    bag never sits in memory. Messages are written in log-time order. `definitions=False` writes a legacy bag
    without message definitions; `broken_definitions` (type -> text) stores a wrong one for that type;
    `metadata=False` removes metadata.yaml afterwards (a recorder that crashed)."""
    store = typestore or TYPESTORE
    plugin = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}[storage]
    messages = _messages(joint_states, commands, statuses, extra, command_kind, namespace, latency_ns)
    with Writer(path, version=version, storage_plugin=plugin) as writer:
        conns: dict[tuple[str, str], Any] = {}
        for log_ns, topic, msgtype, msg in messages:
            conn = conns.get((topic, msgtype))
            if conn is None:
                if not definitions:
                    conn = writer.add_connection(topic, msgtype, msgdef="", rihs01=NO_HASH)
                elif broken_definitions and msgtype in broken_definitions:
                    conn = writer.add_connection(topic, msgtype, msgdef=broken_definitions[msgtype], rihs01=NO_HASH)
                else:
                    conn = writer.add_connection(topic, msgtype, typestore=store)
                conns[(topic, msgtype)] = conn
            data = msg if isinstance(msg, bytes | bytearray) else store.serialize_cdr(msg, msgtype)
            writer.write(conn, log_ns, data)
    if not definitions and storage == "sqlite3":
        for db in path.glob("*.db3"):
            with sqlite3.connect(db) as con:
                con.execute("DELETE FROM message_definitions")
            con.close()
    if not metadata:
        (path / "metadata.yaml").unlink()
    return path


def write_mcap(
    path: Path,
    *,
    joint_states: Iterable[JointStateSample | tuple[Any, ...]] = (),
    commands: Iterable[CommandSample | tuple[Any, ...]] = (),
    extra: Iterable[Extra] = (),
    compression: str = "zstd",
    chunk_size: int = 64 * 1024,
    chunked: bool = True,
) -> Path:
    """Write one .mcap file at `path` with the `mcap` library instead (another writer, as `ros2 bag record`'s:
    zstd or lz4 chunks of `chunk_size`, or unchunked like its `fastwrite` preset), no metadata.yaml; return it."""
    from mcap.writer import CompressionType
    from mcap.writer import Writer as McapWriter

    kinds = {"zstd": CompressionType.ZSTD, "lz4": CompressionType.LZ4, "none": CompressionType.NONE}
    with path.open("wb") as f:
        writer = McapWriter(f, chunk_size=chunk_size, compression=kinds[compression], use_chunking=chunked)
        writer.start(profile="ros2", library="bag_factory")
        channels: dict[str, int] = {}
        for log_ns, topic, msgtype, msg in _messages(joint_states, commands, (), extra, JOINT_TRAJECTORY, "", 0):
            if topic not in channels:
                text, _ = TYPESTORE.generate_msgdef(msgtype, ros_version=2)
                schema = writer.register_schema(msgtype, "ros2msg", text.encode())
                channels[topic] = writer.register_channel(topic, "cdr", schema)
            writer.add_message(channels[topic], log_ns, TYPESTORE.serialize_cdr(msg, msgtype), log_ns)
        writer.finish()
    return path


def _messages(
    joint_states: Iterable[JointStateSample | tuple[Any, ...]],
    commands: Iterable[CommandSample | tuple[Any, ...]],
    statuses: Iterable[StatusSample | tuple[Any, ...]],
    extra: Iterable[Extra],
    command_kind: str,
    namespace: str,
    latency_ns: int,
) -> Iterator[tuple[int, str, str, Any]]:
    """(log time, topic, type, message) of every stream, merged in log-time order."""
    ns = "/" + namespace.strip("/") if namespace.strip("/") else ""
    cmd_topic, cmd_type = COMMAND_TOPICS[command_kind]
    js = sorted((JointStateSample(*x) for x in joint_states), key=lambda x: _log(x.log_ns, x.stamp_ns + latency_ns))
    cmds = sorted((CommandSample(*x) for x in commands), key=lambda x: _log(x.log_ns, x.stamp_ns))
    diags = sorted((StatusSample(*x) for x in statuses), key=lambda x: x.log_ns)

    def js_stream() -> Iterator[tuple[int, int, str, str, Any]]:
        for i, x in enumerate(js):
            msg = joint_state(x.stamp_ns, x.names, x.q, x.qd)
            yield _log(x.log_ns, x.stamp_ns + latency_ns), i, f"{ns}/joint_states", "sensor_msgs/msg/JointState", msg

    def cmd_stream() -> Iterator[tuple[int, int, str, str, Any]]:
        for i, x in enumerate(cmds):
            if command_kind == JOINT_TRAJECTORY:
                msg = joint_trajectory(x.header_stamp_ns, x.names, x.q_cmd)
            else:
                msg = forward_command(x.q_cmd)
            yield _log(x.log_ns, x.stamp_ns), i, f"{ns}/{cmd_topic}", cmd_type, msg

    def diag_stream() -> Iterator[tuple[int, int, str, str, Any]]:
        for i, x in enumerate(diags):
            yield x.log_ns, i, "/diagnostics", "diagnostic_msgs/msg/DiagnosticArray", diagnostics(*x)

    def extra_stream() -> Iterator[tuple[int, int, str, str, Any]]:
        for i, x in enumerate(extra):
            yield x.log_ns, i, x.topic, x.msgtype, x.msg

    merged = heapq.merge(js_stream(), cmd_stream(), diag_stream(), extra_stream(), key=lambda x: (x[0], x[1]))
    for log_ns, _, topic, msgtype, msg in merged:
        yield log_ns, topic, msgtype, msg


def _log(log_ns: int | None, default_ns: int) -> int:
    return int(default_ns if log_ns is None else log_ns)
