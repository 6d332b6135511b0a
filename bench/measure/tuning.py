"""The tuner's decisions, from measured rows only: who survives a rung, who keeps the accuracy, when compile pays.

Search: successive halving (Jamieson & Talwalkar 2016) with an interval drop. Every runnable
configuration gets a short training window (rung 0); each rung keeps at most half, by the
headline throughput, and drops at once any whose 95% interval lies wholly below the leader's;
survivors train twice as long in the next rung. Why not an F-race: its Friedman test blocks over
many problem instances, and a (task, backend) pair is one instance; halving also fixes the total
work in advance, which is what a wall-clock budget needs. The default configuration runs in every
rung whatever its rank: it is the control the speed-up and the accuracy floor are measured
against, at the same training length.

Accuracy floor: a configuration may be "best" only if its test accuracy is not worse than the
default's beyond the noise: where the task has a target accuracy that the default reached, it
must reach it too; otherwise the difference of the two accuracies must stay within the 95%
noise of two binomial proportions over the same test images (with repeats, the normal
interval of the difference of the repeats' means). Every trial of one rung uses the same seed,
initialisation and batch order, so a configuration that loses accuracy loses it to its numerics.
That noise is the test set's only: a rung shorter than the task's training also carries the
trajectory's, which numerics move chaotically (on the 2026-12-05 AMD cifar10-cnn tune, one epoch of
fp32 in channels_last, the default's arithmetic in another memory layout, tested 0.053 above the
default, beyond the binomial 0.041). So in such a rung the floor keeps a configuration from leading
but does not drop it: it races on by throughput and is judged again in the next, longer rung; in the
rung of the task's own length the floor drops (and the final rows are checked once more).

Break-even: a configuration that pays compile time up front (its first-step overhead's excess over
the default's) saves time on every later image; after ``break_even`` steps the two have trained for
the same time.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bench.measure import stats
from bench.measure.stats import CONFIDENCE, RESAMPLES, SEED

Z95 = 1.959963984540054  # two-sided 95% normal quantile


@dataclass(frozen=True)
class Trial:
    """One configuration's row in one rung, as the race reads it."""

    config: str  # the configuration's label ("default", "compile=max-autotune, precision=bf16")
    status: str  # the row's status: only "ok" rows race
    img_s: float | None = None  # the headline throughput
    lo: float | None = None  # its 95% interval
    hi: float | None = None
    test_acc: float | None = None
    n_test: int | None = None
    reached_target: bool | None = None  # None: the task has no target accuracy
    error: str | None = None
    is_default: bool = False


@dataclass(frozen=True)
class Decision:
    kept: list[str]  # in rank order, the default included (it is the control)
    dropped: dict[str, str]  # config -> why
    below_floor: dict[str, str]  # config -> why (shown, marked, never chosen)
    leader: str | None  # the fastest configuration that keeps the accuracy floor


def decide(trials: Sequence[Trial], keep: int, final: bool = True) -> Decision:
    """One rung of successive halving: keep at most ``keep`` configurations (plus the default). ``final``: the
    rung trains as long as the task does, so a configuration below the accuracy floor is dropped; in a shorter
    rung it never leads but may race on by its throughput."""
    dropped: dict[str, str] = {}
    ok = []
    for t in trials:
        if t.status != "ok":
            dropped[t.config] = f"{t.status}: {t.error}"
        elif not t.img_s:
            dropped[t.config] = "no timed steps: the rung's training ended within the first step and the warm-up"
        else:
            ok.append(t)
    default = next((t for t in ok if t.is_default), None)
    below = {} if default is None else {t.config: why for t in ok if (why := floor_failure(default, t))}
    eligible = sorted((t for t in ok if t.config not in below), key=lambda t: -(t.img_s or 0.0))
    leader = eligible[0] if eligible else None
    racing = eligible if final else sorted(ok, key=lambda t: -(t.img_s or 0.0))
    kept: list[str] = []
    for rank, t in enumerate(racing, 1):
        if leader is not None and t is not leader and _clearly_below(t, leader):
            dropped[t.config] = (
                f"{t.img_s:,.1f} img/s [{t.lo:,.1f}, {t.hi:,.1f}] lies below the leader's interval "
                f"[{leader.lo:,.1f}, {leader.hi:,.1f}]"
            )
        elif len(kept) >= keep:
            dropped[t.config] = f"halving: rank {rank} of {len(racing)} by throughput (kept the best {keep})"
        else:
            kept.append(t.config)
    for t in ok:
        if t.config in below and t.config not in kept:
            dropped.setdefault(t.config, f"below the accuracy floor: {below[t.config]}")
    if default is not None and default.config not in kept:
        kept.append(default.config)  # the control runs in every rung
        dropped.pop(default.config, None)
    return Decision(kept, dropped, below, leader.config if leader else None)


