"""The user's cell as env settings: where goals lie (a box in the robot base frame, `panda_link0`), how high the
table top is under the base, and the pose the arm starts from. Pure numpy: the env, export and the command line
check and convert them here, and every refusal names the bound that is wrong."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sim.scene import NEUTRAL_ARM_Q_RAD

#: Start poses by name: panda-gym's neutral pose, franka_ros's `ready` pose.
NAMED_POSES: dict[str, tuple[float, ...]] = {
    "neutral": NEUTRAL_ARM_Q_RAD,
    "ready": (0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785),
}
#: The Panda's shoulder (joint 2's axis) in the base frame, and its rated reach from there (m).
SHOULDER_BASE_M = np.array([0.0, 0.0, 0.333])
REACH_M = 0.855
#: Goals nearer the base's vertical axis than this (m) are inside the arm's own footprint.
MIN_RADIUS_M = 0.2
#: The end-effector target box of end-effector control extends this far around the goal box (m).
EE_MARGIN_M = 0.05
AXES = ("X", "Y", "Z")


class CellError(ValueError):
    """A cell setting no env can take; the message names the setting and the bound."""


def parse_box(text: str | Sequence[float]) -> tuple[float, ...]:
    """`XLO,YLO,ZLO,XHI,YHI,ZHI` (m) -> 6 floats, or the same from a sequence (a YAML list)."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    try:
        box = tuple(float(p) for p in parts)
    except (TypeError, ValueError):
        raise CellError(f"goal_workspace_base_m must be XLO,YLO,ZLO,XHI,YHI,ZHI in metres, got {text!r}") from None
    if len(box) != 6:
        raise CellError(f"goal_workspace_base_m takes 6 numbers XLO,YLO,ZLO,XHI,YHI,ZHI (m), got {len(box)}: {text!r}")
    return box


def parse_start_joints(text: str, limits_rad: np.ndarray) -> tuple[float, ...] | None:
    """The start pose: empty -> None (the task's own), a NAMED_POSES name, or 7 comma-separated angles (rad) inside
    the joint limits `limits_rad` (7, 2)."""
    text = text.strip()
    if not text:
        return None
    if text in NAMED_POSES:
        q = np.array(NAMED_POSES[text])
    else:
        try:
            q = np.array([float(p) for p in text.split(",")])
        except ValueError:
            raise CellError(f"start_joints must be a pose name ({', '.join(NAMED_POSES)}) or 7 comma-separated "
                            f"angles in rad, got {text!r}") from None  # fmt: skip
        if q.shape != (7,) or not np.all(np.isfinite(q)):
            raise CellError(f"start_joints takes 7 finite angles (rad), got {len(q)}: {text!r}")
    for j, (v, (lo, hi)) in enumerate(zip(q, limits_rad)):
        if not lo <= v <= hi:
            raise CellError(f"start_joints: panda_joint{j + 1} = {v:g} rad is outside its limits [{lo:g}, {hi:g}]")
    return tuple(float(v) for v in q)


@dataclass(frozen=True)
class Cell:
    """The cell's settings (robot base frame, m). None / 0: the task's defaults, as trained before these existed."""

    goal_workspace_base_m: tuple[float, ...] | None = None
    """XLO, YLO, ZLO, XHI, YHI, ZHI."""
    table_height_m: float = 0.0
    """The table top's height relative to the base (<= 0): negative when the base stands on a pedestal."""
    start_arm_q_rad: tuple[float, ...] | None = None
    """The arm's start pose (rad)."""

    def check(self) -> Cell:
        """The cell itself when every setting is possible; CellError naming the first bound that is not."""
        h = float(self.table_height_m)
        if not (np.isfinite(h) and -1.0 <= h <= 0.0):
            raise CellError(f"table_height_m {self.table_height_m} must lie in [-1, 0] m: the table top is under the "
                            "base (0: the base stands on it; -0.2: on a 20 cm pedestal)")  # fmt: skip
        if self.goal_workspace_base_m is None:
            return self
        box = np.asarray(parse_box(self.goal_workspace_base_m)).reshape(2, 3)
        lo, hi = box
        if not np.all(np.isfinite(box)):
            raise CellError(f"goal_workspace_base_m {box.ravel().tolist()} holds non-finite values")
        for k in range(3):
            if not lo[k] < hi[k]:
                raise CellError(f"goal_workspace_base_m: {AXES[k]}LO {lo[k]:g} must be below {AXES[k]}HI {hi[k]:g}")
        if lo[2] < h:
            raise CellError(f"goal_workspace_base_m: ZLO {lo[2]:g} m lies under the table top (table_height_m {h:g})")
        corners = np.array([[x, y, z] for x in box[:, 0] for y in box[:, 1] for z in box[:, 2]])
        far = np.linalg.norm(corners - SHOULDER_BASE_M, axis=1)
        worst = int(np.argmax(far))
        if far[worst] > REACH_M:
            raise CellError(
                f"goal_workspace_base_m: the corner {np.round(corners[worst], 3).tolist()} is {far[worst]:.3f} m from "
                f"the shoulder; the arm reaches {REACH_M} m (move XHI/YHI/ZHI in, or XLO/YLO up)"
            )
        # the box must keep clear of the base's own column (the arm cannot put its hand there pointing down)
        nearest = np.clip(0.0, lo[:2], hi[:2])
        if np.linalg.norm(nearest) < MIN_RADIUS_M:
            raise CellError(
                f"goal_workspace_base_m reaches within {np.linalg.norm(nearest):.3f} m of the base's axis (XLO..XHI "
                f"[{lo[0]:g}, {hi[0]:g}], YLO..YHI [{lo[1]:g}, {hi[1]:g}]); goals need at least {MIN_RADIUS_M} m"
            )
        return self

    def goal_box_world(
        self, task_low_m: np.ndarray, task_high_m: np.ndarray, base_pos_m: Sequence[float]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The goal box in the world frame: the workspace moved by the base position (the base is not rotated in
        our scenes), or the task's own box lifted with the table."""
        base = np.asarray(base_pos_m, float)
        if self.goal_workspace_base_m is None:
            lift = np.array([0.0, 0.0, self.table_height_m])
            return np.asarray(task_low_m, float) + lift, np.asarray(task_high_m, float) + lift
        box = np.asarray(self.goal_workspace_base_m, float).reshape(2, 3)
        return box[0] + base, box[1] + base

    def ee_bounds_world(
        self, default_m: np.ndarray, goal_low_m: np.ndarray, goal_high_m: np.ndarray, base_pos_m: Sequence[float]
    ) -> np.ndarray:
        """End-effector control's target box (2, 3), world frame: the default one grown to hold the goal box with a
        margin, never below the table top."""
        lo = np.minimum(default_m[0], goal_low_m - EE_MARGIN_M)
        hi = np.maximum(default_m[1], goal_high_m + EE_MARGIN_M)
        lo[2] = max(lo[2], float(base_pos_m[2]) + self.table_height_m)
        return np.stack([lo, hi])

    def table_top_world_m(self, base_pos_m: Sequence[float]) -> float:
        """The table top's height in the world frame."""
        return float(base_pos_m[2]) + self.table_height_m
