"""The command line of data-parallel rows: ``run --workers 1,2 --scaling strong,weak`` and ``distributed-launch``."""

from __future__ import annotations

import argparse
import dataclasses
import sys

import backends
from bench.core.distributed import SCALING_MODES
from bench.core.spec import MAX_THREADS, MAX_WORKERS, SpecError, TaskSpec, load_task, spec_from_dict
from bench.run import dist_launch
from bench.run.argtypes import in_range
from bench.run.knobcheck import refuse_unknown_knob_backends
from datasets import registry


def _workers(value: str) -> tuple[int, ...]:
    """--workers 1,2,4: distinct worker counts in 1..MAX_WORKERS (checked here, so the error names --workers,
    not the spec key the counts go into)."""
    try:
        counts = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated worker counts such as 1,2, got {value!r}") from None
    if not counts or any(not 1 <= c <= MAX_WORKERS for c in counts) or len(set(counts)) < len(counts):
        raise argparse.ArgumentTypeError(
            f"expected distinct worker counts >= 1 (at most {MAX_WORKERS:,}) such as 1,2, got {value!r}"
        )
    return counts


def _modes(value: str) -> tuple[str, ...]:
    """--scaling strong,weak."""
    modes = tuple(v.strip() for v in value.split(",") if v.strip())
    if not modes or any(m not in SCALING_MODES for m in modes) or len(set(modes)) < len(modes):
        raise argparse.ArgumentTypeError(
            f"expected {' or '.join(SCALING_MODES)} (or both, comma-separated), got {value!r}"
        )
    return modes


def add_distributed_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workers",
        type=_workers,
        metavar="N,M",
        help="data-parallel rows: train on each of these worker counts (one process per worker on this "
        "machine, the framework's own engine); overrides the task's [distributed] workers",
    )
    p.add_argument(
        "--scaling",
        type=_modes,
        metavar="MODE",
        help="strong (the task's batch is the global batch, split across workers; default) and/or weak "
        "(it is each worker's batch), comma-separated",
    )


def with_workers(
    tasks: list[TaskSpec], workers: tuple[int, ...] | None, modes: tuple[str, ...] | None
) -> list[TaskSpec]:
    """Apply --workers / --scaling to every task, validated as a [distributed] section would be (SpecError); the
    task records which keys they set (``TaskSpec.flags``), so its errors name the options, not the file's keys."""
    if workers is None and modes is None:
        return tasks
    out = []
    for t in tasks:
        d = t.distributed
        d = dataclasses.replace(d, workers=workers or d.workers, mode=modes or d.mode)
        if not d.workers:
            raise SpecError(f"{t.source}: --scaling needs --workers (or a [distributed] workers list in the task)")
        given = {"distributed.workers": workers, "distributed.mode": modes}
        flags = tuple(sorted({*t.flags, *(key for key, value in given.items() if value)}))
        out.append(spec_from_dict(dataclasses.replace(t, distributed=d, flags=flags).to_dict()))  # as a TOML file
    return out


def add_launch_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "distributed-launch",
        help="print the per-host commands (torchrun, TF_CONFIG) of a multi-machine data-parallel run",
        description="Print, for each host, what the backend's data-parallel worker needs: torch the torchrun "
        "command line (c10d rendezvous at the first host), Keras on TensorFlow its TF_CONFIG, Keras on JAX the "
        "coordinator (the first host), each with the BENCH_DIST_* variables; one worker per host, rank = position "
        "in --hosts. The task is checked as `bench run` checks it; keras-torch has no data-parallel engine.",
    )
    p.add_argument("--hosts", required=True, help="comma-separated host names; the first is the rendezvous point")
    p.add_argument("--task", required=True, help="the task (built-in name or TOML file)")
    p.add_argument("--backend", required=True, choices=backends.names(), help="the backend every host runs")
    p.add_argument(
        "--port", type=int, default=dist_launch.DEFAULT_PORT, help="torchrun rendezvous port on the first host"
    )
    p.add_argument(
        "--worker-port",
        type=int,
        default=dist_launch.WORKER_PORT,
        help="each host's worker port (TF gRPC server, JAX coordinator on the first host)",
    )
    p.add_argument(
        "--threads",
        type=_threads,
        default=0,
        help=f"threads per worker, 0..{MAX_THREADS:,} (0: the framework's default, as a task's runtime.threads = 0)",
    )


def _threads(value: str) -> int:
    """--threads: 0..MAX_THREADS, as a task's runtime.threads (until 2026-12-07 -4 and 100000 were printed as they
    came, and 0 as 1 although the help said the framework's default)."""
    return in_range(
        value,
        int,
        0,
        MAX_THREADS,
        "expected an integer, got {value}",
        f"must be an integer in 0..{MAX_THREADS:,}, got {{n}}",
    )


def launch_task(task: str, backend: str) -> TaskSpec:
    """The task resolved and validated as ``bench run`` does it (a built-in name or a TOML file, its datasets known,
    its [knobs] tables naming backends), and the backend able to train it data-parallel: SpecError (exit 2) naming
    what is wrong. Until 2026-12-07 ``distributed-launch`` took any text (``--task nope``: exit 0) and printed
    commands for keras-torch, whose rows ``bench run`` skips for the same reason."""
    spec = load_task(task, None, registry.DATASETS)
    refuse_unknown_knob_backends([spec])
    if why := backends.describe(backend).no_data_parallel:
        raise SpecError(f"--backend {backend}: {why}")
    return spec


def cmd_launch(args: argparse.Namespace) -> int:
    try:
        hosts = dist_launch.parse_hosts(args.hosts)
        spec = launch_task(args.task, args.backend)
        plan = dist_launch.launch_plan(
            hosts, spec.name, port=args.port, worker_port=args.worker_port, threads=args.threads
        )
    except (SpecError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(dist_launch.render(plan, args.backend))
    return 0
