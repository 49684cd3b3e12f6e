"""Automatic Domain Randomization (OpenAI et al. 2019, "Solving Rubik's Cube with a Robot Hand").

Every scalar component of every numeric parameter has a current range [lo, hi] that starts at its nominal value.
At each draw, with probability `boundary_prob`, one component (chosen uniformly) is pinned to one of its current
boundaries (chosen uniformly) and the others are drawn inside their current ranges. The episode's performance is
appended to that boundary's buffer; once the buffer holds `buffer_size` results, its mean decides: at or above
`threshold_high` the boundary moves outward by `step_fraction` of the hard range, at or below `threshold_low` it
moves inward (never past nominal); the buffer then empties. The parameter's own `low`/`high` are hard limits.
Texture parameters are drawn from their full distributions throughout.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from randomization.sampler import TEXTURE_SIZE_PX, Draw, EpisodeReport, draw_all, rng_state, set_rng_state
from randomization.space import Parameter, ParameterSpace, TextureParameter


@dataclass(frozen=True)
class ADRConfig:
    """Automatic DR settings (OpenAI's notation in brackets)."""

    boundary_prob: float = 0.5
    """Probability that a draw pins one boundary [p_b]."""
    buffer_size: int = 10
    """Results per boundary before a decision [m]."""
    threshold_low: float = 0.4
    """Mean performance at or below which the boundary moves inward [t_L]."""
    threshold_high: float = 0.8
    """Mean performance at or above which the boundary moves outward [t_H]."""
    step_fraction: float = 0.05
    """Boundary step as a fraction of the hard range (high - low) [delta]."""

    def __post_init__(self) -> None:
        if not 0.0 < self.boundary_prob <= 1.0:
            raise ValueError(f"ADR boundary_prob must be in (0, 1], got {self.boundary_prob}")
        if self.buffer_size < 1:
            raise ValueError(f"ADR buffer_size must be >= 1, got {self.buffer_size}")
        if not self.threshold_low < self.threshold_high:
            raise ValueError(
                f"ADR threshold_low ({self.threshold_low}) must be below threshold_high ({self.threshold_high})"
            )
        if not 0.0 < self.step_fraction <= 1.0:
            raise ValueError(f"ADR step_fraction must be in (0, 1], got {self.step_fraction}")


class AutomaticDR:
    """The ADR sampler. `ranges()` gives the current boundaries; `entropy()` the mean log range width."""

    def __init__(
        self,
        space: ParameterSpace,
        rng: np.random.Generator,
        config: ADRConfig | None = None,
        texture_size_px: int = TEXTURE_SIZE_PX,
    ) -> None:
        self.space = space
        self.rng = rng
        self.config = config or ADRConfig()
        self.texture_size_px = texture_size_px
        self._params = {p.name: p for p in space.numeric}
        self.lo = {n: p.nominal.copy() for n, p in self._params.items()}
        self.hi = {n: p.nominal.copy() for n, p in self._params.items()}
        #: (parameter, flat component) pairs that can move (hard range wider than a point).
        self.components = [
            (n, i) for n, p in self._params.items() for i in range(p.size) if p.high.flat[i] > p.low.flat[i]
        ]
        self.buffers: dict[str, list[float]] = {}
        self.n_draws = 0
        self.n_updates = 0

    # -- sampling ------------------------------------------------------------------------------------
    def sample(self) -> Draw:
        self.n_draws += 1
        bounds = {n: (self.lo[n], self.hi[n]) for n in self._params}
        values = draw_all(self.space, self.rng, bounds, self.texture_size_px)
        tag: dict[str, Any] = {"sampler": "adr"}
        if self.components and self.rng.random() < self.config.boundary_prob:
            name, i = self.components[int(self.rng.integers(len(self.components)))]
            side = "high" if self.rng.random() < 0.5 else "low"
            value = np.array(values[name], dtype=float)  # a copy, also of a numpy scalar
            value.flat[i] = (self.hi if side == "high" else self.lo)[name].flat[i]
            values[name] = value
            tag["boundary"] = [name, i, side]
        return Draw(values, tag)

    def feedback(self, draw: Draw, report: EpisodeReport) -> None:
        """Record the performance of a boundary episode and move that boundary when its buffer is full."""
        boundary = draw.tag.get("boundary")
        if boundary is None:
            return
        name, i, side = boundary
        key = f"{name}#{i}#{side}"
        buf = self.buffers.setdefault(key, [])
        buf.append(float(report.success))
        if len(buf) < self.config.buffer_size:
            return
        mean = float(np.mean(buf))
        buf.clear()
        p = self._params[name]
        step = self.config.step_fraction * float(p.high.flat[i] - p.low.flat[i])
        nominal = float(p.nominal.flat[i])
        if side == "high":
            cur = float(self.hi[name].flat[i])
            if mean >= self.config.threshold_high:
                self.hi[name].flat[i] = min(cur + step, float(p.high.flat[i]))
            elif mean <= self.config.threshold_low:
                self.hi[name].flat[i] = max(cur - step, nominal)
        else:
            cur = float(self.lo[name].flat[i])
            if mean >= self.config.threshold_high:
                self.lo[name].flat[i] = max(cur - step, float(p.low.flat[i]))
            elif mean <= self.config.threshold_low:
                self.lo[name].flat[i] = min(cur + step, nominal)
        self.n_updates += 1

    # -- reporting -------------------------------------------------------------------------------------
    def ranges(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Current (low, high) of every numeric parameter."""
        return {n: (self.lo[n].copy(), self.hi[n].copy()) for n in self._params}

    def entropy(self) -> float:
        """Mean over movable components of log(width + 1e-6 x hard width): OpenAI's ADR entropy, up to scale."""
        if not self.components:
            return 0.0
        widths = []
        for name, i in self.components:
            p = self._params[name]
            hard = float(p.high.flat[i] - p.low.flat[i])
            widths.append(np.log(float(self.hi[name].flat[i] - self.lo[name].flat[i]) + 1e-6 * hard))
        return float(np.mean(widths))

    def metrics(self) -> dict[str, float]:
        """`entropy`, and `<parameter>/low`, `<parameter>/high`: the first component of each current boundary."""
        out = {"entropy": self.entropy()}
        for n in self._params:
            out[f"{n}/low"] = float(self.lo[n].flat[0])
            out[f"{n}/high"] = float(self.hi[n].flat[0])
        return out

    def as_space(self) -> ParameterSpace:
        """The current ranges as a space (uniform DR over what ADR has reached), for export and retraining."""
        from dataclasses import replace

        params: list[Parameter | TextureParameter] = []
        for p in self.space.parameters:
            if isinstance(p, Parameter) and p.name in self._params:
                params.append(replace(p, low=self.lo[p.name].copy(), high=self.hi[p.name].copy()))
            else:
                params.append(p)
        return replace(self.space, parameters=tuple(params))

    # -- checkpointing -----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "sampler": "adr",
            "config": asdict(self.config),
            "space": self.space.to_dict(),
            "ranges": {n: {"low": self.lo[n].tolist(), "high": self.hi[n].tolist()} for n in self._params},
            "buffers": {k: list(v) for k, v in self.buffers.items()},
            "n_draws": self.n_draws,
            "n_updates": self.n_updates,
            "entropy": self.entropy(),
            "rng": rng_state(self.rng),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("sampler") != "adr":
            raise ValueError(f"state is for sampler {state.get('sampler')!r}, not 'adr'")
        ranges = state["ranges"]
        if sorted(ranges) != sorted(self._params):
            raise ValueError(f"ADR state's parameters {sorted(ranges)} differ from this space's {sorted(self._params)}")
        for n, r in ranges.items():
            p = self._params[n]
            lo = np.asarray(r["low"], float).reshape(p.shape)
            hi = np.asarray(r["high"], float).reshape(p.shape)
            if np.any(lo < p.low) or np.any(hi > p.high) or np.any(lo > p.nominal) or np.any(hi < p.nominal):
                raise ValueError(f"ADR state for {n!r}: range [{lo.tolist()}, {hi.tolist()}] is outside the space")
            self.lo[n], self.hi[n] = lo, hi
        self.config = ADRConfig(**state["config"])
        self.buffers = {k: [float(x) for x in v] for k, v in state["buffers"].items()}
        self.n_draws = int(state["n_draws"])
        self.n_updates = int(state["n_updates"])
        set_rng_state(self.rng, state["rng"])
