"""A tune within its ``--budget``: the race and the fresh default and best rows planned from measured costs.

Before the tune (``plan_tune``): the fresh rows' cost from the newest earlier run that measured each row (the
figures ``bench all --budget`` plans with, bench.run.budget_cli.measured_costs), at this machine's calibration; a
budget that cannot hold even one task's fresh rows at their fewest epochs is refused, one that cannot hold them all
leaves out the costliest tasks, saying the budget that would hold them (as ``bench all`` does). The race gets
RACE_SHARE of the budget, less where the fresh rows' floors need more than the rest.

After the race (``FreshResize``, asked by the runner before each fresh task's first row): the race's own rows
ran the default and the winner on this machine minutes before, under its load, so they are the costs now; the
fresh rows are sized to what is left (bench.measure.tune_plan), at the pace the fresh rows so far ran. Until
2026-12-06 they ran the full recipe whatever was left: a 4-minute tune took 10 min 25 s (259%).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.core.results import LEFT_OUT_BY_BUDGET, latest_records, read_records
from bench.core.spec import TaskSpec, with_recipe
from bench.measure import budget
from bench.measure.tune_plan import CONFIGS, FreshInputs, FreshPlan, plan_fresh
from bench.run import budget_cli, environment

DEFAULT_TUNE_BUDGET = "30m"  # the built-in tasks' races on a 2-core CPU, in four backends (docs/tuning.md)
RACE_SHARE = 0.7  # of a (task, backend)'s budget, for the race; the rest re-measures default and winner

Costs = dict[tuple[str, str, str], budget.RowCost]  # (task, backend, config) -> its cost
NO_CALIBRATION = budget.Speed(1.0, 1.0)  # no earlier cost to scale: the race's costs are at the speed now


@dataclass
class TuneBudget:
    """The tune's plan: ``whole``, the fresh rows within the whole budget (which tasks it leaves out), ``fresh``,
    within what the race leaves them (their epochs as planned now), and the race's seconds."""

    budget_s: float
    speed: budget.Speed
    sizes: list[budget.TaskSize]
    backends: tuple[str, ...]
    processes: int  # fresh processes of each (task, backend, config): --repeats
    costs: Costs  # the earlier runs' (config "default")
    whole: FreshPlan
    fresh: FreshPlan
    race_s: float
    # perf_counter when the budget started counting: before the calibration, which is the tune's time too (as
    # ``bench all --budget``'s Fitted.started); the tune's "took" counts from it
    started: float = field(default_factory=time.perf_counter)
    # the frameworks' imports, once a backend (``imports_s``): the race's first rung starts its worker server, which
    # every later rung and the fresh rows fork from warm; in the race's seconds, never in the fresh rows'
    imports_s: float = 0.0

    def as_planned(self, spec: TaskSpec) -> TaskSpec:
        """A fresh row's spec at the epochs the plan before the race gave its task (``fresh``), as plan.json holds it
        until the task is sized again (``FreshResize``): a tune stopped before a task's turn resumes it within the
        plan, not at the full recipe. A task the plan has no epochs for (no cost known) keeps its recipe."""
        epochs = self.fresh.epochs.get(spec.base or spec.name)
        return spec if epochs is None or epochs == spec.train.epochs else with_recipe(spec, "train", epochs=epochs)


