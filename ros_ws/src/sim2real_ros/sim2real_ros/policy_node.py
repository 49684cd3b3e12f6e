"""`sim2real-policy-node`: the console script of the lifecycle node that runs a policy bundle on an arm.

This module imports nothing of ROS, so a machine without the [ros] extra gets one clear line instead of a
traceback; the node itself is in sim2real_ros.policy_lifecycle.
"""

from __future__ import annotations

import sys

from sim2real_ros.availability import missing_ros, missing_ros_message

SCRIPT = "sim2real-policy-node"
MISSING_ROS = missing_ros_message(SCRIPT)


def main(argv: list[str] | None = None) -> int:
    """Run the node until SIGINT/SIGTERM; exit code 0 after a final hold, 2 without rclpy."""
    problem = missing_ros(SCRIPT)
    if problem is not None:
        print(problem, file=sys.stderr)
        return 2
    from sim2real_ros.policy_lifecycle import run

    return run(sys.argv if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
