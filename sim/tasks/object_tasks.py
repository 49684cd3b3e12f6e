"""Tasks with one object on the table: Push (slide it to a goal on the table) and PickAndPlace (goal may be
in the air)."""

from __future__ import annotations

import numpy as np

from sim.cell import CellError
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
#: Objects and goals in a user's workspace keep this far in from the table's edges (m).
TABLE_MARGIN_M = 0.05


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

    def cell_goal_box(self, scene: SceneSpec) -> tuple[np.ndarray, np.ndarray]:
        """Objects and goals stay on the table: the task's box lifted with it, or the workspace's part of the table
        top (TABLE_MARGIN_M in from its edges), from the table top up by the task's own height range."""
        low, high = super().cell_goal_box(scene)
        if self.cell.goal_workspace_base_m is None:
            return low, high
        table = scene.table
        top = table.pos_m[2] + table.size_m[2]
        edge_lo = np.array(table.pos_m[:2]) - np.array(table.size_m[:2]) + TABLE_MARGIN_M
        edge_hi = np.array(table.pos_m[:2]) + np.array(table.size_m[:2]) - TABLE_MARGIN_M
        xy_lo, xy_hi = np.maximum(low[:2], edge_lo), np.minimum(high[:2], edge_hi)
        base = np.asarray(scene.robot_base_pos_m, float)
        if np.any(xy_lo >= xy_hi):
            raise CellError(
                f"{self.task_name}: goal_workspace_base_m holds no part of the table top (base frame x "
                f"[{edge_lo[0] - base[0]:.3f}, {edge_hi[0] - base[0]:.3f}], y [{edge_lo[1] - base[1]:.3f}, "
                f"{edge_hi[1] - base[1]:.3f}] m): objects and goals of this task lie on the table"
            )
        if low[2] > top + 0.02:
            raise CellError(f"{self.task_name}: goal_workspace_base_m ZLO {low[2] - base[2]:g} m lies above the table "
                            f"top ({top - base[2]:g} m): objects and goals of this task lie on it")  # fmt: skip
        dz = type(self).goal_high_m[2] - type(self).goal_low_m[2]
        return np.array([*xy_lo, top]), np.array([*xy_hi, min(high[2], top + dz)])

    @property
    def _object_z_m(self) -> float:
        return self._table_top_m + self.sim.object_half_height_m("object")

    def _table_xy(self) -> np.ndarray:
        """A point of the table region objects and goals are drawn in (world xy)."""
        return self.np_random.uniform(self.goal_low_m[:2], self.goal_high_m[:2])

    def sample_objects(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        xy = self._table_xy()
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

    def cell_start_q(self, q: np.ndarray) -> np.ndarray:
        """Start PUSH_START_EE_HEIGHT_M above the table at the centre of the table region, gripper down (the
        default pose when the table and region are the task's own)."""
        if self.cell.start_arm_q_rad is not None or (
            self.cell.goal_workspace_base_m is None and self.cell.table_height_m == 0.0
        ):
            return q
        centre = 0.5 * (self.goal_low_m[:2] + self.goal_high_m[:2])
        return self.solve_ee_position(q, np.array([*centre, self._table_top_m + PUSH_START_EE_HEIGHT_M]))

    def sample_objects(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        for _ in range(1000):
            objects = super().sample_objects()
            if np.linalg.norm(objects["object"][0][:2] - self.start_ee_pos_m[:2]) >= PUSH_OBJECT_CLEARANCE_M:
                return objects
        raise CellError(f"{self.task_name}: the table region leaves no object position {PUSH_OBJECT_CLEARANCE_M} m "
                        "from the start end-effector: widen goal_workspace_base_m")  # fmt: skip

    def sample_goal(self) -> np.ndarray:
        xy = self._table_xy()
        return np.array([xy[0], xy[1], self._object_z_m])


class PickAndPlaceEnv(_ObjectTask):
    """Pick the object up and bring it to a goal that is in the air 70% of the time (panda-gym's split)."""

    task_name = "PickAndPlace"
    uses_gripper = True
    goal_low_m = np.array([-HALF_RANGE_M, -HALF_RANGE_M, 0.0])
    goal_high_m = np.array([HALF_RANGE_M, HALF_RANGE_M, 0.3])

    def sample_goal(self) -> np.ndarray:
        xy = self._table_xy()
        top = min(0.2, self.goal_high_m[2] - self._object_z_m)
        lift = 0.0 if self.np_random.random() < 0.3 or top <= 0 else self.np_random.uniform(0.0, top)
        return np.array([xy[0], xy[1], self._object_z_m + lift])
