"""One description of a results figure (``bench.core.metric_table``): the side-by-side table, `bench compare`, the
history and the recipe hash all read it, so a new results column is one ``Metric`` entry (docs/tasks.md#extending)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.core import metric_table
from bench.core.metric_table import BETTER, BY_COLUMN, COMPARED, FOLLOWED, METRICS, TABLE
from bench.core.recipe import recipe_of
from bench.core.record import KINDS, SIZE_FIELDS, new_record
from bench.core.results import append_record
from bench.history import metrics as history
from bench.history.rows import metric_rows
from bench.report import compare, tables
from bench.report.compare import Thresholds, load_run

NUMBERS = {name for name, kind in KINDS.items() if kind in ("number", "count")}


def test_every_figure_is_one_entry_of_numeric_record_columns():
    """One entry per column; the columns it names (its own, its interval's, its seconds') are numbers of the record,
    but for the spread the table computes itself (``tables.with_spread``)."""
    columns = [m.column for m in METRICS]
    assert len(columns) == len(set(columns)) == len(BY_COLUMN)
    assert set(columns) - NUMBERS == {"steady_img_s_spread_pct"}
    named = {c for m in METRICS for c in (m.lo, m.hi, m.seconds) if c}
    assert named <= NUMBERS
    assert all(m.kind in (*BETTER, metric_table.OTHER) for m in METRICS)


def test_the_table_shows_each_entry_with_a_format_in_the_registry_order_and_words(tmp_path: Path):
    """Two repeats holding every numeric column: the table's rows are the entries with a format, in order, named
    with their words, each value formatted as the entry says (the headline with its interval after it)."""
    record = {c: (1 if KINDS[c] == "count" else 1.0) for c in NUMBERS} | {"epochs": 2}  # a steady epoch to show
    df = pd.DataFrame([{**record, "task": "t", "backend": "torch", "status": "ok", "repeat": r} for r in (0, 1)])
    shown = tables.side_by_side(df, "t", formatted=True)
    assert list(shown.metric) == [m.words for m in TABLE] == [m.words for m in METRICS if m.fmt is not None]
    expected = [format(0.0 if m.column.endswith("spread_pct") else 1, m.fmt or "") for m in TABLE]
    assert all(cell.split(" ± ")[0] == want for cell, want in zip(shown.torch, expected, strict=True))
    assert {m.column: m.words for m in TABLE} == tables.WORDS


def test_compare_and_the_history_judge_the_entries_they_are_given_a_place_among_in_that_order():
    """``compared`` and ``followed`` are places 1..n, each figure judged there has a better direction, and the
    readers' lists are the registry's, not lists of their own."""
    for judged, place in ((COMPARED, "compared"), (FOLLOWED, "followed")):
        assert [getattr(m, place) for m in judged] == list(range(1, len(judged) + 1))
        assert all(m.higher_is_better is not None for m in judged)
    assert compare.METRICS is COMPARED and history.METRICS is FOLLOWED
    assert {m.column: m for m in FOLLOWED} == history.BY_NAME
    assert set(compare.SECONDS) == {m.column for m in COMPARED if m.seconds}


def test_what_moves_a_figure_is_said_by_its_entry_and_read_by_the_recipe_hash():
    """The history's hash of a figure (``MOVES_WITH``) keeps only the size fields its entry says move it."""
    assert all(set(m.moves_with) <= set(SIZE_FIELDS) for m in METRICS)
    record = {"epochs": 3, "n_train": 100, "batch_size": 32}
    for m in METRICS:
        kept = recipe_of(record, m.column)
        assert {f for f in SIZE_FIELDS if f in kept} == set(m.moves_with) and kept["batch_size"] == 32


def test_a_run_worse_by_half_in_every_compared_figure_is_a_regression_in_each_named_by_its_words(tmp_path: Path):
    """Each compared figure is judged in the direction its kind says: halved where higher is better, 1.5x where
    lower is, every one of them a regression (one repeat: by the threshold alone)."""
    base = {m.column: 10.0 if m.kind != metric_table.ACCURACY else 0.9 for m in COMPARED}
    worse = {c: v / 2 if BY_COLUMN[c].higher_is_better else v * 1.5 for c, v in base.items()}
    runs = []
    for name, values in (("a", base), ("b", worse)):
        (tmp_path / name).mkdir()
        append_record(
            tmp_path / name, new_record(run_id=name, task="t", backend="torch", repeat=0, status="ok", **values)
        )
        runs.append(load_run(tmp_path / name, tmp_path)[0])
    result = compare.compare(*runs, Thresholds())
    assert list(result.metric) == [m.words for m in COMPARED] and result.regression.all()


def test_the_history_follows_each_followed_entry_with_its_interval():
    """One ok record holding every followed figure and its interval's bounds: a history row per figure, in order,
    each with the bounds its entry names."""
    record = {m.column: 5.0 for m in FOLLOWED} | {c: b for m in FOLLOWED for c, b in ((m.lo, 4.0), (m.hi, 6.0)) if c}
    rows = metric_rows([record])
    assert [r["metric"] for r in rows] == [m.column for m in FOLLOWED]
    # a figure proportional to another (MFU) carries that one's interval, scaled: here the same 4-6 about 5
    assert [(r["lo"], r["hi"]) for r in rows] == [
        ((4.0, 6.0) if m.lo or m.interval_of else (None, None)) for m in FOLLOWED
    ]
    assert [history.normalising(m) for m in FOLLOWED if history.normalising(m) != history.PLAIN] == [
        history.RATE if m.kind == metric_table.RATE else history.TIME
        for m in FOLLOWED
        if m.kind in (metric_table.RATE, metric_table.TIME)
    ]


def test_the_ratio_sentences_say_which_way_is_better_as_the_kinds_do():
    """The note above the tables and the terminal's heading name each kind's figures on the side ``BETTER`` puts
    them (a larger ratio: better, or worse)."""
    said = {"accuracy": "accuracy", "rate": "img/s", "share": "MFU", "loss": "loss", "time": "seconds", "memory": "MB"}
    assert set(said) == set(BETTER)
    for kind, word in said.items():
        assert word in (tables.LARGER_BETTER if BETTER[kind] else tables.LARGER_WORSE), kind
    note = tables.ratio_note("torch", ["torch", "keras"])
    assert f"better in the {tables.LARGER_BETTER} rows, worse in the {tables.LARGER_WORSE} rows" in note
