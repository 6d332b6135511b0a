"""Nothing measured is lost and nothing is written outside the run: hostile names, short writes, a full disk,
an unwritable --out, and run files broken by hand or by a crash (real files, real subprocesses, real limits)."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bench.core import results
from bench.core.record import new_record
from bench.core.results import append_record, read_records
from bench.core.runpaths import OutsideRunError, inside, plot_name
from bench.core.spec import parse_task
from bench.run.plan import RunOptions
from bench.run.runner import run_suite
from tests.conftest import REPO, TINY_TASK, only_run_dir, run_cli
from tests.faults import backend_env

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE, /proc")


def file_size_limit(limit: int):
    """A preexec_fn: the child may write no file beyond ``limit`` bytes and gets EFBIG (not SIGXFSZ) past it."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def bench(args: list[str], env: dict[str, str], limit: int | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=dict(env, PYTHONDONTWRITEBYTECODE="1"),
        timeout=600,
        preexec_fn=None if limit is None else file_size_limit(limit),
    )


def row(repeat: int = 0, backend: str = "torch", **fields) -> dict:
    return new_record(
        run_id="r",
        task="t",
        backend=backend,
        repeat=repeat,
        status="ok",
        model="lenet5",
        profile="quick",
        n_train=100,
        epoch_s_median=1.0,
        epoch_s_min=1.0,
        epoch_s_max=1.0,
        train_s=2.0,
        throughput_img_s=100.0,
        test_acc=0.9,
        history=[{"epoch": 1, "seconds": 1.0, "train_loss": 0.5, "test_acc": 0.9}],
        **fields,
    )


# -- paths ---------------------------------------------------------------------------------------


def test_paths_outside_the_run_are_refused(tmp_path: Path):
    run = tmp_path / "run"
    run.mkdir()
    assert inside(run, "logs", "t.torch.0.log") == (run / "logs" / "t.torch.0.log").resolve()
    for hostile in ("../x", "logs/../../x", "/etc/passwd", ".", ""):
        with pytest.raises(OutsideRunError):
            inside(run, hostile)
    (run / "artifacts").symlink_to(tmp_path)  # a link inside that leads out is refused too
    with pytest.raises(OutsideRunError):
        inside(run, "artifacts", "x.npz")
    assert plot_name("curves", "../../evil") == "plots/curves-.._.._evil.png"


def test_a_hostile_task_name_writes_nothing_outside_the_run(tmp_path: Path):
    """Defence in depth: a name the spec loader would refuse, forced onto the spec, still writes only inside."""
    task = parse_task(tomllib.loads(TINY_TASK), source="tiny")
    object.__setattr__(task, "name", "../../evil")  # bypasses the loader (and any validation in the dataclass)
    out = tmp_path / "a" / "b" / "results"
    run_dir = run_suite([task], RunOptions(backends=("torch",), out=out), echo=lambda s: None)
    (rec,) = read_records(run_dir)
    assert rec["status"] == "failed" and rec["error"].startswith("refused: ") and "outside" in rec["error"]
    cache, history = tmp_path / "bench-cache", out / "history"  # the history beside the run keeps its failed row
    stray = [p for p in tmp_path.rglob("*") if not any(p.is_relative_to(d) for d in (run_dir, cache, history))]
    assert all(p.is_dir() for p in stray) and not any("evil" in p.name for p in stray), stray
    assert (history / "runs" / f"{run_dir.name}.parquet").is_file()  # named by the run, not by the task
    assert not any("evil" in p.name for p in history.rglob("*"))
    assert json.loads((run_dir / "state.json").read_text())["state"] == "complete"
    assert "../../evil" in (run_dir / "summary.md").read_text()


# -- short writes ----------------------------------------------------------------------------------

APPEND_UNDER_LIMIT = """
import sys
from pathlib import Path
from bench.core.results import RecordWriteError, append_record
try:
    rec = {"task": "t", "backend": "torch", "repeat": 1, "status": "ok", "notes": "x" * 4000}
    append_record(Path(sys.argv[1]), rec)
except RecordWriteError as e:
    print(e)
    sys.exit(3)
"""


