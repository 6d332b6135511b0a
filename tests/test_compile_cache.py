"""A row's compile time is a first run's: no compiler reads what an earlier process compiled, unless the user
named the cache (bench.measure.compile_cache)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from backends import BACKENDS, describe, missing_packages
from bench.core.backend import CompileCache
from bench.measure.compile_cache import compile_cache_note, first_run_compiles

REPO = Path(__file__).resolve().parents[1]
VAR = "BENCH_TEST_COMPILER_CACHE"  # a compiler's cache variable, for the framework-free tests


def test_a_compiler_that_caches_by_default_gets_an_empty_folder_of_its_own_removed_after_the_row(monkeypatch):
    monkeypatch.setenv(VAR, "/tmp/its-default")  # as torch sets its own default the first time it looks
    with first_run_compiles(CompileCache(VAR, on_when_unset=True), started_with={}) as named:
        folder = Path(os.environ[VAR])
        assert named is None and folder.is_dir() and not any(folder.iterdir())
        (folder / "compiled.bin").write_bytes(b"x")  # what the compiler writes during the row
    assert os.environ[VAR] == "/tmp/its-default" and not folder.exists()
    monkeypatch.delenv(VAR)
    with first_run_compiles(CompileCache(VAR, on_when_unset=True), started_with={}):
        assert Path(os.environ[VAR]).is_dir()
    assert VAR not in os.environ


def test_the_users_cache_is_kept_and_recorded_and_a_compiler_without_one_is_left_alone(monkeypatch, tmp_path):
    with first_run_compiles(CompileCache(VAR), started_with={}) as named:  # keeps none unless told: nothing to do
        assert named is None and VAR not in os.environ
    with first_run_compiles(CompileCache(), started_with={VAR: "/x"}) as named:
        assert named is None and VAR not in os.environ
    user = {VAR: str(tmp_path)}  # in the environment the process started with
    monkeypatch.setenv(VAR, "/tmp/its-default")
    with first_run_compiles(CompileCache(VAR, on_when_unset=True), started_with=user) as named:
        assert named == str(tmp_path) and os.environ[VAR] == str(tmp_path)
    assert os.environ[VAR] == "/tmp/its-default" and tmp_path.is_dir()
    note = compile_cache_note(named)
    assert note is not None and f"({tmp_path})" in note and "not what a first run pays" in note
    assert compile_cache_note(None) is None


IN_A_ROW = f"""
import os, sys
from bench.core.backend import CompileCache
from bench.measure.compile_cache import first_run_compiles
with first_run_compiles(CompileCache("{VAR}", on_when_unset=True), started_with={{}}):
    print(os.environ["{VAR}"], flush=True)
    sys.stdin.read()  # until the test closes it, or kills this process
