"""One row on a node away from the driver (a Ray task, a SLURM array job): the same worker, its results as data.

The row runs as ``python -m bench.run.worker JOB`` -- the worker the warm servers fork, started fresh
(its framework import is then part of no timing, as with the servers, and ``import_s`` stays empty) --
in a scratch folder on the node that mirrors the run folder's layout: ``.jobs/`` with the job file and
the task's prepared arrays (shipped as bytes, e.g. through Ray's object store, or read where the driver
wrote them when the node shares its file system), ``artifacts/`` for the phases' files. What comes back
is a ``RowOutcome``: the record, the artifact files and the log; the driver writes them. The worker's
progress lines can be handed on as it prints them (``streamed``: a Ray task yields them to the driver).
The worker runs on the CPUs its slot or job was given (``row_cores``): pinned to that many of the node's cores
before it starts, with ``OMP_NUM_THREADS`` their count, so every framework sizes its threads by them. Ray sets
``OMP_NUM_THREADS`` to a task's CPUs and TensorFlow ignores it: on a 1-CPU Ray node a PyTorch row ran 1 thread and a
Keras (TF) row one per core of the machine, and the speed verdict compared the two (QA, 2026-12-08).
Nothing here imports a framework, Ray or submitit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from bench.core.cpus import cores_text
from bench.core.job import Job
from bench.core.placement import Placement, RowOutcome
from bench.core.record import new_record
from bench.core.results import checked_answer
from bench.measure.compile_cache import remove_orphans
from bench.run import pipes
from bench.run.forkserver import die_with_parent, exit_description, kill_group

REPO = Path(__file__).resolve().parents[3]
LOG_LIMIT = 1 << 20  # bytes of a row's log shipped back: its last MiB (progress lines, a traceback)


def no_result(
    rec: dict[str, Any],
    *,
    timeout_s: float | None = None,
    code: int | None = None,
    lost: str | None = None,
    tail: Sequence[str] = (),
) -> dict[str, Any]:
    """The row's record when its worker left no result: timed out, lost (server, node, job: ``lost`` says what,
    and the record's ``lost`` field marks it for --resume to run again) or exited early."""
    failed = new_record(**rec)
    if timeout_s is not None:
        failed.update(status="timeout", error=f"stopped after the per-run limit of {timeout_s:g} s")
    elif lost:
        failed.update(status="failed", error=f"no result: {lost}", lost=True)  # --resume runs it again
    else:
        how = "ended" if code is None else exit_description(code)
        failed.update(status="failed", error=f"worker {how} without a result; last output: {' | '.join(tail[-5:])}")
    return failed


def _localise(job: Job, jobs: Path, blobs: list[bytes] | None) -> Job:
    """The job with its data paths in ``jobs`` (blobs written there, in job order: data, then transfer targets)."""
    if blobs is None:  # a shared file system: the driver's files are read where they are
        return dataclasses.replace(job)
    paths = iter(jobs / f"data{i}.npz" for i in range(len(blobs)))
    data = str(next(paths)) if job.data else ""
    targets = [{**t, "data": str(next(paths))} for t in job.transfer]
    for path, blob in zip([*([data] if data else []), *(t["data"] for t in targets)], blobs, strict=True):
        Path(path).write_bytes(blob)
    return dataclasses.replace(job, data=data, transfer=targets)


def row_cores(cpus: int | None, first: int = 0) -> list[int] | None:
    """The cores of this node a row given ``cpus`` CPUs runs on: ``cpus`` of those this process may use, from the
    ``first``-th on (wrapping round; a slot's offset among the slots that share this host), or all of them where
    ``cpus`` is None or not fewer; None where the platform cannot say (no ``sched_getaffinity``)."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if not cpus or cpus >= len(allowed):
        return allowed
    return [allowed[(first + k) % len(allowed)] for k in range(cpus)]


def _start_on(cores: list[int] | None) -> None:
    """In the worker's process before it runs Python (``preexec_fn``): onto ``cores``, and gone with its parent."""
    if cores is not None:
        os.sched_setaffinity(0, cores)
    die_with_parent()


def where_here(executor: str, extra: str = "", cores: list[int] | None = None) -> Placement:
    """This node's host name and the devices the row uses (CUDA_VISIBLE_DEVICES, its cores: ``cores``, else those
    this process may use)."""
    parts = [extra] if extra else []
    gpus = os.environ.get("CUDA_VISIBLE_DEVICES")
    if gpus:
        parts.append(f"cuda {gpus}")
    if cores is None and hasattr(os, "sched_getaffinity"):
        cores = sorted(os.sched_getaffinity(0))
    if cores is not None:
        parts.append(f"cores {cores_text(cores)}")
    return Placement(executor, socket.gethostname(), " ".join(parts) or None)


