"""issue 16.6: the robot-side install. The policy node runs where torch, gymnasium, mujoco, pybullet and SB3 are
not installed (the `robot` extra): in a subprocess whose imports of them fail, it loads a bundle, configures,
activates and acts, over real DDS against a stand-in driver."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.ros.harness import FakeArm, console_script, lifecycle_state, probe, wait_for

#: What a robot PC lacks: importing any of these fails in the subprocess.
ABSENT = ("torch", "gymnasium", "mujoco", "pybullet", "pybullet_data", "stable_baselines3", "sb3_contrib")
BLOCKER = f"""
import importlib.abc, sys
ABSENT = {set(ABSENT)!r}
class _Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ABSENT:
            raise ModuleNotFoundError(f"No module named {{name!r}} (not on this robot PC)")
        return None
sys.meta_path.insert(0, _Absent())
"""


@pytest.fixture
def robot_pc(tmp_path: Path) -> dict[str, str]:
    """The environment of a process whose imports of ABSENT fail (a sitecustomize on PYTHONPATH)."""
    (tmp_path / "sitecustomize.py").write_text(BLOCKER)
    return {"PYTHONPATH": str(tmp_path)}


def test_the_blocker_blocks(robot_pc: dict[str, str]) -> None:
    import os

    code = "import torch"
    r = subprocess.run([sys.executable, "-c", code], env={**os.environ, **robot_pc}, capture_output=True, text=True)
    assert r.returncode == 1 and "not on this robot PC" in r.stderr


def test_the_policy_core_acts_without_the_training_packages(reach_bundle: Path, robot_pc: dict[str, str]) -> None:
    import os

    code = f"""
import sys
import numpy as np
from policies.bundle import load_bundle
from sim.scene import NEUTRAL_ARM_Q_RAD
from sim2real_ros.policy_core import PolicyCore
import sim2real_ros.policy_lifecycle  # the node's module, rclpy and all
core = PolicyCore(load_bundle({str(reach_bundle)!r}))
arm = [f"panda_joint{{i}}" for i in range(1, 8)]
assert core.on_joint_state(arm, list(NEUTRAL_ARM_Q_RAD), [0.0] * 7, 10.0, 10.0, 10.0) is None
assert core.on_goal("panda_link0", (0.6, 0.05, 0.15), (0.0, 0.0, 0.0, 1.0), 10.0) is None
assert core.activate(10.0) is None
print(core.tick(10.04).status, sorted(m for m in {ABSENT!r} if m in sys.modules))
"""
    r = subprocess.run([sys.executable, "-c", code], env={**os.environ, **robot_pc}, capture_output=True, text=True,
                       timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0] == "act" and r.stdout.strip().endswith("[]")


@pytest.mark.ros
def test_the_policy_node_configures_activates_and_acts_without_them(
    reach_bundle: Path, robot_pc: dict[str, str]
) -> None:
    pytest.importorskip("sim2real_ros.probe", reason="needs the [ros] extra")
    args = ("-p", f"bundle:={reach_bundle}", "-p", "autostart:=true")
    with probe() as p, console_script("sim2real-policy-node", ros_args=args, env=robot_pc) as proc:
        arm = FakeArm(p)
        wait_for(lambda: lifecycle_state(p, "/policy_node") == "active", 60, "autostart to activate")
        arm.send_goal((0.6, 0.05, 0.15))
        wait_for(lambda: len(arm.commands) >= 3, 15, "policy commands")
        assert proc.poll() is None


def test_the_robot_extra_and_the_package_declare_no_training_or_simulation_packages() -> None:
    import xml.etree.ElementTree as ET

    import tomllib

    root = Path(__file__).resolve().parents[2]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    names = [
        r.split("[")[0].split(">")[0].split("=")[0].strip().lower() for r in project["optional-dependencies"]["robot"]
    ]
    core = [r.split(">")[0].strip().lower() for r in project["dependencies"]]
    for absent in ("torch", "gymnasium", "mujoco", "pybullet", "stable-baselines3", "sb3-contrib", "sim2real"):
        assert absent not in names + core, absent
    assert {"onnxruntime", "opencv-python-headless", "ros-kilted-rclpy"} <= set(names)
    deps = {e.text for e in ET.parse(root / "ros_ws/src/sim2real_ros/package.xml").getroot().iter("exec_depend")}
    assert {"rclpy", "python3-numpy", "python3-opencv", "python3-onnxruntime-pip"} <= deps


def test_the_exciter_takes_the_arms_urdf_where_pybullet_is_absent(robot_pc: dict[str, str], tmp_path: Path) -> None:
    import os

    from sim.robot import panda_urdf_path

    urdf = tmp_path / "my_arm.urdf"
    urdf.write_text(panda_urdf_path().read_text())  # the user's own URDF, outside pybullet_data
    code = f"""
from sim2real_ros.exciter import arm_description
names, limits = arm_description({str(urdf)!r})
print(len(names), limits.shape)
for bad in ("", "/nonexistent/arm.urdf"):
    try:
        arm_description(bad)
    except ValueError as e:
        print("refused:", e)
"""
    r = subprocess.run([sys.executable, "-c", code], env={**os.environ, **robot_pc}, capture_output=True, text=True,
                       timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("7 (7, 2)") and "refused: no Panda description here" in r.stdout
    assert "refused: --urdf /nonexistent/arm.urdf:" in r.stdout
