"""Executors: one plan run one row after another (local), side by side on pinned core slots (devices), on a
real Ray cluster on loopback and through submitit's local executor -- the same records, resume and reports.

The fast tests check the choice, its refusals and the bookkeeping without starting anything; the e2e ones
run tiny torch rows (and the ``fault`` backend, tests/faults.py, where a row must hold or be killed).
One Ray cluster (a head and a second node, one CPU each, started by ``ray.cluster_utils.Cluster``)
serves the module and is shut down after it: Ray's start costs ~20 s on 2 cores.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.core.cpus import cores_text
from bench.core.job import Job
from bench.core.placement import RowOutcome
from bench.core.results import latest_records, read_records
from bench.run.executors import Row
from bench.run.executors import pool as pool_module
from bench.run.executors.pool import Beside, SlotPool
from bench.run.plan import RunOptions, plan_options
from tests.conftest import REPO, TINY_TASK, only_run_dir, printed, run_cli, start_cli
from tests.faults import fault_env, release, wait_for_run

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="process groups, affinity and /proc")
# the tests that read the module's one Ray cluster or its one local reference run, in one lane (each costs ~20 s);
# the others go wherever a lane is free
SHARES_FIXTURES = pytest.mark.xdist_group("executors")

# TINY_TASK with both phases that write artifacts, so the files a remote row sends back are checked too
PHASED_TASK = (
    TINY_TASK.replace("epochs = 2", "epochs = 1")
    + """
[decouple]
enabled = true
n_estimators = 5
top_k = [10]
[explain]
gradcam = true
layer = "conv2"
n_images = 2
"""
)
# What a row measured that is not a timing: equal whichever executor ran it (floats to rounding: the
# executors give a row different thread counts)
CONTENT = (
    "task",
    "backend",
    "repeat",
    "status",
    "error",
    "seed",
    "model",
    "params",
    "dataset",
    "dataset_source",
    "n_train",
    "n_test",
    "epochs",
    "batch_size",
    "test_acc",
    "test_loss",
    "confusion_matrix",
    "feature_dim",
    "rf_acc",
    "logreg_acc",
    "explain_layer",
    "explain_images",
    "explain_file",
)


def same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def content(run_dir: Path) -> list[dict]:
    rows = sorted(latest_records(read_records(run_dir)), key=lambda r: (r["backend"], r["repeat"]))
    return [{k: r.get(k) for k in CONTENT} | {"losses": [h["train_loss"] for h in r["history"]]} for r in rows]


def assert_same_content(a: Path, b: Path) -> None:
    ca, cb = content(a), content(b)
    assert len(ca) == len(cb) == 2 and all(r["status"] == "ok" for r in ca + cb), (ca, cb)
    for ra, rb in zip(ca, cb, strict=True):
        differ = {k: (ra[k], rb[k]) for k in ra if not same(ra[k], rb[k])}
        assert not differ, differ
    for r in cb:  # the artifact files the records link came back from the node and were written by the driver
        assert (b / r["explain_file"]).is_file()
        assert (b / r["explain_file"].replace(".explain.", ".decouple.")).is_file()


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def wait_gone(pids: list[int], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(p) for p in pids), f"still alive: {[p for p in pids if alive(p)]}"


@pytest.fixture
def phased(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(PHASED_TASK)
    return path


# -- the choice, its refusals, its bookkeeping (nothing started) --------------------------------------------


def test_the_local_path_imports_neither_ray_nor_submitit(tmp_path: Path):
    code = (
        "import sys; from pathlib import Path; from bench.run import cli, executors; from bench.run.plan import "
        "RunOptions; cli.build_parser(); "
        f"ex = executors.make(RunOptions(), Path({str(tmp_path)!r})); "
        "print(type(ex).__name__, sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'submitit')))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["Local", "[]"]


def test_executor_options_round_trip_through_plan_json_and_bad_ones_name_the_key(tmp_path: Path):
    opts = RunOptions(backends=("torch",), executor="devices", devices=(0, 1), slurm_time_min=30)
    opts = dataclasses.replace(opts, slurm_array_parallelism=4, slurm_follow_s=2.5, slurm_cpus=8)
    stored = json.loads(json.dumps({**vars_of(opts), "out": "x"}))
    assert plan_options(stored, tmp_path) == dataclasses.replace(opts, out=tmp_path)
    assert plan_options({"backends": ["torch"]}, tmp_path).executor == "local"  # a plan from before executors
    bad_ones = (
        ("executor", "kubernetes"),
        ("devices", [0, 0]),
        ("devices", [-1]),
        ("slurm_time_min", 0),
        ("slurm_array_parallelism", 0),
        ("slurm_cpus", 0),
        ("slurm_cpus", 8.5),
        ("slurm_follow_s", 0),
        ("slurm_follow_s", -1.0),
        ("slurm_follow_s", "5"),
        ("slurm_follow_s", True),
    )
    for key, bad in bad_ones:
        with pytest.raises(ValueError, match=f"options.{key}: must be"):
            plan_options({"backends": ["torch"], key: bad}, tmp_path)


def vars_of(opts: RunOptions) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in vars(opts).items()}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--executor", "ray"], "needs a cluster: --ray-address"),
        (["--executor", "devices"], "--executor devices needs --devices: the slots"),
        (["--devices", "0,0"], "distinct device numbers"),
        (["--devices", "ONE_PER_CORE_AND_ONE_MORE"], "need a core each"),
        (["--devices", "0", "--executor", "ray", "--ray-address", "x:1"], "--devices goes with --executor devices"),
        (["--slurm-array-parallelism", "2"], "--slurm-array-parallelism goes with --executor slurm"),
        (["--executor", "slurm", "--slurm-local", "--slurm-array-parallelism", "0"], "must be 1..1000 jobs"),
        (["--slurm-follow", "5"], "--slurm-follow goes with --executor slurm"),
        (["--slurm-cpus", "8"], "--slurm-cpus goes with --executor slurm"),
        (["--executor", "slurm", "--slurm-local", "--slurm-cpus", "0"], "--slurm-cpus: must be 1..4096 CPUs, got 0"),
        (["--executor", "slurm", "--slurm-local", "--slurm-cpus", "8x"], "--slurm-cpus: expected a whole number"),
        (
            ["--executor", "slurm", "--slurm-local", "--slurm-follow", "0"],
            "--slurm-follow: must be a number of seconds > 0",
        ),
        (["--executor", "slurm", "--slurm-local", "--slurm-follow", "nan"], "--slurm-follow: must be a number of"),
        (
            ["--executor", "slurm", "--slurm-local", "--slurm-follow", "1s"],
            "--slurm-follow: expected seconds, got '1s'",
        ),
        # two workers must first fit this process's cores (a lane has one): the whole machine, for this one
        pytest.param(["--devices", "0", "--workers", "1,2"], "data-parallel rows", marks=pytest.mark.whole_machine),
    ],
)
def test_an_executor_that_cannot_work_is_refused_in_one_line_before_anything_runs(args, says, clean_env, tmp_path):
    env = {k: v for k, v in clean_env.items() if k != "RAY_ADDRESS"}
    # the cores are counted here, not at collection, and the command counts the same ones: a lane's (tests/lanes.py),
    # which its children inherit, so one device more than this test may use is one more than the command may
    more = ",".join(map(str, range(len(os.sched_getaffinity(0)) + 1)))
    args = [more if a == "ONE_PER_CORE_AND_ONE_MORE" else a for a in args]
    proc = run_cli(["run", "mnist-lenet5", "--out", str(tmp_path / "r"), *args], env)
    assert proc.returncode == 2 and says in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def serve_once(reply: bytes) -> tuple[int, threading.Thread]:
    """A server on a free loopback port that answers its first connection with ``reply`` and closes; its port."""
    import socket

    server = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        with server, server.accept()[0] as conn:
            conn.recv(64)
            conn.sendall(reply)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    return server.getsockname()[1], thread


def test_ray_clients_known_start_up_failure_is_tried_again_and_any_other_failure_is_not():
    """Ray Client's server dies at start now and then (ray-project/ray#63202; a clean clone's test run here failed
    on it once): that failure is tried again, a moment apart, up to CONNECT_TRIES; no cluster at the address is
    refused at once, naming it; the known failure every time is refused after the last try."""
    from bench.run.executors import on_ray

    said: list[str] = []

    def failing(messages: list[str]):
        def init() -> None:
            if messages:
                raise ConnectionAbortedError(messages.pop(0))

        return init

    flake = f"Initialization failure from server: RuntimeError: {on_ray.CLIENT_FLAKE}. See the logs."
    on_ray.connect("ray://h:1", failing([flake, flake]), said.append, pause_s=0)  # the third try joins
    assert len(said) == 2 and all("failed to start (a known Ray flake): trying again" in s for s in said)
    tries = [flake] * on_ray.CONNECT_TRIES
    with pytest.raises(ValueError, match=r"no Ray cluster to join at ray://h:1 \(Initialization failure"):
        on_ray.connect("ray://h:1", failing(tries), said.append, pause_s=0)
    assert tries == []  # every try was made
    other = ["Could not connect to the cluster", "never asked"]
    with pytest.raises(ValueError, match="no Ray cluster to join at h:1 \\(Could not connect"):
        on_ray.connect("h:1", failing(other), said.append, pause_s=0)
    assert other == ["never asked"]  # refused at once


def test_a_ray_address_where_a_web_server_answers_is_refused_before_the_run(clean_env, tmp_path: Path):
    """QA 2026-12-06: an address where something other than Ray listens (a web server, the dashboard's port) passed
    the connect check, and ray.init retried it for minutes ("Timed out while waiting for GCS"), its run folder made.
    It is refused in one line, exit 2; a server answering as gRPC does (a SETTINGS frame) is taken for Ray's."""
    from bench.run.exec_cli import unreachable

    port, thread = serve_once(b"HTTP/1.0 400 Bad Request\r\n\r\n")
    out = tmp_path / "r"
    proc = run_cli(
        ["run", "mnist-lenet5", "--executor", "ray", "--ray-address", f"127.0.0.1:{port}", "--out", str(out)],
        clean_env,
        timeout=60,  # ray.init's minutes of retries: a failure, not a wait
    )
    thread.join(5)
    says = f"--executor ray: 127.0.0.1:{port} answers but is not a Ray cluster (no gRPC there)"
    assert proc.returncode == 2 and says in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not out.exists()
    port, thread = serve_once(bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))  # an HTTP/2 server's first frame: SETTINGS
    assert unreachable(f"127.0.0.1:{port}") is None
    thread.join(5)


