"""Simulation core: the Panda description, backend-neutral scenes, MuJoCo and PyBullet backends, tasks.

Importing `sim` registers the gymnasium ids Sim2Real/Reach-v0, Sim2Real/Push-v0, Sim2Real/PickAndPlace-v0. On a
robot PC (the `robot` extra: no gymnasium, no engines) there is nothing to register, and the numpy-only modules the
policy node shares with the simulator (observation, kinematics, ik, transforms) import alone.
"""

__all__ = ["ENV_IDS", "register_envs"]

try:
    import gymnasium  # noqa: F401
except ImportError:  # a robot PC: see tests/ros/test_robot_install.py
    ENV_IDS: dict[str, tuple[str, int]] = {}

    def register_envs() -> None:
        """No envs without gymnasium."""
        raise ModuleNotFoundError("no gymnasium here: the envs need the sim extra (pip install 'sim2real[sim]')")
else:
    from sim.registration import ENV_IDS, register_envs

    register_envs()
