"""Tuned default hyperparameters per agent and task (data, not code scattered in the trainer).

Goal-conditioned defaults follow rl-baselines3-zoo's `hyperparams/tqc.yml` for panda-gym (ANCHORS.md): Reach
solves in 20k steps with a small network and one critic; Push and PickAndPlace need the large network, batch 2048
and tau 0.05 (users who tried panda-gym without them could not reproduce the results).
"""

from __future__ import annotations

from typing import Any

#: Agent name -> task name -> keyword arguments for the SB3 algorithm (policy_kwargs included) plus our own
#: keys: `total_steps` (the default budget), `her` (HER settings for goal-conditioned agents), `normalize`
#: (running observation normalisation, saved with checkpoints and the run; the zoo normalizes Reach).
DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "tqc_her": {
        "reach": {
            "total_steps": 20_000,
            "batch_size": 256,
            "gamma": 0.95,
            "learning_rate": 1e-3,
            "buffer_size": 1_000_000,
            "learning_starts": 1000,
            "train_freq": 1,  # one update per env step (SB3's default; --set these to trade samples for compute)
            "gradient_steps": 1,
            "action_noise_std": 0.0,  # noise added to the actions while collecting (0: SAC's own only)
            "action_noise_type": "normal",  # or "ou": temporally correlated (Ornstein-Uhlenbeck, theta 0.15)
            "policy_kwargs": {"net_arch": [64, 64], "n_critics": 1},
            "her": {"n_sampled_goal": 4, "goal_selection_strategy": "future"},
            "normalize": False,  # the zoo normalizes Reach; BENCHMARKS.md's Reach results were measured without
        },
        "push": {
            "total_steps": 500_000,
            "batch_size": 2048,
            "gamma": 0.95,
            "learning_rate": 1e-3,
            "tau": 0.05,
            "buffer_size": 1_000_000,
            "learning_starts": 1000,
            "train_freq": 1,  # one update per env step (SB3's default; --set these to trade samples for compute)
            "gradient_steps": 1,
            "action_noise_std": 0.0,  # noise added to the actions while collecting (0: SAC's own only)
            "action_noise_type": "normal",  # or "ou": temporally correlated (Ornstein-Uhlenbeck, theta 0.15)
            "policy_kwargs": {"net_arch": [512, 512, 512], "n_critics": 2},
            "her": {"n_sampled_goal": 4, "goal_selection_strategy": "future"},
            "normalize": False,
        },
    },
    "ppo": {
        task: {
            "total_steps": steps,
            "n_steps": 512,
            "batch_size": 128,
            "gamma": 0.98,
            "learning_rate": 3e-4,
            "ent_coef": 0.0,
            "normalize": True,
            "policy_kwargs": {"net_arch": [256, 256]},
        }
        for task, steps in (("reach", 200_000), ("push", 1_000_000), ("pick_and_place", 2_000_000))
    },
}


# RecurrentPPO: PPO's settings with an LSTM (128 units, one layer) between the features and the heads.
DEFAULTS["recurrent_ppo"] = {
    task: {**v, "policy_kwargs": {**v["policy_kwargs"], "lstm_hidden_size": 128, "n_lstm_layers": 1}}
    for task, v in DEFAULTS["ppo"].items()
}
# PickAndPlace: Push's settings with twice the budget (the zoo trains both for 1M steps).
DEFAULTS["tqc_her"]["pick_and_place"] = {**DEFAULTS["tqc_her"]["push"], "total_steps": 1_000_000}
# SAC + HER: the same settings without TQC's critic count (SAC always has two Q networks).
DEFAULTS["sac_her"] = {
    task: {**v, "policy_kwargs": {k: w for k, w in v["policy_kwargs"].items() if k != "n_critics"}}
    for task, v in DEFAULTS["tqc_her"].items()
}

# Recurrent SAC + HER (policies.recurrent_sac_her): Push's two-core exploration (random steps, then OU noise) and
# update rate; batches of 32 sequences of 10 burn-in + 20 training steps (640 transitions through the loss).
DEFAULTS["recurrent_sac_her"] = {
    task: {
        "total_steps": steps,
        "batch_size": 32,
        "gamma": 0.95,
        "learning_rate": 1e-3,
        "tau": 0.05,
        "buffer_size": 1_000_000,
        "learning_starts": 10_000 if task != "reach" else 1000,
        "train_freq": 4,
        "gradient_steps": 1,
        "burn_in": 10,
        "train_window": 20,
        "action_noise_std": 0.3 if task != "reach" else 0.0,
        "action_noise_type": "ou",
        "policy_kwargs": {"net_arch": [256, 256], "lstm_hidden_size": 128},
        "her": {"n_sampled_goal": 4, "goal_selection_strategy": "future"},
        "normalize": task != "reach",
    }
    for task, steps in (("reach", 20_000), ("push", 500_000), ("pick_and_place", 1_000_000))
}


def defaults(agent: str, task: str) -> dict[str, Any]:
    """A fresh copy of the tuned settings of `agent` on `task` (clear errors for unknown names)."""
    import copy

    if agent not in DEFAULTS:
        raise KeyError(f"unknown agent {agent!r}; agents: {sorted(DEFAULTS)}")
    per_task = DEFAULTS[agent]
    if task not in per_task:
        raise KeyError(f"agent {agent!r} has no settings for task {task!r}; tasks: {sorted(per_task)}")
    return copy.deepcopy(per_task[task])
