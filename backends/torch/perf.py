"""PyTorch's own instruments for the performance columns: FLOP counter, a matmul for the peak, the profiler.

Framework work only: bench times the matmul and does the MFU arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

DTYPES = {"fp32": torch.float32, "mixed_bf16": torch.bfloat16, "mixed_fp16": torch.float16}


def forward_flops(model: nn.Module, input_shape: tuple[int, int, int], device: torch.device) -> float:
    """FLOPs of one image's forward pass, counted by ``torch.utils.flop_counter`` (a multiply-add = 2)."""
    h, w, c = input_shape
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, c, h, w, device=device))
    finally:
        model.train(was_training)
    return float(counter.get_total_flops())


def matmul(n: int, precision: str, device: torch.device) -> Callable[[], None]:
    """One n x n matmul in the training precision (the timer around it synchronises the device)."""
    a = torch.randn(n, n, device=device, dtype=DTYPES[precision])
    b = torch.randn(n, n, device=device, dtype=DTYPES[precision])

    def run() -> None:
        torch.mm(a, b)

    return run


def profile_ops_start(device: torch.device) -> Any:
    """Start ``torch.profiler`` (stopped by ``profile_ops_stop``: the training loop's hooks start and stop it)."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    prof = profile(activities=activities)
    prof.start()
    return prof


def profile_ops_stop(prof: Any, device: torch.device, top: int = 10) -> list[dict[str, Any]]:
    """Stop the profiler after the device finished; the top ops by self time."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    prof.stop()
    key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    events = [e for e in prof.key_averages() if getattr(e, key) > 0]
    events.sort(key=lambda e: getattr(e, key), reverse=True)
    return [{"op": e.key, "ms": getattr(e, key) / 1000.0, "calls": e.count} for e in events[:top]]
