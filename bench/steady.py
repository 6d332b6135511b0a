"""Step-level timing inside the normal training run: first step, warm-up, timed steady-state steps.

Training is not repeated for the measurement. The worker hands every epoch's order to
``StepClock.epoch``, which cuts it at batch boundaries into chunks, one
``backend.train_epoch`` call each, timed with the synchronising timer:

    step 0 (first step: tracing / compilation / allocator warm-up)
    steps 1..warmup (excluded)
    the next ``timed`` steps (steady state: timed as one block)
    the rest

Counting is global over epochs, so a short epoch just moves the boundaries into the
next one. The batches and their order are exactly those of an uncut epoch; a cut only
adds one backend call (for Keras one ``fit`` call, whose own overhead then falls into
the measurement as it does for a user calling ``fit``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from bench.timing import SyncTimer

FIRST, WARMUP, TIMED, REST = "first", "warmup", "timed", "rest"


def step_kinds(first_step: int, n_steps: int, warmup: int, timed: int) -> list[tuple[str, int, int]]:
    """Runs of (kind, first step, end step) for global steps [first_step, first_step + n_steps)."""
    bounds = [(FIRST, 0, 1), (WARMUP, 1, 1 + warmup), (TIMED, 1 + warmup, 1 + warmup + timed)]
    end = first_step + n_steps
    runs = []
    for kind, lo, hi in bounds:
        a, b = max(lo, first_step), min(hi, end)
        if a < b:
            runs.append((kind, a, b))
    rest = max(first_step, 1 + warmup + timed)
    if rest < end:
        runs.append((REST, rest, end))
    return runs


class StepClock:
    """Times one training run's epochs chunk by chunk and remembers the first and the timed steps."""

    def __init__(
        self, timer: SyncTimer, batch_size: int, warmup: int, timed: int,
        profile: Callable[[Callable[[], float]], tuple[float, list[dict[str, Any]]]] | None = None,
    ) -> None:  # fmt: skip
        if batch_size < 1 or warmup < 0 or timed < 0:
            raise ValueError(f"bad step plan: batch_size={batch_size}, warmup={warmup}, timed={timed}")
        self.timer, self.batch_size, self.warmup, self.timed = timer, batch_size, warmup, timed
        self.step = 0  # global step counter
        self.first_s: float | None = None
        self.timed_s = 0.0
        self.timed_steps = 0
        self.timed_images = 0
        # --profile-ops: the warm-up steps run under the framework's profiler (they are not timed)
        self.profile = profile
        self.top_ops: list[dict[str, Any]] | None = None

    def epoch(self, train: Callable[[np.ndarray], float], order: np.ndarray) -> tuple[float, float]:
        """Run one epoch over ``order`` through ``train`` (one call per chunk); returns (mean loss, seconds)."""
        n_steps = -(-len(order) // self.batch_size)
        if self.timed == 0:  # no step measurement asked: one call per epoch, as before
            runs = [(REST, self.step, self.step + n_steps)]
        else:
            runs = step_kinds(self.step, n_steps, self.warmup, self.timed)
        seconds, loss_sum = 0.0, 0.0
        for kind, a, b in runs:
            part = order[(a - self.step) * self.batch_size : (b - self.step) * self.batch_size]
            self.timer.start()
            if kind == WARMUP and self.profile is not None:
                loss, self.top_ops = self.profile(lambda part=part: train(part))
            else:
                loss = train(part)
            elapsed = self.timer.stop()
            seconds += elapsed
            loss_sum += loss * len(part)
            if kind == FIRST:
                self.first_s = elapsed
            elif kind == TIMED:
                self.timed_s += elapsed
                self.timed_steps += b - a
                self.timed_images += len(part)
        self.step += n_steps
        return loss_sum / len(order), seconds

    def summary(self) -> dict[str, float | int | None]:
        """Record fields; the steady figures are None when the run had no timed step."""
        steady_step = self.timed_s / self.timed_steps if self.timed_steps else None
        return {
            "first_step_s": self.first_s,
            "warmup_steps": self.warmup if self.timed else None,
            "timed_steps": self.timed_steps or None,
            "steady_step_s": steady_step,
            "steady_img_s": self.timed_images / self.timed_s if self.timed_steps and self.timed_s > 0 else None,
            # one-off cost of the first step (tracing, compilation, warm-up) over a steady one
            "compile_s": max(0.0, self.first_s - steady_step) if self.first_s is not None and steady_step else None,
        }
