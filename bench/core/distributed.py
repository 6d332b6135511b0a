"""Data-parallel training: who a worker process is, and how bench splits the work between workers.

Framework-free on purpose. The runner starts one process per worker and hands each its
``DistContext`` through environment variables (``to_env`` / ``from_env``), the way
``torchrun`` hands ``RANK`` / ``WORLD_SIZE`` / ``MASTER_ADDR`` / ``MASTER_PORT`` to a script.
A backend joins its framework's own distributed engine from the context (torch
``DistributedDataParallel`` over c10d, Keras/TF ``MultiWorkerMirroredStrategy`` from
``tf_config()``, Keras/JAX ``keras.distribution.DataParallel`` over ``jax.distributed``);
bench decides which samples each worker trains on (``shard_order``), so every backend
sees the same split, and computes every figure compared between rows.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

ENV_PREFIX = "BENCH_DIST_"
SCALING_MODES = ("strong", "weak")  # strong: the global batch is fixed; weak: the per-worker batch is


@dataclass(frozen=True)
class DistContext:
    """One worker of a data-parallel run, on one machine or several.

    ``addresses`` holds one ``host:port`` per rank, free ports chosen by the runner; the
    first is the rendezvous point (torch's MASTER_ADDR:MASTER_PORT, JAX's coordinator,
    TF's chief). ``threads`` is the intra-op thread count of this worker: the runner keeps
    workers x threads <= cores, and the 1-worker baseline runs with the same threads.
    """

    rank: int
    world_size: int
    addresses: tuple[str, ...]
    local_rank: int = 0
    threads: int = 1
    timeout_s: float = 120.0  # collective / rendezvous timeout: a dead peer fails the row, never hangs it
    device: str = "cpu"  # "cpu" (gloo, grpc/ring) or "cuda" (nccl)
    extra: Mapping[str, str] = field(default_factory=dict)  # backend-specific settings, recorded

    def __post_init__(self) -> None:
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} is outside world_size {self.world_size}")
        if len(self.addresses) != self.world_size:
            raise ValueError(f"{len(self.addresses)} addresses for world_size {self.world_size}")

    @property
    def master_addr(self) -> str:
        return self.addresses[0].rsplit(":", 1)[0]

    @property
    def master_port(self) -> int:
        return int(self.addresses[0].rsplit(":", 1)[1])

    @property
    def is_chief(self) -> bool:
        return self.rank == 0

    def torch_env(self) -> dict[str, str]:
        """The variables ``torchrun`` sets for a worker (c10d ``env://`` rendezvous)."""
        return {
            "RANK": str(self.rank),
            "LOCAL_RANK": str(self.local_rank),
            "WORLD_SIZE": str(self.world_size),
            "LOCAL_WORLD_SIZE": str(self.world_size),
            "MASTER_ADDR": self.master_addr,
            "MASTER_PORT": str(self.master_port),
        }

    def tf_config(self) -> dict[str, Any]:
        """``TF_CONFIG`` for ``MultiWorkerMirroredStrategy``: every worker's address, this one's index."""
        return {"cluster": {"worker": list(self.addresses)}, "task": {"type": "worker", "index": self.rank}}

    def to_env(self) -> dict[str, str]:
        """Everything a worker process needs, as environment variables (the runner sets them)."""
        env = {
            f"{ENV_PREFIX}RANK": str(self.rank),
            f"{ENV_PREFIX}WORLD_SIZE": str(self.world_size),
            f"{ENV_PREFIX}ADDRESSES": ",".join(self.addresses),
            f"{ENV_PREFIX}LOCAL_RANK": str(self.local_rank),
            f"{ENV_PREFIX}THREADS": str(self.threads),
            f"{ENV_PREFIX}TIMEOUT_S": repr(float(self.timeout_s)),
            f"{ENV_PREFIX}DEVICE": self.device,
            f"{ENV_PREFIX}EXTRA": json.dumps(dict(self.extra), sort_keys=True),
        }
        return env | self.torch_env() | {"TF_CONFIG": json.dumps(self.tf_config())}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DistContext | None:
        """This process's context, or None when it was not started as a data-parallel worker."""
        env = os.environ if environ is None else environ
        if f"{ENV_PREFIX}RANK" not in env:
            return None
        try:
            return cls(
                rank=int(env[f"{ENV_PREFIX}RANK"]),
                world_size=int(env[f"{ENV_PREFIX}WORLD_SIZE"]),
                addresses=tuple(env[f"{ENV_PREFIX}ADDRESSES"].split(",")),
                local_rank=int(env.get(f"{ENV_PREFIX}LOCAL_RANK", "0")),
                threads=int(env.get(f"{ENV_PREFIX}THREADS", "1")),
                timeout_s=float(env.get(f"{ENV_PREFIX}TIMEOUT_S", "120")),
                device=env.get(f"{ENV_PREFIX}DEVICE", "cpu"),
                extra=json.loads(env.get(f"{ENV_PREFIX}EXTRA", "{}")),
            )
        except (KeyError, ValueError) as e:
            raise ValueError(f"bad data-parallel worker environment ({ENV_PREFIX}*): {e}") from e


def per_worker_batch(batch_size: int, workers: int, mode: str) -> int:
    """The batch one worker trains on: ``batch_size`` is the global batch (strong) or the per-worker one (weak)."""
    if mode not in SCALING_MODES:
        raise ValueError(f"scaling mode {mode!r}: expected one of {', '.join(SCALING_MODES)}")
    if mode == "weak":
        return batch_size
    if batch_size % workers:
        raise ValueError(f"strong scaling: global batch {batch_size} does not split into {workers} equal shares")
    return batch_size // workers


def shard_order(order: np.ndarray, rank: int, world_size: int, batch: int) -> np.ndarray:
    """This rank's samples of an epoch order: every ``world_size``-th sample, trimmed to whole batches
    so every rank runs the same number of equal steps (a collective waits for every rank); an order
    too short for one batch per rank keeps its equal share."""
    steps = len(order) // world_size // batch * batch  # equal length on every rank
    share = len(order) // world_size if steps == 0 else steps
    return np.asarray(order[rank::world_size][:share], dtype=np.int64)


def eval_part(n_images: int, rank: int, world_size: int) -> slice:
    """This rank's contiguous part of an ``n_images`` test set for the per-epoch evaluation: parts of nearly equal
    size (they differ by one image at most), so no rank waits long for another at the next all-reduce."""
    return slice(n_images * rank // world_size, n_images * (rank + 1) // world_size)


@dataclass(frozen=True)
class ScoredPart:
    """One rank's evaluation of its ``eval_part`` after one epoch, in sums: the ranks' parts add up to the whole
    test set's figures (bench.run.distributed.row_fields), the replicas holding equal weights."""

    epoch: int
    n: int  # images in the part
    correct: int  # of them, predicted right (top-1)
    loss_sum: float  # their cross-entropy, summed

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ScoredPart:
        return cls(int(d["epoch"]), int(d["n"]), int(d["correct"]), float(d["loss_sum"]))


def combine_parts(ranks: Sequence[Sequence[ScoredPart]]) -> dict[int, tuple[float, float]]:
    """Per epoch that every rank scored: (accuracy, mean cross-entropy) over all the ranks' parts together."""
    by_epoch: dict[int, list[ScoredPart]] = {}
    for parts in ranks:
        for p in parts:
            by_epoch.setdefault(p.epoch, []).append(p)
    out = {}
    for epoch, parts in sorted(by_epoch.items()):
        n = sum(p.n for p in parts)
        if len(parts) == len(ranks) and n:
            out[epoch] = (sum(p.correct for p in parts) / n, sum(p.loss_sum for p in parts) / n)
    return out


def shard_batch(n_images: int, world_size: int, batch: int) -> int:
    """The batch a rank steps on: ``batch``, or the rank's whole share where the order is too short for one
    batch per rank (``shard_order`` keeps that share: every epoch is one step of it). Weak scaling only: a
    strong-scaling share always holds a batch, the global batch being at most the training set."""
    return min(batch, n_images // world_size)


class DataParallel(Protocol):
    """The optional role a backend implements to train data-parallel on its framework's own engine.

    The worker calls ``join`` after ``configure`` and before ``put``/``build``; from then on
    ``build``/``compile`` create the model under the engine (wrapped in DDP, built in the
    strategy's scope, sharded by the distribution) and ``train_epoch(state, data, order,
    batch_size, hooks)`` trains on exactly this worker's ``order`` (from ``shard_order``) in
    batches of ``batch_size`` (the per-worker batch), averaging gradients across workers every
    step; ``predict`` still returns every sample it is given (the chief evaluates). ``barrier``
    returns when every worker has called it: the worker calls it after each per-epoch evaluation, so
    the wait for the slowest rank's part is there, between epochs, and not in the next epoch's first
    step (a backend without one: that step is kept off the window, with a note). ``leave``
    tears the process group down and must return within ``timeout_s`` when a peer has died.
    The all-reduce share needs nothing more from a backend: bench times the same window in
    ``world_size`` concurrent workers that never join (same batches, threads and contention,
    no gradient exchange) and compares.
    """

    def join(self, ctx: DistContext) -> dict[str, Any]:
        """Join the group; return record fields: ``dist_backend`` (gloo, nccl, ring, grpc, ...), ``notes``."""
        ...

    def barrier(self) -> None: ...

    def leave(self) -> None: ...
