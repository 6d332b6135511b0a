"""Multi-machine launch: what to run on each host so the frameworks' own launchers form one data-parallel job.

On one machine ``bench.run.distributed`` starts the ranks itself. Across machines each host
starts its own worker the way the framework's users do: torch with ``torchrun`` (c10d
rendezvous at the first host), Keras on TensorFlow with a per-host ``TF_CONFIG``, Keras on
JAX with ``jax.distributed``'s coordinator address, process count and id. ``launch_plan``
generates all of it for a host list; ``python -m bench distributed-launch`` prints it.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Any

from backends import describe
from bench.core.distributed import DistContext
from bench.core.spec import MAX_THREADS, NAME_PATTERN

DEFAULT_PORT = 29500  # torchrun's default rendezvous port
WORKER_PORT = 12345  # TF's per-worker gRPC port (each host's own; one worker per host)


@dataclass(frozen=True)
class HostLaunch:
    """What one host runs: its rank, the torchrun command line, its TF_CONFIG and its worker environment."""

    host: str
    rank: int
    torchrun: list[str]
    tf_config: dict[str, Any]
    env: dict[str, str]


def parse_hosts(value: str) -> list[str]:
    """``a,b,c`` -> host names; ValueError naming a bad or repeated entry."""
    hosts = [h.strip() for h in value.split(",") if h.strip()]
    if not hosts:
        raise ValueError("--hosts: expected a comma-separated list of host names")
    for h in hosts:
        if any(c.isspace() or c in "/:'\"" for c in h):
            raise ValueError(f"--hosts: {h!r} is not a host name (no ports, paths or quotes)")
    if len(set(hosts)) < len(hosts):
        raise ValueError("--hosts: a host is listed twice (one worker per host)")
    return hosts


def launch_plan(
    hosts: list[str],
    task: str,
    *,
    port: int = DEFAULT_PORT,
    worker_port: int = WORKER_PORT,
    threads: int = 0,
    timeout_s: float = 120.0,
) -> list[HostLaunch]:
    """One entry per host, rank = its position; the first host is the rendezvous point (c10d, chief, coordinator).

    ``task`` is the task's name (``TaskSpec.name``), the rendezvous id's tail: until 2026-12-07 the command line's
    argument went there as typed, a path's slashes included (``bench-bench/tasks/examples/mnist-layers.toml``).
    ``threads`` 0 is passed on as 0, each framework's default (the row's ``runtime.threads = 0``); until
    2026-12-07 it became 1, which ``--threads``' help did not say."""
    if not 1 <= port <= 65535 or not 1 <= worker_port <= 65535:
        raise ValueError(f"ports must be in 1..65535, got {port} and {worker_port}")
    if NAME_PATTERN.fullmatch(task) is None:
        raise ValueError(f"{task!r} is not a task name (the rendezvous id is bench-NAME: letters, digits, _ . -)")
    if not 0 <= threads <= MAX_THREADS:
        raise ValueError(f"--threads: must be an integer in 0..{MAX_THREADS:,}, got {threads}")
    n = len(hosts)
    script = ["-m", "bench.run.dist_worker"]
    plan = []
    for rank, host in enumerate(hosts):
        ctx = DistContext(
            rank=rank,
            world_size=n,
            addresses=tuple(f"{h}:{worker_port}" for h in hosts),
            threads=threads,
            timeout_s=timeout_s,
        )
        torchrun = [
            "torchrun",
            "--nnodes",
            str(n),
            "--nproc-per-node",
            "1",
            "--node-rank",
            str(rank),
            "--rdzv-backend",
            "c10d",
            "--rdzv-endpoint",
            f"{hosts[0]}:{port}",
            "--rdzv-id",
            f"bench-{task}",
            *script,
            "JOB.json",
        ]
        env = {k: v for k, v in ctx.to_env().items() if k.startswith("BENCH_DIST_")}
        if threads:  # as bench.run.distributed starts a rank on one machine: the BLAS and OpenMP pools too
            env |= {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        plan.append(HostLaunch(host, rank, torchrun, ctx.tf_config(), env))
    return plan


def launcher(backend: str) -> str:
    """How ``backend``'s ranks join, as its description says (``BackendInfo.dist_launch``): "torchrun" (torch DDP
    over c10d), "tf_config" (Keras on TensorFlow, MultiWorkerMirroredStrategy), "jax" (Keras on JAX, jax.distributed's
    coordinator), or "plain" (the worker line with BENCH_DIST_* alone: a backend of another framework joins from
    those)."""
    return describe(backend).dist_launch


def render(plan: list[HostLaunch], backend: str) -> str:
    """The plan as text a user can paste: per host, what ``backend``'s rank needs and nothing else (until 2026-12-07
    every backend got the torchrun line and the TF_CONFIG line alike, keras-torch, which has no data-parallel
    engine, included). torch: the BENCH_DIST_* variables and the torchrun line (torchrun sets RANK, MASTER_ADDR,
    MASTER_PORT; the torch backend keeps its values). Keras on TensorFlow: TF_CONFIG and BENCH_DIST_* on the plain
    worker line (the worker makes TF_CONFIG from BENCH_DIST_ADDRESSES again, the same text). Keras on JAX: BENCH_DIST_*
    alone (the coordinator is the first address, process count and id the world size and rank)."""
    how = launcher(backend)
    endpoint = plan[0].torchrun[plan[0].torchrun.index("--rdzv-endpoint") + 1]
    first = plan[0].tf_config["cluster"]["worker"][0]
    meet = {
        "torchrun": f"torch rendezvous (c10d) at {endpoint}",
        "tf_config": f"TF chief (MultiWorkerMirroredStrategy) at {first}",
        "jax": f"JAX coordinator (jax.distributed) at {first}",
        "plain": f"first address {first}",
    }[how]
    lines = [
        f"# backend {backend}: {len(plan)} host(s), one worker each; {meet}",
        "# JOB.json: a rank job file as bench.run.distributed writes it under results/<run>/.jobs/ "
        "(copy it and the task's prepared data to every host at the same path)",
    ]
    worker = "python -m bench.run.dist_worker JOB.json"
    for h in plan:
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(h.env.items()))
        lines += ["", f"## host {h.host} (rank {h.rank})"]
        if how == "torchrun":
            lines.append(f"# torch (DistributedDataParallel):\n{env} {shlex.join(h.torchrun)}")
        elif how == "tf_config":
            tf_config = shlex.quote(json.dumps(h.tf_config))
            lines.append(f"# Keras on TensorFlow (TF_CONFIG):\nTF_CONFIG={tf_config} {env} {worker}")
        elif how == "jax":
            lines.append(f"# Keras on JAX (jax.distributed, from BENCH_DIST_*):\n{env} {worker}")
        else:
            lines.append(f"# {backend} (BENCH_DIST_*):\n{env} {worker}")
    return "\n".join(lines)