def _clearly_below(t: Trial, leader: Trial) -> bool:
    return t.hi is not None and leader.lo is not None and t.hi < leader.lo


def floor_failure(default: Trial, t: Trial, repeats: tuple[Sequence[float], Sequence[float]] | None = None) -> str:
    """Why ``t`` loses accuracy against ``default`` beyond the noise, or "" when it keeps it."""
    if t.is_default or default.test_acc is None or t.test_acc is None:
        return ""
    if default.reached_target and t.reached_target is False:
        return "the default reached the task's target accuracy and this configuration did not"
    allowed = accuracy_noise(default.test_acc, t.test_acc, default.n_test or 0, repeats)
    gap = default.test_acc - t.test_acc
    if gap > allowed:
        return (
            f"test accuracy {t.test_acc:.4f} vs the default's {default.test_acc:.4f}: {gap:.4f} lower, "
            f"noise +-{allowed:.4f}"
        )
    return ""


def accuracy_noise(
    p_default: float, p_other: float, n_test: int, repeats: tuple[Sequence[float], Sequence[float]] | None = None
) -> float:
    """The 95% half-width of the difference of two accuracies: from the repeats' spread when each side has
    2 or more, else two binomial proportions over ``n_test`` images each."""
    if repeats is not None and min(len(repeats[0]), len(repeats[1])) >= 2:
        a, b = repeats
        return Z95 * math.sqrt(statistics.variance(a) / len(a) + statistics.variance(b) / len(b))
    if n_test <= 0:
        return math.inf
    var = (p_default * (1 - p_default) + p_other * (1 - p_other)) / n_test
    return Z95 * math.sqrt(max(var, 1.0 / n_test**2))  # at least one image's worth when both are 0 or 1


def break_even(
    default_img_s: float | None,
    best_img_s: float | None,
    default_compile_s: float | None,
    best_compile_s: float | None,
    batch_size: int,
) -> tuple[float | None, int | None]:
    """(extra up-front seconds, steps of ``batch_size`` after which they are paid back).

    Up front: each side's first-step overhead (``compile_s``: the first step's excess over a steady step,
    which for Keras with steps_per_execution = k is an execution of k batches, so neither side's first step
    is counted as work). Saved: per image, 1/default - 1/best throughput. Steps 0 when nothing extra is
    paid, None when the faster steps never pay it back (or a figure is missing)."""
    if not default_img_s or not best_img_s or default_compile_s is None or best_compile_s is None:
        return None, None
    extra = max(0.0, best_compile_s - default_compile_s)
    if extra == 0.0:
        return 0.0, 0
    saved_per_image = 1.0 / default_img_s - 1.0 / best_img_s
    if saved_per_image <= 0:
        return extra, None
    return extra, math.ceil(extra / saved_per_image / max(1, batch_size) - 1e-9)  # 30 / 0.1 = 300.00000000000006


def mean_rate(rates: Sequence[float] | np.ndarray) -> float:
    """Images over time for steps of equal size: the harmonic mean of per-step rates."""
    r = np.asarray(rates, dtype=np.float64)
    return float(len(r) / np.sum(1.0 / r))


Steps = Sequence[float]


