"""ROS 2 side of sim2real. rclpy is imported only by the node modules; `messages` is pure numpy so the checks on
incoming and outgoing messages are the same, and testable, without ROS."""
