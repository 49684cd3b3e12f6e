"""Whether ROS 2's rclpy (the [ros] extra) imports here: the one place outside the nodes that touches it, so the
pipeline can say "install the extra" instead of failing with a traceback."""

from __future__ import annotations

INSTALL_HINT = "pip install 'sim2real[ros]' (ROS 2 Kilted from pip, x86-64 Linux)"


def ros_import_error() -> str | None:
    """None when rclpy imports; else the import error's text."""
    try:
        import rclpy  # noqa: F401
    except ImportError as e:
        return str(e)
    return None
