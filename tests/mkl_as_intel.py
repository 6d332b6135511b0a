"""Run a command with oneMKL's Intel code path on any x86 CPU: ``python -m tests.mkl_as_intel pytest [ARGS]``.

Why: oneMKL, the BLAS linked into PyTorch's x86 wheels, picks its kernels by CPU vendor (bench.core.blas): on
the AMD EPYC VMs the suite runs on, torch's matmuls take oneMKL's generic path; on an Intel Xeon, its AVX-512
kernels, which sum in another order. A test whose tolerance fits one path only passes here and fails on a Xeon
(issue 26: a clean clone failed two such tests there). This compiles a library of two functions that answer
oneMKL's vendor check with "Intel", preloads it into the command (``LD_PRELOAD``, inherited by every process the
command starts: each ``bench`` command, its worker servers, each rank), checks that torch's oneMKL took a
CPU-specific path, and runs the command. On an Intel CPU it changes nothing. ``tox -e intel-mkl`` runs the suite
so; bench itself never does this (docs/testing.md).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# oneMKL's service entries for its vendor check, exported by libtorch_cpu (which links oneMKL statically)
SOURCE = """\
int mkl_serv_intel_cpu_true(void) { return 1; }
int mkl_serv_intel_cpu(void) { return 1; }
"""

# torch's oneMKL path, read in a fresh process as bench reads it for a row's note
PROBE = """\
import os, torch
from bench.core.blas import mkl_processor
print(mkl_processor(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so")))
"""

REPO = Path(__file__).resolve().parents[1]


class NotForced(Exception):
    """The override cannot be made or did not take: no compiler, no oneMKL in torch, or not its Intel path."""


def build(folder: Path) -> Path:
    """The shared library, compiled into ``folder`` with the system's C compiler."""
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        raise NotForced("no C compiler (cc or gcc, or $CC) to build the library that answers oneMKL's vendor check")
    source, library = folder / "mkl_intel_cpu.c", folder / "libmkl_intel_cpu.so"
    source.write_text(SOURCE)
    proc = subprocess.run(
        [compiler, "-O2", "-shared", "-fPIC", "-o", str(library), str(source)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise NotForced(f"{compiler} could not build {library.name}: {proc.stderr.strip()[-500:]}")
    return library


def preloaded(library: Path, environ: dict[str, str]) -> dict[str, str]:
    """``environ`` with ``library`` preloaded before any library it already preloads."""
    return {**environ, "LD_PRELOAD": " ".join(p for p in (str(library), environ.get("LD_PRELOAD", "")) if p)}


def processor(env: dict[str, str]) -> str:
    """The code path torch's oneMKL reports in a process started with ``env``."""
    env = {**env, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)}
    proc = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise NotForced(f"torch's oneMKL could not be read: {proc.stderr.strip().splitlines()[-1:]}")
    return proc.stdout.strip().splitlines()[-1]


def forced_env(folder: Path, environ: dict[str, str]) -> tuple[dict[str, str], str]:
    """``environ`` with oneMKL's Intel path forced, and the path torch's oneMKL then reports, checked in a fresh
    process; ``NotForced`` says why not."""
    from bench.core.blas import GENERIC

    env = preloaded(build(folder), environ)
    path = processor(env)
    if path in ("None", GENERIC):
        raise NotForced(f"torch's oneMKL still reports {path!r} with the override preloaded")
    return env, path


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m tests.mkl_as_intel pytest [ARGS] | COMMAND [ARGS]", file=sys.stderr)
        return 2
    command = [sys.executable, "-m", "pytest", *argv[1:]] if argv[0] == "pytest" else argv
    with tempfile.TemporaryDirectory(prefix="bench-mkl-intel-") as folder:
        try:
            env, path = forced_env(Path(folder), dict(os.environ))
        except NotForced as e:
            print(f"mkl_as_intel: {e}", file=sys.stderr)
            return 2
        print(f"mkl_as_intel: torch's oneMKL runs {path!r}; running {' '.join(argv)}", flush=True)
        return subprocess.run(command, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
