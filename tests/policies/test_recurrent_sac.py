"""Recurrent SAC's networks and update: step-by-step acting equals the sequence unroll, burn-in carries the state
without gradient, the stored flat state round-trips, and updates fit a fixed batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th

from policies.recurrent_sac import RecurrentSAC, RecurrentSACConfig, sequence_tensors
from policies.sequence_replay import SequenceReplay

CFG = RecurrentSACConfig(lstm_hidden=16, head=(32,))


def _agent(seed: int = 0) -> RecurrentSAC:
    th.manual_seed(seed)
    return RecurrentSAC(in_dim=8, act_dim=2, cfg=CFG)


def test_acting_step_by_step_equals_the_sequence_unroll() -> None:
    agent = _agent()
    x = th.randn(3, 12, 8)
    state = th.zeros(3, agent.state_dim)
    stepped, s = [], state
    for t in range(12):
        a, s = agent.act(x[:, t].numpy(), s, deterministic=True)
        stepped.append(a)
    states = agent.split_state(state)
    with th.no_grad():
        feats = agent.unroll(agent.actor, x, states[0], th.zeros(3, dtype=th.int64))
        seq = agent.actor.deterministic(feats).numpy()
        critic_end = agent.critics[1].features(x, states[2])[1]
    np.testing.assert_allclose(np.stack(stepped, 1), seq, atol=1e-5)
    np.testing.assert_allclose(agent.split_state(s)[2][0].numpy(), critic_end[0].numpy(), atol=1e-5)  # critics too


def test_the_flat_state_round_trips() -> None:
    agent = _agent()
    flat = th.randn(4, agent.state_dim)
    np.testing.assert_array_equal(agent.join_state(agent.split_state(flat)).numpy(), flat.numpy())


def test_burn_in_moves_the_state_but_carries_no_gradient() -> None:
    agent = _agent()
    x = th.randn(2, 10, 8, requires_grad=True)
    burn = th.tensor([4, 4])
    states = agent.split_state(th.zeros(2, agent.state_dim))
    feats = agent.unroll(agent.actor, x, states[0], burn)
    feats[:, 4:].sum().backward()
    assert x.grad is not None
    assert th.all(x.grad[:, :4] == 0) and th.any(x.grad[:, 4:] != 0)  # no gradient into the burn-in steps
    x2 = x.detach().clone()
    x2[:, :4] += 1.0  # other burn-in inputs: the window's features change (the state carried them)
    with th.no_grad():
        changed = agent.unroll(agent.actor, x2, states[0], burn)
    assert not th.allclose(changed[:, 4:], feats[:, 4:].detach())
    mixed = agent.unroll(agent.actor, x.detach(), states[0], th.tensor([0, 4]))  # rows of each burn-in length
    np.testing.assert_allclose(mixed[1].detach().numpy(), feats[1].detach().numpy(), atol=1e-6)


def _replay_batch() -> dict[str, th.Tensor]:
    rng = np.random.default_rng(0)
    replay = SequenceReplay(8, 50, obs_dim=2, goal_dim=3, action_dim=2, state_dim=_agent().state_dim, seed=0)
    for _ in range(4):
        ag = np.cumsum(rng.normal(0, 0.01, (51, 3)), 0).astype(np.float32)
        replay.add_episode(rng.normal(size=(51, 2)), ag, ag[-1], rng.uniform(-1, 1, (50, 2)), False,
                           np.zeros((50, _agent().state_dim)))  # fmt: skip
    batch = replay.sample(16, lambda a, d: -(np.linalg.norm(a - d, axis=-1) > 0.05).astype(np.float32))
    return sequence_tensors(batch)


def test_updates_fit_a_fixed_batch_of_sequences() -> None:
    agent = _agent()
    batch = _replay_batch()
    assert batch["x"].shape == (16, 31, 8) and set(batch["burn_in"].tolist()) <= {0, 10}
    first = agent.update(batch)
    for _ in range(150):
        last = agent.update(batch)
    assert last["critic_loss"] < 0.5 * first["critic_loss"]
    assert np.isfinite(last["actor_loss"]) and 0 < last["ent_coef"] < 1  # the coefficient fell from 1


@pytest.mark.parametrize("field", ["reward", "action"])
def test_the_loss_ignores_burn_in_steps(field: str) -> None:
    """Rewards and actions of masked steps (burn-in, past the episode's end) change no loss."""
    batch = _replay_batch()
    edited = {k: v.clone() for k, v in batch.items()}
    masked = batch["loss_mask"] == 0
    edited[field][masked] = 7.0 if field == "reward" else -edited[field][masked]
    losses = [_agent(seed=1).update(b)["critic_loss"] for b in (batch, edited)]
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
