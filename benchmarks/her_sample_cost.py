"""Cost of one HER replay sample with a large buffer: SB3's HerReplayBuffer (finds the sampleable rows anew for
every batch) against policies.her_buffer.HerBuffer (keeps them until an episode ends or is overwritten). A 1M-row
buffer of Push (ee control) with FILLED rows in 50-step episodes, batch 256, future goals, median of 200 samples.

Run: .venv/bin/python benchmarks/her_sample_cost.py [FILLED]   (nothing else running)
"""

from __future__ import annotations

import sys
import time

import gymnasium as gym
import numpy as np
from stable_baselines3 import HerReplayBuffer
from stable_baselines3.common.vec_env import DummyVecEnv

import sim  # noqa: F401
from policies.her_buffer import HerBuffer


def main(filled: int) -> None:
    env = DummyVecEnv([lambda: gym.make("Sim2Real/Push-v0", control="ee")])
    kwargs = {"env": env, "n_sampled_goal": 4, "goal_selection_strategy": "future", "device": "cpu"}
    for cls in (HerReplayBuffer, HerBuffer):
        buf = cls(1_000_000, env.observation_space, env.action_space, **kwargs)
        buf.ep_length[:filled, 0] = 50
        buf.ep_start[:filled, 0] = np.arange(filled) // 50 * 50
        buf.pos = filled
        buf.sample(256)
        times = []
        for _ in range(200):
            t = time.perf_counter()
            buf.sample(256)
            times.append(time.perf_counter() - t)
        print(f"{cls.__name__:16s} {1e3 * float(np.median(times)):.2f} ms per sample of 256 ({filled} rows stored)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 450_000)
