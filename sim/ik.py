"""End-effector control's inverse-kinematics step, shared by the env (engine pose and Jacobian) and the policy node
(forward kinematics of joint_states), in plain numpy."""

from __future__ import annotations

import numpy as np

from sim.transforms import quat_to_mat

#: Damping of the least-squares Jacobian step in end-effector mode.
IK_DAMPING = 0.05
#: Gain on the orientation error that keeps the gripper pointing down in end-effector mode.
IK_ORIENTATION_GAIN = 0.5
#: Box the end-effector target is kept inside in ee mode (world frame, m); goals must lie in the task's own box.
EE_BOUNDS_M = np.array([[-0.35, -0.35, 0.0], [0.35, 0.35, 0.45]])


def ee_step_target(
    arm_q: np.ndarray,
    ee_pos_m: np.ndarray,
    ee_quat_wxyz: np.ndarray,
    jacobian: np.ndarray,
    delta_m: np.ndarray,
    down_quat_wxyz: np.ndarray,
    bounds_m: np.ndarray = EE_BOUNDS_M,
    damping: float = IK_DAMPING,
    orientation_gain: float = IK_ORIENTATION_GAIN,
) -> np.ndarray:
    """End-effector control's joint target (7,): one damped least-squares step on the world Jacobian (6, 7)
    toward ee_pos + delta (kept inside bounds_m), turning the gripper toward down_quat. The env computes it from the
    engine's pose and Jacobian, the policy node from forward kinematics of joint_states."""
    target = np.clip(ee_pos_m + delta_m, bounds_m[0], bounds_m[1])
    r_err = quat_to_mat(down_quat_wxyz) @ quat_to_mat(ee_quat_wxyz).T
    rot_err = 0.5 * np.array([r_err[2, 1] - r_err[1, 2], r_err[0, 2] - r_err[2, 0], r_err[1, 0] - r_err[0, 1]])
    err = np.concatenate([target - ee_pos_m, orientation_gain * rot_err])
    dq = jacobian.T @ np.linalg.solve(jacobian @ jacobian.T + damping**2 * np.eye(6), err)
    return arm_q + dq
