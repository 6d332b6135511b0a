"""What a row costs on this machine, and a plan of epochs that fits a wall-clock budget.

A row's cost was measured once, by an earlier run (its records: the time outside the training
calls, the first step, the steady throughput, each call's own overhead) on a machine whose
speed that run calibrated. The speed is a numpy float32 matmul's FLOP/s (``calibrate``): the
runner's parent must not import a framework (bench.run.runner), and the plan needs only the
ratio of this machine's speed now to the speed when the costs were measured, both taken the
same way, so the gap between numpy's BLAS and a framework's own matmul (the rows' ``peak_flops``)
cancels. On the same cores and vector units the two move together: a slower clock, fewer
cores (``taskset``) or a busy machine slow both.

Epochs are sized by time, as pyperf calibrates its loops, never by a fixed count: each row's
timed window should last ``WINDOW_GOAL_S`` and hold ``runtime.timed_steps`` steps, and an epoch
should be long enough that the training call's own setup and teardown stay under
``CALL_SHARE`` of it (the step / epoch ratio within 0.95-1.05). A task's epochs and images per
epoch are the same for every backend (one spec, the same data), so a task is planned as a whole.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

WINDOW_GOAL_S = 3.0  # a 5-10% step-to-step spread over >= 3 s of small-model steps: half-width ~1-2%
CALL_SHARE = 0.02  # the training call's own overhead at most this share of an epoch
MAX_GROWTH = 4  # epochs (and images per epoch) never grow past this many times the profile's
MARGIN = 0.95  # plan to this share of the budget: the rest absorbs the estimate's error
# Four idle calibrations on one 2-core VM within 45 minutes read 192, 205, 218 and 268 GFLOP/s
# (2026-12-02) while the same rows ran at the same speed: a 1.4x spread of noise. On the machine the costs
# were measured on (CPU model and usable cores: `taskset` changes the machine), a ratio within this factor
# is taken as that noise, not a slower machine; a loaded machine (0.5x) or a slower day of the same VM
# type (65 against 185 GFLOP/s, issue #27) is well outside it.
CALIBRATION_NOISE = 1.5
CALIBRATION_N = 1024  # float32 matmul size: ~2 GFLOP, tens of ms on a 2-core VM
CALIBRATION_S = 0.5  # the calibration's own time: the best of as many matmuls as fit


def parse_duration(text: str) -> float:
    """Seconds from "5m", "300s", "90" (seconds), "1m30s", "1.5h"; ValueError naming the text otherwise."""
    s = text.strip().lower()
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "": 1.0}
    parts = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?", s)
    if not s or parts is None or not any(parts.groups()):
        raise ValueError(f"{text!r} is not a duration (e.g. 5m, 300s, 90, 1m30s)")
    seconds = sum(float(v) * u for v, u in zip(parts.groups(), (units["h"], units["m"], units["s"]), strict=True) if v)
    if not 0 < seconds < math.inf:
        raise ValueError(f"{text!r}: a budget must be more than 0 seconds")
    return seconds


def calibrate(
    seconds: float = CALIBRATION_S, n: int = CALIBRATION_N, clock: Callable[[], float] = time.perf_counter
) -> float:
    """This machine's float32 matmul FLOP/s: the best of as many n x n products as fit in ``seconds``.

    The best, not the mean: another process only ever slows a product down, so the fastest is
    the least disturbed reading (as bench.measure.mfu.measured_peak takes the best of three).
    """
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    a @ a  # warm-up: thread pool start, page faults
    best, start = math.inf, clock()
    while True:
        t = clock()
        a @ a
        best = min(best, clock() - t)
        if clock() - start >= seconds:
            return 2.0 * n**3 / best


# A reading outside the noise band of the costs' calibration is taken again this many times, CONFIRM_PAUSE_S
# apart, and the fastest counts: one 0.5 s window decides every task's epochs, and readings seconds apart on an
# idle VM spread 1.4-1.5x (twelve windows, 2026-12-03). A slowdown shorter than the re-reading is skipped; one
# that lasts longer is what the rows will meet, and scales the plan (a machine that is slow pays ~4 s once).
CONFIRM_READINGS = 4
CONFIRM_PAUSE_S = 0.5


def confirmed(
    speed: float,
    measured_at: float | None,
    measure: Callable[[], float] = calibrate,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[float, list[float]]:
    """``speed``, or the fastest of it and CONFIRM_READINGS more readings when it lies outside the noise band
    (CALIBRATION_NOISE) of ``measured_at``, the calibration the costs were measured at; and every reading."""
    readings = [speed]
    if measured_at is None or within_noise(speed, measured_at):
        return speed, readings
    for _ in range(CONFIRM_READINGS):
        sleep(CONFIRM_PAUSE_S)
        readings.append(measure())
    return max(readings), readings


@dataclass(frozen=True)
class RowCost:
    """One (task, backend) row as an earlier run measured it, at that run's calibrated speed ``flops``."""

    task: str
    backend: str
    flops: float  # the calibration of the run that measured it
    fixed_s: float  # the row outside its training calls: load, build, evaluation, phases, peak matmul
    first_s: float  # the first step: tracing, compilation, warm-up
    img_s: float  # steady throughput
    call_s: float  # each training call's own setup and teardown
    n_train: int  # images per epoch when measured
    eval_s: float = 0.0  # the evaluation after each epoch (eval.per_epoch), between two training calls
    import_s: float = 0.0  # the backend's framework import (once per run, in its worker server)
    data_s: float = 0.0  # the task's data load (once per run)

    @classmethod
    def from_record(cls, rec: dict, flops: float) -> RowCost | None:
        """From an ok record of a run calibrated at ``flops``; None when a figure it needs is missing."""
        need = ("wall_s", "train_s", "first_step_s", "steady_img_s", "n_train")
        if rec.get("status") != "ok" or any(not _number(rec.get(k)) for k in need):
            return None
        history = rec.get("history")
        if not isinstance(history, list):
            history = []
        evals = sum(1 for h in history[:-1] if isinstance(h, dict) and "test_acc" in h)  # the last is the final one
        eval_s = rec["eval_s"] if evals and _number(rec.get("eval_s")) else 0.0
        return cls(
            task=rec["task"],
            backend=rec["backend"],
            flops=flops,
            fixed_s=max(0.0, rec["wall_s"] - rec["train_s"] - evals * eval_s),
            first_s=rec["first_step_s"],
            img_s=rec["steady_img_s"],
            call_s=max(0.0, _number(rec.get("epoch_overhead_s")) or 0.0),
            n_train=int(rec["n_train"]),
            eval_s=eval_s,
            import_s=_number(rec.get("import_s")) or 0.0,
            data_s=_number(rec.get("data_load_s")) or 0.0,
        )


