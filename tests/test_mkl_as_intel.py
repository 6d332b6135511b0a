"""tests/mkl_as_intel.py, the stand-in for a Xeon's oneMKL that ``tox -e intel-mkl`` runs the suite under: it must
really move torch's matmuls onto oneMKL's Intel path, or that env passes without testing anything new."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys

import pytest

from bench.core.blas import GENERIC
from tests import mkl_as_intel
from tests.conftest import REPO

pytestmark = [
    pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="oneMKL is in torch's x86 wheels only"),
    pytest.mark.skipif(not (shutil.which("cc") or shutil.which("gcc")), reason="no C compiler to build the override"),
]

# torch's oneMKL path and the note a torch row would carry, and one matmul's bits, in one process
READ = """\
import hashlib, os, torch
from bench.core.blas import mkl_processor, row_note
print(mkl_processor(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so")))
print(row_note("libtorch_cpu", "PyTorch"))
g = torch.Generator().manual_seed(0)
a = torch.randn(512, 512, generator=g)
print(hashlib.sha256((a @ a).numpy().tobytes()).hexdigest())
"""


def read(*prefix: str) -> list[str]:
    """READ's lines, run by ``prefix`` (the override's module) if given: its own line first."""
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    proc = subprocess.run(
        [sys.executable, *prefix, sys.executable, "-c", READ] if prefix else [sys.executable, "-c", READ],
        cwd=REPO,
        env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()


@pytest.mark.frameworks
def test_the_override_puts_torchs_onemkl_on_its_intel_path_and_a_row_loses_the_generic_path_note():
    path, note, digest = read()
    said, *_, forced_path, forced_note, forced_digest = read("-m", "tests.mkl_as_intel")
    assert said.startswith(f"mkl_as_intel: torch's oneMKL runs {forced_path!r}; running {sys.executable} -c "), said
    assert forced_path not in (GENERIC, "None") and forced_note == "None", (forced_path, forced_note)
    if path == GENERIC:  # this CPU is not Intel's: the override changed the path, and with it the kernels
        assert note.startswith("PyTorch's BLAS (oneMKL) runs its generic code path"), note
        assert forced_digest != digest  # another summation order: the bits a Xeon computes, not this CPU's own
    else:  # an Intel CPU: nothing to change
        assert (forced_path, forced_digest) == (path, digest)


@pytest.mark.frameworks  # the override's check imports torch
def test_a_command_that_fails_gives_its_exit_status_and_leaves_no_library(tmp_path):
    folder = tmp_path / "tmp"
    folder.mkdir()
    command = "import os, sys; sys.exit(3 if 'libmkl_intel_cpu.so' in os.environ['LD_PRELOAD'] else 4)"
    proc = subprocess.run(
        [sys.executable, "-m", "tests.mkl_as_intel", sys.executable, "-c", command],
        cwd=REPO,
        env={**os.environ, "TMPDIR": str(folder)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 3, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert list(folder.iterdir()) == []  # built in a folder of its own, removed after the command


def test_without_a_compiler_it_says_so_and_runs_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CC", "")
    monkeypatch.setattr(mkl_as_intel.shutil, "which", lambda name: None)
    assert mkl_as_intel.main(["pytest"]) == 2
    assert "no C compiler" in capsys.readouterr().err


def test_an_earlier_preload_is_kept_after_the_override():
    env = mkl_as_intel.preloaded(REPO / "lib.so", {"LD_PRELOAD": "/opt/other.so"})
    assert env["LD_PRELOAD"] == f"{REPO / 'lib.so'} /opt/other.so"
