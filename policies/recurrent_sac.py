"""Recurrent SAC for goal-conditioned tasks: LSTM actor and twin LSTM critics, and the update on replayed sequences
(policies.sequence_replay) with R2D2's stored states and burn-in. The learning half of recurrent SAC + HER.

Inputs at each step are the observation vector, the achieved goal and the goal, concatenated (`x_t`), as SB3's
MultiInputPolicy reads a dict observation. The actor's LSTM reads x_t and
its head gives a tanh-squashed Gaussian over actions. Each critic has its own LSTM over x_t; the action joins after
the LSTM (Q(h_t, a) = head([h_t, a])), so the target's next-step value and the actor loss need no second unroll.

An update unrolls every network from each sequence's stored state: the burn-in steps without gradient (they only
move the state), then the training window with it; losses count only the window's steps inside the episode
(`loss_mask`). The critics' target at step t uses the features of step t + 1 from the same unroll (the sequence
holds observation t + 1, and the last step's next observation is appended), bootstrapped unless the step
terminated the episode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch as th
from torch import nn

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0


@dataclass(frozen=True)
class RecurrentSACConfig:
    """Network sizes and SAC's settings (defaults: SB3's SAC, HER's Push discount)."""

    lstm_hidden: int = 128
    """Units of each LSTM (one layer)."""
    head: tuple[int, ...] = (256, 256)
    """Layers after the LSTM, for the actor's head and each critic's."""
    gamma: float = 0.95
    """Discount."""
    tau: float = 0.05
    """Target critics' Polyak step."""
    learning_rate: float = 1e-3
    """Adam's, for the actor, the critics and the entropy coefficient."""
    target_entropy: float | None = None
    """The entropy the coefficient steers to; None: minus the action dimension (SB3's 'auto')."""


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])  # no activation after the last layer


