"""What every sampler shares: the draw it hands out, the episode report it gets back, and the protocol."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from randomization.distributions import draw_value
from randomization.space import Parameter, ParameterSpace, TextureParameter
from randomization.textures import draw_texture

#: Side of the square textures drawn for texture parameters (the scene's texture size).
TEXTURE_SIZE_PX = 64


@dataclass
class Draw:
    """One set of parameter values, keyed by parameter name (textures: (S, S, 3) images in [0, 1]).

    `tag` says where the draw came from, for the sampler's own bookkeeping (ADR's boundary, Active DR's
    particle); samplers that learn read it back in `feedback`.
    """

    values: dict[str, np.ndarray]
    tag: dict[str, Any] = field(default_factory=dict)
    #: When set: every numeric value raveled into one vector in `space.numeric` order (a fast path for
    #: appliers); samplers that edit `values` after drawing must leave it None.
    flat: np.ndarray | None = None


@dataclass
class EpisodeReport:
    """What happened in an episode run under a draw.

    `success`: 1.0/0.0 (or a success rate); `episode_return`: sum of rewards; `transitions`: (T, F) float
    features of the episode's steps (observation, action, next observation), for Active DR's discriminator.
    """

    success: float
    episode_return: float = 0.0
    transitions: np.ndarray | None = None


@runtime_checkable
class Sampler(Protocol):
    """A source of randomization draws. Every sampler is seeded through an explicit numpy Generator."""

    space: ParameterSpace

    def sample(self) -> Draw:
        """The values for the next episode (or resample interval)."""
        ...

    def feedback(self, draw: Draw, report: EpisodeReport) -> None:
        """How the episode under `draw` went; learning samplers update from it, others ignore it."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state: enough to resume and to record as the policy's provenance."""
        ...

    def metrics(self) -> dict[str, float]:
        """What the sampler has learned so far as flat named floats, for training logs (`randomization/<key>`
        in TensorBoard): empty for samplers that do not learn; ADR: `entropy` and `<parameter>/low`,
        `<parameter>/high` (first component of each current boundary); Active DR: `particles/<component>`
        (the particles' mean, normalized to [0, 1])."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what state_dict returned."""
        ...


def draw_all(
    space: ParameterSpace,
    rng: np.random.Generator,
    bounds: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    texture_size_px: int = TEXTURE_SIZE_PX,
) -> dict[str, np.ndarray]:
    """A value for every parameter of `space`; `bounds` overrides some numeric ranges (name -> (low, high)).

    Uniform parameters are drawn together from one vector of uniforms (a randomized reset of a hundred
    parameters costs one generator call), the others one by one, textures last. Scalar values are numpy scalars,
    vector values 1-D arrays.
    """
    return _draw(space, rng, bounds, texture_size_px)[0]


