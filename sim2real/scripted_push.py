"""A stateless scripted pusher for Push in end-effector control, in numpy and as an exportable policy bundle."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.observation import field_slices

if TYPE_CHECKING:
    import torch

#: Where the end-effector sits in a Push state observation (the object block follows the proprioception).
EE_SLICE = field_slices(True)["ee_pos_m"]
#: The spot the pusher descends to lies this far behind the object, on the goal->object line (m).
BEHIND_M = 0.06
#: While pushing, the end-effector aims this far past the object, toward the goal (m).
PUSH_THROUGH_M = 0.04
#: Pushing goes on while the end-effector is this close to the object->goal line (m) ...
LINE_TOLERANCE_M = 0.02
#: ... and at least this far behind the object along it (m).
MIN_BEHIND_M = 0.02
#: ... and at most this high above the object's centre (m).
PUSH_HEIGHT_TOLERANCE_M = 0.015
#: Over the behind spot within this distance in the table plane, the pusher descends (m).
OVER_SPOT_M = 0.015
#: Lower than this above the object's centre, the end-effector rises before it travels (m).
LOW_M = 0.04
#: The pusher travels this high above the object's centre (m).
TRAVEL_HEIGHT_M = 0.08
#: Closer than this to the goal (table plane), the pusher holds still (m).
DONE_M = 0.02
#: The end-effector displacement that a full action asks for (m); sim.tasks.base.MAX_EE_STEP_M.
ACTION_SCALE_M = 0.05
#: The pusher's phases, by priority: the first whose condition holds is this step's (scripted_push_phase).
PHASES = ("push", "descend", "rise", "travel")
#: The manifest's policy.agent for this policy: no training algorithm, a script.
AGENT = "scripted_pusher"


def scripted_push_action(observation: np.ndarray, achieved_goal: np.ndarray, desired_goal: np.ndarray) -> np.ndarray:
    """The end-effector action in [-1, 1] for Sim2Real/Push-v0 with control="ee", from this step's observation alone.

    observation: (n,) or (B, n) the state observation (end-effector at EE_SLICE); achieved_goal, desired_goal:
    (3,) or (B, 3) the object's and the goal's positions (m, world frame). Returns (3,) or (B, 3) float32.

    The phase is read from the geometry each step (scripted_push_phase), so the policy needs no memory: push
    through the object toward the goal when the end-effector is low, on the object->goal line and behind the
    object; descend when over the spot behind the object (seen from the goal); otherwise rise first if low (never
    sweep the object along), then travel high to the behind spot. Heights are relative to the object's centre, so
    any table height works.
    """
    ee, conditions, targets = _plan(observation, achieved_goal, desired_goal)
    target = np.select(conditions, targets[:-1], targets[-1])
    return np.clip((target - ee) / ACTION_SCALE_M, -1.0, 1.0).astype(np.float32)


def scripted_push_phase(observation: np.ndarray, achieved_goal: np.ndarray, desired_goal: np.ndarray) -> np.ndarray:
    """The phase scripted_push_action acts in: () or (B,) int, an index into PHASES (inputs as it takes them)."""
    _, conditions, _ = _plan(observation, achieved_goal, desired_goal)
    return np.select(conditions, list(range(len(conditions))), len(conditions))[..., 0]


def _plan(
    observation: np.ndarray, achieved_goal: np.ndarray, desired_goal: np.ndarray
) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """The end-effector (..., 3), the conditions of push, descend, rise (each (..., 1) bool, in PHASES' order) and
    the targets of all four phases (each (..., 3), m)."""
    ee = np.asarray(observation, np.float64)[..., EE_SLICE]
    obj, goal = np.asarray(achieved_goal, np.float64), np.asarray(desired_goal, np.float64)
    to_goal = goal[..., :2] - obj[..., :2]
    dist_m = np.sqrt(np.sum(to_goal**2, axis=-1, keepdims=True))
    u = to_goal / np.maximum(dist_m, 1e-6)
    off = ee[..., :2] - obj[..., :2]
    lateral_m = np.abs(off[..., :1] * u[..., 1:] - off[..., 1:] * u[..., :1])
    along_m = np.sum(off * u, axis=-1, keepdims=True)
    height_m = ee[..., 2:] - obj[..., 2:]
    behind = obj[..., :2] - BEHIND_M * u
    from_spot_m = np.sqrt(np.sum((ee[..., :2] - behind) ** 2, axis=-1, keepdims=True))
    pushing = (height_m < PUSH_HEIGHT_TOLERANCE_M) & (lateral_m <= LINE_TOLERANCE_M) & (along_m <= -MIN_BEHIND_M)
    high = obj[..., 2:] + TRAVEL_HEIGHT_M
    push = np.where(dist_m > DONE_M, np.concatenate([obj[..., :2] + PUSH_THROUGH_M * u, obj[..., 2:]], -1), ee)
    descend = np.concatenate([behind, obj[..., 2:]], -1)
    rise = np.concatenate([ee[..., :2], high], -1)
    travel = np.concatenate([behind, high], -1)
    return ee, [pushing, from_spot_m < OVER_SPOT_M, height_m < LOW_M], [push, descend, rise, travel]


def scripted_push_module() -> torch.nn.Module:
    """scripted_push_action as a torch module (what the bundle's graph is traced from): `forward(observation,
    achieved_goal, desired_goal)` on (B, n), (B, 3), (B, 3) float32 gives (B, 3), and `_predict(obs, deterministic)`
    takes the observation dict as policies.export.export_bundle calls an SB3 policy."""
    import torch

    ee_lo, ee_hi = int(EE_SLICE.start), int(EE_SLICE.stop)

    class ScriptedPush(torch.nn.Module):
        """scripted_push_action in torch, batched; no parameters, no state."""

        def forward(
            self, observation: torch.Tensor, achieved_goal: torch.Tensor, desired_goal: torch.Tensor
        ) -> torch.Tensor:
            ee, obj, goal = observation[:, ee_lo:ee_hi], achieved_goal, desired_goal
            to_goal = goal[:, :2] - obj[:, :2]
            dist_m = torch.sqrt(torch.sum(to_goal**2, dim=-1, keepdim=True))
            u = to_goal / torch.clamp(dist_m, min=1e-6)
            off = ee[:, :2] - obj[:, :2]
            lateral_m = torch.abs(off[:, :1] * u[:, 1:] - off[:, 1:] * u[:, :1])
            along_m = torch.sum(off * u, dim=-1, keepdim=True)
            height_m = ee[:, 2:] - obj[:, 2:]
            behind = obj[:, :2] - BEHIND_M * u
            from_spot_m = torch.sqrt(torch.sum((ee[:, :2] - behind) ** 2, dim=-1, keepdim=True))
            pushing = (
                (height_m < PUSH_HEIGHT_TOLERANCE_M) & (lateral_m <= LINE_TOLERANCE_M) & (along_m <= -MIN_BEHIND_M)
            )
            high = obj[:, 2:] + TRAVEL_HEIGHT_M
            push = torch.where(dist_m > DONE_M, torch.cat([obj[:, :2] + PUSH_THROUGH_M * u, obj[:, 2:]], -1), ee)
            descend = torch.cat([behind, obj[:, 2:]], -1)
            rise = torch.cat([ee[:, :2], high], -1)
            travel = torch.cat([behind, high], -1)
            target = torch.where(
                pushing,
                push,
                torch.where(from_spot_m < OVER_SPOT_M, descend, torch.where(height_m < LOW_M, rise, travel)),
            )
            return torch.clamp((target - ee) / ACTION_SCALE_M, -1.0, 1.0)

        def _predict(self, obs: dict[str, torch.Tensor], deterministic: bool = True) -> torch.Tensor:
            return self(obs["observation"], obs["achieved_goal"], obs["desired_goal"])

    return ScriptedPush().eval()


class _ScriptedModel:
    """What policies.export.export_bundle reads of an SB3 algorithm: the policy module and the spaces."""

    def __init__(self, policy: torch.nn.Module, observation_space: Any, action_space: Any) -> None:
        self.policy, self.observation_space, self.action_space = policy, observation_space, action_space


def export_scripted_push_bundle(out_dir: str | Path, backend: str = "mujoco", force: bool = False) -> Path:
    """Write the scripted pusher as a policy bundle to `out_dir` (Push, ee control, state observations, the `backend`
    engine's cell) with the manifest a trained run's export writes; returns the bundle folder.

    `out_dir` must be new or empty, or hold a bundle that `force` replaces (policies.export.check_bundle_target).
    """
    from policies.export import check_bundle_target, export_bundle
    from policies.manifest import PolicyInfo
    from sim.env_spec import EnvSpec, make_env
    from sim2real.export_run import cell_manifest_fields

    out = Path(out_dir)
    check_bundle_target(out, force)  # before an engine starts
    spec = EnvSpec(task="push", backend=backend, control="ee", obs_mode="state", reward="sparse").check()
    env = make_env(spec)
    try:
        cell_fields, ee_control = cell_manifest_fields(spec, env.unwrapped)
        model = _ScriptedModel(scripted_push_module(), env.observation_space, env.action_space)
    finally:
        env.close()
    fields: dict[str, Any] = {
        "source": {"scripted": f"{__name__}.scripted_push_action", "trained": False},
        "policy": PolicyInfo(agent=AGENT, recurrent=False, ee_control=ee_control),
        **cell_fields,
        "camera": None,
        "randomization": None,
    }
    return export_bundle(model, out, fields, force=force)
