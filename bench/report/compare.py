"""Compare two runs: per-metric deltas and ratios, regressions beyond thresholds, env differences.

Rows are matched on (task, backend, model, profile); repeats are reduced to the
median of the ok rows first, so a comparison of two ``--repeats 3`` runs compares
medians, not single noisy epochs. A key without an ok row on one side is one
``status`` row: a regression when B has no ok row (failed, missing) and A had one, not when only
the baseline A lacked one (fixed, or new in B); "still failing" when neither has one (not a regression B
brought, but the command still exits 1). A key whose rows were lost with their worker, node or job (``lost``:
bench.core.results.lost_row) failed by no fault of the code compared: lost in B, it is "not run (lost)", as an
interrupted row is, and the command exits 1 (``--resume`` runs it again); lost or interrupted in A, it is no
baseline, and B's row of it is judged as a row new in B. The tasks only one run has are named under the table
(``one_sided_lines``); runs with no row of one (task, backend, model, profile) in common are not compared
(``nothing_in_common``). A key
whose every row of B a budget left out (skipped for want of time: ``bench all --budget``, a tune's) is "not run in
B (budget)": no regression, and alone no exit 1. A key new in B (none in A, or every row of A lost or interrupted)
that B skipped for another reason (a framework not installed) is "not run in B (skipped)", the same way: B never ran
it and had nothing of it to lose; one A ran ok and B skipped is still a regression.
A key with ok repeats on both sides and repeats of B that failed or timed out beside them is a ``repeats`` row
("1 of 3 repeats failed"): a regression where A's repeats all worked, "still failing" where A had failed ones too;
its figures are compared on the ok repeats as before. A phase that failed on B's ok rows (``phase_errors``) and
not on A's is a ``phases`` row and a regression; its other metrics are compared as usual. Where the two
runs ran a key differently (``recipe``: its epochs, batch size, data ...), a ``recipe`` row says how, and the
figures that move with it are shown but not judged (``bench all`` sizes epochs to the machine: two of its runs
may differ in epochs alone, and then the step figures are still judged).

A change beyond its threshold is a regression only when it is also significant: the two
runs' 95% intervals do not overlap (the bootstrap interval of the headline throughput,
or for other columns the range over >= 2 repeats on each side), or, for another column with one value on a side
and >= 2 repeats on the other, that value lies outside the repeats' spread (``one_against_repeats``, p < 0.05),
or the test of the two
runs' throughput ratio rejects equality (p < 0.05; ``bench.measure.tuning.ratio_p``: a bootstrap over blocks
of consecutive steps with one process a side, Student's t over the processes with repeats). Otherwise the verdict is
"inconclusive". An MFU beyond its threshold whose throughput did not pass its own is "peak moved" (each row's
peak is measured: the calibration moved, not the row), and inconclusive where the throughput's change was. A
column with one value a side (no step samples) is judged by its threshold alone, as before. A time
figure whose seconds moved by no more than an absolute floor (``MIN_TIME_DELTA_S``, the VM's scheduler noise)
is not judged at all: "under the time floor".

Beside the per-backend table, ``reference_ratios`` shows each backend against a reference
backend (``--reference``; without it the one both plans name, else the registry's first that the runs have,
said in a line where the plans differ: ``compared_reference``) in A and in B. A ratio within
one run cancels what its backends share (the machine, its load), so a backend that gained or
lost ground on the reference shows even when the two runs ran on different footing.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.core.metric_table import ACCURACY, COMPARED, MEMORY, RATE, SHARE, TIME, Metric
from bench.core.placement import LOAD_COLUMNS, OTHERS_COLUMN, beyond_cores, load_words, others_words, run_load
from bench.core.recipe import moved, recipe_differences, records_recipe
from bench.core.record import RECIPE_FIELDS
from bench.core.results import (
    RECORDS,
    RunFileError,
    budget_left_out,
    failed_repeats,
    is_number,
    latest_records,
    lost_line,
    lost_row,
    no_record_words,
    not_a_folder,
    phase_failed,
    read_json_or_warn,
    read_records,
    resume_command,
    table,
)
from bench.core.runfiles import check_run_folder, read_bytes
from bench.measure.stats import RESAMPLES, samples
from bench.measure.student import t_sf
from bench.measure.timing import MIN_TIME_DELTA_S
from bench.measure.tuning import ratio_p
from bench.report.backends import ordered, planned_reference, ratio_name, reference_missing, reference_of

KEY = ["task", "backend", "model", "profile"]
# threshold_alone: a regression judged with no interval on a side (one repeat, no step samples), said as such
COLUMNS = [*KEY, "metric", "a", "b", "delta", "ratio", "p_value", "verdict", "regression", "threshold_alone"]
MISSING = "missing"


@dataclass(frozen=True)
class Thresholds:
    max_slowdown: float = 0.10  # time up / throughput down by more than this fraction
    max_acc_drop: float = 0.01  # absolute accuracy drop
    max_memory_growth: float = 0.25  # peak memory up by more than this fraction
    min_time_delta_s: float = MIN_TIME_DELTA_S  # a time figure whose seconds moved less is not judged


# The compared figures, in compare's row order, each with its words, better direction and kind
# (bench.core.metric_table: ``Metric.compared``); the words are summary.md's (``WORDS``)
METRICS = COMPARED
# The threshold each kind of figure is judged by: an accuracy's absolute drop, memory's growth, and for rates,
# times and MFU the slowdown
THRESHOLD = {ACCURACY: "accuracy", MEMORY: "memory"}
# The seconds a time figure was measured as (an epoch throughput is the images over the median epoch, inference the
# test images over eval_s: ``Metric.seconds``): where the two runs' seconds differ by no more than
# ``Thresholds.min_time_delta_s``, the figure is not judged (TIME_FLOOR). The headline and MFU are judged by their
# intervals over an auto-ranged window.
SECONDS = {m.column: m.seconds for m in METRICS if m.seconds}
TIME_FLOOR = "under the time floor"
# A regression with no interval on a side: one repeat has none for its training time, epochs, first step,
# inference and accuracy, so noise beyond a threshold reads as a regression (QA, 2026-12-06: two runs of one small
# task a minute apart on the loaded 2-core VM, 5 such "regressions", exit 1); the table and the last line say so
THRESHOLD_ALONE = "threshold alone"
# B failed where A failed too: not a regression B brought, but a guard must not pass on a failed row (exit 1)
STILL_FAILING = "still failing"
# A row B never ran (or was running) because B stopped before it (Ctrl-C, a full disk, a kill): its state.json says
# so. Not a regression (nothing was measured), but a guard must not pass on rows that did not run (exit 1); the rows
# that landed are compared as usual. Until 2026-12-06 each was "missing", a REGRESSION, with no word of the state.
NOT_RUN = "not run"
# A's row, of a task or backend B's plan never named: B was not asked to run it, so its absence is not B's regression
# (QA, 2026-12-06: a student's run of two of the reference run's four tasks read four REGRESSIONs, exit 1). A row
# that B planned and has no record of (interrupted, lost) is still one.
NOT_PLANNED = "not run in B"
# A key whose rows were lost with their worker, node or job (a Ray worker or node died, SLURM lost the job, a worker
# server was killed: bench.core.results.lost_row), the rest, if any, interrupted: --resume runs them again. Lost in
# B, nothing was measured: "not run (lost)", not a regression, and a guard does not pass on it (exit 1), as on an
# interrupted B. Lost in A, there is no baseline: "no baseline", B's row judged as a row new in B is. Until
# 2026-12-06 a lost row was a failed one: a REGRESSION in B, "still failing" against a failed B.
LOST = "lost"
NOT_RUN_LOST = "not run (lost)"
NO_BASELINE = "no baseline (lost in A)"
# A key every row of which A recorded "interrupted" (Ctrl-C while it ran) measured nothing either: no baseline, B's row
# judged as a row new in B (a failure a regression). Until 2026-12-07 B's failure read "still failing, as in A".
NO_BASELINE_INTERRUPTED = "no baseline (interrupted in A)"
# A key all of whose rows in B a budget left out (``bench all --budget``, a tune's: bench.core.results.budget_left_out):
# B ran out of time before it, which says nothing of the code. Not a regression, and alone it does not fail the
# command; a failed or timed-out row beside it still does. Until 2026-12-07 such a key was a REGRESSION (exit 1).
NOT_RUN_BUDGET = "not run in B (budget)"
# A key new in B (A has no row of it, or lost every row: no baseline) all of whose rows B skipped for another reason
# (its framework not installed, a capability it lacks): B never ran it, and there was nothing of it to lose. Not a
# regression, and alone no exit 1; the line under the table gives B's reason. A key A ran ok and B skipped is still
# a regression (B lost what A could run), and a new key that failed in B is one too. Until 2026-12-07 such a key was
# a REGRESSION (exit 1) whatever the reason.
NOT_RUN_SKIPPED = "not run in B (skipped)"
# Two runs of `bench all` may differ in what its budget sizes (epochs, images per epoch: bench.core.record.MOVES_WITH);
# the figures that move with that size are not judged then, the step figures are, and a phase's settings leave its
# own figures unjudged (bench.core.recipe.MOVES). Any other recipe change (batch size, optimiser, data, loss,
# momentum, normalisation, augmentation: every training setting of the spec) leaves no figure to judge. The seed is
# not compared: repeats differ in it by design, and a run's medians over them are what is compared.
COMPARED_RECIPE = tuple(f for f in RECIPE_FIELDS if f != "seed")
RECIPE_DIFFERS = "recipe differs"
# A key whose rows ran another configuration of their backend's knobs in B (a tune's "best" is whichever configuration
# won its race: Keras (torch)'s bf16 in one tune, its fp32 defaults in the next): every figure is another
# configuration's, shown and not judged, as bench history starts a new baseline there. Until 2026-12-07 compare
# judged them: "test accuracy REGRESSION", and an MFU of 9.14% -> 38.05% (another precision's peak), no word why.
CONFIG_DIFFERS = "configuration differs"
CONFIG_FIELDS = ("knob_config", "threads")  # the row's knobs in words, and its CPU threads (a knob too)
# MFU is the timed window's throughput over a peak each row measures (on a CPU, its framework's matmul): an MFU
# that fell beyond its threshold while that throughput did not pass its own fell by the peak, a calibration
# that read another speed, not a slower row (QA, 2026-12-05: 1.33x the throughput, "MFU 0.158 -> 0.110
# REGRESSION", the peaks 255 and 487 GFLOP/s on a loaded machine).
PEAK_MOVED = "peak moved"
# columns whose interval and test of equality come from the step throughputs (MFU is proportional to them)
STEP_BASED = ("steady_img_s", "mfu")
# Two runs on different machines (another CPU, core count, GPU, kernels, device): the speed figures (times, rates,
# MFU) differ by the machine, not the code, so they are shown and not judged; accuracy and memory still are. The
# backend/reference ratios under the table cancel the machine. QA, 2026-12-06: the Intel Xeon reference against a
# run on the AMD EPYC VM read every time figure of every row "REGRESSION (threshold alone)", exit 1, the machines
# named only in a warning under the table.
MACHINE_DIFFERS = "machine differs"
SPEED_KINDS = (TIME, RATE, SHARE)
MACHINE_FIELDS = ("cpu", "cores", "gpus")
P_VALUE = 0.05
ENV_FIELDS = (*MACHINE_FIELDS, "python")
# the CPU's vector instructions and the variables that cap a framework's kernels (bench.run.environment)
RECORDED_SINCE_2026_12 = ("cpu_flags", "kernel_variables")
# the metrics whose backend/reference ratio is shown for both runs
REFERENCE_METRICS = ("steady_img_s", "epoch_s_median", "first_step_s", "test_acc")
REFERENCE_COLUMNS = ["task", "model", "profile", "metric", "ratio", "a", "b", "b/a"]


def run_path(run: str | Path, results_dir: Path) -> Path:
    """A run's folder by directory path or by run id under ``results_dir``; links and FIFOs refused."""
    path = Path(run)
    if not os.path.lexists(path / "records.jsonl"):
        path = results_dir / str(run)
    if not os.path.lexists(path / "records.jsonl"):
        raise no_run(run, results_dir)
    check_run_folder(path, writing=False)  # links and FIFOs are refused, never followed or waited on
    return path


