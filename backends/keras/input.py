"""The Keras input path's engine-free parts: uint8 host images, Keras augmentation layers, batches by index.

Each batch is gathered from the uint8 array by index (the host never holds a float copy of a
split), moved to the engine's device as uint8, cast and normalised there (``x * scale +
offset``, bench.core.preprocess.PixelNorm) and, for training, augmented by Keras preprocessing
layers with per-sample random parameters (Keras's documented way for augmentation that must
not run at inference; the layers run on every engine). The model stays the catalog's graph.
The TensorFlow engine wraps the same steps in a tuned ``tf.data`` pipeline (``engine_tf``);
the JAX and torch engines read ``Batches``, a ``keras.utils.PyDataset``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
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


def labels(model: keras.Model, y: np.ndarray) -> np.ndarray:
    """Integer labels for a softmax head; float (N, 1) for a one-logit binary head (no silent broadcasting)."""
    return y.astype(np.float32).reshape(-1, 1) if model.output_shape[-1] == 1 else y


class Batches(keras.utils.PyDataset):
    """(x, y) batches in ``order`` ((x,) when ``y`` is None) for ``model.fit`` / ``predict`` on any engine.

    One worker, no multiprocessing (PyDataset's defaults): each batch is made when ``fit`` asks for
    it, in the training thread, so its cost is inside the step a user's own PyDataset would add.
    """

    def __init__(self, data: HostImages, order: np.ndarray, batch_size: int, y: np.ndarray | None = None,
                 aug: keras.Sequential | None = None) -> None:  # fmt: skip
        super().__init__()
        self.data, self.order, self.batch_size, self.y, self.aug = data, np.asarray(order), batch_size, y, aug
        self.scale = None if data.scale is None else data.scale.reshape(1, 1, 1, -1)
        self.offset = None if data.offset is None else data.offset.reshape(1, 1, 1, -1)

    def __len__(self) -> int:
        return math.ceil(len(self.order) / self.batch_size)

    def __getitem__(self, i: int) -> Any:
        idx = self.order[i * self.batch_size : (i + 1) * self.batch_size]
        xb = keras.ops.cast(keras.ops.convert_to_tensor(self.data.x[idx]), "float32")  # uint8 until the device
        if self.scale is not None:
            xb = xb * keras.ops.convert_to_tensor(self.scale) + keras.ops.convert_to_tensor(self.offset)
        if self.aug is not None:
            xb = self.aug(xb, training=True)
        return (xb,) if self.y is None else (xb, self.y[idx])
