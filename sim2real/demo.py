"""`sim2real demo`: a short, real run of the pipeline: scenes on both engines, randomization, training Reach, export
and deployment to the simulated arm over ROS 2."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from sim.engines import BACKENDS
from sim2real.scripted_reach import scripted_reach


def parity_figures(n_configs: int = 20, seed: int = 0) -> dict[str, float]:
    """Forward-kinematics error of each engine against the URDF description, and the joint-position gap between
    the engines after the same joint-target sequence."""
    from sim.engines import make_backend
    from sim.scene import NEUTRAL_ARM_Q_RAD, SceneSpec
    from sim.transforms import quat_angle_rad

    rng = np.random.default_rng(seed)
    scene = SceneSpec(target=None)
    backends = {name: make_backend(name, scene) for name in BACKENDS}
    robot = backends["mujoco"].robot
    lim = robot.arm_limits_rad
    base = np.eye(4)
    base[:3, 3] = scene.robot_base_pos_m
    out: dict[str, float] = {}
    for name, b in backends.items():
        pos_err, rot_err = 0.0, 0.0
        for _ in range(n_configs):
            q = rng.uniform(lim[:, 0] + 0.05, lim[:, 1] - 0.05)
            b.reset(q, 0.02, {})
            p, quat = b.ee_pose()
            rp, rq = robot.link_pose(robot.ee_link, np.concatenate([q, [0.02, 0.02]]), base=base)
            pos_err = max(pos_err, float(np.abs(p - rp).max()))
            rot_err = max(rot_err, quat_angle_rad(quat, rq))
        out[f"fk_max_pos_error_m[{name}]"] = pos_err
        out[f"fk_max_rot_error_rad[{name}]"] = rot_err
    neutral = np.array(NEUTRAL_ARM_Q_RAD)
    targets = [neutral + rng.uniform(-0.3, 0.3, 7) for _ in range(5)]
    finals = {}
    for name, b in backends.items():
        b.reset(neutral, 0.0, {})
        for t in targets:
            for _ in range(10):
                b.step(t, 0.02)
        finals[name] = b.joint_state()[0]
        b.close()
    out["trajectory_final_joint_gap_rad"] = float(np.abs(finals["mujoco"] - finals["pybullet"]).max())
    return out


def engines_png(path: Path, size: int = 256, seed: int = 3) -> Path:
    """Scene and wrist camera of the same Push episode on both engines, side by side, labelled."""
    import gymnasium as gym
    from PIL import Image, ImageDraw

    import sim  # noqa: F401

    tiles = []
    for backend in BACKENDS:
        env = gym.make(
            "Sim2Real/Push-v0",
            backend=backend,
            obs_mode="pixels",
            cameras=["scene", "wrist"],
            image_size=size,
        )
        obs, _ = env.reset(seed=seed)
        for cam in ("scene", "wrist"):
            img = Image.fromarray(obs[f"image_{cam}"])
            ImageDraw.Draw(img).text((6, 6), f"{backend} / {cam}", fill=(255, 255, 0))
            tiles.append(img)
        env.close()
    sheet = Image.new("RGB", (2 * size, 2 * size))
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % 2) * size, (i // 2) * size))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


#: Env steps the demo trains Reach for: enough for TQC + HER to solve it under the `dynamics` preset.
DEMO_TRAIN_STEPS = 12_000


def train_reach(console: Console, run: Path) -> None:
    """Train Reach with uniform dynamics randomization (a few minutes on 2 cores) and report its success."""
    import json
    import shutil

    from sim2real.train import train, train_config

    console.rule("[bold]training: Reach, TQC + HER, `dynamics` randomization")
    shutil.rmtree(run, ignore_errors=True)  # the demo's own folder: start fresh every time
    cfg = train_config(
        task="reach",
        randomization="dynamics",
        steps=DEMO_TRAIN_STEPS,
        out=str(run),
        eval_episodes=10,
        checkpoint_every_steps=0,
    )
    train(cfg)
    final = json.loads((run / "summary.json").read_text())["final"]
    console.print(
        f"Reach after {DEMO_TRAIN_STEPS} steps: {100 * final['nominal_success']:.0f}% success on nominal scenes, "
        f"{100 * final['randomized_success']:.0f}% on randomized ones; curve, GIF and model in [bold]{run}[/bold]"
    )


def deploy_reach(console: Console, run: Path, goals: int = 10) -> None:
    """Export the trained Reach policy and drive the simulated PyBullet arm with it over ROS 2 (separate processes,
    real DDS): the policy trained in MuJoCo meets another engine. Skipped, saying why, without the [ros] extra."""
    from sim2real.deploy import DeployError, describe_episode, require_ros, run_goals
    from sim2real.export_run import export_run

    console.rule("[bold]deploy: export, then the policy node drives the simulated arm over ROS 2")
    bundle = export_run(run, run.parent / "bundle", force=True)  # the demo's own bundle of an earlier demo
    console.print(f"bundle (ONNX graph + manifest, parity with torch checked): [bold]{bundle}[/bold]")
    try:
        require_ros()
    except DeployError as e:
        console.print(f"[yellow]skipping the ROS 2 deployment: {e}")
        return

    def show(ep: Any) -> None:
        console.print(f"  {describe_episode(ep)}")

    result = run_goals(bundle, goals, backend="pybullet", log_path=run.parent / "deploy.log", on_episode=show)
    timing = result["timing"]
    console.print(
        f"[bold]deployed over ROS 2 (policy node + PyBullet sim_arm, separate processes): "
        f"{100 * result['success']:.0f}% of {goals} goals reached[/bold]; control tick p50/p99 "
        f"{timing.get('tick_compute_ms_p50', '?')}/{timing.get('tick_compute_ms_p99', '?')} ms, "
        f"{timing.get('missed_ticks', '?')} missed ticks; node logs: {result['log']}"
    )


#: Marks a folder the demo made: it replaces its own earlier output there and nothing anywhere else.
DEMO_MARKER = ".sim2real-demo"


def claim_demo_folder(out: Path) -> str | None:
    """Mark `out` as the demo's (new, empty, or an earlier demo's); otherwise the reason it is refused."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / DEMO_MARKER).is_file())):
        return f"--out {out} exists and is not a folder an earlier demo wrote; choose a new --out (nothing was changed)"
    out.mkdir(parents=True, exist_ok=True)
    (out / DEMO_MARKER).write_text("written by sim2real demo; it replaces its own outputs in this folder\n")
    return None


