"""Data-parallel figures, computed once in bench from every rank's step times (issue #15).

A data-parallel step ends when the slowest rank's gradients are averaged, so the global step
``i`` lasts as long as the longest rank's step ``i`` and trains the images of all ranks' steps
``i``: ``global_steps`` folds the ranks' series into that one, and ``throughput`` gives its
steady img/s (images over the window's time) with the same bootstrap interval as a single-process
row (bench.measure.stats).

Scaling efficiency = img/s(N) / (N x img/s(1)), against the 1-worker row of the same task,
backend and scaling mode with the same threads per worker. Its 95% interval, for rows timed step by
step, is the percentile bootstrap of that ratio of window throughputs (harmonic means of the step
rates), the two rows' step rates resampled independently. Where either row was timed in synchronised
stretches (``step_segments``: Keras on JAX), the stretches are the samples, as everywhere else such a
row is read (``stats.samples``): Welch's t over the two rows' log stretch rates (``efficiency_ci``).

Time-to-target speed-up = time_to_target_s(1) / time_to_target_s(N), against the same 1-worker row
(``baseline``): how many times sooner N workers reach the task's ``train.target_acc`` than one did.

All-reduce share = 1 - t_step(no all-reduce) / t_step(data-parallel): the no-all-reduce time is
the same window timed in N concurrent workers that never join (same per-worker batches,
threads and contention, no gradient exchange). Noise can make it slightly negative; it is
reported as measured, never clipped, and beyond ``SHARE_NOISE`` said to be no share (``share_text``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from bench.measure import stats, tuning

OVERSUBSCRIBED = "oversubscribed: "  # the note's opening, which summary.md's scaling section looks for
# The openings of the notes that are a row's own data-parallel findings (bench.run.distributed, dist_worker):
# summary.md's scaling section shows them under the task's table. A row's other notes (its engine, the framework's
# known differences) are its single-process rows' too, and stay in results.csv.
REPLICAS = "weights after training "  # equal or DIFFER on every rank
AGAINST_ONE = "test acc "  # the difference from the 1-worker row's
NO_EFFICIENCY = "scaling efficiency not given: "
SMALL_SHARD = "each rank's share of the "  # a shard under one per-worker batch
NO_SHARE = "all-reduce share not measured"
FINDINGS = (REPLICAS, AGAINST_ONE, NO_EFFICIENCY, SMALL_SHARD, NO_SHARE)


def oversubscription(workers: int, threads: int, cores: int) -> str | None:
    """The row's note when its ranks run more threads than the cores they may use (an explicit threads_per_worker,
    or more ranks than cores under BENCH_MAX_WORKERS); None when workers x threads fits the cores."""
    if workers * threads <= cores:
        return None
    return (
        f"{OVERSUBSCRIBED}{workers} worker(s) x {threads} thread(s) = {workers * threads} threads on {cores} cores: "
        "threads waited for cores, so this row's img/s and scaling efficiency include that wait"
    )


def global_steps(
    durations: Sequence[Sequence[float]], images: Sequence[Sequence[int]]
) -> tuple[list[float], list[int]]:
    """Per step index: the slowest rank's duration and the images of all ranks (ranks cut to the shortest)."""
    if not durations or len(durations) != len(images):
        raise ValueError(f"{len(durations)} ranks' step durations but {len(images)} ranks' image counts")
    n = min(len(d) for d in durations)
    if any(len(d) != len(i) for d, i in zip(durations, images, strict=True)):
        raise ValueError("a rank reported a different number of step durations and image counts")
    d = np.asarray([list(r[:n]) for r in durations], dtype=np.float64).max(axis=0) if n else np.zeros(0)
    i = np.asarray([list(r[:n]) for r in images], dtype=np.int64).sum(axis=0) if n else np.zeros(0, dtype=np.int64)
    return d.tolist(), i.tolist()


