"""`sim2real train`: one experiment, read top to bottom: config -> envs -> agent -> learn with evaluation and
checkpoints -> results folder (resolved config, evaluations, learning curve, rollout GIF, randomization state)."""

from __future__ import annotations

import csv
import dataclasses
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sim import env_spec
from sim.env_spec import TASKS  # noqa: F401  (re-exported)
from sim2real.artifacts import write_atomic, write_json
from sim2real.train_config import (  # noqa: F401  (re-exported: the pipeline's config names live here too)
    CONFIG_SCHEMA_VERSION,
    RANDOMIZERS,
    ConfigError,
    TrainConfig,
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
class TrainingInterrupted(Exception):
    """SIGINT or SIGTERM stopped a training run; the step it reached was checkpointed first."""

    def __init__(self, run: Path, step: int, checkpoint: Path, signal_name: str) -> None:
        super().__init__(f"{signal_name}: stopped at step {step}; checkpoint {checkpoint}")
        self.run, self.step, self.checkpoint, self.signal_name = run, step, checkpoint, signal_name


class _StopOnSignal:
    """While entered (main thread only), SIGINT and SIGTERM set `signum` instead of killing: the training loop
    polls it, stops after the env step it is in and writes a checkpoint. A second signal aborts at once."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.saving = False
        """True while the final checkpoint is written: further signals wait for it (only SIGKILL cuts it short)."""
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.saving:
            print(f"\n{signal.Signals(signum).name}: writing the checkpoint, a moment", file=sys.stderr, flush=True)
            return
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        print(
            f"\n{signal.Signals(signum).name}: stopping after this step and writing a checkpoint "
            "(signal again to abort without one)",
            file=sys.stderr,
            flush=True,
        )

    def __enter__(self) -> _StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()


def _check_device(device: str) -> None:
    """ConfigError for a CUDA device torch cannot see (no silent fallback: the run records the device it used)."""
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {device!r}: torch {torch.__version__} sees no CUDA device on this machine; "
                "use --device cpu (or auto, which takes the GPU when there is one)"
            )


def _check_fresh_folder(run: Path) -> None:
    """ConfigError unless `run` is new or empty: a fresh run never writes into a run or a folder of other files."""
    from sim2real.run_lock import LOCK_FILE

    if run.exists() and not run.is_dir():
        raise ConfigError(f"--out {run} is a file, not a folder")
    if saved_config(run) is not None:
        raise ConfigError(f"{run} already holds a run; pass --resume to continue it or choose another --out")
    others = sorted(p.name for p in run.iterdir() if p.name != LOCK_FILE) if run.is_dir() else []
    if others:
        raise ConfigError(
            f"--out {run} is not empty and is not a sim2real run (it holds {others[:5]}); choose a new or empty folder"
        )


def train(cfg: TrainConfig, resume: bool = False, progress: bool = True) -> Path:
    """Train as configured (or continue the run in cfg's folder from its last checkpoint); returns the run dir.

    Every check runs before the folder is made; the folder is locked while training (RunLockedError names the
    holder); a run refused during setup leaves nothing behind; SIGINT/SIGTERM checkpoint and raise
    TrainingInterrupted. On resume only a larger `steps` may differ from the run's config (ConfigError otherwise).
    """
    from sim2real.run_lock import RunLock

    cfg, settings = resolve(cfg)
    _check_device(cfg.device)
    run = cfg.run_dir()
    if resume:
        if not run.is_dir() or saved_config(run) is None:
            raise ConfigError(f"--resume: {run} holds no config.json; nothing to resume")
    else:
        _check_fresh_folder(run)
    created = not run.exists()
    run.mkdir(parents=True, exist_ok=True)
    lock = RunLock(run).acquire()
    try:
        return _train_locked(cfg, settings, run, resume, progress)
    except BaseException:
        if not resume and saved_config(run) is None:  # refused or stopped before training began: leave nothing
            if created:
                import shutil

                shutil.rmtree(run, ignore_errors=True)
            else:
                lock.path.unlink(missing_ok=True)
        raise
    finally:
        lock.release()


def _resume_point(cfg: TrainConfig, run: Path) -> tuple[Checkpoint, bool]:
    """The checkpoint to continue `run` from, and whether the budget grows (config.json is then rewritten);
    ConfigError for any other change, a finished run, or a run with no checkpoint."""
    from sim2real import checkpoints

    saved = saved_config(run) or {}
    changes = resume_changes(saved, cfg)
    if changes:
        raise ConfigError(
            f"--resume may change only --steps (to a larger budget), but this would change {'; '.join(changes)}. "
            "Resume with the run's own settings (flags left out keep them), or train a new run with another --out"
        )
    try:
        ckpt, warnings = checkpoints.load_latest(run)
    except checkpoints.CheckpointError as e:
        raise ConfigError(
            f"--resume: {e} (a run stopped before its first checkpoint cannot resume: delete {run} yourself or "
            "choose another --out)"
        ) from None
    for w in warnings:
        print(f"warning: skipped a checkpoint that does not verify: {w}")
    saved_steps, steps = int(saved.get("steps") or 0), int(cfg.steps or 0)
    if steps < saved_steps:
        raise ConfigError(f"--resume: --steps {steps} is fewer than the run's budget of {saved_steps}; resume may only "
                          "raise it")  # fmt: skip
    finished = (run / "summary.json").is_file() and (run / "model.zip").is_file() and ckpt.step >= steps
    if finished:
        raise ConfigError(
            f"--resume: {run} has finished its {saved_steps} steps; pass a larger --steps to train on (nothing changed)"
        )
    if steps > saved_steps:
        print(f"extending {run} from {saved_steps} to {steps} steps (config.json records the new budget)")
    return ckpt, steps > saved_steps


def _train_locked(cfg: TrainConfig, settings: dict[str, Any], run: Path, resume: bool, progress: bool) -> Path:
    """train() once the checks passed and the folder is locked."""
    from stable_baselines3.common.callbacks import BaseCallback

    from policies.agents import agent_spec, build_agent, load_agent
    from sim2real import checkpoints

    total_steps = int(cfg.steps or 0)  # resolve() filled it in
    ckpt: Checkpoint | None = None
    grows = False
    if resume:
        ckpt, grows = _resume_point(cfg, run)

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
        try:
            model = build_agent(cfg.agent, env, agent_settings, cfg.seed, tensorboard_log=tb, device=cfg.device)
        except Exception as e:  # a setting our checks let through but the library refuses (SB3 asserts some)
            raise ConfigError(f"settings: the {cfg.agent} agent refused them: {type(e).__name__}: {e}") from None
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

    # Randomized evaluation draws uniformly over the space's full ranges whatever the training sampler (ADR's
    # current ranges or Active DR's particles would grade each run on its own curriculum): one yardstick for all.
    eval_cfg = dataclasses.replace(cfg, randomizer="uniform", randomizer_settings={})
    eval_env = env_spec.make_env(cfg.env, make_sampler(eval_cfg, 1), render_mode="rgb_array")
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

    stop = _StopOnSignal()

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
            if stop.signum is not None:  # SIGINT/SIGTERM: stop here, train() checkpoints this step
                return False
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
            "task": cfg.env.task,
            "agent": cfg.agent,
            "seed": cfg.seed,
            "device": str(model.device),
            "wall_s": wall_before + time.perf_counter() - t0,
        }
        return checkpoints.save_checkpoint(run, step, model, state, vecnorm, cfg.save_replay_buffer, extra)

    # the config is written once everything is built: a refused run leaves no config behind, a resume rewrites it
    # only when the budget grows
    if not resume or grows:
        write_json(run / "config.json", {"schema_version": CONFIG_SCHEMA_VERSION, **cfg.to_dict()})
    if not resume:
        write_json(run / "settings.json", settings)
    t0 = time.perf_counter()
    remaining = total_steps - done_steps
    with stop:
        if remaining > 0:
            model.learn(remaining, callback=Hooks(), reset_num_timesteps=ckpt is None, tb_log_name="run")
        final_step = int(model.num_timesteps)
        stop.saving = True
        path = save(final_step)
    if stop.signum is not None:
        eval_env.close()
        env.close()
        raise TrainingInterrupted(run, final_step, path, signal.Signals(stop.signum).name)
    wall_s = wall_before + time.perf_counter() - t0
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

    learning_curve(run / "learning_curve.png", evals, title=f"{cfg.env.task} / {cfg.agent} / {cfg.randomizer_name()}")
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
    model = load_agent(cfg.agent, str(run / "model.zip"), env=None, device="cpu") if not spec.her else None
    if model is None:  # HER models need an env of the training kind to load their replay buffer class
        model = load_agent(cfg.agent, str(run / "model.zip"), make_train_env(cfg, None), device="cpu")
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
