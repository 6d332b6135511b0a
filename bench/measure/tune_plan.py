"""A tune's fresh default and best rows sized to a wall-clock budget (bench.run.tune, bench.run.tune_budget).

A tune's ``--budget`` is a promise about wall time, as ``bench all --budget``'s is (bench.measure.budget): the race
chooses, the fresh rows measure, and neither may run past it. The fresh rows ran the task's full recipe whatever
was left, and a 4-minute tune took 10 min 25 s (QA, 2026-12-06: load made PyTorch's default row take 227 s).
Here they are planned from measured costs (an earlier run's before the race, the race's own rows after it) at the
task's own epochs where those fit, fewer where not, never fewer than ``budget.fewest_epochs`` (the floor of a
measurement the budget planner keeps) and never more than the recipe's: a tune reports the recipe, it does not
grow it, nor its images per epoch. A task's default and best rows, in every backend, train the same epochs (the
accuracy floor compares them); tasks whose floors do not fit are left out, the costliest first (``budget.fitting``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from bench.measure.budget import RowCost, Speed, TaskSize, estimate_row_s, fewest_epochs, largest_dial

CONFIGS = ("default", "best")  # the fresh rows of each (task, backend)


@dataclass(frozen=True)
class FreshInputs:
    """The base tasks, the backends, each (task, backend, config)'s cost (a best without one costs as its
    default: before the race no best is known), the processes of each row (``--repeats``), the seconds the rows
    may take and this machine's speed (the costs' ``flops`` are scaled by it)."""

    sizes: Sequence[TaskSize]
    backends: Sequence[str]
    costs: Mapping[tuple[str, str, str], RowCost]
    processes: int
    available_s: float
    speed: float | Speed


@dataclass
class FreshPlan:
    epochs: dict[str, int]  # each planned task's epochs (its default and best rows, every backend)
    recipe: dict[str, int]  # each known task's own epochs
    rows_s: dict[str, float]  # each planned task's fresh rows at its epochs, every process, backend and config
    floor_s: dict[str, float]  # each known task's fresh rows at its fewest epochs
    left_out: dict[str, float] = field(default_factory=dict)  # tasks whose floors did not fit: each one's floor
    unknown: list[str] = field(default_factory=list)  # "task/backend" with no measured cost: at the recipe

    @property
    def planned_s(self) -> float:
        return sum(self.rows_s.values())

    @property
    def whole_floor_s(self) -> float:
        """The fresh rows of every known task at their fewest epochs: what a budget must hold for them all."""
        return sum(self.floor_s.values())


def _cost(inputs: FreshInputs, task: str, backend: str, config: str = CONFIGS[0]) -> RowCost | None:
    return inputs.costs.get((task, backend, config)) or inputs.costs.get((task, backend, CONFIGS[0]))


def plan_fresh(inputs: FreshInputs) -> FreshPlan:
    """Each task's epochs for its fresh rows within ``inputs.available_s``: one dial moves every task together from
    its fewest epochs to its recipe's (``budget.largest_dial``, as in ``budget.plan``), after leaving out the tasks
    whose floors do not fit, the costliest first."""
    unknown = [f"{s.name}/{b}" for s in inputs.sizes for b in inputs.backends if not _cost(inputs, s.name, b)]
    known = [s for s in inputs.sizes if all(_cost(inputs, s.name, b) for b in inputs.backends)]
    rows = {s.name: [c for b in inputs.backends for k in CONFIGS if (c := _cost(inputs, s.name, b, k))] for s in known}
    images = {s.name: _images(s, rows[s.name]) for s in known}
    fewest = {s.name: min(s.epochs, fewest_epochs(s, rows[s.name], images[s.name])) for s in known}

    def seconds(name: str, epochs: int) -> float:
        return inputs.processes * sum(estimate_row_s(c, epochs, images[name], inputs.speed) for c in rows[name])

    def at(s: TaskSize, dial: float) -> int:
        return fewest[s.name] + math.floor((s.epochs - fewest[s.name]) * dial)

    floor = {s.name: seconds(s.name, fewest[s.name]) for s in known}
    kept, left_out = list(known), {}
    while kept and sum(floor[s.name] for s in kept) > inputs.available_s:
        worst = max(kept, key=lambda s: floor[s.name])
        left_out[worst.name] = floor[worst.name]
        kept.remove(worst)

    def total(dial: float) -> float:
        return sum(seconds(s.name, at(s, dial)) for s in kept)

    dial = largest_dial(total, inputs.available_s, 1.0)
    epochs = {s.name: at(s, dial) for s in kept}
    return FreshPlan(
        epochs=epochs,
        recipe={s.name: s.epochs for s in known},
        rows_s={name: seconds(name, e) for name, e in epochs.items()},
        floor_s=floor,
        left_out=left_out,
        unknown=unknown,
    )


def _images(size: TaskSize, costs: Sequence[RowCost]) -> int:
    """Images per epoch as the task trains them: the measured rows' split, under the profile's cap."""
    n = min(c.n_train for c in costs)
    return min(n, size.max_train) if size.max_train else n
