"""The Keras input path: uint8 host images through a batched ``tf.data`` map, augmented with Keras's own layers.

Each batch is gathered from the uint8 array by index (the host never holds a float copy of a
split), cast and normalised (``x * scale + offset``, bench.preprocess.PixelNorm) and, for
training, augmented by Keras preprocessing layers with per-sample random parameters, in a
``tf.data`` map in front of ``model.fit`` (Keras's documented way for augmentation that must not
run at inference), prefetched. The model itself stays the catalog's graph.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from keras import layers

_LAYERS: dict[str, Callable[[int], layers.Layer]] = {
    "hflip": lambda seed: layers.RandomFlip("horizontal", seed=seed),
    # factor is a fraction of a full turn: 10/360 = +-10 degrees; nearest + zero fill as torchvision's defaults
    "rotate10": lambda seed: layers.RandomRotation(
        10.0 / 360.0, fill_mode="constant", fill_value=0.0, interpolation="nearest", seed=seed
    ),
}


@dataclass
class HostImages:
    """One split as the backend reads it: NHWC images (uint8, or float already preprocessed) and labels."""

    x: np.ndarray
    y: np.ndarray
    scale: np.ndarray | None = None  # (C,) float32; None: x needs no normalisation
    offset: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.x)

    def floats(self) -> np.ndarray:
        """All images as the model's float input (for the small splits the explain phase uses)."""
        if self.scale is None:
            return self.x.astype(np.float32, copy=False)
        return self.x.astype(np.float32) * self.scale + self.offset


def augmenter(names: tuple[str, ...], seed: int = 0) -> keras.Sequential | None:
    if not names:
        return None
    unknown = [n for n in names if n not in _LAYERS]
    if unknown:
        raise ValueError(f"train.augment: unknown augmentation(s) {unknown} (known: {', '.join(_LAYERS)})")
    return keras.Sequential([_LAYERS[n](seed + i) for i, n in enumerate(names)], name="augment")


def batches(
    data: HostImages, order: np.ndarray, batch_size: int, y: np.ndarray | None = None,
    aug: keras.Sequential | None = None,
) -> tf.data.Dataset:  # fmt: skip
    """(x float, y) batches in ``order`` (x alone when ``y`` is None), gathered from the host arrays by index."""
    x = data.x
    labels = y if y is not None else np.zeros(len(x), np.int8)
    scale = None if data.scale is None else tf.constant(data.scale.reshape(1, 1, 1, -1))
    offset = None if data.offset is None else tf.constant(data.offset.reshape(1, 1, 1, -1))

    def take(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # the only host copy: one batch
        return x[idx], labels[idx]

    def load(idx: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor] | tf.Tensor:
        xb, yb = tf.numpy_function(take, [idx], (tf.as_dtype(x.dtype), tf.as_dtype(labels.dtype)), stateful=False)
        xb.set_shape((None, *x.shape[1:]))
        yb.set_shape((None, *labels.shape[1:]))
        xb = tf.cast(xb, tf.float32)
        if scale is not None:
            xb = xb * scale + offset
        if aug is not None:
            xb = aug(xb, training=True)
        return (xb, yb) if y is not None else xb

    ds = tf.data.Dataset.from_tensor_slices(np.asarray(order, np.int64)).batch(batch_size)
    return ds.map(load, num_parallel_calls=1).prefetch(2).with_options(pipeline_options())


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
