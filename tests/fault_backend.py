"""The numpy test backend, following a fault script: block in training until released, or die there.

The tests that say "while a run is training" must create that state, not hope for it: each
run of this backend that starts training claims the next number k in ``$FAULT_DIR``
(``run-k`` with its pid and its server's pid), then does what ``$FAULT_DIR/plan`` says for k:
``hold`` (wait until the file ``release-k`` appears) or ``kill`` (SIGKILL itself, mid-epoch).
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

    def train_epoch(self, *args: Any, **kwargs: Any) -> float:
        if self._claimed is None:
            self._claimed = self._claim()
        return super().train_epoch(*args, **kwargs)

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
        action = json.loads((root / "plan").read_text()).get(str(k))
        if action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        while action == "hold" and not (root / f"release-{k}").exists():
            time.sleep(0.05)
        return k
