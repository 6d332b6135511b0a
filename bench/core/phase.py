"""The phase contract: what runs on a trained model after training.

The worker trains, then hands every phase in ``bench.phases.PHASES`` the same ``Trained``
record, in order; each returns record fields (its ``columns``, each a ``Record`` field), so adding a phase
is one module and one line in that list, not an edit of the worker. How the report shows a phase is the
report's business (a ``bench.report.sections.Section`` of its name: downstream, it never imports a phase). Artifacts
a phase saves for its plots are named by ``bench.core.runpaths``.

A row runs in stages: ``TRAINING`` (training and the test evaluation), ``INPUT_PATH`` and ``MFU_PEAK`` (measures
of the trained row), then each phase. As each starts, the worker writes a ``SoFar`` (what the row has measured, and
the stage): a row stopped at its time limit keeps that record instead of losing what it measured before the stage
the limit hit.
"""

from __future__ import annotations

import re
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


# The stages before the phases (bench.run.worker.train_and_evaluate), and how a timeout's error says each; a phase is
# said "in phase NAME". The two after the test evaluation take seconds of their own (the MFU peak's 2048x2048 matmuls,
# the input path's replayed epoch): a row stopped there has its training and test figures, which it keeps.
TRAINING = "training"  # the data to the device, the build, training and the test evaluation
INPUT_PATH = "input_path"  # the input path's share of a step (bench.measure.inputpath)
MFU_PEAK = "mfu_peak"  # the MFU peak's matmuls (bench.measure.perf.mfu_fields)
STAGE_WORDS = {
    TRAINING: "during training",
    INPUT_PATH: "while measuring the input path",
    MFU_PEAK: "while measuring the MFU peak",
}
_STAGE = re.compile(r"[a-z][a-z0-9_]{0,63}")  # a stage's or a phase's name: it goes into a column and an error's words


@dataclass(frozen=True)
class SoFar:
    """A row as its worker has it when a stage starts: the stage (one of ``STAGE_WORDS`` or a phase's name) and the
    record of what was measured before it, finished as the worker's final record is (notes joined, no working fields).

    It crosses back from the worker as a JSON file beside its result (``bench.core.runpaths.so_far_file``), written
    whole or not at all: a file, not a line on the row's output pipe, which the framework's own threads write into
    and which a kill can cut mid-line. ``from_json`` checks its shape; the record is checked as every worker's
    record is where the runner makes a row of it (``bench.core.results.checked_answer``)."""

    stage: str
    record: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"stage": self.stage, "record": self.record}

    @classmethod
    def from_json(cls, raw: object) -> SoFar:
        """The SoFar a JSON object describes; ValueError saying what is wrong with it."""
        if not isinstance(raw, dict) or set(raw) != {"stage", "record"}:
            keys = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
            raise ValueError(f"not a stage and a record: {keys}")
        stage, record = raw["stage"], raw["record"]
        if not isinstance(stage, str) or not _STAGE.fullmatch(stage):
            raise ValueError(f"stage {stage!r} is not a stage's name")
        if not isinstance(record, dict):
            raise ValueError(f"its record is {type(record).__name__}, not an object")
        return cls(stage, record)
