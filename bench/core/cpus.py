"""Keeping a process on as many CPU cores as it was given threads, for a framework that ignores thread settings.

XLA's CPU client (Keras on JAX) sizes its thread pool by the cores the process may run on and
ignores ``XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=N"``:
measured on the 2-core VM (2026-11-29), a jitted conv + matmul loop used 1.98 CPU seconds per
second with N = 1 and without the flags alike, and 1.00 once the process was restricted to one
core. So a row that records ``threads = 1`` (a data-parallel worker, or a task's
``runtime.threads``) must restrict its cores, or two such workers run on all cores each.
"""

from __future__ import annotations

import os


def usable_cores() -> int:
    """The cores this process may run on (``taskset`` / a cgroup's cpuset narrow them): what TensorFlow's
    and XLA's default pools size themselves by, where ``os.cpu_count()`` counts the whole machine."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def pool_threads(asked: int) -> tuple[int, str | None]:
    """(threads, note) of a pool sized by this process's cores (XLA's CPU pool, which ignores thread settings): it
    runs on every core the process may use, ``restrict_to_threads`` having narrowed them to ``asked`` where it could;
    the note says so where ``asked`` (``runtime.threads``) is another count: above the cores, nothing adds any."""
    cores = usable_cores()
    if not asked or asked == cores:
        return cores, None
    return cores, (
        f"threads: {asked} asked, ran on the {cores} core(s) this process may use "
        "(XLA's CPU pool sizes itself by them and ignores thread settings)"
    )


def threads_over_cores(threads: int, cores: int | None = None) -> str | None:
    """A row's note where ``threads`` (its ``runtime.threads``) is more than ``cores`` (default: those this process may
    use, ``usable_cores``: a device slot's or a cgroup's share), else None; ``bench run`` says it before it starts
    (bench.run.knobcheck.threads_warnings). Warned of, not refused: a task file runs on machines of other sizes (a
    count written for a 16-core node stopped on a laptop would stop the run's every row), an executor's rows run on
    cores the run cannot see, and an oversubscribed row may be what is measured; data-parallel workers x threads
    above the cores are warned of so too (bench.run.distributed.oversubscription_notes). Unsaid, a torch row at 1,000
    threads on 2 cores ran ~500x slower and its record said only "1000 thread(s)"."""
    cores = cores or usable_cores()
    if threads <= cores:
        return None
    return (
        f"runtime.threads = {threads} is more than the {cores} core(s) this process may use: a framework that starts "
        "that many threads has them wait for cores, and this row's times include the wait (0: the framework's own "
        "count)"
    )


def cores_for(threads: int, slot: int, allowed: list[int]) -> list[int] | None:
    """The ``threads`` cores of ``allowed`` that slot ``slot`` (a data-parallel worker's local rank) gets,
    neighbours first and wrapping round; None when ``threads`` covers every allowed core (nothing to restrict)."""
    if threads <= 0 or threads >= len(allowed):
        return None
    start = (slot * threads) % len(allowed)
    return [allowed[(start + i) % len(allowed)] for i in range(threads)]


def restrict_to_threads(threads: int, slot: int = 0) -> list[int] | None:
    """Restrict this process to ``threads`` cores (``cores_for``) before the framework creates its pool.

    Returns the cores it now runs on, or None when nothing was restricted (threads unset, as many
    as the allowed cores, or a platform without ``sched_setaffinity``).
    """
    if not hasattr(os, "sched_setaffinity"):
        return None
    cores = cores_for(threads, slot, sorted(os.sched_getaffinity(0)))
    if cores is not None:
        os.sched_setaffinity(0, cores)
    return cores


CORES_ENV = "BENCH_CORES"  # "0,1": the cores a child process is handed (a device slot, a parity lane)


def restrict_to_handed_cores() -> list[int] | None:
    """Restrict this process to the cores its parent handed it in ``BENCH_CORES``, before a framework sizes
    its thread pools; None when none were handed (or the platform cannot restrict)."""
    cores = os.environ.get(CORES_ENV)
    if not cores or not hasattr(os, "sched_setaffinity"):
        return None
    handed = [int(c) for c in cores.split(",")]
    os.sched_setaffinity(0, handed)
    return handed


def cores_text(cores: list[int]) -> str:
    """``0-3,8`` for [0, 1, 2, 3, 8]."""
    runs: list[list[int]] = []
    for c in cores:
        if runs and c == runs[-1][-1] + 1:
            runs[-1].append(c)
        else:
            runs.append([c])
    return ",".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)
