"""What a run records about the machine beyond its name: the CPU's vector instructions, and the variables that
cap which kernels a framework runs (bench.run.environment), shown on the run page and warned by compare."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import backends
from bench.core.placement import OthersOnCores, busy_above, others_words
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


STAT = "cpu  {t} 0 0 900 0 0 0 0 0 0\ncpu0 {a} 5 {a} 400 3 1 1 {steal} 0 0\ncpu1 {b} 0 0 500 0 0 0 0 0 0\nintr 1 2\n"


def test_others_on_a_rows_cores_are_their_busy_time_less_its_own_over_the_wall_time(tmp_path: Path):
    """One busy process beside a 2-core row kept the 1-min load at 1.3, under the "beyond its cores" line, and the
    row's slowdown went unsaid (2026-12-07). The share is read from /proc/stat for the row's own cores only."""
    stat = tmp_path / "stat"
    stat.write_text(STAT.format(t=0, a=100, b=100, steal=0))
    m = OthersOnCores(str(stat), frozenset({0}))
    time.sleep(1.2)  # this process idles: the cores' busy ticks since are others'
    tick = os.sysconf("SC_CLK_TCK")
    # cpu0: 0.6 s of user and system ticks and 0.12 s stolen by the hypervisor; cpu1 (not the row's): ignored
    stat.write_text(STAT.format(t=0, a=100 + int(0.3 * tick), b=100 + 5 * tick, steal=int(0.12 * tick)))
    pct = m.pct()
    assert pct is not None and 100 * 0.72 / 1.4 < pct <= 100 * 0.72 / 1.2  # rounded to 0.1
    assert OthersOnCores(str(tmp_path / "none")).pct() is None  # no /proc/stat: nothing said
    assert OthersOnCores(str(stat), frozenset({0})).pct() is None  # under half a second: mostly rounding


@pytest.mark.skipif(not Path("/proc/stat").is_file(), reason="Linux's /proc/stat")
def test_a_busy_process_on_a_rows_core_reads_as_others_and_its_own_work_does_not():
    core = min(os.sched_getaffinity(0))
    hog = subprocess.Popen(
        [sys.executable, "-c", "while True: pass"], preexec_fn=lambda: os.sched_setaffinity(0, {core})
    )
    try:
        time.sleep(0.3)
        m = OthersOnCores(cores=frozenset({core}))
        end = time.monotonic() + 1.5
        while time.monotonic() < end:  # this process busy on the core too, as a row's training is: not others'
            pass
        shared = m.pct()
    finally:
        hog.kill()
        hog.wait()
    # the hog and this loop share the core (~50% each, the scheduler's split); this loop's own time is not counted
    assert shared is not None and 25 < shared <= 100, shared
    assert others_words([{"others_cpu_pct": shared}]) == f"others using {shared:.0f}% of the cores"
    assert others_words([{"others_cpu_pct": 19.9}, {"others_cpu_pct": None}, {}]) is None


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
    # and how much of its cores others used while it trained (None: a training under half a second reads none)
    assert row["others_cpu_pct"] is None or 0 <= row["others_cpu_pct"] <= 100
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
