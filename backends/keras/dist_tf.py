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

import faulthandler
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras.src.backend.tensorflow import trainer as _keras_tf_trainer
from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2 as _coordination_config
from tensorflow.python.distribute import multi_worker_util as _multi_worker_util
from tensorflow.python.eager import context as _context

from backends.keras import engine_tf
from backends.keras.distributed import UnsupportedError
from backends.keras.input import HostImages
from bench.core.distributed import DistContext

MIRRORED = "mirrored"  # ctx.extra["keras_strategy"]: one process, MirroredStrategy over its GPUs


def coordination(ctx: DistContext) -> dict[str, float]:
    """TF's coordination service for the workers, with the row's timeouts instead of TF's defaults.

    MultiWorkerMirroredStrategy configures this service itself unless one is configured already,
    with defaults that let a worker wait for a missing peer at start-up for an hour (measured: a
    rank whose peer never came still waited after 300 s). Its heartbeat is also how a dead peer is
    noticed during training (it aborts the survivor's collectives: UnavailableError).
    """
    timeouts = {
        "register_s": max(1.0, ctx.timeout_s),  # every worker must have come by then
        "heartbeat_s": max(2.0, min(100.0, ctx.timeout_s / 4)),  # a silent peer is dead after this
        "shutdown_s": max(1.0, ctx.timeout_s),
    }
    cluster = tf.train.ClusterSpec(ctx.tf_config()["cluster"])
    _context.context().configure_coordination_service(
        service_type="standalone",
        service_leader=_multi_worker_util.coordination_leader(cluster),
        cluster_register_timeout_in_ms=int(timeouts["register_s"] * 1000),
        heartbeat_timeout_in_ms=int(timeouts["heartbeat_s"] * 1000),
        shutdown_barrier_timeout_in_ms=int(timeouts["shutdown_s"] * 1000),
        coordinated_jobs=[_coordination_config.CoordinatedJob(name="worker", num_tasks=ctx.world_size)],
    )
    return timeouts


