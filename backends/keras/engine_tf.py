"""The TensorFlow engine's pieces: threads/devices, the tuned tf.data input, tf.function + GradientTape, profiler.

Everything else (model, training, FLOP count) is the engine-free Keras code in this folder.
"""

from __future__ import annotations

import collections
import contextlib
import os
import platform
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from backends.keras.input import HostImages
from backends.keras.seeding import set_random_seed
from backends.keras.split import class_score, split_at
from bench.core.cpus import usable_cores


class Engine:
    """Keras on TensorFlow: configure, input pipeline, gradients, synchronisation, memory and profiler."""

    def __init__(self) -> None:
        self.gpu = False

    def configure(self, runtime: Any, seed: int) -> dict[str, Any]:
        gpus = tf.config.list_physical_devices("GPU")
        if runtime.device == "cuda" and not gpus:
            raise RuntimeError("runtime.device='cuda' but TensorFlow sees no GPU")
        if runtime.device == "cpu" and gpus:
            tf.config.set_visible_devices([], "GPU")
            gpus = []
        if runtime.threads:  # must happen before TensorFlow runs its first op
            tf.config.threading.set_intra_op_parallelism_threads(runtime.threads)
            tf.config.threading.set_inter_op_parallelism_threads(runtime.threads)
        for gpu in gpus:  # allocate as needed, so the peak-memory reading means something
            tf.config.experimental.set_memory_growth(gpu, True)
        set_random_seed(seed, tensorflow=True)
        if runtime.tf32 != "default":
            tf.config.experimental.enable_tensor_float_32_execution(runtime.tf32 == "on")
        self.gpu = bool(gpus)
        if gpus:
            device = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU:0")
        else:
            device = f"cpu ({platform.machine()})"
        intra = tf.config.threading.get_intra_op_parallelism_threads()
        return {
            "framework_version": f"keras {keras.__version__} / tensorflow {tf.__version__}",
            "device": device,
            "threads": intra or usable_cores(),  # 0 means TF's default: every core this process may use
            "knobs": {
                "jit_compile": runtime.jit_compile,
                "tf32": tf.config.experimental.tensor_float_32_execution_enabled(),
                "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
            },
        }

    def jit_compile(self, runtime: Any) -> bool:
        return runtime.jit_compile

    def throwaway_draws(self) -> contextlib.AbstractContextManager[Any]:
        """Draws nobody keeps cost nothing to compile here: as any other (engine_jax's differ)."""
        return contextlib.nullcontext()

    def batches(
        self, data: HostImages, order: np.ndarray, batch_size: int, y: np.ndarray | None = None
    ) -> tf.data.Dataset:
        return batches(data, order, batch_size, y)

    def count_batches(self, ds: tf.data.Dataset) -> int:
        """Iterate the pipeline inside TF as ``fit`` iterates it: the batch count."""
        return int(ds.reduce(np.int64(0), tf.autograph.experimental.do_not_convert(lambda n, _: n + 1)))

    def watch(self, model: keras.Model) -> None:
        """Nothing to track: TensorFlow's sync waits for every device."""

    def forward_fn(self, model: keras.Model) -> Callable[[np.ndarray], np.ndarray]:
        fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True, autograph=False)
        return lambda x: fn(tf.constant(x)).numpy()

    def layer_gradients_fn(self, model: keras.Model, layer: str) -> Callable[..., tuple[np.ndarray, np.ndarray]]:
        trunk, head = split_at(model, layer)

        @tf.function(reduce_retracing=True, autograph=False)  # no Python control flow on tensors: nothing to convert
        def fn(x: tf.Tensor, columns: tf.Tensor, signs: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            act = trunk(x, training=False)
            with tf.GradientTape() as tape:
                tape.watch(act)
                score = class_score(head(act, training=False), columns, signs)
            return act, tape.gradient(score, act)

        def run(x: np.ndarray, columns: np.ndarray, signs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            act, grad = fn(tf.constant(x), tf.constant(columns), tf.constant(signs))
            return act.numpy(), grad.numpy()

        return run

    def input_gradients_fn(self, model: keras.Model) -> Callable[..., np.ndarray]:
        @tf.function(reduce_retracing=True, autograph=False)
        def fn(x: tf.Tensor, columns: tf.Tensor, signs: tf.Tensor) -> tf.Tensor:
            with tf.GradientTape() as tape:
                tape.watch(x)
                score = class_score(model(x, training=False), columns, signs)
            return tape.gradient(score, x)

        return lambda x, columns, signs: fn(tf.constant(x), tf.constant(columns), tf.constant(signs)).numpy()

    def synchronize(self) -> None:
        # On a GPU, TF returns from a train step before its kernels ran: wait for every device.
        # On the CPU there is nothing queued (ops run in the calling thread's executor).
        if self.gpu:
            tf.test.experimental.sync_devices()

    def peak_device_mb(self) -> float | None:
        if not self.gpu:
            return None
        return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20

    def profile_ops_start(self) -> tempfile.TemporaryDirectory:
        """Start the TensorFlow profiler into a fresh directory (the training callback starts and stops it)."""
        logdir = tempfile.TemporaryDirectory()
        tf.profiler.experimental.start(logdir.name)
        return logdir

    def profile_ops_stop(self, logdir: tempfile.TemporaryDirectory, top: int = 10) -> list[dict[str, Any]]:
        return profile_ops_stop(logdir, top)


def batches(data: HostImages, order: np.ndarray, batch_size: int, y: np.ndarray | None = None) -> tf.data.Dataset:
    """(x, y) batches in ``order`` (x alone when ``y`` is None), gathered from the host arrays by index.

    x as the host holds it (uint8): the training model's first layers normalise and augment it
    (``input.training_model``), so the pipeline is one gather per batch, prefetched. The pipeline
    is built once per split, batch size and label form (``OrderedBatches``) and each call only
    sets the order: building it traces its map function, ~20 ms a time on 2 cores, which a
    ``fit`` per epoch would otherwise pay every epoch (LeNet-5's epoch is ~0.5 s).
    """
    labels = y if y is not None else np.zeros(len(data.x), np.int8)
    orders = np.atleast_2d(order)  # one row per epoch: one fit over every epoch reads them one after another
    key = ("tf.data", batch_size, orders.shape, y is not None, labels.dtype.str, labels.shape[1:])
    if key not in data.pipelines:
        data.pipelines[key] = OrderedBatches(data.x, labels, orders.shape[1], batch_size, y is not None, len(orders))
    return data.pipelines[key](orders)


class OrderedBatches:
    """One tf.data pipeline over a split whose order is set per call: ``fit`` reads it batch by batch.

    The map function reads ``self.order`` when the iterator asks for batch ``i`` (a Python
    gather through ``tf.numpy_function``, stateful: the same ``i`` gives another batch after the
    order changes); an iterator that ``fit`` creates after ``__call__`` sees only the new order.

    Its length is left unknown to Keras (a pass-through ``filter``), and ``fit`` / ``predict`` are
    told the step count instead (``steps_per_epoch``, ``steps``): with a known length, Keras's epoch
    iterator makes the next epoch's iterator when an epoch ends -- ~8 ms on 2 cores, which then
    prefetches two batches -- and a ``fit`` per epoch throws it away. That was a second iterator per
    epoch, inside the last step (8% of a Keras LeNet-5 epoch went to making iterators, half of it
    wasted); ``fit(epochs=N)`` makes one per epoch, as every call here now does.
    """

    def __init__(
        self, x: np.ndarray, labels: np.ndarray, n: int, batch_size: int, with_y: bool, epochs: int = 1
    ) -> None:
        self.order = np.tile(np.arange(n, dtype=np.int64), (epochs, 1))
        self.n, self.batch_size, self.epochs = n, batch_size, epochs
        self.gathers = 0  # batches taken from the host arrays (a test counts the prefetch's waste)
        n_batches = -(-n // batch_size)  # per epoch: an epoch's last batch may be short

        def take(i: np.int64) -> tuple[np.ndarray, np.ndarray]:  # the only host copy: one batch
            self.gathers += 1
            epoch, b = divmod(int(i), n_batches)
            idx = self.order[epoch, b * batch_size : (b + 1) * batch_size]
            return x[idx], labels[idx]

        def load(i: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor] | tf.Tensor:
            xb, yb = tf.numpy_function(take, [i], (tf.as_dtype(x.dtype), tf.as_dtype(labels.dtype)), stateful=True)
            xb.set_shape((None, *x.shape[1:]))
            yb.set_shape((None, *labels.shape[1:]))
            return (xb, yb) if with_y else xb

        # Neither function has Python control flow on tensors, so AutoGraph has nothing to convert; converting
        # one wrote a `__autograph_generated_file*.py` into /tmp, kept after the process (several per Keras row)
        keep = tf.autograph.experimental.do_not_convert
        unknown_length = tf.data.Dataset.range(n_batches * epochs).filter(keep(lambda i: tf.constant(True)))
        self.dataset = unknown_length.map(keep(load), num_parallel_calls=1).prefetch(2)
        self.dataset = self.dataset.with_options(pipeline_options())

    def __call__(self, order: np.ndarray) -> tf.data.Dataset:
        orders = np.atleast_2d(np.asarray(order, np.int64))
        if orders.shape != (self.epochs, self.n):
            raise ValueError(f"this pipeline reads {self.epochs} order(s) of {self.n} samples, got {orders.shape}")
        self.order = orders
        return self.dataset


def pipeline_options() -> tf.data.Options:
    """tf.data with its autotuner off: the cause of Keras's "two speeds" on a CPU.

    With autotuning on (tf.data's default, also for fixed parallelism and buffer sizes), the
    end of a ``fit`` call sometimes waits ~0.85 s for the autotuner's background thread while the
    iterator is torn down: on 2 cores the CIFAR CNN's 2,048-image epoch took 1.8 s or 2.6 s with
    identical 52 ms steps (per-step timestamps; the whole gap was after the last step), in 5-7 of
    12 epochs; with ``autotune.enabled = False``, 12 of 12 epochs took 1.72-1.80 s. Nothing here
    is left to the autotuner (one map call, prefetch 2), so turning it off changes no step.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return options


def op_type(name: str) -> str:
    """A TF trace event's op type: ``scope/op:Type`` -> ``Type``; runtime events with ``::``
    (``CpuExecutable::ExecuteAsyncOnStream``, XLA's compiled clusters) stay whole."""
    return name if "::" in name else name.rsplit(":", 1)[-1]


def ops_by_type(events: Iterable[tuple[str, int]], top: int = 10) -> list[dict[str, Any]]:
    """(event name, picoseconds) -> the ``top`` op types by total kernel time, each with its costliest node.

    TensorFlow's trace has one event per graph node (``conv5_block1_0_conv/.../Conv2DBackpropInput``),
    torch's profiler sums per op type (``aten::convolution_backward``): summed by type the two tables
    compare, and the costliest node still says which Keras layer is to blame.
    """
    per_node: collections.Counter[str] = collections.Counter()
    node_calls: collections.Counter[str] = collections.Counter()
    for name, ps in events:
        per_node[name] += ps
        node_calls[name] += 1
    total: collections.Counter[str] = collections.Counter()
    calls: collections.Counter[str] = collections.Counter()
    costliest: dict[str, tuple[str, int]] = {}
    for name, ps in per_node.items():
        kind = op_type(name)
        total[kind] += ps
        calls[kind] += node_calls[name]
        if ps > costliest.get(kind, ("", -1))[1]:
            costliest[kind] = (name, ps)
    return [
        {
            "op": kind,
            "ms": ps / 1e9,
            "calls": calls[kind],
            "costliest": costliest[kind][0],
            "costliest_ms": costliest[kind][1] / 1e9,
        }
        for kind, ps in total.most_common(top)
    ]


def profile_ops_stop(logdir: tempfile.TemporaryDirectory, top: int = 10) -> list[dict[str, Any]]:
    """Stop the profiler; the top op types by kernel time from its trace (``ops_by_type``).

    On a CPU the kernels are the events of the ``tf_Compute`` threads of the host plane;
    on a GPU the events of the device planes.
    """
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    with logdir:
        tf.profiler.experimental.stop()
        files = sorted(Path(logdir.name).rglob("*.xplane.pb"))
        if not files:
            raise RuntimeError("the TensorFlow profiler wrote no trace (*.xplane.pb)")
        space = xplane_pb2.XSpace()
        space.ParseFromString(files[-1].read_bytes())
    events: list[tuple[str, int]] = []
    device_planes = [p for p in space.planes if p.name.startswith("/device:GPU")]
    for plane in device_planes or [p for p in space.planes if p.name == "/host:CPU"]:
        for line in plane.lines:
            if not device_planes and not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if name.startswith("ExecutorState::") or (":" not in name and not device_planes):
                    continue  # executor bookkeeping, not an op kernel
                events.append((name, event.duration_ps))
    return ops_by_type(events, top)
