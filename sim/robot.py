"""The Franka Panda description: parsed once from the URDF that pybullet_data ships, read by both engines."""

from __future__ import annotations

import functools
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sim.kinematics import ChainJoint, KinematicChain
from sim.transforms import mat_to_quat, rpy_to_mat

#: Link that defines the end-effector frame (between the fingertips), as named in the URDF.
EE_LINK = "panda_grasptarget"
#: Link the wrist camera is mounted on.
HAND_LINK = "panda_hand"


@dataclass(frozen=True)
class Origin:
    """A rigid transform from the URDF: translation `xyz_m` (3,) and rotation `rpy_rad` (3,)."""

    xyz_m: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rpy_rad: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def matrix(self) -> np.ndarray:
        """Homogeneous transform (4, 4)."""
        t = np.eye(4)
        t[:3, :3] = rpy_to_mat(np.asarray(self.rpy_rad))
        t[:3, 3] = self.xyz_m
        return t


@dataclass(frozen=True)
class Joint:
    """One URDF joint; `lower`/`upper` are in rad (revolute) or m (prismatic)."""

    name: str
    type: str
    parent: str
    child: str
    origin: Origin
    axis: tuple[float, float, float]
    lower: float = 0.0
    upper: float = 0.0
    effort: float = 0.0
    velocity: float = 0.0
    mimic: str | None = None

    @property
    def movable(self) -> bool:
        """True for revolute, continuous and prismatic joints."""
        return self.type in ("revolute", "continuous", "prismatic")


@dataclass(frozen=True)
class Link:
    """One URDF link: inertial parameters and mesh file paths (already resolved to absolute paths)."""

    name: str
    mass_kg: float
    com: Origin
    inertia_diag: tuple[float, float, float]
    visual_meshes: tuple[tuple[str, Origin], ...] = ()
    collision_meshes: tuple[tuple[str, Origin], ...] = ()


