"""Domain randomization: parameter spaces (YAML), distributions, procedural textures, and the samplers
(uniform DR, Automatic DR, Active DR). Imports nothing else of ours; torch only inside Active DR."""

from __future__ import annotations

from typing import Any

import numpy as np

from randomization.adr import ADRConfig, AutomaticDR
from randomization.sampler import Draw, EpisodeReport, NominalSampler, Sampler, UniformDR
from randomization.space import (
    SCHEMA_VERSION,
    Parameter,
    ParameterSpace,
    SpaceError,
    TextureParameter,
    space_from,
)

#: Sampler name -> what it is (the `--randomizer` choices of the CLI).
SAMPLERS = {
    "uniform": "uniform DR over each parameter's full range",
    "adr": "Automatic DR: ranges grow from nominal where the policy succeeds",
    "active": "Active DR: SVPG particles steered by a discriminator toward informative settings",
    "nominal": "no randomization: every draw is nominal",
}


def make_sampler(kind: str, space: ParameterSpace, rng: np.random.Generator, **config: Any) -> Sampler:
    """Build a sampler by name ('uniform', 'adr', 'active', 'nominal') with its config keyword arguments."""
    if kind == "uniform":
        _no_config(kind, config)
        return UniformDR(space, rng)
    if kind == "adr":
        return AutomaticDR(space, rng, ADRConfig(**config))
    if kind == "active":
        from randomization.active import ActiveDR, ActiveDRConfig

        return ActiveDR(space, rng, ActiveDRConfig(**config))
    if kind == "nominal":
        _no_config(kind, config)
        return NominalSampler(space)
    raise ValueError(f"unknown sampler {kind!r}; choose one of {list(SAMPLERS)}")


def _no_config(kind: str, config: dict[str, Any]) -> None:
    if config:
        raise TypeError(f"sampler {kind!r} takes no settings, got {sorted(config)}")


__all__ = [
    "SAMPLERS",
    "SCHEMA_VERSION",
    "ADRConfig",
    "AutomaticDR",
    "Draw",
    "EpisodeReport",
    "NominalSampler",
    "Parameter",
    "ParameterSpace",
    "Sampler",
    "SpaceError",
    "TextureParameter",
    "UniformDR",
    "make_sampler",
    "space_from",
]
