"""A row's progress lines through a file that the driver and the row's node both see (a SLURM array job's, in
submitit's folder): the job appends each line as the worker prints it, the driver reads what is new and shows it.

The writer opens, appends and closes the file for each line, the reader opens it afresh for each read: a
shared file system such as NFS promises a reader on another node what a writer has closed by the time the
reader opens the file (close-to-open), not what is still in an open file's cache. Lines are few (one per
epoch), so the writing costs nothing that counts; the reading is one open per running job per interval
(``--slurm-follow``, 1 s by default: a big cluster's file server may want it longer).
"""

from __future__ import annotations

from pathlib import Path


class ProgressFile:
    """The job's end, a ``run_row`` progress callback: each line appended to ``path``. It never raises: it runs in
    the thread that drains the worker's output, and a worker blocked on a full pipe would stall its row. A file
    that cannot be written is given up (the row goes on; its log still comes back with its outcome)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.broken = False

    def __call__(self, line: str) -> None:
        if self.broken:
            return
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line.rstrip("\n") + "\n")
        except OSError:
            self.broken = True


class Tail:
    """The driver's end: the whole lines added to ``path`` since the last read, each once. A line still being
    written waits for its end; a file not there yet (the job has not started) has none."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def new_lines(self) -> list[str]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:  # not there yet, or the shared file system is away for a moment: the next read catches up
            return []
        whole = data[: data.rfind(b"\n") + 1]
        self.offset += len(whole)
        return whole.decode("utf-8", errors="replace").splitlines()
