"""What a calibration leaves behind: the calibrated randomization space (`calibrated.yaml`, the schema `sim2real
train --randomization` reads), the report (`report.json`) and its plots (prior vs posterior per parameter; recorded
vs simulated joint trajectories before and after)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from calibration.fit import FitResult
from calibration.replay import ACTION_DELAY
from randomization import ParameterSpace
from randomization.space import Parameter

REPORT_SCHEMA_VERSION = 1
#: Posterior ranges span mean +- this many standard deviations (clamped to the prior range).
RANGE_STDS = 2.0
#: The narrowest posterior range, as a fraction of the prior range (a range never collapses to a point).
MIN_RANGE_FRACTION = 0.01


#: The env-level observation delay (control steps) that the joint_states latency sets.
OBS_DELAY = "obs_delay"
#: The env-level image delay (control steps) that the camera's latency sets.
IMAGE_DELAY = "image_delay"


def calibrated_space(
    prior: ParameterSpace,
    result: FitResult,
    provenance: dict[str, Any],
    obs_delay_steps: float | None = None,
    image_delay_steps: float | None = None,
) -> ParameterSpace:
    """The prior with every fitted parameter replaced by a truncated normal at its posterior (mean, std), over
    mean +- 2 std inside the prior range; unidentifiable parameters keep their prior entry (marked in `doc`); the
    action delay becomes the fitted one, and with `obs_delay_steps` (the measured joint_states latency in control
    steps) `obs_delay` the measured one, with `image_delay_steps` (the camera's) `image_delay`. Every range keeps
    low <= nominal <= high."""
    fitted = dict(zip(result.names, range(len(result.names))))
    measured = {name: (steps, what) for name, steps, what in ((OBS_DELAY, obs_delay_steps, "joint_states"),
                (IMAGE_DELAY, image_delay_steps, "camera")) if steps is not None}  # fmt: skip
    params: list[Any] = []
    for p in _expanded(prior, result):
        if isinstance(p, Parameter) and p.name in fitted:
            i = fitted[p.name]
            if not result.identifiable[i]:
                why = _confounded(result, i)
                params.append(_with(p, doc="unidentifiable from the recordings"
                                    + (f" (fixed only together with {', '.join(why)})" if why else "")
                                    + ": the prior range is kept"))  # fmt: skip
                continue
            lo, hi = float(result.prior_low[i]), float(result.prior_high[i])
            mean, std = float(result.mean[i]), float(result.std[i])
            half = max(RANGE_STDS * std, 0.5 * MIN_RANGE_FRACTION * (hi - lo))
            low, high = max(lo, mean - half), min(hi, mean + half)
            params.append(_with(p, nominal=mean, low=low, high=high, distribution="truncnormal", std=max(std, 1e-12),
                                doc=f"calibrated: posterior mean {mean:.6g}, std {std:.3g}"))  # fmt: skip
        elif isinstance(p, Parameter) and p.name == ACTION_DELAY and result.action_delay is not None:
            nominal, low, high = delay_steps(result.action_delay)
            params.append(_with(p, nominal=nominal, low=low, high=high, distribution="uniform", std=None, integer=True,
                                doc=f"calibrated: the command-to-motion delay measured by replay, "
                                    f"{result.action_delay:.2f} control steps"))  # fmt: skip
        elif p.name not in measured:
            params.append(p)
    for name, (steps, what) in measured.items():
        nominal, low, high = delay_steps(steps)
        params.append(Parameter(name=name, nominal=np.asarray(float(nominal)), low=np.asarray(float(low)),
                                high=np.asarray(float(high)), integer=True,
                                doc=f"calibrated: the measured {what} latency, {steps:.3f} control steps"))  # fmt: skip
    return ParameterSpace(tuple(params), prior.resample_every_steps, doc=prior.doc, provenance=provenance)


def delay_steps(steps: float) -> tuple[int, int, int]:
    """A measured delay (control steps, fractional) as the env's whole-step action_delay: nominal, low, high. Within
    a quarter step of a whole number it is that number; otherwise training draws both neighbours."""
    nominal = int(round(steps))
    return nominal, int(round(steps - 0.25)), int(round(steps + 0.25))


def _confounded(result: FitResult, i: int) -> list[str]:
    """The parameters that make up for parameter i in the recordings (calibration.sensitivity)."""
    return [] if result.sensitivity is None else result.sensitivity.confounded_with(i, result.names)


def _expanded(prior: ParameterSpace, result: FitResult) -> list[Any]:
    """The prior's parameters with per-element wildcards replaced by the concrete names the fit used."""
    out: list[Any] = []
    for p in prior.parameters:
        if getattr(p, "per_element", False):
            from fnmatch import fnmatchcase

            kind, _, pattern = p.name.partition(":")
            out.extend(
                _with(p, name=n, per_element=False)
                for n in result.names
                if n.partition(":")[0] == kind and fnmatchcase(n.partition(":")[2], pattern)
            )
        else:
            out.append(p)
    return out


def _with(p: Any, **changes: Any) -> Any:
    from dataclasses import replace

    for key in ("nominal", "low", "high", "std"):
        if key in changes and changes[key] is not None:
            changes[key] = np.asarray(changes[key], float)
    return replace(p, **changes)


def report(
    result: FitResult,
    discrepancy: dict[str, dict[str, float | None]],
    latency_s: float | None,
    bags: list[dict[str, Any]],
    method: str,
    wall_s: float,
) -> dict[str, Any]:
    """report.json's content: per parameter the prior, the posterior, whether it is identifiable and its
    sensitivity (the discrepancy's rise alone and against the others, the parameters it is confounded with); the
    posterior correlation of the parameters; the
    discrepancy on the training and held-out episodes, nominal (the uncalibrated nominal values) and calibrated;
    the latency; the bags (path, SHA-256, episodes or why skipped); the method, evaluations and wall-clock."""
    params: dict[str, Any] = {}
    for i, name in enumerate(result.names):
        lo, hi = float(result.prior_low[i]), float(result.prior_high[i])
        mean, std = float(result.mean[i]), float(result.std[i])
        half = max(RANGE_STDS * std, 0.5 * MIN_RANGE_FRACTION * (hi - lo))
        params[name] = {
            "prior": {"low": lo, "high": hi, "nominal": float(result.prior_nominal[i])},
            "posterior": {"mean": mean, "std": std, "low": max(lo, mean - half), "high": min(hi, mean + half)},
            "identifiable": bool(result.identifiable[i]),
        }
        if result.sensitivity is not None:
            params[name]["sensitivity"] = {
                "rise": float(result.sensitivity.rise[i]),
                "profile_rise": float(result.sensitivity.profile_rise[i]),
                "threshold": float(result.sensitivity.threshold),
                "confounded_with": _confounded(result, i),
            }
    if result.action_delay is not None:
        d = float(result.action_delay)
        _, low, high = delay_steps(d)
        params[ACTION_DELAY] = {"posterior": {"mean": d, "std": 0.0, "low": low, "high": high}, "identifiable": True}
    correlation = None
    if result.sensitivity is not None:
        rows = result.sensitivity.correlation
        matrix = [[round(float(c), 4) if np.isfinite(c) else None for c in row] for row in rows]
        correlation = {"names": list(result.names), "matrix": matrix}
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "params": params,
        "correlation": correlation,
        "discrepancy": discrepancy,
        "latency_s": latency_s,
        "bags": bags,
        "method": method,
        "evaluations": result.evaluations,
        "wall_s": wall_s,
        "history": result.history,
    }


