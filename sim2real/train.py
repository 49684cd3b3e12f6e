"""`sim2real train`: one experiment, read top to bottom: config -> envs -> agent -> learn with evaluation and
checkpoints -> results folder (resolved config, evaluations, learning curve, rollout GIF, randomization state)."""

from __future__ import annotations

import csv
import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim2real.artifacts import write_json

#: Task name -> gymnasium id.
TASKS = {"reach": "Sim2Real/Reach-v0", "push": "Sim2Real/Push-v0", "pick_and_place": "Sim2Real/PickAndPlace-v0"}
RANDOMIZERS = ("none", "uniform", "adr", "active")
CONFIG_SCHEMA_VERSION = 1
#: Observation normalisation divides by sqrt(var + NORM_EPSILON): a std floor of 0.1 as in HER's DDPG, so a field
#: that barely varies (a resting object's velocity) is not blown up to the clip bound when it finally moves.
NORM_EPSILON = 1e-2


@dataclass(frozen=True)
class TrainConfig:
    """One training experiment. Every field has a default that works; a user who names only the task gets the
    tuned agent for it."""

    task: str = "reach"
    """reach | push | pick_and_place."""
    agent: str = "tqc_her"
    """tqc_her | sac_her | ppo | recurrent_ppo (policies.agents)."""
    backend: str = "mujoco"
    """Engine the policy trains in: mujoco | pybullet."""
    control: str = "ee"
    """Action space: ee (end-effector deltas) | joint (joint-target deltas)."""
    obs_mode: str = "state"
    """state | pixels | both."""
    reward: str = "auto"
    """sparse | dense | auto: sparse for HER agents (HER relabels goals), dense (minus the distance) for PPO."""
    randomization: str = ""
    """A preset name (dynamics, object_dynamics, visual) or a randomization YAML path; empty: none."""
    randomizer: str = "uniform"
    """How the space is sampled: uniform | adr | active | none."""
    randomizer_settings: dict[str, Any] = field(default_factory=dict)
    """ADRConfig / ActiveDRConfig fields for the adr and active randomizers (e.g. buffer_size, step_fraction)."""
    her_strategy: str = "future"
    """HER goal selection for goal-conditioned agents: future | final | episode."""
    seed: int = 0
    """Seed of the envs, the agent and the sampler."""
    steps: int | None = None
    """Env steps to train; None: the agent's tuned budget for the task (policies.hyperparams)."""
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
    """Torch device: auto | cpu | cuda."""
    settings: dict[str, Any] = field(default_factory=dict)
    """Overrides of the agent's tuned settings (policies.hyperparams keys only; unknown keys are errors)."""
    gif: bool = True
    """Write a short rollout GIF of the final policy to the results folder."""

    def run_dir(self) -> Path:
        return Path(self.out or f"runs/{self.task}-{self.agent}-{self.randomizer_name()}-s{self.seed}")

    def randomizer_name(self) -> str:
        return "none" if not self.randomization or self.randomizer == "none" else self.randomizer


class ConfigError(ValueError):
    """A training config that cannot run; the message names the field."""


