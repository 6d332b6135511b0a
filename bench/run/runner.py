"""Run tasks x backends x repeats, each in a process of its own; append each record as it lands.

The parent imports neither framework: it prepares the data once per task (so both
backends read byte-identical arrays), hands each run to its backend's warm worker
server (``bench.run.forkserver``: framework imported once, one forked child per run, in
its own process group so a timeout can kill it and whatever it started), streams the
worker's progress lines, and turns any crash, signal or timeout into a row.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import math
import os
import secrets
import signal
import socket
import sys
import threading
import time
import warnings
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from backends import BACKENDS, default_names, describe, missing_packages
from bench.core.job import Job
from bench.core.parity import ALL as ALL_ALIGNMENTS
from bench.core.placement import EXECUTORS, MAX_DEVICES, Placement, RowOutcome
from bench.core.recipe import recorded_recipe
from bench.core.record import new_record
from bench.core.results import (
    RUN_COMMANDS,
    RunFileError,
    append_record,
    json_default,
    latest_records,
    read_json_object,
    read_records,
    record_key,
    repair_records,
    resume_command,
    run_wall_s,
    warn,
    write_all,
)
from bench.core.runfiles import (
    check_run_folder,
    clear_folder,
    make_folder,
    write_atomic,
)
from bench.core.runpaths import ARTIFACT_KINDS, ARTIFACTS, OutsideRunError, artifact, log_file, row_files, task_data
from bench.core.spec import (
    MAX_ARRAY_PARALLELISM,
    MAX_SEED,
    MAX_SLURM_CPUS,
    MAX_SLURM_MIN,
    SLURM_NAME,
    SLURM_NAME_RULE,
    SpecError,
    TaskSpec,
    check_fits_data,
    describe_changes,
    spec_from_dict,
)
from bench.core.zoo import weights_path
from bench.phases.transfer import prepare_targets
from bench.report import summary as report
from bench.report.backends import unknown_reference
from bench.run import distributed, environment, executors, history_cli, parity
from bench.run.datacheck import check_task_data
from bench.run.runlock import run_lock
from bench.run.weightscheck import check_pretrained
from datasets import registry
from datasets.arrays import ArrayDataset
from datasets.prepare import prepare

REPO = environment.REPO


@dataclass(frozen=True)
class RunOptions:
    backends: tuple[str, ...] = field(default_factory=default_names)  # the registry's default set
    data_dir: str | None = None  # --data-dir, absolute: a resume from another folder finds the same data
    # $BENCH_DATA_DIR when the run started (absolute; None: unset). A resume searches it again, whatever its
    # own shell says, so every row of a task trains on the same data (``plan_data_env``).
    data_env: str | None = None
    out: Path = REPO / "results"
    repeats: int = 1
    # processes per (task, backend) for the tasks named, where the budget chose them (bench.measure.budget
    # .with_processes); the others run ``repeats``
    task_repeats: dict[str, int] = field(default_factory=dict)
    seed: int | None = None  # overrides each spec's seed
    timeout_s: float = 3600.0  # per (task, backend, repeat) run
    # the backend the report's ratios divide by: --reference; None: the registry's first the run has rows of
    reference: str | None = None
    # Where the rows run (bench.run.executors): one after another here, side by side on device slots,
    # on a Ray cluster, or as a SLURM job array; the run's files are written here, by this process only.
    executor: str = "local"
    devices: tuple[int, ...] = ()  # devices: the slots (GPU indices; without a GPU, shares of the cores)
    ray_address: str | None = None  # ray: the cluster (else $RAY_ADDRESS)
    slurm_partition: str | None = None
    slurm_account: str | None = None
    slurm_time_min: int | None = None  # per array job; default: the per-run timeout + 5 min
    slurm_gpus: bool = False  # each job asks for one GPU (else a whole node, --exclusive)
    # CPUs per job (--cpus-per-task); None: with slurm_gpus the partition's CPUs per GPU (on_slurm.cpus_per_gpu),
    # else SLURM's own (a whole node's under --exclusive)
    slurm_cpus: int | None = None
    slurm_local: bool = False  # submitit's local executor: the array as processes here (tests, trying it out)
    # jobs of an array at a time (submitit's slurm_array_parallelism); None: 256 under SLURM, where each job has a
    # node or a GPU of its own, and 1 with slurm_local, as the local executor runs rows on this machine
    slurm_array_parallelism: int | None = None
    # seconds between the driver's reads of each running job's progress file (an open on the shared file system
    # each); None: on_slurm.FOLLOW_S
    slurm_follow_s: float | None = None
    # After the rows: each task's model trained this many steps in every backend of the run from one init,
    # the differences added to its rows (bench.run.parity, docs/methodology.md); 0: no check.
    parity_steps: int = 0
    # Whether the run's report is written whole: its figures (curves, confusion matrices, Grad-CAM overlays, ...)
    # and index.html beside records.jsonl, results.csv and summary.md. A tune's rungs are not (bench.run.tune): no
    # one reads their plots or pages, and their reports are written between rungs, out of the tune's --budget;
    # `bench report RUN` writes the rest.
    full_report: bool = True


MAX_REPEATS = 1000  # runs per (task, backend): beyond it a plan is a typo, not a study
MAX_PARITY_STEPS = 100_000  # as `bench parity --steps`

# Errors that mean the disk (or the quota, or the file-size limit) will not take more: the run
# stops, says so, and leaves the row for --resume instead of recording it as a failure of the row.
DISK_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS}


class RunStopped(RuntimeError):
    """The run could not go on (its files cannot be written); state.json says so, --resume continues it."""

    def __init__(self, message: str, run_dir: Path) -> None:
        super().__init__(message)
        self.run_dir = run_dir


def is_disk_error(e: BaseException) -> bool:
    return isinstance(e, OSError) and e.errno in DISK_ERRNOS


def check_writable(out: Path) -> None:
    """Create ``out`` and write, fsync and remove a probe file there; OSError (naming ``out``) when it can't."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # over a file-size limit: an EFBIG error, not a killed run
    probe = out / f".bench-probe-{os.getpid()}-{secrets.token_hex(4)}"  # not a name planted in advance
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)  # never through a link
        try:
            write_all(fd, b"probe\n" * 512)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        raise OSError(e.errno, f"--out {out} is not writable: {e.strerror or e}") from e
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()


