"""JSON fields described as data: what a JSON value must be (number, integer, string, list, object that is one of
a set of frozen dataclasses...), checked with a dotted-path message per problem, and converted between JSON and the
dataclasses. The policy bundle manifest (policies.manifest) is written in it; standard library only."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Num:
    """A finite JSON number (int or float, never a bool), with optional bounds; loads as a float."""

    gt: float | None = None
    """Must be greater than this."""
    ge: float | None = None
    """Must be at least this."""
    lt: float | None = None
    """Must be less than this."""
    le: float | None = None
    """Must be at most this."""


@dataclass(frozen=True)
class Int:
    """A JSON integer (never a bool, nor a float such as 3.0)."""

    ge: int | None = None
    """Must be at least this."""


@dataclass(frozen=True)
class Str:
    """A JSON string."""

    choices: tuple[str, ...] = ()
    """The values allowed (empty: any)."""
    nonempty: bool = False
    """Refuse the empty string (names)."""
    pattern: str = ""
    """A regular expression the whole string must match (empty: none)."""
    pattern_doc: str = ""
    """What `pattern` asks for, in words, for the error message."""


@dataclass(frozen=True)
class Bool:
    """true or false."""


@dataclass(frozen=True)
class Free:
    """A JSON object that no code reads (provenance): only the fields in `required` are checked, the rest is kept as
    it is (loads as a dict)."""

    required: Mapping[str, Spec] = field(default_factory=dict)
    """Fields that must be present, and what each must be."""


@dataclass(frozen=True)
class List:
    """A JSON list whose entries all match `item`; loads as a tuple."""

    item: Spec
    """What every entry must be."""
    length: int | None = None
    """The exact number of entries (None: any)."""
    min_length: int = 0
    """The fewest entries allowed."""


@dataclass(frozen=True)
class Nullable:
    """`spec` or null (None)."""

    spec: Spec
    """What a non-null value must be."""


@dataclass(frozen=True)
class Record:
    """A JSON object that is one of this module's dataclasses: its keys are the dataclass's fields (each field's
    metadata holds its Spec; a field with a default may be absent), and any other key is refused."""

    cls: type[Any]
    """The dataclass."""


Spec = Num | Int | Str | Bool | Free | List | Nullable | Record

NAME = Str(nonempty=True)
FINITE = Num()
POSITIVE = Num(gt=0)
VEC3 = List(FINITE, length=3)
QUAT_WXYZ = List(FINITE, length=4)
SHAPE = List(Int(ge=1), min_length=1)


def required_field(spec: Spec) -> Any:
    """A field that the JSON object must hold, as `spec` describes it."""
    return field(metadata={"spec": spec})


def optional_field(spec: Spec, default: Any = None) -> Any:
    """A field that the JSON object may leave out (it then loads as `default`); to_dict leaves it out when None."""
    return field(default=default, metadata={"spec": spec})


def to_json(value: Any, spec: Spec | None = None) -> Any:
    """The JSON form of a value of a Record dataclass (or of any field of one, given its spec): objects as
    dicts (optional fields that are None left out), tuples as lists."""
    if spec is None:
        spec = Record(type(value))
    if isinstance(spec, Record):
        out = {}
        for f in dataclasses.fields(spec.cls):
            item = getattr(value, f.name)
            if item is None and f.default is not dataclasses.MISSING:
                continue
            out[f.name] = to_json(item, f.metadata["spec"])
        return out
    if isinstance(spec, Nullable):
        return None if value is None else to_json(value, spec.spec)
    if isinstance(spec, List):
        return [to_json(v, spec.item) for v in value]
    if isinstance(spec, Free):
        return copy.deepcopy(value)
    return value


def build(value: Any, spec: Spec) -> Any:
    """The dataclass (or field value) of JSON `value`, which field_problems found nothing wrong with."""
    if isinstance(spec, Record):
        fields = dataclasses.fields(spec.cls)
        return spec.cls(**{f.name: build(value[f.name], f.metadata["spec"]) for f in fields if f.name in value})
    if isinstance(spec, Nullable):
        return None if value is None else build(value, spec.spec)
    if isinstance(spec, List):
        return tuple(build(v, spec.item) for v in value)
    if isinstance(spec, Num):
        return float(value)
    if isinstance(spec, Free):
        return copy.deepcopy(dict(value))
    return value


def field_problems(value: Any, spec: Spec, path: str = "") -> Iterator[str]:
    """What is wrong with `value` (at dotted `path`; "" for the top level) as `spec` says, one line each."""
    if isinstance(spec, Nullable):
        if value is not None:
            yield from field_problems(value, spec.spec, path)
    elif isinstance(spec, Bool):
        if not isinstance(value, bool):
            yield f"{path} is {show(value)}: must be true or false"
    elif isinstance(spec, Num):
        if not isinstance(value, int | float) or isinstance(value, bool):
            yield f"{path} is {show(value)}: must be a number"
        elif not (math.isfinite(value) and _within(float(value), spec)):
            limits = ((">", spec.gt), (">=", spec.ge), ("<", spec.lt), ("<=", spec.le))
            bounds = [f"{op} {show(b)}" for op, b in limits if b is not None]
            yield f"{path} is {show(value)}: must be " + " and ".join(["finite", *bounds])
    elif isinstance(spec, Int):
        if not isinstance(value, int) or isinstance(value, bool) or (spec.ge is not None and value < spec.ge):
            yield f"{path} is {show(value)}: must be an integer" + ("" if spec.ge is None else f" >= {spec.ge}")
    elif isinstance(spec, Str):
        if not isinstance(value, str):
            yield f"{path} is {show(value)}: must be a string"
        elif spec.choices and value not in spec.choices:
            yield f"{path} is {show(value)}: must be one of {sorted(spec.choices)}"
        elif spec.nonempty and not value:
            yield f"{path} is empty: must be a name"
        elif spec.pattern and not re.fullmatch(spec.pattern, value):
            yield f"{path} is {show(value)}: must be {spec.pattern_doc}"
    elif isinstance(spec, List):
        if not isinstance(value, list):
            yield f"{path} is {show(value)}: must be a list"
        elif spec.length is not None and len(value) != spec.length:
            yield f"{path} has {len(value)} entries: must have {spec.length}"
        elif len(value) < spec.min_length:
            yield f"{path} has {len(value)} entries: must have at least {spec.min_length}"
        else:
            for i, item in enumerate(value):
                yield from field_problems(item, spec.item, f"{path}[{i}]")
    elif isinstance(spec, Free):
        if not isinstance(value, Mapping):
            yield f"{path} is {show(value)}: must be an object"
            return
        for key, sub in spec.required.items():
            if key not in value:
                yield f"{join_path(path, key)} is missing"
            else:
                yield from field_problems(value[key], sub, join_path(path, key))
    elif isinstance(spec, Record):
        if not isinstance(value, Mapping):
            yield f"{path} is {show(value)}: must be an object"
            return
        fields = dataclasses.fields(spec.cls)
        for f in fields:
            if f.name in value:
                yield from field_problems(value[f.name], f.metadata["spec"], join_path(path, f.name))
            elif f.default is dataclasses.MISSING:
                yield f"{join_path(path, f.name)} is missing"
        unknown = sorted(set(value) - {f.name for f in fields})
        if unknown:
            yield (f"{path}: " if path else "") + f"unknown field(s) {unknown}"


def _within(x: float, spec: Num) -> bool:
    return (
        (spec.gt is None or x > spec.gt)
        and (spec.ge is None or x >= spec.ge)
        and (spec.lt is None or x < spec.lt)
        and (spec.le is None or x <= spec.le)
    )


def join_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def show(value: Any) -> str:
    """A value as the manifest spells it (NaN, Infinity, true, "text"), shortened."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
