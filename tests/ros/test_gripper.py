"""Gripper commands (issue 16.3): a PickAndPlace policy's last action value moves the fingers through the safety
gate (limits, rate, hold) and out as a finger width on gripper_controller/commands or as finger joints in the
JointTrajectory; the simulated arm honours both. Core and arm without ROS first, then over real DDS."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from policies.bundle import load_bundle
from sim.scene import NEUTRAL_ARM_Q_RAD
from sim2real_ros.arm_sim import JointCommand, SimulatedArm, parse_gripper_command
from sim2real_ros.messages import MessageError
from sim2real_ros.policy_core import CoreSettings, PolicyCore

ARM = [f"panda_joint{i}" for i in range(1, 8)]
FINGERS = ["panda_finger_joint1", "panda_finger_joint2"]
XYZW = (0.0, 0.0, 0.0, 1.0)
OBJ_BASE = (0.55, -0.05, 0.02)
GOAL_BASE = (0.6, 0.05, 0.12)


def _ready(core: PolicyCore, t: float, finger_m: float = 0.02) -> None:
    q = list(NEUTRAL_ARM_Q_RAD)
    assert core.on_joint_state(ARM + FINGERS, [*q, finger_m, finger_m], [0.0] * 9, t, t, t) is None
    assert core.on_object_pose("panda_link0", OBJ_BASE, XYZW, t, t, t) is None


def test_the_manifest_says_how_the_gripper_moves(pnp_bundle: Path) -> None:
    g = load_bundle(pnp_bundle).manifest.robot.gripper
    assert g is not None and g.step_m == pytest.approx(0.01) and g.finger_limits_m == pytest.approx((0.0, 0.04))
    assert load_bundle(pnp_bundle).manifest.robot.blocked_finger_width_m is None


def test_commands_carry_the_finger_through_the_gate(pnp_bundle: Path) -> None:
    core = PolicyCore(load_bundle(pnp_bundle), CoreSettings(max_finger_velocity_m_s=0.05))
    _ready(core, 10.0)
    assert core.on_goal("panda_link0", GOAL_BASE, XYZW, 10.0) is None
    assert core.activate(10.0) is None
    for k in range(5):
        t = 10.04 + 0.04 * k
        _ready(core, t)
        tick = core.tick(t)
        assert tick.status == "act", tick.reasons
        assert tick.command_rad is not None and tick.command_rad.shape == (8,)
        finger = tick.command_rad[-1]
        assert 0.0 <= finger <= 0.04
        assert abs(finger - 0.02) <= 0.05 * core.period_s + 1e-9  # rate-limited from the measured position
    held = core.deactivate()
    assert held is not None and held.shape == (8,) and held[-1] == pytest.approx(0.02)  # the hold keeps the fingers


def test_the_finger_target_is_clamped_to_its_limits_and_needs_finger_joints(pnp_bundle: Path) -> None:
    core = PolicyCore(load_bundle(pnp_bundle), CoreSettings(max_finger_velocity_m_s=10.0))
    result = (
        core.gate.filter(np.r_[NEUTRAL_ARM_Q_RAD, 0.09])
        if core.gate.reset(np.r_[NEUTRAL_ARM_Q_RAD, 0.03]) is None
        else None
    )
    assert result is not None and result.command_rad[-1] == pytest.approx(0.04)
    assert "clamped" in " ".join(result.reasons)
    arm_only = PolicyCore(load_bundle(pnp_bundle))
    t = 10.0
    assert arm_only.on_joint_state(ARM, list(NEUTRAL_ARM_Q_RAD), [0.0] * 7, t, t, t) is None
    arm_only.on_object_pose("panda_link0", OBJ_BASE, XYZW, t, t, t)
    why = arm_only.activate(t)
    assert why is not None and "the policy uses its" in why


def test_a_pick_and_place_bundle_without_gripper_spec_is_refused(pnp_bundle: Path, tmp_path: Path) -> None:
    import json
    import shutil

    old = tmp_path / "old"
    shutil.copytree(pnp_bundle, old)
    m = json.loads((old / "manifest.json").read_text())
    del m["robot"]["gripper"]
    (old / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ValueError, match="no robot.gripper; re-export"):
        PolicyCore(load_bundle(old))


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ([], "has 0 values"),
        ([0.02, 0.02], "has 2 values"),
        ([float("nan")], "finite"),
        ([-0.01], ">= 0"),
        ([0.2], "exceeds"),
    ],  # fmt: skip
)
def test_bad_gripper_commands_are_refused(data: list[float], why: str) -> None:
    with pytest.raises(MessageError, match=why):
        parse_gripper_command(data, (0.0, 0.04))
    assert parse_gripper_command([0.05], (0.0, 0.04)) == 0.05


@pytest.mark.parametrize("backend", ["mujoco", "pybullet"])
def test_the_simulated_arm_moves_its_fingers_both_ways(backend: str) -> None:
    """A gripper command opens the fingers; a 9-joint command (the JTC owning the fingers) closes them again."""
    import gymnasium as gym

    import sim  # noqa: F401

    env = gym.make("Sim2Real/PickAndPlace-v0", backend=backend)
    try:
        env.reset(seed=0)
        b = env.unwrapped.sim  # type: ignore[attr-defined]
        q0 = np.asarray(b.joint_state()[0][:7])
        arm = SimulatedArm(b, JointCommand(q0, b.robot.arm_limits_rad, 0.0), chunk_substeps=5)
        arm.command_gripper(0.06)
        arm.advance(500)
        assert np.allclose(b.joint_state()[0][7:9], 0.03, atol=0.003)
        limits = np.vstack([b.robot.arm_limits_rad, [b.robot.finger_limits_m] * 2])
        owned = SimulatedArm(b, JointCommand(np.r_[q0, 0.03, 0.03], limits, 0.0), chunk_substeps=5)
        owned.command_trajectory(np.array([0.2]), np.r_[q0, 0.005, 0.005][None, :])
        owned.advance(500)
        assert np.allclose(b.joint_state()[0][7:9], 0.005, atol=0.003)
    finally:
        env.close()


# -- over DDS ---------------------------------------------------------------------------------------------
def _object_pose_timer(p, topic: str = "object_pose"):  # type: ignore[no-untyped-def]
    from geometry_msgs.msg import PoseStamped

    pub = p.publisher(PoseStamped, topic, "reliable")

    def send() -> None:
        msg = PoseStamped()
        msg.header.frame_id, msg.header.stamp = "panda_link0", p.node.get_clock().now().to_msg()
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = OBJ_BASE
        msg.pose.orientation.w = 1.0
        pub.publish(msg)

    return p.node.create_timer(1 / 30, send)


@pytest.mark.ros
@pytest.mark.parametrize("in_trajectory", [False, True])
def test_the_node_sends_the_finger_width_or_finger_joints(pnp_bundle: Path, in_trajectory: bool) -> None:
    from std_msgs.msg import Float64MultiArray

    from tests.ros.harness import FakeArm, console_script, lifecycle_state, probe, wait_for

    args = ("-p", f"bundle:={pnp_bundle}", "-p", "autostart:=true", "-p", f"gripper_in_trajectory:={in_trajectory}")
    with probe() as p, console_script("sim2real-policy-node", ros_args=args) as proc:
        arm = FakeArm(p)
        gripper = p.collect(Float64MultiArray, "gripper_controller/commands")
        _object_pose_timer(p)
        wait_for(lambda: lifecycle_state(p, "/policy_node") == "active", 60, "activation")
        arm.send_goal(GOAL_BASE)
        wait_for(lambda: len(arm.commands) >= 3, 15, "policy commands")
        assert proc.poll() is None
        traj = arm.commands[-1]
        if in_trajectory:
            assert list(traj.joint_names) == ARM + FINGERS and not gripper
            fingers = traj.points[0].positions[7:]
            assert fingers[0] == fingers[1] and 0.0 <= fingers[0] <= 0.04
        else:
            assert list(traj.joint_names) == ARM
            wait_for(lambda: len(gripper) >= 3, 10, "gripper commands")
            width = gripper[-1].data
            assert len(width) == 1 and 0.0 <= width[0] <= 0.08


@pytest.mark.ros
def test_the_sim_arm_takes_gripper_commands_over_dds() -> None:
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray

    from tests.ros.harness import console_script, probe, wait_for

    args = ("-r", "__ns:=/g1", "-p", "task:=pick_and_place", "-p", "backend:=pybullet")
    with probe() as p, console_script("sim2real-sim-arm", ros_args=args) as proc:
        js = p.collect(JointState, "/g1/joint_states")
        pub = p.node.create_publisher(Float64MultiArray, "/g1/gripper_controller/commands", 10)
        wait_for(lambda: pub.get_subscription_count() > 0 and js, 60, "the sim arm")
        pub.publish(Float64MultiArray(data=[0.07]))
        time.sleep(1.0)
        assert proc.poll() is None
        fingers = np.asarray(js[-1].position[7:9])
        assert np.allclose(fingers, 0.035, atol=0.004), fingers
