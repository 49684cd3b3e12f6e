"""The policy bundle manifest, defined once: frozen dataclasses that validate on load, JSON on disk, one upgrade."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from policies.json_fields import (
    FINITE,
    NAME,
    POSITIVE,
    QUAT_WXYZ,
    SHAPE,
    VEC3,
    Bool,
    Free,
    Int,
    List,
    Nullable,
    Num,
    Record,
    Str,
    build,
    field_problems,
    optional_field,
    required_field,
    show,
    to_json,
)


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
HER_AGENTS = ("tqc_her", "sac_her", "recurrent_sac_her")
#: Largest |norm - 1| accepted for a quaternion.
QUAT_NORM_TOLERANCE = 1e-3
#: Most problems one error message lists.
MAX_PROBLEMS = 10


# -- the manifest, section by section (schema version 3) --------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class EeControl:
    """End-effector control: the env's IK step, which the node runs on the action (policy.ee_control)."""

    max_step_m: float = required_field(POSITIVE)
    """The end-effector displacement of a full action (|a| = 1) per control step."""
    ik_damping: float = required_field(Num(ge=0))
    """Damping of the damped least-squares IK step."""
    orientation_gain: float = required_field(Num(ge=0))
    """Gain that turns the hand back towards down_quat_wxyz."""
    bounds_world_m: tuple[tuple[float, ...], ...] = required_field(List(VEC3, length=2))
    """(2, 3): low and high corner of the box the end-effector target is clipped to, training world frame."""
    down_quat_wxyz: tuple[float, ...] = required_field(QUAT_WXYZ)
    """(4,): the hand orientation (unit quaternion, w first) that the IK step holds."""


@dataclass(frozen=True, kw_only=True)
class GripperControl:
    """A policy that uses its gripper: how the last action value moves the fingers (robot.gripper)."""

    step_m: float = required_field(POSITIVE)
    """Change of each finger's position target per unit action per control step (m)."""
    finger_limits_m: tuple[float, ...] = required_field(List(FINITE, length=2))
    """(2,): low and high position of each finger (m); the finger width is twice the position."""


@dataclass(frozen=True, kw_only=True)
class PolicyInfo:
    """What the network is (the env it acts in is `env`)."""

    agent: str = required_field(NAME)
    """The training algorithm: tqc_her | sac_her | ppo | recurrent_ppo (policies.agents)."""
    recurrent: bool = required_field(Bool())
    """True when the policy carries a state (`state`) from one call to the next."""
    ee_control: EeControl | None = optional_field(Record(EeControl))
    """The IK step's constants; present exactly for end-effector control (env.control == "ee")."""


@dataclass(frozen=True, kw_only=True)
class EnvInfo:
    """The env the policy was trained in: sim.env_spec.EnvSpec's fields as plain strings (EnvSpec(**fields))."""

    task: str = required_field(Str(choices=TASKS))
    """reach | push | pick_and_place."""
    backend: str = required_field(Str(choices=BACKENDS))
    """The engine it trained on: mujoco | pybullet."""
    control: str = required_field(Str(choices=CONTROLS))
    """Action space: ee (end-effector deltas, the node runs policy.ee_control's IK step) | joint (joint targets)."""
    obs_mode: str = required_field(Str(choices=OBS_MODES))
    """state | pixels | both (pixels and both have an image input and a camera)."""
    reward: str = required_field(Str(choices=REWARDS))
    """sparse | dense (auto: the task's default)."""
    randomization: str = required_field(Str())
    """The randomization space: a preset name or a YAML path; empty: none (the sampler's state: `randomization`)."""
    goal_workspace_base_m: tuple[float, ...] | None = optional_field(List(FINITE, length=6))
    """The goal box it trained for, XLO, YLO, ZLO, XHI, YHI, ZHI (m, robot base frame); absent: the task's own."""
    table_height_m: float | None = optional_field(Num(ge=-1, le=0))
    """The table top's height in the base frame it trained with (m); absent: 0."""
    start_joints: tuple[float, ...] | None = optional_field(List(FINITE, length=7))
    """The arm's start pose it trained from, resolved to joint angles (rad); absent: the task's own."""
    obs_layout: int | None = optional_field(Int(ge=1))
    """The `observation` vector's layout (sim.observation: 2 appends the relative features); absent: 1."""


