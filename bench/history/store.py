"""The history on disk: ``results/history/runs/<run-id>.parquet``, one immutable file per run, read with DuckDB.

Why Parquet files under DuckDB, not one DuckDB database file: a database file has one writer at a
time (a second process gets a lock error), and a crash mid-write can damage every run in it. One
file per run is written whole under a temporary name and then hard-linked to its final name,
which fails when the name exists: two runs finishing at once both land, the same run imported
twice adds nothing, and a reader never sees half a file. DuckDB reads every file as one table
(``points``) and gives the normalised view (``normalised``) in SQL. A file that cannot be read or
does not hold the history's columns stops every reader with an error naming it; nothing is
removed or rewritten.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from bench.core.runfiles import RunFileError, read_bytes
from bench.history.metrics import METRICS, PLAIN, RATE, normalising
from bench.history.rows import ADDED, SAFE_ID, SCHEMA, STATUS, ok_records, run_rows, typed, uncalibrated

if TYPE_CHECKING:
    import duckdb

RUNS = "runs"
ALREADY = "it is in the history already"
MARKER, FORMAT = "STORE.json", 1  # what the folder is and which layout its files have
# DuckDB's type of each pandas dtype of the store's columns but the dates (TIMESTAMPTZ)
SQL_TYPES = {"string": "VARCHAR", "bool": "BOOLEAN", "float64": "DOUBLE", "int64": "BIGINT", "Int64": "BIGINT"}


class HistoryError(RunFileError):
    """The store cannot be read or written as it is; it is left untouched."""


@dataclass(frozen=True)
class Added:
    run_id: str
    rows: int
    new: bool  # False: nothing was added ...
    why: str = ""  # ... and why: the run is in the store already, or no row of it ran
    # added: why a backend's rows are not in the normalised view (its matmul peak measured under load), "" when none
    uncalibrated: str = ""
    not_ok: int = 0  # of the rows added, those of a row that failed or timed out (its status and error, no figure)

    def not_ok_words(self) -> str:
        """' (1 of them a row that failed or timed out: its status and error)', or '' where none did."""
        return f" ({self.not_ok} of them a row that failed or timed out: its status and error)" if self.not_ok else ""


def check_store(store: Path, create: bool = False) -> Path:
    """The store's runs folder; HistoryError for a folder that is not a store of this format."""
    store = Path(store)
    marker = store / MARKER
    if not marker.exists():
        if not create:
            if (store / RUNS).exists():
                raise HistoryError(
                    f"{store}: a runs folder without {MARKER}: not a history store (partial?); left as it is"
                )
            raise HistoryError(f"{store}: no history store here (fill one with `python -m bench history import RUN`)")
        (store / RUNS).mkdir(parents=True, exist_ok=True)
        # whole or not at all, and the first creator wins: written under a name of its own, then linked to the
        # marker's (a second process creating the store at once reads a whole marker, never an empty one)
        tmp = store / f".{MARKER}.{secrets.token_hex(4)}"
        tmp.write_text(json.dumps({"format": FORMAT, "what": "bench history: one Parquet file per run in runs/"}))
        try:
            with contextlib.suppress(FileExistsError):
                os.link(tmp, marker)
        finally:
            tmp.unlink()
    try:
        fmt = json.loads(read_bytes(store, marker)).get("format")
    except (OSError, ValueError, AttributeError) as e:
        raise HistoryError(f"{marker}: unreadable ({e}); the store is left as it is") from None
    if fmt != FORMAT:
        raise HistoryError(f"{marker}: format {fmt!r}, this code reads format {FORMAT}; the store is left as it is")
    if not (store / RUNS).is_dir():
        raise HistoryError(f"{store}: {RUNS}/ is missing; the store is partial and left as it is")
    return store / RUNS


def add_rows(store: Path, rows: pd.DataFrame) -> Added:
    """Add one run's rows (``rows_of`` / ``run_rows``) unless that run is there already."""
    runs = check_store(store, create=True)
    files(store)  # a damaged store is said now, not grown on top of
    run_id = str(rows.run_id.iloc[0]) if len(rows) else ""
    if not SAFE_ID.fullmatch(run_id) or rows.run_id.nunique() != 1:
        raise HistoryError(f"rows of one run with a plain run id expected, got {sorted(set(rows.run_id))[:3]}")
    final = runs / f"{run_id}.parquet"
    if final.exists():
        return Added(run_id, 0, False, ALREADY)
    buf = io.BytesIO()
    typed(rows).to_parquet(buf, index=False)
    tmp = runs / f".{run_id}.{os.getpid()}.{secrets.token_hex(4)}.partial"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buf.getvalue())
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, final)  # atomic and exclusive: of two writers of one run, one lands, the other adds nothing
        except FileExistsError:
            return Added(run_id, 0, False, ALREADY)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    return Added(run_id, len(rows), True, not_ok=int((rows.metric == STATUS).sum()))


