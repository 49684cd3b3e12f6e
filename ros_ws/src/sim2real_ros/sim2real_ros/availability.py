"""Whether ROS 2's rclpy (the [ros] extra) imports here, asked without importing any node: the console scripts and
the pipeline say "install the extra" in one line instead of failing with a traceback."""

from __future__ import annotations

INSTALL_HINT = "pip install 'sim2real[ros]' (ROS 2 Kilted from pip, x86-64 Linux)"


def ros_import_error() -> str | None:
    """None when rclpy imports; else the import error's text."""
    try:
        import rclpy  # noqa: F401
    except ImportError as e:
        return str(e)
    return None


def missing_ros_message(script: str) -> str:
    """What console script `script` prints when rclpy is missing (before the import error's text)."""
    return f"{script} needs the [ros] extra: {INSTALL_HINT}"


def missing_ros(script: str) -> str | None:
    """None when rclpy imports; else the one line `script` prints (on stderr, exit code 2) instead of running."""
    error = ros_import_error()
    return None if error is None else f"{missing_ros_message(script)} ({error})"
