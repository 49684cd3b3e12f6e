"""An exclusive lock on a run folder, so two trainers never write one run: an flock on `<run>/.lock` holding the
holder's PID (the kernel drops it when the holder dies, kill -9 included, so a stale lock never blocks)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

LOCK_FILE = ".lock"


class RunLockedError(RuntimeError):
    """Another live process holds the run folder's lock; the message names its PID."""


class RunLock:
    """`with RunLock(run_dir):` holds the folder for this process; RunLockedError when another one does."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK_FILE
        self._fd: int | None = None
        self.created = False
        """True when acquire() made the lock file (so only then may a refused run remove it)."""

    def acquire(self) -> RunLock:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
            self.created = True
        except FileExistsError:
            fd = os.open(self.path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunLockedError(
                f"{self.path.parent} is in use by another sim2real train (PID {holder}); wait for it to finish or "
                "stop it (Ctrl-C saves a checkpoint), or choose another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Drop the lock (the file stays: removing it would race with a process that just opened it)."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.release()
