"""Replaying recorded command sequences in a simulated arm: an episode's commanded joint targets, sent from its
recorded initial pose at its control rate, in one engine under chosen values of randomization parameters (the
space's own names and apply modes), give the simulated joint trajectory that calibration compares with the record."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from calibration.episodes import Episode
from randomization import ParameterSpace
from randomization.sampler import Draw
from sim.engines import make_backend
from sim.randomized import Randomizer
from sim.scene import SceneSpec

#: The env-level parameter replay applies itself: control steps between a command and its effect.
ACTION_DELAY = "action_delay"
#: Finger opening held during replays (the arm's dynamics are what is calibrated; the gripper stays still).
FINGER_M = 0.02


class Replayer:
    """One engine's arm, bound to a parameter space: `rollout` sends commands under parameter values, `replay` does
    it for a recorded episode. The space's parameters are engine properties (`joint_damping:panda_joint1`, any
    wildcards expanded against the scene, apply modes as in a randomization YAML) plus optionally `action_delay`."""

    def __init__(self, space: ParameterSpace, backend: str = "mujoco", scene: SceneSpec | None = None) -> None:
        self.scene = scene or SceneSpec(target=None)
        self.sim = make_backend(backend, self.scene)
        self.backend = backend
        self.joint_names = tuple(self.sim.robot.arm_joint_names)
        engine = [p for p in space.parameters if p.name != ACTION_DELAY]
        self.space = replace(space, parameters=tuple(engine)).expand(self.sim.concrete_property_names)
        self.randomizer = Randomizer(self.sim, self.space) if engine else None
        self.n_arm = len(self.joint_names)

    @property
    def parameter_names(self) -> list[str]:
        """The engine parameters this replayer sets (wildcards expanded), without action_delay."""
        return self.space.names

    def rollout(
        self, q0_rad: np.ndarray, q_cmd_rad: np.ndarray, dt_s: float, values: Mapping[str, object] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Reset the arm at rest at `q0_rad` (n,), then hold each row of `q_cmd_rad` (T, n) as the position target
        for `dt_s` (delayed by `action_delay` rows; the arm holds q0 until the first delayed command arrives).

        `values`: parameter name -> value (the space's own meaning: a scale, an offset or an absolute value);
        parameters left out take their nominal. Returns positions (T, n) and velocities (T, n); row 0 is the
        initial state, row k the state after k control periods."""
        values = dict(values or {})
        q_cmd = np.asarray(q_cmd_rad, float)
        if q_cmd.ndim != 2 or q_cmd.shape[1] != self.n_arm:
            raise ValueError(f"commands must be (T, {self.n_arm}), got {q_cmd.shape}")
        n_sub = round(dt_s / self.scene.physics_dt_s)
        if n_sub < 1 or abs(n_sub * self.scene.physics_dt_s - dt_s) > 1e-9:
            raise ValueError(f"dt_s {dt_s} is not a whole number of {self.scene.physics_dt_s} s physics steps")
        delay = int(round(float(np.asarray(values.pop(ACTION_DELAY, 0.0), float).ravel()[0])))
        if delay < 0:
            raise ValueError(f"{ACTION_DELAY} must be >= 0 control steps, got {delay}")
        self._apply(values)
        q0 = np.asarray(q0_rad, float)
        self.sim.reset(q0, FINGER_M, {})
        steps = q_cmd.shape[0]
        q_out, qd_out = np.empty((steps, self.n_arm)), np.empty((steps, self.n_arm))
        q, qd = self.sim.joint_state()
        q_out[0], qd_out[0] = q[: self.n_arm], qd[: self.n_arm]
        for k in range(steps - 1):
            target = q_cmd[k - delay] if k >= delay else q0
            self.sim.step(target, FINGER_M, n_sub)
            q, qd = self.sim.joint_state()
            q_out[k + 1], qd_out[k + 1] = q[: self.n_arm], qd[: self.n_arm]
        return q_out, qd_out

    def replay(self, episode: Episode, values: Mapping[str, object] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The simulated trajectory of a recorded episode under `values` (see rollout)."""
        if tuple(episode.joint_names) != self.joint_names:
            raise ValueError(f"{episode.source}: joints {list(episode.joint_names)} are not the simulated arm's "
                             f"{list(self.joint_names)} (the reader re-indexes by name)")  # fmt: skip
        return self.rollout(episode.q_rad[0], episode.q_cmd_rad, episode.dt_s, values)

    def _apply(self, values: dict[str, object]) -> None:
        unknown = sorted(set(values) - set(self.parameter_names))
        if unknown:
            raise KeyError(f"unknown calibration parameter(s) {unknown}; this replayer sets {self.parameter_names}")
        if self.randomizer is None:
            return
        nominal = self.space.nominal()
        draw = {n: np.asarray(values[n], float) if n in values else nominal[n] for n in self.parameter_names}
        self.randomizer.apply(Draw(draw))

    def close(self) -> None:
        """Release the engine."""
        self.sim.close()
