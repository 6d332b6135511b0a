"""A task's data as its rows train on it: loaded and shaped once per task in the parent, saved for the
workers (with its transfer targets), and checked on a resume to be the data the recorded rows trained on.

Apart from the runner because the parity and GPU checks load a task's data the same way without running
rows, and because a resume must find the data its run started with before anything runs.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from bench.core.results import latest_records, read_records
from bench.core.runfiles import write_atomic
from bench.core.runpaths import task_data
from bench.core.spec import SpecError, TaskSpec, check_fits_data
from bench.phases.transfer import prepare_targets
from bench.run.runfolder import PLAN, is_disk_error
from datasets import registry
from datasets.arrays import ArrayDataset
from datasets.prepare import prepare


def load_task_data(task: TaskSpec, data_dir: str | None, seed: int) -> ArrayDataset:
    d = task.dataset
    ds = registry.load(d.name, data_dir=data_dir, fallback=d.fallback, seed=seed)
    return prepare(
        ds,
        classes=d.classes,
        max_train=d.max_train,
        max_test=d.max_test,
        channels=d.channels,
        image_size=d.image_size,
        seed=seed,
    )


def dataset_fields(ds: ArrayDataset, load_s: float) -> dict[str, Any]:
    h, w, c = ds.image_shape
    return {
        "dataset_source": ds.source,
        "image_shape": f"{h}x{w}x{c}",
        "n_classes": ds.n_classes,
        "n_train": len(ds.train),
        "n_test": len(ds.test),
        "data_load_s": load_s,
    }


@contextlib.contextmanager
def plan_data_env(planned: str | None, echo: Callable[[str], None]) -> Iterator[None]:
    """$BENCH_DATA_DIR as the run started with, for as long as the resume runs: a shell that lost it (or set
    another) would otherwise finish a task on other data than its first rows trained on."""
    here = os.environ.get("BENCH_DATA_DIR")
    if here == planned:
        yield
        return
    echo(f"resume: BENCH_DATA_DIR={planned or '(unset)'} as the run started with (here: {here or '(unset)'})")
    if planned is None:
        del os.environ["BENCH_DATA_DIR"]
    else:
        os.environ["BENCH_DATA_DIR"] = planned
    try:
        yield
    finally:
        if here is None:
            os.environ.pop("BENCH_DATA_DIR", None)
        else:
            os.environ["BENCH_DATA_DIR"] = here


class DataChanged(RuntimeError):
    """A resumed task's data is not what its recorded rows trained on (a moved file, another folder)."""


def check_same_data(run_dir: Path, data_key: str, fields: dict[str, Any]) -> None:
    """Stop a resume, before any of the task's rows run, whose data resolves otherwise than its recorded
    rows': the table would put frameworks trained on different data side by side. DataChanged says how."""
    here = (fields.get("dataset_source"), fields.get("n_train"))
    if here[0] is None:  # the data did not load: the task's rows fail, each saying why
        return
    for r in latest_records(read_records(run_dir)):
        if (r.get("base_task") or r.get("task")) != data_key or r.get("status") != "ok":
            continue
        then = (r.get("dataset_source"), r.get("n_train"))
        if then != here:
            raise DataChanged(
                f"{data_key}: its recorded rows trained on {then[0]} ({then[1]} train), this resume finds "
                f"{here[0]} ({here[1]} train); nothing was run. Make the same data findable (the run's "
                f"--data-dir and BENCH_DATA_DIR are in {run_dir / PLAN}) and resume again"
            )


def prepare_task(
    task: TaskSpec,
    data_dir: str | None,
    seed: int,
    job_dir: Path,
    echo: Callable[[str], None],
    data_key: str = "",
    transfer: bool = True,
) -> dict[str, Any]:
    """Load and shape a task's data once and save it for the workers, and its transfer targets where ``transfer``;
    a failure fails its rows. ``notes``: the task's data's own (each target's are in its entry)."""
    try:
        t0 = time.perf_counter()
        ds = load_task_data(task, data_dir, seed)
        check_fits_data(task, len(ds.train), ds.image_shape)  # before the data is saved or any row starts
        fields = dataset_fields(ds, time.perf_counter() - t0)
        path = task_data(job_dir, data_key or task.name)
        arrays = {"x_train": ds.train.x, "y_train": ds.train.y, "x_test": ds.test.x, "y_test": ds.test.y}
        write_atomic(job_dir, path, lambda f: np.savez(f, allow_pickle=False, **arrays))
        targets = prepare_targets(task, ds, data_dir, seed, job_dir) if transfer else []
    except SpecError as e:  # the task asks more than its data holds: its rows fail, each saying so
        echo(f"{task.name}: {e}")
        return {"error": str(e)}
    except Exception as e:  # bad data fails this task's rows, not the suite; a full disk stops the suite
        if is_disk_error(e):
            raise
        echo(f"{task.name}: dataset: {type(e).__name__}: {e}")
        return {"error": f"dataset: {type(e).__name__}: {e}"}
    echo(
        f"{task.name}: {ds.source}, {fields['n_train']} train / {fields['n_test']} test, "
        f"{fields['image_shape']}, profile {task.profile or '-'}"
    )
    for t in targets:
        echo(
            f"{task.name}: transfer target {t['dataset']}: {t['source']}, {t['n']} {t['split']} images "
            f"of {'/'.join(t['classes'])}"
        )
    return {
        "fields": fields,
        "data": str(path),
        "classes": list(ds.classes),
        "notes": list(ds.notes),
        "transfer": targets,
    }