def new_run_dir(out: Path) -> Path:
    """A fresh results/<run-id>/; ``mkdir(exist_ok=False)`` makes two runs never share one."""
    check_writable(out)
    while True:
        run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)
        try:
            (out / run_id).mkdir()
            return out / run_id
        except FileExistsError:
            continue


def base_record(run_id: str, task: TaskSpec, backend: str, repeat: int, seed: int) -> dict[str, Any]:
    return new_record(
        run_id=run_id,
        task=task.name,
        profile=task.profile,
        backend=backend,
        repeat=repeat,
        seed=seed,
        framework=describe(backend).framework,
        model=task.model.arch,
        model_options=json.dumps(task.model.recorded_options(), sort_keys=True),
        init=task.model.init,
        dataset=task.dataset.name,
        optimizer=task.train.optimizer,
        lr=task.train.lr,
        adam_eps=task.train.eps,
        epochs=task.train.epochs,
        batch_size=task.train.batch_size,
        recipe=recorded_recipe(task),
        target_acc=task.train.target_acc or None,
        reported_acc=task.eval.reported_acc or None,
        # "" where a smaller profile changes no recipe setting (a task file with no [profiles.quick]): its
        # accuracy is the full recipe's; None for the full profile
        profile_changes=None if task.profile == "full" else describe_changes(task.profile_changes),
        started_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        config=task.config or None,
        base_task=task.base or None,
        knob_config=knob_text(task, backend),
    )


def knob_text(task: TaskSpec, backend: str) -> str | None:
    """The ``[knobs.BACKEND]`` overrides this row runs with, as one text ("precision=mixed_bf16, ..."), or None."""
    own = dict(task.knobs).get(backend, ())
    return ", ".join(f"{k}={v}" for k, v in own) or None


def load_task_data(task: TaskSpec, data_dir: str | None, seed: int) -> ArrayDataset:
    d = task.dataset
    ds = registry.load(d.name, data_dir=data_dir, fallback=d.fallback, seed=seed)
    return prepare(
        ds,
        classes=d.classes,
        max_train=d.max_train,
        max_test=d.max_test,
        channels=d.channels,
        image_size=d.image_size,
        seed=seed,
    )


def dataset_fields(ds: ArrayDataset, load_s: float) -> dict[str, Any]:
    h, w, c = ds.image_shape
    return {
        "dataset_source": ds.source,
        "image_shape": f"{h}x{w}x{c}",
        "n_classes": ds.n_classes,
        "n_train": len(ds.train),
        "n_test": len(ds.test),
        "data_load_s": load_s,
    }


PLAN, STATE = "plan.json", "state.json"
KEPT_ON_RESUME = ("ok", "skipped", "failed", "timeout")  # "interrupted" and missing rows run again


# Before a task's first row starts: the task as it should run now, or why its rows are left out (the
# budget's re-plan, bench.run.budget_cli.Replan), given the run's records so far.
@dataclass(frozen=True)
class Processes:
    """A task a budget's re-plan runs in another number of processes a side than its rows were planned with
    (more: the rows so far ran faster than planned; fewer: the time left no longer holds them): its rows are
    planned again, and plan.json and state.json say so."""

    task: TaskSpec
    processes: int


# Before a task's first row, with the records so far: the task as it should run (resized, maybe in another
# number of processes a side), or why its rows are left out (``bench all``'s budget: budget_cli.Replan). A tune's
# configurations of one task (one ``base``) are sized together (bench.run.tune_budget.FreshResize), so the resize
# of one is asked for its siblings then too, for plan.json (``_kept_in_plan``).
Resize = Callable[[TaskSpec, list[dict[str, Any]]], TaskSpec | Processes | str]


def run_suite(
    tasks: list[TaskSpec],
    opts: RunOptions,
    echo: Callable[[str], None] = print,
    resize: Resize | None = None,
    command: str = "run",
) -> Path:
    """Start a new run directory and run everything in it; returns the run dir. ``command``: the CLI command
    running it (`all`, `run`, `zoo`), which Ctrl-C's line names with --resume."""
    run_dir = new_run_dir(opts.out)
    write_plan(run_dir, tasks, opts)
    env = run_environment(run_dir, tasks, opts, command=command)
    write_json(run_dir / "environment.json", env)
    return execute(run_dir, tasks, opts, env, echo, resize=resize)


def run_environment(run_dir: Path, tasks: list[TaskSpec], opts: RunOptions, **extra: Any) -> dict[str, Any]:
    """This machine and software (``environment.describe``) and what identifies the run: environment.json."""
    return {
        **environment.describe(),
        "run_id": run_dir.name,
        "argv": sys.argv,
        "profiles": sorted({t.profile for t in tasks}),
        "backends": list(opts.backends),
        "repeats": opts.repeats,
        "task_repeats": opts.task_repeats,
        **extra,
    }


TUNE_FILE = "tune.json"  # bench.run.tune's log of its race (the runner does not import the tuner)
RACE_NOT_RESUMED = (
    "a tune stopped in its race has nothing to resume (the race only chooses the configurations its default "
    "and best rows then measure, and its plan is written after it): start the tune again"
)


def resume_suite(
    run_dir: Path, echo: Callable[[str], None] = print, where: dict[str, Any] | None = None, command: str = "run"
) -> Path:
    """Run what an interrupted or killed run is missing, with the plan it was started with (``where``:
    executor fields of RunOptions that replace the plan's, so the rest may run elsewhere; ``command``: the CLI
    command resuming it, which a second Ctrl-C's line names)."""
    if run_dir.is_dir():  # a folder from elsewhere: no link or FIFO is written through or read
        check_run_folder(run_dir)
    if not (run_dir / PLAN).is_file():
        if (run_dir / TUNE_FILE).is_file():  # a tune stopped in its race: plan.json is written after it
            raise FileNotFoundError(f"{run_dir}: {RACE_NOT_RESUMED}")
        what = f"no {PLAN} in it" if run_dir.is_dir() else "no such folder"
        raise FileNotFoundError(f"{run_dir} is not a bench run directory ({what})")
    tasks, opts = read_plan(run_dir)
    if where:
        opts = replace(opts, **where)
        check_data_parallel_here(tasks, opts.executor)  # QA: a resume through Ray ran none and said complete
    distributed.check_workers(tasks)  # the machine resuming may have fewer cores than the one that started
    # as `bench run` checks: a weights file gone since (or this machine offline) is refused before any worker
    check_pretrained(tasks, opts.backends, opts.executor)
    planned = (read_json_object(run_dir / PLAN) or {}).get("options") or {}
    # a plan from before 2026-12-05 kept no data_env: its data is searched as this shell says
    data_env = opts.data_env if "data_env" in planned else os.environ.get("BENCH_DATA_DIR")
    with plan_data_env(data_env, echo):
        # as `bench run` checks before it starts: data that cannot be had, a batch or a layer list it cannot
        # take now (a dataset file replaced since, a plan edited) is a SpecError here, not a failed row per backend
        check_task_data(tasks, opts.data_dir)
        return _resume(run_dir, tasks, opts, echo, command)