def config_from_dict(data: dict[str, Any], source: str = "<config>") -> TrainConfig:
    """A TrainConfig from plain data (a resolved config.json, a YAML experiment); unknown keys are errors."""
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    data = {k: v for k, v in data.items() if k != "schema_version"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown config key(s) {unknown}; known: {sorted(known)}")
    return TrainConfig(**data)


def resolve(cfg: TrainConfig) -> tuple[TrainConfig, dict[str, Any]]:
    """Check every field before anything runs; returns the config with the budget filled in and the agent's
    settings (tuned defaults with the overrides applied)."""
    from policies.agents import AGENTS, HER_STRATEGIES
    from policies.hyperparams import defaults

    def choice(name: str, value: object, allowed: Any) -> None:
        if value not in allowed:
            raise ConfigError(f"{name} must be one of {sorted(allowed)}, got {value!r}")

    choice("task", cfg.task, TASKS)
    choice("agent", cfg.agent, AGENTS)
    choice("backend", cfg.backend, ("mujoco", "pybullet"))
    choice("control", cfg.control, ("ee", "joint"))
    choice("obs_mode", cfg.obs_mode, ("state", "pixels", "both"))
    choice("reward", cfg.reward, ("auto", "sparse", "dense"))
    choice("randomizer", cfg.randomizer, RANDOMIZERS)
    choice("her_strategy", cfg.her_strategy, HER_STRATEGIES)
    if cfg.steps is not None and (not isinstance(cfg.steps, int) or cfg.steps <= 0):
        raise ConfigError(
            f"steps must be a positive number of env steps, got {cfg.steps!r} (a budget of 0 trains nothing)"
        )
    for name in ("eval_every_steps", "checkpoint_every_steps"):
        if getattr(cfg, name) < 0:
            raise ConfigError(f"{name} must be >= 0, got {getattr(cfg, name)}")
    if cfg.subproc and cfg.randomizer_name() in ("adr", "active"):
        raise ConfigError(f"subproc: {cfg.randomizer} keeps one learning state for all envs; use in-process envs")
    if cfg.n_envs < 1 or cfg.eval_episodes < 1:
        raise ConfigError(f"n_envs and eval_episodes must be >= 1, got {cfg.n_envs} and {cfg.eval_episodes}")
    if cfg.randomizer in ("adr", "active") and not cfg.randomization:
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
    settings = defaults(cfg.agent, cfg.task)
    for key, value in cfg.settings.items():
        if key not in settings:
            raise ConfigError(f"settings: unknown key {key!r} for {cfg.agent}; known: {sorted(settings)}")
        settings[key] = value
    if "her" in settings:
        settings["her"] = {**settings["her"], "goal_selection_strategy": cfg.her_strategy}
    steps = cfg.steps if cfg.steps is not None else int(settings["total_steps"])
    if cfg.obs_mode != "state" and "buffer_size" in settings:
        # a replay buffer of images: observation and next observation, uint8, per camera
        size = int(settings["buffer_size"]) * 2 * 3 * 84 * 84
        if size > 8 * 1024**3:
            raise ConfigError(
                f"obs_mode={cfg.obs_mode!r} with buffer_size {settings['buffer_size']}: the replay buffer would hold "
                f"{size / 1024**3:.0f} GB of 84x84 images; pass e.g. --set buffer_size=100000"
            )
    if cfg.randomization:
        from randomization import space_from

        space_from(cfg.randomization)  # parse errors now, before any env is built
    reward = cfg.reward if cfg.reward != "auto" else ("sparse" if AGENTS[cfg.agent].her else "dense")
    return dataclasses.replace(cfg, steps=steps, reward=reward), settings


# -- envs ----------------------------------------------------------------------------------------------------
def make_sampler(cfg: TrainConfig, seed_offset: int = 0) -> Any:
    """The randomization sampler for this run (None without randomization), bound to the task's names."""
    if not cfg.randomization or cfg.randomizer == "none":
        return None
    import gymnasium as gym

    import sim  # noqa: F401
    from randomization import make_sampler as build
    from randomization import space_from

    probe = gym.make(TASKS[cfg.task], backend=cfg.backend)
    space = space_from(cfg.randomization).expand(probe.unwrapped.concrete_property_names)  # type: ignore[attr-defined]
    probe.close()
    return build(cfg.randomizer, space, np.random.default_rng([cfg.seed, seed_offset]), **cfg.randomizer_settings)


def env_kwargs(cfg: TrainConfig, sampler: Any) -> dict[str, Any]:
    kw: dict[str, Any] = {"backend": cfg.backend, "control": cfg.control, "obs_mode": cfg.obs_mode}
    if cfg.reward != "auto":
        kw["reward_type"] = cfg.reward
    if sampler is not None:
        kw["randomization"] = sampler
    return kw


def make_train_env(cfg: TrainConfig, sampler: Any) -> Any:
    """n_envs copies of the task with episode statistics: in one DummyVecEnv sharing `sampler`, or (subproc) in
    worker processes that each build their own sampler from the seed and their rank."""
    import gymnasium as gym
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    def factory(rank: int) -> Any:
        def make() -> Any:
            import sim  # noqa: F401  (registers the ids, also in a worker process)

            own = make_sampler(cfg, seed_offset=2 + rank) if cfg.subproc else sampler
            env = Monitor(gym.make(TASKS[cfg.task], **env_kwargs(cfg, own)), info_keywords=("is_success",))
            env.reset(seed=cfg.seed + rank)
            return env

        return make

    factories = [factory(i) for i in range(cfg.n_envs)]
    vec = SubprocVecEnv(factories) if cfg.subproc and cfg.n_envs > 1 else DummyVecEnv(factories)
    vec.seed(cfg.seed)
    return vec


# -- evaluation ------------------------------------------------------------------------------------------------
def evaluate(
    model: Any, env: Any, episodes: int, nominal: bool, seed: int, recurrent: bool, obs_fn: Any = None
) -> dict[str, float]:
    """Deterministic episodes of `model` on a single gym env; nominal=True runs at the space's nominal values."""
    from sim2real.train_report import run_episode

    successes, returns, lengths = [], [], []
    for ep in range(episodes):
        options = {"nominal": True} if nominal and getattr(env.unwrapped, "randomizer", None) else None
        steps = list(run_episode(model, env, recurrent, seed + ep, options, obs_fn))
        successes.append(float(steps[-1][2].get("is_success", False)))
        returns.append(sum(r for _, r, _ in steps))
        lengths.append(len(steps) - 1)
    return {"success": float(np.mean(successes)), "return": float(np.mean(returns)), "length": float(np.mean(lengths))}


# -- the run ---------------------------------------------------------------------------------------------------
def train(cfg: TrainConfig, resume: bool = False, progress: bool = True) -> Path:
    """Train as configured (or continue the run in cfg's folder from its last checkpoint); returns the run dir."""
    from stable_baselines3.common.callbacks import BaseCallback

    from policies.agents import agent_spec, build_agent, load_agent
    from sim2real import checkpoints

    cfg, settings = resolve(cfg)
    total_steps = int(cfg.steps or 0)  # resolve() filled it in
    run = cfg.run_dir()
    ckpt = None
    if resume:
        saved = json.loads((run / "config.json").read_text()) if (run / "config.json").is_file() else None
        if saved is None:
            raise ConfigError(f"--resume: {run} holds no config.json; nothing to resume")
        for key in ("task", "agent", "backend", "control", "obs_mode", "reward", "randomization", "randomizer"):
            if saved.get(key) != getattr(cfg, key):
                raise ConfigError(
                    f"--resume: {run} is a run with {key}={saved.get(key)!r}, not {getattr(cfg, key)!r}; "
                    "resume it with its own settings or pick another --out"
                )
        ckpt, warnings = checkpoints.load_latest(run)
        for w in warnings:
            print(f"warning: skipped a checkpoint that does not verify: {w}")
    elif (run / "checkpoints").exists():
        raise ConfigError(f"{run} already holds a run; pass --resume to continue it or choose another --out")
    run.mkdir(parents=True, exist_ok=True)
    write_json(run / "config.json", {"schema_version": CONFIG_SCHEMA_VERSION, **dataclasses.asdict(cfg)})
    write_json(run / "settings.json", settings)

    spec = agent_spec(cfg.agent)
    sampler = make_sampler(cfg)
    if ckpt is not None and sampler is not None and ckpt.file(checkpoints.RANDOMIZATION):
        sampler.load_state_dict(json.loads(ckpt.file(checkpoints.RANDOMIZATION).read_text()))  # type: ignore[union-attr]
    env = make_train_env(cfg, sampler)
    agent_settings = {k: v for k, v in settings.items() if k not in ("total_steps", "normalize")}
    vecnorm = None
    if settings.get("normalize"):  # running mean/std of every observation key; the statistics travel with the model
        from stable_baselines3.common.vec_env import VecNormalize

        saved_norm = ckpt.file(checkpoints.VECNORM) if ckpt is not None else None
        if saved_norm is not None:
            vecnorm = VecNormalize.load(str(saved_norm), env)
        else:
            keys = [k for k in env.observation_space.spaces if not k.startswith("image_")]  # images stay uint8
            vecnorm = VecNormalize(
                env,
                norm_obs=True,
                norm_obs_keys=keys,
                norm_reward=False,
                clip_obs=10.0,
                gamma=settings["gamma"],
                epsilon=NORM_EPSILON,
            )
        env = vecnorm
    obs_fn = None if vecnorm is None else vecnorm.normalize_obs
    tb = str(run / "tensorboard")
    if ckpt is None:
        model = build_agent(cfg.agent, env, agent_settings, cfg.seed, tensorboard_log=tb, device=cfg.device)
    else:
        model = load_agent(cfg.agent, str(ckpt.file(checkpoints.MODEL)), env, device=cfg.device)
        model.tensorboard_log = tb
        if ckpt.file(checkpoints.REPLAY) is not None:
            model.load_replay_buffer(str(ckpt.file(checkpoints.REPLAY)))
        elif hasattr(model, "learning_starts"):  # an off-policy agent resumed without its replay buffer
            print(
                "warning: this checkpoint holds no replay buffer (train with --save-replay-buffer for an exact "
                "resume): the buffer refills before updates continue"
            )
            model.learning_starts = ckpt.step + max(int(settings.get("learning_starts", 100)), 100)
        checkpoints.restore_rng(ckpt)
    done_steps = ckpt.step if ckpt else 0
    # training wall-clock summed over the segments of a resumed run (a killed segment counts to its last checkpoint)
    wall_before = float(ckpt.manifest.get("wall_s", 0.0)) if ckpt else 0.0

    import gymnasium as gym

    # Randomized evaluation draws uniformly over the space's full ranges whatever the training sampler (ADR's
    # current ranges or Active DR's particles would grade each run on its own curriculum): one yardstick for all.
    eval_cfg = dataclasses.replace(cfg, randomizer="uniform", randomizer_settings={})
    eval_env = gym.make(TASKS[cfg.task], render_mode="rgb_array", **env_kwargs(cfg, make_sampler(eval_cfg, 1)))
    evals_path = run / "evaluations.csv"
    evals: list[dict[str, float]] = _read_evals(evals_path) if resume else []

    def run_eval(step: int) -> dict[str, float]:
        row: dict[str, float] = {"step": float(step)}
        for kind in ("nominal", "randomized") if cfg.randomizer_name() != "none" else ("nominal",):
            r = evaluate(model, eval_env, cfg.eval_episodes, kind == "nominal", 10_000, spec.recurrent, obs_fn)
            row.update({f"{kind}_{k}": v for k, v in r.items()})
        evals.append(row)
        _write_evals(evals_path, evals)
        if sampler is not None and hasattr(sampler, "ranges"):  # ADR's ranges as they grow
            ranges = {n: [np.ravel(lo).tolist(), np.ravel(hi).tolist()] for n, (lo, hi) in sampler.ranges().items()}
            with open(run / "randomization_history.jsonl", "a") as f:
                f.write(json.dumps({"step": step, "entropy": sampler.entropy(), "ranges": ranges}) + "\n")
        return row

    class Hooks(BaseCallback):
        """Evaluation, checkpoints, randomization logging and the progress bar, on env-step counts."""

        def __init__(self) -> None:
            super().__init__()
            self.bar: Any = None
            self.recent: list[float] = []
            self.next_eval = (
                (done_steps // cfg.eval_every_steps + 1) * cfg.eval_every_steps if cfg.eval_every_steps else 0
            )
            every = cfg.checkpoint_every_steps
            self.next_ckpt = (done_steps // every + 1) * every if every else 0

        def _on_training_start(self) -> None:
            if progress:
                from tqdm.auto import tqdm

                self.bar = tqdm(total=total_steps, initial=done_steps, unit="step", dynamic_ncols=True)

        def _on_step(self) -> bool:
            for info in self.locals.get("infos", []):
                if "episode" in info:
                    self.recent = (self.recent + [float(info.get("is_success", 0.0))])[-50:]
            step = self.num_timesteps
            if self.bar is not None:
                self.bar.n = min(step, total_steps)
                post = {"success": f"{np.mean(self.recent):.2f}" if self.recent else "-"}
                if evals:
                    post["eval"] = f"{evals[-1].get('nominal_success', 0):.2f}"
                self.bar.set_postfix(post, refresh=False)
                self.bar.update(0)
            if self.next_eval and step >= self.next_eval:
                row = run_eval(step)
                for k, v in row.items():
                    if k != "step":
                        self.logger.record(f"eval/{k}", v)
                self.next_eval += cfg.eval_every_steps
            if self.next_ckpt and step >= self.next_ckpt:
                save(step)
                self.next_ckpt += cfg.checkpoint_every_steps
            if sampler is not None and step % 1000 < cfg.n_envs:
                _log_randomization(self.logger, sampler)
            return True

        def _on_training_end(self) -> None:
            if self.bar is not None:
                self.bar.close()

    def save(step: int) -> Path:
        state = sampler.state_dict() if sampler is not None else None
        extra = {
            "task": cfg.task,
            "agent": cfg.agent,
            "seed": cfg.seed,
            "wall_s": wall_before + time.perf_counter() - t0,
        }
        return checkpoints.save_checkpoint(run, step, model, state, vecnorm, cfg.save_replay_buffer, extra)

    t0 = time.perf_counter()
    remaining = total_steps - done_steps
    if remaining > 0:
        model.learn(total_timesteps=remaining, callback=Hooks(), reset_num_timesteps=ckpt is None, tb_log_name="run")
    wall_s = wall_before + time.perf_counter() - t0
    final_step = int(model.num_timesteps)
    save(final_step)
    model.save(run / "model.zip")
    final = run_eval(final_step) if not evals or evals[-1]["step"] != final_step else evals[-1]
    if sampler is not None:
        write_json(run / "randomization_state.json", sampler.state_dict())
    if vecnorm is not None:  # plain JSON for export (no pickle needed to read the normaliser)
        vecnorm.save(str(run / "vecnormalize.pkl"))
        write_json(run / "obs_normalization.json", _normalization_json(vecnorm))
    summary = {"steps": final_step, "wall_s": wall_s, "final": final, "device": str(model.device)}
    write_json(run / "summary.json", summary)
    from sim2real.train_report import gif, learning_curve

    learning_curve(run / "learning_curve.png", evals, title=f"{cfg.task} / {cfg.agent} / {cfg.randomizer_name()}")
    if cfg.gif:
        gif(run / "rollout.gif", model, eval_env, spec.recurrent, seed=cfg.seed, obs_fn=obs_fn)
    eval_env.close()
    env.close()
    return run


def _normalization_json(vecnorm: Any) -> dict[str, Any]:
    """The observation normaliser as data: per key mean and variance; normalised = clip((x - mean) /
    sqrt(var + epsilon), -clip_obs, clip_obs)."""
    rms = vecnorm.obs_rms
    keys = rms.keys() if isinstance(rms, dict) else [None]
    stats = {str(k): {"mean": (rms[k] if k is not None else rms).mean.tolist(),
                      "var": (rms[k] if k is not None else rms).var.tolist()} for k in keys}  # fmt: skip
    return {"schema_version": 1, "epsilon": vecnorm.epsilon, "clip_obs": vecnorm.clip_obs, "keys": stats}


def _log_randomization(logger: Any, sampler: Any) -> None:
    """ADR ranges and entropy (or Active DR particle means) to TensorBoard."""
    if hasattr(sampler, "ranges"):
        logger.record("randomization/entropy", sampler.entropy())
        for name, (lo, hi) in sampler.ranges().items():
            logger.record(f"randomization/{name}/low", float(np.ravel(lo)[0]))
            logger.record(f"randomization/{name}/high", float(np.ravel(hi)[0]))
    elif hasattr(sampler, "particles"):
        means = sampler.particles().mean(axis=0)
        for name, m in zip(sampler.component_names(), means):
            logger.record(f"randomization/particles/{name}", float(m))


def _write_evals(path: Path, rows: list[dict[str, float]]) -> None:
    keys = sorted({k for r in rows for k in r}, key=lambda k: (k != "step", k))
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)


def _read_evals(path: Path) -> list[dict[str, float]]:
    if not path.is_file():
        return []
    with open(path) as f:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


def evaluate_run(
    run: Path, episodes: int = 50, backend: str | None = None, randomization: str | None = None, seed: int = 20_000
) -> dict[str, Any]:
    """Evaluate a finished run's final model on nominal and randomized scenes, optionally on another engine
    (sim-to-sim transfer) or under another randomization space; returns and records the figures."""
    import gymnasium as gym

    from policies.agents import agent_spec, load_agent

    cfg_path = run / "config.json"
    if not cfg_path.is_file() or not (run / "model.zip").is_file():
        raise ConfigError(f"{run} is not a finished run (needs config.json and model.zip)")
    cfg = config_from_dict(json.loads(cfg_path.read_text()), source=str(cfg_path))
    changes: dict[str, Any] = {"randomizer": "uniform", "randomizer_settings": {}}
    if backend is not None:
        changes["backend"] = backend
    if randomization is not None:
        changes["randomization"] = randomization
    cfg = dataclasses.replace(cfg, **changes)
    resolve(cfg)  # the same checks as training: names, presets, backends
    spec = agent_spec(cfg.agent)
    env = gym.make(TASKS[cfg.task], **env_kwargs(cfg, make_sampler(cfg, 2)))
    model = load_agent(cfg.agent, str(run / "model.zip"), env=None, device="cpu") if not spec.her else None
    if model is None:  # HER models need an env of the training kind to load their replay buffer class
        model = load_agent(cfg.agent, str(run / "model.zip"), make_train_env(cfg, None), device="cpu")
    obs_fn = None
    if (run / "vecnormalize.pkl").is_file():
        from stable_baselines3.common.vec_env import VecNormalize

        norm = VecNormalize.load(str(run / "vecnormalize.pkl"), make_train_env(cfg, None))
        norm.training = False
        obs_fn = norm.normalize_obs
    result: dict[str, Any] = {"run": str(run), "backend": cfg.backend, "randomization": cfg.randomization}
    kinds = ("nominal", "randomized") if cfg.randomizer_name() != "none" else ("nominal",)
    for kind in kinds:
        result[kind] = evaluate(model, env, episodes, kind == "nominal", seed, spec.recurrent, obs_fn)
    env.close()
    name = f"evaluation-{cfg.backend}-{Path(cfg.randomization).stem if cfg.randomization else 'none'}.json"
    write_json(run / name, result)
    return result
