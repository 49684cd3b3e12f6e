"""The command line under careless use: nothing it did not make is destroyed, every recorded config is what ran,
bad input is refused up front with one line naming it (issue 13)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from policies.export import ExportError
from sim2real import checkpoints
from sim2real.export_run import export_run
from sim2real.train import ConfigError, train
from tests.quick_runs import SMALL, quick_config, quick_run

CLI = [sys.executable, "-m", "sim2real.cli"]
#: PPO flags for a CLI run that is cheap per step (the run lasts until a test stops it).
PPO_FLAGS = [
    "--agent", "ppo", "--no-progress", "--eval-every-steps", "0", "--eval-episodes", "1",
    "--set", "n_steps=64", "--set", "batch_size=32", "--set", "policy_kwargs={net_arch: [32, 32]}",
]  # fmt: skip


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, check=False, timeout=timeout)


def listing(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its bytes (to prove a refused command changed nothing)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def ppo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 64-step PPO Reach run without randomization (the default)."""
    return quick_run(tmp_path_factory.mktemp("runs") / "ppo", agent="ppo", steps=64)


# -- export never destroys what it did not make -----------------------------------------------------------------
def test_export_refuses_the_run_folder_a_folder_inside_it_and_a_foreign_folder(ppo_run: Path, tmp_path: Path) -> None:
    before = listing(ppo_run)
    with pytest.raises(ExportError, match="is the run folder"):
        export_run(ppo_run, ppo_run)
    with pytest.raises(ExportError, match="inside the run folder"):
        export_run(ppo_run, ppo_run / "checkpoints" / "bundle")
    foreign = tmp_path / "papers"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("years of work")
    with pytest.raises(ExportError, match="is not a policy bundle"):
        export_run(ppo_run, foreign, force=True)  # --force replaces bundles only
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(ExportError, match="is not a folder"):
        export_run(ppo_run, tmp_path / "notes.txt")
    assert listing(ppo_run) == before
    assert (foreign / "thesis.tex").read_text() == "years of work"
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_export_replaces_a_bundle_only_with_force_and_never_one_holding_other_files(
    ppo_run: Path, tmp_path: Path
) -> None:
    out = export_run(ppo_run, tmp_path / "bundle")
    first = (out / "manifest.json").read_text()
    with pytest.raises(ExportError, match="pass --force"):
        export_run(ppo_run, out)
    assert (out / "manifest.json").read_text() == first
    time.sleep(1.1)  # the manifest's `created` stamp has one-second resolution
    export_run(ppo_run, out, force=True)
    assert (out / "manifest.json").read_text() != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]  # no temp or old folders left beside it
    (out / "calibration.yaml").write_text("mine")
    with pytest.raises(ExportError, match="not a policy bundle"):
        export_run(ppo_run, out, force=True)
    assert (out / "calibration.yaml").read_text() == "mine"


def test_cli_export_into_the_run_is_one_line_and_exit_2(ppo_run: Path) -> None:
    before = listing(ppo_run)
    out = cli("export", str(ppo_run), "--out", str(ppo_run))
    assert out.returncode == 2 and "is the run folder" in out.stderr and "Traceback" not in out.stderr
    assert listing(ppo_run) == before


# -- evaluate -----------------------------------------------------------------------------------------------------
def test_evaluate_works_on_a_run_without_randomization_and_records_episodes_and_seed(ppo_run: Path) -> None:
    out = cli("evaluate", str(ppo_run), "--episodes", "2", "--seed", "7")  # a fresh process: nothing imported sim
    assert out.returncode == 0, out.stderr
    result = json.loads((ppo_run / "evaluation-mujoco-none.json").read_text())
    assert result["episodes"] == 2 and result["seed"] == 7 and 0.0 <= result["nominal"]["success"] <= 1.0
    good = (ppo_run / "evaluation-mujoco-none.json").read_bytes()
    for bad in ("0", "-3"):
        out = cli("evaluate", str(ppo_run), "--episodes", bad)
        assert out.returncode == 2 and "must be positive" in out.stderr
    assert (ppo_run / "evaluation-mujoco-none.json").read_bytes() == good
    from sim2real.train import evaluate_run

    with pytest.raises(ConfigError, match="episodes must be a positive"):
        evaluate_run(ppo_run, episodes=0)


