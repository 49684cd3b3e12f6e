"""A proportional end-effector controller on Reach: the scripted baseline the demo and its randomization part
print (no learning: what the scene allows)."""

from __future__ import annotations

from typing import Any

import numpy as np


def scripted_reach(backend: str, episodes: int = 10, seed: int = 0, **env_kwargs: Any) -> tuple[float, float]:
    """Success rate and mean steps of a proportional end-effector controller on Reach (`env_kwargs` go to
    gym.make, e.g. randomization=...)."""
    import gymnasium as gym

    import sim  # noqa: F401

    env = gym.make("Sim2Real/Reach-v0", backend=backend, control="ee", **env_kwargs)
    wins, steps = 0, []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        for t in range(50):  # noqa: B007  (t is read after the loop)
            obs, _, terminated, truncated, info = env.step(
                np.clip(10 * (obs["desired_goal"] - obs["achieved_goal"]), -1, 1)
            )
            if terminated or truncated:
                break
        wins += int(info["is_success"])
        steps.append(t + 1)
    env.close()
    return wins / episodes, float(np.mean(steps))
