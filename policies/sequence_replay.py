"""Replay of whole-episode sequences for recurrent off-policy agents (R2D2, Kapturowski et al. 2019) with hindsight
goals: the storage and sampling half of recurrent SAC + HER. numpy only.

Episodes are stored whole (observation, achieved and desired goal per step, actions, terminations). Training
windows of `train` steps tile each episode (they start every `stride` steps: 0, 20, 40 by default); a sequence is
the `burn_in` steps before its window, which only carry the recurrent state forward, then the window, which carries
the loss (`loss_mask`: 1 on window steps inside the episode). The state the acting network had at each sequence's
first step is stored; a window at the episode's start has no burn-in and starts from the zero state, as the episode
did. Each sequence takes one goal for all its steps: the episode's own or, with probability `her_ratio`, an achieved
goal from after its window's first step (`future`), the episode's last (`final`) or any (`episode`); rewards are
recomputed for that goal by the env's `compute_reward`.

Memory is bounded: `capacity_episodes` episodes of at most `max_steps` steps; the oldest is overwritten first, and
`nbytes` reports what the arrays hold.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

GOAL_STRATEGIES = ("future", "final", "episode")


@dataclass(frozen=True)
class SequenceSpec:
    """Sequence lengths. R2D2's defaults are a burn-in of 40 and a training window of 80 over long episodes; scaled
    to 50-step episodes (same 1:2 ratio): 10 and 20, starts every 20 steps (0, 20, 40)."""

    burn_in: int = 10
    """Steps that only carry the recurrent state forward (no loss)."""
    train: int = 20
    """Steps that carry the loss."""
    stride: int = 20
    """A training window starts every this many steps of an episode."""

    def check(self) -> SequenceSpec:
        for name in ("burn_in", "train", "stride"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < (0 if name == "burn_in" else 1):
                raise ValueError(f"{name} must be an integer >= {0 if name == 'burn_in' else 1}, got {v!r}")
        return self

    @property
    def length(self) -> int:
        return self.burn_in + self.train


@dataclass
class SequenceBatch:
    """B sequences of L = burn_in + train steps (arrays (B, L, ...); `next_*` are the observations after each step)."""

    observation: np.ndarray
    achieved_goal: np.ndarray
    desired_goal: np.ndarray
    next_observation: np.ndarray
    next_achieved_goal: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    """(B, L) float32, recomputed for the sequence's goal."""
    terminated: np.ndarray
    """(B, L) float32: the step ended the episode by termination (not the time limit)."""
    loss_mask: np.ndarray
    """(B, L) float32: 1 on training-window steps inside the episode."""
    state: np.ndarray
    """(B, S) float32: the stored recurrent state at each sequence's first step (zeros at an episode's start)."""
    episode: np.ndarray
    """(B,) int: the episodes the sequences came from (for refresh_states)."""
    start: np.ndarray
    """(B,) int: each sequence's first step in its episode."""
    window: np.ndarray
    """(B,) int: the first step of each sequence's training window (start + its burn-in)."""


