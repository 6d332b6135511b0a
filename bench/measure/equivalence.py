"""Accuracy across seeds: a mean with its interval per backend, and for a pair of backends a verdict.

One run's accuracy says little: a different seed (initialisation, order, dropout and augmentation draws) moves
it by as much as two frameworks are apart. With repeats (one seed each), each backend's accuracy is a sample:

- ``mean_ci``: the mean and its 95% Student-t interval.
- ``difference``: Welch's t-test of the difference of two means (unequal variances), with its 95% interval.
- ``tost``: two one-sided Welch tests that the difference lies inside +-``margin`` (equivalence); at 5% it is
  the same as the difference's 90% interval lying inside the margin.
- ``verdict``: "equivalent within +-m pt" when TOST says so, else "different: +x pt [lo, hi]" when the
  difference test does, else "inconclusive: about N more repeats needed", N from the observed spread
  (``repeats_needed``: the per-backend count at which the test nearest to deciding would reach 80% power).

Accuracies come in as fractions (the record's ``test_acc``); every figure out is in percentage points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bench.measure.student import norm_ppf, t_cdf, t_ppf, t_sf

ALPHA = 0.05
POWER = 0.8
MAX_REPEATS_NEEDED = 10_000  # beyond this the answer is "practically never", said as such


def _pts(values: Sequence[float]) -> np.ndarray:
    return 100.0 * np.asarray(values, dtype=np.float64)


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float] | None:
    """(mean, low, high): Student's t interval of the mean, in the values' units; None for fewer than two values
    (no spread to go by)."""
    x = np.asarray(values, dtype=np.float64)
    if len(x) < 2:
        return None
    m, se = float(x.mean()), float(x.std(ddof=1) / math.sqrt(len(x)))
    h = t_ppf(0.5 + confidence / 2, len(x) - 1) * se
    return m, m - h, m + h


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float] | None:
    """``mean_interval`` in points."""
    return mean_interval(_pts(values).tolist(), confidence)


def welch(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """(mean(b) - mean(a), its standard error, Welch-Satterthwaite degrees of freedom)."""
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)) if se > 0 else float("inf")
    return float(b.mean() - a.mean()), se, df


@dataclass(frozen=True)
class Difference:
    """b minus a, in points: the estimate, its 95% interval and the two-sided p-value that it is zero."""

    diff: float
    low: float
    high: float
    p: float


def difference(a: Sequence[float], b: Sequence[float]) -> Difference:
    xa, xb = _pts(a), _pts(b)
    d, se, df = welch(xa, xb)
    if se == 0:  # no spread at all: the difference is exact
        return Difference(d, d, d, 1.0 if d == 0 else 0.0)
    h = t_ppf(1 - ALPHA / 2, df) * se
    return Difference(d, d - h, d + h, 2 * t_sf(abs(d) / se, df))


def tost(a: Sequence[float], b: Sequence[float], margin_pt: float) -> float:
    """p-value of two one-sided tests that -margin < mean(b) - mean(a) < margin (small: equivalent)."""
    d, se, df = welch(_pts(a), _pts(b))
    if se == 0:
        return 0.0 if abs(d) < margin_pt else 1.0
    p_low = t_sf((d + margin_pt) / se, df)  # H0: d <= -margin
    p_high = t_cdf((d - margin_pt) / se, df)  # H0: d >= margin
    return max(p_low, p_high)


def repeats_needed(sd_pt: float, diff_pt: float, margin_pt: float) -> int:
    """Repeats per backend at which the nearer test decides with 80% power, if the spread and difference stay
    as observed: the smallest n with n >= 2 sd^2 (q1 + q2)^2 / gap^2 for Student's t quantiles at the two-sample
    test's 2n - 2 degrees of freedom: TOST q1 = t(1-a), q2 = t(1-b/2), gap = margin - |d| while |d| < margin;
    the difference test q1 = t(1-a/2), q2 = t(1-b), gap = |d|. The normal quantiles undercount where repeats are
    few (at 3 a side by 30%), and a verdict that 3 repeats had left inconclusive said "about 0 more repeats
    needed" (QA, 2026-12-06)."""
    if sd_pt == 0:
        return 2
    tests = []
    if (gap := margin_pt - abs(diff_pt)) > 0:
        tests.append((gap, 1 - ALPHA, 1 - (1 - POWER) / 2))
    if diff_pt != 0:
        tests.append((abs(diff_pt), 1 - ALPHA / 2, POWER))
    best = MAX_REPEATS_NEEDED
    for gap, p1, p2 in tests:
        # the normal count: t's is never below
        n = max(2, math.ceil(2 * (sd_pt * (norm_ppf(p1) + norm_ppf(p2)) / gap) ** 2))
        while n < best and n < 2 * (sd_pt * (t_ppf(p1, 2 * n - 2) + t_ppf(p2, 2 * n - 2)) / gap) ** 2:
            n += 1
        best = min(best, n)
    return best


@dataclass(frozen=True)
class Verdict:
    """A backend pair's accuracy verdict (b against a), in points."""

    kind: str  # equivalent | different | inconclusive | too few repeats
    margin_pt: float
    n: tuple[int, int]
    diff: Difference | None = None
    p_tost: float | None = None
    more_repeats: int | None = None

    @property
    def text(self) -> str:
        if self.kind == "equivalent":
            return f"equivalent within ±{self.margin_pt:g} pt"
        if self.kind == "different" and self.diff is not None:
            return f"different: {self.diff.diff:+.2f} pt [{self.diff.low:+.2f}, {self.diff.high:+.2f}]"
        if self.kind == "inconclusive":
            more = self.more_repeats or 0
            if more >= MAX_REPEATS_NEEDED:
                return f"inconclusive: more than {MAX_REPEATS_NEEDED:,} repeats would be needed"
            return f"inconclusive: about {more} more repeat{'s' if more > 1 else ''} needed"
        return "too few repeats (at least 2 per backend)"


def verdict(a: Sequence[float], b: Sequence[float], margin_pt: float = 1.0) -> Verdict:
    """b against a: equivalent (TOST at 5%) before different (Welch at 5%) before inconclusive."""
    n = (len(a), len(b))
    if min(n) < 2:
        return Verdict("too few repeats", margin_pt, n)
    d = difference(a, b)
    p = tost(a, b, margin_pt)
    if p < ALPHA:
        return Verdict("equivalent", margin_pt, n, d, p)
    if d.p < ALPHA:
        return Verdict("different", margin_pt, n, d, p)
    sd = math.sqrt((np.var(_pts(a), ddof=1) + np.var(_pts(b), ddof=1)) / 2)
    return Verdict("inconclusive", margin_pt, n, d, p, max(1, repeats_needed(sd, d.diff, margin_pt) - min(n)))
