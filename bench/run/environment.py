"""What machine and software a run used, read without importing either framework."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import backends
from bench.core.cpus import usable_cores

REPO = Path(__file__).resolve().parents[2]
PACKAGES = (
    "torch",
    "torchvision",
    "timm",
    "tensorflow-cpu",
    "tensorflow",
    "keras",
    "jax",
    "jaxlib",
    "numpy",
    "scikit-learn",
    "pandas",
)


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout.strip()
    return out.stdout.strip() + ("-dirty" if dirty else "")


def git_diff(repo: Path = REPO) -> str | None:
    """A short hash of the tree's uncommitted changes to tracked files (``git diff HEAD``), None on a clean tree or
    without git: two runs of one commit with different local patches are both "abc1234-dirty", and the history named
    a step between them "nothing recorded (same commit, versions, knobs and machine)" (QA, 2026-12-07)."""
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "diff", "HEAD", "--no-ext-diff", "--no-color", "--binary"],
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0 or not out.stdout:
        return None
    return hashlib.sha256(out.stdout).hexdigest()[:8]


def cpuinfo() -> str:
    """/proc/cpuinfo's text; empty where there is none (macOS, Windows)."""
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_model() -> str:
    for line in cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def gpus() -> list[str]:
    """NVIDIA GPUs by name via nvidia-smi; empty when there is none (or no driver)."""
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [ln.strip() for ln in out.stdout.splitlines() if ln.startswith("GPU")] if out.returncode == 0 else []


def memory_gib() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        return None


# The CPU's vector instruction sets that choose which kernels the frameworks run (x86: AVX2 and FMA, AVX-512
# and its VNNI/BF16/FP16 parts, AMX tiles; Arm: NEON/ASIMD, SVE): two machines with one core count and one
# `cpu` vendor string can differ here, and so can the kernels behind their figures.
VECTOR_ISA = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "asimd",
    "sve",
    "sve2",
)


def vector_isa(cpuinfo: str) -> list[str]:
    """The entries of VECTOR_ISA that /proc/cpuinfo's flags (x86) or Features (Arm) line lists, in VECTOR_ISA's
    order."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            found = set(value.split())
            return [isa for isa in VECTOR_ISA if isa in found]
    return []


def kernel_variables(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The variables set here that choose a backend's CPU kernels (each description's ``kernel_variables``)."""
    environ = dict(os.environ) if environ is None else environ
    names = sorted({name for info in backends.BACKENDS.values() for name in info.kernel_variables})
    return {name: environ[name] for name in names if name in environ}


def versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def describe() -> dict[str, Any]:
    return {**_describe(), **restricted_cores()}


def restricted_cores() -> dict[str, int]:
    """``usable_cores`` where this process may run on fewer cores than the machine has (``taskset``, a cgroup's
    cpuset), else nothing: each framework sizes its threads by them, so such a run is another machine to the
    history (bench.history.rows.machine) and says so in summary.md; an unrestricted run's environment.json (and its
    history fingerprint) is what it was before this was recorded."""
    usable, cores = usable_cores(), os.cpu_count() or 0
    return {"usable_cores": usable} if usable < cores else {}


def _describe() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_flags": vector_isa(cpuinfo()),
        "kernel_variables": kernel_variables(),
        "cores": os.cpu_count(),
        "memory_gib": round(memory_gib() or 0, 1),
        "gpus": gpus(),
        "load_avg_1m_at_start": os.getloadavg()[0],
        "packages": versions(),
        "git_commit": git_commit(),
        **({"git_diff": diff} if (diff := git_diff()) else {}),
    }