def add_run(store: Path, run_dir: Path) -> Added:
    """Add a run folder's rows; a run none of whose rows ran (each skipped) adds nothing (and is said so by rows ==
    0). A run whose every row failed is added: its rows' status and error are what a later run is held to."""
    rows = run_rows(run_dir)
    if rows.empty:
        return Added(Path(run_dir).name, 0, False, "no row of it ran (no ok, failed or timed-out row)")
    added = add_rows(store, rows)
    if added.new and (why := uncalibrated(ok_records(run_dir))):
        return dataclasses.replace(
            added,
            uncalibrated="; ".join(why) + ", beyond its cores: no calibration (its matmuls shared the cores and read "
            "low), so those rows are not in the normalised view",
        )
    return added


def merge(store: Path, other: Path) -> list[Added]:
    """Add every run of another store: its files' rows as they were stored, a run already here adding nothing (its
    annotations: ``bench.history.annotations.merge``). A maintainer's two stores (a CI machine's and a laptop's) made
    one. A run file from before a column was added (``ADDED``) is written with that column empty, as it reads."""
    if Path(other).resolve() == Path(store).resolve():
        raise HistoryError(f"{other}: the store itself; nothing to merge")
    return [add_rows(store, pd.read_parquet(path).reindex(columns=list(SCHEMA))) for path in files(other)]


def files(store: Path) -> list[Path]:
    """Every run file, each checked: readable Parquet with the history's columns (else HistoryError naming it)."""
    import pyarrow.parquet as pq

    found = sorted(
        p for p in check_store(store).iterdir() if p.name.endswith(".parquet") and not p.name.startswith(".")
    )
    for path in found:
        if path.is_symlink() or not path.is_file():
            raise HistoryError(f"{path}: not a regular file; the store is left as it is")
        try:
            names = set(pq.read_schema(path).names)
        except Exception as e:  # pyarrow raises its own kinds for a cut or foreign file
            raise HistoryError(
                f"{path}: not a readable history file ({type(e).__name__}: {e}); the store is left "
                "as it is: move the file away, then import its run again"
            ) from None
        missing = sorted(set(SCHEMA) - set(ADDED) - names)  # a file from before a column was added lacks it
        if missing:
            raise HistoryError(f"{path}: not a history file (no column(s) {', '.join(missing)}); left as it is")
    return found


def connect(store: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the views ``points`` (every row) and ``normalised`` (rates divided and times
    multiplied by the run's calibration, in GFLOP/s; NULL where the run measured none)."""
    import duckdb

    con = duckdb.connect()
    paths = files(store)
    if not paths:
        con.execute(f"CREATE VIEW points AS SELECT * FROM ({empty_select()}) WHERE false")
    else:
        listed = ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths)
        try:
            con.execute(f"CREATE VIEW stored AS SELECT * FROM read_parquet([{listed}], union_by_name = true)")
            have = {row[0] for row in con.execute("DESCRIBE stored").fetchall()}
            # a column no file has yet (all older than it) reads NULL, as a file without it does beside one with it
            absent = "".join(f", NULL::{SQL_TYPES[SCHEMA[c]]} AS {c}" for c in ADDED if c not in have)
            con.execute(f"CREATE VIEW points AS SELECT *{absent} FROM stored")
            con.execute("SELECT count(*) FROM points").fetchone()
        except duckdb.Error as e:
            raise HistoryError(f"{store}: a run file cannot be read ({e}); the store is left as it is") from None
    factor = " ".join(
        f"WHEN '{m.column}' THEN {'1.0 / calibration_gflops' if normalising(m) == RATE else 'calibration_gflops'}"
        for m in METRICS
        if normalising(m) != PLAIN
    )
    con.execute(f"""CREATE VIEW normalised AS SELECT * REPLACE (value * f AS value, lo * f AS lo, hi * f AS hi)
                    FROM (SELECT *, CASE metric {factor} ELSE 1.0 END AS f FROM points)""")
    return con


def empty_select() -> str:
    return "SELECT " + ", ".join(f"NULL::{SQL_TYPES.get(t, 'TIMESTAMPTZ')} AS {c}" for c, t in SCHEMA.items())


# The order ``load`` gives the rows: oldest run first, then within a run by task, backend, configuration and metric
# (by name), which is one row each (bench.history.rows.run_rows). Until 2026-12-07 it was (run_date, run_id) alone,
# and the rows within a run came in whatever order its file held them (its records.jsonl's, which workers finish in
# any order) or DuckDB read them: two stores of the same runs loaded as different frames. The other columns break
# any tie left (a store with a run's file copied in under another name), so the order is total.
ORDER = ("run_date", "run_id", "task", "backend", "config", "metric")


def load(store: Path, normalised: bool = False) -> pd.DataFrame:
    """Every row of the store (or the normalised view) in ``ORDER``, oldest run first."""
    con = connect(store)
    view = "normalised" if normalised else "points"
    df = con.sql(f"SELECT * EXCLUDE (f) FROM {view}" if normalised else f"SELECT * FROM {view}")
    order = ", ".join([*ORDER, *(c for c in SCHEMA if c not in ORDER)])
    return df.order(order).to_arrow_table().to_pandas()  # (.df() warns on pandas 3)
