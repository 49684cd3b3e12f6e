"""The engine backends by name: `BACKENDS` (the one list of engine names) and `make_backend`, which imports the
chosen implementation only when asked (the interface, sim.backend, imports neither)."""

from __future__ import annotations

from sim.backend import Backend
from sim.robot import RobotDescription
from sim.scene import SceneSpec

#: Engine names, in the order tests and benchmarks run them.
BACKENDS = ("mujoco", "pybullet")


def make_backend(name: str, scene: SceneSpec, robot: RobotDescription | None = None) -> Backend:
    """Build the named backend ('mujoco' or 'pybullet') for a scene (the Panda unless `robot` is given)."""
    from sim.robot import panda

    robot = robot or panda()
    if name == "mujoco":
        from sim.mujoco.backend import MujocoBackend

        return MujocoBackend(scene, robot)
    if name == "pybullet":
        from sim.pybullet.backend import PybulletBackend

        return PybulletBackend(scene, robot)
    raise ValueError(f"unknown backend {name!r}; choose one of {BACKENDS}")