class SequenceReplay:
    """Whole episodes, sampled as goal-relabelled sequences with stored recurrent states."""

    #: The stored arrays: the replay's memory, and what `save` writes beside its header.
    ARRAYS = ("observation", "achieved_goal", "desired_goal", "action", "terminated", "length", "state")
    #: Version of the file `save` writes.
    FILE_FORMAT = 1

    def __init__(
        self,
        capacity_episodes: int,
        max_steps: int,
        obs_dim: int,
        goal_dim: int,
        action_dim: int,
        state_dim: int,
        spec: SequenceSpec | None = None,
        her_ratio: float = 0.8,
        goal_strategy: str = "future",
        seed: int = 0,
    ) -> None:
        self.spec = (spec or SequenceSpec()).check()
        if goal_strategy not in GOAL_STRATEGIES:
            raise ValueError(f"goal_strategy must be one of {list(GOAL_STRATEGIES)}, got {goal_strategy!r}")
        if not 0.0 <= her_ratio <= 1.0:
            raise ValueError(f"her_ratio must be in [0, 1], got {her_ratio}")
        for name, v in (("capacity_episodes", capacity_episodes), ("max_steps", max_steps), ("obs_dim", obs_dim),
                        ("goal_dim", goal_dim), ("action_dim", action_dim), ("state_dim", state_dim)):  # fmt: skip
            if v < 1:
                raise ValueError(f"{name} must be >= 1, got {v}")
        self.her_ratio, self.goal_strategy = float(her_ratio), goal_strategy
        self.rng = np.random.default_rng(seed)
        n, t, f = capacity_episodes, max_steps, np.float32
        self.observation = np.zeros((n, t + 1, obs_dim), f)
        self.achieved_goal = np.zeros((n, t + 1, goal_dim), f)
        self.desired_goal = np.zeros((n, goal_dim), f)
        self.action = np.zeros((n, t, action_dim), f)
        self.terminated = np.zeros((n, t), f)
        self.length = np.zeros(n, np.int64)
        self.n_starts = -(-max_steps // self.spec.stride)
        self.state = np.zeros((n, self.n_starts, state_dim), f)
        self.capacity, self.max_steps = n, t
        self.episodes_added = 0

    @property
    def size(self) -> int:
        """Episodes held."""
        return min(self.episodes_added, self.capacity)

    @property
    def nbytes(self) -> int:
        """Bytes the stored arrays take (fixed at construction: the replay's memory bound)."""
        return int(sum(getattr(self, name).nbytes for name in self.ARRAYS))

    def save(self, path: str | Path) -> None:
        """The replay as one .npz archive at exactly `path`: its arrays and a JSON header (settings, write count,
        the sampler's generator state); nothing in it executes when it is read."""
        header = {"format": self.FILE_FORMAT, "spec": asdict(self.spec), "her_ratio": self.her_ratio,
                  "goal_strategy": self.goal_strategy, "episodes_added": self.episodes_added,
                  "rng": self.rng.bit_generator.state}  # fmt: skip
        with open(path, "wb") as f:
            np.savez(f, header=np.array(json.dumps(header)), **{name: getattr(self, name) for name in self.ARRAYS})

    @classmethod
    def load(cls, path: str | Path) -> SequenceReplay:
        """A replay written by `save`, sampling on as the saved one would; ValueError naming the file otherwise."""
        try:
            with np.load(path, allow_pickle=False) as archive:
                header = json.loads(str(archive["header"]))
                arrays = {name: archive[name] for name in cls.ARRAYS}
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
            raise ValueError(f"{path}: not a sequence replay written by SequenceReplay.save ({e})") from e
        if header.get("format") != cls.FILE_FORMAT:
            raise ValueError(f"{path}: sequence replay format {header.get('format')!r}, this version reads "
                             f"{cls.FILE_FORMAT}")  # fmt: skip
        (n, t1, obs_dim), goal_dim = arrays["observation"].shape, arrays["desired_goal"].shape[1]
        replay = cls(n, t1 - 1, obs_dim, goal_dim, arrays["action"].shape[2], arrays["state"].shape[2],
                     SequenceSpec(**header["spec"]), header["her_ratio"], header["goal_strategy"])  # fmt: skip
        for name, value in arrays.items():
            if value.shape != getattr(replay, name).shape:
                raise ValueError(f"{path}: array {name} has shape {value.shape}, its header implies "
                                 f"{getattr(replay, name).shape}")  # fmt: skip
            setattr(replay, name, value.astype(getattr(replay, name).dtype, copy=False))
        replay.episodes_added = int(header["episodes_added"])
        replay.rng.bit_generator.state = header["rng"]
        return replay

    def add_episode(
        self,
        observation: np.ndarray,
        achieved_goal: np.ndarray,
        desired_goal: np.ndarray,
        action: np.ndarray,
        terminated: bool,
        states: np.ndarray,
    ) -> int:
        """Store one finished episode of T steps: observation and achieved_goal (T + 1, .) (the last is the final
        observation), desired_goal (goal_dim,), action (T, .), whether it ended by termination, and the acting
        network's recurrent state before each step, states (T, state_dim) (zeros before the first). Returns its
        slot."""
        steps = int(np.shape(action)[0])
        if not 1 <= steps <= self.max_steps:
            raise ValueError(f"an episode must have 1..{self.max_steps} steps, got {steps}")
        if np.shape(observation)[0] != steps + 1 or np.shape(achieved_goal)[0] != steps + 1:
            raise ValueError(f"observation and achieved_goal need {steps + 1} rows (the final one included)")
        if np.shape(states)[0] != steps:
            raise ValueError(f"states need one row per step ({steps}), got {np.shape(states)[0]}")
        slot = self.episodes_added % self.capacity
        self.length[slot] = steps
        self.observation[slot] = 0.0
        self.achieved_goal[slot] = 0.0
        self.action[slot] = 0.0
        self.terminated[slot] = 0.0
        self.observation[slot, : steps + 1] = observation
        self.achieved_goal[slot, : steps + 1] = achieved_goal
        self.desired_goal[slot] = desired_goal
        self.action[slot, :steps] = action
        self.terminated[slot, steps - 1] = float(terminated)
        starts = self._sequence_starts(steps)
        self.state[slot] = 0.0
        self.state[slot, : starts.size] = np.asarray(states, np.float32)[starts]
        self.state[slot, 0] = 0.0  # an episode starts from the zero state
        self.episodes_added += 1
        return slot

    def _sequence_starts(self, steps: int) -> np.ndarray:
        """First step of each sequence of a `steps`-step episode: burn_in before each window, never before 0."""
        return np.maximum(np.arange(0, steps, self.spec.stride) - self.spec.burn_in, 0)

    def refresh_states(
        self, episodes: np.ndarray, unroll: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    ) -> None:
        """Recompute the stored states of `episodes` with the current network: `unroll(observations (T, obs_dim),
        achieved goals (T, goal_dim), goal (goal_dim,))` returns the state before each step, (T, state_dim), from
        the zero state."""
        for ep in np.unique(np.asarray(episodes, int)):
            steps = int(self.length[ep])
            states = np.asarray(
                unroll(self.observation[ep, :steps], self.achieved_goal[ep, :steps], self.desired_goal[ep]), np.float32
            )
            starts = self._sequence_starts(steps)
            self.state[ep, : starts.size] = states[starts]
            self.state[ep, 0] = 0.0

    def sample(self, batch_size: int, compute_reward: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> SequenceBatch:
        """`batch_size` sequences: episode and start uniform over the stored (episode, start) pairs, one goal per
        sequence. `compute_reward(achieved (N, goal_dim), desired (N, goal_dim))` -> (N,) as the env's."""
        if self.size == 0:
            raise RuntimeError("no episode stored yet")
        spec = self.spec
        n_starts = -(-self.length[: self.size] // spec.stride)
        pairs = np.repeat(np.arange(self.size), n_starts)
        pick = self.rng.integers(0, pairs.size, batch_size)
        episode = pairs[pick]
        first = np.concatenate([[0], np.cumsum(n_starts)[:-1]])
        start_idx = pick - first[episode]
        window = start_idx * spec.stride
        start = np.maximum(window - spec.burn_in, 0)
        offset = window - start  # burn-in steps of each sequence
        length = self.length[episode]
        steps = start[:, None] + np.arange(spec.length)[None, :]  # (B, L)
        inside = steps < length[:, None]
        idx = np.minimum(steps, length[:, None] - 1)
        col = episode[:, None]
        goal = self.desired_goal[episode].copy()
        relabel = self.rng.random(batch_size) < self.her_ratio
        if relabel.any():
            if self.goal_strategy == "final":
                at = length
            elif self.goal_strategy == "future":
                at = self.rng.integers(window + 1, length + 1)  # achieved after one of the window's steps
            else:
                at = self.rng.integers(1, length + 1)
            goal[relabel] = self.achieved_goal[episode, at][relabel]
        next_achieved = self.achieved_goal[col, idx + 1]
        b, L = idx.shape
        reward = compute_reward(next_achieved.reshape(b * L, -1), np.repeat(goal, L, axis=0)).reshape(b, L)
        j = np.arange(L)[None, :]
        mask = inside & (j >= offset[:, None]) & (j < offset[:, None] + spec.train)
        return SequenceBatch(
            observation=self.observation[col, idx],
            achieved_goal=self.achieved_goal[col, idx],
            desired_goal=np.repeat(goal[:, None, :], L, axis=1),
            next_observation=self.observation[col, idx + 1],
            next_achieved_goal=next_achieved,
            action=self.action[col, idx],
            reward=np.asarray(reward, np.float32) * inside,
            terminated=self.terminated[col, idx] * inside,
            loss_mask=mask.astype(np.float32),
            state=self.state[episode, start_idx],
            episode=episode,
            start=start,
            window=window,
        )
