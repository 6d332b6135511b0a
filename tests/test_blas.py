"""oneMKL's code path (bench.core.blas): read from the library a framework loaded, said in the row when generic."""

from __future__ import annotations

import ctypes.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.core.blas import GENERIC, generic_path_note, loaded_library, mkl_processor
from bench.core.capabilities import cpu_flags

REPO = Path(__file__).resolve().parents[1]
AVX512 = (
    "Intel(R) Advanced Vector Extensions 512 (Intel(R) AVX-512) with support of Intel(R) Deep Learning Boost "
    "(Intel(R) DL Boost) and bfloat16"
)  # what oneMKL 2024.2 in torch 2.14's wheel says on a Xeon, or on the EPYC with its vendor check overridden


def test_the_note_is_said_only_where_the_generic_path_runs_on_a_cpu_with_faster_kernels():
    note = generic_path_note(GENERIC, {"sse2", "avx2", "fma", "avx512f"}, "PyTorch")
    assert note is not None and note.startswith(
        "PyTorch's BLAS (oneMKL) runs its generic code path on this CPU, which has avx2 and avx512f: "
    )
    assert "MFU" in note and "oneDNN" in note
    assert "which has avx2:" in str(generic_path_note(GENERIC, {"avx2", "fma"}, "PyTorch"))
    assert generic_path_note(AVX512, {"avx2", "avx512f"}, "PyTorch") is None  # oneMKL's own AVX-512 kernels
    assert generic_path_note(GENERIC, {"sse2", "avx"}, "PyTorch") is None  # nothing faster to run
    assert generic_path_note(None, {"avx2"}, "PyTorch") is None  # no oneMKL (an Arm or OpenBLAS build)


def test_the_loaded_library_is_found_by_its_name_in_the_process_maps():
    maps = (
        "7f00-7f10 r--p 00000000 08:01 1 /usr/lib/libc.so.6\n"
        "7f10-7f20 r-xp 00000000 00:00 0 \n"
        "7f20-7f30 r-xp 00001000 08:01 2 /site-packages/torch/lib/libtorch_cpu.so\n"
        "7f30-7f40 r-xp 00001000 08:01 3 /site-packages/torch/lib/libtorch_cpu_extra.so\n"
    )
    assert loaded_library("libtorch_cpu", maps) == "/site-packages/torch/lib/libtorch_cpu.so"
    assert loaded_library("libtorch", maps) is None and loaded_library("libtorch_cpu", "") is None
    if Path("/proc/self/maps").exists():  # this process: Python's own C library is loaded
        libc = loaded_library("libc")
        assert libc is not None and Path(libc).exists()


def test_a_library_without_onemkl_or_no_library_at_all_reads_as_none(tmp_path: Path):
    libc = ctypes.util.find_library("c")
    assert libc is not None and mkl_processor(libc) is None  # loads, has no oneMKL version entry
    assert mkl_processor(str(tmp_path / "libmissing.so")) is None


PROBE = """
import json, platform, sys, torch
from backends import load_backend
from bench.core.blas import loaded_library, mkl_processor
from bench.core.spec import RuntimeSpec
library = loaded_library("libtorch_cpu")
notes = load_backend(sys.argv[1]).configure(RuntimeSpec(device="cpu"), 0).get("notes", [])
print(json.dumps({"mkl": torch.backends.mkl.is_available(), "machine": platform.machine(),
                  "processor": mkl_processor(library) if library else None, "notes": notes}))
"""


@pytest.mark.frameworks
@pytest.mark.parametrize("backend", ["torch", "keras-torch"])  # Keras's torch engine runs torch's matmuls
def test_torch_reads_its_onemkl_code_path_and_says_so_in_the_row_only_when_it_is_generic(backend: str):
    for package in ("torch", "keras") if backend == "keras-torch" else ("torch",):
        pytest.importorskip(package)
    proc = subprocess.run([sys.executable, "-c", PROBE, backend], cwd=REPO, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    if seen["mkl"] and seen["machine"] == "x86_64":  # torch's x86 wheels link oneMKL statically
        assert seen["processor"], seen  # e.g. "Intel(R) Architecture processors" on the AMD EPYC VM
    expected = generic_path_note(seen["processor"], cpu_flags(), "PyTorch")
    assert seen["notes"] == ([expected] if expected else []), seen
