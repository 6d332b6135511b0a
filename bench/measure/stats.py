"""Uncertainty of a timing: bootstrap intervals of a window's throughput and of a median.

Both are seeded and vectorised: a bootstrap of 2,000 resamples of at most ``MAX_SAMPLES``
values takes a few milliseconds, and the same inputs always give the same interval.

Steps are not independent draws: a machine's speed drifts in stretches of seconds (a shared VM's
neighbours, its clock), so consecutive steps are alike. Measured on a 2-core AMD EPYC VM (2026-12-05),
one process's 30 CIFAR CNN epochs under Keras/TF took 0.79 to 1.19 s in runs of several epochs each,
and a bootstrap of single steps put that row's interval at ±1.7%, where one of blocks of consecutive
steps gives ±3.5% (a `bench all` run's 12 rows that day: 1.5-2.3x the single-step half-width).
Resampling single steps ignores that likeness and makes the interval too narrow, so every bootstrap
here resamples blocks (``resample_indices``: the circular block bootstrap of Politis and Romano).
A block must span the stretches the speed drifts in, and those differ by machine and by day, so its
length is read from the series itself (``block_length``: Politis and White's automatic selection,
never below n^(1/3) steps, the order of the block length that estimates a mean's variance best, Hall,
Horowitz and Jing 1995). On 6 of the 12 rows of a 2026-12-05 `bench all` run it chose 18-35 steps where
n^(1/3) gave 5-7 (docs/timing.md).
It holds what drifts within one window; a drift slower than the window is seen only between processes
(``--repeats``, and the tuner's fresh processes: bench.measure.tuning.ratio_ci).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from bench.measure.student import t_ppf

RESAMPLES = 2000
MAX_SAMPLES = 400  # longer series are folded into small windows (see fold) before resampling
SEED = 0
CONFIDENCE = 0.95
Samples = Sequence[float] | np.ndarray  # durations, image counts or rates, as a list or an array


def block_length(series: Samples) -> int:
    """Consecutive samples per resampled block for ``series`` (in time order): Politis and White's estimate
    (``politis_white``), rounded up, and never below round(n^(1/3)) (400 steps: at least 7). Three or
    fewer samples: blocks of 1, the ordinary bootstrap."""
    n = len(series)
    return max(1, round(n ** (1 / 3)), math.ceil(politis_white(series)))


def politis_white(series: Samples) -> float:
    """The circular block bootstrap's block length that minimises the error of its estimate of the mean's
    variance, estimated from the series' autocovariances (Politis and White 2004, with the correction of
    Patton, Politis and White 2009), within [1, min(3 sqrt(n), n / 3)].

    The lag after which the autocorrelations stay insignificant (``KN`` in a row within
    2 sqrt(log10(n) / n)) sets the bandwidth of a flat-top lag window; from it the long-run variance
    (g) and its first-order bias term (G) give b = (2 G^2 / D)^(1/3) n^(1/3), D = 4/3 g^2. Independent
    samples give 1; speed that drifts in stretches gives blocks about as long as the stretches."""
    x = np.asarray(series, dtype=np.float64)
    n = len(x)
    if n < 8:  # too few lags to read a dependence from
        return 1.0
    x = x - x.mean()
    kn = max(5, math.ceil(math.sqrt(math.log10(n))))
    max_lag = math.ceil(math.sqrt(n)) + kn
    acv = np.array([x[: n - k] @ x[k:] / n for k in range(min(max_lag, n - 1) + 1)])
    if acv[0] <= 0:  # a constant series
        return 1.0
    insignificant = np.abs(acv[1:] / acv[0]) < 2 * math.sqrt(math.log10(n) / n)
    # the first lag m after which kn autocorrelations in a row are insignificant; else the last significant one
    runs = [m for m in range(len(insignificant) - kn + 1) if insignificant[m : m + kn].all()]
    m = runs[0] if runs else int(np.flatnonzero(~insignificant)[-1]) + 1
    bandwidth = min(2 * m, len(acv) - 1)
    if bandwidth == 0:
        return 1.0
    lags = np.arange(-bandwidth, bandwidth + 1)
    t = np.abs(lags) / bandwidth
    window = np.where(t <= 0.5, 1.0, 2.0 * (1.0 - t))  # the flat-top (trapezoid) lag window
    g = float((window * acv[np.abs(lags)]).sum())
    big_g = float((window * np.abs(lags) * acv[np.abs(lags)]).sum())
    if g <= 0:
        return 1.0
    b = (2 * big_g**2 / (4 / 3 * g**2)) ** (1 / 3) * n ** (1 / 3)
    return float(min(max(b, 1.0), math.ceil(min(3 * math.sqrt(n), n / 3))))


def resample_indices(series: Samples, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(resamples, n) indices into ``series`` for a circular block bootstrap: each row strings together blocks
    of ``block_length(series)`` consecutive indices from random starts (wrapping past the end, so every index
    is drawn equally often), cut to n. With blocks of 1 it is the ordinary bootstrap."""
    n = len(series)
    b = block_length(series)
    if b == 1:
        return rng.integers(0, n, size=(resamples, n), dtype=np.int32)
    blocks = -(-n // b)
    starts = rng.integers(0, n, size=(resamples, blocks), dtype=np.int32)
    return ((starts[:, :, None] + np.arange(b, dtype=np.int32)) % n).reshape(resamples, -1)[:, :n]


def fold_pairs(values: Samples, weights: Samples, limit: int = MAX_SAMPLES) -> tuple[np.ndarray, np.ndarray]:
    """(durations, images) of small windows of consecutive samples, those with a positive duration.

    ``values`` are step durations and ``weights`` their images. Up to ``limit`` steps each step is
    its own window; beyond, k = ceil(n / limit) consecutive steps form one, which keeps the
    bootstrap's cost fixed and, on a GPU, averages out the host-side jitter of single asynchronous
    steps (a window's length is what the device took for its steps).
    """
    d, w = np.asarray(values, dtype=np.float64), np.asarray(weights, dtype=np.float64)
    if len(d) != len(w):
        raise ValueError(f"{len(d)} durations but {len(w)} image counts")
    k = max(1, -(-len(d) // limit))
    n = len(d) // k * k  # a ragged tail of fewer than k steps is dropped
    if k > 1:
        d, w = d[:n].reshape(-1, k).sum(1), w[:n].reshape(-1, k).sum(1)
    keep = d > 0
    return d[keep], w[keep]


def fold(values: Samples, weights: Samples, limit: int = MAX_SAMPLES) -> np.ndarray:
    """Rates over small windows of consecutive samples: sum(weights) / sum(values) per window (see fold_pairs)."""
    d, w = fold_pairs(values, weights, limit)
    return w / d


# A window of fewer steps than the window rule asks (bench.measure.steady.MIN_STEPS): the percentile bootstrap of so
# few values cannot reach its 95%. Independent steps +-10% (300 simulated windows each, QA 2026-12-06): it held the
# true rate in 67% of 4-step windows, 79% of 6, 83% of 8 and 87-88% of 12-19; Student's t over the steps' log rates
# in 93-95% of each. A Keras row of steps_per_execution 32 on a small task timed 4 executions and read ±2%, where
# t reads ±4.4%. (Longer windows keep the block bootstrap: it holds the steps' likeness in time, which t does not.)
FEW_STEPS = 20


def rate_ci(
    durations: Samples,
    images: Samples,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> tuple[float, float, float] | None:
    """(rate, low, high): images over time of the whole window, and the percentile bootstrap interval of it.

    The steps (or fold_pairs' windows) are resampled in blocks of consecutive ones (``resample_indices``)
    and each resample's sum(images) / sum(durations) taken: a slow step weighs by its duration, as in
    the elapsed time a user waits for. None for fewer than 2 samples. Under ``FEW_STEPS`` samples, Student's t
    over their log rates about that rate (``t_about``) instead: why at ``FEW_STEPS``.
    """
    d, w = fold_pairs(durations, images)
    if len(d) < 2:
        return None
    if len(d) < FEW_STEPS:
        return t_about(float(w.sum() / d.sum()), w / d, confidence)
    rng = np.random.default_rng(seed)
    idx = resample_indices(w / d, resamples, rng)  # blocks as long as the rates' drift
    rates = w[idx].sum(axis=1) / d[idx].sum(axis=1)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(rates, [alpha, 1 - alpha])
    return float(w.sum() / d.sum()), float(lo), float(hi)


MIN_SEGMENTS = 3  # synced segments an interval needs where single steps are not timed (``segments``)


def window_throughput(
    durations: Sequence[float], images: Sequence[int], segments: Sequence[int] | None = None
) -> dict[str, object]:
    """The step window's throughput fields, one rule for every timed window (single process or data-parallel).

    ``steady_img_s``, the headline: all timed images over the window's time (what timm's benchmark.py,
    the Keras benchmarks page and MLPerf quote: a slow step is a real cost of training), with its
    bootstrap interval over steps. ``median_step_img_s``: the median step's throughput beside it
    (robust to a burst of load from another process). ``steady_step_s``: the mean step time.

    ``segments``: the number of steps in each synchronised stretch of the window, for a backend whose steps
    return to the host before their work is done (``Backend.async_steps``: JAX dispatches a step and goes on
    to the next, so one step's host time is its dispatch, the last of a stretch holds the others' work). Its
    samples are then the stretches, the only spans whose time is the work's: the interval is over them (at
    least ``MIN_SEGMENTS``, else none) and no median step is reported. The headline is the same either way.
    ``step_img_s`` is then ``stretch_series``'s and ``step_segments`` the entries of it each stretch holds.
    """
    if not len(durations):
        return {}
    total_s, total_img = float(sum(durations)), float(sum(images))
    d, w = np.asarray(durations, dtype=np.float64), np.asarray(images, dtype=np.float64)
    if segments is not None:
        if sum(segments) != len(d) or any(n < 1 for n in segments):
            raise ValueError(f"segments {list(segments)} do not cover the {len(d)} timed steps")
        ends = np.cumsum(segments)[:-1]
        d = np.array([part.sum() for part in np.split(d, ends)])
        w = np.array([part.sum() for part in np.split(w, ends)])
        rates, entries = stretch_series(d, w, segments)
    else:
        rates = fold(d, w)
    out: dict[str, object] = {"timed_steps": len(durations), "timed_s": total_s, "step_img_s": rates.tolist()}
    if total_s <= 0:
        return out
    img_s = total_img / total_s
    out.update(
        steady_img_s=img_s,
        steady_step_s=total_s / len(durations),
        median_step_img_s=float(np.median(rates)) if len(rates) and segments is None else None,
    )
    if segments is None:
        ci = rate_ci(d, w)
    else:
        out["step_segments"] = entries
        ci = log_t_interval(w / d) if len(d) >= MIN_SEGMENTS else None
    if ci is not None:  # the interval's centre is the folded windows' rate; the headline is every step's
        out.update(
            steady_img_s_ci_lo=min(ci[1], img_s),
            steady_img_s_ci_hi=max(ci[2], img_s),
            steady_img_s_hw_pct=half_width_pct(img_s, min(ci[1], img_s), max(ci[2], img_s)),
        )
    return out


def stretch_series(
    durations: np.ndarray, images: np.ndarray, segments: Sequence[int], limit: int = MAX_SAMPLES
) -> tuple[np.ndarray, list[int]]:
    """(series, entries per stretch): each synchronised stretch's rate (its images over its time), repeated once per
    step up to ``limit`` steps in all, beyond once per k = ceil(n / limit) steps of the stretch (rounded up: a
    stretch shorter than k keeps one entry), so the series stays within about ``limit`` values plus one a stretch.

    ``durations`` and ``images`` are the stretches' sums, ``segments`` their steps. The series is thinned within
    each stretch, never across two: ``samples`` finds each stretch's rate at the start of its entries whatever the
    window's length. Until 2026-12-06 the per-step copies were folded like single steps (``fold``): past 400 steps
    the windows crossed stretches and no longer lined up with the stretches' steps, and every verdict read such a
    row (a Keras/JAX full profile: ~4,700 steps) as one run of independent steps, its intervals far too narrow.
    Up to ``limit`` steps the series is the one recorded before, each step carrying its stretch's rate, so its
    harmonic mean is the window's images over time (the tuner reads it)."""
    steps = np.asarray(segments, dtype=np.int64)
    keep = durations > 0  # a stretch of no time has no rate (the fold dropped its steps)
    n = steps[keep].astype(np.float64)
    rates = (images[keep] / n) / (durations[keep] / n)  # as each step's copy was: bit for bit the series of before
    k = max(1, -(-int(steps.sum()) // limit))
    entries = [-(-int(m) // k) for m in steps[keep]]
    return np.repeat(rates, entries), entries


def log_t_interval(rates: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(geometric mean, low, high) of a few independent rates (fresh processes, an asynchronous backend's
    synchronised stretches): Student's t over their log rates. A percentile bootstrap of 3-6 values cannot reach
    its 95% (with 3 it covers at most 3/4: the QA audit of 2026-12-05 measured 66-81% for stretches)."""
    logs = np.log(rates)
    se = float(logs.std(ddof=1)) / math.sqrt(len(logs))
    h = t_ppf(1 - (1 - confidence) / 2, len(logs) - 1) * se
    m = float(logs.mean())
    return math.exp(m), math.exp(m - h), math.exp(m + h)


def t_about(rate: float, rates: Samples, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(rate, low, high): Student's t interval of a few steps' log rates, about ``rate`` (the window's images over its
    time, the headline, not their geometric mean: a stalled step weighs by its duration there)."""
    logs = np.log(np.asarray(rates, dtype=np.float64))
    h = t_ppf(1 - (1 - confidence) / 2, len(logs) - 1) * float(logs.std(ddof=1))
    h /= math.sqrt(len(logs))
    return rate, rate * math.exp(-h), rate * math.exp(h)


def samples(rates: Sequence[float], segments: Sequence[int] | None = None) -> list[list[float]]:
    """A row's step rates as the verdicts' samples (``bench.measure.tuning.ratio_ci``): its steps, one process's,
    or, where its steps were timed in synchronised stretches (``segments``), one sample per stretch, each its
    own draw (``stretch_rates``): the stretch's rate repeated once per step read as that many independent steps,
    and Keras/JAX rows of equal speed were called different in 26-57% of simulated comparisons (QA, 2026-12-05).
    A series that does not map onto its stretches is read as its steps, as before."""
    per_stretch = stretch_rates(rates, segments)
    return [list(rates)] if per_stretch is None else [[r] for r in per_stretch]


FOLDED_AT = 400  # MAX_SAMPLES when stretch-timed rows' series were folded across stretches (until 2026-12-06)


def stretch_rates(rates: Sequence[float], segments: Sequence[int] | None) -> list[float] | None:
    """The rate of each synchronised stretch from a row's ``step_img_s`` and ``step_segments``; None where the row
    was timed step by step or its series does not map onto its stretches.

    ``segments`` counts each stretch's entries of the series (``stretch_series``), which begin with its rate.
    A record written before 2026-12-06 with more than 400 timed steps holds the per-step copies folded in windows
    of k = ceil(steps / 400) consecutive steps (a ragged tail dropped) and ``segments`` in steps: a window wholly
    inside a stretch is exactly its rate, one crossing two is a mix of both, so each stretch's rate is read from
    its first whole window. A stretch of fewer than 2k - 1 steps may have none (the first, partial epoch) and
    gives no sample: the other stretches are still independent draws, where reading the folded series as steps
    took the row's few stretches for hundreds of independent samples."""
    if segments is None:
        return repeated_runs(rates)
    if not segments or not all(type(n) is int and n > 0 for n in segments):
        return None
    starts = np.concatenate([[0], np.cumsum(segments)[:-1]]).astype(int)
    if sum(segments) == len(rates):
        return [float(rates[i]) for i in starts]
    steps = sum(segments)
    k = -(-steps // FOLDED_AT)
    if k < 2 or len(rates) != steps // k:  # not the old fold's shape: nothing to derive the stretches from
        return None
    found = []
    for start, n in zip(starts, segments, strict=True):
        first = -(-int(start) // k)  # the first window that begins inside the stretch
        if (first + 1) * k <= start + n and first < len(rates):
            found.append(float(rates[first]))
    return found or None


LEGACY_RUN_SHARE = 0.75  # at least this share of a record's entries in runs of equal rates: its stretches repeated


def repeated_runs(rates: Sequence[float]) -> list[float] | None:
    """The stretch rates of a record written before ``step_segments`` (2026-12-05): a stretch-timed row's series
    then held each stretch's rate once per step, exact copies, so its runs of 2 or more equal values are its
    stretches (a single value between two runs: a fold window that crossed them, dropped). None for a row timed
    step by step: rates from a nanosecond clock are not equal twice in a row, so it has no such runs; a series
    with fewer than LEGACY_RUN_SHARE of its entries in runs is read as steps, as before."""
    values = [float(r) for r in rates]
    runs = [(v, len(list(group))) for v, group in itertools.groupby(values)]
    long = [(v, n) for v, n in runs if n >= 2]
    if not values or sum(n for _, n in long) < LEGACY_RUN_SHARE * len(values):
        return None
    return [v for v, _ in long]


def median_ci(
    samples: Sequence[float], confidence: float = CONFIDENCE, resamples: int = RESAMPLES, seed: int = SEED
) -> tuple[float, float, float] | None:
    """(median, low, high): the percentile (block) bootstrap interval of the median of a series in time
    order; None for fewer than 2 samples."""
    x = np.asarray(samples, dtype=np.float64)
    if len(x) < 2:
        return None
    rng = np.random.default_rng(seed)
    idx = resample_indices(x, resamples, rng)
    meds = np.median(x[idx], axis=1)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(meds, [alpha, 1 - alpha])
    return float(np.median(x)), float(lo), float(hi)


def half_width_pct(centre: float, lo: float, hi: float) -> float:
    """Half the interval's width as a percentage of its centre (the estimate)."""
    return 100.0 * (hi - lo) / 2 / centre if centre else float("nan")


LOPSIDED = 0.2  # the two sides of an interval differ by more than this share of the larger: ± would misdraw it
LOPSIDED_MIN = 0.01  # ... and by more than this share of the figure: 1,215.6 [1,211.3, 1,218.4] reads as ± 3.6


def lopsided(centre: float, lo: float, hi: float) -> bool:
    """Whether ``centre ± (hi - lo) / 2`` would misdraw the interval: its sides differ by more than ``LOPSIDED``
    of the larger and by more than ``LOPSIDED_MIN`` of the centre, or the half-width exceeds the centre (a
    bootstrap over a few slow steps gave 806.6 [443, 2,200], which ± wrote as 806.6 ± 878.8, a lower end below 0
    that the interval does not have)."""
    below, above = centre - lo, hi - centre
    apart = abs(above - below)
    return (apart > LOPSIDED * max(below, above) and apart > LOPSIDED_MIN * abs(centre)) or (hi - lo) / 2 > centre
