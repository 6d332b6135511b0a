"""The scaling table's time-to-target speed-up: the 1-worker row's time to the task's target over each row's, that
1-worker row found as the row's efficiency finds it (``bench.measure.scaling.baseline``). Records built by hand."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from bench.core.metric_table import BY_COLUMN
from bench.core.record import new_record
from bench.core.results import table
from bench.measure import scaling
from bench.report import scaling as scaling_report
from bench.report.backends import label

TO_TARGET = BY_COLUMN["time_to_target_s"].words


def row(backend: str, mode: str, repeat: int, workers: int, seconds: float | None, **kw: Any) -> dict[str, Any]:
    rec = new_record(task="t", backend=backend, repeat=repeat, status="ok", workers=workers, steady_img_s=100.0)
    return {**rec, "scaling_mode": mode, "target_acc": 0.9, "time_to_target_s": seconds, **kw}


def cells(rows: list[dict[str, Any]]) -> dict[tuple[str, str, int, int], tuple[str, str]]:
    """(backend label, mode, repeat, workers) -> (time to target, speed-up) as the table shows them."""
    shown = scaling_report.scaling_table(table(rows), "t")
    repeats = shown["repeat"] if "repeat" in shown else [0] * len(shown)
    keys = zip(shown["backend"], shown["mode"], repeats, shown["workers"], strict=True)
    return dict(zip(keys, zip(shown[TO_TARGET], shown[scaling_report.SPEEDUP], strict=True), strict=True))


def test_each_rows_speed_up_is_its_own_1_worker_rows_time_over_its_own():
    """Two backends, two modes, two repeats, 1/2/4 workers, each with its own time: every row is divided into the
    1-worker row of its backend, mode and repeat (any other pairing gives another ratio: the times are all distinct),
    whatever order the records came in; a 1-worker row's speed-up is 1."""
    rng = np.random.default_rng(0)
    keys = [(b, m, r, w) for b in ("torch", "keras") for m in ("strong", "weak") for r in (0, 1) for w in (1, 2, 4)]
    times = dict(zip(keys, rng.uniform(1.0, 50.0, len(keys)).tolist(), strict=True))
    order = rng.permutation(len(keys))
    shown = cells([row(*keys[i], times[keys[i]]) for i in order])
    assert len(shown) == len(keys)
    for b, m, r, w in keys:
        speedup = times[(b, m, r, 1)] / times[(b, m, r, w)]
        assert shown[(label(b), m, r, w)] == (f"{times[(b, m, r, w)]:.2f}", f"{speedup:.2f}"), (b, m, r, w)


def test_a_missing_time_on_either_side_gives_a_dash_and_not_reached_stays():
    """No speed-up where the row or its 1-worker row never reached the target, where there is no ok 1-worker row (a
    failed one is not divided into), or for a failed row; the time column still says "not reached"."""
    rows = [
        row("torch", "strong", 0, 1, 10.0),
        row("torch", "strong", 0, 2, None),  # never reached it
        row("torch", "weak", 0, 1, None),
        row("torch", "weak", 0, 2, 4.0),  # its 1-worker row never did
        row("keras", "strong", 0, 1, 8.0, status="failed", error="boom"),
        row("keras", "strong", 0, 2, 5.0),  # its 1-worker row failed
        row("keras", "weak", 0, 2, 3.0),  # no 1-worker row at all
        row("keras", "weak", 0, 4, 2.0, status="failed", error="boom"),
    ]
    shown = cells(rows)
    torch, keras = label("torch"), label("keras")
    assert shown[(torch, "strong", 0, 1)] == ("10.00", "1.00")
    assert shown[(torch, "strong", 0, 2)] == ("not reached", "-")
    assert shown[(torch, "weak", 0, 1)] == ("not reached", "-")
    assert shown[(torch, "weak", 0, 2)] == ("4.00", "-")
    assert shown[(keras, "strong", 0, 1)] == ("-", "-")
    assert shown[(keras, "strong", 0, 2)] == ("5.00", "-")
    assert shown[(keras, "weak", 0, 2)] == ("3.00", "-")
    assert shown[(keras, "weak", 0, 4)] == ("-", "-")


def test_the_speed_up_sits_after_the_time_to_target_and_only_where_the_task_has_a_target():
    with_target = scaling_report.scaling_table(table([row("torch", "strong", 0, w, 1.0) for w in (1, 2)]), "t")
    columns = list(with_target.columns)
    assert columns.index(scaling_report.SPEEDUP) == columns.index(TO_TARGET) + 1
    none = [row("torch", "strong", 0, w, None, target_acc=None) for w in (1, 2)]
    assert scaling_report.SPEEDUP not in scaling_report.scaling_table(table(none), "t").columns


def test_target_speedup_divides_the_1_worker_time_by_the_rows_and_gives_none_for_a_missing_one():
    assert scaling.target_speedup({"time_to_target_s": 4.0}, {"time_to_target_s": 10.0}) == 2.5
    for here, one in ((None, 10.0), (4.0, None), (math.nan, 10.0), (4.0, math.nan)):
        assert scaling.target_speedup({"time_to_target_s": here}, {"time_to_target_s": one}) is None
    assert scaling.target_speedup({"time_to_target_s": 4.0}, None) is None


def test_the_baseline_is_the_latest_ok_1_worker_row_of_the_same_task_backend_repeat_and_mode():
    """The one lookup behind the efficiency (when a row is measured) and the speed-up (when the report is written)."""
    me = row("torch", "strong", 0, 2, 1.0)
    others = [
        row("torch", "strong", 1, 1, 2.0),  # another repeat
        row("torch", "weak", 0, 1, 3.0),  # another mode
        row("keras", "strong", 0, 1, 4.0),  # another backend
        {**row("torch", "strong", 0, 1, 5.0), "task": "u"},  # another task
        row("torch", "strong", 0, 1, 6.0, status="failed"),
    ]
    assert scaling.baseline(others, me) is None
    first, latest = row("torch", "strong", 0, 1, 7.0), row("torch", "strong", 0, 1, 8.0)
    assert scaling.baseline([first, *others, latest], me) is latest