def test_a_short_write_under_a_file_size_limit_leaves_no_partial_line(tmp_path: Path, clean_env):
    append_record(tmp_path, row())
    before = (tmp_path / "records.jsonl").read_bytes()
    proc = subprocess.run(
        [sys.executable, "-c", APPEND_UNDER_LIMIT, str(tmp_path)],
        cwd=REPO,
        env=clean_env,
        capture_output=True,
        text=True,
        preexec_fn=file_size_limit(len(before) + 1000),
    )
    assert proc.returncode == 3, proc.stdout + proc.stderr  # refused, loudly, not reported as written
    assert "records.jsonl: record not written (File too large)" in proc.stdout
    assert (tmp_path / "records.jsonl").read_bytes() == before  # the 1000 bytes that fitted were cut off again
    proc = subprocess.run(
        [sys.executable, "-c", APPEND_UNDER_LIMIT, str(tmp_path)],
        cwd=REPO,
        env=clean_env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0 and [r["repeat"] for r in read_records(tmp_path)] == [0, 1]


def test_short_writes_are_completed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """os.write may write less than asked (a signal, a pipe, a quota): the rest is written, not dropped."""
    real, calls = os.write, []

    def dribble(fd: int, data) -> int:
        calls.append(len(data))
        return real(fd, bytes(data[:7]))

    monkeypatch.setattr(results.os, "write", dribble)
    append_record(tmp_path, row(notes="y" * 100))
    monkeypatch.undo()
    assert len(calls) > 10 and read_records(tmp_path)[0]["notes"] == "y" * 100


# -- unwritable --out, disk full -------------------------------------------------------------------


def test_an_unwritable_out_is_one_line_and_exit_2_before_anything_runs(tmp_path: Path, clean_env):
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY_TASK)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    proc = bench(["run", str(spec), "--backend", "torch", "--out", str(blocker / "results")], clean_env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == [f"error: --out {blocker / 'results'} is not writable: Not a directory"]
    out = tmp_path / "results"
    proc = bench(["run", str(spec), "--backend", "torch", "--out", str(out)], clean_env, limit=0)  # root too
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == f"error: --out {out} is not writable: File too large"
    assert list(out.iterdir()) == []  # no run directory, no probe left behind
    assert "starting worker servers" not in proc.stdout
    # an --out that is a file, or a link to nothing: said so ("is not writable: File exists" said nothing of why)
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    for target, what in ((blocker, "a file"), (dangling, "a link to nothing")):
        proc = bench(["run", str(spec), "--backend", "torch", "--out", str(target)], clean_env)
        assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
            f"error: --out {target} is {what}, not a folder: name a folder for the runs"
        ], proc.stderr


@pytest.mark.e2e
def test_a_disk_that_fills_mid_run_stops_it_honestly_and_resume_finishes(tmp_path: Path, clean_env):
    spec, out = tmp_path / "tiny.toml", tmp_path / "results"
    spec.write_text(TINY_TASK)
    clean_env = backend_env(clean_env, tmp_path / "site")  # the numpy test backend: the run machinery, not a framework
    assert bench(["run", str(spec), "--backend", "numpy", "--out", str(out)], clean_env).returncode == 0
    run_dir = only_run_dir(out)
    # The run grows to two repeats; records.jsonl is padded (by a superseded row) to just under the limit
    # set below, so the second run's record is the write that hits it, part way through.
    plan = json.loads((run_dir / "plan.json").read_text())
    plan["options"]["repeats"] = 2
    (run_dir / "plan.json").write_text(json.dumps(plan))
    padding = {**read_records(run_dir)[0], "repeat": 1, "status": "interrupted", "padding": "x" * 2_000_000}
    append_record(run_dir, padding)
    size = (run_dir / "records.jsonl").stat().st_size
    stopped = bench(["all", "--resume", str(run_dir)], clean_env, limit=size + 2000)
    assert stopped.returncode == 1, stopped.stdout + stopped.stderr
    assert "error: the run stopped: " in stopped.stderr and "File too large" in stopped.stderr
    assert "--resume" in stopped.stderr and "Traceback" not in stopped.stderr + stopped.stdout
    assert (run_dir / "records.jsonl").stat().st_size == size  # no partial line
    assert [(r["repeat"], r["status"]) for r in read_records(run_dir)] == [(0, "ok"), (1, "interrupted")]
    state = json.loads((run_dir / "state.json").read_text())
    # recorded: the rows a resume keeps; the interrupted one runs again (summary.md counts so too)
    assert state["state"] == "stopped" and "File too large" in state["error"] and state["recorded"] == 1
    assert not (run_dir / ".jobs").exists()
    assert "This run is incomplete (stopped (" in (run_dir / "summary.md").read_text()

    resumed = bench(["all", "--resume", str(run_dir)], clean_env)  # space is back
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    latest = results.latest_records(read_records(run_dir))
    assert [(r["repeat"], r["status"]) for r in latest] == [(0, "ok"), (1, "ok")]
    assert json.loads((run_dir / "state.json").read_text())["state"] == "complete"


