"""`sim2real train`: one experiment, read top to bottom: config -> envs -> agent -> learn with evaluation and
checkpoints -> results folder (resolved config, evaluations, learning curve, rollout GIF, randomization state)."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sim import env_spec
from sim.env_spec import TASKS  # noqa: F401  (re-exported)
from sim2real.artifacts import write_atomic, write_json
from sim2real.stop_signals import StopOnSignal, TrainingInterrupted
from sim2real.train_config import (  # noqa: F401  (re-exported: the pipeline's config names live here too)
    CONFIG_SCHEMA_VERSION,
    RANDOMIZERS,
    ConfigError,
    TrainConfig,
    check_device,
    check_episodes,
    config_for_resume,
    config_from_dict,
    resolve,
    resume_changes,
    saved_config,
    train_config,
)

if TYPE_CHECKING:
    from sim2real.checkpoints import Checkpoint
    from sim2real.run_lock import RunLock

#: Observation normalisation divides by sqrt(var + NORM_EPSILON): a std floor of 0.1 as in HER's DDPG, so a field
#: that barely varies (a resting object's velocity) is not blown up to the clip bound when it finally moves.
NORM_EPSILON = 1e-2


# -- envs ----------------------------------------------------------------------------------------------------
def make_sampler(cfg: TrainConfig, seed_offset: int = 0) -> Any:
    """The run's randomization sampler (cfg.randomizer over the env's space, seeded by [seed, seed_offset]; None
    without randomization), bound to the task's property names."""
    rng = np.random.default_rng([cfg.seed, seed_offset])
    return env_spec.make_sampler(cfg.env, cfg.randomizer, rng, **cfg.randomizer_settings)


def make_train_env(cfg: TrainConfig, sampler: Any) -> Any:
    """n_envs copies of the task with episode statistics: in one DummyVecEnv sharing `sampler`, or (subproc) in
    worker processes that each build their own sampler from the seed and their rank."""
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    workers = cfg.subproc and cfg.n_envs > 1

    def factory(rank: int) -> Any:
        def make() -> Any:
            if workers:  # Ctrl-C reaches the whole process group: the trainer stops the workers, not the signal
                signal.signal(signal.SIGINT, signal.SIG_IGN)
            own = make_sampler(cfg, seed_offset=2 + rank) if cfg.subproc else sampler
            env = Monitor(env_spec.make_env(cfg.env, own), info_keywords=("is_success",))
            env.reset(seed=cfg.seed + rank)
            return env

        return make

    factories = [factory(i) for i in range(cfg.n_envs)]
    vec = SubprocVecEnv(factories) if workers else DummyVecEnv(factories)
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
    """Train as configured (or continue the run in cfg's folder from its last checkpoint); returns the run dir.

    Every check runs before the folder is made; the folder is locked while training (RunLockedError names the
    holder); a run refused during setup leaves nothing behind; SIGINT/SIGTERM checkpoint and raise
    TrainingInterrupted. On resume only a larger `steps` may differ from the run's config (ConfigError otherwise).
    """
    from sim2real.run_folder import check_fresh_folder
    from sim2real.run_lock import RunLock

    cfg, settings = resolve(cfg)
    check_device(cfg.device)
    run = cfg.run_dir()
    if resume:
        if not run.is_dir() or saved_config(run) is None:
            raise ConfigError(f"--resume: {run} holds no config.json; nothing to resume")
    else:
        check_fresh_folder(run)
    created = not run.exists()
    run.mkdir(parents=True, exist_ok=True)
    lock = RunLock(run).acquire()
    try:
        return _train_locked(cfg, settings, run, resume, progress)
    except BaseException:
        if not resume and saved_config(run) is None:  # refused or stopped before training began: leave nothing
            _remove_own(run, lock, created)
        raise
    finally:
        lock.release()


def _remove_own(run: Path, lock: RunLock, created: bool) -> None:
    """Undo what a fresh run refused during set-up made, and nothing else: the lock file if it made it, then the
    folder if it made it and it is empty now (a file anyone else put there keeps it)."""
    if lock.created:
        lock.path.unlink(missing_ok=True)
    if created:
        with contextlib.suppress(OSError):
            run.rmdir()


