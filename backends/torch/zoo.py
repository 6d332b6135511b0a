"""torch builds of the zoo (``bench.core.zoo``): one generic builder driven by the table, random init."""

from __future__ import annotations

import importlib

from torch import nn

from bench.core.zoo import ZOO


def build(zoo_id: str, n_classes: int, input_size: int | None = None) -> nn.Module:
    """The row's torchvision/timm model with an ``n_classes`` head, random weights, nothing downloaded.

    ``input_size`` is accepted for symmetry with the Keras builder: the torch builds pool adaptively, so their
    weights do not depend on it (VGG's flatten reads a 7x7 map at any size; Keras's reads the real map, so
    VGG is the same network only at 224)."""
    del input_size
    entry = ZOO[zoo_id]
    kwargs = dict(entry.torch_kwargs)
    if entry.torch_library == "torchvision":
        constructor = getattr(importlib.import_module("torchvision.models"), entry.torch_name)
        model = constructor(weights=None, num_classes=n_classes, **kwargs)
    elif entry.torch_library == "timm":
        timm = importlib.import_module("timm")
        model = timm.create_model(entry.torch_name, pretrained=False, num_classes=n_classes, **kwargs)
    else:
        raise ValueError(f"zoo row {zoo_id!r}: unknown torch library in {entry.torch!r}")
    if entry.bn_eps is not None:  # Keras's epsilon, so the two builds normalise alike (difference "bn_eps")
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eps = entry.bn_eps
    return model
