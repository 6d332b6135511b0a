"""The history dashboard's chart data, without a browser: what each chart is called and the time axis it gets.

tests/test_pages_browser.py opens the page itself; these check the data it is drawn from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from bench.core.metric_table import TABLE
from bench.history import dashboard, store
from bench.history.check import Thresholds, check
from bench.history.dashboard import MIN_SPAN, chart_data, time_axis
from bench.history.metrics import BY_NAME, METRICS
from bench.report import compare
from bench.report.tables import WORDS
from tests.history_runs import MACHINE, make_run

AT = pd.Timestamp("2026-12-06 02:55:43.9995", tz="UTC")  # the QA's one run


def test_each_figure_has_one_name_the_words_summary_md_gives_it():
    """QA, 2026-12-06: the history called the headline (``steady_img_s``) "steady step throughput", easy to read as
    summary.md's "median step throughput", another figure. The history and `bench compare` name every figure
    summary.md's table shows with the table's words, and no two figures share a name."""
    words = {m.column: m.words for m in TABLE}
    assert len(set(words.values())) == len(words)
    shown = [m for m in METRICS if m.column in words]
    assert {m.column: m.words for m in shown} == {m.column: words[m.column] for m in shown}
    assert {m.column: m.words for m in compare.METRICS} == {m.column: words[m.column] for m in compare.METRICS}
    assert BY_NAME["steady_img_s"].words.startswith("headline throughput")
    assert BY_NAME["steady_img_s"].words != words["median_step_img_s"]
    others = [m.words for m in METRICS if m.column not in words]  # scaling efficiency: the scaling section's words
    assert others == ["scaling efficiency"] and not set(others) & set(words.values())


def span(axis: dict) -> tuple[pd.Timestamp, pd.Timestamp]:
    lo, hi = axis["range"]
    return pd.Timestamp(lo), pd.Timestamp(hi)


def test_one_run_gets_the_hour_around_it_as_runs_minutes_apart_do():
    """QA, 2026-12-06: plotly spanned one run's axis over a millisecond, ticked "02:55:43.9995"; then a day either
    side, in which a chart of one run (a data-parallel task's) showed its points as a line down the middle of two
    days. One instant is padded as runs minutes apart are: the least span in view, centred on it."""
    axis = time_axis([AT, AT])  # two series of one run: one instant
    lo, hi = span(axis)
    assert hi - lo == MIN_SPAN and AT - lo == hi - AT and axis.keys() == {"range"}
    close = [AT - timedelta(minutes=1), AT + timedelta(minutes=1)]
    assert span(time_axis(close)) == (lo, hi)  # the same window as two runs either side of it


def test_runs_minutes_apart_get_an_hour_and_runs_months_apart_their_span():
    """At least an hour in view, centred (plotly then ticks in minutes, never seconds); a span past that keeps
    plotly's ticks, padded by 5% each side so no point sits on the frame."""
    close = [AT, AT + timedelta(minutes=7), AT + timedelta(minutes=14)]
    lo, hi = span(time_axis(close))
    assert hi - lo == timedelta(hours=1) and lo - close[0] == close[-1] - hi and "dtick" not in time_axis(close)
    far = [AT, AT + timedelta(days=100)]
    assert span(time_axis(far)) == (AT - timedelta(days=5), AT + timedelta(days=105))
    assert time_axis(far).keys() == {"range"}


def test_each_chart_carries_its_label_and_a_time_axis_per_view(tmp_path: Path):
    """The chart data the page draws: summary.md's words for the metric, and an axis over each view's own runs
    (a run without a calibration is in the raw view only)."""
    hist = tmp_path / "history"
    for n, gflops in ((0, None), (3, 50.0)):
        fields = {"steady_img_s": 100.0 + n, "train_s": 10.0}
        store.add_run(hist, make_run(tmp_path, n, {("cnn", "torch"): fields}, gflops=gflops))
    notes, t = [], Thresholds()
    raw = check(store.load(hist), notes, t)
    normalised = check(store.load(hist, normalised=True), notes, t, normalised=True)
    charts = {(c["task"], c["metric"]): c for c in chart_data(raw, normalised)}
    assert charts.keys() == {("cnn", "steady_img_s"), ("cnn", "train_s")}
    steady = charts["cnn", "steady_img_s"]
    assert steady["label"] == WORDS["steady_img_s"] and charts["cnn", "train_s"]["label"] == WORDS["train_s"]
    first, last = (datetime(2026, 11, 1, tzinfo=UTC) + timedelta(days=n) for n in (0, 3))
    assert span(steady["xaxis"]["raw"]) == (first - timedelta(hours=3.6), last + timedelta(hours=3.6))
    assert span(steady["xaxis"]["normalised"]) == (last - MIN_SPAN / 2, last + MIN_SPAN / 2)  # one run: its hour


def test_a_backends_series_in_one_chart_are_drawn_apart(tmp_path: Path):
    """QA 2026-12-06: a batch size changed in the task file put a second PyTorch series (another task hash) in the
    chart, the same colour, line and dots as the first, the legend's words all that told them apart. Each series
    of a backend gets its own dash and marker; another backend's first series is drawn as any first one."""
    hist = tmp_path / "history"
    for n, batch in enumerate([128, 128, 16]):
        rows = {("cnn", b): {"steady_img_s": 100.0, "batch_size": batch} for b in ("torch", "keras")}
        store.add_run(hist, make_run(tmp_path, n, rows))
    raw = check(store.load(hist), [], Thresholds())
    (chart,) = [c for c in chart_data(raw, []) if c["metric"] == "steady_img_s"]
    styles = {(s["name"].split(" · ")[0], s["dash"], s["symbol"]) for s in chart["raw"]}
    assert len(chart["raw"]) == 4 and len(styles) == 4
    for backend in ("PyTorch", "Keras (TF)"):
        assert {(d, m) for b, d, m in styles if b == backend} == {("solid", "circle"), ("dash", "square")}


def test_a_point_timed_beyond_its_cores_says_so_in_its_hover(tmp_path: Path):
    """The dashboard's hover names a run's load where it was timed on a machine loaded beyond its cores, in bench
    history's words (tests/test_pages_browser.py hovers it); a run within its cores, or stored without it, says
    nothing."""
    hist = tmp_path / "history"
    for n, load in enumerate([None, 1.0, 7.7, 1.0]):
        fields = {"steady_img_s": 100.0} | ({"load_avg_1m_end": load, "node_cores": 2} if load else {})
        fields |= {"others_cpu_pct": 41.0} if n == 3 else {}  # under the load line, others on its cores
        store.add_run(hist, make_run(tmp_path, n, {("cnn", "torch"): fields}))
    raw = check(store.load(hist), [], Thresholds())
    (chart,) = [c for c in chart_data(raw, []) if c["metric"] == "steady_img_s"]
    (series,) = chart["raw"]
    assert series["load"] == ["", "", "timed at load 7.7 on 2 cores", "timed with others using 41% of the cores"]


def test_the_header_counts_the_regressed_series_of_each_view_as_bench_history_does(tmp_path: Path):
    """QA, 2026-12-07: the dashboard said "flagged as a regression in 4 series" where `bench history` and
    `bench history --normalised` each said 2: it added the two views. It counts each view as its command does."""
    hist = tmp_path / "history"
    for n, v in enumerate([100, 101, 99, 100, 100.5, 99.5, 50]):
        store.add_run(hist, make_run(tmp_path, n, {("cnn", "torch"): {"steady_img_s": float(v)}}))
    raw = check(store.load(hist), [], Thresholds())
    normalised = check(store.load(hist, normalised=True), [], Thresholds())
    counts = [sum(bool(s.newest and s.newest.regression) for s in view) for view in (raw, normalised)]
    assert counts[0] >= 1
    page = dashboard.build(hist).read_text()
    assert f"newest point flagged as a regression in {counts[0]} raw series and {counts[1]} normalised (" in page


def test_a_point_of_a_run_with_local_changes_says_so_in_its_hover(tmp_path: Path):
    """QA, 2026-12-07: a planted slowdown's runs (uncommitted changes: environment.json's commit "fcaf4d6-dirty") were
    hovered as "commit fcaf4d6", as the clean runs around them were, while bench history named the step "commit
    fcaf4d6 -> fcaf4d6-dirty". The hover says the dirty state as the history's text does."""
    hist = tmp_path / "history"
    for n, commit in enumerate(["abc1234", "abc1234-dirty", "abc1234"]):
        store.add_run(hist, make_run(tmp_path, n, {("cnn", "torch"): {"steady_img_s": 100.0}}, commit=commit))
    raw = check(store.load(hist), [], Thresholds())
    (chart,) = [c for c in chart_data(raw, []) if c["metric"] == "steady_img_s"]
    (series,) = chart["raw"]
    assert series["commit"] == ["abc1234", "abc1234-dirty", "abc1234"]


def test_series_of_one_cpu_on_two_machines_are_named_apart_in_the_legend(tmp_path: Path):
    """QA, 2026-12-07: a `taskset -c 0` run is another machine to the history ("..., the run on 1 of them"), but the
    legend named each machine by its CPU alone: "PyTorch · AMD EPYC" twice. A series' machine is named by its CPU and
    the words the chart's other machines lack; CPUs that differ are named as before."""
    hist = tmp_path / "history"
    held = {**MACHINE, "usable_cores": 1}
    for n, machine in enumerate([MACHINE, MACHINE, held, {**MACHINE, "cpu": "Other CPU"}]):
        store.add_run(hist, make_run(tmp_path, n, {("cnn", "torch"): {"steady_img_s": 100.0}}, machine=machine))
    raw = check(store.load(hist), [], Thresholds())
    (chart,) = [c for c in chart_data(raw, []) if c["metric"] == "steady_img_s"]
    assert sorted(s["name"] for s in chart["raw"]) == [
        "PyTorch · Other CPU",
        "PyTorch · Test CPU 9000",
        "PyTorch · Test CPU 9000, the run on 1 of them",
    ]