def _train_locked(cfg: TrainConfig, settings: dict[str, Any], run: Path, resume: bool, progress: bool) -> Path:
    """train() once the checks passed and the folder is locked: envs -> agent -> learn -> results."""
    from policies.agents import agent_spec
    from sim2real import checkpoints
    from sim2real.run_folder import resume_point
    from sim2real.train_hooks import TrainHooks

    ckpt, grows = resume_point(cfg, run) if resume else (None, False)
    sampler = make_sampler(cfg)
    if ckpt is not None and sampler is not None and (state := ckpt.file(checkpoints.RANDOMIZATION)) is not None:
        sampler.load_state_dict(json.loads(state.read_text()))
    env, vecnorm = _training_env(cfg, settings, sampler, ckpt)
    model = _agent(cfg, settings, env, run, ckpt)
    if cfg.demos:
        _add_demos(cfg, settings, model, fresh=ckpt is None)
    recurrent = agent_spec(cfg.agent).recurrent
    obs_fn = None if vecnorm is None else vecnorm.normalize_obs
    # Randomized evaluation draws uniformly over the space's full ranges whatever the training sampler (ADR's
    # current ranges or Active DR's particles would grade each run on its own curriculum): one yardstick for all.
    eval_sampler = make_sampler(dataclasses.replace(cfg, randomizer="uniform", randomizer_settings={}), 1)
    eval_env = env_spec.make_env(cfg.env, eval_sampler, render_mode="rgb_array")
    evals = Evaluations(run, cfg, model, eval_env, recurrent, obs_fn, sampler, keep=resume)
    done_steps, total_steps = (ckpt.step if ckpt else 0), int(cfg.steps or 0)
    # training wall-clock summed over the segments of a resumed run (a killed segment counts to its last checkpoint)
    wall_before = float(ckpt.manifest.get("wall_s", 0.0)) if ckpt else 0.0
    t0 = time.perf_counter()

    def save(step: int) -> Path:
        extra = {"task": cfg.env.task, "agent": cfg.agent, "seed": cfg.seed, "device": str(model.device),
                 "wall_s": wall_before + time.perf_counter() - t0}  # fmt: skip
        state = sampler.state_dict() if sampler is not None else None
        return checkpoints.save_checkpoint(run, step, model, state, vecnorm, cfg.save_replay_buffer, extra)

    # the config is written once everything is built: a refused run leaves no config behind, a resume rewrites it
    # only when the budget grows
    if not resume or grows:
        write_json(run / "config.json", {"schema_version": CONFIG_SCHEMA_VERSION, **cfg.to_dict()})
    if not resume:
        write_json(run / "settings.json", settings)
    stop = StopOnSignal()
    hooks = TrainHooks(
        total_steps, done_steps, cfg.eval_every_steps, cfg.checkpoint_every_steps, evals.record, save,
        lambda: stop.signum is not None, sampler, cfg.n_envs, progress,
    )  # fmt: skip
    with stop:
        if total_steps > done_steps:
            model.learn(total_steps - done_steps, callback=hooks, reset_num_timesteps=ckpt is None, tb_log_name="run")
        final_step = int(model.num_timesteps)
        stop.saving = True
        path = save(final_step)
    if stop.signum is not None:
        eval_env.close()
        env.close()
        raise TrainingInterrupted(run, final_step, path, signal.Signals(stop.signum).name)

    model.save(run / "model.zip")
    final = evals.final(final_step)
    if sampler is not None:
        write_json(run / "randomization_state.json", sampler.state_dict())
    if vecnorm is not None:  # plain JSON for export (no pickle needed to read the normaliser)
        vecnorm.save(str(run / "vecnormalize.pkl"))
        write_json(run / "obs_normalization.json", _normalization_json(vecnorm))
    wall_s = wall_before + time.perf_counter() - t0
    write_json(run / "summary.json", {"steps": final_step, "wall_s": wall_s, "final": final,
                                      "device": str(model.device)})  # fmt: skip
    from sim2real.train_report import gif, learning_curve

    title = f"{cfg.env.task} / {cfg.agent} / {cfg.randomizer_name()}"
    learning_curve(run / "learning_curve.png", evals.rows, title=title)
    if cfg.gif:
        gif(run / "rollout.gif", model, eval_env, recurrent, seed=cfg.seed, obs_fn=obs_fn)
    eval_env.close()
    env.close()
    return run