def ratio_ci(
    a: Steps | Sequence[Steps],
    b: Steps | Sequence[Steps],
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> tuple[float, float, float] | None:
    """(ratio, low, high): throughput ``a`` over throughput ``b`` (images over time of each side's steps), with
    a percentile bootstrap interval; None with fewer than 2 steps a side.

    A side is one process's step rates, or a list of them, one per fresh process. Then the bootstrap is
    two-stage (the cluster bootstrap): it draws processes with replacement, then steps within each drawn
    process. Pooling the steps instead would leave the spread between processes out of the interval, and that
    spread is the larger error here (the same configuration twice: 0.84x and 1.09x, with ±3% intervals each).
    """
    drawn = _resampled_ratios(a, b, resamples, seed)
    if drawn is None:
        return None
    ratio, ratios = drawn
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(ratios, [alpha, 1 - alpha])
    return ratio, float(lo), float(hi)


def ratio_p(
    a: Steps | Sequence[Steps], b: Steps | Sequence[Steps], resamples: int = RESAMPLES, seed: int = SEED
) -> float | None:
    """The two-sided bootstrap p-value that throughputs ``a`` and ``b`` are equal: twice the smaller of the
    shares of ``ratio_ci``'s resampled ratios at or below 1 and at or above 1 (at most 1); None with fewer
    than 2 steps a side. The same draws as the interval (processes, then blocks of steps), so the test holds
    the steps' likeness in time, which a rank test over single steps (Mann-Whitney) takes as independence:
    with hundreds of steps it called a few % of drift within a run significant."""
    drawn = _resampled_ratios(a, b, resamples, seed)
    if drawn is None:
        return None
    r = drawn[1]
    smaller = min(float(np.mean(r <= 1.0)), float(np.mean(r >= 1.0)))
    return min(1.0, 2 * smaller)


def _resampled_ratios(
    a: Steps | Sequence[Steps], b: Steps | Sequence[Steps], resamples: int, seed: int
) -> tuple[float, np.ndarray] | None:
    """(a's throughput over b's, ``resamples`` bootstrap draws of that ratio): what ``ratio_ci`` and ``ratio_p``
    read; None with fewer than 2 steps a side or a step rate that is not positive."""
    xs, ys = _processes(a), _processes(b)
    if min(sum(map(len, xs)), sum(map(len, ys))) < 2 or any((g <= 0).any() for g in (*xs, *ys)):
        return None
    rng = np.random.default_rng(seed)
    ratios = _resampled_rates(xs, rng, resamples) / _resampled_rates(ys, rng, resamples)
    return mean_rate(np.concatenate(xs)) / mean_rate(np.concatenate(ys)), ratios


def rate_ci(
    side: Sequence[Steps], confidence: float = CONFIDENCE, resamples: int = RESAMPLES, seed: int = SEED
) -> tuple[float, float, float] | None:
    """(rate, low, high): images over time of all of a side's steps, one list per fresh process, with the same
    two-stage bootstrap interval as ``ratio_ci`` (the spread between processes in it); None under 2 steps."""
    groups = _processes(side)
    if sum(map(len, groups)) < 2 or any((g <= 0).any() for g in groups):
        return None
    rates = _resampled_rates(groups, np.random.default_rng(seed), resamples)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(rates, [alpha, 1 - alpha])
    return mean_rate(np.concatenate(groups)), float(lo), float(hi)


def pooled_rate(side: Steps | Sequence[Steps]) -> float:
    """Images over time of all of a side's steps, whichever process ran them."""
    return mean_rate(np.concatenate(_processes(side)))


def _processes(side: Steps | Sequence[Steps]) -> list[np.ndarray]:
    """One array of step rates per process: a flat list of numbers is one process."""
    if len(side) and not isinstance(side[0], (int, float, np.floating, np.integer)):
        groups = [np.asarray(g, dtype=np.float64) for g in side]  # a list of processes
    else:
        groups = [np.asarray(side, dtype=np.float64)]
    return [g for g in groups if len(g)]


def _resampled_rates(groups: list[np.ndarray], rng: np.random.Generator, resamples: int) -> np.ndarray:
    """Images over time of ``resamples`` bootstrap draws: processes with replacement, then steps within each
    (in blocks of consecutive steps, ``bench.measure.stats.resample_indices``)."""
    if len(groups) == 1:  # one process: the (block) bootstrap over its steps
        (g,) = groups
        idx = stats.resample_indices(g, resamples, rng)
        return len(g) / (1.0 / g[idx]).sum(1)
    chosen = rng.integers(0, len(groups), size=(resamples, len(groups)))
    steps = np.zeros(resamples)
    time = np.zeros(resamples)
    for slot in range(len(groups)):
        for k, g in enumerate(groups):
            rows = np.flatnonzero(chosen[:, slot] == k)
            if rows.size:  # an independent draw of g's steps for every resample that picked g in this slot
                idx = stats.resample_indices(g, rows.size, rng)
                time[rows] += (1.0 / g[idx]).sum(1)
                steps[rows] += len(g)
    return steps / time


def verdict(fast: str, slow: str, ci: tuple[float, float, float] | None) -> str:
    """ "PyTorch 3.1x [2.9, 3.3] faster than Keras (TF)", or "no significant difference" when the interval holds 1."""
    if ci is None:
        return f"{fast} vs {slow}: no interval (too few timed steps)"
    r, lo, hi = ci
    if lo <= 1.0 <= hi:
        return f"no significant difference between {fast} and {slow} ({r:.2f}x [{lo:.2f}, {hi:.2f}])"
    return f"{fast} {r:.2f}x [{lo:.2f}, {hi:.2f}] faster than {slow}"
