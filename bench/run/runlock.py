"""One bench process works in a run folder at a time: ``run_lock`` holds its ``.lock`` exclusively (``flock``)
while a run or a resume works there, and ``run_in_progress`` asks whether one does (``bench report``).

A probe can ask only by taking the lock shared for an instant, and in that instant a resume's non-blocking
exclusive lock fails as it does against a running run: a report probing as a resume started made the resume say
"in use". So a resume that finds the lock taken tells the two apart (a shared lock can be had only while no run
holds the lock) and waits out a probe's instant, never a run.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from bench.core.runfiles import open_fd

LOCK = ".lock"
# A probe holds its shared lock between two system calls (microseconds); 2 s is far past that even on a loaded
# machine, so only a prober stuck inside one (none here) makes a resume say "in use" without a run.
PROBE_WAIT_S = 2.0
PROBE_POLL_S = 0.005


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Only one bench process works in a run directory at a time: RuntimeError where a run holds it."""
    fd = open_fd(run_dir, run_dir / LOCK, os.O_WRONLY | os.O_CREAT)  # never truncated, never a link
    try:
        _lock_exclusive(fd, run_dir)
        yield
    finally:
        os.close(fd)


def _lock_exclusive(fd: int, run_dir: Path) -> None:
    """The exclusive lock on ``fd``, once no probe holds it shared; RuntimeError at once where a run holds it."""
    deadline = time.monotonic() + PROBE_WAIT_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if _held_by_a_run(fd) or time.monotonic() >= deadline:
                raise RuntimeError(f"{run_dir} is in use by another bench process") from None
        time.sleep(PROBE_POLL_S)


def _held_by_a_run(fd: int) -> bool:
    """Whether a run holds the lock of ``fd``'s file: it holds it exclusively, so a shared lock cannot be had.
    The shared lock is let go at once: a probe's instant."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False


def run_in_progress(run_dir: Path) -> bool:
    """Whether another bench process is running ``run_dir`` now: it holds the lock ``run_lock`` takes."""
    try:
        fd = open_fd(run_dir, run_dir / LOCK, os.O_RDONLY)  # never created here: no lock file, no run ever held it
    except FileNotFoundError:
        return False
    try:
        return _held_by_a_run(fd)
    finally:
        os.close(fd)
