"""What a run is asked to do: its options (``RunOptions``, checked again as plan.json is read back) and the
rows they plan, in the order they run, with a budget's re-plan of a task's rows written back to plan.json.

Apart from the runner because the plan is read and made without running anything (``--resume``, the
command line's checks, the budget, the tuner), and its rules (the options' bounds, the ABBA order) change
on their own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

from backends import BACKENDS, default_names
from bench.core.placement import EXECUTORS, MAX_DEVICES
from bench.core.results import RunFileError, read_json_object
from bench.core.spec import (
    MAX_ARRAY_PARALLELISM,
    MAX_SEED,
    MAX_SLURM_CPUS,
    MAX_SLURM_MIN,
    SLURM_NAME,
    SLURM_NAME_RULE,
    SpecError,
    TaskSpec,
    spec_from_dict,
)
from bench.core.zoo import weights_path
from bench.report.backends import unknown_reference
from bench.run import environment
from bench.run.runfolder import PLAN, STATE, write_json
from datasets import registry

MAX_REPEATS = 1000  # runs per (task, backend): beyond it a plan is a typo, not a study
MAX_PARITY_STEPS = 100_000  # as `bench parity --steps`


@dataclass(frozen=True)
class RunOptions:
    backends: tuple[str, ...] = field(default_factory=default_names)  # the registry's default set
    data_dir: str | None = None  # --data-dir, absolute: a resume from another folder finds the same data
    # $BENCH_DATA_DIR when the run started (absolute; None: unset). A resume searches it again, whatever its
    # own shell says, so every row of a task trains on the same data (``plan_data_env``).
    data_env: str | None = None
    out: Path = environment.REPO / "results"
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
# of one is asked for its siblings then too, for plan.json (``kept_in_plan``).
Resize = Callable[[TaskSpec, list[dict[str, Any]]], TaskSpec | Processes | str]


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


def repeats_plan(tasks: Sequence[TaskSpec], opts: RunOptions) -> str:
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


def kept_in_plan(
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


def dist_plan(tasks: list[TaskSpec]) -> str:
    n = max((len(_dist_rows(t)) for t in tasks), default=1)
    return f" x up to {n} data-parallel (workers, mode) rows" if n > 1 else ""
