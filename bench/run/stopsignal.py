"""SIGTERM taken by a run as Ctrl-C: the rows in flight recorded as interrupted, their processes, Ray tasks and
SLURM jobs cancelled, state.json "interrupted" and the ``--resume`` line said.

SIGTERM is how a run is stopped when no terminal is there: ``kill``, ``timeout``, a scheduler's time limit or
``scancel`` on the driver's own job. Python's default ended the driver at once: state.json kept saying "running",
nothing was said, and a SLURM array's jobs ran on with no driver to collect them (under Ray, Ray's handler
printed a C++ stack dump instead). Exit 143, as a shell reports SIGTERM.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any


class Terminated(KeyboardInterrupt):
    """A SIGTERM, raised where Ctrl-C's KeyboardInterrupt is, so it takes the same way out."""


def _raise(signum: int, frame: Any) -> None:
    raise Terminated


def take_sigterm() -> None:
    """SIGTERM raises Terminated in the main thread from now on (again after ``ray.init``, which sets its own)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise)


@contextlib.contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM taken as Ctrl-C inside the block; what was there before is put back after it."""
    if threading.current_thread() is not threading.main_thread():  # signal handlers belong to the main thread
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    take_sigterm()
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def how(e: BaseException) -> str:
    """What stopped the run, for a record's error and the closing line."""
    return "terminated (SIGTERM)" if isinstance(e, Terminated) else "interrupted by the user (Ctrl-C)"


def exit_code(e: BaseException) -> int:
    """143 for SIGTERM, 130 for Ctrl-C: as a shell reports each."""
    return 128 + signal.SIGTERM if isinstance(e, Terminated) else 130
