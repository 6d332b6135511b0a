"""The catalog models in Keras, one build for every engine: ``build`` (which the backend calls).

Every layer list (lenet5, cifar_cnn, a task's ``[model] layers``) by one generic builder from keras layers
(``sequential``); ``zoo:`` ids by ``backends.keras.zoo``; keras.applications ResNet101 and ConvNeXtTiny,
no top, plus the task's head, registered in ``backends.keras.registry``.

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

from backends.keras.registry import MODELS, register_model
from bench.core import layers as core_layers
from bench.core.catalog import Architecture, architecture
from bench.core.spec import ModelSpec
from bench.core.zoo import WeightsSource, entry


def _layers(layer: core_layers.Layer, name: str, act: str, init: str) -> list[layers.Layer]:
    """One list layer as Keras layers (a conv with int padding is a ZeroPadding2D ``pad<n>`` + the conv)."""
    match layer:
        case core_layers.Conv():
            pad = 0 if layer.padding == "valid" else layer.padding
            padded = isinstance(pad, int) and pad > 0  # as torch's Conv2d(padding=pad): zeros on every side
            padding = [layers.ZeroPadding2D(pad, name=name.replace("conv", "pad"))] if padded else []
            conv = layers.Conv2D(
                layer.filters,
                layer.kernel,
                strides=layer.stride,
                padding="same" if pad == "same" else "valid",
                activation=layer.activation if act else None,
                kernel_initializer=init,
                name=name,
            )
            return [*padding, conv]
        case core_layers.Pool():
            pool = layers.AveragePooling2D if layer.pool == "avg" else layers.MaxPooling2D
            return [pool(layer.size, strides=layer.step, name=name)]
        case core_layers.BatchNorm():  # keras's momentum is the running statistics' own weight: 1 - torch's
            return [layers.BatchNormalization(momentum=1 - layer.momentum, epsilon=layer.eps, name=name)]
        case core_layers.Activation():
            return [layers.Activation(layer.activation, name=name)]
        case core_layers.Dropout():
            return [layers.Dropout(layer.rate, name=name)]
        case core_layers.Flatten():
            return [layers.Flatten(name=name)]  # H, W, C order (torch: C, H, W; backends.convert permutes)
        case core_layers.GlobalPool():
            pool = layers.GlobalAveragePooling2D if layer.global_pool == "avg" else layers.GlobalMaxPooling2D
            return [pool(name=name)]
        case core_layers.Dense():
            return [
                layers.Dense(
                    layer.units, activation=layer.activation if act else None, kernel_initializer=init, name=name
                )
            ]
    raise TypeError(f"not a layer: {layer!r}")


def sequential(arch: Architecture, spec: ModelSpec, input_shape: tuple[int, int, int], n_outputs: int) -> keras.Model:
    """Any layer list (bench.core.layers) plus its head, the layers named as the catalog names them.

    A conv's or dense's own activation is fused into it (Keras's way; torch builds it as the next module).
    """
    core_layers.infer_shapes(arch.layers, input_shape)  # a list that does not fit is refused here, naming its layer
    built = [keras.Input(input_shape)]
    for layer, (name, act) in zip(arch.layers, core_layers.names(arch.layers), strict=True):
        built += _layers(layer, name, act, spec.init)
    built.append(layers.Dense(n_outputs, kernel_initializer=spec.init, name=arch.head))
    return keras.Sequential(built, name=arch.id)


def build(spec: ModelSpec, input_shape: tuple[int, int, int], n_outputs: int) -> keras.Model:
    """The spec's model: a layer list (lenet5, cifar_cnn, a task's own) or a big model's builder.

    Zoo rows (``zoo:<id>``) are built by ``Backend.build`` through ``zoo.build``, which initialises and
    loads them itself."""
    arch = architecture(spec)
    if arch.layers:
        return sequential(arch, spec, input_shape, n_outputs)
    return MODELS[spec.arch](spec, input_shape, n_outputs)


WEIGHTS_ENV = "BENCH_WEIGHTS_DIR"


def source(arch: str) -> WeightsSource:
    """Where keras.applications publishes the catalog model's ImageNet weights (the zoo table's ``keras_weights``:
    the file ``weights="imagenet"`` downloads, no top)."""
    published = entry(arch).keras_weights
    if published is None:
        raise ValueError(f"{arch}: the zoo table names no published Keras ImageNet weights for it")
    return published


def how_to_provide(arch: str) -> str:
    return (
        f"download {source(arch).where} on a machine with internet and put it in ${WEIGHTS_ENV}/ or "
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
    if folder and (Path(folder) / source(spec.arch).file).is_file():
        return str(Path(folder) / source(spec.arch).file)
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
