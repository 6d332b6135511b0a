"""The side-by-side summary: medians over ok repeats, keras/torch ratios, failures listed."""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import statistics
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.core.record import new_record
from bench.core.results import RunFileWarning, append_record, latest_records, read_records, table
from bench.phases.transfer import transfer_metrics
from bench.report.backends import colour, label, ordered, reference_of
from bench.report.models import sections
from bench.report.plotting import render
from bench.report.summary import write_reports
from bench.report.tables import WORDS, markdown_table, side_by_side, terminal_summary


def rec(backend: str, repeat: int, status: str = "ok", **kw) -> dict:
    base = dict(
        task="t",
        backend=backend,
        repeat=repeat,
        status=status,
        model="lenet5",
        dataset="mnist",
        model_options="{}",
        dataset_source="embedded:x",
        n_train=100,
        n_test=10,
        epochs=2,
        batch_size=8,
        profile="quick",
    )
    r = new_record(**(base | kw))
    r["history"] = [{"epoch": 1, "seconds": 1.0, "train_loss": 2.0, "test_acc": 0.5}]
    return r


def test_a_backend_that_trained_one_epoch_shows_no_steady_epoch_figures():
    """QA, 2026-12-07: a one-epoch zoo run's table read "steady epoch 0.173 / 7.392" and "steady throughput 139 / 3"
    (ratio 0.023): its only epoch, compiles and all, under "steady", beside the header's "Steady epoch figures exclude
    the first epoch". A backend whose rows trained one epoch shows none ("-"), and no ratio is made of them."""
    steady = {"epoch_s_median": 0.5, "throughput_img_s": 200.0, "steady_epoch_ratio": 1.1, "train_s": 1.0}
    rows = [rec("torch", 0, **steady), rec("keras", 0, **{**steady, "epoch_s_median": 7.4}, epochs=1)]
    sbs = side_by_side(table(rows), "t", formatted=True).set_index("metric")
    for words in (WORDS["epoch_s_median"], WORDS["throughput_img_s"], WORDS["steady_epoch_ratio"]):
        assert sbs.loc[words, "torch"] != "-" and sbs.loc[words, "keras"] == "-", words
        assert sbs.loc[words, "keras/torch"] == "-"
    assert sbs.loc["training time (s)", "keras"] == "1.00"  # the epoch's own figures stand
    both = side_by_side(table([{**r, "epochs": 1} for r in rows]), "t").set_index("metric")
    assert WORDS["epoch_s_median"] not in both.index  # no backend has one: no row


def test_ratios_use_medians_of_ok_repeats(tmp_path: Path):
    rows = [
        rec("torch", 0, train_s=10.0, test_acc=0.9),
        rec("torch", 1, train_s=12.0, test_acc=0.92),
        rec("torch", 2, train_s=11.0, test_acc=0.91),
        rec("keras", 0, train_s=20.0, test_acc=0.9),
        rec("keras", 1, status="failed", error="boom", train_s=1.0),
    ]
    sbs = side_by_side(table(rows), "t").set_index("metric")
    assert sbs.loc["training time (s)", "torch"] == 11.0
    assert sbs.loc["training time (s)", "keras"] == 20.0  # the failed repeat is not counted
    assert sbs.loc["training time (s)", "keras/torch"] == pytest.approx(20 / 11)
    assert list(sbs.columns) == ["torch", "keras", "keras/torch"]

    for r in rows:
        append_record(tmp_path, r)
    (tmp_path / "environment.json").write_text(json.dumps({"run_id": "x", "cores": 2}))
    df = write_reports(tmp_path)
    assert len(df) == 5 and (tmp_path / "results.csv").is_file()
    summary = (tmp_path / "summary.md").read_text()
    assert "keras repeat 1: **failed**: boom" in summary and "| training time (s)" in summary
    assert (tmp_path / "plots" / "curves-t.png").stat().st_size > 1000
    # the row that failed one repeat of two is said as such beside its figures (until 2026-12-07 only its failed
    # repeat's line said anything): in summary.md, the page and the terminal; torch's, every repeat ok, is not
    flaky = "keras: 1 of 2 repeats failed; its figures are those of its ok repeats (each failed one is listed below)"
    assert f"- **failed repeats**: {flaky}" in summary and "torch: " not in summary.split("**failed repeats**")[1]
    assert "1 of 2 repeats failed; its figures" in (tmp_path / "index.html").read_text()
    said = terminal_summary(table(rows)).splitlines()
    assert [line for line in said if "repeats failed" in line] == [
        "  keras: 1 of 2 repeats failed (its figures: its ok repeats')"
    ]


def test_summary_and_page_are_titled_with_the_run_folders_name(tmp_path: Path):
    """No environment.json (a copied or hand-made run folder), or one naming another run: both titles say the
    folder's name (summary.md's read "bench run " with nothing after it)."""
    run = tmp_path / "20260101-000000-ab12"
    run.mkdir()
    append_record(run, rec("torch", 0, train_s=1.0))
    for env in (None, {"run_id": "renamed-from", "cores": 2}):
        if env is not None:
            (run / "environment.json").write_text(json.dumps(env))
        write_reports(run)
        assert (run / "summary.md").read_text().splitlines()[0] == f"# bench run {run.name}"
        page = (run / "index.html").read_text()
        assert f"<title>bench run {run.name}</title>" in page and f"<h1>bench run {run.name}</h1>" in page


def test_a_run_of_data_parallel_rows_alone_says_nothing_of_the_tables_it_has_none_of(tmp_path: Path):
    """QA, 2026-12-06: a run with only data-parallel rows (the numpy test backend's) had an empty "Backends:" line and
    the ratio-cell hint on its page, and summary.md the side-by-side tables' note ("No ratio columns: ... rows
    alone") and a link to an overview plot never drawn: each is left out there, and kept beside a table of two."""
    dp = dict(scaling_mode="strong", per_worker_batch=8, global_batch=8, dist_backend="gloo", train_s=1.0)
    for name, single in (("dp", ()), ("both", ("torch", "keras"))):
        run = tmp_path / name
        run.mkdir()
        for backend in single:
            append_record(run, rec(backend, 0, train_s=1.0, test_acc=0.9, steady_img_s=100.0))
        for workers in (1, 2):
            append_record(run, rec("numpy", 0, workers=workers, **dp, steady_img_s=100.0, test_acc=0.9))
        write_reports(run)
        summary, page = (run / "summary.md").read_text(), (run / "index.html").read_text()
        assert "## Data-parallel scaling" in summary and "Click a column to sort." in page
        said = [
            "Ratios are each backend's median" in summary,
            "plots/overview.png" in summary,
            "<p class=small>Backends: " in page,
            "A ratio cell is marked" in page,
        ]
        assert said == [bool(single)] * 4, (name, said)
        assert "No ratio columns" not in summary


def test_a_task_of_data_parallel_rows_alone_has_its_curves_model_and_target_in_its_scaling_section(tmp_path: Path):
    """QA, 2026-12-06: `run cifar10-cnn --workers 1,2` drew no training curves (they were drawn per task of the
    single-process table, which has none of these rows), said nothing of the task's model and data (the task's part
    of summary.md is the single-process table's), and its "time to target acc" read "not reached" with the target
    said nowhere; its scaling table came after a confusion matrix per row. Its scaling section gives the task's line,
    the target and the curves; a task with a single-process part keeps them there, and its section none of them."""
    dp = dict(scaling_mode="strong", per_worker_batch=8, global_batch=8, dist_backend="gloo", train_s=1.0)
    history = [{"epoch": e, "seconds": 1.0, "train_loss": 1.0 / e, "test_acc": 0.4 + 0.1 * e} for e in (1, 2)]
    for name, single in (("dp", False), ("both", True)):
        run = tmp_path / name
        run.mkdir()
        if single:
            append_record(run, {**rec("torch", 0, train_s=1.0, test_acc=0.6), "history": history})
        for workers in (1, 2):
            r = rec("torch", 0, workers=workers, **dp, steady_img_s=100.0, test_acc=0.6, target_acc=0.55)
            append_record(run, {**r, "history": history, "time_to_target_s": 2.0})
        write_reports(run)
        assert (run / "plots" / "curves-t.png").stat().st_size > 1000
        summary, page = (run / "summary.md").read_text(), (run / "index.html").read_text()
        scaling = summary[summary.index("## Data-parallel scaling") :]
        assert ("![training curves of t](plots/curves-t.png)" in scaling) is not single
        assert summary.count("plots/curves-t.png") == 1 and page.count('src="plots/curves-t.png"') == 1
        assert ("Model `lenet5` {}, dataset `mnist` from `embedded:x`, 100 train / 10 test" in scaling) is not single
        assert "Target test accuracy 0.55 (`train.target_acc`)" in scaling
        confusion = summary.find("## Test-set confusion matrices")
        assert confusion == -1 or confusion > summary.index("## Data-parallel scaling")


def test_the_scaling_figure_draws_each_points_95_percent_interval(monkeypatch, tmp_path: Path):
    """QA, 2026-12-06: the scaling table gives img/s and efficiency with their intervals, the figure drew the points
    alone. Each point has its interval's bar (none where the row has no interval: the 1-worker row's efficiency)."""
    from bench.core.results import table
    from bench.report import scaling

    drawn = []
    monkeypatch.setattr(scaling, "save_figure", lambda fig, path, **kw: drawn.append(fig) or True)
    dp = dict(scaling_mode="strong", per_worker_batch=8, global_batch=8, dist_backend="gloo")
    rows = [
        rec("torch", 0, workers=1, **dp, steady_img_s=100.0, steady_img_s_ci_lo=90.0, steady_img_s_ci_hi=104.0),
        rec(
            "torch",
            0,
            workers=2,
            **dp,
            steady_img_s=150.0,
            steady_img_s_ci_lo=140.0,
            steady_img_s_ci_hi=170.0,
            scaling_eff=0.75,
            scaling_eff_ci_lo=0.7,
            scaling_eff_ci_hi=0.8,
        ),
    ]
    rows[0]["scaling_eff"] = 1.0
    assert scaling.plot_scaling(table(rows), "t", tmp_path / "s.png")
    (fig,) = drawn
    spans = []
    for ax in fig.axes[:2]:
        (container,) = ax.containers
        (bars,) = container.lines[2]
        spans.append([tuple(seg[:, 1].round(3)) for seg in bars.get_segments()])
    assert spans == [[(90.0, 104.0), (140.0, 170.0)], [(1.0, 1.0), (0.7, 0.8)]]
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_a_torn_last_line_is_ignored(tmp_path: Path):
    append_record(tmp_path, rec("torch", 0))
    with open(tmp_path / "records.jsonl", "a") as f:
        f.write('{"task": "t", "backe')  # the parent died mid-write
    with pytest.warns(RunFileWarning, match=r"records\.jsonl:2: torn last line \(a write cut short\); line skipped"):
        assert len(read_records(tmp_path)) == 1


def test_a_boolean_outside_the_flag_columns_is_named_and_ignored(tmp_path: Path):
    """``"steady_img_s": true`` (a hand edit) would make the spread's max - min a numpy boolean subtraction;
    it is dropped with a warning naming file:line and column, and the flags keep their booleans."""
    for r in (
        rec("torch", 0, steady_img_s=True, channels_last=True),
        rec("torch", 1, steady_img_s=90.0),
        rec("torch", 2, steady_img_s=110.0),
    ):
        append_record(tmp_path, r)
    with pytest.warns(RunFileWarning, match=r"records.jsonl:1: 'steady_img_s' is bool, not a value; ignored"):
        rows = read_records(tmp_path)
    assert rows[0]["steady_img_s"] is None and rows[0]["channels_last"] is True
    label = "headline throughput: timed images / window time (img/s, 95% CI)"
    steady = side_by_side(table(rows), "t").set_index("metric").loc[label]
    assert steady["torch"] == 100.0  # the median of the two readable repeats