def plan_tune(
    tasks: list[TaskSpec], backends: tuple[str, ...], budget_s: float, out: Path, processes: int, race_share: float
) -> TuneBudget:
    """The plan of a tune of ``tasks`` from the costs earlier runs measured (none: every row unknown)."""
    started = time.perf_counter()
    parents = [out, environment.REPO / "results" / "reference"]
    raw, _ = budget_cli.measured_costs(parents)
    speed, costs = NO_CALIBRATION, {}
    if any((t.name, b) in raw for t in tasks for b in backends):  # something to scale: calibrate this machine
        speed = budget.Speed(budget.calibrate(), budget.calibrate(threads=1))
        costs = {(*k, CONFIGS[0]): c for k, c in budget_cli.measured_costs(parents, speed)[0].items()}
    sizes = [budget_cli.task_size(t) for t in tasks]
    imports = imports_s(costs, [t.name for t in tasks], backends, speed)
    inputs = FreshInputs(sizes, backends, costs, processes, max(0.0, budget.MARGIN * budget_s - imports), speed)
    whole = plan_fresh(inputs)
    floor = sum(whole.floor_s[n] for n in whole.epochs)
    reserve = min(whole.planned_s, max(floor, (1 - race_share) * budget.MARGIN * budget_s))
    kept = [s for s in sizes if s.name not in whole.left_out]
    fresh = plan_fresh(dataclasses.replace(inputs, sizes=kept, available_s=reserve))
    race_s = max(0.0, min(race_share * budget_s, budget.MARGIN * budget_s - reserve))
    return TuneBudget(budget_s, speed, kept, backends, processes, costs, whole, fresh, race_s, started, imports)


def imports_s(costs: Costs, tasks: list[str], backends: tuple[str, ...], speed: budget.Speed) -> float:
    """Each backend's framework import, once, as earlier runs measured it (``RowCost.import_s``) on one thread at this
    machine's speed, as ``bench all``'s plan counts it. The tune pays it in its race, whose first rung starts the
    backend's worker server, however little of the race is left: a plan without it (QA, 2026-12-06) refused
    `--budget 5s` naming `--budget 35s`, and a 35 s tune spent 17 s importing PyTorch and TensorFlow, then left its
    default and best rows out (26.7 s, 17 s left), measuring nothing."""
    return sum(
        max(
            (
                c.import_s * budget.slowdowns(c, speed)[1]
                for (t, b, _), c in costs.items()
                if b == backend and t in tasks
            ),
            default=0.0,
        )
        for backend in backends
    )


def unplanned(tasks: list[TaskSpec], backends: tuple[str, ...], budget_s: float, processes: int) -> TuneBudget:
    """A tune with no plan before it (no earlier cost read): the race's share of the budget, then the fresh rows
    sized from the race's costs alone."""
    sizes = [budget_cli.task_size(t) for t in tasks]
    none = plan_fresh(FreshInputs(sizes, backends, {}, processes, 0.0, NO_CALIBRATION))
    return TuneBudget(budget_s, NO_CALIBRATION, sizes, backends, processes, {}, none, none, 0.0)


def spendable_s(budget_s: float, elapsed: float) -> float:
    """What is left of ``budget_s`` after ``elapsed`` seconds for more rows: the plan's reserve (1 - MARGIN of the
    budget, for the estimate's error and the run's end) kept whole, as every plan of a tune keeps it."""
    return max(0.0, budget.MARGIN * budget_s - elapsed)


def needed_s(elapsed: float, floor_s: float) -> int:
    """The ``--budget`` that holds ``floor_s`` of fresh rows after ``elapsed`` seconds, MARGIN kept."""
    return int((elapsed + floor_s) / budget.MARGIN) + 1


def plan_lines(tb: TuneBudget) -> list[str]:
    """What the tune says of its plan before it starts."""
    s = budget_cli.as_time
    lines = [f"tune: budget {s(tb.budget_s)}: race ~{s(tb.race_s)}, then default and best measured again"]
    for name, epochs in tb.fresh.epochs.items():
        recipe = tb.fresh.recipe[name]
        lines.append(
            f"  {name}: default and best at {epochs} epochs (recipe {recipe}), ~{s(tb.fresh.rows_s[name])} in "
            f"{len(tb.backends)} backend(s) x {tb.processes} process(es); sized again from the race's rows"
        )
    if tb.whole.left_out:
        left = ", ".join(f"{n} (~{s(f)} at its fewest epochs)" for n, f in tb.whole.left_out.items())
        lines.append(
            f"warning: budget {s(tb.budget_s)} cannot hold every task's default and best rows even at their fewest "
            f"epochs; left out: {left}; run with --budget {needed_s(0.0, tb.whole.whole_floor_s + tb.imports_s)}s to "
            "include them"
        )
    return lines


