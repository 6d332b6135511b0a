"""The torch backend's ``Parity`` role: its ``state_dict`` is the reference layout; Keras's conventions on request.

Keras's training conventions are the ones a check aligns to (they cannot be switched inside ``fit``), so the
alignments act here: Adam's epsilon moved before the bias correction and its bias corrections rounded as
Keras's float32 ones, BatchNorm's running variance updated with the biased batch variance
(bench.core.parity.ALIGNMENTS).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.core.parity import check_alignments

_BN = nn.modules.batchnorm._BatchNorm
TORCH_BN = (0.1, 1e-5)  # torch's own BatchNorm momentum and epsilon (its defaults, "as shipped")


def keras_adam(opt: torch.optim.Optimizer, eps_inside: bool, fp32_bias: bool) -> Callable[[], None]:
    """Called before each ``opt.step()``: Keras's Adam step from torch's. Keras updates by
    ``lr sqrt(bc2') / bc1' * m / (sqrt(v) + eps)``, its bias corrections bc' = 1 - beta^t in float32 (beta
    rounded to float32 first: 1 - 0.999 is 1.3e-5 off); torch by ``lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps)``,
    bc in float64. With eps_t = eps / sqrt(bc2) (``eps_inside``) and lr_t = lr sqrt(bc2') bc1 / (bc1' sqrt(bc2))
    (``fp32_bias``) they are equal."""
    base = [(g["eps"], g["lr"]) for g in opt.param_groups]
    steps = [0]

    def before_step() -> None:
        steps[0] += 1
        t = steps[0]
        for group, (eps, lr) in zip(opt.param_groups, base, strict=True):
            b1, b2 = group["betas"]
            bc1, bc2 = 1 - b1**t, 1 - b2**t
            bc1_k = float(np.float32(1) - np.float32(b1) ** np.float32(t))
            bc2_k = float(np.float32(1) - np.float32(b2) ** np.float32(t))
            if eps_inside:
                group["eps"] = eps / math.sqrt(bc2)
            if fp32_bias:
                group["lr"] = lr * math.sqrt(bc2_k) * bc1 / (bc1_k * math.sqrt(bc2))

    return before_step


class BiasedRunningVar:
    """Keras's running-variance update for every BatchNorm: a forward hook notes what torch's update added
    beyond it (m var_biased / (n - 1)); ``apply``, after the backward pass (the forward's autograd graph may
    still hold the running variance), takes it back, leaving (1 - m) rv + m var_biased."""

    def __init__(self, modules: Sequence[nn.Module]) -> None:
        self.pending: list[tuple[torch.Tensor, torch.Tensor]] = []
        for m in modules:
            m.register_forward_hook(self._note)

    def _note(self, module: nn.Module, args: tuple[torch.Tensor, ...], _out: torch.Tensor) -> None:
        if not isinstance(module, _BN) or not module.training or module.running_var is None or module.momentum is None:
            return
        x = args[0].detach()
        n = x.numel() // x.shape[1]
        var = x.float().var(dim=[d for d in range(x.ndim) if d != 1], unbiased=False)
        self.pending.append((module.running_var, module.momentum * var / max(n - 1, 1)))

    def apply(self) -> None:
        with torch.no_grad():
            for running_var, excess in self.pending:
                running_var -= excess
        self.pending.clear()


def _chain(*steps: Callable[[], None] | None) -> Callable[[], None] | None:
    todo = [s for s in steps if s is not None]
    if not todo:
        return None

    def run_all() -> None:
        for s in todo:
            s()

    return run_all


def align(state: Any, alignments: tuple[str, ...]) -> None:
    """Apply ``alignments`` to ``state`` (a ``TrainState``) before its first step; the others stay torch's."""
    check_alignments(alignments)
    modules = list(state.model.modules())
    norms = [m for m in modules if isinstance(m, _BN)]
    eps_inside, fp32_bias = "adam_eps" in alignments, "adam_fp32_bias" in alignments
    adam = isinstance(state.optimizer, torch.optim.Adam) and (eps_inside or fp32_bias)
    running_var = BiasedRunningVar(norms) if "bn_running_var" in alignments and norms else None
    adam_step = keras_adam(state.optimizer, eps_inside, fp32_bias) if adam else None
    state.before_step = _chain(adam_step, running_var.apply if running_var is not None else None)
    for m in modules:
        if isinstance(m, _BN):
            if "bn_defaults" not in alignments:
                m.momentum, m.eps = TORCH_BN
        elif isinstance(m, nn.modules.dropout._DropoutNd) and "dropout_off" in alignments:
            m.p = 0.0
