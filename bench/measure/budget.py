"""What a row costs on this machine, and a plan of epochs that fits a wall-clock budget.

A row's cost was measured once, by an earlier run (its records: the time outside the training
calls, the first step, the steady throughput, each call's own overhead) on a machine whose
speed that run calibrated, on every usable core and on one. Steady training steps and evaluations
use every core and scale with the first; the rest of a row (imports, tracing, building, the
phases' Python) runs mostly on one thread and scales with the second: held to one core of two
(`taskset -c 0`), a run's matmul speed halves while its tracing does not, and scaling everything
by the first over-predicted such a run 1.7x (issue #27).

The speed is a numpy float32 matmul's FLOP/s (``calibrate``): the runner's parent must not
import a framework (bench.run.runner), and the plan needs only the ratio of this machine's speed
now to the speed when the costs were measured, both taken the same way, so the gap between
numpy's BLAS and a framework's own matmul (the rows' ``peak_flops``) cancels. On the same cores
and vector units the two move together: a slower clock, fewer cores (``taskset``) or a busy
machine slow both.

A plan is a forecast: the runner asks the budget again before each task (``budget_cli.Replan``),
with the time left and how much slower or faster than planned each backend's rows so far ran,
keeping the first plan's reserve (``1 - MARGIN`` of the budget) whole to the end.

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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

# >= 3 s of small-model steps: half-widths of 2-6% in blocks of steps on the 2-core AMD VM (2026-12-05); a longer
# window there took in more of the machine's drift instead of narrowing them (docs/timing.md, the 2026-12-05 status)
WINDOW_GOAL_S = 3.0
CALL_SHARE = 0.02  # the training call's own overhead at most this share of an epoch
MAX_GROWTH = 4  # epochs (and images per epoch) never grow past this many times the profile's
MARGIN = 0.95  # plan to this share of the budget: the rest absorbs the estimate's error
# Fresh processes a side when the budget holds them (``with_processes``): a process of a row runs 5-15% off
# another on a shared VM, which no single window shows, and Student's t over the processes' log rates reads
# that spread from 3 (95% quantile 2.78 at 2 degrees of freedom; 2 processes give 12.7: no verdict decides).
PROCESSES_A_SIDE = 3
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
    if s.startswith("-"):
        raise ValueError(f"{text!r}: a budget must be positive (e.g. 5m, 300s, 90)")
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "": 1.0}
    parts = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?", s)
    if not s or parts is None or not any(parts.groups()):
        raise ValueError(f"{text!r} is not a duration (e.g. 5m, 300s, 90, 1m30s)")
    if (parts.group(1) or parts.group(2)) and parts.group(3) and not s.endswith("s"):  # "1h30": 30 s or 30 min?
        raise ValueError(f"{text!r}: a number after h or m needs its unit (e.g. 1h30m, 5m30s)")
    seconds = sum(float(v) * u for v, u in zip(parts.groups(), (units["h"], units["m"], units["s"]), strict=True) if v)
    if not 1 <= seconds < math.inf:  # "0.001s" read "budget 0.0s" and ran a plan of 45 s (QA, 2026-12-08)
        raise ValueError(f"{text!r}: a budget must be at least 1 second")
    return seconds


def calibrate(
    seconds: float = CALIBRATION_S,
    n: int = CALIBRATION_N,
    clock: Callable[[], float] = time.perf_counter,
    threads: int | None = None,
) -> float:
    """This machine's float32 matmul FLOP/s: the best of as many n x n products as fit in ``seconds``,
    on every usable core, or on ``threads`` BLAS threads.

    The best, not the mean: another process only ever slows a product down, so the fastest is
    the least disturbed reading (as bench.measure.mfu.measured_peak takes the best of three).
    """
    if threads is not None:
        with threadpool_limits(threads, user_api="blas"):
            return calibrate(seconds, n, clock)
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


OFF_WINDOW_STEPS = ("new_shape_step_s", "epoch_end_step_s")  # a record's steps timed apart (bench.measure.steady)


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
    flops_one: float | None = None  # that run's calibration on one core (None: not read; ``flops`` serves)
    # steps that return before their work is done (Keras on JAX): the step clock keeps the first epoch's last off
    # the window (``window``). Read from the record: its ``epoch_end_step_s``, or its window timed in stretches
    async_steps: bool = False
    # batches a step: Keras's steps_per_execution where the record has it (a step is then one execution)
    steps_per_execution: int = 1

    def at_pace(self, pace: float) -> RowCost:
        """This cost ``pace`` times slower everywhere (as measured on a machine that much faster): the re-plan's
        rows to come at the pace their backend's rows so far ran (bench.run.budget_cli.Replan.paces)."""
        one = None if self.flops_one is None else self.flops_one * pace
        return replace(self, flops=self.flops * pace, flops_one=one)

    @classmethod
    def from_record(cls, rec: dict, flops: float, flops_one: float | None = None) -> RowCost | None:
        """From an ok record of a run calibrated at ``flops`` (``flops_one`` on one core); None when a figure
        it needs is missing. The steps the clock kept off the window and timed apart (a new batch size's first,
        the first epoch's last where steps return early) are one-off costs, as the first step is: ``first_s``
        holds them (their time is in ``train_s`` but at no steady rate)."""
        need = ("wall_s", "train_s", "first_step_s", "steady_img_s", "n_train")
        if rec.get("status") != "ok" or any(not positive(rec.get(k)) for k in need):
            return None
        history = rec.get("history")
        if not isinstance(history, list):
            history = []
        evals = sum(1 for h in history[:-1] if isinstance(h, dict) and "test_acc" in h)  # the last is the final one
        eval_s = rec["eval_s"] if evals and positive(rec.get("eval_s")) else 0.0
        return cls(
            task=rec["task"],
            backend=rec["backend"],
            flops=flops,
            fixed_s=max(0.0, rec["wall_s"] - rec["train_s"] - evals * eval_s),
            first_s=rec["first_step_s"] + sum(positive(rec.get(k)) or 0.0 for k in OFF_WINDOW_STEPS),
            img_s=rec["steady_img_s"],
            call_s=max(0.0, positive(rec.get("epoch_overhead_s")) or 0.0),
            n_train=int(rec["n_train"]),
            eval_s=eval_s,
            import_s=positive(rec.get("import_s")) or 0.0,
            data_s=positive(rec.get("data_load_s")) or 0.0,
            flops_one=flops_one,
            async_steps=positive(rec.get("epoch_end_step_s")) is not None or isinstance(rec.get("step_segments"), list),
            steps_per_execution=int(positive(rec.get("steps_per_execution")) or 1),
        )


