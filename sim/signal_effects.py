"""Env-level randomization around the engine: action and observation delay, observation noise, image noise,
salt-and-pepper and blur, and control-rate jitter (the `env_level` property kinds of sim.properties)."""

from __future__ import annotations

from collections import deque

import numpy as np

from sim.observation import field_slices, observation_dim
from sim.properties import OBS_NOISE_FIELDS

#: The env-level properties that take no element, with their values when nothing is randomized.
GLOBAL_DEFAULTS: dict[str, float] = {
    "action_delay": 0.0,
    "obs_delay": 0.0,
    "image_noise": 0.0,
    "image_salt_pepper": 0.0,
    "image_blur": 0.0,
    "control_jitter": 0.0,
}


class SignalEffects:
    """Holds the env-level property values and applies them to actions, observations, images and substeps.

    All noise comes from the generator passed to each call (the env's `np_random`), so a seeded env stays
    repeatable. `reset()` empties the delay lines at episode start: a delayed action is a zero action (hold) and
    a delayed observation is the episode's first one until enough steps have passed.
    """

    def __init__(self, with_object: bool) -> None:
        by_layout = field_slices(with_object)
        #: obs_noise element -> slice of the observation vector it perturbs.
        self.noise_slices = {f: by_layout[lay] for f, lay in OBS_NOISE_FIELDS.items() if lay in by_layout}
        self.values: dict[str, float] = dict(GLOBAL_DEFAULTS)
        self.noise_std = np.zeros(observation_dim(with_object))
        self._actions: deque[np.ndarray] = deque()
        self._observations: deque[dict[str, np.ndarray]] = deque()
        #: True when any effect is on (the env skips this class entirely otherwise).
        self.active = False

    def elements(self) -> list[str]:
        """The observation fields `obs_noise:<field>` can name in this env."""
        return list(self.noise_slices)

    def get(self, kind: str, element: str | None) -> np.ndarray:
        if kind == "obs_noise":
            assert element is not None
            return np.asarray(self.noise_std[self.noise_slices[element]][0])
        return np.asarray(self.values[kind])

    def set(self, kind: str, element: str | None, value: float) -> None:
        if kind == "obs_noise":
            assert element is not None
            self.noise_std[self.noise_slices[element]] = value
        else:
            self.values[kind] = float(value)
        self.active = any(self.values.values()) or bool(self.noise_std.any())

    def reset(self) -> None:
        self._actions.clear()
        self._observations.clear()

    # -- actions and control period ------------------------------------------------------------------
    def delay_action(self, action: np.ndarray) -> np.ndarray:
        """The action to apply now: the one from `action_delay` steps ago (zeros, i.e. hold, before that)."""
        k = int(self.values["action_delay"])
        if k == 0:
            return action
        self._actions.append(action)
        if len(self._actions) > k:
            return self._actions.popleft()
        return np.zeros_like(action)

    def substeps(self, nominal: int, rng: np.random.Generator) -> int:
        """Physics substeps for this control period: nominal x (1 + U(-jitter, jitter)), at least 1."""
        j = self.values["control_jitter"]
        if j == 0.0:
            return nominal
        return max(1, int(round(nominal * (1.0 + rng.uniform(-j, j)))))

    # -- observations ------------------------------------------------------------------------------------
    def observe(self, obs: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Apply noise to `observation` and the images, then the observation delay. Goals stay exact: they are
        what the reward is computed from, not what the policy sees of the robot."""
        out = dict(obs)
        if self.noise_std.any():
            vec = out["observation"].astype(np.float64)
            vec += self.noise_std * rng.standard_normal(vec.shape)
            out["observation"] = vec.astype(np.float32)
        for key in out:
            if key.startswith("image_"):
                out[key] = self.corrupt_image(out[key], rng)
        k = int(self.values["obs_delay"])
        if k == 0:
            return out
        delayed = {key: v for key, v in out.items() if key == "observation" or key.startswith("image_")}
        self._observations.append(delayed)
        while len(self._observations) > k + 1:
            self._observations.popleft()
        out.update(self._observations[0])
        return out

    def corrupt_image(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """image: (H, W, 3) uint8 -> blurred, then Gaussian noise, then salt and pepper; (H, W, 3) uint8."""
        sigma, noise, sp = self.values["image_blur"], self.values["image_noise"], self.values["image_salt_pepper"]
        if not (sigma or noise or sp):
            return image
        img = image.astype(np.float32)
        if sigma:
            img = gaussian_blur(img, sigma)
        if noise:
            img += (255.0 * noise) * rng.standard_normal(img.shape).astype(np.float32)
        if sp:
            u = rng.random(img.shape[:2])
            img[u < sp / 2] = 0.0
            img[(u >= sp / 2) & (u < sp)] = 255.0
        return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def gaussian_blur(img: np.ndarray, sigma_px: float) -> np.ndarray:
    """Separable Gaussian blur of an (H, W, C) float image, edges extended; same shape."""
    radius = max(1, int(np.ceil(3.0 * sigma_px)))
    x = np.arange(-radius, radius + 1, dtype=np.float32)
    kernel = np.exp(-0.5 * (x / sigma_px) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(img, ((radius, radius), (0, 0), (0, 0)), mode="edge")
    rows = sum(kernel[i] * padded[i : i + img.shape[0]] for i in range(len(kernel)))
    padded = np.pad(rows, ((0, 0), (radius, radius), (0, 0)), mode="edge")
    return sum(kernel[i] * padded[:, i : i + img.shape[1]] for i in range(len(kernel)))
