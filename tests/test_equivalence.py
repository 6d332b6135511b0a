"""Accuracy across seeds: intervals, Welch and TOST tests, repeats needed, and summary.md's verdicts."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bench.measure import equivalence as eq
from bench.measure import student
from bench.report import accuracy
from tests.conftest import REPO


def test_the_mean_interval_is_students_t_in_points():
    mean, lo, hi = eq.mean_ci([0.90, 0.92, 0.94])
    half = 4.302653 * 2.0 / math.sqrt(3)  # t(0.975, 2) x sd 2 pt / sqrt(3)
    assert mean == pytest.approx(92.0) and lo == pytest.approx(92 - half, abs=1e-4) and hi == pytest.approx(92 + half)
    assert eq.mean_ci([0.9]) is None


@pytest.mark.parametrize("df", [1, 2, 3.7, 10, 1e6, math.inf])
def test_the_t_and_normal_functions_are_scipy_statss(df):
    for q in (0.025, 0.2, 0.5, 0.9, 0.975):
        assert student.t_ppf(q, df) == pytest.approx(stats.t.ppf(q, df), rel=1e-12, abs=1e-12)
        assert student.norm_ppf(q) == pytest.approx(stats.norm.ppf(q), rel=1e-12)
    for x in (-4.0, -0.5, 0.0, 1.2, 3.0):
        assert student.t_sf(x, df) == pytest.approx(stats.t.sf(x, df), rel=1e-12, abs=1e-15)
        assert student.t_cdf(x, df) == pytest.approx(stats.t.cdf(x, df), rel=1e-12, abs=1e-15)


def test_intervals_and_verdicts_leave_scipy_stats_unimported():
    """scipy.stats cost every run with repeats and every tune 0.4-1 s (3 s on a busy VM) of its report, for
    quantiles scipy.special gives: a fresh process computes each interval and test without it."""
    code = """import sys
import numpy as np
from bench.measure import equivalence as eq, stats, tuning
eq.verdict([0.90, 0.91, 0.93], [0.92, 0.90, 0.95], 1.0)
eq.repeats_needed(1.0, 0.3, 1.0)
stats.log_t_interval(np.array([10.0, 11.0, 12.5]))
xs, ys = [[10.0, 10.5, 9.8], [10.2, 10.1]], [[11.0, 11.5, 10.8], [11.2, 11.3]]
assert tuning.ratio_ci(xs, ys) is not None and tuning.ratio_p(xs, ys) is not None
assert "scipy.special" in sys.modules, "nothing computed a quantile"
assert "scipy.stats" not in sys.modules, "scipy.stats imported"
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_the_difference_test_is_welchs_and_its_interval_covers_the_truth():
    a, b = [0.80, 0.81, 0.79, 0.82], [0.85, 0.88, 0.86, 0.90, 0.87]
    d = eq.difference(a, b)
    ref = stats.ttest_ind(np.array(b) * 100, np.array(a) * 100, equal_var=False)
    assert d.diff == pytest.approx(100 * (np.mean(b) - np.mean(a)))
    assert d.p == pytest.approx(ref.pvalue)
    assert d.low < d.diff < d.high and d.low > 0  # clearly apart: the interval excludes 0
    rng = np.random.default_rng(0)  # coverage of the 95% interval over 1,000 synthetic pairs, true gap 0.5 pt
    xa, xb = rng.normal(0.90, 0.01, (1000, 5)), rng.normal(0.905, 0.02, (1000, 5))
    covered = np.mean([(r := eq.difference(x, y)).low <= 0.5 <= r.high for x, y in zip(xa, xb, strict=True)])
    assert 0.93 <= covered <= 0.97


def test_tost_at_5_percent_is_the_90_percent_interval_inside_the_margin():
    rng = np.random.default_rng(1)
    for _ in range(200):
        a, b = rng.normal(0.9, 0.004, 6), rng.normal(0.9 + rng.uniform(-0.012, 0.012), 0.004, 6)
        d, se, df = eq.welch(np.asarray(a) * 100, np.asarray(b) * 100)
        h90 = stats.t.ppf(0.95, df) * se
        inside = d - h90 > -1 and d + h90 < 1
        assert (eq.tost(a, b, 1.0) < 0.05) == inside


def test_verdicts_say_equivalent_different_or_how_many_more_repeats():
    same = eq.verdict([0.900, 0.902, 0.899, 0.901], [0.901, 0.899, 0.900, 0.902])
    assert same.kind == "equivalent" and same.text == "equivalent within ±1 pt"
    apart = eq.verdict([0.80, 0.81, 0.79, 0.80], [0.85, 0.86, 0.84, 0.85])
    assert apart.kind == "different" and apart.text.startswith("different: +5.00 pt [+")
    noisy = eq.verdict([0.80, 0.86, 0.83], [0.84, 0.80, 0.87])
    assert noisy.kind == "inconclusive" and noisy.more_repeats > 10
    assert noisy.text == f"inconclusive: about {noisy.more_repeats} more repeats needed"
    assert eq.verdict([0.9], [0.8, 0.85]).kind == "too few repeats"
    tight = ([0.800, 0.801, 0.800], [0.801, 0.800, 0.801])
    assert eq.verdict(*tight, margin_pt=0.5).text == "equivalent within ±0.5 pt"
    assert eq.verdict([0.80, 0.81], [0.80, 0.81], margin_pt=0.5).kind == "inconclusive"  # 0.7 pt spread, 2 runs


