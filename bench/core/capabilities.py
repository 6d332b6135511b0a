"""What this machine can run, probed without importing a framework (the tuner's parent reads it).

The knob values of a backend (``bench.core.knobs``) name the capabilities they need; a value
whose capability is missing becomes a skipped configuration that says why, never a crashed
row. The answers are recorded with the tuning run (``tune.json``), with how each was found.

- ``cuda``: an NVIDIA device node and ``nvidia-smi`` answering, and the task not pinned to the CPU.
- ``bf16``: bfloat16 arithmetic in hardware: on a CUDA GPU compute capability 8.0 or newer (Ampere);
  on the CPU the AVX512-BF16 or AMX-BF16 instructions. Without them bf16 is emulated, slower than
  fp32 by construction, and a "best" bf16 row would only measure the emulation.
- ``fp16``: half precision with loss scaling, offered on CUDA only (a CPU has no fast fp16 path
  in these frameworks' training kernels).
- ``compiler``: a C/C++ compiler on PATH: torch.compile's inductor generates C++ on the CPU.
- ``cpu``: the rows train on the CPU (no ``cuda``): what a CPU-only knob (the threads a row trains on) needs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

CAPABILITIES = ("cuda", "bf16", "fp16", "compiler", "cpu")


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return set()
    for line in cpuinfo.splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.partition(":")[2].split())
    return set()


def gpu_compute_capability() -> float | None:
    """The first NVIDIA GPU's compute capability, or None when there is no GPU (or no nvidia-smi)."""
    smi = shutil.which("nvidia-smi")
    if smi is None or not (Path("/dev/nvidiactl").exists() or os.environ.get("CUDA_VISIBLE_DEVICES")):
        return None
    try:
        out = subprocess.run(
            [smi, "--query-gpu=compute_cap", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout.split()
        return float(out[0]) if out else None
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def probe(device: str = "auto", cpuinfo: str | None = None, gpu_cc: float | None = -1.0) -> dict[str, Any]:
    """{capability: bool} plus ``how`` (one line per answer) for a task's ``runtime.device``.

    ``cpuinfo`` and ``gpu_cc`` (-1: ask nvidia-smi) let a test describe another machine.
    """
    cc = gpu_compute_capability() if gpu_cc == -1.0 else gpu_cc
    cuda = cc is not None and device != "cpu"
    flags = cpu_flags(cpuinfo)
    cpu_bf16 = sorted(flags & {"avx512_bf16", "amx_bf16"})
    compiler = shutil.which("c++") or shutil.which("g++") or shutil.which("cc")
    answers = {
        "cuda": cuda,
        "bf16": (cc is not None and cc >= 8.0) if cuda else bool(cpu_bf16),
        "fp16": cuda,
        "compiler": compiler is not None,
        "cpu": not cuda,
    }
    how = {
        "cuda": f"GPU compute capability {cc}" if cc is not None else "no NVIDIA GPU (nvidia-smi)",
        "bf16": (
            f"GPU compute capability {cc} ({'>=' if answers['bf16'] else '<'} 8.0)"
            if cuda
            else f"CPU flags: {', '.join(cpu_bf16) or 'no avx512_bf16 / amx_bf16'}"
        ),
        "fp16": "CUDA" if cuda else "CPU: no fp16 training path",
        "compiler": compiler or "no C/C++ compiler on PATH",
        "cpu": "the rows train on the CPU" if not cuda else "the rows train on the GPU",
    }
    if cc is not None and device == "cpu":
        how["cuda"] += " (task pinned to the CPU)"
    return {**answers, "how": how}