def _training_env(cfg: TrainConfig, settings: dict[str, Any], sampler: Any, ckpt: Checkpoint | None) -> Any:
    """The vectorised training envs, wrapped in a running observation normaliser when the settings ask for one
    (restored from the checkpoint on resume: the statistics travel with the model); (env, normaliser or None)."""
    from sim2real import checkpoints

    env = make_train_env(cfg, sampler)
    if not settings.get("normalize"):
        return env, None
    from stable_baselines3.common.vec_env import VecNormalize

    saved = ckpt.file(checkpoints.VECNORM) if ckpt is not None else None
    if saved is not None:
        vecnorm = VecNormalize.load(str(saved), env)
    else:
        keys = [k for k in env.observation_space.spaces if not k.startswith("image_")]  # images stay uint8
        vecnorm = VecNormalize(env, norm_obs=True, norm_obs_keys=keys, norm_reward=False, clip_obs=10.0,
                               gamma=settings["gamma"], epsilon=NORM_EPSILON)  # fmt: skip
    return vecnorm, vecnorm


def _add_demos(cfg: TrainConfig, settings: dict[str, Any], model: Any, fresh: bool) -> None:
    """The demonstrations into training: a buffer of their own that the replay buffer draws `demo_share` of every
    batch from and the behaviour-cloning step samples (either setting > 0; re-attached on a resume whose checkpoint
    holds no buffer), or else added to the replay buffer once, at the start."""
    from sim2real.demos_dataset import demo_buffer, load_demos, prefill_replay_buffer

    buffer = model.replay_buffer
    if settings.get("demo_share", 0) > 0 or settings.get("bc_weight", 0) > 0:
        if buffer.demos is None:
            buffer.attach_demos(demo_buffer(buffer, load_demos(cfg.demos), cfg.env.obs_layout))
        share, bc = settings.get("demo_share", 0), settings.get("bc_weight", 0)
        print(f"demonstrations: {buffer.demos.size()} transitions from {cfg.demos} in a buffer of their own "
              f"(share of every batch {share:g}, behaviour-cloning weight {bc:g})", flush=True)  # fmt: skip
    elif fresh:  # a resume has them in its saved buffer, or refills without them
        added = prefill_replay_buffer(buffer, load_demos(cfg.demos), cfg.env.obs_layout)
        print(f"replay buffer: {added} demonstration transitions from {cfg.demos}", flush=True)


def _agent(cfg: TrainConfig, settings: dict[str, Any], env: Any, run: Path, ckpt: Checkpoint | None) -> Any:
    """A new agent with the run's settings, or the checkpoint's (optimizer, replay buffer when saved, generator
    states) for a resume."""
    from policies.agents import agent_spec, build_agent, load_agent
    from sim2real import checkpoints

    tb = str(run / "tensorboard")
    if ckpt is None:
        agent_settings = {k: v for k, v in settings.items() if k not in ("total_steps", "normalize")}
        goal_slice = env.get_attr("goal_relative_slice")[0] if agent_spec(cfg.agent).her else None
        if goal_slice is not None:  # layout 2: relabelled goals rewrite the goal-relative slice (policies.her_buffer)
            agent_settings["her"] = {**agent_settings.get("her", {}), "goal_relative_slice": list(goal_slice)}
        try:
            return build_agent(cfg.agent, env, agent_settings, cfg.seed, tensorboard_log=tb, device=cfg.device,
                               framework=cfg.framework)  # fmt: skip
        except Exception as e:  # a setting our checks let through but the library refuses (SB3 asserts some)
            raise ConfigError(f"settings: the {cfg.agent} agent refused them: {type(e).__name__}: {e}") from None
    model = load_agent(cfg.agent, str(ckpt.file(checkpoints.MODEL)), env, device=cfg.device, framework=cfg.framework)
    model.tensorboard_log = tb
    if (replay := ckpt.file(checkpoints.REPLAY)) is not None:
        model.load_replay_buffer(str(replay))
    elif hasattr(model, "learning_starts"):  # an off-policy agent resumed without its replay buffer
        print(
            "warning: this checkpoint holds no replay buffer (train with --save-replay-buffer for an exact "
            "resume): the buffer refills before updates continue"
        )
        model.learning_starts = ckpt.step + max(int(settings.get("learning_starts", 100)), 100)
    checkpoints.restore_rng(ckpt)
    return model


