"""A run folder as the history's long rows: one per (run, task, backend, configuration, metric).

Each row carries what a later reader needs to tell a code change from anything else: the run
and its commit (with a dirty flag) and their dates, the package versions, a hash of the task as
it ran (a changed task starts a new series instead of reading as a regression), the machine's
fingerprint and the run's calibration (each framework's measured matmul speed). Only ok rows
give values; repeats are summarised by their median, the interval spanning theirs. A row that ran and did not
work (failed, timed out), in every repeat or in some beside ok ones, has one row of the pseudo-metric ``status``
with its status, error and counts and no value, which the series leave out: a row that stops working, or works one
run in three, is in the history, not just absent from it (or healthy in it).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import numbers
import os
import re
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.core.metric_table import BY_COLUMN, Metric
from bench.core.placement import beyond_cores, load_words, most_others, peak_load, peak_reads_low, run_load
from bench.core.recipe import recipe_of
from bench.core.record import device_knobs
from bench.core.results import NOT_OK, latest_records, lost_row, machine_speed, read_json_object, read_records
from bench.core.runfiles import RunFileError
from bench.core.runpaths import tune_of_rung
from bench.history.metrics import METRICS
from bench.report.tuning import standings

REPO = Path(__file__).resolve().parents[2]
# The columns of a history row, in order, with their pandas dtypes (the store checks files against them).
SCHEMA: dict[str, str] = {
    "run_id": "string",
    "run_date": "datetime64[us, UTC]",
    "commit": "string",
    "dirty": "bool",
    "commit_date": "datetime64[us, UTC]",
    "task": "string",
    "backend": "string",
    "config": "string",
    "knobs": "string",
    "metric": "string",
    "value": "float64",
    "lo": "float64",
    "hi": "float64",
    "repeats": "int64",
    "spec_hash": "string",
    "profile": "string",
    "framework_version": "string",
    "packages": "string",
    "machine_id": "string",
    "machine": "string",
    "calibration_gflops": "float64",
    # the most loaded of the row's repeats as its window ended (bench.core.placement.node_load): a step or a regression
    # at a run timed beyond its cores is said so; empty where the records kept none (before 2026-12-06)
    "load_avg_1m_end": "float64",
    "node_cores": "Int64",
    # "end": the rows' own load (above); "start": where they kept none, the run's environment.json's load at its start
    # and its cores (bench.core.placement.run_load, as bench compare reads it); empty in earlier files
    "load_at": "string",
    # the most of the row's repeats' share of their cores' time other processes used while they trained (the record's
    # ``others_cpu_pct``, bench.core.placement.OthersOnCores); empty where they kept none (before 2026-12-07)
    "others_cpu_pct": "float64",
    # a short hash of a dirty run's uncommitted changes (environment.json's git_diff): two runs of one commit with other
    # local patches are told apart; empty for a clean run and in files written before it (2026-12-07)
    "diff": "string",
    # a row that ran and did not work (metric STATUS, no value): "failed" or "timeout", and its error (the first
    # repeat's, up to ERROR_CHARS); empty on a row with figures and in files written before it (2026-12-07)
    "status": "string",
    "error": "string",
    # a STATUS row's repeats that ran, ok ones included (its ``repeats``: those that did not work): more than
    # ``repeats`` where some worked, whose figures are the row's other metrics; empty in files written before it
    "of_repeats": "Int64",
    # a tune's "best" rows: which configuration its verdict reads (bench.report.tuning.standing: "best", or "the
    # defaults (best not measured faster)" where the fresh processes did not show the race's winner faster); empty on
    # every other row and in files written before it (2026-12-08)
    "stands": "string",
}
# Columns added after the store's first files: a file written before has none, and reads them as empty (DuckDB
# reads the files by column name), so a new column needs no migration, no new store format and no file rewritten.
ADDED = (
    "load_avg_1m_end",
    "node_cores",
    "load_at",
    "diff",
    "status",
    "error",
    "of_repeats",
    "others_cpu_pct",
    "stands",
)
# The pseudo-metric of a row that ran and did not work, in all its repeats or in some (a flaky row: its figures from
# the ok ones beside it). Kept: failed and timeout (``NOT_OK``), the code's own outcome. Not kept: a skipped row (a
# framework not installed, a budget or a stop that left it out: not run, so not the code's verdict), and an
# interrupted or lost one (its run is not complete: `history import` passes it over until --resume runs it).
STATUS = "status"
ERROR_CHARS = 2000  # a worker's last output can be long; records.jsonl keeps it whole
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def short_hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:12]


def machine(env: dict[str, Any]) -> tuple[str, str]:
    """(fingerprint, words): CPU model, cores, memory, GPUs and driver from environment.json, any variable that
    capped a framework's kernels, and the cores the run was restricted to (bench.run.environment): a run on AVX2
    kernels of an AVX-512 CPU, or under ``taskset`` on 1 of 2 cores, is another machine to its series, whose step
    says so. Uncapped and unrestricted, the fingerprint is what it was before these were recorded."""
    parts = {k: env.get(k) for k in ("cpu", "cores", "memory_gib", "gpus", "gpu_driver")}
    gpus = ", ".join(env.get("gpus") or []) or "no GPU"
    words = f"{env.get('cpu') or '?'}, {env.get('cores') or '?'} cores, {env.get('memory_gib') or '?'} GiB, {gpus}"
    if capped := env.get("kernel_variables"):
        parts["kernel_variables"] = capped
        words += ", kernels capped by " + " ".join(f"{k}={v}" for k, v in sorted(capped.items()))
    if usable := env.get("usable_cores"):  # taskset / a cpuset: the frameworks' threads are sized by these
        parts["usable_cores"] = usable
        words += f", the run on {usable} of them"
    return short_hash(parts), words


def config_of(record: dict[str, Any]) -> tuple[str, str]:
    """(configuration label, knobs as JSON): a record's ``config`` when it names one (a tuned row), else default.

    The row's CPU threads are a knob too (a task's ``[runtime] threads``, a tune's thread count): the record keeps
    them beside its knobs, and a series whose threads changed would otherwise name no cause for its step."""
    knobs = dict(record["knobs"]) if isinstance(record.get("knobs"), dict) else {}
    # a CPU row's TF32 and cudnn_benchmark flags, kept until 2026-12-06, are not a configuration: its series goes on
    # across that commit
    knobs = device_knobs(knobs, str(record.get("device") or ""))
    if isinstance(record.get("threads"), int) and not isinstance(record["threads"], bool):
        knobs.setdefault("threads", record["threads"])
    config = record.get("config")
    label = config if isinstance(config, str) and config else "default"
    if record.get("workers") is not None:
        label += f" workers={record['workers']} {record.get('scaling_mode') or ''}".rstrip()
    return label, json.dumps(knobs, sort_keys=True, default=str)


def commit_date(commit: str) -> pd.Timestamp:
    """The commit's date from this checkout's git (NaT when git does not know it)."""
    if not commit or not re.fullmatch(r"[0-9a-f]{4,40}", commit):
        return pd.NaT
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "show", "-s", "--format=%cI", commit], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return pd.NaT
    return pd.Timestamp(out.stdout.strip()).tz_convert("UTC") if out.returncode == 0 and out.stdout.strip() else pd.NaT


def run_date(run_dir: Path, run_id: str, records: list[dict[str, Any]]) -> pd.Timestamp:
    """When the run started: its first record's ``started_at``, else the timestamp its id begins with, else
    when records.jsonl was last written (every point of a series needs a date to be ordered by)."""
    stamps = []
    for r in records:
        with contextlib.suppress(ValueError, TypeError):
            stamps.append(pd.Timestamp(r["started_at"]).tz_convert("UTC"))
    if stamps:
        return min(stamps)
    try:
        return pd.Timestamp(datetime.strptime(run_id[:15], "%Y%m%d-%H%M%S")).tz_localize("UTC")
    except ValueError:
        return pd.Timestamp(os.stat(Path(run_dir) / "records.jsonl").st_mtime, unit="s", tz="UTC")


def loaded_peak(record: dict[str, Any]) -> bool:
    """Whether ``record``'s matmul peak reads low (``peak_reads_low``: measured on a node loaded beyond its cores, kept
    since 2026-12-06, or while others used its cores, or below the row's own speed), and so a rate divided by it
    high."""
    if beyond_cores(number(record.get("peak_flops_load")), number(record.get("node_cores"))):
        return True
    return peak_reads_low(record) is not None


def calibration(records: list[dict[str, Any]]) -> dict[str, float]:
    """Per backend, the median fp32 matmul speed (GFLOP/s) the run measured (bench.core.results.machine_speed) on a
    node within its cores; a backend with none is left out, and so its rows out of the normalised view: a peak
    measured under load reads low (``loaded_peak``), and the view would read the run's img/s high by as much."""
    return {b: flops / 1e9 for b, flops in machine_speed([r for r in records if not loaded_peak(r)])[0].items()}


