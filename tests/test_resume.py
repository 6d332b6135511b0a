"""Runs that survive: Ctrl-C and kill -9 of the parent while a run trains, then --resume; a run or a worker
server killed mid-training; concurrent runs. Each test creates the state it names (tests.fault_backend)."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bench.core.results import RunFileWarning, latest_records, read_records
from tests.conftest import REPO, only_run_dir, printed, run_cli, sigint_default
from tests.faults import backend_env, fault_env, wait_for_run
from tests.test_cli import TINY_TASK

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="signals, process groups and /proc")


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bench", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=sigint_default,
    )


def workers_of(run_dir: Path) -> list[int]:
    """PIDs of this run's live worker processes: its worker servers and the runs they forked
    (a forked run keeps its server's command line, which names the run's job dir)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "bench.run.forkserver" in cmdline and str(run_dir) in cmdline:
            pids.append(int(proc.name))
    return pids


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_TASK)
    return path


def assert_complete(run_dir: Path, repeats: int, backend: str = "fault") -> None:
    rows = latest_records(read_records(run_dir))
    assert sorted((r["backend"], r["repeat"], r["status"]) for r in rows) == [
        (backend, i, "ok") for i in range(repeats)
    ]
    csv = (run_dir / "results.csv").read_text().splitlines()
    assert len(csv) == 1 + repeats and "interrupted" not in "".join(csv)
    assert json.loads((run_dir / "state.json").read_text())["state"] == "complete"
    assert "incomplete" not in (run_dir / "summary.md").read_text()


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def wait_gone(pids: list[int], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(p) for p in pids), f"still alive: {[p for p in pids if alive(p)]}"


@pytest.mark.e2e
def test_sigterm_stops_a_run_as_ctrl_c_does_and_says_how_to_finish_it(clean_env, tiny: Path, tmp_path: Path):
    """QA, 2026-12-06: SIGTERM (kill, timeout, a scheduler's limit on the driver's job) ended the driver at once:
    state.json said "running", nothing was said, the row in flight had no record, and a SLURM array's jobs ran on
    with no driver. It now takes Ctrl-C's way out, exit 143."""
    out, faults = tmp_path / "results", tmp_path / "faults"
    env = fault_env(clean_env, faults, {1: "hold"})
    proc = start(["run", str(tiny), "--backend", "fault", "--repeats", "2", "--out", str(out)], env)
    held = wait_for_run(faults, 1)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 143, output
    run_dir = only_run_dir(out)
    assert f"terminated (SIGTERM): the finished runs are kept in {run_dir / 'records.jsonl'}; finish with: " in output
    wait_gone([held["pid"], held["server"]])
    assert [(r["status"], r["error"]) for r in read_records(run_dir)] == [("interrupted", "terminated (SIGTERM)")]
    assert json.loads((run_dir / "state.json").read_text())["state"] == "interrupted"


