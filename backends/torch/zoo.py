"""torch builds of the zoo (``bench.core.zoo``): one generic builder driven by the table.

``library_model`` is the library's own model with its classifier swapped (what the parity tests compare);
``build`` is the task model the backend trains: the same network cut into ``backbone`` (the last feature
map, Grad-CAM's layer) and ``head`` (a fresh Linear; its input is the penultimate feature vector), the
catalog's layer names for big models, so explain, decouple and ``layer_input`` work unchanged.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from backends.torch import models
from bench.core.catalog import architecture
from bench.core.spec import ModelSpec
from bench.core.zoo import ZOO, ZooError, checked_input, convertible, entry

_BN = nn.modules.batchnorm._BatchNorm


def library_model(zoo_id: str, n_classes: int, input_size: int | None = None) -> nn.Module:
    """The row's torchvision/timm model with an ``n_classes`` head, random weights, nothing downloaded.

    ``input_size`` is accepted for symmetry with the Keras builder: the torch builds pool adaptively, so their
    weights do not depend on it (VGG's flatten reads a 7x7 map at any size; Keras's reads the real map, so
    the library VGGs are the same network only at 224; ``build`` aligns them at any size)."""
    del input_size
    row = ZOO[zoo_id]
    kwargs = dict(row.torch_kwargs)
    if row.torch_library == "torchvision":
        constructor = getattr(importlib.import_module("torchvision.models"), row.torch_name)
        model = constructor(weights=None, num_classes=n_classes, **kwargs)
    elif row.torch_library == "timm":
        timm = importlib.import_module("timm")
        model = timm.create_model(row.torch_name, pretrained=False, num_classes=n_classes, **kwargs)
    else:
        raise ValueError(f"zoo row {zoo_id!r}: unknown torch library in {row.torch!r}")
    if row.bn_eps is not None:  # Keras's epsilon, so the two builds normalise alike (difference "bn_eps")
        for module in model.modules():
            if isinstance(module, _BN):
                module.eps = row.bn_eps
    return model


# A library model (LibraryNet: Any) is a timm or torchvision network: its parts are attributes that differ
# per family and that nn.Module's types cannot name.
LibraryNet = Any


# torchvision models have no forward_features/forward_head (timm's): their forward, cut at global pooling.
def _resnet_features(net: LibraryNet, x: torch.Tensor) -> torch.Tensor:
    for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
        x = getattr(net, name)(x)
    return x


def _inception_features(net: LibraryNet, x: torch.Tensor) -> torch.Tensor:
    x = net._transform_input(x)
    for name in (
        "Conv2d_1a_3x3",
        "Conv2d_2a_3x3",
        "Conv2d_2b_3x3",
        "maxpool1",
        "Conv2d_3b_1x1",
        "Conv2d_4a_3x3",
        "maxpool2",
        "Mixed_5b",
        "Mixed_5c",
        "Mixed_5d",
        "Mixed_6a",
        "Mixed_6b",
        "Mixed_6c",
        "Mixed_6d",
        "Mixed_6e",
        "Mixed_7a",
        "Mixed_7b",
        "Mixed_7c",
    ):
        x = getattr(net, name)(x)
    return x


def _pooled(net: LibraryNet, x: torch.Tensor) -> torch.Tensor:
    return torch.flatten(net.avgpool(x), 1)


_TORCHVISION: dict[str, tuple[Callable[..., torch.Tensor], Callable[..., torch.Tensor]]] = {
    "resnet": (_resnet_features, _pooled),
    "densenet": (lambda net, x: F.relu(net.features(x)), lambda net, x: torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)),
    "vgg": (lambda net, x: net.features(x), lambda net, x: net.classifier(_pooled(net, x))),
    "inception": (_inception_features, lambda net, x: torch.flatten(net.dropout(net.avgpool(x)), 1)),
}


class ZooNet(nn.Module):
    """The library model ``net`` (classifier removed), ``backbone`` on its last feature map, a fresh ``head``."""

    def __init__(self, zoo_id: str, net: LibraryNet, input_shape: tuple[int, int, int], n_outputs: int) -> None:
        super().__init__()
        row = ZOO[zoo_id]
        self.net: LibraryNet = net
        # names, not bound methods: a copied or pickled model must call its own net
        self.timm, self.family = row.torch_library == "timm", row.family
        self.backbone = nn.Identity()  # the trunk's output passes through it: the layer Grad-CAM hooks
        h, w, c = input_shape
        net.eval()  # the penultimate width from a dry run (timm's head_hidden_size is not everywhere), in eval
        with torch.no_grad():  # mode: a batch of one in train mode would update (and refuse) the BatchNorms
            width = self._pre_logits(self._features(torch.zeros(1, c, h, w).to(_device(net)))).shape[1]
        net.train()
        self.head = nn.Linear(width, n_outputs)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_features(x) if self.timm else _TORCHVISION[self.family][0](self.net, x)

    def _pre_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_head(x, pre_logits=True) if self.timm else _TORCHVISION[self.family][1](self.net, x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self._pre_logits(self.backbone(self._features(x))))


def _device(net: nn.Module) -> torch.device:
    return next(net.parameters()).device


def _without_classifier(zoo_id: str, net: LibraryNet, input_size: int) -> nn.Module:
    """``net`` with its classifier gone (the head replaces it) and, for VGG, its flatten reading the real map
    as Keras's does (torchvision pools any input to 7x7 first, Keras flattens what the trunk gives)."""
    row = ZOO[zoo_id]
    if row.torch_library == "timm":
        net.reset_classifier(0)
        return net
    net.set_submodule(row.torch_head, nn.Identity())
    if row.family == "vgg" and input_size != row.input_size:
        side = input_size // 32
        net.avgpool = nn.Identity()
        net.classifier[0] = nn.Linear(512 * side * side, net.classifier[0].out_features)
    return net


