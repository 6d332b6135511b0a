"""Weights of any layer-list model (lenet5, cifar_cnn, a task's own list) converted between torch and Keras.

With the same weights both builds must compute the same function; the parity tests use
this to show that a speed difference between the backends is a framework difference,
not a model one. Numpy in, numpy out. Layouts (``backend.get_weights`` names them), layer by layer in
model order:

- conv: torch ``name.weight`` (out, in, kh, kw) <-> keras ``name.kernel`` (kh, kw, in, out)
- dense: torch ``name.weight`` (out, in) <-> keras ``name.kernel`` (in, out)
- batch norm: torch ``weight``/``bias``/``running_mean``/``running_var`` <-> keras ``gamma``/``beta``/
  ``moving_mean``/``moving_variance`` (torch's ``num_batches_tracked`` counter has no Keras twin: dropped,
  and 0 on the way back)
- the first dense layer after the convs reads a flattened map: torch flattens (C, H, W),
  Keras (H, W, C), so that layer's input rows are reordered as well, and so is a batch norm
  over the flattened features in between. After a global pool the map is 1x1: nothing moves.
- biases are the same in both.
"""

from __future__ import annotations

import math

import numpy as np

Weights = dict[str, np.ndarray]

# torch batch norm key -> keras variable name
_BN = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}
_BN_COUNTER = "num_batches_tracked"


def _layers(weights: Weights) -> dict[str, dict[str, np.ndarray]]:
    """Layer name -> {variable: array}, in model order."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for key, value in weights.items():
        layer, _, var = key.rpartition(".")
        out.setdefault(layer, {})[var] = value
    return out


def _refuse(layer: str, variables: dict[str, np.ndarray]) -> ValueError:
    keys = ", ".join(f"{layer}.{v}" for v in variables)
    return ValueError(f"cannot convert {keys}: not a conv, dense or batch norm layer's weights")


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


def _chw_to_hwc(v: np.ndarray, channels: int, feature_hw: tuple[int, int] | None) -> np.ndarray:
    """Per-feature vector of a flattened map, torch order -> Keras order."""
    h, w = _flat_shape(v.shape[0], channels, feature_hw)
    return v.reshape(channels, h, w).transpose(1, 2, 0).reshape(-1)


def _hwc_to_chw(v: np.ndarray, channels: int, feature_hw: tuple[int, int] | None) -> np.ndarray:
    h, w = _flat_shape(v.shape[0], channels, feature_hw)
    return v.reshape(h, w, channels).transpose(2, 0, 1).reshape(-1)


def _contiguous(weights: Weights) -> Weights:
    """C-ordered copies, 0-d arrays kept 0-d (``np.ascontiguousarray`` makes them 1-d)."""
    return {k: np.ascontiguousarray(v).reshape(np.shape(v)) for k, v in weights.items()}


def torch_to_keras(weights: Weights, feature_hw: tuple[int, int] | None = None) -> Weights:
    """torch ``state_dict`` arrays -> Keras weights named ``layer.kernel`` / ``layer.bias`` / ``layer.gamma`` ..."""
    out: Weights = {}
    channels = None  # out channels of the last conv seen, while the flatten is still ahead
    for layer, v in _layers(weights).items():
        if set(v) == {"weight", "bias"} and v["weight"].ndim == 4:
            out[f"{layer}.kernel"] = v["weight"].transpose(2, 3, 1, 0)
            channels = v["weight"].shape[0]
        elif set(v) == {"weight", "bias"} and v["weight"].ndim == 2:
            w = v["weight"]
            if channels is not None:  # the dense layer right after the flatten
                h, wd = _flat_shape(w.shape[1], channels, feature_hw)
                w = w.reshape(w.shape[0], channels, h, wd).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)
                channels = None
            out[f"{layer}.kernel"] = w.T
        elif set(v) - {_BN_COUNTER} == set(_BN):
            # over a flattened map's features: the map's channel count, else None
            flat = channels if channels is not None and v["weight"].shape[0] != channels else None
            for t, k in _BN.items():
                out[f"{layer}.{k}"] = _chw_to_hwc(v[t], flat, feature_hw) if flat is not None else v[t]
            continue
        else:
            raise _refuse(layer, v)
        out[f"{layer}.bias"] = v["bias"]
    return _contiguous(out)


def keras_to_torch(weights: Weights, feature_hw: tuple[int, int] | None = None) -> Weights:
    """Keras ``layer.kernel`` / ``layer.bias`` / ``layer.gamma`` ... arrays -> torch ``state_dict`` arrays."""
    out: Weights = {}
    channels = None
    for layer, v in _layers(weights).items():
        if set(v) == {"kernel", "bias"} and v["kernel"].ndim == 4:
            out[f"{layer}.weight"] = v["kernel"].transpose(3, 2, 0, 1)
            channels = v["kernel"].shape[3]
        elif set(v) == {"kernel", "bias"} and v["kernel"].ndim == 2:
            k = v["kernel"]
            if channels is not None:
                h, wd = _flat_shape(k.shape[0], channels, feature_hw)
                k = k.T.reshape(k.shape[1], h, wd, channels).transpose(0, 3, 1, 2).reshape(k.shape[1], -1).T
                channels = None
            out[f"{layer}.weight"] = k.T
        elif set(v) == set(_BN.values()):
            flat = channels if channels is not None and v["gamma"].shape[0] != channels else None
            for t, name in _BN.items():
                out[f"{layer}.{t}"] = _hwc_to_chw(v[name], flat, feature_hw) if flat is not None else v[name]
            out[f"{layer}.{_BN_COUNTER}"] = np.array(0, dtype=np.int64)
            continue
        else:
            raise _refuse(layer, v)
        out[f"{layer}.bias"] = v["bias"]
    return _contiguous(out)
