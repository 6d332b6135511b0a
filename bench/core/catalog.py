"""The model catalog: which architecture ids exist and which options each takes.

Framework-free on purpose: the spec validator checks a task against this table
without importing torch or keras, and each backend registers one builder per id
(a test checks both backends cover the whole catalog, with equal parameter counts).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from bench.core.architecture import Architecture, Option  # re-exported: the catalog's entries are these

# Initialisations both backends implement identically (rule 3 of DESIGN.md:
# torch's default is kaiming-uniform(a=sqrt(5)), keras's is glorot-uniform; the
# spec always names one, so neither framework's default decides silently).
INITS = ("glorot_uniform", "he_uniform", "lecun_uniform")

ARCHITECTURES: dict[str, Architecture] = {
    a.id: a
    for a in (
        Architecture(
            id="lenet5",
            description="LeNet-5: conv 6@5x5 -> pool -> conv 16@5x5 -> pool -> 120 -> 84 -> classes",
            options={
                "activation": Option(str, "relu", ("relu", "sigmoid", "tanh")),
                "pooling": Option(str, "avg", ("avg", "max"), "2x2 pooling, stride 2"),
                "conv1_padding": Option(int, 2, (0, 2), "2 keeps 28x28 so fc1 sees 16x5x5"),
            },
            last_conv="conv2",
            head="fc3",
            conv_layers=("conv1", "conv2"),
            fc_layers=("fc1", "fc2"),
        ),
        Architecture(
            id="cifar_cnn",
            description="Keras CIFAR-10 tutorial CNN: conv32 -> max -> conv64 -> max -> conv64 -> dense64 -> classes",
            options={
                "activation": Option(str, "relu", ("relu", "sigmoid", "tanh")),
            },
            last_conv="conv3",
            head="fc2",
            conv_layers=("conv1", "conv2", "conv3"),
            fc_layers=("fc1",),
        ),
        Architecture(
            id="resnet101",
            description="ResNet-101 (torchvision.models.resnet101 / keras.applications.ResNet101), no top + head",
            options={},
            last_conv="backbone",  # the whole conv trunk (stem + 4 stages) before global pooling
            head="head",
            pretrained="torchvision ResNet101_Weights.IMAGENET1K_V1 / keras.applications weights='imagenet'",
            notes=(
                "resnet101: keras counts 158,016 parameters more: its convolutions carry biases (52,672; "
                "torchvision's have none) and its count includes the BatchNorm moving mean/variance (105,344, "
                "non-trainable; torch keeps them as buffers)",
                "resnet101: torchvision is ResNet v1.5 (stride 2 on the 3x3 conv of a downsampling block), "
                "keras is v1 (stride 2 on the first 1x1 conv)",
                "resnet101: BatchNorm momentum set to torch's 0.1 in keras (its default 0.99); "
                "BatchNorm epsilon keras 1.001e-5, torch 1e-5",
            ),
        ),
        Architecture(
            id="convnext_tiny",
            description="ConvNeXt-tiny (timm convnext_tiny / keras.applications.ConvNeXtTiny), no top + head",
            options={},
            last_conv="backbone",  # stem + 4 stages, before global pooling and the head's LayerNorm
            head="head",
            pretrained="timm convnext_tiny pretrained=True (Hugging Face hub) / keras.applications weights='imagenet'",
            notes=(
                "convnext_tiny: keras's own preprocessing layer is off (include_preprocessing=False); "
                "the spec's mean/std normalisation is the only preprocessing in both",
                "convnext_tiny: keras builds the depthwise 7x7 convolutions as grouped Conv2D(groups=C), which "
                "keras's TensorFlow backend runs through XLA on a CPU (tf.function(jit_compile=True): the TF "
                "profiler shows them as CpuExecutable::ExecuteAsyncOnStream); timm as nn.Conv2d(groups=C)",
            ),
        ),
    )
}


def architecture(spec_or_arch_id: Any) -> Architecture:
    """The architecture of a model spec or id: a catalog entry, or a zoo row (``zoo:<id>``, bench.core.zoo).
    KeyError naming the known ids otherwise."""
    arch_id = getattr(spec_or_arch_id, "arch", spec_or_arch_id)
    if isinstance(arch_id, str) and arch_id.startswith("zoo:"):
        from bench.core.zoo import ZooError, zoo_architecture  # lazy: the zoo builds on this module

        try:
            return zoo_architecture(arch_id)
        except ZooError as e:
            raise KeyError(str(e)) from None
    if arch_id not in ARCHITECTURES:
        raise KeyError(f"unknown model id {arch_id!r} (expected one of: {', '.join(ARCHITECTURES)}, or zoo:<id>)")
    return ARCHITECTURES[arch_id]


Builder = TypeVar("Builder", bound=Callable[..., Any])


def model_registry() -> tuple[dict[str, Callable[..., Any]], Callable[[Builder], Builder]]:
    """A backend's builder table and its ``@register_model`` decorator (timm's pattern).

    A builder is registered under its function name, which must be a catalog id, so a
    backend cannot build a model the spec validator does not know.
    """
    models: dict[str, Callable[..., Any]] = {}

    def register_model(fn: Builder) -> Builder:
        if fn.__name__ not in ARCHITECTURES:
            raise KeyError(f"{fn.__name__!r} is not a catalog id (known: {', '.join(ARCHITECTURES)})")
        models[fn.__name__] = fn
        return fn

    return models, register_model