SCRATCH_PREFIX = "bench-row-"


def _wait(proc: subprocess.Popen, timeout_s: float) -> tuple[int, float | None]:
    """The worker's exit code, and ``timeout_s`` when it was stopped at the limit (else None)."""
    try:
        return proc.wait(timeout=timeout_s), None
    except subprocess.TimeoutExpired:
        kill_group(proc.pid)
        return proc.wait(), timeout_s
    except BaseException:  # cancelled (Ray, SLURM): the worker goes with it
        kill_group(proc.pid)
        proc.wait()
        raise


def run_row(
    job: Job,
    blobs: list[bytes] | None,
    timeout_s: float,
    executor: str,
    extra: str = "",
    progress: Callable[[str], None] | None = None,
    cpus: int | None = None,
    first: int = 0,
) -> RowOutcome:
    """Run one row's worker here and return its outcome (a failed/timeout record when it left no result).
    ``progress`` is handed each of the worker's progress lines as it prints them, prefixed as a local row's.
    ``cpus``, ``first``: the CPUs the row was given and where its share starts (``row_cores``)."""
    started = time.time()
    cores = row_cores(cpus, first)
    placement = where_here(executor, extra, cores)
    # A row cancelled by force (Ray's cancel kills this process) never runs the folder's cleanup, which left each
    # cancelled row's data copy behind (QA, 2026-12-05): the folder carries this process's pid, and each row first
    # removes those of processes that are gone.
    remove_orphans(Path(tempfile.gettempdir()), SCRATCH_PREFIX)
    with tempfile.TemporaryDirectory(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-") as scratch:
        run = Path(scratch) / "run"
        jobs, artifacts = run / ".jobs", run / "artifacts"
        jobs.mkdir(parents=True)
        artifacts.mkdir()
        job = dataclasses.replace(
            _localise(job, jobs, blobs), result=str(jobs / "result.json"), artifacts=str(artifacts)
        )
        (jobs / "job.json").write_text(json.dumps(job.to_json()))
        log_path = run / "row.log"
        path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        env = {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        if cores is not None:  # torch's pool reads it (Ray set the task's CPUs there); TF's and XLA's the cores
            env["OMP_NUM_THREADS"] = str(len(cores))
        tail: list[str] = []
        read_fd, write_fd = os.pipe()  # read as it comes (the log, the progress lines), as a local row's output is
        with open(log_path, "w") as log, os.fdopen(read_fd, encoding="utf-8", errors="replace") as stream:
            pump = threading.Thread(target=pipes.pump, args=(stream, log, tail, progress, pipes.row_prefix(job.record)))
            pump.start()
            try:
                with os.fdopen(write_fd, "wb") as out:  # the worker holds the only write end: EOF when it exits
                    proc = subprocess.Popen(
                        [sys.executable, "-m", "bench.run.worker", str(jobs / "job.json")],
                        cwd=REPO,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                        preexec_fn=functools.partial(_start_on, cores),
                    )
                code, late = _wait(proc, timeout_s)
            finally:
                pump.join()
        text = log_path.read_bytes()[-LOG_LIMIT:].decode(errors="replace")
        result = jobs / "result.json"
        record = None
        if late is None and result.is_file():
            with contextlib.suppress(ValueError):
                record = json.loads(result.read_text())
        if isinstance(record, dict):
            record = checked_answer(record, job.record)
        else:
            record = no_result(job.record, timeout_s=late, code=code, tail=tail)
            record["wall_s"] = time.time() - started
        files = {p.name: p.read_bytes() for p in artifacts.rglob("*.npz") if p.is_file()}
    return RowOutcome(record, files, text, placement, started, time.time())


def streamed(run: Callable[[Callable[[str], None]], RowOutcome]) -> Iterator[str | RowOutcome]:
    """``run(progress)`` (a ``run_row``) in a thread, each progress line yielded as it comes, then the outcome: a
    Ray task that is a generator streams each of its yields to the driver at once, so a row's progress reaches
    the driver through Ray itself (a real cluster's nodes share no disk with it). An exception is raised here."""
    lines: queue.Queue[str | None] = queue.Queue()
    ended: list[RowOutcome | BaseException] = []

    def row() -> None:
        try:
            ended.append(run(lines.put))
        except BaseException as e:  # raised in the caller's thread below
            ended.append(e)
        finally:
            lines.put(None)

    thread = threading.Thread(target=row, daemon=True)  # the worker's parent: it dies with this process
    thread.start()
    while (line := lines.get()) is not None:
        yield line
    thread.join()
    if isinstance(ended[0], BaseException):
        raise ended[0]
    yield ended[0]
