"""``slurm``: the plan's rows as one SLURM job array (one per distinct partition, account and time limit),
through submitit (``--slurm-local``: submitit's local executor, the same array run as processes on this
machine -- how it is tested without a cluster).

Each array job runs ``bench.run.executors.remote.run_row``: the worker as a fresh process on its node,
reading the task's arrays where the driver wrote them (SLURM clusters share a file system; submitit's
own folder, under the run's ``.jobs/``, needs it too) and returning its record, artifact files and log as
data. Its progress lines go to a file of its own in submitit's folder as the worker prints them; the loop that
waits on the array reads what is new (``follow``) and shows it as a local row's, before the row's result line.
A CPU row asks for a whole node (``--exclusive``), a GPU row (``--slurm-gpus``) for one GPU, so rows
never share a device, and its share of the node's CPUs (``cpus_per_gpu``, as a Ray GPU row asks; ``--slurm-cpus``
says otherwise): without ``--cpus-per-task`` SLURM gives a job its default, often one CPU, and the row's framework
threads and data pipeline were sized to it; the row's worker runs on that many cores, whichever framework
(``remote.row_cores``). Partition, account and time limit come from the command line, else
from each task's ``[runtime]``. A job that SLURM loses, kills or times out makes its row ``failed`` with
submitit's reason in one line (``why_lost``; a job out of time with the resume that gives it longer); Ctrl-C
cancels every job of the array (``scancel``).

Under ``--slurm-local`` the rows share this machine, so they run as the local executor runs them, one at a time
(``--slurm-array-parallelism N``: N at a time): submitit's local executor ignores ``slurm_array_parallelism``
and started every job of the array at once, each on every core. Each job's controller runs in a session of its
own, its output in submitit's folder: a terminal's Ctrl-C reaches the driver alone, which cancels the jobs, and
no controller prints its KeyboardInterrupt over the run's own "interrupted" message.
"""

from __future__ import annotations

import functools
import math
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import submitit
from submitit.local.local import LocalJob

from bench.core.job import Job
from bench.core.placement import Placement, RowOutcome
from bench.core.results import read_json_or_warn, resume_command
from bench.run.executors import Echo, Row, no_sbatch
from bench.run.executors.follow import ProgressFile, Tail
from bench.run.executors.pool import Beside
from bench.run.executors.remote import REPO, no_result, run_row
from bench.run.forkserver import die_with_parent
from bench.run.runfolder import STATE


def _job(job: Job, timeout_s: float, progress: str, cpus: int | None, lane: int | None) -> RowOutcome:
    """One array job: the row on this node, named by SLURM's ids, its progress lines appended to ``progress``, on
    ``cpus`` of the node's cores (None: every core the job may use). Where they start: ``lane`` times ``cpus`` under
    --slurm-local (the job's place among those running here at once); on a cluster SLURM confines a job to its CPUs
    (task/cgroup, task/affinity), and where it does not, a GPU job takes its GPU's share (``SLURM_JOB_GPUS``)."""
    ids = [os.environ.get(k) for k in ("SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID")]
    extra = f"job {ids[0]}_{ids[1]}" if all(ids) else ""
    if lane is None:
        gpu = os.environ.get("SLURM_JOB_GPUS", "").split(",")[0]
        lane = int(gpu) if gpu.isdigit() else 0
    return run_row(job, None, timeout_s, "slurm", extra, ProgressFile(Path(progress)), cpus, lane * (cpus or 0))


ARRAY_PARALLELISM = 256  # jobs of an array at a time on a cluster, where each has a node or a GPU of its own
# the states of a job not yet ended that a line says (sacct's words); its end is the row's result line, and UNKNOWN
# (sacct has not heard of the job yet) says nothing
SHOWN_STATES = ("PENDING", "RUNNING", "REQUEUED", "SUSPENDED", "PREEMPTED")
CPUS_PER_GPU = 4  # a GPU job's CPUs where sinfo does not say the partition's CPUs and GPUs (docs/executors.md)
SINFO_S = 30.0  # sinfo asks slurmctld once; a controller that does not answer in this long leaves CPUS_PER_GPU
FOLLOW_S = 1.0  # how often the running jobs' progress files are read (each an open on the shared file system)
# unless --slurm-follow says otherwise


