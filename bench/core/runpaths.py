"""Every file inside a run directory, named in one place and kept inside it.

A task name, backend name or a path read back from a record ends up in file names
(logs, jobs, results, artifacts, plots). The spec loader refuses hostile task names;
this is the second line: every such path is built here, resolved, and refused when it
does not lie inside its root (``../../x``, an absolute path, a symbolic link out).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.core.runfiles import read_bytes


class OutsideRunError(ValueError):
    """A path built from run data would leave the run directory."""


def inside(root: Path, *parts: str) -> Path:
    """``root/parts...`` resolved; OutsideRunError unless it lies strictly inside ``root``."""
    base = Path(root).resolve()
    path = base.joinpath(*(str(p) for p in parts)).resolve()
    if path == base or not path.is_relative_to(base):
        raise OutsideRunError(f"{'/'.join(str(p) for p in parts)!r} would be outside {base}")
    return path


def stem(task: str, backend: str, repeat: int) -> str:
    """One row's file-name stem: ``task.backend.repeat``."""
    return f"{task}.{backend}.{repeat}"


def job_file(job_dir: Path, task: str, backend: str, repeat: int, kind: str) -> Path:
    """``.jobs/TASK.BACKEND.REPEAT.KIND.json`` (kind: job, result)."""
    return inside(job_dir, f"{stem(task, backend, repeat)}.{kind}.json")


def so_far_file(result: Path) -> Path:
    """Where the worker writing ``result`` keeps its row as each stage starts (``bench.core.phase.SoFar``): beside it,
    ``NAME.sofar.json`` for ``NAME.json``, in a run's ``.jobs/`` and a remote row's scratch folder alike."""
    result = Path(result)
    return result.with_name(f"{result.name.removesuffix('.json')}.sofar.json")


def task_data(job_dir: Path, task: str, kind: str = "data") -> Path:
    """``.jobs/TASK.KIND.npz``: a task's prepared arrays (data, transfer0, ...), shared by its rows."""
    return inside(job_dir, f"{task}.{kind}.npz")


def log_file(run_dir: Path, name: str) -> Path:
    """``logs/NAME.log`` (a row's stem, or ``server-BACKEND``)."""
    return inside(run_dir, "logs", f"{name}.log")


ARTIFACTS = "artifacts"  # the folder of per-row arrays the phases save for the report
ARTIFACT_KINDS = ("explain", "decouple")  # the phases that save them
TUNE_FILE = "tune.json"  # a tune's log of its race (bench.run.tune writes it; resume and the report read it)
TRIALS = "trials"  # a tune's folder of its race's rungs, each a run folder of its own (bench.run.tune)


def tune_of_rung(folder: Path) -> Path | None:
    """The tune whose race ``folder`` is a rung of (``TUNE/trials/RUNG``, the tune's TUNE_FILE beside ``trials``), or
    None: a rung's records carry the tune's run id, and are no results of their own."""
    folder = Path(folder).absolute()
    tune = folder.parent.parent
    return tune if folder.parent.name == TRIALS and (tune / TUNE_FILE).is_file() else None


def artifact_name(task: str, backend: str, repeat: int, kind: str) -> str:
    """``artifacts/TASK.BACKEND.REPEAT.KIND.npz``: per-row arrays a phase saves for the report."""
    return f"{ARTIFACTS}/{stem(task, backend, repeat)}.{kind}.npz"


def artifact(run_dir: Path, task: str, backend: str, repeat: int, kind: str) -> Path:
    """The file of ``artifact_name(...)`` in ``run_dir``."""
    return inside(run_dir, artifact_name(task, backend, repeat, kind))


def plot_name(*words: str) -> str:
    """``plots/WORD-WORD....png``, relative to the run directory (as summary.md links it).

    The report names plots after task names read back from records.jsonl, which anyone can edit:
    path separators and NULs in a word become ``_`` so a picture is always drawn, and inside the run.
    """
    safe = ("".join("_" if c in "/\\\0" else c for c in str(w)) for w in words)
    return "plots/" + "-".join(safe) + ".png"


def plot_file(run_dir: Path, *words: str) -> Path:
    """The file of ``plot_name(*words)`` in ``run_dir``."""
    return inside(run_dir, plot_name(*words))


def link(run_dir: Path, path: Path) -> str:
    """``path`` relative to the run directory, as summary.md links and records store it."""
    return path.relative_to(Path(run_dir).resolve()).as_posix()


def load_artifact(run_dir: Path, rel: str) -> dict[str, Any] | None:
    """The arrays of an artifact a record names (``explain_file``) or the report expects; None when absent.

    A name that leads outside the run or a file numpy cannot read is warned about, not followed.
    """
    import numpy as np

    from bench.core.results import RunFileError, warn

    try:
        path = inside(run_dir, rel)
        if not path.is_file():
            return None
        with np.load(io.BytesIO(read_bytes(run_dir, path)), allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except (OutsideRunError, RunFileError, OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        warn(f"{run_dir}: artifact {rel!r} skipped: {e}")
        return None


def row_files(run_dir: Path, task: str, backend: str, repeat: int) -> Iterator[Path]:
    """Every file a row writes (OutsideRunError on the first that would leave the run): checked before it runs."""
    jobs = run_dir / ".jobs"
    yield from (task_data(jobs, task), log_file(run_dir, stem(task, backend, repeat)))
    yield from (job_file(jobs, task, backend, repeat, kind) for kind in ("job", "result"))
    yield from (artifact(run_dir, task, backend, repeat, kind) for kind in ARTIFACT_KINDS)
