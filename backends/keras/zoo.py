"""Keras builds of the zoo (``bench.core.zoo``): one generic builder driven by the table, random init."""

from __future__ import annotations

import keras
import numpy as np

from bench.core.zoo import ZOO


def build(zoo_id: str, n_classes: int, input_size: int | None = None) -> keras.Model:
    """The row's ``keras.applications`` model with an ``n_classes`` logits head (no softmax), random weights
    (``weights=None``: nothing is downloaded), at ``input_size`` (default: the row's)."""
    entry = ZOO[zoo_id]
    size = input_size or entry.input_size
    constructor = getattr(keras.applications, entry.keras)
    model = constructor(
        include_top=True,
        weights=None,
        input_shape=(size, size, 3),
        classes=n_classes,
        classifier_activation=None,
        **dict(entry.keras_kwargs),
    )
    if "keras_normalization_stats" in entry.differences:
        _neutralise_preprocessing(model)
    return model


def _neutralise_preprocessing(model: keras.Model) -> None:
    """Make the built-in Rescaling(s) + Normalization the identity (variance s**2, mean 0), so the Keras build
    reads the same input as the torch one; EfficientNet (v1) has no switch to leave them out."""
    scale = 1.0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Rescaling):
            scale *= float(layer.scale)
        elif isinstance(layer, keras.layers.Normalization):
            mean, variance, count = layer.get_weights()
            layer.set_weights([np.zeros_like(mean), np.full_like(variance, scale**2), count])
            layer.finalize_state()  # call() reads tensors taken from the weights, not the weights
            return
    raise ValueError(f"{model.name}: the table says it has a Normalization layer, the build has none")