@pytest.mark.e2e
def test_ctrl_c_while_a_run_trains_keeps_finished_rows_and_resume_completes(clean_env, tiny: Path, tmp_path: Path):
    out, faults = tmp_path / "results", tmp_path / "faults"
    env = fault_env(clean_env, faults, {2: "hold"})  # the second run blocks in training until released
    proc = start(["run", str(tiny), "--backend", "fault", "--repeats", "3", "--out", str(out)], env)
    held = wait_for_run(faults, 2)
    run_dir = only_run_dir(out)
    assert [r["status"] for r in read_records(run_dir)] == ["ok"]  # the first run is recorded ...
    assert alive(held["pid"]) and held["pid"] in workers_of(run_dir)  # ... and the second is training now
    for _ in range(3):  # people press again: the later presses land in the first one's cleanup (QA, 2026-12-05)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.2)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output
    assert f"finish with: python -m bench run --resume {run_dir}" in output  # the command that ran
    wait_gone([held["pid"], held["server"]])
    rows = read_records(run_dir)
    assert [(r["repeat"], r["status"]) for r in rows] == [(0, "ok"), (1, "interrupted")]
    state = json.loads((run_dir / "state.json").read_text())
    assert state["state"] == "interrupted" and state["wall_s"] > 0
    assert state["recorded"] == 1  # the interrupted row runs again on --resume: not counted (QA said 2, summary 1)
    assert "This run is incomplete (interrupted)" in (run_dir / "summary.md").read_text()
    assert not workers_of(run_dir)
    stopped = shutil.copytree(run_dir, tmp_path / "stopped")  # the interrupted run, compared with its end below

    started = json.loads((run_dir / "environment.json").read_text())
    (run_dir / "environment.json").write_text(json.dumps(started | {"git_commit": "0000000"}))  # an older commit
    resumed = run_cli(["run", "--resume", str(run_dir)], env)  # what the line said
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert_complete(run_dir, 3)
    commits = {r["repeat"]: r["git_commit"] for r in read_records(run_dir)}
    assert commits[0] == started["git_commit"] and commits[1] == commits[2] != "0000000"  # each session's own
    # the wall time adds the resumed session to the interrupted one, and the summary says it
    total = json.loads((run_dir / "state.json").read_text())["wall_s"]
    assert total > state["wall_s"]
    minutes, seconds = divmod(round(total), 60)
    assert (
        f"Wall time {minutes} min {seconds} s, from the first row to the reports"
        in (run_dir / "summary.md").read_text()
    )
    assert len([r for r in read_records(run_dir) if r["repeat"] == 0]) == 1  # the finished row was kept
    # compared with the run it became, the interrupted run's landed repeat is compared (its figures judged as any
    # one repeat's: no status row, no "missing" for the two it lacks), a line says it is interrupted and how to
    # finish it, and a guard does not pass on it (exit 1)
    cmp = run_cli(["compare", str(run_dir), str(stopped)], env)
    assert cmp.returncode == 1 and "| status" not in cmp.stdout and "missing" not in cmp.stdout, cmp.stdout
    assert "threads differs" not in cmp.stdout  # its interrupted row (no threads) made them floats: "1" vs "1.0"
    finish = f"finish it with: python -m bench run --resume {stopped}"
    assert f"warning: B is interrupted, 1 of 3 planned rows recorded; {finish}" in cmp.stdout, cmp.stdout
    assert "B is interrupted: only the rows that landed are compared (" in cmp.stdout.rstrip().splitlines()[-1]