def _number(v: object) -> float | None:
    """``v`` when it is a positive finite number (a record is untrusted input), else None."""
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
        return None
    return float(v)


@dataclass(frozen=True)
class TaskSize:
    """A task as its profile sizes it: what the plan may change (epochs, images per epoch) and the goals."""

    name: str
    epochs: int
    batch_size: int
    warmup_steps: int
    timed_steps: int  # the window's minimum step count
    max_train: int | None  # the profile's cap on training images (None: the whole split)


def estimate_row_s(cost: RowCost, epochs: int, n_images: int, speed: float) -> float:
    """Seconds the row takes at ``speed`` FLOP/s with ``epochs`` epochs of ``n_images``: its fixed part,
    the first step, each epoch's images at the steady rate plus the call's own overhead, and the
    evaluations between epochs."""
    k = cost.flops / speed  # > 1: this machine is slower now than when the cost was measured
    per_epoch = n_images / cost.img_s + cost.call_s
    return k * (cost.fixed_s + cost.first_s + epochs * per_epoch + (epochs - 1) * cost.eval_s)


def window_s(cost: RowCost, size: TaskSize, epochs: int, n_images: int, speed: float) -> float:
    """The timed window's expected length: every step after the first and the warm-up."""
    steps = epochs * -(-n_images // size.batch_size) - 1 - size.warmup_steps
    return max(0, steps) * size.batch_size / cost.img_s * cost.flops / speed


@dataclass
class TaskPlan:
    """One task's planned size and each of its rows' expected seconds (``rows``: backend -> seconds)."""

    name: str
    epochs: int
    profile_epochs: int
    n_images: int
    profile_images: int
    rows: dict[str, float] = field(default_factory=dict)
    windows: dict[str, float] = field(default_factory=dict)
    floor_s: float = 0.0  # its rows at the fewest epochs the plan allows


@dataclass
class Plan:
    budget_s: float
    speed: float
    tasks: list[TaskPlan]
    shared_s: float  # imports and data loads, once per run
    unknown: list[str]  # rows without a measured cost: they run as their profile says
    floor_s: float  # the whole run at the fewest epochs: the budget it needs at least

    @property
    def planned_s(self) -> float:
        return self.shared_s + sum(sum(t.rows.values()) for t in self.tasks)

    @property
    def fits(self) -> bool:
        return self.floor_s <= self.budget_s


def speed_of_costs(measured_at: float, speed: float, same_machine: bool) -> float:
    """The calibration to scale a cost measured at ``measured_at`` by: ``speed`` itself (no scaling) when
    the two are within a factor CALIBRATION_NOISE of each other on the same machine."""
    return speed if same_machine and within_noise(speed, measured_at) else measured_at


def within_noise(a: float, b: float) -> bool:
    """Whether two calibrations of one machine are within a factor CALIBRATION_NOISE: the same speed, read twice."""
    return max(a / b, b / a) <= CALIBRATION_NOISE


def _images(size: TaskSize, costs: Sequence[RowCost], speed: float) -> int:
    """Images per epoch: the profile's, raised (up to the cap's MAX_GROWTH, in whole batches) until the
    slowest row's training call overhead is at most CALL_SHARE of an epoch -- only where the profile's cap
    bound the measured run (a split smaller than the cap cannot grow)."""
    n0 = min(c.n_train for c in costs)
    if size.max_train is None or n0 < size.max_train:
        return n0
    need = max(c.call_s * c.img_s * (1 - CALL_SHARE) / CALL_SHARE for c in costs)
    n = min(max(n0, math.ceil(need / size.batch_size) * size.batch_size), MAX_GROWTH * n0)
    return n


def _epochs_range(size: TaskSize, costs: Sequence[RowCost], n: int, speed: float) -> tuple[int, int]:
    """(fewest, wanted) epochs: at least 2 (a steady epoch beside the first) and enough for
    ``timed_steps`` timed steps; wanted: the profile's, or more (up to MAX_GROWTH x) until every row's
    window lasts WINDOW_GOAL_S."""
    steps = -(-n // size.batch_size)
    for_steps = math.ceil((1 + size.warmup_steps + size.timed_steps) / steps)
    floor = max(2, min(size.epochs, for_steps))
    wanted = size.epochs
    while wanted < MAX_GROWTH * size.epochs and any(window_s(c, size, wanted, n, speed) < WINDOW_GOAL_S for c in costs):
        wanted += 1
    return floor, max(floor, wanted)


def plan(
    sizes: Sequence[TaskSize],
    backends: Sequence[str],
    costs: dict[tuple[str, str], RowCost],
    budget_s: float,
    speed: float,
    run_overhead_s: float = 0.0,
) -> Plan:
    """Epochs per task so the whole run fits ``MARGIN`` x ``budget_s`` at ``speed`` FLOP/s.

    One dial (found by bisection) moves every task together, in two stretches: from 0 to 1 each goes
    from its fewest epochs to its profile's, from 1 to 2 from the profile's to its wanted (longer
    windows). So a tight budget first gives up the growth, and only then the profile, and a task that
    wanted no growth keeps its profile while others grow: one factor on the wanted epochs shrank a small
    task's profile to fit a big one's growth. Rows without a measured cost keep the profile.
    ``run_overhead_s``: the run's own time outside its rows (starting, reports), at this speed.
    """
    unknown = [f"{s.name}/{b}" for s in sizes for b in backends if (s.name, b) not in costs]
    known = [s for s in sizes if all((s.name, b) in costs for b in backends)]
    shared = sum(
        max((costs[s.name, b].flops / speed * costs[s.name, b].import_s for s in known), default=0.0) for b in backends
    )
    shared += run_overhead_s
    shared += sum(max(costs[s.name, b].data_s * costs[s.name, b].flops / speed for b in backends) for s in known)
    ranges = {}
    for s in known:
        cs = [costs[s.name, b] for b in backends]
        n = _images(s, cs, speed)
        ranges[s.name] = (n, *_epochs_range(s, cs, n, speed))

    def at(dial: float, floor: int, profile: int, wanted: int) -> int:
        if dial <= 1:
            return floor + math.floor((profile - floor) * dial)
        return profile + math.floor((wanted - profile) * (dial - 1))

    def total(dial: float) -> tuple[float, dict[str, int]]:
        epochs = {}
        for s in known:
            _, floor, wanted = ranges[s.name]  # wanted >= max(floor, profile) (_epochs_range)
            epochs[s.name] = at(dial, floor, max(floor, s.epochs), wanted)
        return shared + sum(
            estimate_row_s(costs[s.name, b], epochs[s.name], ranges[s.name][0], speed) for s in known for b in backends
        ), epochs

    target = MARGIN * budget_s
    if total(2.0)[0] <= target:
        dial = 2.0
    else:
        lo, hi = 0.0, 2.0
        for _ in range(40):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if total(mid)[0] <= target else (lo, mid)
        dial = lo
    epochs = total(dial)[1]
    tasks = []
    for s in known:
        n, floor, _ = ranges[s.name]
        tp = TaskPlan(s.name, epochs[s.name], s.epochs, n, min(costs[s.name, b].n_train for b in backends))
        for b in backends:
            c = costs[s.name, b]
            tp.rows[b] = estimate_row_s(c, tp.epochs, n, speed)
            tp.windows[b] = window_s(c, s, tp.epochs, n, speed)
            tp.floor_s += estimate_row_s(c, floor, n, speed)
        tasks.append(tp)
    return Plan(budget_s, speed, tasks, shared, unknown, shared + sum(t.floor_s for t in tasks))
