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
    """Push the object (gripper closed and blocked) to a goal on the table."""

    task_name = "Push"
    goal_low_m = np.array([-HALF_RANGE_M, -HALF_RANGE_M, 0.0])
    goal_high_m = np.array([HALF_RANGE_M, HALF_RANGE_M, 0.1])

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
