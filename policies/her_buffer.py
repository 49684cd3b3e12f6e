"""HER replay for observations that carry the goal relative to the achieved goal (observation layout 2).

SB3's HerReplayBuffer relabels `desired_goal` but leaves `observation` as it was stored, which is right only
while the observation does not depend on the goal. Layout 2 (sim.observation) holds `desired - achieved` in a
slice of `observation`; this buffer rewrites that slice from each sample's (possibly relabelled) goals, in raw
units, before the observation normaliser runs, so a relabelled transition reads exactly as if the episode had
been run for that goal.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3 import HerReplayBuffer


def with_goal_relative(obs: dict[str, np.ndarray], start: int, stop: int) -> dict[str, np.ndarray]:
    """`obs` with observation[..., start:stop] = desired_goal - achieved_goal (a new dict and array; raw units)."""
    vec = np.array(obs["observation"], copy=True)
    vec[..., start:stop] = obs["desired_goal"] - obs["achieved_goal"]
    return {**obs, "observation": vec}


class GoalRelativeHerBuffer(HerReplayBuffer):
    """HerReplayBuffer whose samples have observation[goal_relative_slice] recomputed from their goals."""

    def __init__(self, *args: Any, goal_relative_slice: tuple[int, int] | list[int], **kwargs: Any) -> None:
        start, stop = (int(v) for v in goal_relative_slice)
        if not 0 <= start < stop or stop - start != 3:
            raise ValueError(f"goal_relative_slice must be [start, start + 3], got {list(goal_relative_slice)}")
        super().__init__(*args, **kwargs)
        n = int(self.obs_shape["observation"][-1])
        if stop > n:
            raise ValueError(f"goal_relative_slice {[start, stop]} lies outside the {n}-value observation")
        self.goal_relative_slice = (start, stop)

    # SB3's is a staticmethod that every sample path calls through self: an instance method takes its place
    def _normalize_obs(self, obs: Any, env: Any = None) -> Any:  # type: ignore[override]
        # every sample path (real and relabelled) normalises here, right after the goals are set
        if isinstance(obs, dict) and "desired_goal" in obs:
            obs = with_goal_relative(obs, *self.goal_relative_slice)
        return super()._normalize_obs(obs, env)
