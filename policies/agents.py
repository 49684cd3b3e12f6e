"""The agents `sim2real train` offers, on stable-baselines3 and sb3-contrib: a plain registry of builders.

Goal-conditioned off-policy agents (TQC, SAC) learn from HER replay (`future`, `final` or `episode` goal
strategy) on the envs' dict observations; PPO and RecurrentPPO (an LSTM policy, for randomized dynamics that
memory can infer) learn on-policy. Policies never see a simulator: the pipeline hands them a VecEnv.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: HER goal selection strategies SB3 implements.
HER_STRATEGIES = ("future", "final", "episode")
#: The libraries an agent can run on: stable-baselines3 / sb3-contrib (torch), or SBX (its JAX port, the `sbx`
#: extra) for the off-policy HER agents.
FRAMEWORKS = ("sb3", "sbx")


@dataclass(frozen=True)
class AgentSpec:
    """How to build one agent: its SB3 class (module, name), policy name, and whether it uses HER replay."""

    module: str
    cls: str
    policy: str
    her: bool
    recurrent: bool = False
    doc: str = ""
    sbx_cls: str = ""
    """Its class in policies.sbx_agents when it also runs on SBX (`--framework sbx`), else empty."""

    def algorithm(self, framework: str = "sb3") -> Any:
        import importlib

        if framework == "sb3":
            return getattr(importlib.import_module(self.module), self.cls)
        if framework != "sbx":
            raise ValueError(f"framework must be one of {list(FRAMEWORKS)}, got {framework!r}")
        if not self.sbx_cls:
            raise ValueError(f"{self.doc or self.cls} runs on sb3 only; --framework sbx is for {sorted(SBX_AGENTS)}")
        try:
            module = importlib.import_module("policies.sbx_agents")
        except ImportError as e:
            raise ImportError(f"framework sbx needs SBX and JAX ({e.name} is missing): pip install -e '.[sbx]'") from e
        return getattr(module, self.sbx_cls)


AGENTS: dict[str, AgentSpec] = {
    # sb3-contrib's TQC and SB3's SAC, with the optional behaviour-cloning step on demonstrations (bc_weight)
    "tqc_her": AgentSpec(
        "policies.demo_learning", "TQC", "MultiInputPolicy", True, doc="TQC + HER (zoo's panda settings)", sbx_cls="TQC"
    ),
    "sac_her": AgentSpec("policies.demo_learning", "SAC", "MultiInputPolicy", True, doc="SAC + HER", sbx_cls="SAC"),
    "recurrent_sac_her": AgentSpec(
        "policies.recurrent_sac_her",
        "RecurrentSACHER",
        "MultiInputLstmPolicy",
        True,
        True,
        doc="SAC + HER with LSTM actor and critics on R2D2 sequences",
    ),
    "ppo": AgentSpec("stable_baselines3", "PPO", "MultiInputPolicy", False, doc="feed-forward PPO"),
    "recurrent_ppo": AgentSpec(
        "sb3_contrib", "RecurrentPPO", "MultiInputLstmPolicy", False, True, doc="PPO with an LSTM policy"
    ),
}


#: The agents that also run on SBX.
SBX_AGENTS = tuple(name for name, spec in AGENTS.items() if spec.sbx_cls)


def agent_spec(name: str) -> AgentSpec:
    """The spec of a named agent (a clear error listing the names otherwise)."""
    if name not in AGENTS:
        raise KeyError(f"unknown agent {name!r}; agents: {sorted(AGENTS)}")
    return AGENTS[name]


#: Exploration noise kinds: independent Gaussian per step, or Ornstein-Uhlenbeck (temporally correlated).
ACTION_NOISE_TYPES = ("normal", "ou")
#: OU noise's mean reversion per env step: a correlation time of about 7 steps (its std is ~1.9x sigma).
OU_THETA = 0.15


def _action_noise(name: str, spec: AgentSpec, env: Any, std: float, kind: object) -> Any:
    """SB3 action noise for `action_noise_std` / `action_noise_type`, or None for std 0 (clear errors)."""
    if kind not in ACTION_NOISE_TYPES:
        raise ValueError(f"action_noise_type must be one of {list(ACTION_NOISE_TYPES)}, got {kind!r}")
    if std < 0 or not np.isfinite(std):
        raise ValueError(f"action_noise_std must be a finite number >= 0, got {std}")
    if std == 0:
        return None
    if not spec.her:
        raise ValueError(
            f"agent {name!r} explores through its own action distribution; action_noise_std is for tqc_her and sac_her"
        )
    from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise

    n = int(np.prod(env.action_space.shape))
    if kind == "ou":
        return OrnsteinUhlenbeckActionNoise(np.zeros(n), np.full(n, std), theta=OU_THETA, dt=1.0)
    return NormalActionNoise(np.zeros(n), np.full(n, std))


def build_agent(
    name: str,
    env: Any,
    settings: dict[str, Any],
    seed: int,
    tensorboard_log: str | None = None,
    device: str = "auto",
    verbose: int = 0,
    framework: str = "sb3",
) -> Any:
    """A new SB3 model for `env` (a VecEnv). `settings` are the algorithm's keyword arguments plus our own keys:
    `her` (HER replay settings, goal-conditioned agents only; policies.her_buffer.HerBuffer's `goal_relative_slice`
    and `demo_share` among them) and `total_steps` and `normalize` (the pipeline's:
    ignored here)."""
    spec = agent_spec(name)
    kwargs = {k: v for k, v in settings.items() if k not in ("total_steps", "normalize")}
    her = kwargs.pop("her", None)
    noise = _action_noise(
        name, spec, env, float(kwargs.pop("action_noise_std", 0.0)), kwargs.pop("action_noise_type", "normal")
    )
    if noise is not None:
        kwargs["action_noise"] = noise
    if spec.her:
        from policies.her_buffer import HerBuffer

        her = dict(her or {})
        if "demo_share" in kwargs:
            her["demo_share"] = kwargs.pop("demo_share")
        if her.get("n_steps", 1) > 1:  # n-step returns discount with the agent's gamma
            her["gamma"] = kwargs.get("gamma", 0.99)
        strategy = her.get("goal_selection_strategy", "future")
        if strategy not in HER_STRATEGIES:
            raise ValueError(f"HER goal_selection_strategy must be one of {list(HER_STRATEGIES)}, got {strategy!r}")
        kwargs["replay_buffer_class"] = HerBuffer  # SB3's, plus goal_relative_slice and demo_share when given
        kwargs["replay_buffer_kwargs"] = her
    elif her:
        raise ValueError(f"agent {name!r} is on-policy and takes no HER settings")
    algorithm = spec.algorithm(framework)
    if framework == "sbx":
        _check_sbx_settings(name, kwargs)
    return algorithm(
        spec.policy, env, seed=seed, tensorboard_log=tensorboard_log, device=device, verbose=verbose, **kwargs
    )


def _check_sbx_settings(name: str, kwargs: dict[str, Any]) -> None:
    """ValueError for what SBX's agents cannot do that SB3's can."""
    n_critics = (kwargs.get("policy_kwargs") or {}).get("n_critics", 2)
    if name == "tqc_her" and n_critics != 2:
        raise ValueError(f"SBX's TQC has two critics: set policy_kwargs.n_critics to 2 (got {n_critics})")


def load_agent(name: str, path: str, env: Any, device: str = "auto", framework: str = "sb3") -> Any:
    """A saved model (SB3 zip, optimizer state included; SBX's holds its JAX train states) bound to `env`."""
    return agent_spec(name).algorithm(framework).load(path, env=env, device=device)
