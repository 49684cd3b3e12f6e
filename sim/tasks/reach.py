"""Reach: move the end-effector to a goal point in the air (gripper blocked)."""

from __future__ import annotations

import numpy as np

from sim.observation import RawSignals
from sim.tasks.base import ArmGoalEnv


class ReachEnv(ArmGoalEnv):
    """Goal drawn in a 0.3 m cube above the table centre; achieved goal is the end-effector position."""

    task_name = "Reach"
    goal_low_m = np.array([-0.15, -0.15, 0.0])
    goal_high_m = np.array([0.15, 0.15, 0.3])

    def achieved_goal(self) -> np.ndarray:
        return self.sim.ee_pose()[0]

    def achieved_goal_from(self, raw: RawSignals) -> np.ndarray:
        return raw.ee_pos_m