def throughput(
    durations: Sequence[float], images: Sequence[int], segments: Sequence[int] | None = None
) -> dict[str, Any]:
    """Steady global img/s with its 95% interval, the median step's and the mean step time, from global steps;
    ``segments``: the synchronised stretches of ranks whose steps return before their work is done (JAX), the
    samples then (``stats.window_throughput``)."""
    return stats.window_throughput(durations, images, segments)


def rank_segments(segments: Sequence[Sequence[int] | None], steps: int) -> list[int] | None:
    """The synchronised stretches every rank shares (each syncs at the same steps), covering the ``steps`` global
    steps; None when a rank times steps one by one or the ranks' stretches differ."""
    first = segments[0] if segments else None
    if first is None or any(s is None or list(s) != list(first) for s in segments) or sum(first) != steps:
        return None
    return list(first)


def efficiency(img_s_n: float, img_s_1: float, workers: int) -> float:
    """img/s(N) / (N x img/s(1)): 1 is perfect scaling."""
    if workers < 1 or img_s_1 <= 0:
        raise ValueError(f"efficiency needs workers >= 1 and a positive 1-worker rate, got {workers}, {img_s_1}")
    return img_s_n / (workers * img_s_1)


def efficiency_ci(
    rates_n: Sequence[float],
    rates_1: Sequence[float],
    workers: int,
    confidence: float = stats.CONFIDENCE,
    resamples: int = stats.RESAMPLES,
    seed: int = stats.SEED,
    segments_n: Sequence[int] | None = None,
    segments_1: Sequence[int] | None = None,
) -> tuple[float, float] | None:
    """The 95% interval of img/s(N) / (N x img/s(1)) from the two rows' step rates; None below 2 samples a side.

    Rows timed step by step: the percentile (block) bootstrap of hmean(rates_n) / (N x hmean(rates_1)).
    ``segments_n`` / ``segments_1``: a row's synchronised stretches, each of whose steps carries the stretch's
    rate. Then every stretch is one sample (``stats.samples``) and the interval is ``tuning.ratio_ci``'s over
    them divided by N: the two rows are independent samples of a few rates each (3-6 stretches, their spreads
    unequal: gloo's jitter is in the N-worker row only), so the ratio is the difference of their mean log rates
    with Welch's t, whose wider quantile pays for the few draws; a bootstrap of 3-6 values cannot reach its 95%
    (``stats.log_t_interval``), and one over the per-step copies took each stretch for dozens of steps. The
    interval is then of the ratio of the stretches' geometric mean rates. A row with fewer than
    ``stats.MIN_SEGMENTS`` stretches read (``stats.stretch_rates``), or whose series does not map onto its
    stretches, gives none."""
    rows = ((rates_n, segments_n), (rates_1, segments_1))
    per_stretch = [stats.stretch_rates(rates, segments) for rates, segments in rows]  # a record before
    if segments_n or segments_1 or any(p is not None for p in per_stretch):  # step_segments: its runs of copies
        sides = []
        for (rates, segments), found in zip(rows, per_stretch, strict=True):
            if (segments or found is not None) and (found is None or len(found) < stats.MIN_SEGMENTS):
                return None  # too few stretches, or a series that does not map: no interval rather than a wrong one
            sides.append(stats.samples(rates, segments))
        ci = tuning.ratio_ci(sides[0], sides[1], confidence, resamples, seed)
        return None if ci is None else (ci[1] / workers, ci[2] / workers)
    a, b = np.asarray(rates_n, dtype=np.float64), np.asarray(rates_1, dtype=np.float64)
    if len(a) < 2 or len(b) < 2:
        return None
    rng = np.random.default_rng(seed)
    # the window's throughput over steps of equal images is the harmonic mean of the step rates
    mean_a = 1 / (1 / a[stats.resample_indices(a, resamples, rng)]).mean(axis=1)
    mean_b = 1 / (1 / b[stats.resample_indices(b, resamples, rng)]).mean(axis=1)
    ratio = mean_a / (workers * mean_b)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(ratio, [alpha, 1 - alpha])
    return float(lo), float(hi)


