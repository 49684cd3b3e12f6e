"""What randomization and calibration read and write on a scene: properties by name (`<kind>:<element>`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np


class FlatSetter(Protocol):
    """A compiled writer for a fixed list of concrete property names (see PropertyTarget.compile_setter)."""

    def __call__(self, flat: np.ndarray, forward: bool = True) -> None:
        """Write every property from `flat`: each value raveled, in the compiled names' order (sim.properties
        flat_layout). `forward=False` when a reset or step follows at once and recomputes positions."""
        ...


class PropertyTarget(Protocol):
    """Something whose randomizable properties are read and written by name (sim.properties): the env (engine
    and env-level properties) and an engine backend (engine properties only). Names may hold shell-style
    wildcards over element names; every method fails with a KeyError naming the property for unknown kinds and
    for patterns that match no element."""

    def concrete_property_names(self, name: str) -> list[str]:
        """The concrete names (`kind:element`, or `kind` for a global property) that `name` refers to."""
        ...

    def get_property(self, name: str) -> dict[str, np.ndarray]:
        """Values of every property `name` refers to, keyed by concrete name."""
        ...

    def set_properties(self, values: Mapping[str, object]) -> None:
        """Set several properties (names may hold wildcards); every value is validated (shape, finiteness,
        physical domain) before anything changes, so a ValueError leaves the scene as it was."""
        ...

    def compile_setter(self, names: Sequence[str]) -> FlatSetter:
        """A fast writer for fixed concrete names, for the randomized-reset path: names are resolved once here,
        and per call only the checks a domain box cannot prove are made (limit order, quaternion norm); the
        caller guarantees every other value lies in its kind's domain."""
        ...