# -- resume: only a larger budget may change ------------------------------------------------------------------------
def test_resume_refuses_every_change_but_a_larger_budget_and_never_rewrites_a_config(tmp_path: Path) -> None:
    run = quick_run(tmp_path / "run", steps=60)
    recorded = listing(run)

    def unchanged() -> None:
        now = listing(run)
        for name in ("config.json", "settings.json", "summary.json", "model.zip"):
            assert now[name] == recorded[name], name

    changes: list[tuple[dict[str, Any], str]] = [
        ({"seed": 1}, "seed=1 (the run has 0)"),
        ({"settings": {**SMALL["tqc_her"], "learning_rate": 0.01}}, "settings="),
        ({"n_envs": 2}, "n_envs=2"),
    ]
    for kw, needle in changes:
        with pytest.raises(ConfigError, match=r"--resume may change only --steps") as e:
            train(quick_config(run, steps=120, **kw), resume=True, progress=False)
        assert needle in str(e.value)
        unchanged()
    with pytest.raises(ConfigError, match="fewer than the run's budget of 60"):
        train(quick_config(run, steps=30), resume=True, progress=False)
    unchanged()
    with pytest.raises(ConfigError, match="has finished its 60 steps"):
        train(quick_config(run, steps=60), resume=True, progress=False)
    unchanged()
    train(quick_config(run, steps=120), resume=True, progress=False)  # the one change allowed
    assert json.loads((run / "config.json").read_text())["steps"] == 120
    assert json.loads((run / "summary.json").read_text())["steps"] == 120
    assert (run / "settings.json").read_bytes() == recorded["settings.json"]


def test_cli_resume_takes_the_runs_config_and_names_a_changed_flag(tmp_path: Path) -> None:
    run = tmp_path / "push"
    quick_run(run, task="push", steps=60)
    before = listing(run)
    out = cli("train", "--out", str(run), "--resume", "--seed", "3")
    assert out.returncode == 2 and "seed=3 (the run has 0)" in out.stderr
    out = cli("train", "--out", str(run), "--resume", "--set", "learning_rate=0.01")
    assert out.returncode == 2 and "learning_rate" in out.stderr
    out = cli("train", "--out", str(run), "--resume")  # no --task push: the run's own config, not the defaults
    assert out.returncode == 2 and "has finished its 60 steps" in out.stderr
    assert listing(run) == before


# -- settings checked before anything trains ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("settings", "needle"),
    [
        ({"learning_rate": "abc"}, "settings.learning_rate must be a number, got 'abc'"),
        ({"batch_size": 0}, "settings.batch_size must be >= 1, got 0"),
        ({"gamma": 5}, "settings.gamma must be in (0.0, 1.0], got 5.0"),
        ({"gamma": float("nan")}, "settings.gamma must be a finite number"),
        ({"buffer_size": 2.5}, "settings.buffer_size must be a whole number"),
        ({"policy_kwargs": "big"}, "settings.policy_kwargs must be a mapping"),
        ({"policy_kwargs": {"net_arch": [64, -1]}}, "settings.policy_kwargs.net_arch[1] must be >= 1"),
        ({"policy_kwargs": {"net_arch": "wide"}}, "settings.policy_kwargs.net_arch must be a list"),
        ({"policy_kwargs": {"lstm_hidden_size": 8}}, "settings.policy_kwargs: unknown key(s) ['lstm_hidden_size']"),
        ({"her": {"n_sampled_goal": 0}}, "settings.her.n_sampled_goal must be >= 1"),
        ({"train_freq": [4, "weeks"]}, "settings.train_freq must be N or [N, 'step' | 'episode']"),
        ({"action_noise_type": "pink"}, "settings.action_noise_type must be one of"),
        ({"normalize": "yes"}, "settings.normalize must be true or false"),
        ({"batch_size": 9000}, "settings.batch_size 9000 exceeds settings.buffer_size 5000"),
    ],
)
def test_bad_settings_are_refused_by_key_before_anything_is_written(
    tmp_path: Path, settings: dict[str, Any], needle: str
) -> None:
    with pytest.raises(ConfigError) as e:
        train(quick_config(tmp_path / "run", settings={**SMALL["tqc_her"], **settings}), progress=False)
    assert needle in str(e.value)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"seed": "abc"}, "seed must be int, got 'abc'"),
        ({"seed": -1}, "seed must be >= 0"),
        ({"n_envs": 2.5}, "n_envs must be int, got 2.5"),
        ({"subproc": "no"}, "subproc must be bool"),
        ({"steps": True}, "steps must be int or null, got True"),
        ({"device": "gpu"}, "device must be auto, cpu, cuda, cuda:N or mps"),
    ],
)
def test_config_fields_are_type_checked(tmp_path: Path, kw: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError) as e:
        train(quick_config(tmp_path / "run", **kw), progress=False)
    assert needle in str(e.value)
    assert not (tmp_path / "run").exists()


