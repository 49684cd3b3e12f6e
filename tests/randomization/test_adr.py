"""Automatic DR on a toy task whose performance is known: ranges grow where the policy succeeds, stop or shrink
where it fails, never pass the hard limits or the nominal, and the state survives a checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest

from randomization import ADRConfig, AutomaticDR, EpisodeReport, ParameterSpace

SPACE = ParameterSpace.from_dict(
    {
        "schema_version": 1,
        "parameters": [
            # the policy fails once |a - 1| >= 0.5: ADR must stop near [0.5, 1.5]
            {"name": "a", "nominal": 1.0, "low": 0.0, "high": 2.0},
            # the policy never cares about b: ADR must open it up to its hard limits
            {"name": "b", "nominal": [5.0, 5.0], "low": [0.0, 4.0], "high": [10.0, 6.0]},
            {"name": "fixed", "nominal": 3.0, "low": 3.0, "high": 3.0},
        ],
    }
)


def _success(values: dict[str, np.ndarray]) -> float:
    return float(abs(float(values["a"]) - 1.0) < 0.5)


def _run(adr: AutomaticDR, episodes: int) -> None:
    for _ in range(episodes):
        draw = adr.sample()
        adr.feedback(draw, EpisodeReport(success=_success(draw.values)))


def test_ranges_start_at_nominal_and_draws_stay_inside() -> None:
    adr = AutomaticDR(SPACE, np.random.default_rng(0))
    assert adr.entropy() < -10  # every range is a point
    first = adr.sample().values
    assert float(first["a"]) == 1.0 and np.array_equal(first["b"], [5.0, 5.0]) and float(first["fixed"]) == 3.0
    assert [c[0] for c in adr.components] == ["a", "b", "b"]  # the fixed parameter never moves


def test_ranges_grow_where_the_policy_succeeds_and_stop_where_it_fails() -> None:
    adr = AutomaticDR(SPACE, np.random.default_rng(1), ADRConfig(buffer_size=5, step_fraction=0.05))
    entropy0 = adr.entropy()
    _run(adr, 4000)
    r = adr.ranges()
    lo_a, hi_a = float(r["a"][0]), float(r["a"][1])
    # a: the task is solved within 0.5 of nominal and never beyond: the range ends within two steps of that edge
    assert 0.3 <= lo_a <= 0.6 and 1.4 <= hi_a <= 1.7, (lo_a, hi_a)
    # b: no effect on success -> opened to its hard limits, and not beyond
    assert np.allclose(r["b"][0], [0.0, 4.0]) and np.allclose(r["b"][1], [10.0, 6.0])
    assert adr.entropy() > entropy0
    # draws follow the ranges
    draws = [adr.sample().values for _ in range(300)]
    assert all(lo_a <= float(d["a"]) <= hi_a for d in draws)
    assert max(float(d["b"][0]) for d in draws) > 9.0


def test_ranges_shrink_when_performance_drops() -> None:
    adr = AutomaticDR(SPACE, np.random.default_rng(2), ADRConfig(buffer_size=5))
    adr.lo["a"], adr.hi["a"] = np.array(0.0), np.array(2.0)  # as if a much better policy had widened it
    _run(adr, 3000)
    lo, hi = adr.ranges()["a"]
    assert float(lo) >= 0.3 and float(hi) <= 1.7, (lo, hi)
    assert float(lo) <= 1.0 <= float(hi)  # never past nominal


def test_same_seed_same_sequence_and_checkpoint_round_trip() -> None:
    def seq(adr: AutomaticDR, n: int) -> list[float]:
        out = []
        for _ in range(n):
            d = adr.sample()
            adr.feedback(d, EpisodeReport(success=_success(d.values)))
            out.append(float(d.values["a"]))
        return out

    a = AutomaticDR(SPACE, np.random.default_rng(5), ADRConfig(buffer_size=3))
    b = AutomaticDR(SPACE, np.random.default_rng(5), ADRConfig(buffer_size=3))
    assert seq(a, 200) == seq(b, 200)
    state = json.loads(json.dumps(a.state_dict()))  # JSON all the way: it goes into checkpoints and bundles
    c = AutomaticDR(SPACE, np.random.default_rng(123))
    c.load_state_dict(state)
    assert c.ranges().keys() == a.ranges().keys()
    assert seq(c, 200) == seq(a, 200)  # resumes exactly where it was, buffers and generator included


def test_bad_config_and_state_are_rejected() -> None:
    with pytest.raises(ValueError, match="threshold_low"):
        ADRConfig(threshold_low=0.9, threshold_high=0.5)
    with pytest.raises(ValueError, match="boundary_prob"):
        ADRConfig(boundary_prob=0.0)
    adr = AutomaticDR(SPACE, np.random.default_rng(0))
    state = adr.state_dict()
    state["ranges"]["a"] = {"low": 1.5, "high": 2.0}  # excludes the nominal
    with pytest.raises(ValueError, match="outside the space"):
        adr.load_state_dict(state)
    with pytest.raises(ValueError, match="not 'adr'"):
        adr.load_state_dict({"sampler": "uniform"})


def test_as_space_exports_the_reached_ranges() -> None:
    adr = AutomaticDR(SPACE, np.random.default_rng(1), ADRConfig(buffer_size=5))
    _run(adr, 1000)
    space = adr.as_space()
    assert float(space["a"].low) == float(adr.ranges()["a"][0])  # type: ignore[union-attr]
    assert float(space["a"].high) == float(adr.ranges()["a"][1])  # type: ignore[union-attr]
