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

from bench.core.distributed import DistContext

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
    """One entry per host, rank = its position; the first host is the rendezvous point (c10d, chief, coordinator)."""
    if not 1 <= port <= 65535 or not 1 <= worker_port <= 65535:
        raise ValueError(f"ports must be in 1..65535, got {port} and {worker_port}")
    n = len(hosts)
    script = ["-m", "bench.run.dist_worker"]
    plan = []
    for rank, host in enumerate(hosts):
        ctx = DistContext(
            rank=rank,
            world_size=n,
            addresses=tuple(f"{h}:{worker_port}" for h in hosts),
            threads=threads or 1,
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
        plan.append(HostLaunch(host, rank, torchrun, ctx.tf_config(), env))
    return plan


def render(plan: list[HostLaunch], backend: str) -> str:
    """The plan as text a user can paste: per host, the torchrun line (torch's DDP) and the plain worker line
    with its TF_CONFIG (Keras on TF's MultiWorkerMirroredStrategy; Keras on JAX reads the same BENCH_DIST_*)."""
    endpoint = plan[0].torchrun[plan[0].torchrun.index("--rdzv-endpoint") + 1]
    lines = [
        f"# backend {backend}: {len(plan)} host(s), one worker each; torch rendezvous (c10d) at {endpoint}, "
        f"TF chief / JAX coordinator at {plan[0].tf_config['cluster']['worker'][0]}",
        "# JOB.json: a rank job file as bench.run.distributed writes it under results/<run>/.jobs/ "
        "(copy it and the task's prepared data to every host at the same path)",
    ]
    for h in plan:
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(h.env.items()))
        lines += [
            "",
            f"## host {h.host} (rank {h.rank})",
            f"# torch (DistributedDataParallel):\n{env} {shlex.join(h.torchrun)}",
            f"# Keras (TF_CONFIG / jax.distributed):\nTF_CONFIG={shlex.quote(json.dumps(h.tf_config))} {env} "
            "python -m bench.run.dist_worker JOB.json",
        ]
    return "\n".join(lines)
