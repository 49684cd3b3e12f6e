"""Stopping a child process as a user would: Ctrl-C (SIGINT) first, so it closes its bag, holds the arm or writes its
checkpoint, and SIGKILL only when it has not exited after a timeout."""

from __future__ import annotations

import os
import signal
import subprocess
from typing import Any


def interrupt(proc: subprocess.Popen[Any], timeout_s: float, group: bool = False) -> int:
    """SIGINT to `proc` (to its whole process group with `group`: it was started with start_new_session), SIGKILL
    after `timeout_s`; its exit code. A process that has already exited is left alone."""
    if proc.poll() is None:

        def send(sig: int) -> None:
            if group:
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)

        send(signal.SIGINT)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            send(signal.SIGKILL)
            proc.wait()
    return int(proc.returncode)
