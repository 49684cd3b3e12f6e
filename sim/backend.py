"""The interface every engine backend implements, and the shared parts (property dispatch, input checks)."""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping, Sequence

import numpy as np

from sim.observation import RawSignals
from sim.properties import KINDS, check_value, concrete_name, flat_layout, match_elements, parse_name
from sim.property_target import FlatSetter
from sim.robot import RobotDescription
from sim.scene import SceneSpec

# flat_layout lives with the property names (sim.properties); it stays importable from here.
__all__ = ["GUARDED_KINDS", "Backend", "Pose", "flat_layout"]

#: Kinds whose valid values are not a box: compiled setters still validate them on every write.
GUARDED_KINDS = frozenset({"joint_range", "camera_quat", "light_dir"})
Pose = tuple[np.ndarray, np.ndarray]  # position (3,) m, quaternion (4,) wxyz


class Backend(abc.ABC):
    """A physics engine realising a SceneSpec with the Panda in it; a PropertyTarget for the engine's properties.

    Joint vectors are ordered as `robot.movable_joints`: the 7 arm joints, then the 2 finger joints.
    Control: PD actuators (gains `actuator_kp`/`actuator_kd`) with gravity compensation of the arm track joint
    targets; `step` holds the targets for one control period of `scene.n_substeps` physics steps.
    """

    name: str = ""

    def __init__(self, scene: SceneSpec, robot: RobotDescription) -> None:
        self.scene = scene
        self.robot = robot
        self.n_arm = len(robot.arm_joints)
        self.n_fingers = len(robot.finger_joints)

    # -- lifecycle and control ------------------------------------------------------------------
    @abc.abstractmethod
    def reset(self, arm_q_rad: np.ndarray, finger_q_m: float, objects: Mapping[str, Pose]) -> None:
        """Teleport the arm to `arm_q_rad` (7,), each finger to `finger_q_m`, zero velocities, hold targets there;
        place each named object at its pose (objects not named keep their scene pose)."""

    @abc.abstractmethod
    def step(self, arm_target_rad: np.ndarray, finger_target_m: float, n_substeps: int | None = None) -> None:
        """Set PD targets (arm (7,) rad, each finger m) and advance one control period of `n_substeps` physics
        steps (default `scene.n_substeps`; control-rate jitter varies it)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release engine resources (renderers, connections)."""

    # -- state ----------------------------------------------------------------------------------
    @abc.abstractmethod
    def joint_state(self) -> tuple[np.ndarray, np.ndarray]:
        """Positions (9,) and velocities (9,) of the movable joints."""

    @abc.abstractmethod
    def link_pose(self, link: str) -> Pose:
        """World pose of a robot link frame (URDF frame, not the centre of mass)."""

    @abc.abstractmethod
    def link_velocity(self, link: str) -> tuple[np.ndarray, np.ndarray]:
        """World linear (3,) m/s and angular (3,) rad/s velocity of a robot link frame's origin."""

    @abc.abstractmethod
    def object_pose(self, name: str) -> Pose:
        """World pose of a scene object (centre of its shape)."""

    @abc.abstractmethod
    def object_velocity(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """World linear (3,) and angular (3,) velocity of a scene object."""

    @abc.abstractmethod
    def set_object_pose(self, name: str, pos_m: np.ndarray, quat: np.ndarray) -> None:
        """Teleport an object (zeroing its velocity); used for the goal marker and resets."""

    @abc.abstractmethod
    def arm_jacobian(self, link: str) -> np.ndarray:
        """World-frame Jacobian (6, 7) of `link`'s frame origin w.r.t. the arm joints: linear rows then angular."""

    def read_signals(self, obj: str | None) -> tuple[RawSignals, np.ndarray]:
        """Everything an observation is built from, at this instant: the RawSignals (the object `obj`'s state
        too unless None) and the positions (9,) of the movable joints. Engines may override it with a faster
        read of the same values."""
        q, qd = self.joint_state()
        ee = self.robot.ee_link
        ee_pos, _ = self.link_pose(ee)
        ee_vel, _ = self.link_velocity(ee)
        objects: tuple[np.ndarray, ...] = ()
        if obj is not None:
            objects = (*self.object_pose(obj), *self.object_velocity(obj))
        return RawSignals(q[:7], qd[:7], ee_pos, ee_vel, float(q[7] + q[8]), *objects), q

    def object_half_height_m(self, name: str) -> float:
        """Half the vertical extent of a task object as it is now (its spec's, times `object_scale`)."""
        spec = next((o for o in self.scene.objects if o.name == name), None)
        if spec is None:
            raise KeyError(f"unknown object {name!r}; task objects: {[o.name for o in self.scene.objects]}")
        return spec.half_height_m * float(self._get("object_scale", name))

    def ee_pose(self) -> Pose:
        """World pose of the end-effector frame (`robot.ee_link`)."""
        return self.link_pose(self.robot.ee_link)

    # -- rendering -----------------------------------------------------------------------------
    @abc.abstractmethod
    def render(self, camera: str, depth: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """RGB image (H, W, 3) uint8 from a named camera at its spec size; with depth=True also depth (H, W)
        float32 in metres along the optical axis."""

    @abc.abstractmethod
    def camera_pose(self, camera: str) -> Pose:
        """World pose of a camera (looks along its -z axis, +y up)."""

    # -- properties ----------------------------------------------------------------------------
    @abc.abstractmethod
    def elements(self, element_type: str) -> list[str]:
        """Names of the elements of a type (see sim.properties): body (robot links with mass, movable objects),
        collision (links and objects with collision geometry, the table included), visual (links and objects
        that are drawn, the goal marker included), movable (task objects that move: what object_scale resizes),
        joint and actuator (the movable joints), light, camera."""

    @abc.abstractmethod
    def _get(self, kind: str, element: str | None) -> np.ndarray:
        """Current value of one property of one element (None for global properties)."""

    @abc.abstractmethod
    def _set(self, kind: str, element: str | None, value: np.ndarray) -> None:
        """Set one property of one element; `value` is already validated."""

    def property_elements(self, name: str) -> list[str | None]:
        """The concrete elements a property name refers to ([None] for a global property)."""
        kind, pattern = parse_name(name)
        if kind.env_level:
            raise KeyError(
                f"property {name!r} is applied by the env around the engine (delays, noise, jitter); "
                "set it with env.unwrapped.set_property"
            )
        if pattern is None:
            return [None]
        return list(match_elements(name, pattern, self.elements(kind.elements)))

    def concrete_property_names(self, name: str) -> list[str]:
        """The concrete property names (`kind:element`, or `kind`) that a possibly wildcard name refers to."""
        kind, _ = parse_name(name)
        return [concrete_name(kind.name, e) for e in self.property_elements(name)]

    def get_property(self, name: str) -> dict[str, np.ndarray]:
        """Values of `kind:pattern` for every matching element, keyed by the concrete property name."""
        kind, _ = parse_name(name)
        return {concrete_name(kind.name, e): self._get(kind.name, e).copy() for e in self.property_elements(name)}

    def set_property(self, name: str, value: object) -> None:
        """Set `kind:pattern` to `value` on every matching element (validated first; nothing changes on error)."""
        self.set_properties({name: value})

    def set_properties(self, values: Mapping[str, object]) -> None:
        """Set several properties at once: every value is validated before any changes, and derived engine
        quantities are recomputed once at the end instead of after each property (the randomized-reset path)."""
        plan: list[tuple[str, str | None, np.ndarray]] = []
        for name, value in values.items():
            kind, _ = parse_name(name)
            arr = check_value(name, kind, value)
            plan.extend((kind.name, element, arr) for element in self.property_elements(name))
        self._begin_batch()
        try:
            for kind_name, element, arr in plan:
                self._set(kind_name, element, arr)
        finally:
            self._end_batch()

    def compile_setter(self, names: Sequence[str]) -> FlatSetter:
        """A fast writer for a fixed list of concrete property names (`kind:element` or `kind`), for the
        randomized-reset path. The writer takes one flat float vector: every property's value raveled, in the
        order of `names` (see flat_layout), and `forward=False` when a reset or step follows at once (an engine
        may then leave recomputing positions to it). Names are resolved once here; per call only the checks that
        a domain box cannot prove are made (GUARDED_KINDS: joint limit order, quaternion norm, light direction).

        The caller guarantees the other values lie in their kind's domain; the randomizer proves that when it
        binds a space (every value its ranges can produce is checked then). Derived engine quantities are
        recomputed once per call.
        """
        plan = []
        for name, sl in zip(names, flat_layout(names)):
            kind, element = parse_name(name)
            if element is not None:
                self.property_elements(name)  # resolves, and raises for an unknown element
            plan.append((name, kind, element, sl))

        def write(flat: np.ndarray, forward: bool = True) -> None:
            self._begin_batch()
            try:
                for name, kind, element, sl in plan:
                    v = flat[sl].reshape(kind.shape)
                    self._set(kind.name, element, check_value(name, kind, v) if kind.name in GUARDED_KINDS else v)
            finally:
                self._end_batch(forward)

        return write

    def _begin_batch(self) -> None:
        """Hook: the following _set calls may defer recomputing derived quantities until _end_batch."""
        return None

    def _end_batch(self, forward: bool = True) -> None:
        """Hook: recompute whatever the _set calls since _begin_batch deferred (positions only if `forward`)."""
        return None

    def property_names(self) -> list[str]:
        """Every concrete property name this scene has (`kind:element`, or `kind` for global ones)."""
        out = []
        for kind in KINDS.values():
            if kind.env_level:
                continue
            if kind.elements == "global":
                out.append(kind.name)
            else:
                out.extend(f"{kind.name}:{e}" for e in self.elements(kind.elements))
        return out

    # -- shared checks -------------------------------------------------------------------------
    def _check_targets(self, arm_target_rad: np.ndarray, finger_target_m: float) -> np.ndarray:
        arm = np.asarray(arm_target_rad, dtype=float)
        if arm.shape != (self.n_arm,):
            raise ValueError(f"arm target must have shape ({self.n_arm},), got {arm.shape}")
        if not (all(map(math.isfinite, arm.tolist())) and math.isfinite(finger_target_m)):
            raise ValueError(f"joint targets must be finite, got arm={arm.tolist()} finger={finger_target_m}")
        return arm

    def _check_camera(self, camera: str) -> None:
        if camera not in self.elements("camera"):
            raise KeyError(f"unknown camera {camera!r}; this scene has {self.elements('camera')}")
