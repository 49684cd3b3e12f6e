"""The policy node over real DDS (ROS.md fault plan, the (R) and (P) cases): the console script runs in its own
process; a probe node in this process plays the robot driver, the controller and the operator."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sim2real_ros.messages import validate_joint_trajectory
from tests.ros.harness import (
    ARM_JOINTS,
    NEUTRAL_Q,
    FakeArm,
    Probe,
    change_state,
    console_script,
    lifecycle_state,
    output_of,
    probe,
    wait_for,
)

pytestmark = pytest.mark.ros
NODE = "/policy_node"
GOAL = (0.6, 0.05, 0.15)


def _node(bundle: Path, *params: str, ns: str = "") -> object:
    args = ["-p", f"bundle:={bundle}", *[x for p in params for x in ("-p", p)]]
    if ns:
        args += ["-r", f"__ns:={ns}"]
    return console_script("sim2real-policy-node", ros_args=tuple(args))


def _wait_node(p: Probe, name: str = NODE) -> None:
    from lifecycle_msgs.srv import GetState

    client = p.node.create_client(GetState, f"{name}/get_state")
    wait_for(lambda: client.wait_for_service(timeout_sec=0.1), 30, f"{name} to start")


def _acting(p: Probe, **arm_kw: bool) -> FakeArm:
    """A fake arm, the autostarted node active, a goal sent and the first policy commands received."""
    arm = FakeArm(p, **arm_kw)
    _wait_node(p)
    wait_for(lambda: lifecycle_state(p, NODE) == "active", 15, "autostart to activate")
    arm.send_goal(GOAL)
    wait_for(lambda: len(arm.commands) >= 3, 10, "policy commands")
    return arm


def _diagnostics(p: Probe) -> list:
    from diagnostic_msgs.msg import DiagnosticArray

    return p.collect(DiagnosticArray, "/diagnostics")


def _status(diags: list, task: str) -> tuple[int, str]:
    for msg in reversed(diags):
        for s in msg.status:
            if s.name.endswith(f": {task}"):
                return s.level[0] if isinstance(s.level, bytes) else int(s.level), s.message
    raise AssertionError(f"no {task} status in {len(diags)} diagnostics messages")


def test_lifecycle_contracts_commands_halt_and_deactivate(reach_bundle: Path) -> None:
    """B.1 #1, B.2 #27 #28 #30, B.3 #33 #34 and the diagnostics, on one node."""
    from std_srvs.srv import Trigger

    with probe() as p, _node(reach_bundle) as proc:
        diags = _diagnostics(p)
        _wait_node(p)
        assert lifecycle_state(p, NODE) == "unconfigured"
        assert change_state(p, NODE, "configure")
        # no controller and no joint_states: activation refused, nothing ever published (#1, #28, #34)
        assert not change_state(p, NODE, "activate") and lifecycle_state(p, NODE) == "inactive"
        arm = FakeArm(p)
        wait_for(lambda: change_state(p, NODE, "activate"), 10, "activation with a controller and joint_states")
        assert arm.commands == []  # active, but no goal yet: idle
        reliabilities = p.publisher_reliabilities("/joint_trajectory_controller/joint_trajectory")
        assert reliabilities == ["reliable"]  # what JTC expects
        arm.send_goal(GOAL)
        wait_for(lambda: len(arm.commands) >= 10, 10, "10 commands")
        for msg in list(arm.commands):  # B.2 #27: JTC accepts every one
            point = msg.points[0]
            stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
            t = point.time_from_start.sec + point.time_from_start.nanosec * 1e-9
            assert (
                validate_joint_trajectory(msg.joint_names, [(point.positions, point.velocities, t)], ARM_JOINTS, stamp)
                == []
            )
            assert t == pytest.approx(0.04) and len(msg.points) == 1
        wait_for(lambda: len(diags) >= 1 and _status(diags, "control")[0] == 0, 5, "an OK control status")
        # halt: one hold at the measured joints, then nothing (#30)
        assert p.call(Trigger, f"{NODE}/halt").success
        time.sleep(0.3)
        n = len(arm.commands)
        assert np.allclose(arm.commands[-1].points[0].positions, NEUTRAL_Q)
        time.sleep(0.5)
        assert len(arm.commands) == n
        wait_for(lambda: _status(diags, "control")[0] == 2, 5, "an ERROR control status while halted")
        arm.publishing = False  # stale joints: resume refused
        time.sleep(0.4)
        resp = p.call(Trigger, f"{NODE}/resume")
        assert not resp.success and "stale" in resp.message
        arm.publishing = True
        wait_for(lambda: p.call(Trigger, f"{NODE}/resume").success, 5, "resume with fresh joint_states")
        wait_for(lambda: len(arm.commands) > n + 5, 5, "commands after resume")
        # deactivate: one hold, then silence (#33)
        assert change_state(p, NODE, "deactivate")
        time.sleep(0.3)
        n = len(arm.commands)
        assert np.allclose(arm.commands[-1].points[0].positions, NEUTRAL_Q)
        time.sleep(0.4)
        assert len(arm.commands) == n and lifecycle_state(p, NODE) == "inactive"
        assert change_state(p, NODE, "activate")  # fresh inputs: active again
    assert proc.returncode == 0