def test_rows_are_reported_in_the_plans_order_not_the_order_they_were_written(tmp_path: Path):
    """A row deleted and rerun with --resume lands last in records.jsonl; results.csv and summary.md put
    it where plan.json planned it (tasks, then backends, then repeats); a row the plan does not name last."""
    for task, backend, repeat in (
        ("a", "torch", 0),
        ("b", "torch", 0),
        ("b", "keras", 0),
        ("x", "torch", 0),
        ("a", "keras", 1),
        ("a", "keras", 0),
    ):
        append_record(tmp_path, rec(backend, repeat, task=task, train_s=1.0))
    plan = {"tasks": [{"name": "a"}, {"name": "b"}], "options": {"backends": ["torch", "keras"]}}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    df = write_reports(tmp_path)
    order = [
        ("a", "torch", 0),
        ("a", "keras", 0),
        ("a", "keras", 1),
        ("b", "torch", 0),
        ("b", "keras", 0),
        ("x", "torch", 0),
    ]
    assert list(zip(df.task, df.backend, df.repeat, strict=True)) == order
    csv = pd.read_csv(tmp_path / "results.csv")
    assert list(zip(csv.task, csv.backend, csv.repeat, strict=True)) == order
    summary = (tmp_path / "summary.md").read_text()
    assert summary.index("\n## a\n") < summary.index("\n## b\n") < summary.index("\n## x\n")


def test_a_note_with_its_own_semicolon_stays_one_note_in_the_summary(tmp_path: Path):
    """The notes column joins a row's notes with "; ": a note that contains "; " itself (Keras's tf.data note
    did) was cut into two bullets, the second a dangling "docs/timing.md)"."""
    from bench.core.record import join_notes, split_notes

    notes = ["keras: tf.data autotuning off (on, it stalls some fit calls; docs/timing.md)", "second note"]
    assert split_notes(join_notes(notes)) == [
        "keras: tf.data autotuning off (on, it stalls some fit calls, docs/timing.md)",
        "second note",
    ]
    append_record(tmp_path, rec("torch", 0, train_s=1.0, notes=join_notes(notes)))
    write_reports(tmp_path)
    bullets = [line for line in (tmp_path / "summary.md").read_text().splitlines() if line.startswith("- ")]
    assert "- keras: tf.data autotuning off (on, it stalls some fit calls, docs/timing.md)" in bullets
    assert "- second note" in bullets and not any(b.startswith("- docs/") for b in bullets)


def test_the_overview_draws_the_tables_headline_with_its_interval():
    """The bar is the headline the table prints (timed images / window time), the whiskers its 95% interval as the
    table's cell has it: one run's own, and over repeats Student's t over the processes (the medians of each run's
    own ends hid the spread between them); the median epoch's throughput differs from it by a few % and is not
    what the table calls the run's throughput."""
    import numpy as np

    from bench.measure import stats
    from bench.report.tables import overview_throughput, side_by_side

    rows = [
        rec(
            "torch",
            k,
            throughput_img_s=6000.0 + k,
            steady_img_s=v,
            steady_img_s_ci_lo=v - 100,
            steady_img_s_ci_hi=v + 50,
        )
        for k, v in enumerate((6200.0, 6400.0, 6300.0))
    ]
    g = overview_throughput(table(rows)).loc[("t", "torch")]
    _, lo, hi = stats.log_t_interval(np.array([6200.0, 6400.0, 6300.0]))  # t(2 df) = 4.30: 6,055-6,554
    assert (g.thr, g.lo, g.hi, bool(g.epochs)) == (6300.0, pytest.approx(lo), pytest.approx(hi), False)
    assert lo < 6100 and hi > 6500  # wider than any run's own (6,200-6,350 at their medians)
    sbs = side_by_side(table(rows), "t", formatted=True).set_index("metric")
    cell = next(sbs.torch[m] for m in sbs.index if m.startswith("headline throughput"))
    assert cell == f"6,300.0 ± {(hi - lo) / 2:,.1f}"  # the table's cell: the same interval
    one = overview_throughput(table(rows[:1])).loc[("t", "torch")]  # one run: its own interval
    assert (one.thr, one.lo, one.hi) == (6200.0, 6100.0, 6250.0)


def test_an_old_record_without_a_headline_is_drawn_from_its_epochs_counting_the_images_an_epoch_trained():
    """With train.drop_last an epoch trains 1,280 of 1,438 images: the range (fastest and slowest steady
    epoch) uses 1,280 as the bar does, not n_train (which put the fast whisker 12% too high)."""
    from bench.report.tables import overview_throughput

    r = rec(
        "torch",
        0,
        n_train=1438,
        throughput_img_s=1280 / 0.2,
        epoch_s_median=0.2,
        epoch_s_min=0.16,
        epoch_s_max=0.25,
        test_acc=0.9,
    )
    r.pop("steady_img_s", None)
    g = overview_throughput(table([r])).loc[("t", "torch")]
    assert g.thr == pytest.approx(6400) and g.hi == pytest.approx(8000) and g.lo == pytest.approx(5120)
    assert bool(g.epochs)


def test_report_command_rebuilds_everything_from_records_alone(tmp_path: Path, clean_env):
    from tests.conftest import run_cli

    run = tmp_path / "run"
    run.mkdir()
    for r in (
        rec("torch", 0, train_s=1.0, test_acc=0.9, throughput_img_s=100.0, epoch_s_min=0.9, epoch_s_max=1.1),
        rec("keras", 0, train_s=2.0, test_acc=0.8, throughput_img_s=50.0, epoch_s_min=1.9, epoch_s_max=2.1),
    ):
        append_record(run, r)
    proc = run_cli(["report", str(run)], clean_env)
    assert proc.returncode == 0, proc.stderr
    for name in ("results.csv", "summary.md", "index.html", "plots/curves-t.png", "plots/overview.png"):
        assert (run / name).is_file(), name
    assert "| training time (s)" in (run / "summary.md").read_text()
    assert run_cli(["report", str(tmp_path / "missing")], clean_env).returncode == 2
    proc = run_cli(["report", str(run), "--reference", "keras"], clean_env)
    assert proc.returncode == 0, proc.stderr
    summary = (run / "summary.md").read_text()
    assert re.search(r"^\| training time \(s\) +\| +1\.00 \| +2\.00 \| +0\.500 \|$", summary, re.M), summary
    assert re.search(r"^\| metric +\| +PyTorch \| +Keras \(TF\) \| +torch/keras \|$", summary, re.M), summary
    assert "divided by Keras (TF)'s" in summary
    bad = run_cli(["report", str(run), "--reference", "nope"], clean_env)
    assert bad.returncode == 2 and "unknown backend 'nope' (choose from torch, keras" in bad.stderr


def test_report_without_reference_uses_the_one_the_run_was_started_with(tmp_path: Path, capsys):
    """QA: `bench report RUN` of a run made with `--reference keras` re-reported it against torch. Without the option
    the plan's reference holds; the option still overrides it; a plan without one (older runs), or naming no
    registered backend, falls back to the registry's first backend the run has."""
    from bench.run import cli

    run = tmp_path / "run"
    run.mkdir()
    for r in (rec("torch", 0, train_s=1.0), rec("keras", 0, train_s=2.0)):
        append_record(run, r)

    def ratio_column(options: dict, *argv: str) -> str:
        (run / "plan.json").write_text(json.dumps({"tasks": [], "options": options}))
        assert cli.main(["report", str(run), *argv]) == 0
        capsys.readouterr()
        head = re.search(r"^\| metric +\|.*\| +(\S+/\S+) \|$", (run / "summary.md").read_text(), re.M)
        assert head, (run / "summary.md").read_text()
        return head[1]

    assert ratio_column({"backends": ["torch", "keras"], "reference": "keras"}) == "torch/keras"
    assert ratio_column({"backends": ["torch", "keras"], "reference": "keras"}, "--reference", "torch") == "keras/torch"
    assert ratio_column({"backends": ["torch", "keras"]}) == "keras/torch"  # an older plan: the default rule
    assert ratio_column({"backends": ["torch", "keras"], "reference": None}) == "keras/torch"
    assert ratio_column({"reference": "gone"}) == "keras/torch"


@pytest.mark.e2e
def test_run_reference_reaches_the_summary_and_the_terminal(clean_env, tmp_path: Path):
    """`run --reference fault` where the fault backend's row dies: the ratio column says why it is empty, in both
    outputs. (A reference the run does not train at all is refused before it starts: tests/test_cli.py.)"""
    from tests.conftest import TINY_TASK, only_run_dir, run_cli
    from tests.faults import fault_env

    task = tmp_path / "tiny.toml"
    task.write_text(TINY_TASK)
    out, env = tmp_path / "results", fault_env(clean_env, tmp_path / "fault", {1: "kill"})
    proc = run_cli(["run", str(task), "--backend", "numpy,fault", "--reference", "fault", "--out", str(out)], env)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the fault row failed
    assert "ratios: <backend>/fault" in proc.stdout and "fault failed" in proc.stdout
    run_dir = only_run_dir(out)
    summary = (run_dir / "summary.md").read_text()
    assert re.search(r"^\| training time \(s\) .*\| +fault failed \|$", summary, re.M), summary
    assert json.loads((run_dir / "plan.json").read_text())["options"]["reference"] == "fault"  # --resume keeps it
    # the run's page, and the run in the history beside it (issue #22)
    assert 'id="table-tiny"' in (run_dir / "index.html").read_text()
    history = out / "history"
    assert (history / "runs" / f"{run_dir.name}.parquet").is_file() and (history / "index.html").is_file()