@dataclass(frozen=True, kw_only=True)
class Normalization:
    """An input's observation statistics, baked into the graph: clip((x - mean) / sqrt(var + epsilon), +-clip)."""

    mean: tuple[float, ...] = required_field(List(FINITE))
    """Mean of each of the input's values."""
    var: tuple[float, ...] = required_field(List(Num(ge=0)))
    """Variance of each of the input's values (>= 0)."""


@dataclass(frozen=True, kw_only=True)
class ImagePreprocessing:
    """How the graph turns a camera frame into the trained image: crop, average pool, bilinear resize."""

    crop_yxhw: tuple[int, ...] = required_field(List(Int(ge=0), length=4))
    """(4,): the crop's top row, left column, height and width in the camera frame (pixels)."""
    pool: int = required_field(Int(ge=1))
    """Integer average-pool factor applied to the crop."""
    resize_hw: tuple[int, ...] = required_field(List(Int(ge=1), length=2))
    """(2,): the trained image's height and width (pixels) the pooled crop is resampled to."""


@dataclass(frozen=True, kw_only=True)
class ObservationInput:
    """One graph input: an observation array (without the batch dimension)."""

    name: str = required_field(NAME)
    """The observation key and graph input name (observation, achieved_goal, desired_goal, image_<camera>)."""
    shape: tuple[int, ...] = required_field(SHAPE)
    """The array's shape without batch: (n,) vectors, (H, W, 3) camera frames."""
    dtype: str = optional_field(Str(choices=("float32", "uint8")), "float32")
    """float32 | uint8 (camera frames)."""
    normalization: Normalization | None = required_field(Nullable(Record(Normalization)))
    """Statistics baked into the graph; null for images and unnormalised runs."""
    units: str | None = optional_field(Str())
    """What the values mean, in words (camera frames: RGB 0..255, row 0 at the top)."""
    preprocessing: ImagePreprocessing | None = optional_field(Record(ImagePreprocessing))
    """Camera inputs: the crop, pool and resize baked into the graph."""

    @property
    def is_image(self) -> bool:
        """True for a camera input (named image_<camera>, as the node tells them apart)."""
        return self.name.startswith("image_")


@dataclass(frozen=True, kw_only=True)
class Observation:
    """The graph's observation inputs and the normaliser's constants."""

    inputs: tuple[ObservationInput, ...] = required_field(List(Record(ObservationInput), min_length=1))
    """Every observation input, in the graph's order."""
    normalization_epsilon: float | None = required_field(Nullable(POSITIVE))
    """The normaliser's epsilon (added to var); null without statistics."""
    normalization_clip: float | None = required_field(Nullable(POSITIVE))
    """Normalised values are clipped to +-this; null without statistics."""


@dataclass(frozen=True, kw_only=True)
class ActionSpec:
    """The policy's action output."""

    name: str = required_field(NAME)
    """Its graph output name (action)."""
    shape: tuple[int, ...] = required_field(SHAPE)
    """Its shape without batch."""
    low: float = required_field(FINITE)
    """Lowest value of each component (the graph clamps to it)."""
    high: float = required_field(FINITE)
    """Highest value of each component."""


@dataclass(frozen=True, kw_only=True)
class OutputSpec:
    """One graph output."""

    name: str = required_field(NAME)
    """action | joint_target_rad | <state name>_out."""
    shape: tuple[int, ...] = required_field(SHAPE)
    """Its shape without batch."""
    units: str | None = optional_field(Str())
    """What the values mean, in words."""
    step_rad: float | None = optional_field(POSITIVE)
    """joint_target_rad: the joint step of a full action (targets = measured joints + step_rad x action)."""


@dataclass(frozen=True, kw_only=True)
class StateSpec:
    """One recurrent state input (an LSTM's h or c); the call's `<name>_out` output is the next call's value."""

    name: str = required_field(NAME)
    """The graph input name (lstm_h, lstm_c)."""
    shape: tuple[int, ...] = required_field(SHAPE)
    """(layers, hidden) without batch."""
    dtype: str = optional_field(Str(choices=("float32",)), "float32")
    """float32."""


