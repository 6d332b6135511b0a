"""The numpy test backend on a machine where one thread count runs fastest: a tune must find it and run it.

Its steps wait ``SLOW_STEP_S`` on any ``runtime.threads`` but ``FAST_THREADS`` (numpy's own threads are not what
the test is about: the race, the knob's value reaching the row, and the row saying what it ran are). Registered as
``threaded`` in a test's subprocesses by ``THREADED_SITECUSTOMIZE`` (tests/test_tune_cli.py, with the threads knob
of a 4-core machine: 1 and 2 beside the framework's own count).
"""

from __future__ import annotations

import time
from typing import Any

from tests.numpy_backend import Backend as NumpyBackend
from tests.numpy_backend import TrainState

FAST_THREADS = 2
SLOW_STEP_S = 0.01  # some 100x a step of the tiny task's dense layer: no race on a loaded machine reads past it


class Backend(NumpyBackend):
    name = "threaded"

    def compile(self, model: Any, train: Any, runtime: Any) -> TrainState:
        self.slow = runtime.threads != FAST_THREADS
        return super().compile(model, train, runtime)

    def _step(self, state: TrainState, grads: list[Any]) -> None:
        if self.slow:
            time.sleep(SLOW_STEP_S)
        super()._step(state, grads)
