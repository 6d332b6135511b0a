"""Weights of a zoo architecture converted between its torch and Keras builds (both directions).

Generic, not one mapping per model: both models are walked in a stable order and their weighted layers are
paired kind by kind (the n-th torch convolution with the n-th Keras convolution, the n-th BatchNorm with
the n-th BatchNorm, ...), so layers defined in a different order across kinds (a ConvNeXt block's layer
scale, a residual block's shortcut) still pair up. The classifiers are paired by the table's head names.

- torch: ``named_modules()`` order, every module with parameters of its own (or BatchNorm statistics).
- Keras: the order its code called the layers (``_graph_order``), nested models (ConvNeXt's stem) walked in
  place; a SeparableConv2D is a
  depthwise and a pointwise convolution in that order, as torch writes it.

Layout rules (torch -> Keras; the reverse is their inverse):

- convolution (O, I/groups, kh, kw) -> (kh, kw, I/groups, O), also for grouped Conv2D (ConvNeXt's depthwise);
  into a DepthwiseConv2D (C*m, 1, kh, kw) -> (kh, kw, C, m).
- dense (O, I) -> (I, O); the first dense after a Flatten reads an (H, W, C) map in Keras and a (C, H, W)
  one in torch, so its input rows are reordered (VGG); a Keras 1x1 Conv2D head (MobileNet) gets (1, 1, I, O).
- BatchNorm weight/bias/running_mean/running_var -> gamma/beta/moving_mean/moving_variance; a Keras BatchNorm
  without a scale takes only a torch weight of exactly 1 (difference "keras_bn_no_scale").
- LayerNorm weight/bias -> gamma/beta; ConvNeXt's layer scale gamma -> the LayerScale's variable.
- a Keras bias torch lacks (ResNet's convs, difference "keras_conv_bias") is set to zero.

A pair whose shapes do not fit raises ``ValueError`` naming both layers, their kind and their index.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# isort: off
import torch  # before keras: Keras on TensorFlow loaded first makes a later torch import crash
from torch import nn
import keras
import numpy as np
# isort: on

from bench.core.zoo import ZOO

_BN = nn.modules.batchnorm._BatchNorm
_KERAS_BN_ROLES = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}


@dataclass
class Pair:
    """One torch module and the Keras weights it corresponds to."""

    kind: str  # conv, dense, bn, ln, scale, head
    torch_name: str
    torch_module: nn.Module
    keras_name: str
    keras_layer: Any
    keras_vars: dict[str, Any]  # role (kernel, bias, gamma, ...) -> keras.Variable
    keras_kernel_kind: str = "conv"  # conv | depthwise | dense | conv1x1 (a dense stored as a 1x1 conv)
    flatten_hwc: tuple[int, int, int] | None = None  # the (H, W, C) map a dense after a Flatten reads


def _torch_kind(name: str, module: nn.Module) -> str | None:
    own = [n for n, _ in module.named_parameters(recurse=False)]
    if isinstance(module, nn.Conv2d):
        return "conv"
    if isinstance(module, nn.Linear):
        return "dense"
    if isinstance(module, _BN):
        return "bn"
    if isinstance(module, nn.LayerNorm):
        return "ln"
    if own == ["gamma"]:
        return "scale"
    if own:
        raise ValueError(f"torch module {name} ({type(module).__name__}) has parameters {own} of no known kind")
    return None


def _torch_units(model: nn.Module, head: str) -> dict[str, list[tuple[str, nn.Module]]]:
    units: dict[str, list[tuple[str, nn.Module]]] = {}
    for name, module in model.named_modules():
        kind = _torch_kind(name, module)
        if kind is not None and name != head:
            units.setdefault(kind, []).append((name, module))
    return units


def _graph_order(model: Any) -> list[Any]:
    """The model's operations in the order its code called them, as far as the graph shows it: depth first,
    a tensor's consumers in call order, a merge (Add, Concatenate) once all its inputs are done. Keras's own
    ``model.layers`` sorts by depth, which interleaves the branches of an Inception block; torch's module
    order follows the code, one branch after another."""
    if isinstance(model, keras.Sequential):
        return list(model.layers)
    members = {id(op) for op in model.operations}
    order, done = [], set()
    stack = [t._keras_history.operation for t in reversed(model.inputs)]
    while stack:
        op = stack.pop()
        if id(op) in done:
            continue
        parents = [p.operation for node in op._inbound_nodes for p in node.parent_nodes]
        if any(id(p) in members and id(p) not in done for p in parents):
            continue  # pushed again by its last parent
        done.add(id(op))
        order.append(op)
        consumers = [node.operation for node in op._outbound_nodes if id(node.operation) in members]
        stack.extend(reversed(consumers))
    if len(order) != len(members):
        missing = [op.name for op in model.operations if id(op) not in done]
        raise ValueError(f"{model.name}: operations outside the walk from the inputs: {missing[:5]}")
    return order


def _keras_layers(model: Any) -> list[Any]:
    out = []
    for layer in _graph_order(model):
        if isinstance(layer, keras.Model):
            out.extend(_keras_layers(layer))
        elif isinstance(layer, keras.layers.Layer):
            out.append(layer)
    return out


def _vars(layer: Any, *names: str) -> dict[str, Any]:
    found = {v.name: v for v in layer.weights}
    return {n: found[n] for n in names if n in found}


def _keras_units(model: Any, head: str) -> dict[str, list[tuple[str, Any, dict[str, Any], str]]]:
    """kind -> [(name, layer, variables by role, kernel kind)] in model order, the head left out."""
    units: dict[str, list] = {}
    for layer in _keras_layers(model):
        if not layer.weights or layer.name == head:
            continue
        name = layer.name
        if isinstance(layer, keras.layers.SeparableConv2D):
            units.setdefault("conv", []).append(
                (f"{name}[depthwise]", layer, _vars(layer, "depthwise_kernel"), "depthwise")
            )
            units.setdefault("conv", []).append(
                (f"{name}[pointwise]", layer, _vars(layer, "pointwise_kernel", "bias"), "conv")
            )
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            units.setdefault("conv", []).append((name, layer, _vars(layer, "kernel", "bias"), "depthwise"))
        elif isinstance(layer, keras.layers.Conv2D):
            units.setdefault("conv", []).append((name, layer, _vars(layer, "kernel", "bias"), "conv"))
        elif isinstance(layer, keras.layers.Dense):
            units.setdefault("dense", []).append((name, layer, _vars(layer, "kernel", "bias"), "dense"))
        elif isinstance(layer, keras.layers.BatchNormalization):
            units.setdefault("bn", []).append((name, layer, _vars(layer, *_KERAS_BN_ROLES.values()), "bn"))
        elif isinstance(layer, keras.layers.LayerNormalization):
            units.setdefault("ln", []).append((name, layer, _vars(layer, "gamma", "beta"), "ln"))
        elif type(layer).__name__ == "LayerScale" and len(layer.weights) == 1:
            units.setdefault("scale", []).append((name, layer, {"gamma": layer.weights[0]}, "scale"))
        elif isinstance(layer, keras.layers.Normalization):
            continue  # preprocessing statistics, set by the builder (difference "keras_normalization_stats")
        else:
            raise ValueError(f"Keras layer {name} ({type(layer).__name__}) has weights of no known kind")
    return units


def _flatten_input(layer: Any) -> tuple[int, int, int] | None:
    """(H, W, C) of the map a Flatten right before this Dense flattens; None when its input is not a Flatten."""
    source = layer.input._keras_history.operation
    if isinstance(source, keras.layers.Flatten):
        shape = source.input.shape[1:]
        if len(shape) == 3:
            h, w, c = (int(s) for s in shape)
            return (h, w, c)
    return None


def pairs(torch_model: nn.Module, keras_model: Any, zoo_id: str, heads: tuple[str, str] | None = None) -> list[Pair]:
    """Every torch module paired with its Keras counterpart, in torch order per kind, the heads last.
    ``heads``: (torch, Keras) classifier names when not the library's (the task models' are both ``head``)."""
    entry = ZOO[zoo_id]
    torch_head, keras_head = heads or (entry.torch_head, entry.keras_head)
    t_units, k_units = _torch_units(torch_model, torch_head), _keras_units(keras_model, keras_head)
    out = []
    for kind in sorted(set(t_units) | set(k_units)):
        ts, ks = t_units.get(kind, []), k_units.get(kind, [])
        for i in range(max(len(ts), len(ks))):
            if i >= len(ts) or i >= len(ks):
                extra = ks[i][0] if i < len(ks) else ts[i][0]
                side = "Keras" if i < len(ks) else "torch"
                raise ValueError(
                    f"{zoo_id}: {len(ts)} torch vs {len(ks)} Keras {kind} layers; first unpaired: {side} {extra}"
                )
            (tn, tm), (kn, kl, kv, kk) = ts[i], ks[i]
            pair = Pair(kind, tn, tm, kn, kl, kv, kk)
            if kind == "dense":
                pair.flatten_hwc = _flatten_input(kl)
            out.append(pair)
    head_layer = keras_model.get_layer(keras_head)
    head_kind = "conv1x1" if isinstance(head_layer, keras.layers.Conv2D) else "dense"
    head = Pair(
        "head",
        torch_head,
        torch_model.get_submodule(torch_head),
        keras_head,
        head_layer,
        _vars(head_layer, "kernel", "bias"),
        head_kind,
    )
    if head_kind == "dense":
        head.flatten_hwc = _flatten_input(head_layer)
    out.append(head)
    return out


def _torch_arrays(module: nn.Module) -> dict[str, np.ndarray]:
    arrays = {n: p.detach().cpu().numpy() for n, p in module.named_parameters(recurse=False)}
    if isinstance(module, _BN) and module.running_mean is not None and module.running_var is not None:
        arrays["running_mean"] = module.running_mean.cpu().numpy()
        arrays["running_var"] = module.running_var.cpu().numpy()
    return arrays


def _kernel_to_keras(w: np.ndarray, pair: Pair) -> np.ndarray:
    if pair.keras_kernel_kind == "depthwise":
        c = int(pair.keras_vars[next(iter(pair.keras_vars))].shape[2])
        return w.reshape(c, w.shape[0] // c, *w.shape[2:]).transpose(2, 3, 0, 1)
    if w.ndim == 4:
        return w.transpose(2, 3, 1, 0)
    if pair.flatten_hwc is not None:  # torch flattened (C, H, W), Keras (H, W, C)
        h, wd, c = pair.flatten_hwc
        w = w.reshape(w.shape[0], c, h, wd).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)
    w = w.T
    return w.reshape(1, 1, *w.shape) if pair.keras_kernel_kind == "conv1x1" else w


def _kernel_to_torch(k: np.ndarray, pair: Pair) -> np.ndarray:
    if pair.keras_kernel_kind == "depthwise":
        kh, kw, c, m = k.shape
        return k.transpose(2, 3, 0, 1).reshape(c * m, 1, kh, kw)
    if pair.kind == "conv":
        return k.transpose(3, 2, 0, 1)
    w: np.ndarray = k.reshape(k.shape[-2:]).T
    if pair.flatten_hwc is not None:
        h, wd, c = pair.flatten_hwc
        w = w.reshape(w.shape[0], h, wd, c).transpose(0, 3, 1, 2).reshape(w.shape[0], -1)
    return w


def _roles(pair: Pair) -> dict[str, str]:
    """torch name -> Keras role for this pair's weights."""
    if pair.kind == "bn":
        return _KERAS_BN_ROLES
    if pair.kind == "ln":
        return {"weight": "gamma", "bias": "beta"}
    if pair.kind == "scale":
        return {"gamma": "gamma"}
    kernel = next(r for r in pair.keras_vars if r.endswith("kernel"))
    return {"weight": kernel, "bias": "bias"}


