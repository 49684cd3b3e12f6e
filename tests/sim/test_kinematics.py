"""The node-side observation (joints + forward kinematics) equals the simulator's, on both engines."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import sim  # noqa: F401
from sim.kinematics import KinematicChain
from sim.observation import build_observation, signals_from_joints
from sim.robot import panda


def _world_chain(env: gym.Env) -> KinematicChain:
    base = np.eye(4)
    base[:3, 3] = env.unwrapped.sim.scene.robot_base_pos_m
    robot = env.unwrapped.sim.robot
    return robot.kinematic_chain(robot.ee_link, base)


def test_chain_round_trips_through_json_form() -> None:
    robot = panda()
    chain = robot.kinematic_chain(robot.ee_link)
    again = KinematicChain.from_dict(chain.to_dict())
    q = dict(zip(chain.moving_joint_names, [0.1, -0.3, 0.2, -2.0, 0.4, 1.9, 0.7]))
    assert np.allclose(again.transform(q), chain.transform(q))
    assert chain.moving_joint_names == list(robot.arm_joint_names)


def test_chain_rejects_bad_fields() -> None:
    data = panda().kinematic_chain("panda_hand").to_dict()
    data["joints"][2]["axis"] = [0.0, float("nan"), 1.0]
    with pytest.raises(ValueError, match=r"joints\[2\].axis"):
        KinematicChain.from_dict(data)
    data["joints"][2]["axis"] = [0.0, 0.0, 1.0]
    del data["base_pos_m"]
    with pytest.raises(ValueError, match="base_pos_m"):
        KinematicChain.from_dict(data)


def test_velocity_is_the_jacobian_times_joint_speeds() -> None:
    chain = panda().kinematic_chain("panda_grasptarget")
    names = chain.moving_joint_names
    q = dict(zip(names, [0.0, 0.41, 0.0, -1.85, 0.0, 2.26, 0.79]))
    qd = dict(zip(names, [0.3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]))  # only the base joint turns: circular motion
    pos, vel = chain.position_velocity(q, qd)
    radius = np.hypot(pos[0], pos[1])
    assert np.linalg.norm(vel) == pytest.approx(0.3 * radius, rel=1e-6)
    assert abs(vel[:2] @ pos[:2]) < 1e-8  # tangential


@pytest.mark.parametrize("backend", ["mujoco", "pybullet"])
def test_node_observation_equals_the_simulators(backend: str) -> None:
    """Golden sim-vs-node test: the observation rebuilt from joint positions and speeds alone (what
    joint_states carries) matches the env's, which reads the engine's end-effector pose and velocity."""
    env = gym.make("Sim2Real/Reach-v0", backend=backend)
    chain = _world_chain(env)
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=3)
    for _ in range(12):
        obs, *_ = env.step(rng.uniform(-1, 1, 7))
        q, qd = env.unwrapped.sim.joint_state()
        rebuilt = build_observation(signals_from_joints(chain, q[:7], qd[:7], float(q[7] + q[8])), False)
        np.testing.assert_allclose(rebuilt, obs["observation"], atol=2e-5)
        np.testing.assert_allclose(rebuilt[14:17], obs["achieved_goal"], atol=2e-5)
    env.close()


@pytest.mark.parametrize("backend", ["mujoco", "pybullet"])
def test_jacobian_matches_the_engines(backend: str) -> None:
    env = gym.make("Sim2Real/Reach-v0", backend=backend)
    chain = _world_chain(env)
    env.reset(seed=1)
    rng = np.random.default_rng(1)
    for _ in range(5):
        env.step(rng.uniform(-1, 1, 7))
        q = env.unwrapped.sim.joint_state()[0][:7]
        jac = chain.jacobian(dict(zip(chain.moving_joint_names, q)))
        np.testing.assert_allclose(jac, env.unwrapped.sim.arm_jacobian("panda_grasptarget"), atol=1e-5)
    env.close()
