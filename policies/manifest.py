"""The policy bundle manifest, defined once: frozen dataclasses that validate on load, JSON on disk, one upgrade."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar


class BundleError(ValueError):
    """A bundle that must not run (missing or altered files, unknown schema, a wrong manifest field) or an input it
    cannot take."""


#: The manifest's schema version. Version 2 loads through upgrade_v2; any other is refused (re-export the policy).
SCHEMA_VERSION = 3
#: Joint types of robot.ee_chain (sim.kinematics.JOINT_TYPES, copied: loading a bundle imports nothing from sim).
JOINT_TYPES = ("fixed", "revolute", "continuous", "prismatic")
#: What env.* may hold (sim.env_spec's TASKS, CONTROLS, OBS_MODES, REWARDS and sim.engines.BACKENDS, copied).
TASKS = ("reach", "push", "pick_and_place")
BACKENDS = ("mujoco", "pybullet")
CONTROLS = ("ee", "joint")
OBS_MODES = ("state", "pixels", "both")
REWARDS = ("auto", "sparse", "dense")
#: Agents that relabel goals with HER and so train on the sparse reward (policies.agents, copied for upgrade_v2).
HER_AGENTS = ("tqc_her", "sac_her")
#: Largest |norm - 1| accepted for a quaternion.
QUAT_NORM_TOLERANCE = 1e-3
#: Most problems one error message lists.
MAX_PROBLEMS = 10


# -- what a JSON value must be (each dataclass field below names one in its metadata) --------------------------


@dataclass(frozen=True)
class Num:
    """A finite JSON number (int or float, never a bool), with optional bounds; loads as a float."""

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


def _required(spec: Spec) -> Any:
    """A field that the JSON object must hold, as `spec` describes it."""
    return field(metadata={"spec": spec})


def _optional(spec: Spec, default: Any = None) -> Any:
    """A field that the JSON object may leave out (it then loads as `default`); to_dict leaves it out when None."""
    return field(default=default, metadata={"spec": spec})


# -- the manifest, section by section (schema version 3) --------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class EeControl:
    """End-effector control: the env's IK step, which the node runs on the action (policy.ee_control)."""

    max_step_m: float = _required(POSITIVE)
    """The end-effector displacement of a full action (|a| = 1) per control step."""
    ik_damping: float = _required(Num(ge=0))
    """Damping of the damped least-squares IK step."""
    orientation_gain: float = _required(Num(ge=0))
    """Gain that turns the hand back towards down_quat_wxyz."""
    bounds_world_m: tuple[tuple[float, ...], ...] = _required(List(VEC3, length=2))
    """(2, 3): low and high corner of the box the end-effector target is clipped to, training world frame."""
    down_quat_wxyz: tuple[float, ...] = _required(QUAT_WXYZ)
    """(4,): the hand orientation (unit quaternion, w first) that the IK step holds."""


@dataclass(frozen=True, kw_only=True)
class PolicyInfo:
    """What the network is (the env it acts in is `env`)."""

    agent: str = _required(NAME)
    """The training algorithm: tqc_her | sac_her | ppo | recurrent_ppo (policies.agents)."""
    recurrent: bool = _required(Bool())
    """True when the policy carries a state (`state`) from one call to the next."""
    ee_control: EeControl | None = _optional(Record(EeControl))
    """The IK step's constants; present exactly for end-effector control (env.control == "ee")."""


@dataclass(frozen=True, kw_only=True)
class EnvInfo:
    """The env the policy was trained in: sim.env_spec.EnvSpec's fields as plain strings (EnvSpec(**fields))."""

    task: str = _required(Str(choices=TASKS))
    """reach | push | pick_and_place."""
    backend: str = _required(Str(choices=BACKENDS))
    """The engine it trained on: mujoco | pybullet."""
    control: str = _required(Str(choices=CONTROLS))
    """Action space: ee (end-effector deltas, the node runs policy.ee_control's IK step) | joint (joint targets)."""
    obs_mode: str = _required(Str(choices=OBS_MODES))
    """state | pixels | both (pixels and both have an image input and a camera)."""
    reward: str = _required(Str(choices=REWARDS))
    """sparse | dense (auto: the task's default)."""
    randomization: str = _required(Str())
    """The randomization space: a preset name or a YAML path; empty: none (the sampler's state: `randomization`)."""


