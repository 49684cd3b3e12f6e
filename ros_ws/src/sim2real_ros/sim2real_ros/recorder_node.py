"""The node behind `sim2real-recorder` (sim2real_ros.recorder): it subscribes to the requested topics as their
publishers appear and writes what arrives into a new rosbag2 folder with the pure-Python rosbags library (MCAP
storage, metadata version 9, the layout `ros2 bag info` and `ros2 bag play` read).

* Discovery: every DISCOVERY_PERIOD_S the node looks up each requested topic's publishers. At the first one it adds
  the topic to the bag (the type the graph reports, its message definition and RIHS01 hash from rosbags' ROS 2
  Kilted typestore, the publishers' offered QoS profiles) and subscribes with raw=True: the callback receives the
  serialized CDR bytes, which go into the bag unchanged (no conversion, no loss of fields or precision). A topic
  without a publisher gets no connection. Messages published before the subscription matched are not recorded.
* QoS (recorder_core.subscription_delivery): reliable when every publisher is (a reliable subscription hears nothing
  from a best-effort publisher: zero messages, only an incompatible-QoS event, ROS.md 1.5), else best effort;
  transient local when every publisher is (latched messages arrive), else volatile. A publisher that appears later
  and would not be heard makes the topic re-subscribe weaker: the new subscription comes before the old one goes,
  and the messages both deliver are dropped once by publisher GID and sequence number. Keep-last 100 (images 10)
  absorbs stalls of the writer; sequence gaps are counted as lost in the summary.
* Time: a message's log time is the middleware's reception timestamp (system clock), or the node's clock when
  the node runs with use_sim_time.
* Stop: SIGINT and SIGTERM set a flag (rclpy's own handlers are off, as in the other nodes); the loop takes what
  the middleware already holds, destroys the subscriptions and closes the writer: the last chunk, the summary
  section, the footer, then metadata.yaml. Every FLUSH_PERIOD_S the pending chunk goes to the file and the file is
  flushed, so a crash or SIGKILL loses at most about that long (and leaves no footer and no metadata.yaml:
  calibration salvages the complete chunks, ROS.md B.4 37-38).
"""

from __future__ import annotations

import functools
import importlib
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Final

import rclpy
from rclpy.clock import Clock, ClockType
from rclpy.exceptions import InvalidNamespaceException
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from rclpy.validate_namespace import validate_namespace
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import StoragePlugin, Writer, WriterError
from rosbags.typesys import Stores, get_typestore

from sim2real_ros.recorder_core import (
    CUSTOM_DATA_KEY,
    CUSTOM_DATA_SCHEMA_VERSION,
    DECIMATED_TYPES,
    Delivery,
    RecorderError,
    RecorderOptions,
    RecordingFailed,
    RecordingSummary,
    TopicSummary,
    subscription_delivery,
)
from sim2real_ros.stop_signals import stop_on_signals

#: Message definitions of the ROS 2 distro the project runs (the pip wheels are Kilted). rosbags 0.11.9 also has
#: lyrical; every default topic's type has the same RIHS01 hash in both, and a publisher whose hash differs from
#: the store's is reported.
TYPESTORE = Stores.ROS2_KILTED
BAG_VERSION: Final = 9
DISCOVERY_PERIOD_S = 0.1
FLUSH_PERIOD_S = 1.0
DEPTH = 100
IMAGE_DEPTH = 10
#: After a stop, how long the loop may keep taking messages the middleware already delivered.
DRAIN_BUDGET_S = 0.5
_SEQUENCE_UNSUPPORTED = 2**64 - 1


@dataclass
class _Topic:
    """One requested topic: its connection in the bag and its subscription once a publisher appeared."""

    summary: TopicSummary
    keep_every: int = 1
    connection: Any = None
    msg_class: Any = None
    delivery: Delivery | None = None
    subscription: Any = None
    refused: set[str] = field(default_factory=set)
    """Types seen on the topic and not recorded (each warned about once)."""

    @property
    def name(self) -> str:
        return self.summary.topic


def _message_class(msgtype: str) -> Any:
    """The rclpy message class of 'pkg/msg/Name' (raw subscriptions still need the type support)."""
    pkg, kind, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{pkg}.{kind}"), name)


