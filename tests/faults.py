"""The test backends in a bench subprocess, and the faults they act out, planned without importing a framework.

``backend_env`` registers ``numpy`` (tests/numpy_backend.py: a real linear model trained in numpy, for the
tests of the run machinery), ``fault`` (the same, following a fault plan) and ``lossy`` (tests/lossy_backend.py:
the same, its weights frozen under the task's ``runtime.channels_last``) in every process of a run.
The tests that say "while a run is training" or "when a rank dies" must create that state, not hope for
it. ``tests/fault_backend.py`` (backend ``fault``) and ``tests/dist_fault_backend.py`` (``faultdp``, torch:
a rank dies inside real collectives) read these plans in the worker processes; the tests themselves only
write the plans and read what the runs report back, so they import no framework.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SITECUSTOMIZE = """import sys
sys.path.insert(0, {repo!r})
import tests.numpy_backend
tests.numpy_backend.register(parity_reference={parity_reference})
"""


def backend_env(env: dict[str, str], site: Path, parity_reference: bool = False) -> dict[str, str]:
    """``env`` for a bench subprocess that knows the test backends ``numpy`` and ``fault`` (with
    ``parity_reference``: numpy is the training-parity check's reference, not torch)."""
    site.mkdir(parents=True, exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE.format(repo=str(REPO), parity_reference=parity_reference))
    path = os.pathsep.join(p for p in (str(site), str(REPO), env.get("PYTHONPATH", "")) if p)
    return dict(env, PYTHONPATH=path)


def fault_env(
    env: dict[str, str], fault_dir: Path, plan: dict[int, str], parity_reference: bool = False
) -> dict[str, str]:
    """``env`` for a bench subprocess whose ``fault`` backend follows ``plan`` (run number -> hold/kill)."""
    fault_dir.mkdir(parents=True, exist_ok=True)
    (fault_dir / "plan").write_text(json.dumps({str(k): v for k, v in plan.items()}))
    return dict(backend_env(env, fault_dir / "site", parity_reference), FAULT_DIR=str(fault_dir))


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


DIST_SITECUSTOMIZE = f"""import sys
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
    (site / "sitecustomize.py").write_text(DIST_SITECUSTOMIZE)
    path = os.pathsep.join(p for p in (str(site), str(REPO), env.get("PYTHONPATH", "")) if p)
    return dict(env, PYTHONPATH=path, DIST_KILL_RANK=str(kill_rank))
