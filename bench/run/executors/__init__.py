"""Executors: where the rows of a plan run -- here one after another (``local``), side by side on this
machine's devices (``devices``), on a Ray cluster (``ray``) or under SLURM (``slurm``, through submitit).

The runner prepares each row's job and appends each record; an executor only runs rows and gives their
records back, as data, as they finish (``Executor.run``). Every row runs the same worker code
(``bench.run.worker``), on a device of its own; its record says where (``bench.core.placement``).
Ray and submitit are imported only by their own modules, which only ``make`` loads: the default
``local`` path imports neither.
"""

from __future__ import annotations

import importlib
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from bench.core.job import Job
from bench.core.placement import EXECUTORS, RowOutcome


@dataclass
class Row:
    """One (task, backend, repeat) row ready to run: its job (bench.run.worker's input), its progress tag, and its
    own time limit where the run's would let it run past a deadline (a tune's race: ``bench.run.tune``)."""

    job: Job
    tag: str
    timeout_s: float | None = None

    @property
    def key(self) -> tuple[str, str, int]:
        return self.job.key

    def limit(self, timeout_s: float) -> float:
        """The row's time limit: the run's ``timeout_s``, or its own where that is shorter."""
        return timeout_s if self.timeout_s is None else min(timeout_s, self.timeout_s)


Echo = Callable[[str], None]


class Executor(Protocol):
    name: str
    sequential: bool  # True: a row's record is appended before the next row starts (its data may go then)

    def start(self, backends: list[str], echo: Echo) -> None:
        """Get ready to run rows of ``backends`` (warm servers, a cluster connection)."""
        ...

    def run(self, rows: Iterator[Row], timeout_s: float, echo: Echo) -> Iterator[tuple[Row, RowOutcome]]:
        """Run ``rows`` (pulled as slots free up) and yield each with its outcome as it finishes.
        A KeyboardInterrupt leaves ``running`` naming the rows that were in flight."""
        ...

    @property
    def running(self) -> list[Row]:
        """The rows started and not yet given back."""
        ...

    def close(self) -> None:
        """Stop what is queued or running and release every process, task or job (also after Ctrl-C)."""
        ...


MODULES = {"local": "local", "devices": "devices", "ray": "on_ray", "slurm": "on_slurm"}


def no_sbatch(slurm_local: bool) -> str | None:
    """Why ``--executor slurm`` cannot submit here, or None: submitit's AutoExecutor, finding no SLURM, ran the
    array on this machine without a word; ``--slurm-local`` is how that is asked for. submitit submits with
    sbatch and refuses to start without srun."""
    missing = [] if slurm_local else [c for c in ("sbatch", "srun") if shutil.which(c) is None]
    if not missing:
        return None
    was = "was" if len(missing) == 1 else "were"
    return (
        f"--executor slurm: SLURM's {' and '.join(missing)} {was} not found on PATH "
        "(--slurm-local runs the job array locally)"
    )


def make(opts: Any, run_dir: Any) -> Executor:
    """The executor ``opts.executor`` names (``bench.run.plan.RunOptions``), for the run in ``run_dir``."""
    if opts.executor not in EXECUTORS:
        raise ValueError(f"unknown executor {opts.executor!r} (choose from {', '.join(EXECUTORS)})")
    module = importlib.import_module(f"{__name__}.{MODULES[opts.executor]}")
    return module.make(opts, run_dir)
