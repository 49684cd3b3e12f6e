"""The nodes' ROS parameters, declared one way: a `ParamSpec` per parameter, turned here into rclpy parameter
descriptors (description, read-only, range) and into the listing `--help` prints. rcl_interfaces is imported only
when a node declares its parameters, so the specs themselves load without the [ros] extra."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ParamSpec:
    """One ROS parameter of a node (`--ros-args -p name:=value`, params files, `ros2 param describe`)."""

    name: str
    """The parameter's name."""
    default: Any
    """Its value when nothing sets it; its Python type is the parameter's type (rclpy refuses a 1 where it
    declared 1.0)."""
    description: str
    """What it does, in one line: the descriptor's description and the `--help` entry."""
    read_only: bool = True
    """Fixed once the node has started; False: it may be set at run time (`ros2 param set`)."""
    range: tuple[float, float] | None = None
    """Inclusive bounds of a numeric parameter (rclpy refuses values outside them); None: unbounded."""


def descriptor(spec: ParamSpec) -> Any:
    """The rcl_interfaces ParameterDescriptor of `spec`: a floating-point range for float defaults, an integer range
    (every integer in it valid) for int defaults."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    d = ParameterDescriptor(name=spec.name, description=spec.description, read_only=spec.read_only)
    if spec.range is None:
        return d
    lo, hi = spec.range
    if isinstance(spec.default, float):
        d.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)]
    elif isinstance(spec.default, int) and not isinstance(spec.default, bool):
        d.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=0)]
    else:
        raise TypeError(f"parameter {spec.name}: a range needs a float or int default, not {spec.default!r}")
    return d


def declare_parameters(node: Any, specs: Iterable[ParamSpec]) -> dict[str, Any]:
    """Declare every spec on the rclpy `node`, in order; their values now (the defaults as overridden by `-p` and
    params files), by name."""
    specs = list(specs)
    for spec in specs:
        node.declare_parameter(spec.name, spec.default, descriptor(spec))
    return {spec.name: node.get_parameter(spec.name).value for spec in specs}


def parameters_help(specs: Iterable[ParamSpec]) -> str:
    """The parameters as `--help` lists them."""
    lines = ["ROS parameters (set with --ros-args -p name:=value):"]
    for p in specs:
        fixed = "" if p.read_only else ", changeable at run time"
        lines.append(f"  {p.name} (default {p.default!r}{fixed}): {p.description}")
    return "\n".join(lines)