@pytest.mark.e2e
def test_run_of_one_backend_without_reference_has_no_ratio_column(clean_env, tmp_path: Path):
    """`run --backend numpy` alone (no --reference): no `numpy/torch` column reading "no torch row" on every
    line; summary.md says a ratio needs two backends, and the plan leaves the choice to the report."""
    from tests.conftest import TINY_TASK, only_run_dir, run_cli
    from tests.faults import backend_env

    task = tmp_path / "tiny.toml"
    task.write_text(TINY_TASK)
    out, env = tmp_path / "results", backend_env(clean_env, tmp_path / "site")
    proc = run_cli(["run", str(task), "--backend", "numpy", "--out", str(out)], env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no torch row" not in proc.stdout and "ratios:" not in proc.stdout, proc.stdout
    assert "numpy/torch" not in proc.stdout and "training time (s)" in proc.stdout, proc.stdout
    run_dir = only_run_dir(out)
    summary = (run_dir / "summary.md").read_text()
    assert "no torch row" not in summary and "numpy/torch" not in summary, summary
    assert re.search(r"^\| training time \(s\) +\| +[0-9.]+ \|$", summary, re.M), summary  # one value, no ratio
    assert "No ratio columns: a ratio needs two backends" in summary
    assert json.loads((run_dir / "plan.json").read_text())["options"]["reference"] is None
    assert "numpy/torch" not in (run_dir / "index.html").read_text()


def _note_pid(path: Path, draw: bool) -> bool:
    """A stand-in plot job: writes which process ran it; returns whether it 'drew'."""
    path.write_text(str(os.getpid()))
    if path.name == "boom.txt":
        raise ValueError("cannot draw boom")
    return draw


def test_render_draws_in_other_processes_and_keeps_job_order(tmp_path: Path):
    jobs = [(_note_pid, (tmp_path / f"{i}.txt", i % 3 == 0)) for i in range(7)]
    assert render(jobs, processes=2, in_process_up_to=0) == [True, False, False, True, False, False, True]
    pids = {(tmp_path / f"{i}.txt").read_text() for i in range(7)}
    assert str(os.getpid()) not in pids and 1 <= len(pids) <= 2
    assert render(jobs[:2], processes=1, in_process_up_to=0) == [True, False]  # one process: drawn here
    assert (tmp_path / "1.txt").read_text() == str(os.getpid())
    (tmp_path / "1.txt").unlink()
    assert render(jobs[:2], processes=2) == [True, False]  # a few figures: here too, no pool to start
    assert (tmp_path / "1.txt").read_text() == str(os.getpid())
    with pytest.raises(ValueError, match="cannot draw boom"):  # a failing figure is not swallowed
        render([*jobs[:2], (_note_pid, (tmp_path / "boom.txt", True))], processes=2, in_process_up_to=0)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no process affinity on this platform")
def test_render_starts_no_pool_where_the_process_may_use_one_core(tmp_path: Path):
    """Pinned to one core (a test lane, taskset, a container's cpuset), drawing processes would share it and
    each import matplotlib first: the figures are drawn here, whatever the machine's core count."""
    jobs = [(_note_pid, (tmp_path / f"{i}.txt", True)) for i in range(3)]
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(allowed)})
    try:
        assert render(jobs, in_process_up_to=0) == [True] * 3
    finally:
        os.sched_setaffinity(0, allowed)
    assert {(tmp_path / f"{i}.txt").read_text() for i in range(3)} == {str(os.getpid())}


HELD = threading.Lock()  # held by another thread of the test process while the figures are drawn


def _draw_under_lock(path: Path) -> bool:
    """A plot job that takes a module lock, as matplotlib's, logging's or gRPC's code may."""
    with HELD:
        path.write_text(str(os.getpid()))
    return True


@pytest.mark.timeout(120)
def test_render_draws_while_another_thread_of_the_driver_holds_a_lock(tmp_path: Path):
    """A driver with other threads (Ray's core worker under --executor ray) must not fork its drawing
    processes from itself: a child forked while a lock is held inherits it held and waits forever."""
    release = threading.Event()
    holder = threading.Thread(target=lambda: (HELD.acquire(), release.wait(), HELD.release()), daemon=True)
    holder.start()
    while not HELD.locked():
        time.sleep(0.01)
    try:
        jobs = [(_draw_under_lock, (tmp_path / f"{i}.txt",)) for i in range(3)]
        assert render(jobs, processes=2, in_process_up_to=0) == [True] * 3
    finally:
        release.set()
    assert str(os.getpid()) not in {(tmp_path / f"{i}.txt").read_text() for i in range(3)}


# --------------------------------------------------------------------------- N backends, --reference

REPO = Path(__file__).resolve().parents[1]
BIG_MODELS = REPO / "results" / "reference" / "20261124-134454-2a92-bigmodels"  # a two-backend run of today
FOUR = ("torch", "keras", "keras-jax", "keras-torch")


@pytest.fixture
def four_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    """keras-jax and keras-torch in the registry (as the Keras engines add them), whatever this checkout has."""
    import dataclasses

    import backends

    for name, display in (("keras-jax", "Keras (JAX)"), ("keras-torch", "Keras (torch)")):
        if name not in backends.BACKENDS:
            info = dataclasses.replace(backends.BACKENDS["keras"], name=name, display=display)
            monkeypatch.setitem(backends.BACKENDS, name, info)


def n_records(speeds: dict[str, float], task: str = "t") -> list[dict]:
    """One ok row per backend, listed in reverse (the report must not follow the records' order)."""
    return [
        {**rec(b, 0, train_s=100 / v, throughput_img_s=v, test_acc=0.9, epoch_s_min=0.9, epoch_s_max=1.1), "task": task}
        for b, v in reversed(speeds.items())
    ]


def test_four_backends_in_registry_order_with_one_ratio_column_each(four_backends):
    df = table(n_records({"torch": 100.0, "keras": 50.0, "keras-jax": 80.0, "keras-torch": 200.0}))
    sbs = side_by_side(df, "t").set_index("metric")
    assert list(sbs.columns) == [*FOUR, "keras/torch", "keras-jax/torch", "keras-torch/torch"]
    thr = sbs.loc["steady throughput (img/s)"]
    assert thr["keras-jax"] == 80.0 and thr["keras-torch/torch"] == pytest.approx(2.0)
    assert thr["keras/torch"] == pytest.approx(0.5) and thr["keras-jax/torch"] == pytest.approx(0.8)
    text = markdown_table(side_by_side(df, "t", formatted=True))
    head = text.splitlines()[0]
    for a, b in (
        ("PyTorch", "Keras (TF)"),
        ("Keras (TF)", "Keras (JAX)"),
        ("Keras (JAX)", "Keras (torch)"),
        ("Keras (torch)", "keras/torch"),
        ("keras/torch", "keras-jax/torch"),
    ):
        assert head.index(a) < head.index(b), head  # display labels in registry order, then the ratios
    assert re.search(r"steady throughput \(img/s\) .*\| +0\.500 \| +0\.800 \| +2\.000 \|$", text, re.M), text


def test_reference_keras_divides_every_other_backend_by_keras(four_backends):
    df = table(n_records({"torch": 100.0, "keras": 50.0, "keras-jax": 80.0}))
    sbs = side_by_side(df, "t", reference="keras").set_index("metric")
    assert list(sbs.columns) == ["torch", "keras", "keras-jax", "torch/keras", "keras-jax/keras"]
    assert sbs.loc["steady throughput (img/s)", "torch/keras"] == pytest.approx(2.0)
    assert sbs.loc["training time (s)", "keras-jax/keras"] == pytest.approx((100 / 80) / (100 / 50))
    out = terminal_summary(df, reference="keras")
    assert out.splitlines()[0].startswith("ratios: <backend>/keras") and "torch/keras" in out


def test_without_reference_the_first_backend_the_run_has_is_the_reference(four_backends):
    assert reference_of(["keras-jax", "keras", "torch"]) == "torch"  # the registry's first, whatever the order
    assert reference_of(["keras-torch", "keras-jax"]) == "keras-jax"  # torch not run: a backend that ran
    assert reference_of(["keras-jax"], "torch") == "torch"  # --reference named: kept, run or not
    assert reference_of([]) == next(iter(__import__("backends").BACKENDS))


def test_a_one_backend_run_reports_no_ratio_column_and_says_why(tmp_path: Path, four_backends):
    for r in n_records({"keras": 50.0}):
        append_record(tmp_path, r)
    write_reports(tmp_path)
    summary = (tmp_path / "summary.md").read_text()
    assert "keras/torch" not in summary and "no torch row" not in summary, summary
    assert "No ratio columns: a ratio needs two backends, and this run has Keras (TF)'s rows alone" in summary
    assert "Ratios are each backend's median" not in summary
    assert "A ratio cell is marked" not in (tmp_path / "index.html").read_text()  # no ratio cell to read
    two = tmp_path / "two"
    two.mkdir()
    for r in n_records({"keras": 50.0, "keras-jax": 100.0}):
        append_record(two, r)
    write_reports(two)  # torch not run: the other backend against the registry's first that ran
    summary = (two / "summary.md").read_text()
    assert re.search(r"^\| training time \(s\) +\| +2\.00 \| +1\.00 \| +0\.500 \|$", summary, re.M), summary
    assert "keras-jax/keras" in summary and "no torch row" not in summary
    assert "divided by Keras (TF)'s" in summary
    assert "A ratio cell is marked" in (two / "index.html").read_text()


def test_a_reference_without_an_ok_row_says_why_in_each_ratio_cell(tmp_path: Path):
    rows = [
        *n_records({"torch": 100.0, "keras": 50.0}, task="fine"),
        rec("torch", 0, status="failed", error="out of memory") | {"task": "ref-failed"},
        *n_records({"keras": 50.0}, task="ref-failed"),
        *n_records({"keras": 50.0}, task="no-ref"),
    ]
    df = table(rows)
    fine = side_by_side(df, "fine", formatted=True).set_index("metric")
    assert fine.loc["training time (s)", "keras/torch"] == "2.000"  # 100/50 s against 100/100 s
    failed = side_by_side(df, "ref-failed", formatted=True)
    assert set(failed["keras/torch"]) == {"torch failed"} and set(failed["torch"]) == {"-"}
    assert side_by_side(df, "ref-failed").set_index("metric")["keras/torch"].isna().all()  # numbers: none
    assert set(side_by_side(df, "no-ref", formatted=True)["keras/torch"]) == {"no torch row"}
    for r in rows:
        append_record(tmp_path, r)
    write_reports(tmp_path)
    summary = (tmp_path / "summary.md").read_text()
    assert re.search(r"^\| training time \(s\) .*\| +torch failed \|$", summary, re.M), summary
    assert re.search(r"^\| training time \(s\) .*\| +no torch row \|$", summary, re.M), summary
    assert "- torch repeat 0: **failed**: out of memory" in summary


def test_an_old_two_backend_run_renders_the_same_cells_as_before():
    """The committed big-models run (torch + keras): every cell of the ResNet101 table and the model-comparison
    ratios as the two-backend report wrote them; only the column labels are the registry's display names."""
    records = latest_records(read_records(BIG_MODELS))
    df = table(records)
    sbs = side_by_side(df, "catsdogs-resnet101", formatted=True)
    assert list(sbs.columns) == ["metric", "torch", "keras", "keras/torch"]
    got = [" ".join(map(str, row)) for row in sbs.itertuples(index=False)]
    assert got == [
        "test accuracy 0.5000 0.5000 1.000",
        "test loss 0.7995 0.7609 0.952",
        "training time (s) 6.64 58.56 8.813",
        "steady epoch (s, median) 2.160 3.472 1.608",
        "steady throughput (img/s) 30 18 0.622",
        "headline throughput: timed images / window time (img/s, 95% CI) 30.0 18.8 0.626",
        "timed steps 4 4 1.000",
        "first epoch (s) 4.485 55.089 12.283",
        "first step (s) 0.868 52.179 60.112",
        "first-step overhead (s) 0.335 51.327 153.341",
        "model build (s) 0.526 2.035 3.873",
        "MFU 8.78% 6.01% 0.684",
        "inference (img/s) 399 185 0.464",
        "forward, explain batch (ms/img) 4.260 8.444 1.982",
        "Grad-CAM (ms/img) 4.732 8.424 1.780",
        "Grad-CAM / forward 1.11 1.00 0.898",
        "peak host RSS (MB) 1,852 2,605 1.406",
        "parameters 42,504,258 42,662,274 1.004",
    ]
    head = [c.strip() for c in markdown_table(sbs).splitlines()[0].split("|")[1:-1]]
    assert head == ["metric", "PyTorch", "Keras (TF)", "keras/torch"]
    models = sections(df, records)
    for line in (
        "| ResNet101 | PyTorch | 2.16 | 30.0 | 0.533 | 0.9 | 8.78% | 42,504,258 |",
        "| ConvNeXt-tiny | Keras (TF) | 3.57 | 17.9 | 0.893 | 23.2 | 3.13% | 27,821,666 |",
        "| ratio | PyTorch | Keras (TF) |",
        "| ConvNeXt-tiny / ResNet101, steady img/s | 1.74 | 0.95 |",
        "| keras / torch, steady img/s | 0.63 | 0.34 |",
        "| keras / torch, epoch time | 1.61 | 2.87 |",
    ):
        assert line in models, line