def _resume(run_dir: Path, tasks: list[TaskSpec], opts: RunOptions, echo: Callable[[str], None], command: str) -> Path:
    """resume_suite's run, once its checks passed: environment.json says this session, then the missing rows run."""
    env_path = run_dir / "environment.json"
    try:
        env = read_json_object(env_path, {})
    except RunFileError as e:  # the machine is described again; the broken file is kept beside it
        warn(f"{e}; described this machine again (the unreadable file is kept as environment.json.unreadable)")
        env_path.replace(env_path.with_name("environment.json.unreadable"))
        env = {**environment.describe(), "run_id": run_dir.name}
    if not isinstance(env.get("resumed"), list):  # absent, or edited into something else
        env["resumed"] = []
    env["resumed"].append(
        {
            "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "git_commit": environment.git_commit(),
            "load_avg_1m": os.getloadavg()[0],
            "argv": sys.argv,
        }
    )
    # the rows this session runs carry its own commit, not the one the run was started at
    this_session = {"git_commit": env["resumed"][-1]["git_commit"], "command": command}
    # written once the run is ours: a resume refused as "in use" leaves environment.json as the running run has it
    return execute(run_dir, tasks, opts, env | this_session, echo, locked=lambda: write_json(env_path, env))


@contextlib.contextmanager
def plan_data_env(planned: str | None, echo: Callable[[str], None]) -> Iterator[None]:
    """$BENCH_DATA_DIR as the run started with, for as long as the resume runs: a shell that lost it (or set
    another) would otherwise finish a task on other data than its first rows trained on."""
    here = os.environ.get("BENCH_DATA_DIR")
    if here == planned:
        yield
        return
    echo(f"resume: BENCH_DATA_DIR={planned or '(unset)'} as the run started with (here: {here or '(unset)'})")
    if planned is None:
        del os.environ["BENCH_DATA_DIR"]
    else:
        os.environ["BENCH_DATA_DIR"] = planned
    try:
        yield
    finally:
        if here is None:
            os.environ.pop("BENCH_DATA_DIR", None)
        else:
            os.environ["BENCH_DATA_DIR"] = here


def check_data_parallel_here(tasks: Sequence[TaskSpec], executor: str) -> None:
    """SpecError where a data-parallel row would go to another executor: its ranks start on this machine."""
    if executor != "local" and any(t.distributed.workers for t in tasks):
        raise SpecError(
            "data-parallel rows (--workers, [distributed]) start their ranks here: run them with --executor local"
        )


def read_plan(run_dir: Path) -> tuple[list[TaskSpec], RunOptions]:
    """The tasks and options a run was started with; RunFileError naming plan.json when unusable.

    plan.json may have been edited since: its tasks go through the task files' validation (known
    datasets included) and its options through ``plan_options``, before anything runs."""
    path = run_dir / PLAN
    plan = read_json_object(path)
    try:
        if not isinstance(plan, dict) or not isinstance(plan.get("tasks"), list) or not plan["tasks"]:
            raise ValueError("tasks: expected a non-empty list of task tables")
        tasks = [_weights_as_run(spec_from_dict(t, registry.DATASETS)) for t in plan["tasks"]]
        opts = plan_options(plan.get("options"), run_dir.parent)
    except (SpecError, KeyError, TypeError, ValueError, AttributeError) as e:
        raise RunFileError(f"{path}: not a plan this version can run ({type(e).__name__}: {e})") from e
    return tasks, opts


