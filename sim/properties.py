"""Names, shapes and valid domains of the scene properties that randomization varies (`<kind>:<element>`)."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PropertyKind:
    """One kind of property: value shape, unit and the domain a value must lie in."""

    name: str
    shape: tuple[int, ...]
    unit: str
    elements: str  # element type: body, collision, visual, textured, joint, actuator, light, camera, global
    minimum: float | None = None  # inclusive lower bound for every component
    strictly_positive: bool = False
    doc: str = ""
    maximum: float | None = None  # inclusive upper bound for every component
    env_level: bool = False  # applied by the env (delays, noise, jitter), not by the engine backend
    integer: bool = False  # values must be whole numbers (delays in control steps)
    rebuild: bool = False  # changes geometry: some engines rebuild the body (kept apart from in-place changes)


#: Side (pixels) of the square textures that table and objects carry.
TEXTURE_SIZE = 64

KINDS: dict[str, PropertyKind] = {
    k.name: k
    for k in (
        PropertyKind("body_mass", (), "kg", "body", 0.0, True, "mass of a link or object"),
        PropertyKind("body_inertia", (3,), "kg m^2", "body", 0.0, True, "principal moments of inertia"),
        PropertyKind("geom_friction", (3,), "1", "collision", 0.0, False, "sliding, torsional, rolling friction"),
        PropertyKind("geom_rgba", (4,), "1", "visual", 0.0, False, "colour of the element's visual geoms", 1.0),
        PropertyKind(
            "texture",
            (TEXTURE_SIZE, TEXTURE_SIZE, 3),
            "1",
            "textured",
            0.0,
            False,
            "RGB image in [0, 1] mapped onto each face (multiplied by geom_rgba)",
            1.0,
        ),
        PropertyKind("joint_damping", (), "N m s/rad", "joint", 0.0, False, "viscous joint damping"),
        PropertyKind("joint_armature", (), "kg m^2", "joint", 0.0, False, "rotor inertia added to the joint"),
        PropertyKind("joint_frictionloss", (), "N m", "joint", 0.0, False, "dry (Coulomb) joint friction"),
        PropertyKind("joint_range", (2,), "rad|m", "joint", None, False, "lower and upper joint limit"),
        PropertyKind("actuator_kp", (), "N m/rad", "actuator", 0.0, True, "PD position gain"),
        PropertyKind("actuator_kd", (), "N m s/rad", "actuator", 0.0, False, "PD velocity gain"),
        PropertyKind("light_pos", (3,), "m", "light", None, False, "light position"),
        PropertyKind("light_dir", (3,), "1", "light", None, False, "direction the light points"),
        PropertyKind("light_diffuse", (3,), "1", "light", 0.0, False, "diffuse colour (intensity)", 1.0),
        PropertyKind("light_ambient", (3,), "1", "light", 0.0, False, "ambient colour", 1.0),
        PropertyKind("camera_pos", (3,), "m", "camera", None, False, "camera position in its parent frame"),
        PropertyKind("camera_quat", (4,), "1", "camera", None, False, "camera orientation wxyz in parent frame"),
        PropertyKind("camera_fovy", (), "deg", "camera", 0.0, True, "vertical field of view"),
        PropertyKind("gravity", (3,), "m/s^2", "global", None, False, "gravity vector"),
        # fmt: off
        PropertyKind(
            "object_scale",
            (),
            "1",
            "movable",
            0.0,
            True,
            doc="size of a task object relative to the scene's spec",
            maximum=10.0,
            rebuild=True,
        ),
        # -- applied by the env around the engine (sim.signal_effects) --
        PropertyKind(
            "action_delay",
            (),
            "steps",
            "global",
            0.0,
            doc="control steps before an action acts",
            env_level=True,
            integer=True,
        ),
        PropertyKind(
            "obs_delay",
            (),
            "steps",
            "global",
            0.0,
            doc="control steps an observation is late",
            env_level=True,
            integer=True,
        ),
        PropertyKind(
            "image_delay",
            (),
            "steps",
            "global",
            0.0,
            doc="control steps the camera images are late (at least obs_delay)",
            env_level=True,
            integer=True,
        ),
        PropertyKind(
            "obs_noise",
            (),
            "field unit",
            "obs_field",
            0.0,
            doc="std of Gaussian noise on an observation field",
            env_level=True,
        ),
        PropertyKind(
            "image_noise",
            (),
            "1",
            "global",
            0.0,
            doc="std of Gaussian pixel noise (intensity 0..1)",
            maximum=1.0,
            env_level=True,
        ),
        PropertyKind(
            "image_salt_pepper",
            (),
            "1",
            "global",
            0.0,
            doc="fraction of pixels set to black or white",
            maximum=1.0,
            env_level=True,
        ),
        PropertyKind(
            "image_blur",
            (),
            "px",
            "global",
            0.0,
            doc="sigma of a Gaussian blur of the image",
            maximum=10.0,
            env_level=True,
        ),
        PropertyKind(
            "control_jitter",
            (),
            "1",
            "global",
            0.0,
            doc="relative spread of each control period (physics substeps drawn per step)",
            maximum=0.9,
            env_level=True,
        ),
        # fmt: on
    )
}

#: Observation fields that `obs_noise:<field>` names, and the observation layout field each one is.
OBS_NOISE_FIELDS: dict[str, str] = {
    "joint_pos": "arm_q_rad",
    "joint_vel": "arm_qd_rad_s",
    "ee_pos": "ee_pos_m",
    "ee_vel": "ee_linvel_m_s",
    "finger_width": "finger_width_m",
    "object_pos": "object_pos_m",
    "object_quat": "object_quat_wxyz",
    "object_linvel": "object_linvel_m_s",
    "object_angvel": "object_angvel_rad_s",
}


def parse_name(name: str) -> tuple[PropertyKind, str | None]:
    """Split `kind:pattern` into its kind and the element pattern (None for global properties)."""
    kind_name, _, pattern = name.partition(":")
    kind = KINDS.get(kind_name)
    if kind is None:
        raise KeyError(f"unknown property kind {kind_name!r} in {name!r}; known kinds: {sorted(KINDS)}")
    if kind.elements == "global":
        if pattern:
            raise KeyError(f"property {kind_name!r} is global and takes no element (got {name!r})")
        return kind, None
    if not pattern:
        raise KeyError(f"property {name!r} needs an element: '{kind_name}:<name or pattern>'")
    return kind, pattern


def concrete_name(kind: str, element: str | None) -> str:
    """The concrete property name of one element's property: `kind:element`, or `kind` for a global one."""
    return kind if element is None else f"{kind}:{element}"