def test_a_ray_cluster_that_cannot_be_found_is_bad_input_not_a_full_disk(monkeypatch, tmp_path: Path):
    """QA, 2026-12-06: `--ray-address auto` with no cluster ran ray.init's ConnectionError, an OSError, into the
    disk-full path: exit 1, "... when there is space again, finish it with: ... --resume"."""
    from bench.run.executors import on_ray

    def no_cluster(**kw):
        raise ConnectionError("Could not find any running Ray instance.")

    monkeypatch.setattr(on_ray.ray, "init", no_cluster)
    with pytest.raises(ValueError, match=r"^--executor ray: no Ray cluster to join at auto \(Could not find any"):
        on_ray.RayPool(tmp_path, "auto").start(["torch"], print)


def test_beside_counts_the_rows_that_overlapped_on_the_same_node():
    b = Beside()
    b.start("a", "n1", 0.0)
    b.start("b", "n1", 1.0)
    b.start("c", "n2", 1.0)  # another node: never counted
    b.end("a", 2.0)
    assert b.count("a") == 1  # b still runs
    b.end("b", 3.0)
    b.start("d", "n1", 3.0)  # starts as b ends: no overlap
    b.end("d", 4.0)
    assert (b.count("b"), b.count("c"), b.count("d")) == (1, 0, 0)
    assert cores_text([0, 1, 2, 3, 8, 10, 11]) == "0-3,8,10-11"


def test_a_streamed_row_yields_its_progress_lines_as_they_come_then_its_outcome_and_raises_what_it_raised():
    """A Ray row's task (``streamed``): each line is out before the row ends (the next waits for it to be read)."""
    from bench.core.placement import RowOutcome
    from bench.run.executors.remote import streamed

    read = threading.Event()

    def row(say):
        say("  [t/b] epoch 1/2")
        assert read.wait(5), "the first line was not read while the row ran"
        say("  [t/b] epoch 2/2")
        return RowOutcome({"status": "ok"})

    items = streamed(row)
    assert next(items) == "  [t/b] epoch 1/2"
    read.set()
    assert [*items] == ["  [t/b] epoch 2/2", RowOutcome({"status": "ok"})]

    def lost(say):
        say("  [t/b] epoch 1/2")
        raise OSError("node gone")

    items = streamed(lost)
    assert next(items) == "  [t/b] epoch 1/2"
    with pytest.raises(OSError, match="node gone"):
        next(items)


def test_a_progress_file_gives_the_driver_each_whole_line_once_as_it_grows(tmp_path: Path):
    """A SLURM job's progress lines reach the driver through a file both see: a line half written waits for its
    end, none is read twice, and a file the job cannot write never stops its row."""
    from bench.run.executors.follow import ProgressFile, Tail

    path = tmp_path / "row0.txt"
    tail, say = Tail(path), ProgressFile(path)
    assert tail.new_lines() == []  # the job has not started
    say("  [t/b] epoch 1/2")
    assert tail.new_lines() == ["  [t/b] epoch 1/2"] and tail.new_lines() == []
    with open(path, "a") as f:  # a line caught half written
        f.write("  [t/b] epoch 2")
    assert tail.new_lines() == []
    with open(path, "a") as f:
        f.write("/2\n  [t/b] test acc")
    assert tail.new_lines() == ["  [t/b] epoch 2/2"]
    say(" 0.5")
    assert tail.new_lines() == ["  [t/b] test acc 0.5"] and tail.new_lines() == []
    lost = ProgressFile(tmp_path / "gone" / "row1.txt")
    lost("  [t/b] epoch 1/2")  # no folder: given up, nothing raised into the thread draining the worker's output
    assert lost.broken


def test_a_slurm_jobs_progress_is_shown_while_it_runs_and_its_last_lines_before_its_outcome(monkeypatch, tmp_path):
    """The loop that waits on the array shows each job's new progress lines: while it runs (every FOLLOW_S), and
    all that is left once it is done, before its outcome is given back, whatever FOLLOW_S says."""
    on_slurm = pytest.importorskip("bench.run.executors.on_slurm")  # imports submitit
    from bench.core.placement import RowOutcome
    from bench.run.executors.follow import ProgressFile

    monkeypatch.setattr(on_slurm, "FOLLOW_S", 3600.0)  # after the first read, only a done job's file is read
    slurm = on_slurm.Slurm(tmp_path, RunOptions(executor="slurm", slurm_local=True))
    slurm.progress = tmp_path
    shown: list[str] = []

    class Job1:
        job_id, calls, shown_when_done = "1", 0, None

        def __init__(self, path: str) -> None:
            self.say = ProgressFile(Path(path))

        def done(self) -> bool:
            self.calls += 1
            if self.calls == 1:
                self.say("  [t/b] epoch 1/2")
                return False
            if self.calls == 2:
                self.shown_when_done = list(shown)
                self.say("  [t/b] epoch 2/2")
                self.say("  [t/b] test acc 0.5")
            return True

    jobs: list[Job1] = []
    monkeypatch.setattr(slurm, "_submit", lambda rows, *_: jobs.extend(Job1(p) for p in slurm._tails(rows)) or jobs)
    monkeypatch.setattr(slurm, "_outcome", lambda row, job: RowOutcome({"status": "ok"}))
    rows = iter([Row(Job({"task": "t", "backend": "b", "repeat": 0}), "[1/1] t / b")])
    for _ in slurm.run(rows, 60, shown.append):
        shown.append("(outcome)")
    assert jobs[0].shown_when_done[-1] == "  [t/b] epoch 1/2"  # shown while the job ran
    assert shown[-4:] == ["  [t/b] epoch 1/2", "  [t/b] epoch 2/2", "  [t/b] test acc 0.5", "(outcome)"], shown


def test_the_driver_reads_the_running_jobs_progress_files_at_the_pace_slurm_follow_sets(monkeypatch, tmp_path):
    """Each read of a running job's progress file is an open on the cluster's shared file system: once a second
    (FOLLOW_S) for every running job unless --slurm-follow sets a slower (or faster) pace."""
    on_slurm = pytest.importorskip("bench.run.executors.on_slurm")  # imports submitit
    from bench.run.executors.follow import ProgressFile

    assert on_slurm.Slurm(tmp_path, RunOptions(executor="slurm")).follow_s == on_slurm.FOLLOW_S == 1.0
    clock = type("Clock", (), {"now": 100.0, "monotonic": lambda self: self.now, "sleep": time.sleep})()
    monkeypatch.setattr(on_slurm, "time", clock)  # on_slurm's clock alone
    slurm = on_slurm.Slurm(tmp_path, RunOptions(executor="slurm", slurm_local=True, slurm_follow_s=30.0))
    slurm.progress = tmp_path
    row = Row(Job({"task": "t", "backend": "b", "repeat": 0}), "[1/1] t / b")
    say = ProgressFile(Path(slurm._tails([row])[0]))

    class Running:
        def done(self) -> bool:
            return False

    shown: list[str] = []

    def read_at(now: float) -> list[str]:
        clock.now = now
        slurm._finished({1: (row, Running())}, shown.append)
        return shown

    say("  [t/b] epoch 1/3")
    assert read_at(100.0) == ["  [t/b] epoch 1/3"]  # the first pass reads every file
    say("  [t/b] epoch 2/3")
    assert read_at(129.0) == ["  [t/b] epoch 1/3"]  # not read again before 30 s have passed
    assert read_at(130.0) == ["  [t/b] epoch 1/3", "  [t/b] epoch 2/3"]


