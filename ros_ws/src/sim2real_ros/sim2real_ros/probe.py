"""A plain rclpy node in its own context, spun in a background thread: it subscribes and keeps what arrives,
publishes, calls services and lifecycle transitions. The goal-episode client of `sim2real deploy` is built on it,
and the tests drive the nodes with it (launch_testing is not installable here; ROS.md section 1.14)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import rclpy
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.serialization import deserialize_message

#: The QoS names `collect` and `publisher` take besides a depth: "sensor" is REP 2003's SensorDataQoS.
QOS: dict[str, Any] = {
    "sensor": qos_profile_sensor_data,
    "reliable": QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE),
    "best_effort": QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT),
    "latched": QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL),
}
TRANSITIONS = {
    "configure": Transition.TRANSITION_CONFIGURE,
    "activate": Transition.TRANSITION_ACTIVATE,
    "deactivate": Transition.TRANSITION_DEACTIVATE,
    "cleanup": Transition.TRANSITION_CLEANUP,
}


class Probe:
    """The node, its context and its spinning thread; `close()` (or the `probe()` context manager) ends all three."""

    def __init__(self, name: str = "probe") -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = Node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.received: dict[str, list[Any]] = {}
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        with contextlib.suppress(Exception):  # the context shut down under the executor: the probe is closing
            self.executor.spin()

    def collect(self, msg_type: Any, topic: str, qos: int | str = 10, callback: Callable[[Any], None] | None = None):
        """Subscribe and keep every message in `received[topic]` (returned); `callback` also sees each one."""
        box: list[Any] = self.received.setdefault(topic, [])

        def keep(msg: Any) -> None:
            box.append(msg)
            if callback is not None:
                callback(msg)

        self.node.create_subscription(msg_type, topic, keep, QOS.get(qos, qos) if isinstance(qos, str) else qos)
        return box

    def collect_raw(self, msg_type: Any, topic: str, qos: int | str = 10) -> list[bytes]:
        """Subscribe raw and keep every message's serialized bytes as delivered (returned); `deserialize` reads them."""
        box: list[bytes] = []
        self.node.create_subscription(msg_type, topic, box.append, QOS[qos] if isinstance(qos, str) else qos, raw=True)
        return box

    @staticmethod
    def deserialize(raw: bytes, msg_type: Any) -> Any:
        """A message from its serialized CDR bytes."""
        return deserialize_message(raw, msg_type)

    def publisher(self, msg_type: Any, topic: str, qos: int | str = 10) -> Any:
        return self.node.create_publisher(msg_type, topic, QOS[qos] if isinstance(qos, str) else qos)

    def publisher_reliabilities(self, topic: str) -> list[str]:
        """Reliability ("reliable" / "best_effort") of every publisher on `topic`, as discovered."""
        names = {ReliabilityPolicy.RELIABLE: "reliable", ReliabilityPolicy.BEST_EFFORT: "best_effort"}
        return [names.get(i.qos_profile.reliability, "other") for i in self.node.get_publishers_info_by_topic(topic)]

    def call(self, srv_type: Any, name: str, request: Any = None, timeout_s: float = 10.0) -> Any:
        """Call a service and return its response; TimeoutError when it does not appear or answer in time."""
        client: Any = self.node.create_client(srv_type, name)
        deadline = time.monotonic() + timeout_s
        try:
            while not client.wait_for_service(timeout_sec=0.1):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"service {name} did not appear within {timeout_s} s")
            future = client.call_async(request if request is not None else srv_type.Request())
            while not future.done():
                if time.monotonic() > deadline:
                    raise TimeoutError(f"service {name} did not answer within {timeout_s} s")
                time.sleep(0.002)
            return future.result()
        finally:
            self.node.destroy_client(client)

    def change_state(self, node: str, transition: str) -> bool:
        """Ask a lifecycle node for a transition (configure, activate, deactivate, cleanup); True if it succeeded."""
        req = ChangeState.Request()
        req.transition.id = TRANSITIONS[transition]
        return bool(self.call(ChangeState, f"{node}/change_state", req).success)

    def lifecycle_state(self, node: str, timeout_s: float = 10.0) -> str:
        """A lifecycle node's state label (unconfigured, inactive, active, ...)."""
        return str(self.call(GetState, f"{node}/get_state", timeout_s=timeout_s).current_state.label)

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=1.0)  # ends the spin; join before tearing the node down under it
        self._thread.join(timeout=2.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


@contextmanager
def probe(name: str = "probe") -> Iterator[Probe]:
    p = Probe(name)
    try:
        yield p
    finally:
        p.close()
