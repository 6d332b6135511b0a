"""The model catalog: which architecture ids exist and which options each takes.

Framework-free on purpose: the spec validator checks a task against this table
without importing torch or keras, and each backend registers one builder per id
(a test checks both backends cover the whole catalog, with equal parameter counts).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar


@dataclass(frozen=True)
class Option:
    """One architecture option: its type, default and (optionally) allowed values."""

    type: type
    default: Any
    choices: tuple[Any, ...] = ()
    help: str = ""


@dataclass(frozen=True)
class Architecture:
    id: str
    description: str
    options: dict[str, Option]
    last_conv: str  # default Grad-CAM target layer, named the same in both backends
    head: str  # the final (classifier) layer; its input is the penultimate feature vector
    # Layers whose post-activation outputs are drawn (feature maps, fully connected activations);
    # empty for big models, where a picture of every layer would say little.
    conv_layers: tuple[str, ...] = ()
    fc_layers: tuple[str, ...] = ()  # hidden ones (the head's logits are not an activation)


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
    )
}


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