class LSTMActor(nn.Module):
    """x_t -> LSTM -> head -> tanh(Gaussian) actions. State (h, c), each (1, B, hidden)."""

    def __init__(self, in_dim: int, act_dim: int, cfg: RecurrentSACConfig) -> None:
        super().__init__()
        self.lstm = nn.LSTM(in_dim, cfg.lstm_hidden, batch_first=True)
        self.head = _mlp([cfg.lstm_hidden, *cfg.head, 2 * act_dim])
        self.act_dim = act_dim

    def features(self, x: th.Tensor, state: tuple[th.Tensor, th.Tensor]) -> tuple[th.Tensor, Any]:
        """x (B, L, in_dim) from `state` -> features (B, L, hidden) and the state after the last step."""
        return self.lstm(x, state)

    def distribution(self, feats: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        mean, log_std = self.head(feats).split(self.act_dim, dim=-1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def sample(self, feats: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """Reparameterised actions in [-1, 1] and their log-probabilities (tanh-corrected), per step."""
        mean, log_std = self.distribution(feats)
        std = log_std.exp()
        u = mean + std * th.randn_like(mean)
        a = th.tanh(u)
        logp = (-0.5 * ((u - mean) / std) ** 2 - log_std - 0.5 * np.log(2 * np.pi)).sum(-1)
        logp = logp - (2 * (np.log(2.0) - u - nn.functional.softplus(-2 * u))).sum(-1)
        return a, logp

    def deterministic(self, feats: th.Tensor) -> th.Tensor:
        return th.tanh(self.distribution(feats)[0])


class LSTMCritic(nn.Module):
    """x_t -> LSTM -> h_t; Q(h_t, a) = head([h_t, a])."""

    def __init__(self, in_dim: int, act_dim: int, cfg: RecurrentSACConfig) -> None:
        super().__init__()
        self.lstm = nn.LSTM(in_dim, cfg.lstm_hidden, batch_first=True)
        self.head = _mlp([cfg.lstm_hidden + act_dim, *cfg.head, 1])

    def features(self, x: th.Tensor, state: tuple[th.Tensor, th.Tensor]) -> tuple[th.Tensor, Any]:
        return self.lstm(x, state)

    def q(self, feats: th.Tensor, action: th.Tensor) -> th.Tensor:
        return self.head(th.cat([feats, action], dim=-1)).squeeze(-1)


class RecurrentSAC(nn.Module):
    """The actor, two critics and their targets, the entropy coefficient, and the optimisers."""

    def __init__(self, in_dim: int, act_dim: int, cfg: RecurrentSACConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or RecurrentSACConfig()
        self.in_dim, self.act_dim, self.hidden = in_dim, act_dim, cfg.lstm_hidden
        self.actor = LSTMActor(in_dim, act_dim, cfg)
        self.critics = nn.ModuleList([LSTMCritic(in_dim, act_dim, cfg) for _ in range(2)])
        self.targets = nn.ModuleList([LSTMCritic(in_dim, act_dim, cfg) for _ in range(2)])
        self.targets.load_state_dict(self.critics.state_dict())
        self.targets.requires_grad_(False)
        # typed views of the two lists
        self._critics: list[LSTMCritic] = list(self.critics)  # type: ignore[arg-type]
        self._targets: list[LSTMCritic] = list(self.targets)  # type: ignore[arg-type]
        self.log_alpha = nn.Parameter(th.zeros(()))
        self.target_entropy = float(-act_dim if cfg.target_entropy is None else cfg.target_entropy)
        self.actor_opt = th.optim.Adam(self.actor.parameters(), lr=cfg.learning_rate)
        self.critic_opt = th.optim.Adam(self.critics.parameters(), lr=cfg.learning_rate)
        self.alpha_opt = th.optim.Adam([self.log_alpha], lr=cfg.learning_rate)

    # -- recurrent state: one flat vector per sequence, as the replay stores it ---------------------------
    @property
    def state_dim(self) -> int:
        """Actor (h, c), then each critic's (h, c)."""
        return 6 * self.hidden

    def split_state(self, flat: th.Tensor) -> list[tuple[th.Tensor, th.Tensor]]:
        """(B, state_dim) -> [(h, c) of the actor, critic 0, critic 1], each (1, B, hidden)."""
        parts = flat.reshape(flat.shape[0], 6, self.hidden).permute(1, 0, 2).contiguous()
        return [(parts[2 * i : 2 * i + 1], parts[2 * i + 1 : 2 * i + 2]) for i in range(3)]

    @staticmethod
    def join_state(states: list[tuple[th.Tensor, th.Tensor]]) -> th.Tensor:
        """The inverse of split_state."""
        return th.cat([t for s in states for t in s], dim=0).permute(1, 0, 2).reshape(states[0][0].shape[1], -1)

    @th.no_grad()
    def act(self, x: np.ndarray, state: th.Tensor, deterministic: bool = False) -> tuple[np.ndarray, th.Tensor]:
        """One step while acting: x (B, in_dim), flat state (B, state_dim) -> actions (B, act_dim) and the next
        state (critics' parts advanced too, so stored states are every network's)."""
        xt = th.as_tensor(x, dtype=th.float32).unsqueeze(1)
        states = self.split_state(state)
        feats, s0 = self.actor.features(xt, states[0])
        nxt = [s0] + [c.features(xt, s)[1] for c, s in zip(self._critics, states[1:])]
        action = self.actor.deterministic(feats) if deterministic else self.actor.sample(feats)[0]
        return action[:, 0].numpy(), self.join_state(nxt)

    # -- the update -----------------------------------------------------------------------------------------
    def unroll(self, net: Any, x: th.Tensor, state: tuple[th.Tensor, th.Tensor], burn_in: th.Tensor) -> th.Tensor:
        """Features (B, L + 1, hidden) of `net` over x (B, L + 1, in_dim) from `state`: steps before each row's
        `burn_in` count carry the state without gradient. Rows share a burn-in length in practice (windows after
        the first have burn_in steps, the first none), so rows are grouped by it."""
        out = th.empty(x.shape[0], x.shape[1], self.hidden)
        for n in th.unique(burn_in).tolist():
            rows = (burn_in == n).nonzero(as_tuple=True)[0]
            s = (state[0][:, rows], state[1][:, rows])
            if n > 0:
                with th.no_grad():
                    warm, s = net.features(x[rows, :n], s)
                out[rows, :n] = warm
            out[rows, n:] = net.features(x[rows, n:], s)[0]
        return out

    def update(self, batch: dict[str, th.Tensor]) -> dict[str, float]:
        """One SAC step on a batch of sequences: `x` (B, L + 1, in_dim) (each step's input, then the last step's
        next input), `action` (B, L, act_dim), `reward`, `terminated`, `loss_mask` (B, L), `state` (B, state_dim),
        `burn_in` (B,) int. Returns the losses and the entropy coefficient."""
        x, a, mask = batch["x"], batch["action"], batch["loss_mask"]
        states = self.split_state(batch["state"])
        burn = batch["burn_in"]
        n_loss = mask.sum().clamp(min=1.0)
        alpha = self.log_alpha.exp().detach()
        # critics
        with th.no_grad():
            actor_f = self.unroll(self.actor, x, states[0], burn)
            next_a, next_logp = self.actor.sample(actor_f[:, 1:])
            target_q = th.min(*[t.q(self.unroll(t, x, s, burn)[:, 1:], next_a)
                                for t, s in zip(self._targets, states[1:])])  # fmt: skip
            y = batch["reward"] + self.cfg.gamma * (1 - batch["terminated"]) * (target_q - alpha * next_logp)
        feats = [self.unroll(c, x, s, burn) for c, s in zip(self._critics, states[1:])]
        critic_loss = th.stack([((c.q(f[:, :-1], a) - y) ** 2 * mask).sum() / n_loss
                                for c, f in zip(self._critics, feats)]).sum()  # fmt: skip
        self.critic_opt.zero_grad()
        critic_loss.backward()
        self.critic_opt.step()
        # actor, on the critics' features of this unroll (fixed), and the entropy coefficient
        actor_f = self.unroll(self.actor, x, states[0], burn)[:, :-1]
        pi, logp = self.actor.sample(actor_f)
        q_pi = th.min(*[c.q(f[:, :-1].detach(), pi) for c, f in zip(self._critics, feats)])
        actor_loss = ((alpha * logp - q_pi) * mask).sum() / n_loss
        self.actor_opt.zero_grad()
        actor_loss.backward()
        self.actor_opt.step()
        alpha_loss = -(self.log_alpha * ((logp.detach() + self.target_entropy) * mask)).sum() / n_loss
        self.alpha_opt.zero_grad()
        alpha_loss.backward()
        self.alpha_opt.step()
        with th.no_grad():
            for p, tp in zip(self.critics.parameters(), self.targets.parameters()):
                tp.mul_(1 - self.cfg.tau).add_(self.cfg.tau * p)
        losses = {"critic_loss": float(critic_loss.detach()), "actor_loss": float(actor_loss.detach())}
        return {**losses, "ent_coef": float(alpha)}


def sequence_tensors(batch: Any) -> dict[str, th.Tensor]:
    """RecurrentSAC.update's inputs from a policies.sequence_replay.SequenceBatch: x_0 = [observation_0,
    achieved_goal_0, goal] and x_{t+1} = [next_observation_t, next_achieved_goal_t, goal] (the observation after
    each step, exact at an episode's end too)."""
    goal = batch.desired_goal
    obs = np.concatenate([batch.observation[:, :1], batch.next_observation], axis=1)
    ag = np.concatenate([batch.achieved_goal[:, :1], batch.next_achieved_goal], axis=1)
    x = np.concatenate([obs, ag, np.concatenate([goal[:, :1], goal], axis=1)], axis=-1)
    f = th.float32
    return {
        "x": th.as_tensor(x, dtype=f),
        "action": th.as_tensor(batch.action, dtype=f),
        "reward": th.as_tensor(batch.reward, dtype=f),
        "terminated": th.as_tensor(batch.terminated, dtype=f),
        "loss_mask": th.as_tensor(batch.loss_mask, dtype=f),
        "state": th.as_tensor(batch.state, dtype=f),
        "burn_in": th.as_tensor(batch.window - batch.start, dtype=th.int64),
    }
