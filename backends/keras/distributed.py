"""Keras data-parallel training on each engine's own distributed engine (bench.core.distributed.DataParallel).

TensorFlow: ``MultiWorkerMirroredStrategy`` (``dist_tf``). JAX: ``keras.distribution.DataParallel``
over ``jax.distributed`` (``dist_jax``). torch: not supported; Keras 3 has no data-parallel path on
its torch engine (``keras.distribution`` is JAX-only, tf.distribute TF-only), and wrapping Keras's
torch trainer in torch DDP by hand is not what a Keras user runs. The backend keeps the engine's
``Session`` after ``join``; with none, every hook is the single-process path.

A ``Session`` provides: ``record()`` (the row's dist_backend and notes), ``scope()`` (where
variables must be created), ``adopt(trainer)`` (make a compiled model fit-ready), ``batches(data,
order, batch, y)`` (this worker's input for ``fit``), ``predict(model, data, batch)`` (every
sample, by this worker alone), ``host(value)`` (a variable's value as numpy on this worker),
``barrier()`` (return when every worker has called it) and ``leave()``.
"""

from __future__ import annotations

import importlib
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from backends.keras import DATA_PARALLEL_SESSIONS, no_data_parallel
from bench.core.distributed import DistContext


class UnsupportedError(NotImplementedError):
    """This backend cannot train data-parallel: the runner records the row as skipped, with this reason
    (a NotImplementedError, so bench catches it without importing a backend)."""


def join(engine: str, ctx: DistContext) -> Any:
    """This worker's ``Session`` on the Keras engine ``engine``; UnsupportedError where there is none."""
    if why := no_data_parallel(engine):
        raise UnsupportedError(why)
    return importlib.import_module(f"backends.keras.{DATA_PARALLEL_SESSIONS[engine]}").Session(ctx)


def scope(session: Any) -> AbstractContextManager[Any]:
    """Where models, optimizers and training models are created: the strategy's scope, or nothing."""
    return nullcontext() if session is None else session.scope()


def early_start(engine: str) -> None:
    """Connect a data-parallel worker's JAX runtime before ``configure`` creates JAX's backends.

    ``jax.distributed.initialize`` must precede the first ``jax.devices()``, and the worker calls
    ``configure`` before ``join`` (the DataParallel contract), so JAX's connection starts here, from
    the worker's environment (bench.core.distributed.DistContext.to_env); ``join`` then finds it made.
    """
    ctx = DistContext.from_env()
    if ctx is not None and engine == "jax":
        importlib.import_module("backends.keras.dist_jax").start(ctx)
