"""The user's cell (issue 16.2): a goal workspace in the robot base frame, the table height under the base and the
start pose reach the envs on both engines; impossible settings are refused naming the bound; default settings make
exactly the envs they always did."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import sim  # noqa: F401
from sim.cell import NAMED_POSES, Cell, CellError, parse_box, parse_start_joints
from sim.engines import BACKENDS
from sim.env_spec import EnvSpec, EnvSpecError, make_env
from sim.robot import panda
from sim.scene import SceneSpec

BASE = np.array(SceneSpec().robot_base_pos_m)
#: A cell closer to the base and higher than the default Reach box (base frame x 0.45..0.75, z 0..0.3).
BOX = (0.3, -0.25, 0.25, 0.5, 0.25, 0.5)


@pytest.mark.parametrize(
    ("cell", "why"),
    [
        (Cell((0.3, 0.0, 0.1, 0.2, 0.1, 0.3)), "XLO 0.3 must be below XHI 0.2"),
        (Cell((0.3, -0.1, -0.05, 0.5, 0.1, 0.3)), "ZLO -0.05 m lies under the table top"),
        (Cell((0.3, -0.1, -0.25, 0.5, 0.1, 0.3), table_height_m=-0.2), "ZLO -0.25 m lies under the table top"),
        (Cell((0.5, -0.1, 0.0, 0.9, 0.1, 0.3)), "from the shoulder; the arm reaches 0.855 m"),
        (Cell((-0.1, -0.1, 0.2, 0.1, 0.1, 0.4)), "of the base's axis"),
        (Cell(table_height_m=0.1), "table_height_m 0.1 must lie in [-1, 0]"),
    ],
    ids=["inverted", "under-table", "under-lowered-table", "out-of-reach", "base-column", "table-above-base"],
)
def test_impossible_cells_are_refused_naming_the_bound(cell: Cell, why: str) -> None:
    with pytest.raises(CellError, match=why.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        cell.check()


def test_the_default_boxes_and_a_user_box_pass() -> None:
    Cell((0.45, -0.15, 0.0, 0.75, 0.15, 0.3)).check()  # Reach's own box in the base frame
    Cell(BOX, table_height_m=-0.1).check()


def test_parsing_names_the_field() -> None:
    assert parse_box("0.3,-0.25,0.25,0.5,0.25,0.5") == BOX
    with pytest.raises(CellError, match="takes 6 numbers"):
        parse_box("0.3,0.2")
    with pytest.raises(CellError, match="XLO,YLO,ZLO,XHI,YHI,ZHI"):
        parse_box("a,b,c,d,e,f")
    limits = panda().arm_limits_rad
    assert parse_start_joints("", limits) is None
    assert parse_start_joints("ready", limits) == NAMED_POSES["ready"]
    assert parse_start_joints("0,0.4,0,-1.9,0,2.3,0.8", limits) == (0.0, 0.4, 0.0, -1.9, 0.0, 2.3, 0.8)
    with pytest.raises(CellError, match="panda_joint4 = 0.5 rad is outside its limits"):
        parse_start_joints("0,0.4,0,0.5,0,2.3,0.8", limits)
    with pytest.raises(CellError, match="pose name"):
        parse_start_joints("home", limits)
    with pytest.raises(EnvSpecError, match="ZLO -0.1 m lies under the table top"):
        EnvSpec(goal_workspace_base_m=(0.3, -0.1, -0.1, 0.5, 0.1, 0.3)).check()


@pytest.mark.parametrize("backend", BACKENDS)
def test_reach_draws_goals_in_the_workspace_and_its_ee_targets_cover_it(backend: str) -> None:
    env = make_env(EnvSpec(backend=backend, goal_workspace_base_m=BOX, start_joints="ready"))
    u = env.unwrapped
    lo, hi = np.array(BOX[:3]) + BASE, np.array(BOX[3:]) + BASE
    np.testing.assert_allclose([u.goal_low_m, u.goal_high_m], [lo, hi])
    goals = np.array([env.reset(seed=s)[0]["desired_goal"] for s in range(50)])
    assert np.all(goals >= lo - 1e-6) and np.all(goals <= hi + 1e-6)
    assert np.ptp(goals, axis=0).min() > 0.1  # spread over the box
    assert np.all(u._ee_bounds_m[0] <= lo) and np.all(u._ee_bounds_m[1] >= hi)
    np.testing.assert_allclose(u.sim.joint_state()[0][:7], NAMED_POSES["ready"], atol=1e-6)  # the start pose
    with pytest.raises(ValueError, match="outside the workspace"):
        env.reset(options={"goal": (0.0, 0.0, 0.1)})  # the default box's centre, not in this cell's
    env.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_lowered_table_carries_push_its_object_goals_and_start_pose(backend: str) -> None:
    h = -0.15
    env = make_env(EnvSpec(task="push", backend=backend, table_height_m=h))
    u = env.unwrapped
    obs, _ = env.reset(seed=0)
    for _ in range(10):  # the object rests on the lowered table, it does not fall or sink
        obs, *_ = env.step(np.zeros(env.action_space.shape, np.float32))
    half = u.sim.object_half_height_m("object")
    assert obs["achieved_goal"][2] == pytest.approx(h + half, abs=2e-3)
    assert obs["desired_goal"][2] == pytest.approx(h + half, abs=1e-6)
    assert u.start_ee_pos_m[2] == pytest.approx(h + 0.04, abs=2e-3)  # the gripper starts 4 cm over the new table
    assert u.goal_low_m[2] == pytest.approx(h) and u.goal_high_m[2] == pytest.approx(h + 0.1)
    env.close()


def test_object_tasks_keep_objects_and_goals_on_the_table_inside_the_workspace() -> None:
    box = (0.45, 0.0, 0.0, 0.7, 0.34, 0.3)  # the table spans base-frame y -0.35..0.35, 5 cm margin: y 0..0.3
    env = make_env(EnvSpec(task="push", goal_workspace_base_m=box))
    u = env.unwrapped
    for s in range(20):
        obs, _ = env.reset(seed=s)
        obj, goal = u.sim.object_pose("object")[0] - BASE, obs["desired_goal"] - BASE
        for p in (obj, goal):
            assert 0.45 <= p[0] <= 0.7 and 0.0 <= p[1] <= 0.3 + 1e-9  # the table edge's margin, not 0.34
    env.close()
    with pytest.raises(CellError, match="holds no part of the table top"):
        make_env(EnvSpec(task="push", goal_workspace_base_m=(0.3, 0.4, 0.0, 0.5, 0.6, 0.3)))
    with pytest.raises(CellError, match="lies above the table top"):
        make_env(EnvSpec(task="push", goal_workspace_base_m=(0.45, -0.1, 0.2, 0.7, 0.1, 0.4)))


#: reset(seed=3)'s goal and achieved goal before the cell existed (the code of 2026-12-01), MuJoCo.
BEFORE = {
    "Sim2Real/Reach-v0": ([-0.124305, -0.078957, 0.240382], [0.03844, -0.0, 0.1974]),
    "Sim2Real/Push-v0": ([0.090382, 0.024649, 0.02], [-0.124305, -0.078957, 0.02]),
    "Sim2Real/PickAndPlace-v0": ([0.090382, 0.024649, 0.02], [-0.124305, -0.078957, 0.02]),
}


@pytest.mark.parametrize("task", list(BEFORE))
def test_default_cells_make_the_envs_they_always_did(task: str) -> None:
    env = gym.make(task)
    u = env.unwrapped
    cls = type(u)
    np.testing.assert_array_equal(u.goal_low_m, cls.goal_low_m)
    np.testing.assert_array_equal(u.goal_high_m, cls.goal_high_m)
    np.testing.assert_array_equal(u._neutral_q, cls.start_arm_q_rad)
    obs, _ = env.reset(seed=3)
    goal, achieved = BEFORE[task]
    np.testing.assert_allclose(obs["desired_goal"], goal, atol=1e-6)
    np.testing.assert_allclose(obs["achieved_goal"], achieved, atol=1e-6)
    env.close()


def test_a_box_seen_from_a_turned_frame_holds_its_turned_corners() -> None:
    from sim.transforms import box_in_frame

    same = box_in_frame(np.array([0.1, -0.2, 0.0]), np.array([0.4, 0.2, 0.3]), BASE, np.array([1.0, 0.0, 0.0, 0.0]))
    np.testing.assert_allclose(same, [[0.1 - BASE[0], -0.2, 0.0], [0.4 - BASE[0], 0.2, 0.3]])
    quarter = np.array([np.cos(np.pi / 4), 0.0, 0.0, np.sin(np.pi / 4)])  # the frame turned +90 deg about z
    turned = box_in_frame(np.array([1.0, 0.0, 0.0]), np.array([2.0, 0.5, 1.0]), np.zeros(3), quarter)
    # world +x is the frame's -y, world +y its +x
    np.testing.assert_allclose(turned, [[0.0, -2.0, 0.0], [0.5, -1.0, 1.0]], atol=1e-12)


def test_a_start_pose_under_the_table_is_refused() -> None:
    low = "0,1.7,0,-0.1,0,1.5,0.8"  # shoulder pitched down: the hand 2.5 cm into the table top
    with pytest.raises(CellError, match="under the table top"):
        make_env(EnvSpec(start_joints=low))
