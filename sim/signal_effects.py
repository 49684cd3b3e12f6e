"""Env-level randomization around the engine: action and observation delay, observation noise, image noise,
salt-and-pepper and blur, and control-rate jitter (the `env_level` property kinds of sim.properties)."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence

import numpy as np

from sim.observation import field_slices, observation_dim
from sim.properties import (
    OBS_NOISE_FIELDS,
    check_value,
    concrete_name,
    flat_layout,
    match_elements,
    parse_name,
    split_name,
)
from sim.property_target import FlatSetter

#: The env-level properties that take no element, with their values when nothing is randomized.
GLOBAL_DEFAULTS: dict[str, float] = {
    "action_delay": 0.0,
    "obs_delay": 0.0,
    "image_delay": 0.0,
    "image_noise": 0.0,
    "image_salt_pepper": 0.0,
    "image_blur": 0.0,
    "control_jitter": 0.0,
}


class SignalEffects:
    """Holds the env-level property values and applies them to actions, observations, images and substeps; a
    PropertyTarget for the env-level properties (`action_delay`, `obs_noise:<field>`, `image_noise`, ...).

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

    # -- properties by name ----------------------------------------------------------------------------
    def property_names(self) -> list[str]:
        """Every concrete env-level property name in this env."""
        return [*self.values, *(concrete_name("obs_noise", f) for f in self.elements())]

    def concrete_property_names(self, name: str) -> list[str]:
        """The concrete env-level names (`kind`, or `obs_noise:<field>`) a possibly wildcard name refers to."""
        kind, pattern = parse_name(name)
        if not kind.env_level:
            raise KeyError(f"property {name!r} is the engine's, not an env-level one (delays, noise, jitter)")
        if pattern is None:
            return [kind.name]
        return [concrete_name(kind.name, e) for e in match_elements(name, pattern, self.elements())]

    def get_property(self, name: str) -> dict[str, np.ndarray]:
        """Values of every env-level property `name` refers to, keyed by concrete name."""
        return {n: self.get(*split_name(n)) for n in self.concrete_property_names(name)}

    def check_properties(self, values: Mapping[str, object]) -> dict[str, float]:
        """Validate env-level values (names may hold wildcards) without setting them: concrete name -> value."""
        out: dict[str, float] = {}
        for name, value in values.items():
            arr = check_value(name, parse_name(name)[0], value)
            out.update((n, float(arr)) for n in self.concrete_property_names(name))
        return out

    def set_properties(self, values: Mapping[str, object]) -> None:
        """Set env-level properties; every value is validated before anything changes."""
        for n, v in self.check_properties(values).items():
            self.set(*split_name(n), v)

    def compile_setter(self, names: Sequence[str]) -> FlatSetter:
        """A writer for fixed concrete env-level names taking one flat vector (values are not checked per call;
        `forward` is accepted for the PropertyTarget protocol and ignored: nothing here derives from positions)."""
        for n in names:
            if self.concrete_property_names(n) != [n]:  # raises for unknown or engine names
                raise KeyError(f"compile_setter takes concrete property names; {n!r} is a pattern")
        targets = [(sl.start, *split_name(n)) for n, sl in zip(names, flat_layout(names))]

        def write(flat: np.ndarray, forward: bool = True) -> None:
            for at, kind, element in targets:
                self.set(kind, element, float(flat[at]))

        return write

    def get(self, kind: str, element: str | None) -> np.ndarray:
        """Current value of one env-level property of one element (None for the global ones)."""
        if kind == "obs_noise":
            assert element is not None
            return np.asarray(self.noise_std[self.noise_slices[element]][0])
        return np.asarray(self.values[kind])

    def set(self, kind: str, element: str | None, value: float) -> None:
        """Set one env-level property of one element; `value` is already validated."""
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
        k_image = max(k, int(self.values["image_delay"]))  # images are observations too: never earlier
        if k_image == 0:
            return out
        delayed = {key: v for key, v in out.items() if key == "observation" or key.startswith("image_")}
        self._observations.append(delayed)
        while len(self._observations) > k_image + 1:
            self._observations.popleft()
        n = len(self._observations)
        images = self._observations[0]  # k_image steps ago, or the episode's first
        out.update((key, v) for key, v in images.items() if key != "observation")
        out["observation"] = self._observations[max(0, n - 1 - k)]["observation"]
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