def test_corrupt_bundle_fails_configure(reach_bundle: Path, tmp_path: Path) -> None:  # B.2 #17
    bad = tmp_path / "bad"
    shutil.copytree(reach_bundle, bad)
    with open(bad / "policy.onnx", "ab") as f:
        f.write(b"\0")
    with probe() as p, _node(bad) as proc:
        _wait_node(p)
        assert not change_state(p, NODE, "configure")
        assert lifecycle_state(p, NODE) == "unconfigured"
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
    assert "SHA-256" in output_of(proc) and proc.returncode == 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_publishes_a_final_hold(reach_bundle: Path, sig: int) -> None:  # B.3 #31
    with probe() as p, _node(reach_bundle, "autostart:=true") as proc:
        arm = _acting(p)
        arm.q = [q + 0.01 for q in NEUTRAL_Q]  # the arm moved: the hold must be at the newest measurement
        time.sleep(0.2)
        sent = time.monotonic()
        proc.send_signal(sig)
        proc.wait(5)
        took = time.monotonic() - sent
        time.sleep(0.3)
        assert np.allclose(arm.commands[-1].points[0].positions, arm.q)
    assert proc.returncode == 0 and took < 5.0
    assert "final hold published" in output_of(proc)


def test_namespace_params_file_and_forward_controller(reach_bundle: Path, tmp_path: Path) -> None:  # B.3 #35
    from rcl_interfaces.srv import GetParameters

    params = tmp_path / "params.yaml"
    params.write_text(
        f"/**/policy_node:\n  ros__parameters:\n    bundle: {reach_bundle}\n    velocity_scale: 0.5\n"
        "    autostart: true\n    command_interface: forward_position\n"
    )
    args = ("--params-file", str(params), "-r", "__ns:=/arm1")
    with probe() as p, console_script("sim2real-policy-node", ros_args=args) as proc:
        arm = FakeArm(p, ns="/arm1", fcc=True)
        _wait_node(p, "/arm1/policy_node")
        wait_for(lambda: lifecycle_state(p, "/arm1/policy_node") == "active", 15, "activation under /arm1")
        got = p.call(GetParameters, "/arm1/policy_node/get_parameters", GetParameters.Request(names=["velocity_scale"]))
        assert got.values[0].double_value == 0.5
        arm.send_goal(GOAL, ns="/arm1")
        wait_for(lambda: len(arm.commands) >= 3, 10, "Float64MultiArray commands on /arm1")
        assert all(len(m.data) == 7 and np.all(np.isfinite(m.data)) for m in arm.commands)
    assert proc.returncode == 0


