"""What a run records about the machine beyond its name: the CPU's vector instructions, and the variables that
cap which kernels a framework runs (bench.run.environment), shown on the run page and warned by compare."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pandas as pd
import pytest

import backends
from bench.core.placement import busy_above
from bench.report.compare import environment_differences
from bench.report.page import environment_section
from bench.run.environment import kernel_variables, vector_isa
from tests.conftest import TINY_TASK, only_run_dir, records, run_cli
from tests.faults import backend_env
from tests.numpy_backend import CONFIGURE_NOTE

# /proc/cpuinfo's flags lines, cut down: a Xeon with AMX, an AMD EPYC with AVX-512 and no AMX, an AVX2-only CPU
XEON = (
    "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8481C\nflags\t\t: fpu sse2 avx2 fma avx512f "
    "avx512_vnni avx512_bf16 avx512_fp16 amx_bf16 amx_tile amx_int8\n"
)
EPYC = "model name\t: AMD EPYC 9R14\nflags\t\t: sse2 avx avx2 fma avx512f avx512dq avx512_vnni avx512_bf16\n"
OLD = "model name\t: Intel(R) Xeon(R) CPU E5-2680 v3\nflags\t\t: sse2 avx avx2 fma\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes sve sve2\nCPU implementer\t: 0x41\n"


def test_the_cpus_vector_instructions_are_read_from_its_flags_in_one_order():
    assert vector_isa(XEON) == [
        "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8"
    ]  # fmt: skip
    assert vector_isa(EPYC) == ["avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16"]
    assert vector_isa(OLD) == ["avx2", "fma"] and vector_isa(ARM) == ["asimd", "sve", "sve2"]
    assert vector_isa("") == [] and vector_isa("model name\t: something\n") == []


def test_the_kernel_variables_are_those_the_backends_name_and_only_those_that_are_set():
    named = {name for info in backends.BACKENDS.values() for name in info.kernel_variables}
    # each framework's own: ATen's ISA cap, TensorFlow's oneDNN switch, XLA's flags (JAX and TF's jit_compile)
    assert {"ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "TF_ENABLE_ONEDNN_OPTS", "XLA_FLAGS"} <= named
    assert backends.describe("keras-jax").kernel_variables == ("XLA_FLAGS",)
    environ = {"ATEN_CPU_CAPABILITY": "avx2", "TF_ENABLE_ONEDNN_OPTS": "0", "OMP_NUM_THREADS": "2", "HOME": "/x"}
    assert kernel_variables(environ) == {"ATEN_CPU_CAPABILITY": "avx2", "TF_ENABLE_ONEDNN_OPTS": "0"}
    assert kernel_variables({}) == {}


def test_compare_warns_of_other_kernels_and_says_nothing_of_a_run_that_did_not_record_them():
    env = {"cpu": "AMD EPYC", "cores": 2, "gpus": [], "python": "3.11.7", "cpu_flags": vector_isa(EPYC)}
    capped = {**env, "kernel_variables": {"ATEN_CPU_CAPABILITY": "avx2"}}
    key = {"task": ["t"], "backend": ["torch"], "model": ["m"], "profile": ["quick"]}  # as load_run's tables
    empty = pd.DataFrame({**key, "status": ["ok"], "device": ["cpu"], "threads": [2]})  # rows on the same footing
    assert environment_differences({**env, "kernel_variables": {}}, capped, empty, empty) == [
        "kernel_variables differs: {} vs {'ATEN_CPU_CAPABILITY': 'avx2'}"
    ]
    older = {k: v for k, v in env.items() if k != "cpu_flags"}  # recorded before 2026-12-05: unknown, not different
    assert environment_differences(older, capped, empty, empty) == []
    assert environment_differences(env, {**env, "cpu_flags": vector_isa(XEON)}, empty, empty)[0].startswith(
        "cpu_flags differs: ['avx2', 'fma', 'avx512f', 'avx512_vnni', 'avx512_bf16'] vs"
    )


@pytest.mark.e2e
def test_a_run_records_the_machines_vector_instructions_and_a_kernel_cap_and_its_page_shows_them(
    clean_env, tmp_path: Path
):
    task = tmp_path / "tiny.toml"
    task.write_text(TINY_TASK)
    env = {k: v for k, v in backend_env(clean_env, tmp_path / "site").items() if k not in kernel_variables(clean_env)}
    env["ATEN_CPU_CAPABILITY"] = "avx2"
    proc = run_cli(["run", str(task), "--backend", "numpy", "--out", str(tmp_path / "o")], env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    run_dir = only_run_dir(tmp_path / "o")
    (row,) = records(run_dir)
    assert row["status"] == "ok"
    assert CONFIGURE_NOTE in row["notes"]  # what the backend's configure says reaches the row (torch: oneMKL's path)
    # the row's node as its window ended, which bench compare reads (tests/test_compare.py)
    assert row["node_cores"] == os.cpu_count() and 0 <= row["load_avg_1m_end"] < math.inf
    # the load its MFU peak was measured at, and a note where that passed what the run puts on the node itself
    # (bench.measure.mfu, bench.core.placement.busy_above)
    assert 0 <= row["peak_flops_load"] < math.inf
    loaded = "MFU: its peak was measured at load" in row["notes"]
    assert loaded == (row["peak_flops_load"] > busy_above(row["node_cores"])), (row["peak_flops_load"], row["notes"])
    recorded = json.loads((run_dir / "environment.json").read_text())
    cpuinfo = Path("/proc/cpuinfo")
    assert recorded["cpu_flags"] == vector_isa(cpuinfo.read_text() if cpuinfo.is_file() else "")
    assert recorded["kernel_variables"] == {"ATEN_CPU_CAPABILITY": "avx2"}
    page = (run_dir / "index.html").read_text()
    assert "variable ATEN_CPU_CAPABILITY" in page and ">avx2<" in page and environment_section(recorded) in page
    assert ("CPU vector instructions" in page) == bool(recorded["cpu_flags"])
    summary = (run_dir / "summary.md").read_text()
    assert "Kernels chosen by the environment, not only by this CPU: ATEN_CPU_CAPABILITY=avx2." in summary
    assert f"- {CONFIGURE_NOTE}" in summary
