"""``bench all --budget DURATION``: size the tasks' epochs to fit the budget, say the plan, then what it achieved.

Before the run: calibrate this machine (bench.measure.budget.calibrate, numpy only: the parent
imports no framework), read each row's measured cost from the newest earlier run that recorded
one (a run folder with ``budget.json``, under ``--out`` or the committed results/reference/),
plan the epochs (bench.measure.budget.plan) and print it -- with the budget a too-small one
would need, before anything runs; a budget too small for every task's fewest epochs leaves out whole
tasks (the costliest first) and says which, with the budget that would hold them. During: before
each task starts, ``Replan`` plans the rest again from the time left and how much slower or faster
than planned the rows so far ran, so a forecast's error is caught up on by the tasks still to come.
After: the planned and the achieved wall time, each row's 95% half-width and step / epoch ratio,
and ``budget.json`` in the run folder (the calibrations, the run's time outside its rows, each
re-plan), which makes this run a cost source for the next.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.core.cpus import usable_cores
from bench.core.results import (
    LEFT_OUT_BY_BUDGET,
    RunFileError,
    budget_left_out,
    json_default,
    latest_records,
    read_json_or_warn,
    read_records,
)
from bench.core.runfiles import write_atomic
from bench.core.spec import TaskSpec, with_recipe
from bench.measure import budget
from bench.run import environment
from bench.run.plan import Processes

BUDGET_FILE = "budget.json"
DEFAULT_BUDGET = "5m"


def duration(value: str) -> float:
    """A ``--budget`` DURATION as argparse's type: a bad one is the parser's one-line error (exit 2)."""
    try:
        return budget.parse_duration(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_budget_option(
    p: argparse.ArgumentParser, default: str | None = DEFAULT_BUDGET, best_default: str | None = None
) -> None:
    """``--budget``: ``bench all`` has one by default (its README promise); ``bench run`` only when asked. Left
    out, the option reads None: the command applies ``default``, or with ``--best`` ``best_default`` (the tune's:
    ``all --best`` had raced six tasks in ``bench all``'s 5 minutes, 18 s a pair, QA 2026-12-06)."""
    p.add_argument(
        "--budget",
        type=duration,
        default=None,
        metavar="DURATION",
        help="wall-clock budget for the whole run (5m, 300s, 90): the quick profile's epochs are sized "
        "from this machine's calibrated speed and each row's measured cost to fit it, and sized again "
        "before each task from the time left; tasks that cannot fit are left out, saying why "
        f"(default: {default or 'none'}" + (f"; with --best, the tune's: {best_default}" if best_default else "") + ")",
    )
    p.set_defaults(budget_default=default, best_budget_default=best_default)


def machine() -> dict[str, Any]:
    """What a calibration's noise band is judged on: the CPU model and the cores this process may use."""
    return {"cpu": environment.cpu_model(), "usable_cores": usable_cores()}


@dataclass(frozen=True)
class OutsideRows:
    """A run's own time outside its rows (starting, calibrating, loading data, the reports), as a budget run
    measured it, and ``after_s`` of it after its last row (the reports: still to come at every re-plan), with the
    calibrations it was measured at. A run before ``after_rows_s`` was recorded counts all of it as after."""

    seconds: float = 0.0
    after_s: float = 0.0
    flops: float = 1.0
    one: float | None = None

    def now(self, speed: budget.Speed) -> tuple[float, float]:
        """(the whole, the part after the rows) at this machine's speed: mostly one thread's work."""
        scale = self.one / speed.one if self.one and speed.one else self.flops / speed.cores
        return self.seconds * scale, self.after_s * scale


def measured_costs(
    parents: list[Path], speed: float | budget.Speed | None = None
) -> tuple[dict[tuple[str, str], budget.RowCost], OutsideRows]:
    """Each (task, backend)'s cost from the newest run folder (by name: run ids start with the time) under
    ``parents`` that has a ``budget.json`` with a calibration and an ok record of the row; and the newest
    such run's time outside its rows with its calibrations (none: ``OutsideRows()``, no time).

    With this machine's ``speed``: a run measured on this machine (its ``budget.json`` says so) whose
    calibration is within the calibration's noise of ``speed`` counts as measured at ``speed``
    (bench.measure.budget.speed_of_costs), on every core and on one alike."""
    now = budget.Speed(speed) if isinstance(speed, int | float) else speed
    here = machine() if now is not None else None
    runs = sorted(
        {d for p in parents if p.is_dir() for d in p.iterdir() if (d / BUDGET_FILE).is_file()}, key=lambda d: d.name
    )
    costs: dict[tuple[str, str], budget.RowCost] = {}
    outside = OutsideRows()
    for run in runs:
        info = read_json_or_warn(run / BUDGET_FILE)
        flops, extra = info.get("calibration_flops"), _seconds(info.get("outside_rows_s"))
        if not isinstance(flops, int | float) or isinstance(flops, bool) or not flops > 0:
            continue
        one = info.get("calibration_one_core_flops")
        one = float(one) if isinstance(one, int | float) and not isinstance(one, bool) and one > 0 else None
        if now is not None:
            same = info.get("machine") == here
            flops = budget.speed_of_costs(float(flops), now.cores, same)
            one = budget.speed_of_costs(one, now.one, same) if one and now.one else one
        if extra is not None:
            after = _seconds(info.get("after_rows_s"))
            outside = OutsideRows(extra, extra if after is None else min(after, extra), float(flops), one)
        try:
            records = latest_records(read_records(run))
        except RunFileError:
            continue
        for rec in records:
            if rec.get("workers") is None and (cost := budget.RowCost.from_record(rec, float(flops), one)):
                costs[cost.task, cost.backend] = cost
    return costs, outside


def _seconds(value: Any) -> float | None:
    """A run's recorded time outside its rows, or None where it is not a number of seconds a run could take."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 3600
    return float(value) if ok else None


def task_size(t: TaskSpec) -> budget.TaskSize:
    """What a plan may change of ``t`` and the goals it keeps (its epochs, images per epoch, window)."""
    return budget.TaskSize(
        t.name,
        t.train.epochs,
        t.train.batch_size,
        t.runtime.warmup_steps,
        t.runtime.timed_steps,
        t.dataset.max_train or None,
        t.train.drop_last,
    )


def as_time(s: float) -> str:
    """1m05.0s; rounded to the tenth first, so 179.96 s reads 3m00.0s, not 2m60.0s."""
    s = round(s, 1)
    return f"{int(s // 60)}m{s % 60:04.1f}s" if s >= 60 else f"{s:.1f}s"


@dataclass
class Fitted:
    """A budget run's plan and what ``report`` says and keeps after it."""

    started: float  # perf_counter when the budget started counting (before the calibration)
    speed: budget.Speed
    readings: list[float]
    plan: budget.Plan
    budget_s: float
    replan: Replan | None = None


def fit(
    tasks: list[TaskSpec],
    backends: tuple[str, ...],
    budget_s: float,
    out: Path,
    echo: Callable[[str], None] = print,
    repeats: int | None = 1,
) -> tuple[list[TaskSpec], Fitted]:
    """The tasks resized to fit ``budget_s`` with ``repeats`` processes per (task, backend), and what ``report``
    needs afterwards (``Fitted.plan.repeats``: each task's processes); the plan is printed. ``repeats`` None
    (no ``--repeats`` given): as many processes a side as the budget holds (``budget.with_processes``)."""
    started = time.perf_counter()
    parents = [out, environment.REPO / "results" / "reference"]
    first = budget.calibrate()
    raw, _ = measured_costs(parents)  # at the calibrations they were measured at
    measured_at = statistics.median(c.flops for c in raw.values()) if raw else None
    cores, readings = budget.confirmed(first, measured_at)
    speed = budget.Speed(cores, budget.calibrate(threads=1))
    costs, outside = measured_costs(parents, speed)
    sizes = [task_size(t) for t in tasks]
    tail_s, end_s = outside.now(speed)
    inputs = budget.PlanInputs(sizes, backends, costs, budget_s, speed, tail_s)
    p = budget.with_processes(inputs) if repeats is None else budget.fitting(inputs, repeats)
    by_name = {tp.name: tp for tp in p.tasks}
    resized = [_resized(t, by_name[t.name]) if t.name in by_name else t for t in tasks]
    planned = f"planned {as_time(p.planned_s)}" + (" for the rows with a measured cost" if p.unknown else "")
    again = (
        f"; a first reading of {first / 1e9:.0f} lay outside that noise, so it was read {len(readings) - 1} more "
        f"times: {', '.join(f'{r / 1e9:.0f}' for r in readings[1:])}, the fastest counts"
        if len(readings) > 1
        else ""
    )
    one = f", {speed.one / 1e9:.0f} on one core" if speed.one else ""
    echo(
        f"budget {as_time(budget_s)}: this machine's float32 matmul {speed.cores / 1e9:.0f} GFLOP/s{one} (numpy, "
        f"{CALIBRATION_NOTE}{again}); {planned if p.tasks or p.dropped else 'no plan: no row has a measured cost yet'}"
    )
    for tp in p.tasks:
        size = f"{tp.epochs} epochs (profile {tp.profile_epochs})"
        if tp.n_images > tp.profile_images:
            size += f", {tp.n_images:,} images per epoch (profile {tp.profile_images:,})"
        each = f"{tp.repeats} x " if tp.repeats > 1 else ""  # one process's row, run that many times
        rows = ", ".join(f"{b} {each}~{as_time(s)} (window ~{tp.windows[b]:.1f}s)" for b, s in tp.rows.items())
        echo(f"  {tp.name}: {size}: {rows}")
    if p.unknown:
        echo(f"  no measured cost yet for {', '.join(p.unknown)}: as the profile says (this run records it)")
    if repeats is None and p.tasks:
        echo(f"  {processes_sentence(p)}")
    # fitting() leaves tasks out until the rest fits: a plan that still does not fit has no task in it, and is
    # either every task left out (said here) or no measured cost at all, where the profile runs as said above
    if p.dropped:
        needs = f"--budget {int((p.whole_floor_s or p.floor_s) / budget.MARGIN) + 1}s"
        left_out = ", ".join(f"{name} (~{as_time(s)} at its fewest epochs)" for name, s in p.dropped.items())
        echo(
            f"warning: budget {as_time(budget_s)} is too small for every task: the rows' irreducible part "
            f"(imports, first steps, evaluation, phases, the fewest epochs) needs ~{as_time(p.whole_floor_s or 0)}; "
            f"left out unless the rows run faster than planned: {left_out}; run with {needs} to include every task"
        )
    fitted = Fitted(started, speed, readings, p, budget_s)
    known = {s.name: s for s in sizes if all((s.name, b) in costs for b in backends)}  # as plan() has them
    chosen: int | dict[str, int] = p.repeats if repeats is None else repeats
    fitted.replan = Replan(fitted, known, backends, costs, tail_s, echo, repeats=chosen, end_s=end_s)
    return resized, fitted


def processes_sentence(p: budget.Plan) -> str:
    """Which tasks run several processes a side and why, when the budget chose them (no ``--repeats``)."""
    several = [t.name for t in p.tasks if t.repeats > 1]
    once = [t.name for t in p.tasks if t.repeats == 1]
    n = max((t.repeats for t in p.tasks), default=1)
    why = "the spread between fresh processes decides which backend is faster"
    if not several:
        return (
            f"one process a side: the budget holds no {budget.PROCESSES_A_SIDE} a side at the profile's epochs "
            f"(--repeats {budget.PROCESSES_A_SIDE} asks for them; {why})"
        )
    rest = f"; once: {', '.join(once)} (the budget holds no more at the profile's epochs)" if once else ""
    return f"{n} processes a side for {', '.join(several)} ({why}){rest}"


def _resized(task: TaskSpec, tp: budget.TaskPlan) -> TaskSpec:
    """``task`` at the planned epochs, and images per epoch where the plan grew them past the profile's."""
    task = with_recipe(task, "train", epochs=tp.epochs)
    return with_recipe(task, "dataset", max_train=tp.n_images) if tp.n_images > tp.profile_images else task


# The rows so far ran this many times their plan, at most or at least: a first row that stalled (a
# 40 s Keras trace taking 80 s) must not be read as a machine 10x slower for the rest of the run, nor one whose
# estimate came from a slower machine's costs as a machine 10x faster.
REPLAN_FACTOR_RANGE = (0.5, 4.0)


@dataclass
class Replan:
    """Before each task starts (bench.run.runner calls it with the run's records so far): the budget left,
    planned again over the tasks still to run, each backend's costs at its pace (``paces``: how much slower or
    faster than planned its rows so far ran), keeping the first plan's reserve whole. Returns the task at
    its new epochs (``Processes`` where it now runs another number of processes a side than its rows were planned
    with), or why its rows are left out (their fewest epochs no longer fit)."""

    fitted: Fitted
    sizes: dict[str, budget.TaskSize]  # every task with a measured cost, in the run's order
    backends: tuple[str, ...]
    costs: dict[tuple[str, str], budget.RowCost]
    tail_s: float  # the run's own time outside its rows, at this machine's speed
    echo: Callable[[str], None] = print
    log: list[dict[str, Any]] = field(default_factory=list)
    # processes per (task, backend) as the run's rows were planned: a task's repeats all run after its re-plan.
    # Per task where the budget chose them (no --repeats): the re-plan chooses again (budget.with_processes),
    # from ``forecast``, the newest plan's counts for the tasks still to run
    repeats: int | dict[str, int] = 1
    forecast: dict[str, int] = field(default_factory=dict)
    end_s: float | None = None  # of ``tail_s``, the part after the last row (the reports); None: all of it

    def __post_init__(self) -> None:
        if isinstance(self.repeats, dict) and not self.forecast:
            self.forecast = dict(self.repeats)

    def factor(self, done: list[dict[str, Any]], backend: str | None = None) -> float:
        """The finished rows' (``backend``'s, or every backend's) wall time over what the plan's cost model gives
        for them, within REPLAN_FACTOR_RANGE (1 with none)."""
        low, high = REPLAN_FACTOR_RANGE
        ratio = self._ratio(done, backend)
        return 1.0 if ratio is None else min(max(ratio, low), high)

    def _ratio(self, done: list[dict[str, Any]], backend: str | None) -> float | None:
        rows = [r for r in done if r.get("workers") is None and (backend is None or r.get("backend") == backend)]
        costed = ((self.costs.get((str(r.get("task")), str(r.get("backend")))), r) for r in rows)
        return budget.wall_over_estimate(costed, self.fitted.speed)

    def paces(self, done: list[dict[str, Any]]) -> dict[str, float]:
        """Each backend's pace: how many times their estimate its rows still to run are planned to take.

        Its own finished rows' ``factor`` (their wall time over their estimate, within REPLAN_FACTOR_RANGE; every
        backend's where it has none yet). Per backend: a backend's rows share its framework's costs (imports,
        tracing, kernels), and one that runs slow must not cut another's epochs. Faster than the estimate too,
        with the first plan's reserve kept whole (``__call__``) for the tasks that run nearer their own estimate
        than the mean (a fresh clone's rows ran 0.51-0.79x theirs on the AMD VM, against costs measured on a
        Xeon). Never faster than the estimate, the rows ran 0.6x their plan to the last and the run ended at
        3 min 46 s of 5 min; at the slowest task's pace, at 4 min 5 s."""
        every = self.factor(done)
        return {b: self.factor(done, b) if self._ratio(done, b) is not None else every for b in self.backends}

    def outside_to_come(self, elapsed: float, done: list[dict[str, Any]], pace: float) -> float:
        """The run's own work outside its rows still to come, at ``pace`` (every row's: the machine's load slows it
        alike): the whole run's less what this run spent outside its rows so far (the time since the budget started
        less the rows' wall time and their imports; the start and calibration are behind at the first re-plan), but
        never less than its part after the last row, the reports. Keeping the whole at every re-plan had a
        1-minute run leave out every task still to run with 25 s left, 42 s of it "kept for the run's own work"."""
        whole = self.tail_s * pace
        after = whole if self.end_s is None else self.end_s * pace
        rows = [r for r in done if isinstance(r.get("wall_s"), int | float)]
        imports = {r.get("backend"): r.get("import_s") or 0.0 for r in rows}  # one server per backend
        spent = elapsed - sum(r["wall_s"] for r in rows) - sum(imports.values())
        # rows run side by side (an executor) or in an earlier process (a resume): nothing is known to be spent
        return max(after, whole - max(spent, 0.0))

    def __call__(self, task: TaskSpec, done: list[dict[str, Any]]) -> TaskSpec | Processes | str:
        if task.name not in self.sizes:
            return task  # no measured cost: its profile, as planned
        names = list(self.sizes)
        rest = [self.sizes[n] for n in names[names.index(task.name) :]]
        factor, paces = self.factor(done), self.paces(done)
        elapsed = time.perf_counter() - self.fitted.started
        left = self.fitted.budget_s - elapsed
        # the imports are behind; each backend's rows at its pace
        costs = {k: dataclasses.replace(c.at_pace(paces.get(k[1], 1.0)), import_s=0.0) for k, c in self.costs.items()}
        speed, tail_s = self.fitted.speed, self.outside_to_come(elapsed, done, max(1.0, factor))
        # the seconds the first plan kept against the estimate's error, kept whole: the error of what is left does
        # not shrink with the time left (the last re-plan of a fresh clone's run planned 35.9 s of 37.8 s left, its
        # rows ran at the pace planned, and the run's own work after them ended it 0.3 s over)
        reserve = (1 - budget.MARGIN) * self.fitted.budget_s
        inputs = budget.PlanInputs(rest, self.backends, costs, max(left, 0.0), speed, tail_s, reserve_s=reserve)
        if isinstance(self.repeats, dict):
            before = self.repeats.get(task.name, 1)
            p = budget.with_processes(inputs, start=self.forecast)
            self.forecast.update(p.repeats)
        else:
            before = self.repeats
            p = budget.fitting(inputs, self.repeats)
        entry: dict[str, Any] = {
            "task": task.name,
            "left_s": left,
            "factor": factor,
            "paces": paces,
            "epochs_before": task.train.epochs,
        }
        self.log.append(entry)
        time_left = f"{as_time(max(left, 0.0))} of the budget left"
        pace = f"the rows so far ran {factor:.2f}x their plan{_planned_at(factor, paces)}"
        so_far = f"{time_left}, {pace}"
        if task.name in p.dropped:
            # the budget that holds every task, as the first plan's warning names it: its floor of every task at the
            # pace the rows so far ran, or the time spent and every task still to run, whichever is more. "To include
            # it" named the time spent and the tasks still to run alone: a fresh run at that budget planned the tasks
            # left out before it too, and left this one out again (QA, 2026-12-07: "--budget 153s to include it",
            # then at 153 s it was left out, "--budget 247s")
            first = self.fitted.plan.whole_floor_s or self.fitted.plan.floor_s
            every = max(first * max(1.0, factor), elapsed + (p.whole_floor_s or p.floor_s))
            needs = int(every / budget.MARGIN) + 1
            why = (
                f"{LEFT_OUT_BY_BUDGET} {as_time(self.fitted.budget_s)}: its rows need ~"
                f"{as_time(p.dropped[task.name])} at their fewest epochs, and {time_left}{_kept(p)}, {pace}; "
                f"run with --budget {max(needs, int(self.fitted.budget_s) + 1)}s to include every task"
            )
            entry["left_out"] = why
            self.echo(f"budget: {task.name}: {why}")
            return why
        tp = next((t for t in p.tasks if t.name == task.name), None)
        if tp is None:  # not planned (no cost for one of its backends): as it was
            return task
        resized = _resized(task, tp)
        entry["epochs"] = resized.train.epochs
        changes = []
        if (resized.train, resized.dataset) != (task.train, task.dataset):  # its sizes, not only what names them
            changes.append(f"{task.train.epochs} -> {resized.train.epochs} epochs")
        if tp.repeats != before:
            changes.append(f"{before} -> {tp.repeats} processes a side")
            entry["processes"] = tp.repeats
        if changes:
            self.echo(f"budget: {so_far}: {task.name} {', '.join(changes)}")
        return Processes(resized, tp.repeats) if tp.repeats != before else resized


def _planned_at(factor: float, paces: dict[str, float]) -> str:
    """The pace the rows to come are planned at, where it is not the one the rows so far ran at (``Replan.paces``)."""
    if all(p == factor for p in paces.values()):
        return ""
    if len(set(paces.values())) == 1:
        return f" (the rest planned at {next(iter(paces.values())):.2f}x)"
    return f" (the rest planned at {', '.join(f'{b} {p:.2f}x' for b, p in paces.items())})"


def _kept(p: budget.Plan) -> str:
    """What else the time left must hold, so a "left out" adds up: the run's own work outside the rows (it was
    counted without a word, and 20.7s left read as room for rows of 7.6s) and the tasks still planned after it."""
    kept = []
    if p.shared_s >= 0.05:
        kept.append(f"{as_time(p.shared_s)} of it kept for the run's own work outside the rows (data loads, reports)")
    later = sum(t.floor_s for t in p.tasks)
    if later >= 0.05:
        kept.append(f"{as_time(later)} for the {len(p.tasks)} task(s) still planned after it at their fewest epochs")
    return "".join(f", {k}" for k in kept)


def _since_last_record(run_dir: Path, achieved: float) -> float | None:
    """The seconds since the run's last record landed (the end of its last row: the reports came after), within
    the run's own; None where records.jsonl cannot be read."""
    try:
        since = time.time() - (run_dir / "records.jsonl").stat().st_mtime
    except OSError:
        return None
    return min(max(since, 0.0), achieved)


CALIBRATION_NOTE = (
    "its ratio to the calibration the costs were measured at scales them, unless within the calibration's "
    f"{budget.CALIBRATION_NOISE:g}x noise on the machine they were measured on"
)


def report(run_dir: Path, fitted: Fitted, echo: Callable[[str], None] = print) -> None:
    """The planned and achieved wall time and each row's half-width; ``budget.json`` for the next run's plan."""
    achieved = time.perf_counter() - fitted.started
    p = fitted.plan
    records = latest_records(read_records(run_dir))
    several = max((int(r.get("repeat") or 0) for r in records), default=0) > 0
    planned = (
        f"planned {as_time(p.planned_s)}"
        if p.tasks
        else ("every task left out" if p.dropped else "no plan (no measured costs)")
    )
    echo(f"budget {as_time(fitted.budget_s)}: {planned}, achieved {as_time(achieved)}")
    for r in records:
        hw, ratio = r.get("steady_img_s_hw_pct"), r.get("steady_epoch_ratio")
        if r.get("status") == "ok":
            which = f" (repeat {int(r.get('repeat') or 0) + 1})" if several else ""
            echo(
                f"  {r['task']} / {r['backend']}{which}: {r.get('epochs')} epochs, 95% half-width "
                f"{'-' if hw is None else f'{hw:.1f}%'}, step / epoch {'-' if ratio is None else f'{ratio:.3f}'}"
            )
    left_out = sorted({r["task"] for r in records if budget_left_out(r)})
    if left_out:
        echo(f"  left out to fit the budget: {', '.join(left_out)}")
    rows_s = sum(r.get("wall_s") or 0.0 for r in records)
    imports = {r["backend"]: r.get("import_s") or 0.0 for r in records}
    data = {
        "calibration_flops": fitted.speed.cores,
        "calibration_one_core_flops": fitted.speed.one,
        "machine": machine(),
        "calibration": f"numpy float32 {budget.CALIBRATION_N}x{budget.CALIBRATION_N} matmul, best over "
        f"{budget.CALIBRATION_S}s, on every usable core and on one BLAS thread",
        "calibration_readings": fitted.readings,
        "budget_s": fitted.budget_s,
        "planned_s": p.planned_s,
        "achieved_s": achieved,
        "outside_rows_s": max(0.0, achieved - rows_s - sum(imports.values())),
        # of it, after the last row: the reports, which every re-plan keeps time for
        "after_rows_s": _since_last_record(run_dir, achieved),
        "tasks": [dataclasses.asdict(t) for t in p.tasks],
        "left_out": p.dropped,
        "unknown": p.unknown,
        "replans": fitted.replan.log if fitted.replan else [],
    }
    try:
        write_atomic(run_dir, run_dir / BUDGET_FILE, json.dumps(data, indent=2, default=json_default).encode())
    except OSError as e:
        echo(f"error: could not write {run_dir / BUDGET_FILE} ({e})")
