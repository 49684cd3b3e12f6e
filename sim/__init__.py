"""Simulation core: the Panda description, backend-neutral scenes, MuJoCo and PyBullet backends, tasks.

Importing `sim` registers the gymnasium ids Sim2Real/Reach-v0, Sim2Real/Push-v0, Sim2Real/PickAndPlace-v0.
"""

from sim.registration import ENV_IDS, register_envs

register_envs()

__all__ = ["ENV_IDS", "register_envs"]