def _weights_as_run(task: TaskSpec) -> TaskSpec:
    """``task`` with a relative ``model.weights`` (a plan.json from before 2026-12-06; plans since keep it
    absolute) made absolute from the repository: the folder its first rows' workers read it from, so a resume
    finishes the run on the file they loaded (not the task file's neighbour, which may be another or none), and
    the up-front check and every worker, wherever it runs, name that one file."""
    w = task.model.weights
    if not w or Path(w).expanduser().is_absolute():
        return task
    return replace(task, model=replace(task.model, weights=str(weights_path(w, environment.REPO))))


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# plan.json's options: the check each must pass, and what it must be (the command line's own bounds)
PLAN_OPTIONS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "backends": (
        lambda v: isinstance(v, list) and bool(v) and all(b in BACKENDS for b in v),
        f"a non-empty list of backends out of {', '.join(BACKENDS)}",
    ),
    "data_dir": (lambda v: v is None or isinstance(v, str), "a folder name or null"),
    "data_env": (lambda v: v is None or isinstance(v, str), "a folder name or null"),
    "out": (lambda v: True, "ignored: the run folder's parent is used"),
    "repeats": (lambda v: _is_int(v) and 1 <= v <= MAX_REPEATS, f"an integer in 1..{MAX_REPEATS}"),
    "task_repeats": (
        lambda v: isinstance(v, dict) and all(_is_int(n) and 1 <= n <= MAX_REPEATS for n in v.values()),
        f"a table of task names to integers in 1..{MAX_REPEATS}",
    ),
    "seed": (lambda v: v is None or (_is_int(v) and 0 <= v <= MAX_SEED), f"null or an integer in 0..{MAX_SEED}"),
    "timeout_s": (
        lambda v: isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < math.inf,
        "a number of seconds > 0",
    ),
    "reference": (
        lambda v: v is None or (isinstance(v, str) and not unknown_reference(v)),
        "null or a registered backend",
    ),
    "executor": (lambda v: v in EXECUTORS, f"one of {', '.join(EXECUTORS)}"),
    "devices": (
        lambda v: (
            isinstance(v, list)
            and len(v) <= MAX_DEVICES
            and all(_is_int(d) and 0 <= d < MAX_DEVICES for d in v)
            and len(set(v)) == len(v)
        ),
        f"a list of distinct device numbers in 0..{MAX_DEVICES - 1}",
    ),
    "ray_address": (lambda v: v is None or (isinstance(v, str) and 0 < len(v) < 1000), "null or an address"),
    "slurm_partition": (
        lambda v: v is None or (isinstance(v, str) and bool(SLURM_NAME.fullmatch(v))),
        "null or " + SLURM_NAME_RULE,
    ),
    "slurm_account": (
        lambda v: v is None or (isinstance(v, str) and bool(SLURM_NAME.fullmatch(v))),
        "null or " + SLURM_NAME_RULE,
    ),
    "slurm_time_min": (
        lambda v: v is None or (_is_int(v) and 1 <= v <= MAX_SLURM_MIN),
        f"null or an integer in 1..{MAX_SLURM_MIN}",
    ),
    "slurm_gpus": (lambda v: isinstance(v, bool), "true or false"),
    "slurm_cpus": (
        lambda v: v is None or (_is_int(v) and 1 <= v <= MAX_SLURM_CPUS),
        f"null or an integer in 1..{MAX_SLURM_CPUS}",
    ),
    "slurm_local": (lambda v: isinstance(v, bool), "true or false"),
    "slurm_array_parallelism": (
        lambda v: v is None or (_is_int(v) and 1 <= v <= MAX_ARRAY_PARALLELISM),
        f"null or an integer in 1..{MAX_ARRAY_PARALLELISM}",
    ),
    "slurm_follow_s": (
        lambda v: v is None or (isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < math.inf),
        "null or a number of seconds > 0",
    ),
    "parity_steps": (
        lambda v: _is_int(v) and 0 <= v <= MAX_PARITY_STEPS,
        f"an integer in 0..{MAX_PARITY_STEPS}",
    ),
    "full_report": (lambda v: isinstance(v, bool), "true or false"),
}


def plan_options(o: Any, out: Path) -> RunOptions:
    """RunOptions from plan.json's ``options``; ValueError naming the first key that is unknown or out of range."""
    if not isinstance(o, dict):
        raise ValueError(f"options: expected a table, got {type(o).__name__}")
    for key, value in o.items():
        if key not in PLAN_OPTIONS:
            raise ValueError(f"options.{key}: unknown option (expected: {', '.join(PLAN_OPTIONS)})")
        check, what = PLAN_OPTIONS[key]
        if not check(value):
            raise ValueError(f"options.{key}: must be {what}, got {value!r}")
    if "backends" not in o:
        raise ValueError("options.backends: missing")
    return RunOptions(**{**o, "backends": tuple(o["backends"]), "devices": tuple(o.get("devices", ())), "out": out})


def write_plan(run_dir: Path, tasks: list[TaskSpec], opts: RunOptions) -> None:
    """plan.json: the tasks and options ``--resume`` and ``report`` read back (``read_plan``)."""
    write_json(
        run_dir / PLAN, {"tasks": [t.to_dict() for t in tasks], "options": {**asdict(opts), "out": str(opts.out)}}
    )


def write_json(path: Path, data: Any) -> None:
    """A run's JSON file (plan, state, environment), whole or not at all, never through a link."""
    write_atomic(path.parent, path, json.dumps(data, indent=2, default=json_default).encode(), sync=True)


