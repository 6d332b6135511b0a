"""The native PyTorch backend: ``backend`` (training, introspection, instruments), ``models`` (the
catalog's builders and their registry), ``input`` (uint8 to the device), ``augment``, ``perf``.

This module only describes the backend (``DESCRIPTIONS``, read by the registry in the runner's
parent process): it must not import torch.
"""

from __future__ import annotations

from typing import Any

from bench.core.backend import BackendInfo
from bench.core.spec import TaskSpec


def knob_columns(knobs: dict[str, Any], spec: TaskSpec) -> dict[str, Any]:
    """The torch-only knobs as record columns (the full dict stays in the nested ``knobs``)."""
    rt = spec.runtime
    return {
        "compiled": "torch.compile" if rt.torch_compile else "eager",
        "tf32": f"matmul={knobs.get('tf32_matmul')}, cudnn={knobs.get('tf32_cudnn')}",
        "channels_last": rt.channels_last,
        "cudnn_benchmark": rt.cudnn_benchmark,
    }


DESCRIPTIONS = (
    BackendInfo(
        name="torch",
        module="backends.torch.backend",
        framework="pytorch",
        requires=("torch", "torchvision"),
        display="PyTorch",
        default=True,
        flop_counter="torch.utils.flop_counter forward x3",
        knob_columns=knob_columns,
        parity_reference=True,  # its state_dict is the reference layout (backends/torch/parity.py)
    ),
)
