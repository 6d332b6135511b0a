"""A torch backend whose rank ``$DIST_KILL_RANK`` SIGKILLs itself mid-training (data-parallel runs only), or
whose ranks all hold there while ``$DIST_HOLD_DIR`` is set (each touches ``held-RANK`` first).

Registered as ``faultdp`` in every process of a run through a ``sitecustomize`` on PYTHONPATH
(``dist_fault_env``): the killed-worker test needs a rank to die while its peer is inside a
collective, and must create that state rather than race a ``kill`` from outside against it.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from backends.torch.backend import Backend as TorchBackend

REPO = Path(__file__).resolve().parent.parent
SITECUSTOMIZE = f"""import sys
sys.path.insert(0, {str(REPO)!r})
import dataclasses
import backends
backends.BACKENDS["faultdp"] = dataclasses.replace(
    backends.describe("torch"), name="faultdp", module="tests.dist_fault_backend", default=False
)
"""
KILL_AT_STEP = 3


def dist_fault_env(env: dict[str, str], site: Path, kill_rank: int) -> dict[str, str]:
    """``env`` for a bench subprocess in which backend ``faultdp`` loses rank ``kill_rank`` mid-epoch."""
    site.mkdir(parents=True, exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    path = os.pathsep.join(p for p in (str(site), str(REPO), env.get("PYTHONPATH", "")) if p)
    return dict(env, PYTHONPATH=path, DIST_KILL_RANK=str(kill_rank))


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
