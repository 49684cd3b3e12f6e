"""The HER agents on SBX (stable-baselines3 in JAX, `--framework sbx`): the same TQC and SAC, updates about 1.5x
cheaper on a CPU (BENCHMARKS.md), and what `policies.demo_learning` adds to SB3's: the Q-filtered
behaviour-cloning step on demonstrations (Nair et al. 2018), here one jitted JAX update.

SBX keeps SB3's replay buffers, so HER, `policies.her_buffer.HerBuffer`'s demonstration share and n-step returns
(SBX reads the samples' `discounts`) and VecNormalize work unchanged. The actor is a JAX module: for export,
`torch_actor` rebuilds it in torch from the trained weights and checks the two agree before the ONNX graph is
traced from it.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from sbx import SAC as _SAC
from sbx import TQC as _TQC

from policies.demo_learning import BehaviourCloningSteps

#: Largest difference allowed between the torch rebuild of an SBX actor and JAX's own deterministic action.
TORCH_PARITY = 1e-5


def flat_observations(obs: Any, keys: list[str]) -> np.ndarray:
    """A sample's dict observation as SBX's networks take it: the keys' vectors side by side, in the space's order."""
    if isinstance(obs, dict):
        return np.concatenate([np.asarray(obs[k]).reshape(len(obs[k]), -1) for k in keys], axis=1)
    return np.asarray(obs)


def _q_tqc(critics: tuple[Any, ...], obs: jax.Array, actions: jax.Array, key: jax.Array) -> jax.Array:
    """TQC's value of `actions`: the mean of both critics' quantiles, (B,)."""
    q1, q2 = (c.apply_fn(c.params, obs, actions, rngs={"dropout": key}) for c in critics)
    return 0.5 * (q1.mean(axis=-1) + q2.mean(axis=-1))


def _q_sac(critics: tuple[Any, ...], obs: jax.Array, actions: jax.Array, key: jax.Array) -> jax.Array:
    """SAC's value of `actions`: the smallest of its critics, (B,)."""
    (qf,) = critics
    return jnp.min(qf.apply_fn(qf.params, obs, actions, rngs={"dropout": key}), axis=0).reshape(-1)


@partial(jax.jit, static_argnames=("kind", "q_filter"))
def bc_update(
    actor_state: Any,
    critics: tuple[Any, ...],
    obs: jax.Array,
    demo_actions: jax.Array,
    key: jax.Array,
    weight: float,
    kind: str,
    q_filter: bool,
) -> tuple[Any, jax.Array, jax.Array]:
    """One Q-filtered behaviour-cloning step of the actor: weight * mean over kept rows of |pi(s) - a_demo|^2, a
    row kept where the critic rates the demonstrated action above the policy's. (new actor state, loss, kept)."""
    q = _q_tqc if kind == "tqc" else _q_sac
    pi_now = actor_state.apply_fn(actor_state.params, obs).mode()
    if q_filter:
        keep = (q(critics, obs, demo_actions, key) > q(critics, obs, pi_now, key)).astype(jnp.float32)
    else:
        keep = jnp.ones(obs.shape[0], jnp.float32)

    def loss_fn(params: Any) -> jax.Array:
        pi = actor_state.apply_fn(params, obs).mode()
        return weight * jnp.mean(keep * jnp.sum((pi - demo_actions) ** 2, axis=-1))

    loss, grads = jax.value_and_grad(loss_fn)(actor_state.params)
    return actor_state.apply_gradients(grads=grads), loss, keep.mean()


