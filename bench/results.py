"""records.jsonl (append-only, one whole JSON line per finished run) and the pandas table."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.record import COLUMNS

RECORDS = "records.jsonl"


def json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def append_record(run_dir: Path, record: dict[str, Any]) -> None:
    """Append one record as one ``write`` of one whole line, then fsync.

    With O_APPEND a single write lands whole or not at all when the process is
    killed, so records.jsonl is always a sequence of complete lines.
    """
    line = (json.dumps(record, default=json_default) + "\n").encode("utf-8")
    fd = os.open(run_dir / RECORDS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def repair_records(run_dir: Path) -> int:
    """Cut a torn last line (a crash of the machine mid-write) so appends start on a fresh line.

    Returns how many bytes were cut.
    """
    path = run_dir / RECORDS
    if not path.exists():
        return 0
    data = path.read_bytes()
    keep = data.rfind(b"\n") + 1
    if keep < len(data):
        with open(path, "r+b") as f:
            f.truncate(keep)
    return len(data) - keep


def record_key(record: dict[str, Any]) -> tuple[str, str, int]:
    return record["task"], record["backend"], int(record["repeat"])


def latest_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per (task, backend, repeat): the last written (a resume supersedes an interrupted row)."""
    by_key = {record_key(r): r for r in records}
    return [r for r in records if by_key[record_key(r)] is r]


def read_records(run_dir: Path) -> list[dict[str, Any]]:
    """All complete records; a torn last line (a crash mid-write) is ignored."""
    path = run_dir / RECORDS
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def table(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per record, the scalar columns in their fixed order."""
    df = pd.DataFrame(records, columns=list(COLUMNS))
    return df
