"""Keras instruments for the performance columns that work on every engine: the FLOP count and a matmul.

Framework work only: bench times the matmul and does the MFU arithmetic. TensorFlow's graph
profiler (the FLOP cross-check) needs the TensorFlow engine.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import keras
from keras import layers

DTYPES = {"fp32": "float32", "mixed_bf16": "bfloat16", "mixed_fp16": "float16"}


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
        if isinstance(layer, layers.SeparableConv2D):  # a depthwise then a 1x1 conv, both at the output positions
            kernels = [layer.depthwise_kernel.shape, layer.pointwise_kernel.shape]
        elif isinstance(layer, (layers.Conv2D, layers.DepthwiseConv2D, layers.Dense)):
            kernels = [layer.kernel.shape]  # DepthwiseConv2D's (kh, kw, C, multiplier) in Keras 3
        else:
            continue
        positions = math.prod(int(d) for d in layer.output.shape[1:-1])  # 1 for a Dense on a vector
        total += sum(2.0 * math.prod(int(d) for d in kernel) * positions for kernel in kernels)
    return total


def _leaf_layers(model: keras.Model) -> list[layers.Layer]:
    out = []
    for layer in model.layers:
        out.extend(_leaf_layers(layer) if isinstance(layer, keras.Model) else [layer])
    return out


def graph_profiler_flops(model: keras.Model, input_shape: tuple[int, int, int]) -> float:
    """FLOPs of one forward pass by TensorFlow's graph profiler on the frozen inference graph (slow)."""
    import tensorflow as tf
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
    """One n x n matmul on the engine's device; fetching one element to the host waits for it (on every engine)."""
    a = keras.random.normal((n, n), dtype=DTYPES[precision], seed=0)
    b = keras.random.normal((n, n), dtype=DTYPES[precision], seed=1)

    def run() -> None:
        keras.ops.convert_to_numpy(keras.ops.cast(keras.ops.matmul(a, b)[0, 0], "float32"))  # numpy has no bf16

    return run
