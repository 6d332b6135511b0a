"""The Keras backend's ``Parity`` role: weights to and from the reference layout (torch's), and alignments.

Layer-list models convert with ``backends.convert`` (numpy only, any engine). Zoo models convert through
``backends.keras.zoo_convert`` against a torch twin of the task model, built once per model: that needs torch in
the process, imported before TensorFlow (the other order crashes), which ``bench.run.parity_worker`` does
and an ordinary Keras worker does not (there this raises ``ParityError`` instead). Keras's training
conventions are what a check aligns to, so ``adam_eps``, ``adam_fp32_bias`` and ``bn_running_var`` need nothing
here; leaving ``bn_defaults`` out gives the BatchNorm layers Keras's own momentum and epsilon, ``dropout_off``
zeroes the dropout rates, and ``bn_two_pass_var`` gives the torch engine's BatchNorm layers the two-pass batch
variance the other engines already compute.
"""

from __future__ import annotations

import sys
from typing import Any

import keras
import numpy as np

from backends import convert
from bench.core.parity import ParityError, check_alignments
from bench.core.zoo import ZOO

_TWINS: dict[int, Any] = {}  # id(Keras zoo model) -> its torch twin (the converter's other side)
HEADS = ("head", "head")  # the task models' classifiers, in both builds

KERAS_BN = (0.99, 1e-3)  # keras.layers.BatchNormalization's own momentum and epsilon ("as shipped")


def feature_hw(model: keras.Model) -> tuple[int, int] | None:
    """(H, W) of the map the model's Flatten reads, which the converter reorders; None without a Flatten."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.Flatten) and len(layer.input.shape) == 4:
            return int(layer.input.shape[1]), int(layer.input.shape[2])
    return None


def _twin(model: keras.Model) -> Any:
    """The torch build of the zoo task model ``model`` (weights are copied in and out, its own init unused)."""
    if model.name not in ZOO:
        raise ParityError(f"{model.name}: neither a layer list nor a zoo model: no converter to the reference layout")
    if id(model) not in _TWINS:
        if "tensorflow" in sys.modules and "torch" not in sys.modules:
            raise ParityError(
                f"zoo:{model.name}: converting needs torch imported before TensorFlow in this process "
                "(run the check through bench.run.parity_worker)"
            )
        from backends.torch import zoo as torch_zoo

        h, w, c = (int(s) for s in model.input_shape[1:])
        _TWINS[id(model)] = torch_zoo.build(model.name, int(model.output_shape[-1]), (h, w, c), "glorot_uniform")
    return _TWINS[id(model)]


def export_weights(backend: Any, model: keras.Model) -> dict[str, np.ndarray]:
    if isinstance(model, keras.Sequential):
        return convert.keras_to_torch(backend.get_weights(model), feature_hw(model))
    from backends.keras import zoo_convert

    twin = _twin(model)
    zoo_convert.keras_to_torch(model, twin, model.name, HEADS)
    return {k: v.detach().cpu().numpy().copy() for k, v in twin.state_dict().items()}


def import_weights(backend: Any, model: keras.Model, weights: dict[str, np.ndarray]) -> None:
    if isinstance(model, keras.Sequential):
        backend.set_weights(model, convert.torch_to_keras(weights, feature_hw(model)))
        return
    import torch

    from backends.keras import zoo_convert

    twin = _twin(model)
    twin.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in weights.items()}, strict=True)
    zoo_convert.torch_to_keras(twin, model, model.name, HEADS)


def _two_pass_moments(layer: keras.layers.BatchNormalization) -> Any:
    """``layer._moments`` with the batch variance as mean((x - mean)^2): what ``ops.moments`` computes on
    TensorFlow and JAX. On torch it computes E[x^2] - E[x]^2, whose float32 cancellation moved MobileNetV3-small's
    first Adam step by up to 1.8e-3 (2 x lr: gradients of the opposite sign) where the other engines agree to 1e-6."""
    shipped = layer._moments

    def moments(inputs: Any, mask: Any) -> Any:
        if mask is not None:  # Keras's masked path is already two-pass
            return shipped(inputs, mask)
        axes = tuple(layer._reduction_axes)
        mean = keras.ops.mean(inputs, axis=axes, keepdims=True)
        variance = keras.ops.mean(keras.ops.square(inputs - mean), axis=axes)
        return keras.ops.squeeze(mean, axis=axes), variance

    return moments


def align(model: keras.Model, alignments: tuple[str, ...]) -> None:
    """Before the first ``fit`` (which traces the step with these values)."""
    check_alignments(alignments)
    one_pass_variance = keras.backend.backend() == "torch"
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            if "bn_defaults" not in alignments:
                layer.momentum, layer.epsilon = KERAS_BN
            if "bn_two_pass_var" in alignments and one_pass_variance:
                layer._moments = _two_pass_moments(layer)
        elif isinstance(layer, keras.layers.Dropout) and "dropout_off" in alignments:
            layer.rate = 0.0
