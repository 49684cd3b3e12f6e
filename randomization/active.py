"""Active Domain Randomization (Mehta et al. 2019, "Active Domain Randomization", CoRL), as a reset-time sampler.

Each movable scalar component of each numeric parameter maps to [0, 1] (value = low + x (high - low)); fixed
components stay nominal, integers are rounded, textures are drawn from their full distributions. `n_particles` SVPG
particles are Gaussian policies on that box: logits theta_i (d,), mean sigmoid(theta_i), proposals
clip(mean + N(0, proposal_std^2), 0, 1). Draws cycle through the particles; every `reference_every`-th is nominal.
A discriminator (MLP on normalised transition features) tells randomized transitions (label 1) from reference ones
(0); a particle rollout's reward is the mean of its transitions' log D. Once every particle has a fresh rollout and
a reference episode is in, the discriminator takes `discriminator_steps` Adam steps and the particles one SVPG step.

Choices: initial means uniform in [0.25, 0.75] (spread, as the RBF repulsion grows like 1 / distance, yet off the
sigmoid's flat ends); logits clipped to +-3 (means in [0.047, 0.953]) so no particle's gradient vanishes for good;
a draw fed back after an update is scored against the particle's current mean. SVPG approximates a density
proportional to exp(J / temperature): with rewards spanning a few nats the paper's temperature 10 keeps particles
near uniform, 0.05 to 0.1 steers them firmly (see the tests). Torch is imported where used; the weights come from a
local generator seeded from the sampler's rng, minibatches from that rng: one seed, one run.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from randomization.sampler import TEXTURE_SIZE_PX, Draw, EpisodeReport, rng_state, set_rng_state
from randomization.space import ParameterSpace, TextureParameter
from randomization.textures import draw_texture

#: Particles' logits stay in [-_THETA_MAX, _THETA_MAX] (means in [0.047, 0.953]; proposals still reach 0 and 1).
_THETA_MAX = 3.0


@dataclass(frozen=True)
class ActiveDRConfig:
    """Active DR settings (the paper's notation in brackets)."""

    n_particles: int = 8
    """SVPG particles, each a Gaussian policy over the normalized settings [N]."""
    proposal_std: float = 0.1
    """Std of a particle's proposals around its mean, in normalized units (the full range is 1)."""
    temperature: float = 0.1
    """SVPG temperature: the policy gradient is divided by it; higher keeps particles spread [alpha]. The paper
    uses 10 with its reward scale; with rewards of mean log D (a few nats) 10 leaves particles near uniform,
    0.05 to 0.1 steers them (see the module docstring)."""
    svpg_lr: float = 0.2
    """Step size of the SVPG update on the particles' logits (0.2: steady at temperatures 0.05 to 10)."""
    reference_every: int | None = None
    """Every this-many-th draw is the nominal (reference) environment; None means n_particles + 1."""
    discriminator_hidden: int = 64
    """Width of the discriminator's two hidden layers."""
    discriminator_steps: int = 10
    """Discriminator gradient steps per update."""
    discriminator_lr: float = 1e-3
    """Adam learning rate of the discriminator."""
    batch_size: int = 128
    """Transitions drawn from each buffer (reference and randomized) per discriminator step."""
    buffer_size: int = 5000
    """Most recent transitions kept in each buffer."""

    def __post_init__(self) -> None:
        ints = ("n_particles", "discriminator_hidden", "discriminator_steps", "batch_size", "buffer_size")
        for name in ints:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Active DR {name} must be an integer >= 1, got {value!r}")
        if self.n_particles < 2:
            raise ValueError(
                f"Active DR n_particles must be >= 2 (SVPG needs several particles), got {self.n_particles}"
            )
        every = self.reference_every
        if every is not None and (not isinstance(every, int) or isinstance(every, bool) or every < 2):
            raise ValueError(f"Active DR reference_every must be None or an integer >= 2, got {every!r}")
        if not 0.0 < self.proposal_std <= 1.0:
            raise ValueError(f"Active DR proposal_std must be in (0, 1] (normalized units), got {self.proposal_std}")
        for name in ("temperature", "svpg_lr", "discriminator_lr"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"Active DR {name} must be a finite number > 0, got {value!r}")


class ActiveDR:
    """The Active DR sampler. `particles()` gives the means in [0, 1]; `particle_values()` in parameter units."""

    #: Envs collect each episode's (observation, action, next observation) features for this sampler.
    wants_transitions = True

    def __init__(
        self,
        space: ParameterSpace,
        rng: np.random.Generator,
        config: ActiveDRConfig | None = None,
        texture_size_px: int = TEXTURE_SIZE_PX,
    ) -> None:
        self.space = space
        self.rng = rng
        self.config = config or ActiveDRConfig()
        self.texture_size_px = texture_size_px
        self._params = {p.name: p for p in space.numeric}
        #: (parameter, flat component) pairs that move (hard range wider than a point), the particles' axes.
        self.components = [
            (n, i) for n, p in self._params.items() for i in range(p.size) if p.high.flat[i] > p.low.flat[i]
        ]
        mu0 = rng.uniform(0.25, 0.75, (self.config.n_particles, len(self.components)))
        self.theta = np.log(mu0 / (1.0 - mu0))
        self.torch_seed = int(rng.integers(2**31))
        self.n_draws = 0
        self.n_particle_draws = 0
        self.n_updates = 0
        self.last_rewards: list[float] | None = None
        self._disc: list[Any] | None = None  # torch tensors W1, b1, W2, b2, W3, b3
        self._opt: Any = None
        self._norm: dict[str, Any] | None = None  # count, mean (F,), m2 (F,)
        self._reset_buffers()

    def _reset_buffers(self) -> None:
        self._ref_buf: np.ndarray | None = None
        self._rand_buf: np.ndarray | None = None
        #: Per particle: (x, transitions) rollouts since the last update.
        self._pending: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in range(self.config.n_particles)]

    # -- sampling --------------------------------------------------------------------------------------------
    @property
    def reference_every(self) -> int:
        """Every this-many-th draw is the reference (nominal) one."""
        return self.config.reference_every or self.config.n_particles + 1

    def sample(self) -> Draw:
        self.n_draws += 1
        if self.n_draws % self.reference_every == 0:
            return Draw(self.space.nominal(), {"sampler": "active", "reference": True})
        i = self.n_particle_draws % self.config.n_particles
        self.n_particle_draws += 1
        mu = self.particles()[i]
        x = np.clip(mu + self.config.proposal_std * self.rng.standard_normal(mu.shape), 0.0, 1.0)
        values: dict[str, np.ndarray] = {}
        for p in self.space.parameters:
            if isinstance(p, TextureParameter):
                values[p.name] = draw_texture(p, self.rng, self.texture_size_px)
        values.update(self._to_values(x, rounded=True))
        values = {p.name: values[p.name] for p in self.space.parameters}  # the space's order
        return Draw(values, {"sampler": "active", "particle": i, "x": x.tolist()})

    def _to_values(self, x: np.ndarray, rounded: bool) -> dict[str, np.ndarray]:
        """Numeric values for normalized settings x: (d,) in [0, 1]."""
        out = {n: p.nominal.astype(float).copy() for n, p in self._params.items()}
        for (name, i), xi in zip(self.components, x):
            p = self._params[name]
            v = float(p.low.flat[i] + xi * (p.high.flat[i] - p.low.flat[i]))
            out[name].flat[i] = round(v) if rounded and p.integer else v
        return out

    # -- learning --------------------------------------------------------------------------------------------
    def feedback(self, draw: Draw, report: EpisodeReport) -> None:
        """Store the episode's transitions (T, F); update discriminator and particles once each particle has a
        fresh rollout and a reference episode has been seen. Draws of other samplers and empty reports are ignored."""
        if draw.tag.get("sampler") != "active" or report.transitions is None:
            return
        t = np.asarray(report.transitions, dtype=float)
        if t.ndim != 2 or t.shape[1] == 0:
            raise ValueError(f"Active DR transitions must be a (T, F) array, got shape {t.shape}")
        if t.shape[0] == 0:
            return
        if not np.all(np.isfinite(t)):
            raise ValueError("Active DR transitions contain non-finite values")
        if self._norm is not None and t.shape[1] != len(self._norm["mean"]):
            raise ValueError(
                f"Active DR transitions have {t.shape[1]} features, earlier ones {len(self._norm['mean'])}"
            )
        self._observe(t)
        cap = self.config.buffer_size
        if draw.tag.get("reference"):
            self._ref_buf = t[-cap:] if self._ref_buf is None else np.concatenate([self._ref_buf, t])[-cap:]
        else:
            i = int(draw.tag["particle"])
            x = np.asarray(draw.tag["x"], dtype=float)
            if not 0 <= i < self.config.n_particles or x.shape != (len(self.components),):
                raise ValueError(f"Active DR draw tag {draw.tag} does not fit this sampler's particles")
            self._rand_buf = t[-cap:] if self._rand_buf is None else np.concatenate([self._rand_buf, t])[-cap:]
            self._pending[i].append((x, t))
        if self._ref_buf is not None and all(self._pending):
            self._update()

    def _observe(self, t: np.ndarray) -> None:
        """Merge a batch into the running feature mean/variance (Chan et al.'s parallel update)."""
        n_b, mean_b, m2_b = len(t), t.mean(axis=0), t.var(axis=0) * len(t)
        if self._norm is None:
            self._norm = {"count": float(n_b), "mean": mean_b, "m2": m2_b}
            return
        n_a, mean_a = self._norm["count"], self._norm["mean"]
        n = n_a + n_b
        delta = mean_b - mean_a
        self._norm = {
            "count": n,
            "mean": mean_a + delta * n_b / n,
            "m2": self._norm["m2"] + m2_b + delta**2 * n_a * n_b / n,
        }

    def _features(self, t: np.ndarray) -> Any:
        import torch

        assert self._norm is not None
        std = np.sqrt(np.maximum(self._norm["m2"] / self._norm["count"], 1e-12))
        return torch.as_tensor((t - self._norm["mean"]) / std, dtype=torch.float32)

    def _build_discriminator(self, n_features: int, weights: list[Any] | None = None) -> None:
        import torch

        h = self.config.discriminator_hidden
        shapes = [(h, n_features), (h,), (h, h), (h,), (1, h), (1,)]
        if weights is None:
            g = torch.Generator().manual_seed(self.torch_seed)
            params: list[Any] = []
            for shape in shapes:  # torch.nn.Linear's default init, from the local generator
                bound = 1.0 / math.sqrt(shape[-1] if len(shape) == 2 else params[-1].shape[1])
                params.append(torch.empty(shape).uniform_(-bound, bound, generator=g))
        else:
            params = [torch.tensor(w, dtype=torch.float32) for w in weights]
            got = [tuple(p.shape) for p in params]
            if got != shapes:
                raise ValueError(f"Active DR state's discriminator has shapes {got}, expected {shapes}")
        self._disc = [p.requires_grad_() for p in params]
        self._opt = torch.optim.Adam(self._disc, lr=self.config.discriminator_lr)

    def _logits(self, z: Any) -> Any:
        """Discriminator logits (B,) for normalised features z: (B, F); sigmoid(logit) = P(randomized)."""
        import torch

        assert self._disc is not None
        w1, b1, w2, b2, w3, b3 = self._disc
        hidden = torch.relu(torch.relu(z @ w1.T + b1) @ w2.T + b2)
        return (hidden @ w3.T + b3).squeeze(-1)

    def _update(self) -> None:
        import torch
        import torch.nn.functional as F

        assert self._ref_buf is not None and self._rand_buf is not None
        if self._disc is None:
            self._build_discriminator(self._ref_buf.shape[1])
        assert self._opt is not None
        b = self.config.batch_size
        labels = torch.cat([torch.zeros(b), torch.ones(b)])
        for _ in range(self.config.discriminator_steps):
            ref = self._ref_buf[self.rng.integers(len(self._ref_buf), size=b)]
            rand = self._rand_buf[self.rng.integers(len(self._rand_buf), size=b)]
            loss = F.binary_cross_entropy_with_logits(self._logits(self._features(np.concatenate([ref, rand]))), labels)
            self._opt.zero_grad()
            loss.backward()
            self._opt.step()
        rewards = [[self.reward(t) for _, t in ps] for ps in self._pending]
        self._svpg_step(rewards)
        self.last_rewards = [float(np.mean(r)) for r in rewards]
        self._pending = [[] for _ in range(self.config.n_particles)]
        self.n_updates += 1

    def reward(self, transitions: np.ndarray) -> float:
        """A rollout's reward: the mean over its transitions (T, F) of log D, D = P(randomized | transition)."""
        import torch
        import torch.nn.functional as F

        if self._disc is None:
            raise RuntimeError("Active DR has no discriminator yet: it is built at the first update")
        with torch.no_grad():  # log sigmoid(logit) = -softplus(-logit)
            return float(-F.softplus(-self._logits(self._features(np.asarray(transitions, float)))).mean())

    def _svpg_step(self, rewards: list[list[float]]) -> None:
        """One Stein variational policy gradient step on the logits theta: (n, d)."""
        c = self.config
        theta, mu = self.theta, self.particles()
        baseline = float(np.mean([np.mean(r) for r in rewards]))
        grad_j = np.zeros_like(theta)  # policy gradient of particle j, by the score of N(x; mu_j, std) in theta_j
        for j, ps in enumerate(self._pending):
            for (x, _), r in zip(ps, rewards[j]):
                grad_j[j] += (r - baseline) * (x - mu[j]) / c.proposal_std**2 * mu[j] * (1.0 - mu[j]) / len(ps)
        n = len(theta)
        diff = theta[:, None, :] - theta[None, :, :]  # [j, i] = theta_j - theta_i
        sq = np.sum(diff**2, axis=-1)
        med = float(np.median(np.sqrt(sq[np.triu_indices(n, 1)])))
        h = med**2 / math.log(n + 1) if med > 0 else 1.0
        k = np.exp(-sq / h)  # k[j, i] = k(theta_j, theta_i)
        grad_k = -2.0 / h * diff * k[..., None]  # gradient of k(theta_j, theta_i) in theta_j
        phi = np.mean(k[..., None] * grad_j[:, None, :] / c.temperature + grad_k, axis=0)
        self.theta = np.clip(theta + c.svpg_lr * phi, -_THETA_MAX, _THETA_MAX)

    # -- reporting -------------------------------------------------------------------------------------------
    def particles(self) -> np.ndarray:
        """The particles' means in normalized units: (n_particles, d) in [0, 1], columns as component_names()."""
        return 1.0 / (1.0 + np.exp(-self.theta))

    def particle_values(self) -> list[dict[str, np.ndarray]]:
        """Each particle's mean in parameter units (unrounded), every numeric parameter included."""
        return [self._to_values(x, rounded=False) for x in self.particles()]

    def metrics(self) -> dict[str, float]:
        """`particles/<component>`: the particles' mean along each axis, in normalized units [0, 1]."""
        means = self.particles().mean(axis=0)
        return {f"particles/{n}": float(m) for n, m in zip(self.component_names(), means)}

    def component_names(self) -> list[str]:
        """Names of the particles' axes: `body_mass:object` for scalars, `gravity[2]` for vector components."""
        return [n if self._params[n].shape == () else f"{n}[{i}]" for n, i in self.components]

    # -- checkpointing ---------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Config, space, particles, discriminator weights, feature statistics, counters and rng, as JSON data.

        Not kept: the transition buffers, the rollouts pending since the last update and Adam's moments; a
        restored sampler draws exactly as the original would and refills its buffers before its next update."""
        norm = self._norm
        return {
            "sampler": "active",
            "config": asdict(self.config),
            "space": self.space.to_dict(),
            "components": self.component_names(),
            "theta": self.theta.tolist(),
            "particles": self.particles().tolist(),
            "torch_seed": self.torch_seed,
            "discriminator": None if self._disc is None else [p.detach().tolist() for p in self._disc],
            "normalizer": None
            if norm is None
            else {"count": norm["count"], "mean": norm["mean"].tolist(), "m2": norm["m2"].tolist()},
            "n_draws": self.n_draws,
            "n_particle_draws": self.n_particle_draws,
            "n_updates": self.n_updates,
            "rng": rng_state(self.rng),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("sampler") != "active":
            raise ValueError(f"state is for sampler {state.get('sampler')!r}, not 'active'")
        names = [p.get("name") for p in state.get("space", {}).get("parameters", [])]
        if names != self.space.names:
            raise ValueError(f"Active DR state's parameters {names} differ from this sampler's {self.space.names}")
        if state["components"] != self.component_names():
            raise ValueError(
                f"Active DR state moves components {state['components']}, this space moves {self.component_names()}"
            )
        config = ActiveDRConfig(**state["config"])
        theta = np.asarray(state["theta"], dtype=float)
        want = (config.n_particles, len(self.components))
        if theta.shape != want:
            raise ValueError(f"Active DR state's particles have shape {theta.shape}, expected {want}")
        norm = state["normalizer"]
        if state["discriminator"] is not None and norm is None:
            raise ValueError("Active DR state has discriminator weights but no feature statistics")
        self.config, self.theta = config, theta
        self.torch_seed = int(state["torch_seed"])
        self._norm = None
        if norm is not None:
            self._norm = {
                "count": float(norm["count"]),
                "mean": np.asarray(norm["mean"], float),
                "m2": np.asarray(norm["m2"], float),
            }
        self._disc, self._opt = None, None
        if state["discriminator"] is not None:
            self._build_discriminator(len(norm["mean"]), state["discriminator"])
        self.n_draws = int(state["n_draws"])
        self.n_particle_draws = int(state["n_particle_draws"])
        self.n_updates = int(state["n_updates"])
        self.last_rewards = None
        self._reset_buffers()
        set_rng_state(self.rng, state["rng"])
