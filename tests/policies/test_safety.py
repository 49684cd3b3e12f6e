"""The safety gate: reject-and-hold on bad targets (never repair), clamp with margin, rate limit, latched halt; and
a 100k-sample fuzz: no command is ever non-finite, outside the limits minus margin, or faster than allowed."""

from __future__ import annotations

import numpy as np
import pytest

from policies.safety import SafetyGate, SafetyLimits

LO = np.array([-2.9, -1.8, -2.9, -3.0, -2.9, 0.0, -2.9])
HI = np.array([2.9, 1.8, 2.9, -0.1, 2.9, 3.7, 2.9])
LIMITS = SafetyLimits(LO, HI, margin_rad=0.05, max_velocity_rad_s=1.0, control_period_s=0.04)
Q0 = np.array([0.0, 0.4, 0.0, -1.8, 0.0, 2.2, 0.8])


def _gate() -> SafetyGate:
    g = SafetyGate(LIMITS)
    g.reset(Q0)
    return g


def test_a_reachable_target_passes_unchanged() -> None:
    r = _gate().filter(Q0 + 0.01)
    assert r.status == "ok" and not r.reasons and np.allclose(r.command_rad, Q0 + 0.01)


@pytest.mark.parametrize("bad", [np.full(7, np.nan), np.r_[Q0[:6], np.inf], np.zeros(6), "not numbers", None])
def test_bad_targets_are_rejected_and_the_last_command_held(bad: object) -> None:
    g = _gate()
    r = g.filter(bad)
    assert r.status == "hold" and np.array_equal(r.command_rad, Q0) and r.reasons


def test_k_rejects_in_a_row_latch_a_halt_until_resume() -> None:
    g = _gate()
    g.filter(np.full(7, np.nan))
    assert g.filter(Q0).status == "ok"  # a good target resets the count
    statuses = [g.filter(np.full(7, np.nan)).status for _ in range(3)]
    assert statuses == ["hold", "hold", "halted"]
    assert g.filter(Q0 + 0.01).status == "halted"  # good targets no longer pass
    g.resume(Q0)
    assert g.filter(Q0 + 0.01).status == "ok"
    g.halt()
    assert g.filter(Q0).status == "halted"


def test_targets_are_clamped_inside_the_margin_and_rate_limited() -> None:
    g = _gate()
    r = g.filter(HI + 10.0)
    assert "clamped to limits minus margin" in r.reasons and "rate-limited" in r.reasons
    assert np.all(np.abs(r.command_rad - Q0) <= 0.04 + 1e-12)  # 1 rad/s x 40 ms
    for _ in range(400):
        r = g.filter(HI + 10.0)
    assert np.allclose(r.command_rad, HI - 0.05)


def test_configuration_errors() -> None:
    with pytest.raises(ValueError, match="margin"):
        SafetyLimits(LO, HI, margin_rad=2.0)
    with pytest.raises(ValueError, match="max_velocity"):
        SafetyLimits(LO, HI, max_velocity_rad_s=0.0)
    with pytest.raises(RuntimeError, match="before reset"):
        SafetyGate(LIMITS).filter(Q0)
    with pytest.raises(ValueError, match="measured joints"):
        SafetyGate(LIMITS).reset(np.full(7, np.nan))


def test_fuzz_100k_outputs_never_produce_an_unsafe_command() -> None:
    rng = np.random.default_rng(0)
    g = _gate()
    prev = g.filter(Q0).command_rad
    step = 1.0 * 0.04
    specials = np.array([np.nan, np.inf, -np.inf, 1e300, -1e300, 0.0])
    for i in range(100_000):
        kind = rng.integers(5)
        if kind == 0:  # sensible targets near the current command
            t = prev + rng.normal(0, 0.05, 7)
        elif kind == 1:  # anywhere, huge included
            t = rng.normal(0, 10.0 ** rng.integers(0, 12), 7)
        elif kind == 2:  # special values sprinkled in
            t = prev.copy()
            t[rng.integers(7, size=rng.integers(1, 4))] = rng.choice(specials)
        elif kind == 3:  # wrong shapes
            t = rng.normal(size=rng.integers(0, 12))
        else:
            t = rng.uniform(LO - 1, HI + 1)
        r = g.filter(t)
        c = r.command_rad
        assert np.all(np.isfinite(c)), i
        assert np.all(c >= LO + 0.05 - 1e-12) and np.all(c <= HI - 0.05 + 1e-12), i
        assert np.all(np.abs(c - prev) <= step + 1e-12), i
        prev = c
        if g.halted:
            g.resume(c)


def test_the_velocity_limit_can_be_changed_between_ticks() -> None:
    lo, hi = np.full(2, -1.0), np.full(2, 1.0)
    gate = SafetyGate(SafetyLimits(lo, hi, margin_rad=0.0, max_velocity_rad_s=1.0, control_period_s=0.1))
    gate.reset(np.zeros(2))
    assert np.allclose(gate.filter(np.ones(2)).command_rad, 0.1)
    gate.set_max_velocity(0.5)
    assert np.allclose(gate.filter(np.ones(2)).command_rad, 0.15)
    with pytest.raises(ValueError, match="finite and > 0"):
        gate.set_max_velocity(float("nan"))


def test_per_joint_margins_and_speeds_cover_a_finger_in_metres() -> None:
    """A gate over 2 arm joints (rad) and one finger (m): each keeps its own margin and speed."""
    gate = SafetyGate(
        SafetyLimits(
            np.array([-1.0, -1.0, 0.0]),
            np.array([1.0, 1.0, 0.04]),
            margin_rad=np.array([0.05, 0.05, 0.0]),
            max_velocity_rad_s=np.array([1.0, 1.0, 0.1]),
            control_period_s=0.04,
        )  # fmt: skip
    )
    gate.reset(np.array([0.0, 0.0, 0.02]))
    out = gate.filter(np.array([2.0, 0.0, 0.0]))
    np.testing.assert_allclose(out.command_rad, [0.04, 0.0, 0.016])  # each rate-limited by its own speed
    for _ in range(100):
        out = gate.filter(np.array([2.0, 0.0, -1.0]))
    np.testing.assert_allclose(out.command_rad, [0.95, 0.0, 0.0])  # arm inside its margin; the finger may close
    with pytest.raises(ValueError, match="leave room"):
        SafetyLimits(np.array([0.0]), np.array([0.04]), margin_rad=np.array([0.05]))