def _draw(
    space: ParameterSpace,
    rng: np.random.Generator,
    bounds: dict[str, tuple[np.ndarray, np.ndarray]] | None,
    texture_size_px: int,
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """draw_all's values, and the flat vector of every numeric value in `space.numeric` order when all numeric
    parameters are uniform (None otherwise)."""
    plan = _uniform_plan(space)
    lo, hi = plan.low, plan.high
    if bounds:
        lo, hi = lo.copy(), hi.copy()
        for name, (a, b) in bounds.items():
            sl = plan.slices.get(name)
            if sl is not None:
                lo[sl], hi[sl] = np.ravel(a), np.ravel(b)
    flat = lo + (hi - lo) * rng.random(lo.size)
    flat[plan.integer] = np.round(flat[plan.integer])
    out: dict[str, Any] = dict(zip(plan.names, [flat[ix] for ix in plan.index]))
    if not (plan.others or plan.textures):
        return out, flat
    for p in plan.others:
        lo_p, hi_p = bounds[p.name] if bounds and p.name in bounds else (None, None)
        out[p.name] = draw_value(p, rng, lo_p, hi_p)
    for t in plan.textures:
        out[t.name] = draw_texture(t, rng, texture_size_px)
    return {name: out[name] for name in plan.order}, (None if plan.others else flat)


@dataclass(frozen=True)
class _UniformPlan:
    """The uniform parameters of a space laid out in one flat vector, and the rest by type."""

    names: list[str]
    slices: dict[str, slice]
    index: list[int | slice]
    low: np.ndarray
    high: np.ndarray
    integer: np.ndarray
    others: list[Parameter]
    textures: list[TextureParameter]
    order: list[str]


_PLANS: dict[int, tuple[ParameterSpace, _UniformPlan]] = {}


def _uniform_plan(space: ParameterSpace) -> _UniformPlan:
    cached = _PLANS.get(id(space))
    if cached is not None and cached[0] is space:
        return cached[1]
    uniform = [p for p in space.numeric if p.distribution == "uniform"]
    offsets = np.cumsum([0] + [p.size for p in uniform])
    plan = _UniformPlan(
        names=[p.name for p in uniform],
        slices={p.name: slice(int(a), int(b)) for p, a, b in zip(uniform, offsets[:-1], offsets[1:])},
        index=[
            int(a) if p.shape == () else slice(int(a), int(b)) for p, a, b in zip(uniform, offsets[:-1], offsets[1:])
        ],
        low=np.concatenate([p.low.ravel() for p in uniform]) if uniform else np.zeros(0),
        high=np.concatenate([p.high.ravel() for p in uniform]) if uniform else np.zeros(0),
        integer=np.concatenate([np.full(p.size, p.integer) for p in uniform]) if uniform else np.zeros(0, bool),
        others=[p for p in space.numeric if p.distribution != "uniform"],
        textures=[p for p in space.parameters if isinstance(p, TextureParameter)],
        order=space.names,
    )
    _PLANS[id(space)] = (space, plan)
    return plan


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """The generator's state as plain JSON data."""
    return _jsonable(rng.bit_generator.state)


def set_rng_state(rng: np.random.Generator, state: dict[str, Any]) -> None:
    rng.bit_generator.state = state


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.integer):
        return int(x)
    return x


class UniformDR:
    """Uniform domain randomization (Tobin et al. 2017; Peng et al. 2018): every parameter drawn independently
    from its own distribution over its full range, at every reset (and every `space.resample_every_steps`)."""

    def __init__(self, space: ParameterSpace, rng: np.random.Generator, texture_size_px: int = TEXTURE_SIZE_PX) -> None:
        self.space = space
        self.rng = rng
        self.texture_size_px = texture_size_px
        self.n_draws = 0

    def sample(self) -> Draw:
        self.n_draws += 1
        values, flat = _draw(self.space, self.rng, None, self.texture_size_px)
        return Draw(values, {"sampler": "uniform"}, flat=flat)

    def feedback(self, draw: Draw, report: EpisodeReport) -> None:
        """Uniform DR does not learn."""

    def metrics(self) -> dict[str, float]:
        """Nothing learned: the ranges are the space's own."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {
            "sampler": "uniform",
            "space": self.space.to_dict(),
            "n_draws": self.n_draws,
            "rng": rng_state(self.rng),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        _check_state(state, "uniform", self.space)
        self.n_draws = int(state["n_draws"])
        set_rng_state(self.rng, state["rng"])


class NominalSampler:
    """Every draw is the nominal value (no randomization); the reference for Active DR and nominal evaluation."""

    def __init__(self, space: ParameterSpace) -> None:
        self.space = space

    def sample(self) -> Draw:
        return Draw(self.space.nominal(), {"sampler": "nominal"})

    def feedback(self, draw: Draw, report: EpisodeReport) -> None:
        """Nothing to learn."""

    def metrics(self) -> dict[str, float]:
        """Nothing learned."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {"sampler": "nominal", "space": self.space.to_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        _check_state(state, "nominal", self.space)


def _check_state(state: dict[str, Any], sampler: str, space: ParameterSpace) -> None:
    if state.get("sampler") != sampler:
        raise ValueError(f"state is for sampler {state.get('sampler')!r}, not {sampler!r}")
    names = [p["name"] for p in state.get("space", {}).get("parameters", [])]
    if names != space.names:
        raise ValueError(f"state's parameters {names} differ from this sampler's {space.names}")


def numeric_parameter(space: ParameterSpace, name: str) -> Parameter:
    """The numeric parameter called `name` (a clear error for textures and unknown names)."""
    p = space[name]
    if not isinstance(p, Parameter):
        raise TypeError(f"parameter {name!r} is a texture, not numeric")
    return p
