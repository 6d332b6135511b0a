"""The catalog models in Keras, one build for every engine: ``build`` (layer lists) and ``big`` (the big ones).

Every layer list (lenet5, cifar_cnn, a task's ``[model] layers``) by one generic builder from keras layers
(``sequential``). The catalog's resnet101 and convnext_tiny are zoo rows under their catalog names
(``bench.core.zoo``): ``big`` builds them with the zoo's builder (``backends.keras.zoo``: ``backbone`` an
Identity on the last feature map, connected to ``model.inputs`` for Grad-CAM; ``head`` the final Dense),
and with ``--pretrained`` loads the trunk keras.applications publishes (the zoo table's ``keras_weights``).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import keras
from keras import layers

from backends.keras import models_dir
from backends.keras import zoo as keras_zoo
from bench.core import layers as core_layers
from bench.core.catalog import Architecture, architecture
from bench.core.spec import ModelSpec
from bench.core.zoo import WEIGHTS_ENV, WeightsSource, ZooEntry, checked_input, entry, in_weights_dir, weights_path


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
    """The spec's layer list (lenet5, cifar_cnn, a task's own) as a model; big models are built by ``big``
    (the catalog's) and ``zoo.build`` (``zoo:<id>``)."""
    arch = architecture(spec)
    if not arch.layers:
        raise ValueError(f"{spec.arch}: a big model, built as zoo row {arch.zoo!r} (models.big, zoo.build)")
    return sequential(arch, spec, input_shape, n_outputs)


def big(spec: ModelSpec, input_shape: tuple[int, int, int], n_outputs: int) -> keras.Model:
    """A big catalog model: its zoo row's build; with ``spec.pretrained`` the trunk holds keras.applications'
    ImageNet weights and only the head is drawn with the spec's init (else every kernel is)."""
    row = checked_input(architecture(spec).zoo, input_shape)
    lib = keras_zoo.library_model(row.id, n_outputs, input_shape[0])
    if spec.pretrained:
        _copy_trunk(_application(spec, row, input_shape), lib, row)
    return keras_zoo.task_model(lib, row.id, n_outputs, spec.init, trunk=not spec.pretrained)


def _copy_trunk(notop: keras.Model, lib: keras.Model, row: ZooEntry) -> None:
    """The weights of keras.applications' no-top model into the library model ``lib`` (with its top), layer by
    layer name. The no-top ConvNeXt ends in a LayerNormalization of its own name that ``lib`` has in its top
    (normalising the pooled vector, as timm does): what is left over on each side is paired in order."""
    own = {layer.name: layer for layer in lib.layers if layer.weights and layer.name != row.keras_head}
    left = []
    for layer in notop.layers:
        if not layer.weights:
            continue
        if layer.name in own:
            own.pop(layer.name).set_weights(layer.get_weights())
        else:
            left.append(layer)
    if len(left) != len(own):
        raise RuntimeError(
            f"{row.id}: keras.applications' no-top weights do not pair with the build: "
            f"{[x.name for x in left]} against {list(own)}"
        )
    for layer, target in zip(left, own.values(), strict=True):
        target.set_weights(layer.get_weights())


def source(arch: str) -> WeightsSource:
    """Where keras.applications publishes the catalog model's ImageNet weights (the zoo table's ``keras_weights``:
    the file ``weights="imagenet"`` downloads, no top)."""
    published = entry(arch).keras_weights
    if published is None:
        raise ValueError(f"{arch}: the zoo table names no published Keras ImageNet weights for it")
    return published


def how_to_provide(arch: str) -> str:
    """Where a local copy of the published file goes, each place with the file's name: the Keras cache as Keras
    resolves it ($KERAS_HOME respected; the message had said ~/.keras whatever it was set to)."""
    file = source(arch).file
    folder = os.environ.get(WEIGHTS_ENV)
    mine = f"${WEIGHTS_ENV}/{file}" + (f" ({Path(folder) / file})" if folder else "")
    return (
        f"download {source(arch).where} on a machine with internet and put it in {mine} or Keras's cache as "
        f'{models_dir() / file}, or name the file in the task: [model] weights = "/path/to/file"'
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
        path = weights_path(spec.weights)
        if not path.is_file():
            raise FileNotFoundError(f"model.weights: {path} is not a file")
        return str(path)
    found = in_weights_dir(source(spec.arch).file)
    return str(found) if found else "imagenet"  # "imagenet": keras.utils.get_file, its cache's copy first


def _application(spec: ModelSpec, row: ZooEntry, input_shape: tuple[int, int, int]) -> keras.Model:
    """keras.applications' model of the row without its top, holding the ImageNet weights ``_weights_arg`` names."""
    weights = _weights_arg(spec)
    constructor = getattr(keras.applications, row.keras)
    error: Exception | None = None
    with warnings.catch_warnings(record=True) as said:
        # A file that is not the model's weights makes Keras warn once per container it cannot match (ResNet101:
        # ~200 lines) before it raises: the refusal below says what matters; a load that worked keeps its warnings.
        warnings.simplefilter("always")
        try:
            model = constructor(include_top=False, weights=weights, input_shape=input_shape, **dict(row.keras_kwargs))
        except Exception as e:  # keras raises plain Exception for a failed download
            error = e
    if error is None:
        for w in said:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
        return model
    if weights != "imagenet":
        raise RuntimeError(
            f"{weights}: refused as {spec.arch} ImageNet weights ({type(error).__name__}: "
            f"{str(error).splitlines()[0]}); it was read with Keras's weights-only loader, nothing in it ran"
        ) from error
    raise RuntimeError(
        f"--pretrained: could not get ImageNet weights for {spec.arch} ({type(error).__name__}: {error}); "
        f"this machine may have no access to the download. To use a local copy: {how_to_provide(spec.arch)}"
    ) from error
