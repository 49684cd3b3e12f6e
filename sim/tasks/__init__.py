"""The goal-conditioned tasks: Reach, Push, PickAndPlace."""

from sim.tasks.object_tasks import PickAndPlaceEnv, PushEnv
from sim.tasks.reach import ReachEnv

__all__ = ["PickAndPlaceEnv", "PushEnv", "ReachEnv"]
