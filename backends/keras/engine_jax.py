"""The JAX engine's pieces: XLA's cores and devices, PyDataset input, jax.grad under jax.jit, synchronisation, memory.

Keras on JAX runs ``fit``'s train step under ``jax.jit`` (XLA) always: ``jit_compile=False``
would run it op by op, which no JAX user does. The op profiler is TensorFlow's only.
"""

from __future__ import annotations

import contextlib
import os
import platform
import weakref
from collections.abc import Callable
from typing import Any

import jax
import keras
import numpy as np

from backends.keras.input import Batches, HostImages
from backends.keras.seeding import set_random_seed
from backends.keras.split import class_score, split_at
from bench.core.cpus import pool_threads, restrict_to_threads
from bench.core.distributed import DistContext


def _values(variables: list[Any]) -> list[Any]:
    return [v.value for v in variables]


def _stateless(model: keras.Model) -> Callable[..., Any]:
    """``model`` as a pure function of (trainable, non-trainable values, x), logits only."""
    return lambda tv, ntv, x: model.stateless_call(tv, ntv, x, training=False)[0]


def _state(model: keras.Model) -> tuple[list[Any], list[Any]]:
    return _values(model.trainable_variables), _values(model.non_trainable_variables)


@contextlib.contextmanager
def _numpy_draws() -> Any:
    """Keras's JAX ``normal``/``uniform``/``truncated_normal`` drawn by numpy from the seed Keras draws (so its
    seed state moves as it would), handed to JAX as arrays: no XLA program compiled per shape."""
    from keras.src.backend.jax import random as keras_jax_random

    def rng(seed: Any) -> np.random.Generator:
        return np.random.default_rng(np.asarray(keras_jax_random.jax_draw_seed(seed)).astype(np.uint32).tolist())

    def handed(sample: np.ndarray, dtype: Any) -> Any:  # cast in numpy and put: jnp.asarray compiles per shape
        return jax.device_put(sample.astype(jax.numpy.dtype(dtype or keras.config.floatx())))

    def normal(shape: Any, mean: float = 0.0, stddev: float = 1.0, dtype: Any = None, seed: Any = None) -> Any:
        return handed(rng(seed).standard_normal(tuple(shape)) * stddev + mean, dtype)

    def uniform(shape: Any, minval: float = 0.0, maxval: float = 1.0, dtype: Any = None, seed: Any = None) -> Any:
        return handed(rng(seed).uniform(minval, maxval, tuple(shape)), dtype)

    def truncated_normal(
        shape: Any, mean: float = 0.0, stddev: float = 1.0, dtype: Any = None, seed: Any = None
    ) -> Any:
        return handed(np.clip(rng(seed).standard_normal(tuple(shape)), -2.0, 2.0) * stddev + mean, dtype)

    names = ("normal", "uniform", "truncated_normal")
    real = {name: getattr(keras_jax_random, name) for name in names}
    for name, draw in zip(names, (normal, uniform, truncated_normal), strict=True):
        setattr(keras_jax_random, name, draw)
    try:
        yield
    finally:
        for name, draw in real.items():
            setattr(keras_jax_random, name, draw)