"""


def test_a_row_killed_before_its_cleanup_leaves_a_folder_the_next_row_removes_and_a_live_rows_is_kept(
    monkeypatch, tmp_path
):
    """A row killed on its timeout gets SIGKILL: its ``finally`` never runs. The next row on the machine removes
    the folder of a process that is gone, and only that."""
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": str(REPO)}
    rows = [
        subprocess.Popen([sys.executable, "-c", IN_A_ROW], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        for _ in range(2)
    ]
    killed, live = (Path(row.stdout.readline().decode().strip()) for row in rows)
    (killed / "compiled.bin").write_bytes(b"x" * 1000)
    rows[0].kill()
    rows[0].communicate()  # reaps it and closes its pipes
    assert killed.is_dir() and live.is_dir() and killed.parent == live.parent == tmp_path
    (tmp_path / "bench-compile-cache-notapid-x").mkdir()  # not one of ours: a name we cannot read a pid from
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with first_run_compiles(CompileCache(VAR, on_when_unset=True), started_with={}):
        mine = Path(os.environ[VAR])
        assert not killed.exists() and live.is_dir() and mine.parent == tmp_path
    rows[1].communicate(b"")  # the live row ends as a row does, and removes its own
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench-compile-cache-notapid-x"]


def test_every_backend_whose_compiler_caches_by_default_says_which_variable_moves_it():
    """torch.compile (the torch backend, and Keras's torch engine with jit_compile) keeps inductor's cache in /tmp;
    JAX reads one only where $JAX_COMPILATION_CACHE_DIR names it; TensorFlow's XLA keeps none."""
    caches = {name: info.compile_cache for name, info in BACKENDS.items()}
    assert caches["torch"] == caches["keras-torch"] == CompileCache("TORCHINDUCTOR_CACHE_DIR", on_when_unset=True)
    assert caches["keras-jax"] == CompileCache("JAX_COMPILATION_CACHE_DIR") and caches["keras"] == CompileCache()


INDUCTOR = """
import json, os, sys
from backends import describe
from bench.measure.compile_cache import first_run_compiles  # before torch, as a worker imports it
import torch, torch._dynamo  # sets $TORCHINDUCTOR_CACHE_DIR to its default folder
from torch._dynamo.utils import counters


def compile_once():
    torch._dynamo.reset()  # what a new process starts with: only the on-disk cache can answer
    counters.clear()
    torch.compile(lambda x: torch.sin(x) * 2 + 1)(torch.ones(8))
    return {k: v for k, v in counters["inductor"].items() if k.startswith("fxgraph_cache")}


out = {"set_by_torch": os.environ.get("TORCHINDUCTOR_CACHE_DIR")}
os.environ["TORCHINDUCTOR_CACHE_DIR"] = sys.argv[1]  # one folder for two compiles, as inductor's default is
out.update(first=compile_once(), again=compile_once())
with first_run_compiles(describe("torch").compile_cache) as named:
    out["named"], out["fresh"] = named, compile_once()
print("@@" + json.dumps(out))
"""


@pytest.mark.frameworks
@pytest.mark.skipif(bool(missing_packages("torch")), reason="torch is not installed")
def test_torch_compile_in_a_row_compiles_where_a_second_process_would_have_read_the_cache(clean_env, tmp_path):
    """Measured: without the row's own folder, inductor's second compile of the same graph is a cache hit
    (its FX graph cache, on by default), so a second run's compile_s would not be a first run's."""
    if not shutil.which(os.environ.get("CXX", "g++")) and not shutil.which("c++"):
        pytest.skip("torch.compile's inductor needs a C++ compiler on the CPU")
    env = {k: v for k, v in clean_env.items() if k != "TORCHINDUCTOR_CACHE_DIR"}
    proc = subprocess.run(
        [sys.executable, "-c", INDUCTOR, str(tmp_path / "shared")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(next(ln for ln in proc.stdout.splitlines() if ln.startswith("@@"))[2:])
    assert out["first"] == {"fxgraph_cache_miss": 1} and out["again"] == {"fxgraph_cache_hit": 1}, out
    assert out["named"] is None and out["fresh"] == {"fxgraph_cache_miss": 1}, out
    assert out["set_by_torch"] is not None  # why "named by the user" is read from the environment at the start
    assert describe("torch").compile_cache.on_when_unset


def test_a_nodes_row_folders_left_by_a_cancelled_row_are_removed_by_the_next_and_a_live_ones_kept(tmp_path):
    """QA, 2026-12-05: Ray's forced cancel (Ctrl-C) kills a row's process before its scratch folder's cleanup,
    which left a copy of the row's data on the node for each one; the next row removes those of dead processes."""
    from bench.measure.compile_cache import remove_orphans
    from bench.run.executors.remote import SCRATCH_PREFIX

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = tmp_path / f"{SCRATCH_PREFIX}{int(gone.stdout)}-abc"
    live = tmp_path / f"{SCRATCH_PREFIX}{os.getpid()}-def"
    for folder in (dead, live):
        (folder / "run" / ".jobs").mkdir(parents=True)
        (folder / "run" / ".jobs" / "data0.npz").write_bytes(b"x" * 1000)
    assert remove_orphans(tmp_path, SCRATCH_PREFIX) == [dead]
    assert not dead.exists() and live.is_dir()