def _delivery(qos: Any) -> Delivery:
    return Delivery(qos.reliability == ReliabilityPolicy.RELIABLE, qos.durability == DurabilityPolicy.TRANSIENT_LOCAL)


def _bag_qos(qos: Any) -> Qos:
    """An rclpy QoSProfile (as discovered for a publisher) as rosbags writes it into the bag."""

    def enum(cls: Any, value: Any) -> Any:
        try:
            return cls(int(value))
        except ValueError:
            return cls.UNKNOWN

    def duration(d: Any) -> QosTime:
        sec, nsec = divmod(int(d.nanoseconds), 10**9)
        return QosTime(sec, nsec)

    return Qos(
        history=enum(QosHistory, qos.history),
        depth=int(qos.depth),
        reliability=enum(QosReliability, qos.reliability),
        durability=enum(QosDurability, qos.durability),
        deadline=duration(qos.deadline),
        lifespan=duration(qos.lifespan),
        liveliness=enum(QosLiveliness, qos.liveliness),
        liveliness_lease_duration=duration(qos.liveliness_lease_duration),
        avoid_ros_namespace_conventions=bool(qos.avoid_ros_namespace_conventions),
    )


def _check_namespace(namespace: str) -> None:
    """RecorderError for a namespace rcl would refuse (checked before a node exists, so rcl logs nothing)."""
    full = namespace if namespace.startswith("/") else f"/{namespace}"
    if full == "/":
        return
    try:
        validate_namespace(full)
    except InvalidNamespaceException as e:
        reason = _first_line(e).removeprefix("Invalid namespace: ").rstrip(":")
        raise RecorderError(f"--namespace {namespace!r}: {reason}") from None


def _first_line(error: Exception) -> str:
    """An rcl error's message without its C source location."""
    return str(error).splitlines()[0].split(", at /")[0] if str(error) else type(error).__name__


