"""`sim2real record`: record the robot's topics into a new rosbag2 folder (MCAP) for calibration, with the recorder
of sim2real_ros (the node of `sim2real-recorder`, same flags) run in this process; it stops at Ctrl-C, SIGTERM or
--duration-s and prints what the bag holds."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sim2real_ros.recorder_core import (
    DEFAULT_IMAGE_EVERY,
    DEFAULT_TOPICS,
    RecorderError,
    RecorderOptions,
    RecordingFailed,
    check_options,
    missing_rosbags,
)

if TYPE_CHECKING:
    from sim2real_ros.recorder_core import RecordingSummary

__all__ = ["RecordError", "RecordingFailed", "record"]


class RecordError(ValueError):
    """A recording that cannot start (no ROS 2, an --out that exists, a bad option); the message says which."""


def record(
    out: Path,
    duration_s: float = 0.0,
    topics: Sequence[str] | None = None,
    namespace: str = "",
    image_every: int = DEFAULT_IMAGE_EVERY,
    stop: threading.Event | None = None,
) -> RecordingSummary:
    """Record into the new folder `out` until SIGINT/SIGTERM (on the main thread), `stop` or duration_s (0: no
    limit); the summary of what was written. RecordError before anything is created; RecordingFailed if writing
    failed midway (the bag keeps what was written)."""
    from sim2real_ros.availability import INSTALL_HINT, ros_import_error

    error = ros_import_error()
    if error is not None:
        raise RecordError(f"recording needs the [ros] extra: {INSTALL_HINT} ({error})")
    problem = missing_rosbags()
    if problem is not None:
        raise RecordError(problem)
    options = RecorderOptions(Path(out), float(duration_s), tuple(topics or DEFAULT_TOPICS), namespace, image_every)
    try:
        check_options(options)
        from sim2real_ros.recorder_node import run

        return run(options, ["sim2real record"], stop=stop)
    except RecorderError as e:
        raise RecordError(str(e)) from None
