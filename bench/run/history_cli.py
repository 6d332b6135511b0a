"""``python -m bench history [import RUN... | annotate RUN --note TEXT]``: the store, its checks and its dashboard.

Without a sub-command it checks every series of the store (``bench.history.check``), prints each
step with what changed, each drift and each newest point that moved, and each row whose newest run failed or timed
out (``bench.history.failures``), and exits 1 when a newest point is a regression beyond the thresholds or a row
that worked before failed (for CI). ``import`` adds run folders and rewrites the
dashboard; ``annotate`` resets a baseline with a note.

The store, its checks and the dashboard are imported where a command uses them: every ``bench`` command builds
this sub-command's parser, and they bring pandas and pyarrow (0.4 s of a command's start).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bench.core.results import RunFileError, latest_records, lost_line, read_json_object, read_records, resume_command
from bench.history.metrics import BY_NAME
from bench.history.thresholds import Thresholds
from bench.run import environment
from bench.run.argtypes import accuracy_drop, fraction, positive, threshold
from bench.run.runlock import run_in_progress

if TYPE_CHECKING:
    import pandas as pd

    from bench.history import store

DEFAULT_STORE = environment.REPO / "results" / "history"


def add_history_parser(sub: argparse._SubParsersAction) -> None:
    """The ``history`` command and its two sub-commands."""
    p = sub.add_parser(
        "history",
        help="the history of every run: check it for steps and regressions, import runs, annotate",
        description="Check every series of the history store (results/history/) for steps, drift and a regressed "
        "newest point, and every row for a newest run that failed or timed out; exit 1 when a newest point is a "
        "regression beyond the thresholds or a row that worked before failed.",
    )
    p.add_argument("--store", type=Path, default=DEFAULT_STORE, help="the store folder (default: %(default)s)")
    p.add_argument("--task", help="only this task's series")
    p.add_argument("--backend", help="only this backend's series")
    p.add_argument("--metric", choices=sorted(BY_NAME), help="only this metric's series")
    p.add_argument(
        "--normalised",
        action="store_true",
        help="check the normalised view (every machine, figures scaled by each run's calibration)",
    )
    p.add_argument("--z", type=threshold, default=Thresholds.z, help="robust z a regression passes (%(default)s)")
    p.add_argument(
        "--min-change",
        type=fraction,
        default=Thresholds.min_change,
        metavar="FRAC",
        help="... and the relative change it passes, in the worse direction (%(default)s)",
    )
    p.add_argument(
        "--max-acc-drop",
        type=accuracy_drop,
        default=Thresholds.max_acc_drop,
        metavar="ABS",
        help="... or, for an accuracy, the drop it passes, in [0, 1]: 0.01 is one point, as bench compare's "
        "(%(default)s)",
    )
    p.add_argument(
        "--lookback",
        type=positive,
        default=Thresholds.lookback,
        metavar="N",
        help="points before the newest that form its baseline (%(default)s)",
    )
    p.add_argument("--verbose", action="store_true", help="also list the series with nothing to say")
    actions = p.add_subparsers(dest="history_action")
    p_import = actions.add_parser(
        "import", help="add run folders (or another store's runs: its folder) to the store and rewrite the dashboard"
    )
    p_import.add_argument("runs", nargs="+", type=Path, metavar="RUN")
    p_note = actions.add_parser("annotate", help="reset a baseline from a run on, with a note (e.g. 'upgraded TF')")
    p_note.add_argument("run", metavar="RUN_ID")
    p_note.add_argument("--note", required=True, type=note_text, help="why the baseline starts again at this run")
    for q in (p_import, p_note):
        q.add_argument("--store", type=Path, default=argparse.SUPPRESS, help="the store folder")
    for opt in ("--task", "--backend"):
        p_note.add_argument(opt, default=argparse.SUPPRESS, help=f"only the series of this {opt[2:]}")
    p_note.add_argument("--metric", choices=sorted(BY_NAME), default=argparse.SUPPRESS)


def note_text(value: str) -> str:
    """``--note`` as argparse's type: a blank one is refused (QA, 2026-12-07: it reset every series of the run, and
    the check then said "baseline reset at run R:" with nothing after it)."""
    if not value.strip():
        raise argparse.ArgumentTypeError("empty: say why the baseline starts again here (e.g. 'upgraded TF')")
    return value.strip()


def unfinished(run: Path) -> str | None:
    """Why a run folder is not added yet: its state.json says it is running, interrupted or stopped, or rows of it
    were lost with their worker, node or job (None when it is complete or from before runs kept a state). A run is
    added once, so an unfinished run's rows would stand for it for good, and the --resume that finishes it (or
    runs its lost rows again) would add nothing."""
    state = read_json_object(Path(run) / "state.json", {})
    if state.get("state") in (None, "complete"):
        lost = lost_line(latest_records(read_records(Path(run))), Path(run), state.get("command"))
        return f"{run}: not added yet: {lost}, and adds the run (a run is added once, whole)" if lost else None
    finish = resume_command(run, state.get("command"))
    return f"{run}: not added: the run is {state['state']} (a run is added once, whole); finish it first: {finish}"


def import_runs(store_dir: Path, runs: list[Path]) -> int:
    """Add each run, then rewrite the dashboard. A path that is no run folder is refused before anything is
    written, the store not created (a mistyped path had left an empty one, QA 2026-12-06); a run that cannot be
    read stops the import there, the runs before it added."""
    from bench.history import annotations as notes_file  # "annotations" is the __future__ feature
    from bench.history import dashboard, store
    from bench.history.rows import not_a_run

    # another store's folder (its STORE.json) is merged, not read as a run; a run another process is running may
    # have no records yet (QA, 2026-12-07: "not a run directory"): it is said to be running below
    running = {r for r in runs if r.is_dir() and run_in_progress(r)}
    if bad := next(
        filter(None, (not_a_run(r) for r in runs if not (r / store.MARKER).is_file() and r not in running)), None
    ):
        print(f"error: {bad}; nothing imported", file=sys.stderr)
        return 2
    try:
        store.check_store(store_dir, create=True)
        for run in runs:
            if (run / store.MARKER).is_file():  # another store: its runs and annotations merged into this one
                merged = store.merge(store_dir, run)
                notes_file.merge(store_dir, run)
                new = [a for a in merged if a.new]
                print(
                    f"{run}: {len(new)} run(s) added ({sum(a.rows for a in new):,} rows), "
                    f"{len(merged) - len(new)} in this store already"
                )
                continue
            if run in running:
                print(
                    f"{run}: not added: another bench process is running it (a run is added once, whole); "
                    "import it when it ends"
                )
                continue
            if why := unfinished(run):
                print(why)
                continue
            added = store.add_run(store_dir, run)
            if added.new and not (run / "environment.json").is_file():  # QA, 2026-12-07: added without a word
                print(
                    f"warning: {run}: no environment.json: its rows are kept under an unknown machine ('?') and no "
                    "commit, a series of their own (a run is added once: restore the file before importing it)",
                    file=sys.stderr,
                )
            if added.new:
                print(
                    f"{run}: {added.rows} rows added as run {added.run_id}{added.not_ok_words()}{_uncalibrated(added)}"
                )
            else:
                print(f"{run}: nothing added (run {added.run_id}: {added.why})")
        print(f"wrote {dashboard.build(store_dir)}")
    except RunFileError as e:  # HistoryError is one: a store refused, or a run that is not one
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def _uncalibrated(added: store.Added) -> str:
    """Why some of the rows added are not in the normalised view ("; torch's matmul peak was measured at ...")."""
    return f"; {added.uncalibrated}" if added.uncalibrated else ""


def after_run(run_dir: Path, echo=print) -> None:
    """Add a completed run to the history beside it (``<out>/history``) and rewrite the dashboard; a failure
    is said, never raised over the run's own outcome."""
    from bench.history import dashboard, store

    store_dir = Path(run_dir).parent / "history"
    failures = (RunFileError, OSError, ImportError, ValueError)  # ImportError: duckdb or plotly not installed
    try:
        if why := unfinished(run_dir):  # rows lost: the resume that runs them again adds the run, whole
            echo(f"history: {why}")
            return
        added = store.add_run(store_dir, run_dir)
    except failures as e:
        echo(f"warning: the run was not added to the history ({e}); `python -m bench history import {run_dir}`")
        return
    if not added.new:
        if added.why == store.ALREADY:  # imported while unfinished, before import passed such runs over
            echo(f"history: nothing added to {store_dir}: run {added.run_id} was there already, as it was then")
        return
    rows = f"history: {added.rows} metric rows of run {added.run_id} added to {store_dir}"
    rows += added.not_ok_words() + _uncalibrated(added)
    try:  # the run is in the store by now: a dashboard that fails to write must not say otherwise
        echo(f"{rows} (dashboard {dashboard.build(store_dir)})")
    except failures as e:
        echo(
            f"{rows}; warning: its dashboard was not rewritten ({e}); "
            f"`python -m bench history import {run_dir}` writes it again"
        )


