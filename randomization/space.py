"""Randomization parameter spaces: named parameters bound to scene property names, stored as versioned YAML.

A parameter names a scene property (`body_mass:object`, `joint_damping:panda_joint*`, `action_delay`, ...), its
nominal value, the range it may take, the distribution it is drawn from and how a draw applies to the scene's own
value (`absolute`: the draw is the value; `scale`: scene value x draw; `offset`: scene value + draw). Texture
parameters (`texture:<element>`) draw procedural images instead of numbers.

This module imports nothing of ours: checking that a name exists in a scene, that shapes fit its property and that
every value the range can produce lies in the property's physical domain is the simulator's job (sim.randomized).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from randomization.atomic_files import write_atomic

SCHEMA_VERSION = 1
DISTRIBUTIONS = ("uniform", "loguniform", "normal", "truncnormal")
APPLY_MODES = ("absolute", "scale", "offset")
TEXTURE_PATTERNS = ("flat", "checker", "noise", "gradient")

_NUMERIC_KEYS = {"name", "nominal", "low", "high", "distribution", "apply", "std", "integer", "per_element", "doc"}
_TEXTURE_KEYS = {"name", "patterns", "color_low", "color_high", "period_px", "per_element", "doc"}
_TOP_KEYS = {"schema_version", "parameters", "resample_every_steps", "doc", "provenance"}


class SpaceError(ValueError):
    """A randomization space (YAML or dict) is malformed; the message names the file and field."""


@dataclass(frozen=True)
class Parameter:
    """One numeric randomization parameter.

    `nominal`, `low`, `high`, `std`: float arrays of the same shape, () for scalar properties or (n,) for vector
    ones (a scalar range applies to every component under `scale`/`offset`). `low <= nominal <= high` holds
    componentwise. `std` is used by `normal`/`truncnormal` (default (high - low) / 4). `integer` rounds draws
    (delays in control steps). `per_element`: a wildcard name draws independently for every element it matches.
    """

    name: str
    nominal: np.ndarray
    low: np.ndarray
    high: np.ndarray
    distribution: str = "uniform"
    apply: str = "absolute"
    std: np.ndarray | None = None
    integer: bool = False
    per_element: bool = False
    doc: str = ""

    @property
    def kind(self) -> str:
        """The property kind, the part of the name before ':'."""
        return self.name.partition(":")[0]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.nominal.shape)

    @property
    def size(self) -> int:
        """Number of scalar components (ADR moves each component's boundaries separately)."""
        return int(self.nominal.size)

    @property
    def is_fixed(self) -> bool:
        """True when the range is a single point (the parameter is held at nominal)."""
        return bool(np.all(self.low == self.high))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "nominal": _plain(self.nominal),
            "low": _plain(self.low),
            "high": _plain(self.high),
            "distribution": self.distribution,
            "apply": self.apply,
        }
        if self.std is not None:
            out["std"] = _plain(self.std)
        if self.integer:
            out["integer"] = True
        if self.per_element:
            out["per_element"] = True
        if self.doc:
            out["doc"] = self.doc
        return out


@dataclass(frozen=True)
class TextureParameter:
    """A procedural texture drawn for `texture:<element>`: one of `patterns`, two colours drawn componentwise in
    [color_low, color_high] (RGB in [0, 1]), pattern period in [period_px[0], period_px[1]] pixels."""

    name: str
    patterns: tuple[str, ...] = TEXTURE_PATTERNS
    color_low: np.ndarray = field(default_factory=lambda: np.zeros(3))
    color_high: np.ndarray = field(default_factory=lambda: np.ones(3))
    period_px: tuple[int, int] = (4, 32)
    per_element: bool = False
    doc: str = ""

    @property
    def kind(self) -> str:
        return "texture"

    @property
    def is_fixed(self) -> bool:
        return False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "patterns": list(self.patterns),
            "color_low": _plain(self.color_low),
            "color_high": _plain(self.color_high),
            "period_px": list(self.period_px),
        }
        if self.per_element:
            out["per_element"] = True
        if self.doc:
            out["doc"] = self.doc
        return out


AnyParameter = Parameter | TextureParameter


