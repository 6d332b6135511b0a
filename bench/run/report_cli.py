"""``python -m bench report`` and ``compare``: a run's reports written again from its records, and two runs judged
metric by metric (bench.report.compare); and ``--reference``, which they share with ``run``."""

from __future__ import annotations

import argparse
import errno
import os
import stat
import sys
import warnings
from pathlib import Path

import backends
from bench.core.results import RunFileError, no_record_words, not_a_folder, read_records
from bench.core.runfiles import check_run_folder
from bench.measure.timing import MIN_TIME_DELTA_S
from bench.report.backends import ordered, reference_of, unknown_reference
from bench.run import environment
from bench.run.argtypes import accuracy_drop, folder, fraction, output_file, threshold
from bench.run.runlock import run_in_progress


def reference(value: str) -> str:
    """--reference: a registered backend (exit 2 naming the known ones otherwise)."""
    why = unknown_reference(value)
    if why:
        raise argparse.ArgumentTypeError(why)
    return value


def add_reference(p: argparse.ArgumentParser, default: str = "") -> None:
    """``--reference``; ``default``: how a command without it chooses, before the registry's order."""
    p.add_argument(
        "--reference",
        type=reference,
        metavar="BACKEND",
        help=f"the backend the ratio columns divide by (default: {default}the first of "
        f"{', '.join(backends.BACKENDS)} the run has rows of; a run of one backend has no ratio column)",
    )


def resolve_run(run: str, results: Path) -> Path:
    path = Path(run)
    return path if path.is_dir() else results / run


def _add_results(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--results",
        type=folder,
        default=environment.REPO / "results",
        help="where run ids are looked up (default: %(default)s)",
    )


def add_report_parsers(sub: argparse._SubParsersAction) -> None:
    """The ``report`` and ``compare`` commands."""
    p_report = sub.add_parser(
        "report",
        help="regenerate results.csv, summary.md and plots of a run from its records.jsonl",
        description="Regenerate results.csv, summary.md and plots/ of a run from its records.jsonl alone.",
    )
    p_report.add_argument("run", metavar="RUN", help="a run directory or a run id under --results")
    _add_results(p_report)
    add_reference(p_report, "the one the run was started with (its plan.json), else ")
    p_cmp = sub.add_parser(
        "compare",
        help="compare two runs metric by metric; exit 1 on a regression",
        description="Join two runs on (task, backend, model, profile), show deltas and ratios of the medians "
        "over ok repeats, flag regressions beyond the thresholds and exit 1 if there is one. Exit 2 for bad "
        "input: a run that is not one, two runs with no task in common, or one run named twice (the same "
        "folder or a copy of it).",
    )
    p_cmp.add_argument("run_a", metavar="RUN_A", help="the baseline run (directory or run id)")
    p_cmp.add_argument("run_b", metavar="RUN_B", help="the run checked against it")
    p_cmp.add_argument(
        "--max-slowdown",
        type=fraction,
        default=0.10,
        metavar="FRAC",
        help="flag time/throughput worse by more than this fraction, in [0, 1] (default: %(default)s)",
    )
    p_cmp.add_argument(
        "--max-acc-drop",
        type=accuracy_drop,
        default=0.01,
        metavar="ABS",
        help="flag a test-accuracy drop larger than this, in [0, 1]: 0.01 is one point (default: %(default)s)",
    )
    p_cmp.add_argument(
        "--max-memory-growth",
        type=fraction,
        default=0.25,
        metavar="FRAC",
        help="flag peak memory up by more than this fraction, in [0, 1] (default: %(default)s)",
    )
    p_cmp.add_argument(
        "--min-time-delta",
        type=threshold,
        default=MIN_TIME_DELTA_S,
        metavar="SECONDS",
        help="leave a time figure unjudged when its seconds moved by no more than this: the scheduler's noise "
        "(default: %(default)s)",
    )
    p_cmp.add_argument("--markdown", type=output_file, help="also write the comparison to this Markdown file")
    _add_results(p_cmp)
    add_reference(p_cmp, "the one both runs were started with (their plan.json), where they agree, else ")


def reference_not_recorded(reference: str | None, run_dir: Path) -> str | None:
    """Why ``bench report --reference`` is refused for a backend the run has no row of (as ``run`` refuses one it
    does not train: QA, 2026-12-07, every ratio cell read "no keras-jax row"); None when it has rows, or none
    was given."""
    if reference is None:
        return None
    with warnings.catch_warnings():  # a torn line is warned of once, by the report that reads them next
        warnings.simplefilter("ignore")
        ran = ordered(str(r["backend"]) for r in read_records(run_dir) if isinstance(r.get("backend"), str))
    if reference in ran:
        return None
    return (
        f"--reference {reference}: the run has no {reference} row (its backends: {', '.join(ran) or 'none yet'}), "
        f"so every ratio would read 'no {reference} row': name one of them"
    )


