"""`sim2real-sim-arm`: the console script of the node that runs a task's simulated scene as a ROS 2 robot, to
rehearse a deployment before the real arm (`--help` lists its parameters).

This module imports nothing of ROS, so a machine without the [ros] extra gets one clear line instead of a
traceback; the node itself is in sim2real_ros.sim_arm_robot.
"""

from __future__ import annotations

import sys

from sim2real_ros.availability import missing_ros, missing_ros_message

SCRIPT = "sim2real-sim-arm"
MISSING_ROS = missing_ros_message(SCRIPT)


def main(argv: list[str] | None = None) -> int:
    """Run the node until SIGINT or SIGTERM; exit code 0, 1 when the node cannot start, 2 without rclpy."""
    problem = missing_ros(SCRIPT)
    if problem is not None:
        print(problem, file=sys.stderr)
        return 2
    from sim2real_ros.sim_arm_robot import run

    return run(list(sys.argv if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
