"""The policy node's decisions (ROS.md fault plan B.1-B.3, the (U) cases) on a PolicyCore, without ROS: every
case feeds messages' values with explicit clock readings and asserts what the node would publish."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from policies.bundle import load_bundle
from sim.scene import NEUTRAL_ARM_Q_RAD
from sim2real_ros.policy_core import ERROR, OK, WARN, CoreSettings, PolicyCore
from tests.bundle_edits import without_fields
from tests.ros.bundles import scripted_bundle

ARM = [f"panda_joint{i}" for i in range(1, 8)]
FINGERS = ["panda_finger_joint1", "panda_finger_joint2"]
Q0 = np.array(NEUTRAL_ARM_Q_RAD)
GOAL_BASE = (0.6, 0.05, 0.15)  # base frame (panda_link0 sits at x=-0.6 in the training world)
UNIT = (0.0, 0.0, 0.0, 1.0)


def _core(bundle: Path, **settings: float) -> PolicyCore:
    return PolicyCore(load_bundle(bundle), CoreSettings(**settings))  # type: ignore[arg-type]


def _joints(core: PolicyCore, t: float, q: np.ndarray = Q0, **kw: object) -> str | None:
    names = kw.pop("names", ARM + FINGERS)
    pos = kw.pop("position", [*q, 0.0, 0.0])
    vel = kw.pop("velocity", [0.0] * len(pos))  # type: ignore[arg-type]
    stamp = kw.pop("stamp", t)
    return core.on_joint_state(names, pos, vel, stamp, t, t)  # type: ignore[arg-type]


def _ready(core: PolicyCore, t: float = 10.0) -> float:
    """Joints, a goal and activation at time t; returns t."""
    assert _joints(core, t) is None
    assert core.on_goal("panda_link0", GOAL_BASE, UNIT, t) is None
    assert core.activate(t) is None
    return t


@pytest.fixture
def scripted(reach_bundle: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    """scripted(**kw) -> a bundle whose targets are measured joints + offset (see tests/ros/bundles.py)."""
    return lambda **kw: scripted_bundle(reach_bundle, tmp_path / "scripted", **kw)


# -- B.1 inputs ------------------------------------------------------------------------------------
def test_activation_refused_without_joint_states(reach_bundle: Path) -> None:  # B.1 #1 (joint input)
    core = _core(reach_bundle)
    assert "no valid joint_states" in (core.activate(1.0) or "")
    assert not core.active and core.tick(1.0).command_rad is None
    assert core.diagnostics(1.0)[0][1] == ERROR


def test_joint_states_stop_holds_once_then_latches(reach_bundle: Path) -> None:  # B.1 #8
    core = _core(reach_bundle, joint_state_timeout_s=0.1, halt_after_stale_s=0.5)
    t = _ready(core)
    assert core.tick(t + 0.04).status == "act"
    hold = core.tick(t + 0.15)  # the first tick after the timeout
    assert hold.status == "hold" and np.allclose(hold.command_rad, Q0) and "stale" in hold.reasons[0]
    assert core.tick(t + 0.2).status == "held" and core.tick(t + 0.2).command_rad is None
    assert core.diagnostics(t + 0.2)[1][1] == WARN
    core.tick(t + 0.7)
    assert core.halted and "stale" in core.halt_reason and core.diagnostics(t + 0.7)[1][1] == ERROR
    for k in range(5):  # fresh data alone does not clear a latched halt
        _joints(core, t + 0.8 + 0.01 * k)
        assert core.tick(t + 0.8 + 0.01 * k).status == "held"
    assert core.resume(t + 0.85) is None and core.tick(t + 0.86).status == "act"


def test_stale_hold_recovers_after_n_fresh_messages(reach_bundle: Path) -> None:  # B.1 #2 (joint stream)
    core = _core(reach_bundle, joint_state_timeout_s=0.1, fresh_inputs_to_resume=3)
    t = _ready(core)
    assert core.tick(t + 0.2).status == "hold"
    for k in range(3):
        _joints(core, t + 0.3 + 0.01 * k)
        status = core.tick(t + 0.3 + 0.01 * k).status
        assert status == ("act" if k == 2 else "held")


@pytest.mark.parametrize(
    ("stamp", "why"), [(0.0, "zero"), (9.0, "old"), (10.5, "future")], ids=["zero", "old", "future"]
)
def test_bad_stamps_are_refused(reach_bundle: Path, stamp: float, why: str) -> None:  # B.1 #3
    core = _core(reach_bundle)
    assert why in (_joints(core, 10.0, stamp=stamp) or "")
    assert core.q is None


@pytest.mark.parametrize(
    ("kw", "why"),
    [
        ({"names": ARM + ARM[:1] + FINGERS[:1], "position": [0.0] * 9}, "twice"),
        ({"position": [0.0] * 8}, "9 names but 8 positions"),
        ({"velocity": []}, "no velocities"),
        ({"position": [math.nan] + [0.0] * 8}, "non-finite"),
        ({"position": [*Q0[:3], -3.5, *Q0[4:], 0.0, 0.0]}, "outside the joint limits"),
    ],
    ids=["duplicate", "lengths", "no-velocity", "nan", "outside-limits"],
)
def test_bad_joint_states_are_refused(reach_bundle: Path, kw: dict, why: str) -> None:  # B.1 #9 #10 #11
    core = _core(reach_bundle)
    assert why in (_joints(core, 1.0, **kw) or "")
    assert core.q is None and "no valid joint_states" in (core.activate(1.0) or "")
    assert core.diagnostics(1.0)[0][1] == ERROR


def _old_bundle(bundle: Path, tmp_path: Path) -> Path:
    """A copy of `bundle` whose manifest lacks robot.blocked_finger_width_m (exported before the field)."""
    return without_fields(bundle, tmp_path / "old_bundle", "robot.blocked_finger_width_m")


def test_partial_messages_merge_by_name_and_a_missing_arm_joint_refuses_activation(reach_bundle: Path) -> None:
    core = _core(reach_bundle)  # B.1 #9: several broadcasters, each with some joints
    assert _joints(core, 1.0, names=ARM[:6] + FINGERS, position=[*Q0[:6], 0.01, 0.01]) is None
    assert core.q is None and "lacks arm joints ['panda_joint7']" in (core.activate(1.0) or "")
    assert _joints(core, 1.001, names=ARM[6:], position=[Q0[6]]) is None
    assert np.allclose(core.q, Q0)
    assert core.on_goal("panda_link0", GOAL_BASE, UNIT, 1.001) is None
    assert core.activate(1.002) is None and core.finger_width_m == pytest.approx(0.02)
    assert core.notices == []


def test_arm_only_joint_states_use_the_blocked_grippers_width_and_say_so_once(reach_bundle: Path) -> None:
    core = _core(reach_bundle)  # franka_ros2: the seven arm joints only
    assert core.blocked_finger_width_m == 0.0  # Reach trains with the fingers closed
    assert _joints(core, 10.0, names=ARM, position=list(Q0)) is None
    assert core.on_goal("panda_link0", GOAL_BASE, UNIT, 10.0) is None
    assert core.activate(10.0) is None and core.finger_width_m == 0.0
    assert len(core.notices) == 1 and "blocked" in core.notices[0]
    assert core.tick(10.04).status == "act"
    core.deactivate()
    assert core.activate(10.05) is None and len(core.notices) == 1


def test_fingers_on_their_own_topic_are_merged(reach_bundle: Path) -> None:
    core = _core(reach_bundle)
    assert _joints(core, 1.0, names=ARM, position=list(Q0)) is None
    assert core.on_joint_state(FINGERS, [0.015, 0.015], [0.0, 0.0], 1.0, 1.0, 1.0, "gripper/joint_states") is None
    assert core.on_goal("panda_link0", GOAL_BASE, UNIT, 1.0) is None
    assert core.activate(1.0) is None and core.finger_width_m == pytest.approx(0.03) and core.notices == []
    nan = core.on_joint_state(FINGERS, [math.nan, 0.0], [0.0, 0.0], 1.01, 1.01, 1.01, "gripper/joint_states")
    assert "gripper/joint_states holds non-finite values for ['panda_finger_joint1']" in (nan or "")
    assert "carries none" in (_joints(core, 1.02, names=["other"], position=[0.0]) or "")


def test_a_silent_broadcaster_makes_the_arm_stale(reach_bundle: Path) -> None:
    core = _core(reach_bundle, joint_state_timeout_s=0.1)
    assert _joints(core, 10.0, names=ARM, position=list(Q0)) is None
    assert core.on_goal("panda_link0", GOAL_BASE, UNIT, 10.0) is None
    assert core.activate(10.0) is None
    for k in range(1, 6):  # joints 1-4 keep coming, 5-7 stopped at t = 10
        t = 10.0 + 0.04 * k
        assert _joints(core, t, names=ARM[:4], position=list(Q0[:4])) is None
    hold = core.tick(10.2)
    assert hold.status == "hold" and "joint_states stale" in hold.reasons[0]


def test_a_policy_that_needs_its_fingers_refuses_without_them(reach_bundle: Path, tmp_path: Path) -> None:
    core = _core(_old_bundle(reach_bundle, tmp_path))
    assert core.blocked_finger_width_m is None
    assert _joints(core, 1.0, names=ARM, position=list(Q0)) is None
    assert core.on_goal("panda_link0", GOAL_BASE, UNIT, 1.0) is None
    why = core.activate(1.0) or ""
    assert "no finger joints ['panda_finger_joint1', 'panda_finger_joint2']" in why and "re-export" in why
    assert _joints(core, 1.01) is None and core.activate(1.01) is None  # with them it acts


def test_joints_outside_limits_while_active_halt_at_once(reach_bundle: Path) -> None:  # B.1 #11 (active)
    core = _core(reach_bundle)
    t = _ready(core)
    assert core.tick(t + 0.01).status == "act"
    bad = [*Q0[:3], -3.5, *Q0[4:], 0.0, 0.0]
    assert "outside the joint limits" in (_joints(core, t + 0.02, position=bad) or "")
    tick = core.tick(t + 0.03)  # the joints are still fresh: only the halt stops the policy
    assert core.halted and tick.status == "hold" and np.allclose(tick.command_rad, Q0)
    assert "outside the joint limits" in core.halt_reason


def test_joint_order_and_extra_joints_are_handled_by_name(reach_bundle: Path) -> None:  # B.1 #9
    core = _core(reach_bundle)
    names = ["gripper_extra", *FINGERS[::-1], *ARM[::-1]]
    pos = [9.0, 0.01, 0.02, *Q0[::-1]]
    assert _joints(core, 1.0, names=names, position=pos) is None
    assert np.allclose(core.q, Q0) and core.finger_width_m == pytest.approx(0.03)


@pytest.mark.parametrize(
    ("frame", "pos", "quat", "why"),
    [
        ("world", GOAL_BASE, UNIT, "frame_id 'world'"),
        ("", GOAL_BASE, UNIT, "frame_id ''"),
        ("panda_link0", (math.nan, 0.0, 0.1), UNIT, "non-finite"),
        ("panda_link0", GOAL_BASE, (0.0, 0.0, 0.0, 2.0), "unit quaternion"),
        ("panda_link0", (0.6, 0.05, 1.5), UNIT, "outside the trained workspace"),
    ],
    ids=["frame", "empty-frame", "nan", "quaternion", "workspace"],
)
def test_bad_goals_keep_the_previous_one(reach_bundle: Path, frame: str, pos: tuple, quat: tuple, why: str) -> None:
    core = _core(reach_bundle)  # B.1 #12
    assert core.on_goal("panda_link0", GOAL_BASE, UNIT, 1.0) is None
    before = core.goal_world_m.copy()
    assert why in (core.on_goal(frame, pos, quat, 2.0) or "")
    assert np.allclose(core.goal_world_m, before) and np.allclose(before, [0.0, 0.05, 0.15])


def test_no_goal_means_idle_and_old_goals_hold(reach_bundle: Path) -> None:  # B.1 #13
    core = _core(reach_bundle, goal_timeout_s=1.0)
    _joints(core, 1.0)
    assert core.activate(1.0) is None
    tick = core.tick(1.01)
    assert tick.status == "idle" and tick.command_rad is None and "goal" in tick.reasons[0]
    core.on_goal("panda_link0", GOAL_BASE, UNIT, 1.0)
    _joints(core, 1.5)
    assert core.tick(1.5).status == "act"
    _joints(core, 2.1)
    tick = core.tick(2.1)
    assert tick.status == "hold" and "goal_timeout_s" in tick.reasons[0]


def test_only_the_latest_message_is_used(reach_bundle: Path) -> None:  # B.1 #16
    core = _core(reach_bundle)
    for k in range(200):  # a burst: nothing queues
        _joints(core, 1.0 + k * 1e-4, q=Q0 + k * 1e-4)
    assert np.allclose(core.q, Q0 + 199e-4)


def test_image_contract(reach_bundle: Path, scripted) -> None:  # type: ignore[no-untyped-def]  # B.1 #4 #6 #7
    core = _core(scripted(image_hw=(48, 64)))
    _joints(core, 1.0)
    core.on_goal("panda_link0", GOAL_BASE, UNIT, 1.0)
    assert "no valid image" in (core.activate(1.0) or "")
    rgb = bytes(64 * 48 * 3)
    for enc, size, why in [("yuyv", 64, "not supported"), ("bayer_rggb8", 64, "not supported"), ("rgb8", 32, "64x48")]:
        assert why in (core.on_image(48, size, enc, size * 3, rgb, "cam", 1.0, 1.0, 1.0) or "")
    assert core.on_image(48, 64, "rgb8", 64 * 3, rgb, "cam", 1.0, 1.0, 1.0) is None
    assert "camera_info" in (core.activate(1.0) or "")
    assert core.camera is not None
    k = np.asarray(core.camera.k, float)
    assert "intrinsics" in (core.on_camera_info(64, 48, (k * 1.1).ravel().tolist(), "cam") or "")
    assert "intrinsics" in (core.activate(1.0) or "")
    assert core.on_camera_info(64, 48, k.ravel().tolist(), "cam") is None
    assert core.activate(1.0) is None and core.tick(1.01).status == "act"
    core.on_camera_info(32, 24, k.ravel().tolist(), "cam")  # the camera changes while active: halt
    assert core.halted and core.tick(1.02).status == "hold"


def test_image_stream_stop_and_frame_mismatch(scripted) -> None:  # type: ignore[no-untyped-def]  # B.1 #2 #7
    core = _core(scripted(image_hw=(48, 64)), image_timeout_s=0.1, fresh_inputs_to_resume=2)
    rgb = bytes(64 * 48 * 3)
    assert core.camera is not None
    k = np.asarray(core.camera.k, float).ravel().tolist()
    assert core.on_camera_info(64, 48, k, "cam_optical_frame") is None
    image = lambda t, frame="cam_optical_frame": core.on_image(48, 64, "rgb8", 192, rgb, frame, t, t, t)  # noqa: E731
    assert "differs from camera_info" in (image(1.0, "other_frame") or "")
    assert image(1.0) is None
    _ready(core, 1.0)
    assert core.tick(1.04).status == "act"
    _joints(core, 1.2)  # joints keep coming, the camera stopped
    tick = core.tick(1.2)
    assert tick.status == "hold" and "camera/image_raw stale" in tick.reasons[0]
    assert all(not v.any() for v in core.state.values())
    for k_ in range(2):  # two fresh frames (and joints) before acting again
        _joints(core, 1.3 + 0.01 * k_)
        image(1.3 + 0.01 * k_)
    assert core.tick(1.32).status == "act"


def test_padded_bgr_frames_are_read_like_rgb(reach_bundle: Path, scripted) -> None:  # type: ignore[no-untyped-def]
    core = _core(scripted(image_hw=(2, 2)))  # B.1 #5 #6: channel order and row padding
    rgb = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    padded = np.zeros((2, 8), np.uint8)
    padded[:, :6] = rgb[..., ::-1].reshape(2, 6)  # bgr8 with 2 bytes of padding per row
    assert core.on_image(2, 2, "bgr8", 8, padded.tobytes(), "cam", 1.0, 1.0, 1.0) is None
    assert np.array_equal(core.image, rgb)


# -- B.2 model and outputs -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kw", "why"),
    [
        ({"offset_rad": math.nan}, "non-finite"),
        ({"offset_rad": math.inf}, "non-finite"),
        ({"n_targets": 6}, "shape"),
        ({"action_value": 5.0}, "outside the trained range"),
    ],
    ids=["nan", "inf", "shape", "range"],
)
def test_invalid_outputs_hold_then_latch(scripted, kw: dict, why: str) -> None:  # type: ignore[no-untyped-def]
    core = _core(scripted(**kw), max_consecutive_invalid=3)  # B.2 #19 #20 #21
    t = _ready(core)
    for k in range(3):
        tick = core.tick(t + 0.01 * (k + 1))
        assert tick.command_rad is not None and np.allclose(tick.command_rad, Q0), tick
        assert why in " ".join(tick.reasons)
        assert np.all(np.isfinite(tick.command_rad))
    assert core.halted and core.counts["rejected_outputs"] == 3 and core.counts["acted"] == 0
    assert core.tick(t + 0.05).status == "held"


def test_targets_are_clamped_and_rate_limited(scripted) -> None:  # type: ignore[no-untyped-def]  # B.2 #22 #23
    core = _core(scripted(offset_rad=10.0), max_joint_velocity_rad_s=1.0, velocity_scale=0.5)
    t = _ready(core)
    tick = core.tick(t + 0.01)
    step = 1.0 * 0.5 / 25.0
    assert tick.status == "act" and np.allclose(tick.command_rad - Q0, step)
    assert "rate-limited" in tick.reasons and core.diagnostics(t)[3][1] == WARN
    hi = core.limits_rad[:, 1] - core.settings.position_margin_rad
    for k in range(400):
        _joints(core, t + 0.02 * k, q=np.minimum(core.gate._last, core.limits_rad[:, 1]))
        cmd = core.tick(t + 0.02 * k).command_rad
    assert np.allclose(cmd, hi) and np.all(cmd <= hi)


def test_late_inference_is_not_applied(reach_bundle: Path) -> None:  # B.2 #24
    core = _core(reach_bundle, max_inference_s=1e-9)
    t = _ready(core)
    tick = core.tick(t + 0.01)
    assert tick.status == "held" and tick.command_rad is None and "inference took" in tick.reasons[0]
    assert core.counts["overruns"] == 1 and core.counts["acted"] == 0


def test_lstm_state_is_reset_on_hold_goal_and_resume(lstm_bundle: Path) -> None:  # B.2 #26
    core = _core(lstm_bundle, joint_state_timeout_s=0.1)
    zeros = core.bundle.initial_state()
    t = _ready(core)
    assert all(np.array_equal(core.state[k], zeros[k]) for k in zeros)
    assert core.tick(t + 0.01).status == "act"
    assert any(np.abs(v).sum() > 0 for v in core.state.values())  # the LSTM carried something forward
    assert core.tick(t + 0.2).status == "hold"  # stale joints
    assert all(not v.any() for v in core.state.values())
    _joints(core, t + 0.3)
    core.tick(t + 0.3)
    core.halt()
    assert all(not v.any() for v in core.state.values())
    for k in range(3):
        _joints(core, t + 0.4 + k * 0.01)
    assert core.resume(t + 0.43) is None and all(not v.any() for v in core.state.values())
    core.tick(t + 0.43)
    assert core.on_goal("panda_link0", (0.55, 0.0, 0.2), UNIT, t + 0.44) is None  # a new goal: a new episode
    assert all(not v.any() for v in core.state.values())


def test_halt_and_resume_with_stale_inputs(reach_bundle: Path) -> None:  # B.2 #30
    core = _core(reach_bundle, joint_state_timeout_s=0.1)
    t = _ready(core)
    core.tick(t + 0.01)
    hold = core.halt()
    assert hold is not None and np.allclose(hold, Q0)
    tick = core.tick(t + 0.02)
    assert tick.status == "held" and tick.command_rad is None  # the halt's own hold is not repeated
    assert "resume refused" in (core.resume(t + 1.0) or "")  # joint_states 1 s old
    _joints(core, t + 1.0)
    assert core.resume(t + 1.0) is None and core.tick(t + 1.01).status == "act"


def test_deactivate_returns_a_hold_and_stops_acting(reach_bundle: Path) -> None:  # B.3 #33
    core = _core(reach_bundle)
    t = _ready(core)
    core.tick(t + 0.01)
    assert np.allclose(core.deactivate(), Q0)
    assert core.tick(t + 0.02).status == "idle"
    assert core.activate(t + 0.02) is None  # fresh inputs: may activate again


def test_an_observation_of_the_wrong_size_is_refused(reach_bundle: Path, tmp_path: Path) -> None:  # B.2 #18
    import json
    import shutil

    bad = tmp_path / "obj"
    shutil.copytree(reach_bundle, bad)
    m = json.loads((bad / "manifest.json").read_text())
    spec = next(i for i in m["observation"]["inputs"] if i["name"] == "observation")
    spec.update(shape=[34], normalization=None)  # an object task's observation in a Reach bundle
    (bad / "manifest.json").write_text(json.dumps(m))
    bundle = load_bundle(bad)
    with pytest.raises(ValueError, match="the observation has 34 values; a reach policy's has 21"):
        PolicyCore(bundle)


def test_diagnostics_report_ok_when_acting(reach_bundle: Path) -> None:
    core = _core(reach_bundle)
    t = _ready(core)
    core.tick(t + 0.01)
    levels = {name: level for name, level, _, _ in core.diagnostics(t + 0.02)}
    assert levels["inputs"] == OK and levels["control"] == OK and levels["policy"] == OK


@pytest.mark.parametrize("backend", ["mujoco", "pybullet"])
def test_ee_control_targets_equal_the_envs(ee_bundle: Path, backend: str) -> None:
    """Golden test: for an end-effector policy the node's joint target (IK on forward kinematics of the joints) is
    the env's (IK on the engine's pose and Jacobian) for the same state and action."""
    import gymnasium as gym

    import sim  # noqa: F401
    from sim.tasks.base import MAX_EE_STEP_M

    env = gym.make("Sim2Real/Reach-v0", backend=backend, control="ee")
    core = _core(ee_bundle)
    rng = np.random.default_rng(2)
    env.reset(seed=5)
    for k in range(8):
        env.step(rng.uniform(-1, 1, 3))
        q, qd = env.unwrapped.sim.joint_state()
        assert core.on_joint_state(ARM + FINGERS, q, qd, 1.0 + k, 1.0 + k, 1.0 + k) is None
        action = rng.uniform(-1, 1, 3)
        want = np.clip(
            env.unwrapped._ee_step(q[:7], MAX_EE_STEP_M * action), core.limits_rad[:, 0], core.limits_rad[:, 1]
        )
        np.testing.assert_allclose(core._ee_target(action), want, atol=1e-4)
    env.close()