def _unknown(df: pd.DataFrame, col: str, value: str, store_dir: Path, chosen: list[str]) -> str | None:
    """Why ``--COL VALUE`` selects nothing in a store that has rows (None when it selects some, or the store is
    empty): a typo checked no series and passed a CI gate. ``df`` is already narrowed by the ``chosen`` filters."""
    from bench.history.rows import STATUS

    known = sorted(v for v in df[col].dropna().unique() if not (col == "metric" and v == STATUS))
    if df.empty or value in known:
        return None
    among = f" with {' '.join(chosen)}" if chosen else ""
    return (
        f"--{col}: no series of {col} {value!r}{among} in the history at {store_dir} "
        f"(its {col}s: {', '.join(known) or 'none'})"
    )


def _narrow(
    df: pd.DataFrame, args: argparse.Namespace, store_dir: Path, chosen: list[str]
) -> tuple[pd.DataFrame, str | None]:
    """``df`` narrowed to the ``--task``, ``--backend`` and ``--metric`` given, or why one of them selects nothing."""
    for col in ("task", "backend", "metric"):
        value = getattr(args, col, None)
        if value:
            unknown = _unknown(df, col, value, store_dir, chosen)
            if unknown:
                return df, unknown
            df = df[df[col] == value]
            chosen = [*chosen, f"--{col} {value}"]
    return df, None


