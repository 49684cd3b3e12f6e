"""Cost of one env step with one TQC + HER update on Push, SB3 (torch) against SBX (JAX), and of recurrent SAC + HER:
push_uniform_cpu's networks (three 256-unit layers, two critics, batch 256), medians over repeats.

Run: .venv/bin/python benchmarks/update_cost.py [REPEATS] [STEPS]
(SBX needs `pip install sbx-rl`; it is skipped without it.)
"""

import statistics
import sys
import time

import gymnasium as gym
from stable_baselines3 import HerReplayBuffer
from stable_baselines3.common.vec_env import DummyVecEnv

import sim  # noqa: F401

KW = dict(batch_size=256, learning_rate=1e-3, gamma=0.95, tau=0.05, learning_starts=300, train_freq=1,
          gradient_steps=1, policy_kwargs=dict(net_arch=[256, 256, 256], n_critics=2),
          replay_buffer_class=HerReplayBuffer,
          replay_buffer_kwargs=dict(n_sampled_goal=4, goal_selection_strategy="future"))  # fmt: skip


def env():  # type: ignore[no-untyped-def]
    return DummyVecEnv([lambda: gym.make("Sim2Real/Push-v0", control="ee")])


def per_step_ms(model, steps: int) -> float:  # type: ignore[no-untyped-def]
    model.learn(400)  # past learning_starts, networks compiled (SBX's jit)
    t = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    return 1000 * (time.perf_counter() - t) / steps


def main(repeats: int, steps: int) -> None:
    from sb3_contrib import TQC

    makers = {"sb3 TQC": lambda: TQC("MultiInputPolicy", env(), seed=0, device="cpu", **KW)}
    try:
        from sbx import TQC as SbxTQC

        makers["sbx TQC"] = lambda: SbxTQC("MultiInputPolicy", env(), seed=0, **KW)
    except ImportError:
        print("sbx-rl is not installed: SBX skipped")
    from policies.agents import build_agent

    def recurrent() -> object:
        net = {"net_arch": [256, 256], "lstm_hidden_size": 128}
        settings = {"batch_size": 32, "learning_starts": 300, "train_freq": 1, "buffer_size": 100_000,
                    "her": {"n_sampled_goal": 4}, "policy_kwargs": net}  # fmt: skip
        return build_agent("recurrent_sac_her", env(), settings, seed=0, device="cpu")

    makers["recurrent_sac_her (32 sequences of 30 steps)"] = recurrent
    results = {name: [per_step_ms(make(), steps) for _ in range(repeats)] for name, make in makers.items()}
    base = statistics.median(results["sb3 TQC"])
    print(f"{'agent':48s} {'ms per env step (median)':>26s} {'vs sb3 TQC':>11s}   repeats")
    for name, values in results.items():
        med = statistics.median(values)
        print(f"{name:48s} {med:26.2f} {med / base:11.2f}   {[round(v, 2) for v in values]}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3, int(sys.argv[2]) if len(sys.argv) > 2 else 1000)
