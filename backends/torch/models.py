"""The catalog's layer lists in PyTorch (``build``), the spec's initialisers, and the big models' ImageNet weights.

Every layer list (lenet5, cifar_cnn, a task's ``[model] layers``) by one generic builder from ``torch.nn``
(``sequential``). The big models -- ``zoo:`` ids and the catalog's resnet101 and convnext_tiny, which are zoo
rows under their catalog names -- are built by ``backends.torch.zoo``, whose ``load_pretrained`` brings the
ImageNet weights the zoo table says torchvision or timm publishes into them, found, downloaded and read by
bench itself (below).
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from backends.torch import hub_dir
from bench.core import layers as core_layers
from bench.core.catalog import architecture
from bench.core.spec import ModelSpec
from bench.core.zoo import WEIGHTS_ENV, WeightsSource, entry, in_weights_dir, weights_path

_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
}
_MODULES: dict[str, Callable[[], nn.Module]] = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


class StandaloneActivation(nn.Module):
    """A standalone activation layer of a list.

    Not an ``nn.ReLU`` on purpose: the backend reads a conv's or dense's output after the activation
    module that follows it, which is right for a fused activation (Keras's ``Conv2D(activation=...)``) but
    would be wrong here, where Keras's conv output is the one before this layer.
    """

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _ACTIVATIONS[self.kind](x)

    def extra_repr(self) -> str:
        return self.kind


class GlobalPooling(nn.Module):
    """(N, C, H, W) -> (N, C): the mean or max over the map, as Keras's GlobalAverage/MaxPooling2D."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((2, 3)) if self.kind == "avg" else x.amax((2, 3))

    def extra_repr(self) -> str:
        return self.kind


def _module(layer: core_layers.Layer, shape_in: tuple[int, ...]) -> nn.Module:
    """One list layer as a torch module, reading ``shape_in`` (HWC map or features)."""
    width = shape_in[-1]
    match layer:
        case core_layers.Conv():
            padding = 0 if layer.padding == "valid" else layer.padding
            return nn.Conv2d(width, layer.filters, layer.kernel, stride=layer.stride, padding=padding)
        case core_layers.Pool():
            pool = nn.AvgPool2d if layer.pool == "avg" else nn.MaxPool2d
            return pool(layer.size, layer.step)
        case core_layers.BatchNorm():
            norm = nn.BatchNorm2d if len(shape_in) == 3 else nn.BatchNorm1d
            return norm(width, eps=layer.eps, momentum=layer.momentum)
        case core_layers.Activation():
            return StandaloneActivation(layer.activation)
        case core_layers.Dropout():
            return nn.Dropout(layer.rate)
        case core_layers.Flatten():
            return nn.Flatten()  # (N, C, H, W) -> C, H, W order; backends.convert permutes the next dense
        case core_layers.GlobalPool():
            return GlobalPooling(layer.global_pool)
        case core_layers.Dense():
            return nn.Linear(width, layer.units)
    raise TypeError(f"not a layer: {layer!r}")


def sequential(
    layers: tuple[core_layers.Layer, ...], input_shape: tuple[int, int, int], n_outputs: int
) -> nn.Sequential:
    """Any layer list (bench.core.layers) plus its head, named as the catalog names them.

    A conv's or dense's own activation is the module right after it (``conv1``, ``act1``), as the backend
    expects; the head is a ``Linear`` of ``n_outputs`` logits. Widths come from the framework-free shape
    inference (which also refuses a list whose shapes do not fit, naming the layer).
    """
    shapes = (tuple(input_shape), *core_layers.infer_shapes(layers, input_shape))
    modules: list[tuple[str, nn.Module]] = []
    for layer, (name, act), shape_in in zip(layers, core_layers.names(layers), shapes, strict=False):
        modules.append((name, _module(layer, shape_in)))
        if act and isinstance(layer, core_layers.Conv | core_layers.Dense):  # a fused activation (names)
            modules.append((act, _MODULES[layer.activation]()))
    modules.append((core_layers.head_name(layers), nn.Linear(shapes[-1][-1], n_outputs)))
    return nn.Sequential(OrderedDict(modules))


def build(spec: ModelSpec, input_shape: tuple[int, int, int], n_outputs: int) -> nn.Module:
    """The spec's layer list (lenet5, cifar_cnn, a task's own) as a model.

    The big models (zoo rows, the catalog's resnet101 and convnext_tiny among them) are built by
    ``Backend.build`` through ``zoo.build``, which initialises and loads them itself."""
    arch = architecture(spec)
    if not arch.layers:
        raise ValueError(f"{spec.arch}: a big model, built by backends/torch/zoo.py as zoo row {arch.zoo!r}")
    return sequential(arch.layers, input_shape, n_outputs)


def init_weights(model: nn.Module, init: str) -> None:
    """Keras-compatible initialisers (torch's own default would be kaiming-uniform(a=sqrt(5)))."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            if init == "glorot_uniform":
                nn.init.xavier_uniform_(m.weight)
            elif init == "he_uniform":  # sqrt(6 / fan_in), as keras.initializers.HeUniform
                nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
            elif init == "lecun_uniform":  # sqrt(3 / fan_in)
                nn.init.kaiming_uniform_(m.weight, nonlinearity="linear")
            else:
                raise ValueError(f"unknown init {init!r}")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


# --------------------------------------------------------------------------- ImageNet weights
#
# A weights file may come from anyone (a planted file in a cache, a download from a mirror), and torch's
# pickle format can run code on load. So every file is read HERE, never through a library helper: .pth with
# torch.load(weights_only=True) (tensors and plain containers only), .safetensors with safetensors; and the
# file's SHA-256 is checked wherever the library publishes one (torch.hub's convention: a file name ending in
# "-<hex prefix of its sha256>.<ext>", as torchvision's; the Hugging Face cache keeps a file under its sha256).

_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$")
_SHA256_NAME = re.compile(r"[0-9a-f]{64}")


class WeightsRefused(RuntimeError):
    """A weights file failed its hash or is not a plain tensor file; the message names it and what failed."""


def source(arch: str) -> WeightsSource:
    """Where torch's library publishes the catalog model's ImageNet weights (the zoo table's ``torch_weights``)."""
    published = entry(arch).torch_weights
    if published is None:
        raise ValueError(f"{arch}: the zoo table names no published torch ImageNet weights for it")
    return published


def how_to_provide(arch: str) -> str:
    published = source(arch)
    cache = f" or torch's hub cache ({_hub_checkpoints()}/)" if published.url else ""
    where = (
        f"download {published.where} on a machine with internet and put it in ${WEIGHTS_ENV}/{published.file}{cache}"
    )
    return f'{where}, or name the file in the task: [model] weights = "/path/to/file"'


def _hub_checkpoints() -> Path:
    return hub_dir() / "checkpoints"  # torch.hub.get_dir()'s, as the runner's check computes it without torch


def local_file(spec: ModelSpec, default_name: str) -> Path | None:
    """model.weights, else $BENCH_WEIGHTS_DIR/<the library's file name>, else torch's hub cache (a url source)."""
    if spec.weights:
        path = weights_path(spec.weights)
        if not path.is_file():
            raise FileNotFoundError(f"model.weights: {path} is not a file")
        return path
    hub = _hub_checkpoints() / default_name  # where torch.hub's download puts it
    return in_weights_dir(default_name) or (hub if source(spec.arch).url and hub.is_file() else None)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_hash(path: Path) -> bool:
    """Check ``path`` against the SHA-256 its name publishes (torch.hub's ``-<prefix>.ext`` or a Hugging Face
    blob named by its sha256); raise WeightsRefused when it differs. False: the name publishes none."""
    blob = path.resolve()
    if _SHA256_NAME.fullmatch(blob.name):
        expected = blob.name
    elif m := _HASH_IN_NAME.search(path.name):
        expected = m.group(1)
    else:
        return False
    actual = _sha256(path)
    if not actual.startswith(expected):
        raise WeightsRefused(
            f"{path}: refused: its SHA-256 is {actual}, its name says {expected}...; "
            "the file is damaged or not the published one (delete it and download it again)"
        )
    return True


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors from a weights file, without running any code it may carry (no pickle beyond plain tensors)."""
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise WeightsRefused(f"{path}: reading .safetensors needs the safetensors package") from None
        try:
            return load_file(path, device="cpu")
        except Exception as e:  # safetensors raises its own SafetensorError on a malformed header
            raise WeightsRefused(f"{path}: refused: not a valid safetensors file ({e})") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError for a pickle that wants code, RuntimeError for a non-torch file
        raise WeightsRefused(
            f"{path}: refused: not a plain tensor file (loaded with weights_only=True, nothing in it ran): {_why(e)}"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsRefused(f"{path}: refused: expected a state_dict (names to tensors), got {type(state).__name__}")
    return state


def _why(e: Exception) -> str:
    """What torch refused, without its advice to load the file with pickle enabled."""
    text = str(e).split("WeightsUnpickler error:", 1)[-1]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return (lines[0] if lines else type(e).__name__).split(" was not an allowed global")[0][:200]


def fetch(arch: str) -> Path:
    """Download the library's published file (the download checks the published hash) into its usual cache."""
    published = source(arch)
    if published.url:
        dest = _hub_checkpoints() / published.file
        dest.parent.mkdir(parents=True, exist_ok=True)
        prefix = _HASH_IN_NAME.search(published.file)  # the hash the download must match: the file name's
        if prefix is None:
            raise ValueError(f"{published.file}: no published hash in the file name")
        torch.hub.download_url_to_file(published.url + published.file, str(dest), hash_prefix=prefix[1], progress=False)
        return dest
    from huggingface_hub import hf_hub_download

    return Path(hf_hub_download(published.hf_hub, published.hf_file))