def recorded_so_far(run_dir: Path) -> str:
    """How far a run has come, as state.json and records.jsonl say it ("3 of 8 runs recorded"), read only (a
    live run appends to them); "" where they cannot say."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a line the run is appending as it is read: the run's to finish
        try:
            planned = read_json_object(run_dir / STATE, {}).get("planned")
            done = sum(r.get("status") in KEPT_ON_RESUME for r in latest_records(read_records(run_dir)))
        except RunFileError:
            return ""
    if not isinstance(planned, int) or isinstance(planned, bool):
        return ""
    return f"{done} of {planned} runs recorded"


def execute(
    run_dir: Path,
    tasks: list[TaskSpec],
    opts: RunOptions,
    env: dict[str, Any],
    echo: Callable[[str], None],
    stop: Callable[[], str | None] | None = None,
    history: bool = True,
    resize: Resize | None = None,
    after_interrupt: str | None = None,
    locked: Callable[[], None] | None = None,
) -> Path:
    """Run every planned (task, backend, repeat) not yet recorded; each record lands before the next run.

    state.json always ends as complete, interrupted (Ctrl-C) or stopped (a file could not be
    written: RunStopped, with the reason); a kill -9 leaves "running", which --resume takes over.
    ``after_interrupt``: what Ctrl-C's line tells the user to do, where resuming this folder is not it (a rung
    of a tune's race); by default the ``--resume`` line of the command running it (``env["command"]``, also
    kept in state.json for summary.md's line). ``locked``: what to write once the run folder's lock is held.
    """
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # over a file-size limit: EFBIG, handled below
    with run_lock(run_dir):
        if locked:
            locked()
        repair_records(run_dir)
        done_keys = {record_key(r) for r in read_records(run_dir) if r.get("status") in KEPT_ON_RESUME}
        job_dir = run_dir / ".jobs"
        if os.getloadavg()[0] > 0.75 * (os.cpu_count() or 1):
            echo(
                f"warning: the machine is busy (1-min load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores); "
                "timings will be slower and noisier than on an idle machine"
            )
        planned = plan_rows(tasks, opts.backends, opts.repeats, opts.task_repeats)
        todo = [row for row in planned if row.key not in done_keys]
        echo(
            f"run {run_dir.name}: {len(tasks)} task(s) x {len(opts.backends)} backend(s) x "
            f"{_repeats_plan(tasks, opts)}{_dist_plan(tasks)}; {len(todo)} of {len(planned)} to run -> {run_dir}"
        )
        command = env.get("command") if env.get("command") in RUN_COMMANDS else "run"
        state: dict[str, Any] = {"planned": len(planned), "state": "running", "command": command}
        # wall time over every session of the run (a resumed run adds to what its state says)
        earlier_s = run_wall_s(run_dir / STATE) or 0.0
        started = time.perf_counter()
        runner = executors.make(opts, run_dir)
        stopped: OSError | None = None
        try:
            write_json(run_dir / STATE, state)
            clear_folder(run_dir, job_dir)  # a killed run's job files: nothing in them is read again
            make_folder(run_dir, job_dir)
            make_folder(run_dir, run_dir / "logs")
            resize = _kept_in_plan(resize, run_dir, tasks, opts, planned, state) if resize else None
            _run_all(todo, run_dir, opts, env, runner, echo, stop, resize)
            if opts.parity_steps:
                _add_parity(run_dir, tasks, opts, echo)
            state["state"] = "complete"
        except KeyboardInterrupt:
            state["state"] = "interrupted"
            echo(
                f"\ninterrupted: the finished runs are kept in {run_dir / 'records.jsonl'}; "
                + (after_interrupt or f"finish with: {resume_command(run_dir, command)}")
            )
            raise
        except OSError as e:  # a run file could not be written (disk full, file-size limit, read-only)
            stopped = e
            state.update(state="stopped", error=f"{type(e).__name__}: {e}")
        except Exception as e:  # a bug: said in state.json too, then raised
            state.update(state="stopped", error=f"{type(e).__name__}: {e}")
            raise
        finally:
            with ctrl_c_held(echo):
                runner.close()
                with contextlib.suppress(OSError, ValueError):
                    clear_folder(run_dir, job_dir)
                kept = {record_key(r) for r in read_records(run_dir) if r.get("status") in KEPT_ON_RESUME}
                state["recorded"] = len(kept & {row.key for row in planned})  # an interrupted row runs again
                state["wall_s"] = round(earlier_s + time.perf_counter() - started, 1)
                _finalise(run_dir, state, echo, opts)
    if state["state"] == "complete" and history:  # a tuning run's rungs stay out of it (bench.run.tune)
        history_cli.after_run(run_dir, echo)
    if stopped is not None:
        raise RunStopped(
            f"the run stopped: {stopped}; the rows recorded so far are kept in "
            f"{run_dir / 'records.jsonl'}; when there is space again, finish it with: "
            f"{resume_command(run_dir, command)}",
            run_dir,
        ) from stopped
    return run_dir


@contextlib.contextmanager
def ctrl_c_held(echo: Callable[[str], None]) -> Iterator[None]:
    """Ctrl-C held off while a run that is ending writes its files: people press it again, and a second press
    inside the first one's cleanup left state.json saying "running" and no summary (QA, 2026-12-05, three
    presses 0.3 s apart). The run is ending either way, so a held press only says so; kill still stops it."""
    if threading.current_thread() is not threading.main_thread():  # signal handlers belong to the main thread
        yield
        return
    said: list[bool] = []

    def hold(signum: int, frame: Any) -> None:
        if not said:
            echo("(the run is ending: writing state.json and the reports first)")
            said.append(True)

    previous = signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _finalise(run_dir: Path, state: dict[str, Any], echo: Callable[[str], None], opts: RunOptions) -> None:
    """Write the final state.json and the reports (whole or not as ``opts.full_report`` says); a failure here is
    said, not raised over the run's own outcome."""
    try:
        write_json(run_dir / STATE, state)
    except OSError as e:
        echo(f"error: could not write {run_dir / STATE} ({e}); it may still say 'running'")
    try:
        report.write_reports(run_dir, opts.reference, full=opts.full_report)
    except OSError as e:
        echo(f"error: could not write the reports of {run_dir} ({e}); `python -m bench report {run_dir}` redoes them")


class DataParallel(NamedTuple):
    """A data-parallel row's layout: its worker processes and how the batch scales with them."""

    workers: int
    mode: str  # "strong" (the global batch is kept) or "weak" (each worker keeps the task's batch)


@dataclass(frozen=True)
class PlannedRow:
    """One row of the plan: a task in one backend, one repeat, in one process or data-parallel."""

    task: TaskSpec
    backend: str
    repeat: int
    dist: DataParallel | None = None  # None: one process
    left_out: str = ""  # why the row is skipped without running (the budget's re-plan), or ""
    of: int = 1  # the repeats its task runs per backend ("repeat 2/3")

    @property
    def key(self) -> tuple[Any, ...]:
        """The row's record key (bench.core.results.record_key): what --resume finds done."""
        base = (self.task.name, self.backend, self.repeat)
        return base if self.dist is None else (*base, *self.dist)


def repeats_of(opts: RunOptions, task: TaskSpec) -> int:
    """The processes per backend ``task`` runs (a tuning run's configurations count as their base task)."""
    return opts.task_repeats.get(task.base or task.name, opts.repeats)


def _repeats_plan(tasks: Sequence[TaskSpec], opts: RunOptions) -> str:
    counts = sorted({repeats_of(opts, t) for t in tasks})
    return f"{counts[0]} repeat(s)" if len(counts) == 1 else f"{counts[0]}-{counts[-1]} repeats (per task)"


def plan_rows(
    tasks: Sequence[TaskSpec], backends: Sequence[str], repeats: int, task_repeats: dict[str, int] | None = None
) -> list[PlannedRow]:
    """Every row in the order it runs: task by task (a tuning run's configurations of one task together),
    and within a task repeat by repeat, each round through every configuration and backend, the order
    reversed in every other round (A B, B A, A B ...), each one's data-parallel rows in their own order.

    Why: a VM's speed drifts over seconds and minutes (docs/timing.md). Run backend by backend, all of
    one backend's repeats share one stretch of that drift, and the ratio between backends reads it as a
    difference between frameworks. Interleaved, every round meets each row at about the same time, and
    the reversal cancels a steady trend (an ABBA design; Abedi & Brecht's interleaved trials, ICPE 2017).
    One repeat runs in the order it always did. ``task_repeats``: the repeats of the tasks it names (by their
    base name), instead of ``repeats``."""
    groups: dict[str, list[TaskSpec]] = {}
    for t in tasks:
        groups.setdefault(t.base or t.name, []).append(t)
    order: list[PlannedRow] = []
    for name, group in groups.items():
        n = (task_repeats or {}).get(name, repeats)
        for r in range(n):
            units = [(t, b) for t in group for b in backends]
            # a unit's data-parallel rows keep their order in every round: a row of N workers reads its
            # efficiency off the 1-worker row of its repeat, which must have landed (bench.run.distributed)
            order += [PlannedRow(t, b, r, d, of=n) for t, b in (units[::-1] if r % 2 else units) for d in _dist_rows(t)]
    return order