def test_a_numeric_string_setting_is_read_as_the_number_and_recorded_so(tmp_path: Path) -> None:
    run = train(quick_config(tmp_path / "run", settings={**SMALL["tqc_her"], "learning_rate": "1e-3"}), progress=False)
    assert json.loads((run / "settings.json").read_text())["learning_rate"] == 0.001


def test_a_setting_the_library_refuses_leaves_no_folder(tmp_path: Path) -> None:
    # passes our checks (a positive batch), but SB3's PPO asserts a minibatch of at least 2 when it is built
    settings = {**SMALL["ppo"], "batch_size": 1}
    with pytest.raises(ConfigError, match="settings: the ppo agent refused them: .*batch_size"):
        train(quick_config(tmp_path / "run", agent="ppo", settings=settings), progress=False)
    assert not (tmp_path / "run").exists()
    existing = tmp_path / "empty"
    existing.mkdir()
    with pytest.raises(ConfigError):
        train(quick_config(existing, agent="ppo", settings=settings), progress=False)
    assert existing.is_dir() and not any(existing.iterdir())  # the user's folder stays, empty as it was
    (existing / ".lock").write_text("")  # a lock file an earlier trainer left: not this run's to remove
    with pytest.raises(ConfigError):
        train(quick_config(existing, agent="ppo", settings=settings), progress=False)
    assert [p.name for p in existing.iterdir()] == [".lock"]


def test_a_fresh_run_refuses_a_folder_of_other_files(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("1,2,3")
    with pytest.raises(ConfigError, match="is not empty and is not a sim2real run"):
        train(quick_config(tmp_path), progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv"]


# -- one-line errors ------------------------------------------------------------------------------------------------
def test_cli_errors_are_one_line_not_tracebacks(tmp_path: Path, ppo_run: Path) -> None:
    bad = tmp_path / "exp.yaml"
    bad.write_text("task: reach\nsettings: {learning_rate: 0.001\n")
    out = cli("train", "--config", str(bad), "--out", str(tmp_path / "a"))
    assert out.returncode == 2 and "is not valid YAML (line" in out.stderr and "Traceback" not in out.stderr
    seeded = tmp_path / "seeded.yaml"
    seeded.write_text('seed: "abc"\n')
    out = cli("train", "--config", str(seeded), "--out", str(tmp_path / "b"))
    assert out.returncode == 2 and "seed must be int" in out.stderr and "Traceback" not in out.stderr
    half = tmp_path / "half"  # killed before its first checkpoint
    half.mkdir()
    shutil.copy(ppo_run / "config.json", half / "config.json")
    out = cli("train", "--out", str(half), "--resume")
    assert out.returncode == 2 and "cannot resume" in out.stderr and "Traceback" not in out.stderr
    (tmp_path / "file").write_text("x")
    out = cli("export", str(ppo_run), "--out", str(tmp_path / "file"))
    assert out.returncode == 2 and "is not a folder" in out.stderr and "Traceback" not in out.stderr
    import torch

    if not torch.cuda.is_available():
        out = cli("train", "--device", "cuda", "--out", str(tmp_path / "c"))
        assert out.returncode == 2 and "sees no CUDA device" in out.stderr
        assert not (tmp_path / "c").exists()
    for name in ("a", "b"):
        assert not (tmp_path / name).exists()


def test_deploy_checks_the_bundle_before_any_node_starts(ppo_run: Path, tmp_path: Path) -> None:
    from sim2real.deploy import DeployError, launch_arguments

    bundle = export_run(ppo_run, tmp_path / "bundle")
    with open(bundle / "policy.onnx", "r+b") as f:  # a byte flipped in transfer
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 0xFF]))
    t0 = time.perf_counter()
    with pytest.raises(DeployError, match="SHA-256"):
        launch_arguments(bundle, sim=True)
    assert time.perf_counter() - t0 < 10
    out = cli("deploy", str(bundle), "--sim", "--print")
    assert out.returncode == 2 and "SHA-256" in out.stderr