def race_costs(run_dir: Path, pairs: list[dict[str, Any]], speed: budget.Speed) -> Costs:
    """Each raced (task, backend)'s default and winner as the race ran them, from the longest rung each ran ok in
    (tune.json's ``pairs``): measured on this machine now, so at ``speed``. The servers were warm: no import."""
    out: Costs = {}
    for pair in pairs:
        winner = (pair.get("winner") or {}).get("label")
        for config, label in (("default", "default"), ("best", winner)):
            for rung in reversed(pair.get("rungs") or []):
                trial = next((t for t in rung.get("trials") or [] if t.get("label") == label), None)
                if trial is None or trial.get("status") != "ok":
                    continue
                recs = latest_records(read_records(run_dir / rung["folder"]))
                rec = next((r for r in recs if r.get("config") == trial.get("tag")), None)
                cost = budget.RowCost.from_record(rec or {}, speed.cores, speed.one)
                if cost is not None:
                    out[pair["task"], pair["backend"], config] = dataclasses.replace(cost, import_s=0.0, data_s=0.0)
                    break
    return out


@dataclass
class FreshResize:
    """Before each fresh task's first row (``bench.run.plan.Resize``): its epochs, planned with the tasks after
    it from the time left, the race's costs and the pace the fresh rows so far ran; its default and best rows train
    the same epochs. Or why it is left out. ``sized``: the specs as they ran (the short-window repeats reuse them)."""

    tb: TuneBudget
    started: float  # perf_counter when the tune's budget started counting
    race: Costs
    echo: Callable[[str], None] = print
    decided: dict[str, int | str] = field(default_factory=dict)
    sized: dict[str, TaskSpec] = field(default_factory=dict)
    log: list[dict[str, Any]] = field(default_factory=list)
    # the seconds from the budget's start to the race's end (made as the race ends): what the race took beyond its plan
    race_took_s: float = field(init=False)

    def __post_init__(self) -> None:
        self.race_took_s = time.perf_counter() - self.started

    def costs(self) -> Costs:
        return {**self.tb.costs, **self.race}

    def pace(self, done: list[dict[str, Any]]) -> float:
        """The fresh rows so far: their wall time over their estimate, within budget_cli.REPLAN_FACTOR_RANGE.

        The estimate is from the costs the plan multiplies the pace onto (``costs``: the race's, measured on this
        machine minutes before, under its load), so the pace holds only what the fresh rows ran off those costs: a
        machine that was slow or loaded in the race too is in the costs already and reads 1.0 here, corrected once.
        Measured against the earlier runs' calibrated costs instead, the load would be in the pace as well, and a
        slow machine's rows planned at its slowness twice."""
        costs = self.costs()

        def cost(r: dict[str, Any]) -> budget.RowCost | None:
            key = (str(r.get("base_task")), str(r.get("backend")), str(r.get("config")))
            return costs.get(key) or costs.get((*key[:2], CONFIGS[0]))

        ratio = budget.wall_over_estimate(((cost(r), r) for r in done), self.tb.speed)
        low, high = budget_cli.REPLAN_FACTOR_RANGE
        return 1.0 if ratio is None else min(max(ratio, low), high)

    def __call__(self, task: TaskSpec, done: list[dict[str, Any]]) -> TaskSpec | str:
        base = task.base or task.name
        if base not in self.decided:
            self._plan(base, done)
        epochs = self.decided.setdefault(base, task.train.epochs)  # no cost known: its recipe
        if isinstance(epochs, str):
            return epochs
        resized = with_recipe(task, "train", epochs=epochs) if epochs != task.train.epochs else task
        self.sized[task.name] = resized
        return resized

    def _plan(self, base: str, done: list[dict[str, Any]]) -> None:
        names = [s.name for s in self.tb.sizes]
        if base not in names:  # not planned: its recipe
            return
        rest = [s for s in self.tb.sizes if s.name not in self.decided and names.index(s.name) >= names.index(base)]
        pace = self.pace(done)
        costs = {k: c.at_pace(pace) for k, c in self.costs().items()}
        elapsed = time.perf_counter() - self.started
        left = self.tb.budget_s - elapsed
        available = spendable_s(self.tb.budget_s, elapsed)
        inputs = FreshInputs(rest, self.tb.backends, costs, self.tb.processes, available, self.tb.speed)
        p = plan_fresh(inputs)
        s = budget_cli.as_time
        entry: dict[str, Any] = {"task": base, "left_s": round(left, 1), "pace": round(pace, 3)}
        self.log.append(entry)
        if base in p.left_out:
            why = (
                f"{LEFT_OUT_BY_BUDGET} {s(self.tb.budget_s)}: its default and best rows need ~"
                f"{s(p.left_out[base])} at their fewest epochs, and {s(max(left, 0.0))} of the budget is left; "
                f"run with --budget {self.holding_every_task(inputs, elapsed, p)}s to include every task"
            )
            self.decided[base] = entry["left_out"] = why
            self.echo(f"tune: budget: {base}: {why}")
        elif base in p.epochs:
            self.decided[base] = entry["epochs"] = p.epochs[base]
            self.echo(
                f"tune: budget: {s(max(left, 0.0))} left, the rows measured at {pace:.2f}x their cost: {base}'s "
                f"default and best at {p.epochs[base]} epochs (recipe {p.recipe[base]}), ~{s(p.rows_s[base])}"
            )

    def holding_every_task(self, inputs: FreshInputs, elapsed: float, p: FreshPlan) -> int:
        """The ``--budget`` that would hold every task's fresh rows at their fewest epochs, at the costs and pace
        they run at now. Not the time spent plus the tasks still to run alone: a tune at a larger budget races for
        longer (RACE_SHARE of it, the plan giving the fresh rows the rest, never less than their floors as planned),
        so "--budget Ns to include it" left the task out again at N s. The fresh rows get (1 - RACE_SHARE) of the
        budget's MARGIN at least; that must hold every task's floor as the rows run now, and what the race took
        beyond its plan."""
        every = plan_fresh(dataclasses.replace(inputs, sizes=self.tb.sizes, available_s=0.0)).whole_floor_s
        over = max(0.0, self.race_took_s - self.tb.race_s)
        fresh_share = int((every + over) / ((1 - RACE_SHARE) * budget.MARGIN)) + 1
        return max(needed_s(elapsed, p.whole_floor_s), fresh_share, int(self.tb.budget_s) + 1)