def test_parameters_are_validated(reach_bundle: Path) -> None:  # B.2 #29
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    def set_param(name: str, value: object) -> tuple[bool, str]:
        v = ParameterValue()
        if isinstance(value, str):
            v.type, v.string_value = ParameterType.PARAMETER_STRING, value
        else:
            v.type, v.double_value = ParameterType.PARAMETER_DOUBLE, float(value)  # type: ignore[arg-type]
        req = SetParameters.Request(parameters=[Parameter(name=name, value=v)])
        r = p.call(SetParameters, f"{NODE}/set_parameters", req).results[0]
        return bool(r.successful), str(r.reason)

    with probe() as p, _node(reach_bundle, "velocity_scale:=0.5", "autostart:=true") as proc:
        FakeArm(p)
        _wait_node(p)
        wait_for(lambda: lifecycle_state(p, NODE) == "active", 15, "activation")
        ok, why = set_param("velocity_scale", 2.0)
        assert not ok and "range" in why.lower()
        ok, why = set_param("velocity_scale", 0.8)  # faster while active
        assert not ok and "only decrease" in why
        assert set_param("velocity_scale", 0.25)[0]
        ok, why = set_param("bundle", "/elsewhere")
        assert not ok and "read-only" in why
        ok, why = set_param("position_margin_rad", 0.0)
        assert not ok and "read-only" in why
    assert proc.returncode == 0


def test_control_rate_mismatch_refuses_activation(reach_bundle: Path) -> None:  # B.2 #18 (rate)
    with probe() as p, _node(reach_bundle, "control_rate_hz:=30.0") as proc:
        FakeArm(p)
        _wait_node(p)
        assert change_state(p, NODE, "configure")
        time.sleep(0.5)
        assert not change_state(p, NODE, "activate") and lifecycle_state(p, NODE) == "inactive"
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
    assert "control_rate_hz 30 differs from the bundle's 25 Hz" in output_of(proc)


def test_sim_time_without_clock_refuses_activation(reach_bundle: Path) -> None:  # B.1 #15
    with probe() as p, _node(reach_bundle, "use_sim_time:=true") as proc:
        FakeArm(p)
        _wait_node(p)
        assert change_state(p, NODE, "configure")
        time.sleep(0.5)
        assert not change_state(p, NODE, "activate")
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
    assert "clock reads zero" in output_of(proc)


def test_sim_clock_jumping_back_holds(reach_bundle: Path) -> None:  # B.1 #15 (backward jump)
    from builtin_interfaces.msg import Time
    from rosgraph_msgs.msg import Clock

    sim = {"offset_s": 100.0, "t0": time.monotonic()}

    def sim_time() -> Time:
        t = sim["offset_s"] + time.monotonic() - sim["t0"]
        return Time(sec=int(t), nanosec=int((t % 1.0) * 1e9))

    with probe() as p, _node(reach_bundle, "use_sim_time:=true", "autostart:=true") as proc:
        clock_pub = p.node.create_publisher(Clock, "/clock", 10)
        p.node.create_timer(0.01, lambda: clock_pub.publish(Clock(clock=sim_time())))
        arm = FakeArm(p, stamp=sim_time)
        _wait_node(p)
        wait_for(lambda: lifecycle_state(p, NODE) == "active", 15, "activation on sim time")
        arm.send_goal(GOAL)
        wait_for(lambda: len(arm.commands) >= 5, 10, "commands on sim time")
        sim["offset_s"] -= 10.0  # a bag replay restarting, a simulator reset
        time.sleep(1.0)
        n = len(arm.commands)
        wait_for(lambda: len(arm.commands) > n + 5, 10, "commands again once the inputs are fresh on the new time")
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
    out = output_of(proc)
    assert "ROS time jumped back" in out and "hold: joint_states stale" in out


def test_best_effort_joint_states_are_received(reach_bundle: Path) -> None:  # B.1 #14
    with probe() as p, _node(reach_bundle, "autostart:=true") as proc:
        _acting(p, best_effort=True)  # fails unless the node acts on the best-effort joint_states
        assert p.publisher_reliabilities("/joint_states") == ["best_effort"]  # the driver really was best-effort
    assert proc.returncode == 0


def test_missing_ros_extra_is_one_clear_line() -> None:  # B.3 #36
    code = "import sys; sys.modules['rclpy'] = None; from sim2real_ros.policy_node import main; sys.exit(main([]))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert r.returncode == 2 and "pip install 'sim2real[ros]'" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "sim2real.cli", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0  # the rest of the tool does not need ROS


