"""Keras builds of the zoo (``bench.core.zoo``): one generic builder driven by the table.

``library_model`` is ``keras.applications``' own model with its classifier swapped (what the parity tests
compare); ``build`` is the task model: the same graph with an Identity ``backbone`` on the last feature map
(before global pooling; Grad-CAM's layer) and a fresh Dense ``head`` in place of the library's classifier,
the layers between them the library's own -- the names the torch build (``backends/torch/zoo.py``) has.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import layers

from bench.core.zoo import ZOO, ZooError, checked_input

_REPO = Path(__file__).resolve().parents[2]
_POOLS = (layers.GlobalAveragePooling2D, layers.GlobalMaxPooling2D, layers.Flatten)


def library_model(zoo_id: str, n_classes: int, input_size: int | None = None) -> keras.Model:
    """The row's ``keras.applications`` model with an ``n_classes`` logits head (no softmax), random weights
    (``weights=None``: nothing is downloaded), at ``input_size`` (default: the row's)."""
    row = ZOO[zoo_id]
    size = input_size or row.input_size
    constructor = getattr(keras.applications, row.keras)
    model = constructor(
        include_top=True,
        weights=None,
        input_shape=(size, size, 3),
        classes=n_classes,
        classifier_activation=None,
        **dict(row.keras_kwargs),
    )
    if "keras_normalization_stats" in row.differences:
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


def _top(model: keras.Model, head_name: str) -> tuple[Any, list[Any]]:
    """The trunk's output tensor (the input of the top's global pooling / flatten) and the top's layers from
    that pooling up to, not including, the classifier: a chain of one-input layers in every application."""
    head = model.get_layer(head_name)
    chain: list[Any] = []
    layer = head._inbound_nodes[0].parent_nodes[0].operation
    while not isinstance(layer, _POOLS):
        chain.append(layer)
        layer = layer._inbound_nodes[0].parent_nodes[0].operation
    return layer.input, [layer, *reversed(chain)]


def build(
    zoo_id: str,
    n_outputs: int,
    input_shape: tuple[int, int, int],
    init: str,
    weights: str | Path | None = None,
    throwaway: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
) -> keras.Model:
    """The task model of zoo row ``zoo_id`` (``"zoo:<id>"`` or bare) for HWC ``input_shape``: ``init`` on every
    kernel (biases zero), BatchNorm momentum torch's 0.1 (Keras's 0.99 otherwise). With ``weights`` (a torch
    state_dict file of the row's library model) the trunk comes from that file through the converter and
    only the head is drawn with ``init``. ``throwaway`` (the engine's ``throwaway_draws``) draws the library
    model's initial values then, as the converter overwrites every one of them; the head's draws come after
    it, the seeded ones, and a random-init row's draws are its training start, so it keeps the real ones."""
    row = checked_input(zoo_id, input_shape)
    h = input_shape[0]
    with throwaway() if weights else contextlib.nullcontext():
        lib = library_model(row.id, n_outputs, h)
    if weights:
        _load_converted(lib, row.id, n_outputs, h, Path(weights))
    return task_model(lib, row.id, n_outputs, init, trunk=not weights)


def task_model(lib: keras.Model, zoo_id: str, n_outputs: int, init: str, trunk: bool = True) -> keras.Model:
    """``lib`` (a library model of the row) re-wired into backbone + top + head; its layers and weights are
    shared, so weights converted into ``lib`` are the task model's. ``trunk=False``: only the head gets
    ``init``, the rest keeps its weights."""
    row = ZOO[zoo_id]
    trunk_out, top = _top(lib, row.keras_head)
    x = layers.Identity(name="backbone")(trunk_out)
    for layer in top:
        x = layer(x)
    if len(x.shape) > 2:  # MobileNet V1/V3 keep a (1, 1, C) map for their 1x1-conv classifier
        x = layers.Flatten(name="head_flatten")(x)
    out = layers.Dense(n_outputs, name="head")(x)
    model = keras.Model(lib.inputs, out, name=row.id)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = 0.9  # torch's momentum 0.1 in Keras's convention
    initializer = keras.initializers.get(init)
    for layer in model.layers if trunk else [model.get_layer("head")]:
        _apply_init(layer, initializer)
    return model


def _apply_init(layer: Any, initializer: Any) -> None:
    """The spec's initialiser on a conv/dense layer's kernels, its bias zero, as the torch backend does."""
    if not isinstance(layer, (layers.Conv2D, layers.Dense, layers.DepthwiseConv2D, layers.SeparableConv2D)):
        return
    for kernel in [v for v in layer.weights if v.name.endswith("kernel")]:
        kernel.assign(initializer(kernel.shape))
    if getattr(layer, "bias", None) is not None:
        layer.bias.assign(keras.ops.zeros(layer.bias.shape))


def _load_converted(lib: keras.Model, zoo_id: str, n_outputs: int, size: int, path: Path) -> None:
    """Weights of a torch file into ``lib``, converted in a child process (``python -m backends.keras.zoo_convert``):
    the converter needs torch and Keras in one process, and torch imported after TensorFlow crashes, so the
    child runs Keras on its torch engine and hands back the variables in ``lib.weights`` order (numpy)."""
    if not path.is_file():
        raise FileNotFoundError(f"model.weights: {path} is not a file")
    with tempfile.TemporaryDirectory(prefix="bench-zoo-") as tmp:
        out = Path(tmp) / "weights.npz"
        cmd = [
            sys.executable,
            "-m",
            "backends.keras.zoo_convert",
            zoo_id,
            str(path.resolve()),
            str(n_outputs),
            str(size),
            str(out),
        ]
        env = {**os.environ, "KERAS_BACKEND": "torch", "TF_CPP_MIN_LOG_LEVEL": "2"}
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=_REPO, check=False)
        if done.returncode != 0:
            lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
            raise ZooError(lines[-1] if lines else f"{path}: the converter exited with {done.returncode}")
        with np.load(out, allow_pickle=False) as arrays:
            values = [arrays[f"arr_{i}"] for i in range(len(arrays.files))]
    if len(values) != len(lib.weights):
        raise ZooError(f"{path}: the converter gave {len(values)} variables, zoo:{zoo_id} has {len(lib.weights)}")
    for var, value in zip(lib.weights, values, strict=True):
        if tuple(var.shape) != value.shape:
            raise ZooError(f"{path}: converted {var.path} has shape {value.shape}, the model {tuple(var.shape)}")
        var.assign(value)