@dataclass(frozen=True, kw_only=True)
class Normalization:
    """An input's observation statistics, baked into the graph: clip((x - mean) / sqrt(var + epsilon), +-clip)."""

    mean: tuple[float, ...] = _required(List(FINITE))
    """Mean of each of the input's values."""
    var: tuple[float, ...] = _required(List(Num(ge=0)))
    """Variance of each of the input's values (>= 0)."""


@dataclass(frozen=True, kw_only=True)
class ImagePreprocessing:
    """How the graph turns a camera frame into the trained image: crop, average pool, bilinear resize."""

    crop_yxhw: tuple[int, ...] = _required(List(Int(ge=0), length=4))
    """(4,): the crop's top row, left column, height and width in the camera frame (pixels)."""
    pool: int = _required(Int(ge=1))
    """Integer average-pool factor applied to the crop."""
    resize_hw: tuple[int, ...] = _required(List(Int(ge=1), length=2))
    """(2,): the trained image's height and width (pixels) the pooled crop is resampled to."""


@dataclass(frozen=True, kw_only=True)
class ObservationInput:
    """One graph input: an observation array (without the batch dimension)."""

    name: str = _required(NAME)
    """The observation key and graph input name (observation, achieved_goal, desired_goal, image_<camera>)."""
    shape: tuple[int, ...] = _required(SHAPE)
    """The array's shape without batch: (n,) vectors, (H, W, 3) camera frames."""
    dtype: str = _optional(Str(choices=("float32", "uint8")), "float32")
    """float32 | uint8 (camera frames)."""
    normalization: Normalization | None = _required(Nullable(Record(Normalization)))
    """Statistics baked into the graph; null for images and unnormalised runs."""
    units: str | None = _optional(Str())
    """What the values mean, in words (camera frames: RGB 0..255, row 0 at the top)."""
    preprocessing: ImagePreprocessing | None = _optional(Record(ImagePreprocessing))
    """Camera inputs: the crop, pool and resize baked into the graph."""

    @property
    def is_image(self) -> bool:
        """True for a camera input (named image_<camera>, as the node tells them apart)."""
        return self.name.startswith("image_")


@dataclass(frozen=True, kw_only=True)
class Observation:
    """The graph's observation inputs and the normaliser's constants."""

    inputs: tuple[ObservationInput, ...] = _required(List(Record(ObservationInput), min_length=1))
    """Every observation input, in the graph's order."""
    normalization_epsilon: float | None = _required(Nullable(POSITIVE))
    """The normaliser's epsilon (added to var); null without statistics."""
    normalization_clip: float | None = _required(Nullable(POSITIVE))
    """Normalised values are clipped to +-this; null without statistics."""


@dataclass(frozen=True, kw_only=True)
class ActionSpec:
    """The policy's action output."""

    name: str = _required(NAME)
    """Its graph output name (action)."""
    shape: tuple[int, ...] = _required(SHAPE)
    """Its shape without batch."""
    low: float = _required(FINITE)
    """Lowest value of each component (the graph clamps to it)."""
    high: float = _required(FINITE)
    """Highest value of each component."""


@dataclass(frozen=True, kw_only=True)
class OutputSpec:
    """One graph output."""

    name: str = _required(NAME)
    """action | joint_target_rad | <state name>_out."""
    shape: tuple[int, ...] = _required(SHAPE)
    """Its shape without batch."""
    units: str | None = _optional(Str())
    """What the values mean, in words."""
    step_rad: float | None = _optional(POSITIVE)
    """joint_target_rad: the joint step of a full action (targets = measured joints + step_rad x action)."""


@dataclass(frozen=True, kw_only=True)
class StateSpec:
    """One recurrent state input (an LSTM's h or c); the call's `<name>_out` output is the next call's value."""

    name: str = _required(NAME)
    """The graph input name (lstm_h, lstm_c)."""
    shape: tuple[int, ...] = _required(SHAPE)
    """(layers, hidden) without batch."""
    dtype: str = _optional(Str(choices=("float32",)), "float32")
    """float32."""


