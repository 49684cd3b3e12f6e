"""The scripted pusher: it pushes the object to the goal on both engines and on a lowered table, and its policy
bundle acts exactly as the numpy function does, through the bundle runtime the ROS node uses."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import sim  # noqa: F401  (registers the ids)
from policies.bundle import PolicyBundle, load_bundle
from policies.export import ExportError
from sim.engines import BACKENDS
from sim.env_spec import EnvSpecError
from sim2real.scripted_push import (
    ACTION_SCALE_M,
    AGENT,
    EE_SLICE,
    PHASES,
    export_scripted_push_bundle,
    scripted_push_action,
    scripted_push_phase,
)

SEEDS = range(10)
Act = Callable[[dict[str, np.ndarray]], np.ndarray]


def _numpy_act(obs: dict[str, np.ndarray]) -> np.ndarray:
    return scripted_push_action(obs["observation"], obs["achieved_goal"], obs["desired_goal"])


def _bundle_act(bundle: PolicyBundle) -> Act:
    return lambda obs: bundle.run(obs)["action"]


def _episodes(backend: str, act: Act, **env_kwargs: Any) -> tuple[list[bool], list[dict[str, np.ndarray]]]:
    """Success per seeded 50-step Push episode (ee control) under `act`, and every observation it acted on."""
    env = gym.make("Sim2Real/Push-v0", backend=backend, control="ee", **env_kwargs)
    wins, seen = [], []
    for seed in SEEDS:
        obs, info = env.reset(seed=seed)
        for _ in range(50):
            seen.append(obs)
            obs, _, terminated, truncated, info = env.step(act(obs))
            if terminated or truncated:
                break
        wins.append(bool(info["is_success"]))
    env.close()
    return wins, seen


def _stack(observations: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.stack([o[k] for o in observations]) for k in ("observation", "achieved_goal", "desired_goal")}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> PolicyBundle:
    return load_bundle(export_scripted_push_bundle(tmp_path_factory.mktemp("scripted") / "push"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_pusher_brings_the_object_to_the_goal(backend: str) -> None:
    """As the stateful reference pusher in tests/sim/test_envs.py: 8/10 on mujoco, 7/10 on pybullet (seeds 0-9)."""
    wins, seen = _episodes(backend, _numpy_act)
    assert sum(wins) >= 7, wins
    phases = scripted_push_phase(**_stack(seen))
    assert set(phases.tolist()) == set(range(len(PHASES)))  # it went through every phase, from one step's view


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_pusher_works_on_a_lowered_table(backend: str) -> None:
    """Heights are the object's, not absolute ones: 10 cm lower, it still succeeds (8/10 mujoco, 7/10 pybullet)."""
    wins, seen = _episodes(backend, _numpy_act, table_height_m=-0.1)
    assert seen[0]["achieved_goal"][2] < -0.05  # the object does lie on the lowered table
    assert sum(wins) >= 6, wins


def test_the_action_depends_on_heights_above_the_object_only() -> None:
    rng = np.random.default_rng(0)
    obs = rng.uniform(-0.2, 0.2, (256, 34))
    obj = np.c_[rng.uniform(-0.15, 0.15, (256, 2)), np.full(256, 0.02)]
    goal = np.c_[rng.uniform(-0.15, 0.15, (256, 2)), np.full(256, 0.02)]
    obs[:, EE_SLICE.start + 2] = rng.uniform(0.0, 0.12, 256)
    lowered = obs.copy()
    lowered[:, EE_SLICE.start + 2] -= 0.1
    a = scripted_push_action(obs, obj, goal)
    np.testing.assert_allclose(scripted_push_action(lowered, obj - [0, 0, 0.1], goal - [0, 0, 0.1]), a, atol=1e-6)
    assert a.shape == (256, 3) and a.dtype == np.float32 and np.all(np.abs(a) <= 1.0)
    one = scripted_push_action(obs[0], obj[0], goal[0])
    assert one.shape == (3,)
    np.testing.assert_array_equal(one, a[0])


def test_the_manifest_describes_a_scripted_stateless_ee_push_policy(bundle: PolicyBundle) -> None:
    m = bundle.manifest
    assert (m.env.task, m.env.control, m.env.obs_mode, m.env.backend) == ("push", "ee", "state", "mujoco")
    assert m.policy.agent == AGENT == "scripted_pusher" and not m.policy.recurrent and not bundle.recurrent
    assert m.state == () and [o.name for o in m.outputs] == ["action"] and m.camera is None
    assert m.source == {"scripted": "sim2real.scripted_push.scripted_push_action", "trained": False}
    assert m.policy.ee_control is not None and m.policy.ee_control.max_step_m == ACTION_SCALE_M  # the env's full step
    env = gym.make("Sim2Real/Push-v0", control="ee")
    space = env.observation_space
    assert isinstance(space, gym.spaces.Dict)
    assert {i.name: i.shape for i in m.observation.inputs} == {k: s.shape for k, s in space.spaces.items()}
    goal_low_m: np.ndarray = env.unwrapped.goal_low_m  # type: ignore[attr-defined]
    np.testing.assert_allclose(np.asarray(m.goal.world_low_m), goal_low_m)
    assert m.robot.blocked_finger_width_m is not None  # Push blocks the gripper: the node needs no finger joints
    env.close()


def test_the_bundle_acts_as_the_numpy_pusher_on_rollout_observations(bundle: PolicyBundle) -> None:
    seen = _episodes("mujoco", _numpy_act)[1] + _episodes("mujoco", _numpy_act, table_height_m=-0.1)[1]
    batch = _stack(seen)
    got, want = bundle.run(batch)["action"], scripted_push_action(**batch)
    assert got.shape == (len(seen), 3)
    assert set(scripted_push_phase(**batch).tolist()) == set(range(len(PHASES)))  # every branch of the graph
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    for obs in seen[::25]:  # one observation at a time, as the node calls it
        np.testing.assert_allclose(bundle.run(obs)["action"], _numpy_act(obs), rtol=0, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_bundle_drives_the_env_as_the_numpy_pusher_does(bundle: PolicyBundle, backend: str) -> None:
    numpy_wins, _ = _episodes(backend, _numpy_act)
    bundle_wins, _ = _episodes(backend, _bundle_act(bundle))
    assert bundle_wins == numpy_wins and sum(bundle_wins) >= 7, (bundle_wins, numpy_wins)


# -- bad input --------------------------------------------------------------------------------------------------
def test_export_refuses_a_folder_that_is_not_a_bundle(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    with pytest.raises(ExportError, match=r"exists and is not a policy bundle \(it holds \['notes.txt'\]\)"):
        export_scripted_push_bundle(tmp_path, force=True)
    assert notes.read_text() == "my notes\n" and [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_export_replaces_a_bundle_only_with_force(tmp_path: Path) -> None:
    out = export_scripted_push_bundle(tmp_path / "b", backend="pybullet")
    with pytest.raises(ExportError, match="already holds a policy bundle; pass --force"):
        export_scripted_push_bundle(out)
    assert load_bundle(out).manifest.env.backend == "pybullet"
    export_scripted_push_bundle(out, force=True)
    assert load_bundle(out).manifest.env.backend == "mujoco"


def test_export_refuses_an_unknown_engine_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(EnvSpecError, match=r"backend must be one of \['mujoco', 'pybullet'\], got 'isaac'"):
        export_scripted_push_bundle(tmp_path / "b", backend="isaac")
    assert list(tmp_path.iterdir()) == []
