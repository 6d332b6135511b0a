"""What the rest of the suite knows about a model: ``Architecture`` (and its ``Option``s).

Its own module so that the catalog (``bench.core.catalog``) and the zoo (``bench.core.zoo``) can both make
Architectures while the catalog delegates ``zoo:`` ids to the zoo, without an import cycle between them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.core.layers import Layer


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
    # where ImageNet weights come from in each library ("" = none: --pretrained is refused)
    pretrained: str = ""
    # known differences between the two libraries' builds, carried into every row's notes
    notes: tuple[str, ...] = ()
    # A layer-list model (bench.core.layers): the list every backend builds, without the head. Empty for
    # a model with builders of its own (resnet101, convnext_tiny, the zoo).
    layers: tuple[Layer, ...] = ()
    # the catalog's list as a function of its options (lenet5's activation, pooling, conv1_padding)
    template: Callable[..., list[dict[str, Any]]] | None = None
    # the zoo row (bench.core.zoo) whose builds these are: every big model, the catalog's included ("" for a list)
    zoo: str = ""
