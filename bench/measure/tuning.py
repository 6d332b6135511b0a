"""The tuner's decisions, from measured rows only: who survives a rung, who keeps the accuracy, when compile pays.

Search: successive halving (Jamieson & Talwalkar 2016) with an interval drop. Every runnable
configuration gets a short training window (rung 0); each rung keeps at most half, by the
headline throughput, and drops at once any whose 95% interval lies wholly below the leader's;
survivors train twice as long in the next rung. A throughput without an interval (a window of too
few timed steps, or of too few synchronised stretches where steps return early: Keras on JAX times
one stretch an epoch and needs 3) is not ranked while a longer rung can time more: its
configuration races on, as one that timed nothing does. Where no longer rung follows, the point
estimates rank, and the race says where its leader was not shown faster (``tie``). Why not an
F-race: its Friedman test blocks over many problem instances, and a (task, backend) pair is one
instance; halving also fixes the total work in advance, which is what a wall-clock budget needs.
The default configuration runs in every rung whatever its rank: it is the control the speed-up
and the accuracy floor are measured against, at the same training length.

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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from bench.measure import stats
from bench.measure.equivalence import welch
from bench.measure.stats import CONFIDENCE, RESAMPLES, SEED
from bench.measure.student import t_ppf, t_sf

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
    unranked: list[str] = field(default_factory=list)  # kept without a throughput interval: to a longer rung


def measured(t: Trial) -> bool:
    """Whether ``t``'s throughput has its 95% interval: a window of too few timed steps (or synchronised stretches,
    where steps return early) has none, and its point estimate alone shows no difference."""
    return bool(t.img_s) and t.lo is not None and t.hi is not None


def decide(trials: Sequence[Trial], keep: int, final: bool = True, longer: bool = False) -> Decision:
    """One rung of successive halving: keep at most ``keep`` configurations (plus the default). ``final``: the
    rung trains as long as the task does, so a configuration below the accuracy floor is dropped; in a shorter
    rung it never leads but may race on by its throughput. ``longer``: a longer rung follows for the configurations
    kept, so one timed without an interval races on to it unranked; without one, point estimates rank it."""
    dropped: dict[str, str] = {}
    ok, untimed = [], []
    for t in trials:
        if t.status != "ok":
            dropped[t.config] = f"{t.status}: {t.error}"
        elif not t.img_s and final:
            dropped[t.config] = "no timed steps: the task's training ended within the first step and the warm-up"
        elif not t.img_s or (longer and not measured(t)):
            # a rung shorter than the task timed nothing of it (steps_per_execution 32 over epochs of 20 steps:
            # an epoch is one execution, all of it warm-up): unmeasured is not slow, so it races on in a longer
            # rung (QA, 2026-12-06: Keras's largest steps_per_execution were dropped in every first rung). Nor is
            # a throughput without an interval, while a longer rung can time more: Keras on JAX's one-epoch rung 0
            # of mnist-lenet5 is one synchronised stretch, and its bf16 was dropped on two point estimates in a race
            # that then ended, 22 s into its 21 minutes (QA, 2026-12-08)
            untimed.append(t.config)
        else:
            ok.append(t)
    # The control: the default that trained, timed or not (a rung too short for its window still measured its
    # accuracy): untimed, it had left the floor off and the default out of the next rung (QA, 2026-12-05).
    default = next((t for t in trials if t.is_default and t.status == "ok"), None)
    # Every configuration that trained is held to the floor, timed or not: an untimed one (its epochs within the
    # first step and the warm-up) still measured its accuracy. Only the timed were, and Keras (TF)'s bf16 with
    # steps_per_execution 8 and 32, at the 0.3593 that put plain bf16 below the floor, "raced to the end" beside it
    # (QA, 2026-12-07). Below the floor, an untimed one races on in a shorter rung as a timed one does.
    trained = [t for t in trials if t.status == "ok"]
    below = {} if default is None else {t.config: why for t in trained if (why := floor_failure(default, t))}
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
            shown = "" if leader is None or t is leader else _not_shown(t, leader)
            dropped[t.config] = f"halving: rank {rank} of {len(racing)} by throughput (kept the best {keep}){shown}"
        else:
            kept.append(t.config)
    for t in ok:
        if t.config in below and t.config not in kept:
            dropped.setdefault(t.config, f"below the accuracy floor: {below[t.config]}")
    kept += [c for c in untimed if c not in kept]
    if default is not None and default.config not in kept:
        kept.append(default.config)  # the control runs in every rung
        dropped.pop(default.config, None)
    return Decision(kept, dropped, below, leader.config if leader else None, untimed)


def _clearly_below(t: Trial, leader: Trial) -> bool:
    return t.hi is not None and leader.lo is not None and t.hi < leader.lo


NO_INTERVAL = "too few timed steps for an interval"


def _not_shown(t: Trial, leader: Trial) -> str:
    """What a drop by rank rests on where ``t`` was not shown slower than ``leader``: point estimates without an
    interval (no longer rung followed: ``decide``'s ``longer``), or intervals that overlap."""
    if not measured(t) or not measured(leader):
        return f"; by point estimates ({NO_INTERVAL}, and no longer rung to time more): not shown slower"
    if not _clearly_below(t, leader):
        return "; its interval overlaps the leader's: not shown slower"
    return ""


def tie(trials: Sequence[Trial], decision: Decision) -> str:
    """Where the race's last rung did not show its leader faster than every other configuration that kept the
    accuracy floor, in words ("" where it did): the leader then stands on its point estimate alone, and the fresh
    processes measure it against the defaults, which stand unless it is measured faster there."""
    by_config = {t.config: t for t in trials}
    leader = by_config.get(decision.leader or "")
    if leader is None:
        return ""
    rivals = [
        t for t in trials if t is not leader and t.status == "ok" and t.img_s and t.config not in decision.below_floor
    ]
    unmeasured = [t.config for t in rivals if not measured(t) or not measured(leader)]
    overlapping = [t.config for t in rivals if measured(t) and measured(leader) and not _clearly_below(t, leader)]
    if not unmeasured and not overlapping:
        return ""
    said = [
        *([f"{', '.join(overlapping)} (intervals overlap)"] if overlapping else []),
        *([f"{', '.join(unmeasured)} ({NO_INTERVAL})"] if unmeasured else []),
    ]
    lead = f"{leader.config} leads on its point estimate"
    return f"a tie at its last rung: {lead}, not shown faster than {'; '.join(said)}"


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
    2 or more (Welch's t: with 2-3 repeats a side the normal quantile's "95%" left out a true difference of 0
    in 12-18% of simulated pairs, QA 2026-12-05), else two binomial proportions over ``n_test`` images each."""
    if repeats is not None and min(len(repeats[0]), len(repeats[1])) >= 2:
        a, b = repeats
        va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
        if va + vb == 0:
            return 0.0
        df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
        return t_ppf(0.975, df) * math.sqrt(va + vb)
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

# Why the processes, not their steps, are the sample once a side has several. A fresh process of the same row
# runs 5-15% off another on a shared VM (one 36% off), far more than its own steps vary, so the spread between
# processes is the error that matters, and with 2-5 processes a side it must be read from 2-5 numbers. A
# bootstrap that draws the processes (then steps within each) reads it as if those few were the population:
# for two equal sides of 3 processes each with 10% spread between processes, its 95% interval left out 1 in
# 21% of 300 simulated comparisons (33% with 2 a side, 47% with 1 against 3), so "faster" was said of equal
# speeds one time in five. Student's t over the processes' log rates (Welch's with several a side) pays for the
# few draws with its wider quantile: 3-4% in the same simulations (2.7-7.3% of 150 each in tests/test_tuning.py).
# A side measured in one process has no spread between processes to read; its steps are all there is (the block
# bootstrap), and the sentences say so (bench.report.speedup.ONE_PROCESS).


@dataclass(frozen=True)
class Spread:
    """The spread between fresh processes on one machine, read from processes other than the one a side compared
    (a tune's race trained the same configurations in fresh processes of their own): the variance of a process's
    log rate about its configuration's mean, its degrees of freedom, and the processes it was read from."""

    var: float
    df: int
    processes: int


def process_spread(groups: Iterable[Sequence[float]]) -> Spread | None:
    """``Spread`` pooled over ``groups``, each one configuration's throughputs in its fresh processes (a positive
    rate each); None where no configuration ran in two."""
    squares, df, processes = 0.0, 0, 0
    for group in groups:
        logs = np.log(np.asarray([v for v in group if v > 0], dtype=np.float64))
        if len(logs) > 1:
            squares += float(((logs - logs.mean()) ** 2).sum())
            df, processes = df + len(logs) - 1, processes + len(logs)
    return Spread(squares / df, df, processes) if df else None


def ratio_ci(
    a: Steps | Sequence[Steps],
    b: Steps | Sequence[Steps],
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    spread: Spread | None = None,
) -> tuple[float, float, float] | None:
    """(ratio, low, high): throughput ``a`` over throughput ``b``, with its interval; None with fewer than 2
    steps a side or a step rate that is not positive.

    A side is one process's step rates, or a list of them, one per fresh process. One process a side: the ratio
    of images over time of each side's steps, with a percentile bootstrap over blocks of consecutive steps, or
    with ``spread`` (the spread between processes read elsewhere: ``_with_spread``) Student's t over it, never
    narrower than the steps' interval. Several on either side: the ratio of the sides' geometric mean process
    rates (``side_rate``), with Student's t over the processes' log rates (``_over_processes``; why above).
    """
    xs, ys = _processes(a), _processes(b)
    if not _usable(xs, ys):
        return None
    alpha = (1 - confidence) / 2
    if _several(xs, ys) or _few_steps(xs, ys):
        d, se, df = _over_steps(xs[0], ys[0], resamples, seed) if _few_steps(xs, ys) else _over_processes(xs, ys)
        h = t_ppf(1 - alpha, df) * se if se > 0 else 0.0
        ci = math.exp(d), math.exp(d - h), math.exp(d + h)
    else:
        ratio, ratios = _resampled_ratios(xs[0], ys[0], resamples, seed)
        lo, hi = np.quantile(ratios, [alpha, 1 - alpha])
        ci = ratio, float(lo), float(hi)
    if spread is None or min(len(xs), len(ys)) > 1:
        return ci
    return _with_spread(ci, spread, alpha, len(xs), len(ys))


def _with_spread(
    ci: tuple[float, float, float], spread: Spread, alpha: float, n_a: int, n_b: int
) -> tuple[float, float, float]:
    """A side of one process, the spread between processes read elsewhere (``Spread``): each side's mean log rate
    over its ``n`` processes has ``spread.var / n`` of it, and Student's t with its degrees of freedom bounds their
    difference; ``ci`` (the steps' own interval, or the other side's spread taken for both) where that is wider. A
    process of one configuration runs 5-15% off another on a shared VM (docs/timing.md), and one process's steps
    cannot show it: the tune's verdicts read one process a side against intervals of a few percent, and one
    process against two of another backend's defaults measured twice by those two alone (QA, 2026-12-06)."""
    ratio, lo, hi = ci
    h = t_ppf(1 - alpha, spread.df) * math.sqrt(spread.var * (1 / n_a + 1 / n_b))
    return ratio, min(lo, ratio * math.exp(-h)), max(hi, ratio * math.exp(h))


def ratio_p(
    a: Steps | Sequence[Steps], b: Steps | Sequence[Steps], resamples: int = RESAMPLES, seed: int = SEED
) -> float | None:
    """The two-sided p-value that throughputs ``a`` and ``b`` are equal; None where ``ratio_ci`` gives no interval.
    Several processes on either side: the t-test over processes that ``ratio_ci``'s interval inverts. One process
    a side: twice the smaller of the shares of the bootstrap's resampled ratios at or below 1 and at or above 1
    (at most 1), the same draws as the interval (blocks of steps), so the test holds the steps' likeness in time,
    which a rank test over single steps (Mann-Whitney) takes as independence: with hundreds of steps it called a
    few % of drift within a run significant."""
    xs, ys = _processes(a), _processes(b)
    if not _usable(xs, ys):
        return None
    if len(xs) > 1 or len(ys) > 1 or _few_steps(xs, ys):
        d, se, df = _over_steps(xs[0], ys[0], resamples, seed) if _few_steps(xs, ys) else _over_processes(xs, ys)
        if se == 0:
            return 1.0 if d == 0 else 0.0
        return 2 * t_sf(abs(d) / se, df)
    r = _resampled_ratios(xs[0], ys[0], resamples, seed)[1]
    smaller = min(float(np.mean(r <= 1.0)), float(np.mean(r >= 1.0)))
    return min(1.0, 2 * smaller)


def rate_ci(
    side: Sequence[Steps], confidence: float = CONFIDENCE, resamples: int = RESAMPLES, seed: int = SEED
) -> tuple[float, float, float] | None:
    """(rate, low, high): a side's throughput (``side_rate``) with its interval, one list of step rates per fresh
    process: over several, Student's t over their log rates, as ``ratio_ci``; in one, the block bootstrap over
    its steps. None under 2 steps or with a rate that is not positive."""
    groups = _processes(side)
    if not _usable(groups, groups):
        return None
    if _several(groups):
        return stats.log_t_interval(_rates(groups), confidence)
    alpha = (1 - confidence) / 2
    (g,) = groups
    if len(g) < stats.FEW_STEPS:  # too few steps for the bootstrap's 95% (bench.measure.stats.FEW_STEPS)
        return stats.t_about(mean_rate(g), g, confidence)
    idx = stats.resample_indices(g, resamples, np.random.default_rng(seed))
    lo, hi = np.quantile(len(g) / (1.0 / g[idx]).sum(1), [alpha, 1 - alpha])
    return mean_rate(g), float(lo), float(hi)


ONE_SIDE = " (one process a side)"
BOOTSTRAP = f"a bootstrap over blocks of consecutive steps{ONE_SIDE}"
FEW = f"Student's t over the log step rates of a side of fewer than {stats.FEW_STEPS} steps{ONE_SIDE}"


def spread_words(spread: Spread) -> str:
    """Where ``ratio_ci``'s ``spread`` came from, in words."""
    return (
        f"the spread between the race's fresh processes of the same configurations ({spread.processes} processes, "
        f"{spread.df} degrees of freedom)"
    )


def ci_method(*sides: Steps | Sequence[Steps], groups: str = "processes", spread: Spread | None = None) -> str:
    """In words, the interval ``ratio_ci`` (two sides, with ``spread`` as given to it) or ``rate_ci`` (one) gives for
    these sides, so a report names the method it used, not one it assumed; ``groups``: what the caller's lists of
    step rates are (processes, or the synchronised stretches of asynchronously dispatched steps)."""
    processes = list(map(_processes, sides))
    if _several(*processes):
        said = f"Student's t over the log rates of the {groups}"
        if spread is not None and len(sides) == 2 and min(map(len, processes)) == 1:  # read with it (ratio_ci)
            said += f" and {spread_words(spread)}"
        return said
    if spread is not None:
        return f"Student's t over {spread_words(spread)}, no narrower than the steps' own{ONE_SIDE}"
    return FEW if _few_steps(*processes) else BOOTSTRAP


def verdict_method(*sides: Steps | Sequence[Steps], spread: Spread | None = None) -> str:
    """``ci_method`` for a verdict line, whose own note says "one process a side" (``bench.report.speedup``): the
    short-window t named where it was used, not only in the best / default lines (QA, 2026-12-06)."""
    return ci_method(*sides, spread=spread).removesuffix(ONE_SIDE)


def _few_steps(*sides: list[np.ndarray]) -> bool:
    """One process on every side, some side of fewer than ``stats.FEW_STEPS`` steps: a bootstrap of so few cannot
    reach its 95% (a 4-step side held the truth in 2 of 3 simulated windows), so its steps are the sample."""
    return not _several(*sides) and any(len(g) < stats.FEW_STEPS for side in sides for g in side)


def _over_steps(x: np.ndarray, y: np.ndarray, resamples: int, seed: int) -> tuple[float, float, float]:
    """(log of x's images over time over y's, its standard error, degrees of freedom) for ``_few_steps``: about the
    ratio the table shows (images over time: the steps' geometric mean read a torch row with stalls at 2x its
    headline), each side's variance from ``_log_rate_variance``, the degrees of freedom Welch-Satterthwaite's."""
    (va, dfa), (vb, dfb) = _log_rate_variance(x, resamples, seed), _log_rate_variance(y, resamples, seed)
    spread = va**2 / dfa + vb**2 / dfb  # a side of many steps has df inf: no term
    df = (va + vb) ** 2 / spread if spread > 0 else float(min(dfa, dfb))
    return math.log(mean_rate(x) / mean_rate(y)), math.sqrt(va + vb), df


def _log_rate_variance(g: np.ndarray, resamples: int, seed: int) -> tuple[float, float]:
    """(variance of the log of one process's images over time, its degrees of freedom): under ``stats.FEW_STEPS``
    steps, its log step rates' over n (Student's, n - 1); else the block bootstrap's draws' (df inf), which hold
    the drift of a VM's speed that independent steps would leave out (read as independent steps, a torch row under
    load put a 4-step Keras side 19.6-27.6x ahead of it; with its blocks, 14.4-37.6x)."""
    if len(g) < stats.FEW_STEPS:
        return float(np.log(g).var(ddof=1)) / len(g), float(len(g) - 1)
    idx = stats.resample_indices(g, resamples, np.random.default_rng(seed))
    return float(np.log(len(g) / (1.0 / g[idx]).sum(1)).var(ddof=1)), math.inf


def _several(*sides: list[np.ndarray]) -> bool:
    """Whether some side holds several processes: then the processes are the sample, not one process's steps."""
    return any(len(side) > 1 for side in sides)


def _rates(groups: list[np.ndarray]) -> np.ndarray:
    """Each process's throughput: images over time of its steps."""
    return np.array([mean_rate(g) for g in groups])


def side_rate(side: Steps | Sequence[Steps]) -> float:
    """A side's throughput as its interval reads it: one process's images over time; over several fresh processes,
    the geometric mean of theirs (each process one draw of the machine's state, weighed alike)."""
    return float(np.exp(np.log(_rates(_processes(side))).mean()))


def _processes(side: Steps | Sequence[Steps]) -> list[np.ndarray]:
    """One array of step rates per process: a flat list of numbers is one process."""
    if len(side) and not isinstance(side[0], (int, float, np.floating, np.integer)):
        groups = [np.asarray(g, dtype=np.float64) for g in side]  # a list of processes
    else:
        groups = [np.asarray(side, dtype=np.float64)]
    return [g for g in groups if len(g)]


def _usable(xs: list[np.ndarray], ys: list[np.ndarray]) -> bool:
    """At least 2 steps a side, every step rate positive."""
    return min(sum(map(len, xs)), sum(map(len, ys))) >= 2 and not any((g <= 0).any() for g in (*xs, *ys))


def _over_processes(xs: list[np.ndarray], ys: list[np.ndarray]) -> tuple[float, float, float]:
    """(log of a's ``side_rate`` over b's, its standard error, degrees of freedom) from the processes' log rates:
    Welch's t with several processes a side; with one on a side, that side's spread between processes is taken
    to be the other's (one machine's noise), the pooled t with the other side's degrees of freedom."""
    a, b = np.log(_rates(xs)), np.log(_rates(ys))
    if len(a) > 1 and len(b) > 1:
        diff, se, df = welch(b, a)  # mean(a) - mean(b)
        return diff, se, df
    several = a if len(a) > 1 else b
    se = float(several.std(ddof=1)) * math.sqrt(1 / len(a) + 1 / len(b))
    return float(a.mean() - b.mean()), se, float(len(several) - 1)


def _resampled_ratios(x: np.ndarray, y: np.ndarray, resamples: int, seed: int) -> tuple[float, np.ndarray]:
    """(one process's throughput over another's, ``resamples`` bootstrap draws of that ratio): blocks of
    consecutive steps drawn within each (``bench.measure.stats.resample_indices``)."""
    rng = np.random.default_rng(seed)
    ia, ib = stats.resample_indices(x, resamples, rng), stats.resample_indices(y, resamples, rng)
    ratios = (len(x) / (1.0 / x[ia]).sum(1)) / (len(y) / (1.0 / y[ib]).sum(1))
    return mean_rate(x) / mean_rate(y), ratios


# an interval of a ratio wider than this many times, low to high, bounds nothing a reader can use
WIDE = 100.0


def ratio_text(r: float, lo: float, hi: float) -> str:
    """ "1.23x [1.10, 1.38]"; an interval wider than ``WIDE`` in figures that still read, said so: two processes
    a side that ran 2x apart give Student's t one degree of freedom, and "[0.00, 9746.00]" read as a bug."""
    if hi <= WIDE * lo:
        return f"{r:.2f}x [{lo:.2f}, {hi:.2f}]"
    return f"{r:.2f}x [{_figure(lo)}, {_figure(hi)}] (over {WIDE:g}x wide: too few samples to bound it)"


def _figure(x: float) -> str:
    """Two significant figures below 1, thousands separated above 100."""
    return f"{x:.2g}" if x < 1 else f"{x:,.0f}" if x >= 100 else f"{x:.2f}"


def verdict(fast: str, slow: str, ci: tuple[float, float, float] | None) -> str:
    """ "PyTorch 3.1x [2.9, 3.3] faster than Keras (TF)", or "no significant difference" when the interval holds 1."""
    if ci is None:
        return f"{fast} vs {slow}: no interval (too few timed steps)"
    r, lo, hi = ci
    if lo <= 1.0 <= hi:
        return f"no significant difference between {fast} and {slow} ({ratio_text(r, lo, hi)})"
    return f"{fast} {ratio_text(r, lo, hi)} faster than {slow}"