def test_order_labels_and_colours_come_from_the_registry(four_backends):
    assert ordered(["mxnet", "keras-torch", "torch", "alpha", "keras", "torch"]) == [
        "torch",
        "keras",
        "keras-torch",
        "alpha",
        "mxnet",
    ]
    assert [label(b) for b in (*FOUR, "mxnet")] == ["PyTorch", "Keras (TF)", "Keras (JAX)", "Keras (torch)", "mxnet"]
    assert [colour(b) for b in FOUR] == ["C0", "C1", "C2", "C3"]  # fixed per backend, whoever else is drawn
    assert colour("mxnet") == colour("mxnet") and colour("mxnet") not in {colour(b) for b in FOUR}


def plot_inputs(names: tuple[str, ...]) -> dict:
    """Small real arrays for every report figure, one entry per backend."""
    rng = np.random.default_rng(0)
    records, classes = [], ["cat", "dog"]
    for i, b in enumerate(names):
        r = rec(b, 0, throughput_img_s=100.0 + 10 * i, test_acc=0.6 + 0.05 * i, epoch_s_min=0.9, epoch_s_max=1.1)
        r["history"] = [{"epoch": e, "train_loss": 2.0 / (e + i), "test_acc": 0.5 + 0.05 * e} for e in (1, 2, 3)]
        pred = [0] * (8 - i) + [1] * (2 + i) + [0] * 3 + [1] * 7  # confusion [[8 - i, 2 + i], [3, 7]]
        m = transfer_metrics(np.eye(2, dtype=np.float32)[pred], np.array([0] * 10 + [1] * 10), classes, [0, 1], classes)
        r["transfer"] = [{"dataset": "cifar10", "source": "embedded:x", "classes": classes} | m]
        records.append(r)
    x = rng.uniform(0, 1, (3, 16, 16, 3)).astype(np.float32)
    maps = {
        b: {
            "x": x,
            "y_true": np.array([0, 1, 0]),
            "y_pred": np.array([0, i % 2, 1]),
            "classes": classes,
            "layer": "conv2",
            "gradcam": rng.uniform(0, 1, (3, 16, 16)),
            "saliency": rng.uniform(0, 1, (3, 16, 16)),
        }
        for i, b in enumerate(names)
    }
    topk = {
        b: {
            "test_acc": 0.8,
            "decouple_topk": [{"k": k, "rf_acc": 0.5 + k / 200 + i / 50, "logreg_acc": 0.6} for k in (10, 84)],
        }
        for i, b in enumerate(names)
    }
    fc = {
        b: {
            "fc_layers": ["fc1"],
            "act_fc1": rng.uniform(0, 1, (3, 8)),
            "classes": classes,
            "input_labels": np.array([0, 1, 0]),
        }
        for b in names
    }
    return {"records": records, "maps": maps, "topk": topk, "fc": fc}


@pytest.mark.parametrize("names", [("keras",), FOUR], ids=["one backend", "four backends"])
def test_every_report_figure_draws_one_or_four_backends(tmp_path: Path, four_backends, names):
    from bench.report.decouple_plots import plot_fc_activations, plot_topk
    from bench.report.explain_plots import plot_overlays
    from bench.report.figures import plot_bars, plot_curves
    from bench.report.transfer import plot_transfer

    got = plot_inputs(names)
    drawn = {
        "curves": plot_curves(got["records"], "t", tmp_path / "curves.png"),
        "bars": plot_bars(table(got["records"]), tmp_path / "bars.png"),
        "transfer": plot_transfer(got["records"], tmp_path / "transfer.png"),
        "gradcam": plot_overlays(got["maps"], "gradcam", "t", tmp_path / "gradcam.png"),
        "topk": plot_topk(got["topk"], "t", tmp_path / "topk.png"),
        "fc": plot_fc_activations(got["fc"], "t", tmp_path / "fc.png"),
    }
    assert all(drawn.values()), drawn
    sizes = {name: (tmp_path / f"{name}.png").stat().st_size for name in drawn}
    assert min(sizes.values()) > 5000, sizes


def test_summary_header_gives_the_wall_time_and_each_backends_measured_matmul_speed():
    from bench.core.record import new_record
    from bench.core.results import table
    from bench.report.text import speed_lines, summary_markdown

    how = "measured: best of 3 2048x2048 fp32 matmuls"
    recs = [
        new_record(task=t, backend=b, repeat=0, status="ok", peak_flops=f, peak_flops_source=how)
        for t, b, f in [("a", "torch", 70e9), ("b", "torch", 90e9), ("a", "keras", 60e9)]
    ]
    recs.append(
        new_record(
            task="c",
            backend="keras",
            repeat=0,
            status="ok",
            peak_flops=989e12,
            peak_flops_source="table: NVIDIA H100 (bf16)",
        )
    )
    df = table(recs)
    assert speed_lines(df, 451.4) == [
        "Wall time 7 min 31 s, from the first row to the reports (the command's start-up and plan before them not "
        "counted). Machine speed (the MFU peak, best of 3 2048x2048 fp32 matmuls): "
        "PyTorch 80 GFLOP/s, Keras (TF) 60 GFLOP/s."
    ]
    assert speed_lines(df.iloc[3:], None) == []  # a table peak is not a measurement of this machine
    # a tuned row in bf16 measured a bf16 matmul for its own MFU: its peak is not the machine's speed (the
    # 2026-12-05 AMD tune's summary said "PyTorch 524 GFLOP/s ... fp32 matmuls", the median of 204 and 844)
    bf16 = new_record(task="a.best", backend="torch", repeat=0, status="ok", peak_flops=844e9, precision="mixed_bf16",
                      peak_flops_source="measured: best of 3 2048x2048 mixed_bf16 matmuls")  # fmt: skip
    fp32 = [{**r, "precision": "fp32"} for r in recs[:1]]
    assert speed_lines(table([*fp32, bf16, *recs[1:3]]), None) == [
        "Machine speed (the MFU peak, best of 3 2048x2048 fp32 matmuls): PyTorch 80 GFLOP/s, Keras (TF) 60 GFLOP/s."
    ]
    assert "Wall time" not in summary_markdown(df, {"run_id": "r"})


def test_the_header_says_when_the_backends_own_matmuls_are_too_far_apart_for_their_mfu_to_compare():
    """Each row's MFU is read against its own framework's matmul. On the AVX-512 AMD EPYC, oneMKL's generic path
    (bench.core.blas) put torch's fp32 matmul at half of TensorFlow's: torch's MFU read twice as high for the same
    work. The committed AMD tune says so; the boundary is MFU_APART."""
    from bench.core.record import new_record
    from bench.core.results import read_records, table
    from bench.report.text import MFU_APART, apart_sentence, speed_lines

    amd = table(read_records(REPO / "results/reference/20261205-013320-329a-tune-cifar10-amd-floor"))
    (line,) = speed_lines(amd, None)
    assert line.endswith(
        "The backends' own matmuls differ 2.1x on this machine (Keras (torch) slowest, Keras (JAX) fastest), and "
        "each row's MFU is read against its own framework's: compare MFU within a backend, and the backends by img/s."
    )
    how = "measured: best of 3 2048x2048 fp32 matmuls"
    for fast, apart in [(80e9 * MFU_APART * 1.01, True), (80e9 * MFU_APART * 0.99, False)]:
        recs = [
            new_record(task="a", backend=b, repeat=0, status="ok", peak_flops=f, peak_flops_source=how)
            for b, f in [("torch", 80e9), ("keras", fast)]
        ]
        assert ("differ 1.5x" in speed_lines(table(recs), None)[0]) is apart
    assert apart_sentence({"torch": 80e9}) == []


def test_the_header_says_which_backends_mfu_peak_was_measured_on_a_machine_loaded_beyond_its_cores():
    """A peak measured while the node's load passed its cores reads low and MFU against it high (Keras at 77-89% on
    a loaded 2-core VM): summary.md's speed line names the backend and the load, its most loaded row's."""
    from bench.core.record import new_record
    from bench.core.results import table
    from bench.report.text import speed_lines

    peak = {"peak_flops": 80e9, "peak_flops_source": "measured: best of 3 2048x2048 fp32 matmuls", "node_cores": 2}
    recs = [
        new_record(task=t, backend=b, repeat=0, status="ok", peak_flops_load=load, **peak)
        for t, b, load in [("a", "torch", 1.2), ("a", "keras", 3.1), ("b", "keras", 7.7)]
    ]
    (line,) = speed_lines(table(recs), None)
    assert line.endswith(
        "MFU peak measured on a machine loaded beyond its cores (Keras (TF)'s at load 7.7 on 2 cores): the matmuls "
        "shared the cores, so that peak reads low and MFU against it high; read those rows by img/s."
    ), line
    calm = [{**r, "peak_flops_load": 1.5} for r in recs]
    assert "loaded beyond" not in speed_lines(table(calm), None)[0]
    old = [{k: v for k, v in r.items() if k != "peak_flops_load"} for r in recs]  # recorded before the field
    assert "loaded beyond" not in speed_lines(table(old), None)[0]


