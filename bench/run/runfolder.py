"""A run's folder: a fresh one for each run, its JSON files (plan, state, environment) written whole,
and the disk errors that stop a run rather than fail its row.

Its own module because every stage of a run writes here (the plan, the resume, the task's data, the
execution) and none of them should have to import another to do so.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import signal
import time
from pathlib import Path
from typing import Any

from bench.core.results import json_default, write_all
from bench.core.runfiles import write_atomic

# Errors that mean the disk (or the quota, or the file-size limit) will not take more: the run
# stops, says so, and leaves the row for --resume instead of recording it as a failure of the row.
DISK_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS}


class RunStopped(RuntimeError):
    """The run could not go on (its files cannot be written); state.json says so, --resume continues it."""

    def __init__(self, message: str, run_dir: Path) -> None:
        super().__init__(message)
        self.run_dir = run_dir


def is_disk_error(e: BaseException) -> bool:
    return isinstance(e, OSError) and e.errno in DISK_ERRNOS


def check_writable(out: Path) -> None:
    """Create ``out`` and write, fsync and remove a probe file there; OSError (naming ``out``) when it can't."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # over a file-size limit: an EFBIG error, not a killed run
    probe = out / f".bench-probe-{os.getpid()}-{secrets.token_hex(4)}"  # not a name planted in advance
    if os.path.lexists(out) and not out.is_dir():  # "is not writable: File exists" said nothing of why (QA)
        what = "a link to nothing" if out.is_symlink() and not out.exists() else "a file"
        raise OSError(errno.ENOTDIR, f"--out {out} is {what}, not a folder: name a folder for the runs")
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)  # never through a link
        try:
            write_all(fd, b"probe\n" * 512)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        raise OSError(e.errno, f"--out {out} is not writable: {e.strerror or e}") from e
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()


def new_run_dir(out: Path) -> Path:
    """A fresh results/<run-id>/; ``mkdir(exist_ok=False)`` makes two runs never share one."""
    check_writable(out)
    while True:
        run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)
        try:
            (out / run_id).mkdir()
            return out / run_id
        except FileExistsError:
            continue


PLAN, STATE = "plan.json", "state.json"


def write_json(path: Path, data: Any) -> None:
    """A run's JSON file (plan, state, environment), whole or not at all, never through a link."""
    write_atomic(path.parent, path, json.dumps(data, indent=2, default=json_default).encode(), sync=True)