def test_repeats_needed_gives_the_difference_test_80_percent_power():
    """0.55 pt apart with a 0.5 pt spread: n from Student's t quantiles at 2n - 2 degrees of freedom, at least the
    normal formula's count; a simulation at that n decides at least ~80%, at the normal count fewer."""
    n = eq.repeats_needed(0.5, 0.55, 1.0)
    normal = math.ceil(2 * (0.5 * (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) / 0.55) ** 2)
    t = stats.t
    assert n > normal and n >= 2 * (0.5 * (t.ppf(0.975, 2 * n - 2) + t.ppf(0.8, 2 * n - 2)) / 0.55) ** 2
    assert n - 1 < 2 * (0.5 * (t.ppf(0.975, 2 * n - 4) + t.ppf(0.8, 2 * n - 4)) / 0.55) ** 2  # the smallest such
    rng = np.random.default_rng(2)

    def power(k: int) -> float:
        a, b = rng.normal(0, 0.5, (4000, k)), rng.normal(0.55, 0.5, (4000, k))
        return float(np.mean(stats.ttest_ind(a, b, axis=1, equal_var=False).pvalue < 0.05))

    assert 0.77 <= power(n) <= 0.87
    # at 3 a side the normal count is far short: the count from t is larger, and 3 repeats that did not decide
    # are never told that "0 more" would (QA, 2026-12-06: 2.0 pt apart, p = 0.055, "about 0 more repeats needed")
    few = eq.verdict([0.90, 0.91, 0.92], [0.925, 0.935, 0.93])
    assert few.kind == "inconclusive" and few.more_repeats >= 1 and "about 0 more" not in few.text
    assert eq.repeats_needed(0.79, 2.0, 1.0) > math.ceil(
        2 * (0.79 * (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) / 2) ** 2
    )
    assert eq.repeats_needed(0.5, 0.0, 1.0) < eq.repeats_needed(0.5, 0.0, 0.5)  # a tighter margin needs more
    assert eq.repeats_needed(0.0, 0.3, 1.0) == 2
    assert eq.repeats_needed(5.0, 1e-6, 1e-6) == eq.MAX_REPEATS_NEEDED


def _rows(task: str, accs: dict[str, list[float]]) -> list[dict]:
    return [
        {"task": task, "backend": b, "status": "ok", "test_acc": a, "seed": 7 + i, "repeat": i}
        for b, values in accs.items()
        for i, a in enumerate(values)
    ]


def test_the_summary_section_gives_each_pair_its_verdict_with_the_tasks_margin():
    df = pd.DataFrame(
        _rows(
            "t1",
            {
                "torch": [0.900, 0.902, 0.899, 0.901],
                "keras": [0.901, 0.899, 0.900, 0.902],
                "keras-jax": [0.85, 0.86, 0.84, 0.85],
            },
        )
        + _rows("t2", {"torch": [0.80, 0.86, 0.83], "keras": [0.84, 0.80, 0.87]})
        + _rows("single", {"torch": [0.9], "keras": [0.8]})
    )
    plan = {
        "tasks": [
            {"name": "t1", "eval": {"equivalence_margin_pt": 1.0}},
            {"name": "t2", "eval": {"equivalence_margin_pt": 2.5}},
        ]
    }
    text = accuracy.section(df, plan)
    assert "### t1" in text and "### t2" in text and "### single" not in text  # one run each: no spread
    assert "- Keras (TF) vs PyTorch: equivalent within ±1 pt" in text
    assert "- Keras (JAX) vs PyTorch: different: -5.05 pt [" in text
    assert "equivalence margin ±2.5 pt" in text and "inconclusive: about" in text
    assert "| PyTorch | 4 | 7, 8, 9, 10 | 90.05 |" in text
    assert accuracy.section(df[df.task == "single"], plan) == ""
    # one backend with repeats: its interval, and no "Pairs" heading over an empty list (QA, 2026-12-06)
    one = accuracy.section(pd.DataFrame(_rows("t3", {"keras": [0.96, 0.955]})), plan)
    assert "| Keras (TF) | 2 | 7, 8 | 95.75 |" in one and "Pairs" not in one
    # a row without a seed (a failed start, an older record) turns the column into floats: still "0, 1"
    mixed = pd.DataFrame([*_rows("t4", {"torch": [0.9, 0.91]}), {"task": "t4", "backend": "keras", "status": "ok"}])
    mixed["seed"] = [0, 1, None]
    assert mixed.seed.dtype == float
    assert "| PyTorch | 2 | 0, 1 | 90.50 |" in accuracy.section(mixed, plan)
    assert accuracy._seed(float("nan")) == "-"
    assert accuracy.margins({"tasks": [{"name": "x", "eval": {"equivalence_margin_pt": -1}}, "junk"]}) == {}


def test_an_interval_past_what_an_accuracy_can_be_is_cut_at_the_bound_and_says_so():
    """QA, 2026-12-08: two repeats (92.5 mean, one degree of freedom) read "[79.16, 105.84]" in summary.md."""
    ci = eq.mean_ci([0.914, 0.936])
    assert ci is not None and ci[2] > 100
    one = accuracy.section(pd.DataFrame(_rows("t", {"keras": [0.914, 0.936]})), {})
    assert f"| 92.50 | [{ci[1]:.2f}, 100.00] (cut at 100: too few repeats to bound it) |" in one, one
    assert accuracy._interval(-3.0, 40.0) == "[0.00, 40.00] (cut at 0: too few repeats to bound it)"
    assert accuracy._interval(90.0, 95.0) == "[90.00, 95.00]"
