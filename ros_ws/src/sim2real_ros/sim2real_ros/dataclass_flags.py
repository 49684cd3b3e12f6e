"""Command-line flags generated from config dataclasses: one place (the dataclass) for a field's name, type,
default, choices and help (its docstring), so `--help` and the config never drift apart. Standard library only: the
pipeline's commands (`sim2real train`, `calibrate`) and the robot-side scripts (the exciter) both use it."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import textwrap
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of a dataclass (its attribute docstring), by field name, on one line."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, after in zip(body, body[1:]):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


#: Annotation -> argparse type for the plain field kinds.
_TYPES: dict[str, Callable[[str], Any]] = {"int": int, "int | None": int, "float": float}


def flag_name(field: str) -> str:
    """`obs_mode` -> `--obs-mode`."""
    return "--" + field.replace("_", "-")


def add_config_flags(
    parser: argparse.ArgumentParser,
    cls: type,
    choices: Mapping[str, Iterable[str]] | None = None,
    parsers: Mapping[str, Callable[[str], Any]] | None = None,
    skip: Iterable[str] = (),
    aliases: Mapping[str, str] | None = None,
) -> list[str]:
    """A flag per field of dataclass `cls` (mapping fields are left to config files), with the field's docstring
    and default as help, `choices[field]` as argparse choices, `parsers[field]` as its type and `aliases[field]` a
    shorter flag beside it; every flag defaults to None so only the flags given override a config file. Returns the
    field names added."""
    docs, choices, parsers, skip = field_docs(cls), choices or {}, parsers or {}, set(skip)
    aliases = aliases or {}
    added = []
    for f in dataclasses.fields(cls):
        kind = str(f.type)
        if f.name in skip or kind.startswith(("dict", "EnvSpec")):
            continue
        default = f.default if f.default is not dataclasses.MISSING else None
        text = docs.get(f.name, "")
        shown = "" if default in (None, "") else f" (default: {default})"
        kw: dict[str, Any] = {"dest": f.name, "default": None, "help": f"{text}{shown}".replace("%", "%%")}
        if kind == "bool":
            kw["action"] = argparse.BooleanOptionalAction
        else:
            kw["type"] = parsers.get(f.name, _TYPES.get(kind, str))
            if f.name in choices:
                kw["choices"] = list(choices[f.name])
        parser.add_argument(*([aliases[f.name]] if f.name in aliases else []), flag_name(f.name), **kw)
        added.append(f.name)
    return added


def given_fields(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The fields of dataclass `cls` that were given on the command line (flags added by add_config_flags)."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if getattr(args, f.name, None) is not None}
