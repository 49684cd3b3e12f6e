"""Tasks with one object on the table: Push (slide it to a goal on the table) and PickAndPlace (goal may be
in the air)."""

from __future__ import annotations

import numpy as np

from sim.observation import RawSignals
from sim.scene import SceneSpec, primitive
from sim.tasks.base import ArmGoalEnv

#: Half-side of the square (m) that objects and table goals are drawn in, centred on the world origin.
HALF_RANGE_M = 0.15
OBJECT_SHAPES = ("cube", "cylinder", "sphere")
#: Push's start: the neutral pose with the end-effector lowered to PUSH_START_EE_HEIGHT_M above the table at
#: the table's centre, gripper pointing down (solved with the ee-mode IK step on both engines; tested).
PUSH_START_ARM_Q_RAD: tuple[float, ...] = (0.0, 0.6131, 0.0, -2.0075, 0.0, 2.6206, 0.79)
PUSH_START_EE_HEIGHT_M = 0.04
#: Smallest table-plane distance (m) between Push's object and the start end-effector (FetchPush uses 0.1).
PUSH_OBJECT_CLEARANCE_M = 0.1


class _ObjectTask(ArmGoalEnv):
    """Base for tasks with an object named `object`; `object_shape` picks the primitive."""

    has_object = True

    def __init__(self, *args: object, object_shape: str = "cube", **kwargs: object) -> None:
        if object_shape not in OBJECT_SHAPES:
            raise ValueError(f"object_shape must be one of {list(OBJECT_SHAPES)}, got {object_shape!r}")
        self.object_shape = object_shape
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def make_scene(self) -> SceneSpec:
        return SceneSpec(objects=(primitive(self.object_shape, "object"),))

    @property
    def _object_z_m(self) -> float:
        return self.sim.object_half_height_m("object")

    def sample_objects(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        xy = self.np_random.uniform(-HALF_RANGE_M, HALF_RANGE_M, size=2)
        return {"object": (np.array([xy[0], xy[1], self._object_z_m]), np.array([1.0, 0.0, 0.0, 0.0]))}

    def achieved_goal(self) -> np.ndarray:
        return self.sim.object_pose("object")[0]

    def achieved_goal_from(self, raw: RawSignals) -> np.ndarray:
        return raw.object_pos_m if raw.object_pos_m is not None else self.achieved_goal()


class PushEnv(_ObjectTask):
    """Push the object (gripper closed and blocked) to a goal on the table.

    As in Gymnasium-Robotics' FetchPush, the gripper starts low (PUSH_START_EE_HEIGHT_M, pointing down) and the
    object at least PUSH_OBJECT_CLEARANCE_M away from it in the table plane: from the neutral pose 0.18 m up,
    random exploration never touched the object (0 of 200 episodes), so HER had nothing to learn from.
    """

    task_name = "Push"
    goal_low_m = np.array([-HALF_RANGE_M, -HALF_RANGE_M, 0.0])
    goal_high_m = np.array([HALF_RANGE_M, HALF_RANGE_M, 0.1])
    start_arm_q_rad = PUSH_START_ARM_Q_RAD

    def sample_objects(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        while True:
            objects = super().sample_objects()
            if np.linalg.norm(objects["object"][0][:2] - self.start_ee_pos_m[:2]) >= PUSH_OBJECT_CLEARANCE_M:
                return objects

    def sample_goal(self) -> np.ndarray:
        xy = self.np_random.uniform(-HALF_RANGE_M, HALF_RANGE_M, size=2)
        return np.array([xy[0], xy[1], self._object_z_m])


class PickAndPlaceEnv(_ObjectTask):
    """Pick the object up and bring it to a goal that is in the air 70% of the time (panda-gym's split)."""

    task_name = "PickAndPlace"
    uses_gripper = True
    goal_low_m = np.array([-HALF_RANGE_M, -HALF_RANGE_M, 0.0])
    goal_high_m = np.array([HALF_RANGE_M, HALF_RANGE_M, 0.3])

    def sample_goal(self) -> np.ndarray:
        xy = self.np_random.uniform(-HALF_RANGE_M, HALF_RANGE_M, size=2)
        lift = 0.0 if self.np_random.random() < 0.3 else self.np_random.uniform(0.0, 0.2)
        return np.array([xy[0], xy[1], self._object_z_m + lift])
