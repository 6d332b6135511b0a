"""One Keras data-parallel worker, as the launcher runs it: ``python -m tests.dist_keras_probe BACKEND``.

Started by tests/test_distributed_keras.py with ``DistContext(...).to_env()`` in its environment
(or none: the 1-worker reference in a plain process). It joins, builds the cifar10-cnn task's model
on small synthetic images, takes one SGD step on its share of the first global batch, then trains
``--epochs`` epochs on its ``shard_order`` share, and prints one ``@@probe`` JSON line: the loss
``fit`` reported, the step count the step hooks saw, a hash of the weights, the dist_backend.
``--die-after-step`` makes rank 1 kill itself (SIGKILL, as the OOM killer does) after the first step;
the survivor then prints ``@@error`` with how long its failing collective took. ``--count-compiles`` (JAX):
how many times the train step was compiled, in ``train_step_compiles``. ``--train-rank``: the same epochs through
bench's own rank (bench.run.dist_worker.train_rank, its step clock on the Keras callbacks), printing ``@@rank``
with the record fields it gives (and the compiles, with ``--count-compiles``). ``--meet DIR``: after training, the
ranks meet (``backend.barrier``) as tests/dist_meet_probe.py has them meet (rank 1 late), in ``met``. ``--dropout``
(JAX): a Dropout layer's training outputs on one global batch, over the ranks' mesh (``dropout_mesh``) and, after
leaving, on this process's one device (``dropout_one``).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

N_TRAIN, SHAPE, CLASSES = 256, (32, 32, 3), 10


class CountSteps:
    """The worker's StepClock stand-in: counts the optimiser steps ``fit`` ran (bench's hooks)."""

    def __init__(self) -> None:
        self.begun = self.ended = 0

    def on_step_begin(self, i: int) -> None:
        self.begun += 1

    def on_step_end(self, i: int) -> None:
        self.ended += 1


def count_compiles(name: str) -> list[str]:
    """The compiles of ``jit(name)`` from now on, as JAX logs them (``jax_log_compiles``): a list that grows."""
    import logging

    import jax

    seen: list[str] = []

    class Count(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith(f"Finished XLA compilation of jit({name})"):
                seen.append(record.getMessage())

    logging.getLogger("jax").addHandler(Count())
    jax.config.update("jax_log_compiles", True)
    return seen


def weights_digest(weights: dict[str, np.ndarray]) -> tuple[str, list[float]]:
    """A bitwise hash of every variable (equal on every rank iff the updates were) and the flat values' head."""
    h = hashlib.sha256()
    for name in sorted(weights):
        h.update(name.encode() + np.ascontiguousarray(weights[name], np.float32).tobytes())
    flat = np.concatenate([weights[n].ravel() for n in sorted(weights)])
    return h.hexdigest(), [float(v) for v in flat[:: max(1, len(flat) // 64)]]


def main(argv: list[str]) -> int:
    args = argparse.ArgumentParser()
    args.add_argument("backend")
    args.add_argument("--global-batch", type=int, default=32)
    args.add_argument("--epochs", type=int, default=1)
    args.add_argument("--die-after-step", action="store_true")
    args.add_argument("--count-compiles", action="store_true")
    args.add_argument("--train-rank", action="store_true")
    args.add_argument("--meet", type=Path, default=None)
    args.add_argument("--dropout", action="store_true")
    opt = args.parse_args(argv)

    from backends import load_backend
    from bench.core.distributed import DistContext, per_worker_batch, shard_order
    from bench.core.preprocess import PixelNorm
    from bench.core.spec import RuntimeSpec, load_task

    ctx = DistContext.from_env()
    world, rank = (1, 0) if ctx is None else (ctx.world_size, ctx.rank)
    spec = load_task("cifar10-cnn", profile="quick")
    # SGD, not Adam: Adam's update hardly changes when gradients are summed instead of averaged.
    train = dataclasses.replace(spec.train, optimizer="sgd", lr=0.05, batch_size=opt.global_batch)
    runtime = RuntimeSpec(device="cpu", threads=1)
    batch = per_worker_batch(train.batch_size, world, "strong")

    backend = load_backend(opt.backend)
    if opt.train_rank:
        return train_rank(backend, dataclasses.replace(spec, train=train), ctx, opt.epochs, opt.count_compiles)
    env = backend.configure(runtime, seed=0)  # the same seed everywhere: the same initial weights
    joined: dict[str, Any] = backend.join(ctx) if ctx is not None else {"dist_backend": None, "notes": []}
    rng = np.random.default_rng(0)  # the same data on every rank; each trains on its shard of it
    x = rng.integers(0, 256, (N_TRAIN, *SHAPE), dtype=np.uint8)
    y = rng.integers(0, CLASSES, N_TRAIN).astype(np.int64)
    norm = PixelNorm(np.full(3, 1 / 255, np.float32), np.zeros(3, np.float32))
    data = backend.put(x, y, norm)
    model = backend.build(spec.model, SHAPE, CLASSES)
    state = backend.compile(model, train, runtime)
    out: dict[str, Any] = {"rank": rank, "world": world, "batch": batch, "threads": env["threads"], **joined}

    compiles = count_compiles("train_step") if opt.count_compiles else None
    first = shard_order(np.arange(train.batch_size), rank, world, batch)  # this rank's part of batch 1
    hooks = CountSteps()
    out["first_loss"] = backend.train_epoch(state, data, first, batch, hooks)
    out["first_steps"] = hooks.ended
    out["first_digest"], out["first_weights"] = weights_digest(backend.get_weights(model))
    if opt.die_after_step and rank == 1:
        print(f"@@died {time.time()!r}", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    order = np.random.default_rng(1).permutation(N_TRAIN)
    hooks, losses, t0 = CountSteps(), [], time.time()
    try:
        for _ in range(opt.epochs):
            shard = shard_order(order, rank, world, batch)
            losses.append(backend.train_epoch(state, data, shard, batch, hooks))
    except Exception as e:  # a dead peer: the collective must fail, not hang
        print(
            "@@error "
            + json.dumps({"rank": rank, "error": f"{type(e).__name__}: {e}"[:400], "t": time.time(), "t0": t0}),
            flush=True,
        )
        backend.leave()
        return 3
    out.update(losses=losses, steps=hooks.ended, steps_begun=hooks.begun, shard=len(shard))
    out["train_step_compiles"] = None if compiles is None else len(compiles)
    if opt.meet is not None and ctx is not None:  # in this process: two more Keras processes a backend cost ~10 s
        out["met"] = meet(backend, rank, opt.meet)
    if opt.dropout:
        out["dropout_mesh"] = dropout_outputs(world, rank)
    backend.leave()  # right after training, on every rank; what follows is this worker's alone
    if opt.dropout:
        out["dropout_one"] = dropout_outputs(1, 0)  # no distribution now: 1 worker's computation
    out["digest"], out["weights"] = weights_digest(backend.get_weights(model))
    logits = backend.predict(state, data, 64)
    out["logits_shape"], out["logits_digest"] = list(logits.shape), hashlib.sha256(logits.tobytes()).hexdigest()
    print("@@probe " + json.dumps(out), flush=True)
    return 0


def train_rank(backend: Any, spec: Any, ctx: Any, epochs: int, counting: bool) -> int:
    """``epochs`` through bench.run.dist_worker.train_rank (which configures and joins), the clock's fields printed
    (with ``--count-compiles``, the train step's compiles in that row too)."""
    from bench.core.job import DistLayout
    from bench.core.spec import RuntimeSpec
    from bench.run.dist_worker import train_rank as bench_rank

    runtime = RuntimeSpec(device="cpu", threads=1, warmup_steps=1, timed_steps=1)
    spec = dataclasses.replace(spec, train=dataclasses.replace(spec.train, epochs=epochs), runtime=runtime)
    world = 1 if ctx is None else ctx.world_size
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (N_TRAIN, *SHAPE), dtype=np.uint8)
    data = {"x_train": x, "y_train": rng.integers(0, CLASSES, N_TRAIN), "x_test": x[:64], "y_test": np.zeros(64)}
    layout = DistLayout(world, "strong", spec.train.batch_size // world)
    compiles = count_compiles("train_step") if counting else None
    try:
        out = bench_rank(backend, spec, ctx, layout, data, tuple(str(c) for c in range(CLASSES)), seed=0)
    finally:
        backend.leave()
    keep = ("epoch_end_step_s", "new_shape_step_s", "first_step_s", "compile_s", "notes", "durations", "dist_backend")
    got = {k: out.get(k) for k in keep} | {"train_step_compiles": None if compiles is None else len(compiles)}
    print("@@rank " + json.dumps(got), flush=True)
    return 0


def meet(backend: Any, rank: int, folder: Path) -> list[str]:
    """The marks of the ranks that had come when this rank's ``barrier`` returned (rank 1 comes late)."""
    from tests.dist_meet_probe import COME_LATE_S

    if rank:
        time.sleep(COME_LATE_S)
    (folder / f"came-{rank}").touch()
    backend.barrier()
    return sorted(p.name for p in folder.iterdir())


def dropout_outputs(world: int, rank: int) -> list[list[list[float]]]:
    """Dropout (rate 0.5) in training mode on one global batch of 8 distinct rows, three calls from seed 0 (its
    seed state advancing), run as a Keras/JAX train step runs it: one jitted program over every process's devices,
    each process feeding its share of the batch (rank 0's rows first); with ``world`` 1, this process's device on
    the whole batch. The global outputs (a kept value is twice its input, a dropped one 0)."""
    import jax
    import keras
    from jax.experimental import multihost_utils
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    x = np.arange(1, 8 * 16 + 1, dtype=np.float32).reshape(8, 16)
    keras.utils.set_random_seed(0)  # as every rank of a row and its 1-worker row are seeded
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dropout(0.5)])
    ntv = [v.value for v in model.non_trainable_variables]  # the seed generator's state (replicated over the mesh)
    if world == 1:
        batch = jax.device_put(x, jax.local_devices()[0])
    else:
        sharding = NamedSharding(Mesh(np.array(jax.devices()), ("batch",)), P("batch"))
        share = len(x) // world
        batch = jax.make_array_from_process_local_data(sharding, x[rank * share : (rank + 1) * share])
    step = jax.jit(lambda ntv, x: model.stateless_call([], ntv, x, training=True))
    out = []
    for _ in range(3):
        y, ntv = step(ntv, batch)
        y = np.asarray(y) if y.is_fully_addressable else multihost_utils.process_allgather(y, tiled=True)
        out.append(np.asarray(y).tolist())
    return out


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
