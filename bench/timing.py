"""Clock reads around synchronised points, and what the per-epoch times say.

The first epoch carries one-off costs (graph tracing, allocator warm-up, kernel
selection), so steady-state throughput is taken from the other epochs and the
first epoch's excess is reported apart as ``compile_s``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence


class SyncTimer:
    """Wall-clock timer that synchronises the device before each reading."""

    def __init__(self, synchronize: Callable[[], None], clock: Callable[[], float] = time.perf_counter) -> None:
        self.synchronize = synchronize
        self.clock = clock
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