def plot_parameters(path: Path, result: FitResult) -> Path:
    """One row per parameter: the prior range (grey), the posterior mean +- 2 std (blue; orange when
    unidentifiable, i.e. the prior kept), in units of the prior range so every row reads on one axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = max(1, len(result.names))
    fig, ax = plt.subplots(figsize=(7, 0.35 * n + 1.2), dpi=120)
    for i in range(len(result.names)):
        lo, hi = result.prior_low[i], result.prior_high[i]
        width = (hi - lo) or 1.0
        m, s = (result.mean[i] - lo) / width, result.std[i] / width
        ax.plot([0, 1], [i, i], color="0.8", lw=6, solid_capstyle="butt")
        color = "tab:blue" if result.identifiable[i] else "tab:orange"
        ax.errorbar([m], [i], xerr=[[min(m, 2 * s)], [min(1 - m, 2 * s)]], fmt="o", color=color, capsize=3)
        ax.text(1.02, i, f"{result.mean[i]:.4g}  [{lo:.3g}, {hi:.3g}]", va="center", fontsize=7)
    ax.set_yticks(range(n), result.names or ["(none)"], fontsize=7)
    ax.set_xlim(-0.02, 1.35)
    ax.set_xlabel("position in the prior range (0 = low, 1 = high); orange: unidentifiable, prior kept")
    ax.invert_yaxis()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_trajectories(
    path: Path, title: str, t_s: np.ndarray, recorded: np.ndarray, nominal: np.ndarray, calibrated: np.ndarray,
    joint_names: tuple[str, ...],
) -> Path:  # fmt: skip
    """Joint positions (T, n) of one episode: recorded (black), simulated at nominal (red dashed) and calibrated
    (blue), one panel per joint."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = recorded.shape[1]
    fig, axes = plt.subplots(n, 1, figsize=(7, 1.1 * n + 0.8), dpi=110, sharex=True, squeeze=False)
    for j in range(n):
        ax = axes[j][0]
        ax.plot(t_s, recorded[:, j], "k-", lw=1.2, label="recorded")
        ax.plot(t_s, nominal[:, j], "r--", lw=1.0, label="nominal")
        ax.plot(t_s, calibrated[:, j], "b-", lw=1.0, alpha=0.8, label="calibrated")
        ax.set_ylabel(joint_names[j].removeprefix("panda_"), fontsize=7)
        ax.tick_params(labelsize=7)
    axes[0][0].set_title(title, fontsize=9)
    axes[0][0].legend(fontsize=7, ncol=3, loc="upper right")
    axes[-1][0].set_xlabel("time (s)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
