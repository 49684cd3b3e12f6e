"""interrupt(): Ctrl-C first, SIGKILL only for a process that ignores it; a finished process is left alone."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from sim2real.child_processes import interrupt


def child(setup: str, then: str = "time.sleep(60)", **kw: object) -> subprocess.Popen[str]:
    """A Python child that runs `setup`, says it is up, then runs `then`."""
    code = f"import signal, sys, time; {setup}; print('up', flush=True); {then}"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, **kw)  # type: ignore[call-overload]
    assert proc.stdout is not None and proc.stdout.readline().strip() == "up"
    return proc


def test_a_process_that_handles_ctrl_c_exits_with_its_own_code() -> None:
    proc = child("signal.signal(signal.SIGINT, lambda *a: sys.exit(7))")
    assert interrupt(proc, 10.0) == 7


def test_a_process_that_ignores_ctrl_c_is_killed_after_the_timeout() -> None:
    proc = child("signal.signal(signal.SIGINT, signal.SIG_IGN)")
    t = time.monotonic()
    assert interrupt(proc, 0.5) == -signal.SIGKILL
    assert 0.4 < time.monotonic() - t < 10


def test_the_whole_group_is_interrupted_and_a_finished_process_left_alone() -> None:
    proc = child("pass", start_new_session=True)
    assert interrupt(proc, 10.0, group=True) != 0  # KeyboardInterrupt ends it
    done = child("pass", then="pass")
    done.wait()
    assert interrupt(done, 1.0) == 0
