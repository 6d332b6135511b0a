"""A child process's output, read off its pipe: copied to its log, progress shown, the last lines kept.

The runner's workers and the data-parallel ranks both print ``@@ `` lines for the user and everything
else for the log; one reader for both, so a full disk or a closed log is handled the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import IO

TAIL_LINES = 20  # what an error message quotes of a child's last output


def row_prefix(rec: dict) -> str:
    """What a row's progress lines start with on the terminal, wherever the row runs: ``  [task/backend]``, and
    ``#N`` for the Nth repeat after the first: repeats run side by side (devices, Ray, a SLURM array), and their
    lines were the same (QA, 2026-12-06: two rows' "epoch 5/19" lines interleaved, which was which unknown)."""
    repeat = rec.get("repeat") or 0
    return f"  [{rec['task']}/{rec['backend']}{f' #{repeat + 1}' if repeat else ''}]"


def pump(
    stream: Iterable[str], log: IO[str] | None, tail: list[str], echo: Callable[[str], None] | None, prefix: str
) -> None:
    """Copy ``stream`` to ``log`` line by line; show ``@@`` progress lines through ``echo`` (prefixed); keep the
    last other lines in ``tail``. A log that cannot be written (disk full) is said once in ``tail`` and dropped:
    the pipe keeps draining, since a child blocked on a full pipe would stall the run."""
    for line in stream:
        if log is not None:
            try:
                log.write(line)
                log.flush()
            except OSError as e:
                tail.append(f"(log not written: {e})")
                log = None
        if line.startswith("@@ "):
            if echo is not None:
                echo(f"{prefix} {line[3:].rstrip()}")
        elif line.strip():
            tail.append(line.rstrip())
            del tail[:-TAIL_LINES]
