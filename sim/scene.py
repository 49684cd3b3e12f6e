"""Backend-neutral scene description: table, objects, goal marker, lights and named cameras."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from sim.fiducials import PatternSpec
from sim.transforms import look_at_quat

Vec3 = tuple[float, float, float]
Quat = tuple[float, float, float, float]
RGBA = tuple[float, float, float, float]

#: Arm configuration the tasks start from (panda-gym's neutral pose; Push starts lower), arm joints 1..7, rad.
NEUTRAL_ARM_Q_RAD: tuple[float, ...] = (0.0, 0.41, 0.0, -1.85, 0.0, 2.26, 0.79)
#: Default PD gains per arm joint (N m / rad and N m s / rad) and for each finger (N / m, N s / m).
ARM_KP: tuple[float, ...] = (1000.0, 1000.0, 1000.0, 1000.0, 500.0, 500.0, 500.0)
ARM_KD: tuple[float, ...] = (100.0, 100.0, 100.0, 100.0, 50.0, 50.0, 50.0)
FINGER_KP = 400.0
FINGER_KD = 10.0


@dataclass(frozen=True)
class ObjectSpec:
    """A primitive rigid object.

    `size_m`: box half-extents (3,); sphere (radius,); cylinder (radius, half-height).
    `friction`: sliding, torsional, rolling coefficients. `fixed` objects never move (the table);
    `visual_only` objects have no collision and no mass (the goal marker).
    """

    name: str
    shape: str
    size_m: tuple[float, ...]
    pos_m: Vec3
    quat: Quat = (1.0, 0.0, 0.0, 0.0)
    mass_kg: float = 1.0
    rgba: RGBA = (0.1, 0.6, 0.1, 1.0)
    friction: Vec3 = (1.0, 0.005, 0.0001)
    fixed: bool = False
    visual_only: bool = False

    def __post_init__(self) -> None:
        n = {"box": 3, "sphere": 1, "cylinder": 2}.get(self.shape)
        if n is None:
            raise ValueError(f"object {self.name!r}: shape must be box, sphere or cylinder, not {self.shape!r}")
        if len(self.size_m) != n or min(self.size_m) <= 0:
            raise ValueError(f"object {self.name!r}: {self.shape} needs {n} positive sizes, got {self.size_m}")

    @property
    def half_height_m(self) -> float:
        """Half of the object's vertical extent when upright."""
        return (
            self.size_m[2] if self.shape == "box" else self.size_m[-1] if self.shape == "cylinder" else self.size_m[0]
        )


@dataclass(frozen=True)
class LightSpec:
    """A directional-ish spot light: position, direction it points, diffuse and ambient colour."""

    name: str
    pos_m: Vec3
    dir: Vec3
    diffuse: Vec3 = (0.7, 0.7, 0.7)
    ambient: Vec3 = (0.3, 0.3, 0.3)
    specular: Vec3 = (0.2, 0.2, 0.2)


@dataclass(frozen=True)
class CameraSpec:
    """A named pinhole camera (square pixels, vertical field of view).

    The pose is in the frame of `parent` (a robot link) or the world when `parent` is None. Camera frame
    convention: looks along -z, +y is image up (MuJoCo's).
    """

    name: str
    pos_m: Vec3
    quat: Quat
    fovy_deg: float = 45.0
    width: int = 84
    height: int = 84
    parent: str | None = None
    near_m: float = 0.01
    far_m: float = 5.0