# -- permissions ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_keep_the_users_umask(tmp_path: Path, umask: int, mode: int) -> None:
    from sim2real.artifacts import write_json

    old = os.umask(umask)
    try:
        path = write_json(tmp_path / "config.json", {"a": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_json_artifacts_refuse_nan(tmp_path: Path) -> None:
    from sim2real.artifacts import write_json

    with pytest.raises(ValueError):
        write_json(tmp_path / "e.json", {"success": float("nan")})
    assert not list(tmp_path.iterdir())


def test_demo_refuses_a_folder_it_did_not_write(tmp_path: Path) -> None:
    from sim2real.demo import claim_demo_folder

    (tmp_path / "results.csv").write_text("mine")
    assert "not a folder an earlier demo wrote" in str(claim_demo_folder(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv"]
    assert claim_demo_folder(tmp_path / "new") is None and claim_demo_folder(tmp_path / "new") is None


# -- Ctrl-C, SIGTERM, kill -9 and a second trainer on one run -------------------------------------------------------
def _wait_for(predicate: Any, proc: subprocess.Popen[str], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"trainer exited early with {proc.returncode}: {proc.communicate()[1][-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("timed out waiting for the trainer")
        time.sleep(0.2)


def _latest_step(run: Path) -> int:
    try:
        return checkpoints.load_latest(run)[0].step
    except checkpoints.CheckpointError:
        return -1


def test_kill_ctrl_c_sigterm_and_a_second_trainer_leave_a_run_that_verifies_and_resumes(tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = subprocess.Popen(
        [*CLI, "train", *PPO_FLAGS, "--steps", "200000", "--checkpoint-every-steps", "256", "--out", str(run)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _wait_for(lambda: _latest_step(run) >= 256, first)
    config = (run / "config.json").read_bytes()

    second = cli("train", "--out", str(run), "--resume")  # while the first one trains
    assert second.returncode == 2 and f"PID {first.pid}" in second.stderr, second.stderr
    fresh = cli("train", *PPO_FLAGS, "--out", str(run))
    assert fresh.returncode == 2 and "already holds a run" in fresh.stderr

    first.kill()  # kill -9: no handler runs; the lock goes with the process
    first.communicate()
    killed_at = _latest_step(run)
    assert killed_at >= 256  # the newest complete checkpoint verifies

    for sig in (signal.SIGINT, signal.SIGTERM):
        before = _latest_step(run)
        proc = subprocess.Popen(
            [*CLI, "train", "--out", str(run), "--resume"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        _wait_for(lambda b=before: _latest_step(run) > b, proc)  # it resumed and trained on
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, err[-2000:]
        assert "Traceback" not in err and "checkpoint written to" in err and "--resume" in err
        ckpt, warnings = checkpoints.load_latest(run)
        assert not warnings and ckpt.step > before
        assert f"step-{ckpt.step:09d}" in err  # it says where
    assert (run / "config.json").read_bytes() == config  # every segment trained what the config says


def test_the_demo_replaces_only_calibration_folders_it_wrote(tmp_path: Path) -> None:
    from sim2real.demo_calibration import DEMO_MARKER, remove_own

    mine, theirs = tmp_path / "calibration", tmp_path / "calibration-bags"
    mine.mkdir()
    (mine / DEMO_MARKER).write_text("x")
    (mine / "report.json").write_text("{}")
    theirs.mkdir()
    (theirs / "my_bag.mcap").write_text("data")
    assert remove_own(mine) and not mine.exists()
    assert not remove_own(theirs) and (theirs / "my_bag.mcap").read_text() == "data"
    assert remove_own(tmp_path / "absent")
