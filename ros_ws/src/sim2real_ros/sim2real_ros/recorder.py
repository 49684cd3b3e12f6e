"""`sim2real-recorder`: the console script that records the robot's topics into a rosbag2 folder (MCAP storage,
metadata version 9) for calibration: every message as the middleware delivered it (serialized CDR bytes, unchanged),
stamped with its receive time; image topics keep one frame in `--image-every` (`--help` lists the flags).

This module imports nothing of ROS, so a robot PC without the [ros] extra gets one clear line instead of a
traceback. The node is sim2real_ros.recorder_node (rclpy and rosbags only: no torch, gymnasium, mujoco, pybullet or
SB3, DESIGN.md); what is testable without DDS is in sim2real_ros.recorder_core.
"""

from __future__ import annotations

import sys

from sim2real_ros.availability import missing_ros
from sim2real_ros.recorder_core import (
    SCRIPT,
    RecorderError,
    RecordingFailed,
    build_parser,
    check_options,
    format_summary,
    missing_rosbags,
    options_from_args,
)


def main(argv: list[str] | None = None) -> int:
    """Record until SIGINT, SIGTERM or --duration-s; print the summary. Exit code 0, 2 for a refused start (or
    without the [ros] extra), 1 when writing failed midway."""
    argv = list(sys.argv if argv is None else argv)
    problem = missing_ros(SCRIPT) or missing_rosbags()
    if problem is not None:
        print(problem, file=sys.stderr)
        return 2
    from rclpy.utilities import remove_ros_args

    args = build_parser().parse_args(remove_ros_args(argv)[1:])
    try:
        options = options_from_args(args)
        check_options(options)
        from sim2real_ros.recorder_node import run

        summary = run(options, argv)
    except RecorderError as e:
        print(f"{SCRIPT}: {e}", file=sys.stderr)
        return 2
    except RecordingFailed as e:
        print(f"{SCRIPT}: {e}", file=sys.stderr)
        return 1
    print(format_summary(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
