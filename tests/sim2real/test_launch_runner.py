"""The launch runner: the ROS 2 YAML launch subset parsed as ros2 launch would, clear errors, and shutdown."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from sim2real.launch_runner import LaunchError, LaunchPlan, Process, main, parse_launch, run

REPO = Path(__file__).resolve().parents[2]
TRAIN = REPO / "launch" / "train.launch.yaml"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def argvs(path: Path, **args: str) -> list[list[str]]:
    return [list(p.argv) for p in parse_launch(path, args).processes]


def error(path: Path, **args: str) -> str:
    with pytest.raises(LaunchError) as info:
        parse_launch(path, args)
    return str(info.value)


# ---- parsing


def test_arg_let_set_env_and_executable(tmp_path: Path) -> None:
    f = write(
        tmp_path / "a.launch.yaml",
        """\
        launch:
          - arg: {name: who, default: world, description: greeting target}
          - arg: {name: count}
          - let: {name: msg, value: "hello $(var who)"}
          - set_env: {name: GREETING, value: $(var msg)}
          - executable:
              cmd: echo $(var msg) -n $(var count) "two words" x$(var who)y
              cwd: /tmp
              name: greeter
              output: screen
              env: [{name: EXTRA, value: "$(env GREETING)!"}]
        """,
    )
    plan = parse_launch(f, {"count": "3"})
    assert plan.args == {"who": "world", "count": "3"}
    (p,) = plan.processes
    # a substitution stays one argument even with spaces in its value; text around it is split like a shell
    assert p.argv == ("echo", "hello world", "-n", "3", "two words", "xworldy")
    assert (p.name, p.cwd, p.output) == ("greeter", "/tmp", "screen")
    assert p.env["GREETING"] == "hello world" and p.env["EXTRA"] == "hello world!"
    assert "GREETING" not in os.environ  # set_env changes the launched processes' environment only
    assert parse_launch(f, {"count": "1", "who": "you"}).processes[0].argv[1] == "hello you"


def test_default_name_is_the_executable_basename_and_output_defaults_to_log(tmp_path: Path) -> None:
    f = write(tmp_path / "a.launch.yaml", "launch:\n  - executable: {cmd: /bin/true --flag}\n")
    (p,) = parse_launch(f, {}).processes
    assert (p.name, p.argv, p.cwd, p.output) == ("true", ("/bin/true", "--flag"), None, "log")


def test_substitutions_env_dirname_find_exec_and_quoting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    tool = write(bin_dir / "mytool", "#!/bin/sh\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("LR_SET", "from-env")
    monkeypatch.delenv("LR_UNSET", raising=False)
    f = write(
        tmp_path / "sub" / "s.launch.yaml",
        """\
        launch:
          - let: {name: a, value: $(env LR_SET)}
          - let: {name: b, value: $(env LR_UNSET fallback)}
          - let: {name: c, value: "[$(env LR_UNSET '')]"}
          - let: {name: d, value: $(env LR_UNSET 'two words')}
          - let: {name: e, value: $(env LR_UNSET $(var a))}
          - let: {name: f, value: 'cost \\$(var a)'}
          - executable: {cmd: $(find-exec mytool) $(var a) $(var b) $(var c) $(var d) $(var e) $(var f) $(dirname)}
        """,
    )
    assert argvs(f) == [
        [str(tool), "from-env", "fallback", "[]", "two words", "from-env", "cost $(var a)", str(f.parent.resolve())]
    ]


def test_node_argv_matches_launch_ros(tmp_path: Path) -> None:
    params = write(tmp_path / "params.yaml", "/**:\n  ros__parameters: {rate_hz: 10}\n")
    f = write(
        tmp_path / "n.launch.yaml",
        f"""\
        launch:
          - arg: {{name: ns, default: arm1}}
          - node:
              exec: sim2real-policy-node
              name: policy
              namespace: $(var ns)
              args: --model m.onnx $(var ns)
              param:
                - {{from: {params}}}
                - {{name: rate_hz, value: 30}}
                - {{name: scale, value: 0.5}}
                - {{name: dry_run, value: true}}
                - {{name: joints, value: [a, b]}}
                - {{name: bundle, value: $(var ns)/bundle}}
                - {{name: empty, value: ""}}
              remap:
                - {{from: joint_states, to: /robot/joint_states}}
                - {{from: camera/image_raw, to: /cam/image}}
          - node: {{exec: bare-node}}
          - node: {{exec: raw-node, ros_args: --log-level debug, exec_name: raw}}
        """,
    )
    plan = parse_launch(f, {})
    assert [list(p.argv) for p in plan.processes] == [
        [
            "sim2real-policy-node",
            "--model",
            "m.onnx",
            "arm1",
            "--ros-args",
            "-r",
            "__node:=policy",
            "-r",
            "__ns:=/arm1",
            "--params-file",
            str(params),
            "-p",
            "rate_hz:=30",
            "-p",
            "scale:=0.5",
            "-p",
            "dry_run:=true",
            "-p",
            "joints:=[a, b]",
            "-p",
            "bundle:=arm1/bundle",
            "-p",
            "empty:=''",  # rcl refuses `empty:=`
            "-r",
            "joint_states:=/robot/joint_states",
            "-r",
            "camera/image_raw:=/cam/image",
        ],  # fmt: skip
        ["bare-node", "--ros-args"],
        ["raw-node", "--ros-args", "--log-level", "debug", "--ros-args"],
    ]
    assert [p.name for p in plan.processes] == ["sim2real-policy-node", "bare-node", "raw"]


def test_group_scoping_and_pushed_namespace(tmp_path: Path) -> None:
    f = write(
        tmp_path / "g.launch.yaml",
        """\
        launch:
          - let: {name: v, value: outer}
          - group:
              children:
                - let: {name: v, value: inner}
                - let: {name: only_inside, value: x}
                - set_env: {name: LR_GROUP, value: "1"}
                - push-ros-namespace: {namespace: robot}
                - node: {exec: n1, namespace: cam}
                - node: {exec: n2, namespace: /abs}
                - executable: {cmd: echo $(var v) $(var only_inside)}
          - executable: {cmd: echo $(var v)}
          - node: {exec: n3}
          - group:
              scoped: false
              children:
                - let: {name: v, value: leaked}
          - executable: {cmd: echo $(var v)}
          - group:
              forwarding: false
              keep: [{name: kept, value: $(var v)}]
              children:
                - executable: {cmd: echo $(var kept)}
        """,
    )
    plan = parse_launch(f, {})
    assert [list(p.argv) for p in plan.processes] == [
        ["n1", "--ros-args", "-r", "__ns:=/robot/cam"],
        ["n2", "--ros-args", "-r", "__ns:=/abs"],
        ["echo", "inner", "x"],
        ["echo", "outer"],  # a let inside a scoped group does not leak out
        ["n3", "--ros-args"],  # nor does the pushed namespace
        ["echo", "leaked"],  # scoped: false does
        ["echo", "leaked"],
    ]
    assert plan.processes[2].env["LR_GROUP"] == "1" and "LR_GROUP" not in plan.processes[3].env


def test_group_without_forwarding_starts_from_the_keep_entries_only(tmp_path: Path) -> None:
    f = write(
        tmp_path / "g.launch.yaml",
        """\
        launch:
          - let: {name: v, value: outer}
          - group:
              forwarding: false
              children: [{executable: {cmd: echo $(var v)}}]
        """,
    )
    msg = error(f)
    assert "$(var v)" in msg and "'executable'" in msg and "'cmd'" in msg


def test_nested_include_passes_args(tmp_path: Path) -> None:
    write(
        tmp_path / "leaf.launch.yaml",
        """\
        launch:
          - arg: {name: robot}
          - arg: {name: rate, default: "10"}
          - executable: {cmd: leaf $(var robot) $(var rate) $(dirname)}
        """,
    )
    write(
        tmp_path / "mid" / "mid.launch.yaml",
        """\
        launch:
          - arg: {name: robot}
          - include:
              file: $(dirname)/../leaf.launch.yaml
              arg: [{name: robot, value: "$(var robot)-leaf"}, {name: rate, value: "20"}]
          - executable: {cmd: mid $(var robot) $(var rate)}
        """,
    )
    top = write(
        tmp_path / "top.launch.yaml",
        """\
        launch:
          - arg: {name: name, default: panda}
          - group:
              children:
                - include: {file: $(dirname)/mid/mid.launch.yaml, arg: [{name: robot, value: $(var name)}]}
          - executable: {cmd: top $(var name)}
        """,
    )
    # include is not scoped (as in ros2 launch): `rate` set for leaf is still set in mid; the group scopes mid
    assert argvs(top) == [
        ["leaf", "panda-leaf", "20", str(tmp_path.resolve())],
        ["mid", "panda-leaf", "20"],
        ["top", "panda"],
    ]
    assert argvs(top, name="fr3", robot="x")[0][1] == "fr3-leaf"  # args of included files may be given too


# ---- errors name the file, the action and the offending thing


@pytest.mark.parametrize(
    ("body", "needles"),
    [
        ("- timer: {period: '1.0'}", ["unknown action 'timer'"]),
        ("- executable: {cmd: ls, shell: true}", ["'executable'", "attribute 'shell'", "unknown attribute"]),
        ("- executable: {cmd: ls $(find-pkg-share foo)}", ["'executable'", "'cmd'", "$(find-pkg-share"]),
        ("- let: {name: x, value: $(command ls)}", ["'let'", "'value'", "$(command"]),
        ("- executable: {cmd: ls $(var nope)}", ["'cmd'", "$(var nope)"]),
        ("- executable: {cmd: ls $(env LR_NEVER_SET_X)}", ["'cmd'", "LR_NEVER_SET_X"]),
        ("- executable: {cmd: ls $(var x}", ["'cmd'", "unterminated"]),
        ("- arg: {name: seed, default: 0}", ["'arg'", "'default'", "quote"]),
        ("- node: {pkg: demo_nodes_cpp, exec: talker}", ["'node'", "'pkg'", "PATH"]),
        ("- node: {exec: n, param: [{name: p}]}", ["'node param'", "'value'"]),
        ("- node: {exec: n, param: [{from: /nonexistent/p.yaml}]}", ["'node param'", "'from'", "not found"]),
        ("- node: {exec: n, remap: [{from: a, into: b}]}", ["'node remap'", "'into'"]),
        ("- executable: {cmd: ls, output: loud}", ["'output'", "loud"]),
        ("- group: {scoped: maybe, children: []}", ["'group'", "'scoped'"]),
        ("- include: {file: does/not/exist.launch.yaml}", ["'include'", "'file'", "does/not/exist.launch.yaml"]),
        ("- executable: ls", ["'executable'", "mapping"]),
        ("- {executable: {cmd: ls}, let: {name: a, value: b}}", ["one key"]),
    ],
)
def test_errors_name_file_action_and_attribute(tmp_path: Path, body: str, needles: list[str]) -> None:
    f = write(tmp_path / "bad.launch.yaml", f"launch:\n  {body}\n")
    msg = error(f)
    assert str(f) in msg
    for needle in needles:
        assert needle in msg, (needle, msg)


def test_missing_required_args_are_all_listed(tmp_path: Path) -> None:
    f = write(
        tmp_path / "r.launch.yaml",
        """\
        launch:
          - arg: {name: robot_ip, description: address of the arm}
          - arg: {name: bundle}
          - arg: {name: rate, default: "10"}
        """,
    )
    msg = error(f, bundle="b")
    assert str(f) in msg and "robot_ip (address of the arm)" in msg and "bundle" not in msg.split(":", 2)[-1]
    msg = error(f)
    assert "robot_ip" in msg and "bundle" in msg and "rate" not in msg


def test_undeclared_command_line_arg_is_an_error(tmp_path: Path) -> None:
    f = write(tmp_path / "u.launch.yaml", "launch:\n  - arg: {name: task, default: reach}\n")
    msg = error(f, tsak="push")
    assert str(f) in msg and "tsak" in msg and "declared: task" in msg


def test_include_errors(tmp_path: Path) -> None:
    write(tmp_path / "needs.launch.yaml", "launch:\n  - arg: {name: robot}\n")
    f = write(tmp_path / "i.launch.yaml", "launch:\n  - include: {file: $(dirname)/needs.launch.yaml}\n")
    msg = error(f)
    assert str(f) in msg and "'include'" in msg and "robot" in msg and "needs.launch.yaml" in msg
    loop = write(tmp_path / "loop.launch.yaml", "launch:\n  - include: {file: $(dirname)/loop.launch.yaml}\n")
    assert "includes itself" in error(loop)
    write(tmp_path / "broken.launch.yaml", "launch:\n  - executable: {cmd: [unclosed\n")
    g = write(tmp_path / "g.launch.yaml", "launch:\n  - include: {file: $(dirname)/broken.launch.yaml}\n")
    msg = error(g)
    assert "broken.launch.yaml" in msg and "YAML syntax error" in msg


def test_yaml_syntax_error_and_wrong_root(tmp_path: Path) -> None:
    f = write(tmp_path / "y.launch.yaml", "launch:\n  - executable: {cmd: ls\n")
    msg = error(f)
    assert str(f) in msg and "YAML syntax error" in msg and "line" in msg
    g = write(tmp_path / "root.launch.yaml", "actions:\n  - executable: {cmd: ls}\n")
    assert str(g) in error(g) and "'launch'" in error(g)
    assert "cannot read" in error(tmp_path / "missing.launch.yaml")


def test_main_exit_codes_and_messages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = write(tmp_path / "m.launch.yaml", "launch:\n  - arg: {name: a}\n  - executable: {cmd: echo $(var a)}\n")
    assert main([str(f), "a:=1", "--print"]) == 0
    assert "[echo-1] echo 1" in capsys.readouterr().out
    assert main([str(f)]) == 2
    assert "missing required argument(s): a" in capsys.readouterr().err
    assert main([str(f), "a=1"]) == 2  # not name:=value
    assert "name:=value" in capsys.readouterr().err
    assert main([]) == 2
    g = write(
        tmp_path / "run.launch.yaml",
        """\
        launch:
          - arg: {name: py}
          - executable: {cmd: $(var py) -c "import sys; print('hi from child'); sys.exit(5)", name: child}
        """,
    )
    assert main([str(g), f"py:={sys.executable}"]) == 5
    assert "[child-1] hi from child" in capsys.readouterr().out


# ---- running


def script(tmp_path: Path, name: str, body: str) -> Process:
    """A small Python child; FLAG is a file it creates once its signal handlers are installed."""
    path = write(tmp_path / f"{name}.py", body.replace("FLAG", repr(str(tmp_path / f"{name}.ready"))))
    return Process(name=name, argv=(sys.executable, str(path)), env=dict(os.environ), cwd=None, output="screen")


READY = "import os, signal, sys, time\n"
IGNORE_INT = READY + textwrap.dedent(
    """\
    signal.signal(signal.SIGINT, lambda *_: print("got SIGINT", flush=True))
    open(FLAG, "w").close()
    time.sleep(60)
    """
)
IGNORE_INT_TERM = READY + textwrap.dedent(
    """\
    signal.signal(signal.SIGINT, lambda *_: print("got SIGINT", flush=True))
    signal.signal(signal.SIGTERM, lambda *_: print("got SIGTERM", flush=True))
    open(FLAG, "w").close()
    time.sleep(60)
    """
)


def fail_after(path: Path, code: int) -> str:
    """Waits until `path` exists (the other child is ready), then exits with `code`."""
    return READY + f"while not os.path.exists({str(path)!r}): time.sleep(0.01)\nsys.exit({code})\n"


def plan_of(*processes: Process) -> LaunchPlan:
    return LaunchPlan(file=Path("test.launch.yaml"), args={}, processes=processes)


def test_sigterm_follows_sigint_after_the_timeout(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    stubborn = script(tmp_path, "stubborn", IGNORE_INT)
    failing = script(tmp_path, "failing", fail_after(tmp_path / "stubborn.ready", 3))
    t0 = time.monotonic()
    assert run(plan_of(stubborn, failing), sigterm_timeout_s=0.3, sigkill_timeout_s=0.3) == 3
    elapsed = time.monotonic() - t0
    out, err = capfd.readouterr()
    assert "[stubborn-1] got SIGINT" in out
    assert "sending signal 'SIGTERM'" in err and "'SIGKILL'" not in err
    assert "[stubborn-1]: process has died" in err and "exit code -15" in err
    assert 0.3 <= elapsed < 3.0


def test_sigkill_follows_sigterm_after_the_timeout(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    stubborn = script(tmp_path, "stubborn", IGNORE_INT_TERM)
    failing = script(tmp_path, "failing", fail_after(tmp_path / "stubborn.ready", 4))
    t0 = time.monotonic()
    assert run(plan_of(stubborn, failing), sigterm_timeout_s=0.3, sigkill_timeout_s=0.3) == 4
    elapsed = time.monotonic() - t0
    out, err = capfd.readouterr()
    assert "[stubborn-1] got SIGINT" in out and "[stubborn-1] got SIGTERM" in out
    assert "sending signal 'SIGKILL'" in err and "exit code -9" in err
    assert 0.6 <= elapsed < 3.5


def test_a_failing_process_stops_the_others_and_sets_the_exit_code(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    sleeper = script(tmp_path, "sleeper", READY + "open(FLAG, 'w').close()\ntime.sleep(60)\n")
    failing = script(tmp_path, "failing", fail_after(tmp_path / "sleeper.ready", 3))
    t0 = time.monotonic()
    assert run(plan_of(sleeper, failing), sigterm_timeout_s=5.0, sigkill_timeout_s=5.0) == 3
    assert time.monotonic() - t0 < 4.0  # SIGINT was enough: no escalation
    err = capfd.readouterr().err
    assert "[failing-2]: process has died" in err and "exit code 3" in err
    assert "[sleeper-1]: sending signal 'SIGINT'" in err and "SIGTERM" not in err


def test_exit_zero_leaves_the_others_running_and_output_is_prefixed(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    quick = script(tmp_path, "quick", READY + "print('hello')\nprint('oops', file=sys.stderr)\n")
    slow = script(tmp_path, "slow", READY + "time.sleep(0.3)\nprint('still here', flush=True)\n")
    assert run(plan_of(quick, slow)) == 0
    out, err = capfd.readouterr()
    assert "[quick-1] hello" in out and "[quick-1] oops" in err and "[slow-2] still here" in out
    assert "[quick-1]: process has finished cleanly" in err and "sending signal" not in err


def test_sigint_to_the_runner_shuts_everything_down(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    graceful = READY + textwrap.dedent(
        """\
        signal.signal(signal.SIGINT, lambda *_: (print("stopping", flush=True), sys.exit(0)))
        open(FLAG, "w").close()
        time.sleep(60)
        """
    )
    child = script(tmp_path, "graceful", graceful)
    flag = tmp_path / "graceful.ready"

    def interrupt() -> None:
        while not flag.exists():
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)
    threading.Thread(target=interrupt, daemon=True).start()
    assert run(plan_of(child), sigterm_timeout_s=2.0, sigkill_timeout_s=2.0) == 0
    out, err = capfd.readouterr()
    assert "[graceful-1] stopping" in out and "got SIGINT, shutting down" in err
    assert signal.getsignal(signal.SIGINT) is before  # the runner's handler is removed again


def test_executable_not_on_path_is_an_error_before_anything_starts(tmp_path: Path) -> None:
    missing = Process(name="x", argv=("lr-no-such-exe",), env=dict(os.environ), cwd=None, output="log")
    with pytest.raises(LaunchError, match="lr-no-such-exe"):
        run(plan_of(missing))


# ---- the project's launch files


def test_train_launch_file_defaults() -> None:
    plan = parse_launch(TRAIN, {})
    (p,) = plan.processes
    assert list(p.argv) == [
        "sim2real", "train", "--task", "reach", "--backend", "mujoco", "--randomization", "dynamics",
        "--randomizer", "uniform", "--agent", "tqc_her", "--seed", "0", "--steps", "auto",
        "--goal-workspace=", "--table-height-m", "0.0", "--start-joints=", "--out", "runs/reach-tqc_her-uniform-s0",
    ]  # fmt: skip
    assert p.env["MUJOCO_GL"] == "egl" and p.name == "train"


def test_train_launch_file_with_args_matches_the_train_command(capsys: pytest.CaptureFixture[str]) -> None:
    argv = list(parse_launch(TRAIN, {"task": "push", "seed": "2"}).processes[0].argv)
    assert argv[argv.index("--task") + 1] == "push" and argv[-1] == "runs/push-tqc_her-uniform-s2"
    from sim2real.cli import build_parser

    args = build_parser().parse_args(argv[1:])  # every flag and value is one `sim2real train` accepts
    assert (args.task, args.seed, args.steps, args.out) == ("push", 2, None, "runs/push-tqc_her-uniform-s2")
    assert (args.goal_workspace_base_m, args.table_height_m, args.start_joints) == ((), 0.0, "")  # the task's own
    argv = list(parse_launch(TRAIN, {"goal_workspace": "0.3,-0.25,0.25,0.5,0.25,0.5"}).processes[0].argv)
    assert build_parser().parse_args(argv[1:]).goal_workspace_base_m == (0.3, -0.25, 0.25, 0.5, 0.25, 0.5)
    assert main([str(TRAIN), "task:=push", "out:=runs/x", "--print"]) == 0
    assert "sim2real train --task push" in capsys.readouterr().out and argvs(TRAIN, out="runs/x")[0][-1] == "runs/x"


def test_launch_folder_is_not_a_python_package() -> None:
    assert (REPO / "launch").is_dir() and not (REPO / "launch" / "__init__.py").exists()
    files = [p.name for p in (REPO / "launch").iterdir() if p.is_file()]
    assert all(name.endswith((".launch.yaml", ".params.yaml")) for name in files), files  # launch files and params


def test_if_and_unless_conditions_skip_actions(tmp_path: Path) -> None:
    from sim2real.launch_runner import LaunchError, parse_launch

    f = tmp_path / "c.launch.yaml"
    f.write_text(
        "launch:\n"
        "  - arg: {name: sim, default: 'false'}\n"
        "  - executable: {cmd: echo arm, name: arm, if: $(var sim)}\n"
        "  - executable: {cmd: echo driver, name: driver, unless: $(var sim)}\n"
        "  - executable: {cmd: echo always, name: always}\n"
    )
    names = lambda args: [p.name for p in parse_launch(f, args).processes]  # noqa: E731
    assert names({}) == ["driver", "always"]
    assert names({"sim": "true"}) == ["arm", "always"]
    assert names({"sim": "1"}) == ["arm", "always"] and names({"sim": "False"}) == ["driver", "always"]
    with pytest.raises(LaunchError, match="attribute 'if': a condition must be true, false, 1 or 0"):
        parse_launch(f, {"sim": "maybe"})