def end_line(
    tb: TuneBudget | None, budget_s: float, race_s: float, took: tuple[float, float, float], given: list[str] | None
) -> str:
    """The tune's last line: its budget, what of it was planned (the race's seconds and the fresh rows' plan), and
    what it took (``took``: the whole tune, the race, the calibration and plan before it). ``given``: None where the
    fresh rows were sized to the budget, else the recipe options that set their recipe (--epochs, --max-train):
    they train it as given, sized to no budget, so the race alone was planned, in its share of the default budget.
    Until 2026-12-07 that line said the whole default budget was planned ("budget 1800s, planned 1800s (race
    1260s), took 22s (1% of the budget)" for a tune with --epochs 1)."""
    achieved, race_took, plan_s = took
    before = f"{plan_s:.1f}s of it the calibration and plan before the race"
    if given is not None:
        recipe = " and ".join(given) or "the command line"
        return (
            f"tune: {recipe} set the default and best rows' recipe: trained as given, not planned to a budget; "
            f"planned: the race alone, {race_s:.0f}s (its share of the {budget_s:.0f}s default budget), which took "
            f"{race_took:.0f}s; the tune took {achieved:.0f}s, {before}"
        )
    planned = race_s + (tb.fresh.planned_s if tb and tb.fresh.epochs else budget_s - race_s)
    return (
        f"tune: budget {budget_s:.0f}s, planned {planned:.0f}s (race {race_s:.0f}s), took {achieved:.0f}s "
        f"({achieved / budget_s:.0%} of the budget), {before}"
    )
