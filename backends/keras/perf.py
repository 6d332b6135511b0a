"""Keras/TensorFlow instruments for the performance columns: FLOP counts, a matmul, the TF profiler.

Framework work only: bench times the matmul and does the MFU arithmetic.
"""

from __future__ import annotations

import collections
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf
from keras import layers

DTYPES = {"fp32": tf.float32, "mixed_bf16": tf.bfloat16, "mixed_fp16": tf.float16}


def forward_flops(model: keras.Model, input_shape: tuple[int, int, int]) -> float:
    """FLOPs of one image's forward pass: conv/dense multiply-adds x 2, from Keras's own shape inference.

    Walks the built model's layers (into nested models) and counts what torch's
    ``flop_counter`` counts: 2 x kernel size x output positions for every convolution
    (grouped and depthwise included) and dense layer, no bias adds or activations.
    TensorFlow's graph profiler (``graph_profiler_flops``) would count the same plus the
    bias adds, but freezing ResNet-101's graph for it takes ~40 s on 2 cores, so it is
    the cross-check in the tests rather than the per-run counter.
    """
    total = 0.0
    for layer in _leaf_layers(model):
        if isinstance(layer, layers.DepthwiseConv2D):
            kernel = layer.depthwise_kernel.shape
        elif isinstance(layer, (layers.Conv2D, layers.Dense)):
            kernel = layer.kernel.shape
        else:
            continue
        positions = math.prod(int(d) for d in layer.output.shape[1:-1])  # 1 for a Dense on a vector
        total += 2.0 * math.prod(int(d) for d in kernel) * positions
    return total


def _leaf_layers(model: keras.Model) -> list[layers.Layer]:
    out = []
    for layer in model.layers:
        out.extend(_leaf_layers(layer) if isinstance(layer, keras.Model) else [layer])
    return out


def graph_profiler_flops(model: keras.Model, input_shape: tuple[int, int, int]) -> float:
    """FLOPs of one forward pass by TensorFlow's graph profiler on the frozen inference graph (slow)."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    fn = tf.function(lambda x: model(x, training=False))
    frozen = convert_variables_to_constants_v2(fn.get_concrete_function(tf.TensorSpec((1, *input_shape), tf.float32)))
    opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    info = tf.compat.v1.profiler.profile(
        graph=frozen.graph, run_meta=tf.compat.v1.RunMetadata(), cmd="op", options=opts
    )
    return float(info.total_float_ops)


def matmul(n: int, precision: str) -> Callable[[], None]:
    """One n x n matmul; fetching one element to the host waits for it (TF's synchronisation point)."""
    a = tf.random.normal((n, n), dtype=DTYPES[precision])
    b = tf.random.normal((n, n), dtype=DTYPES[precision])

    def run() -> None:
        tf.matmul(a, b)[0, 0].numpy()

    return run


def profile_ops(run: Callable[[], float], top: int = 10) -> tuple[float, list[dict[str, Any]]]:
    """Run ``run`` under the TensorFlow profiler; the top ops by kernel time from its trace (XSpace)."""
    logdir = profile_start()
    try:
        result = run()
    except BaseException:
        profile_stop(logdir, top)
        raise
    return result, profile_stop(logdir, top)


def profile_start() -> tempfile.TemporaryDirectory:
    """Start the TensorFlow profiler into a fresh directory (the training callback starts and stops it)."""
    logdir = tempfile.TemporaryDirectory()
    tf.profiler.experimental.start(logdir.name)
    return logdir


def profile_stop(logdir: tempfile.TemporaryDirectory, top: int = 10) -> list[dict[str, Any]]:
    """Stop the profiler; the top ops by kernel time from its trace.

    Ops are named as TF names them, ``scope/op:Type`` (the scope names the Keras layer).
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
    total: collections.Counter[str] = collections.Counter()
    calls: collections.Counter[str] = collections.Counter()
    device_planes = [p for p in space.planes if p.name.startswith("/device:GPU")]
    for plane in device_planes or [p for p in space.planes if p.name == "/host:CPU"]:
        for line in plane.lines:
            if not device_planes and not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if name.startswith("ExecutorState::") or (":" not in name and not device_planes):
                    continue  # executor bookkeeping, not an op kernel
                total[name] += event.duration_ps
                calls[name] += 1
    return [{"op": name, "ms": ps / 1e9, "calls": calls[name]} for name, ps in total.most_common(top)]