def replanned_rows(rows: list[PlannedRow], task: TaskSpec, backends: Sequence[str], processes: int) -> None:
    """``rows`` (in place) with ``task``'s rows planned again for ``processes`` repeats, where its first row was."""
    mine = [i for i, r in enumerate(rows) if r.task.name == task.name]
    if not mine:
        return
    rows[mine[0] :] = plan_rows([task], backends, processes) + [r for r in rows[mine[0] :] if r.task.name != task.name]


def _kept_in_plan(
    resize: Resize,
    run_dir: Path,
    tasks: list[TaskSpec],
    opts: RunOptions,
    planned: list[PlannedRow],
    state: dict[str, Any],
) -> Resize:
    """``resize``, with plan.json rewritten whenever it changes a task (``--resume`` runs the task's other rows at
    the size its first ran at, and as many of them), and the run's ``planned`` rows and state.json's count with
    it when it changes the task's processes a side. A tune's other configurations of the task's ``base`` are
    written as sized with it: a tune stopped in its default row had its best row at the full recipe in plan.json,
    and ``--resume`` trained it there, the accuracy floor comparing rows of different epochs."""
    current, counts = list(tasks), dict(opts.task_repeats)

    def resized(task: TaskSpec, done: list[dict[str, Any]]) -> TaskSpec | Processes | str:
        now = resize(task, done)
        spec = now.task if isinstance(now, Processes) else now
        if isinstance(now, Processes):
            counts[task.name] = now.processes
            replanned_rows(planned, now.task, opts.backends, now.processes)
            state["planned"] = len(planned)
            write_json(run_dir / STATE, state)
        if isinstance(spec, TaskSpec) and (spec != task or isinstance(now, Processes)):
            current[:] = [spec if t.name == task.name else _sibling(t, task, done) for t in current]
            write_plan(run_dir, current, replace(opts, task_repeats=counts))
        return now

    def _sibling(t: TaskSpec, task: TaskSpec, done: list[dict[str, Any]]) -> TaskSpec:
        """``t`` as sized now where it is another configuration of ``task``'s base (a tune's), else as it is."""
        if not task.base or t.base != task.base:
            return t
        now = resize(t, done)
        return now if isinstance(now, TaskSpec) else t

    return resized


def _dist_rows(task: TaskSpec) -> list[DataParallel | None]:
    """A task's rows per (backend, repeat): one, or one per (workers, mode) of its [distributed] section."""
    d = task.distributed
    return [DataParallel(w, m) for m in d.mode for w in sorted(d.workers)] if d.workers else [None]


def _dist_plan(tasks: list[TaskSpec]) -> str:
    n = max((len(_dist_rows(t)) for t in tasks), default=1)
    return f" x up to {n} data-parallel (workers, mode) rows" if n > 1 else ""


Stop = Callable[[], str | None]  # why the rows not yet started should not start, or None


def _run_all(
    todo: list[PlannedRow],
    run_dir: Path,
    opts: RunOptions,
    env: dict[str, Any],
    runner: executors.Executor,
    echo: Callable[[str], None],
    stop: Stop | None = None,
    resize: Resize | None = None,
) -> None:
    """Every pending run through the executor; this process alone appends each record as it comes back.
    ``stop()`` (the tuner's budget) saying why turns the rows not yet started into skipped ones;
    ``resize`` (``bench all``'s budget) sets each task's size, or leaves its rows out, before its first row.

    Rows that need no executor (failed data, a missing framework, a data-parallel row, which starts
    its own ranks here) are recorded as they come up; with the local executor that is in plan order."""
    needed = [b for b in dict.fromkeys(row.backend for row in todo if row.dist is None) if not missing_packages(b)]
    if needed:
        runner.start(needed, echo)
    todo = list(todo)  # a budget's re-plan may plan a task's rows again (``_jobs``): the count follows it

    def runnable() -> Generator[executors.Row, None, None]:
        jobs = _jobs(todo, run_dir, opts, env, echo, keep_data=not runner.sequential, resize=resize)
        for n, (row, job) in enumerate(jobs, 1):
            task, backend, repeat, dist = row.task, row.backend, row.repeat, row.dist
            tag = f"[{n}/{len(todo)}] {task.name} / {backend}"
            tag += f" / {dist.workers} worker(s), {dist.mode}" if dist else ""
            rec, missing = job.record, missing_packages(backend)
            why_stop = stop() if stop is not None else None
            if why_stop or row.left_out:
                rec.update(status="skipped", error=why_stop or row.left_out)
            elif job.error:
                rec.update(status="failed", error=job.error)
            elif missing:
                rec.update(status="skipped", error=f"not installed: {', '.join(missing)}")
            elif dist is None:
                echo(f"{tag} (repeat {repeat + 1}/{row.of})")
                yield executors.Row(job, tag)
                continue
            else:
                echo(f"{tag} (repeat {repeat + 1}/{row.of})")
                with _marking(functools.partial(list, [rec]), run_dir):  # this row, bound now
                    rec = _run_distributed(job, task, dist, run_dir, opts.timeout_s, echo)
                # where it ran, as every row says (its ranks on this machine, nothing beside them)
                rec.update(Placement("local", socket.gethostname(), f"{dist.workers} rank processes").fields(0))
            _land(run_dir, tag, RowOutcome(rec), echo)

    rows = runnable()
    try:
        with _marking(lambda: [row.job.record for row in runner.running], run_dir):
            for row, outcome in runner.run(rows, opts.timeout_s, echo):
                _land(run_dir, row.tag, outcome, echo)
    finally:
        rows.close()


