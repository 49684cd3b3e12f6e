"""Replay: the same commands under the same parameter values give the same trajectory, other values another one;
the discrepancy is zero exactly for identical trajectories and weighs its four terms as documented."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.discrepancy import DiscrepancyWeights, discrepancy
from calibration.episodes import Episode
from calibration.replay import Replayer
from randomization import ParameterSpace
from sim.scene import NEUTRAL_ARM_Q_RAD

SPACE = ParameterSpace.from_dict(
    {
        "schema_version": 1,
        "parameters": [
            {"name": "joint_damping:panda_joint*", "nominal": 0.0, "low": 0.0, "high": 5.0, "per_element": True},
            {
                "name": "actuator_kp:panda_joint*",
                "nominal": 1.0,
                "low": 0.5,
                "high": 1.5,
                "apply": "scale",
                "per_element": True,
            },
            {"name": "action_delay", "nominal": 0, "low": 0, "high": 3, "integer": True},
        ],
    }
)


def excitation(steps: int = 75, dt_s: float = 0.04, amplitude_rad: float = 0.25) -> np.ndarray:
    """(steps, 7) sums of sines around the neutral pose, a different frequency per joint."""
    t = np.arange(steps)[:, None] * dt_s
    freqs = np.linspace(0.4, 1.3, 7)[None, :]
    return np.asarray(NEUTRAL_ARM_Q_RAD)[None, :] + amplitude_rad * np.sin(2 * np.pi * freqs * t) * np.minimum(t, 1.0)


@pytest.fixture(params=["mujoco", "pybullet"])
def replayer(request: pytest.FixtureRequest) -> Replayer:
    r = Replayer(SPACE, backend=str(request.param))
    yield r
    r.close()


def _episode(replayer: Replayer, values: dict[str, object]) -> Episode:
    cmd = excitation()
    q, qd = replayer.rollout(cmd[0], cmd, 0.04, values)
    return Episode("synthetic", replayer.joint_names, 0.04, 0, q, qd, cmd)


def test_replaying_under_the_recording_values_reproduces_it(replayer: Replayer) -> None:
    hidden = {"joint_damping:panda_joint1": 3.0, "actuator_kp:panda_joint2": 0.6, "action_delay": 2}
    recorded = _episode(replayer, hidden)
    same = replayer.replay(recorded, hidden)
    nominal = replayer.replay(recorded)
    assert discrepancy(*same, recorded.q_rad, recorded.qd_rad_s) < 1e-9
    assert discrepancy(*nominal, recorded.q_rad, recorded.qd_rad_s) > 1e-3
    # each hidden value alone moves the trajectory: the delay, and the damping of one joint
    assert (
        discrepancy(*replayer.replay(recorded, {**hidden, "action_delay": 0}), recorded.q_rad, recorded.qd_rad_s) > 1e-4
    )
    assert not np.allclose(replayer.replay(recorded, {**hidden, "joint_damping:panda_joint1": 0.0})[0][:, 0],
                           recorded.q_rad[:, 0], atol=1e-4)  # fmt: skip


def test_the_wildcards_are_expanded_and_bad_input_refused(replayer: Replayer) -> None:
    assert "joint_damping:panda_joint7" in replayer.parameter_names and "action_delay" not in replayer.parameter_names
    cmd = excitation(10)
    with pytest.raises(KeyError, match="unknown calibration parameter"):
        replayer.rollout(cmd[0], cmd, 0.04, {"body_mass:nope": 1.0})
    with pytest.raises(ValueError, match="whole number"):
        replayer.rollout(cmd[0], cmd, 0.041)
    with pytest.raises(ValueError, match=r"must be \(T, 7\)"):
        replayer.rollout(cmd[0], cmd[:, :6], 0.04)


def test_discrepancy_is_zero_for_identical_and_weighs_each_term() -> None:
    rng = np.random.default_rng(0)
    q, qd = rng.normal(size=(20, 7)), rng.normal(size=(20, 7))
    assert discrepancy(q, qd, q, qd) == 0.0
    e = 0.1
    only_pos = DiscrepancyWeights(position_l1=1.0, position_l2=0.0, velocity_l1=0.0, velocity_l2=0.0)
    assert discrepancy(q + e, qd, q, qd, only_pos) == pytest.approx(e)
    only_sq = DiscrepancyWeights(position_l1=0.0, position_l2=1.0, velocity_l1=0.0, velocity_l2=0.0)
    assert discrepancy(q + e, qd, q, qd, only_sq) == pytest.approx(e**2)
    default = discrepancy(q, qd + 1.0, q, qd)
    assert default == pytest.approx(0.1 * 1.0 + 0.01 * 1.0)  # velocities weigh 0.1 (L1) and 0.01 (L2)
    assert discrepancy(q + e, qd, q, qd) == pytest.approx(discrepancy(q - e, qd, q, qd))  # symmetric
    with pytest.raises(ValueError, match="one shape"):
        discrepancy(q, qd, q[:5], qd)
    with pytest.raises(ValueError, match="non-finite"):
        discrepancy(q * np.nan, qd, q, qd)
    with pytest.raises(ValueError, match="weight"):
        DiscrepancyWeights(position_l1=-1.0)


def test_a_fractional_delay_and_send_offsets_apply_commands_between_control_ticks() -> None:
    """Half a step of delay is 10 physics steps: the same as the commands held twice as often with one (half-length)
    step of delay, and as every command sent 20 ms late."""
    r = Replayer(SPACE, "mujoco")
    cmd = excitation(40)
    half = r.rollout(cmd[0], cmd, 0.04, {"action_delay": 0.5})
    fine = r.rollout(cmd[0], np.repeat(cmd, 2, axis=0), 0.02, {"action_delay": 1})
    late = r.rollout(cmd[0], cmd, 0.04, {}, cmd_offset_s=np.full(len(cmd), 0.02))
    r.close()
    np.testing.assert_array_equal(half[0], fine[0][::2][: len(cmd)])
    np.testing.assert_array_equal(half[0], late[0])
    # between physics steps the effect is continuous: 10.5 physics steps of delay lies between 10 and 11 (exactly
    # midway while no actuator saturates, as the PD torque is linear in the target)
    r = Replayer(SPACE, "mujoco")
    small = excitation(40, amplitude_rad=0.02)
    before, mid, after = (r.rollout(small[0], small, 0.04, {"action_delay": d})[0] for d in (0.5, 0.525, 0.55))
    r.close()
    spread = np.abs(after - before).max()
    assert spread > 1e-4 and np.abs(mid - 0.5 * (before + after)).max() < 1e-3 * spread
    assert not np.array_equal(half[0], r_zero := _zero_delay(cmd)) and r_zero.shape == half[0].shape


def _zero_delay(cmd: np.ndarray) -> np.ndarray:
    r = Replayer(SPACE, "mujoco")
    try:
        return r.rollout(cmd[0], cmd, 0.04, {})[0]
    finally:
        r.close()


def test_bad_offsets_and_delays_are_refused() -> None:
    r = Replayer(SPACE, "mujoco")
    cmd = excitation(10)
    with pytest.raises(ValueError, match="cmd_offset_s"):
        r.rollout(cmd[0], cmd, 0.04, {}, cmd_offset_s=np.zeros(3))
    with pytest.raises(ValueError, match="action_delay"):
        r.rollout(cmd[0], cmd, 0.04, {"action_delay": -0.5})
    r.close()