def _fit_error(zoo_id: str, pair: Pair, role: str, got: tuple, want: tuple) -> ValueError:
    return ValueError(
        f"{zoo_id}: {pair.kind} pair torch {pair.torch_name} / Keras {pair.keras_name} does not fit: "
        f"{role} converts to {got}, Keras holds {want}"
    )


def torch_to_keras(torch_model: nn.Module, keras_model: Any, zoo_id: str, heads: tuple[str, str] | None = None) -> None:
    """Copy every torch weight into the Keras model (in place); ``heads`` as for ``pairs``."""
    for pair in pairs(torch_model, keras_model, zoo_id, heads):
        arrays = _torch_arrays(pair.torch_module)
        for t_name, role in _roles(pair).items():
            var = pair.keras_vars.get(role)
            value = arrays.get(t_name)
            if var is None:
                if value is not None and not np.all(value == (1 if role == "gamma" else 0)):
                    raise ValueError(
                        f"{zoo_id}: Keras {pair.keras_name} has no {role}; torch {pair.torch_name}.{t_name} "
                        f"is not the identity value it would have to be"
                    )
                continue
            if value is None:  # a Keras bias torch has none of (difference "keras_conv_bias")
                value = np.zeros(var.shape, np.float32)
            elif role.endswith("kernel"):
                value = _kernel_to_keras(value, pair)
            if tuple(value.shape) != tuple(var.shape):
                raise _fit_error(zoo_id, pair, role, tuple(value.shape), tuple(var.shape))
            var.assign(value.astype(np.float32))


