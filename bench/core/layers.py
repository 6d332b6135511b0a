"""Small sequential CNNs written once, as a list of layers, and built alike by every backend.

A task's ``[model] layers = [...]`` (and the catalog's lenet5 and cifar_cnn) is parsed here into frozen
dataclasses, checked (each error names ``model.layers[i].key``), and its shapes inferred (HWC in, each
layer's output out), so a list that does not fit says where before any framework is imported. The
backends build from the parsed list only; the names given here (``conv1``, ``pool1``, ``fc1``, ...) are
the layer names in both frameworks, which Grad-CAM, feature maps and the weight converter use.

Framework-free: no torch, no keras. See docs/layers.md for the vocabulary.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh")  # "linear": none (the conv/dense output as it is)
POOL_KINDS = ("avg", "max")
# BatchNorm's running statistics move by ``momentum`` of each batch (torch's convention; keras's momentum
# is 1 - this); one default for both frameworks, never either's own (torch 0.1/1e-5, keras 0.99/1e-3).
BN_MOMENTUM = 0.1
BN_EPS = 1e-5
# Keras built a 2,000-layer list here and ended in a RecursionError at 5,000 (torch built both); plain
# stacks that train are far shallower (VGG-19: 19 weight layers).
MAX_LAYERS = 1_000
MAX_WIDTH = 65_536  # filters, units: a 65,536 x 65,536 dense layer is already 16 GiB of weights
MAX_SPAN = 2_048  # kernel, size, stride, padding: at most the largest image (spec.MAX_IMAGE_SIZE)
MAX_EPS = 1.0  # batchnorm eps, as train.eps: eps = inf or 1e300 took and trained to chance, silently
# A list's parameters, its head's included (``check_params``): 2^30 is 4 GiB of fp32 weights and 16 GiB with their
# gradients and Adam's two moments, 7x VGG-19's 144M (the largest plain stack). A fixed bound, not this machine's
# memory: a task loads alike wherever its rows run (another machine under an executor, a GPU). Until 2026-12-08 a
# 65,536-filter conv flattened into a 65,536-unit dense layer (3.4e12 parameters) loaded and failed in torch's
# allocator, a run folder made.
MAX_PARAMS = 2**30

Shape = tuple[int, ...]  # (H, W, C) for a map, (features,) for a vector


class LayerError(ValueError):
    """A layer list is invalid or its shapes do not fit; the message names ``model.layers[i]`` (and the key)."""


@dataclass(frozen=True)
class Conv:
    """2-D convolution; ``padding`` an int (zeros on every side), "valid" (= 0) or "same" (stride 1 only)."""

    filters: int
    kernel: int
    stride: int = 1
    padding: int | str = 0
    activation: str = "linear"


@dataclass(frozen=True)
class Pool:
    """Average or max pooling over ``size`` x ``size`` windows, no padding; ``stride`` 0 means ``size``."""

    pool: str
    size: int = 2
    stride: int = 0

    @property
    def step(self) -> int:
        return self.stride or self.size


@dataclass(frozen=True)
class BatchNorm:
    """Batch normalisation over channels (on a map) or features (on a vector)."""

    momentum: float = BN_MOMENTUM  # torch's convention: the new batch's weight in the running statistics
    eps: float = BN_EPS


@dataclass(frozen=True)
class Activation:
    """A standalone activation (a conv's or dense's own ``activation`` key fuses it instead)."""

    activation: str


@dataclass(frozen=True)
class Dropout:
    rate: float


@dataclass(frozen=True)
class Flatten:
    """A map to a vector. Frameworks differ in order (torch C,H,W; keras H,W,C): the converter permutes."""


@dataclass(frozen=True)
class GlobalPool:
    """Average or max over the whole map: (H, W, C) -> (C,)."""

    global_pool: str


@dataclass(frozen=True)
class Dense:
    units: int
    activation: str = "linear"


Layer = Conv | Pool | BatchNorm | Activation | Dropout | Flatten | GlobalPool | Dense

# the key that says which layer a table is -> (class, the field that key's value fills, name prefix)
KINDS: dict[str, tuple[type, str, str]] = {
    "conv": (Conv, "filters", "conv"),
    "pool": (Pool, "pool", "pool"),
    "batchnorm": (BatchNorm, "", "bn"),
    "activation": (Activation, "activation", "act"),
    "dropout": (Dropout, "rate", "drop"),
    "flatten": (Flatten, "", "flatten"),
    "global_pool": (GlobalPool, "global_pool", "global_pool"),
    "dense": (Dense, "units", "fc"),
}
_KIND_OF = {cls: kind for kind, (cls, _, _) in KINDS.items()}


def kind(layer: Layer) -> str:
    return _KIND_OF[type(layer)]


# --------------------------------------------------------------------------- parsing


def _show(value: Any) -> str:
    """A value as the TOML file wrote it (strings in double quotes)."""
    return json.dumps(value) if isinstance(value, (str, bool)) else repr(value)


def _positive_int(value: Any, where: str, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LayerError(f"{where}: expected a positive int, got {_show(value)}")
    if value > high:
        raise LayerError(f"{where}: expected a positive int <= {high}, got {_show(value)}")
    return value


def _choice(value: Any, choices: tuple[str, ...], where: str) -> str:
    if value not in choices or not isinstance(value, str):
        raise LayerError(f"{where}: expected one of {', '.join(map(json.dumps, choices))}, got {_show(value)}")
    return value


def _check_value(kind_name: str, key: str, value: Any, where: str) -> Any:
    """One value, checked: what a layer of ``kind_name`` accepts for its field ``key``."""
    if key == "activation":
        return _choice(value, ACTIVATIONS, where)
    if key in ("pool", "global_pool"):
        return _choice(value, POOL_KINDS, where)
    if key == "padding":
        if isinstance(value, str):
            return _choice(value, ("same", "valid"), where)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise LayerError(f'{where}: expected an int >= 0, "same" or "valid", got {_show(value)}')
        if value > MAX_SPAN:
            raise LayerError(f"{where}: expected an int <= {MAX_SPAN}, got {_show(value)}")
        return value
    if key == "stride" and kind_name == "pool":
        return 0 if value == 0 and not isinstance(value, bool) else _positive_int(value, where, MAX_SPAN)
    if key in ("batchnorm", "flatten"):
        if value is not True:
            raise LayerError(f"{where}: expected true, got {_show(value)}")
        return value
    if key in ("momentum", "rate"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise LayerError(f"{where}: expected a number in [0, 1), got {_show(value)}")
        if key == "momentum" and value == 0:  # torch's convention: the batch's weight; Keras's momentum 1 - 0
            raise LayerError(
                f"{where}: expected a number in (0, 1), got 0 (the running statistics would never move from mean 0, "
                "variance 1, and the evaluation normalises with them)"
            )
        return float(value)
    if key == "eps":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise LayerError(f"{where}: expected a number > 0, got {_show(value)}")
        if not value <= MAX_EPS:
            raise LayerError(f"{where}: expected a number in (0, {MAX_EPS:g}], got {_show(value)}")
        return float(value)
    high = MAX_WIDTH if key in ("filters", "units") else MAX_SPAN  # kernel, stride, size: MAX_SPAN
    return _positive_int(value, where, high)


def parse_layer(table: Any, where: str) -> Layer:
    """One TOML table (``{ conv = 6, kernel = 5 }``) -> its layer, or a LayerError naming ``where.key``."""
    if not isinstance(table, dict):
        raise LayerError(f"{where}: expected a table such as {{ conv = 6, kernel = 5 }}, got {_show(table)}")
    present = [k for k in table if k in KINDS]
    if len(present) > 1 and "activation" in present:  # a conv's or dense's own activation key
        present.remove("activation")
    if len(present) != 1:
        what = "no layer kind among keys" if not present else "more than one layer kind:"
        shown = "{" + ", ".join(repr(k) for k in (present or table)) + "}"
        raise LayerError(f"{where}: {what} {shown}; a layer has exactly one of {', '.join(KINDS)}")
    kind_name = present[0]
    cls, main, _ = KINDS[kind_name]
    allowed = [kind_name, *(f.name for f in fields(cls) if f.name != main)]
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        if key not in allowed:
            expected = ", ".join(allowed)
            raise LayerError(f"{where}.{key}: unknown key for a {kind_name} layer (expected one of: {expected})")
        field_name = main if key == kind_name else key  # conv = 6 fills filters, dropout = 0.1 rate
        checked = _check_value(kind_name, field_name or key, value, f"{where}.{key}")
        if field_name:
            kwargs[field_name] = checked
    if kind_name == "conv":
        if "kernel" not in kwargs:
            raise LayerError(f"{where}.kernel: missing (a conv layer needs its kernel size, e.g. kernel = 3)")
        if kwargs.get("padding") == "same" and kwargs.get("stride", 1) != 1:
            raise LayerError(f'{where}.padding: "same" needs stride = 1 (a strided "same" pads unevenly in TF)')
    return cls(**kwargs)


def parse_layers(items: Any, where: str = "model.layers") -> tuple[Layer, ...]:
    """A TOML array of tables -> layers. Shapes are checked separately (``infer_shapes``): they need the input."""
    if not isinstance(items, (list, tuple)) or not items:
        raise LayerError(f"{where}: expected a non-empty array of layer tables, got {_show(items)}")
    if len(items) > MAX_LAYERS:
        raise LayerError(
            f"{where}: {len(items):,} layers; at most {MAX_LAYERS:,} (Keras's build recursed past Python's limit "
            "at 5,000)"
        )
    layers = tuple(parse_layer(t, f"{where}[{i}]") for i, t in enumerate(items))
    if not any(isinstance(layer, Conv) for layer in layers):
        raise LayerError(f"{where}: needs at least one conv layer (Grad-CAM's and the feature maps' layer)")
    return layers


def to_table(layer: Layer) -> dict[str, Any]:
    """A layer as its canonical TOML table (every key, defaults included): ``parse_layer`` of it gives it back."""
    kind_name = kind(layer)
    _, main, _ = KINDS[kind_name]
    out: dict[str, Any] = {kind_name: getattr(layer, main) if main else True}
    out.update({f.name: getattr(layer, f.name) for f in fields(layer) if f.name != main})
    return out


def describe(layer: Layer) -> str:
    """Short words for one layer in messages: ``conv 16@5x5``, ``max pool 2x2``, ``dense 120``."""
    match layer:
        case Conv(filters=f, kernel=k):
            return f"conv {f}@{k}x{k}"
        case Pool(pool=p, size=s):
            return f"{p} pool {s}x{s}"
        case Dense(units=u):
            return f"dense {u}"
        case GlobalPool(global_pool=p):
            return f"global {p} pool"
        case Activation(activation=a):
            return a
        case Dropout(rate=r):
            return f"dropout {r:g}"
    return kind(layer)


# --------------------------------------------------------------------------- names


def names(layers: tuple[Layer, ...]) -> tuple[tuple[str, str], ...]:
    """(layer name, name of its fused activation or "") per layer, counted per kind.

    conv1, conv2, ...; pool1, ...; bn1, ...; drop1, ...; fc1, ... (hidden dense); flatten / global_pool (at
    most one). Activations are numbered act1, act2, ... in list order, the fused ones (a conv's or dense's
    ``activation``; torch builds them as their own module, keras inside the layer) and standalone ones alike.
    """
    counts: dict[str, int] = {}
    out = []
    for layer in layers:
        prefix = KINDS[kind(layer)][2]
        counts[prefix] = counts.get(prefix, 0) + 1
        name = prefix if isinstance(layer, (Flatten, GlobalPool)) else f"{prefix}{counts[prefix]}"
        act = ""
        if isinstance(layer, (Conv, Dense)) and layer.activation != "linear":
            counts["act"] = counts.get("act", 0) + 1
            act = f"act{counts['act']}"
        out.append((name, act))
    return tuple(out)


def head_name(layers: tuple[Layer, ...]) -> str:
    """The classifier's name: the dense after the list's own (lenet5: fc3, cifar_cnn: fc2)."""
    return f"fc{sum(isinstance(layer, Dense) for layer in layers) + 1}"


def map_layers(layers: tuple[Layer, ...]) -> tuple[str, ...]:
    """The layers whose output is a map (every one before the flatten or global_pool), by name: those Grad-CAM
    can read (``explain.layer``). A fused activation (``act1`` after ``conv1``) is no layer of its own in
    Keras; its conv's name gives the map after it in every backend."""
    end = next((i for i, layer in enumerate(layers) if isinstance(layer, (Flatten, GlobalPool))), len(layers))
    return tuple(name for name, _ in names(layers)[:end])


