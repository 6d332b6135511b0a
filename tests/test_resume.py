"""Runs that survive: Ctrl-C and kill -9 of the parent mid-run, then --resume; concurrent runs."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.results import latest_records, read_records
from tests.conftest import REPO, only_run_dir, run_cli
from tests.test_cli import TINY_TASK

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="signals, process groups and /proc")


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bench", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip


def wait_for_records(out: Path, n: int, timeout: float = 120) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dirs = [d for d in out.glob("*") if (d / "records.jsonl").is_file()]
        if dirs and len((dirs[0] / "records.jsonl").read_text().splitlines()) >= n:
            return dirs[0]
        time.sleep(0.1)
    raise AssertionError(f"no {n} record(s) under {out} after {timeout} s")


def workers_of(run_dir: Path) -> list[int]:
    """PIDs of this run's live worker processes: its worker servers and the runs they forked
    (a forked run keeps its server's command line, which names the run's job dir)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "bench.forkserver" in cmdline and str(run_dir) in cmdline:
            pids.append(int(proc.name))
    return pids


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_TASK)
    return path


def assert_complete(run_dir: Path, repeats: int) -> None:
    rows = latest_records(read_records(run_dir))
    assert sorted((r["backend"], r["repeat"], r["status"]) for r in rows) == [
        ("torch", i, "ok") for i in range(repeats)
    ]
    csv = (run_dir / "results.csv").read_text().splitlines()
    assert len(csv) == 1 + repeats and "interrupted" not in "".join(csv)
    assert json.loads((run_dir / "state.json").read_text())["state"] == "complete"
    assert "incomplete" not in (run_dir / "summary.md").read_text()


def test_ctrl_c_keeps_finished_rows_and_resume_completes(clean_env, tiny: Path, tmp_path: Path):
    out = tmp_path / "results"
    proc = start(["run", str(tiny), "--backend", "torch", "--repeats", "3", "--out", str(out)], clean_env)
    run_dir = wait_for_records(out, 1)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output
    assert "--resume" in output
    rows = read_records(run_dir)
    assert rows[0]["status"] == "ok" and rows[-1]["status"] == "interrupted"
    assert json.loads((run_dir / "state.json").read_text())["state"] == "interrupted"
    assert "This run is incomplete (interrupted)" in (run_dir / "summary.md").read_text()
    assert not workers_of(run_dir)

    resumed = run_cli(["all", "--resume", str(run_dir)], clean_env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert_complete(run_dir, 3)
    ok_first = [r for r in read_records(run_dir) if r["repeat"] == 0]
    assert len(ok_first) == 1  # the finished row was kept, not run again


def test_kill_9_of_the_parent_leaves_a_resumable_run(clean_env, tiny: Path, tmp_path: Path):
    out = tmp_path / "results"
    proc = start(["run", str(tiny), "--backend", "torch", "--repeats", "3", "--out", str(out)], clean_env)
    run_dir = wait_for_records(out, 1)
    deadline = time.monotonic() + 60
    while not workers_of(run_dir) and time.monotonic() < deadline:  # kill while a worker runs
        time.sleep(0.05)
    proc.kill()
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 10
    while workers_of(run_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not workers_of(run_dir), "the worker outlived its killed parent"
    for line in (run_dir / "records.jsonl").read_text().splitlines():
        json.loads(line)  # every line whole

    resumed = run_cli(["run", "--resume", run_dir.name, "--out", str(out)], clean_env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert_complete(run_dir, 3)


def test_a_run_in_use_cannot_be_resumed_twice(clean_env, tiny: Path, tmp_path: Path):
    out = tmp_path / "results"
    assert run_cli(["run", str(tiny), "--backend", "torch", "--out", str(out)], clean_env).returncode == 0
    run_dir = only_run_dir(out)
    with open(run_dir / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        proc = run_cli(["all", "--resume", str(run_dir)], clean_env)
    assert proc.returncode == 2 and "in use by another bench process" in proc.stderr
    proc = run_cli(["all", "--resume", str(tmp_path)], clean_env)
    assert proc.returncode == 2 and "not a bench run directory" in proc.stderr


def test_two_runs_started_at_once_get_their_own_directories(clean_env, tiny: Path, tmp_path: Path):
    out = tmp_path / "results"
    procs = [start(["run", str(tiny), "--backend", "torch", "--out", str(out)], clean_env) for _ in range(2)]
    for p in procs:
        p.communicate(timeout=120)
        assert p.returncode == 0
    dirs = sorted(d for d in out.iterdir() if d.is_dir())
    assert len(dirs) == 2
    for d in dirs:
        assert len(read_records(d)) == 1 and os.path.basename(d) == read_records(d)[0]["run_id"]
