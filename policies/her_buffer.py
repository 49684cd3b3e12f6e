"""SB3's HER replay with the two things our pipeline adds: goal-relative observations and demonstrations.

- **Goal-relative observations** (observation layout 2, sim.observation): `observation` holds `desired - achieved`
  in one slice. SB3's HerReplayBuffer relabels `desired_goal` but leaves `observation` as stored, right only while
  the observation does not depend on the goal; this buffer rewrites that slice from each sample's (possibly
  relabelled) goals, in raw units, before the observation normaliser runs, so a relabelled transition reads
  exactly as if the episode had been run for that goal.
- **A demonstration share in every batch** (`demo_share`, Nair et al. 2018 and RLPD's fixed mix): a second buffer
  of demonstrations (attach_demos) supplies that share of each sample, relabelled by HER like any episode; the
  demonstration rows come first in the batch (`last_demo_rows` says how many).
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


class HerBuffer(HerReplayBuffer):
    """HerReplayBuffer with an optional goal-relative slice of `observation` recomputed from every sample's goals,
    and an optional share of every batch drawn from attached demonstrations."""

    def __init__(
        self,
        *args: Any,
        goal_relative_slice: tuple[int, int] | list[int] | None = None,
        demo_share: float = 0.0,
        **kwargs: Any,
    ) -> None:
        if not 0.0 <= float(demo_share) < 1.0:
            raise ValueError(f"demo_share must be in [0, 1), got {demo_share}")
        super().__init__(*args, **kwargs)
        self.goal_relative_slice: tuple[int, int] | None = None
        if goal_relative_slice is not None:
            start, stop = (int(v) for v in goal_relative_slice)
            if not 0 <= start < stop or stop - start != 3:
                raise ValueError(f"goal_relative_slice must be [start, start + 3], got {list(goal_relative_slice)}")
            n = int(self.obs_shape["observation"][-1])
            if stop > n:
                raise ValueError(f"goal_relative_slice {[start, stop]} lies outside the {n}-value observation")
            self.goal_relative_slice = (start, stop)
        self.demo_share = float(demo_share)
        self.demos: HerBuffer | None = None
        """The demonstrations (a buffer of their own, never overwritten by the agent's experience)."""
        self.last_demo_rows = 0
        """How many of the last sample's rows (the first ones) came from the demonstrations."""

    def attach_demos(self, demos: HerBuffer) -> None:
        """Draw `demo_share` of every batch from `demos` (a filled HerBuffer of the same spaces)."""
        if demos.size() == 0:
            raise ValueError("the demonstration buffer is empty")
        self.demos = demos

    def set_env(self, env: Any) -> None:
        super().set_env(env)
        if self.demos is not None and self.demos.env is None:  # a loaded buffer: pickling dropped both envs
            self.demos.set_env(env)

    def sample(self, batch_size: int, env: Any = None) -> Any:
        n_demo = int(round(self.demo_share * batch_size)) if self.demos is not None else 0
        self.last_demo_rows = n_demo
        if n_demo == 0:
            return super().sample(batch_size, env)
        import torch as th

        assert self.demos is not None
        demo, own = self.demos.sample(n_demo, env), super().sample(batch_size - n_demo, env)

        def cat(a: Any, b: Any) -> Any:
            if a is None:  # a field these samples leave empty (n-step discounts)
                return None
            return {k: th.cat([a[k], b[k]]) for k in a} if isinstance(a, dict) else th.cat([a, b])

        return type(own)(*(cat(a, b) for a, b in zip(demo, own)))

    # SB3's is a staticmethod that every sample path calls through self: an instance method takes its place
    def _normalize_obs(self, obs: Any, env: Any = None) -> Any:  # type: ignore[override]
        # every sample path (real and relabelled) normalises here, right after the goals are set
        if self.goal_relative_slice is not None and isinstance(obs, dict) and "desired_goal" in obs:
            obs = with_goal_relative(obs, *self.goal_relative_slice)
        return super()._normalize_obs(obs, env)