def test_the_overviews_throughput_values_stand_clear_of_their_whiskers_and_inside_the_frame(tmp_path, monkeypatch):
    """QA, 2026-12-06: each bar's value was written on its whisker's cap, the highest one on the axes' top edge too
    ("13,184" over a [7,014, 19,645] whisker, the frame and the 20,000 gridline through it)."""
    from bench.core.record import new_record
    from bench.report import figures

    drawn = []
    monkeypatch.setattr(figures, "save_figure", lambda fig, path, **kw: drawn.append(fig) or True)
    recs = [
        new_record(
            task="lenet", backend=b, repeat=0, status="ok", steady_img_s=v, steady_img_s_ci_lo=lo, steady_img_s_ci_hi=hi
        )
        for b, v, lo, hi in [("torch", 1616.9, 323.3, 9115.1), ("keras", 13183.8, 7013.7, 19645.0)]
    ]
    assert figures.plot_bars(table(recs), tmp_path / "plots" / "overview.png")
    (fig,) = drawn
    fig.canvas.draw()
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    labels = [t for t in ax.texts if t.get_text()]
    caps = [line for line in ax.lines if line.get_marker() == "_"]  # the whiskers' caps
    assert [t.get_text() for t in labels] == ["1,617", "13,184"] and len(caps) == 4
    for text in labels:
        box = text.get_window_extent(renderer)
        assert ax.bbox.y0 < box.y0 and box.y1 < ax.bbox.y1, (text.get_text(), box, ax.bbox)  # inside the frame
        for cap in caps:  # a cap under the value's width: its line not within 2 px of the text's box
            ((cx, cy),) = ax.transData.transform(cap.get_xydata())
            assert not (box.x0 <= cx <= box.x1 and box.y0 - 2 <= cy <= box.y1 + 2), (text.get_text(), box, cy)
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_the_overview_accuracy_axis_is_ranged_from_the_data_with_the_lab_figure_and_chance_when_near(
    tmp_path: Path, monkeypatch
):
    """QA, 2026-12-06: the accuracy panel's fixed 0-1 axis drew 98.2% and 98.5% as one height. Its range is the
    data's, padded; the lab's reported accuracy and chance level are drawn and kept in range where they are near
    the bars, left out where far (chance 10% beside 98%), and the title says the axis does not start at 0."""
    import matplotlib.pyplot as plt

    from bench.core.record import new_record
    from bench.report import figures

    drawn = []
    monkeypatch.setattr(figures, "save_figure", lambda fig, path, **kw: drawn.append(fig) or True)

    def accuracy_panel(rows):
        recs = [
            new_record(task=t, backend=b, repeat=0, status="ok", steady_img_s=1000.0, test_acc=a, n_classes=k, **kw)
            for t, b, a, k, kw in rows
        ]
        assert figures.plot_bars(table(recs), tmp_path / "overview.png")
        ax = drawn[-1].axes[1]
        marks = sorted(round(c.get_segments()[0][0][1], 4) for c in ax.collections)
        named = [t.get_text() for t in drawn[-1].legends[0].get_texts()][2:]  # after the two backends
        return ax.get_ylim(), (marks, named), ax.get_title()

    lab = {"reported_acc": 0.9843}
    (lo, hi), marks, title = accuracy_panel(
        [("mnist-lenet5", "torch", 0.982, 10, lab), ("mnist-lenet5", "keras", 0.985, 10, lab)]
    )
    assert 0.97 <= lo < 0.982 and 0.985 < hi <= 0.995  # 0.3 points apart: a tenth of the axis at least
    assert (0.985 - 0.982) / (hi - lo) > 0.1
    assert marks == ([0.9843], ["the lab's reported accuracy"])  # chance (0.1) far below: left out
    assert title == f"test accuracy (the axis starts at {lo:.3g}, not 0)"
    # a binary task at 62-65%: its 50% chance is near, drawn and in range
    (lo, hi), marks, _ = accuracy_panel([("catdog", "torch", 0.62, 2, {}), ("catdog", "keras", 0.647, 2, {})])
    assert 0.45 < lo < 0.5 < 0.647 < hi < 0.7 and marks == ([0.5], ["chance (one over the classes)"])
    # accuracies spread from chance up: the axis starts at 0, as before
    (lo, hi), _, title = accuracy_panel([("cifar", "torch", 0.12, 10, {}), ("mnist", "torch", 0.99, 10, {})])
    assert lo == 0.0 and 0.99 < hi <= 1.0 and title == "test accuracy"
    for fig in drawn:
        plt.close(fig)


def test_the_overview_of_many_tasks_keeps_every_task_name_and_value_apart(tmp_path: Path, monkeypatch):
    """QA, 2026-12-08: the zoo's 39 tasks side by side in two 5.5-inch charts: the names and the values overlapped
    into a blur. Beyond a few tasks the charts stand one above the other, as wide as their bars need."""
    import matplotlib.pyplot as plt

    from bench.core.record import new_record
    from bench.report import figures

    drawn = []
    monkeypatch.setattr(figures, "save_figure", lambda fig, path, **kw: drawn.append(fig) or True)
    tasks = [f"zoo-efficientnetv2_b{i}" for i in range(39)]
    recs = [
        new_record(task=t, backend=b, repeat=0, status="ok", steady_img_s=10.0 + i, test_acc=0.1, n_classes=10)
        for i, t in enumerate(tasks)
        for b in ("torch", "keras")
    ]
    assert figures.plot_bars(table(recs), tmp_path / "overview.png")
    fig = drawn[-1]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        boxes = [t.get_window_extent(renderer) for t in ax.get_xticklabels() if t.get_text()]
        assert len(boxes) == 39
        assert all(a.x1 <= b.x0 + 1 or a.y1 <= b.y0 for a, b in itertools.pairwise(boxes)), "task names overlap"
    values = [t.get_window_extent(renderer) for t in fig.axes[0].texts if t.get_text()]
    values = sorted(values, key=lambda b: b.x0)
    assert len(values) == 78 and all(a.x1 <= b.x0 + 1 for a, b in itertools.pairwise(values)), "values overlap"
    plt.close(fig)


def test_the_overview_puts_throughputs_a_thousand_fold_apart_on_a_log_axis(tmp_path: Path):
    """`bench all` puts LeNet-5 at ~8,000 img/s beside ResNet101 at ~15: on a linear axis its bars are invisible."""
    from bench.core.record import new_record
    from bench.report.figures import plot_bars, throughput_scale

    assert throughput_scale([8000.0, 15.0]) == "log" and throughput_scale([2000.0, 1500.0, 0.0]) == "linear"
    assert throughput_scale([]) == "linear" and throughput_scale([0.0]) == "linear"
    recs = [
        new_record(
            task=t,
            backend=b,
            repeat=0,
            status="ok",
            throughput_img_s=v,
            epoch_s_min=1.0,
            epoch_s_max=1.1,
            epoch_s_median=1.05,
            test_acc=0.9,
            n_train=int(v * 1.05),
            epochs=2,
        )
        for t, b, v in [("lenet", "torch", 8000.0), ("lenet", "keras", 7600.0), ("resnet", "torch", 15.0)]
    ]
    assert plot_bars(table(recs), tmp_path / "overview.png")
    assert (tmp_path / "overview.png").stat().st_size > 5000


def test_a_task_left_out_by_the_budget_says_its_data_was_not_loaded_and_links_no_curves(tmp_path: Path):
    """`bench all --budget` leaves a task out: its rows carry no data fields, which made the column floats
    ("5000.0 train") for every task and its header "from `nan`, nan train", with a link to curves never drawn."""
    why = "left out to fit the budget 5m00.0s: ..."
    left_out = {"dataset_source": None, "n_train": None, "n_test": None, "error": why}
    rows = [
        rec("torch", 0, train_s=10.0, test_acc=0.9, n_train=5000, n_test=1000),
        rec("keras", 0, train_s=12.0, test_acc=0.9, n_train=5000, n_test=1000),
        rec("torch", 0, status="skipped", task="big", **left_out),
        rec("keras", 0, status="skipped", task="big", **left_out),
    ]
    for r in rows:
        r["history"] = r["history"] if r["status"] == "ok" else None
        append_record(tmp_path, r)
    (tmp_path / "environment.json").write_text(json.dumps({"run_id": "x", "cores": 2}))
    write_reports(tmp_path)
    summary = (tmp_path / "summary.md").read_text()
    assert "dataset `mnist` from `embedded:x`, 5000 train / 1000 test, 2 epochs, batch 8" in summary
    assert "dataset `mnist` not loaded (no row ran), 2 epochs, batch 8" in summary and "nan" not in summary
    assert f"torch repeat 0: **skipped**: {why}" in summary
    assert "curves-t.png" in summary and "curves-big.png" not in summary
    assert not (tmp_path / "plots" / "curves-big.png").exists()
    page = (tmp_path / "index.html").read_text()
    assert "5000 train / 1000 test" in page and "not loaded (no row ran)" in page and "nan" not in page


def test_under_each_table_a_sentence_says_which_backend_trains_faster_and_how_sure():
    """``speed_verdicts``: the table's headline ratio, with the interval of a bootstrap over repeats and blocks of
    steps; the faster backend named first; "no significant difference" when the interval holds 1; nothing for
    a backend or a reference without step samples."""
    from bench.report.speedup import ONE_PROCESS, speed_verdicts

    rng = np.random.default_rng(3)

    def row(task: str, backend: str, level: float, repeat: int = 0, steps: bool = True) -> dict:
        rates = level * (1 + 0.03 * rng.standard_normal(120))
        return {
            "task": task,
            "backend": backend,
            "repeat": repeat,
            "status": "ok",
            "steady_img_s": float(len(rates) / (1 / rates).sum()) * 1.01,  # weighted by images: a bit off
            "step_img_s": [float(v) for v in rates] if steps else None,
        }

    records = [
        row("a", "torch", 100.0),
        row("a", "keras", 150.0),
        row("a", "keras-jax", 70.0),
        row("a", "keras-torch", 90.0, steps=False),  # an old record: no samples, no sentence
        row("b", "torch", 100.0),
        row("b", "keras", 100.5),
        row("c", "torch", 100.0, steps=False),  # no reference samples: the task gets none
        row("c", "keras", 200.0),
        {**row("a", "torch", 100.0), "status": "failed"},  # only ok rows count
    ]
    said = speed_verdicts(records, "torch")
    assert set(said) == {"a", "b"}
    keras, jax = said["a"]
    ratio = records[1]["steady_img_s"] / records[0]["steady_img_s"]  # the table's ratio, not the pooled steps'
    # one repeat each of 120 steps: the sentence names the bootstrap and says what is not in it
    keras = keras.removesuffix(f" (a bootstrap over blocks of consecutive steps; {ONE_PROCESS})")
    m = re.fullmatch(r"Keras \(TF\) ([\d.]+)x \[([\d.]+), ([\d.]+)\] faster than PyTorch", keras)
    assert m and m[1] == f"{ratio:.2f}" and float(m[2]) < ratio < float(m[3]) and float(m[3]) - float(m[2]) < 0.1
    assert re.fullmatch(
        r"PyTorch 1\.4\dx \[1\.\d\d, 1\.\d\d\] faster than Keras \(JAX\) \(a bootstrap .*; one process.*", jax
    ), jax
    (same,) = said["b"]
    assert same.startswith("no significant difference between Keras (TF) and PyTorch (1.00x [0.9")
    # a side of fewer than 20 timed steps (Keras's steps_per_execution 32): read by Student's t over its steps, and
    # its sentence says so, not only the best / default lines (QA, 2026-12-06)
    few = [row("d", "torch", 100.0), {**row("d", "keras", 150.0), "step_img_s": [150.0, 140.0, 160.0, 155.0]}]
    (short,) = speed_verdicts(few, "torch")["d"]
    assert short.endswith(f" (Student's t over the log step rates of a side of fewer than 20 steps; {ONE_PROCESS})")
    assert "bootstrap" not in short
    # two repeats of torch a process apart (100 and 130 img/s): the spread between processes widens the interval
    repeats = [row("a", "torch", 100.0), row("a", "torch", 130.0, repeat=1), row("a", "keras", 150.0)]
    two = speed_verdicts(repeats, "torch")
    lo, hi = map(float, re.findall(r"\[([\d.]+), ([\d.]+)\]", two["a"][0])[0])
    assert hi - lo > 0.2 and ONE_PROCESS in two["a"][0]  # keras still ran once
    both = speed_verdicts([*repeats, row("a", "keras", 150.0, repeat=1)], "torch")
    assert ONE_PROCESS not in both["a"][0]
    # several processes: the ratio of the processes' geometric means and its interval (Student's t over them), the
    # table's ratio of medians named beside it
    torch3 = [row("a", "torch", 100.0, repeat=k) for k in range(3)]
    keras = [row("a", "keras", level, repeat=k) for k, level in enumerate((145.0, 150.0, 160.0))]
    (line,) = speed_verdicts([*torch3, *keras], "torch")["a"]
    over = r"\(3 and 3 processes, the ratio of their geometric means, Student's t over them; the table's keras/torch, "
    m = re.fullmatch(
        r"Keras \(TF\) ([\d.]+)x \[([\d.]+), ([\d.]+)\] faster than PyTorch "
        + over
        + r"a ratio of medians over repeats: ([\d.]+)\)",
        line,
    )

    def geo(rows: list[dict]) -> float:
        return math.exp(np.mean([math.log(len(r["step_img_s"]) / sum(1 / v for v in r["step_img_s"])) for r in rows]))

    table = statistics.median(r["steady_img_s"] for r in keras) / statistics.median(r["steady_img_s"] for r in torch3)
    assert m and m[1] == f"{geo(keras) / geo(torch3):.2f}" and m[4] == f"{table:.3f}", line
    assert 1 < float(m[2]) < float(m[1]) < float(m[3]), line
    # one of three processes 80% off the others: the pooled steps said "Keras (TF) 1.30x [1.10, 2.00] faster"; three
    # processes this far apart say nothing for sure
    wild = [row("a", "keras", level, repeat=k) for k, level in enumerate((110.0, 112.0, 200.0))]
    (line,) = speed_verdicts([*torch3, *wild], "torch")["a"]
    assert line.startswith("no significant difference between Keras (TF) and PyTorch"), line


