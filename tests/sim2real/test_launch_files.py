"""The shipped launch files: every one resolves to a `sim2real train` command the CLI accepts, and one runs end
to end through the runner (a real, short training)."""

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
FILES = sorted(LAUNCH.glob("*.launch.yaml"))


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
