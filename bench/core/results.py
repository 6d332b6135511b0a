"""records.jsonl (append-only, one whole JSON line per finished run) and the pandas table.

Reading is defensive: a run directory may have been killed mid-write, filled up, or
edited by hand. What cannot be read is named (file and line) in a RunFileWarning and
skipped, never a traceback; what a command cannot go on without is a RunFileError.
"""

from __future__ import annotations

import json
import os
import stat
import statistics
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload

import numpy as np

from bench.core.record import (
    COLUMNS,
    COUNT_COLUMNS,
    FLAG_COLUMNS,
    HELD,
    KINDS,
    NESTED,
    TEXT_COLUMNS,
    new_record,
    renamed,
)
from bench.core.runfiles import RunFileError, kind_of, open_fd, open_file, read_bytes

if TYPE_CHECKING:  # pandas is imported where a table is built: a worker server imports this module for its JSON
    import pandas as pd  # encoder and never builds one (0.4 s warm, 2 s cold with pyarrow, in each server's start)

T = TypeVar("T")  # what read_json_object returns for a missing file

RECORDS = "records.jsonl"
# The fields every reader joins or groups on, with the types they must have.
REQUIRED: dict[str, type | tuple[type, ...]] = {"task": str, "backend": str, "repeat": int, "status": str}
# Nested fields the report walks into, with the container type it expects (Record's annotation).
NESTED_TYPES: dict[str, type] = {name: HELD[name] for name in NESTED}


class RunFileWarning(UserWarning):
    """A run file (or a line of it) could not be read and was skipped."""


class RecordWriteError(OSError):
    """A record could not be appended whole (disk full, file-size limit, I/O error); nothing was left of it."""


def warn(message: str) -> None:
    warnings.warn(RunFileWarning(message), stacklevel=2)


def json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is written (a short write is not an error by itself)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:
            raise OSError(f"write returned {n}")
        view = view[n:]