def split_name(name: str) -> tuple[str, str | None]:
    """A concrete property name's kind and element (None for a global property); the inverse of concrete_name."""
    kind, _, element = name.partition(":")
    return kind, element or None


def flat_layout(names: Sequence[str]) -> list[slice]:
    """Where each named property's raveled value sits in a compiled setter's flat vector (in the order of `names`)."""
    sizes = [int(np.prod(parse_name(n)[0].shape, dtype=int)) for n in names]
    ends = np.cumsum([0] + sizes)
    return [slice(int(a), int(b)) for a, b in zip(ends[:-1], ends[1:])]


def match_elements(name: str, pattern: str, available: list[str]) -> list[str]:
    """Element names matching a shell-style pattern; a pattern matching nothing is an error."""
    hits = [e for e in available if fnmatch.fnmatchcase(e, pattern)]
    if not hits:
        raise KeyError(f"property {name!r} matches no element; available: {available}")
    return hits


def check_value(name: str, kind: PropertyKind, value: object) -> np.ndarray:
    """Validate a value for `kind`: shape, finiteness and domain. Returns it as a float array."""
    arr = np.asarray(value, dtype=float)
    if arr.shape != kind.shape:
        raise ValueError(f"property {name!r} takes a value of shape {kind.shape}, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"property {name!r}: value must be finite, got {arr.tolist()}")
    if kind.minimum is not None:
        bad = arr <= kind.minimum if kind.strictly_positive else arr < kind.minimum
        if np.any(bad):
            rel = ">" if kind.strictly_positive else ">="
            got = arr.tolist() if arr.size <= 4 else f"min {arr.min()}"
            raise ValueError(f"property {name!r}: every component must be {rel} {kind.minimum}, got {got}")
    if kind.maximum is not None and np.any(arr > kind.maximum):
        raise ValueError(f"property {name!r}: every component must be <= {kind.maximum}, got max {arr.max()}")
    if kind.integer and np.any(arr != np.round(arr)):
        raise ValueError(f"property {name!r} takes whole numbers ({kind.unit}), got {arr.tolist()}")
    if kind.name == "joint_range" and arr[0] >= arr[1]:
        raise ValueError(f"property {name!r}: lower limit must be below upper, got {arr.tolist()}")
    if kind.name == "camera_quat":
        n = float(np.linalg.norm(arr))
        if n < 1e-6:
            raise ValueError(f"property {name!r}: quaternion must be non-zero")
        arr = arr / n
    if kind.name == "light_dir" and float(np.linalg.norm(arr)) < 1e-6:
        raise ValueError(f"property {name!r}: direction must be non-zero")
    return arr