@dataclass(frozen=True)
class ParameterSpace:
    """An ordered set of parameters with unique names; `resample_every_steps` > 0 redraws during episodes."""

    parameters: tuple[AnyParameter, ...]
    resample_every_steps: int = 0
    doc: str = ""
    provenance: Mapping[str, Any] = field(default_factory=dict)
    """Where the ranges came from, as plain data (a calibration writes its source bags' SHA-256 and the robot
    description it fitted); carried through load and save, never interpreted."""

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for p in self.parameters:
            if p.name in seen:
                raise SpaceError(f"parameter {p.name!r} appears twice")
            seen.add(p.name)
        if self.resample_every_steps < 0:
            raise SpaceError(f"resample_every_steps must be >= 0, got {self.resample_every_steps}")

    def __len__(self) -> int:
        return len(self.parameters)

    def __iter__(self) -> Iterator[AnyParameter]:
        return iter(self.parameters)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.parameters]

    @property
    def numeric(self) -> list[Parameter]:
        """The numeric parameters (the ones ADR and Active DR move)."""
        return [p for p in self.parameters if isinstance(p, Parameter)]

    def __getitem__(self, name: str) -> AnyParameter:
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(f"no parameter {name!r}; the space has {self.names}")

    def nominal(self) -> dict[str, np.ndarray]:
        """The nominal draw of every numeric parameter (textures have none: the scene keeps its own)."""
        return {p.name: p.nominal.copy() for p in self.numeric}

    def expand(self, elements_of: Callable[[str], list[str]]) -> ParameterSpace:
        """Split every `per_element` wildcard parameter into one parameter per concrete element.

        `elements_of(name)` returns the concrete property names a (wildcard) name matches.
        """
        out: list[AnyParameter] = []
        for p in self.parameters:
            if not p.per_element:
                out.append(p)
                continue
            out.extend(replace(p, name=concrete, per_element=False) for concrete in elements_of(p.name))
        return replace(self, parameters=tuple(out))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
        if self.doc:
            out["doc"] = self.doc
        if self.resample_every_steps:
            out["resample_every_steps"] = self.resample_every_steps
        out["parameters"] = [p.to_dict() for p in self.parameters]
        if self.provenance:
            out["provenance"] = dict(self.provenance)
        return out

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the space as YAML atomically (temp file in the same folder, then rename)."""
        import yaml

        write_text_atomic(path, yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> ParameterSpace:
        """Parse and validate; errors name `source` and the offending field."""
        if not isinstance(data, Mapping):
            raise SpaceError(f"{source}: a randomization space must be a mapping, got {type(data).__name__}")
        unknown = set(data) - _TOP_KEYS
        if unknown:
            raise SpaceError(f"{source}: unknown key(s) {sorted(unknown)}; known: {sorted(_TOP_KEYS)}")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise SpaceError(
                f"{source}: schema_version must be {SCHEMA_VERSION}, got {version!r}"
                + (" (missing)" if version is None else "")
            )
        params = data.get("parameters")
        if not isinstance(params, list):
            raise SpaceError(f"{source}: 'parameters' must be a list of parameter entries")
        every = data.get("resample_every_steps", 0)
        if not isinstance(every, int) or isinstance(every, bool) or every < 0:
            raise SpaceError(f"{source}: resample_every_steps must be an integer >= 0, got {every!r}")
        parsed = tuple(_parse_parameter(entry, f"{source}: parameters[{i}]") for i, entry in enumerate(params))
        provenance = data.get("provenance", {}) or {}
        if not isinstance(provenance, Mapping):
            raise SpaceError(f"{source}: provenance must be a mapping, got {type(provenance).__name__}")
        try:
            return cls(parsed, resample_every_steps=every, doc=str(data.get("doc", "")), provenance=dict(provenance))
        except SpaceError as e:
            raise SpaceError(f"{source}: {e}") from None

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ParameterSpace:
        """Read a randomization YAML file."""
        import yaml

        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"randomization file {str(p)!r} does not exist")
        try:
            data = yaml.safe_load(p.read_text())
        except yaml.YAMLError as e:
            raise SpaceError(f"{p}: not valid YAML: {e}") from None
        return cls.from_dict(data, source=str(p))


def _parse_parameter(entry: Any, where: str) -> AnyParameter:
    if not isinstance(entry, Mapping):
        raise SpaceError(f"{where}: each parameter must be a mapping, got {entry!r}")
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise SpaceError(f"{where}: 'name' must be a property name such as 'body_mass:object'")
    where = f"{where} ({name})"
    if name.partition(":")[0] == "texture":
        return _parse_texture(entry, name, where)
    unknown = set(entry) - _NUMERIC_KEYS
    if unknown:
        raise SpaceError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(_NUMERIC_KEYS)}")
    for key in ("nominal", "low", "high"):
        if key not in entry:
            raise SpaceError(f"{where}: '{key}' is required")
    dist = entry.get("distribution", "uniform")
    if dist not in DISTRIBUTIONS:
        raise SpaceError(f"{where}: distribution must be one of {list(DISTRIBUTIONS)}, got {dist!r}")
    mode = entry.get("apply", "absolute")
    if mode not in APPLY_MODES:
        raise SpaceError(f"{where}: apply must be one of {list(APPLY_MODES)}, got {mode!r}")
    nominal = _array(entry["nominal"], where, "nominal")
    low = _array(entry["low"], where, "low")
    high = _array(entry["high"], where, "high")
    shape = np.broadcast_shapes(nominal.shape, low.shape, high.shape) if _broadcastable(nominal, low, high) else None
    if shape is None or len(shape) > 1:
        raise SpaceError(
            f"{where}: nominal, low and high must be scalars or lists of one length, got shapes "
            f"{nominal.shape}, {low.shape}, {high.shape}"
        )
    nominal, low, high = (np.broadcast_to(a, shape).astype(float) for a in (nominal, low, high))
    if np.any(low > high):
        i = int(np.argmax(low > high))
        raise SpaceError(f"{where}: inverted range: low {low.tolist()} > high {high.tolist()} (component {i})")
    if np.any(nominal < low) or np.any(nominal > high):
        raise SpaceError(
            f"{where}: nominal {nominal.tolist()} must lie in [low, high] = [{low.tolist()}, {high.tolist()}]"
        )
    std = None
    if "std" in entry:
        std = np.broadcast_to(_array(entry["std"], where, "std"), shape).astype(float)
        if np.any(std <= 0):
            raise SpaceError(f"{where}: std must be > 0, got {std.tolist()}")
    elif dist in ("normal", "truncnormal"):
        std = np.where(high > low, (high - low) / 4.0, 1e-12)
    if dist == "loguniform" and np.any(low <= 0):
        raise SpaceError(f"{where}: distribution loguniform needs low > 0, got low {low.tolist()}")
    integer = entry.get("integer", False)
    per_element = entry.get("per_element", False)
    for key, val in (("integer", integer), ("per_element", per_element)):
        if not isinstance(val, bool):
            raise SpaceError(f"{where}: {key} must be true or false, got {val!r}")
    if integer and (np.any(low != np.round(low)) or np.any(high != np.round(high))):
        raise SpaceError(f"{where}: integer parameters need integer low and high, got {low.tolist()}, {high.tolist()}")
    return Parameter(name, nominal, low, high, dist, mode, std, integer, per_element, str(entry.get("doc", "")))


def _parse_texture(entry: Mapping[str, Any], name: str, where: str) -> TextureParameter:
    unknown = set(entry) - _TEXTURE_KEYS
    if unknown:
        raise SpaceError(f"{where}: unknown key(s) {sorted(unknown)}; texture parameters take {sorted(_TEXTURE_KEYS)}")
    patterns = tuple(entry.get("patterns", TEXTURE_PATTERNS))
    if not patterns or any(p not in TEXTURE_PATTERNS for p in patterns):
        raise SpaceError(f"{where}: patterns must be a non-empty list from {list(TEXTURE_PATTERNS)}, got {patterns}")
    lo = np.broadcast_to(_array(entry.get("color_low", 0.0), where, "color_low"), (3,)).astype(float)
    hi = np.broadcast_to(_array(entry.get("color_high", 1.0), where, "color_high"), (3,)).astype(float)
    if np.any(lo < 0) or np.any(hi > 1) or np.any(lo > hi):
        raise SpaceError(f"{where}: need 0 <= color_low <= color_high <= 1, got {lo.tolist()} and {hi.tolist()}")
    period = entry.get("period_px", [4, 32])
    if (
        not isinstance(period, list | tuple)
        or len(period) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in period)
        or not 1 <= period[0] <= period[1]
    ):
        raise SpaceError(f"{where}: period_px must be two integers 1 <= a <= b, got {period!r}")
    per_element = entry.get("per_element", False)
    if not isinstance(per_element, bool):
        raise SpaceError(f"{where}: per_element must be true or false, got {per_element!r}")
    return TextureParameter(name, patterns, lo, hi, (period[0], period[1]), per_element, str(entry.get("doc", "")))


def _array(value: Any, where: str, key: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise SpaceError(f"{where}: '{key}' must be a number or a list of numbers, got {value!r}") from None
    if not np.all(np.isfinite(arr)):
        raise SpaceError(f"{where}: '{key}' must be finite, got {value!r}")
    return arr


def _broadcastable(*arrays: np.ndarray) -> bool:
    try:
        np.broadcast_shapes(*(a.shape for a in arrays))
    except ValueError:
        return False
    return True


def _plain(arr: np.ndarray) -> float | list[float]:
    return float(arr) if arr.ndim == 0 else [float(x) for x in arr]


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` to `path` through a temp file in the same folder and a rename (never a half-written file)."""
    write_atomic(path, text.encode())


#: Folder of the shipped spaces that `space_from` finds by bare name (`dynamics`, `object_dynamics`, `visual`).
PRESETS_DIR = Path(__file__).parent / "presets"


def presets() -> list[str]:
    """Names of the shipped randomization spaces."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def space_from(value: ParameterSpace | Mapping[str, Any] | str | os.PathLike[str]) -> ParameterSpace:
    """A space from a ParameterSpace, a dict (the YAML's content), a path to a YAML file or a preset name."""
    if isinstance(value, ParameterSpace):
        return value
    if isinstance(value, Mapping):
        return ParameterSpace.from_dict(value)
    if isinstance(value, str) and value in presets():
        return ParameterSpace.load(PRESETS_DIR / f"{value}.yaml")
    if isinstance(value, str | os.PathLike):
        if isinstance(value, str) and "/" not in value and not value.endswith((".yaml", ".yml")):
            raise FileNotFoundError(f"randomization {value!r} is neither a file nor a preset; presets: {presets()}")
        return ParameterSpace.load(value)
    raise TypeError(f"randomization must be a path, a dict or a sampler, got {type(value).__name__}")
