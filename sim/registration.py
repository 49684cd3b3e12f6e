"""Registers the tasks with gymnasium under the public ids (a plain dict, no auto-registration)."""

from __future__ import annotations

import gymnasium as gym

#: Task name (config files, the command line, manifests) -> public gymnasium id: the one list of tasks.
TASKS = {"reach": "Sim2Real/Reach-v0", "push": "Sim2Real/Push-v0", "pick_and_place": "Sim2Real/PickAndPlace-v0"}
_ENTRY_POINTS = {
    "reach": "sim.tasks.reach:ReachEnv",
    "push": "sim.tasks.object_tasks:PushEnv",
    "pick_and_place": "sim.tasks.object_tasks:PickAndPlaceEnv",
}
#: Public env id -> (entry point, max episode steps). 50 steps at 25 Hz = 2 s, as panda-gym and Fetch.
ENV_IDS: dict[str, tuple[str, int]] = {TASKS[task]: (entry, 50) for task, entry in _ENTRY_POINTS.items()}


def register_envs() -> None:
    """Register every id in ENV_IDS (idempotent)."""
    for env_id, (entry_point, steps) in ENV_IDS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point, max_episode_steps=steps)
