"""The training config: `TrainConfig` (one experiment, every field with a default that works), its parsing from
plain data, the checks that run before anything is built (names, types, ranges, every agent setting), and the
rules of `--resume` (only a larger budget may change)."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policies.agents import AGENTS, FRAMEWORKS, HER_STRATEGIES, SBX_AGENTS
from sim.env_spec import FIELDS as ENV_FIELDS
from sim.env_spec import EnvSpec, EnvSpecError

RANDOMIZERS = ("none", "uniform", "adr", "active")
CONFIG_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class TrainConfig:
    """One training experiment: the env it trains in (an EnvSpec) and how the agent learns there. Every field has a
    default that works; a user who names only the task gets the tuned agent for it. On disk and in YAML files the
    config is flat (`task: push`, `agent: ppo`, ...): to_dict() / config_from_dict()."""

    env: EnvSpec = field(default_factory=EnvSpec)
    """The env: task, backend, control, obs_mode, reward (auto: sparse for HER agents, which relabel goals, dense
    for PPO), randomization (sim.env_spec.EnvSpec)."""
    agent: str = "tqc_her"
    """The learning agent (policies.agents), with its tuned settings for the task (policies.hyperparams)."""
    framework: str = "sb3"
    """The library it runs on: sb3 (stable-baselines3 and sb3-contrib, torch) or sbx (their JAX port, cheaper
    updates on a CPU; tqc_her and sac_her; the `sbx` extra)."""
    randomizer: str = "uniform"
    """How the space is sampled: uniform | adr | active | none."""
    randomizer_settings: dict[str, Any] = field(default_factory=dict)
    """ADRConfig / ActiveDRConfig fields for the adr and active randomizers (e.g. buffer_size, step_fraction)."""
    her_strategy: str = "future"
    """HER goal selection for goal-conditioned agents: future | final | episode."""
    seed: int = 0
    """Seed of the envs, the agent and the sampler."""
    steps: int | None = None
    """Env steps to train, or 'auto' (null in a config file): the agent's tuned budget for the task."""
    n_envs: int = 1
    """Envs stepped together; in this process (one shared sampler: what ADR and Active DR need) unless subproc."""
    subproc: bool = False
    """Step the n_envs in worker processes (SubprocVecEnv; uniform DR or none: each worker draws on its own)."""
    eval_every_steps: int = 2000
    """Evaluate (nominal and randomized) every this many env steps; 0 disables periodic evaluation."""
    eval_episodes: int = 20
    """Episodes per evaluation and scene kind."""
    checkpoint_every_steps: int = 10_000
    """Write an atomic checkpoint every this many env steps; 0 only at the end."""
    save_replay_buffer: bool = False
    """Store the replay buffer in checkpoints (exact resume of off-policy agents; large)."""
    out: str = ""
    """Results folder; default runs/<task>-<agent>-<randomizer>-s<seed>."""
    device: str = "auto"
    """Torch device: auto (the GPU when there is one), cpu, cuda or cuda:N; a CUDA device torch cannot see is
    refused."""
    settings: dict[str, Any] = field(default_factory=dict)
    """Overrides of the agent's tuned settings (policies.hyperparams keys only; unknown keys are errors)."""
    gif: bool = True
    """Write a short rollout GIF of the final policy to the results folder."""
    demos: str = ""
    """A demonstration dataset (sim2real collect demos) for HER agents, relabelled like any episode: added to the
    replay buffer before training, or kept in a buffer of its own with settings demo_share (their share of every
    batch) and bc_weight (a Q-filtered behaviour-cloning step); empty: none."""

    def run_dir(self) -> Path:
        return Path(self.out or f"runs/{self.env.task}-{self.agent}-{self.randomizer_name()}-s{self.seed}")

    def randomizer_name(self) -> str:
        return "none" if not self.env.randomization or self.randomizer == "none" else self.randomizer

    def to_dict(self) -> dict[str, Any]:
        """The config as flat data (the env's fields beside the others), as config.json and YAML files hold it."""
        flat = dataclasses.asdict(self)
        return {**flat.pop("env"), **flat}

    def with_env(self, **changes: Any) -> TrainConfig:
        """A copy whose env has some fields changed (`cfg.with_env(backend="pybullet")`)."""
        return dataclasses.replace(self, env=self.env.replace(**changes))