def test_a_cluster_jobs_new_state_is_said_once_as_sacct_reports_it(monkeypatch, tmp_path):
    """A row queued on a cluster said nothing between "submitted" and its result: each state sacct reports
    (through submitit's watcher) that the row's job has not been seen in yet gets a line, a running job its node;
    UNKNOWN (sacct has not heard of it) and the end (the result line says it) none."""
    on_slurm = pytest.importorskip("bench.run.executors.on_slurm")  # imports submitit
    from bench.core.placement import RowOutcome

    monkeypatch.setattr(on_slurm, "FOLLOW_S", 0.0)
    monkeypatch.setattr(on_slurm.time, "sleep", lambda _: None)
    slurm = on_slurm.Slurm(tmp_path, RunOptions(executor="slurm"))
    slurm.progress = tmp_path
    states = iter(["UNKNOWN", "PENDING", "PENDING", "RUNNING", "RUNNING", "COMPLETED"])

    class Queued:
        job_id, state = "77_0", "UNKNOWN"

        def done(self) -> bool:
            self.state = next(states)
            return self.state == "COMPLETED"

        def get_info(self, mode: str) -> dict[str, str]:
            assert mode == "cache"  # the watcher's last sacct answer: no call of its own
            return {"State": self.state, "NodeList": "node12"}

    monkeypatch.setattr(slurm, "_submit", lambda rows, *_: [slurm._tails(rows) and Queued()])
    monkeypatch.setattr(slurm, "_outcome", lambda row, job: RowOutcome({"status": "ok"}))
    shown: list[str] = []
    rows = iter([Row(Job({"task": "t", "backend": "b", "repeat": 0}), "[1/1] t / b")])
    for _ in slurm.run(rows, 60, shown.append):
        shown.append("(outcome)")
    assert shown == [
        "slurm: submitted 1 row(s) as job array 77",
        "slurm: [1/1] t / b pending (job 77_0)",
        "slurm: [1/1] t / b running on node12 (job 77_0)",
        "(outcome)",
    ]


class BlockingSlot:
    """A slot whose row waits until it is cancelled (``stubborn``: cancelling does nothing)."""

    node = "here"

    def __init__(self, stubborn: bool = False) -> None:
        self.cancelled, self.stubborn, self.started = threading.Event(), stubborn, threading.Event()

    def run_row(self, row, timeout_s, echo):
        self.started.set()
        self.cancelled.wait(5)
        raise RuntimeError("cancelled")

    def cancel(self) -> None:
        if not self.stubborn:
            self.cancelled.set()


@pytest.mark.parametrize("stubborn", [False, True])
def test_close_waits_for_the_threads_on_cancelled_rows_before_a_connection_may_go(monkeypatch, stubborn):
    """Ray's driver crashed (SIGSEGV) when ray.shutdown ran under a thread still inside ray.get after Ctrl-C:
    close returns once every waiting thread has, and says so when one did not within its bound."""
    monkeypatch.setattr(pool_module, "CLOSE_WAIT_S", 0.5 if stubborn else 30.0)
    slots = [BlockingSlot(stubborn), BlockingSlot(stubborn)]
    pool = SlotPool("test", slots)
    rows = iter([Row(Job({"task": "t", "backend": "b", "repeat": k}), f"row {k}") for k in range(2)])
    gen = pool.run(rows, 60, lambda _: None)
    waiter = threading.Thread(target=lambda: next(gen, None), daemon=True)  # the driver, blocked on the rows
    waiter.start()
    assert all(s.started.wait(5) for s in slots)
    started = time.monotonic()
    pool.close()
    assert pool.waiting is stubborn and pool.running == []
    waited = time.monotonic() - started
    assert (0.5 <= waited < 30.0) if stubborn else waited < 30.0  # stubborn: the bound, not for ever; else before it


class NodeSlot:
    """A slot on a node that dies during its ``dies_on``-th row (the row lost, as Ray's NodeDiedError loses it) and
    refuses every row after, unstarted (``SlotGone``, as Ray's TaskUnschedulableError); ``dead`` from the start."""

    def __init__(self, node: str, dies_on: int | None = None, dead: bool = False) -> None:
        self.node, self.dies_on, self.dead, self.ran = node, dies_on, dead, []

    def run_row(self, row, timeout_s, echo):
        if self.dead:
            raise pool_module.SlotGone(f"{self.node} is gone")
        self.ran.append(row.key[2])
        if len(self.ran) == self.dies_on:
            self.dead = True
            raise ConnectionError(f"{self.node} died under the row")
        return RowOutcome(dict(row.job.record, status="ok"))

    def cancel(self) -> None:
        pass

    def gone(self, error: Exception) -> str | None:
        return f"{self.node} died" if self.dead else None


def rows_of(n: int) -> list[Row]:
    return [Row(Job({"task": "t", "backend": "b", "repeat": k}), f"row {k}") for k in range(n)]


def test_a_slot_whose_node_died_is_retired_and_the_rows_to_come_go_to_the_slots_left():
    """QA, 2026-12-08: after a Ray node died the pool gave its slot row after row, each failing at once ("The node
    specified via NodeAffinitySchedulingStrategy doesn't exist"): 2 of 6 rows ran. The row in flight when the node
    died is lost (--resume runs it again); a row a dead slot refused unstarted runs on a live one; every other row
    runs on the slot left."""
    died, healthy, dead = NodeSlot("a", dies_on=1), NodeSlot("b"), NodeSlot("c", dead=True)
    said: list[str] = []
    outcomes = list(SlotPool("test", [died, healthy, dead]).run(iter(rows_of(6)), 60, said.append))
    status = {row.key[2]: (o.record["status"], o.record.get("lost"), o.record["node"]) for row, o in outcomes}
    assert len(outcomes) == 6 and status[died.ran[0]] == ("failed", True, "a"), status
    assert all(status[k] == ("ok", None, "b") for k in healthy.ran) and sorted(healthy.ran) == [1, 2, 3, 4, 5]
    assert died.ran == [0] and dead.ran == []  # nothing more went to either once it was out
    out = [line for line in said if "out of the run" in line]
    assert sorted(line.split(";")[0] for line in out) == [
        "test: slot 0 on a is out of the run (a died)",
        "test: slot 2 on c is out of the run (c is gone)",
    ] and out[-1].endswith("; the rows to come go to the 1 slot(s) left"), said


def test_with_every_slot_gone_a_ray_run_stops_saying_why_and_how_to_finish_it(tmp_path: Path):
    """With rows left and no slot to run them the run stops (RunStopped: state.json "stopped", exit 1) and names the
    --resume that finishes it, where the pool had each row fail at once; with no row left it ends as it is."""
    from bench.run.executors import on_ray
    from bench.run.runfolder import RunStopped

    with pytest.raises(pool_module.NoSlotLeft, match=r"^slot 0 on a: a died$"):
        list(SlotPool("test", [NodeSlot("a", dies_on=1)]).run(iter(rows_of(3)), 60, print))
    assert len(list(SlotPool("test", [NodeSlot("a", dies_on=1)]).run(iter(rows_of(1)), 60, print))) == 1

    (tmp_path / "state.json").write_text(json.dumps({"state": "running", "command": "all"}))
    ray_pool = on_ray.RayPool(tmp_path, "head:6379")
    ray_pool.slots = [NodeSlot("a", dies_on=2), NodeSlot("b", dies_on=1)]
    landed = []
    with pytest.raises(RunStopped) as stop:
        for _row, outcome in ray_pool.run(iter(rows_of(5)), 60, print):
            landed.append(outcome.record["status"])
    assert sorted(landed) == ["failed", "failed", "ok"] and stop.value.run_dir == tmp_path
    said = str(stop.value)
    assert said.startswith("the run stopped: no slot of the Ray cluster at head:6379 is left (slot ") and (
        f"finish it with: python -m bench all --resume {tmp_path}" in said
    ), said


def test_slurm_settings_come_from_the_command_line_else_the_tasks_runtime(tmp_path: Path):
    on_slurm = pytest.importorskip("bench.run.executors.on_slurm")  # imports submitit
    runtime = {"slurm_partition": "cpu", "slurm_account": "lab", "slurm_time_min": 30}
    row = Row(Job({}, spec={"runtime": runtime}), "t")
    # --slurm-cpus given: sinfo is not asked (the default's test fakes it: a machine here may have a real one)
    opts = RunOptions(executor="slurm", slurm_partition="gpu", slurm_gpus=True, slurm_cpus=6)
    flags = on_slurm.Slurm(tmp_path, opts)
    assert flags.settings(row) == ("gpu", "lab", 30)
    expected = {"timeout_min": 30, "slurm_array_parallelism": 256, "slurm_partition": "gpu", "slurm_account": "lab"}
    assert flags.params(flags.settings(row)) == expected | {"gpus_per_node": 1, "cpus_per_task": 6}
    plain = on_slurm.Slurm(tmp_path, RunOptions(executor="slurm", timeout_s=600.5, slurm_array_parallelism=8))
    assert plain.settings(Row(Job({}), "t")) == ("", "", 16)  # the per-run limit + 5 min
    assert plain.params(("", "", 16)) == {"timeout_min": 16, "slurm_array_parallelism": 8, "slurm_exclusive": True}
    # on this machine one row at a time, as the local executor runs them, unless asked; its own throttle
    here = on_slurm.Slurm(tmp_path, RunOptions(executor="slurm", slurm_local=True))
    assert here.parallelism == 1 and here.params(("cpu", "lab", 16)) == {"timeout_min": 16}
    assert (
        on_slurm.Slurm(tmp_path, RunOptions(executor="slurm", slurm_local=True, slurm_array_parallelism=3)).parallelism
        == 3
    )