@dataclass(frozen=True, kw_only=True)
class EeChainJoint:
    """One joint of the kinematic chain (sim.kinematics.ChainJoint as JSON)."""

    name: str = _required(NAME)
    """Joint name (the moving ones are joint_names, in order)."""
    type: str = _required(Str(choices=JOINT_TYPES))
    """fixed | revolute | continuous | prismatic."""
    xyz_m: tuple[float, ...] = _required(VEC3)
    """(3,): the joint's origin in its parent link's frame."""
    rpy_rad: tuple[float, ...] = _required(VEC3)
    """(3,): the joint origin's roll, pitch, yaw in its parent link's frame."""
    axis: tuple[float, ...] = _required(VEC3)
    """(3,): the joint axis in the joint frame (non-zero for moving joints)."""


@dataclass(frozen=True, kw_only=True)
class EeChain:
    """The kinematic chain from the robot's base to the end-effector, placed in the training world."""

    base_pos_m: tuple[float, ...] = _required(VEC3)
    """(3,): the base link's position in the training world."""
    base_quat_wxyz: tuple[float, ...] = _required(QUAT_WXYZ)
    """(4,): the base link's orientation in the training world (unit quaternion, w first)."""
    joints: tuple[EeChainJoint, ...] = _required(List(Record(EeChainJoint), min_length=1))
    """Base to end-effector, in order."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (what sim.kinematics.KinematicChain.from_dict takes)."""
        return to_json(self)


@dataclass(frozen=True, kw_only=True)
class RobotInfo:
    """The robot the policy drives."""

    name: str = _required(NAME)
    """The robot description's name (panda)."""
    base_link: str = _required(NAME)
    """The base link (goals arrive in its frame)."""
    ee_link: str = _required(NAME)
    """The end-effector link (the chain's last)."""
    finger_joint_names: tuple[str, ...] = _required(List(NAME))
    """Gripper joints read from joint_states (finger width = their sum, m)."""
    ee_chain: EeChain = _required(Record(EeChain))
    """Base to end-effector kinematics (the node's forward kinematics and IK)."""


@dataclass(frozen=True, kw_only=True)
class GoalSpec:
    """Where goals come from and what counts as reaching one."""

    frame_id: str = _required(NAME)
    """The frame goal_pose messages must be in (the robot's base link)."""
    world_low_m: tuple[float, ...] = _required(VEC3)
    """(3,): the trained goal box's low corner, training world frame."""
    world_high_m: tuple[float, ...] = _required(VEC3)
    """(3,): its high corner."""
    distance_threshold_m: float = _required(POSITIVE)
    """Success: the end-effector (or object) this close to the goal."""


