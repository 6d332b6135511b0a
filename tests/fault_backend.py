"""A torch backend for tests whose runs follow a fault script: block in training until released, or die there.

The tests that say "while a run is training" must create that state, not hope for it: each
run of this backend that starts training claims the next number k in ``$FAULT_DIR``
(``run-k`` with its pid and its server's pid), then does what ``$FAULT_DIR/plan`` says for k:
``hold`` (wait until the file ``release-k`` appears) or ``kill`` (SIGKILL itself, mid-epoch).
``fault_env`` registers the backend as ``fault`` in every process of a run (runner,
worker servers, their forked runs) through a ``sitecustomize`` on PYTHONPATH.
"""

from __future__ import annotations

import json
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
backends.BACKENDS["fault"] = dataclasses.replace(
    backends.describe("torch"), name="fault", module="tests.fault_backend", default=False
)
"""


def fault_env(env: dict[str, str], fault_dir: Path, plan: dict[int, str]) -> dict[str, str]:
    """``env`` for a bench subprocess whose ``fault`` backend follows ``plan`` (run number -> hold/kill)."""
    site = fault_dir / "site"
    site.mkdir(parents=True, exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    (fault_dir / "plan").write_text(json.dumps({str(k): v for k, v in plan.items()}))
    path = os.pathsep.join(p for p in (str(site), str(REPO), env.get("PYTHONPATH", "")) if p)
    return dict(env, PYTHONPATH=path, FAULT_DIR=str(fault_dir))


def wait_for_run(fault_dir: Path, k: int, timeout: float = 180) -> dict[str, int]:
    """The pids of run ``k`` once it is training (``pid``: the run, ``server``: its worker server)."""
    path = fault_dir / f"run-{k}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text().endswith("\n"):
            return json.loads(path.read_text())
        time.sleep(0.05)
    raise AssertionError(f"run {k} did not start training within {timeout} s")


def release(fault_dir: Path, k: int) -> None:
    (fault_dir / f"release-{k}").touch()


class Backend(TorchBackend):
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
