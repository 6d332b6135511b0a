"""A task's ``[knobs.NAME]`` tables held against the backend registry before anything runs (`bench run`, `all`,
`tune`, `distributed-launch`): a table for a backend that does not exist is a typo that would change nothing. And
its thread counts against the cores each row gets, said before the run starts (``threads_warnings``)."""

from __future__ import annotations

from collections.abc import Sequence

import backends
from bench.core.cpus import threads_over_cores
from bench.core.spec import SpecError, TaskSpec


def refuse_unknown_knob_backends(tasks: list[TaskSpec]) -> None:
    """SpecError (exit 2) naming the first ``[knobs.NAME]`` table whose NAME is no registered backend."""
    for t in tasks:
        for name, _ in t.knobs:
            if name not in backends.BACKENDS:
                raise SpecError(
                    f"{t.source}: knobs.{name}: unknown backend (expected one of: {', '.join(backends.BACKENDS)})"
                )


def threads_warnings(tasks: Sequence[TaskSpec], backend_names: Sequence[str], cores: int) -> list[str]:
    """A line per task and threads setting (``runtime.threads`` or a ``[knobs.NAME]`` table's) above ``cores``, the
    cores each row gets (bench.run.tune.row_cores: a device slot's share, a SLURM job's; else this process's): each
    such row's note says it again (``cpus.threads_over_cores``, which says why it is warned of, not refused). The
    data-parallel rows' workers x threads are ``distributed.oversubscription_notes``'."""
    out = []
    for t in tasks:
        if t.distributed.workers:
            continue
        over: dict[tuple[str, int], list[str]] = {}
        for name in backend_names:
            threads = t.for_backend(name).runtime.threads
            if threads_over_cores(threads, cores):
                own = "threads" in dict(dict(t.knobs).get(name, ()))
                over.setdefault((f"knobs.{name}.threads" if own else "runtime.threads", threads), []).append(name)
        out += [
            f"{t.source}: {key} = {threads} is more than the {cores} core(s) each row gets ({', '.join(names)}): a "
            "framework that starts that many threads has them wait for cores, and the rows' times include the wait, as "
            "their notes say (0: the framework's own count)"
            for (key, threads), names in over.items()
        ]
    return out