#: The values each choice field of TrainConfig takes (checks and the command line use this one table).
TRAIN_CHOICES: dict[str, tuple[str, ...]] = {
    "agent": tuple(AGENTS),
    "framework": FRAMEWORKS,
    "randomizer": RANDOMIZERS,
    "her_strategy": HER_STRATEGIES,
}
#: Config keys of the flat form: the env's fields, then the training fields.
CONFIG_KEYS = (*ENV_FIELDS, *(f.name for f in dataclasses.fields(TrainConfig) if f.name != "env"))


class ConfigError(ValueError):
    """A training config that cannot run; the message names the field."""


def config_from_dict(data: dict[str, Any], source: str = "<config>") -> TrainConfig:
    """A TrainConfig from flat data (a resolved config.json, a YAML experiment, flags); unknown keys are errors."""
    data = {k: v for k, v in data.items() if k != "schema_version"}
    unknown = sorted(set(data) - set(CONFIG_KEYS))
    if unknown:
        raise ConfigError(f"{source}: unknown config key(s) {unknown}; known: {sorted(CONFIG_KEYS)}")
    env = EnvSpec(**{k: v for k, v in data.items() if k in ENV_FIELDS})
    return TrainConfig(env=env, **{k: v for k, v in data.items() if k not in ENV_FIELDS})


def train_config(**flat: Any) -> TrainConfig:
    """config_from_dict of keyword arguments: `train_config(task="push", agent="ppo", steps=1000)`."""
    return config_from_dict(flat, source="train_config()")


