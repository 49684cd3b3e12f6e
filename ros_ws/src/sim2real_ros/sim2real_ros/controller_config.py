"""The ros2_control controllers the nodes command, and their command topics (defined here only), and a check of a
controllers YAML against what a streaming policy needs for safety (ROS.md 2.4, 2.5): the joint trajectory
controller's `cmd_timeout` on and longer than `goal_time`, command limits enforced, and no velocity or effort
forward controllers. No ROS import: the pipeline checks names and configs without the [ros] extra."""

from __future__ import annotations

from typing import Any

#: `command_interface` value (parameter of both nodes, `--controller` of `sim2real deploy`): a JointTrajectory
#: per tick to joint_trajectory_controller (the default), or a Float64MultiArray to a forward position controller.
JOINT_TRAJECTORY = "joint_trajectory"
FORWARD_POSITION = "forward_position"
#: The controllers' names, as in config/controllers.yaml and ros2_control_demos.
JOINT_TRAJECTORY_CONTROLLER = "joint_trajectory_controller"
FORWARD_POSITION_CONTROLLER = "forward_position_controller"
#: command_interface -> the command topic (relative, so a namespace moves it with the node).
COMMAND_TOPICS: dict[str, str] = {
    JOINT_TRAJECTORY: f"{JOINT_TRAJECTORY_CONTROLLER}/joint_trajectory",
    FORWARD_POSITION: f"{FORWARD_POSITION_CONTROLLER}/commands",
}
#: The gripper's forward command controller topic: one value, the finger width (m), for a policy that commands its
#: gripper when the fingers are not in the arm's JointTrajectory (policy node parameter gripper_in_trajectory).
GRIPPER_TOPIC = "gripper_controller/commands"
#: The command_interface values, the default first.
COMMAND_INTERFACES: tuple[str, ...] = tuple(COMMAND_TOPICS)


def check_controller_config(config: dict[str, Any], control_rate_hz: float) -> list[str]:
    """Problems with `config` (a parsed controllers YAML) for a policy commanding at control_rate_hz; [] if none."""
    problems = []
    manager = (config.get("controller_manager") or {}).get("ros__parameters") or {}
    if manager.get("enforce_command_limits") is False:
        problems.append("controller_manager.enforce_command_limits is false: commands are not clamped to the URDF")
    for name, section in config.items():
        params = (section or {}).get("ros__parameters") or {}
        kind = str((manager.get(name) or {}).get("type", ""))
        if "forward_command_controller" in kind or name.startswith("forward_"):
            interfaces = params.get("interface_name", "position")
            if interfaces != "position":
                problems.append(f"{name}: forward controllers must command positions, not {interfaces!r}")
    jtc = (config.get(JOINT_TRAJECTORY_CONTROLLER) or {}).get("ros__parameters")
    if jtc is None:
        return problems
    timeout = float(jtc.get("cmd_timeout", 0.0))
    goal_time = float((jtc.get("constraints") or {}).get("goal_time", 0.0))
    period = 1.0 / control_rate_hz
    if timeout <= 0.0:
        problems.append(f"{JOINT_TRAJECTORY_CONTROLLER}.cmd_timeout is off (0): a killed node leaves the arm moving")
    elif timeout <= goal_time:
        problems.append(f"cmd_timeout {timeout} s <= constraints.goal_time {goal_time} s: JTC ignores the timeout")
    elif timeout < 2 * period:
        problems.append(
            f"cmd_timeout {timeout} s is under two control periods ({2 * period:.3f} s): one late tick stops"
        )
    if "position" not in list(jtc.get("command_interfaces", ["position"])):
        problems.append(f"{JOINT_TRAJECTORY_CONTROLLER} must command the position interface")
    return problems
