"""ROS 2 tests: DDS traffic kept on this machine and in a domain of its own, logs in a temp folder.

The variables are set before anything imports rclpy, so in-process nodes and the console scripts started as
subprocesses (which inherit os.environ) share the same isolated domain.
"""

from __future__ import annotations

import os
import tempfile

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))
os.environ.setdefault("ROS_LOG_DIR", tempfile.mkdtemp(prefix="sim2real-roslog-"))


import pytest  # noqa: E402

from tests.ros.bundles import trained_reach_bundle  # noqa: E402


@pytest.fixture(scope="session")
def reach_bundle(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A real exported Reach policy (64 PPO steps, joint control) for the node's tests."""
    return trained_reach_bundle(tmp_path_factory.mktemp("reach"))


@pytest.fixture(scope="session")
def lstm_bundle(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A real exported recurrent (RecurrentPPO, LSTM state in and out) Reach policy."""
    return trained_reach_bundle(tmp_path_factory.mktemp("reach-lstm"), agent="recurrent_ppo")


@pytest.fixture(scope="session")
def ee_bundle(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A real exported Reach policy in end-effector control (the node runs the env's IK step)."""
    return trained_reach_bundle(tmp_path_factory.mktemp("reach-ee"), control="ee")


@pytest.fixture(scope="session")
def push_bundle(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A real exported Push policy (64 PPO steps, end-effector control): the node needs object_pose for it."""
    from sim2real.export_run import export_run
    from tests.quick_runs import quick_run

    out = tmp_path_factory.mktemp("push")
    run = quick_run(out / "run", task="push", agent="ppo", control="ee", steps=64)
    return export_run(run, out / "bundle")


@pytest.fixture(scope="session")
def push_bundle_layout2(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A real exported Push policy (200 TQC + HER steps) observing layout 2 (sim.observation's relative features)."""
    from sim2real.export_run import export_run
    from tests.quick_runs import quick_run

    out = tmp_path_factory.mktemp("push2")
    run = quick_run(out / "run", task="push", agent="tqc_her", control="ee", obs_layout=2)
    return export_run(run, out / "bundle")


@pytest.fixture(scope="session")
def pnp_bundle(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A real exported PickAndPlace policy (64 PPO steps, end-effector control): it commands its gripper."""
    from sim2real.export_run import export_run
    from tests.quick_runs import quick_run

    out = tmp_path_factory.mktemp("pnp")
    run = quick_run(out / "run", task="pick_and_place", agent="ppo", control="ee", steps=64)
    return export_run(run, out / "bundle")
