"""Every sampler reports its learning state as flat named floats (`metrics()`): nothing for the samplers that do not
learn, ADR's entropy and current boundaries, Active DR's mean particle per component."""

from __future__ import annotations

import json

import numpy as np
import pytest

from randomization import (
    ADRConfig,
    AutomaticDR,
    EpisodeReport,
    NominalSampler,
    ParameterSpace,
    Sampler,
    UniformDR,
    make_sampler,
)
from randomization.active import ActiveDR, ActiveDRConfig

SPACE = ParameterSpace.from_dict(
    {
        "schema_version": 1,
        "parameters": [
            {"name": "a", "nominal": 1.0, "low": 0.0, "high": 2.0},
            {"name": "b", "nominal": [5.0, 5.0], "low": [0.0, 4.0], "high": [10.0, 6.0]},
            {"name": "fixed", "nominal": 3.0, "low": 3.0, "high": 3.0},
            {"name": "texture:table", "patterns": ["flat", "checker"]},
        ],
    }
)


@pytest.mark.parametrize("kind", ["uniform", "adr", "active", "nominal"])
def test_every_sampler_reports_named_finite_floats(kind: str) -> None:
    sampler = make_sampler(kind, SPACE, np.random.default_rng(0))
    assert isinstance(sampler, Sampler)
    metrics = sampler.metrics()
    assert all(isinstance(k, str) and type(v) is float and np.isfinite(v) for k, v in metrics.items())
    assert json.loads(json.dumps(metrics)) == metrics


def test_samplers_that_do_not_learn_report_nothing() -> None:
    uniform = UniformDR(SPACE, np.random.default_rng(0))
    for _ in range(3):
        uniform.feedback(uniform.sample(), EpisodeReport(success=1.0))
    assert uniform.metrics() == {}
    assert NominalSampler(SPACE).metrics() == {}


def test_adr_reports_its_entropy_and_the_first_component_of_each_range() -> None:
    adr = AutomaticDR(SPACE, np.random.default_rng(1), ADRConfig(buffer_size=2, boundary_prob=1.0))
    for _ in range(400):  # "a" succeeds within 0.5 of nominal: its boundaries move out, then stop
        draw = adr.sample()
        adr.feedback(draw, EpisodeReport(success=float(abs(float(draw.values["a"]) - 1.0) < 0.5)))
    assert adr.n_updates > 0
    ranges = adr.ranges()
    assert float(ranges["a"][0]) < 1.0 < float(ranges["a"][1])  # the boundaries moved
    expected = {"entropy": adr.entropy()}
    for name, (lo, hi) in ranges.items():
        expected[f"{name}/low"] = float(np.ravel(lo)[0])
        expected[f"{name}/high"] = float(np.ravel(hi)[0])
    assert adr.metrics() == expected
    assert set(expected) == {"entropy", "a/low", "a/high", "b/low", "b/high", "fixed/low", "fixed/high"}


def test_adr_metrics_at_the_start_are_the_nominal_point() -> None:
    metrics = AutomaticDR(SPACE, np.random.default_rng(0)).metrics()
    assert metrics["a/low"] == metrics["a/high"] == 1.0 and metrics["b/low"] == 5.0 and metrics["fixed/high"] == 3.0
    assert metrics["entropy"] < -10  # every range is a point


def test_active_dr_reports_the_mean_particle_per_component() -> None:
    active = ActiveDR(SPACE, np.random.default_rng(0), ActiveDRConfig(n_particles=3))
    means = active.particles().mean(axis=0)
    expected = {f"particles/{name}": float(m) for name, m in zip(active.component_names(), means)}
    assert active.metrics() == expected
    assert set(expected) == {"particles/a", "particles/b[0]", "particles/b[1]"}  # fixed and texture do not move
    active.theta = active.theta + 1.0  # the metrics follow the particles
    assert all(active.metrics()[k] > v for k, v in expected.items())
