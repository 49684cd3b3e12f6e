"""The policy bundle manifest's schema (every field the exporter writes and its readers use) and its validator."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


class BundleError(ValueError):
    """A bundle that must not run (missing or altered files, unknown schema, a wrong manifest field) or an input it
    cannot take."""


# -- the schema's building blocks ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Num:
    """A finite JSON number (int or float, never a bool), with optional bounds."""

    gt: float | None = None
    """Must be greater than this."""
    ge: float | None = None
    """Must be at least this."""
    lt: float | None = None
    """Must be less than this."""


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
    """Any JSON value: provenance that no code reads, so its content is not checked."""


@dataclass(frozen=True)
class List:
    """A JSON list whose entries all match `item`."""

    item: Spec
    """What every entry must be."""
    length: int | None = None
    """The exact number of entries (None: any)."""
    min_length: int = 0
    """The fewest entries allowed."""


@dataclass(frozen=True)
class Obj:
    """A JSON object. Only a `closed` one refuses keys it does not list (the top level): nested objects may carry
    detail that nothing reads."""

    required: Mapping[str, Spec]
    """Fields that must be present, and what each must be."""
    optional: Mapping[str, Spec] = field(default_factory=dict)
    """Fields that may be absent (checked when present)."""
    closed: bool = False
    """Refuse keys outside `required` and `optional`."""


@dataclass(frozen=True)
class Nullable:
    """`spec` or null."""

    spec: Spec
    """What a non-null value must be."""


Spec = Num | Int | Str | Bool | Free | List | Obj | Nullable

# -- the manifest (SCHEMA_VERSION 2 of policies.bundle) ----------------------------------------------------------

#: Joint types of robot.ee_chain (sim.kinematics.JOINT_TYPES, copied: loading a bundle imports nothing from sim).
JOINT_TYPES = ("fixed", "revolute", "continuous", "prismatic")
#: Largest |norm - 1| accepted for a quaternion.
QUAT_NORM_TOLERANCE = 1e-3
#: Most problems one error message lists.
MAX_PROBLEMS = 10

NAME = Str(nonempty=True)
FINITE = Num()
POSITIVE = Num(gt=0)
VEC3 = List(FINITE, length=3)
QUAT_WXYZ = List(FINITE, length=4)
SHAPE = List(Int(ge=1), min_length=1)

NORMALIZATION = Obj({"mean": List(FINITE), "var": List(Num(ge=0))})
PREPROCESSING = Obj({"crop_yxhw": List(Int(ge=0), length=4), "pool": Int(ge=1), "resize_hw": List(Int(ge=1), length=2)})
INPUT = Obj(
    {"name": NAME, "shape": SHAPE},
    {
        "dtype": Str(choices=("float32", "uint8")),  # the runtime's default: float32
        "normalization": Nullable(NORMALIZATION),  # baked into the graph; null for images and unnormalised runs
        "units": Str(),
        "preprocessing": PREPROCESSING,  # camera inputs: crop, pool, resize (baked into the graph)
    },
)
EE_CONTROL = Obj(
    {
        "max_step_m": POSITIVE,
        "ik_damping": Num(ge=0),
        "orientation_gain": Num(ge=0),
        "bounds_world_m": List(VEC3, length=2),  # [low xyz, high xyz]
        "down_quat_wxyz": QUAT_WXYZ,
    }
)
CHAIN_JOINT = Obj({"name": NAME, "type": Str(choices=JOINT_TYPES), "xyz_m": VEC3, "rpy_rad": VEC3, "axis": VEC3})
CAMERA = Obj(
    {"name": NAME, "width": Int(ge=1), "height": Int(ge=1), "k": List(List(FINITE, length=3), length=3)},
    {"encoding": NAME, "fovy_deg": Num(gt=0, lt=180), "trained_width": Int(ge=1), "trained_height": Int(ge=1)},
)

#: Every manifest field that code reads: policies.bundle and .export, sim2real.export_run and .deploy, and the
#: ROS 2 package's policy_core and goal_episodes (robot.ee_chain: sim.kinematics.KinematicChain.from_dict).
MANIFEST_SCHEMA = Obj(
    {
        "schema_version": Int(ge=1),
        "policy": Obj(
            {"agent": NAME, "control": Str(choices=("ee", "joint")), "recurrent": Bool(), "task": NAME},
            {"ee_control": EE_CONTROL},  # end-effector control only: the node's IK step
        ),
        "observation": Obj(
            {
                "inputs": List(INPUT, min_length=1),
                "normalization_epsilon": Nullable(POSITIVE),
                "normalization_clip": Nullable(POSITIVE),
            }
        ),
        "action": Obj({"name": NAME, "shape": SHAPE, "low": FINITE, "high": FINITE}),
        "outputs": List(Obj({"name": NAME, "shape": SHAPE}, {"units": Str(), "step_rad": POSITIVE}), min_length=1),
        "joint_names": List(NAME, min_length=1),
        "joint_limits_rad": List(List(FINITE, length=2)),  # [low, high] per joint name
        "robot": Obj(
            {
                "name": NAME,
                "base_link": NAME,
                "ee_link": NAME,
                "finger_joint_names": List(NAME),
                "ee_chain": Obj(
                    {"base_pos_m": VEC3, "base_quat_wxyz": QUAT_WXYZ, "joints": List(CHAIN_JOINT, min_length=1)}
                ),
            }
        ),
        "goal": Obj({"frame_id": NAME, "world_low_m": VEC3, "world_high_m": VEC3, "distance_threshold_m": POSITIVE}),
        "control_rate_hz": POSITIVE,
        "camera": Nullable(CAMERA),  # null for state policies
        "randomization": Nullable(Obj({"sampler": NAME})),  # the training sampler's state: provenance
        "state": List(Obj({"name": NAME, "shape": SHAPE}, {"dtype": Str(choices=("float32",))})),  # LSTM h, c
        "onnx_sha256": Str(pattern="[0-9a-f]{64}", pattern_doc="64 lowercase hex digits"),
    },
    {"created": Str(), "source": Free()},
    closed=True,
)


def validate_manifest(manifest: Mapping[str, Any], where: str) -> None:
    """Raise BundleError unless `manifest` matches MANIFEST_SCHEMA and every rule between its fields (RULES).

    The message starts with `where` (the manifest's file) and names each wrong field by its dotted path, e.g.
    `observation.inputs[0].normalization.var[3] is -1.0: must be finite and >= 0` (at most MAX_PROBLEMS of them).
    The rules between fields run once every field has its type.
    """
    if not isinstance(manifest, Mapping):
        raise BundleError(f"{where}: must hold a JSON object")
    problems = list(field_problems(manifest, MANIFEST_SCHEMA))
    if not problems:
        problems = [p for rule in RULES for p in rule(manifest)]
    if problems:
        more = f"; and {len(problems) - MAX_PROBLEMS} more" if len(problems) > MAX_PROBLEMS else ""
        raise BundleError(f"{where}: " + "; ".join(problems[:MAX_PROBLEMS]) + more)


def field_problems(value: Any, spec: Spec, path: str = "") -> Iterator[str]:
    """What is wrong with `value` (at dotted `path`; "" for the top level) as `spec` says, one line each."""
    if isinstance(spec, Nullable):
        if value is not None:
            yield from field_problems(value, spec.spec, path)
    elif isinstance(spec, Free):
        return
    elif isinstance(spec, Bool):
        if not isinstance(value, bool):
            yield f"{path} is {_show(value)}: must be true or false"
    elif isinstance(spec, Num):
        if not isinstance(value, int | float) or isinstance(value, bool):
            yield f"{path} is {_show(value)}: must be a number"
        elif not (math.isfinite(value) and _within(float(value), spec)):
            limits = ((">", spec.gt), (">=", spec.ge), ("<", spec.lt))
            bounds = [f"{op} {_show(b)}" for op, b in limits if b is not None]
            yield f"{path} is {_show(value)}: must be " + " and ".join(["finite", *bounds])
    elif isinstance(spec, Int):
        if not isinstance(value, int) or isinstance(value, bool) or (spec.ge is not None and value < spec.ge):
            yield f"{path} is {_show(value)}: must be an integer" + ("" if spec.ge is None else f" >= {spec.ge}")
    elif isinstance(spec, Str):
        if not isinstance(value, str):
            yield f"{path} is {_show(value)}: must be a string"
        elif spec.choices and value not in spec.choices:
            yield f"{path} is {_show(value)}: must be one of {sorted(spec.choices)}"
        elif spec.nonempty and not value:
            yield f"{path} is empty: must be a name"
        elif spec.pattern and not re.fullmatch(spec.pattern, value):
            yield f"{path} is {_show(value)}: must be {spec.pattern_doc}"
    elif isinstance(spec, List):
        if not isinstance(value, list):
            yield f"{path} is {_show(value)}: must be a list"
        elif spec.length is not None and len(value) != spec.length:
            yield f"{path} has {len(value)} entries: must have {spec.length}"
        elif len(value) < spec.min_length:
            yield f"{path} has {len(value)} entries: must have at least {spec.min_length}"
        else:
            for i, item in enumerate(value):
                yield from field_problems(item, spec.item, f"{path}[{i}]")
    elif isinstance(spec, Obj):
        if not isinstance(value, Mapping):
            yield f"{path} is {_show(value)}: must be an object"
            return
        for key, sub in spec.required.items():
            if key not in value:
                yield f"{_join(path, key)} is missing"
            else:
                yield from field_problems(value[key], sub, _join(path, key))
        for key, sub in spec.optional.items():
            if key in value:
                yield from field_problems(value[key], sub, _join(path, key))
        unknown = sorted(set(value) - set(spec.required) - set(spec.optional)) if spec.closed else []
        if unknown:
            yield (f"{path}: " if path else "") + f"unknown field(s) {unknown}"


# -- rules between fields (each runs on a manifest whose fields all match the schema) ------------------------


def _joint_rules(m: Mapping[str, Any]) -> Iterator[str]:
    names, limits = m["joint_names"], m["joint_limits_rad"]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        yield f"joint_names repeats {repeated}: one name per joint"
    if len(limits) != len(names):
        yield f"joint_limits_rad has {len(limits)} pairs: one per joint name ({len(names)})"
    for i, (low, high) in enumerate(limits):
        if not low < high:
            yield f"joint_limits_rad[{i}] is {_show([low, high])}: low must be < high"


def _chain_rules(m: Mapping[str, Any]) -> Iterator[str]:
    chain = m["robot"]["ee_chain"]
    for i, joint in enumerate(chain["joints"]):
        if joint["type"] != "fixed" and not any(joint["axis"]):
            yield f"robot.ee_chain.joints[{i}].axis is {_show(joint['axis'])}: a moving joint needs a non-zero axis"
    moving = [j["name"] for j in chain["joints"] if j["type"] != "fixed"]
    if moving != list(m["joint_names"]):
        yield f"robot.ee_chain's moving joints {moving} differ from joint_names {list(m['joint_names'])}"
    yield from _unit_quaternion(chain["base_quat_wxyz"], "robot.ee_chain.base_quat_wxyz")


def _goal_rules(m: Mapping[str, Any]) -> Iterator[str]:
    yield from _box(m["goal"]["world_low_m"], m["goal"]["world_high_m"], "goal.world_low_m", "goal.world_high_m")


def _policy_rules(m: Mapping[str, Any]) -> Iterator[str]:
    policy, outputs = m["policy"], {o["name"] for o in m["outputs"]}
    ee = policy.get("ee_control")
    if policy["control"] == "ee" and ee is None:
        yield "policy.ee_control is missing: an ee-control policy needs it (the node's IK step)"
    if policy["control"] == "joint" and "joint_target_rad" not in outputs:
        yield "outputs has no joint_target_rad: a joint-control policy outputs its joint targets"
    if ee is not None:
        low, high = ee["bounds_world_m"]
        yield from _box(low, high, "policy.ee_control.bounds_world_m[0]", "policy.ee_control.bounds_world_m[1]")
        yield from _unit_quaternion(ee["down_quat_wxyz"], "policy.ee_control.down_quat_wxyz")
    if policy["recurrent"] != bool(m["state"]):
        yield (
            f"policy.recurrent is {_show(policy['recurrent'])} but state has {len(m['state'])} entries: a recurrent "
            "policy carries a state, a feed-forward one none"
        )


def _observation_rules(m: Mapping[str, Any]) -> Iterator[str]:
    obs, camera = m["observation"], m["camera"]
    names = [s["name"] for s in obs["inputs"]] + [s["name"] for s in m["state"]]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        yield f"observation.inputs and state repeat {repeated}: every input needs a name of its own"
    normalized = False
    for i, spec in enumerate(obs["inputs"]):
        path, size = f"observation.inputs[{i}]", math.prod(spec["shape"])
        norm = spec.get("normalization")
        if norm is not None:
            normalized = True
            for key in ("mean", "var"):
                if len(norm[key]) != size:
                    yield f"{path}.normalization.{key} has {len(norm[key])} values: the input has {size}"
        if spec["name"].startswith("image_"):  # the node's test for a camera input
            if camera is None:
                yield f"{path} is an image but camera is null: a pixel policy needs its camera"
            elif list(spec["shape"]) != [camera["height"], camera["width"], 3]:
                yield (
                    f"{path}.shape is {spec['shape']}: frames of the camera are "
                    f"[{camera['height']}, {camera['width']}, 3] (camera.height, camera.width, RGB)"
                )
    if normalized:
        for key in ("normalization_epsilon", "normalization_clip"):
            if obs[key] is None:
                yield f"observation.{key} is null: the inputs have normalization statistics"


def _output_rules(m: Mapping[str, Any]) -> Iterator[str]:
    action, outputs = m["action"], m["outputs"]
    if not action["low"] < action["high"]:
        yield f"action.low is {_show(action['low'])}: must be < action.high ({_show(action['high'])})"
    names = [o["name"] for o in outputs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        yield f"outputs repeat {repeated}: every output needs a name of its own"
    want = {"action": list(action["shape"]), "joint_target_rad": [len(m["joint_names"])]}
    want.update({f"{s['name']}_out": list(s["shape"]) for s in m["state"]})  # the next call's state
    for name, shape in want.items():
        i = names.index(name) if name in names else None
        if i is None and name != "joint_target_rad":
            yield f"outputs has no {name}: " + ("the policy's action" if name == "action" else "a state's next value")
        elif i is not None and list(outputs[i]["shape"]) != shape:
            yield f"outputs[{i}].shape is {outputs[i]['shape']}: {name} must have shape {shape}"


#: Rules between fields, run in this order once the fields match MANIFEST_SCHEMA.
RULES: tuple[Callable[[Mapping[str, Any]], Iterator[str]], ...] = (
    _joint_rules,
    _chain_rules,
    _goal_rules,
    _policy_rules,
    _observation_rules,
    _output_rules,
)


def _box(low: Sequence[float], high: Sequence[float], low_path: str, high_path: str) -> Iterator[str]:
    """A box's corners: low < high in every component."""
    for i, (lo, hi) in enumerate(zip(low, high)):
        if not lo < hi:
            yield f"{low_path}[{i}] is {_show(lo)}: must be < {high_path}[{i}] ({_show(hi)})"


def _unit_quaternion(q: Sequence[float], path: str) -> Iterator[str]:
    norm = math.sqrt(sum(v * v for v in q))
    if abs(norm - 1.0) > QUAT_NORM_TOLERANCE:
        yield f"{path} has norm {norm:.4g}: must be a unit quaternion"


def _within(x: float, spec: Num) -> bool:
    return (spec.gt is None or x > spec.gt) and (spec.ge is None or x >= spec.ge) and (spec.lt is None or x < spec.lt)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _show(value: Any) -> str:
    """A value as the manifest spells it (NaN, Infinity, true, "text"), shortened."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
