"""Which XLA compiles a Keras/JAX row's timed window holds: ``python -m tests.jax_window_probe``.

Trains a tiny LeNet-5 row through the worker's measured path (``train_and_evaluate``) under Keras on JAX, with
JAX's compile log on, and prints one JSON line: the programs compiled while a timed step was on the clock (none
should be: a compile is first-time work, kept off the window), those compiled inside the first epoch's last step
(which the clock keeps off the window where steps return early: Keras reads its metrics there), the stretches.
A process imports one Keras engine only, and pytest's has TensorFlow's: tests run this in a subprocess.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import tomllib
from typing import Any

TASK = """
name = "jax-window"
[dataset]
name = "mnist"
[model]
arch = "lenet5"
[train]
epochs = 3
batch_size = 64
lr = 0.01
drop_last = true
[eval]
batch_size = 100
[runtime]
warmup_steps = 1
timed_steps = 1
"""


def main() -> int:
    os.environ["KERAS_BACKEND"] = "jax"
    import jax
    import numpy as np

    from backends import load_backend
    from bench.core.spec import parse_task
    from bench.measure import steady
    from bench.run import worker

    jax.config.update("jax_log_compiles", True)
    compiles: list[tuple[float, str]] = []  # (host time, program) of each compile, as it starts
    clocks: list[Any] = []

    class Log(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            msg = record.getMessage()
            if msg.startswith("Compiling "):
                compiles.append((time.perf_counter(), msg.split()[1]))

    logger = logging.getLogger("jax")
    logger.addHandler(Log(logging.DEBUG))
    logger.setLevel(logging.DEBUG)
    logger.propagate = False  # the log's lines are read here, not printed

    class Clock(steady.StepClock):
        """The step clock, noting the host-time span of every stretch of time it puts on the window and of the
        first epoch's last step where it keeps that apart."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, clock=time.perf_counter, **kwargs)
            self.timed: list[tuple[float, float]] = []
            self.apart: list[tuple[float, float]] = []
            clocks.append(self)

        def on_step_begin(self, i: int) -> None:
            before, last = self.timed_s, self.last_end
            super().on_step_begin(i)
            if self.timed_s != before:  # the stretch closed before the step: its queued work, timed
                self.timed.append((last, self.last_end))

        def on_step_end(self, i: int) -> None:
            before, last, apart = self.timed_s, self.last_end, self.epoch_end
            super().on_step_end(i)
            if self.timed_s != before:
                self.timed.append((last, self.last_end))
            if self.epoch_end is not apart:
                self.apart.append((last, self.last_end))

    worker.StepClock = Clock  # the worker builds its clock by this name
    spec = parse_task(tomllib.loads(TASK), source="jax-window")
    rng = np.random.default_rng(0)
    data = {
        "x_train": rng.integers(0, 256, (300, 28, 28, 1), dtype=np.uint8),
        "y_train": rng.integers(0, 10, 300),
        "x_test": rng.integers(0, 256, (100, 28, 28, 1), dtype=np.uint8),
        "y_test": rng.integers(0, 10, 100),
    }
    out, _ = worker.train_and_evaluate(load_backend("keras-jax"), spec, data, tuple("0123456789"), 0)
    (clock,) = clocks

    def inside(spans: list[tuple[float, float]]) -> list[str]:
        return [name for t, name in compiles if any(a <= t <= b for a, b in spans)]

    print(
        "@@probe "
        + json.dumps(
            {
                "in_window": inside(clock.timed),
                "in_first_epoch_end": inside(clock.apart),
                "compiles": len(compiles),
                "segments": clock.segments,
                "timed_steps": out.get("timed_steps"),
                "epoch_end_step_s": out.get("epoch_end_step_s"),
                "notes": out.get("timing_notes"),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
