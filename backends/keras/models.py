"""The catalog models in Keras, one build for every engine: lenet5 and cifar_cnn from keras layers;
keras.applications ResNet101 and ConvNeXtTiny, no top, plus the task's head.

The big ones are built flat (``input_tensor=``) rather than nested, so ``model.get_layer("backbone").output``
is connected to ``model.inputs`` and ``keras.Model(model.inputs, [backbone.output,
model.output])`` works for Grad-CAM. ``backbone`` is an Identity layer on the last
feature map of the conv trunk; ``head`` is the final Dense layer.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
from keras import layers

from backends.keras.registry import register_model
from bench.core.spec import ModelSpec


def _pool(kind: str, name: str) -> layers.Layer:
    return layers.AveragePooling2D(2, name=name) if kind == "avg" else layers.MaxPooling2D(2, name=name)


@register_model
def lenet5(spec: ModelSpec, input_shape: tuple[int, int, int], n_classes: int) -> keras.Model:
    act, init = spec.option("activation"), spec.init
    pad = spec.option("conv1_padding")
    return keras.Sequential(
        [
            keras.Input(input_shape),
            *([layers.ZeroPadding2D(pad, name="pad1")] if pad else []),
            layers.Conv2D(6, 5, activation=act, kernel_initializer=init, name="conv1"),
            _pool(spec.option("pooling"), "pool1"),
            layers.Conv2D(16, 5, activation=act, kernel_initializer=init, name="conv2"),
            _pool(spec.option("pooling"), "pool2"),
            layers.Flatten(name="flatten"),
            layers.Dense(120, activation=act, kernel_initializer=init, name="fc1"),
            layers.Dense(84, activation=act, kernel_initializer=init, name="fc2"),
            layers.Dense(n_classes, kernel_initializer=init, name="fc3"),
        ],
        name="lenet5",
    )


@register_model
def cifar_cnn(spec: ModelSpec, input_shape: tuple[int, int, int], n_classes: int) -> keras.Model:
    act, init = spec.option("activation"), spec.init
    return keras.Sequential(
        [
            keras.Input(input_shape),
            layers.Conv2D(32, 3, activation=act, kernel_initializer=init, name="conv1"),
            layers.MaxPooling2D(2, name="pool1"),
            layers.Conv2D(64, 3, activation=act, kernel_initializer=init, name="conv2"),
            layers.MaxPooling2D(2, name="pool2"),
            layers.Conv2D(64, 3, activation=act, kernel_initializer=init, name="conv3"),
            layers.Flatten(name="flatten"),
            layers.Dense(64, activation=act, kernel_initializer=init, name="fc1"),
            layers.Dense(n_classes, kernel_initializer=init, name="fc2"),
        ],
        name="cifar_cnn",
    )


WEIGHTS_ENV = "BENCH_WEIGHTS_DIR"
_FILES = {  # keras.applications' own no-top file names (what weights="imagenet" downloads)
    "resnet101": "resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "convnext_tiny": "convnext_tiny_notop.h5",
}
_URLS = {
    "resnet101": "https://storage.googleapis.com/tensorflow/keras-applications/resnet/",
    "convnext_tiny": "https://storage.googleapis.com/tensorflow/keras-applications/convnext/",
}


def how_to_provide(arch: str) -> str:
    return (
        f"download {_URLS[arch]}{_FILES[arch]} on a machine with internet and put it in ${WEIGHTS_ENV}/ or "
        f"keras's cache ({Path(keras.config.keras_home() if hasattr(keras.config, 'keras_home') else '~/.keras')}"
        f'/models/), or name the file in the task: [model] weights = "/path/to/file"'
    )


def _weights_arg(spec: ModelSpec) -> str | None:
    """What to pass as keras.applications' ``weights=``: None, a local file, or "imagenet" (download).

    keras.applications reads a local file with ``model.load_weights``: variables only (``.h5`` through h5py,
    ``.keras`` through its weights-only path, which never deserialises the archive's config, so a Lambda layer
    or any other code in it is not even read). The whole-model loader (``keras.models.load_model``, whose
    ``safe_mode`` refuses Lambda code) is never used here.
    """
    if not spec.pretrained:
        return None
    if spec.weights:
        path = Path(spec.weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"model.weights: {path} is not a file")
        return str(path)
    folder = os.environ.get(WEIGHTS_ENV)
    if folder and (Path(folder) / _FILES[spec.arch]).is_file():
        return str(Path(folder) / _FILES[spec.arch])
    return "imagenet"


def _application(spec: ModelSpec, fn: keras.Model, inputs: keras.KerasTensor, **kwargs: object) -> keras.Model:
    weights = _weights_arg(spec)
    try:
        return fn(include_top=False, weights=weights, input_tensor=inputs, **kwargs)
    except Exception as e:  # keras raises plain Exception for a failed download
        if weights is None:
            raise
        if weights != "imagenet":
            raise RuntimeError(
                f"{weights}: refused as {spec.arch} ImageNet weights ({type(e).__name__}: {str(e).splitlines()[0]}); "
                "it was read with Keras's weights-only loader, nothing in it ran"
            ) from e
        raise RuntimeError(
            f"--pretrained: could not get ImageNet weights for {spec.arch} ({type(e).__name__}: {e}); "
            f"this machine may have no access to the download. To use a local copy: {how_to_provide(spec.arch)}"
        ) from e


def _apply_init(model: keras.Model, spec: ModelSpec) -> keras.Model:
    """Re-draw every conv/dense kernel with the spec's initialiser, biases zero (as the torch backend does).

    keras.applications and torchvision/timm each have their own inits; the spec names one so
    neither library's default decides. With pretrained weights only the head is drawn.
    """
    init = keras.initializers.get(spec.init)
    targets = [model.get_layer("head")] if spec.pretrained else model.layers
    for layer in targets:
        if isinstance(layer, (layers.Conv2D, layers.Dense, layers.DepthwiseConv2D)):
            kernel = layer.depthwise_kernel if isinstance(layer, layers.DepthwiseConv2D) else layer.kernel
            kernel.assign(init(kernel.shape))
            if layer.bias is not None:
                layer.bias.assign(keras.ops.zeros(layer.bias.shape))
    return model


def _check_rgb(arch: str, input_shape: tuple[int, int, int]) -> None:
    if input_shape[2] != 3:
        raise ValueError(f"{arch} needs 3-channel images, got {input_shape} (set dataset.channels = 3)")


@register_model
def resnet101(spec: ModelSpec, input_shape: tuple[int, int, int], n_outputs: int) -> keras.Model:
    _check_rgb("resnet101", input_shape)
    inputs = keras.Input(input_shape)
    trunk = _application(spec, keras.applications.ResNet101, inputs)
    for layer in trunk.layers:  # torch's BatchNorm momentum 0.1 is keras's 0.9 (keras's default: 0.99)
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = 0.9
    x = layers.Identity(name="backbone")(trunk.output)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    out = layers.Dense(n_outputs, name="head")(x)
    return _apply_init(keras.Model(inputs, out, name="resnet101"), spec)


@register_model
def convnext_tiny(spec: ModelSpec, input_shape: tuple[int, int, int], n_outputs: int) -> keras.Model:
    _check_rgb("convnext_tiny", input_shape)
    inputs = keras.Input(input_shape)
    # include_preprocessing=False: the spec's mean/std normalisation is the only preprocessing, as in timm
    app = _application(spec, keras.applications.ConvNeXtTiny, inputs, include_preprocessing=False)
    # keras.applications without top ends in a LayerNormalization over the 4-D map; timm (and keras's own
    # top) normalise AFTER global pooling. So: take the last stage's output, pool, then apply that same
    # LayerNormalization (its weights come with the pretrained file) to the pooled vector.
    final_norm = app.layers[-1]
    x = layers.Identity(name="backbone")(final_norm.input)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = final_norm(x)
    out = layers.Dense(n_outputs, name="head")(x)
    return _apply_init(keras.Model(inputs, out, name="convnext_tiny"), spec)