def append_record(run_dir: Path, record: dict[str, Any]) -> None:
    """Append one record as one whole line, then fsync; RecordWriteError (and the file as before) if it can't.

    With O_APPEND a whole write lands whole or not at all when the process is killed;
    a short write (file-size limit, disk full) is completed or, when the rest fails,
    cut off again, so records.jsonl stays a sequence of complete lines and a record is
    never reported as written when it is not.
    """
    line = (json.dumps(record, default=json_default) + "\n").encode("utf-8")
    path = Path(run_dir) / RECORDS
    fd = open_fd(Path(run_dir), path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        size = os.fstat(fd).st_size
        try:
            write_all(fd, line)
            os.fsync(fd)
        except OSError as e:
            try:
                os.ftruncate(fd, size)
            except OSError as cut:
                raise RecordWriteError(e.errno, f"{path}: record half written and not cut off ({cut}): {e}") from e
            raise RecordWriteError(e.errno, f"{path}: record not written ({e.strerror or e})") from e
    finally:
        os.close(fd)


def repair_records(run_dir: Path) -> int:
    """Cut a torn last line (a crash of the machine mid-write) so appends start on a fresh line.

    Returns how many bytes were cut.
    """
    path = Path(run_dir) / RECORDS
    try:
        data = read_bytes(Path(run_dir), path)
    except FileNotFoundError:
        return 0
    keep = data.rfind(b"\n") + 1
    if keep < len(data):
        line = data.count(b"\n") + 1
        warn(f"{path}:{line}: torn last line ({len(data) - keep} bytes, a write cut short) cut off")
        with open_file(Path(run_dir), path, "r+b") as f:
            f.truncate(keep)
    return len(data) - keep


RowKey = tuple[str, str, int] | tuple[str, str, int, int, str]


def record_key(record: dict[str, Any]) -> RowKey:
    """(task, backend, repeat), plus (workers, scaling_mode) for a data-parallel row (issue #15)."""
    key = record["task"], record["backend"], int(record["repeat"])
    if record.get("workers") is None:
        return key
    return (*key, int(record["workers"]), str(record.get("scaling_mode")))


# The statuses whose rows --resume keeps; an interrupted row, a missing one and a lost one (``lost_row``) run again.
KEPT_ON_RESUME = ("ok", "skipped", "failed", "timeout")

# How a skipped row's error begins where a wall-clock budget left it out: ``bench all --budget`` and a tune's fresh
# rows (bench.run.budget_cli, bench.run.tune_budget), a tune's race configurations (bench.run.tune). Not run for want
# of time, which says nothing of the code: ``bench compare`` reads such a row of B as "not run in B (budget)".
LEFT_OUT_BY_BUDGET = "left out to fit the budget"
TUNING_BUDGET_SPENT = "not run: the tuning budget"


def budget_left_out(rec: Mapping[str, Any]) -> bool:
    """Whether the row was skipped because a budget left it out (``LEFT_OUT_BY_BUDGET``, ``TUNING_BUDGET_SPENT``)."""
    error = rec.get("error")
    return (
        rec.get("status") == "skipped"
        and isinstance(error, str)
        and error.startswith((LEFT_OUT_BY_BUDGET, TUNING_BUDGET_SPENT))
    )


# A row's repeats that ran and did not work: the code's own outcome (a lost, interrupted or skipped one is not)
NOT_OK = ("failed", "timeout")


def failed_repeats(records: Iterable[Mapping[str, Any]]) -> str:
    """ "1 of 3 repeats failed" ("timed out"; "failed or timed out" where both) for one row's repeats (one task,
    backend and configuration) where some failed or timed out by themselves beside at least one ok; "" otherwise.
    The row's figures are its ok repeats' median: without these words a row that failed one run in three read as
    healthy everywhere but its own list of failed repeats (and in the history not at all)."""
    outcomes = [r.get("status") for r in records if not lost_row(r)]
    bad = [s for s in outcomes if s in NOT_OK]
    if not bad or "ok" not in outcomes:
        return ""
    how = " or ".join(w for s, w in (("failed", "failed"), ("timeout", "timed out")) if s in bad)
    return repeats_words(len(bad), len(bad) + outcomes.count("ok"), how)


def repeats_words(bad: int, ran: int, how: str) -> str:
    """ "1 of 3 repeats failed": the words every page, compare and the history give a flaky row."""
    return f"{bad} of {ran} repeats {how}"


def failed_repeats_of_task(records: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """``failed_repeats`` of each row of one task's records that has them, by the row's name: its backend, a
    data-parallel row's with its workers and mode ("torch (2 workers, strong)")."""
    rows: dict[str, list[Mapping[str, Any]]] = {}
    for r in records:
        workers = r.get("workers")
        name = str(r["backend"]) + (f" ({workers} workers, {r.get('scaling_mode')})" if workers is not None else "")
        rows.setdefault(name, []).append(r)
    return {name: words for name, mine in rows.items() if (words := failed_repeats(mine))}


def lost_row(rec: Mapping[str, Any]) -> bool:
    """Whether the row was lost with its worker, node or job (its record's ``lost``, set where the record is made:
    bench.run.executors.remote.no_result), the infrastructure's failure and not the row's own."""
    v = rec.get("lost")
    return isinstance(v, bool | np.bool_) and bool(v)


def kept_on_resume(rec: Mapping[str, Any]) -> bool:
    """Whether --resume leaves ``rec``'s row as recorded. A row lost with its worker, node or job is run again, as
    an interrupted one: until 2026-12-06 it was kept as failed, and after a node died mid-sweep `--resume` said "0
    of 2 to run". A record from before the ``lost`` field has none and is kept as it was then."""
    return rec.get("status") in KEPT_ON_RESUME and not lost_row(rec)


def latest_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per row key (``record_key``): the last written (a resume supersedes an interrupted or lost row)."""
    by_key = {record_key(r): r for r in records}
    return [r for r in records if by_key[record_key(r)] is r]


def check_record(rec: Any) -> str | None:
    """Why ``rec`` is not a usable record, or None."""
    if not isinstance(rec, dict):
        return f"not a JSON object but {type(rec).__name__}"
    for key, types in REQUIRED.items():
        if key not in rec:
            return f"record without {key!r}"
        if not isinstance(rec[key], types) or isinstance(rec[key], bool):
            return f"{key!r} is {type(rec[key]).__name__}, not {getattr(types, '__name__', types)}"
    workers = rec.get("workers")  # part of a data-parallel row's key (record_key)
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool)):
        return f"'workers' is {type(workers).__name__}, not int"
    for key, kind in NESTED_TYPES.items():
        if rec.get(key) is not None and not isinstance(rec[key], kind):
            return f"{key!r} is {type(rec[key]).__name__}, not {kind.__name__}"
    for i, h in enumerate(rec.get("history") or []):
        if not (isinstance(h, dict) and all(is_number(h.get(k)) for k in ("epoch", "train_loss"))):
            return f"history[{i}] is not an epoch entry with numeric 'epoch' and 'train_loss'"
    return None


def bad_values(rec: dict[str, Any]) -> list[str]:
    """The table columns of ``rec`` that hold no single value (a list, an object), a boolean where no flag
    belongs or text where a number belongs, and a ``notes`` that is no text."""
    bad = [
        c
        for c in COLUMNS
        if isinstance(rec.get(c), list | dict)
        or (isinstance(rec.get(c), bool) and c not in FLAG_COLUMNS)
        or (isinstance(rec.get(c), str) and c not in TEXT_COLUMNS)
    ]
    return bad + (["notes"] if rec.get("notes") is not None and not isinstance(rec["notes"], str) else [])


def checked_answer(answer: dict[str, Any], job_record: dict[str, Any]) -> dict[str, Any]:
    """A worker's record as it crosses back into the runner: the contract ``check_record`` and ``bad_values``
    hold for records.jsonl, checked where it is written, not first when a report reads it. A record of
    another row is a failed row of this one. A field no record has, or a column holding no single value of
    its kind, fails the row naming it; what else the worker measured is kept (nothing measured is lost)."""
    problem = check_record(answer)
    row = [job_record.get(k) for k in ("task", "backend", "repeat")]
    if problem is None and [answer[k] for k in ("task", "backend", "repeat")] != row:
        problem = f"a record of row {answer['task']}/{answer['backend']}/{answer['repeat']}, not of this one"
    if problem:
        return new_record(**{**job_record, "status": "failed", "error": f"the worker's record is unusable: {problem}"})
    unknown = sorted(set(answer) - set(KINDS))
    bad = bad_values(answer) + [c for c in COLUMNS if c in COUNT_COLUMNS and isinstance(answer.get(c), float)]
    if not unknown and not bad:
        return answer
    kept = {k: v for k, v in answer.items() if k not in unknown}
    kept.update(dict.fromkeys(bad))
    why = [f"unknown field(s) {', '.join(unknown)}"] if unknown else []
    why += [f"no single value of the column's kind in {', '.join(bad)}"] if bad else []
    error = f"the worker's record broke its contract: {'; '.join(why)}"
    return {**kept, "status": "failed", "error": "; ".join(e for e in (kept.get("error"), error) if e)}


def is_number(v: Any) -> bool:
    """A JSON number (a bool is not one, though Python counts it as an int)."""
    return isinstance(v, int | float) and not isinstance(v, bool)


def parse_records(data: bytes, name: str) -> list[dict[str, Any]]:
    """The usable records in ``data`` (the bytes of ``name``); every other line is warned about, naming name:line.

    A line that is not one JSON object is searched for whole ones: a record cut short without its
    newline has the next record glued to its end, and that one is intact."""
    records = []
    lines = data.split(b"\n")
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        torn = n == len(lines)  # no newline after it: the last write did not finish
        try:
            found = [json.loads(raw.decode("utf-8"))]
        except UnicodeDecodeError as e:
            warn(f"{name}:{n}: not UTF-8 ({e.reason} at byte {e.start}); line skipped")
            continue
        except (ValueError, RecursionError) as e:
            found, dropped = whole_objects(raw.decode("utf-8"))
            what = "torn last line (a write cut short)" if torn and not found else f"not JSON ({e})"
            if found:
                what = f"{len(found)} whole record(s) recovered, {dropped} byte(s) of a cut record dropped"
            warn(f"{name}:{n}: {what}" + ("" if found else "; line skipped"))
        for rec in found:
            problem = check_record(rec)
            if problem:
                warn(f"{name}:{n}: {problem}; line skipped" if len(found) == 1 else f"{name}:{n}: {problem}; skipped")
                continue
            rec = renamed(rec)
            for key in bad_values(rec):
                warn(f"{name}:{n}: {key!r} is {type(rec[key]).__name__}, not a value; ignored")
                rec[key] = None
            records.append(rec)
    return records


# Each "{" of a damaged line is a start to try, and a failed try scans on to where the JSON breaks: a
# line of nested openings would cost its length squared. A real cut record holds a few hundred "{" (its
# history, reports, transfer entries); past these budgets the rest of the line is dropped.
MAX_STARTS, MAX_SCANNED = 4096, 64 << 20


def whole_objects(text: str) -> tuple[list[Any], int]:
    """The JSON objects in ``text`` that look like records (``check_record`` passes), and how many
    characters lie outside them. Each ``{`` is tried as a start; a record found is skipped whole."""
    decoder = json.JSONDecoder()
    found, kept, at, tries, scanned = [], 0, text.find("{"), 0, 0
    while at != -1 and tries < MAX_STARTS and scanned < MAX_SCANNED:
        tries += 1
        try:
            obj, end = decoder.raw_decode(text, at)
        except json.JSONDecodeError as e:
            obj, end = None, at + 1
            scanned += e.pos - at
        except (ValueError, RecursionError):
            obj, end = None, at + 1
            scanned += 1 << 16  # depth-limited: charged as a long scan
        if obj is not None and check_record(obj) is None:
            found.append(obj)
            kept += end - at
        else:
            end = at + 1  # a nested object, or none: the next "{" may start a record
        at = text.find("{", end)
    return found, len(text) - kept


def read_records(run_dir: Path) -> list[dict[str, Any]]:
    """All usable records; unreadable lines are skipped with a RunFileWarning naming file:line."""
    path = Path(run_dir) / RECORDS
    try:
        data = read_bytes(Path(run_dir), path)
    except FileNotFoundError:
        return []
    except OSError as e:
        raise RunFileError(f"{path}: cannot read: {e}") from e
    return parse_records(data, str(path))


@overload
def read_json_object(path: Path) -> dict[str, Any] | None: ...
@overload
def read_json_object(path: Path, missing: T) -> dict[str, Any] | T: ...


def read_json_object(path: Path, missing: Any = None) -> dict[str, Any] | Any:
    """A JSON object file (environment.json, state.json, plan.json); RunFileError naming what is wrong."""
    try:
        text = read_bytes(Path(path).parent, Path(path)).decode("utf-8")
    except FileNotFoundError:
        return missing
    except OSError as e:
        raise RunFileError(f"{path}: cannot read: {e}") from e
    except UnicodeDecodeError as e:
        raise RunFileError(f"{path}: not UTF-8 ({e.reason} at byte {e.start})") from e
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise RunFileError(f"{path}:{e.lineno}: not valid JSON ({e.msg}, column {e.colno})") from e
    except RecursionError as e:
        raise RunFileError(f"{path}: nested too deeply to read") from e
    except ValueError as e:  # e.g. an integer past Python's 4,300-digit limit
        raise RunFileError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(data, dict):
        raise RunFileError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def read_json_or_warn(path: Path) -> dict[str, Any]:
    """``read_json_object``, but an unreadable file is a warning and reads as ``{}`` (for reports)."""
    try:
        return read_json_object(path, {}) or {}
    except RunFileError as e:
        warn(f"{e}; ignored")
        return {}


RUN_COMMANDS = ("all", "run", "tune", "zoo")  # the commands that run a folder's rows: each one's --resume finishes any


def resume_command(run_dir: Path, command: Any = "run") -> str:
    """The line that finishes ``run_dir``: ``command`` (the one that ran it: state.json's ``command``) with --resume.
    Every run command resumes any run with the run's own plan, so one that is not a run command reads `run`."""
    return f"python -m bench {command if command in RUN_COMMANDS else 'run'} --resume {run_dir}"


def not_a_folder(path: str | Path) -> str | None:
    """Why ``path`` is no run folder where it is there and is no folder ("is a file, not a run folder"; a FIFO, a
    link ...); None where it is a folder or is not there. `report FILE` said "no such folder" of a file that was
    there (QA, 2026-12-07)."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return None
    if stat.S_ISDIR(mode):
        return None
    return f"is {'a file' if stat.S_ISREG(mode) else kind_of(mode)}, not a run folder"


def no_record_words(run_dir: Path) -> str | None:
    """What a run folder without a usable record is, where its plan.json or state.json says it is a run (None where
    it has neither): an unfinished one (killed before its first row ended: ``--resume`` finishes it), with how far it
    came and the line that finishes it; a complete one, the records file that lost every row the run recorded. Until
    2026-12-07 `report` and `compare` called the first "not a run directory", and `report` wrote a header-only
    results.csv over the second's good reports."""
    state = read_json_or_warn(run_dir / "state.json")
    plan = os.path.lexists(run_dir / "plan.json")
    if not state and not plan:
        return None
    planned = state.get("planned")
    n = planned if isinstance(planned, int) and not isinstance(planned, bool) and planned > 0 else None
    path = run_dir / RECORDS
    if state.get("state") == "complete":
        rows = f"the {n} rows" if n else "the rows"
        if not os.path.lexists(path):
            return f"{path} is gone, and with it {rows} this complete run recorded"
        damaged = "the file was emptied, cut or edited"
        return f"{path} holds no readable record of {rows} this complete run recorded: {damaged}"
    counts = f"0 of {n} rows recorded" if n else "no row recorded"
    finish = (
        f"finish it with `{resume_command(run_dir, state.get('command'))}`"
        if plan
        else "it has no plan.json to resume by: start it again"
    )
    return f"incomplete ({state.get('state') or 'not started'}): {counts}; {finish}"


def lost_line(records: Iterable[Mapping[str, Any]], run_dir: Path, command: Any = "run") -> str:
    """How many of ``records`` (the latest of each row) were lost with their worker, node or job, and the line that
    runs them again (``resume_command``); "" when none was. Said where a run ends and atop its summary, as an
    interrupted run's --resume line is: a lost row is no failure of the row's own."""
    n = sum(lost_row(r) for r in records)
    if not n:
        return ""
    rows, its, them = ("1 row was", "its", "it") if n == 1 else (f"{n} rows were", "their", "them")
    again = f"`{resume_command(run_dir, command)}` runs {them} again"
    return f"{rows} lost with {its} worker, node or job, not by a failure of {its} own: {again}"


def run_wall_s(state_file: Path) -> float | None:
    """The wall time a run's state.json records over its sessions (``wall_s``), or None if it has none."""
    value = read_json_or_warn(state_file).get("wall_s")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def table(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per record, the scalar columns in their fixed order."""
    import pandas as pd

    df = pd.DataFrame(records, columns=list(COLUMNS))
    return df


def phase_failed(df: pd.DataFrame) -> pd.DataFrame:
    """The ok rows a phase raised on (``phase_errors``): their training and test figures stand, the failed
    phases' columns are empty, and the run still counts as failed (exit 1, every report lists them)."""
    if "phase_errors" not in df:
        return df.iloc[0:0]
    return df[(df.status == "ok") & df.phase_errors.map(lambda v: isinstance(v, str) and bool(v))]


def machine_speed(records: Iterable[Mapping[str, Any]]) -> tuple[dict[str, float], str]:
    """(per backend, the median FLOP/s of the fp32 matmuls its rows measured for their MFU peak; how they were
    measured; bench.measure.perf): the machine's own speed, what a run on another day is read against. A row in
    bf16 measured a bf16 matmul for its own peak (4x fp32 on the AMD VM with bf16 instructions: 844 against 204
    GFLOP/s), and a vendor table's peak is no measurement of this machine: neither is in it. A record older than
    the precision column was fp32."""
    speeds: dict[str, list[float]] = {}
    how = ""
    for r in records:
        source, peak, precision = r.get("peak_flops_source"), r.get("peak_flops"), r.get("precision")
        if not isinstance(source, str) or not source.startswith("measured"):
            continue
        if isinstance(precision, str) and precision != "fp32":  # None / NaN: no precision column, fp32
            continue
        if r.get("peak_flops_reused") is True:  # an earlier row's measurement, counted there (mfu.reusable_peak)
            continue
        if isinstance(peak, int | float) and not isinstance(peak, bool) and peak > 0 and peak == peak:
            speeds.setdefault(str(r.get("backend")), []).append(float(peak))
            how = how or source.removeprefix("measured: ")
    return {b: statistics.median(v) for b, v in speeds.items()}, how
