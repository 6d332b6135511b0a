"""Rows that stop working, in the history: kept with their status and error, flagged by `bench history`.

QA, 2026-12-07: the store kept ok rows alone, so a (task, backend, configuration) that was ok in earlier runs and
failed or timed out in the newest simply stopped appearing, and `bench history` exited 0 (only `bench compare` caught
it); a run whose every row failed was not added at all ("no ok row")."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from bench.history import annotations, check, dashboard, failures, store
from bench.history.rows import ADDED, STATUS, run_rows, typed
from tests.conftest import run_cli
from tests.history_runs import MACHINE, failed_row, make_run

REPO = Path(__file__).resolve().parent.parent
ROW, NEVER = ("lenet", "torch"), ("lenet", "keras")
ERROR = "RuntimeError: boom\n  File 'x.py', line 3"


def bench(*args: str) -> subprocess.CompletedProcess:
    return run_cli(list(args), dict(os.environ), timeout=120, cwd=REPO)


def broken_store(root: Path, last: dict | None = None, **kw) -> tuple[Path, list[Path]]:
    """Three runs with ROW ok and NEVER failing, then a fourth with both failing (``last``: ROW's row in it)."""
    hist, runs = root / "history", []
    for n, v in enumerate([100.0, 101.0, 99.0]):
        runs.append(make_run(root / "runs", n, {ROW: {"steady_img_s": v, "test_acc": 0.9}, NEVER: failed_row()}, **kw))
    runs.append(make_run(root / "runs", 3, {ROW: last or failed_row(ERROR), NEVER: failed_row()}, **kw))
    for r in runs:
        store.add_run(hist, r)
    return hist, runs


def test_a_row_that_stops_working_is_a_regression_naming_its_error_and_one_that_never_worked_is_said(tmp_path: Path):
    hist, runs = broken_store(tmp_path)
    rows = store.load(hist)
    newest = rows[rows.run_id == runs[3].name]  # a run whose every row failed lands, each row's status and error
    assert sorted(newest.backend) == ["keras", "torch"] and set(newest.metric) == {STATUS}
    assert newest.value.isna().all() and set(newest.status) == {"failed"}
    assert newest.set_index("backend").error["torch"] == ERROR
    out = bench("history", "--store", str(hist))
    assert out.returncode == 1, out.stdout + out.stderr
    said = out.stdout.splitlines()
    name = f"lenet / torch / default on {rows.machine.iloc[0]}"
    at = said.index(name)
    assert said[at + 1] == (
        f"  newest run {runs[3].name}: REGRESSION: failed, where 3 run(s) before it on this machine had it ok (the "
        f"last: {runs[2].name}): RuntimeError: boom"
    )
    assert said[at + 2] == "    nothing recorded (same commit, versions, knobs and machine)"  # no knobs: not a change
    assert f"  newest run {runs[3].name}: failed, never ok on this machine: RuntimeError: boom" in said
    assert said[-1].endswith(
        "0 regressed newest point(s) (robust z > 4 and worse by > 5%, an accuracy by > 0.01); 1 row(s) failed in "
        "their newest run after working before, 1 never worked"
    )
    # the series leave the STATUS rows out: ROW's figures are 3 points each, checked as before
    found = check.check(rows, [], check.Thresholds())
    assert sorted((s.key["metric"], len(s.points)) for s in found) == [("steady_img_s", 3), ("test_acc", 3)]
    # the filters: a failure is the row's, whatever metric it measured before; another backend's is not flagged
    assert bench("history", "--store", str(hist), "--metric", "steady_img_s").returncode == 1
    assert bench("history", "--store", str(hist), "--task", "lenet", "--backend", "torch").returncode == 1
    only_never = bench("history", "--store", str(hist), "--backend", "keras")
    assert only_never.returncode == 0
    assert "0 row(s) failed in their newest run after working before, 1 never worked" in only_never.stdout
    # annotated (a backend dropped on purpose), it is said as one that has not worked since, and exits 0
    note = annotations.Annotation(runs[3].name, "torch row retired", task="lenet", backend="torch")
    annotations.append(hist, note)
    out = bench("history", "--store", str(hist))
    assert out.returncode == 0, out.stdout
    assert f"  baseline reset at run {runs[3].name}: torch row retired" in out.stdout
    # a metric's annotation is about its figures, not about the row working
    (f,) = [
        f
        for f in failures.failures(rows, [annotations.Annotation(runs[3].name, "x", metric="test_acc")])
        if f.key["backend"] == "torch"
    ]
    assert f.regression


def test_a_row_that_works_again_or_was_skipped_is_no_failure_and_a_timeout_is_one(tmp_path: Path):
    """Fixed in the newest run: nothing to say. Skipped in it (a framework not installed, a budget) or lost with its
    worker: not the code's outcome, not kept, so its newest run is still its last ok one. Timed out: a failure, said
    as such, with its run's load."""
    fixed, _ = broken_store(tmp_path / "fixed", {"steady_img_s": 100.0, "test_acc": 0.9})
    assert [f.key["backend"] for f in failures.failures(store.load(fixed), [])] == ["keras"]
    assert bench("history", "--store", str(fixed)).returncode == 0
    skipped, runs = broken_store(tmp_path / "skipped", {"status": "skipped", "error": "not installed: torch"})
    rows = store.load(skipped)
    assert not ((rows.run_id == runs[3].name) & (rows.backend == "torch")).any()
    assert bench("history", "--store", str(skipped)).returncode == 0
    # lost with its worker, node or job (recorded failed, `lost`): the infrastructure's, not the code's; such a run
    # is not imported until --resume runs the row again, and were it added, the row would not be kept as a failure
    lost, runs = broken_store(tmp_path / "lost", {**failed_row("no result: node gone"), "lost": True})
    rows = store.load(lost)
    assert not ((rows.run_id == runs[3].name) & (rows.backend == "torch")).any()
    slow = {
        **failed_row("stopped after the per-run limit of 600 s", "timeout"),
        "load_avg_1m_end": 7.7,
        "node_cores": 2,
    }
    timed_out, runs = broken_store(tmp_path / "timeout", slow)
    out = bench("history", "--store", str(timed_out))
    assert out.returncode == 1, out.stdout
    said = f"  newest run {runs[3].name}: REGRESSION: timed out, timed at load 7.7 on 2 cores, where 3 run(s) before"
    assert said in out.stdout, out.stdout
    assert "stopped after the per-run limit of 600 s" in out.stdout


def test_ok_on_another_machine_is_not_ok_on_this_one_and_the_knobs_a_failed_row_kept_are_compared(tmp_path: Path):
    hist = tmp_path / "history"
    other = {**MACHINE, "cpu": "Other CPU 1"}
    store.add_run(hist, make_run(tmp_path, 0, {ROW: {"steady_img_s": 100.0, "knobs": {"precision": "fp32"}}}))
    store.add_run(hist, make_run(tmp_path, 1, {ROW: failed_row()}, machine=other))
    (f,) = failures.failures(store.load(hist), [])
    assert not f.regression and f.ok_runs == 0
    assert bench("history", "--store", str(hist)).returncode == 0
    bf16 = {**failed_row(), "knobs": {"precision": "bf16"}}
    store.add_run(hist, make_run(tmp_path, 2, {ROW: bf16}, commit="def5678"))
    (f, _) = sorted(failures.failures(store.load(hist), []), key=lambda f: not f.regression)
    assert f.regression and failures.describe(f)[2:] == [
        "    commit abc1234 -> def5678",
        "    knob precision fp32 -> bf16",
    ]


def test_every_reader_of_the_store_reads_a_store_with_rows_that_did_not_work(tmp_path: Path):
    """The dashboard (a table of them, the counts), the normalised view's SQL, a store from before the columns came
    beside one with them, merging a store with such rows, and annotating a run whose every row failed."""
    hist, runs = broken_store(tmp_path / "a")
    page = dashboard.build(hist).read_text()
    assert 'id="not-working"' in page and 'href="#not-working"' in page
    assert "RuntimeError: boom</td>" in page and "line 3" not in page and "REGRESSION: ok in " + runs[2].name in page
    assert "1 row(s) failed or timed out in their newest run after working before, 1 never worked." in page
    assert "4 run(s), 1 commit(s), 1 machine(s), 11 rows; 2 raw series, 2 normalised" in page
    normalised = store.load(hist, normalised=True)
    assert normalised[normalised.metric == STATUS].value.isna().all() and len(normalised) == 11
    assert [f.key["backend"] for f in failures.failures(normalised, [])] == ["keras", "torch"]
    # the three ok runs as files written before the status columns, the failed one now: read together, flagged
    old = tmp_path / "old"
    runs_dir = store.check_store(old, create=True)
    for r in runs[:3]:
        rows = typed(run_rows(r)).drop(columns=list(ADDED))
        rows.to_parquet(runs_dir / f"{rows.run_id.iloc[0]}.parquet", index=False)
    assert store.load(old).status.isna().all()  # no column yet in any file: empty
    store.add_run(old, runs[3])
    assert [(f.key["backend"], f.regression) for f in failures.failures(store.load(old), [])] == [
        ("keras", False),
        ("torch", True),
    ]
    merged = tmp_path / "merged"
    out = bench("history", "--store", str(merged), "import", str(hist))
    assert out.returncode == 0 and "4 run(s) added (11 rows), 0 in this store already" in out.stdout, out.stdout
    key = ["run_id", "backend", "metric"]
    pd.testing.assert_frame_equal(*(store.load(s).sort_values(key).reset_index(drop=True) for s in (merged, hist)))
    noted = bench("history", "--store", str(hist), "annotate", runs[3].name, "--note", "x", "--backend", "torch")
    assert noted.returncode == 0, noted.stderr
    wrong = bench("history", "--store", str(hist), "annotate", runs[3].name, "--note", "x", "--metric", "test_acc")
    assert wrong.returncode == 2 and "no series of metric 'test_acc'" in wrong.stderr
    assert "(its metrics: none)" in wrong.stderr  # the pseudo-metric is no metric to name
    # --verbose: the series' lines and counts are the figures' alone
    out = bench("history", "--store", str(hist), "--verbose")
    assert "2 series checked" in out.stdout and "/ status" not in out.stdout


def test_a_row_that_fails_one_repeat_in_three_is_kept_with_its_count_and_its_figures_are_the_ok_repeats(
    tmp_path: Path, capsys
):
    """A flaky row: repeats 0 and 2 ok, repeat 1 failed. Until 2026-12-07 the store kept the ok repeats' figures
    alone, so the row read healthy and `bench history` exited 0. Its figures are still the ok repeats' (median 101 of
    100 and 102, 2 repeats), and a STATUS row says 1 of 3 repeats failed, with the error: a regression where the
    runs before it had every repeat ok, said (not flagged) where none had; a clean run after it clears it."""
    from bench.run import cli
    from tests.history_runs import add_repeat

    hist, runs = tmp_path / "history", []
    for n, v in enumerate([100.0, 101.0, 99.0]):
        runs.append(make_run(tmp_path / "runs", n, {ROW: {"steady_img_s": v, "test_acc": 0.9}}))
    runs.append(make_run(tmp_path / "runs", 3, {ROW: {"steady_img_s": 100.0, "test_acc": 0.9}}))
    add_repeat(runs[3], *ROW, 1, **failed_row(ERROR))
    add_repeat(runs[3], *ROW, 2, steady_img_s=102.0, test_acc=0.92)
    for r in runs:
        store.add_run(hist, r)
    rows = store.load(hist)
    newest = rows[rows.run_id == runs[3].name].set_index("metric")
    assert newest.loc["steady_img_s", ["value", "repeats"]].tolist() == [101.0, 2]  # the ok repeats', as before
    assert newest.loc["test_acc", "value"] == pytest.approx(0.91)
    kept = newest.loc[STATUS]
    assert (kept.repeats, kept.of_repeats, kept.status, kept.error) == (1, 3, "failed", ERROR) and pd.isna(kept.value)
    assert len(check.check(rows, [], check.Thresholds())[0].points) == 4  # its figures stay in the series
    assert cli.main(["history", "--store", str(hist)]) == 1
    said = capsys.readouterr().out.splitlines()
    assert (
        f"  newest run {runs[3].name}: REGRESSION: 1 of 3 repeats failed, where 3 run(s) before it on this machine "
        f"had it ok (the last: {runs[2].name}): RuntimeError: boom"
    ) in said
    assert said[-1].endswith("1 row(s) failed in their newest run after working before")
    assert '<td class="bad">1 of 3 repeats failed</td>' in dashboard.build(hist).read_text()
    (f,) = failures.failures(rows[rows.run_id == runs[3].name], [])  # no run before it: flaky from the start
    assert failures.describe(f)[1] == (
        f"  newest run {runs[3].name}: 1 of 3 repeats failed, no run on this machine had every repeat ok: "
        "RuntimeError: boom"
    )
    store.add_run(hist, make_run(tmp_path / "runs", 4, {ROW: {"steady_img_s": 100.0, "test_acc": 0.9}}))
    assert failures.failures(store.load(hist), []) == []  # every repeat ok again


def test_a_row_flaky_from_its_first_run_worked_and_is_not_counted_as_never_worked(tmp_path: Path, capsys):
    """ROW's first run had 1 of 2 repeats ok, NEVER's none: until 2026-12-07 the last line counted both as "never
    worked", and a later run where ROW failed every repeat read "never ok on this machine". ROW did work, in some
    repeats: it is counted, said and shown as never having had every repeat ok (no regression, exit 0), apart from
    the row that never worked at all."""
    from bench.run import cli
    from tests.history_runs import add_repeat

    hist, first = (
        tmp_path / "history",
        make_run(tmp_path / "runs", 0, {ROW: {"steady_img_s": 100.0}, NEVER: failed_row()}),
    )
    add_repeat(first, *ROW, 1, **failed_row(ERROR))
    store.add_run(hist, first)
    (flaky, never) = failures.failures(store.load(hist), [])[::-1]  # key order: keras (NEVER) first
    assert (flaky.key["backend"], flaky.never_worked, flaky.regression) == ("torch", False, False)
    assert (never.key["backend"], never.never_worked) == ("keras", True)
    assert failures.unflagged_words([flaky, never]) == ", 1 never worked, 1 never had every repeat ok"
    assert cli.main(["history", "--store", str(hist)]) == 0
    said = capsys.readouterr().out.splitlines()
    assert said[-1].endswith(
        "0 row(s) failed in their newest run after working before, 1 never worked, 1 never had every repeat ok"
    )
    assert (
        f"  newest run {first.name}: 1 of 2 repeats failed, no run on this machine had every repeat ok: "
        "RuntimeError: boom" in said
    )
    newest = make_run(tmp_path / "runs", 1, {ROW: failed_row(ERROR), NEVER: failed_row()})  # now no repeat worked
    store.add_run(hist, newest)
    assert cli.main(["history", "--store", str(hist)]) == 0
    said = capsys.readouterr().out.splitlines()
    assert f"  newest run {newest.name}: failed, no run on this machine had every repeat ok: RuntimeError: boom" in said
    assert said[-1].endswith("after working before, 1 never worked, 1 never had every repeat ok")
    page = dashboard.build(hist).read_text()
    assert "1 never worked, 1 never had every repeat ok." in page and "<td>never had every repeat ok</td>" in page


@pytest.mark.e2e
def test_a_real_run_whose_row_dies_lands_in_the_history_and_fails_its_check(clean_env, tmp_path: Path):
    """Two `bench run`s of the fault test backend (tests/faults.py), the second killed in its first epoch: its run,
    all of whose rows failed, is added beside it, and `bench history` exits 1 naming the row and its error."""
    from tests.conftest import TINY_TASK, run_cli
    from tests.faults import fault_env

    task = tmp_path / "tiny.toml"
    task.write_text(TINY_TASK)
    out, env = tmp_path / "results", fault_env(clean_env, tmp_path / "fault", {2: "kill"})
    for expected in (0, 1):
        proc = run_cli(["run", str(task), "--backend", "fault", "--out", str(out)], env)
        assert proc.returncode == expected, proc.stdout + proc.stderr
    assert "(1 of them a row that failed or timed out: its status and error)" in proc.stdout, proc.stdout
    checked = run_cli(["history", "--store", str(out / "history")], env)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert "tiny / fault / default on " in checked.stdout
    assert "REGRESSION: failed, where 1 run(s) before it on this machine had it ok" in checked.stdout
    assert "killed by SIGKILL" in checked.stdout and "1 row(s) failed in their newest run" in checked.stdout
    assert len(list((out / "history" / "runs").iterdir())) == 2
