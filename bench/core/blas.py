"""Which code path oneMKL, the BLAS linked into PyTorch's x86 wheels, chose on this CPU.

oneMKL picks its CPU-specific kernels by vendor, not only by instruction set: on a non-Intel CPU it runs
its generic path, whatever AVX2 or AVX-512 the CPU has. Its version record says which path it took
(``Processor``: "Intel(R) Architecture processors" for the generic one, "Intel(R) Advanced Vector
Extensions 512 ..." for AVX-512). Measured on the 2-core AMD EPYC VM (AVX-512, 2026-12-05): torch's
2048x2048 fp32 matmul ran at 186 GFLOP/s on the generic path and 401 with the AVX-512 path forced (the
vendor check overridden by a preloaded library: tests/mkl_as_intel.py, for the tests; bench never does); TensorFlow's
matmul on the same VM, 389-432. torch's convolutions run in oneDNN, which picks kernels by instruction set:
a cifar10-cnn and a LeNet-5 row trained as fast on either path (3,796 and 3,595 img/s; 19,568 and 20,040),
while their MFU, read against torch's own matmul, halved on the fast one. So a row on the generic path
says so: its dense layers run below the CPU's speed, and its MFU reads high beside a backend whose BLAS is
not held back.

Framework-free: a backend names the library of its framework that links oneMKL, loaded already (``row_note``).
"""

from __future__ import annotations

import ctypes
from collections.abc import Collection
from pathlib import Path

from bench.core.capabilities import cpu_flags

GENERIC = "Intel(R) Architecture processors"  # oneMKL's Processor for its path without CPU-specific kernels
FASTER = ("avx2", "avx512f")  # instruction sets oneMKL has CPU-specific kernels for (cpuinfo flag names)


class _MKLVersion(ctypes.Structure):
    """oneMKL's ``MKLVersion`` (mkl_types.h), what ``MKL_Get_Version`` fills."""

    _fields_ = [
        ("major", ctypes.c_int),
        ("minor", ctypes.c_int),
        ("update", ctypes.c_int),
        ("product_status", ctypes.c_char_p),
        ("build", ctypes.c_char_p),
        ("processor", ctypes.c_char_p),
        ("platform", ctypes.c_char_p),
    ]


def mkl_processor(library: str) -> str | None:
    """The code path oneMKL chose (its version record's ``Processor``) in ``library``, a shared library that
    links oneMKL statically; None where it has no oneMKL (an Arm or OpenBLAS build) or cannot be loaded.

    PyTorch's wheels export oneMKL's service entry ``mkl_serv_get_version`` (what ``MKL_Get_Version``
    calls) but not ``MKL_Get_Version`` itself; either is asked, whichever the library has."""
    try:
        lib = ctypes.CDLL(library)
    except OSError:
        return None
    for name in ("MKL_Get_Version", "mkl_serv_get_version"):
        get = getattr(lib, name, None)
        if get is not None:
            break
    else:
        return None
    version = _MKLVersion()
    get.restype = None
    get.argtypes = [ctypes.POINTER(_MKLVersion)]
    get(ctypes.byref(version))
    return version.processor.decode(errors="replace").strip() if version.processor else None


def generic_path_note(processor: str | None, cpu_flags: Collection[str], framework: str) -> str | None:
    """The row's note when oneMKL runs its generic path on a CPU it has faster kernels for; else None."""
    faster = [isa for isa in FASTER if isa in cpu_flags]
    if processor != GENERIC or not faster:
        return None
    return (
        f"{framework}'s BLAS (oneMKL) runs its generic code path on this CPU, which has {' and '.join(faster)}: "
        "oneMKL picks its fast kernels by CPU vendor. Its fp32 matmuls (dense layers, and the matmul this row's "
        "MFU is read against) run below the CPU's speed, about half on an AVX-512 AMD EPYC. Its convolutions run "
        "in oneDNN, which is not held back (docs/timing.md, MFU peak table)"
    )


def loaded_library(stem: str, maps: str | None = None) -> str | None:
    """The path of the shared library named ``stem`` (``libtorch_cpu`` for ``libtorch_cpu.so``) that this
    process has loaded, from /proc/self/maps; None where it is not loaded or there is no /proc (not Linux)."""
    if maps is None:
        try:
            maps = Path("/proc/self/maps").read_text(errors="replace")
        except OSError:
            return None
    for line in maps.splitlines():
        path = line.split(maxsplit=5)[5:]
        if path and Path(path[0]).name.split(".so")[0] == stem:
            return path[0]
    return None


def row_note(library_stem: str, framework: str) -> str | None:
    """``generic_path_note`` for the framework whose loaded library ``library_stem`` links oneMKL, on this CPU."""
    library = loaded_library(library_stem)
    return generic_path_note(mkl_processor(library), cpu_flags(), framework) if library else None