def test_a_speed_sentence_counts_a_stretch_timed_rows_stretches_as_stretches_not_processes():
    """A Keras/JAX row is timed in synchronised stretches, one per epoch, each a sample of its interval: run once
    beside a torch row run once, its sentence read "6 and 1 processes" (QA, 2026-12-06), where one process ran a
    side. Rows timed step by step keep the short "3 and 3 processes"."""
    from bench.report.speedup import speed_verdicts

    rng = np.random.default_rng(5)
    torch_rates = [float(v) for v in 100 * (1 + 0.03 * rng.standard_normal(60))]
    torch = {"task": "t", "backend": "torch", "repeat": 0, "status": "ok", "steady_img_s": 100.0}
    stretches = [150.0, 140.0, 155.0, 148.0, 152.0, 146.0]  # each stretch's rate, then its other 9 steps' entries
    jax = {"task": "t", "backend": "keras-jax", "repeat": 0, "status": "ok", "steady_img_s": 148.0}
    jax.update(step_img_s=[r for r in stretches for _ in range(10)], step_segments=[10] * 6)
    (line,) = speed_verdicts([{**torch, "step_img_s": torch_rates}, jax], "torch")["t"]
    assert "Keras (JAX)'s 6 synchronised stretches of 1 process and PyTorch's 1 process, the ratio" in line, line
    assert "6 and 1 processes" not in line
    two = [{**jax, "repeat": 1}, jax, *({**torch, "repeat": k, "step_img_s": torch_rates} for k in range(3))]
    (line,) = speed_verdicts(two, "torch")["t"]
    assert "Keras (JAX)'s 12 synchronised stretches of 2 processes and PyTorch's 3 processes, the ratio" in line, line


def test_a_speed_sentence_says_faster_only_beside_an_interval_that_excludes_one():
    """Whatever the repeats and the spread between processes, the verdict is decided on the interval it shows:
    the table's ratio of medians and the pooled steps' bootstrap moved apart with three processes a side, and
    "PyTorch 1.13x [0.94, 1.40] faster" stood under a `bench all --repeats 3` table (2026-12-05). Processes
    10% apart (uniform), the sides 0.6x to 1.6x apart: both verdicts come up."""
    from bench.report.speedup import speed_verdicts

    rng = np.random.default_rng(11)
    said = []
    for trial in range(40):
        records = []
        for backend, level in (("torch", 100.0), ("keras", 100.0 * rng.uniform(0.6, 1.6))):
            for k in range(int(rng.integers(1, 4))):
                rates = level * rng.uniform(0.9, 1.1) * (1 + 0.05 * rng.standard_normal(60))
                headline = float(len(rates) / (1 / rates).sum()) * rng.uniform(0.98, 1.02)
                steps = [float(v) for v in rates]
                records.append(
                    {
                        "task": "t",
                        "backend": backend,
                        "repeat": k,
                        "status": "ok",
                        "steady_img_s": headline,
                        "step_img_s": steps,
                    }
                )
        (line,) = speed_verdicts(records, "torch")["t"]
        lo = float(re.findall(r"\[([\d.]+), [\d.]+\]", line)[0])
        faster = not line.startswith("no significant difference")
        assert faster == (lo > 1.0) and faster == (" faster than " in line), (trial, line)
        said.append(faster)
    assert 5 < sum(said) < 35  # both verdicts were exercised


def test_rows_of_one_task_that_trained_on_different_data_are_said_above_its_table(tmp_path: Path):
    """A run resumed elsewhere before 2026-12-05 could finish a task on other data (QA): its summary and page
    say so above the table instead of putting the two trainings side by side as one comparison."""
    rows = [
        rec("torch", 0, train_s=10.0, dataset_source="file:/data/mnist.npz", n_train=20000),
        rec("keras", 0, train_s=20.0, dataset_source="embedded:sklearn-digits-28x28", n_train=1438),
    ]
    for r in rows:
        append_record(tmp_path, r)
    (tmp_path / "environment.json").write_text(json.dumps({"run_id": "x", "cores": 2}))
    write_reports(tmp_path)
    said = (
        "rows trained on different data, so their figures do not compare: file:/data/mnist.npz (20000 train) "
        "for torch; embedded:sklearn-digits-28x28 (1438 train) for keras."
    )
    assert f"**Warning**: {said}" in (tmp_path / "summary.md").read_text()
    assert f"<b>Warning</b>: {said}" in (tmp_path / "index.html").read_text()
    (tmp_path / "records.jsonl").unlink()  # one data source: no warning
    append_record(tmp_path, rows[0])
    append_record(tmp_path, {**rows[1], "dataset_source": "file:/data/mnist.npz", "n_train": 20000})
    write_reports(tmp_path)
    assert "different data" not in (tmp_path / "summary.md").read_text()


def test_a_note_says_which_rows_carry_it_unless_every_row_does(tmp_path: Path):
    """QA, 2026-12-05: one sentence three times under one table, with three figures and no backend named."""
    rows = [
        rec("torch", 0, notes="shared; torch's own"),
        rec("torch", 1, notes="shared; torch's own"),
        rec("keras", 0, notes="shared"),
        rec("keras", 1, notes="shared; the window was short"),
    ]
    for r in rows:
        append_record(tmp_path, r)
    (tmp_path / "environment.json").write_text(json.dumps({"run_id": "x", "cores": 2}))
    write_reports(tmp_path)
    summary = (tmp_path / "summary.md").read_text()
    notes = summary[summary.index("Notes:") :].splitlines()[1:4]
    assert notes == ["- shared", "- Keras (TF) repeat 1: the window was short", "- PyTorch: torch's own"]
    assert "<li>Keras (TF) repeat 1: the window was short</li>" in (tmp_path / "index.html").read_text()


def test_repeats_of_one_backend_that_ran_on_other_threads_or_executors_are_said():
    """QA, 2026-12-05: a --devices run resumed with --executor local pooled a repeat pinned to one core (1 thread)
    with one on the whole machine (2) into one median and one interval, and no line said so."""
    from bench.report.placement import placement_warnings

    rows = [
        rec("torch", 0, threads=1, executor="devices"),
        rec("torch", 1, threads=2, executor="local"),
        rec("keras", 0, threads=2, executor="local"),
        rec("keras", 1, threads=2, executor="local"),
    ]
    (line,) = placement_warnings(rows)
    assert line.startswith("- **repeats ran differently**: torch's repeats ran on different threads or executors")
    assert "repeat 0: 1 threads, devices, repeat 1: 2 threads, local" in line


def test_data_parallel_curves_are_named_and_marked_by_their_workers_and_mode(monkeypatch, tmp_path: Path):
    """Issue: a data-parallel row's curves were drawn in its backend's colour only, as a single-process row's are:
    a 2-worker curve could not be told from the 1-process one. Each curve is named ("PyTorch x2 (strong)") and has a
    marker per way of training, which the legend lists ("1 process", "x2 (strong)", ...)."""
    from bench.report import figures
    from bench.report.backends import label

    drawn = []
    monkeypatch.setattr(figures, "save_figure", lambda fig, path, **kw: drawn.append(fig) or True)
    history = [{"epoch": e, "seconds": 1.0, "train_loss": 1.0 / e, "test_acc": 0.5 + 0.05 * e} for e in (1, 2)]
    runs = [
        {**rec("torch", 0), "history": history},
        {**rec("torch", 0), "history": history, "workers": 2, "scaling_mode": "strong"},
        {**rec("torch", 0), "history": history, "workers": 2, "scaling_mode": "weak"},
    ]
    assert figures.plot_curves(runs, "t", tmp_path / "curves.png")
    (fig,) = drawn
    lines = fig.axes[1].get_lines()  # the test accuracy panel
    name = label("torch")
    assert [ln.get_label() for ln in lines] == [name, f"{name} x2 (strong)", f"{name} x2 (weak)"]
    assert len({ln.get_marker() for ln in lines}) == 3 and len({ln.get_color() for ln in lines}) == 1
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == [name, "1 process", "x2 (strong)", "x2 (weak)"]
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_a_tasks_curves_figure_is_given_its_data_parallel_rows_too(monkeypatch, tmp_path: Path):
    """The run's curves of a task are drawn from every row of it, a data-parallel row's included (the scaling tables
    keep those rows apart; their curves are marked by workers): before, write_reports handed it single-process rows."""
    from bench.core.results import append_record
    from bench.report import summary
    from bench.report.figures import plot_curves

    given: list[list[dict]] = []

    def render(jobs: list, **_: object) -> list[bool]:
        given.extend(args[0] for fn, args in jobs if fn is plot_curves)
        return [False] * len(jobs)

    monkeypatch.setattr(summary, "render", render)
    history = [{"epoch": 1, "seconds": 1.0, "train_loss": 1.0, "test_acc": 0.5}]
    append_record(tmp_path, {**rec("torch", 0), "history": history})
    append_record(tmp_path, {**rec("torch", 0), "history": history, "workers": 2, "scaling_mode": "strong"})
    summary.write_reports(tmp_path)
    (records,) = given
    assert sorted(str(r.get("workers")) for r in records) == ["2", "None"]


def test_training_curves_tick_whole_epochs_only(monkeypatch, tmp_path: Path):
    """A 3-epoch run's curves (the quick catdog-cnn) had ticks at epoch 1.25, 1.5, ...: every tick is a whole epoch."""
    from bench.report import figures

    drawn = []
    monkeypatch.setattr(figures, "save_figure", lambda fig, path, **kw: drawn.append(fig) or True)
    r = rec("torch", 0)
    r["history"] = [{"epoch": e, "seconds": 1.0, "train_loss": 1.0 / e, "test_acc": 0.5 + 0.05 * e} for e in (1, 2, 3)]
    assert figures.plot_curves([r], "t", tmp_path / "curves.png")
    (fig,) = drawn
    fig.canvas.draw()
    for ax in fig.axes[:2]:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_a_long_runs_curves_draw_about_twenty_markers_each_ends_included(monkeypatch, tmp_path: Path):
    """A 63-epoch run's curves drew a marker per epoch, a smear hiding the line and its style: each curve draws 20
    (matplotlib's markevery), its first and last point among them; a short run's curves mark every epoch."""
    import io
    import xml.etree.ElementTree as ET

    import matplotlib.pyplot as plt

    from bench.report import figures

    drawn = []
    monkeypatch.setattr(figures, "save_figure", lambda fig, path, **kw: drawn.append(fig) or True)

    def curves(epochs: int) -> tuple[list[int], list]:
        """(the markers each curve draws in the figure's SVG, a tick's single one left out; each curve's markevery)."""
        r = rec("torch", 0)
        r["history"] = [
            {"epoch": e, "seconds": 1.0, "train_loss": 1.0 / e, "test_acc": 0.9 - 0.5 / e} for e in range(1, epochs + 1)
        ]
        assert figures.plot_curves([r], "t", tmp_path / "curves.png")
        fig = drawn.pop()
        svg = io.BytesIO()
        fig.savefig(svg, format="svg")
        lines = fig.axes[0].get_lines() + fig.axes[1].get_lines() + fig.axes[2].get_lines()
        plt.close(fig)
        marks = [
            sum(1 for u in g.iter() if u.tag.endswith("}use"))
            for g in ET.fromstring(svg.getvalue()).iter()
            if g.get("id", "").startswith("line2d_")
        ]
        return sorted(m for m in marks if m > 1), [ln.get_markevery() for ln in lines]

    drawn_marks, every = curves(63)
    assert drawn_marks == [20, 20, 20]  # the loss, the accuracy and the accuracy against seconds
    assert all(m[0] == 0 and m[-1] == 62 and len(m) == 20 for m in every)
    assert curves(12) == ([12, 12, 12], [None, None, None])


