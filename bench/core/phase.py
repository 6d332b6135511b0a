"""The phase contract: what runs on a trained model after training.

The worker trains, then hands every phase in ``bench.phases.PHASES`` the same ``Trained``
record, in order; each returns record fields (its ``columns``, each a ``Record`` field), so adding a phase
is one module and one line in that list, not an edit of the worker. How the report shows a phase is the
report's business (a ``bench.report.sections.Section`` of its name: downstream, it never imports a phase). Artifacts
a phase saves for its plots are named by ``bench.core.runpaths``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bench.core.job import Job
from bench.core.preprocess import PixelNorm
from bench.core.runfiles import make_folder
from bench.core.runpaths import artifact, link
from bench.core.spec import TaskSpec


@dataclass
class Trained:
    """What the phases after training work on: the backend, its trained state and the task's data.

    ``x_*`` are the uint8 images as loaded; ``floats`` turns the few a phase uses into the
    model's float input (the spec's scaling), so no float copy of a whole split is kept.
    ``train``/``test`` are the backend's own handles from ``backend.put``.
    """

    backend: Any  # a bench.core.backend.Backend
    state: Any  # what backend.compile returned
    spec: TaskSpec
    classes: tuple[str, ...]
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    train: Any
    test: Any
    seed: int
    job: Job  # the runner's job (e.g. paths of extra prepared data, where artifacts go)
    norm: PixelNorm  # the spec's uint8 -> float map

    def floats(self, x: np.ndarray) -> np.ndarray:
        """uint8 images (a subset of x_train/x_test) as the model saw them, before augmentation."""
        return self.norm.apply(x)

    def artifact(self, kind: str) -> tuple[Path, str] | None:
        """Where this row's ``kind`` arrays go (``runpaths.artifact``, folder made) and the link a record
        stores for it; None when the job keeps no artifacts (a phase run outside a suite run)."""
        return row_artifact(self.job, kind)


def row_artifact(job: Job, kind: str) -> tuple[Path, str] | None:
    """``Trained.artifact`` for a job: the runner's ``artifacts`` folder and the row's (task, backend, repeat)."""
    if not job.artifacts:
        return None
    run_dir = Path(job.artifacts).parent
    path = artifact(run_dir, *job.key, kind)
    make_folder(run_dir, path.parent)
    return path, link(run_dir, path)


class Phase(Protocol):
    """One phase: its name, the record columns it adds and how it runs (read-only: a frozen dataclass fits)."""

    @property
    def name(self) -> str: ...

    @property
    def columns(self) -> tuple[str, ...]:
        """Record fields ``run`` may return (scalar columns and nested fields)."""
        ...

    def run(self, trained: Trained) -> dict[str, Any]:
        """In the worker, after training: record fields (an empty dict when the spec turns the phase off)."""
        ...


@dataclass(frozen=True)
class PhaseFunctions:
    """A Phase made of plain functions: what each phase module exports as ``PHASE``."""

    name: str
    columns: tuple[str, ...]
    run: Callable[[Trained], dict[str, Any]]