def test_recommended_controller_config_has_a_command_timeout() -> None:  # B.3 #32
    """SIGKILL cannot publish a hold: the controller's cmd_timeout is the safety net. The shipped controller
    config must enable it, longer than goal_time (or JTC disables it)."""
    import yaml

    from sim2real_ros.controller_config import check_controller_config

    path = Path(__file__).parents[2] / "ros_ws/src/sim2real_ros/config/controllers.yaml"
    assert check_controller_config(yaml.safe_load(path.read_text()), control_rate_hz=25.0) == []
    bad = {"joint_trajectory_controller": {"ros__parameters": {"cmd_timeout": 0.0}}}
    assert any("cmd_timeout" in p for p in check_controller_config(bad, control_rate_hz=25.0))
    bad = {"joint_trajectory_controller": {"ros__parameters": {"cmd_timeout": 0.1, "constraints": {"goal_time": 0.2}}}}
    assert any("goal_time" in p for p in check_controller_config(bad, control_rate_hz=25.0))


def test_killed_node_leaves_the_controller_to_time_out(reach_bundle: Path) -> None:  # B.3 #32 (process side)
    with probe() as p, _node(reach_bundle, "autostart:=true") as proc:
        arm = _acting(p)
        proc.kill()
        proc.wait(5)
        n = len(arm.commands)
        time.sleep(0.3)
        assert len(arm.commands) == n  # nothing more arrives: only the controller's cmd_timeout can stop the arm
    assert proc.returncode == -signal.SIGKILL


def test_image_trigger_acts_per_frame_and_holds_when_frames_stop(reach_bundle: Path, tmp_path: Path) -> None:
    """trigger=image: one command per camera frame (no faster than the control rate); when frames stop, the
    steady-clock watchdog still holds on time."""
    from sensor_msgs.msg import CameraInfo, Image

    from tests.ros.bundles import scripted_bundle

    bundle = scripted_bundle(reach_bundle, tmp_path / "pixels", image_hw=(48, 64))
    k = json.loads((bundle / "manifest.json").read_text())["camera"]["k"]
    with probe() as p, _node(bundle, "autostart:=true", "trigger:=image", "image_timeout_s:=0.2") as proc:
        arm = FakeArm(p)
        diags = _diagnostics(p)
        image_pub = p.node.create_publisher(Image, "/camera/image_raw", 5)
        info_pub = p.node.create_publisher(CameraInfo, "/camera/camera_info", 5)
        frames = {"on": True, "sent": 0}

        def camera() -> None:
            if not frames["on"]:
                return
            stamp = p.node.get_clock().now().to_msg()
            img = Image(height=48, width=64, encoding="rgb8", step=192, data=bytes(48 * 64 * 3))
            info = CameraInfo(height=48, width=64, k=[float(v) for row in k for v in row])
            img.header.stamp = info.header.stamp = stamp
            img.header.frame_id = info.header.frame_id = "scene_optical_frame"
            info_pub.publish(info)
            image_pub.publish(img)
            frames["sent"] += 1

        p.node.create_timer(0.1, camera)  # 10 Hz: slower than the bundle's 25 Hz, so every frame triggers a tick
        _wait_node(p)
        wait_for(lambda: lifecycle_state(p, NODE) == "active", 15, "activation with camera inputs")
        arm.send_goal(GOAL)
        wait_for(lambda: len(arm.commands) >= 5, 10, "commands")
        n0, f0 = len(arm.commands), frames["sent"]
        time.sleep(1.0)
        per_frame = (len(arm.commands) - n0) / max(1, frames["sent"] - f0)
        assert 0.7 <= per_frame <= 1.3, per_frame  # one action per frame (the watchdog adds none)
        frames["on"] = False
        wait_for(lambda: "camera/image_raw stale" in _status(diags, "control")[1], 3, "a hold on the stale camera")
        assert np.allclose(arm.commands[-1].points[0].positions, NEUTRAL_Q)  # the hold: the measured joints
        n = len(arm.commands)
        time.sleep(0.3)
        assert len(arm.commands) == n  # held: nothing more
    assert proc.returncode == 0