def keras_to_torch(keras_model: Any, torch_model: nn.Module, zoo_id: str, heads: tuple[str, str] | None = None) -> None:
    """Copy every Keras weight into the torch model (in place); the inverse of ``torch_to_keras``."""
    for pair in pairs(torch_model, keras_model, zoo_id, heads):
        tensors: dict[str, torch.Tensor | None] = dict(pair.torch_module.named_parameters(recurse=False))
        if isinstance(pair.torch_module, _BN):
            tensors |= {"running_mean": pair.torch_module.running_mean, "running_var": pair.torch_module.running_var}
        for t_name, role in _roles(pair).items():
            var, tensor = pair.keras_vars.get(role), tensors.get(t_name)
            if tensor is None:
                if var is not None and np.any(keras.ops.convert_to_numpy(var)):
                    raise ValueError(
                        f"{zoo_id}: torch {pair.torch_name} has no {t_name}; Keras {pair.keras_name} is not 0"
                    )
                continue
            if var is None:  # a Keras BatchNorm without a scale: torch's is 1
                value = np.ones(tuple(tensor.shape), np.float32)
            else:
                value = keras.ops.convert_to_numpy(var)
                if role.endswith("kernel"):
                    value = _kernel_to_torch(value, pair)
            if tuple(value.shape) != tuple(tensor.shape):
                raise _fit_error(zoo_id, pair, t_name, tuple(value.shape), tuple(tensor.shape))
            with torch.no_grad():
                tensor.copy_(torch.from_numpy(np.ascontiguousarray(value)))


def convert_file(zoo_id: str, path: Path, n_outputs: int, size: int, out: Path) -> None:
    """A torch state_dict file of the row's library model -> the Keras library model's variables, in
    ``model.weights`` order, as ``out`` (.npz, no pickle): what ``backends.keras.zoo`` loads for pretrained."""
    from backends.keras import zoo as keras_zoo
    from backends.torch import zoo as torch_zoo

    net = torch_zoo.library_model(zoo_id, n_outputs)
    torch_zoo.load_state(net, zoo_id, path)
    lib = keras_zoo.library_model(zoo_id, n_outputs, size)
    try:
        torch_to_keras(net, lib, zoo_id)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    np.savez(out, *[keras.ops.convert_to_numpy(v) for v in lib.weights])


def main(argv: list[str]) -> int:
    """``python -m backends.keras.zoo_convert ZOO_ID TORCH_FILE N_OUTPUTS SIZE OUT.npz`` (Keras on its torch engine:
    the parent may have TensorFlow loaded, and torch must come first in a process with both)."""
    zoo_id, path, n_outputs, size, out = argv
    try:
        convert_file(zoo_id, Path(path), int(n_outputs), int(size), Path(out))
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
