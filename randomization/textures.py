"""Procedural textures for visual randomization: flat, checker, noise and gradient images in [0, 1]."""

from __future__ import annotations

import numpy as np

from randomization.space import TextureParameter


def make_texture(
    pattern: str, color_a: np.ndarray, color_b: np.ndarray, period_px: int, rng: np.random.Generator, size_px: int
) -> np.ndarray:
    """A (size_px, size_px, 3) float32 image in [0, 1].

    flat: color_a everywhere; checker: squares of side period_px alternating a/b; noise: value noise of cell
    period_px blending a and b; gradient: a to b along a random direction.
    """
    a, b = np.asarray(color_a, np.float32), np.asarray(color_b, np.float32)
    if pattern == "flat":
        return np.broadcast_to(a, (size_px, size_px, 3)).copy()
    elif pattern == "checker":
        idx = np.arange(size_px) // max(1, period_px)
        w = ((idx[:, None] + idx[None, :]) % 2).astype(np.float32)
    elif pattern == "noise":
        cells = size_px // max(1, period_px) + 2
        grid = rng.random((cells, cells), dtype=np.float32)
        x = np.arange(size_px, dtype=np.float32) / max(1, period_px)
        i0 = np.floor(x).astype(int)
        t = x - i0
        t = t * t * (3 - 2 * t)  # smoothstep between lattice values
        rows = grid[i0][:, i0] * (1 - t)[None, :] + grid[i0][:, i0 + 1] * t[None, :]
        rows1 = grid[i0 + 1][:, i0] * (1 - t)[None, :] + grid[i0 + 1][:, i0 + 1] * t[None, :]
        w = rows * (1 - t)[:, None] + rows1 * t[:, None]
    elif pattern == "gradient":
        angle = rng.uniform(0, 2 * np.pi)
        u = np.linspace(-0.5, 0.5, size_px, dtype=np.float32)
        proj = np.cos(angle) * u[None, :] + np.sin(angle) * u[:, None]
        w = (proj - proj.min()) / max(np.ptp(proj), 1e-9)
    else:
        raise ValueError(f"unknown texture pattern {pattern!r}")
    # a convex blend of two colours in [0, 1] stays in [0, 1]
    return a + (b - a) * w[..., None]


def draw_texture(p: TextureParameter, rng: np.random.Generator, size_px: int) -> np.ndarray:
    """One texture for `p`: a pattern, two colours and a period drawn with `rng`."""
    pattern = p.patterns[int(rng.integers(len(p.patterns)))]
    color_a = p.color_low + (p.color_high - p.color_low) * rng.random(3)
    color_b = p.color_low + (p.color_high - p.color_low) * rng.random(3)
    period = int(rng.integers(p.period_px[0], p.period_px[1] + 1))
    return make_texture(pattern, color_a, color_b, period, rng, size_px)