def no_records(run_dir: Path) -> str | None:
    """Why the run's records.jsonl gives nothing to report (empty, or no line of it a record), or None. Until
    2026-12-07 `report` wrote a header-only results.csv and a summary of no row over the reports a complete run had
    written from its records, exit 0 (QA: its records.jsonl emptied)."""
    with warnings.catch_warnings(record=True) as said:  # a bad line is warned of once: by the report that reads
        warnings.simplefilter("always")  # the records next, or here where there is none to report
        if read_records(run_dir):
            return None
    for w in said:
        warnings.warn(w.message, stacklevel=1)
    return no_record_words(run_dir) or f"{run_dir / 'records.jsonl'} holds no readable record"


def cmd_report(args: argparse.Namespace) -> int:
    from bench.report.summary import write_reports
    from bench.run.resume import recorded_so_far

    run_dir = resolve_run(args.run, args.results)
    try:
        # what the folder is comes first: a folder that is no run, with a link somewhere inside, was refused for
        # the link (QA, 2026-12-07), and a run too young to have records read "not a run directory"
        records = run_dir / "records.jsonl"
        in_progress = run_dir.is_dir() and run_in_progress(run_dir)
        if not run_dir.is_dir() and (what := not_a_folder(args.run)):
            print(f"error: {args.run}: {what}", file=sys.stderr)
            return 2
        if not run_dir.is_dir() or not (os.path.lexists(records) or in_progress):
            if run_dir.is_dir() and (words := no_record_words(run_dir)):  # killed before its first row ended
                print(f"error: {args.run}: {words}; nothing to report", file=sys.stderr)
                return 2
            what = "no records.jsonl in it" if run_dir.is_dir() else "no such folder"
            print(f"error: {args.run}: not a run directory ({run_dir}: {what})", file=sys.stderr)
            return 2
        check_run_folder(run_dir)  # a folder from elsewhere: refused whole before anything is written into it
        if in_progress:  # its reports would say "incomplete" and be overwritten when it ends
            so_far = recorded_so_far(run_dir)
            print(
                f"error: {args.run}: the run is still in progress: another bench process is running it"
                f"{f' ({so_far} so far)' if so_far else ''}. It writes results.csv, summary.md and index.html "
                f"when it ends; `python -m bench report {args.run}` can be run after that",
                file=sys.stderr,
            )
            return 2
        if not records.is_file():
            print(f"error: {args.run}: not a run directory ({run_dir}: its records.jsonl is no file)", file=sys.stderr)
            return 2
        if why := no_records(run_dir):  # reports written from good records are not overwritten by empty ones
            print(f"error: {args.run}: {why}; nothing reported (its reports are left as they were)", file=sys.stderr)
            return 2
        if why := reference_not_recorded(args.reference, run_dir):
            print(f"error: {why}", file=sys.stderr)
            return 2
        write_reports(run_dir, args.reference)
    except RunFileError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {run_dir}/results.csv, summary.md, index.html, plots/")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from bench.report import compare

    try:
        a, env_a = compare.load_run(args.run_a, args.results)
        b, env_b = compare.load_run(args.run_b, args.results)
        stopped = {side: compare.unfinished(run, args.results) for side, run in (("A", args.run_a), ("B", args.run_b))}
        lost = {
            side: compare.lost_words(run, args.results, df)
            for side, run, df in (("A", args.run_a, a), ("B", args.run_b, b))
        }
        one_run = compare.same_run(args.run_a, args.run_b, args.results)
    except (FileNotFoundError, RunFileError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if one_run:  # every figure against itself: nothing compared, and a guard must not pass on it
        print(
            f"error: {one_run}: nothing to compare; name two runs (`python -m bench report RUN` shows one)",
            file=sys.stderr,
        )
        return 2
    if (why := compare.nothing_in_common(a, b)) is not None:
        print(f"error: {args.run_a} and {args.run_b}: {why}", file=sys.stderr)
        return 2
    # a reference neither run has: its table of ratios went without a word, exit 0 (QA, 2026-12-07)
    if args.reference and args.reference not in {*a.backend, *b.backend}:
        ran = ", ".join(ordered({*a.backend, *b.backend}))
        print(
            f"error: --reference {args.reference}: neither run has a {args.reference} row (their backends: {ran}), "
            "so there is no ratio to it to compare: name one of them",
            file=sys.stderr,
        )
        return 2
    t = compare.Thresholds(args.max_slowdown, args.max_acc_drop, args.max_memory_growth, args.min_time_delta)
    b_state = stopped["B"].state if stopped["B"] else None
    warnings = compare.environment_differences(env_a, env_b, a, b)
    planned_b = compare.run_planned(args.run_b, args.results)
    machine = compare.machine_differences(env_a, env_b, a, b)
    warnings += [w for w in machine if w not in warnings]  # the cores a run was held to are said there alone
    other_machine = bool(machine)
    result = compare.compare(a, b, t, b_state, other_machine, planned_b)
    text = compare.render(result)
    names, note = [*a.backend, *b.backend], ""
    if args.reference:
        reference = reference_of(names, args.reference)
    else:  # the plans' --reference where they agree (as each run's summary.md), else the default: said in a line
        planned = (compare.run_reference(args.run_a, args.results), compare.run_reference(args.run_b, args.results))
        reference, note = compare.compared_reference(names, planned)
    ratios = compare.render_reference(compare.reference_ratios(a, b, reference))
    regressions = int(result["regression"].sum()) if len(result) else 0
    failing = int((result["verdict"] == compare.STILL_FAILING).sum())  # failed in A too: still exit 1
    verdict = f"{regressions} regression(s) beyond the thresholds" if regressions else "no regression"
    if failing:
        verdict += f", {failing} row(s) still failing, as in A"
    inconclusive = int((result["verdict"] == "inconclusive").sum()) if "verdict" in result else 0
    if inconclusive:  # beyond a threshold, but the intervals overlap and the ratio's bootstrap does not reject
        verdict += f", {inconclusive} inconclusive change(s)"
    not_run = int((result["verdict"] == compare.NOT_RUN).sum()) if "verdict" in result else 0
    left_out = int((result["verdict"] == compare.NOT_RUN_BUDGET).sum()) if "verdict" in result else 0
    if left_out:  # B ran out of time before them: not the code's outcome, and alone no exit 1
        verdict += f", {left_out} row(s) not run in B: its budget left them out (not judged)"
    skipped = int((result["verdict"] == compare.NOT_RUN_SKIPPED).sum()) if "verdict" in result else 0
    if skipped:  # new in B and skipped there (a framework not installed): nothing lost, and alone no exit 1
        verdict += f", {skipped} row(s) new in B that B skipped (not judged; why under the table)"
    if b_state:  # the rows that landed are compared; a guard does not pass on a run that stopped (exit 1)
        verdict += f", B is {b_state}: only the rows that landed are compared" + (
            f", {not_run} not run" if not_run else ""
        )
    if lost_b := compare.lost_rows(b):  # not the code's failure; a guard does not pass on rows that did not run
        verdict += f", {lost_b} row(s) of B lost with their worker, node or job: not run"
    verdict += compare.unjudged(result)
    lines = [f"A = {args.run_a}", f"B = {args.run_b}", "", text, ""]
    lines += [*(one_sided := compare.one_sided_lines(a, b, b_state, planned_b)), *([""] if one_sided else [])]
    lines += [*(unmeasured := compare.unmeasured_lines(b, result)), *([""] if unmeasured else [])]
    lines += [*(flaky := compare.failed_repeat_lines(b, result)), *([""] if flaky else [])]
    if ratios:  # how each backend stands against the reference, in both runs
        lines += [
            *([note] if note else []),
            f"Backends against {reference} (ratio of the medians over ok repeats, in A and in B):",
            "",
            ratios,
            "",
        ]
    lines += [f"warning: {u.words(side)}" for side, u in stopped.items() if u]  # the rows that landed are compared
    if lost["A"]:  # a lost baseline row: B's is judged as a row new in B
        lines.append(f"warning: A: {lost['A']}; a lost row is no baseline, B's row is not judged against it")
    lines += [f"warning: B: {lost['B']}"] if lost["B"] else []
    lines += [f"warning: the runs differ: {w}" for w in warnings]
    lines += [f"warning: {w}" for w in compare.unrecorded_lines(a, b)]
    lines += [f"warning: {w}" for w in compare.load_lines(a, b, env_a, env_b)]  # said, the exit status as it was
    lines += [
        f"{verdict} (max slowdown {t.max_slowdown:.0%}, max accuracy drop {t.max_acc_drop}, "
        f"max memory growth {t.max_memory_growth:.0%}, time floor {t.min_time_delta_s * 1e3:g} ms)"
        + compare.untested(result)
    ]
    print("\n".join(lines))
    if args.markdown:
        try:
            write_regular(args.markdown, "\n".join(lines) + "\n")
        except OSError as e:  # checked before, so a full disk or a race: an error, not a "regression"
            print(f"error: {args.markdown}: {e.strerror or e}", file=sys.stderr)
            return 2
    return 1 if regressions or failing or b_state or lost_b else 0


def write_regular(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` only if it is a regular file: a FIFO put there since the check fails the
    non-blocking open (no reader) or the ``fstat``, instead of blocking the command forever."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NONBLOCK | os.O_CLOEXEC, 0o666)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        f.write(text)
