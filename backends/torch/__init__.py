"""The native PyTorch backend: ``backend`` (training, introspection, instruments), ``models`` (the
catalog's builders and their registry), ``input`` (uint8 to the device), ``augment``, ``perf``.

This module only describes the backend (``DESCRIPTIONS``, read by the registry in the runner's
parent process): it must not import torch.
"""

from __future__ import annotations

from typing import Any

from bench.core.backend import BackendInfo, CompileCache
from bench.core.knobs import knob, value
from bench.core.spec import TaskSpec

# What `bench tune` searches for torch. Compile and layout are one product (inductor picks layouts itself);
# CUDA graphs ("reduce-overhead") need static shapes and a GPU; TF32 is off for torch's matmuls by default
# and on in TF and JAX: a knob, so a tuned row never wins by a precision the other side was not offered.
KNOB_SPACE = (
    knob("compile", value("off"), value("default", ("compiler",), torch_compile=True, compile_mode="default"),
         value("max-autotune", ("compiler",), torch_compile=True, compile_mode="max-autotune-no-cudagraphs"),
         value("reduce-overhead", ("compiler", "cuda"), torch_compile=True, compile_mode="reduce-overhead")),
    knob("channels_last", value("off"), value("on", channels_last=True)),
    knob("precision", value("fp32"), value("bf16", ("bf16",), precision="mixed_bf16"),
         value("fp16", ("fp16",), precision="mixed_fp16")),
    knob("cudnn_benchmark", value("off"), value("on", ("cuda",), cudnn_benchmark=True)),
    knob("tf32", value("off"), value("on", ("cuda",), tf32="on")),
)  # fmt: skip


def knob_columns(knobs: dict[str, Any], spec: TaskSpec) -> dict[str, Any]:
    """The torch-only knobs as record columns (the full dict stays in the nested ``knobs``)."""
    rt = spec.runtime
    return {
        "compiled": f"torch.compile ({rt.compile_mode})" if rt.torch_compile else "eager",
        "tf32": f"matmul={knobs.get('tf32_matmul')}, cudnn={knobs.get('tf32_cudnn')}",
        "channels_last": rt.channels_last,
        "cudnn_benchmark": rt.cudnn_benchmark,
    }


# torch.compile's inductor keeps what it compiles in /tmp/torchinductor_$USER unless $TORCHINDUCTOR_CACHE_DIR
# names a folder, and reads it back in the next process (its FX graph cache, on by default)
INDUCTOR_CACHE = CompileCache("TORCHINDUCTOR_CACHE_DIR", on_when_unset=True)

# ATen's vectorised kernels (and inductor's generated code) for the best instruction set the CPU has, unless
# capped (ATEN_CPU_CAPABILITY=avx2); its convolutions run oneDNN, capped by ONEDNN_MAX_CPU_ISA (DNNL_ before 2.0)
KERNEL_VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")

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
        knob_space=KNOB_SPACE,
        parity_reference=True,  # its state_dict is the reference layout (backends/torch/parity.py)
        compile_cache=INDUCTOR_CACHE,
        kernel_variables=KERNEL_VARIABLES,
    ),
)