@dataclass(frozen=True, kw_only=True)
class EeChainJoint:
    """One joint of the kinematic chain (sim.kinematics.ChainJoint as JSON)."""

    name: str = required_field(NAME)
    """Joint name (the moving ones are joint_names, in order)."""
    type: str = required_field(Str(choices=JOINT_TYPES))
    """fixed | revolute | continuous | prismatic."""
    xyz_m: tuple[float, ...] = required_field(VEC3)
    """(3,): the joint's origin in its parent link's frame."""
    rpy_rad: tuple[float, ...] = required_field(VEC3)
    """(3,): the joint origin's roll, pitch, yaw in its parent link's frame."""
    axis: tuple[float, ...] = required_field(VEC3)
    """(3,): the joint axis in the joint frame (non-zero for moving joints)."""


@dataclass(frozen=True, kw_only=True)
class EeChain:
    """The kinematic chain from the robot's base to the end-effector, placed in the training world."""

    base_pos_m: tuple[float, ...] = required_field(VEC3)
    """(3,): the base link's position in the training world."""
    base_quat_wxyz: tuple[float, ...] = required_field(QUAT_WXYZ)
    """(4,): the base link's orientation in the training world (unit quaternion, w first)."""
    joints: tuple[EeChainJoint, ...] = required_field(List(Record(EeChainJoint), min_length=1))
    """Base to end-effector, in order."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (what sim.kinematics.KinematicChain.from_dict takes)."""
        return to_json(self)


@dataclass(frozen=True, kw_only=True)
class RobotInfo:
    """The robot the policy drives."""

    name: str = required_field(NAME)
    """The robot description's name (panda)."""
    base_link: str = required_field(NAME)
    """The base link (goals arrive in its frame)."""
    ee_link: str = required_field(NAME)
    """The end-effector link (the chain's last)."""
    finger_joint_names: tuple[str, ...] = required_field(List(NAME))
    """Gripper joints read from joint_states (finger width = their sum, m)."""
    ee_chain: EeChain = required_field(Record(EeChain))
    """Base to end-effector kinematics (the node's forward kinematics and IK)."""
    blocked_finger_width_m: float | None = optional_field(Num(ge=0, lt=1))
    """The finger width a policy whose gripper is blocked (Reach, Push) trained with (m); the node observes it when
    the robot publishes no finger joints. Absent: the policy uses its gripper (or the bundle predates the field),
    and the finger joints are required."""
    gripper: GripperControl | None = optional_field(Record(GripperControl))
    """A policy that commands its gripper (PickAndPlace): how its last action value moves the fingers; absent
    for a blocked gripper."""


@dataclass(frozen=True, kw_only=True)
class GoalSpec:
    """Where goals come from and what counts as reaching one."""

    frame_id: str = required_field(NAME)
    """The frame goal_pose messages must be in (the robot's base link)."""
    world_low_m: tuple[float, ...] = required_field(VEC3)
    """(3,): the trained goal box's low corner, training world frame."""
    world_high_m: tuple[float, ...] = required_field(VEC3)
    """(3,): its high corner."""
    distance_threshold_m: float = required_field(POSITIVE)
    """Success: the end-effector (or object) this close to the goal."""