def no_run(run: str | Path, results_dir: Path) -> Exception:
    """Why ``run`` has no records.jsonl to compare, as the error to raise: a run killed before its first row ended
    (its plan.json and state.json say so: ``no_record_words``, with the line that finishes it), a file, or no run.
    Until 2026-12-07 the first two read "not a run directory"."""
    for folder in (Path(run), results_dir / str(run)):
        if folder.is_dir() and (words := no_record_words(folder)):
            return RunFileError(f"{run}: {words}; nothing to compare")
    if not (results_dir / str(run)).is_dir() and (what := not_a_folder(run)):
        return RunFileError(f"{run}: {what}")
    return FileNotFoundError(f"{run}: not a run directory (no records.jsonl there or under {results_dir})")


@dataclass(frozen=True)
class Unfinished:
    """A run whose state.json says it did not finish (interrupted, stopped, or still running / killed)."""

    state: str
    recorded: object  # the planned rows it has a kept record of, and how many it planned (state.json's)
    planned: object
    resume: str  # the line that finishes it

    def words(self, side: str) -> str:
        counts = f", {self.recorded} of {self.planned} planned rows recorded" if self.planned is not None else ""
        return f"{side} is {self.state}{counts}; finish it with: {self.resume}"


def unfinished(run: str | Path, results_dir: Path) -> Unfinished | None:
    """The run's state when its state.json says it did not finish; None when complete (or from before states)."""
    path = run_path(run, results_dir)
    state = read_json_or_warn(path / "state.json")
    if state.get("state") in (None, "complete"):
        return None
    return Unfinished(
        str(state["state"]), state.get("recorded"), state.get("planned"), resume_command(path, state.get("command"))
    )


def load_run(run: str | Path, results_dir: Path) -> tuple[pd.DataFrame, dict]:
    """A run by directory path or by run id under ``results_dir``."""
    path = run_path(run, results_dir)
    records = [{**r, "task": row_task(r)} for r in latest_records(read_records(path))]
    if not records and (words := no_record_words(path)):  # emptied, or killed before its first row: said as such
        raise RunFileError(f"{run}: {words}; nothing to compare")
    return with_step_samples(keyed(table(records)), records), read_json_or_warn(path / "environment.json")


def row_task(r: dict) -> str:
    """The task as compared: a data-parallel row is its own entry (``task@2w-strong``), never a repeat."""
    return r["task"] if r.get("workers") is None else f"{r['task']}@{r['workers']}w-{r.get('scaling_mode')}"


def with_step_samples(df: pd.DataFrame, records: list[dict]) -> pd.DataFrame:
    """The ok rows' per-step throughputs (records.jsonl only), a list per repeat, kept in ``df.attrs`` for the
    test of equality."""
    steps: dict[tuple, list[list[float]]] = {}
    for r in records:
        rates = r.get("step_img_s")
        if not isinstance(rates, list) or not rates or not all(is_number(v) and math.isfinite(v) for v in rates):
            continue
        if r.get("status") == "ok":
            key = tuple("-" if r.get(k) is None else str(r.get(k)) for k in KEY)
            segments = r.get("step_segments")
            steps.setdefault(key, []).extend(
                samples([float(v) for v in rates], segments if isinstance(segments, list) else None)
            )
    df.attrs["steps"] = steps
    return df