def _time_panel(monkeypatch, tmp_path: Path, runs: list[dict]):
    """The curves figure's third panel (test accuracy against training seconds), drawn from ``runs``."""
    from bench.report import figures

    drawn = []
    monkeypatch.setattr(figures, "save_figure", lambda fig, path, **kw: drawn.append(fig) or True)
    assert figures.plot_curves(runs, "t", tmp_path / "curves.png")
    (fig,) = drawn
    assert len(fig.axes) == 3
    return fig, fig.axes[2]


def test_accuracy_against_training_seconds_sums_the_epochs_and_draws_the_tasks_target(monkeypatch, tmp_path: Path):
    """The time-to-train view: each curve's x is its epochs' seconds summed up to the epoch (an epoch without a test
    figure counts its seconds, draws no point), its y the epoch's test accuracy; the record's target accuracy is a
    horizontal line labelled with its value. Each curve keeps its backend's colour, its repeat's line style."""
    import itertools

    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    runs = []
    for backend, repeat in (("torch", 0), ("keras", 0), ("torch", 1)):
        seconds = rng.uniform(0.5, 3.0, 4).tolist()
        history = [{"epoch": e + 1, "seconds": s, "train_loss": 1.0 / (e + 1)} for e, s in enumerate(seconds)]
        for e in (0, 2, 3):  # epoch 2 has no test figure
            history[e]["test_acc"] = float(rng.uniform(0.3, 0.95))
        runs.append({**rec(backend, repeat), "history": history, "target_acc": 0.8})
    fig, ax = _time_panel(monkeypatch, tmp_path, runs)
    target = [ln for ln in ax.get_lines() if ln.get_label().startswith("target")]
    curves = [ln for ln in ax.get_lines() if ln not in target]
    assert len(curves) == len(runs)
    for line, r in zip(curves, runs, strict=True):
        elapsed = list(itertools.accumulate(e["seconds"] for e in r["history"]))
        kept = [i for i, e in enumerate(r["history"]) if "test_acc" in e]
        assert list(line.get_xdata()) == pytest.approx([elapsed[i] for i in kept])
        assert list(line.get_ydata()) == pytest.approx([r["history"][i]["test_acc"] for i in kept])
        assert line.get_color() == colour(r["backend"])
    assert curves[0].get_linestyle() != curves[2].get_linestyle()  # torch's two repeats
    (line,) = target
    assert set(line.get_ydata()) == {0.8} and line.get_label() == "target 0.8"
    assert "target 0.8" in [t.get_text() for t in ax.texts]
    lo, hi = ax.get_ylim()
    assert lo < 0.8 < hi
    plt.close(fig)


def test_a_target_above_every_accuracy_is_in_view_with_room_for_its_label(monkeypatch, tmp_path: Path):
    """A data-parallel row of the reference run ended at 0.489 under its 0.5 target: the line sat on the panel's top
    edge, its label cut through by it. The panel now reaches past the highest target."""
    import matplotlib.pyplot as plt

    history = [{"epoch": e, "seconds": 1.0, "train_loss": 1.0 / e, "test_acc": 0.40 + 0.02 * e} for e in (1, 2, 3)]
    fig, ax = _time_panel(monkeypatch, tmp_path, [{**rec("torch", 0), "history": history, "target_acc": 0.5}])
    lo, hi = ax.get_ylim()
    assert hi - 0.5 > 0.05 * (hi - lo), (lo, hi)
    plt.close(fig)


def test_a_task_without_a_target_draws_no_target_line(monkeypatch, tmp_path: Path):
    """No ``target_acc`` (None, or 0: the spec's "none") on the records: the time panel has the curves alone."""
    import matplotlib.pyplot as plt

    history = [{"epoch": e, "seconds": 1.0 + e, "train_loss": 1.0 / e, "test_acc": 0.5 + 0.1 * e} for e in (1, 2)]
    runs = [{**rec("torch", 0), "history": history, "target_acc": None}, {**rec("keras", 0), "history": history}]
    runs[1]["target_acc"] = 0.0
    fig, ax = _time_panel(monkeypatch, tmp_path, runs)
    assert [ln.get_label() for ln in ax.get_lines()] == [label("torch"), label("keras")]
    assert len(ax.texts) == 0
    plt.close(fig)


def test_an_epoch_without_seconds_gives_no_time_curve():
    """An epoch without its seconds would shift every later point: no time series rather than a wrong one."""
    from bench.report.figures import time_series

    assert time_series([{"epoch": 1, "seconds": 2.0, "test_acc": 0.5}, {"epoch": 2, "test_acc": 0.6}]) == ([], [])
    assert time_series([{"epoch": 1, "seconds": 2.0, "test_acc": 0.5}, {"epoch": 2, "seconds": 0.5}]) == ([2.0], [0.5])


def test_a_one_epoch_task_reads_1_epoch_in_summary_page_and_lab_report_line(tmp_path: Path):
    """A task at one epoch (a student's quick copy of a big model's task, or a budget's fewest) read "1 epochs"
    in the task's header line of summary.md and index.html and in its lab-report line."""
    from bench.report.taskhead import epochs

    assert (epochs(1), epochs(5), epochs(None)) == ("1 epoch", "5 epochs", "? epochs")
    for b in ("torch", "keras"):
        r = rec(b, 0, train_s=10.0, test_acc=0.5, n_train=48, n_test=48, epochs=1, reported_acc=0.98)
        append_record(tmp_path, r | {"profile": "quick", "dataset_source": "file:/d/catsdogs.npz"})
    (tmp_path / "environment.json").write_text(json.dumps({"run_id": "x", "cores": 2}))
    write_reports(tmp_path)
    summary, page = (tmp_path / "summary.md").read_text(), (tmp_path / "index.html").read_text()
    assert "48 train / 48 test, 1 epoch, batch 8" in summary and "48 train / 48 test, 1 epoch, batch 8" in page
    assert "profile `quick` (1 epoch on 48 training images" in summary
    assert "1 epochs" not in summary + page


def test_what_each_backend_ran_as_is_said_under_its_table_and_in_the_terminal(tmp_path: Path):
    """QA, 2026-12-06: a tune's `TASK.best` table put PyTorch in bf16 and channels_last beside Keras in fp32 with 8
    steps per execution, and neither summary.md, the page nor the terminal said so under it (results.csv did).
    TF32 and cudnn.benchmark are said on a GPU only (a CPU has neither, whatever a framework's flag says)."""
    from bench.report.configuration import configuration_text

    cpu = dict(device="cpu (x86_64)", threads=2, train_s=1.0)
    rows = [
        rec("torch", 0, precision="mixed_bf16", compiled="eager", channels_last=True, tf32="matmul=False", **cpu),
        rec("keras", 0, precision="fp32", compiled="tf.function (no XLA)", steps_per_execution=8, tf32="True", **cpu),
    ]
    said = configuration_text(table(rows))
    assert said.startswith(
        "PyTorch: mixed_bf16, eager, channels_last, 2 thread(s); "
        "Keras (TF): fp32, tf.function (no XLA), 8 step(s) per execution, 2 thread(s)"
    ), said
    assert "different precisions" in said and "TF32" not in said
    for r in rows:
        append_record(tmp_path, r)
    write_reports(tmp_path)
    assert f"- **as run**: {said}" in (tmp_path / "summary.md").read_text()
    assert "<b>as run</b>: PyTorch: mixed_bf16" in (tmp_path / "index.html").read_text()
    gpu = [rec("torch", 0, precision="fp32", device="NVIDIA H100 80GB HBM3", tf32="matmul=False, cudnn=True")]
    gpu.append(rec("keras", 0, precision="fp32", device="NVIDIA H100 80GB HBM3", tf32="True"))
    on_gpu = configuration_text(table(gpu))
    assert "PyTorch: fp32, TF32 matmul=False, cudnn=True" in on_gpu and "Keras (TF): fp32, TF32 True" in on_gpu
    assert "different precisions" not in on_gpu
    assert configuration_text(table([rec("torch", 0, status="failed", precision="fp32")])) == ""
    # the fused optimiser (a torch knob) is said when on; off is torch's own choice, not a setting to read
    fused = [rec("torch", 0, precision="fp32", compiled="eager", fused_optimizer=v, **cpu) for v in (True, False)]
    assert configuration_text(table(fused[:1])) == "PyTorch: fp32, eager, 2 thread(s), fused optimiser"
    assert configuration_text(table(fused[1:])) == "PyTorch: fp32, eager, 2 thread(s)"


def test_the_terminal_says_what_each_backend_ran_as(tmp_path: Path, capsys):
    cpu = dict(device="cpu (x86_64)", threads=2, train_s=1.0, precision="fp32")
    for r in (rec("torch", 0, compiled="eager", **cpu), rec("keras", 0, steps_per_execution=8, **cpu)):
        append_record(tmp_path, r)
    from bench.run.cli import finish

    finish(tmp_path)
    out = capsys.readouterr().out
    assert "  as run: PyTorch: fp32, eager, 2 thread(s); Keras (TF): fp32, 8 step(s) per execution, 2 thread(s)" in out


def test_the_head_says_when_the_run_was_restricted_to_fewer_cores_than_the_machine_has(tmp_path: Path):
    """A `taskset -c 0` run on the 2-core VM read "AMD EPYC (2 cores, ...)", its rows on 1 thread each."""
    append_record(tmp_path, rec("torch", 0, train_s=1.0))
    env = {"run_id": "x", "cpu": "AMD EPYC", "cores": 2, "memory_gib": 23.5}
    for extra, words in (({}, "(2 cores, 23.5 GiB)"), ({"usable_cores": 1}, "(2 cores, this run on 1 of them")):
        (tmp_path / "environment.json").write_text(json.dumps(env | extra))
        write_reports(tmp_path)
        assert f"Machine: AMD EPYC {words}" in (tmp_path / "summary.md").read_text()
        assert f"AMD EPYC {words}" in (tmp_path / "index.html").read_text()


