"""The data-parallel launcher: one process per rank on this machine, rendezvous over loopback, one row.

For one (task, backend, repeat, workers, mode) row the runner calls ``run_row``: it picks free
loopback ports (bind port 0, close, hand out), starts ``workers`` processes of
``python -m bench.run.dist_worker JOB`` with ``DistContext.to_env()`` in their environment
(torchrun's RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT and TF_CONFIG included) and
``OMP_NUM_THREADS`` = the threads per worker, each in a process group of its own that dies with
the runner. It watches them: the first rank that exits without its result fails the row, naming
the rank, how it ended and its last log lines; the others get ``GRACE_S`` to notice (their
collectives fail on the closed connection or within ``timeout_s``) and are then killed with
their groups, so no process is left behind. Ctrl-C and the row's time limit kill them the same
way, a Ctrl-C during a rank's fork included (``sigint_deferred``). A row starts at most one rank
per core (per GPU on CUDA; ``check_workers``, raised with BENCH_MAX_WORKERS). A port taken
between choosing and binding it (another program was quicker) is retried with fresh ports once;
ports given explicitly are checked first and refused by name.

Then, for workers > 1, the same window again in ranks that never join (``local``): the
all-reduce share's reference (bench.measure.scaling). Rank 0's fields and every rank's step
times become the row's record.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backends import describe
from bench.core.architecture import Architecture
from bench.core.backend import PER_RANK_DROPOUT, PER_WORKER_BATCHNORM, DataParallelBatchNorm
from bench.core.catalog import architecture
from bench.core.cpus import usable_cores
from bench.core.distributed import DistContext, ScoredPart, combine_parts, per_worker_batch
from bench.core.job import DistLayout, Job
from bench.core.layers import BatchNorm, Dropout
from bench.core.placement import LOAD_COLUMNS
from bench.core.record import join_notes, new_record
from bench.core.results import json_default
from bench.core.runfiles import make_folder, open_file, read_bytes, write_atomic
from bench.core.spec import SpecError, TaskSpec
from bench.measure import perf, scaling
from bench.measure.steady import OFF_WINDOW_FIELDS
from bench.measure.timing import target_fields
from bench.run import environment, pipes
from bench.run.evaluate import EVAL_FIELDS
from bench.run.forkserver import die_with_parent, exit_description, kill_group, sigint_deferred

LOOPBACK = "127.0.0.1"
GRACE_S = 5.0  # after a rank fails, the others' time to fail on their own before they are killed
POLL_S = 0.05
PORT_IN_USE = ("address already in use", "eaddrinuse", "errno 98", "failed to bind", "address in use")
PORT_RETRIES = 1
# Raises the cap of one rank per core (CPU ranks): each rank is a process with a framework and its own copy
# of the data, and workers = [1000] started ranks until memory ran out.
MAX_WORKERS_ENV = "BENCH_MAX_WORKERS"


class RankFailed(RuntimeError):
    """A rank ended without its result; the message names it."""

    def __init__(self, message: str, rank: int, port_in_use: bool = False, unsupported: str = "") -> None:
        super().__init__(message)
        self.rank, self.port_in_use = rank, port_in_use
        self.unsupported = unsupported  # the backend's reason when it has no data-parallel engine (a skipped row)


class PortInUse(RuntimeError):
    """A rendezvous port is taken by another program."""


def free_ports(n: int, host: str = LOOPBACK) -> list[int]:
    """``n`` distinct ports the kernel says are free now (all held open while choosing, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def check_free(addresses: tuple[str, ...]) -> None:
    """PortInUse naming the first ``host:port`` another program holds (bind test, released at once)."""
    for addr in addresses:
        host, port = addr.rsplit(":", 1)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a TIME_WAIT leftover is not "in use"
            try:
                s.bind((host, int(port)))
            except OSError as e:
                if e.errno == errno.EADDRINUSE:
                    raise PortInUse(f"rendezvous port {addr} is already in use by another program") from e
                raise


def threads_per_worker(setting: int, workers: tuple[int, ...], cores: int | None = None) -> int:
    """``setting`` or, for 0, cores // max(workers): every row of a task, the 1-worker baseline too, uses it.
    ``cores``: default, those this process may use (its affinity), not the machine's."""
    if setting:
        return setting
    return max(1, (cores or usable_cores()) // max(workers or (1,)))


def worker_cap(environ: Mapping[str, str], cores: int) -> int:
    """The most ranks a row may start on this machine's CPUs: its cores, or BENCH_MAX_WORKERS when set."""
    value = environ.get(MAX_WORKERS_ENV, "")
    if not value:
        return cores
    if not value.isdigit() or int(value) < 1:
        raise SpecError(f"{MAX_WORKERS_ENV}: expected an integer >= 1, got {value!r}")
    return int(value)


def check_workers(
    tasks: list[TaskSpec],
    environ: Mapping[str, str] | None = None,
    cores: int | None = None,
    gpus: list[str] | None = None,
) -> None:
    """SpecError naming where the counts came from (``distributed.workers``, or ``--workers`` where the command line
    gave them, on --resume too: ``TaskSpec.flags``) when a task's rows need more ranks than this machine runs: one
    GPU each on CUDA, one core each on CPU unless BENCH_MAX_WORKERS allows more."""
    env = os.environ if environ is None else environ
    for task in tasks:
        if not task.distributed.workers:
            continue
        most = max(task.distributed.workers)
        given = task.named("distributed.workers")
        try:
            device = ranks_device(task.runtime.device, most, gpus)
        except ValueError as e:
            raise SpecError(f"{given}: {e}") from None
        cap = worker_cap(env, cores or usable_cores())
        if device == "cpu" and most > cap:
            limit = f"{MAX_WORKERS_ENV}={cap}" if env.get(MAX_WORKERS_ENV) else f"this machine's {cap} cores"
            raise SpecError(
                f"{given}: {most} workers is more than {limit} (each rank is a process "
                f"with its own framework and copy of the data); set {MAX_WORKERS_ENV}={most} to start them anyway, "
                "at the risk of running out of memory"
            )


def oversubscription_notes(tasks: list[TaskSpec], cores: int | None = None) -> list[str]:
    """A line per task whose largest row runs more threads than the cores this process may use: printed before
    the run, each row's note (``scaling.oversubscription``) says it again in its record."""
    cores = cores or usable_cores()
    out = []
    for task in tasks:
        d = task.distributed
        if not d.workers:
            continue
        most, threads = max(d.workers), threads_per_worker(d.threads_per_worker, d.workers, cores)
        if most * threads > cores:
            why = (
                f"distributed.threads_per_worker = {threads}; 0 keeps workers x threads within the cores"
                if d.threads_per_worker
                else f"more workers than cores ({MAX_WORKERS_ENV})"
            )
            out.append(
                f"{task.source}: {most} workers x {threads} thread(s) = {most * threads} threads on this machine's "
                f"{cores} cores ({why}): the rows that oversubscribe the cores time threads waiting for them, as "
                "their notes and summary.md say"
            )
    return out


@dataclass
class Rank:
    """One started rank: its process, log and the last lines it printed."""

    rank: int
    proc: subprocess.Popen
    log: Path
    tail: list[str] = field(default_factory=list)
    pump: threading.Thread | None = None


def _pump(stream: Any, log: Path, tail: list[str], echo: Callable[[str], None] | None, prefix: str) -> None:
    """A rank's output into its log (``pipes.pump``); rank 0's ``@@`` progress lines shown."""
    with open_file(log.parent, log, "a") as out:  # its folder was made by make_folder
        pipes.pump(stream, out, tail, echo, prefix)


def _spawn(job_path: Path, ctx: DistContext, env: dict[str, str], cwd: Path) -> subprocess.Popen:
    """One rank's process, in a session of its own (a group to kill), its output on a pipe."""
    threads = str(ctx.threads)
    rank_env = {**env, **ctx.to_env(), "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    return subprocess.Popen(
        [sys.executable, "-m", "bench.run.dist_worker", str(job_path)],
        cwd=cwd,
        env=rank_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
        preexec_fn=die_with_parent,
    )


def start_ranks(
    job_path: Path,
    contexts: list[DistContext],
    env: dict[str, str],
    cwd: Path,
    log_dir: Path,
    echo: Callable[[str], None] | None,
    prefix: str,
    ranks: list[Rank] | None = None,
) -> list[Rank]:
    """One process per context, dying with this process, each added to ``ranks`` as it starts: a caller that
    passes its list stops every rank started, whatever interrupts the start-up (this function does too)."""
    ranks = [] if ranks is None else ranks
    try:
        for ctx in contexts:
            with sigint_deferred():
                ranks.append(Rank(ctx.rank, _spawn(job_path, ctx, env, cwd), log_dir / f"rank{ctx.rank}.log"))
            r = ranks[-1]
            shown = echo if ctx.rank == 0 else None
            r.pump = threading.Thread(target=_pump, args=(r.proc.stdout, r.log, r.tail, shown, prefix), daemon=True)
            r.pump.start()
    except BaseException:
        stop(ranks)
        raise
    return ranks


def stop(ranks: list[Rank]) -> None:
    """Kill every rank's process group and reap it: nothing of the row is left running."""
    for r in ranks:
        if r.proc.poll() is None:
            kill_group(r.proc.pid)
    for r in ranks:
        with contextlib.suppress(Exception):
            r.proc.wait(timeout=10)
        if r.pump is not None:
            r.pump.join(timeout=5)


def _failure(r: Rank, result_dir: Path) -> RankFailed:
    code = r.proc.returncode
    result = _read(result_dir, r.rank)
    why = result.get("error") if result else None
    if r.pump is not None:
        r.pump.join(timeout=2)
    last = " | ".join(r.tail[-5:])
    text = f"rank {r.rank} {exit_description(code)}" + (f": {why}" if why else "")
    text += f"; last output: {last}" if last else ""
    blob = f"{why or ''} {' '.join(r.tail)}".lower()
    unsupported = str(why) if result and result.get("status") == "skipped" else ""
    return RankFailed(text, r.rank, port_in_use=any(p in blob for p in PORT_IN_USE), unsupported=unsupported)


def _read(result_dir: Path, rank: int) -> dict[str, Any] | None:
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(read_bytes(result_dir, result_dir / f"rank-{rank}.json"))
        return data if isinstance(data, dict) else None
    return None


def watch(ranks: list[Rank], result_dir: Path, timeout_s: float, grace_s: float = GRACE_S) -> list[dict[str, Any]]:
    """Wait for every rank; their results by rank. RankFailed (naming the first to fail) or TimeoutError,
    with every rank stopped either way; KeyboardInterrupt stops them too."""
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            done = [r for r in ranks if r.proc.poll() is not None]
            bad = [r for r in done if r.proc.returncode != 0 or _read(result_dir, r.rank) is None]
            if bad:  # a rank killed by a signal is the cause; a peer's failed collective is its effect
                first = min(bad, key=lambda r: (r.proc.returncode >= 0, r.rank))
                end = time.monotonic() + grace_s
                while time.monotonic() < end and any(r.proc.poll() is None for r in ranks):
                    time.sleep(POLL_S)
                raise _failure(first, result_dir)
            if len(done) == len(ranks):
                return [_read(result_dir, r.rank) or {} for r in ranks]
            if time.monotonic() > deadline:
                raise TimeoutError(f"stopped after the per-run limit of {timeout_s:g} s")
            time.sleep(POLL_S)
    finally:
        stop(ranks)


def contexts(
    workers: int, threads: int, timeout_s: float, device: str, addresses: tuple[str, ...] | None = None
) -> list[DistContext]:
    """One context per rank on this machine: loopback addresses with free ports unless given."""
    addrs = addresses or tuple(f"{LOOPBACK}:{p}" for p in free_ports(workers))
    return [
        DistContext(
            rank=r,
            world_size=workers,
            addresses=addrs,
            local_rank=r,
            threads=threads,
            timeout_s=timeout_s,
            device=device,
        )
        for r in range(workers)
    ]


@dataclass(frozen=True)
class Launch:
    """Where one row's ranks run and how long they may take."""

    job_dir: Path
    log_dir: Path
    cwd: Path
    env: dict[str, str]
    timeout_s: float
    echo: Callable[[str], None] | None = None
    prefix: str = ""
    addresses: tuple[str, ...] | None = None  # explicit ports (checked, never retried); None: free ones


def launch(
    job: Job, workers: int, threads: int, spec: TaskSpec, where: Launch, local: bool, device: str = "cpu"
) -> list[dict[str, Any]]:
    """Start ``workers`` ranks on ``job`` and return their results; RankFailed / PortInUse / TimeoutError."""
    kind = "local" if local else "dp"
    for attempt in range(PORT_RETRIES + 1):
        ctxs = contexts(workers, threads, spec.distributed.timeout_s, device, where.addresses)
        if where.addresses is not None:
            check_free(where.addresses)
        result_dir = where.job_dir / f"{kind}-{attempt}"
        make_folder(where.job_dir.parents[1], result_dir)  # .jobs/ROW/ under the run folder
        job_path = result_dir / "job.json"
        if job.dist is None:
            raise ValueError(f"{job.key}: a data-parallel launch needs the row's layout (job.dist)")
        rank_job = dataclasses.replace(job, result_dir=str(result_dir), dist=dataclasses.replace(job.dist, local=local))
        write_atomic(result_dir, job_path, json.dumps(rank_job.to_json(), default=json_default).encode())
        log_dir = make_folder(where.log_dir.parents[1], where.log_dir / kind)  # logs/ROW/KIND
        ranks: list[Rank] = []
        try:  # every rank started is stopped, a Ctrl-C between start-up and the watch included
            start_ranks(job_path, ctxs, where.env, where.cwd, log_dir, where.echo, where.prefix, ranks)
            return watch(ranks, result_dir, where.timeout_s)
        except RankFailed as e:
            if not e.port_in_use:
                raise
            if where.addresses is not None or attempt == PORT_RETRIES:
                raise PortInUse(
                    f"{e} (a rendezvous port of {', '.join(ctxs[0].addresses)} was taken by another "
                    "program before the rank could bind it)"
                ) from e
            if where.echo is not None:
                where.echo(f"{where.prefix} a rendezvous port was taken meanwhile; retrying with fresh ports")
        finally:
            stop(ranks)
    raise AssertionError("unreachable")


def ranks_device(requested: str, workers: int, gpus: list[str] | None = None) -> str:
    """ "cuda" (one GPU per rank: local_rank r on GPU r) or "cpu"; ValueError when the GPUs are too few."""
    found = environment.gpus() if gpus is None and requested != "cpu" else (gpus or [])
    if requested == "cpu" or (requested == "auto" and not found):
        return "cpu"
    if len(found) < workers:
        raise ValueError(
            f"{workers} workers on CUDA need one GPU each; this machine has {len(found)} "
            '(set runtime.device = "cpu" to scale on CPU)'
        )
    return "cuda"


def run_row(job: Job, spec: TaskSpec, workers: int, mode: str, where: Launch) -> dict[str, Any]:
    """One data-parallel row: the record's fields (rank 0's, the global figures and the all-reduce share)."""
    batch = per_worker_batch(spec.train.batch_size, workers, mode)
    check_workers([dataclasses.replace(spec, distributed=dataclasses.replace(spec.distributed, workers=(workers,)))])
    threads = threads_per_worker(spec.distributed.threads_per_worker, spec.distributed.workers or (workers,))
    device = ranks_device(spec.runtime.device, workers)
    job = dataclasses.replace(job, dist=DistLayout(workers, mode, batch))
    started = time.perf_counter()
    results = launch(job, workers, threads, spec, where, local=False, device=device)
    out = row_fields(results, workers, mode, batch, threads, describe(job.record["backend"]).dp_batchnorm)
    out.update(target_fields(out.get("history") or [], spec.train.target_acc))
    out.update(perf.best_epoch_fields(out.get("history") or [], spec))
    if note := scaling.oversubscription(workers, threads, usable_cores()):
        out["notes"].append(note)
    if workers > 1 and spec.distributed.allreduce_share:
        try:
            local = launch(job, workers, threads, spec, where, local=True, device=device)
        except RankFailed as e:
            raise RankFailed(f"in the no-all-reduce reference run: {e}", e.rank, e.port_in_use) from e
        out.update(share_fields(out, local))
    elif workers > 1:
        out["notes"].append(f"{scaling.NO_SHARE} ([distributed] allreduce_share = false)")
    out["wall_s"] = time.perf_counter() - started
    return out


def row_fields(
    results: list[dict[str, Any]],
    workers: int,
    mode: str,
    batch: int,
    threads: int,
    batchnorm: DataParallelBatchNorm = PER_WORKER_BATCHNORM,
) -> dict[str, Any]:
    """Rank 0's record fields, the global step figures from every rank, and the replicas' agreement (``batchnorm``:
    the engine's, which says why the ranks' BatchNorm statistics differ)."""
    chief = results[0]
    batch = chief.get("per_worker_batch") or batch  # a shard under one batch trains smaller ones (shard_batch)
    keep = (
        "framework",
        "framework_version",
        "device",
        "params",
        "dist_backend",
        "train_s",
        *OFF_WINDOW_FIELDS,  # the first step, the warm-up and compile_s: rank 0's, as a single-process row's
        *EVAL_FIELDS,  # rank 0's test-set evaluation, the single-process row's fields
        *LOAD_COLUMNS,  # rank 0's node as its window ended
        "history",
        "peak_device_mb",
    )
    out: dict[str, Any] = {k: chief.get(k) for k in keep}
    out.update(chief.get("configuration") or {})  # rank 0's knobs and their columns, as a single-process row's
    out["history"] = per_epoch_test(chief.get("history"), results)
    d, i = scaling.global_steps([r["durations"] for r in results], [r["images"] for r in results])
    g = scaling.throughput(d, i, scaling.rank_segments([r.get("segments") for r in results], len(d)))
    out.update(
        g, workers=workers, scaling_mode=mode, per_worker_batch=batch, global_batch=batch * workers, threads=threads
    )
    out["peak_host_mb"] = max(r.get("peak_host_mb") or 0 for r in results) or None
    notes = list(chief.get("notes", [])) + list(chief.get("known_differences", []))
    notes.append(
        f"{workers} worker(s) x {threads} thread(s), {mode} scaling: per-worker batch {batch}, "
        f"global batch {batch * workers}"
    )
    if workers > 1 and (replicas := replicas_note(results, batchnorm.running_stats)):
        notes.append(replicas)
        out["rank_checksums"] = [r.get("checksum") for r in results]
    out["notes"] = notes
    return out


def _spread(sums: list[float | None]) -> tuple[float, bool] | None:
    """(max - min, equal to float rounding) of every rank's sum, or None where a rank has none."""
    known = [s for s in sums if s is not None]
    if not known or len(known) != len(sums):
        return None
    spread = max(known) - min(known)
    return spread, spread <= 1e-6 * max(1.0, abs(known[0]))


def replicas_note(results: list[dict[str, Any]], why: str = "") -> str | None:
    """Whether the ranks' trainable weights are equal after training, and where the rest of their state (BatchNorm's
    running statistics) differs, why that is expected (``why``: the engine's reason, ``DataParallelBatchNorm``): until
    2026-12-06 the checksum summed both, and a BatchNorm model's torch 2-worker row read DIFFER (spread 0.061) though
    its trainable weights were equal."""
    trainable = _spread([r.get("checksum") for r in results])
    if trainable is None:
        return None
    spread, same = trainable
    verdict = "equal" if same else "DIFFER"
    note = f"{scaling.REPLICAS}{verdict} on every rank (trainable weights' checksum spread {spread:.3g})"
    state = _spread([r.get("state_checksum") for r in results])
    if state is not None and not state[1]:
        reason = f" ({why})" if why else ""
        note += (
            f", and the non-trainable state (BatchNorm's running statistics) is each rank's own (spread "
            f"{state[0]:.3g}){reason}: the row evaluates rank 0's"
        )
    return note


def per_epoch_test(history: list[dict[str, Any]] | None, results: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """Rank 0's history with each epoch's test accuracy and loss over the whole test set, summed from every rank's
    scored part (``combine_parts``); the last epoch keeps rank 0's whole-set evaluation."""
    if history is None:
        return None
    parts = [[ScoredPart.from_json(p) for p in r.get("scored_parts") or []] for r in results]
    combined = combine_parts(parts)
    return [
        {**h, "test_acc": combined[h["epoch"]][0], "test_loss": combined[h["epoch"]][1]}
        if h["epoch"] in combined and "test_acc" not in h
        else h
        for h in history
    ]


def share_fields(dp: dict[str, Any], local: list[dict[str, Any]]) -> dict[str, Any]:
    """The all-reduce share from the same window in ranks that never joined."""
    d, i = scaling.global_steps([r["durations"] for r in local], [r["images"] for r in local])
    if not d or not dp.get("steady_step_s"):
        return {"allreduce_source": "no timed steps"}
    t_local = scaling.throughput(d, i)["steady_step_s"]
    return {
        "allreduce_share": scaling.allreduce_share(dp["steady_step_s"], t_local),
        "local_step_s": t_local,
        "allreduce_source": "same window, workers not joined",
    }


def record(
    job: Job, spec: TaskSpec, workers: int, mode: str, where: Launch, records: list[dict[str, Any]]
) -> dict[str, Any]:
    """The row's record: ok with its figures (efficiency against the 1-worker row in ``records``), or failed /
    timeout naming what went wrong. KeyboardInterrupt passes through, every rank stopped."""
    rec = new_record(**job.record)
    rec.update(workers=workers, scaling_mode=mode)
    if why := describe(job.record["backend"]).no_data_parallel:  # known without starting a rank
        rec.update(status="skipped", error=why, wall_s=0.0)
        return rec
    started = time.perf_counter()
    try:
        fields = run_row(job, spec, workers, mode, where)
    except TimeoutError as e:
        rec.update(status="timeout", error=str(e), wall_s=time.perf_counter() - started)
        return rec
    except RankFailed as e:
        status, error = ("skipped", e.unsupported) if e.unsupported else ("failed", str(e))
        rec.update(status=status, error=error, wall_s=time.perf_counter() - started)
        return rec
    except (PortInUse, ValueError, OSError) as e:
        rec.update(status="failed", error=str(e), wall_s=time.perf_counter() - started)
        return rec
    notes, info = list(job.notes) + fields.pop("notes"), describe(job.record["backend"])
    rec.update(fields, status="ok")
    if workers == 1:
        rec["scaling_eff"] = 1.0
    else:
        base = scaling.baseline(records, rec)
        rec.update(scaling.baseline_fields(rec, base))
        if rec.get("scaling_eff") is None:
            notes.append(no_efficiency(rec, base))
        elif mode == "strong" and base and base.get("test_acc") is not None and rec.get("test_acc") is not None:
            notes.append(
                f"{scaling.AGAINST_ONE}{rec['test_acc'] - base['test_acc']:+.4f} against 1 worker at the same global "
                f"batch (the same batches, gradients averaged: "
                f"{what_differs(architecture(spec), info.dp_batchnorm, info.dp_dropout)})"
            )
    rec["notes"] = join_notes(notes)
    return rec


def what_differs(
    arch: Architecture, batchnorm: DataParallelBatchNorm = PER_WORKER_BATCHNORM, dropout: str = PER_RANK_DROPOUT
) -> str:
    """What, besides the batches and averaged gradients a strong-scaling row shares with its 1-worker row, tells
    their models apart (docs/distributed.md): float rounding, the engine's dropout draws (``dropout``: each rank's own,
    or Keras on JAX's one mask over a reordered global batch), each worker's BatchNorm over its own share of the batch
    where the engine's (``batchnorm``) is not over the global batch (Keras on JAX's is, as 1 worker's). QA: an
    mnist_cnn row 4.7 points off its 1-worker row (its two dropouts, 15 steps) said "only float rounding differs". A
    zoo model's layers are not listed here: both are named as possible."""
    local_bn = not batchnorm.global_batch
    bn = "BatchNorm normalises each worker's share of the batch"
    if not arch.layers:
        return f"float rounding, and where the model has them: {dropout}" + (f", {bn}" if local_bn else "")
    kinds = {type(layer) for layer in arch.layers}
    parts = ([dropout] if Dropout in kinds else []) + ([bn] if BatchNorm in kinds and local_bn else [])
    return ", ".join([*parts, "and float rounding"]) if parts else "only float rounding differs"


def no_efficiency(row: dict[str, Any], base: dict[str, Any] | None) -> str:
    """Why ``row`` has no scaling efficiency: no 1-worker row to divide by, or a row of the two with no rate (every
    step was the first or warm-up: an epoch of one or two steps)."""
    if base is None:
        return f"{scaling.NO_EFFICIENCY}no ok 1-worker row of this task, backend and mode"
    which = [name for name, r in (("this row", row), ("the 1-worker row", base)) if not r.get("steady_img_s")]
    return f"{scaling.NO_EFFICIENCY}no timed steps in {' and '.join(which)} (each step was the first or warm-up)"