@dataclass(frozen=True, kw_only=True)
class CameraSpec:
    """The camera a pixel policy takes frames from (at the deployed size)."""

    name: str = required_field(NAME)
    """The training scene's camera (its image input is image_<name>)."""
    width: int = required_field(Int(ge=1))
    """Frame width the graph takes (pixels)."""
    height: int = required_field(Int(ge=1))
    """Frame height the graph takes (pixels)."""
    k: tuple[tuple[float, ...], ...] = required_field(List(List(FINITE, length=3), length=3))
    """(3, 3): pinhole intrinsics at width x height (pixels); the node compares camera_info with them."""
    encoding: str | None = optional_field(NAME)
    """Image encoding of the frames (rgb8)."""
    fovy_deg: float | None = optional_field(Num(gt=0, lt=180))
    """Vertical field of view of the training camera."""
    trained_width: int | None = optional_field(Int(ge=1))
    """Width of the images the policy trained on (pixels)."""
    trained_height: int | None = optional_field(Int(ge=1))
    """Height of the images the policy trained on (pixels)."""


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """A policy bundle's manifest.json (schema version 3): what the graph takes and gives, and what the robot side
    needs to run it. Load with from_dict (it validates and upgrades version 2), write to_dict() as JSON."""

    schema_version: ClassVar[int] = SCHEMA_VERSION

    created: str | None = optional_field(Str())
    """When export wrote it (local time, YYYY-MM-DDTHH:MM:SS)."""
    source: dict[str, Any] | None = optional_field(Free())
    """Provenance that no code reads (the run folder, the seed)."""
    policy: PolicyInfo = required_field(Record(PolicyInfo))
    """The network: agent, recurrence, the IK step for end-effector control."""
    env: EnvInfo = required_field(Record(EnvInfo))
    """The env it was trained in (task, engine, control, observation mode, reward, randomization space)."""
    joint_names: tuple[str, ...] = required_field(List(NAME, min_length=1))
    """The arm's joints in the policy's order (joint_states are matched by name)."""
    joint_limits_rad: tuple[tuple[float, ...], ...] = required_field(List(List(FINITE, length=2)))
    """(n, 2): low and high limit per joint name (the robot description's)."""
    robot: RobotInfo = required_field(Record(RobotInfo))
    """Links, finger joints and the kinematic chain."""
    goal: GoalSpec = required_field(Record(GoalSpec))
    """The goal frame, trained goal box and success distance."""
    control_rate_hz: float = required_field(POSITIVE)
    """The rate the policy was trained to act at."""
    camera: CameraSpec | None = required_field(Nullable(Record(CameraSpec)))
    """The camera of a pixel policy; null for state policies."""
    randomization: dict[str, Any] | None = required_field(Nullable(Free({"sampler": NAME})))
    """The training sampler's state (provenance: its kind under `sampler`, the rest as it wrote it); null for none."""
    observation: Observation = required_field(Record(Observation))
    """The graph's observation inputs."""
    action: ActionSpec = required_field(Record(ActionSpec))
    """The action output."""
    state: tuple[StateSpec, ...] = required_field(List(Record(StateSpec)))
    """Recurrent state inputs (LSTM h, c); empty for feed-forward policies."""
    outputs: tuple[OutputSpec, ...] = required_field(List(Record(OutputSpec), min_length=1))
    """Every graph output, in order."""
    onnx_sha256: str = required_field(Str(pattern="[0-9a-f]{64}", pattern_doc="64 lowercase hex digits"))
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
            said = "is missing" if "schema_version" not in data else f"{show(version)} is not {SCHEMA_VERSION}"
            raise BundleError(
                f"{where}: schema_version {said}; this sim2real reads version {SCHEMA_VERSION} (and upgrades 2): "
                "re-export the policy with `sim2real export RUN`"
            )
        body = {k: v for k, v in data.items() if k != "schema_version"}
        problems = list(field_problems(body, Record(cls)))
        manifest = None
        if not problems:
            manifest = build(body, Record(cls))
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
            yield f"joint_limits_rad[{i}] is {show([low, high])}: low must be < high"


def _chain_rules(m: Manifest) -> Iterator[str]:
    chain = m.robot.ee_chain
    for i, joint in enumerate(chain.joints):
        if joint.type != "fixed" and not any(joint.axis):
            yield f"robot.ee_chain.joints[{i}].axis is {show(joint.axis)}: a moving joint needs a non-zero axis"
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
            f"policy.recurrent is {show(m.policy.recurrent)} but state has {len(m.state)} entries: a recurrent "
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
        yield f"env.obs_mode is {show(m.env.obs_mode)} but no observation input is an image (image_<camera>)"


def _output_rules(m: Manifest) -> Iterator[str]:
    action, outputs = m.action, m.outputs
    if not action.low < action.high:
        yield f"action.low is {show(action.low)}: must be < action.high ({show(action.high)})"
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
            yield f"{low_path}[{i}] is {show(lo)}: must be < {high_path}[{i}] ({show(hi)})"


def _unit_quaternion(q: Sequence[float], path: str) -> Iterator[str]:
    norm = math.sqrt(sum(v * v for v in q))
    if abs(norm - 1.0) > QUAT_NORM_TOLERANCE:
        yield f"{path} has norm {norm:.4g}: must be a unit quaternion"
