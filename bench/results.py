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
    """Append one record as a single line and fsync it, so it survives a crash of the parent."""
    line = json.dumps(record, default=json_default) + "\n"
    with open(run_dir / RECORDS, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


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
