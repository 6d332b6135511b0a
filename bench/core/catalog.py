"""The model catalog: which architecture ids exist, which options each takes, and how a model is resolved.

Framework-free on purpose: the spec validator checks a task against this table without importing torch
or keras. ``architecture(spec)`` is the one way the suite looks a model up: a catalog id (lenet5 and
cifar_cnn are layer lists, ``bench.core.layers``, their options substituted in), ``"layers"`` (the task's
own ``[model] layers = [...]``) or ``"zoo:<id>"`` (delegated to ``bench.core.zoo``). The big models
(resnet101, convnext_tiny) are zoo rows under their catalog names (``Architecture.zoo``): one registry of
ImageNet architectures, built by each backend's zoo builder, with the ImageNet weights each library
publishes named in the zoo table; every layer list is built by each backend's one generic builder.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

from bench.core.architecture import Architecture, Option
from bench.core.layers import BatchNorm, Conv, Dense, Layer, describe, head_name, parse_layers
from bench.core.layers import names as layer_names
from bench.core.zoo import imagenet_weights

__all__ = ["ARCHITECTURES", "INITS", "Architecture", "Option", "architecture"]

# Initialisations both backends implement identically (rule 3 of DESIGN.md:
# torch's default is kaiming-uniform(a=sqrt(5)), keras's is glorot-uniform; the
# spec always names one, so neither framework's default decides silently).
INITS = ("glorot_uniform", "he_uniform", "lecun_uniform")


def lenet5_layers(activation: str = "relu", pooling: str = "avg", conv1_padding: int = 2) -> list[dict[str, Any]]:
    """LeNet-5 as a layer list; its catalog options are substitutions into it."""
    return [
        {"conv": 6, "kernel": 5, "padding": conv1_padding, "activation": activation},
        {"pool": pooling, "size": 2},
        {"conv": 16, "kernel": 5, "activation": activation},
        {"pool": pooling, "size": 2},
        {"flatten": True},
        {"dense": 120, "activation": activation},
        {"dense": 84, "activation": activation},
    ]


def cifar_cnn_layers(activation: str = "relu") -> list[dict[str, Any]]:
    """The Keras CIFAR-10 tutorial CNN as a layer list."""
    return [
        {"conv": 32, "kernel": 3, "activation": activation},
        {"pool": "max", "size": 2},
        {"conv": 64, "kernel": 3, "activation": activation},
        {"pool": "max", "size": 2},
        {"conv": 64, "kernel": 3, "activation": activation},
        {"flatten": True},
        {"dense": 64, "activation": activation},
    ]


def mnist_cnn_layers(activation: str = "relu") -> list[dict[str, Any]]:
    """The MNIST example CNN both frameworks ship (pytorch/examples mnist/main.py, Keras's mnist_cnn.py)."""
    return [
        {"conv": 32, "kernel": 3, "activation": activation},
        {"conv": 64, "kernel": 3, "activation": activation},
        {"pool": "max", "size": 2},
        {"dropout": 0.25},
        {"flatten": True},
        {"dense": 128, "activation": activation},
        {"dropout": 0.5},
    ]


LAYERS_ID = "layers"  # the arch id of a task that writes its own [model] layers = [...]
ZOO_PREFIX = "zoo:"  # "zoo:<id>": a row of bench.core.zoo


# carried into every row of a list with batch norm (as the big models' notes)
BN_NOTE = (
    "batchnorm: keras's parameter count includes the BatchNorm moving mean/variance (non-trainable; torch keeps "
    "them as buffers); momentum and epsilon are set from the list in both (torch momentum m = keras 1 - m); "
    "in training torch updates the running variance with the unbiased batch variance, keras with the biased one"
)


def from_layers(
    arch_id: str,
    layer_list: tuple[Layer, ...],
    description: str = "",
    options: dict[str, Option] | None = None,
    template: Callable[..., list[dict[str, Any]]] | None = None,
) -> Architecture:
    """The Architecture of a layer list: Grad-CAM's layer, the drawn layers and the head, from its names."""
    named = layer_names(layer_list)
    convs = tuple(n for (n, _), layer in zip(named, layer_list, strict=True) if isinstance(layer, Conv))
    denses = tuple(n for (n, _), layer in zip(named, layer_list, strict=True) if isinstance(layer, Dense))
    bn = any(isinstance(layer, BatchNorm) for layer in layer_list)
    return Architecture(
        id=arch_id,
        description=description or f"{len(layer_list)}-layer list: " + " -> ".join(map(describe, layer_list)),
        options=options or {},
        last_conv=convs[-1],
        head=head_name(layer_list),
        conv_layers=convs,
        fc_layers=denses,
        notes=(BN_NOTE,) if bn else (),
        layers=layer_list,
        template=template,
    )


_ACTIVATION = Option(str, "relu", ("relu", "sigmoid", "tanh"))

ARCHITECTURES: dict[str, Architecture] = {
    a.id: a
    for a in (
        from_layers(
            "lenet5",
            parse_layers(lenet5_layers()),
            "LeNet-5: conv 6@5x5 -> pool -> conv 16@5x5 -> pool -> 120 -> 84 -> classes",
            {
                "activation": _ACTIVATION,
                "pooling": Option(str, "avg", ("avg", "max"), "2x2 pooling, stride 2"),
                "conv1_padding": Option(int, 2, (0, 2), "2 keeps 28x28 so fc1 sees 16x5x5"),
            },
            lenet5_layers,
        ),
        from_layers(
            "cifar_cnn",
            parse_layers(cifar_cnn_layers()),
            "Keras CIFAR-10 tutorial CNN: conv32 -> max -> conv64 -> max -> conv64 -> dense64 -> classes",
            {"activation": _ACTIVATION},
            cifar_cnn_layers,
        ),
        from_layers(
            "mnist_cnn",
            parse_layers(mnist_cnn_layers()),
            "the PyTorch and Keras MNIST example CNN: conv32 -> conv64 -> max -> drop .25 -> dense128 -> drop .5 "
            "-> classes",
            {"activation": _ACTIVATION},
            mnist_cnn_layers,
        ),
        Architecture(
            id="resnet101",
            description="ResNet-101 (torchvision.models.resnet101 / keras.applications.ResNet101), classifier -> head",
            options={},
            last_conv="backbone",  # the whole conv trunk (stem + 4 stages) before global pooling
            head="head",
            pretrained=imagenet_weights("resnet101"),
            notes=(
                "resnet101: keras counts 158,016 parameters more: its convolutions carry biases (52,672; "
                "torchvision's have none) and its count includes the BatchNorm moving mean/variance (105,344, "
                "non-trainable; torch keeps them as buffers)",
                "resnet101: torchvision is ResNet v1.5 (stride 2 on the 3x3 conv of a downsampling block), "
                "keras is v1 (stride 2 on the first 1x1 conv)",
                "resnet101: BatchNorm momentum set to torch's 0.1 in keras (its default 0.99); "
                "BatchNorm epsilon set to keras's 1.001e-5 in torch (its default 1e-5)",
                "resnet101: built as the zoo row zoo:resnet101 (the library models, their classifier replaced)",
            ),
            zoo="resnet101",
        ),
        Architecture(
            id="convnext_tiny",
            description="ConvNeXt-tiny (timm convnext_tiny / keras.applications.ConvNeXtTiny), classifier -> head",
            options={},
            last_conv="backbone",  # stem + 4 stages, before global pooling and the head's LayerNorm
            head="head",
            pretrained=imagenet_weights("convnext_tiny"),
            notes=(
                "convnext_tiny: keras's own preprocessing layer is off (include_preprocessing=False); "
                "the spec's mean/std normalisation is the only preprocessing in both",
                "convnext_tiny: keras builds the depthwise 7x7 convolutions as grouped Conv2D(groups=C), which "
                "keras's TensorFlow backend runs through XLA on a CPU (tf.function(jit_compile=True): the TF "
                "profiler shows them as CpuExecutable::ExecuteAsyncOnStream); timm as nn.Conv2d(groups=C)",
                "convnext_tiny: built as the zoo row zoo:convnext_tiny (the library models, their classifier replaced)",
            ),
            zoo="convnext_tiny",
        ),
    )
}


def architecture(model: Any) -> Architecture:
    """The Architecture of a TaskSpec's or ModelSpec's model, or of an arch id (its default options).

    A catalog layer list comes with its options substituted (``layers``, names, Grad-CAM layer); ``"layers"``
    is the spec's own list; ``"zoo:<id>"`` is ``bench.core.zoo.zoo_architecture(<id>)``. An unknown id is a
    KeyError that lists the known ones.
    """
    model = getattr(model, "model", model)  # a TaskSpec -> its ModelSpec
    if isinstance(model, str):
        return _resolve(model, (), ())
    return _resolve(model.arch, tuple(model.options), tuple(getattr(model, "layers", ())))


@functools.lru_cache(maxsize=256)
def _resolve(arch_id: str, options: tuple[tuple[str, Any], ...], tables: tuple[Any, ...]) -> Architecture:
    if arch_id.startswith(ZOO_PREFIX):
        from bench.core.zoo import ZooError, zoo_architecture  # lazy: the zoo builds Architectures too

        try:
            return zoo_architecture(arch_id)
        except ZooError as e:
            raise KeyError(str(e)) from None
    if arch_id == LAYERS_ID:
        if not tables:
            raise KeyError(f"model {LAYERS_ID!r} needs its list: [model] layers = [...]")
        return from_layers(LAYERS_ID, parse_layers([dict(t) for t in tables]))
    if arch_id not in ARCHITECTURES:
        raise KeyError(
            f"unknown model id {arch_id!r} (expected one of: {', '.join(ARCHITECTURES)}, {LAYERS_ID} "
            f"with [model] layers, or {ZOO_PREFIX}<id>)"
        )
    arch = ARCHITECTURES[arch_id]
    if arch.template is None:
        return arch
    values = {**{name: opt.default for name, opt in arch.options.items()}, **dict(options)}
    return dataclasses.replace(arch, layers=parse_layers(arch.template(**values), f"model {arch_id}"))