def keyed(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with its key columns as text, a missing part as "-" (so keys with gaps still match)."""
    df = df.copy()
    df[KEY] = df[KEY].astype(object).where(df[KEY].notna(), "-").astype(str)
    return df


def key_status(df: pd.DataFrame) -> dict[tuple[str, ...], str]:
    """Per key: "ok" when it has an ok row, else its rows' statuses joined (e.g. "failed"), a row lost with its
    worker, node or job as "lost" (its record's status is "failed")."""
    status = pd.Series(
        [LOST if x else s for x, s in zip(lost_mask(df), df.status.astype(str), strict=True)], index=df.index
    )
    return {
        tuple(key): "ok" if "ok" in set(sub) else "/".join(sorted(set(sub)))
        for key, sub in status.groupby([df[k] for k in KEY], dropna=False)
    }


def lost_key(status: str) -> bool:
    """A key status (``key_status``) of rows that --resume runs again, at least one lost with its worker, node or
    job and the rest interrupted: no row of the code's own failing."""
    parts = set(status.split("/"))
    return LOST in parts and parts <= {LOST, "interrupted"}


def unmeasured_key(status: str) -> bool:
    """A key status (``key_status``) of rows that measured nothing and --resume runs again, each lost with its
    worker, node or job or interrupted: as A's, no baseline. Until 2026-12-07 only a key with a lost row was (QA: a
    row of A interrupted by Ctrl-C, timed out in B, read "still failing, as in A", though A never failed)."""
    return set(status.split("/")) <= {LOST, "interrupted"}


def no_baseline_words(status: str) -> str:
    """The verdict of a key of A that measured nothing (``unmeasured_key``): lost there, or only interrupted."""
    return NO_BASELINE if LOST in status.split("/") else NO_BASELINE_INTERRUPTED


def lost_mask(df: pd.DataFrame) -> list[bool]:
    """Per row of ``df``: whether it was lost with its worker, node or job (``lost_row``; no column: none was)."""
    return [lost_row({"lost": v}) for v in df["lost"]] if "lost" in df else [False] * len(df)


def lost_rows(df: pd.DataFrame) -> int:
    """How many of a run's rows (the latest record of each) were lost with their worker, node or job."""
    return sum(lost_mask(df))


def lost_words(run: str | Path, results_dir: Path, df: pd.DataFrame) -> str:
    """The run's ``lost_line`` (its lost rows and the --resume of the command that ran it), "" when none was lost."""
    path = run_path(run, results_dir)
    return lost_line(df.to_dict("records"), path, read_json_or_warn(path / "state.json").get("command"))


def key_columns(key: tuple[str, ...]) -> dict[str, str]:
    """A result row's (task, backend, model, profile) columns."""
    return dict(zip(KEY, key, strict=True))


def key_phase_errors(df: pd.DataFrame) -> dict[tuple[str, ...], str]:
    """Per key whose ok rows a phase failed on: their ``phase_errors``, joined."""
    return {
        tuple(key): " | ".join(dict.fromkeys(sub.phase_errors.astype(str)))
        for key, sub in phase_failed(df).groupby(KEY, dropna=False)
    }


def _plain(v: object) -> str:
    """A recipe value as text, whichever dtype its column took (2 and 2.0 alike; None and NaN as "-")."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def key_recipes(df: pd.DataFrame) -> dict[tuple[str, ...], dict[str, object]]:
    """Per key with an ok row: its first ok row's recipe cells (``COMPARED_RECIPE`` and the spec's other settings,
    the ``recipe`` column: bench.core.recipe)."""
    ok = df[df.status == "ok"]
    cols = [c for c in (*COMPARED_RECIPE, "recipe") if c in ok]
    return {tuple(key): {c: sub.iloc[0][c] for c in cols} for key, sub in ok.groupby(KEY, dropna=False)}


def _shown(v: object) -> str:
    """A recorded spec value as text ("-" where the record has none: written before the field was recorded)."""
    if v is None:
        return "-"
    return v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))


def recipe_changes(ra: dict[str, object], rb: dict[str, object]) -> dict[str, tuple[str, str]]:
    """What two rows ran differently, each side as text: their recipe columns (2 and 2.0 alike), then the spec's
    other settings by their dotted keys ("train.momentum"), a setting at its default on both sides not at all."""
    own = {f: (_plain(ra[f]), _plain(rb[f])) for f in COMPARED_RECIPE if f in ra and f in rb}
    spec = {k: (_shown(a), _shown(b)) for k, (a, b) in recipe_differences(ra, rb).items()}
    return {f: v for f, v in own.items() if v[0] != v[1]} | spec


def key_configs(df: pd.DataFrame) -> dict[tuple[str, ...], tuple[str, str]]:
    """Per key with an ok row: its first ok row's knobs in words ("defaults" where it names none) and its threads
    ("-" where the run kept none)."""
    ok = df[df.status == "ok"]
    out = {}
    for key, sub in ok.groupby(KEY, dropna=False):
        first = sub.iloc[0]
        knobs = _plain(first["knob_config"]) if "knob_config" in sub else "-"
        out[tuple(key)] = ("defaults" if knobs == "-" else knobs, _plain(first["threads"]) if "threads" in sub else "-")
    return out


def reconfigured(a: tuple[str, str] | None, b: tuple[str, str] | None) -> bool:
    """Whether two rows' configurations differ: their knobs, or their threads where both runs kept them."""
    if a is None or b is None:
        return False
    return a[0] != b[0] or ("-" not in (a[1], b[1]) and a[1] != b[1])


def config_row(key: tuple[str, ...], a: tuple[str, str], b: tuple[str, str]) -> dict:
    """The row that says the two runs of a key ran other configurations: never a regression by itself."""
    sa, sb = (f"{knobs}; threads={threads}" for knobs, threads in (a, b))
    row = {**key_columns(key), "metric": "configuration", "a": sa, "b": sb}
    return {**row, "verdict": CONFIG_DIFFERS, "regression": False}


def recipe_row(key: tuple[str, ...], changed: dict[str, tuple[str, str]]) -> dict:
    """The row that says what the two runs of a key ran differently: never a regression by itself."""
    sides = [" ".join(f"{f}={v[i]}" for f, v in changed.items()) for i in (0, 1)]
    row = {**key_columns(key), "metric": "recipe", "a": sides[0], "b": sides[1]}
    return {**row, "verdict": RECIPE_DIFFERS, "regression": False}


def status_row(key: tuple[str, ...], sa: str, sb: str, planned_b: set[tuple[str, str]] | None = None) -> dict:
    """The one row of a key that lacks an ok row on a side: a regression when B lost the ok row A had (or never
    ran it), "still failing" when A had none either (not B's doing, but still a failure: the command exits 1).
    ``planned_b``: the (task, backend) pairs B's plan named, where known; a key missing from B outside them was not
    run in B, not judged. A key lost or interrupted in A (``unmeasured_key``) is no baseline: B's row is judged as a
    row new in B."""
    baseless = unmeasured_key(sa)
    a = f"{MISSING} (new in B)" if sa == MISSING else sa
    if sb == MISSING and not_planned(key, planned_b):
        return {**key_columns(key), "metric": "status", "a": a, "b": sb, "verdict": NOT_PLANNED, "regression": False}
    none = no_baseline_words(sa)
    if sb == MISSING and baseless:  # nothing measured on either side: no baseline, and no row of B to judge alone
        return {**key_columns(key), "metric": "status", "a": a, "b": sb, "verdict": none, "regression": False}
    still = sb != "ok" and sa not in ("ok", MISSING) and not baseless
    row = {**key_columns(key), "metric": "status", "a": a, "b": sb, "regression": sb != "ok" and not still}
    verdict = STILL_FAILING if still else none if baseless and sb == "ok" else None
    return {**row, "verdict": verdict} if verdict else row


def not_run_row(key: tuple[str, ...], sa: str, sb: str, state: str) -> dict:
    """A key B has no measured row of because B stopped before it ran or while it ran (``state``)."""
    b = f"{MISSING} ({state})" if sb == MISSING else f"{sb} ({state})"
    return {**key_columns(key), "metric": "status", "a": sa, "b": b, "verdict": NOT_RUN, "regression": False}


def lost_in_b_row(key: tuple[str, ...], sa: str, sb: str) -> dict:
    """A key whose rows B lost with their worker, node or job (``lost_key``): nothing was measured, --resume runs
    them again."""
    return {**key_columns(key), "metric": "status", "a": sa, "b": sb, "verdict": NOT_RUN_LOST, "regression": False}


def budget_keys(df: pd.DataFrame) -> set[tuple[str, ...]]:
    """The keys of ``df`` every row of which a budget left out (``budget_left_out``): not run, for want of time."""
    left: dict[tuple[str, ...], bool] = {}
    for rec in df.reindex(columns=[*KEY, "status", "error"]).to_dict("records"):
        key = tuple(str(rec[k]) for k in KEY)
        left[key] = left.get(key, True) and budget_left_out(rec)
    return {k for k, v in left.items() if v}


def not_run_in_b_row(key: tuple[str, ...], sa: str, sb: str, why: str) -> dict:
    """A key B skipped every row of (``why``: ``NOT_RUN_BUDGET``, ``NOT_RUN_SKIPPED``): nothing of it was run in B,
    and nothing of the code is judged; the reason B recorded is said under the table (``unmeasured_lines``)."""
    a = f"{MISSING} (new in B)" if sa == MISSING else sa
    return {**key_columns(key), "metric": "status", "a": a, "b": sb, "verdict": why, "regression": False}


def new_in_b(sa: str) -> bool:
    """A key status of A (``key_status``) that is no baseline: no row of it (new in B), or every row lost or
    interrupted (``unmeasured_key``)."""
    return sa == MISSING or unmeasured_key(sa)


def key_failed_repeats(df: pd.DataFrame) -> dict[tuple[str, ...], str]:
    """Per key with an ok row and repeats that failed or timed out by themselves beside it: ``failed_repeats``'
    words ("1 of 3 repeats failed"). Its figures are the ok repeats' medians, as before; the failures are said."""
    rows: dict[tuple[str, ...], list[dict]] = {}
    for rec in df.to_dict("records"):
        rows.setdefault(tuple(str(rec[k]) for k in KEY), []).append(rec)
    return {key: words for key, recs in rows.items() if (words := failed_repeats(recs))}


def repeats_row(key: tuple[str, ...], wa: str | None, wb: str | None) -> dict:
    """The row of a key with ok repeats on both sides and failed ones beside them on one or both (``wa``, ``wb``:
    ``key_failed_repeats``' words): failing in B alone, a regression (a row that fails one run in three is not a
    healthy one); in both, still failing (exit 1); in A alone, said, not judged."""
    row = {**key_columns(key), "metric": "repeats", "a": wa or "ok", "b": wb or "ok"}
    if wa and wb:
        return {**row, "verdict": STILL_FAILING, "regression": False}
    return {**row, "regression": bool(wb)}


def not_planned(key: tuple[str, ...], planned: set[tuple[str, str]] | None) -> bool:
    """The key's task (a data-parallel row's ``task@2w-...`` by its task) and backend are not among ``planned``."""
    return planned is not None and (key[0].split("@")[0], key[1]) not in planned


def run_planned(run: str | Path, results_dir: Path) -> set[tuple[str, str]] | None:
    """The (task, backend) pairs the run's plan.json named, or None where it has no readable plan (not known)."""
    plan = read_json_or_warn(run_path(run, results_dir) / "plan.json")
    tasks, options = plan.get("tasks"), plan.get("options")
    backends = options.get("backends") if isinstance(options, dict) else None
    if not isinstance(tasks, list) or not isinstance(backends, list):
        return None
    names = [t.get("name") for t in tasks if isinstance(t, dict)]
    return {(n, b) for n in names for b in backends if isinstance(n, str) and isinstance(b, str)}


def medians(df: pd.DataFrame) -> pd.DataFrame:
    """Per key, the median over its ok repeats of each compared figure and of the seconds it was measured as."""
    ok = df[df.status == "ok"]
    cols = list(dict.fromkeys([*(m.column for m in METRICS), *SECONDS.values()]))
    values = ok.reindex(columns=KEY + cols)
    values[cols] = values[cols].apply(pd.to_numeric, errors="coerce").astype("float64")  # also when empty
    return values.groupby(KEY, dropna=False)[cols].median()


def better(m: Metric) -> str:
    """Which way ``m`` is better: "higher" or "lower"."""
    return "higher" if m.higher_is_better else "lower"


def _regressed(a: float, b: float, better: str, kind: str, t: Thresholds) -> bool:
    """Beyond the threshold (a change exactly at it is not; 1e-9 absorbs float rounding of the ratio)."""
    if pd.isna(a) or pd.isna(b):
        return False
    if kind == "accuracy":
        return a - b > t.max_acc_drop + 1e-9
    limit = (1 + (t.max_slowdown if kind == "time" else t.max_memory_growth)) * (1 + 1e-9)
    if better == "lower":
        return a > 0 and b / a > limit
    return b > 0 and a / b > limit


def intervals(df: pd.DataFrame, col: str) -> pd.DataFrame:
    """Per key, (lo, hi) of ``col``: the union of the rows' bootstrap intervals for the step-based
    columns, else the range over the ok repeats when there are >= 2 (else no interval)."""
    ok = df[df.status == "ok"].copy()
    if col in STEP_BASED:
        scale = (
            1.0
            if col == "steady_img_s"
            else pd.to_numeric(ok[col], errors="coerce") / pd.to_numeric(ok["steady_img_s"], errors="coerce")
        )
        ok["lo"] = pd.to_numeric(ok["steady_img_s_ci_lo"], errors="coerce") * scale
        ok["hi"] = pd.to_numeric(ok["steady_img_s_ci_hi"], errors="coerce") * scale
        return ok.groupby(KEY, dropna=False).agg(lo=("lo", "min"), hi=("hi", "max"))
    ok["v"] = pd.to_numeric(ok[col], errors="coerce")
    g = ok.groupby(KEY, dropna=False)["v"].agg(lo="min", hi="max", n="count")
    return g[g.n >= 2][["lo", "hi"]]


def repeat_values(df: pd.DataFrame, col: str, key: tuple) -> list[float]:
    """``col`` of the key's ok repeats, those with a number."""
    ok = df[(df.status == "ok") & (df[KEY] == pd.Series(key, index=KEY)).all(axis=1)]
    values = pd.to_numeric(ok[col], errors="coerce") if col in ok else pd.Series(dtype="float64")
    return [float(v) for v in values if pd.notna(v)]


def one_against_repeats(repeats: list[float], one: float) -> float:
    """Two-sided p of one run's single value against the other's >= 2 repeats, the value taken as one more repeat:
    Student's t of (mean - value) / (sd * sqrt(1 + 1/n)) at n - 1 degrees of freedom (the pooled two-sample test
    with one value a side, whose variance only the repeats can tell; its 95% bound is the repeats' prediction
    interval). Repeats that agree to the digit leave any other value significant (p = 0)."""
    n, mean = len(repeats), float(np.mean(repeats))
    sd = float(np.std(repeats, ddof=1))
    if sd == 0:
        return 1.0 if one == mean else 0.0
    t = abs(mean - one) / (sd * math.sqrt(1 + 1 / n))
    return min(1.0, 2 * t_sf(t, n - 1))


def single_p(a: pd.DataFrame, b: pd.DataFrame, col: str, key: tuple) -> float | None:
    """``one_against_repeats`` where one side has one ok value of ``col`` and the other >= 2 (None otherwise): the
    spread over the repeats (their seeds) is what tells whether the single value lies outside it. Until 2026-12-07
    such a figure had no interval on one side and was judged by its threshold alone (QA: A's three Keras seeds at
    88.45 / 92.65 / 91.30% against B's one seed-0 row at 88.45%, A's own seed 0, read a REGRESSION, exit 1)."""
    xa, xb = repeat_values(a, col, key), repeat_values(b, col, key)
    if len(xa) == 1 and len(xb) >= 2:
        return one_against_repeats(xb, xa[0])
    if len(xb) == 1 and len(xa) >= 2:
        return one_against_repeats(xa, xb[0])
    return None


def verdict(beyond: bool, ia: tuple[float, float] | None, ib: tuple[float, float] | None, p: float | None) -> str:
    """'regression' (beyond the threshold and significant), 'inconclusive' (beyond, not significant) or ''."""
    if not beyond:
        return ""
    known = [x for x in (ia, ib) if x is not None and not any(pd.isna(v) for v in x)]
    if len(known) < 2 and p is None:
        return "regression"  # no interval on a side: the threshold alone decides
    two = ia is not None and ib is not None and len(known) == 2  # an interval (not NaN) on both sides
    separate = two and ia is not None and ib is not None and (ia[1] < ib[0] or ib[1] < ia[0])
    return "regression" if separate or (p is not None and p < P_VALUE) else "inconclusive"


def _interval(table_: pd.DataFrame, key: tuple) -> tuple[float, float] | None:
    return (table_.loc[key, "lo"], table_.loc[key, "hi"]) if key in table_.index else None


def metric_row(
    key: tuple, col: str, better: str, kind: str, va: float, vb: float, a: pd.DataFrame, b: pd.DataFrame, t: Thresholds
) -> dict:
    """One metric's comparison: values, delta, ratio, p-value of the test of equality and the verdict."""
    p = None
    if col in STEP_BASED:
        skey = tuple(str(k) for k in key)
        steps_a, steps_b = a.attrs.get("steps", {}).get(skey, []), b.attrs.get("steps", {}).get(skey, [])
        p = ratio_p(steps_a, steps_b) if steps_a and steps_b else None
    else:  # one value against the other run's repeats: tested against their spread
        p = single_p(a, b, col, key)
    with np.errstate(invalid="ignore", divide="ignore"):  # inf against inf (a hand edit): no ratio, NaN
        beyond = _regressed(va, vb, better, kind, t)
        delta, ratio = vb - va, vb / va if va else None
    ia, ib = _interval(intervals(a, col), key), _interval(intervals(b, col), key)
    v = verdict(beyond, ia, ib, p)
    alone = v == "regression" and p is None and not (_known(ia) and _known(ib))
    return {"delta": delta, "ratio": ratio, "p_value": p, "verdict": v, "regression": v == "regression"} | (
        {"threshold_alone": True} if alone else {}
    )


def _known(interval_: tuple[float, float] | None) -> bool:
    """An interval with both ends (not NaN)."""
    return interval_ is not None and not any(pd.isna(v) for v in interval_)


def compare(
    a: pd.DataFrame,
    b: pd.DataFrame,
    t: Thresholds,
    b_state: str | None = None,
    other_machine: bool = False,
    planned_b: set[tuple[str, str]] | None = None,
) -> pd.DataFrame:
    """One row per (key, metric): A, B, B-A, B/A and whether B regressed against A. ``b_state``: B's state where
    it did not finish (``unfinished``): a key it has no measured row of is "not run", not a regression.
    ``other_machine``: the runs ran on different machines (``machine_differences``), so the speed figures are
    shown, not judged. ``planned_b``: the (task, backend) pairs B's plan named (``run_planned``), where known."""
    ma, mb = medians(a), medians(b)
    speed = {m.column for m in METRICS if m.kind in SPEED_KINDS} if other_machine else set()
    status_a, status_b = key_status(a), key_status(b)
    phases_a, phases_b = key_phase_errors(a), key_phase_errors(b)
    recipes_a, recipes_b = key_recipes(a), key_recipes(b)
    configs_a, configs_b = key_configs(a), key_configs(b)
    left_out_b = budget_keys(b)
    flaky_a, flaky_b = key_failed_repeats(a), key_failed_repeats(b)
    rows = []
    for key in in_order(set(status_a) | set(status_b)):
        sa, sb = status_a.get(key, MISSING), status_b.get(key, MISSING)
        if lost_key(sb):  # not the code's failure: not run, as an interrupted row
            rows.append(lost_in_b_row(key, sa, sb))
            continue
        if key in left_out_b:  # B's budget ran out before it: not run, not judged
            rows.append(not_run_in_b_row(key, sa, sb, NOT_RUN_BUDGET))
            continue
        if sb == "skipped" and new_in_b(sa):  # every row skipped, and no baseline to have lost: not run, not judged
            rows.append(not_run_in_b_row(key, sa, sb, NOT_RUN_SKIPPED))
            continue
        if b_state and sb in (MISSING, "interrupted"):
            rows.append(not_run_row(key, sa, sb, b_state))
            continue
        if not sa == sb == "ok":
            rows.append(status_row(key, sa, sb, planned_b))
            continue
        if key in flaky_a or key in flaky_b:  # ok repeats on both sides, failed ones beside them on one or both
            rows.append(repeats_row(key, flaky_a.get(key), flaky_b.get(key)))
        if key in phases_a or key in phases_b:  # a phase that failed in B and not in A is a regression
            a_, b_ = phases_a.get(key, "ok"), phases_b.get(key, "ok")
            row = {**key_columns(key), "metric": "phases", "a": a_, "b": b_}
            rows.append({**row, "regression": key in phases_b and key not in phases_a})
        changed = recipe_changes(recipes_a.get(key, {}), recipes_b.get(key, {}))
        unjudged: set[str] = set()
        if changed:  # each changed field leaves the figures it moves unjudged (all of them, for most)
            rows.append(recipe_row(key, changed))
            unjudged = {c for f in changed for c in (moved(f) or [m.column for m in METRICS])}
        other_config = reconfigured(configs_a.get(key), configs_b.get(key))
        if other_config:
            rows.append(config_row(key, configs_a[key], configs_b[key]))
        said: dict[str, str] = {}  # each column's verdict so far (the headline's, for MFU's)
        for m in METRICS:
            col = m.column
            va, vb = ma.loc[key, col], mb.loc[key, col]
            if pd.isna(va) and pd.isna(vb):
                continue
            judged = metric_row(key, col, better(m), THRESHOLD.get(m.kind, "time"), va, vb, a, b, t)
            said[col] = judged["verdict"]
            if col == "mfu" and judged["verdict"] and "steady_img_s" in said:
                judged |= mfu_as_throughput(said["steady_img_s"])
            if judged["verdict"] and col in SECONDS and _under_floor(ma.loc[key], mb.loc[key], SECONDS[col], t):
                judged |= {"verdict": TIME_FLOOR, "regression": False}
            rows.append(
                {
                    **key_columns(key),
                    "metric": m.words,
                    "a": va,
                    "b": vb,
                    **judged,
                    **({"verdict": RECIPE_DIFFERS, "regression": False} if col in unjudged else {}),
                    **({"verdict": MACHINE_DIFFERS, "regression": False} if col in speed - unjudged else {}),
                    **({"verdict": CONFIG_DIFFERS, "regression": False} if other_config else {}),
                }
            )
    return pd.DataFrame(rows, columns=COLUMNS)


def _under_floor(a: pd.Series, b: pd.Series, seconds: str, t: Thresholds) -> bool:
    """The two runs' seconds behind a time figure, both known, differ by no more than the floor."""
    sa, sb = a[seconds], b[seconds]
    return bool(pd.notna(sa) and pd.notna(sb) and abs(sb - sa) <= t.min_time_delta_s * (1 + 1e-9))


def mfu_as_throughput(throughput: str) -> dict:
    """MFU's verdict where it passed its threshold, from the headline throughput's (``throughput``) in the same rows:
    MFU is that throughput over a peak each row measures, so it regressed only where the throughput did. A throughput
    that did not pass its threshold (rose, or fell by less) leaves the rest of MFU's fall to the peak: "peak moved";
    one that passed it without significance leaves MFU "inconclusive" too (QA, 2026-12-06: two runs of one row,
    the throughput 0.914x with p = 0.18 and MFU 0.505x from peaks of 256 and 463 GFLOP/s, read "MFU ... 0.184
    REGRESSION": its interval, each row's throughput interval over its own peak, did not overlap A's)."""
    if throughput == "regression":
        return {}
    return {"verdict": throughput or PEAK_MOVED, "regression": False}


def in_order(keys: set[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Keys sorted by task, then backend in registry order, then model and profile."""
    backends = ordered(k[1] for k in keys)
    return sorted(keys, key=lambda k: (k[0], backends.index(k[1]), *k[2:]))


def run_tasks(df: pd.DataFrame) -> dict[str, list[str]]:
    """Each task a run has rows of (any status), sorted, with its backends in registry order."""
    return {task: ordered(df.backend[df.task == task]) for task in sorted(set(df.task))}


def _tasks_text(tasks: dict[str, list[str]]) -> str:
    return ", ".join(f"{t} ({', '.join(b)})" for t, b in tasks.items()) or "no rows"


def same_run(run_a: str | Path, run_b: str | Path, results_dir: Path) -> str | None:
    """Why A and B are one run, or None: the same folder (by path or by run id), or a copy of it (the same
    records). Every figure then read 1.000 against itself and the command said "no regression" (QA,
    2026-12-06): a guard pointed at one run twice passed without comparing anything, so this is refused (exit 2)."""
    pa, pb = run_path(run_a, results_dir), run_path(run_b, results_dir)
    if pa.resolve() == pb.resolve():
        return f"A and B are the same run ({pa})"
    records = read_bytes(pa, pa / RECORDS)
    if records.strip() and records == read_bytes(pb, pb / RECORDS):
        return f"A and B hold the same records: {pb} is a copy of the run {pa}"
    return None


def nothing_in_common(a: pd.DataFrame, b: pd.DataFrame) -> str | None:
    """Why the runs cannot be compared at all, or None: no row of one key (``KEY``) in both. Every row of A was then
    "missing" from B, a REGRESSION each (QA: the sigmoid LeNet run compared with the ReLU one), where the user had
    named the wrong run."""
    if _keys(a) & _keys(b) or (a.empty and b.empty):  # two empty runs: the table says "nothing to compare" as before
        return None
    # the same task and backend, another model or profile (QA, 2026-12-07: a quick run against a full one read its
    # row "missing", a REGRESSION, exit 1): what differs, per pair
    runs_as = [{(k[0], k[1]): k[2:] for k in _keys(df)} for df in (a, b)]
    differ = [
        f"{task} / {backend}: {_differs(runs_as[0][task, backend], runs_as[1][task, backend])}"
        for task, backend in sorted(runs_as[0].keys() & runs_as[1].keys())
    ]
    if differ:
        return f"the runs share no row of one model and profile to compare ({'; '.join(differ)})"
    return (
        f"the runs share no task to compare (no (task, backend) row in both): A has {_tasks_text(run_tasks(a))}; "
        f"B has {_tasks_text(run_tasks(b))}"
    )


def _keys(df: pd.DataFrame) -> set[tuple[str, ...]]:
    """The run's row keys (``KEY``: task, backend, model, profile)."""
    return set(df[KEY].astype(str).itertuples(index=False, name=None)) if not df.empty else set()


def _differs(a: tuple[str, ...], b: tuple[str, ...]) -> str:
    """'the quick profile in A, the full in B' (and the model, where that differs)."""
    said = [f"model {a[0]} in A, {b[0]} in B"] if a[0] != b[0] else []
    return "; ".join(said + ([f"the {a[1]} profile in A, the {b[1]} in B"] if a[1] != b[1] else []))


def one_sided_lines(
    a: pd.DataFrame, b: pd.DataFrame, b_state: str | None = None, planned_b: set[tuple[str, str]] | None = None
) -> list[str]:
    """The tasks only one run has, said in words under the table (its status rows alone, among many, had not);
    ``b_state``: B did not finish, so A's tasks it lacks were not run, not lost; those B's plan never named
    (``planned_b``) apart, as not run in B."""
    ta, tb = run_tasks(a), run_tasks(b)
    only_a, only_b = {t: v for t, v in ta.items() if t not in tb}, {t: v for t, v in tb.items() if t not in ta}
    unasked = {t: v for t, v in only_a.items() if all(not_planned((t, x), planned_b) for x in v)}
    status_a = key_status(a)
    # A measured nothing of these either (every row lost with its worker, node or job, or interrupted): no baseline,
    # none judged
    baseless = {
        t: v
        for t, v in only_a.items()
        if t not in unasked and not b_state and all(unmeasured_key(s) for k, s in status_a.items() if k[0] == t)
    }
    gone = {t: v for t, v in only_a.items() if t not in unasked and t not in baseless}
    said = f"not run in B (B is {b_state}: not judged)" if b_state else "missing from B (a regression each)"
    lines = [f"Only in A, {said}: {_tasks_text(gone)}"] if gone else []
    if baseless:
        parts = {p for k, s in status_a.items() if k[0] in baseless for p in s.split("/")}
        how = " or ".join(
            w for p, w in ((LOST, "lost with their worker, node or job"), ("interrupted", "interrupted")) if p in parts
        )
        said = f"{how} (no baseline), and without a row in B (not judged)"
        lines.append(f"Only in A, where its rows were {said}: {_tasks_text(baseless)}")
    if unasked:
        lines.append(f"Only in A, not run in B (B's plan did not name them; not judged): {_tasks_text(unasked)}")
    return lines + ([f"Only in B, new (not judged): {_tasks_text(only_b)}"] if only_b else [])


# How much of a row's error the lines under the table quote: its first line, cut here (a traceback's last line is
# what the record keeps, e.g. "worker killed by SIGKILL without a result; last output: ...")
ERROR_CHARS = 160


def unmeasured_lines(b: pd.DataFrame, result: pd.DataFrame) -> list[str]:
    """Why each key of B without an ok row has none, from its rows as B recorded them: their status (a row lost with
    its worker, node or job as "lost") and error, each once. Its status row said "failed" or "timeout" and no more
    (QA, 2026-12-06: a task A had, all of whose rows failed in B, read as a bare regression per backend)."""
    status = result[result.metric == "status"] if len(result) else result
    lines = []
    for _, r in status.iterrows():
        key = tuple(r[k] for k in KEY)
        rows = b[(b[KEY] == pd.Series(key, index=KEY)).all(axis=1)]
        if rows.empty or (rows.status == "ok").any():
            continue
        lines.append(f"- {key[0]} ({key[1]}): {_why(rows)}")
    return ["Keys of B without an ok row, and why (as B recorded its rows):", *lines] if lines else []


def failed_repeat_lines(b: pd.DataFrame, result: pd.DataFrame) -> list[str]:
    """Why the repeats of B that failed beside ok ones failed (the ``repeats`` rows' keys), as ``unmeasured_lines``
    says it of a key with no ok row."""
    said = result[(result.metric == "repeats") & (result.b != "ok")] if len(result) else result
    lines = []
    for _, r in said.iterrows():
        key = tuple(r[k] for k in KEY)
        rows = b[(b[KEY] == pd.Series(key, index=KEY)).all(axis=1) & (b.status != "ok")]
        lines.append(f"- {key[0]} ({key[1]}): {r.b}: {_why(rows)}")
    return (
        ["Keys of B with failed repeats beside ok ones (its figures are the ok ones'), and why:", *lines]
        if lines
        else []
    )


def _why(rows: pd.DataFrame) -> str:
    """Rows' statuses and errors, each once ("failed: OutOfMemoryError: ...; timeout: stopped after ...")."""
    why = dict.fromkeys(
        f"{LOST if lost else s}: {_first_line(e)}" if isinstance(e, str) and e.strip() else str(s)
        for s, e, lost in zip(rows.status, rows.error, lost_mask(rows), strict=True)
    )
    return "; ".join(why)


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0]
    return line if len(line) <= ERROR_CHARS else line[: ERROR_CHARS - 3] + "..."


def run_reference(run: str | Path, results_dir: Path) -> str | None:
    """The ``--reference`` the run was started with (its plan.json's), or None."""
    return planned_reference(read_json_or_warn(run_path(run, results_dir) / "plan.json"))


def compared_reference(names: Iterable[str], planned: tuple[str | None, str | None]) -> tuple[str, str]:
    """The backend both runs' ratios divide by, with no ``--reference``: the one both plans name (``planned``: A's
    and B's ``planned_reference``; compare had taken the default rule over both, so a ``--reference keras`` pair
    was shown against torch), else the default rule over both runs' backends. The one line that says which, where
    the plans differ ('' where they agree)."""
    a, b = planned
    if a == b:
        return reference_of(names, a), ""
    reference = reference_of(names)
    said = ", ".join(
        f"{side}'s plan {f'--reference {r}' if r else 'no --reference'}" for side, r in zip("AB", planned, strict=True)
    )
    return reference, f"note: {said}: ratios against {reference}, the default over both runs (choose with --reference)"


def reference_ratios(a: pd.DataFrame, b: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Per (task, model, profile) in both runs, other backend and metric: backend/reference of the medians in A
    and in B, and how that ratio moved (B/A). A side whose reference has no ok row says why instead of a number."""
    meds = [medians(a), medians(b)]
    labels = {m.column: m.words for m in METRICS}
    groups = sorted(set.intersection(*({(k[0], k[2], k[3]) for k in key_status(df)} for df in (a, b))))
    rows = []
    for task, model, profile in groups:
        at = [df[(df.task == task) & (df.model == model) & (df.profile == profile)] for df in (a, b)]
        whys = [reference_missing(rows_, reference) for rows_ in at]
        for backend in [x for x in ordered(pd.concat(at).backend) if x != reference]:
            key, ref = (task, backend, model, profile), (task, reference, model, profile)
            for col in REFERENCE_METRICS:
                cells = [why or _ratio_of(m, key, ref, col) for m, why in zip(meds, whys, strict=True)]
                if not any(isinstance(c, float) for c in cells):  # no ratio on either side (a run of keras alone)
                    continue
                before, after = cells
                moved = after / before if isinstance(before, float) and isinstance(after, float) and before else None
                ratio = ratio_name(backend, reference)
                rows.append(
                    dict(zip(REFERENCE_COLUMNS, (task, model, profile, labels[col], ratio, *cells, moved), strict=True))
                )
    return pd.DataFrame(rows, columns=REFERENCE_COLUMNS)


def _ratio_of(m: pd.DataFrame, key: tuple, ref: tuple, col: str) -> float | None:
    """``col`` of ``key`` over ``col`` of ``ref`` in a medians table; None when either is missing or 0."""
    if key not in m.index or ref not in m.index:
        return None
    v, base = m.loc[key, col], m.loc[ref, col]
    return float(v / base) if pd.notna(v) and pd.notna(base) and base else None


def environment_differences(env_a: dict, env_b: dict, a: pd.DataFrame, b: pd.DataFrame) -> list[str]:
    """Human-readable warnings: the two runs did not run on the same footing. A run with no environment.json
    (or an unreadable one) is said once, not as every field it lacks."""
    out = []
    if bool(env_a) != bool(env_b):
        which = "the first run (A)" if not env_a else "the second run (B)"
        out.append(f"environment unknown for {which}: no readable environment.json; machines and packages not compared")
        env_a = env_b = {}
    for field in ENV_FIELDS:
        if env_a.get(field) != env_b.get(field):
            out.append(f"{field} differs: {env_a.get(field)!r} vs {env_b.get(field)!r}")
    for field in RECORDED_SINCE_2026_12:  # compared where both runs recorded it
        if field in env_a and field in env_b and env_a[field] != env_b[field]:
            out.append(f"{field} differs: {env_a[field]!r} vs {env_b[field]!r}")
    pa, pb = env_a.get("packages", {}), env_b.get("packages", {})
    for pkg in sorted(set(pa) | set(pb)):
        if pa.get(pkg) != pb.get(pkg):
            out.append(f"{pkg} differs: {pa.get(pkg)} vs {pb.get(pkg)}")
    # the rows' own footing, over the keys ok in both runs: a row that failed before it chose a device records none,
    # and a backend in one run only has threads of its own (QA, 2026-12-06: "device differs: ['cpu (x86_64)'] vs []"
    # against a run whose one row failed); nor against records from before the field (QA, 2026-12-06: the 12-day-old
    # reference run against today's, "executor differs: [] vs ['local']")
    both = {k for k, v in key_status(a).items() if v == "ok"} & {k for k, v in key_status(b).items() if v == "ok"}
    for col in ("device", "threads", "executor"):
        if col not in a or col not in b:
            continue
        # as text the way the recipe is (a run with an interrupted row holds its threads as floats: "1" vs "1.0")
        va, vb = ({_plain(v) for v in _ok_rows(df, both)[col].dropna()} for df in (a, b))
        if va != vb and va and vb:  # a side whose ok rows recorded none (records before the field) is not compared
            why = EXECUTOR_WHY if col == "executor" and {"ray", "slurm"} & (va ^ vb) else ""
            out.append(f"{col} differs: {sorted(va)} vs {sorted(vb)}{why}")
    return out


def unrecorded_lines(a: pd.DataFrame, b: pd.DataFrame) -> list[str]:
    """A line where one run's ok rows were written before the spec's other settings were recorded (the ``recipe``
    column, 2026-12-06) and the other's were: those settings are unknown on that side, and the two are compared
    on their recipe columns alone (``bench.core.recipe.recipe_differences``)."""
    oks = [df[df.status == "ok"] for df in (a, b)]
    if any(ok.empty for ok in oks):  # no ok row: no figure of that run is compared, and its rows say nothing of when
        return []  # it was written (QA, 2026-12-06: a tune of today whose rows the budget skipped was "written before")
    has = ["recipe" in ok and any(records_recipe({"recipe": v}) for v in ok.recipe) for ok in oks]
    if has[0] == has[1]:
        return []
    which = "A" if not has[0] else "B"
    return [
        f"run {which} was written before a row recorded its spec's other settings (normalisation, loss, momentum, "
        "augmentation, ...): they are taken to be the other run's, and the runs are compared on the recipe columns "
        "alone (model, data, optimiser, lr, epochs, batch, seed)"
    ]


def machine_differences(env_a: dict, env_b: dict, a: pd.DataFrame, b: pd.DataFrame) -> list[str]:
    """What makes the two runs' machines differ (``MACHINE_FIELDS``, the kernels and cores a run was held to, the rows'
    device), as ``environment_differences`` words it; [] on one machine or where a run has no environment.json."""
    fields = ("cpu differs", "cores differs", "gpus differs", "cpu_flags differs", "kernel_variables differs")
    said = [w for w in environment_differences(env_a, env_b, a, b) if w.startswith((*fields, "device differs"))]
    # a run records usable_cores only where it was held to fewer cores than the machine has (bench.run.environment):
    # one without it ran on every core, as a run from before the field is taken to have (the history's fingerprint
    # reads it so). Until 2026-12-07 only two held runs were compared: a `taskset -c 0` run against an unheld one read
    # "None vs 1" as no difference, and every speed figure was judged (QA: 6 regressions, exit 1, torch 8.4x faster
    # on its one thread at load 4)
    if env_a.get("usable_cores") or env_b.get("usable_cores"):
        cores = [env.get("usable_cores") or env.get("cores") for env in (env_a, env_b)]
        if None not in cores and cores[0] != cores[1]:
            said.append(f"usable_cores differs: {cores[0]!r} vs {cores[1]!r}")
    return said


def load_lines(a: pd.DataFrame, b: pd.DataFrame, env_a: dict, env_b: dict) -> list[str]:
    """One line per run whose rows were timed on a machine loaded beyond its cores: two identical runs at load 7.7
    on 2 cores read 3.3x apart, a "significant regression" with no word of the load (QA, 2026-12-06). Each row's
    own figure (``load_avg_1m_end``, its node at the end of its window), the most loaded row named; a run whose
    rows recorded none (before 2026-12-06) falls back to its environment.json's load at the start."""
    out = []
    for name, df, env in (("A", a, env_a), ("B", b, env_b)):
        ok = df[df.status == "ok"] if "status" in df else df
        seen = run_load(ok.reindex(columns=list(LOAD_COLUMNS)).to_dict("records"), env)
        load, cores = seen["load_avg_1m_end"], seen["node_cores"]
        if beyond_cores(load, cores):
            own = seen["load_at"] == "end"
            out.append(
                f"{name}'s rows {'ran' if own else 'started'} at {load_words(load, cores)}: a slowdown may be the "
                "machine's" + ("" if own else " (its rows recorded no load of their own)")
            )
        elif words := others_words(ok.reindex(columns=[OTHERS_COLUMN]).to_dict("records")):
            out.append(f"{name}'s rows ran with {words}: a slowdown may be the machine's")
    return out


def _ok_rows(df: pd.DataFrame, keys: set[tuple[str, ...]]) -> pd.DataFrame:
    """``df``'s ok rows whose key is one of ``keys``."""
    ok = df[df.status == "ok"]
    return ok[np.array([k in keys for k in ok[KEY].itertuples(index=False, name=None)], dtype=bool)]


# A row started fresh on its node (Ray, SLURM) counts its framework's import in its peak RSS; a row forked from a
# warm worker server (local, devices) shares the server's (QA, 2026-12-05: 270-405 MB apart for one row).
EXECUTOR_WHY = ": a row run in a fresh process (ray, slurm) peaks 0.3-0.4 GB higher in host RSS than a forked one"


# Each compared figure's number format, by the words its rows carry: the side-by-side table's (``Metric.fmt``), so
# compare reads as that table does (QA, 2026-12-06: MFU 0.4683 where the table shows 46.83%, "1,389" beside "173.57")
FORMATS = {m.words: m.fmt for m in METRICS if m.fmt}


def _figure(v: object, fmt: str | None) -> object:
    """A figure in its registry format; text (a status, a recipe) and a missing one as they are."""
    if not isinstance(v, float) or pd.isna(v) or fmt is None:
        return v
    return format(v, fmt)


def _cell(v: object) -> object:
    """A ratio to 3 decimals, a missing one as "-", a reason as it is."""
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return "-"
    return f"{v:.3f}" if isinstance(v, float) else v


def _p_value(v: object) -> str:
    """p to 3 significant digits; 0 as "< 0.001": a one-process side's bootstrap p is twice the share of its 2,000
    resampled ratios across 1 (bench.measure.tuning.ratio_p), so none across reads 0 and means below its resolution
    (QA printed "p 0")."""
    if not isinstance(v, float) or pd.isna(v):
        return "-"
    return f"< {2 / RESAMPLES:g}" if v == 0 else f"{v:.3g}"


def _formatted(table_: pd.DataFrame, formats: dict[str, object]) -> pd.DataFrame:
    """A copy with each named column's cells mapped through its formatter (columns it lacks are skipped)."""
    shown = table_.copy()
    for col, fmt in formats.items():
        if col in shown:
            shown[col] = shown[col].map(fmt)
    return shown


def render_reference(ratios: pd.DataFrame) -> str:
    """The backend/reference table as Markdown; '' when no run has a backend besides the reference."""
    if ratios.empty:
        return ""
    return _formatted(ratios, {"a": _cell, "b": _cell, "b/a": _cell}).to_markdown(index=False, disable_numparse=True)


def unjudged(result: pd.DataFrame) -> str:
    """The last line's clause on the figures a recipe change left unjudged ("" when none): "no regression" alone
    read as a pass where fewer epochs had cost 11 points of accuracy (QA, 2026-12-06)."""
    if "verdict" not in result:
        return ""
    moved = result[(result["verdict"] == RECIPE_DIFFERS) & (result["metric"] != "recipe")]
    machine = result[result["verdict"] == MACHINE_DIFFERS]
    other = result[(result["verdict"] == CONFIG_DIFFERS) & (result["metric"] != "configuration")]
    said = f", {len(moved)} figure(s) not judged: the recipe differs ({', '.join(dict.fromkeys(moved.metric))})"
    keys = sorted({f"{t} / {b}" for t, b in zip(other.task, other.backend, strict=True)})
    configs = f", {len(other)} figure(s) not judged: another configuration ran in B ({', '.join(keys)})"
    return (
        (said if len(moved) else "")
        + (configs if len(other) else "")
        + (
            f", {len(machine)} speed figure(s) not judged: the machines differ (the backends' ratios within each run "
            "compare across machines)"
            if len(machine)
            else ""
        )
    )


def untested(result: pd.DataFrame) -> str:
    """The last line's clause on the regressions judged by their threshold alone ("" when none): noise beyond a
    threshold passes for a regression there, and only repeats give those figures an interval."""
    alone = int((result["regression"] & result["threshold_alone"].eq(True)).sum()) if len(result) else 0
    if not alone:
        return ""
    return (
        f"; {alone} of them by the {THRESHOLD_ALONE}: one repeat a side gives those figures no interval, so "
        "noise passes for them too (--repeats 3 in both runs tests them)"
    )


# the verdicts that are not a regression and are said in the table's last column
SAID = (
    "inconclusive",
    RECIPE_DIFFERS,
    CONFIG_DIFFERS,
    MACHINE_DIFFERS,
    PEAK_MOVED,
    TIME_FLOOR,
    STILL_FAILING,
    NOT_RUN,
    NOT_PLANNED,
    NOT_RUN_LOST,
    NO_BASELINE,
    NO_BASELINE_INTERRUPTED,
    NOT_RUN_BUDGET,
    NOT_RUN_SKIPPED,
)


def render(result: pd.DataFrame) -> str:
    if result.empty:
        return "(nothing to compare: no rows in either run)"
    shown = _formatted(result, {"ratio": _cell, "p_value": _p_value})
    formats = result["metric"].map(FORMATS)
    for col in ("a", "b", "delta"):  # each row's figures in its own format (a delta too: MFU's in points of %)
        shown[col] = [_figure(v, f if isinstance(f, str) else None) for v, f in zip(result[col], formats, strict=True)]
    verdicts = shown["verdict"] if "verdict" in shown else pd.Series("", index=shown.index)
    alone = shown["threshold_alone"].eq(True) if "threshold_alone" in shown else pd.Series(False, index=shown.index)
    shown["regression"] = [
        (f"REGRESSION ({THRESHOLD_ALONE})" if a else "REGRESSION") if r else (v if v in SAID else "")
        for r, v, a in zip(shown["regression"], verdicts.astype(object).where(verdicts.notna(), ""), alone, strict=True)
    ]
    shown = shown.drop(columns=["verdict", "threshold_alone"], errors="ignore")
    shown = shown.astype(object).where(shown.notna(), "-")  # fillna("-") on a float column warns in pandas
    return shown.to_markdown(index=False, disable_numparse=True)
