"""The history's change detection on synthetic series whose truth the test knows (bench.history.changes)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.history import changes

Z95 = changes.Z95


def fit(x: np.ndarray, sigma: float) -> list[int]:
    """Steps of ``x`` whose points carry 95% intervals of +-1.96 sigma (what a run reports)."""
    return changes.steps(x, changes.sigmas(x, x - Z95 * sigma, x + Z95 * sigma))


@pytest.mark.parametrize("at", [5, 17, 30])
def test_a_clean_step_is_found_at_its_point(at: int):
    rng = np.random.default_rng(at)
    x = 100 + rng.normal(0, 1.0, 40)
    x[at:] -= 6  # six sigma: a 6% slowdown against 1% noise
    assert fit(x, 1.0) == [at]


def test_noise_within_the_intervals_finds_no_step():
    rng = np.random.default_rng(0)
    found = [fit(100 + rng.normal(0, 1.0, n), 1.0) for n in rng.integers(4, 80, 200)]
    assert sum(bool(f) for f in found) == 0


def test_a_series_scattering_more_than_its_intervals_say_is_read_at_its_own_noise():
    """Intervals of 0.2 sigma (a VM's speed changing between runs): the series' own noise sets the weights."""
    rng = np.random.default_rng(3)
    false = sum(bool(fit(100 + rng.normal(0, 1.0, 40), 0.2)) for _ in range(100))
    assert false <= 3


def test_an_outlier_is_no_level_and_a_step_below_min_change_is_not_reported():
    x = np.full(30, 100.0) + np.random.default_rng(1).normal(0, 0.1, 30)
    x[12] = 130
    assert fit(x, 0.1) == []
    y = np.full(30, 100.0) + np.random.default_rng(2).normal(0, 0.01, 30)
    y[15:] += 0.5  # 50 sigma, but 0.5%: below the 1% a step must move
    assert fit(y, 0.01) == []
    assert changes.steps(y, changes.sigmas(y, y - 0.02, y + 0.02), min_change=0.001) == [15]


def test_a_slow_drift_is_reported_and_a_clean_step_or_noise_is_not_a_drift():
    rng = np.random.default_rng(4)
    x = 100 * np.linspace(1, 0.85, 40) + rng.normal(0, 1.0, 40)  # 15% slower over 40 runs
    d = changes.drift(x, fit(x, 1.0))
    assert d is not None and -0.20 < d.change < -0.10 and d.p < 0.01 and d.tau < 0
    y = 100 + rng.normal(0, 1.0, 40)
    y[20:] -= 8
    assert changes.drift(y, fit(y, 1.0)) is None
    z = 100 + rng.normal(0, 1.0, 40)
    assert changes.drift(z, fit(z, 1.0)) is None


def test_the_newest_point_test_fires_on_a_regression_only_in_the_worse_direction():
    rng = np.random.default_rng(5)
    base = 100 + rng.normal(0, 1.0, 20)
    sig = np.full(21, 1.0)
    slower = changes.newest(np.append(base, 90), sig, higher_is_better=True)
    assert slower.regression and not slower.improvement and slower.z < -4 and slower.baseline == 20
    faster = changes.newest(np.append(base, 110), sig, higher_is_better=True)
    assert faster.improvement and not faster.regression
    # a time: higher is worse
    assert changes.newest(np.append(base, 110), sig, higher_is_better=False).regression
    # within the noise, or beyond z but under the minimum change: no regression
    assert not changes.newest(np.append(base, 98.5), sig, higher_is_better=True).regression
    tight = np.full(21, 0.01)
    small = changes.newest(np.append(100 + rng.normal(0, 0.01, 20), 97), tight, True)
    assert small.z < -4 and not small.regression  # 3% < the 5% minimum change


def test_the_newest_point_uses_only_the_lookback_window():
    old, recent = np.full(30, 50.0), np.full(10, 100.0)
    x = np.concatenate([old, recent, [99.0]])
    assert not changes.newest(x, np.full(len(x), 0.5), True, lookback=10).regression
    assert changes.newest(x, np.full(len(x), 0.5), True, lookback=10).baseline == 10
    assert changes.newest(np.array([1.0]), np.array([0.1]), True) is None


def test_a_pooled_noise_floors_the_newest_points_scale_and_only_where_it_is_the_larger():
    """A training time 10.0, 10.1 then 11.0 in its own noise (one successive difference, 0.105) is z 9; in a pooled
    noise of 5% of the baseline's median (0.50) it is z 1.9; a pool under its own noise changes nothing."""
    x, sig = np.array([10.0, 10.1, 11.0]), np.full(3, changes.noise(np.array([10.0, 10.1])))
    own = changes.newest(x, sig, higher_is_better=False)
    assert own is not None and own.regression and not own.pooled and own.z == pytest.approx(0.95 / sig[0])
    pooled = changes.newest(x, sig, higher_is_better=False, pooled=0.05)
    assert pooled is not None and pooled.pooled and not pooled.regression
    assert pooled.z == pytest.approx(0.95 / (0.05 * 10.05)) and pooled.change == own.change
    assert changes.newest(x, sig, higher_is_better=False, pooled=0.001) == own


def test_the_medians_are_numpys_to_the_bit():
    """``changes.median`` and ``nanmedian`` stand in for numpy's (whose overhead was most of a store's check): the same
    float for odd and even lengths, ties, values many magnitudes apart, infinities, and NaN as numpy treats it."""
    rng = np.random.default_rng(3)
    cases = [np.array(v) for v in ([1.0], [2.0, 1.0], [0.1, 0.2, 0.3, 0.7], [np.inf, 1.0], [-np.inf, np.inf])]
    for n in range(1, 40):
        for _ in range(50):
            x = rng.normal(100, 30, n) * 10 ** rng.uniform(-12, 12)
            cases.append(np.round(x, 1) if rng.random() < 0.3 else x)  # ties
    same = np.vectorize(lambda a, b: a == b or (np.isnan(a) and np.isnan(b)))
    with np.errstate(invalid="ignore"):  # numpy's own -inf + inf
        for x in cases:
            holed = np.where(rng.random(len(x)) < 0.3, np.nan, x)
            assert same(changes.median(x), np.median(x)) and same(changes.median(holed), np.median(holed)), x
            assert same(changes.nanmedian(x), np.nanmedian(x)), x
            if not np.isnan(holed).all():  # numpy warns of an all-NaN slice
                assert same(changes.nanmedian(holed), np.nanmedian(holed)), holed
    assert np.isnan(changes.nanmedian(np.array([np.nan, np.nan])))
