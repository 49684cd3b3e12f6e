"""Drawing one parameter value: uniform, log-uniform, normal and truncated normal, within given bounds."""

from __future__ import annotations

import math

import numpy as np

from randomization.space import Parameter


def draw_value(
    p: Parameter, rng: np.random.Generator, low: np.ndarray | None = None, high: np.ndarray | None = None
) -> np.ndarray:
    """One draw of `p` (shape p.shape, float) with `rng`.

    `low`/`high` override the parameter's range (ADR's current boundaries). Components whose range is a point
    return that point. `normal` is unbounded around `nominal`; `truncnormal` is `normal` restricted to the range
    (inverse-CDF sampling, so every draw costs the same).
    """
    lo = p.low if low is None else low
    hi = p.high if high is None else high
    if p.distribution == "uniform":
        out = lo + (hi - lo) * rng.random(p.shape)
    elif p.distribution == "loguniform":
        out = np.exp(np.log(lo) + (np.log(hi) - np.log(lo)) * rng.random(p.shape))
    elif p.distribution == "normal":
        assert p.std is not None
        out = p.nominal + p.std * rng.standard_normal(p.shape)
    else:
        assert p.std is not None
        out = _truncnormal(p.nominal, p.std, lo, hi, rng)
    if p.integer:
        out = np.round(out)
    return np.where(lo == hi, lo, out) if p.distribution != "normal" else out


def _truncnormal(
    mean: np.ndarray, std: np.ndarray, lo: np.ndarray, hi: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Normal(mean, std) restricted to [lo, hi], by inverting the CDF on a uniform draw."""
    flat_mean, flat_std = np.atleast_1d(mean).astype(float), np.atleast_1d(std).astype(float)
    flat_lo, flat_hi = np.atleast_1d(lo).astype(float), np.atleast_1d(hi).astype(float)
    u = rng.random(flat_mean.shape)
    out = np.empty_like(flat_mean)
    for i in range(out.size):
        a = _ndtr((flat_lo[i] - flat_mean[i]) / flat_std[i])
        b = _ndtr((flat_hi[i] - flat_mean[i]) / flat_std[i])
        if b - a < 1e-12:  # the range sits far in one tail: the nearest end is the draw
            out[i] = flat_lo[i] if flat_mean[i] < flat_lo[i] else flat_hi[i]
            continue
        out[i] = flat_mean[i] + flat_std[i] * _ndtri(a + u[i] * (b - a))
    out = np.clip(out, flat_lo, flat_hi)  # round-off only: the inverse CDF already lies in the range
    return out.reshape(np.shape(mean))


def _ndtr(x: float) -> float:
    """Standard normal CDF."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _ndtri(p: float) -> float:
    """Inverse standard normal CDF (Acklam's rational approximation refined by one Halley step; ~1e-15)."""
    p = min(max(p, 1e-300), 1.0 - 1e-16)
    a = (
        -39.69683028665376,
        220.9460984245205,
        -275.9285104469687,
        138.3577518672690,
        -30.66479806614716,
        2.506628277459239,
    )
    b = (-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572)
    c = (
        -0.007784894002430293,
        -0.3223964580411365,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    )
    d = (0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416)
    plow = 0.02425
    if p < plow:
        q = math.sqrt(-2 * math.log(p))
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / (
            (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1
        )
    elif p > 1 - plow:
        q = math.sqrt(-2 * math.log(1 - p))
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / (
            (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1
        )
    else:
        q = p - 0.5
        r = q * q
        x = (
            (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5])
            * q
            / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
        )
    e = _ndtr(x) - p
    u = e * math.sqrt(2 * math.pi) * math.exp(x * x / 2)
    return x - u / (1 + x * u / 2)