class Evaluations:
    """The run's periodic evaluations: deterministic episodes on nominal (and, with a space, randomized) scenes,
    each a row of evaluations.csv, and the sampler's metrics() beside each in randomization_history.jsonl."""

    def __init__(self, run: Path, cfg: TrainConfig, model: Any, env: Any, recurrent: bool, obs_fn: Any,
                 sampler: Any, keep: bool) -> None:  # fmt: skip
        self.path, self.history = run / "evaluations.csv", run / "randomization_history.jsonl"
        self.model, self.env, self.recurrent, self.obs_fn, self.sampler = model, env, recurrent, obs_fn, sampler
        self.episodes = cfg.eval_episodes
        self.kinds = ("nominal", "randomized") if cfg.randomizer_name() != "none" else ("nominal",)
        self.rows: list[dict[str, float]] = _read_evals(self.path) if keep else []

    def record(self, step: int) -> dict[str, float]:
        """Evaluate now, append the row (and the sampler's metrics) to the files; the row."""
        row: dict[str, float] = {"step": float(step)}
        for kind in self.kinds:
            r = evaluate(self.model, self.env, self.episodes, kind == "nominal", 10_000, self.recurrent, self.obs_fn)
            row.update({f"{kind}_{k}": v for k, v in r.items()})
        self.rows.append(row)
        _write_evals(self.path, self.rows)
        metrics = self.sampler.metrics() if self.sampler is not None else {}
        if metrics:  # ADR's ranges and entropy, Active DR's particle means, as they move
            with open(self.history, "a") as f:
                f.write(json.dumps({"step": step, **metrics}) + "\n")
        return row

    def final(self, step: int) -> dict[str, float]:
        """The evaluation at `step`: the last row when it is of that step, else a new one."""
        return self.rows[-1] if self.rows and self.rows[-1]["step"] == step else self.record(step)


def _normalization_json(vecnorm: Any) -> dict[str, Any]:
    """The observation normaliser as data: per key mean and variance; normalised = clip((x - mean) /
    sqrt(var + epsilon), -clip_obs, clip_obs)."""
    rms = vecnorm.obs_rms
    keys = rms.keys() if isinstance(rms, dict) else [None]
    stats = {str(k): {"mean": (rms[k] if k is not None else rms).mean.tolist(),
                      "var": (rms[k] if k is not None else rms).var.tolist()} for k in keys}  # fmt: skip
    return {"schema_version": 1, "epsilon": vecnorm.epsilon, "clip_obs": vecnorm.clip_obs, "keys": stats}


def _write_evals(path: Path, rows: list[dict[str, float]]) -> None:
    import io

    keys = sorted({k for r in rows for k in r}, key=lambda k: (k != "step", k))
    text = io.StringIO()
    w = csv.DictWriter(text, fieldnames=keys)
    w.writeheader()
    w.writerows(rows)
    write_atomic(path, text.getvalue().encode())


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
    from policies.agents import agent_spec, load_agent

    check_episodes(episodes)
    cfg_path = run / "config.json"
    if not cfg_path.is_file() or not (run / "model.zip").is_file():
        raise ConfigError(f"{run} is not a finished run (needs config.json and model.zip)")
    cfg = config_from_dict(json.loads(cfg_path.read_text()), source=str(cfg_path))
    cfg = dataclasses.replace(cfg, randomizer="uniform", randomizer_settings={})
    cfg = cfg.with_env(
        backend=backend if backend is not None else cfg.env.backend,
        randomization=randomization if randomization is not None else cfg.env.randomization,
    )
    resolve(cfg)  # the same checks as training: names, presets, backends
    spec = agent_spec(cfg.agent)
    env = env_spec.make_env(cfg.env, make_sampler(cfg, 2))
    model = (
        load_agent(cfg.agent, str(run / "model.zip"), env=None, device="cpu", framework=cfg.framework)
        if not spec.her
        else None
    )
    if model is None:  # HER models need an env of the training kind to load their replay buffer class
        train_env = make_train_env(cfg, None)
        model = load_agent(cfg.agent, str(run / "model.zip"), train_env, device="cpu", framework=cfg.framework)
    obs_fn = None
    if (run / "vecnormalize.pkl").is_file():
        from stable_baselines3.common.vec_env import VecNormalize

        norm = VecNormalize.load(str(run / "vecnormalize.pkl"), make_train_env(cfg, None))
        norm.training = False
        obs_fn = norm.normalize_obs
    result: dict[str, Any] = {
        "run": str(run),
        "backend": cfg.env.backend,
        "randomization": cfg.env.randomization,
        "episodes": episodes,
        "seed": seed,
    }
    kinds = ("nominal", "randomized") if cfg.randomizer_name() != "none" else ("nominal",)
    for kind in kinds:
        result[kind] = evaluate(model, env, episodes, kind == "nominal", seed, spec.recurrent, obs_fn)
    env.close()
    space = cfg.env.randomization
    name = f"evaluation-{cfg.env.backend}-{Path(space).stem if space else 'none'}.json"
    write_json(run / name, result)
    return result
