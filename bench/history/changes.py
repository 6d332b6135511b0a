"""Change points, drift and the newest-point test on one series (numpy only).

- Steps: the piecewise-constant fit asv uses for its step detection, as an optimal partition
  (dynamic programming over every split) minimising the weighted squared error plus a penalty per
  step. A point weighs 1/sigma^2, sigma being its own interval's (half-width / 1.96) or, when the
  series scatters more than its intervals say (a VM's speed changing from run to run), the
  series' own noise (1.4826 x the median absolute successive difference / sqrt 2, which a step
  or a drift barely moves). The penalty grows with log n, like BIC: noise within the intervals
  fits no step; a step of a few sigma over a few points is found where it is.
- Drift: a slow change over many runs fits no single step (the fit cuts it into a staircase);
  the Mann-Kendall test inside the fitted levels, with the Theil-Sen slope over the series, reports
  it when the trend is significant and the change over the series passes a threshold.
- Newest point: conbench's lookback z-score, made robust: the newest value against the median of
  up to ``lookback`` points before it (after the last baseline reset), in units of 1.4826 x their
  MAD or of the intervals, whichever is larger, floored by the metric's pooled run-to-run noise
  (``pooled``, relative: a scale from a series' own few points is nearly unknown). A regression must
  pass the z threshold and a minimum relative change, in the direction that is worse for the metric.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Z95 = 1.959964


@dataclass(frozen=True)
class Drift:
    change: float  # relative change over the series by the Theil-Sen line (-0.12: 12% lower at the end)
    tau: float
    p: float


@dataclass(frozen=True)
class Newest:
    z: float  # robust z of the newest point against its baseline (signed: + above)
    change: float  # relative change against the baseline median
    baseline: int  # how many points the baseline held
    regression: bool
    improvement: bool
    pooled: bool = False  # the metric's pooled run-to-run noise set the scale (larger than the series' own)


def median(values: np.ndarray) -> float:
    """``np.median`` of a series' values (NaN where one is NaN, as numpy's), without its ~40 us a call: a check
    of a store takes ~6 medians of a few points per newest-point judgement (81,000 of them over a store of 114 runs,
    4 s in numpy's overhead). Sorted, the middle value or the mean of the two middle ones, ``(a + b) / 2``, which is
    numpy's mean of two to the bit."""
    v = np.sort(np.asarray(values, float))  # NaN sorts last
    return math.nan if len(v) and math.isnan(v[-1]) else middle(v)


def nanmedian(values: np.ndarray) -> float:
    """``np.nanmedian`` of a series' values (NaN where all are), as ``median``."""
    v = np.asarray(values, float)
    return middle(np.sort(v[~np.isnan(v)]))


def middle(v: np.ndarray) -> float:
    """The median of sorted values without NaN (NaN where there is none)."""
    n = len(v)
    if n == 0:
        return math.nan
    return float(v[n // 2]) if n % 2 else float((v[n // 2 - 1] + v[n // 2]) / 2)


def sigmas(values: np.ndarray, lo: np.ndarray, hi: np.ndarray, noise_of: np.ndarray | None = None) -> np.ndarray:
    """Each point's standard error: its interval's (a 95% interval: half-width / 1.96), floored by the series'
    own successive-difference noise (where ``noise_of`` is given, the newest-point test's points before the newest,
    the smaller of the two: the newest's own jump, or a step before it, would hide it) and by a millionth of its
    scale (so no point weighs infinitely)."""
    own = (np.asarray(hi, float) - np.asarray(lo, float)) / (2 * Z95)
    own = np.where(np.isfinite(own) & (own > 0), own, 0.0)
    floor = noise(values) if noise_of is None else min(noise(values), noise(noise_of))
    scale = nanmedian(np.abs(values)) if len(values) else 1.0
    return np.maximum(own, max(floor, 1e-6 * (scale or 1.0)))


def noise(values: np.ndarray) -> float:
    """1.4826 x median |x[i+1] - x[i]| / sqrt 2: the point-to-point noise, robust to a step or a trend."""
    d = np.abs(np.diff(np.asarray(values, float)))
    return float(1.4826 * median(d) / math.sqrt(2)) if len(d) else 0.0


def steps(
    values: np.ndarray, sigma: np.ndarray, penalty: float | None = None, min_size: int = 3, min_change: float = 0.01
) -> list[int]:
    """Where each new level starts (indices into ``values``), by the optimal weighted partition.

    ``penalty`` (default 3 ln n + 6, in chi-square units) is charged per step; a segment holds at
    least ``min_size`` points and levels are compared by their medians, so one outlier, however far
    out, is no level; a step smaller than ``min_change`` of the level (relative) is not reported."""
    x = np.asarray(values, float)
    n = len(x)
    if n < 2 * min_size:
        return []
    beta = 3 * math.log(n) + 6 if penalty is None else penalty
    w = 1 / np.asarray(sigma, float) ** 2
    # prefix sums: a segment's weighted squared error around its weighted mean in O(1)
    sw, swx, swxx = (np.concatenate([[0.0], np.cumsum(a)]) for a in (w, w * x, w * x * x))

    best = np.full(n + 1, np.inf)
    best[0] = -beta
    prev = np.zeros(n + 1, int)
    for j in range(min_size, n + 1):
        i = np.arange(0, j - min_size + 1)
        i = i[(i == 0) | (i >= min_size)]
        s = sw[j] - sw[i]
        c = best[i] + (swxx[j] - swxx[i] - (swx[j] - swx[i]) ** 2 / s) + beta
        k = int(np.argmin(c))
        best[j], prev[j] = c[k], i[k]
    cuts, j = [], n
    while j > 0:
        j = int(prev[j])
        if j:
            cuts.append(j)
    cuts = sorted(cuts)
    return [c for c in cuts if material(x, cuts, c, min_change)]


def material(x: np.ndarray, cuts: list[int], at: int, min_change: float) -> bool:
    """Whether the levels either side of the cut ``at`` differ by at least ``min_change`` (relative)."""
    edges = [0, *cuts, len(x)]
    k = edges.index(at)
    before, after = median(x[edges[k - 1] : at]), median(x[at : edges[k + 1]])
    return abs(after - before) >= min_change * max(abs(before), 1e-12)


def mann_kendall(x: np.ndarray) -> tuple[float, float]:
    """Mann-Kendall's S (concordant minus discordant pairs in run order) and its variance, ties corrected."""
    n = len(x)
    i, j = np.triu_indices(n, 1)
    _, ties = np.unique(x, return_counts=True)
    var = (n * (n - 1) * (2 * n + 5) - float((ties * (ties - 1) * (2 * ties + 5)).sum())) / 18
    return float(np.sign(x[j] - x[i]).sum()), var


def drift(
    values: np.ndarray, cuts: Sequence[int] = (), min_points: int = 8, p_max: float = 0.01, min_change: float = 0.05
) -> Drift | None:
    """A monotone trend the steps do not explain, or None when there is none worth saying.

    The Mann-Kendall test runs inside each level the step fit found (``cuts``), its S and variance
    summed: a clean step leaves no trend inside its levels, a slow drift does (the fit cuts it into
    a staircase whose treads still slope). The change over the series is the Theil-Sen slope's."""
    x = np.asarray(values, float)
    n = len(x)
    if n < min_points:
        return None
    edges = [0, *cuts, n]
    parts = [mann_kendall(x[a:b]) for a, b in itertools.pairwise(edges) if b - a >= 3]
    s, var = sum(p[0] for p in parts), sum(p[1] for p in parts)
    z = (s - np.sign(s)) / math.sqrt(var) if var > 0 else 0.0
    p = math.erfc(abs(z) / math.sqrt(2))
    i, j = np.triu_indices(n, 1)
    slope = float(np.median((x[j] - x[i]) / (j - i)))  # Theil-Sen (n^2 / 2 pairs: numpy's partition beats a sort)
    change = slope * (n - 1) / (abs(median(x)) or 1.0)
    if not (p < p_max and abs(change) >= min_change and np.sign(s) == np.sign(slope)):
        return None
    pairs = sum((b - a) * (b - a - 1) / 2 for a, b in itertools.pairwise(edges) if b - a >= 3)
    return Drift(change, s / pairs, p)


def newest(
    values: np.ndarray,
    sigma: np.ndarray,
    higher_is_better: bool,
    lookback: int = 20,
    z_max: float = 4.0,
    min_change: float = 0.05,
    pooled: float = 0.0,
    absolute: bool = False,
) -> Newest | None:
    """The newest point against up to ``lookback`` points before it; None with no point before it.

    ``pooled``: a relative noise the scale is at least (times the baseline's median), the metric's run-to-run
    noise pooled over many series: two close runs say little of how far a third may swing. ``absolute``: the
    change must pass ``min_change`` in the figure's own units, not relative to the baseline (an accuracy's points,
    as ``bench compare --max-acc-drop`` judges it)."""
    x = np.asarray(values, float)
    if len(x) < 2:
        return None
    base, last = x[-lookback - 1 : -1], x[-1]
    centre = median(base)
    mad = 1.4826 * median(np.abs(base - centre)) if len(base) >= 3 else 0.0
    own = max(mad, median(np.asarray(sigma, float)[-lookback - 1 :]), 1e-12)
    floor = pooled * abs(centre)
    spread = max(own, floor)
    z = (last - centre) / spread
    change = (last - centre) / (abs(centre) or 1.0)
    worse = -z if higher_is_better else z
    moved = last - centre if absolute else change
    worse_change = -moved if higher_is_better else moved
    beyond = min_change + (1e-9 if absolute else 0.0)  # a drop of exactly 0.01 is at the threshold, as in compare
    regression = worse > z_max and worse_change > beyond
    improvement = -worse > z_max and -worse_change > beyond
    return Newest(float(z), float(change), len(base), bool(regression), bool(improvement), floor > own)