def uncalibrated(records: list[dict[str, Any]]) -> list[str]:
    """Why a backend that measured a peak has no calibration, one phrase each: its every peak was measured under load
    ("torch's matmul peak was measured at load 3.1 on 2 cores")."""
    kept = calibration(records)
    out = []
    for backend in machine_speed(records)[0]:
        if backend in kept:
            continue
        low = [r for r in records if r.get("backend") == backend and loaded_peak(r)]
        worst = peak_load(low)
        if worst["node_cores"] and beyond_cores(worst["load_avg_1m_end"], worst["node_cores"]):
            out.append(
                f"{backend}'s matmul peak was measured at {load_words(worst['load_avg_1m_end'], worst['node_cores'])}"
            )
        else:
            out.append(f"{backend}'s matmul peak reads low ({next(w for r in low if (w := peak_reads_low(r)))})")
    return out


def number(v: Any) -> float | None:
    """``v`` as a float where it is a number (a record's, or numpy's from the store's rows), else None."""
    if type(v) is float:  # most are: no ABC check (an import of the 19 reference runs asks ~15,000 times)
        return None if math.isnan(v) else v
    return float(v) if isinstance(v, numbers.Real) and not isinstance(v, bool | np.bool_) and pd.notna(v) else None


def metric_rows(group: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """(metric, value, lo, hi, repeats) of one (task, backend, configuration)'s ok records."""
    out = []
    for m in METRICS:
        values = [v for r in group if (v := number(r.get(m.column))) is not None]
        if not values:
            continue
        lows = [b for r in group if m.lo and (b := number(r.get(m.lo))) is not None]
        highs = [b for r in group if m.hi and (b := number(r.get(m.hi))) is not None]
        if m.interval_of:  # proportional to another figure: that figure's interval, scaled to this one
            lows, highs = _scaled_interval(group, m.column, BY_COLUMN[m.interval_of])
        if len(values) > 1:  # repeats: the interval spans every repeat's value too
            lows, highs = lows + values, highs + values
        lo, hi = (min(lows) if lows else None), (max(highs) if highs else None)
        out.append(
            # numpy's median, as pandas' is (its overhead was 0.1 ms a metric, 2,300 of them in the reference runs)
            {"metric": m.column, "value": float(np.median(values)), "lo": lo, "hi": hi, "repeats": len(values)}
        )
    return out


def _scaled_interval(group: list[dict[str, Any]], column: str, of: Metric) -> tuple[list[float], list[float]]:
    """Each record's interval of ``of`` (its lo/hi columns) as a share of its value, times the record's ``column``."""
    lows, highs = [], []
    for r in group:
        v, base, lo, hi = (number(r.get(c)) for c in (column, of.column, of.lo or "", of.hi or ""))
        if v is not None and base and lo is not None and hi is not None:
            lows.append(v * lo / base)
            highs.append(v * hi / base)
    return lows, highs


def ok_records(run_dir: Path) -> list[dict[str, Any]]:
    """The run's ok records, each row's latest: what its history rows' figures are made of."""
    return [r for r in latest_records(read_records(run_dir)) if r.get("status") == "ok"]


def not_a_run(run_dir: Path) -> str | None:
    """Why ``run_dir`` is not a run folder to add (it does not exist, is no folder, has no records.jsonl), or None."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        return f"{run_dir}: no such run folder"
    if not run_dir.is_dir():
        return f"{run_dir}: not a run directory or a history store (a store merges by its folder)"
    if not (run_dir / "records.jsonl").is_file():
        return f"{run_dir}: not a run directory (no records.jsonl)"
    if tune := tune_of_rung(run_dir):  # QA, 2026-12-07: added under the tune's id, the tune then "in the history"
        return (
            f"{run_dir}: a rung of the race of tune {tune.name} (its rows carry the tune's run id and are trials, "
            f"not results): import the tune's folder, {tune}"
        )
    return None


def kept_records(run_dir: Path) -> list[dict[str, Any]]:
    """The run's records the history keeps, each row's latest: ok ones and those that did not work (``NOT_OK``), but
    not one lost with its worker, node or job (recorded failed: no failure of the code's own)."""
    return [r for r in latest_records(read_records(run_dir)) if r.get("status") in ("ok", *NOT_OK) and not lost_row(r)]


def status_row(kept: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``STATUS`` row of a (task, backend, configuration) some or all of whose repeats (``kept``) did not work:
    the first such repeat's status and error, how many did not work (``repeats``) of how many ran (``of_repeats``);
    no value."""
    bad = [r for r in kept if r["status"] in NOT_OK]
    first = bad[0]
    error = str(first.get("error") or "")[:ERROR_CHARS]
    return dict(
        metric=STATUS,
        value=None,
        lo=None,
        hi=None,
        repeats=len(bad),
        of_repeats=len(kept),
        status=first["status"],
        error=error,
    )


def run_rows(run_dir: Path) -> pd.DataFrame:
    """The history rows of one run folder (RunFileError when it is not a readable run)."""
    run_dir = Path(run_dir)
    if why := not_a_run(run_dir):
        raise RunFileError(why)
    env = read_json_object(run_dir / "environment.json", {}) or {}
    records = kept_records(run_dir)
    run_id = str(
        env.get("run_id") or next((r["run_id"] for r in records if isinstance(r.get("run_id"), str)), run_dir.name)
    )
    if not SAFE_ID.fullmatch(run_id):
        raise RunFileError(f"{run_dir}: run id {run_id!r} is not a plain name (letters, digits, . _ -)")
    commit = str(env.get("git_commit") or "")
    machine_id, machine_words = machine(env)
    speeds = calibration([r for r in records if r["status"] == "ok"])
    base = {
        "run_id": run_id,
        "run_date": run_date(run_dir, run_id, records),
        "commit": commit.removesuffix("-dirty"),
        "dirty": commit.endswith("-dirty"),
        "diff": env.get("git_diff") if commit.endswith("-dirty") and isinstance(env.get("git_diff"), str) else None,
        "commit_date": commit_date(commit.removesuffix("-dirty")),
        "packages": json.dumps(env.get("packages") or {}, sort_keys=True),
        "machine_id": machine_id,
        "machine": machine_words,
    }
    stands = standings(records, run_dir)
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in records:
        # a tuning run's rows (TASK.default, TASK.best) belong to TASK's series, told apart by their config
        groups.setdefault((r.get("base_task") or r["task"], r["backend"], config_of(r)[0]), []).append(r)
    rows = []
    for (task, backend, config), kept in groups.items():
        # the figures of the repeats that worked (as before: a failed repeat beside them moves none), and the status
        # of those that did not, whether every repeat or some (a row that fails one run in three is no healthy row)
        group = [r for r in kept if r["status"] == "ok"] or kept
        first = group[0]
        figures = metric_rows(group) if first["status"] == "ok" else []
        for m in figures + ([status_row(kept)] if any(r["status"] in NOT_OK for r in kept) else []):
            rows.append(
                {
                    **base,
                    "task": task,
                    "backend": backend,
                    "config": config,
                    "knobs": config_of(first)[1],
                    "spec_hash": short_hash(recipe_of(first, m["metric"] if m["metric"] != STATUS else None)),
                    "profile": str(first.get("profile") or ""),
                    "framework_version": str(first.get("framework_version") or ""),
                    "calibration_gflops": speeds.get(backend),
                    **run_load(group, env),
                    "others_cpu_pct": most_others(group),
                    "stands": stands.get((task, backend)) if config == "best" else None,
                    **m,
                }
            )
    return typed(pd.DataFrame(rows, columns=list(SCHEMA)))


def typed(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with the store's column types (dates in UTC, numbers as floats)."""
    df = df.copy()
    for col, dtype in SCHEMA.items():
        if dtype.startswith("datetime"):
            df[col] = pd.to_datetime(df[col], utc=True).astype(dtype)
        elif dtype == "float64":
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
        else:
            df[col] = df[col].astype(dtype)
    return df