def resolve(cfg: TrainConfig) -> tuple[TrainConfig, dict[str, Any]]:
    """Check every field before anything runs; returns the config with the budget filled in and the agent's
    settings (tuned defaults with the overrides applied)."""
    from policies.agents import AGENTS
    from policies.hyperparams import defaults
    from policies.setting_checks import OPTIONAL, SettingError, check_settings

    def choice(name: str, value: object, allowed: Any) -> None:
        if value not in allowed:
            raise ConfigError(f"{name} must be one of {sorted(allowed)}, got {value!r}")

    check_field_types(cfg)
    try:
        cfg.env.check()
    except EnvSpecError as e:
        raise ConfigError(str(e)) from None
    for name, allowed in TRAIN_CHOICES.items():
        choice(name, getattr(cfg, name), allowed)
    if cfg.steps is not None and (not isinstance(cfg.steps, int) or cfg.steps <= 0):
        raise ConfigError(
            f"steps must be a positive number of env steps, got {cfg.steps!r} (a budget of 0 trains nothing)"
        )
    for name in ("eval_every_steps", "checkpoint_every_steps"):
        if getattr(cfg, name) < 0:
            raise ConfigError(f"{name} must be >= 0, got {getattr(cfg, name)}")
    if cfg.subproc and cfg.randomizer_name() in ("adr", "active"):
        raise ConfigError(f"subproc: {cfg.randomizer} keeps one learning state for all envs; use in-process envs")
    if cfg.seed < 0:
        raise ConfigError(f"seed must be >= 0 (numpy seeds are non-negative), got {cfg.seed}")
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", cfg.device):
        raise ConfigError(f"device must be auto, cpu, cuda, cuda:N or mps, got {cfg.device!r}")
    if cfg.n_envs < 1 or cfg.eval_episodes < 1:
        raise ConfigError(f"n_envs and eval_episodes must be >= 1, got {cfg.n_envs} and {cfg.eval_episodes}")
    if cfg.randomizer in ("adr", "active") and not cfg.env.randomization:
        raise ConfigError(f"randomizer {cfg.randomizer!r} needs a randomization space (preset or YAML)")
    if cfg.randomizer_settings:
        from randomization import ADRConfig
        from randomization.active import ActiveDRConfig

        known_cfg = {"adr": ADRConfig, "active": ActiveDRConfig}.get(cfg.randomizer)
        if known_cfg is None:
            raise ConfigError(f"randomizer_settings apply to adr and active only, not {cfg.randomizer!r}")
        try:
            known_cfg(**cfg.randomizer_settings)
        except TypeError as e:
            raise ConfigError(f"randomizer_settings: {e}") from None
    if cfg.framework == "sbx":
        check_sbx(cfg)
    if cfg.demos:
        from sim2real.demos_dataset import DemosError, check_demos_for

        if not AGENTS[cfg.agent].her or cfg.agent == "recurrent_sac_her":
            raise ConfigError(f"demos go into a HER replay buffer; agent {cfg.agent} has none (use tqc_her or sac_her)")
        try:
            check_demos_for(cfg.demos, cfg.env.task, cfg.env.control, cfg.env.obs_mode)
        except DemosError as e:
            raise ConfigError(str(e)) from None
    settings = defaults(cfg.agent, cfg.env.task)
    known = set(settings) | OPTIONAL[cfg.agent]
    for key, value in cfg.settings.items():
        if key not in known:
            raise ConfigError(f"settings: unknown key {key!r} for {cfg.agent}; known: {sorted(known)}")
        settings[key] = value
    if cfg.framework == "sbx" and cfg.agent == "tqc_her" and "policy_kwargs" not in cfg.settings:
        # SBX's TQC always has two critics (the tuned Reach settings have one: SB3 can)
        settings["policy_kwargs"] = {**settings["policy_kwargs"], "n_critics": 2}
    try:
        settings = check_settings(cfg.agent, settings)
    except SettingError as e:
        raise ConfigError(str(e)) from None
    n_critics = settings.get("policy_kwargs", {}).get("n_critics", 2)
    if cfg.framework == "sbx" and cfg.agent == "tqc_her" and n_critics != 2:
        raise ConfigError(f"settings.policy_kwargs.n_critics: SBX's TQC has two critics, got {n_critics}")
    if "her" in settings:
        settings["her"] = {**settings["her"], "goal_selection_strategy": cfg.her_strategy}
    if not cfg.demos and (settings.get("demo_share", 0) > 0 or settings.get("bc_weight", 0) > 0):
        which = "demo_share" if settings.get("demo_share", 0) > 0 else "bc_weight"
        raise ConfigError(f"settings.{which} learns from demonstrations: pass --demos DATASET (sim2real collect demos)")
    steps = cfg.steps if cfg.steps is not None else int(settings["total_steps"])
    if cfg.env.obs_mode != "state" and "buffer_size" in settings:
        # a replay buffer of images: observation and next observation, uint8, per camera
        size = int(settings["buffer_size"]) * 2 * 3 * 84 * 84
        if size > 8 * 1024**3:
            raise ConfigError(
                f"obs_mode={cfg.env.obs_mode!r} with buffer_size {settings['buffer_size']}: the replay buffer would "
                f"hold {size / 1024**3:.0f} GB of 84x84 images; pass e.g. --set buffer_size=100000"
            )
    if cfg.env.randomization:
        from randomization import space_from

        space_from(cfg.env.randomization)  # parse errors now, before any env is built
    reward = cfg.env.reward if cfg.env.reward != "auto" else ("sparse" if AGENTS[cfg.agent].her else "dense")
    return dataclasses.replace(cfg, steps=steps, env=cfg.env.replace(reward=reward)), settings


#: Python types a TrainConfig field's annotation allows (bool is not an int here: `seed: true` is a mistake).
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "bool": (bool,),
    "int | None": (int, type(None)),
    "float": (float, int),
    "tuple[float, ...]": (tuple, list, str),  # a YAML list, the command line's parsed tuple, or "a,b,c,..."
    "dict[str, Any]": (dict,),
}


