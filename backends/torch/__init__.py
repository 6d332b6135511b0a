"""The native PyTorch backend: ``backend`` (training, introspection, instruments), ``models`` (the
catalog's builders and their registry), ``input`` (uint8 to the device), ``augment``, ``perf``.

This module only describes the backend (``DESCRIPTIONS``, read by the registry in the runner's
parent process): it must not import torch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bench.core.backend import BackendInfo, CompileCache, DataParallelBatchNorm, PretrainedLookup
from bench.core.cpus import usable_cores
from bench.core.knobs import cpu_threads, knob, value
from bench.core.spec import TaskSpec
from bench.core.zoo import WeightsSource, ZooEntry

# What `bench tune` searches for torch. Compile and layout are one product (inductor picks layouts itself);
# CUDA graphs ("reduce-overhead") need static shapes and a GPU; TF32 is off for torch's matmuls by default
# and on in TF and JAX: a knob, so a tuned row never wins by a precision the other side was not offered.
# fused_optimizer: Adam's / SGD's fused kernel over every parameter tensor at once, where torch's own choice on a CPU is
# a Python loop over the tensors: its cost grows with the tensors, not their size (docs/tuning.md: 1 thread, the loaded
# 2-core VM, 2026-12-06: ResNet-18's 62 tensors, 32 px, batch 32, Adam 87 ms -> 16 ms, the step 318 -> 247 ms; LeNet-5's
# 10, 0.9 -> 0.5 ms of a 73 ms step: nothing to win there).
# threads: torch.set_num_threads (the intra-op pool; its default is the physical cores), on the CPU only.
KNOB_SPACE = (
    knob("compile", value("off"), value("default", ("compiler",), torch_compile=True, compile_mode="default"),
         value("max-autotune", ("compiler",), torch_compile=True, compile_mode="max-autotune-no-cudagraphs"),
         value("reduce-overhead", ("compiler", "cuda"), torch_compile=True, compile_mode="reduce-overhead")),
    knob("channels_last", value("off"), value("on", channels_last=True)),
    knob("precision", value("fp32"), value("bf16", ("bf16",), precision="mixed_bf16"),
         value("fp16", ("fp16",), precision="mixed_fp16")),
    knob("cudnn_benchmark", value("off"), value("on", ("cuda",), cudnn_benchmark=True)),
    knob("tf32", value("off"), value("on", ("cuda",), tf32="on")),
    knob("fused_optimizer", value("off"), value("on", fused_optimizer=True), alone=True),
    cpu_threads(usable_cores()),
)  # fmt: skip


def knob_columns(knobs: dict[str, Any], spec: TaskSpec) -> dict[str, Any]:
    """The torch-only knobs as record columns (the full dict stays in the nested ``knobs``)."""
    rt = spec.runtime
    return {
        "compiled": f"torch.compile ({rt.compile_mode})" if rt.torch_compile else "eager",
        "tf32": f"matmul={knobs.get('tf32_matmul')}, cudnn={knobs.get('tf32_cudnn')}",
        "channels_last": rt.channels_last,
        "cudnn_benchmark": rt.cudnn_benchmark,
        "fused_optimizer": rt.fused_optimizer,
    }


# torch.compile's inductor keeps what it compiles in /tmp/torchinductor_$USER unless $TORCHINDUCTOR_CACHE_DIR
# names a folder, and reads it back in the next process (its FX graph cache, on by default)
INDUCTOR_CACHE = CompileCache("TORCHINDUCTOR_CACHE_DIR", on_when_unset=True)

# ATen's vectorised kernels (and inductor's generated code) for the best instruction set the CPU has, unless
# capped (ATEN_CPU_CAPABILITY=avx2); its convolutions run oneDNN, capped by ONEDNN_MAX_CPU_ISA (DNNL_ before 2.0)
KERNEL_VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")


# Where the worker finds a big model's published ImageNet weights, said without importing torch: the runner's
# parent refuses a run no row could get weights for (bench.run.weightscheck), and ``models`` reads the same folder.
def hub_dir() -> Path:
    """``torch.hub.get_dir()`` as torch computes it (nothing here calls ``set_dir``): ``$TORCH_HOME/hub``,
    ``$TORCH_HOME`` defaulting to ``$XDG_CACHE_HOME/torch`` and that to ``~/.cache``."""
    home = os.getenv("TORCH_HOME", os.path.join(os.getenv("XDG_CACHE_HOME", "~/.cache"), "torch"))
    return Path(os.path.expanduser(home)) / "hub"


def published(row: ZooEntry) -> WeightsSource | None:
    return row.torch_weights


def cached(source: WeightsSource) -> Path | None:
    """The copy the download would return without the network: torch.hub's checkpoint of a url source, the
    Hugging Face cache's snapshot of a hub file (``hf_hub_download`` falls back to it when offline)."""
    if source.url:
        path = hub_dir() / "checkpoints" / source.file
        return path if path.is_file() else None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(source.hf_hub, source.hf_file)
    return Path(found) if isinstance(found, str) else None


def origin(source: WeightsSource) -> str:
    """The URL ``models.fetch`` requests; LookupError where the Hugging Face client cannot download at all."""
    if source.url:
        return source.url + source.file
    try:
        from huggingface_hub import constants, hf_hub_url
    except ImportError:
        raise LookupError("downloading it needs the huggingface_hub package") from None
    if constants.HF_HUB_OFFLINE:
        raise LookupError("HF_HUB_OFFLINE is set")
    return hf_hub_url(source.hf_hub, source.hf_file)


PUBLISHED = PretrainedLookup(published, cached, origin)

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
        pretrained=PUBLISHED,
        # DDP without SyncBatchNorm: each rank normalises its share of the batch; its buffers are rank 0's at each
        # forward's start, then updated from that share (spread 0.061 after a quick 2-worker seed-variant row)
        dist_launch="torchrun",  # c10d rendezvous: torchrun sets RANK, MASTER_ADDR, MASTER_PORT
        dp_batchnorm=DataParallelBatchNorm(
            running_stats="torch DDP broadcasts rank 0's at the start of each forward, and each rank then updates "
            "its own from its share of the batch"
        ),
    ),
)