def positive(v: object) -> float | None:
    """``v`` when it is a positive finite number (a record is untrusted input), else None."""
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
        return None
    return float(v)


def wall_over_estimate(rows: Iterable[tuple[RowCost | None, dict[str, Any]]], speed: float | Speed) -> float | None:
    """The ok ``rows``' wall time over what their costs estimate at the epochs and images they ran (None with
    none): how much slower than planned a run's rows ran, for the re-plans of ``bench all`` and of a tune."""
    actual = predicted = 0.0
    for cost, r in rows:
        wall, epochs, n = (positive(r.get(k)) for k in ("wall_s", "epochs", "n_train"))
        if cost and wall and epochs and n and r.get("status") == "ok":
            actual += wall
            predicted += estimate_row_s(cost, int(epochs), int(n), speed)
    return actual / predicted if actual and predicted else None


@dataclass(frozen=True)
class TaskSize:
    """A task as its profile sizes it: what the plan may change (epochs, images per epoch) and the goals."""

    name: str
    epochs: int
    batch_size: int
    warmup_steps: int  # batches, rounded up to whole executions (``RowCost.steps_per_execution``)
    timed_steps: int  # the window's minimum step count: steps as the clock counts them (``window``)
    max_train: int | None  # the profile's cap on training images (None: the whole split)
    drop_last: bool = False  # train.drop_last: each epoch trains whole batches only


@dataclass(frozen=True)
class Speed:
    """This machine's calibration now: float32 matmul FLOP/s on every usable core, and on one (None: not read)."""

    cores: float
    one: float | None = None


def _speed(speed: float | Speed) -> Speed:
    return speed if isinstance(speed, Speed) else Speed(speed)


def slowdowns(cost: RowCost, speed: float | Speed) -> tuple[float, float]:
    """How much slower (> 1) this machine runs the row's parallel parts and its serial parts than when
    ``cost`` was measured: the ratio of the calibrations on every core, and on one core where both runs
    read it (else the first again)."""
    s = _speed(speed)
    k = cost.flops / s.cores
    return k, (cost.flops_one / s.one if cost.flops_one and s.one else k)