class _JaxBehaviourCloning(BehaviourCloningSteps):
    """The behaviour-cloning step after each of SBX's updates (mixed in before the SBX class); bc_weight 0 (the
    default) leaves SBX's agent exactly as it is."""

    bc_kind: str
    policy: Any
    observation_space: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.bc_key = jax.random.PRNGKey(0)
        super().__init__(*args, **kwargs)  # the settings, then the SBX algorithm

    def critics(self) -> tuple[Any, ...]:
        raise NotImplementedError

    def bc_step(self) -> tuple[float, float]:
        """One behaviour-cloning step on a batch of the attached demonstrations; (loss, share of rows kept)."""
        data = self.demo_batch()
        obs = flat_observations({k: v.numpy() for k, v in data.observations.items()}, list(self.observation_space))
        self.bc_key, key = jax.random.split(self.bc_key)
        self.policy.actor_state, loss, kept = bc_update(
            self.policy.actor_state, self.critics(), jnp.asarray(obs), jnp.asarray(data.actions.numpy()), key,
            self.bc_weight, self.bc_kind, self.bc_q_filter,
        )  # fmt: skip
        return float(loss), float(kept)


class TQC(_JaxBehaviourCloning, _TQC):
    """SBX's TQC with the Q-filtered behaviour-cloning step (`bc_weight`, `bc_batch_size`, `bc_q_filter`)."""

    bc_kind = "tqc"

    def critics(self) -> tuple[Any, ...]:
        return (self.policy.qf1_state, self.policy.qf2_state)


class SAC(_JaxBehaviourCloning, _SAC):
    """SBX's SAC with the Q-filtered behaviour-cloning step (`bc_weight`, `bc_batch_size`, `bc_q_filter`)."""

    bc_kind = "sac"

    def critics(self) -> tuple[Any, ...]:
        return (self.policy.qf_state,)


def torch_actor(model: Any) -> Any:
    """The deterministic actor of an SBX model rebuilt as a torch module (`_predict(obs_dict)` -> tanh(mean), as
    the export graph calls SB3 policies), checked against JAX's own deterministic action on random observations
    (ValueError beyond TORCH_PARITY)."""
    import torch

    params = model.policy.actor_state.params["params"]
    dense = sorted((k for k in params if k.startswith("Dense_")), key=lambda k: int(k.split("_")[1]))
    if len(dense) < 3:
        raise ValueError(f"an SBX actor has hidden layers, a mean and a log-std head; found layers {dense}")
    keys = list(model.observation_space.spaces)
    sizes = [int(np.prod(model.observation_space.spaces[k].shape)) for k in keys]

    def linear(name: str) -> torch.nn.Linear:
        kernel, bias = np.asarray(params[name]["kernel"]), np.asarray(params[name]["bias"])
        layer = torch.nn.Linear(kernel.shape[0], kernel.shape[1])
        with torch.no_grad():
            layer.weight.copy_(torch.as_tensor(kernel.T.copy()))
            layer.bias.copy_(torch.as_tensor(bias.copy()))
        return layer

    class Actor(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.keys = keys
            self.hidden = torch.nn.ModuleList([linear(n) for n in dense[:-2]])
            self.mean = linear(dense[-2])  # the last Dense is the log-std head, unused by the deterministic action

        def _predict(self, obs: dict[str, torch.Tensor], deterministic: bool = True) -> torch.Tensor:
            x = torch.cat([obs[k].reshape(obs[k].shape[0], -1) for k in self.keys], dim=1)
            for layer in self.hidden:
                x = torch.relu(layer(x))
            return torch.tanh(self.mean(x))

    actor = Actor().eval()
    rng = np.random.default_rng(0)
    obs = {k: rng.standard_normal((64, n)).astype(np.float32) for k, n in zip(keys, sizes)}
    want = np.asarray(model.policy.select_action(model.policy.actor_state, flat_observations(obs, keys)))
    with torch.no_grad():
        got = actor._predict({k: torch.as_tensor(v) for k, v in obs.items()}).numpy()
    err = float(np.abs(got - want).max())
    if err > TORCH_PARITY:
        raise ValueError(f"the torch rebuild of the SBX actor differs from JAX by {err:.2e} (> {TORCH_PARITY})")
    return actor
