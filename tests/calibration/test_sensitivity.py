"""The sensitivity probe tells a parameter pinned alone from one pinned only in combination with another, on
linear trajectory models whose answer is known, with an L1 discrepancy (not quadratic, as the real one)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from calibration.sensitivity import sensitivity

NAMES = ["kd", "damping", "kp"]
RNG = np.random.default_rng(0)
A, B, C = RNG.normal(size=(3, 200))
#: trajectory = M u: kd's column a, damping's 3% of it (plus a trace of its own), kp's its own
M = np.stack([A, 0.03 * A + 1e-5 * C, B], axis=1)


def probes(m: np.ndarray, truth: np.ndarray) -> tuple[Callable, Callable, list[int]]:  # type: ignore[type-arg]
    calls: list[int] = []

    def discrepancy(points: list[np.ndarray]) -> np.ndarray:
        return np.array([np.mean(np.abs(m @ (p - truth))) for p in points])

    def trajectories(points: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        calls.append(len(points))  # one replay per point gives both
        return np.array([m @ p for p in points]), discrepancy(points)

    def score(points: list[np.ndarray]) -> np.ndarray:
        calls.append(len(points))
        return discrepancy(points)

    return trajectories, score, calls


def test_a_parameter_the_other_makes_up_for_is_not_identifiable() -> None:
    u0 = np.array([0.5, 0.5, 0.5])
    traj, score, calls = probes(M, u0)
    s = sensitivity(traj, score, u0, 0.0, np.ones(3, bool), threshold=1e-3)
    assert sum(calls) == 2 * 3 + 1  # the fit, each parameter alone, each against the others
    # alone, damping's 10% step moves the trajectory by 0.003 a: above the threshold...
    assert s.rise[1] == pytest.approx(0.003 * np.mean(np.abs(A)), rel=0.01)
    assert s.rise[1] > 1e-3
    # ...but kd moving by 0.003 makes up for it
    assert s.profile_rise[1] < 1e-5
    # kd cannot be made up for: damping would have to move 3.3 prior ranges; from mid-range it covers 0.015
    assert s.profile_rise[0] == pytest.approx((0.1 - 0.03 * 0.5) * np.mean(np.abs(A)), rel=0.01)
    assert s.profile_rise[2] == pytest.approx(s.rise[2], rel=0.02)  # kp acts on its own (A, B nearly orthogonal)
    assert s.identifiable.tolist() == [True, False, True]
    assert s.correlation[0, 1] == pytest.approx(-1.0, abs=1e-3)  # they trade off: more kd, less damping
    assert abs(s.correlation[0, 2]) < 0.2
    assert s.compensation[1, 0] == pytest.approx(1.0, abs=1e-3)  # kd cancels all of damping's effect...
    assert abs(s.compensation[1, 2]) < 0.05  # ...kp next to none
    assert s.confounded_with(1, NAMES) == ["kd"]
    assert s.confounded_with(2, NAMES) == []


def test_steps_go_inwards_at_the_upper_bound_with_the_signs_kept() -> None:
    m = np.stack([A, A + 1e-3 * C], axis=1)  # the same effect: the posterior trades one for the other
    u0 = np.array([0.95, 0.5])  # the first steps down, the second up
    traj, score, _ = probes(m, u0)
    s = sensitivity(traj, score, u0, 0.0, np.ones(2, bool), threshold=1e-3)
    assert s.rise == pytest.approx([0.1 * np.mean(np.abs(m[:, 0])), 0.1 * np.mean(np.abs(m[:, 1]))], rel=1e-6)
    assert s.correlation[0, 1] < -0.99
    assert not s.identifiable.any()


def test_independent_parameters_keep_their_alone_rise() -> None:
    m = np.stack([A, B], axis=1)
    u0 = np.array([0.3, 0.7])
    traj, score, _ = probes(m, u0)
    s = sensitivity(traj, score, u0, 0.0, np.ones(2, bool))
    assert s.profile_rise == pytest.approx(s.rise, rel=0.05)
    assert s.identifiable.all()


def test_a_fixed_parameter_is_not_probed_and_not_identifiable() -> None:
    u0 = np.array([0.5, 0.5, 0.5])
    traj, score, calls = probes(M, u0)
    s = sensitivity(traj, score, u0, 0.0, np.array([True, False, True]), threshold=1e-3)
    assert sum(calls) == 2 * 2 + 1
    assert s.identifiable.tolist() == [True, False, True]  # without damping, kd is not confounded
    assert np.isnan(s.correlation[1]).all()


def test_a_static_robot_identifies_nothing() -> None:
    u0 = np.array([0.5, 0.5, 0.5])
    traj, score, _ = probes(np.zeros_like(M), u0)
    s = sensitivity(traj, score, u0, 0.0, np.ones(3, bool))
    assert not s.identifiable.any()
    assert np.isnan(s.correlation).all() and s.confounded_with(0, NAMES) == []


def test_the_others_make_up_for_a_parameter_put_back_to_its_nominal() -> None:
    u0 = np.array([0.5, 0.5, 0.5])
    traj, score, _ = probes(M, u0)
    s = sensitivity(traj, score, u0, 0.0, np.ones(3, bool), threshold=1e-3)
    back = np.array([0.5, 0.0, 0.5])  # damping back to its nominal (the bottom of its range)
    made = s.make_up_for(back, s.identifiable)
    assert made[1] == 0.0  # stays where it was put
    assert made[0] == pytest.approx(0.5 + 0.03 * 0.5, abs=1e-4)  # kd takes up its 3% share
    assert made[2] == pytest.approx(0.5, abs=1e-4)
    assert score([made])[0] < 0.01 * score([back])[0]


def test_a_probe_closer_than_an_unconverged_fit_is_returned() -> None:
    truth = np.array([0.5, 0.5, 0.58])  # kp's best lies 0.08 above the (unconverged) fit
    u0 = np.array([0.5, 0.5, 0.5])
    traj, score, _ = probes(M, truth)
    d0 = float(score([u0])[0])
    s = sensitivity(traj, score, u0, d0, np.ones(3, bool), threshold=1e-4)
    assert s.best_u is not None and s.best_score < d0
    assert s.best_u[2] == pytest.approx(0.6)  # kp's probe step, nearer the truth
    converged = sensitivity(traj, score, truth, 0.0, np.ones(3, bool), threshold=1e-4)
    assert converged.best_u is None