# -- broken run files ------------------------------------------------------------------------------


def broken_run(path: Path) -> Path:
    """A run directory with every kind of unreadable line and file (lines 2-5 and 7 are bad)."""
    path.mkdir(parents=True)
    good = [json.dumps(row()).encode(), json.dumps(row(backend="keras")).encode()]
    lines = [
        good[0],
        b"garbage, not json",
        b"[1, 2, 3]",
        json.dumps({"backend": "torch", "repeat": 0}).encode(),
        b'{"task": "t", "backend": "\xff\xfe"}',
        good[1],
        b'{"task": "t", "backend": "torch", "rep',
    ]
    (path / "records.jsonl").write_bytes(b"\n".join(lines))  # the last line torn: no newline after it
    (path / "environment.json").write_text('{"cpu": "x",\n  broken')
    (path / "state.json").write_text("[]")
    (path / "plan.json").write_text("{")
    return path


def test_report_on_broken_run_files_warns_with_file_and_line_and_keeps_the_rest(tmp_path: Path, clean_env):
    run = broken_run(tmp_path / "run")
    proc = run_cli(["report", str(run)], clean_env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    records = run / "records.jsonl"
    for line, why in (
        (2, "not JSON"),
        (3, "not a JSON object but list"),
        (4, "record without 'task'"),
        (5, "not UTF-8"),
        (7, "torn last line"),
    ):
        assert f"warning: {records}:{line}: {why}" in proc.stderr, proc.stderr
    assert f"warning: {run / 'environment.json'}:2: not valid JSON" in proc.stderr
    assert f"warning: {run / 'state.json'}: expected a JSON object, found list" in proc.stderr
    csv = (run / "results.csv").read_text().splitlines()
    assert len(csv) == 3 and "keras" in csv[2]


def test_resume_on_a_broken_plan_is_exit_2_naming_the_file(tmp_path: Path, clean_env):
    run = broken_run(tmp_path / "run")
    proc = run_cli(["all", "--resume", str(run)], clean_env)
    assert (
        proc.returncode == 2
        and proc.stderr.strip()
        == f"error: {run / 'plan.json'}:1: not valid JSON (Expecting property name enclosed in double quotes, column 2)"
    )
    (run / "plan.json").write_text(json.dumps({"tasks": [{"name": 5}], "options": {}}))
    proc = run_cli(["all", "--resume", str(run)], clean_env)
    assert proc.returncode == 2 and f"error: {run / 'plan.json'}: not a plan this version can run" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_compare_on_broken_run_files_warns_and_compares_what_is_readable(tmp_path: Path, clean_env):
    a, b = broken_run(tmp_path / "a"), tmp_path / "b"
    b.mkdir()
    append_record(b, row())
    (b / "records.jsonl").open("ab").write(b"\xff\n")
    proc = run_cli(["compare", str(a), str(b)], clean_env)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # keras: ok in A, missing in B
    assert f"warning: {b / 'records.jsonl'}:2: not UTF-8" in proc.stderr and "Traceback" not in proc.stderr
    (keras,) = [ln for ln in proc.stdout.splitlines() if "| keras " in ln]
    assert [c.strip() for c in keras.split("|")[5:8]] == ["status", "ok", "missing"] and "REGRESSION" in keras
