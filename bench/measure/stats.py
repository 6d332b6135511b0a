"""Uncertainty of a timing: bootstrap confidence interval of a median, and a rank test between two runs.

Both are seeded and vectorised: a bootstrap of 2,000 resamples of at most ``MAX_SAMPLES``
values takes a few milliseconds, and the same inputs always give the same interval.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RESAMPLES = 2000
MAX_SAMPLES = 400  # longer series are folded into small windows (see fold) before resampling
SEED = 0
CONFIDENCE = 0.95


def fold(values: Sequence[float], weights: Sequence[float], limit: int = MAX_SAMPLES) -> np.ndarray:
    """Rates over small windows of consecutive samples: sum(weights) / sum(values) per window.

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
    return w[keep] / d[keep]


def median_ci(samples: Sequence[float], confidence: float = CONFIDENCE, resamples: int = RESAMPLES,
              seed: int = SEED) -> tuple[float, float, float] | None:  # fmt: skip
    """(median, low, high): the percentile bootstrap interval of the median; None for fewer than 2 samples."""
    x = np.asarray(samples, dtype=np.float64)
    if len(x) < 2:
        return None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(resamples, len(x)), dtype=np.int32)
    meds = np.median(x[idx], axis=1)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(meds, [alpha, 1 - alpha])
    return float(np.median(x)), float(lo), float(hi)


def half_width_pct(median: float, lo: float, hi: float) -> float:
    """Half the interval's width as a percentage of the median."""
    return 100.0 * (hi - lo) / 2 / median if median else float("nan")


def rank_test_p(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided Mann-Whitney U p-value that samples ``a`` and ``b`` come from one distribution."""
    if len(a) < 2 or len(b) < 2:
        return None
    from scipy.stats import mannwhitneyu

    return float(mannwhitneyu(np.asarray(a, float), np.asarray(b, float), alternative="two-sided").pvalue)