# Below this the workers that never joined ran slower than the ranks that did, by more than noise: a share of -96%
# beside -24% and +3% in reruns on a loaded 2-core VM (QA, 2026-12-08) measured the machine, not the exchange
SHARE_NOISE = -0.10


def share_text(share: float | None, fmt: str = ".1%") -> str:
    """The all-reduce share as the tables and the terminal give it; beyond ``SHARE_NOISE`` below 0, said to be
    no share: the unjoined workers' window ran slower than the joined one (others on the cores, most likely)."""
    if share is None or share != share:
        return "-"
    text = format(share, fmt)
    return text if share >= SHARE_NOISE else f"{text} (not a share: the unjoined workers ran slower; a busy machine?)"


def allreduce_share(step_s_dp: float, step_s_local: float) -> float:
    """1 - t_step(no all-reduce) / t_step(data-parallel): the step's share spent exchanging gradients."""
    if step_s_dp <= 0 or step_s_local <= 0:
        raise ValueError(f"step times must be > 0, got {step_s_dp} (data-parallel) and {step_s_local} (local)")
    return 1.0 - step_s_local / step_s_dp


Row = TypeVar("Row", bound=Mapping[str, Any])  # a record: a dict when measured, a table row's dict in the report


def baseline(records: Sequence[Row], row: Mapping[str, Any]) -> Row | None:
    """The latest ok 1-worker row of ``row``'s task, backend, repeat and scaling mode: what its efficiency (when it
    is measured) and its time-to-target speed-up (when the report is written) are against."""
    same = [
        r
        for r in records
        if r.get("status") == "ok"
        and r.get("workers") == 1
        and all(r.get(k) == row.get(k) for k in ("task", "backend", "repeat", "scaling_mode"))
    ]
    return same[-1] if same else None


def target_speedup(row: Mapping[str, Any], base: Mapping[str, Any] | None) -> float | None:
    """``base``'s time_to_target_s / ``row``'s; None where either has none (it never reached the target, or its
    epochs had no test figures) or there is no 1-worker row."""
    one, here = (base or {}).get("time_to_target_s"), row.get("time_to_target_s")
    if one is None or here is None or math.isnan(one) or math.isnan(here) or here <= 0:
        return None
    return float(one / here)


def baseline_fields(row: dict[str, Any], base: dict[str, Any] | None) -> dict[str, Any]:
    """``scaling_eff`` (+ interval) of data-parallel ``row`` against its 1-worker ``base`` row (None: not given)."""
    n, img_n = row.get("workers"), row.get("steady_img_s")
    if base is None or not n or img_n is None or not base.get("steady_img_s"):
        return {}
    out: dict[str, Any] = {"scaling_eff": efficiency(img_n, base["steady_img_s"], int(n))}
    # a ratio of figures that have no interval has none (a JAX row of fewer than 3 synchronised stretches: its
    # per-step series repeats two stretches' rates, which a bootstrap would read as many samples)
    given = all(r.get("steady_img_s_ci_lo") is not None for r in (row, base))
    segments = row.get("step_segments"), base.get("step_segments")
    rates = row.get("step_img_s") or [], base.get("step_img_s") or []
    ci = efficiency_ci(*rates, int(n), segments_n=segments[0], segments_1=segments[1]) if given else None
    if ci is not None and any(segments):
        # the stretches' interval is of their geometric means' ratio; the figure is the windows' images over time:
        # widened to hold it, as a row's own interval over its stretches is (stats.window_throughput)
        ci = min(ci[0], out["scaling_eff"]), max(ci[1], out["scaling_eff"])
    if ci is not None:
        out.update(scaling_eff_ci_lo=ci[0], scaling_eff_ci_hi=ci[1])
    return out