def check_sbx(cfg: TrainConfig) -> None:
    """ConfigError unless `--framework sbx` can run this config here: an agent SBX has, SBX installed, a device JAX
    has."""
    if cfg.agent not in SBX_AGENTS:
        raise ConfigError(f"framework sbx runs {sorted(SBX_AGENTS)}; agent {cfg.agent} runs on sb3 only")
    try:
        import jax
        import sbx  # noqa: F401
    except ImportError as e:
        raise ConfigError(
            f"framework sbx needs SBX and JAX ({e.name} is not installed): pip install -e '.[sbx]'"
        ) from None
    if cfg.device.startswith("cuda") and jax.default_backend() != "gpu":
        raise ConfigError(
            f"device {cfg.device!r}: JAX {jax.__version__} sees no GPU here (backend {jax.default_backend()!r}); "
            "with --framework sbx use --device auto or cpu, or install jax[cuda12]"
        )
    if cfg.device == "mps":
        raise ConfigError("device 'mps': --framework sbx runs where JAX places it; use --device auto or cpu")


def check_field_types(cfg: TrainConfig) -> None:
    """ConfigError naming the first field whose value has the wrong type (a YAML `seed: "abc"`, `n_envs: 2.5`)."""
    fields = [(f, cfg.env) for f in dataclasses.fields(cfg.env)] + [
        (f, cfg) for f in dataclasses.fields(cfg) if f.name != "env"
    ]
    for f, owner in fields:
        value = getattr(owner, f.name)
        allowed = _FIELD_TYPES[str(f.type)]
        bad_bool = isinstance(value, bool) and bool not in allowed
        if bad_bool or not isinstance(value, allowed):
            kinds = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
            raise ConfigError(f"{f.name} must be {kinds}, got {value!r} ({type(value).__name__})")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{f.name} must be finite, got {value!r}")


def saved_config(run: Path) -> dict[str, Any] | None:
    """A run folder's config.json as data, or None when it has none (ConfigError when it is unreadable)."""
    path = run / "config.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except ValueError as e:
        raise ConfigError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must hold a JSON object")
    return data


def config_for_resume(run: Path, overrides: dict[str, Any], source: str = "command line") -> TrainConfig:
    """The config of the run in `run` with the values given again on the command line (`overrides`) on top, for
    `--resume`: the flags not given are the run's, not the defaults. train() then refuses any real change."""
    saved = saved_config(run)
    if saved is None:
        raise ConfigError(f"--resume: {run} holds no config.json; nothing to resume")
    data = {k: v for k, v in saved.items() if k != "schema_version"}
    settings = dict(data.get("settings") or {})
    settings.update(overrides.get("settings") or {})
    data.update({k: v for k, v in overrides.items() if k != "settings"})
    data["settings"] = settings
    return config_from_dict(data, source=source)


def resume_changes(saved: dict[str, Any], cfg: TrainConfig) -> list[str]:
    """Every field of a resolved `cfg` that differs from the run's saved config, except steps and out (the
    folder is the run: out only names it), as `field=new (the run has old)` lines."""
    now = json.loads(json.dumps(cfg.to_dict()))  # tuples as lists, as the saved JSON has them
    # a field newer than the run's config.json: the run had its default (framework sb3, obs_layout 1)
    before = {**json.loads(json.dumps(TrainConfig().to_dict())), **saved}
    return [
        f"{k}={v!r} (the run has {before.get(k)!r})"
        for k, v in now.items()
        if k not in ("steps", "out") and before.get(k) != v
    ]


def check_episodes(episodes: object) -> int:
    """ConfigError unless `episodes` is a positive whole number (an evaluation of 0 episodes has no success rate)."""
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ConfigError(f"episodes must be a positive number of episodes, got {episodes!r}")
    return episodes


def check_device(device: str) -> None:
    """ConfigError for a CUDA device torch cannot see (no silent fallback: the run records the device it used)."""
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {device!r}: torch {torch.__version__} sees no CUDA device on this machine; "
                "use --device cpu (or auto, which takes the GPU when there is one)"
            )