class RecorderNode(Node):
    """The recorder (node `recorder`); see the module docstring. `finish()` closes the bag."""

    def __init__(self, options: RecorderOptions, context: Any = None) -> None:
        _check_namespace(options.namespace)
        super().__init__("recorder", namespace=options.namespace or None, context=context)
        self.options = options
        self.warnings: list[str] = []
        self.arrivals = 0  # callbacks run (duplicates and decimated frames included): the drain watches it
        self.topics: dict[str, _Topic] = {}
        for name in options.topics:
            try:
                resolved = self.resolve_topic_name(name)
            except Exception as e:
                raise RecorderError(f"--topics {name!r}: {_first_line(e)}") from None
            self.topics.setdefault(resolved, _Topic(TopicSummary(resolved)))
        self.typestore = get_typestore(TYPESTORE)
        self.use_sim_time = bool(self.get_parameter("use_sim_time").value)
        self.writer = Writer(options.out, version=BAG_VERSION, storage_plugin=StoragePlugin.MCAP)
        try:
            self.writer.open()
        except (WriterError, OSError) as e:
            raise RecorderError(f"--out {options.out}: {e}") from None
        steady = Clock(clock_type=ClockType.STEADY_TIME)  # runs with use_sim_time and no /clock as well
        self.create_timer(DISCOVERY_PERIOD_S, self.discover, clock=steady)
        self.create_timer(FLUSH_PERIOD_S, self.flush, clock=steady)
        self.get_logger().info(f"recording into {options.out}: {', '.join(self.topics)}")
        self.discover()

    # -- discovery and subscriptions -----------------------------------------------------------------------
    def discover(self) -> None:
        """Add and subscribe topics whose first publisher appeared; re-subscribe weaker where one is not heard."""
        for topic in self.topics.values():
            infos = self.get_publishers_info_by_topic(topic.name)
            if infos:
                self._update(topic, infos)

    def _update(self, topic: _Topic, infos: list[Any]) -> None:
        types = {str(i.topic_type) for i in infos}
        if topic.connection is None:
            candidates = sorted(types - topic.refused)
            if not candidates or not self._add_to_bag(topic, candidates[0], infos):
                return
        for other in sorted(types - {topic.summary.msgtype} - topic.refused):
            topic.refused.add(other)
            self._warn(f"{topic.name}: a publisher of {other} is not recorded (the topic is {topic.summary.msgtype})")
        offered = [_delivery(i.qos_profile) for i in infos if str(i.topic_type) == topic.summary.msgtype]
        wanted = subscription_delivery(offered, topic.delivery)
        if wanted != topic.delivery:
            self._subscribe(topic, wanted)

    def _add_to_bag(self, topic: _Topic, msgtype: str, infos: list[Any]) -> bool:
        same = [i for i in infos if str(i.topic_type) == msgtype]
        try:
            msg_class = _message_class(msgtype)
            connection = self.writer.add_connection(
                topic.name,
                msgtype,
                typestore=self.typestore,
                offered_qos_profiles=[_bag_qos(i.qos_profile) for i in same],
            )
        except Exception as e:  # a type this machine or rosbags' store does not know
            topic.refused.add(msgtype)
            self._warn(f"{topic.name}: type {msgtype} cannot be recorded here ({type(e).__name__}: {e})")
            return False
        live = {str(i.topic_type_hash) for i in same}
        live = {h for h in live if h.startswith("RIHS01_") and h[len("RIHS01_") :].strip("0")}
        if live and live != {connection.digest}:
            self._warn(
                f"{topic.name}: the publishers' {msgtype} ({', '.join(sorted(live))}) differs from the definition "
                f"written to the bag ({TYPESTORE.value}, {connection.digest}): decode these messages with care"
            )
        topic.connection, topic.msg_class = connection, msg_class
        topic.summary.msgtype = msgtype
        topic.keep_every = self.options.image_every if msgtype in DECIMATED_TYPES else 1
        return True

    def _subscribe(self, topic: _Topic, delivery: Delivery) -> None:
        qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=IMAGE_DEPTH if topic.summary.msgtype in DECIMATED_TYPES else DEPTH,
            reliability=ReliabilityPolicy.RELIABLE if delivery.reliable else ReliabilityPolicy.BEST_EFFORT,
            durability=DurabilityPolicy.TRANSIENT_LOCAL if delivery.transient_local else DurabilityPolicy.VOLATILE,
        )
        old = topic.subscription
        callback = functools.partial(self._on_message, topic)
        topic.subscription = self.create_subscription(topic.msg_class, topic.name, callback, qos, raw=True)
        if old is not None:  # made before the old one is broken: duplicates are dropped by GID and sequence
            self.destroy_subscription(old)
            self._warn(
                f"{topic.name}: re-subscribed {delivery.describe()} (was {topic.summary.delivery}) for a publisher "
                "that offers less; a message or two may have been missed meanwhile"
            )
        else:
            self.get_logger().info(f"recording {topic.name} ({topic.summary.msgtype}, {delivery.describe()})")
        topic.delivery = delivery
        topic.summary.delivery = delivery.describe()

    # -- messages ------------------------------------------------------------------------------------------
    def _on_message(self, topic: _Topic, data: bytes, info: Any) -> None:
        self.arrivals += 1
        gid = info.get("publisher_gid")
        publisher = bytes(gid["data"]) if gid and gid.get("data") is not None else None
        seq = info.get("publication_sequence_number")
        if seq == _SEQUENCE_UNSUPPORTED:
            seq = None
        if topic.summary.stats.admit(publisher, seq, topic.keep_every):
            self.writer.write(topic.connection, self._log_time_ns(info), data)

    def _log_time_ns(self, info: Any) -> int:
        if not self.use_sim_time:
            received = info.get("received_timestamp")
            if received:
                return int(received)
        return int(self.get_clock().now().nanoseconds)

    def flush(self) -> None:
        """Write the pending MCAP chunk (when it holds messages) and flush the file: a crash loses at most the
        time since. rosbags keeps up to 1 MiB in memory otherwise; without its McapWriter internals, a no-op."""
        storage = self.writer.storage
        chunk = getattr(storage, "chunk", None)
        if chunk is not None and hasattr(storage, "close_chunk") and any(getattr(chunk, "msgs", {}).values()):
            storage.close_chunk()  # type: ignore[union-attr]
        bio = getattr(storage, "bio", None)
        if bio is not None:
            bio.flush()

    def drain(self, executor: SingleThreadedExecutor, budget_s: float = DRAIN_BUDGET_S) -> None:
        """Take what the middleware has already delivered (until a few spins take nothing, or budget_s)."""
        end_s, idle = time.monotonic() + budget_s, 0
        while idle < 3 and time.monotonic() < end_s:
            before = self.arrivals
            executor.spin_once(timeout_sec=0.0)
            idle = idle + 1 if self.arrivals == before else 0

    def finish(self, recorded_s: float, stopped_by: str) -> None:
        """Unsubscribe, then close the bag (chunk, summary, footer, metadata.yaml with the recorder's entry)."""
        for topic in self.topics.values():
            if topic.subscription is not None:
                self.destroy_subscription(topic.subscription)
                topic.subscription = None
        entry = {
            "schema_version": CUSTOM_DATA_SCHEMA_VERSION,
            "namespace": self.get_namespace(),
            "requested_topics": list(self.options.topics),
            "image_every": self.options.image_every,
            "log_time": "node clock (use_sim_time)" if self.use_sim_time else "middleware reception time",
            "recorded_s": round(recorded_s, 3),
            "stopped_by": stopped_by,
            "topics": {
                t.name: {
                    "received": t.summary.stats.received,
                    "written": t.summary.stats.written,
                    "lost": t.summary.stats.lost,
                    "qos": t.summary.delivery,
                }
                for t in self.topics.values()
                if t.connection is not None
            },
        }
        self.writer.set_custom_data(CUSTOM_DATA_KEY, json.dumps(entry, sort_keys=True))
        self.writer.close()

    def summary(self, recorded_s: float, stopped_by: str) -> RecordingSummary:
        out = self.options.out
        size = sum(f.stat().st_size for f in out.iterdir() if f.is_file()) if out.is_dir() else 0
        lost = [f"{t.name} {t.summary.stats.lost}" for t in self.topics.values() if t.summary.stats.lost]
        warnings = list(self.warnings)
        if lost:
            warnings.append("messages lost before reaching the recorder (publisher sequence gaps): " + ", ".join(lost))
        topics = [t.summary for t in self.topics.values()]
        return RecordingSummary(out, recorded_s, topics, stopped_by, size, warnings)

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        self.get_logger().warning(message)