def pressed_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A planned run of one tiny task whose rows are interrupted as they start (Ctrl-C): (task, options, run folder)."""
    from bench.core.spec import parse_task
    from bench.run import plan, runfolder, runner

    def pressed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "_run_all", pressed)
    train = {"epochs": 1, "batch_size": 8, "lr": 0.01}
    task = parse_task({"name": "t", "dataset": {"name": "mnist"}, "model": {"arch": "lenet5"}, "train": train})
    opts = plan.RunOptions(backends=("torch",), out=tmp_path)
    run_dir = runfolder.new_run_dir(tmp_path)
    plan.write_plan(run_dir, [task], opts)
    return task, opts, run_dir


@pytest.mark.parametrize("command", ["zoo", "run", "all", "tune"])
def test_ctrl_c_names_the_command_that_was_running_with_resume(command, tmp_path: Path, monkeypatch):
    """QA: after `bench run` or `bench zoo`, Ctrl-C's line said `python -m bench all --resume RUN` (which resumes
    any run, but reads as running every built-in task): it names the command that ran, as summary.md does."""
    from bench.run import runner

    task, opts, run_dir = pressed_run(tmp_path, monkeypatch)
    said: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        runner.execute(run_dir, [task], opts, {"command": command}, said.append, history=False)
    assert f"finish with: python -m bench {command} --resume {run_dir}" in "\n".join(said)
    assert json.loads((run_dir / "state.json").read_text())["command"] == command
    assert f"Finish it with `python -m bench {command} --resume {run_dir}`" in (run_dir / "summary.md").read_text()
    said.clear()
    with pytest.raises(KeyboardInterrupt):  # no command known (or a state.json edited): `run`, right for every run
        runner.execute(run_dir, [task], opts, {"command": "report; rm -rf"}, said.append, history=False)
    assert f"finish with: python -m bench run --resume {run_dir}" in "\n".join(said)


def test_a_resume_by_another_command_keeps_the_command_that_started_the_run(tmp_path: Path, monkeypatch):
    """`tune --resume` of a plain `bench run` finishes its rows as `run --resume` would (it races nothing): the run
    kept "tune" as its command, and its lines then named `tune --resume` for a run that is no tune."""
    from bench.run import resume, runner

    task, opts, run_dir = pressed_run(tmp_path, monkeypatch)
    monkeypatch.setattr(resume, "check_task_data", lambda *a: None)  # the rows never start: no data needed
    with pytest.raises(KeyboardInterrupt):
        runner.execute(run_dir, [task], opts, {"command": "run"}, lambda _: None, history=False)
    said: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        resume.resume_suite(run_dir, said.append, command="tune")
    assert json.loads((run_dir / "state.json").read_text())["command"] == "run"
    assert f"finish with: python -m bench run --resume {run_dir}" in "\n".join(said)
    (run_dir / "state.json").write_text("{")  # unreadable: the resuming command's
    with pytest.raises(KeyboardInterrupt), pytest.warns(RunFileWarning, match="state.json"):
        resume.resume_suite(run_dir, said.append, command="zoo")
    assert json.loads((run_dir / "state.json").read_text())["command"] == "zoo"


def test_a_row_lost_with_its_worker_node_or_job_runs_again_on_resume_and_its_own_failure_does_not():
    """Whether --resume keeps a row is read from its record as written where the record is made
    (``no_result``): lost with its worker, node or job (``lost=``) it runs again, as an interrupted row does;
    its own failure, its timeout, and a lost row of a record from before the ``lost`` field are kept."""
    from bench.core.record import new_record
    from bench.core.results import kept_on_resume, lost_line, lost_row, table
    from bench.run.executors.remote import no_result

    base = new_record(task="t", backend="torch", repeat=0, status="running")
    lost = no_result(base, lost="WorkerCrashedError: the worker died unexpectedly")
    own = no_result(base, code=1, tail=["Traceback (most recent call last):", "ValueError: a bad layer"])
    timeout = no_result(base, timeout_s=5.0)
    interrupted = {**base, "status": "interrupted", "error": "interrupted (Ctrl-C)"}
    old = {k: v for k, v in lost.items() if k != "lost"}  # records.jsonl of a run from before the field
    assert (lost["status"], lost["lost"], own["lost"], timeout["lost"]) == ("failed", True, None, None)
    cases = {
        "lost": lost,
        "own": own,
        "timeout": timeout,
        "interrupted": interrupted,
        "old": old,
        "ok": base | {"status": "ok"},
    }
    assert {k: kept_on_resume(r) for k, r in cases.items()} == {
        "lost": False,
        "own": True,
        "timeout": True,
        "interrupted": False,
        "old": True,
        "ok": True,
    }
    assert [k for k, r in cases.items() if lost_row(r)] == ["lost"]
    # as the reports read it: a table row (pandas' own bools, NaN where a record had none)
    assert [lost_row(r) for r in table([lost, own, old]).to_dict("records")] == [True, False, False]
    assert [lost_row(r) for r in table([lost]).to_dict("records")] == [True]
    rerun = {**base, "status": "ok"}
    assert latest_records([lost, rerun]) == [rerun]  # the report, the history and compare read the new row alone
    line = lost_line([lost, own, old], Path("results/R"), "all")
    assert line == (
        "1 row was lost with its worker, node or job, not by a failure of its own: "
        "`python -m bench all --resume results/R` runs it again"
    )
    assert lost_line([lost, lost], Path("R")).startswith("2 rows were lost with their worker, node or job, not by")
    assert lost_line([own, timeout, old], Path("R")) == ""


def test_resume_runs_the_lost_rows_again_and_every_reader_counts_them_as_not_recorded(tmp_path: Path, monkeypatch):
    """QA, 2026-12-06: a row lost with its Ray worker, node or SLURM job was kept as failed: `--resume` said "0 of
    2 to run", state "complete", and a lost node meant starting the sweep again. The resume's plan line, state.json,
    the in-progress count, summary.md and the history's import now count a lost row as not recorded yet."""
    from bench.core.record import new_record
    from bench.core.results import append_record, table
    from bench.core.spec import parse_task
    from bench.report.text import incomplete_notice
    from bench.run import history_cli, plan, resume, runfolder, runner
    from bench.run.executors.remote import no_result

    task = parse_task(
        {
            "name": "t",
            "dataset": {"name": "mnist"},
            "model": {"arch": "lenet5"},
            "train": {"epochs": 1, "batch_size": 8, "lr": 0.01},
        }
    )
    opts = plan.RunOptions(backends=("torch",), repeats=5, out=tmp_path, full_report=False)
    run_dir = runfolder.new_run_dir(tmp_path)
    plan.write_plan(run_dir, [task], opts)

    def rec(repeat: int) -> dict:
        return runner.base_record(run_dir.name, task, "torch", repeat, repeat)

    lost = no_result(rec(0), lost="WorkerCrashedError: the worker died unexpectedly")
    for r in (
        lost,
        no_result(rec(1), code=1, tail=["Traceback (most recent call last):", "ValueError: a bad layer"]),
        no_result(rec(2), timeout_s=5.0),
        {**rec(3), "status": "interrupted", "error": "interrupted (Ctrl-C)"},
        {k: v for k, v in no_result(rec(4), lost="NodeDiedError").items() if k != "lost"},  # before the field
    ):
        append_record(run_dir, r)
    runfolder.write_json(run_dir / runfolder.STATE, {"planned": 5, "state": "complete", "command": "all"})
    assert resume.recorded_so_far(run_dir) == "3 of 5 runs recorded"
    every = table(latest_records(read_records(run_dir)))
    assert incomplete_notice(run_dir, every) == (
        "**This run is incomplete:** 1 row was lost with its worker, node or job, not by a failure of its own: "
        f"`python -m bench all --resume {run_dir}` runs it again."
    )
    assert "not added yet: 1 row was lost with its worker" in (history_cli.unfinished(run_dir) or "")

    ran: list[int] = []

    def run_all(todo, run_dir, *args, **kwargs):
        for row in todo:
            ran.append(row.repeat)
            append_record(run_dir, new_record(**{**rec(row.repeat), "status": "skipped", "error": "not run here"}))

    monkeypatch.setattr(runner, "_run_all", run_all)
    said: list[str] = []
    runner.execute(run_dir, [task], opts, {"command": "all"}, said.append, history=False)
    assert ran == [0, 3], said
    assert "; 2 of 5 to run (1 lost with their worker, node or job) -> " in "\n".join(said), said
    state = json.loads((run_dir / "state.json").read_text())
    assert (state["state"], state["recorded"]) == ("complete", 5)
    assert resume.recorded_so_far(run_dir) == "5 of 5 runs recorded"
    assert incomplete_notice(run_dir, table(latest_records(read_records(run_dir)))) == ""
    assert history_cli.unfinished(run_dir) is None
    latest = sorted((r["repeat"], r["status"]) for r in latest_records(read_records(run_dir)))
    assert latest == [(0, "skipped"), (1, "failed"), (2, "timeout"), (3, "skipped"), (4, "failed")]  # the new row wins


