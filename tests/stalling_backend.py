"""The numpy test backend with a knob whose configuration compiles for longer than a short tune's race holds.

Knob ``stall`` = ``on`` waits ``STALL_S`` before its first step, as torch.compile did for 59 s on a loaded 2-core VM
in a tune whose race had 70 s: the tune must stop that trial at the end of its (task, backend)'s share of the race,
not let it eat the later pairs' shares and the default and best rows' time. The value rides on
``runtime.channels_last`` (a test backend cannot add fields to RuntimeSpec). Registered as ``stalling`` in a test's
subprocesses by ``STALLING_SITECUSTOMIZE`` (tests/test_tune_budget.py, with the knob).
"""

from __future__ import annotations

import time
from typing import Any

from tests.numpy_backend import Backend as NumpyBackend
from tests.numpy_backend import TrainState

STALL_S = 90.0  # longer than the test's whole tune: a trial the race does not stop keeps it from its verdict


class Backend(NumpyBackend):
    name = "stalling"

    def compile(self, model: Any, train: Any, runtime: Any) -> TrainState:
        if runtime.channels_last:
            time.sleep(STALL_S)
        return super().compile(model, train, runtime)
