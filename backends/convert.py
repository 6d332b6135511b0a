"""Weights of the small catalog models (lenet5, cifar_cnn) converted between torch and Keras, in numpy.

With the same weights both builds must compute the same function; the parity tests use
this to show that a speed difference between the backends is a framework difference,
not a model one. Layouts (``backend.get_weights`` names them):

- conv: torch ``name.weight`` (out, in, kh, kw) <-> keras ``name.kernel`` (kh, kw, in, out)
- dense: torch ``name.weight`` (out, in) <-> keras ``name.kernel`` (in, out)
- the first dense layer after the convs reads a flattened map: torch flattens (C, H, W),
  Keras (H, W, C), so that layer's input rows are reordered as well.
- biases are the same in both.
"""

from __future__ import annotations

import math

import numpy as np

Weights = dict[str, np.ndarray]


def _layers(weights: Weights, kernel: str) -> list[str]:
    """Layer names in model order; anything but kernels and biases is refused (e.g. BatchNorm statistics)."""
    names = []
    for key in weights:
        layer, _, kind = key.rpartition(".")
        if kind not in (kernel, "bias"):
            raise ValueError(f"cannot convert {key!r}: only conv/dense {kernel} and bias are supported")
        if layer not in names:
            names.append(layer)
    return names


def _flat_shape(in_features: int, channels: int, feature_hw: tuple[int, int] | None) -> tuple[int, int]:
    """(H, W) of the map the flatten reads: given, or square from the first dense layer's width."""
    if feature_hw is not None:
        h, w = feature_hw
    else:
        h = w = math.isqrt(in_features // channels)
    if h * w * channels != in_features:
        raise ValueError(
            f"first dense layer reads {in_features} features, not {channels} channels x {h}x{w}; pass feature_hw"
        )
    return h, w


def torch_to_keras(weights: Weights, feature_hw: tuple[int, int] | None = None) -> Weights:
    """torch ``state_dict`` arrays -> Keras weights named ``layer.kernel`` / ``layer.bias``."""
    out: Weights = {}
    channels = None  # out channels of the last conv seen, while the flatten is still ahead
    for layer in _layers(weights, "weight"):
        w = weights[f"{layer}.weight"]
        if w.ndim == 4:
            out[f"{layer}.kernel"] = w.transpose(2, 3, 1, 0)
            channels = w.shape[0]
        elif w.ndim == 2 and channels is not None:  # the dense layer right after the flatten
            h, wd = _flat_shape(w.shape[1], channels, feature_hw)
            chw = w.reshape(w.shape[0], channels, h, wd)
            out[f"{layer}.kernel"] = chw.transpose(0, 2, 3, 1).reshape(w.shape[0], -1).T
            channels = None
        elif w.ndim == 2:
            out[f"{layer}.kernel"] = w.T
        else:
            raise ValueError(f"cannot convert {layer}.weight of shape {w.shape}")
        out[f"{layer}.bias"] = weights[f"{layer}.bias"]
    return {k: np.ascontiguousarray(v) for k, v in out.items()}


def keras_to_torch(weights: Weights, feature_hw: tuple[int, int] | None = None) -> Weights:
    """Keras ``layer.kernel`` / ``layer.bias`` arrays -> torch ``state_dict`` arrays."""
    out: Weights = {}
    channels = None
    for layer in _layers(weights, "kernel"):
        k = weights[f"{layer}.kernel"]
        if k.ndim == 4:
            out[f"{layer}.weight"] = k.transpose(3, 2, 0, 1)
            channels = k.shape[3]
        elif k.ndim == 2 and channels is not None:
            h, wd = _flat_shape(k.shape[0], channels, feature_hw)
            hwc = k.T.reshape(k.shape[1], h, wd, channels)
            out[f"{layer}.weight"] = hwc.transpose(0, 3, 1, 2).reshape(k.shape[1], -1)
            channels = None
        elif k.ndim == 2:
            out[f"{layer}.weight"] = k.T
        else:
            raise ValueError(f"cannot convert {layer}.kernel of shape {k.shape}")
        out[f"{layer}.bias"] = weights[f"{layer}.bias"]
    return {k: np.ascontiguousarray(v) for k, v in out.items()}
