"""What an architecture is, for the spec validator and the phases: its options, named layers, weights, notes.

A module of its own so that both the catalog (``bench.core.catalog``) and the zoo table
(``bench.core.zoo``), which the catalog resolves ``zoo:`` ids through, can build these without
importing each other both ways.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