def run_demo(out: str = "out/demo") -> int:
    """Build every task on both engines, print parity and a scripted reach, write the camera sheet."""
    import gymnasium as gym

    import sim

    console = Console()
    error = claim_demo_folder(Path(out))
    if error:
        Console(stderr=True).print(f"[red]sim2real demo: {error}")
        return 2
    t0 = time.perf_counter()
    console.rule("[bold]sim2real demo: simulation core")
    tasks = Table(title="every task on both engines (state observations, 20 random steps)")
    for col in ("env id", "backend", "observation", "action", "finite"):
        tasks.add_column(col)
    for env_id in sim.ENV_IDS:
        for backend in BACKENDS:
            env = gym.make(env_id, backend=backend)
            obs, _ = env.reset(seed=0)
            env.action_space.seed(0)
            finite = True
            for _ in range(20):
                obs, *_ = env.step(env.action_space.sample())
                finite &= all(bool(np.isfinite(v).all()) for v in obs.values())
            tasks.add_row(env_id, backend, str(obs["observation"].shape), str(env.action_space.shape), str(finite))
            env.close()
    console.print(tasks)

    figures = parity_figures()
    par = Table(title="backend parity")
    par.add_column("figure")
    par.add_column("value", justify="right")
    for k, v in figures.items():
        par.add_row(k, f"{v:.2e}")
    console.print(par)

    reach = Table(title="scripted end-effector reach (10 episodes)")
    for col in ("backend", "success", "mean steps"):
        reach.add_column(col)
    for backend in BACKENDS:
        rate, steps = scripted_reach(backend)
        reach.add_row(backend, f"{100 * rate:.0f}%", f"{steps:.1f}")
    console.print(reach)

    png = engines_png(Path(out) / "engines.png")
    console.print(f"camera views of both engines: [bold]{png}[/bold]")

    from sim2real import demo_randomization

    demo_randomization.run(console, Path(out))
    train_reach(console, Path(out) / "reach")
    deploy_reach(console, Path(out) / "reach")
    from sim2real import demo_calibration

    demo_calibration.run(console, Path(out))
    console.print(f"demo finished in {time.perf_counter() - t0:.1f} s")
    return 0
