"""The numpy test backend, following a fault script: block in training until released, or die there.

The tests that say "while a run is training" must create that state, not hope for it: each
run of this backend that starts training claims the next number k in ``$FAULT_DIR``
(``run-k`` with its pid and its server's pid), then does what ``$FAULT_DIR/plan`` says for k:
``hold`` (wait until the file ``release-k`` appears), ``hold-epoch-2`` (the same, once its first epoch is done
and said), ``hold-decouple`` (the same, in the decouple phase after training: its first call to the backend,
which no earlier stage makes) or ``kill`` (SIGKILL itself, mid-epoch).
``fault_env`` (tests/faults.py) registers the backend as ``fault`` in every process of a run (runner,
worker servers, their forked runs) through a ``sitecustomize`` on PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from tests.numpy_backend import Backend as NumpyBackend


class Backend(NumpyBackend):
    _claimed: int | None = None
    _epochs = 0  # train_epoch calls so far: one per epoch

    def train_epoch(self, *args: Any, **kwargs: Any) -> float:
        if self._claimed is None:
            self._claimed = self._claim()
        self._epochs += 1
        if self._epochs == 2:  # the first epoch's progress line is out
            self._hold(self._claimed, "hold-epoch-2")
        return super().train_epoch(*args, **kwargs)

    def layer_input(self, *args: Any, **kwargs: Any) -> Any:  # the penultimate features: the decouple phase
        self._hold(self._claimed, "hold-decouple")
        return super().layer_input(*args, **kwargs)

    def _hold(self, k: int | None, when: str) -> None:
        root = Path(os.environ["FAULT_DIR"])
        action = json.loads((root / "plan").read_text()).get(str(k))
        while action == when and not (root / f"release-{k}").exists():
            time.sleep(0.05)

    def _claim(self) -> int:
        root = Path(os.environ["FAULT_DIR"])
        k = 1
        while True:
            try:
                fd = os.open(root / f"run-{k}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                break
            except FileExistsError:
                k += 1
        os.write(fd, (json.dumps({"pid": os.getpid(), "server": os.getppid()}) + "\n").encode())
        os.close(fd)
        if json.loads((root / "plan").read_text()).get(str(k)) == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        self._hold(k, "hold")
        return k