@dataclass(frozen=True)
class RobotDescription:
    """The robot's links and joints in URDF order, plus the names later code looks things up by."""

    name: str
    urdf_path: Path
    links: tuple[Link, ...]
    joints: tuple[Joint, ...]
    base_link: str
    ee_link: str = EE_LINK
    hand_link: str = HAND_LINK
    _by_child: dict[str, Joint] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_child.update({j.child: j for j in self.joints})

    @property
    def movable_joints(self) -> tuple[Joint, ...]:
        """Movable joints in URDF order (7 arm joints, then the 2 finger joints)."""
        return tuple(j for j in self.joints if j.movable)

    @property
    def arm_joints(self) -> tuple[Joint, ...]:
        """The revolute arm joints in order."""
        return tuple(j for j in self.movable_joints if j.type != "prismatic")

    @property
    def finger_joints(self) -> tuple[Joint, ...]:
        """The prismatic gripper joints."""
        return tuple(j for j in self.movable_joints if j.type == "prismatic")

    @property
    def arm_joint_names(self) -> tuple[str, ...]:
        return tuple(j.name for j in self.arm_joints)

    @property
    def finger_joint_names(self) -> tuple[str, ...]:
        return tuple(j.name for j in self.finger_joints)

    @property
    def arm_limits_rad(self) -> np.ndarray:
        """Arm joint limits (7, 2): lower, upper."""
        return np.array([(j.lower, j.upper) for j in self.arm_joints])

    @property
    def finger_limits_m(self) -> tuple[float, float]:
        j = self.finger_joints[0]
        return (j.lower, j.upper)

    def link(self, name: str) -> Link:
        for link in self.links:
            if link.name == name:
                return link
        raise KeyError(f"robot {self.name!r} has no link {name!r}; links: {[x.name for x in self.links]}")

    def chain(self, link: str) -> list[Joint]:
        """Joints from the base to `link`, base first."""
        self.link(link)
        out: list[Joint] = []
        while link in self._by_child:
            j = self._by_child[link]
            out.append(j)
            link = j.parent
        return out[::-1]

    def kinematic_chain(self, link: str, base: np.ndarray | None = None) -> KinematicChain:
        """The serial chain from the base to `link`; `base` is the (4, 4) world pose of the base (identity if None)."""
        t = np.eye(4) if base is None else np.asarray(base, dtype=float)
        joints = [
            ChainJoint(j.name, "fixed" if not j.movable else j.type, j.origin.xyz_m, j.origin.rpy_rad, j.axis)
            for j in self.chain(link)
        ]
        return KinematicChain(joints, t[:3, 3], mat_to_quat(t[:3, :3]))

    def link_pose(
        self, link: str, q: dict[str, float] | np.ndarray, base: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Forward kinematics of `link` frame: position (3,) m and quaternion (4,) wxyz.

        `q` is a name->value dict or an array over `movable_joints` order (prefix allowed; missing joints are 0);
        `base` is the (4, 4) world pose of the base link (identity if None).
        """
        if not isinstance(q, dict):
            q = {j.name: float(v) for j, v in zip(self.movable_joints, np.asarray(q, dtype=float))}
        chain = self.kinematic_chain(link, base)
        return chain.pose({n: q.get(n, 0.0) for n in chain.moving_joint_names})


def _floats(text: str | None, n: int, default: float = 0.0) -> tuple[float, ...]:
    if not text:
        return (default,) * n
    vals = tuple(float(x) for x in text.split())
    if len(vals) != n:
        raise ValueError(f"expected {n} numbers, got {text!r}")
    return vals


def _origin(el: ET.Element | None) -> Origin:
    if el is None:
        return Origin()
    xyz = _floats(el.get("xyz"), 3)
    rpy = _floats(el.get("rpy"), 3)
    return Origin((xyz[0], xyz[1], xyz[2]), (rpy[0], rpy[1], rpy[2]))


def _meshes(link_el: ET.Element, tag: str, package_dir: Path) -> tuple[tuple[str, Origin], ...]:
    out = []
    for el in link_el.findall(tag):
        mesh = el.find("geometry/mesh")
        if mesh is None:
            continue
        filename = mesh.get("filename", "")
        if filename.startswith("package://"):
            filename = str(package_dir / filename[len("package://") :])
        out.append((filename, _origin(el.find("origin"))))
    return tuple(out)


def parse_urdf(path: str | Path) -> RobotDescription:
    """Parse a URDF file; `package://` mesh paths resolve against the URDF's folder."""
    path = Path(path)
    root = ET.parse(path).getroot()
    package_dir = path.parent
    links = []
    for el in root.findall("link"):
        inertial = el.find("inertial")
        mass, com, inertia = 0.0, Origin(), (0.0, 0.0, 0.0)
        if inertial is not None:
            mass_el = inertial.find("mass")
            mass = float(mass_el.get("value", 0.0)) if mass_el is not None else 0.0
            com = _origin(inertial.find("origin"))
            i_el = inertial.find("inertia")
            if i_el is not None:
                inertia = (float(i_el.get("ixx", 0)), float(i_el.get("iyy", 0)), float(i_el.get("izz", 0)))
        links.append(
            Link(
                name=el.get("name", ""),
                mass_kg=mass,
                com=com,
                inertia_diag=inertia,
                visual_meshes=_meshes(el, "visual", package_dir),
                collision_meshes=_meshes(el, "collision", package_dir),
            )
        )
    joints = []
    for el in root.findall("joint"):
        limit = el.find("limit")
        axis_el = el.find("axis")
        axis = _floats(axis_el.get("xyz") if axis_el is not None else None, 3)
        mimic = el.find("mimic")
        parent_el, child_el = el.find("parent"), el.find("child")
        if parent_el is None or child_el is None:
            raise ValueError(f"{path}: joint {el.get('name')!r} lacks <parent> or <child>")
        joints.append(
            Joint(
                name=el.get("name", ""),
                type=el.get("type", "fixed"),
                parent=parent_el.get("link", ""),
                child=child_el.get("link", ""),
                origin=_origin(el.find("origin")),
                axis=(axis[0], axis[1], axis[2]) if any(axis) else (1.0, 0.0, 0.0),
                lower=float(limit.get("lower", 0.0)) if limit is not None else 0.0,
                upper=float(limit.get("upper", 0.0)) if limit is not None else 0.0,
                effort=float(limit.get("effort", 0.0)) if limit is not None else 0.0,
                velocity=float(limit.get("velocity", 0.0)) if limit is not None else 0.0,
                mimic=mimic.get("joint") if mimic is not None else None,
            )
        )
    children = {j.child for j in joints}
    roots = [link.name for link in links if link.name not in children]
    if len(roots) != 1:
        raise ValueError(f"{path}: expected one root link, found {roots}")
    return RobotDescription(
        name=root.get("name", "robot"),
        urdf_path=path,
        links=tuple(links),
        joints=tuple(joints),
        base_link=roots[0],
    )


def panda_urdf_path() -> Path:
    """Path of the Panda URDF inside pybullet_data (nothing is downloaded)."""
    import pybullet_data

    path = Path(pybullet_data.getDataPath()) / "franka_panda" / "panda.urdf"
    if not path.is_file():
        raise FileNotFoundError(f"Panda URDF not found at {path}; is pybullet installed?")
    return path


@functools.cache
def panda() -> RobotDescription:
    """The Panda description (parsed once per process)."""
    return parse_urdf(panda_urdf_path())