def test_slurm_without_sbatch_is_refused_up_front_unless_slurm_local(clean_env, tmp_path: Path):
    """submitit's AutoExecutor, finding no SLURM, ran the array here without a word; now only --slurm-local does."""
    bare = tmp_path / "bin"  # a PATH with python and no sbatch, whatever this machine has
    bare.mkdir()
    (bare / "python").symlink_to(sys.executable)
    env = {**clean_env, "PATH": str(bare)}
    proc = run_cli(["run", "mnist-lenet5", "--executor", "slurm", "--out", str(tmp_path / "r")], env)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    says = "--executor slurm: SLURM's sbatch and srun were not found on PATH (--slurm-local runs the job array locally)"
    assert says in proc.stderr, proc.stderr
    assert not (tmp_path / "r").exists()


def test_slurm_submits_to_slurm_when_sbatch_is_there_and_a_resumed_plan_without_it_is_refused(
    monkeypatch, tmp_path: Path
):
    on_slurm = pytest.importorskip("bench.run.executors.on_slurm")  # imports submitit
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch
    # a resumed plan's executor is not checked by the command line: start refuses (cmd_resume: exit 2)
    with pytest.raises(RuntimeError, match="sbatch and srun were not found"):
        on_slurm.Slurm(tmp_path / "a", RunOptions(executor="slurm")).start([], print)
    local = on_slurm.Slurm(tmp_path / "b", RunOptions(executor="slurm", slurm_local=True))
    local.start([], print)
    assert local.executor.cluster == "local"
    for command in ("sbatch", "srun"):  # submitit submits with sbatch and will not start without srun
        (tmp_path / command).write_text("#!/bin/sh\nexit 1\n")
        (tmp_path / command).chmod(0o755)
        if command == "sbatch":
            with pytest.raises(RuntimeError, match="SLURM's srun was not found on PATH"):
                on_slurm.Slurm(tmp_path / "a", RunOptions(executor="slurm")).start([], print)
    cluster = on_slurm.Slurm(tmp_path / "c", RunOptions(executor="slurm"))
    cluster.start([], print)
    assert cluster.executor.cluster == "slurm"  # named, not submitit's guess


def test_the_job_script_sbatch_gets_asks_for_what_the_options_say(monkeypatch, tmp_path: Path):
    """The script submitit hands to sbatch (no cluster runs here, so no other test reads it): the partition, account
    and time of the options, and one GPU (--slurm-gpus) or a whole node per job, as docs/executors.md says."""
    on_slurm = pytest.importorskip("bench.run.executors.on_slurm")  # imports submitit
    for command in ("sbatch", "srun"):
        (tmp_path / command).write_text("#!/bin/sh\nexit 1\n")
        (tmp_path / command).chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    for gpus, asks in ((True, "#SBATCH --gpus-per-node=1"), (False, "#SBATCH --exclusive")):
        opts = RunOptions(executor="slurm", slurm_partition="gpu", slurm_account="lab", slurm_gpus=gpus)
        slurm = on_slurm.Slurm(tmp_path / f"jobs-{gpus}", opts)
        slurm.start([], print)
        slurm.executor.update_parameters(**slurm.params(("gpu", "lab", 30)))
        lines = slurm.executor._executor._make_submission_file_text("python -m x", "u").splitlines()
        for line in ("#SBATCH --partition=gpu", "#SBATCH --account=lab", "#SBATCH --time=30", asks):
            assert line in lines, (line, lines)
        assert ("#SBATCH --exclusive" in lines) != gpus and any(line.startswith("srun ") for line in lines)


def _job_script(on_slurm, folder: Path, opts: RunOptions, partition: str = "gpu") -> list[str]:
    """The #SBATCH lines of the script submitit would hand sbatch for ``opts``' array on ``partition``."""
    slurm = on_slurm.Slurm(folder, opts)
    said: list[str] = []
    slurm.start([], said.append)
    slurm.executor.update_parameters(**slurm.params((partition, "", 30)))
    text = slurm.executor._executor._make_submission_file_text("python -m x", "u")
    return [line for line in text.splitlines() if line.startswith("#SBATCH")] + said


@pytest.mark.parametrize(
    ("sinfo", "cpus"),
    [
        # two kinds of node in the partition: the least share, so that every node can run a job
        ("64 gpu:a100:4(S:0-1)\n48 gpu:8\n", 6),
        ("32 (null)\n", None),  # no GPU named: the documented default
        (None, None),  # no sinfo (it fails): the same
    ],
)
def test_a_gpu_job_asks_for_its_share_of_the_nodes_cpus(monkeypatch, tmp_path: Path, sinfo, cpus):
    """Without --cpus-per-task SLURM gives a job its default, often one CPU, and a GPU row's framework threads and
    data pipeline were sized to it (QA, 2026-12-06). A GPU job asks the partition's CPUs per GPU as sinfo says (as
    a Ray GPU task asks), else CPUS_PER_GPU, saying which; --slurm-cpus sets it for either kind of job."""
    on_slurm = pytest.importorskip("bench.run.executors.on_slurm")
    fake = {"sbatch": "exit 1", "srun": "exit 1", "sinfo": f"printf '{sinfo}'" if sinfo else "exit 1"}
    for command, body in fake.items():
        (tmp_path / command).write_text(f"#!/bin/sh\n{body}\n")
        (tmp_path / command).chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    lines = _job_script(on_slurm, tmp_path / "a", RunOptions(executor="slurm", slurm_gpus=True))
    want = cpus or on_slurm.CPUS_PER_GPU
    assert f"#SBATCH --cpus-per-task={want}" in lines, lines
    assert any(f"each job asks {want}" in line and "--slurm-cpus" in line for line in lines), lines
    for gpus in (True, False):
        opts = RunOptions(executor="slurm", slurm_gpus=gpus, slurm_cpus=3)
        lines = _job_script(on_slurm, tmp_path / f"b{gpus}", opts)
        assert "#SBATCH --cpus-per-task=3" in lines and not any("each job asks" in line for line in lines), lines
    # a whole node (--exclusive) without --slurm-cpus: SLURM's own, no guess
    lines = _job_script(on_slurm, tmp_path / "c", RunOptions(executor="slurm"))
    assert not any("--cpus-per-task" in line for line in lines), lines


# -- devices: side by side on this machine, each row on its own cores ---------------------------------------


@pytest.mark.whole_machine  # two rows side by side, a core each
@pytest.mark.e2e
def test_devices_runs_two_rows_side_by_side_each_pinned_to_its_core_and_records_it(clean_env, tmp_path: Path):
    tiny, out, faults = tmp_path / "tiny.toml", tmp_path / "results", tmp_path / "faults"
    tiny.write_text(TINY_TASK)
    env = fault_env(clean_env, faults, {1: "hold", 2: "hold"})  # both rows hold: they must run at once
    proc = start_cli(
        ["run", str(tiny), "--backend", "fault", "--repeats", "2", "--devices", "0,1", "--out", str(out)],
        env,
        tmp_path / "run.log",
    )
    try:
        held = [wait_for_run(faults, k, timeout=120) for k in (1, 2)]
        cores = [Path(f"/proc/{h['pid']}/status").read_text().split("Cpus_allowed_list:")[1].split()[0] for h in held]
        assert sorted(cores) == ["0", "1"], cores  # one core each, not the same one
        for k in (1, 2):
            release(faults, k)
        assert proc.wait(timeout=120) == 0, printed(proc)
    finally:
        proc.kill()
    rows = latest_records(read_records(only_run_dir(out)))
    assert sorted(r["placement"] for r in rows) == ["cores 0", "cores 1"]
    assert all(r["executor"] == "devices" and r["rows_beside"] == 1 and r["threads"] == 1 for r in rows), rows
    assert "**shared node**" in (only_run_dir(out) / "summary.md").read_text()
    said = (tmp_path / "run.log").read_text()  # the two rows' progress lines interleave: each says which it is
    assert "  [tiny/fault] epoch 2/2 " in said and "  [tiny/fault #2] epoch 2/2 " in said, said


# -- Ray: a real cluster on loopback --------------------------------------------------------------------------


@contextlib.contextmanager
def started_cluster(faults: Path, head_cpus: int, nodes: int) -> Iterator[tuple[Any, str]]:
    """A Ray cluster on loopback whose processes carry the fault backend (``faults``' plans): a head with
    ``head_cpus`` and ``nodes`` more nodes of 1 CPU; the cluster (``ray.cluster_utils.Cluster``) and the ``ray://``
    address of its head's Ray Client server. Its processes take the CPU affinity of the process that starts it."""
    cluster_utils = pytest.importorskip("ray.cluster_utils")
    saved = dict(os.environ)
    os.environ.update(fault_env(dict(os.environ), faults, {}), RAY_USAGE_STATS_ENABLED="0")
    client_port = free_port()
    cluster = cluster_utils.Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": head_cpus,
            "num_gpus": 0,
            "include_dashboard": False,
            "ray_client_server_port": client_port,
        },
    )
    try:
        for _ in range(nodes):
            cluster.add_node(num_cpus=1, num_gpus=0)
        cluster.wait_for_nodes()
        yield cluster, f"ray://{cluster.address.rsplit(':', 1)[0]}:{client_port}"
    finally:
        cluster.shutdown()
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory: pytest.TempPathFactory):
    """A head and one more node (1 CPU each) whose processes carry the fault backend: the cluster, the faults
    folder and the ``ray://`` address of the head's Ray Client server."""
    faults = tmp_path_factory.mktemp("ray-faults")
    with started_cluster(faults, head_cpus=1, nodes=1) as (cluster, client):
        yield cluster, faults, client


