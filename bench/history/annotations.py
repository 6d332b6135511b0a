"""Notes on the history that reset a series' baseline ("upgraded TF"): ``results/history/annotations.jsonl``.

An annotation names a run and, optionally, the task, backend and metric it is about. From that run
on, the newest-point test compares only with points at or after it, and a step found there is
printed with the note: an intended change is said once, not flagged on every later run.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.core.runfiles import read_bytes
from bench.history.store import HistoryError, check_store

FILE = "annotations.jsonl"


@dataclass(frozen=True)
class Annotation:
    run: str
    note: str
    task: str | None = None
    backend: str | None = None
    metric: str | None = None

    def applies(self, task: str, backend: str, metric: str) -> bool:
        return all(
            want in (None, have) for want, have in ((self.task, task), (self.backend, backend), (self.metric, metric))
        )


def read(store: Path) -> list[Annotation]:
    """Every annotation; HistoryError naming the line of one that is not an annotation."""
    try:
        data = read_bytes(Path(store), Path(store) / FILE)
    except FileNotFoundError:
        return []
    out = []
    for n, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            fields = json.loads(line)
            note = Annotation(**fields)
            if not (isinstance(note.run, str) and isinstance(note.note, str)):
                raise TypeError("run and note must be text")
        except (ValueError, TypeError) as e:
            raise HistoryError(f"{Path(store) / FILE}:{n}: not an annotation ({e})") from None
        out.append(note)
    return out


def append(store: Path, note: Annotation) -> None:
    """Add one annotation as one whole line (O_APPEND: two writers at once both land)."""
    check_store(store)
    line = (json.dumps({k: v for k, v in asdict(note).items() if v is not None}) + "\n").encode()
    fd = os.open(Path(store) / FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def merge(store: Path, other: Path) -> int:
    """Append another store's annotations this store lacks (``bench.history.store.merge`` adds its runs); how many."""
    have, added = set(read(store)), 0
    for note in read(other):
        if note not in have:
            append(store, note)
            have.add(note)
            added += 1
    return added
