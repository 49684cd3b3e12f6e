"""The shipped launch files: every training one resolves to a `sim2real train` command the CLI accepts, and one
runs end to end through the runner (a real, short training); the deploy ones start the nodes as documented."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sim2real.cli import build_parser
from sim2real.launch_runner import parse_launch

LAUNCH = Path(__file__).resolve().parents[2] / "launch"
FILES = sorted(LAUNCH.glob("train*.launch.yaml"))


def test_there_are_launch_files_and_no_python_package() -> None:
    assert {f.name for f in FILES} >= {"train.launch.yaml", "train_reach.launch.yaml", "train_push_adr.launch.yaml"}
    assert not (LAUNCH / "__init__.py").exists()


@pytest.mark.parametrize("path", FILES, ids=[f.name for f in FILES])
def test_every_launch_file_resolves_to_a_valid_train_command(path: Path) -> None:
    plan = parse_launch(path, {"seed": "4"})
    (proc,) = plan.processes
    assert list(proc.argv[:2]) == ["sim2real", "train"]
    args = build_parser().parse_args(list(proc.argv[1:]))  # argparse exits on anything the CLI does not take
    assert args.seed == 4 and args.out.endswith("-s4")
    assert proc.env["MUJOCO_GL"] == "egl"


def test_the_runner_trains_through_the_launch_file(tmp_path: Path) -> None:
    out = tmp_path / "run"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    cmd = [
        sys.executable,
        "-m",
        "sim2real.cli",
        "launch",
        str(LAUNCH / "train.launch.yaml"),
        "steps:=60",
        f"out:={out}",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "[train-1]" in done.stdout + done.stderr
    assert json.loads((out / "summary.json").read_text())["steps"] == 60


def _ros_args(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """-p name:=value pairs and the rest of a node's --ros-args."""
    params, rest = {}, []
    args = argv[argv.index("--ros-args") + 1 :]
    i = 0
    while i < len(args):
        if args[i] == "-p":
            name, _, value = args[i + 1].partition(":=")
            params[name] = value
            i += 2
        else:
            rest.append(args[i])
            i += 1
    return params, rest


def test_deploy_launch_starts_the_policy_node_only(tmp_path: Path) -> None:
    plan = parse_launch(LAUNCH / "deploy.launch.yaml", {"bundle": str(tmp_path), "namespace": "arm1"})
    (proc,) = plan.processes
    assert proc.argv[0] == "sim2real-policy-node"
    params, rest = _ros_args(list(proc.argv))
    assert params == {
        "bundle": str(tmp_path), "command_interface": "joint_trajectory", "autostart": "false", "trigger": "timer"
    }  # fmt: skip
    assert rest[:4] == ["-r", "__node:=policy_node", "-r", "__ns:=/arm1"]
    assert rest[4:] == ["--params-file", str(LAUNCH / "policy_node.params.yaml")]
    assert proc.env["FASTDDS_BUILTIN_TRANSPORTS"] == "LARGE_DATA"


def test_deploy_sim_launch_adds_the_simulated_arm(tmp_path: Path) -> None:
    plan = parse_launch(
        LAUNCH / "deploy_sim.launch.yaml",
        {"bundle": str(tmp_path), "backend": "mujoco", "controller": "forward_position", "randomization": "dynamics"},
    )
    arm, node = plan.processes
    assert (arm.argv[0], node.argv[0]) == ("sim2real-sim-arm", "sim2real-policy-node")
    arm_params, _ = _ros_args(list(arm.argv))
    node_params, _ = _ros_args(list(node.argv))
    assert arm_params["backend"] == "mujoco" and arm_params["randomization"] == "dynamics"
    assert arm_params["command_interface"] == node_params["command_interface"] == "forward_position"
    assert node_params["autostart"] == "true"


def test_object_tasks_rehearse_with_the_tracker_or_the_truth(tmp_path: Path) -> None:
    pose = "1.05,0,0.3,0.333654,-0.623438,-0.623438,0.333654"
    plan = parse_launch(LAUNCH / "deploy_sim.launch.yaml", {"bundle": str(tmp_path), "task": "push",
                        "object_tracker": "true", "camera_name": "front", "camera_pose": pose})  # fmt: skip
    arm, node, tracker = plan.processes
    assert tracker.argv[0] == "sim2real-object-tracker"
    assert _ros_args(list(tracker.argv))[0] == {"camera_pose": pose, "camera_yaml": "''"}
    arm_params = _ros_args(list(arm.argv))[0]
    assert arm_params["object_marker"] == "true" and arm_params["camera_name"] == "front"
    assert arm_params["publish_object_pose"] == "false"
    truth = parse_launch(LAUNCH / "deploy_sim.launch.yaml", {"bundle": str(tmp_path), "task": "push",
                         "publish_object_pose": "true"})  # fmt: skip
    assert [p.argv[0] for p in truth.processes] == ["sim2real-sim-arm", "sim2real-policy-node"]
    assert _ros_args(list(truth.processes[0].argv))[0]["publish_object_pose"] == "true"


def test_the_params_file_sets_only_declared_parameters() -> None:
    import yaml

    from sim2real_ros.policy_node import MISSING_ROS  # noqa: F401  (importable without rclpy)

    data = yaml.safe_load((LAUNCH / "policy_node.params.yaml").read_text())
    params = data["/**/policy_node"]["ros__parameters"]
    node = pytest.importorskip("sim2real_ros.policy_lifecycle", reason="needs the [ros] extra")
    defaults = {p.name: p.default for p in node.PARAMETERS}

    assert set(params) <= set(defaults) and "bundle" not in params
    for name, value in params.items():
        assert type(value) is type(defaults[name]), name  # rclpy refuses a 1 where it declared 1.0
