"""Rows that stopped working: a (task, backend, configuration) on one machine whose newest run failed or timed out,
in every repeat or in some (a flaky row: "1 of 3 repeats failed", its figures from the ok ones).

The store keeps such a row as one row of the pseudo-metric ``STATUS`` with its status and error and no value
(``bench.history.rows``), which the series leave out: there is no figure to judge. Until 2026-12-07 it kept ok rows
alone, and a row that failed simply stopped appearing: `bench history` exited 0, only `bench compare` caught it.

A row whose newest run failed where an earlier run on the same machine had it ok, every repeat (since the last
annotation naming it), is a regression; one that never had every repeat ok there is said, not flagged: as "never
worked" where no repeat of it ever worked, as "never had every repeat ok" where some did (flaky from its first run:
until 2026-12-07 the last line counted that one as never worked). It stays flagged while
it fails: a broken row is no new level to get used to, as a slower one becomes a step after ``check.LEVEL`` runs.
Fix it, or annotate the failing run. Not keyed by the task's hash: ``bench all`` sizes a task's epochs to the
machine, and a row that stops working is one whatever its epochs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from bench.core.results import repeats_words
from bench.history.annotations import Annotation
from bench.history.check import load_clause, what_changed
from bench.history.metrics import BY_NAME
from bench.history.rows import STATUS

KEY = ("task", "backend", "config", "machine_id")
WORDS = {"failed": "failed", "timeout": "timed out"}


@dataclass(frozen=True)
class Failure:
    key: dict[str, str]
    failed: pd.Series  # the newest run's STATUS row
    last_ok: pd.Series | None  # a row of the last run before it that had it ok (since the annotation), None: never
    ok_runs: int  # the runs before it that had it ok (since the annotation)
    note: str | None = None  # the annotation those runs are counted from ...
    reset_run: str | None = None  # ... at this run
    some_ok: bool = False  # some repeats of it worked in a run since the annotation (the newest included)

    @property
    def regression(self) -> bool:
        return self.last_ok is not None

    @property
    def never_worked(self) -> bool:
        """No repeat of it worked on this machine (since the annotation); one flaky from its first run did work."""
        return self.last_ok is None and not self.some_ok

    @property
    def name(self) -> str:
        k = self.key
        return f"{k['task']} / {k['backend']} / {k['config']} on {self.failed.machine}"


def failures(df: pd.DataFrame, notes: list[Annotation], metric: str | None = None) -> list[Failure]:
    """Each (task, backend, configuration, machine) of ``df`` whose newest run did not work, in key order.
    ``metric``: an earlier run had it ok only where it measured that metric (``bench history --metric``)."""
    if "status" not in df.columns or not (df.metric == STATUS).any():
        return []
    figures = df.metric == metric if metric else df.metric.isin(list(BY_NAME))
    d = df[(df.metric == STATUS) | figures].assign(figure=lambda x: x.metric != STATUS)
    # within a run, its STATUS row first: a run some of whose repeats failed has figures from the others beside it
    d = d.sort_values(["run_date", "run_id", "figure"], kind="stable")
    keyed = d.set_index(list(KEY)).index
    d = d[keyed.isin(keyed[(d.metric == STATUS).to_numpy()])]  # the keys with a STATUS row: few
    out = []
    for values, group in d.groupby(list(KEY), dropna=False, sort=True):
        key = dict(zip(KEY, map(str, values), strict=True))
        runs = group.drop_duplicates("run_id").reset_index(drop=True)  # a run: its STATUS row, else a figure's
        if runs.metric.iloc[-1] != STATUS:
            continue
        ids = list(runs.run_id)
        start, note = 0, None
        for a in notes:
            if a.applies(key["task"], key["backend"], STATUS) and a.run in ids and ids.index(a.run) >= start:
                start, note = ids.index(a.run), a.note
        since = runs.iloc[start:]
        ok = since.iloc[:-1][since.metric.iloc[:-1] != STATUS]
        last = ok.iloc[-1] if len(ok) else None
        flaky = any(some_worked(r) for _, r in since[since.metric == STATUS].iterrows())
        out.append(Failure(key, runs.iloc[-1], last, len(ok), note, ids[start] if note else None, flaky))
    return out


def first_line(error: object) -> str:
    """An error's first non-blank line: a worker's error may go on with its last output, a traceback's lines."""
    lines = [line.strip() for line in error.splitlines() if line.strip()] if isinstance(error, str) else []
    return lines[0] if lines else "(no error recorded)"


def changed_since(ok: pd.Series, failed: pd.Series) -> list[str]:
    """What differs between the last ok run and the failed one; the knobs only where the failed row has them (a row
    that failed before its backend configured itself recorded none)."""
    merged = failed.copy()
    merged["knobs"] = json.dumps(json.loads(ok.knobs or "{}") | json.loads(failed.knobs or "{}"), sort_keys=True)
    return what_changed(ok, merged)


def some_worked(row: pd.Series) -> bool:
    """Whether a STATUS row is of a row some of whose repeats worked (``of_repeats`` beyond ``repeats``)."""
    n, bad = row.get("of_repeats"), row.get("repeats")
    return bool(pd.notna(n) and pd.notna(bad) and n > bad)


def outcome(row: pd.Series) -> str:
    """A STATUS row's outcome in words: "failed", "timed out", or "1 of 3 repeats failed" where some worked."""
    how = WORDS.get(str(row.status), str(row.status))
    return repeats_words(int(row.repeats), int(row.of_repeats), how) if some_worked(row) else how


def describe(f: Failure) -> list[str]:
    """What ``bench history`` prints about one row that did not work in its newest run (in every repeat or some)."""
    p = f.failed
    how = outcome(p)
    when = load_clause(p) if p.status == "timeout" else ""  # a time limit passed on a loaded machine
    if f.last_ok is not None:
        lines = [
            f"  newest run {p.run_id}: REGRESSION: {how}{when}, where {f.ok_runs} run(s) before it on this machine had "
            f"it ok (the last: {f.last_ok.run_id}): {first_line(p.error)}",
            *(f"    {c}" for c in changed_since(f.last_ok, p)),
        ]
    else:
        never = "never ok on this machine" if f.never_worked else "no run on this machine had every repeat ok"
        lines = [f"  newest run {p.run_id}: {how}{when}, {never}: {first_line(p.error)}"]
    if f.note:
        lines.append(f"  baseline reset at run {f.reset_run}: {f.note}")
    return [f.name, *lines]


def unflagged_words(broken: list[Failure]) -> str:
    """The last line's clause on the rows not working that are no regression (none had every repeat ok before), by
    whether any repeat of them ever worked: ", 1 never worked, 1 never had every repeat ok" ('' where none)."""
    never = sum(f.never_worked for f in broken)
    partly = sum(not f.regression and not f.never_worked for f in broken)
    return (f", {never} never worked" if never else "") + (f", {partly} never had every repeat ok" if partly else "")


def before(f: Failure) -> str:
    """What the runs before the newest had of the row, in a word: ok in one (a regression), some repeats, or none."""
    if f.last_ok is not None:
        return f"REGRESSION: ok in {f.last_ok.run_id}"
    return "never ok" if f.never_worked else "never had every repeat ok"