@contextlib.contextmanager
def _marking(in_flight: Callable[[], list[dict[str, Any]]], run_dir: Path) -> Iterator[None]:
    """On Ctrl-C or a full disk inside the block, record the rows then in flight (``in_flight()``: their
    records) as interrupted, for --resume, and let the exception go on."""
    try:
        yield
    except KeyboardInterrupt:
        for rec in in_flight():
            rec.update(status="interrupted", error="interrupted by the user (Ctrl-C)")
            append_record(run_dir, rec)
        raise
    except OSError as e:
        if is_disk_error(e):  # best effort: the disk may take no more
            with contextlib.suppress(OSError):
                for rec in in_flight():
                    rec.update(status="interrupted", error=f"run files could not be written: {e}")
                    append_record(run_dir, rec)
        raise


def _land(run_dir: Path, tag: str, outcome: RowOutcome, echo: Callable[[str], None]) -> None:
    """Write a finished row: the files it brought back from another node (artifacts, log), then its record."""
    rec = outcome.record
    for name, data in outcome.files.items():
        for kind in ARTIFACT_KINDS:  # only the files a row may write, at the names it writes them
            path = artifact(run_dir, rec["task"], rec["backend"], rec["repeat"], kind)
            if name == path.name:
                make_folder(run_dir, path.parent)
                write_atomic(run_dir, path, data)
    if outcome.log:
        path = log_file(run_dir, ".".join(map(str, (rec["task"], rec["backend"], rec["repeat"]))))
        write_atomic(run_dir, path, outcome.log.encode())
    append_record(run_dir, rec)
    echo(f"{tag}: {_one_line(rec)}")


def _add_parity(run_dir: Path, tasks: list[TaskSpec], opts: RunOptions, echo: Callable[[str], None]) -> None:
    """``--parity-steps``: after the rows, each task's training-parity check in the backends of its ok rows;
    its columns go into those rows as records that supersede them, so a resumed run checks only the tasks
    whose rows lack them."""
    latest = latest_records(read_records(run_dir))
    for task in tasks:
        rows = [r for r in latest if r["task"] == task.name and r.get("status") == "ok" and r.get("workers") is None]
        if not rows or all(r.get("parity_steps") == opts.parity_steps for r in rows):
            continue
        backends = list(dict.fromkeys(r["backend"] for r in rows))
        if parity.nothing_to_compare(backends):  # the other backends' rows failed: the reference alone, for nothing
            echo(f"{task.name}: training parity: no ok row but {parity.REFERENCE}'s, nothing to compare it with")
            continue
        echo(f"{task.name}: training parity, {opts.parity_steps} step(s) from one init in {', '.join(backends)}")
        fields = _parity_fields(task, backends, opts, run_dir / ".jobs" / "parity", echo)
        for r in rows:
            append_record(run_dir, {**r, **fields[r["backend"]]})


def _parity_fields(
    task: TaskSpec, backends: list[str], opts: RunOptions, folder: Path, echo: Callable[[str], None]
) -> dict[str, dict[str, Any]]:
    """Each backend's parity columns for ``task``; a check that cannot run says why in every row's note."""
    try:
        case = parity.data_case(
            task, load_task_data(task, opts.data_dir, task.seed if opts.seed is None else opts.seed)
        )
        steps = (opts.parity_steps,)
        result = parity.run_check([case], backends, folder, steps, ALL_ALIGNMENTS, echo)[task.name]
        return parity.row_fields(result, backends, opts.parity_steps, ALL_ALIGNMENTS)
    except Exception as e:  # the rows stand; the check's failure is said in them, a full disk stops the run
        if is_disk_error(e):
            raise
        why = f"the check failed: {type(e).__name__}: {e}"
        return {b: {"parity_steps": opts.parity_steps, "parity_note": why} for b in backends}