def estimate_row_s(cost: RowCost, epochs: int, n_images: int, speed: float | Speed) -> float:
    """Seconds the row takes at ``speed`` with ``epochs`` epochs of ``n_images``: its fixed part, the
    first step and each call's own overhead (serial), each epoch's images at the steady rate and the
    evaluations between epochs (on every core)."""
    k, k_one = slowdowns(cost, speed)
    serial = cost.fixed_s + cost.first_s + epochs * cost.call_s
    return k_one * serial + k * (epochs * n_images / cost.img_s + (epochs - 1) * cost.eval_s)


def window(cost: RowCost, size: TaskSize, epochs: int, n_images: int) -> tuple[int, int]:
    """(steps, images) of the row's timed window, counted as the step clock counts them (bench.measure.steady), so
    that ``timed_steps`` and the window's length mean there what they mean in the row's record: a step is one
    execution of ``steps_per_execution`` batches (Keras; one batch elsewhere), an epoch's last one shorter where they
    do not divide it; off the window are the first, the warm-up's (those that begin before ``warmup_steps``
    batches after the first's end), and the first epoch's last where it begins after them and holds a batch size
    not trained before (the epoch's smaller last batch: a compile) or, where steps return before their work is done
    (``RowCost.async_steps``), the first end of an epoch (``epoch_end_step_s``). Counted in batches (until
    2026-12-06), the fewest epochs of a Keras row with steps_per_execution k held about a k-th of its timed steps."""
    bs = size.batch_size
    n = n_images - n_images % bs if size.drop_last and n_images >= bs else n_images
    batches = -(-n // bs)
    k = max(1, cost.steps_per_execution)
    per_epoch = -(-batches // k)  # executions an epoch, the last one shorter where k does not divide it
    opens = min(k, batches) + size.warmup_steps  # the first global batch an execution may begin the window at
    off_steps = off_images = 0
    for e in range(min(epochs, -(-opens // batches))):  # the epochs the first execution and the warm-up reach into
        begun = min(per_epoch, -(-(opens - e * batches) // k))
        off_steps, off_images = off_steps + begun, off_images + min(begun * k * bs, n)
    last = (per_epoch - 1) * k  # the first epoch's last execution begins at this batch
    if last >= opens and (cost.async_steps or n % bs):
        off_steps, off_images = off_steps + 1, off_images + n - last * bs
    return max(0, epochs * per_epoch - off_steps), max(0, epochs * n - off_images)


def window_s(cost: RowCost, size: TaskSize, epochs: int, n_images: int, speed: float | Speed) -> float:
    """The timed window's expected length: its images (``window``) at the steady rate."""
    return window(cost, size, epochs, n_images)[1] / cost.img_s * slowdowns(cost, speed)[0]


@dataclass
class TaskPlan:
    """One task's planned size and each of its rows' expected seconds (``rows``: backend -> seconds of one
    process; the task runs ``repeats`` processes per backend, each at these epochs)."""

    name: str
    epochs: int
    profile_epochs: int
    n_images: int
    profile_images: int
    rows: dict[str, float] = field(default_factory=dict)
    windows: dict[str, float] = field(default_factory=dict)
    floor_s: float = 0.0  # its rows (every repeat) at the fewest epochs the plan allows
    repeats: int = 1


@dataclass
class Plan:
    budget_s: float
    speed: float | Speed
    tasks: list[TaskPlan]
    shared_s: float  # imports and data loads, once per run
    unknown: list[str]  # rows without a measured cost: they run as their profile says
    floor_s: float  # the whole run at the fewest epochs: the budget it needs at least
    dropped: dict[str, float] = field(default_factory=dict)  # tasks left out to fit: each one's rows at the fewest
    whole_floor_s: float | None = None  # with tasks left out: the floor of the run with every task
    # where the one dial stands (``plan``): 0 every task at its fewest epochs, 1 at its profile's, 2 at its wanted
    dial: float = 2.0

    @property
    def repeats(self) -> dict[str, int]:
        """Processes per (task, backend) of each planned task."""
        return {t.name: t.repeats for t in self.tasks}

    @property
    def planned_s(self) -> float:
        return self.shared_s + sum(t.repeats * sum(t.rows.values()) for t in self.tasks)

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


def _images(size: TaskSize, costs: Sequence[RowCost], speed: float | Speed) -> int:
    """Images per epoch: the profile's, raised (up to the cap's MAX_GROWTH, in whole batches) until the
    slowest row's training call overhead is at most CALL_SHARE of an epoch -- only where the profile's cap
    bound the measured run (a split smaller than the cap cannot grow)."""
    n0 = min(c.n_train for c in costs)
    if size.max_train is None or n0 < size.max_train:
        return n0
    need = max(c.call_s * c.img_s * (1 - CALL_SHARE) / CALL_SHARE for c in costs)
    n = min(max(n0, math.ceil(need / size.batch_size) * size.batch_size), MAX_GROWTH * n0)
    return n


def fewest_epochs(size: TaskSize, costs: Sequence[RowCost], n: int) -> int:
    """The fewest epochs a row is a measurement at: 2 (a steady epoch beside the first), or enough for every row's
    ``timed_steps`` timed steps (as its clock counts them: ``window``), up to the profile's."""
    for_steps = 1
    while for_steps < size.epochs and any(window(c, size, for_steps, n)[0] < size.timed_steps for c in costs):
        for_steps += 1
    return max(2, for_steps)


def _epochs_range(size: TaskSize, costs: Sequence[RowCost], n: int, speed: float | Speed) -> tuple[int, int]:
    """(fewest, wanted) epochs: ``fewest_epochs``; wanted: the profile's, or more (up to MAX_GROWTH x) until every
    row's window lasts WINDOW_GOAL_S."""
    floor = fewest_epochs(size, costs, n)
    wanted = size.epochs
    while wanted < MAX_GROWTH * size.epochs and any(window_s(c, size, wanted, n, speed) < WINDOW_GOAL_S for c in costs):
        wanted += 1
    return floor, max(floor, wanted)


@dataclass(frozen=True)
class PlanInputs:
    """What every plan of a run is made from (``plan``, ``fitting``, ``with_processes`` take it whole): the tasks,
    the backends, the rows' measured costs, the budget, this machine's speed and the run's own time outside its
    rows (starting, reports) at that speed."""

    sizes: Sequence[TaskSize]
    backends: Sequence[str]
    costs: dict[tuple[str, str], RowCost]
    budget_s: float
    speed: float | Speed
    run_overhead_s: float = 0.0
    # seconds kept back from the budget besides MARGIN's share: a re-plan keeps the first plan's reserve whole
    # (bench.run.budget_cli.Replan), since the error of what is left does not shrink with the time left
    reserve_s: float = 0.0


def plan(inputs: PlanInputs, repeats: int | Mapping[str, int] = 1) -> Plan:
    """Epochs per task so the whole run fits ``MARGIN`` x ``inputs.budget_s`` (at most ``budget_s - reserve_s``) at
    ``inputs.speed`` FLOP/s.

    One dial (found by bisection) moves every task together, in two stretches: from 0 to 1 each goes
    from its fewest epochs to its profile's, from 1 to 2 from the profile's to its wanted (longer
    windows). So a tight budget first gives up the growth, and only then the profile, and a task that
    wanted no growth keeps its profile while others grow: one factor on the wanted epochs shrank a small
    task's profile to fit a big one's growth. Rows without a measured cost keep the profile.
    ``run_overhead_s``: the run's own time outside its rows (starting, reports), at this speed. ``repeats``:
    processes per (task, backend) (``--repeats``; a mapping: per task, 1 for a task it does not name), each forked
    from the backend's warm server, so each costs a row but its import is paid once: three processes a side at
    fewer epochs, not one at the profile's.
    """
    sizes, backends, costs, speed = inputs.sizes, inputs.backends, inputs.costs, inputs.speed
    budget_s, run_overhead_s = inputs.budget_s, inputs.run_overhead_s
    reps = _repeats_of(repeats)
    unknown = [f"{s.name}/{b}" for s in sizes for b in backends if (s.name, b) not in costs]
    known = [s for s in sizes if all((s.name, b) in costs for b in backends)]

    def serial(c: RowCost, seconds: float) -> float:  # imports and data loads run on one thread
        return seconds * slowdowns(c, speed)[1]

    shared = sum(
        max((serial(costs[s.name, b], costs[s.name, b].import_s) for s in known), default=0.0) for b in backends
    )
    shared += run_overhead_s
    shared += sum(max(serial(costs[s.name, b], costs[s.name, b].data_s) for b in backends) for s in known)
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
            reps(s.name) * estimate_row_s(costs[s.name, b], epochs[s.name], ranges[s.name][0], speed)
            for s in known
            for b in backends
        ), epochs

    target = min(MARGIN * budget_s, budget_s - inputs.reserve_s)
    dial = largest_dial(lambda d: total(d)[0], target, 2.0)
    epochs = total(dial)[1]
    tasks = []
    for s in known:
        n, floor, _ = ranges[s.name]
        n_profile = min(costs[s.name, b].n_train for b in backends)
        tp = TaskPlan(s.name, epochs[s.name], s.epochs, n, n_profile, repeats=reps(s.name))
        for b in backends:
            c = costs[s.name, b]
            tp.rows[b] = estimate_row_s(c, tp.epochs, n, speed)
            tp.windows[b] = window_s(c, s, tp.epochs, n, speed)
            tp.floor_s += tp.repeats * estimate_row_s(c, floor, n, speed)
        tasks.append(tp)
    return Plan(budget_s, speed, tasks, shared, unknown, shared + sum(t.floor_s for t in tasks), dial=dial)


def largest_dial(seconds: Callable[[float], float], target: float, top: float) -> float:
    """The largest dial in [0, ``top``] whose ``seconds`` (rising with the dial) fit ``target``: ``top`` where it
    fits, else by bisection (0 where nothing does: the floors, which the caller weighs)."""
    if seconds(top) <= target:
        return top
    lo, hi = 0.0, top
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if seconds(mid) <= target else (lo, mid)
    return lo


def _repeats_of(repeats: int | Mapping[str, int]) -> Callable[[str], int]:
    """A task's processes a side: ``repeats`` itself, or its entry in the mapping (1 where it names none)."""
    if isinstance(repeats, int):
        return lambda name: repeats
    return lambda name: repeats.get(name, 1)


def fitting(inputs: PlanInputs, repeats: int | Mapping[str, int] = 1) -> Plan:
    """``plan``, leaving whole tasks out until the rest fits: first the task whose fewest epochs cost the
    most (one task left out instead of several). A task's rows are left out together: a comparison needs
    every backend. ``whole_floor_s``: the floor with every task, the budget that would hold them all."""
    whole = plan(inputs, repeats)
    p, kept, dropped = whole, list(inputs.sizes), {}
    while not p.fits and p.tasks:
        worst = max(p.tasks, key=lambda t: t.floor_s)
        dropped[worst.name] = worst.floor_s
        kept = [s for s in kept if s.name != worst.name]
        p = plan(replace(inputs, sizes=kept), repeats)
    p.dropped, p.whole_floor_s = dropped, whole.floor_s
    return p


def with_processes(
    inputs: PlanInputs, start: Mapping[str, int] | None = None, processes: int = PROCESSES_A_SIDE
) -> Plan:
    """Each task's processes a side as the budget holds them, from ``start`` (per task; None: one each):

    1. where ``start`` does not fit with every task at its profile's epochs, the task with several processes
       whose rows cost the most at their fewest epochs runs once instead, until it does or every task runs
       once (a task run once beats a task cut below its profile, or left out);
    2. then ``processes`` a side for each task the budget still holds at its profile's epochs or more, the
       cheapest task first.

    Why: which backend trains faster is decided between fresh processes (PROCESSES_A_SIDE), and one process a
    side leaves the verdict blind to their spread; a task's profile epochs come first (its accuracy is what the
    profile was chosen for), more processes next, longer windows (the wanted growth) last. A task without a
    measured cost runs once, at its profile. The re-plan before each task calls this again with the counts
    planned so far (bench.run.budget_cli.Replan): a run faster than planned gives more tasks three, a slower one
    fewer."""
    reps = dict(start or {})
    while True:
        p = fitting(inputs, reps)
        whole = plan(inputs, reps)
        several = [t for t in whole.tasks if t.repeats > 1]
        if not (p.dropped or p.dial < 1) or not several:
            break
        reps[max(several, key=lambda t: t.floor_s).name] = 1
    if p.dropped or p.dial < 1 or processes <= 1:
        return p
    kept = replace(inputs, sizes=[s for s in inputs.sizes if s.name in p.repeats])
    for tp in sorted(p.tasks, key=lambda t: sum(t.rows.values()) / t.repeats):
        if tp.repeats >= processes:
            continue
        trial = plan(kept, {**reps, tp.name: processes})
        if trial.dial < 1:  # the next cheapest costs more still
            break
        reps[tp.name], p = processes, trial
    p.whole_floor_s = p.floor_s
    return p
