"""Test harness for real rclpy over real DDS: an in-process probe node spun in a thread, and console scripts
started as subprocesses (launch_testing is not installable here; ROS.md section 1.14)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

rclpy = pytest.importorskip("rclpy", reason="needs the [ros] extra (ros-kilted-rclpy)")

from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402

BIN = Path(sys.executable).parent


def wait_for(predicate: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """Poll until predicate() is truthy; fail the test naming `what` on timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


class Probe:
    """A plain node in its own context, spun by a background executor; collects what it subscribes to."""

    def __init__(self, name: str = "probe") -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = Node(name, context=self.context)
        self.executor = MultiThreadedExecutor(num_threads=2, context=self.context)
        self.executor.add_node(self.node)
        self.received: dict[str, list[Any]] = {}
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        with contextlib.suppress(Exception):  # the context shut down under the executor: the probe is closing
            self.executor.spin()

    def collect(self, msg_type: Any, topic: str, qos: Any = 10) -> list[Any]:
        """Subscribe and keep every message in `received[topic]` (returned)."""
        box: list[Any] = self.received.setdefault(topic, [])
        self.node.create_subscription(msg_type, topic, box.append, qos)
        return box

    def call(self, srv_type: Any, name: str, request: Any = None, timeout_s: float = 10.0) -> Any:
        """Call a service and return its response."""
        client = self.node.create_client(srv_type, name)
        wait_for(lambda: client.wait_for_service(timeout_sec=0.1), timeout_s, f"service {name}")
        future = client.call_async(request if request is not None else srv_type.Request())
        wait_for(future.done, timeout_s, f"a response from {name}")
        return future.result()

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)
        self._thread.join(timeout=2.0)


@contextmanager
def probe(name: str = "probe") -> Iterator[Probe]:
    p = Probe(name)
    try:
        yield p
    finally:
        p.close()


@contextmanager
def console_script(name: str, *args: str, ros_args: tuple[str, ...] = ()) -> Iterator[subprocess.Popen[str]]:
    """Start one of our console scripts (`BIN/name`) with the test's DDS isolation; SIGINT, then kill, at exit."""
    cmd = [str(BIN / name), *args] + (["--ros-args", *ros_args] if ros_args else [])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ))
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=8)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def output_of(proc: subprocess.Popen[str]) -> str:
    """Everything a finished process printed (stdout and stderr)."""
    assert proc.stdout is not None
    return proc.stdout.read()
