"""Shared fixtures: headless rendering, one backend per parameter, small scenes."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")
# Tests run small networks: one torch thread each is faster than two fighting over a 2-core machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from sim.backend import Backend  # noqa: E402
from sim.engines import BACKENDS, make_backend  # noqa: E402
from sim.scene import SceneSpec, cube  # noqa: E402


@pytest.fixture(params=BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    """Each backend name in turn."""
    return str(request.param)


@pytest.fixture
def cube_backend(backend_name: str):  # type: ignore[no-untyped-def]
    """A backend with a cube on the table, closed after the test."""
    b: Backend = make_backend(backend_name, SceneSpec(objects=(cube("object", (0.05, 0.05, 0.02)),)))
    yield b
    b.close()


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator (tests never use a global RNG)."""
    return np.random.default_rng(1234)
