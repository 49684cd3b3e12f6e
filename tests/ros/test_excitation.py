"""The excitation of `sim2real excite` without ROS: the multisine starts and ends at the start pose at rest, keeps
its velocity cap and the joint limits, is deterministic per seed and spreads distinct frequencies over the joints;
the exciter's core plans around the measured pose, holds on stale or bad joint_states and refuses unsafe flags."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from sim2real_ros.excitation import ExcitationSpec, multisine, window
from sim2real_ros.exciter_core import ExciteError, ExciteOptions, ExciterCore, check_options, format_summary

ARM_JOINTS = [f"panda_joint{i}" for i in range(1, 8)]
NEUTRAL_Q = np.array([0.0, 0.41, 0.0, -1.85, 0.0, 2.26, 0.79])
#: The Panda's arm limits (sim.robot.panda().arm_limits_rad), inlined so this module needs no URDF.
LIMITS = np.array(
    [[-2.9671, 2.9671], [-1.8326, 1.8326], [-2.9671, 2.9671], [-3.1416, 0.0], [-2.9671, 2.9671], [-0.0873, 3.8223],
     [-2.9671, 2.9671]]
)  # fmt: skip


def _excite(q0: np.ndarray = NEUTRAL_Q, seed: int = 0, **spec: float) -> tuple:
    s = ExcitationSpec(**spec)  # type: ignore[arg-type]
    return multisine(q0, LIMITS[:, 0], LIMITS[:, 1], s, seed), s


def test_the_limits_table_is_the_robot_description() -> None:
    robot = pytest.importorskip("sim.robot").panda()
    assert list(robot.arm_joint_names) == ARM_JOINTS
    np.testing.assert_allclose(robot.arm_limits_rad, LIMITS, atol=1e-4)


def test_it_starts_and_ends_at_q0_at_rest() -> None:
    ex, spec = _excite(duration_s=6.0)
    assert ex.q_rad.shape == (151, 7) and ex.t_s[-1] == pytest.approx(6.0)
    np.testing.assert_array_equal(ex.q_rad[0], NEUTRAL_Q)
    np.testing.assert_array_equal(ex.q_rad[-1], NEUTRAL_Q)
    v = np.diff(ex.q_rad, axis=0) / ex.period_s
    assert np.max(np.abs(v[0])) < 0.02 and np.max(np.abs(v[-1])) < 0.02  # one step off rest: nearly still
    w, dw = window(np.array([0.0, 1.0, 3.0, 5.0, 6.0]), 6.0, 1.5)
    np.testing.assert_allclose(w, [0.0, 0.75, 1.0, 0.75, 0.0], atol=1e-12)
    np.testing.assert_allclose(dw[[0, 2, 4]], 0.0, atol=1e-12)  # zero slope at both ends
    assert np.all(np.max(np.abs(ex.q_rad - NEUTRAL_Q), axis=0) > 0.05)  # and every joint moves in between


@pytest.mark.parametrize("vmax", [0.1, 0.5, 1.0])
def test_the_velocity_cap_holds(vmax: float) -> None:
    ex, _ = _excite(duration_s=10.0, amplitude_rad=0.5, max_velocity_rad_s=vmax, seed=3)
    assert ex.peak_velocity_rad_s <= vmax
    assert ex.peak_velocity_rad_s > 0.8 * vmax  # scaled to the cap, not far below it


def test_positions_stay_inside_the_limits_with_a_margin() -> None:
    near = LIMITS[:, 1] - 0.15  # 0.15 rad below every upper limit: only 0.05 rad of room above the margin
    ex, spec = _excite(q0=near, amplitude_rad=0.5, duration_s=8.0)
    assert np.all(ex.q_rad <= LIMITS[:, 1] - spec.limit_margin_rad + 1e-12)
    assert np.all(ex.q_rad >= LIMITS[:, 0] + spec.limit_margin_rad - 1e-12)
    assert np.all(ex.amplitude_rad <= 0.05 + 1e-12)
    at_limit = NEUTRAL_Q.copy()
    at_limit[3] = LIMITS[3, 1] - 0.05  # inside the margin: that joint stays still, the others move
    ex, _ = _excite(q0=at_limit)
    assert ex.amplitude_rad[3] == 0.0 and np.all(ex.q_rad[:, 3] == at_limit[3])
    assert np.all(ex.amplitude_rad[[0, 1, 2, 4, 5, 6]] > 0)


def test_it_is_deterministic_for_a_seed_and_joints_get_different_frequencies() -> None:
    a, _ = _excite(seed=7)
    b, _ = _excite(seed=7)
    c, _ = _excite(seed=8)
    np.testing.assert_array_equal(a.q_rad, b.q_rad)
    assert not np.allclose(a.q_rad, c.q_rad)
    f = a.frequencies_hz
    assert f.shape == (7, 4) and len(np.unique(f)) == f.size  # no frequency shared by two joints (or twice)
    assert f.min() >= 0.1 - 1e-12 and f.max() <= 1.0 + 1e-12
    spectra = np.abs(np.fft.rfft(a.q_rad - NEUTRAL_Q, axis=0))
    assert len({int(np.argmax(spectra[1:, j])) for j in range(7)}) >= 5  # dominant lines differ across joints


def test_bad_specs_are_refused() -> None:
    for bad in ({"duration_s": math.nan}, {"max_velocity_rad_s": 0.0}, {"f_max_hz": 20.0}, {"amplitude_rad": -1}):
        with pytest.raises(ValueError):
            _excite(**bad)


# -- the exciter's core ---------------------------------------------------------------------------------------
def _core() -> ExciterCore:
    return ExciterCore(ARM_JOINTS, LIMITS)


def _js(core: ExciterCore, q: np.ndarray, t_s: float, names: list[str] | None = None) -> str | None:
    names = names or [*ARM_JOINTS, "panda_finger_joint1", "panda_finger_joint2"]
    position = [*q, 0.0, 0.0][: len(names)]
    return core.on_joint_state(names[::-1], position[::-1], [], stamp_s=100.0 + t_s, ros_s=100.0 + t_s, steady_s=t_s)


def test_the_core_streams_the_plan_through_the_gate_and_ends_at_q0() -> None:
    core, options = _core(), ExciteOptions(duration_s=3.0, lead_in_s=0.2, settle_s=0.2)
    assert core.stale(0.0) == "no valid joint_states received"
    assert _js(core, NEUTRAL_Q, 0.0) is None and core.stale(0.01) is None  # order by name, extra joints fine
    ex = core.start(options)
    t, commands = 0.0, []
    while not core.done:
        t += core.period_s
        assert _js(core, NEUTRAL_Q, t) is None
        cmd, fault = core.tick(t)
        assert fault is None and cmd is not None
        commands.append(cmd)
    assert len(commands) == 5 + len(ex.q_rad) + 5
    np.testing.assert_allclose(commands[-1], NEUTRAL_Q)
    s = core.summary
    assert s.rejected == 0 and s.limited == 0  # inside the gate's limits: never clamped nor rate-limited
    assert 0 < s.peak_velocity_rad_s <= options.max_velocity_rad_s
    assert core.final_error_rad() == 0.0


@pytest.mark.parametrize(
    "fault, needle",
    [
        ("stale", "joint_states stale (0.3"),
        ("nan", "bad joint_states: joint_states holds non-finite values"),
        ("missing", "bad joint_states: joint_states lacks joints ['panda_joint7']"),
        ("zero_stamp", "header.stamp is zero"),
    ],
)
def test_the_core_holds_the_measured_pose_on_stale_or_bad_joint_states(fault: str, needle: str) -> None:
    core = _core()
    _js(core, NEUTRAL_Q, 0.0)
    core.start(ExciteOptions(duration_s=3.0))
    measured = NEUTRAL_Q + 0.01
    assert _js(core, measured, 0.04) is None
    assert core.tick(0.04)[1] is None
    if fault == "stale":
        cmd, reason = core.tick(0.04 + 0.3)
    else:
        if fault == "nan":
            assert _js(core, np.full(7, np.nan), 0.08) is not None
        elif fault == "missing":
            assert _js(core, NEUTRAL_Q, 0.08, names=ARM_JOINTS[:6]) is not None
        else:
            core.on_joint_state(ARM_JOINTS, list(NEUTRAL_Q), [], stamp_s=0.0, ros_s=100.08, steady_s=0.08)
        cmd, reason = core.tick(0.08)
    assert reason is not None and needle in reason and "\n" not in reason
    np.testing.assert_array_equal(cmd, measured)  # the hold: the last good measurement
    core.summary.outcome, core.summary.reason = "fault", reason
    assert core.summary.exit_code == 1 and format_summary(core.summary).startswith("sim2real excite: fault: ")


def test_a_start_pose_inside_the_safety_margin_is_refused() -> None:
    core = _core()
    q = NEUTRAL_Q.copy()
    q[3] = -0.01  # panda_joint4's upper limit is 0
    _js(core, q, 0.0)
    with pytest.raises(ExciteError, match=r"\['panda_joint4'\] start within the safety margin"):
        core.start(ExciteOptions())


def test_flags_past_the_gate_are_refused() -> None:
    check_options(ExciteOptions())
    for bad, flag in [
        ({"max_velocity_rad_s": 1.5}, "--max-velocity-rad-s must be in \\(0, 1\\]"),
        ({"amplitude_rad": 0.0}, "--amplitude-rad"),
        ({"duration_s": -2.0}, "--duration-s"),
        ({"controller": "velocity"}, "--controller"),
    ]:
        with pytest.raises(ExciteError, match=flag):
            check_options(ExciteOptions(**bad))  # type: ignore[arg-type]


def test_the_calibrate_launch_file_runs_the_recorder_and_the_exciter_and_the_arm_with_sim(tmp_path: Path) -> None:
    from sim2real.cli import build_parser
    from sim2real.launch_runner import parse_launch

    launch = Path(__file__).resolve().parents[2] / "launch" / "calibrate.launch.yaml"
    for sim in ("false", "true"):
        plan = parse_launch(launch, {"out": str(tmp_path / "bag"), "sim": sim, "namespace": "arm1", "seed": "3"})
        if sim == "true":  # the simulated arm only with sim:=true (the node's `if`)
            arm, recorder, exciter = plan.processes
            assert arm.argv[0] == "sim2real-sim-arm" and "__ns:=/arm1" in arm.argv
        else:
            recorder, exciter = plan.processes
        assert recorder.argv[:3] == ("sim2real-recorder", "--out", str(tmp_path / "bag"))
        assert "__ns:=/arm1" in recorder.argv
        assert exciter.argv[:2] == ("sim2real", "excite")
        args = build_parser().parse_args(list(exciter.argv[1:]))  # argparse exits on anything the CLI does not take
        assert (args.namespace, args.seed, args.controller) == ("arm1", 3, "joint_trajectory")
