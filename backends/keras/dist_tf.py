"""Keras on TensorFlow, data-parallel: ``tf.distribute.MultiWorkerMirroredStrategy`` from ``TF_CONFIG``
(one process per worker), or ``MirroredStrategy`` over a process's own GPUs.

What a Keras/TF user writes: ``TF_CONFIG`` in the environment, the strategy, the model built
and compiled in ``strategy.scope()``, ``fit``. Keras's TF trainer runs each train step with
``strategy.run`` and all-reduces the gradients in ``optimizer.apply_gradients`` (SUM of losses
that Keras divided by ``num_replicas_in_sync``: the mean); the step's logged loss is the
all-worker mean (one more small all-reduce per step). bench chose each worker's samples
(``shard_order``), so the input is handed over with ``distribute_datasets_from_function``: the
worker's own batches, never re-sharded or re-batched by tf.distribute (``experimental_distribute_dataset``
would auto-shard the worker's shard again and split its batch between the workers).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras.src.backend.tensorflow import trainer as _keras_tf_trainer
from tensorflow.python.distribute import collective_all_reduce_strategy as _collective

from backends.keras import engine_tf
from backends.keras.input import HostImages
from bench.core.distributed import DistContext

MIRRORED = "mirrored"  # ctx.extra["keras_strategy"]: one process, MirroredStrategy over its GPUs


def health_checks(timeout_s: float) -> dict[str, float]:
    """MultiWorkerMirroredStrategy's peer health checks, bounded by the row's collective timeout.

    Its defaults wait for the cluster forever at start-up (a worker that never comes hangs the
    row) and ping peers every 30 s, 3 tries of 10 s each. TF exposes these only as class
    attributes of its strategy extension (TF's own multi-worker tests set them the same way);
    a process holds one strategy, so setting them before it is created is safe.
    """
    interval = max(1.0, min(30.0, timeout_s / 6))
    settings = {
        "_check_health_initial_timeout": max(1, int(timeout_s)),  # the rendezvous wait (0 = forever)
        "_check_health_interval": interval,
        "_check_health_timeout": max(1, int(interval)),
        "_check_health_retry_limit": 3,
    }
    for name, value in settings.items():
        setattr(_collective.CollectiveAllReduceExtended, name, value)
    return settings


def fix_step_logs() -> None:
    """Make Keras 3.15's ``fit`` reduce a step's logs across workers as a mean over the replicas.

    Under MultiWorkerMirroredStrategy Keras reduces each step's scalar logs (the loss) with
    ``strategy.reduce("MEAN", v, axis=0)``, which TF rejects for a scalar ("Invalid reduction
    dimension 0 for input with 0 dimensions"): no Keras 3 ``fit`` runs on several workers
    (keras-team/keras#20585). ``axis=None`` is the mean over replicas that was meant; every other
    reduction is Keras's own. Installed once, in a data-parallel worker process only.
    """
    original = _keras_tf_trainer.reduce_per_replica
    if getattr(original, "bench_fixed", False):
        return

    def reduce_per_replica(values: Any, strategy: Any, reduction: str) -> Any:
        if reduction in ("auto", "mean") and _keras_tf_trainer._collective_all_reduce_multi_worker(strategy):
            return tf.nest.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original(values, strategy, reduction)

    reduce_per_replica.bench_fixed = True  # type: ignore[attr-defined]
    _keras_tf_trainer.reduce_per_replica = reduce_per_replica


class Session:
    """One worker's strategy: its scope for variables, its input and the local predict."""

    def __init__(self, ctx: DistContext) -> None:
        self.ctx = ctx
        gpus = tf.config.get_visible_devices("GPU")  # not list_logical_devices: it would start TF too early
        nccl = bool(gpus) and ctx.device == "cuda"
        if ctx.extra.get("keras_strategy") == MIRRORED:
            if ctx.world_size != 1:
                raise ValueError(f"keras_strategy={MIRRORED!r} is one process over its GPUs: world_size must be 1")
            ops = tf.distribute.NcclAllReduce() if nccl else tf.distribute.ReductionToOneDevice()
            self.strategy: tf.distribute.Strategy = tf.distribute.MirroredStrategy(cross_device_ops=ops)
            self.dist_backend = "nccl (MirroredStrategy)" if nccl else "reduce-to-one (MirroredStrategy)"
            self.checks: dict[str, float] = {}
        else:
            os.environ["TF_CONFIG"] = json.dumps(ctx.tf_config())  # read by the strategy's cluster resolver
            impl = tf.distribute.experimental.CommunicationImplementation
            options = tf.distribute.experimental.CommunicationOptions(
                implementation=impl.NCCL if nccl else impl.RING, timeout_seconds=ctx.timeout_s
            )
            self.checks = health_checks(ctx.timeout_s)
            fix_step_logs()
            try:
                self.strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
            except (RuntimeError, tf.errors.OpError) as e:
                raise RuntimeError(
                    f"rank {ctx.rank}: MultiWorkerMirroredStrategy could not join {','.join(ctx.addresses)} "
                    f"within {ctx.timeout_s:g} s: {e}"
                ) from e
            self.dist_backend = "nccl (MultiWorkerMirroredStrategy)" if nccl else "ring (MultiWorkerMirroredStrategy)"
        self.replicas = int(self.strategy.num_replicas_in_sync)
        self.element_spec: Any = None  # of this worker's dataset, for ``adopt``

    def adopt(self, trainer: keras.Model) -> None:
        """Let ``fit`` build ``trainer``'s loss and metrics from this worker's batch shapes.

        Keras 3.15's TF ``fit`` under a strategy first all-reduces (MEAN) a whole input batch across
        the replicas just to learn its shapes (``_maybe_symbolic_build``), which fails under
        MultiWorkerMirroredStrategy for a dataset from ``distribute_datasets_from_function``
        (keras-team/keras#20585: Keras 3 + MultiWorkerMirroredStrategy ``fit``) and would be a
        collective over the images if it did not. The shapes are this worker's own, so they come from
        the dataset's element spec instead, in the strategy's scope as Keras does it.
        """
        if isinstance(self.strategy, tf.distribute.MirroredStrategy):
            return  # one process: Keras's own path works

        def build(iterator: Any = None, data_batch: Any = None) -> None:
            with self.strategy.scope():
                trainer._symbolic_build(data_batch=data_batch if data_batch is not None else self.element_spec)

        trainer._maybe_symbolic_build = build

    def record(self) -> dict[str, Any]:
        notes = [
            f"keras-tf data-parallel: {type(self.strategy).__name__}, {self.replicas} replicas in sync, "
            f"collective timeout {self.ctx.timeout_s:g} s",
        ]
        if self.checks:
            notes.append(
                f"peer health check every {self.checks['_check_health_interval']:g} s "
                f"(x{self.checks['_check_health_retry_limit']} tries of {self.checks['_check_health_timeout']:g} s)"
            )
        return {"dist_backend": self.dist_backend, "replicas": self.replicas, "notes": notes}

    def scope(self) -> AbstractContextManager[Any]:
        return self.strategy.scope()

    def batches(self, data: HostImages, order: np.ndarray, batch_size: int, y: np.ndarray | None) -> Any:
        """This worker's batches, as they are: one element per replica and step (``batch_size`` split over
        the process's replicas when it has several, as MirroredStrategy users batch per replica)."""
        local = self.replicas // self.ctx.world_size
        if batch_size % local:
            raise ValueError(f"batch {batch_size} does not split over this worker's {local} replicas")

        def dataset(_: tf.distribute.InputContext) -> tf.data.Dataset:
            return engine_tf.batches(data, order, batch_size // local, y)

        self.element_spec = dataset(None).element_spec
        return self.strategy.distribute_datasets_from_function(dataset)

    def predict(self, model: keras.Model, data: HostImages, batch_size: int) -> np.ndarray:
        """Logits of every sample, computed by this worker alone (no collective: any rank may evaluate)."""
        forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        return _concat([forward(xb).numpy() for xb in engine_tf.batches(data, np.arange(len(data)), batch_size)])

    def host(self, value: Any) -> np.ndarray:
        return np.array(value)

    def leave(self) -> None:
        """Stop the health-check thread. TensorFlow has no call that stops the collective gRPC server: it
        ends with the process (the worker exits after leave)."""
        stop: Callable[[], None] | None = getattr(self.strategy.extended, "_stop_check_health_thread", None)
        if stop is not None:
            stop()


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts).astype(np.float32, copy=False)