@pytest.fixture(scope="module")
def ray_cluster(ray_head):
    """The module's cluster (``ray_head``): its address, the faults folder and its Ray Client's ``ray://`` address."""
    cluster, faults, client = ray_head
    return cluster.address, faults, client


def free_port() -> int:
    """A loopback port nothing listens on now (the OS's pick)."""
    import socket

    with socket.create_server(("127.0.0.1", 0)) as server:
        return server.getsockname()[1]


def fresh_faults(faults: Path, plan: dict[int, str], env: dict[str, str]) -> dict[str, str]:
    for f in faults.glob("r*-*"):  # run-k, release-k of an earlier test
        f.unlink()
    return fault_env(env, faults, plan)


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The phased plan (torch, 2 repeats) run by the local executor: what the others must equal."""
    tmp = tmp_path_factory.mktemp("local")
    (tmp / "tiny.toml").write_text(PHASED_TASK)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
    proc = run_cli(
        ["run", str(tmp / "tiny.toml"), "--backend", "torch", "--repeats", "2", "--out", str(tmp / "r")], env
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return only_run_dir(tmp / "r")


@SHARES_FIXTURES
@pytest.mark.e2e
def test_ray_runs_the_plan_with_the_records_of_a_local_run(ray_cluster, local_reference, clean_env, phased, tmp_path):
    address, _, _ = ray_cluster
    out = tmp_path / "results"
    proc = run_cli(
        [
            "run",
            str(phased),
            "--backend",
            "torch",
            "--repeats",
            "2",
            "--executor",
            "ray",
            "--ray-address",
            address,
            "--out",
            str(out),
        ],
        clean_env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = only_run_dir(out)
    assert_same_content(local_reference, run_dir)
    rows = latest_records(read_records(run_dir))
    assert {r["executor"] for r in rows} == {"ray"} and len({r["placement"].split()[1] for r in rows}) == 2  # 2 nodes
    assert all((run_dir / "logs" / f"tiny.torch.{r['repeat']}.log").stat().st_size > 0 for r in rows)


def held_row_progress(args: list[str], env: dict[str, str], faults: Path, log: Path) -> list[str]:
    """What a run of one ``fault`` row planned ``hold-epoch-2`` printed, once its first epoch's progress line was
    seen while the row waited after that epoch (and no later one), and the row released."""
    proc = start_cli(args, env, log)
    try:
        wait_for_run(faults, 1, timeout=180)
        deadline = time.monotonic() + 60
        while "[tiny/fault] epoch 1/2" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        held = log.read_text()
        assert "  [tiny/fault] epoch 1/2 " in held and "epoch 2/2" not in held, held  # shown while the row runs
        release(faults, 1)
        assert proc.wait(timeout=180) == 0, printed(proc)
    finally:
        proc.kill()
    return log.read_text().splitlines()


def assert_progress_once_before_result(said: list[str], started: str) -> None:
    """The row's progress lines after the line that says it ``started``: each epoch's, then its test accuracy,
    each once, all before the row's result line."""
    begun = next(i for i, ln in enumerate(said) if started in ln)
    lines = [ln for ln in said[begun + 1 :] if ln.startswith("  [tiny/fault] ")]  # the first step's time too
    ends = [m[1] for ln in lines if (m := re.match(r"  \[tiny/fault\] epoch (\d/2)  [\d.]+s  loss ", ln))]
    assert ends == ["1/2", "2/2"] and lines[-1].startswith("  [tiny/fault] test acc"), said
    assert len(set(lines)) == len(lines), said  # none twice
    result = next(i for i, ln in enumerate(said) if ln.startswith("[1/1] tiny / fault: "))
    assert said.index(lines[-1]) < result, said  # every progress line before the row's result line


@SHARES_FIXTURES
@pytest.mark.e2e
def test_a_ray_row_shows_its_progress_on_the_driver_while_it_runs_and_no_ray_noise(ray_cluster, clean_env, tmp_path):
    """QA, 2026-12-06: nothing was printed between a Ray row's "on HOST (slot 0)" and its result line (a torch row
    ran 76 s in silence): each progress line now comes back through Ray as the worker prints it, shown as a
    local row's, while Ray's own worker output stays off the driver."""
    address, faults, _ = ray_cluster
    tiny, out, log = tmp_path / "tiny.toml", tmp_path / "results", tmp_path / "run.log"
    tiny.write_text(TINY_TASK)  # 2 epochs
    env = fresh_faults(faults, {1: "hold-epoch-2"}, clean_env)  # the row waits after its first epoch
    args = ["--backend", "fault", "--executor", "ray", "--ray-address", address, "--out", str(out)]
    said = held_row_progress(["run", str(tiny), *args], env, faults, log)
    assert_progress_once_before_result(said, "tiny / fault on ")
    assert not [ln for ln in said if re.search(r"\bpid=\d|\b(INFO|WARNING)\b", ln)], said  # Ray's own lines