@pytest.mark.e2e
def test_kill_9_of_the_parent_while_a_run_trains_leaves_a_resumable_run(clean_env, tiny: Path, tmp_path: Path):
    out, faults = tmp_path / "results", tmp_path / "faults"
    env = fault_env(clean_env, faults, {2: "hold", 3: "hold"})
    proc = start(["run", str(tiny), "--backend", "fault", "--repeats", "3", "--out", str(out)], env)
    held = wait_for_run(faults, 2)
    run_dir = only_run_dir(out)
    assert alive(held["pid"]) and alive(held["server"]) and held["server"] != proc.pid
    assert {held["pid"], held["server"]} <= set(workers_of(run_dir))
    proc.kill()
    proc.communicate(timeout=30)
    wait_gone([held["pid"], held["server"]])  # the kernel ends both with their parent (PR_SET_PDEATHSIG)
    assert not workers_of(run_dir), "a worker outlived its killed parent"
    assert [r["status"] for r in read_records(run_dir)] == ["ok"]
    state = json.loads((run_dir / "state.json").read_text())
    assert state["state"] == "running" and "wall_s" not in state  # what a first session's kill -9 leaves

    # an earlier session's wall time survives a resume killed in turn (QA, 2026-12-08: the resume rewrote the state
    # without it, and the next one counted from 0: "Wall time 0 min 8 s" for a run of 35 s)
    (run_dir / "state.json").write_text(json.dumps({**state, "state": "interrupted", "wall_s": 16.6}))
    again = start(["run", "--resume", run_dir.name, "--out", str(out)], env)
    held = wait_for_run(faults, 3)
    again.kill()
    again.communicate(timeout=30)
    wait_gone([held["pid"], held["server"]])
    assert json.loads((run_dir / "state.json").read_text())["wall_s"] == 16.6

    resumed = run_cli(["run", "--resume", run_dir.name, "--out", str(out)], env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert_complete(run_dir, 3)
    assert json.loads((run_dir / "state.json").read_text())["wall_s"] > 16.6


@pytest.mark.e2e
def test_a_run_killed_mid_training_fails_its_row_and_its_server_runs_the_next(clean_env, tiny: Path, tmp_path: Path):
    out, faults = tmp_path / "results", tmp_path / "faults"
    env = fault_env(clean_env, faults, {1: "kill"})  # the first run SIGKILLs itself in its first epoch
    proc = run_cli(["run", str(tiny), "--backend", "fault", "--repeats", "2", "--out", str(out)], env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    run_dir = only_run_dir(out)
    rows = read_records(run_dir)
    assert [(r["repeat"], r["status"]) for r in rows] == [(0, "failed"), (1, "ok")]
    assert "worker killed by SIGKILL without a result" in rows[0]["error"]
    first, second = wait_for_run(faults, 1), wait_for_run(faults, 2)
    assert first["server"] == second["server"] and first["pid"] != second["pid"]  # same server, fresh child
    assert (run_dir / "logs" / "server-fault.log").read_text().count("imported in") == 1


@pytest.mark.e2e
def test_kill_9_of_a_worker_server_fails_its_row_and_a_new_server_runs_the_next(clean_env, tiny: Path, tmp_path: Path):
    out, faults = tmp_path / "results", tmp_path / "faults"
    env = fault_env(clean_env, faults, {1: "hold"})
    proc = start(["run", str(tiny), "--backend", "fault", "--repeats", "2", "--out", str(out)], env)
    held = wait_for_run(faults, 1)
    os.kill(held["server"], signal.SIGKILL)
    output, _ = proc.communicate(timeout=180)
    assert proc.returncode == 1, output
    run_dir = only_run_dir(out)
    rows = read_records(run_dir)
    assert [(r["repeat"], r["status"]) for r in rows] == [(0, "failed"), (1, "ok")]
    assert "no result: worker server killed by SIGKILL" in rows[0]["error"]
    assert not alive(held["pid"])  # the run died with its server
    assert wait_for_run(faults, 2)["server"] != held["server"]  # a new server ran the next one
    assert (run_dir / "logs" / "server-fault.log").read_text().count("imported in") == 2
    assert json.loads((run_dir / "state.json").read_text())["state"] == "complete"
    # lost with its server, not by a failure of its own: the run's end says so, and --resume runs it again
    assert rows[0]["lost"] is True and rows[1]["lost"] is None
    again = f"`python -m bench run --resume {run_dir}` runs it again"
    assert f"1 row was lost with its worker, node or job, not by a failure of its own: {again}" in output, output
    resumed = run_cli(["run", "--resume", str(run_dir)], env)
    assert resumed.returncode == 0 and "1 of 2 to run (1 lost with their worker, node or job)" in resumed.stdout
    assert_complete(run_dir, 2)


@pytest.mark.e2e
def test_a_run_in_use_cannot_be_resumed_twice(clean_env, tiny: Path, tmp_path: Path):
    out, env = tmp_path / "results", backend_env(clean_env, tmp_path / "site")
    assert run_cli(["run", str(tiny), "--backend", "numpy", "--out", str(out)], env).returncode == 0
    run_dir = only_run_dir(out)
    described = (run_dir / "environment.json").read_bytes()
    with open(run_dir / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        proc = run_cli(["all", "--resume", str(run_dir)], env)
    assert proc.returncode == 2 and "in use by another bench process" in proc.stderr
    assert (run_dir / "environment.json").read_bytes() == described  # no "resumed" entry for a refused resume
    proc = run_cli(["all", "--resume", str(tmp_path)], env)
    assert proc.returncode == 2 and "not a bench run directory" in proc.stderr


def test_report_on_a_run_still_in_progress_says_so_writes_nothing_and_suggests_no_resume(clean_env, tmp_path: Path):
    """While another bench process runs a run (it holds the lock; state.json says "running"), `report` says the
    run is in progress and that its reports come when it ends, and writes none: they would say "incomplete,
    finish it with --resume", and --resume would say "in use". Without the lock (a killed run) it reports."""
    run_dir = tmp_path / "20261124-105144-9bcb"
    shutil.copytree(REPO / "results/reference" / run_dir.name, run_dir)
    for name in ("summary.md", "results.csv", "index.html"):
        (run_dir / name).unlink(missing_ok=True)
    (run_dir / "state.json").write_text(json.dumps({"planned": 8, "state": "running"}))
    records = (run_dir / "records.jsonl").read_bytes()
    done = sum(r["status"] in ("ok", "skipped", "failed", "timeout") for r in latest_records(read_records(run_dir)))
    with open(run_dir / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        proc = run_cli(["report", str(run_dir)], clean_env)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stderr.startswith(
        f"error: {run_dir}: the run is still in progress: another bench process is running it "
        f"({done} of 8 runs recorded so far). It writes results.csv, summary.md and index.html when it ends"
    ), proc.stderr
    assert "--resume" not in proc.stdout + proc.stderr
    assert not any((run_dir / n).exists() for n in ("summary.md", "results.csv", "index.html"))
    assert (run_dir / "records.jsonl").read_bytes() == records
    proc = run_cli(["report", str(run_dir)], clean_env)  # no process holds it: killed, and --resume finishes it
    assert proc.returncode == 0, proc.stderr[-2000:]
    # a state.json naming no command (a run from before it did): `run --resume`, which finishes any run
    assert f"Finish it with `python -m bench run --resume {run_dir}`" in (run_dir / "summary.md").read_text()


@pytest.mark.e2e
def test_two_runs_started_at_once_get_their_own_directories(clean_env, tiny: Path, tmp_path: Path):
    out, env = tmp_path / "results", backend_env(clean_env, tmp_path / "site")
    procs = [start(["run", str(tiny), "--backend", "numpy", "--out", str(out)], env) for _ in range(2)]
    for p in procs:
        p.communicate(timeout=120)
        assert p.returncode == 0
    dirs = sorted(d for d in out.iterdir() if d.is_dir() and d.name != "history")
    assert len(dirs) == 2
    for d in dirs:
        assert len(read_records(d)) == 1 and os.path.basename(d) == read_records(d)[0]["run_id"]
    # both finished at once, and both landed in the history beside them (issue #22)
    assert sorted(p.name for p in (out / "history" / "runs").iterdir()) == [f"{d.name}.parquet" for d in dirs]


@pytest.mark.e2e
def test_ctrl_c_while_a_worker_server_is_forked_stops_the_run_and_leaves_no_server(
    tmp_path: Path, tiny: Path, clean_env
):
    """CPython drops a KeyboardInterrupt raised in an at-fork handler (a ``preexec_fn`` makes it run them): a
    Ctrl-C that lands while a worker server is forked must still stop the run (exit 130) and kill that server."""
    from tests.test_distributed import SLOW_FORK

    site, marks, out = tmp_path / "site", tmp_path / "forks", tmp_path / "results"
    site.mkdir()
    marks.mkdir()
    (site / "sitecustomize.py").write_text(SLOW_FORK)  # each fork of the runner waits 0.3 s in its handler
    path = os.pathsep.join(p for p in (str(site), clean_env.get("PYTHONPATH", "")) if p)
    env = {**clean_env, "PYTHONPATH": path, "FORK_MARK_DIR": str(marks)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", "run", str(tiny), "--backend", "torch", "--out", str(out)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=sigint_default,
    )
    try:
        deadline = time.monotonic() + 120
        while not (marks / "fork-0").exists():
            assert proc.poll() is None and time.monotonic() < deadline, printed(proc)
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal sends it: to the whole foreground group
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, output
    run_dir = only_run_dir(out)
    assert read_records(run_dir) == [] and workers_of(run_dir) == []
    assert json.loads((run_dir / "state.json").read_text())["state"] == "interrupted"


def drop_last_record(run_dir: Path) -> None:
    """The run as a Ctrl-C after its first row leaves it: the second row missing."""
    lines = (run_dir / "records.jsonl").read_text().splitlines(keepends=True)
    (run_dir / "records.jsonl").write_text("".join(lines[:-1]))


@pytest.mark.e2e
def test_a_resume_trains_on_the_data_the_run_started_with_or_refuses(clean_env, tiny: Path, tmp_path: Path):
    """QA, 2026-12-05: a run started with BENCH_DATA_DIR and resumed from a shell without it finished its
    task on the embedded stand-in, and the table put 20,000 MNIST digits beside 1,438 stand-in ones. A
    relative --data-dir failed a resume started elsewhere, and that failure was recorded for good."""
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    np.savez(
        data / "mnist.npz",
        x_train=rng.integers(0, 256, (400, 28, 28, 1), dtype=np.uint8),
        y_train=np.arange(400) % 10,
        x_test=rng.integers(0, 256, (100, 28, 28, 1), dtype=np.uint8),
        y_test=np.arange(100) % 10,
        classes=np.array([str(d) for d in range(10)]),
    )
    out, env = tmp_path / "results", backend_env(clean_env, tmp_path / "site")
    started = run_cli(
        ["run", str(tiny), "--backend", "numpy", "--repeats", "2", "--out", str(out)],
        {**env, "BENCH_DATA_DIR": str(data)},
    )
    assert started.returncode == 0, started.stdout + started.stderr
    run_dir = only_run_dir(out)
    source = f"file:{(data / 'mnist.npz').resolve()}"
    drop_last_record(run_dir)
    resumed = run_cli(["all", "--resume", str(run_dir)], env)  # this shell has no BENCH_DATA_DIR
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"resume: BENCH_DATA_DIR={data.absolute()} as the run started with (here: (unset))" in resumed.stdout
    assert [r["dataset_source"] for r in latest_records(read_records(run_dir))] == [source, source]

    # the data moved: the resume stops before the row runs, says why, and records nothing
    drop_last_record(run_dir)
    (data / "mnist.npz").rename(tmp_path / "mnist.npz")
    refused = run_cli(["all", "--resume", str(run_dir)], env)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert f"tiny: its recorded rows trained on {source} (300 train), this resume finds embedded:" in refused.stderr
    assert len(read_records(run_dir)) == 1
    (tmp_path / "mnist.npz").rename(data / "mnist.npz")

    # a relative --data-dir, resumed from another folder (an ignored --data-dir said so)
    rel = run_cli(
        ["run", str(tiny), "--backend", "numpy", "--repeats", "2", "--data-dir", "data", "--out", "rel"],
        env,
        cwd=tmp_path,
    )
    assert rel.returncode == 0, rel.stdout + rel.stderr
    run_dir = only_run_dir(tmp_path / "rel")
    drop_last_record(run_dir)
    again = run_cli(["all", "--resume", str(run_dir), "--data-dir", str(tmp_path)], env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "--resume runs the plan the run started with: --data-dir ignored" in again.stdout
    assert [r["dataset_source"] for r in latest_records(read_records(run_dir))] == [source, source]


@pytest.mark.e2e
def test_a_resume_that_would_send_data_parallel_rows_to_another_executor_is_refused(clean_env, tiny, tmp_path):
    """QA, 2026-12-05: resumed with --executor ray, an interrupted data-parallel row ran nowhere, and the run said
    complete. A fresh run refuses that choice up front; so does a resume now, before it touches the run."""
    out, env = tmp_path / "results", backend_env(clean_env, tmp_path / "site")
    assert run_cli(["run", str(tiny), "--backend", "numpy", "--out", str(out)], env).returncode == 0
    run_dir = only_run_dir(out)
    plan = json.loads((run_dir / "plan.json").read_text())
    plan["tasks"][0]["distributed"]["workers"] = [2]  # as a `--workers 2` run plans it
    (run_dir / "plan.json").write_text(json.dumps(plan))
    state = (run_dir / "state.json").read_text()
    proc = run_cli(["all", "--resume", str(run_dir), "--devices", "0"], env)
    assert proc.returncode == 2 and "data-parallel rows" in proc.stderr and "--executor local" in proc.stderr
    assert (run_dir / "state.json").read_text() == state  # untouched


@pytest.mark.e2e
def test_ctrl_c_in_a_tunes_race_points_at_no_rung_folder_and_resume_says_to_start_again(
    clean_env, tiny: Path, tmp_path: Path
):
    """Ctrl-C while a tune raced told the user to `--resume` the rung's folder under trials/ (which finishes that
    rung as an ordinary run, not the tune), and `--resume` of the tune's folder then said "not a bench run
    directory" (QA, 2026-12-06): the line now says a race is not resumed, and so does --resume, exit 2."""
    out, faults = tmp_path / "results", tmp_path / "faults"
    env = fault_env(clean_env, faults, {1: "hold"})  # the race's first trial blocks in training
    site = faults / "site" / "sitecustomize.py"  # the fault backend with a knob to race
    site.write_text(
        site.read_text()
        + "import dataclasses, backends\nfrom bench.core.knobs import knob, value\n"
        + 'backends.BACKENDS["fault"] = dataclasses.replace(backends.BACKENDS["fault"], knob_space=(knob("freeze", '
        + 'value("off"), value("features", channels_last=True)),))\n'
    )
    proc = start(["tune", str(tiny), "--backend", "fault", "--budget", "10m", "--out", str(out)], env)
    held = wait_for_run(faults, 1)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output
    wait_gone([held["pid"], held["server"]])
    run_dir = only_run_dir(out)
    assert (run_dir / "tune.json").is_file() and not (run_dir / "plan.json").exists()
    assert "--resume" not in output and "trials" in output  # the rung's records are kept, and said where
    assert "a tune stopped in its race has nothing to resume" in output and "start the tune again" in output
    resumed = run_cli(["tune", "--resume", str(run_dir)], env)
    assert resumed.returncode == 2 and "start the tune again" in resumed.stderr, resumed.stdout + resumed.stderr


def test_a_run_too_young_for_records_is_said_to_be_running_by_report_and_history_import(clean_env, tmp_path: Path):
    """QA, 2026-12-07: in a run's first seconds (its plan and state written, no row yet) `report` and `history
    import` said "not a run directory"; `--resume` said it was in use. Both say it is running now, and write nothing."""
    run_dir = tmp_path / "20261207-191330-bf06"
    run_dir.mkdir()
    (run_dir / "state.json").write_text(json.dumps({"planned": 2, "state": "running", "command": "run"}))
    store = tmp_path / "store"
    with open(run_dir / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        report = run_cli(["report", str(run_dir)], clean_env)
        imported = run_cli(["history", "--store", str(store), "import", str(run_dir)], clean_env)
    assert report.returncode == 2 and report.stderr.startswith(
        f"error: {run_dir}: the run is still in progress: another bench process is running it (0 of 2 runs recorded "
        "so far). It writes"
    ), report.stderr
    assert imported.returncode == 0, imported.stderr
    assert f"{run_dir}: not added: another bench process is running it" in imported.stdout
    assert sorted(p.name for p in run_dir.iterdir()) == [".lock", "state.json"]
    assert not (store / "runs").exists() or not any((store / "runs").iterdir())
    proc = run_cli(["report", str(run_dir)], clean_env)  # the lock let go with no row written: nothing to report
    assert proc.returncode == 2 and proc.stderr == (
        f"error: {run_dir}: incomplete (running): 0 of 2 rows recorded; it has no plan.json to resume by: start it "
        "again; nothing to report\n"
    ), proc.stderr


@pytest.mark.parametrize(
    "argv, ignored",
    [
        (["run", "--resume", "r"], []),
        (["all", "--resume", "r"], []),
        (["zoo", "--resume", "r"], []),
        (
            ["run", "--resume", "r", "--backend", "keras-jax", "--profile", "full", "--reference", "keras"],
            ["--backend", "--profile", "--reference"],
        ),
        (
            ["run", "--resume", "r", "--timeout", "5", "--seed", "3", "--epochs", "2"],
            ["--seed", "--timeout", "--epochs"],
        ),
        (["tune", "--resume", "r", "--budget", "1m", "--knobs", "threads"], ["--budget", "--knobs"]),
        (["run", "--resume", "r", "--devices", "0", "--out", "elsewhere"], []),  # used: where rows run, --out
    ],
)
def test_every_option_a_resume_ignores_is_named_and_none_it_uses(argv: list[str], ignored: list[str]):
    """QA, 2026-12-07: beside --resume, --seed, --repeats and the recipe options were said to be ignored, while
    --backend, --profile, --reference and --timeout (as ignored) were dropped without a word."""
    from bench.run.cli import build_parser, ignored_on_resume

    assert ignored_on_resume(build_parser().parse_args(argv)) == ignored