def run_history_command(args: argparse.Namespace) -> int:
    from bench.history import annotations as notes_file  # "annotations" is the __future__ feature
    from bench.history import check, failures, store

    if args.history_action == "import":
        return import_runs(args.store, args.runs)
    if args.history_action == "annotate":
        note = notes_file.Annotation(
            args.run,
            args.note,
            getattr(args, "task", None),
            getattr(args, "backend", None),
            getattr(args, "metric", None),
        )
        try:
            known = {path.name.removesuffix(".parquet") for path in store.files(args.store)}
            if args.run not in known:  # a typo's note would reset no baseline, and say nothing
                print(
                    f"error: run {args.run!r} is not in the history at {args.store} (add it first: "
                    "python -m bench history import RUN_DIR)",
                    file=sys.stderr,
                )
                return 2
            # a typo'd --task/--backend/--metric names no series of the run: its note would reset nothing either
            df = store.load(args.store)
            _, unknown = _narrow(df[df.run_id == args.run], args, args.store, [f"run {args.run}"])
            if unknown:
                print(f"error: {unknown}", file=sys.stderr)
                return 2
            notes_file.append(args.store, note)
            from bench.history import dashboard

            page = dashboard.build(args.store)  # its marks and counts read the notes (QA: left stale until an import)
        except RunFileError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"annotated run {args.run}: {args.note}\nwrote {page}")
        return 0
    t = Thresholds(z=args.z, min_change=args.min_change, lookback=args.lookback, max_acc_drop=args.max_acc_drop)
    try:
        df = store.load(args.store, normalised=args.normalised)
        notes = notes_file.read(args.store)
    except RunFileError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    narrowed, unknown = _narrow(df, args, args.store, [])
    if unknown:
        print(f"error: {unknown}", file=sys.stderr)
        return 2
    # each metric's run-to-run noise is pooled over the whole store: --task must not change a series' verdict
    found = check.check(narrowed, notes, t, args.normalised, pooled_from=df)
    for s in found:
        lines = check.describe(s) or ([s.name + f": {len(s.points)} point(s), no step"] if args.verbose else [])
        if lines:
            print("\n".join(lines))
    # a row that did not work has no figure: narrowed by task and backend, and by --metric where an earlier run had it
    scope = df[df.task == args.task] if args.task else df
    scope = scope[scope.backend == args.backend] if args.backend else scope
    broken = failures.failures(scope, notes, args.metric)
    for f in broken:
        print("\n".join(failures.describe(f)))
    regressions = [s for s in found if s.newest and s.newest.regression]
    stopped = sum(f.regression for f in broken)
    steps = sum(len(s.steps) for s in found)
    drifts = sum(1 for s in found if s.drift)
    print(
        f"{len(found)} series checked ({'normalised' if args.normalised else 'raw, per machine'}): {steps} step(s), "
        f"{drifts} drift(s), {len(regressions)} regressed newest point(s) ({check.threshold_words(t)}); "
        f"{stopped} row(s) failed in their newest run after working before" + failures.unflagged_words(broken)
    )
    return 1 if regressions or stopped else 0