@SHARES_FIXTURES
@pytest.mark.e2e
def test_a_ray_client_address_runs_the_rows_and_says_their_progress_is_in_their_logs(
    ray_cluster, clean_env, tmp_path: Path
):
    """QA, 2026-12-06: through Ray Client (``ray://HOST:PORT``, an address the docs accept) every row failed, "no
    result: TypeError: 'ClientObjectRef' object is not iterable": Ray Client runs no streaming generator, which
    the task became to stream its progress lines. It runs the row whole there, and says where its lines are."""
    _, faults, client = ray_cluster
    tiny, out = tmp_path / "tiny.toml", tmp_path / "results"
    tiny.write_text(TINY_TASK)
    env = fresh_faults(faults, {}, clean_env)
    args = ["run", str(tiny), "--backend", "fault", "--executor", "ray", "--ray-address", client, "--out", str(out)]
    proc = run_cli(args, env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "through Ray Client (ray://), a row's progress lines are in its log" in proc.stdout, proc.stdout
    run_dir = only_run_dir(out)
    [row] = latest_records(read_records(run_dir))
    assert (row["status"], row["executor"]) == ("ok", "ray") and row["placement"].startswith("node "), row
    assert "epoch 2/2" in (run_dir / "logs" / "tiny.fault.0.log").read_text()


@SHARES_FIXTURES
@pytest.mark.e2e
def test_a_ray_address_of_the_other_kind_of_ray_server_is_refused_before_the_run(ray_cluster, clean_env, tmp_path):
    """QA, 2026-12-08: ``ray://HOST:<GCS port>`` passed the check before the run (a GCS speaks gRPC as Ray Client's
    server does), hung ~30 s, printed Ray's raw UserWarning and left a run folder whose summary said to --resume,
    which failed the same way. Which server answers is asked (one gRPC call each): the wrong one is refused in one
    line naming the right address, exit 2, no run folder."""
    from bench.run.exec_cli import unreachable

    address, _, client = ray_cluster
    host, port = address.rsplit(":", 1)
    out = tmp_path / "r"
    args = ["run", "mnist-lenet5", "--executor", "ray", "--ray-address", f"ray://{address}", "--out", str(out)]
    started = time.monotonic()
    proc = run_cli(args, clean_env, timeout=120)
    says = (
        f"--executor ray: port {port} answers as a Ray GCS, not a Ray Client server: use ray://{host}:10001 "
        f"(Ray Client's default port), or {address} without ray://"
    )
    assert proc.returncode == 2 and says in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not out.exists() and time.monotonic() - started < 25  # refused, not tried for 30 s
    client_port = client.rsplit(":", 1)[1]
    assert unreachable(f"{host}:{client_port}") == (
        f"--executor ray: port {client_port} answers as a Ray Client server, not a Ray GCS: use "
        f"ray://{host}:{client_port}, or the GCS's port without ray:// ({host}:6379, ray start --head's default)"
    )
    assert unreachable(address) is None and unreachable(client) is None  # the right kind each


def assert_lost_then_run_again(proc: subprocess.Popen, run_dir: Path, env: dict[str, str], error: str) -> None:
    """A run (``proc``, ended) that lost one of its two rows with its worker, node or job: the row is recorded
    lost, the run's end names the --resume that runs it again, the run is not in the history yet; the resume
    runs it alone, and the report and the history then hold each row once."""
    said = printed(proc)
    rows = sorted(latest_records(read_records(run_dir)), key=lambda r: r["status"])
    assert [(r["status"], r["lost"]) for r in rows] == [("failed", True), ("ok", None)], rows
    assert rows[0]["error"].startswith(f"no result: {error}"), rows[0]["error"]
    again = f"`python -m bench run --resume {run_dir}` runs it again"
    assert f"1 row was lost with its worker, node or job, not by a failure of its own: {again}" in said, said
    assert "failed (lost, not its own failure: --resume runs it again): no result: " in said, said
    assert f"history: {run_dir}: not added yet: 1 row was lost" in said, said
    assert "**This run is incomplete:** 1 row was lost" in (run_dir / "summary.md").read_text()
    resumed = run_cli(["run", "--resume", str(run_dir)], env)  # the plan's executor
    out = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0 and "1 of 2 to run (1 lost with their worker, node or job)" in out, out
    assert json.loads((run_dir / "state.json").read_text())["recorded"] == 2
    assert sorted((r["status"], r["lost"]) for r in latest_records(read_records(run_dir))) == [("ok", None)] * 2
    assert len(read_records(run_dir)) == 3  # the lost row's record stays, superseded
    assert (run_dir / "results.csv").read_text().count("\n") == 3 and "incomplete" not in (
        run_dir / "summary.md"
    ).read_text()
    assert f"metric rows of run {run_dir.name} added to" in out, out
    import pandas as pd

    [stored] = (run_dir.parent / "history").rglob(f"{run_dir.name}*.parquet")
    assert set(pd.read_parquet(stored).repeats) == {2}  # both repeats once each, not the lost one beside them


@SHARES_FIXTURES
@pytest.mark.e2e
def test_a_ray_worker_killed_mid_row_loses_that_row_the_other_goes_on_and_resume_runs_it_again(
    ray_cluster, clean_env, tmp_path: Path
):
    """QA, 2026-12-06: a row lost with its Ray worker was recorded failed and kept: `--resume` said "0 of 2 to
    run" and "complete", and a node lost mid-sweep meant starting again. It runs again, as an interrupted row."""
    address, faults, _ = ray_cluster
    tiny, out = tmp_path / "tiny.toml", tmp_path / "results"
    tiny.write_text(TINY_TASK)
    env = fresh_faults(faults, {1: "hold"}, clean_env)
    args = ["--backend", "fault", "--repeats", "2", "--executor", "ray", "--ray-address", address]
    proc = start_cli(["run", str(tiny), *args, "--out", str(out)], env, tmp_path / "run.log")
    try:
        held = wait_for_run(faults, 1, timeout=180)
        os.kill(held["server"], signal.SIGKILL)  # the Ray worker process running the row (its worker's parent)
        assert proc.wait(timeout=180) == 1  # a failed row
    finally:
        proc.kill()
    wait_gone([held["pid"]])
    assert_lost_then_run_again(proc, only_run_dir(out), env, "WorkerCrashedError: ")


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def wait_until(ready, timeout: float) -> bool:
    """Whether ``ready()`` came true within ``timeout`` s (polled)."""
    deadline = time.monotonic() + timeout
    while not ready() and time.monotonic() < deadline:
        time.sleep(0.2)
    return bool(ready())


@SHARES_FIXTURES
@pytest.mark.e2e
def test_a_ray_node_that_dies_mid_sweep_loses_its_row_and_the_rows_to_come_run_on_the_live_slots(
    ray_head, clean_env, tmp_path: Path
):
    """QA, 2026-12-08: after a node's raylet was killed, its slot went on getting rows, each failing at once
    ("TaskUnschedulableError: ... NodeAffinitySchedulingStrategy doesn't exist"): 2 of 6 rows ran. The slot is
    retired: its row is lost (--resume runs it again), the rows to come run on the live slots. And the ~43 lines
    of "(raylet)" / "[state-dump]" text Ray printed about the dead node go to logs/ray.log, not the terminal."""
    cluster, faults, _ = ray_head
    node = cluster.add_node(num_cpus=1, num_gpus=0)  # a third slot, this test's to kill
    tiny, out, log = tmp_path / "tiny.toml", tmp_path / "results", tmp_path / "run.log"
    tiny.write_text(TINY_TASK)
    env = fresh_faults(faults, {1: "hold", 2: "hold", 3: "hold"}, clean_env)  # one row held on each slot
    args = ["--backend", "fault", "--repeats", "5", "--executor", "ray", "--ray-address", cluster.address]
    try:
        cluster.wait_for_nodes()
        proc = start_cli(["run", str(tiny), *args, "--out", str(out)], env, log)
        try:
            held = {k: wait_for_run(faults, k, timeout=180) for k in (1, 2, 3)}
            raylet = node.all_processes["raylet"][0].process.pid  # a Ray worker is its raylet's child
            [doomed] = [k for k, h in held.items() if parent_of(h["server"]) == raylet]
            node.kill_raylet()  # SIGKILL, as `kill -9` of QA's
            # held until Ray has said all it says about the death (the GCS marks the node dead 10-15 s after its
            # raylet's, and publishes it) and the row on it was lost, so the rows to come are planned after both
            dead = node.node_id
            assert wait_until(
                lambda: not any(n["Alive"] for n in cluster.global_state.node_table() if n["NodeID"] == dead), 60
            )
            wait_until(lambda: "logs/ray.log" in log.read_text(), 30)
            assert wait_until(lambda: "failed (lost, not its own failure" in log.read_text(), 60), log.read_text()
            for k in held.keys() - {doomed}:
                release(faults, k)
            assert proc.wait(timeout=180) == 1, printed(proc)  # a lost row
        finally:
            proc.kill()
        wait_gone([held[doomed]["pid"]])
    finally:
        cluster.remove_node(node, allow_graceful=False)
    said, run_dir = log.read_text(), only_run_dir(out)
    rows = latest_records(read_records(run_dir))
    lost = [r for r in rows if r["lost"]]
    assert len(rows) == 5 and len(lost) == 1 and lost[0]["error"].startswith("no result: "), rows
    assert all(r["status"] == "ok" and not r["placement"].startswith(f"node {dead[:8]}") for r in rows if not r["lost"])
    assert re.search(
        rf"ray: slot \d on .+ is out of the run \(its node {dead[:8]} .+\); the rows to come go to the 2 slot", said
    ), said
    assert "1 row was lost with its worker, node or job" in said, said
    assert "(raylet)" not in said and "[state-dump]" not in said, said  # Ray's own text about the death
    assert f"Ray's messages are in {run_dir / 'logs' / 'ray.log'}" in said, said
    assert "Raylet is terminated" in (run_dir / "logs" / "ray.log").read_text()


@SHARES_FIXTURES  # not the module's cluster (its head is a slot), but one Ray cluster's lane at a time
@pytest.mark.e2e
def test_a_ray_run_whose_every_node_died_stops_with_its_resume_line(clean_env, tmp_path: Path):
    """With every slot's node dead and rows still to run, the run stops (state.json "stopped", exit 1) saying so and
    naming the --resume that finishes it once the cluster has nodes again; until 2026-12-08 every row left was
    given to a dead slot and failed at once. The head here has no CPU, so its one node is every slot."""
    tiny, out, log = tmp_path / "tiny.toml", tmp_path / "results", tmp_path / "run.log"
    tiny.write_text(TINY_TASK)
    faults = tmp_path / "faults"
    with started_cluster(faults, head_cpus=0, nodes=1) as (cluster, _):
        env = fault_env(clean_env, faults, {1: "hold"})
        args = ["--backend", "fault", "--repeats", "3", "--executor", "ray", "--ray-address", cluster.address]
        proc = start_cli(["run", str(tiny), *args, "--out", str(out)], env, log)
        try:
            held = wait_for_run(faults, 1, timeout=180)
            [node] = cluster.worker_nodes
            node.kill_raylet()
            assert proc.wait(timeout=180) == 1, printed(proc)
        finally:
            proc.kill()
        wait_gone([held["pid"]])
        run_dir, said = only_run_dir(out), log.read_text()
        at = re.escape(cluster.address)
        stop = rf"error: the run stopped: no slot of the Ray cluster at {at} is left \(slot 0 on \S+: "
        assert re.search(rf"{stop}its node {node.node_id[:8]} ", said), said
        again = f"once the cluster has nodes again, finish it with: python -m bench run --resume {run_dir}\n"
        assert again in said, said
        state = json.loads((run_dir / "state.json").read_text())
        assert state["state"] == "stopped" and state["error"].startswith("RunStopped: the run stopped: "), state
        assert [r["lost"] for r in read_records(run_dir)] == [True]  # the rest never started
        cluster.remove_node(node, allow_graceful=False)
        cluster.add_node(num_cpus=1, num_gpus=0)  # the cluster has a node again
        cluster.wait_for_nodes()
        resumed = run_cli(["run", "--resume", str(run_dir)], env)
    assert resumed.returncode == 0 and "3 of 3 to run (1 lost with" in resumed.stdout, resumed.stdout + resumed.stderr
    assert [r["status"] for r in latest_records(read_records(run_dir))] == ["ok"] * 3


@SHARES_FIXTURES
@pytest.mark.e2e
def test_ctrl_c_cancels_the_ray_tasks_and_a_local_resume_runs_what_is_missing(ray_cluster, clean_env, tmp_path):
    address, faults, _ = ray_cluster
    tiny, out = tmp_path / "tiny.toml", tmp_path / "results"
    tiny.write_text(TINY_TASK)
    env = fresh_faults(faults, {1: "hold", 2: "hold"}, clean_env)
    args = ["--backend", "fault", "--repeats", "2", "--executor", "ray", "--ray-address", address]
    proc = start_cli(["run", str(tiny), *args, "--out", str(out)], env, tmp_path / "run.log")
    try:
        held = [wait_for_run(faults, k, timeout=180) for k in (1, 2)]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 130, printed(proc)
    finally:
        proc.kill()
    wait_gone([h[k] for h in held for k in ("pid", "server")])  # rows and the Ray workers that ran them
    run_dir = only_run_dir(out)
    assert sorted(r["status"] for r in read_records(run_dir)) == ["interrupted", "interrupted"]
    resumed = run_cli(["run", "--resume", str(run_dir), "--executor", "local"], env)
    assert resumed.returncode == 0 and "2 of 2 to run" in resumed.stdout, resumed.stdout + resumed.stderr
    rows = latest_records(read_records(run_dir))
    assert [(r["status"], r["executor"]) for r in rows] == [("ok", "local")] * 2
    assert json.loads((run_dir / "state.json").read_text())["state"] == "complete"


@SHARES_FIXTURES
@pytest.mark.e2e
def test_sigterm_cancels_the_ray_tasks_as_ctrl_c_does(ray_cluster, clean_env, tmp_path: Path):
    """QA, 2026-12-06: ray.init sets a SIGTERM handler of its own: a SIGTERM to the driver printed a C++ stack
    dump and left state.json "running", no record of the row in flight. The run takes it as Ctrl-C (exit 143)."""
    address, faults, _ = ray_cluster
    tiny, out = tmp_path / "tiny.toml", tmp_path / "results"
    tiny.write_text(TINY_TASK)
    env = fresh_faults(faults, {1: "hold"}, clean_env)
    args = ["--backend", "fault", "--executor", "ray", "--ray-address", address, "--out", str(out)]
    proc = start_cli(["run", str(tiny), *args], env, tmp_path / "run.log")
    try:
        held = wait_for_run(faults, 1, timeout=180)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 143, printed(proc)
    finally:
        proc.kill()
    wait_gone([held["pid"], held["server"]])  # the row and the Ray worker that ran it
    said = (tmp_path / "run.log").read_text()
    assert "terminated (SIGTERM): the finished runs are kept in " in said and "SIGTERM received" not in said, said
    run_dir = only_run_dir(out)
    assert [r["status"] for r in read_records(run_dir)] == ["interrupted"]
    assert json.loads((run_dir / "state.json").read_text())["state"] == "interrupted"


def one_core_each(rows: list[dict]) -> list[str]:
    """Each row's cores (its placement's), after checking that each framework ran 1 thread on 1 core."""
    assert sorted(r["backend"] for r in rows) == ["keras", "torch"] and all(r["status"] == "ok" for r in rows), rows
    assert [r["threads"] for r in rows] == [1, 1], [(r["backend"], r["threads"], r["placement"]) for r in rows]
    cores = [r["placement"].rsplit("cores ", 1)[1] for r in rows]
    assert all(c.isdigit() for c in cores), cores
    return cores


@pytest.mark.whole_machine  # the rows' nodes see two cores and have one CPU each
@pytest.mark.e2e
@pytest.mark.frameworks
def test_a_ray_row_runs_on_its_slots_cpus_worth_of_cores_whichever_framework_it_runs(clean_env, tmp_path: Path):
    """QA, 2026-12-08: on 1-CPU Ray nodes a PyTorch row ran 1 thread (Ray sets OMP_NUM_THREADS to a task's CPUs)
    and a Keras (TF) row 2 (TensorFlow sizes its pools by the cores it may use), and the speed verdict read
    "Keras (TF) 1.48x faster than PyTorch". Each row now runs on as many cores as its slot has CPUs, the slots of
    one host on cores apart."""
    pytest.importorskip("torch")
    pytest.importorskip("keras")
    tiny, out = tmp_path / "tiny.toml", tmp_path / "results"
    tiny.write_text(TINY_TASK)
    with started_cluster(tmp_path / "faults", head_cpus=1, nodes=1) as (cluster, _):
        args = ["--backend", "torch,keras", "--executor", "ray", "--ray-address", cluster.address, "--out", str(out)]
        proc = run_cli(["run", str(tiny), *args], clean_env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cores = one_core_each(latest_records(read_records(only_run_dir(out))))
    assert len(set(cores)) == 2, cores  # side by side, each slot on a core of its own


@pytest.mark.whole_machine  # the job sees two cores and asks for one
@pytest.mark.e2e
@pytest.mark.frameworks
def test_a_slurm_row_runs_on_the_cpus_its_job_asks_whichever_framework_it_runs(clean_env, tmp_path: Path):
    """As a Ray row (above): a job's row runs on the CPUs the job asks (--slurm-cpus), as many threads in every
    framework; under --slurm-local, on that many of this machine's cores (it ran on all of them, the option unread)."""
    pytest.importorskip("submitit")
    pytest.importorskip("torch")
    pytest.importorskip("keras")
    tiny, out = tmp_path / "tiny.toml", tmp_path / "results"
    tiny.write_text(TINY_TASK)
    args = ["--backend", "torch,keras", "--executor", "slurm", "--slurm-local", "--slurm-cpus", "1", "--out", str(out)]
    proc = run_cli(["run", str(tiny), *args], clean_env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    first = str(min(os.sched_getaffinity(0)))
    assert one_core_each(latest_records(read_records(only_run_dir(out)))) == [first, first]  # one job at a time


# -- SLURM through submitit (its local executor: the same job array as processes here) ----------------------


@SHARES_FIXTURES
@pytest.mark.e2e
def test_submitit_runs_the_plan_as_one_job_array_with_the_records_of_a_local_run(
    local_reference, clean_env, phased, tmp_path: Path
):
    pytest.importorskip("submitit")
    out = tmp_path / "results"
    proc = run_cli(
        [
            "run",
            str(phased),
            "--backend",
            "torch",
            "--repeats",
            "2",
            "--executor",
            "slurm",
            "--slurm-local",
            "--out",
            str(out),
        ],
        clean_env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "the job array runs here, 1 row(s) at a time" in proc.stdout
    run_dir = only_run_dir(out)
    assert_same_content(local_reference, run_dir)
    assert {r["executor"] for r in read_records(run_dir)} == {"slurm"}
    assert not (run_dir / ".jobs").exists()  # submitit's folder went with the run's job files


@pytest.mark.e2e
def test_the_local_job_array_runs_as_many_rows_at_once_as_asked_and_each_counts_the_other(clean_env, tmp_path):
    """submitit's local executor ignores slurm_array_parallelism and started every job at once; and a row's
    rows_beside counted only the rows finished before it, so the first of two rows side by side said 0."""
    pytest.importorskip("submitit")
    tiny, out, faults = tmp_path / "tiny.toml", tmp_path / "results", tmp_path / "faults"
    tiny.write_text(TINY_TASK)
    env = fault_env(clean_env, faults, {1: "hold", 2: "hold"})
    args = ["--backend", "fault", "--repeats", "3", "--executor", "slurm", "--slurm-local"]
    proc = start_cli(
        ["run", str(tiny), *args, "--slurm-array-parallelism", "2", "--out", str(out)], env, tmp_path / "log"
    )
    try:
        for k in (1, 2):  # both held at once: two at a time
            wait_for_run(faults, k, timeout=180)
        assert not (faults / "run-3").exists()  # and not three: the third waits for a free slot
        for k in (1, 2):
            release(faults, k)
        assert proc.wait(timeout=180) == 0, printed(proc)
    finally:
        proc.kill()
    rows = {r["repeat"]: r for r in read_records(only_run_dir(out))}
    assert [rows[k]["status"] for k in range(3)] == ["ok"] * 3
    assert rows[0]["rows_beside"] == rows[1]["rows_beside"] == 1  # whichever ended first, the other was there


@pytest.mark.e2e
def test_a_local_row_shows_its_progress_in_a_file_while_it_runs(clean_env, tmp_path: Path):
    """`bench run ... > run.log` (or `| tee`, or CI's log): without PYTHONUNBUFFERED, as in a user's shell, Python
    held the driver's lines in an 8 KB buffer, and the row's progress reached the file after the row (the Ray
    and SLURM tests of this module failed so in `tox -e other-kernels`, 2026-12-07); bench writes a line at a
    time. The suite runs every command without the variable (tests/conftest.py): asserted here, not assumed."""
    assert "PYTHONUNBUFFERED" not in clean_env
    tiny, out, faults = tmp_path / "tiny.toml", tmp_path / "results", tmp_path / "faults"
    tiny.write_text(TINY_TASK)  # 2 epochs
    env = fault_env(clean_env, faults, {1: "hold-epoch-2"})  # the row waits after its first epoch
    said = held_row_progress(["run", str(tiny), "--backend", "fault", "--out", str(out)], env, faults, tmp_path / "log")
    assert_progress_once_before_result(said, "tiny / fault")


@pytest.mark.e2e
def test_a_slurm_row_shows_its_progress_on_the_driver_while_its_job_runs(clean_env, tmp_path: Path):
    """QA, 2026-12-06: nothing was printed between a job's "as local job N" and its row's result line (the job
    kept the worker's output to the row's log): the job appends each progress line to a file of its own in
    submitit's folder, which the loop waiting on the array follows."""
    pytest.importorskip("submitit")
    tiny, out, faults = tmp_path / "tiny.toml", tmp_path / "results", tmp_path / "faults"
    tiny.write_text(TINY_TASK)  # 2 epochs
    env = fault_env(clean_env, faults, {1: "hold-epoch-2"})  # the row waits after its first epoch
    args = ["--backend", "fault", "--executor", "slurm", "--slurm-local", "--out", str(out)]
    said = held_row_progress(["run", str(tiny), *args], env, faults, tmp_path / "run.log")
    assert_progress_once_before_result(said, "tiny / fault as local job ")
    assert not (only_run_dir(out) / ".jobs").exists()  # the progress files went with submitit's folder


def test_a_local_job_that_left_no_result_is_lost_at_once_not_after_submitits_shared_file_system_wait(tmp_path):
    """submitit waits up to 15 s for a finished job's result file (a cluster's shared file system may show it
    late); a --slurm-local job wrote to this machine's disk, and its lost row was said 15 s after the job died."""
    submitit = pytest.importorskip("submitit")
    from bench.run.executors import on_slurm

    executor = on_slurm.LocalArray(folder=tmp_path)
    executor.update_parameters(timeout_min=2)
    job = executor.submit(os._exit, 3)  # the job's process ends with no result, as a killed one does
    deadline = time.monotonic() + 120
    while not job.done() and time.monotonic() < deadline:
        time.sleep(0.1)
    started = time.monotonic()
    with pytest.raises(submitit.core.utils.UncompletedJobError, match="has not produced any output"):
        job.result()
    waited = time.monotonic() - started
    assert waited < submitit.core.core.Job._results_timeout_s / 3, waited  # ~1 s (LOCAL_RESULT_WAIT_S), not 15


def finished_local_job(executor, *args):
    """A job of ``executor`` (a LocalArray) running ``args``, once it is done."""
    job = executor.submit(*args)
    deadline = time.monotonic() + 120
    while not job.done() and time.monotonic() < deadline:
        time.sleep(0.1)
    return job


def test_a_lost_jobs_error_keeps_submitits_reason_in_one_line_and_a_timeout_says_how_to_give_it_longer(
    monkeypatch, tmp_path: Path
):
    """QA, 2026-12-08: a lost job's error kept the first line of submitit's message, "Job 7397 (task: 0) with path
    .../7397_0_result.pkl", and dropped its reason on the next ("has not produced any output (state: TIMEOUT)").
    The record's error keeps the reason in one line; a job out of time says how to resume with a longer limit."""
    submitit = pytest.importorskip("submitit")
    from bench.run.executors import on_slurm

    run_dir = tmp_path / "run"
    (run_dir / ".jobs" / "slurm").mkdir(parents=True)
    (run_dir / "state.json").write_text(json.dumps({"state": "running", "command": "run"}))
    opts = RunOptions(executor="slurm", slurm_local=True, slurm_time_min=10, slurm_cpus=2)
    slurm = on_slurm.Slurm(run_dir / ".jobs" / "slurm", opts)
    executor = on_slurm.LocalArray(folder=tmp_path / "jobs")
    executor.update_parameters(timeout_min=2)
    row = Row(Job({"task": "t", "backend": "b", "repeat": 0}), "[1/1] t / b")

    def error(job) -> str:
        said = slurm._outcome(row, job).record
        assert said["lost"] is True and "\n" not in said["error"], said
        return said["error"]

    gone = finished_local_job(executor, os._exit, 3)  # ended with no result, as a job SLURM killed
    assert re.fullmatch(rf"no result: slurm job {gone.job_id}: no output \(state: [A-Z]+\)", error(gone)), error(gone)
    raised = finished_local_job(executor, exec, "raise MemoryError('the node ran out')")  # the job's own trace
    assert error(raised) == (
        f"no result: slurm job {raised.job_id}: Job (task=0) failed during processing with trace: "
        "MemoryError: the node ran out"
    )
    resume = f"python -m bench run --resume {run_dir} --executor slurm --slurm-cpus 2 --slurm-local --slurm-time 20"
    # stopped by submitit at its limit's signal, as it stops every job that is not checkpointable
    stopped = "raise UncompletedJobError('Job not requeued because: timed-out and not checkpointable.')"
    late = finished_local_job(executor, exec, f"from submitit.core.utils import UncompletedJobError\n{stopped}")
    assert error(late) == (
        f"no result: slurm job {late.job_id}: timed out (state: TIMEOUT, stopped by submitit at its time limit's "
        f"signal): it ran past its 10-minute limit; give the rows longer with: {resume}"
    )
    monkeypatch.setattr(submitit.local.local.LocalJob, "state", property(lambda job: "TIMEOUT"))  # SLURM's word
    assert error(gone) == (
        f"no result: slurm job {gone.job_id}: no output (state: TIMEOUT): it ran past its 10-minute limit; give the "
        f"rows longer with: {resume}"
    )


@pytest.mark.e2e
def test_a_slurm_job_lost_mid_row_loses_that_row_and_resume_runs_it_again(clean_env, tmp_path: Path):
    """A job that dies under its row (a node lost, a preemption, an scancel by the cluster: here its process
    killed) leaves submitit no result; the row is lost, not failed by itself, and --resume runs it again."""
    pytest.importorskip("submitit")
    tiny, out, faults = tmp_path / "tiny.toml", tmp_path / "results", tmp_path / "faults"
    tiny.write_text(TINY_TASK)
    env = fault_env(clean_env, faults, {1: "hold"})
    args = ["--backend", "fault", "--repeats", "2", "--executor", "slurm", "--slurm-local"]
    proc = start_cli(["run", str(tiny), *args, "--out", str(out)], env, tmp_path / "run.log")
    try:
        held = wait_for_run(faults, 1, timeout=180)
        os.kill(held["server"], signal.SIGKILL)  # the array job's process that runs the row (its worker's parent)
        assert proc.wait(timeout=180) == 1, printed(proc)  # a failed row
    finally:
        proc.kill()
    wait_gone([held["pid"]])
    assert_lost_then_run_again(proc, only_run_dir(out), env, "slurm job ")


@pytest.mark.e2e
def test_a_slurm_job_stopped_at_its_time_limit_is_lost_saying_so_and_how_to_give_it_longer(clean_env, tmp_path):
    """A job that reaches its --slurm-time gets SLURM's signal first (USR2, ``signal_delay_s`` before the limit:
    30 s of a 1-minute local job), and submitit ends a job that is not checkpointable there: the row is lost, its
    error says it timed out, and the row's line gives the resume with a longer limit (QA, 2026-12-08: the reason
    was cut off)."""
    pytest.importorskip("submitit")
    tiny, out, faults = tmp_path / "tiny.toml", tmp_path / "results", tmp_path / "faults"
    tiny.write_text(TINY_TASK)
    env = fault_env(clean_env, faults, {1: "hold"})  # the row outlasts its job's minute
    args = ["--backend", "fault", "--executor", "slurm", "--slurm-local", "--slurm-time", "1", "--out", str(out)]
    proc = run_cli(["run", str(tiny), *args], env, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # a failed (lost) row
    run_dir = only_run_dir(out)
    [row] = latest_records(read_records(run_dir))
    assert row["lost"] and "\n" not in row["error"], row
    assert re.match(r"no result: slurm job \d+: timed out \(state: TIMEOUT, ", row["error"]), row["error"]
    longer = f"give the rows longer with: python -m bench run --resume {run_dir} --executor slurm --slurm-local"
    assert f"{longer} --slurm-time 2" in row["error"] and f"{longer} --slurm-time 2" in proc.stdout, proc.stdout
    wait_gone([json.loads((faults / "run-1").read_text())["pid"]])  # the row's worker went with its job


@pytest.mark.e2e
def test_ctrl_c_cancels_the_job_array_and_leaves_no_job_behind_and_resume_finishes_it(clean_env, tmp_path: Path):
    """A terminal's Ctrl-C reaches the whole foreground process group: submitit started each job's controller
    in it, and every controller printed KeyboardInterrupt tracebacks under the run's "interrupted" message."""
    pytest.importorskip("submitit")
    tiny, out, faults = tmp_path / "tiny.toml", tmp_path / "results", tmp_path / "faults"
    tiny.write_text(TINY_TASK)
    env = fault_env(clean_env, faults, {1: "hold"})  # the first row holds; the resume's rows are runs 2 and 3
    args = ["--backend", "fault", "--repeats", "2", "--executor", "slurm", "--slurm-local"]
    proc = start_cli(["run", str(tiny), *args, "--out", str(out)], env, tmp_path / "run.log", group=True)
    try:
        held = [wait_for_run(faults, 1, timeout=180)]
        assert not (faults / "run-2").exists()  # one row at a time on this machine, as the local executor runs them
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=120) == 130, printed(proc)
    finally:
        proc.kill()
    said = printed(proc)
    assert "interrupted: the finished runs are kept in" in said and "--resume" in said, said
    assert "Traceback" not in said and "KeyboardInterrupt" not in said, said
    wait_gone([h[k] for h in held for k in ("pid", "server")])  # the row and the array job that ran it
    run_dir = only_run_dir(out)
    assert [r["status"] for r in read_records(run_dir)] == ["interrupted"]  # the second had not started
    assert not (run_dir / ".jobs").exists()
    resumed = run_cli(["run", "--resume", str(run_dir)], env)  # the plan's executor: the job array again
    assert resumed.returncode == 0 and "2 of 2 to run" in resumed.stdout, resumed.stdout + resumed.stderr
    assert [(r["status"], r["executor"]) for r in latest_records(read_records(run_dir))] == [("ok", "slurm")] * 2