def init_weights(model: nn.Module, init: str) -> None:
    """The spec's initialiser on every conv/dense kernel, biases zero (``backends.torch.models.init_weights``)."""
    models.init_weights(model, init)


def build(
    zoo_id: str, n_outputs: int, input_shape: tuple[int, int, int], init: str, weights: str | Path | None = None
) -> ZooNet:
    """The task model of zoo row ``zoo_id`` (``"zoo:<id>"`` or bare) for HWC ``input_shape``, ``init`` applied;
    with ``weights`` (a torch state_dict file of the row's library model) the trunk is then loaded from it and
    only the head keeps ``init``."""
    row = checked_input(zoo_id, input_shape)
    h = input_shape[0]
    net = _without_classifier(row.id, library_model(row.id, n_outputs), h)
    model = ZooNet(row.id, net, input_shape, n_outputs)
    init_weights(model, init)
    if weights:
        load_state(model.net, row.id, Path(weights))
    return model


def load_state(net: nn.Module, zoo_id: str, path: Path) -> None:
    """Load a torch state_dict of the row's library model (timm/torchvision keys) into ``net`` (a library
    model, or a task model's ``net``), its classifier left as it is: the file a zoo task names for both
    frameworks, so only rows the converter pairs take one. Read without pickle
    (``backends.torch.models.read_state_dict``)."""
    row = entry(zoo_id)
    if not convertible(row):
        raise ZooError(f"zoo:{row.id}: no pretrained path (the converter cannot pair its torch and Keras layers)")
    if not path.is_file():
        raise FileNotFoundError(f"model.weights: {path} is not a file")
    load_tensors(net, row.id, models.read_state_dict(path), path)


def load_tensors(net: nn.Module, zoo_id: str, state: dict[str, torch.Tensor], path: Path) -> None:
    """``state`` (read from ``path``, the library model's keys) into ``net``, the classifier's tensors skipped.
    A key ``net`` lacks, a tensor that does not fit or one ``net`` has and the file does not raise ZooError
    naming the file and that first layer."""
    row = entry(zoo_id)
    skip = (row.torch_head + ".",)

    def kept(key: str) -> bool:
        return not key.startswith(skip) and not key.endswith("num_batches_tracked")

    own = {k: v for k, v in net.state_dict().items() if kept(k)}
    for key, value in state.items():
        if not kept(key):
            continue
        if key not in own:
            raise ZooError(f"{path}: not zoo:{row.id} weights: {key} is not a layer of {row.torch}")
        if tuple(value.shape) != tuple(own[key].shape):
            raise ZooError(
                f"{path}: not zoo:{row.id} weights: {key} has shape {tuple(value.shape)}, "
                f"{row.torch} holds {tuple(own[key].shape)}"
            )
    missing = [k for k in own if k not in state]
    if missing:
        raise ZooError(f"{path}: not zoo:{row.id} weights: no tensor for {missing[0]} ({len(missing)} missing)")
    net.load_state_dict({k: v for k, v in state.items() if kept(k)}, strict=False)


def load_pretrained(net: nn.Module, spec: ModelSpec) -> str:
    """Load ImageNet weights into a big catalog model's library network (the head keeps its fresh init);
    returns where they came from.

    A local file (``model.weights``, ``$BENCH_WEIGHTS_DIR``, torch's hub cache) is used first, else the
    library's published file (the zoo table's ``torch_weights``) is downloaded; whichever it is, its hash is
    checked where published and it is read without pickle (backends.torch.models). A failed download becomes an error
    that says how to provide the file.
    """
    if not isinstance(net, ZooNet):
        raise TypeError(f"{spec.arch}: pretrained weights load into a big model's build, got {type(net).__name__}")
    path = models.local_file(spec, models.source(spec.arch).file)
    try:
        if path is None:
            path = models.fetch(spec.arch)
    except Exception as e:  # network and hub clients raise many kinds (HTTP, offline, SSL, hash mismatch)
        raise RuntimeError(
            f"--pretrained: could not get ImageNet weights for {spec.arch} ({type(e).__name__}: {e}); "
            f"this machine may have no access to the download. To use a local copy: {models.how_to_provide(spec.arch)}"
        ) from e
    verified = models.verify_hash(path)
    state = models.read_state_dict(path)
    row = architecture(spec).zoo
    try:
        load_tensors(net.net, row, state, path)
    except (RuntimeError, KeyError, ValueError) as e:
        why = str(e).splitlines()[0].removeprefix(f"{path}: ").removeprefix(f"not zoo:{row} weights: ")
        raise models.WeightsRefused(f"{path}: not {spec.arch} ImageNet weights: {why}") from None
    return f"imagenet ({path}{', sha256 verified' if verified else ', no published hash to verify'})"
