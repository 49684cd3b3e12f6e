"""Forward kinematics of one serial chain (base -> a link) in plain numpy, serialisable into a policy bundle.

The policy node rebuilds the end-effector signals of the observation from joint_states with this, without a
simulator or tf2; the simulator's own end-effector pose agrees with it (tests/sim/test_kinematics.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.transforms import mat_to_quat, quat_to_mat, rpy_to_mat

JOINT_TYPES = ("fixed", "revolute", "continuous", "prismatic")


@dataclass(frozen=True)
class ChainJoint:
    """One joint of the chain: its fixed origin in the parent link and, if it moves, its axis."""

    name: str
    type: str
    xyz_m: tuple[float, float, float]
    rpy_rad: tuple[float, float, float]
    axis: tuple[float, float, float]


class KinematicChain:
    """Joints from the robot base to one link; `base_pos_m`/`base_quat_wxyz` place the base in the world."""

    def __init__(
        self,
        joints: Sequence[ChainJoint],
        base_pos_m: Sequence[float] | np.ndarray = (0.0, 0.0, 0.0),
        base_quat_wxyz: Sequence[float] | np.ndarray = (1.0, 0.0, 0.0, 0.0),
    ) -> None:
        self.joints = tuple(joints)
        for j in self.joints:
            if j.type not in JOINT_TYPES:
                raise ValueError(f"chain joint {j.name!r}: type {j.type!r} is not one of {list(JOINT_TYPES)}")
            if j.type != "fixed" and not np.linalg.norm(j.axis) > 0:
                raise ValueError(f"chain joint {j.name!r}: axis {j.axis} has zero length")
        self.base_pos_m = np.asarray(base_pos_m, float)
        self.base_quat_wxyz = np.asarray(base_quat_wxyz, float)
        self._base = np.eye(4)
        self._base[:3, :3] = quat_to_mat(self.base_quat_wxyz)
        self._base[:3, 3] = self.base_pos_m
        self._origins = []
        for j in self.joints:
            t = np.eye(4)
            t[:3, :3] = rpy_to_mat(np.asarray(j.rpy_rad, float))
            t[:3, 3] = j.xyz_m
            self._origins.append(t)
        self._axes = [np.asarray(j.axis, float) / (np.linalg.norm(j.axis) or 1.0) for j in self.joints]
        self._origin_rp = [(t[:3, :3].copy(), t[:3, 3].copy()) for t in self._origins]
        self._skews = []
        for a in self._axes:
            k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
            self._skews.append((k, k @ k))
        self._eye3 = np.eye(3)
        self._moving = [j.name for j in self.joints if j.type != "fixed"]
        self._cache_key: tuple[float, ...] | None = None
        self._cache: tuple[np.ndarray, np.ndarray, np.ndarray] = (np.eye(3), np.zeros(3), np.zeros((6, 0)))

    @property
    def moving_joint_names(self) -> list[str]:
        """Names of the joints whose value changes the pose, base first."""
        return list(self._moving)

    def _walk(self, q: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rotation (3, 3), position (3,) and Jacobian (6, n) of the last link in one pass (the last call cached:
        the node asks for pose, velocity and Jacobian of the same joints every tick)."""
        key = tuple(float(q[n]) for n in self._moving)
        if key == self._cache_key:
            return self._cache
        rot, pos = self._base[:3, :3].copy(), self._base[:3, 3].copy()
        zs, ps, kinds = [], [], []
        values = iter(key)
        for j, (o_rot, o_pos), axis, (k, k2) in zip(self.joints, self._origin_rp, self._axes, self._skews):
            pos = pos + rot @ o_pos
            rot = rot @ o_rot
            if j.type == "fixed":
                continue
            value = next(values)
            zs.append(rot @ axis)
            ps.append(pos)
            kinds.append(j.type)
            if j.type == "prismatic":
                pos = pos + rot @ (axis * value)
            else:
                rot = rot @ (self._eye3 + np.sin(value) * k + (1.0 - np.cos(value)) * k2)
        jac = np.zeros((6, len(zs)))
        for i, (z, p, kind) in enumerate(zip(zs, ps, kinds)):
            if kind == "prismatic":
                jac[:3, i] = z
            else:
                d = pos - p
                jac[0, i] = z[1] * d[2] - z[2] * d[1]
                jac[1, i] = z[2] * d[0] - z[0] * d[2]
                jac[2, i] = z[0] * d[1] - z[1] * d[0]
                jac[3:, i] = z
        self._cache_key, self._cache = key, (rot, pos, jac)
        return rot, pos, jac

    def transform(self, q: Mapping[str, float]) -> np.ndarray:
        """World transform (4, 4) of the chain's last link for joint values `q` (name -> rad or m)."""
        rot, pos, _ = self._walk(q)
        t = np.eye(4)
        t[:3, :3], t[:3, 3] = rot, pos
        return t

    def jacobian(self, q: Mapping[str, float]) -> np.ndarray:
        """World-frame Jacobian (6, n) of the last link's origin w.r.t. the moving joints: linear rows, then angular."""
        return self._walk(q)[2].copy()

    def pose(self, q: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """World position (3,) m and quaternion (4,) wxyz of the chain's last link."""
        rot, pos, _ = self._walk(q)
        return pos.copy(), mat_to_quat(rot)

    def position_velocity(self, q: Mapping[str, float], qd: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """World position (3,) m and linear velocity (3,) m/s of the last link: J(q) qd."""
        _, pos, jac = self._walk(q)
        return pos.copy(), jac[:3] @ np.array([float(qd[n]) for n in self._moving])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (the bundle manifest's `robot.ee_chain`)."""
        return {
            "base_pos_m": self.base_pos_m.tolist(),
            "base_quat_wxyz": self.base_quat_wxyz.tolist(),
            "joints": [
                {
                    "name": j.name,
                    "type": j.type,
                    "xyz_m": list(j.xyz_m),
                    "rpy_rad": list(j.rpy_rad),
                    "axis": list(j.axis),
                }
                for j in self.joints
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "chain") -> KinematicChain:
        """Inverse of to_dict; ValueError names the field that is wrong."""
        try:
            joints = [
                ChainJoint(
                    str(j["name"]),
                    str(j["type"]),
                    _vec3(j["xyz_m"], f"{source}.joints[{i}].xyz_m"),
                    _vec3(j["rpy_rad"], f"{source}.joints[{i}].rpy_rad"),
                    _vec3(j["axis"], f"{source}.joints[{i}].axis"),
                )
                for i, j in enumerate(data["joints"])
            ]
            return cls(joints, data["base_pos_m"], data["base_quat_wxyz"])
        except KeyError as e:
            raise ValueError(f"{source}: missing field {e}") from None


def _vec3(value: Any, field: str) -> tuple[float, float, float]:
    v = np.asarray(value, float)
    if v.shape != (3,) or not np.all(np.isfinite(v)):
        raise ValueError(f"{field} must be 3 finite numbers, got {value!r}")
    return (float(v[0]), float(v[1]), float(v[2]))
