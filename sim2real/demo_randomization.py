"""The randomization part of `sim2real demo`: a grid of the same scene under visual draws on both engines,
dynamics draws printed, and a scripted reach under randomized dynamics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from sim.engines import BACKENDS
from sim2real.scripted_reach import scripted_reach


def visual_grid_png(path: Path, draws: int = 5, size: int = 160, seed: int = 0) -> Path:
    """Rows: engines; columns: the nominal scene then `draws` draws of the `visual` preset (same episode)."""
    import gymnasium as gym
    from PIL import Image, ImageDraw

    import sim  # noqa: F401

    rows = []
    for backend in BACKENDS:
        env = gym.make("Sim2Real/Push-v0", backend=backend, obs_mode="pixels", image_size=size, randomization="visual")
        u: Any = env.unwrapped
        u.randomizer.reseed(seed)
        env.reset(seed=seed, options={"nominal": True})
        tiles = []
        for i in range(draws + 1):
            if i:  # a new appearance for the same episode: same object, goal and arm
                u.randomizer.apply(u.randomizer.sampler.sample())
            img = Image.fromarray(u.effects.corrupt_image(u.sim.render("scene"), u.np_random))
            ImageDraw.Draw(img).text((4, 4), f"{backend} {'nominal' if i == 0 else f'draw {i}'}", fill=(255, 255, 0))
            tiles.append(img)
        env.close()
        rows.append(tiles)
    sheet = Image.new("RGB", ((draws + 1) * size, len(rows) * size))
    for r, tiles in enumerate(rows):
        for c, tile in enumerate(tiles):
            sheet.paste(tile, (c * size, r * size))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


def dynamics_samples(n: int = 4, seed: int = 0) -> Table:
    """A table of `n` draws of a few object-dynamics properties as the Push scene receives them."""
    import gymnasium as gym

    import sim  # noqa: F401

    env = gym.make("Sim2Real/Push-v0", randomization="object_dynamics")
    u: Any = env.unwrapped
    shown = [
        ("body_mass:object", "kg"),
        ("geom_friction:object", ""),
        ("joint_damping:panda_joint2", "N m s/rad"),
        ("actuator_kp:panda_joint4", "N m/rad"),
        ("action_delay", "steps"),
        ("control_jitter", ""),
        ("obs_noise:object_pos", "m"),
    ]
    columns: list[list[str]] = []
    for i in range(n):
        env.reset(seed=seed if i == 0 else None)
        columns.append([f"{float(np.ravel(u.get_property(name)[name])[0]):.3g}" for name, _ in shown])
    env.close()
    t = Table(title=f"object_dynamics preset: {n} draws as applied to Push (mujoco)")
    t.add_column("property (unit)", no_wrap=True)
    for i in range(n):
        t.add_column(f"draw {i + 1}", justify="right")
    for j, (name, unit) in enumerate(shown):
        t.add_row(f"{name} ({unit})" if unit else name, *(col[j] for col in columns))
    return t


def run(console: Console, out: Path) -> None:
    """Print the dynamics draws and the scripted reach under randomization; write the visual grid."""
    console.rule("[bold]randomization")
    console.print(dynamics_samples())
    reach = Table(title="scripted end-effector reach under the `dynamics` preset (20 episodes)")
    for col in ("backend", "nominal success", "randomized success"):
        reach.add_column(col)
    for backend in BACKENDS:
        nominal, _ = scripted_reach(backend, episodes=20)
        randomized, _ = scripted_reach(backend, episodes=20, randomization="dynamics")
        reach.add_row(backend, f"{100 * nominal:.0f}%", f"{100 * randomized:.0f}%")
    console.print(reach)
    png = visual_grid_png(out / "randomization.png")
    console.print(f"the same Push scene under visual randomization on both engines: [bold]{png}[/bold]")
