"""Clock reads around synchronised points, what the per-epoch times say, and how they square with the steps.

The first epoch carries one-off costs (graph tracing, allocator warm-up, kernel
selection), so steady-state throughput is taken from the other epochs and the
first epoch's excess is reported apart as ``compile_s``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

# A time difference this small is the machine's, not the code's (docs/timing.md#bench-compare): on the 2-core VM
# shared with other jobs the process is off the CPU in whole 4 ms scheduler ticks, up to 12 ms at a time, and one
# 1.5 ms piece of work timed 400 times took up to 13.6 ms, two timings of it up to 12.0 ms apart; the clock itself
# steps in 40 ns. 20 ms is above the largest of those.
MIN_TIME_DELTA_S = 0.020


class SyncTimer:
    """Wall-clock timer that synchronises the device before each reading."""

    def __init__(self, synchronize: Callable[[], None], clock: Callable[[], float] | None = None) -> None:
        self.synchronize = synchronize
        self.clock = clock or time.perf_counter  # looked up now, so a test can substitute the clock
        self._start: float | None = None

    def start(self) -> None:
        self.synchronize()
        self._start = self.clock()

    def stop(self) -> float:
        if self._start is None:
            raise RuntimeError("SyncTimer.stop() before start()")
        self.synchronize()
        elapsed = self.clock() - self._start
        self._start = None
        return elapsed


def summarize_epochs(epoch_s: Sequence[float], n_train: int) -> dict[str, float | None]:
    """Median/min/max epoch time and steady-state images/s, first epoch excluded when possible."""
    if not epoch_s:
        raise ValueError("no epoch times to summarise")
    steady = list(epoch_s[1:]) or list(epoch_s)
    median = statistics.median(steady)
    return {
        "train_s": sum(epoch_s),
        "first_epoch_s": epoch_s[0],
        "epoch_s_median": median,
        "epoch_s_min": min(steady),
        "epoch_s_max": max(steady),
        "throughput_img_s": n_train / median,
        # one-off cost of the first epoch over a steady one; None when there is no steady epoch
        "compile_s": max(0.0, epoch_s[0] - median) if len(epoch_s) > 1 else None,
    }


def time_to_target(epoch_s: Sequence[float], accuracies: Sequence[float], target: float) -> float | None:
    """Training seconds until the test accuracy first reached ``target`` (None if never)."""
    elapsed = 0.0
    for seconds, acc in zip(epoch_s, accuracies, strict=False):
        elapsed += seconds
        if acc >= target:
            return elapsed
    return None


def target_fields(history: Sequence[dict[str, Any]], target: float | None) -> dict[str, float | None]:
    """``time_to_target_s`` over a row's epochs (their ``seconds``, evaluation left out) where the task sets
    ``train.target_acc`` and every epoch has a test accuracy: a single-process row's and a data-parallel one's."""
    if not target or not history or not all("test_acc" in h for h in history):
        return {}
    seconds, accuracies = [h["seconds"] for h in history], [h["test_acc"] for h in history]
    return {"time_to_target_s": time_to_target(seconds, accuracies, target)}


AGREEMENT = 0.05  # the step window and the epochs must agree this closely, or the row says why


def steady_agreement(out: dict[str, Any]) -> dict[str, float]:
    """``steady_epoch_ratio`` where the step clock had no epoch wholly in its window (a one-epoch run).

    The clock's own ratio (``StepClock.summary``) compares the steps and the epochs over the same
    epochs; this fallback compares the window with the median epoch, which also moves with how the
    epochs differ among themselves.
    """
    if out.get("steady_epoch_ratio") is not None:
        return {}
    steady, epoch = out.get("steady_img_s"), out.get("throughput_img_s")
    return {"steady_epoch_ratio": steady / epoch} if steady and epoch else {}


def agreement_note(out: dict[str, Any], n_epochs: int) -> str | None:
    """Why the step and epoch throughputs differ by more than ``AGREEMENT``, from what was measured.

    Over the same epochs an epoch is its steps plus the call's own setup and teardown
    (``epoch_overhead_s``: the epoch callbacks, the final loss read); without a steady epoch the
    epoch figure includes the first step.
    """
    ratio = out.get("steady_epoch_ratio")
    if ratio is None or abs(ratio - 1) <= AGREEMENT:
        return None
    parts = []
    overhead, epoch_s = out.get("epoch_overhead_s"), out.get("epoch_s_median")
    if overhead is not None and epoch_s:
        parts.append(
            f"the call's own setup/teardown outside the steps is {overhead * 1e3:.1f} ms "
            f"= {overhead / epoch_s:.1%} of an epoch"
        )
    if n_epochs < 2:
        parts.append("no steady epoch (one epoch only: the epoch figure includes the first step)")
    # parts joined with ", ": a record's notes are joined with "; "
    return f"steady (step) throughput is {ratio:.3f}x the epoch throughput: " + ", ".join(parts or ["cause unknown"])


def spread_note(out: dict[str, Any], n_epochs: int) -> str | None:
    """Why the headline and the median epoch's throughput differ by more than ``AGREEMENT`` although
    the steps and the epochs agree: the window begins inside the first epoch and is a mean over
    every epoch after it, the epoch figure is the median of the epochs after the first, so they part
    by the first epoch's timed steps and by as much as the epochs differ among themselves (another
    process's load, a frequency change)."""
    steady, epoch, ratio = out.get("steady_img_s"), out.get("throughput_img_s"), out.get("steady_epoch_ratio")
    if not steady or not epoch or ratio is None or abs(ratio - 1) > AGREEMENT or abs(steady / epoch - 1) <= AGREEMENT:
        return None
    parts = ["the window also holds the first epoch's steps after the warm-up, which the epoch figure leaves out"]
    fast, slow = out.get("epoch_s_min"), out.get("epoch_s_max")
    if n_epochs > 2 and fast and slow:
        parts.append(f"the steady epochs differ by {slow / fast - 1:.0%} (slowest/fastest)")
    return (
        f"the headline (the window's mean) is {steady / epoch:.3f}x the median epoch's throughput: "
        f"{', '.join(parts)}; over the same epochs steps and epochs agree ({ratio:.3f}x)"
    )
