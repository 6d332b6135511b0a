"""Training-only augmentation in Keras with its own preprocessing layers, drawn per image.

The layers run in a ``tf.data`` map in front of ``model.fit`` (Keras's documented way
for augmentation that must not run at inference), so the model itself stays the
catalog's graph and ``predict`` never sees them.
"""

from __future__ import annotations

from collections.abc import Callable

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


def augmenter(names: tuple[str, ...], seed: int = 0) -> keras.Sequential | None:
    if not names:
        return None
    unknown = [n for n in names if n not in _LAYERS]
    if unknown:
        raise ValueError(f"train.augment: unknown augmentation(s) {unknown} (known: {', '.join(_LAYERS)})")
    return keras.Sequential([_LAYERS[n](seed + i) for i, n in enumerate(names)], name="augment")


def augmented_batches(aug: keras.Sequential, x: np.ndarray, y: np.ndarray, batch_size: int) -> tf.data.Dataset:
    """Batches of (augmented x, y) in the given order, augmented on the fly (training=True)."""
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)
    return ds.map(lambda xb, yb: (aug(xb, training=True), yb), num_parallel_calls=1).prefetch(1)
