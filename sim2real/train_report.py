"""What a finished training run leaves to look at: the learning curve PNG and a short rollout GIF."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def learning_curve(path: Path, evals: list[dict[str, float]], title: str) -> Path | None:
    """Success rate against env steps for nominal and randomized evaluation (one line each)."""
    if not evals:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.8), dpi=120, layout="constrained")
    steps = [r["step"] for r in evals]
    for kind, style in (("nominal", "-o"), ("randomized", "-s")):
        key = f"{kind}_success"
        if any(key in r for r in evals):
            ax.plot(steps, [r.get(key, np.nan) for r in evals], style, ms=3, label=f"{kind} scenes")
    ax.set_xlabel("env steps")
    ax.set_ylabel("success rate")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    fig.legend(loc="outside lower center", ncol=2, frameon=False)  # below the axes: never over a curve
    ax.set_title(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def run_episode(
    model: Any, env: Any, recurrent: bool, seed: int, options: dict[str, Any] | None = None, obs_fn: Any = None
) -> Any:
    """One deterministic episode of `model` on a single gym env; yields (observation, reward, info) per step, the
    reset first (reward 0, its info). `obs_fn` maps observations to the policy's input (the normaliser)."""
    obs, info = env.reset(seed=seed, options=options)
    yield obs, 0.0, info
    state, start, done = None, np.ones(1, bool), False
    prep = obs_fn or (lambda o: o)
    while not done:
        if recurrent:
            action, state = model.predict(prep(obs), state=state, episode_start=start, deterministic=True)
            start = np.zeros(1, bool)
        else:
            action, _ = model.predict(prep(obs), deterministic=True)
        obs, reward, terminated, truncated, info = env.step(action)
        done = terminated or truncated
        yield obs, float(reward), info


def gif(
    path: Path,
    model: Any,
    env: Any,
    recurrent: bool,
    seed: int = 0,
    episodes: int = 2,
    fps: int = 12,
    obs_fn: Any = None,
) -> Path:
    """Frames of `episodes` deterministic episodes from the env's scene camera (render_mode rgb_array)."""
    from PIL import Image

    frames = [
        env.render()
        for ep in range(episodes)
        for _ in run_episode(model, env, recurrent, seed + 50_000 + ep, None, obs_fn)
    ]
    images = [Image.fromarray(f) for f in frames if f is not None]
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return path