def run(
    options: RecorderOptions, argv: list[str] | None = None, stop: threading.Event | None = None
) -> RecordingSummary:
    """Record until SIGINT or SIGTERM (handled here when called on the main thread), `stop` set, or
    options.duration_s; then close the bag and return what it holds. `argv` may carry ROS arguments
    (`--ros-args -r a:=b -p use_sim_time:=true`). RecorderError before anything is written for a bad name or an
    --out that exists; RecordingFailed (after closing what was written) when writing fails."""
    stop = stop or threading.Event()
    with stop_on_signals(stop) as stopped_by:
        return _run(options, argv, stop, stopped_by)


def _run(
    options: RecorderOptions, argv: list[str] | None, stop: threading.Event, stopped_by: list[str]
) -> RecordingSummary:
    """run() with the signals already turned into `stop` (their names in `stopped_by`)."""
    context = rclpy.Context()
    try:
        try:
            rclpy.init(args=argv, context=context, signal_handler_options=SignalHandlerOptions.NO)
            node = RecorderNode(options, context)
        except RecorderError:
            raise
        except Exception as e:  # a bad ROS argument or namespace
            raise RecorderError(_first_line(e)) from None
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        start_s = time.monotonic()
        end_s = start_s + options.duration_s if options.duration_s > 0 else float("inf")
        failure: Exception | None = None
        try:
            while not stop.is_set():
                remaining_s = end_s - time.monotonic()
                if remaining_s <= 0:
                    stopped_by.append("duration")
                    break
                executor.spin_once(timeout_sec=min(0.05, remaining_s))
            node.drain(executor)
        except Exception as e:  # the writer failed (disk full): close what it wrote
            failure = e
        recorded_s = time.monotonic() - start_s
        reason = stopped_by[0] if stopped_by else ("error" if failure else "request")
        try:
            node.finish(recorded_s, reason)
        except Exception as e:
            node.writer.abort()
            failure = failure or e
        summary = node.summary(recorded_s, reason)
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        if failure is not None:
            raise RecordingFailed(
                f"writing {options.out} failed ({type(failure).__name__}: {failure}); what was written stays there"
            )
        return summary
    finally:
        rclpy.try_shutdown(context=context)
