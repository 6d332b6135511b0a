"""Keras on JAX, data-parallel: ``jax.distributed`` (one process per worker, gloo collectives on the CPU)
and ``keras.distribution.DataParallel`` over every process's devices.

What a Keras/JAX user writes: ``jax.distributed.initialize`` (as ``keras.distribution.initialize``
does, here with the row's timeouts), ``set_distribution(DataParallel(devices=jax.devices()))``, then
build and ``fit``. Each process hands ``fit`` its own batch; Keras's JAX trainer makes one global
batch of them (``jax.make_array_from_process_local_data``), the variables are replicated, and XLA
inserts the gradient all-reduce into the jitted train step: the loss and gradients are those of
the global batch, as one process on all of it would compute them.
"""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import jax
import keras
import numpy as np
from jax.experimental import multihost_utils

from backends.keras.input import Batches, HostImages
from bench.core.distributed import DistContext


def start(ctx: DistContext) -> None:
    """Connect to the coordinator (rank 0's address). Must run before JAX creates its backends (before
    ``jax.devices()``), which is why the engine's ``configure`` calls it for a data-parallel worker.

    ``heartbeat_timeout_seconds`` bounds how long a dead peer goes unnoticed; ``initialization_timeout``
    how long a worker waits for the others to come.
    """
    if jax.distributed.is_initialized():
        return
    timeout = max(1, int(ctx.timeout_s))
    # A coordinator that never answers makes jaxlib end the process (DEADLINE_EXCEEDED, RegisterTask):
    # bounded, but with no Python error, so say first who waits for what.
    print(
        f"rank {ctx.rank}: joining jax.distributed at {ctx.addresses[0]}: waiting at most {timeout} s "
        f"(a DEADLINE_EXCEEDED below: a worker never came)",
        file=sys.stderr,
        flush=True,
    )
    try:
        jax.distributed.initialize(
            coordinator_address=ctx.addresses[0],
            num_processes=ctx.world_size,
            process_id=ctx.rank,
            local_device_ids=None if ctx.device == "cpu" else [ctx.local_rank],
            initialization_timeout=timeout,
            heartbeat_timeout_seconds=max(2, min(100, timeout // 4)),
            shutdown_timeout_seconds=timeout,
        )
    except Exception as e:  # jaxlib raises its own XlaRuntimeError / ValueError
        raise RuntimeError(
            f"rank {ctx.rank}: jax.distributed could not reach the coordinator {ctx.addresses[0]} "
            f"within {timeout} s: {e}"
        ) from e


class Session:
    """One worker's distribution: every process's devices, this process's batches, the local predict."""

    def __init__(self, ctx: DistContext) -> None:
        self.ctx = ctx
        start(ctx)  # a no-op when configure already connected, as it should have
        if jax.process_count() != ctx.world_size:
            raise RuntimeError(f"jax.distributed has {jax.process_count()} processes, expected {ctx.world_size}")
        self.devices = jax.devices()
        # bench already sharded (shard_order): each process hands fit its own batch, never re-sharded
        self.distribution = keras.distribution.DataParallel(devices=self.devices, auto_shard_dataset=False)
        keras.distribution.set_distribution(self.distribution)
        platform = self.devices[0].platform
        cpu = jax.config.jax_cpu_collectives_implementation  # type: ignore[attr-defined]  # a jax flag: set at run time, untyped
        self.collectives = "nccl" if platform == "gpu" else cpu or "gloo"

    def record(self) -> dict[str, Any]:
        notes = [
            f"keras-jax data-parallel: keras.distribution.DataParallel over {len(self.devices)} devices in "
            f"{jax.process_count()} processes (jax.distributed, {self.collectives} collectives), "
            f"heartbeat timeout bounds a dead peer",
        ]
        return {"dist_backend": f"{self.collectives} (jax.distributed)", "notes": notes}

    def adopt(self, trainer: keras.Model) -> None:
        """Keras's JAX ``fit`` distributes each process's batch itself. On a one-device mesh (the 1-worker row)
        the trainer's state is committed to that device, now and after every metrics reset.

        Why: over one device Keras 3.15 leaves a variable's value uncommitted (``distribute_tensor`` skips the
        ``device_put`` when the array already sits on the mesh's only device), and jit keys its cache on
        whether an argument is committed. So the train step compiled three times where a mesh of 2 or more
        devices compiles it once: at step 0, at step 1 (its outputs are committed) and at the second epoch's
        first step (``fit`` resets the loss tracker's variables to fresh uncommitted zeros each epoch), that
        last inside the timed window. Measured on the 2-core VM (quick mnist-lenet5, 2026-12-06): a 0.7 s
        compile in the 1-worker row's second stretch, 1,335 img/s against 6,050-10,028 in the later ones and a
        headline of 6,283 img/s; committed, the step compiled once and the row read 8,023 (that stretch: 8,758).
        A 1-worker headline read low inflates every scaling efficiency against it."""
        if len(self.devices) > 1:
            return
        device = self.devices[0]

        def commit(variables: list[Any]) -> None:
            for v in variables:  # a committed array on the mesh's device is kept as it is (no copy after this)
                v.assign(jax.device_put(v.value, device))

        optimizer = getattr(trainer, "optimizer", None)
        commit(
            [
                *trainer.trainable_variables,
                *trainer.non_trainable_variables,
                *(optimizer.variables if optimizer is not None else []),
                *trainer.metrics_variables,
            ]
        )
        reset = trainer.reset_metrics

        def reset_committed() -> None:
            reset()
            commit(trainer.metrics_variables)

        trainer.reset_metrics = reset_committed  # fit calls it at every epoch's start

    def scope(self) -> AbstractContextManager[Any]:
        return nullcontext()  # set_distribution already applies to every variable created from now on

    def batches(self, data: HostImages, order: np.ndarray, batch_size: int, y: np.ndarray | None) -> Batches:
        local = jax.local_device_count()
        if batch_size % local:
            raise ValueError(f"batch {batch_size} does not split over this worker's {local} devices")
        return Batches(data, order, batch_size, y)  # this process's part of each global batch

    def predict(self, model: keras.Model, data: HostImages, batch_size: int) -> np.ndarray:
        """Logits of every sample, computed by this worker alone on its copy of the replicated weights
        (no collective: any rank may evaluate)."""
        device = jax.local_devices()[0]
        tv = [self.local(v.value, device) for v in model.trainable_variables]
        ntv = [self.local(v.value, device) for v in model.non_trainable_variables]
        forward = jax.jit(lambda tv, ntv, x: model.stateless_call(tv, ntv, x, training=False)[0])
        batches = Batches(data, np.arange(len(data)), batch_size)
        parts = [np.asarray(forward(tv, ntv, jax.device_put(batches[i][0], device))) for i in range(len(batches))]
        return np.concatenate(parts).astype(np.float32, copy=False)

    @staticmethod
    def local(value: Any, device: Any) -> Any:
        """This process's copy of a replicated global array (or the array itself when it is local)."""
        if isinstance(value, jax.Array) and not value.is_fully_addressable:
            value = value.addressable_data(0)
        return jax.device_put(value, device)

    def host(self, value: Any) -> np.ndarray:
        return np.array(self.local(value, jax.local_devices()[0]))

    def barrier(self) -> None:
        """Return when every process has called it: JAX's own (a tiny all-reduce over every process's devices)."""
        multihost_utils.sync_global_devices("bench: the ranks meet")

    def leave(self) -> None:
        """Back to no distribution; disconnect from the coordinator. Its shutdown is a barrier: every rank
        must call it within ``shutdown_timeout_seconds`` (= timeout_s) of the others, or jaxlib ends the
        process; so leave right after training on every rank (predict after it is local)."""
        if jax.distributed.is_initialized():
            keras.distribution.set_distribution(None)
            jax.distributed.shutdown()
