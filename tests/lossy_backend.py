"""The numpy test backend with one knob that really trades accuracy for speed: the tuner's floor must refuse it.

Knob ``freeze`` = ``features`` trains the output layer's bias only (the weights keep their random initial
values): its steps compute no weight gradient, so they are faster, and the model learns little more than the
class frequencies. The value rides on ``runtime.channels_last``, which this backend reads as "freeze" (a
test backend cannot add fields to RuntimeSpec). Registered as ``lossy`` in a test's subprocesses by
``LOSSY_SITECUSTOMIZE`` (tests/test_tune_cli.py, with the knob), and by ``tests.faults.backend_env`` (no knob: a
task's ``channels_last`` sets it; the training-parity tests' pair that leaves its bound).
"""

from __future__ import annotations

from typing import Any

from tests.numpy_backend import Backend as NumpyBackend
from tests.numpy_backend import TrainState


class Backend(NumpyBackend):
    name = "lossy"

    def compile(self, model: Any, train: Any, runtime: Any) -> TrainState:
        state = super().compile(model, train, runtime)
        state.frozen = bool(runtime.channels_last)
        return state
