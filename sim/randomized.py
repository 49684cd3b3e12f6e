"""Binding a randomization space and sampler to an env's properties: validation against the scene, applying draws
at reset, restoring the scene's own values, and reporting each episode back to learning samplers (ADR, Active DR)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from randomization import EpisodeReport, ParameterSpace, Sampler, SpaceError, UniformDR, space_from
from randomization.sampler import Draw
from randomization.space import Parameter, TextureParameter
from sim.properties import PropertyKind, parse_name
from sim.property_target import PropertyTarget

RandomizationArg = ParameterSpace | Mapping[str, Any] | str | os.PathLike[str] | Sampler


@dataclass(frozen=True)
class _Target:
    """One concrete property a parameter writes: its name, kind and the scene's own value."""

    param: str
    name: str
    kind: PropertyKind
    base: np.ndarray
    mode: str


class Randomizer:
    """Applies draws of `sampler` to `target`'s properties (the env's: engine and env-level ones). Construction
    checks every parameter against the scene (name, shape, the physical domain of every value the range can
    produce) and fails naming the parameter; nothing is clipped. `owns_rng`: the sampler was built here and is
    reseeded whenever the env is reset with a seed."""

    def __init__(self, target: PropertyTarget, randomization: RandomizationArg) -> None:
        self.target = target
        if isinstance(randomization, Sampler):
            self.sampler: Sampler = randomization
            self.owns_rng = False
        else:
            space = space_from(randomization).expand(target.concrete_property_names)
            self.sampler = UniformDR(space, np.random.default_rng())
            self.owns_rng = True
        self.space = self.sampler.space
        self._check_expanded()
        bound = [t for p in self.space.parameters for t in self._bind(p)]
        #: Numeric targets first, then textures: the order of the compiled setter's flat vector. Geometry
        #: (kinds that may rebuild a body) is kept apart and written only when its value changes.
        self.targets: list[_Target] = [t for t in bound if t.kind.name != "texture" and not t.kind.rebuild]
        self.textures = [t for t in bound if t.kind.name == "texture"]
        self.rebuilds = [t for t in bound if t.kind.rebuild]
        self._compile()
        self.wants_transitions = bool(getattr(self.sampler, "wants_transitions", False))
        self.current: Draw | None = None
        self._nominal_episode = False
        self._return = 0.0
        self._success = 0.0
        self._steps = 0
        self._transitions: list[np.ndarray] = []

    # -- validation -----------------------------------------------------------------------------------
    def _check_expanded(self) -> None:
        wild = [p.name for p in self.space.parameters if p.per_element]
        if wild:
            raise SpaceError(
                f"parameters {wild} are per_element: expand the space against the scene first "
                "(space.expand(env.unwrapped.concrete_property_names)) before building the sampler"
            )

    def _bind(self, p: Parameter | TextureParameter) -> list[_Target]:
        where = f"randomization parameter {p.name!r}"
        try:
            kind, _ = parse_name(p.name)
            names = self.target.concrete_property_names(p.name)
        except KeyError as e:
            raise SpaceError(f"{where}: {e.args[0]}") from None
        if isinstance(p, TextureParameter):
            if kind.name != "texture":
                raise SpaceError(f"{where}: patterns/colours describe textures; use a texture:<element> name")
            return [_Target(p.name, n, kind, self.target.get_property(n)[n], "absolute") for n in names]
        if kind.name == "texture":
            raise SpaceError(f"{where}: texture parameters take patterns and colours, not nominal/low/high")
        if kind.integer and not p.integer:
            raise SpaceError(f"{where}: {kind.name} counts {kind.unit}; add 'integer: true'")
        targets = []
        for n in names:
            base = self.target.get_property(n)[n]
            if p.shape not in ((), kind.shape) or (p.apply == "absolute" and p.shape != kind.shape):
                raise SpaceError(
                    f"{where}: {kind.name} takes values of shape {kind.shape}; nominal/low/high have shape {p.shape}"
                    + (" (a scalar range needs apply: scale or offset)" if p.shape == () else "")
                )
            self._check_domain(p, kind, base, where)
            targets.append(_Target(p.name, n, kind, base, p.apply))
        return targets

    @staticmethod
    def _check_domain(p: Parameter, kind: PropertyKind, base: np.ndarray, where: str) -> None:
        bounded = kind.minimum is not None or kind.maximum is not None
        if p.distribution == "normal" and bounded and not p.is_fixed:
            raise SpaceError(
                f"{where}: distribution 'normal' is unbounded but {kind.name} must stay within its physical domain "
                f"({kind.minimum}..{kind.maximum} {kind.unit}); use 'truncnormal'"
            )
        ends = [_apply(p.apply, base, p.low), _apply(p.apply, base, p.high)]
        for label, value in zip(("low", "high"), ends):
            lo_bad = kind.minimum is not None and (
                np.any(value <= kind.minimum) if kind.strictly_positive else np.any(value < kind.minimum)
            )
            hi_bad = kind.maximum is not None and np.any(value > kind.maximum)
            if lo_bad or hi_bad:
                rel = ">" if kind.strictly_positive else ">="
                raise SpaceError(
                    f"{where}: its {label} end gives {kind.name} = {np.round(value, 6).tolist()} ({p.apply}), outside "
                    f"the physical domain ({rel} {kind.minimum}, <= {kind.maximum} {kind.unit})"
                )
        if kind.name == "joint_range" and np.any(ends[0][..., 0] >= ends[0][..., 1]):
            raise SpaceError(f"{where}: joint_range's low end gives lower >= upper limit: {ends[0].tolist()}")

    def _compile(self) -> None:
        """Lay every numeric target out in one flat vector: which component of which parameter feeds it, and
        the multiplier and addend that turn a draw into a value (scale: x base; offset: + base)."""
        numeric = self.space.numeric
        ends = np.cumsum([0] + [p.size for p in numeric])
        offset = {p.name: int(a) for p, a in zip(numeric, ends[:-1])}
        shape = {p.name: p.shape for p in numeric}
        src, mult, add = [], [], []
        for t in self.targets:
            k = t.base.size
            at = offset[t.param]
            src.append(np.full(k, at) if shape[t.param] == () else at + np.arange(k))
            base = t.base.ravel().astype(float)
            mult.append(base if t.mode == "scale" else np.ones(k))
            add.append(base if t.mode == "offset" else np.zeros(k))
        self._numeric_names = [p.name for p in numeric]
        self._src = np.concatenate(src).astype(int) if src else np.zeros(0, int)
        self._mult = np.concatenate(mult) if mult else np.zeros(0)
        self._add = np.concatenate(add) if add else np.zeros(0)
        self._base_flat = np.concatenate([np.zeros(0)] + [t.base.ravel() for t in self.targets + self.textures])
        self._write = self.target.compile_setter([t.name for t in self.targets + self.textures])

    # -- applying ---------------------------------------------------------------------------------------
    def values_for(self, draw: Draw) -> dict[str, np.ndarray]:
        """The concrete property values a draw sets (apply modes resolved against the scene's own values)."""
        out: dict[str, np.ndarray] = {}
        for t in self.targets + self.textures + self.rebuilds:
            v = draw.values.get(t.param)
            if v is not None:
                out[t.name] = _apply(t.mode, t.base, v)
        return out

    def apply(self, draw: Draw, forward: bool = True) -> None:
        """Set the draw's values on the target (the env: engine and env-level properties).

        Values come from the bound space, whose every producible value was checked against the properties'
        domains at construction, so this goes through the engine's compiled setter without per-value checks.
        `forward=False` when a reset or step follows at once and recomputes positions (the env's own use).
        """
        values = draw.values
        if self.rebuilds:
            self._apply_rebuilds(values)
        flat = (
            draw.flat if draw.flat is not None else np.concatenate([values[n] for n in self._numeric_names], axis=None)
        )
        out = self._mult * flat[self._src] + self._add
        if self.textures:  # a draw without a texture (the nominal one) keeps each element's own
            out = np.concatenate([out, *(np.ravel(values.get(t.param, t.base)) for t in self.textures)])
        self._write(out, forward=forward)

    def _apply_rebuilds(self, values: dict[str, np.ndarray]) -> None:
        changed = {}
        for t in self.rebuilds:
            v = _apply(t.mode, t.base, values[t.param])
            if not np.array_equal(v, self.target.get_property(t.name)[t.name]):
                changed[t.name] = v
        if changed:
            self.target.set_properties(changed)

    def restore(self) -> None:
        """Put back the scene's own values of every randomized property."""
        self._write(self._base_flat)
        if self.rebuilds:
            self.target.set_properties({t.name: t.base for t in self.rebuilds})

    def nominal_draw(self) -> Draw:
        """The space's nominal values (no textures: every textured element keeps the scene's own)."""
        return Draw(self.space.nominal(), {"sampler": "nominal"})

    # -- episode bookkeeping -----------------------------------------------------------------------------
    def begin_episode(self, nominal: bool) -> None:
        """Report the finished episode, draw (or take nominal) values for the next one and apply them."""
        self.end_episode()
        self.current = self.nominal_draw() if nominal else self.sampler.sample()
        self._nominal_episode = nominal
        self.apply(self.current, forward=False)
        self._return, self._success, self._steps = 0.0, 0.0, 0
        self._transitions = []

    def record_step(
        self, obs: np.ndarray, action: np.ndarray, next_obs: np.ndarray, reward: float, success: bool
    ) -> None:
        self._return += reward
        self._success = float(success)
        self._steps += 1
        if self.wants_transitions:
            self._transitions.append(np.concatenate([obs, action, next_obs]).astype(np.float32))
        every = self.space.resample_every_steps
        if every and self._steps % every == 0 and not self._nominal_episode:
            self.apply(self.sampler.sample(), forward=False)

    def end_episode(self) -> None:
        """Hand the finished episode (if any step ran) to the sampler."""
        if self.current is None or self._steps == 0 or self._nominal_episode:
            return
        transitions = np.stack(self._transitions) if self._transitions else None
        self.sampler.feedback(self.current, EpisodeReport(self._success, self._return, transitions))
        self._steps = 0

    def reseed(self, seed: int) -> None:
        """Reseed a sampler this randomizer built (user-supplied samplers keep their own generator)."""
        if self.owns_rng:
            assert isinstance(self.sampler, UniformDR)
            self.sampler.rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5D2]))

    def state_dict(self) -> dict[str, Any]:
        """The sampler's state: the provenance a trained policy carries."""
        return self.sampler.state_dict()


def _apply(mode: str, base: np.ndarray, value: np.ndarray) -> np.ndarray:
    if mode == "scale":
        return base * value
    if mode == "offset":
        return base + value
    return np.broadcast_to(value, base.shape).astype(float) if np.ndim(value) == 0 else np.asarray(value, float)