@dataclass(frozen=True)
class SceneSpec:
    """Everything a backend needs to build the world; tasks fill in the objects."""

    robot_base_pos_m: Vec3 = (-0.6, 0.0, 0.0)
    table: ObjectSpec = field(
        default_factory=lambda: ObjectSpec(
            "table", "box", (0.55, 0.35, 0.2), (-0.3, 0.0, -0.2), rgba=(0.55, 0.45, 0.35, 1.0), fixed=True
        )
    )
    objects: tuple[ObjectSpec, ...] = ()
    target: ObjectSpec | None = field(
        default_factory=lambda: ObjectSpec(
            "target", "sphere", (0.02,), (0.0, 0.0, 0.05), rgba=(0.9, 0.1, 0.1, 0.5), visual_only=True
        )
    )
    lights: tuple[LightSpec, ...] = (LightSpec("key", (0.3, -0.6, 1.5), (-0.2, 0.4, -1.0)),)
    cameras: tuple[CameraSpec, ...] = field(default_factory=lambda: default_cameras())
    patterns: tuple[PatternSpec, ...] = ()
    """Prints (ArUco markers, checkerboards) on objects or robot links, drawn as geometry (sim.fiducials)."""
    gravity: Vec3 = (0.0, 0.0, -9.81)
    physics_dt_s: float = 0.002
    n_substeps: int = 20
    arm_kp: tuple[float, ...] = ARM_KP
    arm_kd: tuple[float, ...] = ARM_KD
    finger_kp: float = FINGER_KP
    finger_kd: float = FINGER_KD

    @property
    def control_dt_s(self) -> float:
        """Duration of one env step (physics_dt_s * n_substeps)."""
        return self.physics_dt_s * self.n_substeps

    @property
    def all_objects(self) -> tuple[ObjectSpec, ...]:
        """Table, task objects and the goal marker, in build order."""
        return (self.table, *self.objects, *((self.target,) if self.target else ()))

    def camera(self, name: str) -> CameraSpec:
        for cam in self.cameras:
            if cam.name == name:
                return cam
        raise KeyError(f"unknown camera {name!r}; this scene has {[c.name for c in self.cameras]}")

    def with_image_size(self, width: int, height: int) -> SceneSpec:
        """Copy with every camera rendering at width x height."""
        if width < 8 or height < 8:
            raise ValueError(f"image size must be at least 8x8, got {width}x{height}")
        return replace(self, cameras=tuple(replace(c, width=width, height=height) for c in self.cameras))


#: The `front` camera: over the table's far edge, 0.5 m from the table centre it looks at (the object tracker's).
FRONT_CAMERA_EYE_M: Vec3 = (0.45, 0.0, 0.3)
FRONT_CAMERA_FOVY_DEG = 40.0


def default_cameras() -> tuple[CameraSpec, ...]:
    """A fixed `scene` camera facing the robot over the table, a `wrist` camera on the hand, and a `front` camera
    closer to the table (where the object tracker sees a 3 cm marker about 35 px wide at 640x480)."""
    eye = np.array([0.55, 0.0, 0.55])
    scene_q = look_at_quat(eye, np.array([-0.15, 0.0, 0.0]))
    front_q = look_at_quat(np.array(FRONT_CAMERA_EYE_M), np.zeros(3))
    return (
        CameraSpec("scene", (0.55, 0.0, 0.55), tuple(float(x) for x in scene_q), fovy_deg=50.0),  # type: ignore[arg-type]
        # In the hand frame the fingers point along +z; the camera looks along its -z, hence the flip about x.
        CameraSpec("wrist", (0.06, 0.0, 0.02), (0.0, 1.0, 0.0, 0.0), fovy_deg=75.0, parent="panda_hand"),
        CameraSpec("front", FRONT_CAMERA_EYE_M, tuple(float(x) for x in front_q), fovy_deg=FRONT_CAMERA_FOVY_DEG),  # type: ignore[arg-type]
    )


def cube(name: str = "object", pos_m: Vec3 = (0.0, 0.0, 0.02), half_m: float = 0.02, **kw: object) -> ObjectSpec:
    """A cube resting on the table at `pos_m`."""
    return ObjectSpec(name, "box", (half_m, half_m, half_m), pos_m, **kw)  # type: ignore[arg-type]


def primitive(shape: str, name: str = "object", **kw: object) -> ObjectSpec:
    """A task object of the named shape (cube, cylinder, sphere), about 4 cm across, resting on the table."""
    if shape == "cube":
        return cube(name, **kw)  # type: ignore[arg-type]
    if shape == "cylinder":
        return ObjectSpec(name, "cylinder", (0.02, 0.02), (0.0, 0.0, 0.02), **kw)  # type: ignore[arg-type]
    if shape == "sphere":
        return ObjectSpec(name, "sphere", (0.02,), (0.0, 0.0, 0.02), **kw)  # type: ignore[arg-type]
    raise ValueError(f"object_shape must be cube, cylinder or sphere, not {shape!r}")


def with_table_height(scene: SceneSpec, height_m: float) -> SceneSpec:
    """The scene with its table top `height_m` above the robot base (the base stands at the world origin's height),
    the task objects on it moved along."""
    if height_m == 0.0:
        return scene

    def lifted(o: ObjectSpec) -> ObjectSpec:
        return replace(o, pos_m=(o.pos_m[0], o.pos_m[1], o.pos_m[2] + height_m))

    return replace(scene, table=lifted(scene.table), objects=tuple(lifted(o) for o in scene.objects))