@dataclass(frozen=True, kw_only=True)
class CameraSpec:
    """The camera a pixel policy takes frames from (at the deployed size)."""

    name: str = _required(NAME)
    """The training scene's camera (its image input is image_<name>)."""
    width: int = _required(Int(ge=1))
    """Frame width the graph takes (pixels)."""
    height: int = _required(Int(ge=1))
    """Frame height the graph takes (pixels)."""
    k: tuple[tuple[float, ...], ...] = _required(List(List(FINITE, length=3), length=3))
    """(3, 3): pinhole intrinsics at width x height (pixels); the node compares camera_info with them."""
    encoding: str | None = _optional(NAME)
    """Image encoding of the frames (rgb8)."""
    fovy_deg: float | None = _optional(Num(gt=0, lt=180))
    """Vertical field of view of the training camera."""
    trained_width: int | None = _optional(Int(ge=1))
    """Width of the images the policy trained on (pixels)."""
    trained_height: int | None = _optional(Int(ge=1))
    """Height of the images the policy trained on (pixels)."""


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """A policy bundle's manifest.json (schema version 3): what the graph takes and gives, and what the robot side
    needs to run it. Load with from_dict (it validates and upgrades version 2), write to_dict() as JSON."""

    schema_version: ClassVar[int] = SCHEMA_VERSION

    created: str | None = _optional(Str())
    """When export wrote it (local time, YYYY-MM-DDTHH:MM:SS)."""
    source: dict[str, Any] | None = _optional(Free())
    """Provenance that no code reads (the run folder, the seed)."""
    policy: PolicyInfo = _required(Record(PolicyInfo))
    """The network: agent, recurrence, the IK step for end-effector control."""
    env: EnvInfo = _required(Record(EnvInfo))
    """The env it was trained in (task, engine, control, observation mode, reward, randomization space)."""
    joint_names: tuple[str, ...] = _required(List(NAME, min_length=1))
    """The arm's joints in the policy's order (joint_states are matched by name)."""
    joint_limits_rad: tuple[tuple[float, ...], ...] = _required(List(List(FINITE, length=2)))
    """(n, 2): low and high limit per joint name (the robot description's)."""
    robot: RobotInfo = _required(Record(RobotInfo))
    """Links, finger joints and the kinematic chain."""
    goal: GoalSpec = _required(Record(GoalSpec))
    """The goal frame, trained goal box and success distance."""
    control_rate_hz: float = _required(POSITIVE)
    """The rate the policy was trained to act at."""
    camera: CameraSpec | None = _required(Nullable(Record(CameraSpec)))
    """The camera of a pixel policy; null for state policies."""
    randomization: dict[str, Any] | None = _required(Nullable(Free({"sampler": NAME})))
    """The training sampler's state (provenance: its kind under `sampler`, the rest as it wrote it); null for none."""
    observation: Observation = _required(Record(Observation))
    """The graph's observation inputs."""
    action: ActionSpec = _required(Record(ActionSpec))
    """The action output."""
    state: tuple[StateSpec, ...] = _required(List(Record(StateSpec)))
    """Recurrent state inputs (LSTM h, c); empty for feed-forward policies."""
    outputs: tuple[OutputSpec, ...] = _required(List(Record(OutputSpec), min_length=1))
    """Every graph output, in order."""
    onnx_sha256: str = _required(Str(pattern="[0-9a-f]{64}", pattern_doc="64 lowercase hex digits"))
    """SHA-256 of policy.onnx (64 lowercase hex digits)."""

    @classmethod
    def from_dict(cls, data: Any, where: str = "manifest.json") -> Manifest:
        """The manifest in `data` (parsed JSON), checked field by field and by the rules between fields (RULES).

        BundleError otherwise: the message starts with `where` (the manifest's file) and names each wrong field by
        its dotted path, e.g. `observation.inputs[0].normalization.var[3] is -1.0: must be finite and >= 0` (at
        most MAX_PROBLEMS of them). Schema version 2 is read through upgrade_v2 first; any other version but 3 is
        refused, asking for a re-export.
        """
        if not isinstance(data, Mapping):
            raise BundleError(f"{where}: must hold a JSON object")
        version = data.get("schema_version")
        if type(version) is int and version == 2:
            data, where = upgrade_v2(data), f"{where} (schema_version 2, read through upgrade_v2)"
        elif type(version) is not int or version != SCHEMA_VERSION:
            said = "is missing" if "schema_version" not in data else f"{_show(version)} is not {SCHEMA_VERSION}"
            raise BundleError(
                f"{where}: schema_version {said}; this sim2real reads version {SCHEMA_VERSION} (and upgrades 2): "
                "re-export the policy with `sim2real export RUN`"
            )
        body = {k: v for k, v in data.items() if k != "schema_version"}
        problems = list(field_problems(body, Record(cls)))
        manifest = None
        if not problems:
            manifest = _build(body, Record(cls))
            problems = [p for rule in RULES for p in rule(manifest)]
        if problems or manifest is None:
            more = f"; and {len(problems) - MAX_PROBLEMS} more" if len(problems) > MAX_PROBLEMS else ""
            raise BundleError(f"{where}: " + "; ".join(problems[:MAX_PROBLEMS]) + more)
        return manifest

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, schema_version first (from_dict(to_dict()) gives an equal manifest)."""
        return {"schema_version": SCHEMA_VERSION, **to_json(self)}


def upgrade_v2(data: Mapping[str, Any]) -> dict[str, Any]:
    """A schema-version-2 manifest as version 3 (a copy; validation follows in Manifest.from_dict).

    Version 3 adds `env`, the env the policy was trained in, and keeps each fact in one place. The upgrade moves
    policy.task and policy.control to env.task and env.control, and source.backend to env.backend (mujoco when
    the source does not say); env.obs_mode is pixels with a camera, state without; env.reward is sparse for HER
    agents (tqc_her, sac_her), dense for the others, as training resolves `auto`; env.randomization moves from
    source.randomization when that names a space, else it is "" (the version-2 exporter did not record it). An
    input without `normalization` gets null (version 3 always writes it) and source.task (env.task's copy) goes.
    """
    out = copy.deepcopy(dict(data))
    policy, source = out.get("policy"), out.get("source")
    policy = policy if isinstance(policy, dict) else {}  # not an object: validation names it
    source = source if isinstance(source, dict) else {}
    env: dict[str, Any] = {}
    for key in ("task", "control"):
        if key in policy:
            env[key] = policy.pop(key)
    env["backend"] = source.pop("backend", "mujoco")
    env["obs_mode"] = "state" if out.get("camera") is None else "pixels"
    env["reward"] = "sparse" if policy.get("agent") in HER_AGENTS else "dense"
    env["randomization"] = source.pop("randomization") if isinstance(source.get("randomization"), str) else ""
    if source.get("task") == env.get("task"):
        source.pop("task", None)
    out["env"] = env
    observation = out.get("observation")
    inputs = observation.get("inputs") if isinstance(observation, dict) else None
    for spec in inputs if isinstance(inputs, list) else []:
        if isinstance(spec, dict):
            spec.setdefault("normalization", None)
    out["schema_version"] = SCHEMA_VERSION
    return out


# -- JSON <-> dataclasses, and the field-by-field check ------------------------------------------------------------


def to_json(value: Any, spec: Spec | None = None) -> Any:
    """The JSON form of a value of this module's dataclasses (or of any field of one, given its spec): objects as
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


def _build(value: Any, spec: Spec) -> Any:
    """The dataclass (or field value) of JSON `value`, which field_problems found nothing wrong with."""
    if isinstance(spec, Record):
        fields = dataclasses.fields(spec.cls)
        return spec.cls(**{f.name: _build(value[f.name], f.metadata["spec"]) for f in fields if f.name in value})
    if isinstance(spec, Nullable):
        return None if value is None else _build(value, spec.spec)
    if isinstance(spec, List):
        return tuple(_build(v, spec.item) for v in value)
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
    elif isinstance(spec, Free):
        if not isinstance(value, Mapping):
            yield f"{path} is {_show(value)}: must be an object"
            return
        for key, sub in spec.required.items():
            if key not in value:
                yield f"{_join(path, key)} is missing"
            else:
                yield from field_problems(value[key], sub, _join(path, key))
    elif isinstance(spec, Record):
        if not isinstance(value, Mapping):
            yield f"{path} is {_show(value)}: must be an object"
            return
        fields = dataclasses.fields(spec.cls)
        for f in fields:
            if f.name in value:
                yield from field_problems(value[f.name], f.metadata["spec"], _join(path, f.name))
            elif f.default is dataclasses.MISSING:
                yield f"{_join(path, f.name)} is missing"
        unknown = sorted(set(value) - {f.name for f in fields})
        if unknown:
            yield (f"{path}: " if path else "") + f"unknown field(s) {unknown}"


# -- rules between fields (each runs on a manifest whose fields all have their types) -----------------------------


def _joint_rules(m: Manifest) -> Iterator[str]:
    names, limits = m.joint_names, m.joint_limits_rad
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        yield f"joint_names repeats {repeated}: one name per joint"
    if len(limits) != len(names):
        yield f"joint_limits_rad has {len(limits)} pairs: one per joint name ({len(names)})"
    for i, (low, high) in enumerate(limits):
        if not low < high:
            yield f"joint_limits_rad[{i}] is {_show([low, high])}: low must be < high"


def _chain_rules(m: Manifest) -> Iterator[str]:
    chain = m.robot.ee_chain
    for i, joint in enumerate(chain.joints):
        if joint.type != "fixed" and not any(joint.axis):
            yield f"robot.ee_chain.joints[{i}].axis is {_show(joint.axis)}: a moving joint needs a non-zero axis"
    moving = [j.name for j in chain.joints if j.type != "fixed"]
    if moving != list(m.joint_names):
        yield f"robot.ee_chain's moving joints {moving} differ from joint_names {list(m.joint_names)}"
    yield from _unit_quaternion(chain.base_quat_wxyz, "robot.ee_chain.base_quat_wxyz")


def _goal_rules(m: Manifest) -> Iterator[str]:
    yield from _box(m.goal.world_low_m, m.goal.world_high_m, "goal.world_low_m", "goal.world_high_m")


def _policy_rules(m: Manifest) -> Iterator[str]:
    ee, outputs = m.policy.ee_control, {o.name for o in m.outputs}
    if m.env.control == "ee" and ee is None:
        yield "policy.ee_control is missing: an ee-control policy needs it (the node's IK step)"
    if m.env.control == "joint" and "joint_target_rad" not in outputs:
        yield "outputs has no joint_target_rad: a joint-control policy outputs its joint targets"
    if ee is not None:
        low, high = ee.bounds_world_m
        yield from _box(low, high, "policy.ee_control.bounds_world_m[0]", "policy.ee_control.bounds_world_m[1]")
        yield from _unit_quaternion(ee.down_quat_wxyz, "policy.ee_control.down_quat_wxyz")
    if m.policy.recurrent != bool(m.state):
        yield (
            f"policy.recurrent is {_show(m.policy.recurrent)} but state has {len(m.state)} entries: a recurrent "
            "policy carries a state, a feed-forward one none"
        )


def _observation_rules(m: Manifest) -> Iterator[str]:
    obs, camera = m.observation, m.camera
    names = [s.name for s in obs.inputs] + [s.name for s in m.state]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        yield f"observation.inputs and state repeat {repeated}: every input needs a name of its own"
    normalized = False
    for i, spec in enumerate(obs.inputs):
        path, size = f"observation.inputs[{i}]", math.prod(spec.shape)
        if spec.normalization is not None:
            normalized = True
            for key, values in (("mean", spec.normalization.mean), ("var", spec.normalization.var)):
                if len(values) != size:
                    yield f"{path}.normalization.{key} has {len(values)} values: the input has {size}"
        if spec.is_image:
            if camera is None:
                yield f"{path} is an image but camera is null: a pixel policy needs its camera"
            elif list(spec.shape) != [camera.height, camera.width, 3]:
                yield (
                    f"{path}.shape is {list(spec.shape)}: frames of the camera are "
                    f"[{camera.height}, {camera.width}, 3] (camera.height, camera.width, RGB)"
                )
    if normalized:
        for key, value in (
            ("normalization_epsilon", obs.normalization_epsilon),
            ("normalization_clip", obs.normalization_clip),
        ):
            if value is None:
                yield f"observation.{key} is null: the inputs have normalization statistics"


def _env_rules(m: Manifest) -> Iterator[str]:
    images = [i for i, spec in enumerate(m.observation.inputs) if spec.is_image]
    if m.env.obs_mode == "state" and images:
        yield f'observation.inputs[{images[0]}] is an image but env.obs_mode is "state"'
    if m.env.obs_mode != "state" and not images:
        yield f"env.obs_mode is {_show(m.env.obs_mode)} but no observation input is an image (image_<camera>)"


def _output_rules(m: Manifest) -> Iterator[str]:
    action, outputs = m.action, m.outputs
    if not action.low < action.high:
        yield f"action.low is {_show(action.low)}: must be < action.high ({_show(action.high)})"
    names = [o.name for o in outputs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        yield f"outputs repeat {repeated}: every output needs a name of its own"
    want = {"action": list(action.shape), "joint_target_rad": [len(m.joint_names)]}
    want.update({f"{s.name}_out": list(s.shape) for s in m.state})  # the next call's state
    for name, shape in want.items():
        i = names.index(name) if name in names else None
        if i is None and name != "joint_target_rad":
            yield f"outputs has no {name}: " + ("the policy's action" if name == "action" else "a state's next value")
        elif i is not None and list(outputs[i].shape) != shape:
            yield f"outputs[{i}].shape is {list(outputs[i].shape)}: {name} must have shape {shape}"


#: Rules between fields, run in this order once every field has its type.
RULES: tuple[Callable[[Manifest], Iterator[str]], ...] = (
    _joint_rules,
    _chain_rules,
    _goal_rules,
    _policy_rules,
    _observation_rules,
    _env_rules,
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
