"""Off-policy HER agents that also learn from demonstrations: SB3's SAC and sb3-contrib's TQC with a
behaviour-cloning step filtered by the critic (Nair et al. 2018, "Overcoming exploration in reinforcement
learning with demonstrations").

After each of the agent's own updates, one more actor step on a batch of demonstrations (the replay buffer's
attached ones, policies.her_buffer.HerBuffer.attach_demos, HER-relabelled like any sample): the squared
distance between the deterministic action and the demonstrated one, counted only where the critic rates the
demonstrated action above the policy's (the Q-filter), so the policy leaves demonstrations it has outgrown. The
step is separate from the RL actor loss (the same optimiser, one more step per update) rather than added to it,
which leaves SB3's update untouched. With `bc_weight` 0 (the default) these are SB3's agents exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sb3_contrib import TQC as _TQC
from stable_baselines3 import SAC as _SAC


def check_bc_settings(bc_weight: float, bc_batch_size: int, bc_q_filter: bool) -> None:
    """ValueError naming the setting that is out of range."""
    if not np.isfinite(bc_weight) or bc_weight < 0:
        raise ValueError(f"bc_weight must be a finite number >= 0, got {bc_weight}")
    if isinstance(bc_batch_size, bool) or not isinstance(bc_batch_size, int) or bc_batch_size < 1:
        raise ValueError(f"bc_batch_size must be an integer >= 1, got {bc_batch_size!r}")
    if not isinstance(bc_q_filter, bool):
        raise ValueError(f"bc_q_filter must be true or false, got {bc_q_filter!r}")


class BehaviourCloningSteps:
    """The settings and schedule of the behaviour-cloning step, whatever the framework: after the algorithm's own
    `gradient_steps` updates, as many `bc_step`s (the subclass's), their loss and kept share logged. Mixed in
    before the algorithm's class."""

    bc_weight: float
    bc_batch_size: int
    bc_q_filter: bool
    replay_buffer: Any
    logger: Any
    _vec_normalize_env: Any

    def __init__(
        self, *args: Any, bc_weight: float = 0.0, bc_batch_size: int = 128, bc_q_filter: bool = True, **kwargs: Any
    ) -> None:
        check_bc_settings(bc_weight, bc_batch_size, bc_q_filter)
        self.bc_weight, self.bc_batch_size, self.bc_q_filter = float(bc_weight), int(bc_batch_size), bc_q_filter
        super().__init__(*args, **kwargs)  # the algorithm after this mixin

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        super().train(gradient_steps, batch_size)  # type: ignore[misc]
        if self.bc_weight <= 0:
            return
        self._before_bc()
        results = [self.bc_step() for _ in range(gradient_steps)]
        self.logger.record("train/bc_loss", float(np.mean([r[0] for r in results])))
        self.logger.record("train/bc_kept", float(np.mean([r[1] for r in results])))

    def _before_bc(self) -> None:
        """Anything the networks need before the first behaviour-cloning step of an update."""

    def bc_step(self) -> tuple[float, float]:
        """One Q-filtered behaviour-cloning step of the actor on demonstrations; (loss, share of rows kept)."""
        raise NotImplementedError

    def demo_batch(self) -> Any:
        """A batch of `bc_batch_size` attached demonstrations (HER-relabelled, normalised like any sample)."""
        demos = getattr(self.replay_buffer, "demos", None)
        if demos is None:
            raise ValueError("bc_weight > 0 needs demonstrations attached to the replay buffer (train --demos)")
        return demos.sample(self.bc_batch_size, env=self._vec_normalize_env)


class _BehaviourCloning(BehaviourCloningSteps):
    """The behaviour-cloning step of the two SB3 agents, in torch."""

    actor: Any
    critic: Any

    def q_value(self, obs: Any, actions: Any) -> Any:
        """The critic's value of `actions` (B, 1) as the actor loss sees it."""
        raise NotImplementedError

    def bc_step(self) -> tuple[float, float]:
        """One Q-filtered behaviour-cloning step of the actor on demonstrations; (loss, share of rows kept)."""
        import torch as th

        data = self.demo_batch()
        pi = self.actor(data.observations, deterministic=True)
        keep = th.ones(pi.shape[0], device=pi.device)
        if self.bc_q_filter:
            with th.no_grad():
                keep = (self.q_value(data.observations, data.actions) > self.q_value(data.observations, pi)).float()
                keep = keep.reshape(-1)
        loss = self.bc_weight * (keep * ((pi - data.actions) ** 2).sum(dim=-1)).mean()
        self.actor.optimizer.zero_grad()
        loss.backward()
        self.actor.optimizer.step()
        return float(loss.item()), float(keep.mean().item())

    def _before_bc(self) -> None:
        self.actor.set_training_mode(True)


class TQC(_BehaviourCloning, _TQC):
    """sb3-contrib's TQC with the Q-filtered behaviour-cloning step (`bc_weight`, `bc_batch_size`, `bc_q_filter`)."""

    def q_value(self, obs: Any, actions: Any) -> Any:
        return self.critic(obs, actions).mean(dim=2).mean(dim=1, keepdim=True)


class SAC(_BehaviourCloning, _SAC):
    """SB3's SAC with the Q-filtered behaviour-cloning step (`bc_weight`, `bc_batch_size`, `bc_q_filter`)."""

    def q_value(self, obs: Any, actions: Any) -> Any:
        import torch as th

        return th.min(th.cat(self.critic(obs, actions), dim=1), dim=1, keepdim=True)[0]
