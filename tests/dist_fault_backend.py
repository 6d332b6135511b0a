"""A torch backend whose rank ``$DIST_KILL_RANK`` SIGKILLs itself mid-training (data-parallel runs only), or
whose ranks all hold there while ``$DIST_HOLD_DIR`` is set (each touches ``held-RANK`` first).

Registered as ``faultdp`` in every process of a run through a ``sitecustomize`` on PYTHONPATH
(``dist_fault_env``, tests/faults.py): the killed-worker test needs a rank to die while its peer is inside a
collective, and must create that state rather than race a ``kill`` from outside against it.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from backends.torch.backend import Backend as TorchBackend
from tests.faults import KILL_AT_STEP


class _KillingHooks:
    def __init__(self, hooks: Any) -> None:
        self.hooks = hooks

    def on_step_begin(self, i: int) -> None:
        hold = os.environ.get("DIST_HOLD_DIR")
        if i == KILL_AT_STEP and hold:
            (Path(hold) / f"held-{os.environ['BENCH_DIST_RANK']}").touch()
            while True:  # until the launcher kills the rank
                time.sleep(0.05)
        if i == KILL_AT_STEP:
            os.kill(os.getpid(), signal.SIGKILL)
        self.hooks.on_step_begin(i)

    def on_step_end(self, i: int) -> None:
        self.hooks.on_step_end(i)


class Backend(TorchBackend):
    def train_epoch(self, state: Any, data: Any, order: Any, batch_size: int, hooks: Any = None) -> float:
        rank = os.environ.get("BENCH_DIST_RANK")
        if self.joined and (rank == os.environ.get("DIST_KILL_RANK") or os.environ.get("DIST_HOLD_DIR")):
            hooks = _KillingHooks(hooks)
        return super().train_epoch(state, data, order, batch_size, hooks)