@contextmanager
def deadline(seconds: float, message: str) -> Iterator[None]:
    """End the process if the block has not finished within ``seconds``, saying why on stderr first.

    Creating the strategy connects this worker's eager context to every peer inside one C++ call
    that holds the GIL and waits for a missing peer without a deadline, whatever the coordination
    service's register timeout (measured: still waiting after 300 s). No Python thread or signal
    handler runs meanwhile, so the watchdog is faulthandler's C thread: at the deadline it prints
    the stack (``Timeout (0:00:05)!`` ... ``MultiWorkerMirroredStrategy``) and exits with status 1.
    The launcher gets a bounded, explained failure instead of a hang.
    """
    print(f"{message}: waiting at most {seconds:g} s (a 'Timeout' below: one never came)", file=sys.stderr, flush=True)
    faulthandler.dump_traceback_later(seconds, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def fix_step_logs() -> None:
    """Make Keras 3.15's ``fit`` reduce a step's logs across workers as a mean over the replicas.

    Under MultiWorkerMirroredStrategy Keras reduces each step's scalar logs (the loss) with
    ``strategy.reduce("MEAN", v, axis=0)``, which TF rejects for a scalar ("Invalid reduction
    dimension 0 for input with 0 dimensions"): no Keras 3 ``fit`` runs on several workers
    (keras-team/keras#20585). ``axis=None`` is the mean over replicas that was meant; every other
    reduction is Keras's own. Installed once, in a data-parallel worker process only.
    """
    original = _keras_tf_trainer.reduce_per_replica
    if getattr(original, "__module__", None) == __name__:  # already this module's reduce_per_replica
        return

    def reduce_per_replica(values: Any, strategy: Any, reduction: str) -> Any:
        if reduction in ("auto", "mean") and _keras_tf_trainer._collective_all_reduce_multi_worker(strategy):
            return tf.nest.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original(values, strategy, reduction)

    _keras_tf_trainer.reduce_per_replica = reduce_per_replica


def no_xla(jit_compile: bool, world_size: int, nccl: bool) -> str | None:
    """Why a ``jit_compile`` row cannot train on these workers, or None. XLA has no kernel for the strategy's gradient
    all-reduce over the CPU's ring collectives (TF 2.x: "tf2xla conversion failed ... adam/CollectiveReduceV2" at the
    first step of a 2-worker LeNet-5 row, 2026-12-07; 1 worker trains): the row is skipped saying so, not failed with
    TensorFlow's three-line conversion error. NCCL (GPUs) is not refused: not measured here."""
    if not jit_compile or world_size < 2 or nccl:
        return None
    return (
        "jit_compile = true (the task's [runtime] or [knobs.keras]): XLA cannot compile "
        "MultiWorkerMirroredStrategy's gradient all-reduce "
        f"(CollectiveReduceV2) over the CPU's ring collectives, so {world_size} workers cannot train this row; "
        "run the data-parallel rows without jit_compile"
    )


class Session:
    """One worker's strategy: its scope for variables, its input and the local predict."""

    def __init__(self, ctx: DistContext) -> None:
        self.ctx = ctx
        gpus = tf.config.get_visible_devices("GPU")  # not list_logical_devices: it would start TF too early
        self.nccl = nccl = bool(gpus) and ctx.device == "cuda"
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
            self.checks = coordination(ctx)
            fix_step_logs()
            message = (
                f"rank {ctx.rank}: MultiWorkerMirroredStrategy could not join {','.join(ctx.addresses)} "
                f"within {ctx.timeout_s:g} s"
            )
            try:
                with deadline(ctx.timeout_s, f"rank {ctx.rank}: joining {','.join(ctx.addresses)}"):
                    self.strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
            except (RuntimeError, tf.errors.OpError) as e:
                raise RuntimeError(f"{message}: {e}") from e
            self.dist_backend = "nccl (MultiWorkerMirroredStrategy)" if nccl else "ring (MultiWorkerMirroredStrategy)"
        self.replicas = int(self.strategy.num_replicas_in_sync)
        self.element_spec: Any = None  # of this worker's dataset, for ``adopt``
        self._meet: Any = None  # ``barrier``'s traced all-reduce, made at its first call

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
        if why := no_xla(bool(trainer.jit_compile), self.ctx.world_size, self.nccl):
            raise UnsupportedError(why)

        def build(iterator: Any = None, data_batch: Any = None) -> None:
            with self.strategy.scope():
                trainer._symbolic_build(data_batch=data_batch if data_batch is not None else self.element_spec)

        trainer._maybe_symbolic_build = build

    def record(self) -> dict[str, Any]:
        notes = [
            f"keras-tf data-parallel: {type(self.strategy).__name__}, {self.replicas} replicas in sync, "
            f"collective timeout {self.ctx.timeout_s:g} s",
        ]
        if not isinstance(self.strategy, tf.distribute.MirroredStrategy):
            notes.append(
                "keras-tf data-parallel: Keras 3.15 fit fixed for MultiWorkerMirroredStrategy "
                "(keras-team/keras#20585): model built from the local batch spec, step logs reduced with axis=None"
            )
        if self.checks:
            notes.append(
                f"coordination service: workers must come within {self.checks['register_s']:g} s, "
                f"a peer silent for {self.checks['heartbeat_s']:g} s is dead"
            )
        return {"dist_backend": self.dist_backend, "notes": notes}

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

    def barrier(self) -> None:
        """Return when every worker has called it: a one-number all-reduce in every replica, the strategy's own
        collective (not ``strategy.reduce``, which Keras 3.15 misuses for scalars; nor ``fit``'s build path)."""
        if self._meet is None:
            self._meet = tf.function(lambda: tf.distribute.get_replica_context().all_reduce("SUM", tf.ones(())))
        self.strategy.run(self._meet)

    def leave(self) -> None:
        """Stop the strategy's health-check thread, if it runs one. TensorFlow has no call that stops the
        collective gRPC server or the coordination service: they end with the process (the worker exits
        after leave; at exit a live peer is waited for at most the shutdown barrier timeout)."""
        stop: Callable[[], None] | None = getattr(self.strategy.extended, "_stop_check_health_thread", None)
        if stop is not None:
            stop()


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts).astype(np.float32, copy=False)
