"""Registers the tasks with gymnasium under the public ids (a plain dict, no auto-registration)."""

from __future__ import annotations

import gymnasium as gym

#: Public env id -> (entry point, max episode steps). 50 steps at 25 Hz = 2 s, as panda-gym and Fetch.
ENV_IDS: dict[str, tuple[str, int]] = {
    "Sim2Real/Reach-v0": ("sim.tasks.reach:ReachEnv", 50),
    "Sim2Real/Push-v0": ("sim.tasks.object_tasks:PushEnv", 50),
    "Sim2Real/PickAndPlace-v0": ("sim.tasks.object_tasks:PickAndPlaceEnv", 50),
}


def register_envs() -> None:
    """Register every id in ENV_IDS (idempotent)."""
    for env_id, (entry_point, steps) in ENV_IDS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point, max_episode_steps=steps)
