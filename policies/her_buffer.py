"""SB3's HER replay with the two things our pipeline adds: goal-relative observations and demonstrations.

- **Goal-relative observations** (observation layout 2, sim.observation): `observation` holds `desired - achieved`
  in one slice. SB3's HerReplayBuffer relabels `desired_goal` but leaves `observation` as stored, right only while
  the observation does not depend on the goal; this buffer rewrites that slice from each sample's (possibly
  relabelled) goals, in raw units, before the observation normaliser runs, so a relabelled transition reads
  exactly as if the episode had been run for that goal.
- **A demonstration share in every batch** (`demo_share`, Nair et al. 2018 and RLPD's fixed mix): a second buffer
  of demonstrations (attach_demos) supplies that share of each sample, relabelled by HER like any episode; the
  demonstration rows come first in the batch (`last_demo_rows` says how many).
- **n-step returns** (`n_steps` > 1): each sample's reward is the discounted sum of the next n rewards under its
  own (possibly relabelled) goal, recomputed with the env's compute_reward, cut at the episode's end; the next
  observation is the one after the last step summed, and `discounts` (gamma^k) tells the agent how far that is.
  SB3's HER buffer has no n-step returns; n_steps 1 is SB3's sampling exactly.
- **No scan of the whole buffer per sample.** SB3 finds the sampleable transitions (`ep_length > 0`) anew for
  every batch (1.0-1.3 ms per batch of 256 with 450k of 1M rows stored, against 0.27-0.41 ms here:
  benchmarks/her_sample_cost.py); this buffer keeps them until an episode ends or an old one starts to be
  overwritten, and draws from them exactly as SB3 does (same generator calls, so the same batches for the same
  seed).
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
        n_steps: int = 1,
        gamma: float = 0.99,
        **kwargs: Any,
    ) -> None:
        if not 0.0 <= float(demo_share) < 1.0:
            raise ValueError(f"demo_share must be in [0, 1), got {demo_share}")
        if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
            raise ValueError(f"n_steps must be an integer >= 1, got {n_steps!r}")
        if not 0.0 < float(gamma) <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {gamma}")
        self.n_steps, self.gamma = n_steps, float(gamma)
        self.last_sample: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        """n-step sampling: the last sample's (buffer indices, env indices, goals), row for row."""
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
        self._valid: np.ndarray | None = None
        """Flat indices of the sampleable transitions (ep_length > 0); None when they must be found again."""

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
            return self._sample_own(batch_size, env)
        assert self.demos is not None
        return _cat_samples(self.demos.sample(n_demo, env), self._sample_own(batch_size - n_demo, env))

    # the sampleable transitions change only where SB3 sets ep_length: at an episode's end (truncating the last
    # trajectory ends it there too) and when a write reaches an old episode, which SB3's add then deletes whole
    def add(self, *args: Any, **kwargs: Any) -> None:
        if self.full and (self.ep_length[self.pos] > 0).any():
            self._valid = None
        super().add(*args, **kwargs)

    def _compute_episode_length(self, env_idx: int) -> None:
        super()._compute_episode_length(env_idx)
        self._valid = None

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), "_valid": None}  # found again after loading, not saved

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__({**state, "_valid": None})  # buffers saved before the cache existed have none

    def _draw(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """(buffer indices, env indices) of `batch_size` sampleable transitions, drawn as SB3's sample draws them."""
        if self._valid is None:
            self._valid = np.flatnonzero(self.ep_length > 0)
        if self._valid.size == 0:
            raise RuntimeError("no finished episode to sample from yet (learning_starts must exceed an episode)")
        picked = np.random.choice(self._valid, size=batch_size, replace=True)  # noqa: NPY002
        b, e = np.unravel_index(picked, self.ep_length.shape)
        return b, e

    def _sample_own(self, batch_size: int, env: Any) -> Any:
        if self.n_steps > 1:
            return self._sample_n_step(batch_size, env)
        b, e = self._draw(batch_size)  # SB3's sample from here on: the first her_ratio relabelled, real rows first
        n_virtual = int(self.her_ratio * batch_size)
        real = self._get_real_samples(b[n_virtual:], e[n_virtual:], env)
        return _cat_samples(real, self._get_virtual_samples(b[:n_virtual], e[:n_virtual], env))

    def _sample_n_step(self, batch_size: int, env: Any) -> Any:
        """SB3's HER sampling (valid transitions, her_ratio of them relabelled by the goal strategy) with n-step
        returns under each row's goal."""
        from stable_baselines3.common.type_aliases import DictReplayBufferSamples

        b, e = self._draw(batch_size)
        n_virtual = int(self.her_ratio * batch_size)
        goals = self.observations["desired_goal"][b, e].copy()
        if n_virtual:
            goals[:n_virtual] = self._sample_goals(b[:n_virtual], e[:n_virtual])
        self.last_sample = (b, e, goals)
        # steps left in the episode from each row's transition (itself included), at most n
        left = self.ep_length[b, e] - (b - self.ep_start[b, e]) % self.buffer_size
        k = np.minimum(left, self.n_steps)
        steps = np.arange(self.n_steps)
        idx = (b[:, None] + np.minimum(steps[None, :], k[:, None] - 1)) % self.buffer_size  # (B, n), clamped
        achieved = self.next_observations["achieved_goal"][idx, e[:, None]]  # (B, n, 3)
        assert self.env is not None, "HerBuffer needs its VecEnv to compute rewards"
        rewards = self.env.env_method(
            "compute_reward", achieved.reshape(-1, achieved.shape[-1]), np.repeat(goals, self.n_steps, axis=0),
            [{} for _ in range(achieved.shape[0] * self.n_steps)], indices=[0],
        )[0].reshape(batch_size, self.n_steps)  # fmt: skip
        weights = (self.gamma**steps)[None, :] * (steps[None, :] < k[:, None])
        returns = (rewards * weights).sum(axis=1, dtype=np.float64).astype(np.float32)
        last = idx[np.arange(batch_size), k - 1]
        obs = {key: v[b, e] for key, v in self.observations.items()}
        nxt = {key: v[last, e] for key, v in self.next_observations.items()}
        obs["desired_goal"] = nxt["desired_goal"] = goals
        obs, nxt = self._normalize_obs(obs, env), self._normalize_obs(nxt, env)
        dones = self.dones[last, e] * (1 - self.timeouts[last, e])
        return DictReplayBufferSamples(
            observations={key: self.to_torch(v) for key, v in obs.items()},
            actions=self.to_torch(self.actions[b, e]),
            next_observations={key: self.to_torch(v) for key, v in nxt.items()},
            dones=self.to_torch(dones).reshape(-1, 1),
            rewards=self.to_torch(self._normalize_reward(returns.reshape(-1, 1), env)),
            discounts=self.to_torch((self.gamma**k).astype(np.float32)).reshape(-1, 1),
        )

    # SB3's is a staticmethod that every sample path calls through self: an instance method takes its place
    def _normalize_obs(self, obs: Any, env: Any = None) -> Any:  # type: ignore[override]
        # every sample path (real and relabelled) normalises here, right after the goals are set
        if self.goal_relative_slice is not None and isinstance(obs, dict) and "desired_goal" in obs:
            obs = with_goal_relative(obs, *self.goal_relative_slice)
        return super()._normalize_obs(obs, env)


def _cat_samples(a: Any, b: Any) -> Any:
    """Two batches of replay samples (named tuples of tensors or dicts of them) as one, `a`'s rows first."""
    import torch as th

    def cat(x: Any, y: Any) -> Any:
        if x is None:  # a field these samples leave empty (n-step discounts)
            return None
        return {k: th.cat([x[k], y[k]]) for k in x} if isinstance(x, dict) else th.cat([x, y])

    return type(a)(*(cat(x, y) for x, y in zip(a, b)))
