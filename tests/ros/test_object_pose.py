"""The node's object_pose input (object tasks, ROS.md fault plan B.1 applied to the new topic) on a PolicyCore:
the golden sim-vs-node observation for the same motion, and every bad pose refused with its reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from policies.bundle import load_bundle
from sim.observation import field_slices
from sim.scene import NEUTRAL_ARM_Q_RAD
from sim2real_ros.policy_core import CoreSettings, PolicyCore

ARM = [f"panda_joint{i}" for i in range(1, 8)]
FINGERS = ["panda_finger_joint1", "panda_finger_joint2"]
BASE = np.array([-0.6, 0.0, 0.0])  # panda_link0 in the training world
GOAL_BASE = (0.6, 0.05, 0.02)
XYZW = (0.0, 0.0, 0.0, 1.0)
OBJ_BASE = (0.55, -0.05, 0.02)


def _core(bundle: Path, **settings: float) -> PolicyCore:
    return PolicyCore(load_bundle(bundle), CoreSettings(**settings))  # type: ignore[arg-type]


def _feed(core: PolicyCore, t: float, obj: tuple = OBJ_BASE, stamp: float | None = None, **kw: object) -> str | None:
    q = np.array(NEUTRAL_ARM_Q_RAD)
    assert core.on_joint_state(ARM + FINGERS, [*q, 0.0, 0.0], [0.0] * 9, t, t, t) is None
    frame = str(kw.get("frame", "panda_link0"))
    quat = kw.get("quat", XYZW)
    return core.on_object_pose(frame, obj, quat, t if stamp is None else stamp, t, t)  # type: ignore[arg-type]


def test_object_tasks_wait_for_object_pose_then_act(push_bundle: Path) -> None:
    core = _core(push_bundle)
    q = np.array(NEUTRAL_ARM_Q_RAD)
    assert core.on_joint_state(ARM + FINGERS, [*q, 0.0, 0.0], [0.0] * 9, 10.0, 10.0, 10.0) is None
    assert core.on_goal("panda_link0", GOAL_BASE, XYZW, 10.0) is None
    why = core.activate(10.0)
    assert why is not None and "no valid object_pose" in why
    assert _feed(core, 10.05) is None
    assert core.activate(10.05) is None
    assert core.tick(10.06).status == "act"
    obs = core.observation()
    np.testing.assert_allclose(obs["achieved_goal"], np.array(OBJ_BASE) + BASE, atol=1e-6)
    np.testing.assert_allclose(obs["observation"][field_slices(True)["object_pos_m"]], np.array(OBJ_BASE) + BASE,
                               atol=1e-6)  # fmt: skip


def test_a_lost_marker_holds_and_fresh_poses_resume(push_bundle: Path) -> None:
    core = _core(push_bundle, object_pose_timeout_s=0.3, fresh_inputs_to_resume=2)
    _feed(core, 10.0)
    core.on_goal("panda_link0", GOAL_BASE, XYZW, 10.0)
    assert core.activate(10.0) is None
    assert core.tick(10.1).status == "act"
    q = np.array(NEUTRAL_ARM_Q_RAD)  # joints keep coming, the marker is hidden
    core.on_joint_state(ARM + FINGERS, [*q, 0.0, 0.0], [0.0] * 9, 10.5, 10.5, 10.5)
    tick = core.tick(10.5)
    assert tick.status == "hold" and "object_pose stale" in tick.reasons[0] and tick.command_rad is not None
    assert core.tick(10.55).status == "held"
    _feed(core, 10.6)
    assert core.tick(10.61).status == "held"  # one fresh pose is not enough
    _feed(core, 10.64, obj=(0.551, -0.05, 0.02))
    assert core.tick(10.65).status == "act"


@pytest.mark.parametrize(
    ("kw", "why"),
    [
        ({"frame": "camera_optical_frame"}, "object poses must be in 'panda_link0'"),
        ({"obj": (float("nan"), 0.0, 0.02)}, "non-finite"),
        ({"quat": (0.0, 0.0, 0.0, 2.0)}, "not a unit quaternion"),
        ({"obj": (0.55, -0.05, -0.2)}, "off the table"),
        ({"obj": (1.2, 0.0, 0.02)}, "off the table"),
        ({"stamp": 0.0}, "stamp"),
    ],
)
def test_bad_object_poses_are_refused(push_bundle: Path, kw: dict, why: str) -> None:  # B.1 #3 #12 for object_pose
    core = _core(push_bundle)
    got = _feed(core, 10.0, **kw)
    assert got is not None and why in got
    assert "object_pose" in core.input_errors
    assert core.activate(10.0) is not None


def test_jumps_and_out_of_order_poses_are_refused(push_bundle: Path) -> None:
    core = _core(push_bundle, max_object_speed_m_s=1.0)
    assert _feed(core, 10.0) is None
    got = _feed(core, 10.1, obj=(0.55, 0.15, 0.02))  # 20 cm in 0.1 s
    assert got is not None and "jumped 20.0 cm" in got
    assert core.object_world is None  # neither pose is trusted now
    assert _feed(core, 10.2, obj=(0.55, 0.15, 0.02)) is None
    got = _feed(core, 10.3, stamp=10.1)
    assert got is not None and "not newer" in got


def test_reach_and_pick_and_place_bundles(reach_bundle: Path, push_bundle: Path, tmp_path: Path) -> None:
    """Reach ignores object_pose; a pick_and_place manifest without robot.gripper (how to move the fingers) is
    refused."""
    import json
    import shutil

    core = _core(reach_bundle)
    assert core.on_object_pose("nowhere", (9.0, 9.0, 9.0), XYZW, 0.0, 1.0, 1.0) is None
    pixels = tmp_path / "pixels"  # a pixel Push policy observes proprioception only, and still needs object_pose
    shutil.copytree(push_bundle, pixels)
    m = json.loads((pixels / "manifest.json").read_text())
    next(i for i in m["observation"]["inputs"] if i["name"] == "observation").update(shape=[21], normalization=None)
    (pixels / "manifest.json").write_text(json.dumps(m))
    assert _core(pixels).has_object and not _core(pixels).observes_object_state
    pnp = tmp_path / "pnp"
    shutil.copytree(push_bundle, pnp)
    m = json.loads((pnp / "manifest.json").read_text())
    m["env"]["task"] = "pick_and_place"
    (pnp / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ValueError, match="commands its gripper but the manifest has no robot.gripper"):
        _core(pnp)


@pytest.mark.parametrize(("backend", "layout"), [("mujoco", 1), ("pybullet", 1), ("mujoco", 2), ("pybullet", 2)])
def test_sim_and_node_observe_the_same_push(
    push_bundle: Path, push_bundle_layout2: Path, backend: str, layout: int
) -> None:
    """Golden test: a Push episode on the engine, its joint states and object poses fed to the node as messages
    stamped with the simulated time; the node's observation (forward kinematics, object velocities from pose
    differences, layout 2's relative features) equals the env's at every step."""
    import gymnasium as gym

    import sim  # noqa: F401
    from sim.transforms import wxyz_to_xyzw

    env = gym.make("Sim2Real/Push-v0", backend=backend, control="ee", obs_layout=layout)
    core = _core(push_bundle if layout == 1 else push_bundle_layout2, max_stamp_age_s=1e6)
    assert core.obs_layout == layout
    u = env.unwrapped
    obs, _ = env.reset(seed=3)
    rng = np.random.default_rng(0)
    goal_base = obs["desired_goal"] - BASE
    t0, fastest = 100.0, 0.0
    for k in range(25):
        t = t0 + k * u.sim.scene.control_dt_s
        q, qd = u.sim.joint_state()
        pos, quat = u.sim.object_pose("object")
        assert core.on_joint_state(ARM + FINGERS, q, qd, t, t, t) is None
        assert core.on_object_pose("panda_link0", pos - BASE, wxyz_to_xyzw(quat), t, t, t) is None
        if k == 0:
            assert core.on_goal("panda_link0", goal_base, XYZW, t) is None
        node = core.observation()
        np.testing.assert_allclose(node["observation"], obs["observation"], atol=2e-4, err_msg=f"step {k}")
        np.testing.assert_allclose(node["achieved_goal"], obs["achieved_goal"], atol=1e-6)
        np.testing.assert_allclose(node["desired_goal"], obs["desired_goal"], atol=1e-6)
        fastest = max(fastest, float(np.linalg.norm(node["observation"][field_slices(True)["object_linvel_m_s"]])))
        # push the object about: toward it, then through it
        ee = obs["observation"][field_slices(True)["ee_pos_m"]]
        obs, *_ = env.step(np.clip((obs["achieved_goal"] - ee) / 0.05 + rng.normal(0, 0.1, 3), -1, 1))
    env.close()
    assert fastest > 0.02  # the object was pushed: the velocities compared were not all zero


@pytest.mark.ros
def test_the_policy_node_activates_on_object_pose_and_acts(push_bundle: Path) -> None:
    """Over DDS: a push bundle with autostart stays inactive until object_pose arrives, then acts; a marker lost
    while acting holds the arm."""
    from geometry_msgs.msg import PoseStamped

    from tests.ros.harness import FakeArm, console_script, lifecycle_state, probe, wait_for

    args = ("-p", f"bundle:={push_bundle}", "-p", "autostart:=true")
    with probe() as p, console_script("sim2real-policy-node", ros_args=args) as proc:
        arm = FakeArm(p)
        pub = p.publisher(PoseStamped, "object_pose", "reliable")
        sending = {"on": False}

        def send() -> None:
            if sending["on"]:
                msg = PoseStamped()
                msg.header.frame_id, msg.header.stamp = "panda_link0", p.node.get_clock().now().to_msg()
                msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = OBJ_BASE
                msg.pose.orientation.w = 1.0
                pub.publish(msg)

        p.node.create_timer(1 / 30, send)
        import time

        time.sleep(3.0)
        assert lifecycle_state(p, "/policy_node") != "active"  # joint_states alone: refused, waiting
        sending["on"] = True
        wait_for(lambda: lifecycle_state(p, "/policy_node") == "active", 60, "activation once object_pose flows")
        arm.send_goal(GOAL_BASE)
        wait_for(lambda: len(arm.commands) >= 3, 15, "policy commands")
        sending["on"] = False
        n = len(arm.commands)
        time.sleep(1.0)
        assert len(arm.commands) <= n + 12  # at most the ticks of the timeout and one hold, then nothing
        hold = arm.commands[-1].points[0].positions
        np.testing.assert_allclose(hold, NEUTRAL_ARM_Q_RAD, atol=1e-9)  # the last command: the measured joints
        assert proc.poll() is None


def test_layouts_the_node_does_not_build_are_refused(push_bundle_layout2: Path, tmp_path: Path) -> None:
    import json

    core = _core(push_bundle_layout2)
    assert core.obs_layout == 2 and core.observes_object_state
    edited = tmp_path / "b"
    import shutil

    shutil.copytree(push_bundle_layout2, edited)
    manifest = json.loads((edited / "manifest.json").read_text())
    manifest["env"]["obs_layout"] = 3
    (edited / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="env.obs_layout 3 is not one this node builds"):
        _core(edited)
    manifest["env"].pop("obs_layout")  # a layout-2 graph read as layout 1: the sizes disagree
    (edited / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="the observation has 40 values; a push policy's has 21 or 34"):
        _core(edited)
