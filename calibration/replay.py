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
        self,
        q0_rad: np.ndarray,
        q_cmd_rad: np.ndarray,
        dt_s: float,
        values: Mapping[str, object] | None = None,
        cmd_offset_s: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Reset the arm at rest at `q0_rad` (n,), then send each row of `q_cmd_rad` (T, n) as the position target:
        row k takes effect at (k + action_delay) * dt_s + cmd_offset_s[k] (to the nearest physics step) and holds
        until the next; before the first one the arm holds q0. `action_delay` is in control steps and may be
        fractional (a real arm's latency is no whole number of periods); `cmd_offset_s` (T,), each command's
        recorded send time minus its row's time (zeros when None), replays the sender's timing jitter.

        `values`: parameter name -> value (the space's own meaning: a scale, an offset or an absolute value);
        parameters left out take their nominal. Returns positions (T, n) and velocities (T, n); row 0 is the
        initial state, row k the state after k control periods."""
        values = dict(values or {})
        q_cmd = np.asarray(q_cmd_rad, float)
        if q_cmd.ndim != 2 or q_cmd.shape[1] != self.n_arm:
            raise ValueError(f"commands must be (T, {self.n_arm}), got {q_cmd.shape}")
        pdt = self.scene.physics_dt_s
        n_sub = round(dt_s / pdt)
        if n_sub < 1 or abs(n_sub * pdt - dt_s) > 1e-9:
            raise ValueError(f"dt_s {dt_s} is not a whole number of {pdt} s physics steps")
        delay = float(np.asarray(values.pop(ACTION_DELAY, 0.0), float).ravel()[0])
        if not (np.isfinite(delay) and delay >= 0):
            raise ValueError(f"{ACTION_DELAY} must be >= 0 control steps, got {delay}")
        steps = q_cmd.shape[0]
        offset = np.zeros(steps) if cmd_offset_s is None else np.asarray(cmd_offset_s, float)
        if offset.shape != (steps,) or not np.isfinite(offset).all():
            raise ValueError(f"cmd_offset_s must be ({steps},) finite seconds, got shape {offset.shape}")
        # when each command takes effect, in physics steps (fractional; never before the previous one's)
        effect = np.maximum.accumulate((np.arange(steps) + delay) * n_sub + offset / pdt)
        self._apply(values)
        q0 = np.asarray(q0_rad, float)
        self.sim.reset(q0, FINGER_M, {})
        q_out, qd_out = np.empty((steps, self.n_arm)), np.empty((steps, self.n_arm))
        q, qd = self.sim.joint_state()
        q_out[0], qd_out[0] = q[: self.n_arm], qd[: self.n_arm]
        total = (steps - 1) * n_sub
        now, row, target = 0, 1, q0  # physics steps done, the next row to record, the target held

        def run(until: int, held: np.ndarray) -> None:
            nonlocal now, row
            while now < until:
                stop = min(until, row * n_sub)
                self.sim.step(held, FINGER_M, stop - now)
                now = stop
                if now == row * n_sub:
                    q, qd = self.sim.joint_state()
                    q_out[row], qd_out[row] = q[: self.n_arm], qd[: self.n_arm]
                    row += 1

        for k in range(steps):
            i = int(np.floor(effect[k] + 1e-9))
            if i >= total:
                break
            run(i, target)
            f = effect[k] - i
            if f > 1e-9 and (k + 1 >= steps or effect[k + 1] >= i + 1):
                # the command arrives inside physics step i: that step holds the time-weighted target (exact
                # for the PD torque, which is linear in the target)
                run(i + 1, f * target + (1.0 - f) * q_cmd[k])
            target = q_cmd[k]
        run(total, target)
        return q_out, qd_out

    def replay(self, episode: Episode, values: Mapping[str, object] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The simulated trajectory of a recorded episode under `values` (see rollout)."""
        if tuple(episode.joint_names) != self.joint_names:
            raise ValueError(f"{episode.source}: joints {list(episode.joint_names)} are not the simulated arm's "
                             f"{list(self.joint_names)} (the reader re-indexes by name)")  # fmt: skip
        return self.rollout(episode.q_rad[0], episode.q_cmd_rad, episode.dt_s, values, episode.cmd_offset_s)

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