def cpus_per_gpu(partition: str) -> int | None:
    """A GPU job's CPUs as Ray's GPU tasks ask (``on_ray``): a node's CPUs over its GPUs, the least over the
    partition's nodes (``sinfo``, its default partition for ""), so every node can run the job; None where sinfo
    fails or names no GPU."""
    command = ["sinfo", "--noheader", "--format=%c %G"] + ([f"--partition={partition}"] if partition else [])
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=SINFO_S, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    shares = []
    for line in out.splitlines():
        cpus, _, gres = line.strip().partition(" ")
        # GRES as sinfo writes it: gpu:4, gpu:a100:4, gpu:a100:4(S:0-1), several comma-separated
        gpus = sum(int(m.group(1)) for m in re.finditer(r"(?:^|,)gpu(?::[^:,()]+)*?:(\d+)", gres))
        if cpus.isdigit() and gpus:
            shares.append(max(1, int(cpus) // gpus))
    return min(shares) if shares else None


# How long a finished job's result file may take to show before its row is lost. submitit waits 15 s (a cluster's
# shared file system may show a file another node wrote late); a local job's controller is this machine's process
# and wrote to this machine's disk, so a job that ended with no result file has none: a row lost under
# --slurm-local was said 15 s after its job died, the next row waiting (QA, 2026-12-07).
LOCAL_RESULT_WAIT_S = 1


class LocalArray(submitit.LocalExecutor):
    """submitit's local executor with each job's controller (``python -m submitit.local._local``) started in a
    session of its own, its output in the job folder. submitit starts it in the driver's process group with the
    driver's terminal: a Ctrl-C reached every controller as well as the driver, and each printed two
    KeyboardInterrupt tracebacks (the second from the cancel that followed) under the run's own message. The
    controller's environment is submitit's own (``start_controller``, submitit 1.5.4, pinned), but for
    ``CUDA_VISIBLE_DEVICES``, left as the driver's (submitit's names the GPUs asked for: none), as a local row sees."""

    cluster = "local"

    def _submit_command(self, command: str) -> LocalJob:
        env = {
            **os.environ,
            "SUBMITIT_LOCAL_NTASKS": "1",
            "SUBMITIT_LOCAL_COMMAND": command,
            "SUBMITIT_LOCAL_TIMEOUT_S": str(int(60 * self.parameters.get("timeout_min", 2.0))),
            "SUBMITIT_LOCAL_SIGNAL_DELAY_S": str(int(self.parameters.get("signal_delay_s", 30))),
            "SUBMITIT_LOCAL_NODEID": "0",
            "SUBMITIT_LOCAL_JOB_NUM_NODES": "1",
            "SUBMITIT_STDERR_TO_STDOUT": "",
            "SUBMITIT_EXECUTOR": "local",
            "SUBMITIT_LOCAL_WITH_SHELL": "",
        }
        with open(self.folder / "controllers.log", "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "submitit.local._local", str(self.folder)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # out of the driver's group, it would outlive a driver killed outright: the driver's end is then
                # a cancel (SIGINT, as job.cancel sends), which stops the job and its row
                preexec_fn=functools.partial(die_with_parent, signal.SIGINT),
            )
        job: LocalJob[Any] = LocalJob(folder=self.folder, job_id=str(process.pid), process=process, tasks=[0])
        job._results_timeout_s = LOCAL_RESULT_WAIT_S
        return job


NO_OUTPUT = re.compile(r"has not produced any output \(state: ([^)]*)\)")  # submitit's UncompletedJobError
# submitit's own words in a job it stopped at its time limit's signal (USR2, sent ``signal_delay_s`` before it)
TIMED_OUT = ("timed-out and not checkpointable", "timed-out too many times")


def why_lost(e: Exception) -> tuple[str, bool]:
    """submitit's reason a job gave no result, in one line, and whether the job ran out of time. Its messages take
    several lines, the reason on the second ("Job 7397 (task: 0) with path .../7397_0_result.pkl" / "has not produced
    any output (state: TIMEOUT)") or at the end of a trace: the record kept the first line alone (QA, 2026-12-08)."""
    text = str(e).strip()
    if m := NO_OUTPUT.search(text):  # the job left no result file: SLURM's state says why (TIMEOUT, NODE_FAIL, ...)
        return f"no output (state: {m[1]})", m[1].startswith("TIMEOUT")
    if any(words in text for words in TIMED_OUT):
        return "timed out (state: TIMEOUT, stopped by submitit at its time limit's signal)", True
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return type(e).__name__, False
    rules = [i for i, ln in enumerate(lines) if set(ln) == {"-"}]
    if len(rules) > 1 and rules[1] > rules[0] + 1:  # a FailedJobError: the trace between two rules, its error last
        return f"{lines[0].rstrip(':')}: {lines[rules[1] - 1]}", False
    return lines[0], False


def slurm_flags(opts: Any, minutes: int) -> list[str]:
    """The command line's options for a run through SLURM as ``opts`` has it (a resume that names the executor
    takes its options from its own command line), with ``--slurm-time`` at ``minutes``."""
    flags = ["--executor", "slurm"]
    for flag, value in (
        ("--slurm-partition", opts.slurm_partition),
        ("--slurm-account", opts.slurm_account),
        ("--slurm-cpus", opts.slurm_cpus),
        ("--slurm-array-parallelism", opts.slurm_array_parallelism),
        ("--slurm-follow", opts.slurm_follow_s),
    ):
        flags += [flag, f"{value:g}" if isinstance(value, float) else str(value)] if value else []
    flags += ["--slurm-gpus"] * bool(opts.slurm_gpus) + ["--slurm-local"] * bool(opts.slurm_local)
    return [*flags, "--slurm-time", str(minutes)]


class Slurm:
    name = "slurm"
    sequential = False

    def __init__(self, folder: Path, opts: Any) -> None:
        self.folder, self.opts = folder, opts
        self.run_dir = folder.parents[1]  # ``make``'s RUN/.jobs/slurm
        self.jobs: list[tuple[Row, Any]] = []
        self.tails: dict[tuple, Tail] = {}  # row key -> its job's progress file, read so far
        self.follow_at = 0.0  # when the running jobs' progress files are read next (time.monotonic)
        self.follow_s = opts.slurm_follow_s or FOLLOW_S  # and how often (--slurm-follow)
        self.cpus: dict[str, int] = {}  # partition -> a GPU job's CPUs (gpu_cpus), sinfo asked once each
        self.echo: Echo = print  # start's
        self.states: dict[tuple, str] = {}  # row key -> its job's SLURM state as last shown (a cluster's array)
        self.beside = Beside()
        # jobs at a time: on this machine (--slurm-local) one, as the local executor runs rows, unless asked
        self.parallelism = opts.slurm_array_parallelism or (1 if opts.slurm_local else ARRAY_PARALLELISM)

    @property
    def running(self) -> list[Row]:
        return [row for row, job in self.jobs if not job.done()]

    def start(self, backends: list[str], echo: Echo) -> None:
        why = no_sbatch(self.opts.slurm_local)  # checked up front too; here for a resumed plan's executor
        if why:
            raise RuntimeError(why)
        self.executor: Any = (
            LocalArray(self.folder) if self.opts.slurm_local else submitit.AutoExecutor(self.folder, "slurm")
        )
        self.echo = echo
        echo(f"slurm: job arrays through submitit ({self.executor.cluster}), files in {self.folder}")
        # this driver's own: a job that a driver killed outright left running never writes into a resume's files
        self.folder.mkdir(parents=True, exist_ok=True)
        self.progress = Path(tempfile.mkdtemp(prefix="progress-", dir=self.folder))

    def settings(self, row: Row) -> tuple[str, str, int]:
        """(partition, account, minutes) of a row's job: the command line's, else its task's [runtime]."""
        rt = row.job.spec.get("runtime", {})
        minutes = self.opts.slurm_time_min or rt.get("slurm_time_min") or math.ceil(self.opts.timeout_s / 60) + 5
        return (
            self.opts.slurm_partition or rt.get("slurm_partition") or "",
            self.opts.slurm_account or rt.get("slurm_account") or "",
            minutes,
        )

    def params(self, settings: tuple[str, str, int]) -> dict[str, Any]:
        """submitit's parameters for an array: its settings, and a whole node (CPU rows) or one GPU per job."""
        partition, account, minutes = settings
        if self.opts.slurm_local:  # submitit's local executor reads the time limit only (the throttle is run_here's)
            return {"timeout_min": minutes}
        params: dict[str, Any] = {"timeout_min": minutes, "slurm_array_parallelism": self.parallelism}
        if partition:
            params["slurm_partition"] = partition
        if account:
            params["slurm_account"] = account
        params.update({"gpus_per_node": 1} if self.opts.slurm_gpus else {"slurm_exclusive": True})
        if cpus := self.job_cpus(partition):
            params["cpus_per_task"] = cpus
        return params

    def job_cpus(self, partition: str) -> int | None:
        """The CPUs a job on ``partition`` asks for, which its row runs on: --slurm-cpus, else a GPU job's share of
        its node (``gpu_cpus``); None for a whole node (a CPU job, ``--exclusive``) and, under --slurm-local without
        --slurm-cpus, this machine's every core."""
        if self.opts.slurm_cpus or self.opts.slurm_local:
            return self.opts.slurm_cpus
        return self.gpu_cpus(partition) if self.opts.slurm_gpus else None

    def gpu_cpus(self, partition: str) -> int:
        """A GPU job's CPUs on ``partition`` without --slurm-cpus: ``cpus_per_gpu``, else ``CPUS_PER_GPU``, said."""
        if partition not in self.cpus:
            cpus = cpus_per_gpu(partition)
            where = f"partition {partition}" if partition else "the default partition"
            if cpus is None:
                cpus = CPUS_PER_GPU
                self.echo(f"slurm: sinfo did not say {where}'s CPUs per GPU; each job asks {cpus} (--slurm-cpus N)")
            else:
                self.echo(f"slurm: each job asks {cpus} CPUs, {where}'s CPUs per GPU (--slurm-cpus N)")
            self.cpus[partition] = cpus
        return self.cpus[partition]

    def _submit(
        self, rows: list[Row], settings: tuple[str, str, int], timeout_s: float, lane: int | None = None
    ) -> list[Any]:
        """One job array for ``rows`` (a plan whose tasks all ask for the same settings: one array in all); ``lane``:
        a local job's place among those running at once (``_job``)."""
        self.executor.update_parameters(**self.params(settings))
        path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        before = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = path  # the jobs inherit the submitting environment (sbatch --export=ALL)
        try:
            limits = [r.limit(timeout_s) for r in rows]
            cpus = [self.job_cpus(settings[0])] * len(rows)
            return self.executor.map_array(
                _job, [r.job for r in rows], limits, self._tails(rows), cpus, [lane] * len(rows)
            )
        finally:
            os.environ.pop("PYTHONPATH") if before is None else os.environ.update(PYTHONPATH=before)

    def _tails(self, rows: list[Row]) -> list[str]:
        """Each row's progress file, followed from its start."""
        paths = []
        for row in rows:
            path = self.progress / f"row{len(self.tails)}.txt"
            self.tails[row.key] = Tail(path)
            paths.append(str(path))
        return paths

    def _finished(self, live: dict[int, tuple[Row, Any]], echo: Echo) -> list[int]:
        """The live jobs that are done. Every ``follow_s``, and whenever a job is done, each live job's new progress
        lines are shown first: a done job's last lines (its file complete) come before its result line."""
        done = [i for i, (_, job) in live.items() if job.done()]
        if done or time.monotonic() >= self.follow_at:
            self.follow_at = time.monotonic() + self.follow_s
            for i, (row, job) in live.items():
                if not self.opts.slurm_local and i not in done:
                    self._state(row, job, echo)
                for line in self.tails[row.key].new_lines():
                    echo(line)
        return done

    def _state(self, row: Row, job: Any, echo: Echo) -> None:
        """A line when a cluster's job is seen in a new state (``SHOWN_STATES``: queued, running on its node): a
        row queued for an hour said nothing after "submitted". submitit's watcher asks sacct about the whole array
        in one call, at most every few seconds, whichever job is asked; its node is read from that cache."""
        state = str(job.state)
        if state in SHOWN_STATES and state != self.states.get(row.key):
            self.states[row.key] = state
            node = job.get_info(mode="cache").get("NodeList") if state == "RUNNING" else None
            where = f" on {node}" if node and node not in ("None assigned", "(null)") else ""
            echo(f"slurm: {row.tag} {state.lower()}{where} (job {job.job_id})")

    def run(self, rows: Iterator[Row], timeout_s: float, echo: Echo) -> Iterator[tuple[Row, RowOutcome]]:
        if self.opts.slurm_local:
            yield from self.run_here(rows, timeout_s, echo)
            return
        groups: dict[tuple[str, str, int], list[Row]] = {}
        for row in rows:
            groups.setdefault(self.settings(row), []).append(row)
        for settings, todo in groups.items():
            jobs = self._submit(todo, settings, timeout_s)
            self.jobs += list(zip(todo, jobs, strict=True))
            echo(f"slurm: submitted {len(jobs)} row(s) as job array {jobs[0].job_id.split('_')[0]}")
        pending = dict(enumerate(self.jobs))
        while pending:
            finished = self._finished(pending, echo)
            if not finished:
                time.sleep(0.5)
            for i in finished:
                row, job = pending.pop(i)
                yield row, self._outcome(row, job)

    def run_here(self, rows: Iterator[Row], timeout_s: float, echo: Echo) -> Iterator[tuple[Row, RowOutcome]]:
        """``--slurm-local``: the array's jobs on this machine, ``parallelism`` at a time, each row submitted as a
        job when one ends. A job's span starts in ``beside`` when it is submitted (its node is this one), so a row
        that ends while others run counts them; the job's own start and end replace it when its outcome comes."""
        node = socket.gethostname()
        echo(f"slurm: the job array runs here, {self.parallelism} row(s) at a time (--slurm-array-parallelism)")
        live: dict[int, tuple[Row, Any]] = {}
        lanes: dict[int, int] = {}  # live job -> its lane (``_job``)
        more = True
        while True:
            while more and len(live) < self.parallelism:
                row = next(rows, None)
                if row is None:
                    more = False
                    break
                lane = min(set(range(self.parallelism)) - set(lanes.values()))  # its cores: the lane's share
                job = self._submit([row], self.settings(row), timeout_s, lane)[0]
                self.beside.start(row.key, node, time.time())
                self.jobs.append((row, job))
                live[len(self.jobs)] = (row, job)
                lanes[len(self.jobs)] = lane
                echo(f"slurm: {row.tag} as local job {job.job_id}")
            if not live:
                return
            finished = self._finished(live, echo)
            if not finished:
                time.sleep(0.2)
            for i in finished:
                row, job = live.pop(i)
                lanes.pop(i)
                yield row, self._outcome(row, job)

    def _outcome(self, row: Row, job: Any) -> RowOutcome:
        try:
            outcome: RowOutcome = job.result()
        except Exception as e:  # lost, killed, timed out by SLURM, or the job could not start
            reason, late = why_lost(e)
            if late:  # the docs' advice, with the line that takes it
                minutes = self.settings(row)[2]
                reason += (
                    f": it ran past its {minutes}-minute limit; give the rows longer with: "
                    f"{resume_command(self.run_dir, read_json_or_warn(self.run_dir / STATE).get('command'))} "
                    f"{' '.join(slurm_flags(self.opts, 2 * minutes))}"
                )
            outcome = RowOutcome(
                no_result(row.job.record, lost=f"slurm job {job.job_id}: {reason}"),
                placement=Placement(self.name, "?", f"job {job.job_id}"),
            )
        placement = outcome.placement or Placement(self.name, "?")
        if outcome.started or row.key not in self.beside.spans:  # the job's own span
            self.beside.start(row.key, placement.node, outcome.started)
            self.beside.end(row.key, outcome.ended)
        else:  # a local job that left no result: its span since it was submitted, ended now
            self.beside.end(row.key, time.time())
        outcome.record.update(placement.fields(self.beside.count(row.key)))
        return outcome

    def close(self) -> None:
        """Cancel every job of the array that has not finished and wait (briefly) until they are gone."""
        live = [job for _, job in self.jobs if not job.done()]
        for job in live:
            job.cancel(check=False)
        deadline = time.monotonic() + 30
        while any(not job.done() for job in live) and time.monotonic() < deadline:
            time.sleep(0.2)


def make(opts: Any, run_dir: Path) -> Slurm:
    return Slurm(run_dir / ".jobs" / "slurm", opts)