def _run_distributed(
    job: Job,
    task: TaskSpec,
    dist: DataParallel,
    run_dir: Path,
    timeout_s: float,
    echo: Callable[[str], None],
) -> dict[str, Any]:
    """One data-parallel row: its ranks started by bench.run.distributed, their files under .jobs/ and logs/."""
    rec = job.record
    name = f"{rec['task']}.{rec['backend']}.{rec['repeat']}.w{dist.workers}-{dist.mode}"
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env = {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    where = distributed.Launch(
        run_dir / ".jobs" / name,
        run_dir / "logs" / name,
        REPO,
        env,
        timeout_s,
        echo,
        f"  [{rec['task']}/{rec['backend']}/w{dist.workers}]",
    )
    return distributed.record(job, task, dist.workers, dist.mode, where, read_records(run_dir))


def _jobs(
    todo: list[PlannedRow],
    run_dir: Path,
    opts: RunOptions,
    env: dict[str, Any],
    echo: Callable[[str], None],
    keep_data: bool = False,
    resize: Resize | None = None,
) -> Iterator[tuple[PlannedRow, Job]]:
    """Yield each pending run with its job, preparing each task's data once, just before its first run.
    A task's data file goes once its last run is done, unless ``keep_data`` (rows still running side by
    side may read it: the run's end clears it). ``resize``: asked before a task's first row (the rows
    before it have landed: the executors pull a row when they can start it); ``todo`` is changed in place
    where it plans the task's rows again (``Processes``), so the caller's count follows."""
    prepared: dict[str, dict[str, Any]] = {}
    asked: set[str] = set()
    for i, row in enumerate(todo):  # todo may grow or shrink past i: enumerate reads it as it goes
        if resize is not None and row.task.name not in asked:
            asked.add(row.task.name)
            now = resize(row.task, latest_records(read_records(run_dir)))
            if isinstance(now, Processes):
                replanned_rows(todo, now.task, opts.backends, now.processes)
            else:
                todo[i:] = [_as_resized(r, now) if r.task.name == row.task.name else r for r in todo[i:]]
            row = todo[i]
        task, backend, repeat = row.task, row.backend, row.repeat
        seed = task.seed if opts.seed is None else opts.seed
        rec = base_record(run_dir.name, task, backend, repeat, seed + repeat)
        if row.dist is not None:
            rec.update(workers=row.dist.workers, scaling_mode=row.dist.mode)
        try:
            list(row_files(run_dir, task.name, backend, repeat))
        except OutsideRunError as e:  # defence in depth: the spec loader refuses such names first
            yield row, Job(rec, error=f"refused: {e}")
            continue
        if row.left_out:  # no data to prepare: it never runs
            yield row, Job(rec)
            continue
        data_key = task.base or task.name  # a tuning run's configurations of one task share its data
        if data_key not in prepared:
            # transfer targets only for a task with a single-process row to come: data-parallel rows never run the
            # transfer phase, and a row should not carry a note (a stand-in dataset) about data it never used
            transfer = any((r.task.base or r.task.name) == data_key and r.dist is None for r in todo[i:])
            prepared[data_key] = _prepare_task(task, opts.data_dir, seed, run_dir / ".jobs", echo, data_key, transfer)
            check_same_data(run_dir, data_key, prepared[data_key].get("fields", {}))
        shared = prepared[data_key]
        rec.update(shared.get("fields", {}), git_commit=env.get("git_commit"))
        targets = shared.get("transfer", []) if row.dist is None else []
        job = Job(
            rec,
            spec=task.to_dict(),
            data=shared.get("data", ""),
            classes=shared.get("classes", []),
            notes=shared.get("notes", []) + [n for t in targets for n in t["notes"]],
            transfer=targets,
            artifacts=str(run_dir / ARTIFACTS),  # per-row files a phase writes for the report
            error=shared.get("error", ""),
        )
        yield row, job
        later = todo[i + 1 :]
        if not keep_data and all((r.task.base or r.task.name) != data_key for r in later) and "data" in shared:
            for path in [shared["data"], *(t["data"] for t in shared.get("transfer", []))]:
                Path(path).unlink(missing_ok=True)  # the last run of this task is done


class DataChanged(RuntimeError):
    """A resumed task's data is not what its recorded rows trained on (a moved file, another folder)."""


def check_same_data(run_dir: Path, data_key: str, fields: dict[str, Any]) -> None:
    """Stop a resume, before any of the task's rows run, whose data resolves otherwise than its recorded
    rows': the table would put frameworks trained on different data side by side. DataChanged says how."""
    here = (fields.get("dataset_source"), fields.get("n_train"))
    if here[0] is None:  # the data did not load: the task's rows fail, each saying why
        return
    for r in latest_records(read_records(run_dir)):
        if (r.get("base_task") or r.get("task")) != data_key or r.get("status") != "ok":
            continue
        then = (r.get("dataset_source"), r.get("n_train"))
        if then != here:
            raise DataChanged(
                f"{data_key}: its recorded rows trained on {then[0]} ({then[1]} train), this resume finds "
                f"{here[0]} ({here[1]} train); nothing was run. Make the same data findable (the run's "
                f"--data-dir and BENCH_DATA_DIR are in {run_dir / PLAN}) and resume again"
            )


def _as_resized(row: PlannedRow, now: TaskSpec | str) -> PlannedRow:
    """``row`` with its task as ``resize`` sized it, or left out saying why."""
    return replace(row, task=now) if isinstance(now, TaskSpec) else replace(row, left_out=now)


def _prepare_task(
    task: TaskSpec,
    data_dir: str | None,
    seed: int,
    job_dir: Path,
    echo: Callable[[str], None],
    data_key: str = "",
    transfer: bool = True,
) -> dict[str, Any]:
    """Load and shape a task's data once and save it for the workers, and its transfer targets where ``transfer``;
    a failure fails its rows. ``notes``: the task's data's own (each target's are in its entry)."""
    try:
        t0 = time.perf_counter()
        ds = load_task_data(task, data_dir, seed)
        check_fits_data(task, len(ds.train), ds.image_shape)  # before the data is saved or any row starts
        fields = dataset_fields(ds, time.perf_counter() - t0)
        path = task_data(job_dir, data_key or task.name)
        arrays = {"x_train": ds.train.x, "y_train": ds.train.y, "x_test": ds.test.x, "y_test": ds.test.y}
        write_atomic(job_dir, path, lambda f: np.savez(f, allow_pickle=False, **arrays))
        targets = prepare_targets(task, ds, data_dir, seed, job_dir) if transfer else []
    except SpecError as e:  # the task asks more than its data holds: its rows fail, each saying so
        echo(f"{task.name}: {e}")
        return {"error": str(e)}
    except Exception as e:  # bad data fails this task's rows, not the suite; a full disk stops the suite
        if is_disk_error(e):
            raise
        echo(f"{task.name}: dataset: {type(e).__name__}: {e}")
        return {"error": f"dataset: {type(e).__name__}: {e}"}
    echo(
        f"{task.name}: {ds.source}, {fields['n_train']} train / {fields['n_test']} test, "
        f"{fields['image_shape']}, profile {task.profile or '-'}"
    )
    for t in targets:
        echo(
            f"{task.name}: transfer target {t['dataset']}: {t['source']}, {t['n']} {t['split']} images "
            f"of {'/'.join(t['classes'])}"
        )
    return {
        "fields": fields,
        "data": str(path),
        "classes": list(ds.classes),
        "notes": list(ds.notes),
        "transfer": targets,
    }


def _one_line(rec: dict[str, Any]) -> str:
    if rec["status"] != "ok":
        return f"{rec['status']}: {rec.get('error')}"
    if rec.get("workers") is not None:
        eff, share = rec.get("scaling_eff"), rec.get("allreduce_share")
        eff_s, share_s = "-" if eff is None else f"{eff:.2f}", "-" if share is None else f"{share:.0%}"
        # no timed window (every step was the first or warm-up): no rate, which is not 0 img/s
        img_s = "no timed steps" if rec.get("steady_img_s") is None else f"{rec['steady_img_s']:.0f} img/s (global)"
        return f"ok  test acc {rec['test_acc']:.4f}  {img_s}  efficiency {eff_s}  all-reduce share {share_s}"
    # the table's and the verdict's figure; a row with no timed window has only its per-epoch one
    thr, which = rec.get("steady_img_s"), "headline"
    if thr is None:
        thr, which = rec["throughput_img_s"], "per epoch"
    line = f"ok  test acc {rec['test_acc']:.4f}  train {rec['train_s']:.1f}s  {thr:.0f} img/s ({which})"
    return line + (f"; FAILED phase {rec['phase_errors']}" if rec.get("phase_errors") else "")