def test_the_tables_transfer_rows_name_their_target_and_that_others_are_in_the_section(tmp_path: Path):
    """QA, 2026-12-08: with two [[transfer]] targets the table's "transfer acc (all classes)" was the first one's,
    named nowhere; the second was in the Cross-dataset transfer section alone."""
    classes = ["cat", "dog"]
    m = transfer_metrics(np.eye(2, dtype=np.float32)[[0, 1, 1, 1]], np.array([0, 0, 1, 1]), classes, [0, 1], classes)
    for b in ("torch", "keras"):
        r = rec(b, 0, train_s=1.0, transfer_acc=m["acc"], transfer_acc_restricted=m["acc_restricted"])
        r.update(transfer_dataset="cifar10", transfer_targets=2)
        r["transfer"] = [{"dataset": d, "source": "embedded:x", "classes": classes} | m for d in ("cifar10", "mnist")]
        append_record(tmp_path, r)
    write_reports(tmp_path)
    summary = (tmp_path / "summary.md").read_text()
    assert re.search(r"\| transfer acc \(all classes\) -> cifar10 \(the first of 2 targets\) +\| +0\.7500 +\|", summary)
    assert "transfer acc (mapped classes) -> cifar10 (the first of 2 targets)" in summary
    one = side_by_side(table([{**r, "transfer_targets": 1} for r in read_records(tmp_path)]), "t")
    assert "transfer acc (all classes) -> cifar10" in set(one.metric)
    assert one.attrs["columns"][list(one.metric).index("transfer acc (all classes) -> cifar10")] == "transfer_acc"


def test_rows_run_at_two_commits_are_said_at_the_head(tmp_path: Path):
    """QA, 2026-12-08: a run resumed after a commit held rows of two commits; summary.md named the first alone."""
    append_record(tmp_path, rec("torch", 0, train_s=1.0, git_commit="434a117"))
    append_record(tmp_path, rec("keras", 0, train_s=1.0, git_commit="22cd63e"))
    (tmp_path / "environment.json").write_text(json.dumps({"run_id": "x", "cpu": "AMD EPYC", "git_commit": "434a117"}))
    write_reports(tmp_path)
    text = (tmp_path / "summary.md").read_text()
    assert (
        "Warning: the rows ran at 2 commits (resumed on other code; the run started at 434a117): 434a117: t / PyTorch; "
        "22cd63e: t / Keras (TF)." in text
    ), text[:800]
    (tmp_path / "records.jsonl").unlink()
    append_record(tmp_path, rec("torch", 0, train_s=1.0, git_commit="434a117"))
    append_record(tmp_path, rec("keras", 0, train_s=1.0, git_commit="434a117"))
    write_reports(tmp_path)
    assert "ran at 2 commits" not in (tmp_path / "summary.md").read_text()


def test_a_run_without_its_environment_json_says_the_machine_was_not_recorded(tmp_path: Path):
    """QA, 2026-12-08: with environment.json missing or invalid, summary.md read "Machine: None (None cores, None
    GiB), GPU: none; Python None; commit None." and "Packages: ."."""
    append_record(tmp_path, rec("torch", 0, train_s=1.0))
    for env in (None, "{not json", json.dumps({"run_id": "x", "cpu": "AMD EPYC"})):
        if env is None:
            (tmp_path / "environment.json").unlink(missing_ok=True)
        else:
            (tmp_path / "environment.json").write_text(env)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RunFileWarning)  # the invalid one is warned of as it is read
            write_reports(tmp_path)
        text = (tmp_path / "summary.md").read_text()
        assert "None" not in text.split("\n## ", 1)[0], text[:600]
        if env is None or env.startswith("{not"):
            assert "Machine: not recorded (the run's environment.json is missing or unreadable)." in text
            assert "Packages: not recorded." in text
        else:
            assert "Machine: AMD EPYC (? cores, ? GiB), GPU: none; Python not recorded; commit not recorded." in text


def test_the_fc_activations_title_fits_a_one_layer_figure(tmp_path: Path, monkeypatch):
    """QA, 2026-12-06: cifar10-cnn has one fully connected layer before its head, so its figure is one panel (6
    inches) wide, and its title read "10-cnn: fully connected activations (one test image per class, the same in
    every back", cut at both ends. The title fits the figure."""
    from bench.report import decouple_plots

    drawn = []
    monkeypatch.setattr(decouple_plots, "_save", lambda fig, path: drawn.append(fig))
    assert decouple_plots.plot_fc_activations(plot_inputs(("torch", "keras"))["fc"], "cifar10-cnn", tmp_path / "f.png")
    (fig,) = drawn
    fig.canvas.draw()
    title = fig._suptitle
    box = title.get_window_extent(fig.canvas.get_renderer())
    assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1, (title.get_text(), box, fig.bbox)
    assert "cifar10-cnn: fully connected activations" in title.get_text()
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_a_speed_sentence_whose_rows_ran_on_a_machine_loaded_beyond_its_cores_says_so():
    """QA, 2026-12-06: the full mnist-lenet5 recipe on the shared 2-core VM read "Keras (TF) 9.26x [6.01, 12.53]
    faster than PyTorch" (the idle Xeon reference: PyTorch the faster), its rows timed at load 4.1 and 5.0 on 2
    cores, and nothing under the table said so. The sentence names each loaded side's load; within the cores it
    says nothing of load."""
    from bench.report.speedup import speed_verdicts

    def row(backend: str, level: float, load: float) -> dict:
        rates = [level * (1 + 0.01 * (i % 5)) for i in range(60)]
        return {
            "task": "a",
            "backend": backend,
            "repeat": 0,
            "status": "ok",
            "steady_img_s": level,
            "step_img_s": rates,
            "load_avg_1m_end": load,
            "node_cores": 2,
        }

    (busy,) = speed_verdicts([row("torch", 2000.0, 4.1), row("keras", 19000.0, 5.03)], "torch")["a"]
    assert busy.startswith("Keras (TF) 9.50x")
    assert busy.endswith(
        "; timed on a machine loaded beyond its cores (Keras (TF) at load 5.0 on 2 cores, PyTorch at load 4.1 on 2 "
        "cores): the ratio may be the machine's)"
    ), busy
    (one,) = speed_verdicts([row("torch", 2000.0, 1.9), row("keras", 19000.0, 3.5)], "torch")["a"]
    assert "(Keras (TF) at load 3.5 on 2 cores)" in one and "PyTorch at" not in one
    (quiet,) = speed_verdicts([row("torch", 2000.0, 2.2), row("keras", 1900.0, 2.9)], "torch")["a"]
    assert "load" not in quiet
    # under the load line, another process on a share of a row's cores (placement.OthersOnCores) is named
    shared = {**row("keras", 1900.0, 1.3), "others_cpu_pct": 38.4}
    (beside,) = speed_verdicts([{**row("torch", 2000.0, 1.2), "others_cpu_pct": 2.0}, shared], "torch")["a"]
    assert beside.endswith(
        "; timed on a busy machine (Keras (TF) with others using 38% of the cores): the ratio may be the machine's)"
    ), beside
    (calm,) = speed_verdicts([row("torch", 2000.0, 1.2), {**shared, "others_cpu_pct": 19.0}], "torch")["a"]
    assert "busy" not in calm and "others" not in calm


def test_report_names_a_folder_that_is_no_run_before_any_link_inside_it_and_refuses_a_reference_with_no_rows(
    clean_env, tmp_path: Path
):
    """QA, 2026-12-07: `report` on a folder that is no run blamed a symbolic link inside it ("refused: ... is a
    symbolic link"), and `report RUN --reference keras-jax` on a torch and keras run wrote a summary whose every
    ratio read "no keras-jax row" (`run` refuses such a reference). Both are one line, exit 2, nothing written."""
    import shutil

    from tests.conftest import run_cli

    other = tmp_path / "other"
    other.mkdir()
    (other / "link").symlink_to("/etc/hostname")
    proc = run_cli(["report", str(other)], clean_env)
    assert proc.returncode == 2 and proc.stderr.strip() == (
        f"error: {other}: not a run directory ({other}: no records.jsonl in it)"
    ), proc.stderr
    run = tmp_path / "run"
    shutil.copytree(REPO / "results" / "reference" / "20261124-105144-9bcb", run)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    proc = run_cli(["report", str(run), "--reference", "keras-jax"], clean_env)
    assert proc.returncode == 2 and proc.stderr.strip() == (
        "error: --reference keras-jax: the run has no keras-jax row (its backends: torch, keras), so every ratio "
        "would read 'no keras-jax row': name one of them"
    ), proc.stderr
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    assert run_cli(["report", str(run), "--reference", "keras"], clean_env).returncode == 0


def test_report_of_a_run_killed_before_its_first_record_says_it_is_incomplete_and_how_to_finish_it(
    clean_env, tmp_path: Path
):
    """QA, 2026-12-07: a run killed (-9) before its first row ended keeps plan.json and a state.json saying
    "running", and `--resume` finishes it; `report` called it "not a run directory (no records.jsonl in it)". It
    says the run is incomplete, how far (0 of its planned rows) and the line that finishes it; nothing is written."""
    from tests.conftest import run_cli

    run = tmp_path / "20261207-101010-k9k9"
    run.mkdir()
    (run / "plan.json").write_text(json.dumps({"tasks": [{"name": "mnist-lenet5"}], "options": {}}))
    (run / "state.json").write_text(json.dumps({"planned": 4, "state": "running", "command": "run"}))
    proc = run_cli(["report", str(run)], clean_env)
    assert proc.returncode == 2 and proc.stderr == (
        f"error: {run}: incomplete (running): 0 of 4 rows recorded; finish it with "
        f"`python -m bench run --resume {run}`; nothing to report\n"
    ), proc.stderr
    assert sorted(p.name for p in run.iterdir()) == ["plan.json", "state.json"]


def test_report_of_damaged_records_says_the_file_lost_rows_and_an_empty_one_overwrites_no_report(
    clean_env, tmp_path: Path
):
    """QA, 2026-12-07: a complete run's records.jsonl cut by its last line read "**This run is incomplete
    (complete): 3 of 4 runs recorded.**", and emptied, "0 of 4", exit 0, its good results.csv and summary.md
    overwritten by a header-only CSV. The notice says the file lost rows of a complete run; an empty or unreadable
    records.jsonl is refused (exit 2, naming the file) and the reports written from good records are kept."""
    import shutil

    from bench.report.text import incomplete_notice
    from tests.conftest import run_cli

    run = tmp_path / "run"
    shutil.copytree(REPO / "results" / "reference" / "20261124-105144-9bcb", run)
    records = run / "records.jsonl"
    lines = records.read_bytes().splitlines(keepends=True)
    records.write_bytes(b"".join(lines[:-1]))
    notice = incomplete_notice(run, table(latest_records(read_records(run))))
    assert notice.startswith(
        f"**{records.name} holds 5 of the 6 rows this complete run recorded: the file was cut or edited.**"
    ), notice
    assert "(complete)" not in notice
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != "records.jsonl"}
    for damaged in (b"", b"not json\n{\n"):
        records.write_bytes(damaged)
        proc = run_cli(["report", str(run)], clean_env)
        assert proc.returncode == 2 and proc.stdout == "", proc.stdout + proc.stderr
        assert proc.stderr.splitlines()[-1] == (
            f"error: {run}: {records} holds no readable record of the 6 rows this complete run recorded: the file was "
            "emptied, cut or edited; nothing reported (its reports are left as they were)"
        ), proc.stderr
        assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != "records.jsonl"} == before


def test_report_of_a_file_says_it_is_a_file_not_no_such_folder(clean_env, tmp_path: Path):
    """QA, 2026-12-07: `bench report FILE` said "no such folder" of a file that is there."""
    from tests.conftest import run_cli

    afile = tmp_path / "summary.md"
    afile.write_text("x")
    proc = run_cli(["report", str(afile)], clean_env)
    assert proc.returncode == 2 and proc.stderr == f"error: {afile}: is a file, not a run folder\n", proc.stderr