# --------------------------------------------------------------------------- shapes and parameters


def _where(i: int, layer: Layer) -> str:
    return f"model.layers[{i}] ({describe(layer)})"


def _size(shape: Shape) -> str:
    return "x".join(map(str, shape[:2])) if len(shape) == 3 else f"{shape[0]} features"


def _output(i: int, layer: Layer, shape: Shape) -> Shape:
    """One layer's output shape, or a LayerError that says where and why it does not fit."""
    is_map = len(shape) == 3
    if isinstance(layer, (Conv, Pool, Flatten, GlobalPool)) and not is_map:
        hint = "flatten once, after the last conv/pool" if isinstance(layer, Flatten) else "put it before the flatten"
        raise LayerError(f"{_where(i, layer)}: input is already flat ({_size(shape)}); {hint}")
    if isinstance(layer, Dense) and is_map:
        raise LayerError(
            f"{_where(i, layer)}: input is a {'x'.join(map(str, shape))} map; add {{ flatten = true }} or "
            '{ global_pool = "avg" } before it'
        )
    if isinstance(layer, Conv):
        h, w, _ = shape
        if layer.padding == "same":
            return (h, w, layer.filters)
        pad = 0 if layer.padding == "valid" else int(layer.padding)
        if min(h, w) + 2 * pad < layer.kernel:
            padded = f" ({h + 2 * pad}x{w + 2 * pad} with padding {pad})" if pad else ""
            raise LayerError(f"{_where(i, layer)}: input is {h}x{w}{padded}, smaller than the kernel")
        return (
            (h + 2 * pad - layer.kernel) // layer.stride + 1,
            (w + 2 * pad - layer.kernel) // layer.stride + 1,
            layer.filters,
        )
    if isinstance(layer, Pool):
        h, w, c = shape
        if min(h, w) < layer.size:
            raise LayerError(f"{_where(i, layer)}: input is {h}x{w}, smaller than the pooling window")
        return ((h - layer.size) // layer.step + 1, (w - layer.size) // layer.step + 1, c)
    if isinstance(layer, Flatten):
        return (shape[0] * shape[1] * shape[2],)
    if isinstance(layer, GlobalPool):
        return (shape[2],)
    if isinstance(layer, Dense):
        return (layer.units,)
    return shape  # batch norm, activation, dropout


def infer_shapes(layers: tuple[Layer, ...], input_shape: tuple[int, int, int]) -> tuple[Shape, ...]:
    """Each layer's output shape for an HWC input; a LayerError names the first layer that does not fit."""
    shape: Shape = tuple(input_shape)
    out = []
    for i, layer in enumerate(layers):
        shape = _output(i, layer, shape)
        out.append(shape)
    if len(shape) == 3:
        raise LayerError(
            f"model.layers: the list ends on a {'x'.join(map(str, shape))} map; the head (a dense layer) needs a "
            'vector: add { flatten = true } or { global_pool = "avg" } after the last conv/pool'
        )
    return tuple(out)


def flatten_input(layers: tuple[Layer, ...], input_shape: tuple[int, int, int]) -> tuple[int, int, int] | None:
    """The (H, W, C) map a Flatten layer reads (the converter's permutation), or None without one."""
    shapes = (input_shape, *infer_shapes(layers, input_shape))
    i = next((i for i, layer in enumerate(layers) if isinstance(layer, Flatten)), None)
    if i is None:
        return None
    h, w, c = shapes[i]  # a Flatten's input is a map (infer_shapes rejects a flat one)
    return (h, w, c)


def layer_params(layers: tuple[Layer, ...], input_shape: tuple[int, int, int]) -> tuple[int, ...]:
    """Each layer's trainable parameters for an HWC input (0 for pooling, activation, dropout, flatten)."""
    shapes = infer_shapes(layers, input_shape)
    out = []
    previous: Shape = tuple(input_shape)
    for layer, shape in zip(layers, shapes, strict=True):
        width = previous[-1]  # channels of a map, features of a vector
        if isinstance(layer, Conv):
            out.append(layer.kernel * layer.kernel * width * layer.filters + layer.filters)
        elif isinstance(layer, Dense):
            out.append(width * layer.units + layer.units)
        elif isinstance(layer, BatchNorm):
            out.append(2 * width)
        else:
            out.append(0)
        previous = shape
    return tuple(out)


def param_counts(layers: tuple[Layer, ...], input_shape: tuple[int, int, int], n_outputs: int) -> tuple[int, int]:
    """(trainable parameters, BatchNorm running statistics) of the list plus its head, framework-free.

    torch counts the first (its running mean/variance are buffers); keras's ``count_params`` both (its
    moving mean/variance are non-trainable weights).
    """
    own = layer_params(layers, input_shape)
    # a BatchNorm's running mean and variance: as many as its scale and shift
    stats = sum(n for layer, n in zip(layers, own, strict=True) if isinstance(layer, BatchNorm))
    features = infer_shapes(layers, input_shape)[-1][-1]
    return sum(own) + features * n_outputs + n_outputs, stats


def check_params(layers: tuple[Layer, ...], input_shape: tuple[int, int, int], n_outputs: int) -> None:
    """LayerError where the list and its head have more than MAX_PARAMS parameters, naming the largest layer (the
    head's name where it is that) and both counts: refused when the shape is known, before any framework allocates
    them. ``n_outputs`` may be a lower bound (1) where the classes are not known yet."""
    own = layer_params(layers, input_shape)
    total = param_counts(layers, input_shape, n_outputs)[0]
    head = total - sum(own)
    if total <= MAX_PARAMS:
        return
    i = max(range(len(own)), key=own.__getitem__)
    where, most = (
        (_where(i, layers[i]), own[i]) if own[i] >= head else (f"model.layers: the head ({head_name(layers)})", head)
    )
    raise LayerError(
        f"{where}: {most:,} parameters, at least {total:,} in the model: more than the {MAX_PARAMS:,} a layer "
        "list may have (a fixed bound, whatever the machine: 4 GiB of fp32 weights, 16 GiB with their gradients and "
        "Adam's moments)"
    )
