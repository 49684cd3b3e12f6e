"""SIGINT and SIGTERM as a request to stop: while inside `stop_on_signals`, either one sets an Event that the
command's loop polls (it then finishes cleanly: a bag closed, a hold published) instead of killing it. No ROS."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[list[str]]:
    """Yield the names of the signals received (SIGINT, SIGTERM), each of which also sets `stop`. Handlers are
    installed only on the main thread (elsewhere only `stop` ends the loop) and restored on exit."""
    received: list[str] = []

    def on_signal(signum: int, frame: Any) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
