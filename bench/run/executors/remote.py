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
from bench.core.phase import STAGE_WORDS, SoFar
from bench.core.placement import Placement, RowOutcome
from bench.core.record import new_record
from bench.core.results import checked_answer, is_number, warn
from bench.core.runfiles import read_bytes
from bench.core.runpaths import so_far_file
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
    so_far: SoFar | None = None,
) -> dict[str, Any]:
    """The row's record when its worker left no result: timed out (``timed_out``, with the row as its worker had it
    then: ``so_far``), lost (server, node, job: ``lost`` says what, and the record's ``lost`` field marks it for
    --resume to run again) or exited early."""
    if timeout_s is not None:
        return timed_out(rec, f"stopped after the per-run limit of {timeout_s:g} s", so_far)
    failed = new_record(**rec)
    if lost:
        failed.update(status="failed", error=f"no result: {lost}", lost=True)  # --resume runs it again
    else:
        how = "ended" if code is None else exit_description(code)
        failed.update(status="failed", error=f"worker {how} without a result; last output: {' | '.join(tail[-5:])}")
    return failed


def timed_out(rec: dict[str, Any], stopped: str, so_far: SoFar | None) -> dict[str, Any]:
    """A row stopped at its time limit (``stopped`` says how): "timeout", with what its worker had measured when the
    stage the limit hit started (``so_far``) and that stage in ``timed_out_in``. Until 2026-12-08 a row stopped
    after its test evaluation (QA: a Keras row whose log ended at its test accuracy) lost its training and test figures.
    Still "timeout" and not ok for every reader (the tables' medians, compare, the history, --resume, which keeps
    it as before); its error says what was kept. A record so far that breaks the record's contract is not kept
    (said in the error); its stage still is."""
    if so_far is None:  # stopped before the worker said a stage (or by a worker from before 2026-12-08)
        return new_record(**{**rec, "status": "timeout", "error": stopped})
    kept = checked_answer({**so_far.record, "status": "timeout", "error": None}, rec)
    broken = kept["error"] if kept["status"] != "timeout" else None
    if broken:
        kept = new_record(**{**rec, "status": "timeout", "error": None})
    kept["timed_out_in"] = so_far.stage
    kept["error"] = "; ".join(e for e in (stopped + stopped_words(kept), broken and f"nothing kept: {broken}") if e)
    return kept


def stopped_words(rec: dict[str, Any]) -> str:
    """What a timeout's error says after how the row was stopped: the stage the limit hit (``timed_out_in``) and the
    figures measured before it that the row keeps (" in phase explain; kept what it measured before it: test acc
    0.9685, train 3.1 s"); "" where the stage is not known. Every report quotes a row's error: this is how
    summary.md, the page, `bench compare` and `bench history` say it."""
    stage = rec.get("timed_out_in")
    if not isinstance(stage, str) or not stage:
        return ""
    where = f" {STAGE_WORDS.get(stage, f'in phase {stage}')}"
    acc, train = rec.get("test_acc"), rec.get("train_s")
    figures = [f"test acc {acc:.4f}"] if is_number(acc) else []
    if isinstance(train, int | float) and is_number(train):
        figures.append(f"train {train:.1f} s" if train >= 1 else f"train {train:.2g} s")  # a tiny task's 0.0026 s
    return where + (f"; kept what it measured before it: {', '.join(figures)}" if figures else "")


def read_so_far(root: Path, result: Path) -> SoFar | None:
    """The row as its worker last wrote it beside ``result`` as a stage started (``SoFar``), else None: none written,
    or one that cannot be read (a RunFileWarning naming it: the row then times out as it did before 2026-12-08)."""
    path = so_far_file(result)
    try:
        return SoFar.from_json(json.loads(read_bytes(root, path)))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        warn(f"{path}: unreadable, what the row had measured before its time limit is not kept: {e}")
        return None


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
            so_far = read_so_far(jobs, result) if late is not None else None
            record = no_result(job.record, timeout_s=late, code=code, tail=tail, so_far=so_far)
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
