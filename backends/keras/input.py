"""The Keras input path's engine-free parts: uint8 host images, batches by index, the training model's first layers.

Each batch is gathered from the uint8 array by index (the host never holds a float copy of a
split) and handed to ``fit`` / ``predict`` as uint8. Normalisation (``x * scale + offset``,
bench.core.preprocess.PixelNorm, as a ``Rescaling`` layer) and, for training, augmentation
(Keras preprocessing layers with per-sample random parameters, inactive at inference) are the
first layers of the model ``fit`` runs (``training_model``), in float32 whatever the precision
policy: Keras's documented placement for image preprocessing on a GPU ("on device,
synchronously with the rest of the model"), the same on every engine, and it keeps the input
pipeline a gather. The catalog model inside stays its own graph (explanations, layer taps and
weights use it directly). The TensorFlow engine gathers in a tuned ``tf.data`` pipeline
(``engine_tf``); the JAX and torch engines read ``Batches``, a ``keras.utils.PyDataset``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
from keras import layers

_LAYERS: dict[str, Callable[[int], layers.Layer]] = {
    "hflip": lambda seed: layers.RandomFlip("horizontal", seed=seed, dtype="float32"),
    # factor is a fraction of a full turn: 10/360 = +-10 degrees; nearest + zero fill as torchvision's defaults
    "rotate10": lambda seed: layers.RandomRotation(
        10.0 / 360.0, fill_mode="constant", fill_value=0.0, interpolation="nearest", seed=seed, dtype="float32"
    ),
}


@dataclass
class HostImages:
    """One split as the backend reads it: NHWC images (uint8, or float already preprocessed) and labels."""

    x: np.ndarray
    y: np.ndarray
    scale: np.ndarray | None = None  # (C,) float32; None: x needs no normalisation
    offset: np.ndarray | None = None
    # input pipelines an engine built over this split, kept with it so a ``fit`` per epoch reuses them
    pipelines: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

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


def training_model(model: keras.Model, data: HostImages, aug: keras.Sequential | None) -> keras.Model:
    """The model ``fit`` and ``predict`` run on ``data``'s batches: normalise -> augment (training only) -> ``model``.

    Input as the host holds it (uint8, or float already preprocessed); the preprocessing layers
    compute in float32 (under a mixed policy the catalog model casts on entry, as torch's autocast
    does after its float32 normalisation). They have no trainable weights: ``model``'s variables,
    optimizer and parameter count are the training model's.
    """
    pixels = keras.Input(data.x.shape[1:], dtype=str(data.x.dtype), name="pixels")
    h = pixels
    if data.scale is not None and data.offset is not None:  # set together (HostImages)
        h = layers.Rescaling(data.scale.tolist(), data.offset.tolist(), dtype="float32", name="normalise")(h)
    elif h.dtype != "float32":
        h = layers.Identity(dtype="float32", name="to_float")(h)
    if aug is not None:
        h = aug(h)
    return keras.Model(pixels, model(h), name=f"{model.name}_training")


def labels(model: keras.Model, y: np.ndarray) -> np.ndarray:
    """Integer labels for a softmax head; float (N, 1) for a one-logit binary head (no silent broadcasting)."""
    return y.astype(np.float32).reshape(-1, 1) if model.output_shape[-1] == 1 else y


class Batches(keras.utils.PyDataset):
    """(x, y) batches in ``order`` ((x,) when ``y`` is None) for ``model.fit`` / ``predict`` on any engine.

    One worker, no multiprocessing (PyDataset's defaults): each batch is gathered when ``fit`` asks
    for it, in the training thread, so its cost is inside the step a user's own PyDataset would add.
    """

    def __init__(self, data: HostImages, order: np.ndarray, batch_size: int, y: np.ndarray | None = None) -> None:
        super().__init__()
        # one row per epoch: one fit over every epoch reads them one after another (its steps_per_epoch)
        self.order, self.batch_size, self.data, self.y = np.atleast_2d(np.asarray(order)), batch_size, data, y
        self.per_epoch = math.ceil(self.order.shape[1] / batch_size)  # an epoch's last batch may be short

    def __len__(self) -> int:
        return len(self.order) * self.per_epoch

    def __getitem__(self, i: int) -> Any:
        epoch, b = divmod(i, self.per_epoch)
        idx = self.order[epoch, b * self.batch_size : (b + 1) * self.batch_size]
        xb = self.data.x[idx]  # the only host copy: one batch, as the host holds it (uint8)
        return (xb,) if self.y is None else (xb, self.y[idx])