class Engine:
    """Keras on JAX: configure, input batches, gradients, synchronisation, memory (no op profiler)."""

    # a train step returns as soon as it is dispatched; the host runs ahead with no bound (bench.core.backend)
    async_steps = True

    def __init__(self) -> None:
        self.gpu = False
        self._model: weakref.ref[keras.Model] | None = None

    def configure(self, runtime: Any, seed: int) -> dict[str, Any]:
        # What XLA reads when JAX initialises its backends, which Keras's import has not done yet.
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # grow as needed: the peak means something
        # XLA's CPU pool takes every core the process may use and ignores thread flags (bench.core.cpus):
        # the process is restricted to its threads' cores, a data-parallel worker to its own ones.
        ctx = DistContext.from_env()
        cores = restrict_to_threads(runtime.threads, ctx.local_rank if ctx else 0) if runtime.threads else None
        if runtime.device == "cpu":
            jax.config.update("jax_platforms", "cpu")
        gpus = [d for d in jax.devices() if d.platform == "gpu"]
        if runtime.device == "cuda" and not gpus:
            raise RuntimeError("runtime.device='cuda' but JAX sees no GPU (a CUDA jaxlib is a separate install)")
        if runtime.tf32 != "default":  # JAX's name for TF32 matmuls/convs: precision "tensorfloat32" vs "highest"
            jax.config.update("jax_default_matmul_precision", "tensorfloat32" if runtime.tf32 == "on" else "highest")
        set_random_seed(seed, tensorflow=False)
        self.gpu = bool(gpus)
        device = gpus[0].device_kind if gpus else f"cpu ({platform.machine()})"
        precision = jax.config.jax_default_matmul_precision  # type: ignore[attr-defined]  # set at run time, untyped
        threads, note = pool_threads(runtime.threads)  # what XLA's pool ran on: the cores, not the count asked
        return {
            "framework_version": f"keras {keras.__version__} / jax {jax.__version__}",
            "device": device,
            "threads": threads,
            "notes": [note] if note else [],
            "knobs": {
                "jit_compile": True,
                "tf32": precision or "default",
                "xla_flags": os.environ.get("XLA_FLAGS", ""),
                "cpu_cores": cores or (sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None),
            },
        }

    def jit_compile(self, runtime: Any) -> bool:
        return True

    def throwaway_draws(self) -> contextlib.AbstractContextManager[Any]:
        """Random draws whose values nobody keeps (a model built only to import weights into), drawn by numpy.
        Each initialiser shape is an XLA program of its own under JAX: MobileNetV3-small's build compiled 62 of
        them in 8.5 s of its 10.5 (2-core AMD EPYC, JAX 0.10; 0.20 s each with the non-partitionable threefry,
        0.82 s with the default). The draws differ, and Keras's seed state moves as it would."""
        return _numpy_draws()

    def batches(self, data: HostImages, order: np.ndarray, batch_size: int, y: np.ndarray | None = None) -> Batches:
        return Batches(data, order, batch_size, y)

    def count_batches(self, ds: Batches) -> int:
        """Gather each batch and move it to the device, as fit's data adapter does: the batch count."""
        last = None
        for i in range(len(ds)):
            last = jax.device_put(ds[i])
        jax.block_until_ready(last)  # the copy is asynchronous: wait for the last one
        return len(ds)

    def watch(self, model: keras.Model) -> None:
        """The model being trained: ``synchronize`` waits for its current state (fit keeps it in ``_jax_state``)."""
        self._model = weakref.ref(model)

    def forward_fn(self, model: keras.Model) -> Callable[[np.ndarray], np.ndarray]:
        fn = jax.jit(_stateless(model))
        return lambda x: np.asarray(fn(*_state(model), x))

    def layer_gradients_fn(self, model: keras.Model, layer: str) -> Callable[..., tuple[np.ndarray, np.ndarray]]:
        trunk, head = split_at(model, layer)
        trunk_fn, head_fn = _stateless(trunk), _stateless(head)

        @jax.jit
        def fn(tt: Any, tn: Any, ht: Any, hn: Any, x: Any, columns: Any, signs: Any) -> tuple[Any, Any]:
            act = trunk_fn(tt, tn, x)
            return act, jax.grad(lambda a: class_score(head_fn(ht, hn, a), columns, signs))(act)

        def run(x: np.ndarray, columns: np.ndarray, signs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            act, grad = fn(*_state(trunk), *_state(head), x, columns, signs)
            return np.asarray(act), np.asarray(grad)

        return run

    def input_gradients_fn(self, model: keras.Model) -> Callable[..., np.ndarray]:
        forward = _stateless(model)

        @jax.jit
        def fn(tv: Any, ntv: Any, x: Any, columns: Any, signs: Any) -> Any:
            return jax.grad(lambda xi: class_score(forward(tv, ntv, xi), columns, signs))(x)

        return lambda x, columns, signs: np.asarray(fn(*_state(model), x, columns, signs))

    def synchronize(self) -> None:
        """Wait for the trained model's latest state, then for a fresh op (JAX dispatches asynchronously)."""
        model = self._model() if self._model is not None else None
        state = getattr(model, "_jax_state", None)
        if state:
            jax.block_until_ready(state)
        jax.block_until_ready(jax.numpy.zeros(()) + 1)

    def peak_device_mb(self) -> float | None:
        if not self.gpu:
            return None
        stats = jax.devices()[0].memory_stats() or {}
        return stats["peak_bytes_in_use"] / 2**20 if "peak_bytes_in_use" in stats else None

    def profile_ops_start(self) -> None:
        """No op profiler on this engine (TensorFlow engine only; the row's notes say so)."""

    def profile_ops_stop(self, handle: Any, top: int = 10) -> list[dict[str, Any]]:
        return []
