"""A row's job: what the runner hands the worker that runs one (task, backend, repeat) row.

The job crosses a process boundary on every path: a JSON file read by a forked run
(``bench.run.worker``), a data-parallel rank (``bench.run.dist_worker``), a Ray task or a SLURM
array job. One dataclass names every field once, so the runner, the executors, the workers and the
phases read attributes a type checker follows, not dict keys spread over five modules; ``from_json``
checks what comes back in, naming the field that is wrong.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any


class JobError(ValueError):
    """A job file that is not one this version of bench wrote."""


@dataclass(frozen=True)
class DistLayout:
    """A data-parallel row's layout, as its ranks read it (``bench.run.distributed`` writes it)."""

    workers: int
    mode: str  # "strong" (the global batch split over the workers) or "weak" (each worker keeps the batch)
    per_worker_batch: int
    local: bool = False  # the 1-worker window timed on one rank alone: it never joins a process group

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> DistLayout:
        """The layout a JSON object describes; JobError naming the first key that is missing, unknown or mistyped."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise JobError(f"unknown job.dist key(s): {', '.join(unknown)}")
        for name, f in known.items():
            if name not in raw:
                if f.default is dataclasses.MISSING:
                    raise JobError(f"job.dist has no {name!r}")
                continue
            expected = _DIST_TYPES[name]
            value = raw[name]
            if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
                raise JobError(f"job.dist.{name}: expected {expected.__name__}, got {type(value).__name__}")
        return cls(**raw)


_DIST_TYPES: dict[str, type] = {"workers": int, "mode": str, "per_worker_batch": int, "local": bool}


@dataclass
class Job:
    record: dict[str, Any]  # the row's known fields (bench.core.record.base_record, the data's fields)
    spec: dict[str, Any] = field(default_factory=dict)  # TaskSpec.to_dict(), as resolved for the run
    data: str = ""  # the task's prepared images (.npz: x_train, y_train, x_test, y_test)
    classes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # the data's notes, for every row of the task
    transfer: list[dict[str, Any]] = field(default_factory=list)  # prepared targets (bench.run.data_cli)
    artifacts: str = ""  # the run's folder for per-row phase files; "" outside a run (nothing is kept)
    error: str = ""  # why the row cannot start (a refused name, unreadable data): it is never run
    result: str = ""  # where a forked run writes its record (bench.run.workers)
    dist: DistLayout | None = None  # a data-parallel row's layout; None for every other row
    result_dir: str = ""  # where a data-parallel rank writes its own result
    # MFU peaks earlier rows of the run measured (bench.measure.mfu.peak_key -> [FLOP/s, load]): the local executor's,
    # whose rows run one at a time on one node; a row with a matching key reads its peak instead of measuring it
    peaks: dict[str, list[float]] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, int]:
        """(task, backend, repeat): the row this job runs."""
        return self.record["task"], self.record["backend"], self.record["repeat"]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, raw: object) -> Job:
        """The job a JSON object describes; JobError naming the first field that is missing, unknown or mistyped."""
        if not isinstance(raw, dict):
            raise JobError(f"a job is a JSON object, got {type(raw).__name__}")
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise JobError(f"unknown job field(s): {', '.join(unknown)}")
        if "record" not in raw:
            raise JobError("the job has no record")
        for name, value in raw.items():
            expected, optional = _runtime_type(_HINTS[name])
            if not (value is None and optional) and not isinstance(value, expected):
                raise JobError(f"job.{name}: expected {expected.__name__}, got {type(value).__name__}")
        if not all(isinstance(k, str) for k in raw["record"]):
            raise JobError("job.record: keys must be strings")
        for key in ("task", "backend", "repeat"):
            if key not in raw["record"]:
                raise JobError(f"job.record has no {key!r}")
        dist = raw.get("dist")
        return cls(**{**raw, "dist": None if dist is None else DistLayout.from_json(dist)})


def _runtime_type(hint: Any) -> tuple[type, bool]:
    """The class an annotation checks with isinstance (``dict[str, Any]`` -> dict), and whether None may stand in.
    A nested dataclass arrives as its JSON object (a dict) and is checked by its own ``from_json``."""
    args = typing.get_args(hint)
    optional = type(None) in args
    if optional:
        (hint,) = (a for a in args if a is not type(None))
    if dataclasses.is_dataclass(hint):
        return dict, optional
    return typing.get_origin(hint) or hint, optional


_HINTS = typing.get_type_hints(Job)
