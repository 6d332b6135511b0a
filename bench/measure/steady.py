"""Step timing inside the training calls: first step, warm-up, an auto-ranged timed window.

The worker trains as a user does (``bench.core.backend.train_epochs``): torch one
``backend.train_epoch(state, data, order, batch_size, hooks)`` loop per epoch, Keras every epoch in
one ``model.fit(epochs=N)``; the backend calls ``hooks.on_step_begin(i)`` / ``hooks.on_step_end(i)``
around each optimiser step (torch in its loop, Keras from a callback) and the epoch hooks around each
epoch (``Epochs``, below). ``StepClock`` is the step hooks. Global steps, over epochs:

    step 0           the first step: tracing / compilation / allocator warm-up (``first_step_s``)
    steps 1..warmup  excluded (and profiled with --profile-ops); with Keras's steps_per_execution k a step is
                     an execution of k batches: step 0 is the first execution, and the warm-up the executions
                     after it that hold at least ``warmup`` batches
    steps after      the timed window, to the end of the run, but for a step with a batch size the run has
                     not trained before (``new_shape_step_s``) and, where steps return before their work is done,
                     the first epoch's last step (``epoch_end_step_s``)

A compiler that specialises a program on its input shapes (XLA under JAX and under TensorFlow's
jit_compile, torch.compile, tf.function's tracing) compiles again for the epoch's smaller last batch the
first time it comes: measured on the committed 2026-12-02 cifar10-cnn tune (5,000 images in batches of
64: a last one of 8), that one step took 2-29 s, and torch.compile's window read 329 img/s against a
median step of 1,367. Such a step is a compile, not the steady state: it is kept off the window as the
first step is, and the clock synchronises before it, so that the steps queued before it (a backend
whose steps return early) stay in the window and its own time is its own.

The first epoch's end is first-time work too. Keras reads its metrics there (``Mean.result()``: a few eager
ops), and under JAX each eager op is an XLA program compiled the first time it runs: jit(equal), jit(_where)
and jit(true_divide), 25-60 ms each on the 2-core VM (2026-12-06, ``JAX_LOG_COMPILES``). A backend whose
steps return before their work is done (``async_steps``: Keras on JAX) is timed in synchronised stretches,
one per epoch, each a sample of the row's interval, and the stretch that ended at the first epoch's end held
those compiles: mnist-lenet5 quick's first stretch read 1,476-1,910 img/s against medians of 4,378-6,270 for
the others. So for such a backend the first epoch's last step is kept off the window as a new batch size's
is (the clock synchronises before it, times it apart and adds its excess to ``compile_s``); where that step
is also the first of a new batch size, it is that step. A backend whose steps run when called has the same
work in one step among many, sampled alone, and is timed as before.

The headline ``steady_img_s`` is the window's images over its time (the figure timm's
benchmark.py, the Keras benchmarks page and MLPerf quote), with a bootstrap interval over
steps; the median step's throughput is ``median_step_img_s`` beside it (bench.measure.stats).

What a step's duration is: the time between the end of the previous step and the end of
this one (end to end), not begin -> end. End to end counts everything the loop does per
step wherever the backend's hooks sit: taking the batch (torch indexes and augments
before ``on_step_begin``; Keras's ``fit`` fetches inside its train function), the loop's
own bookkeeping and Keras's callback dispatch. The sum of a call's step durations is then
the epoch's time minus only what it does outside its steps (torch's final loss read, Keras's
epoch callbacks), which is reported apart as ``epoch_overhead_s``. The first timed step of each
epoch is measured from its own (synchronised) begin, so the per-epoch evaluation between two
epochs is never on the clock.

Synchronisation: ``synchronize`` (a device sync on a GPU) runs only at the first step's
two ends, at the begin of each call's first timed step and at the end of each call's last
step -- where the call reads its loss anyway -- never in between, so a GPU's asynchronous
queue is not drained every step. Host timestamps of steps inside a window run ahead of the
device by at most the queue's depth; the synchronised ends bound every window segment.

The window is auto-ranged as ``timeit.autorange`` and pyperf range theirs, except that
training is never extended for a measurement: every step after the warm-up is timed, and
the window must reach ``min_steps`` steps and ``MIN_WINDOW_S`` seconds to count as enough.
A shorter run is reported as it is (``timed_steps``, ``timed_s``) with a note.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from bench.core.progress import progress as default_progress
from bench.measure import stats
from bench.measure.timing import MIN_TIME_DELTA_S

# The window's minimum duration. Measured here (2-core Xeon, quick profiles): a LeNet-5 step
# takes 1-5 ms, a CIFAR CNN step ~10-20 ms, a ResNet101/ConvNeXt-tiny step at 32 px 0.1-0.4 s
# (1 s and more at 224 px). One second covers 100+ scheduler ticks and, for the small models,
# hundreds of steps, so a burst of load from another process or a frequency change is one
# minority of the samples, not the window; for the big models the step count decides.
MIN_WINDOW_S = 1.0
# The window's minimum number of steps (``runtime.timed_steps`` overrides it per task): with 20
# samples the bootstrap interval of the median rests on several distinct order statistics
# (rank 6..15 for a 95% interval), and at a 5% step-to-step spread the half-width is ~2-3%.
MIN_STEPS = 20
PROGRESS_EVERY_S = 5.0  # at most one progress line per this many seconds (time-based throttling)
# The record fields of what the window leaves out (``StepClock.summary``): the first step, the warm-up asked for and
# the batches it was, the steps after it timed apart, and ``compile_s``, their excess over a steady step. A
# data-parallel rank gives these of its own window and its row keeps rank 0's (bench.run.dist_worker): a rank's step
# ends with the all-reduce, so its window's steady step is the row's, to within the ranks' jitter.
OFF_WINDOW_FIELDS = (
    "first_step_s",
    "warmup_steps",
    "warmup_batches",
    "new_shape_step_s",
    "epoch_end_step_s",
    "compile_s",
)


def short_window(steps: int, seconds: float, min_steps: int = MIN_STEPS, min_seconds: float = MIN_WINDOW_S) -> bool:
    """The window rule: a timed window under ``min_steps`` steps or ``min_seconds`` seconds is short (its row says
    so; `bench tune` measures such a row again in fresh processes)."""
    return steps < min_steps or seconds < min_seconds


class StepClock:
    """The per-step hooks of one training run: first step, warm-up, timed window, progress."""

    def __init__(
        self,
        synchronize: Callable[[], None],
        batch_size: int,
        warmup: int,
        min_steps: int = MIN_STEPS,
        min_seconds: float = MIN_WINDOW_S,
        clock: Callable[[], float] | None = None,
        report: Callable[[str], None] = default_progress,
        epochs: int = 1,
        profiler: tuple[Callable[[], None], Callable[[], list[dict[str, Any]]]] | None = None,
        every_s: float = PROGRESS_EVERY_S,
        async_steps: bool = False,
        batches_per_step: int = 1,
    ) -> None:
        if batch_size < 1 or warmup < 0 or min_steps < 0:
            raise ValueError(f"bad step plan: batch_size={batch_size}, warmup={warmup}, min_steps={min_steps}")
        self.sync, self.report = synchronize, report
        self.clock = clock or time.perf_counter  # looked up now, so a test can substitute the clock
        self.batch_size, self.warmup, self.min_steps, self.min_seconds = batch_size, warmup, min_steps, min_seconds
        self.epochs, self.every_s = epochs, every_s
        # steps that return before their work is done (Backend.async_steps): sampled per synchronised stretch
        self.async_steps = async_steps
        self.segments: list[int] = []  # timed steps per stretch between two synchronised ends
        # the first global batch the window may begin at: after the first step and ``warmup`` batches more. With
        # Keras's steps_per_execution k the first step is the first execution (k batches), so this is set again
        # where it ends, and the window opens at the first execution that begins at or after it: the warm-up is
        # ``warmup`` batches rounded up to whole executions
        self.window_start = 1 + warmup
        self.first_batches: int | None = None  # batches the first step trained (k with steps_per_execution k)
        self.window_opened: int | None = None  # the global batch the window began at
        # --profile-ops: (start, stop) of the framework's profiler around the warm-up steps (whole executions)
        self.profiler, self.profiling = profiler, False
        self.top_ops: list[dict[str, Any]] | None = None
        self.profiled_batches: int | None = None  # the optimiser steps the profile holds (its ops' ms are over them)
        self.base = 0  # global index of the current call's step 0
        self.step_first = 0  # the batch index the current step began at
        self.epoch_no = 0
        self.n_images = self.n_steps = 0
        self.first_begin = 0.0
        self.first_s: float | None = None
        self.seg_open = False
        self.last_end = 0.0
        self.durations: list[float] = []
        self.images: list[int] = []
        self.timed_s = 0.0  # running sums of the two lists (progress reads them in O(1))
        self.timed_images = 0
        self.call_begin = self.call_end = self.rate_begin = 0.0
        self.call_timed = False  # every step of the current call is in the window
        self.timed_epoch_s: list[tuple[float, float]] = []  # (epoch, its steps) of each epoch wholly in the window
        # the batch sizes trained so far (a new one is a compile: off the window): full batches from the first
        # step on, and the smaller last batches; ``short_new``: this epoch ends with a batch of a size not yet seen
        self.seen_sizes: set[int] = {batch_size}
        self.short, self.short_new = 0, False
        self.new_shape: tuple[int, float] | None = None  # the window's step with a new batch size: (size, seconds)
        # ``end_new``: this epoch's end is the run's first and the steps return early (async_steps): its last step
        # holds the end-of-epoch work run for the first time (XLA compiling the metrics' eager ops), off the window
        self.end_new = False
        self.epoch_end: tuple[int, float] | None = None  # that step when in the window: (images, seconds)
        # the next epoch's first step waits for other ranks' work between epochs (a data-parallel rank whose backend
        # cannot meet the others after its per-epoch evaluation): ``hold_next_first``; off the window, timed apart
        self.hold_next, self.hold_first = False, False
        self.held: list[float] = []
        self.batches_per_step = max(1, batches_per_step)
        self.last_report = -float("inf")
        self.run_begin: float | None = None

    # -- the worker's side (through ``Epochs``): around each epoch
    def start_epoch(self, n_images: int) -> StepClock:
        """Prepare for one epoch over ``n_images``; returns the step hooks."""
        self.epoch_no += 1
        self.n_images, self.n_steps = n_images, -(-n_images // self.batch_size)
        self.short = n_images - (self.n_steps - 1) * self.batch_size  # the last batch's images
        self.short_new = self.short not in self.seen_sizes
        self.end_new = self.async_steps and self.epoch_no == 1
        self.hold_first, self.hold_next = self.hold_next, False
        self.call_timed = self.base >= self.window_start
        return self

    def hold_next_first(self) -> None:
        """Keep the next epoch's first step off the window: it holds a wait for other ranks, not a steady step."""
        self.hold_next = True

    def end_epoch(self, seconds: float) -> None:
        """The epoch's wall time (synchronised by the caller): what lies outside its steps is overhead."""
        if self.call_timed and self.n_steps:
            # the epoch's time and the sum of its step durations: what lies between them is overhead
            self.timed_epoch_s.append((seconds, self.call_end - self.call_begin))
        self.base += self.n_steps

    # -- the backend's side
    def on_step_begin(self, i: int) -> None:
        self.step_first = i  # a "step" may cover batches step_first..i of on_step_end (Keras steps_per_execution)
        g = self.base + i
        if self.seg_open and (self.short_new or self.end_new) and i + self.batches_per_step >= self.n_steps:
            # a new batch size or the first epoch's end may come: end the stretch here, so the steps queued
            # before it are in the window
            self.sync()
            t = self.clock()
            if self.segments and self.segments[-1]:
                self.durations[-1] += t - self.last_end
                self.timed_s += t - self.last_end
            self.last_end = t
        if g == 0 or (g >= self.window_start and not self.seg_open):
            self.sync()
            t = self.clock()
            if g == 0:
                self.first_begin = self.last_report = t
            else:
                self.seg_open, self.last_end = True, t
                self.segments.append(0)
                if self.window_opened is None:
                    self.window_opened = g
        else:
            t = self.clock() if i == 0 else 0.0
        if i == 0:
            self.call_begin = self.rate_begin = t
            if self.run_begin is None:
                self.run_begin = t
        if self.profiler is not None and self.warmup and g == self.first_batches:
            # the first warm-up step: with steps_per_execution k the execution after the first, whole
            self.profiler[0]()
            self.profiling = True

    def on_step_end(self, i: int) -> None:
        g, last = self.base + i, i == self.n_steps - 1
        first = self.base + self.step_first  # the global index of the step's first batch
        if self.profiling and self.profiler is not None and (g + 1 >= self.window_start or last):
            # the warm-up's last step (its last execution), or the epoch's: the evaluation after it is not profiled
            self.top_ops, self.profiling = self.profiler[1](), False
            self.profiled_batches = g + 1 - (self.first_batches or 0)
        if first == 0:
            self.sync()
            t = self.clock()
            self.first_s = t - self.first_begin
            self.first_batches = g + 1
            self.window_start = g + 1 + self.warmup  # the warm-up counts batches after the first execution's last
            self.rate_begin = self.last_report = t  # progress: the rate since the first step's end
            self.report(f"first step {self.first_s:.2f}s (tracing, compilation, warm-up)")
        elif g >= self.window_start and self.seg_open:
            # the step holds the first batch of this size, or the run's first end of an epoch (async_steps)
            new = last and (self.short_new or self.end_new)
            held = self.hold_first and self.step_first == 0 and not new
            if last or new or held:
                self.sync()
                self.seg_open = not last
            t = self.clock()
            size = min(self.n_images, (i + 1) * self.batch_size) - self.step_first * self.batch_size
            if held:  # the wait for the slowest rank: timed apart; the next step opens a stretch of its own
                self.held.append(t - self.last_end)
                if not self.segments[-1]:
                    self.segments.pop()
                self.seg_open = False
            elif new:  # a compile for the new shape, not the steady state: off the window, as the first step
                if self.short_new:
                    self.new_shape = (self.short, t - self.last_end)
                else:  # the first end of an epoch: Keras's metrics, read once an epoch, compiled the first time
                    self.epoch_end = (size, t - self.last_end)
                if not self.segments[-1]:
                    self.segments.pop()  # a stretch of no timed step
                self.seg_open = False
            else:
                self.durations.append(t - self.last_end)
                self.images.append(size)
                self.segments[-1] += 1
                self.timed_s += t - self.last_end
                self.timed_images += size
            self.last_end = t
        else:
            t = self.clock()
        if last and self.short_new:
            self.seen_sizes.add(self.short)
            self.short_new = False
        if last:
            self.call_end, self.end_new = t, False
        elif t - self.last_report >= self.every_s:
            self._progress(i, t)

    def _progress(self, i: int, now: float) -> None:
        """Steps done, img/s so far, time left in the run (host clock, no sync: an estimate)."""
        self.last_report = now
        done = (i + 1) * self.batch_size
        since = done - (self.batch_size if self.base == 0 else 0)  # images since rate_begin
        rate = self.timed_images / self.timed_s if self.timed_s > 0 else since / max(now - self.rate_begin, 1e-9)
        left = (self.epochs - self.epoch_no) * self.n_images + self.n_images - done
        eta = f"~{left / rate:.0f}s left" if rate > 0 else "time left unknown"
        self.report(f"epoch {self.epoch_no}/{self.epochs} step {i + 1}/{self.n_steps}  {rate:,.1f} img/s  {eta}")

    # -- the record
    def summary(self) -> dict[str, Any]:
        """Record fields; the steady figures are None when no step was timed."""
        out: dict[str, Any] = {
            "first_step_s": self.first_s,
            "warmup_steps": self.warmup,
            "warmup_batches": self.warmup_batches(),
            "timed_steps": 0,
            "timed_s": None,
            "epoch_overhead_s": (
                statistics.median(e - s for e, s in self.timed_epoch_s) if self.timed_epoch_s else None
            ),
            **self.off_window(),
        }
        if not self.durations:
            return out
        out.update(stats.window_throughput(self.durations, self.images, self.segments if self.async_steps else None))
        # steps against epochs over the same epochs (those wholly in the window): what the epochs
        # spend outside their steps, never how one epoch differs from another (machine noise)
        steps_total = sum(steps for _, steps in self.timed_epoch_s)
        if steps_total > 0:
            out["steady_epoch_ratio"] = sum(epoch for epoch, _ in self.timed_epoch_s) / steps_total
        # one-off cost of the first step (tracing, compilation, warm-up) over a steady one, and of the first
        # step of a new batch size over what its images take at the steady rate
        if self.first_s is not None and out.get("steady_step_s") is not None:
            out["compile_s"] = max(0.0, self.first_s - out["steady_step_s"])
            for size, seconds in (s for s in (self.new_shape, self.epoch_end) if s is not None):
                out["compile_s"] += max(0.0, seconds - size / out["steady_img_s"])
        return out

    def off_window(self) -> dict[str, float | None]:
        """The steps after the warm-up kept off the window (a new batch size's first, the first epoch's last where
        steps return early), each timed apart: a record field each, in a single-process row and a rank alike."""
        return {
            "new_shape_step_s": None if self.new_shape is None else self.new_shape[1],
            "epoch_end_step_s": None if self.epoch_end is None else self.epoch_end[1],
        }

    def warmup_batches(self) -> int | None:
        """The batches trained between the first step and the window (None when no window began): ``warmup`` with
        one batch a step, ``warmup`` rounded up to whole executions with Keras's steps_per_execution."""
        if self.window_opened is None or self.first_batches is None:
            return None
        return self.window_opened - self.first_batches

    def warmup_note(self) -> str | None:
        """What the first step and the warm-up held where a step is several batches (steps_per_execution > 1)."""
        left_out = self.warmup_batches()
        if self.batches_per_step == 1 or left_out is None or self.first_batches is None:
            return None
        k = self.batches_per_step
        return (
            f"steps_per_execution {k}: a step is one execution of up to {k} batches, so the first step was the first "
            f"execution ({self.first_batches} batches) and the warm-up the {left_out} batches after it "
            f"(warmup_steps = {self.warmup} rounded up to whole executions), all off the window"
        )

    def new_shape_note(self) -> str | None:
        """What the window left out, where it matters: the first step of a batch size not trained before, when its
        excess over what its images take at the steady rate is 1% of the window or more, and more than one
        scheduler interruption can make (``MIN_TIME_DELTA_S``: a compile takes far longer; an eager backend's short
        step costs what its images do, and is left out silently). A 0.08 s window's 1% is 0.8 ms: an eager PyTorch
        row was told a compiler had compiled its last batch again (QA, 2026-12-07)."""
        if self.new_shape is None or self.timed_s <= 0:
            return None
        size, seconds = self.new_shape
        excess = seconds - size * self.timed_s / self.timed_images
        if excess < max(0.01 * self.timed_s, MIN_TIME_DELTA_S):
            return None
        share = excess / self.timed_s
        of_window = f"{share:.0%} of the window" if share < 1 else f"{share:,.1f}x the window"
        return (
            f"the first step with a batch of {size} images (the epoch's smaller last batch) took {seconds:.3f} s, "
            f"{excess:.3f} s more than its images take at the steady rate ({of_window}): a compiler that "
            "specialises on shapes compiled it again, so it is kept off the window as the first step is and its "
            "excess is in compile_s; train.drop_last = true trains whole batches only"
        )

    def held_note(self) -> str | None:
        """What the window left out where the ranks could not meet between epochs (``hold_next_first``)."""
        if not self.held:
            return None
        return (
            f"the ranks did not meet after each per-epoch evaluation (the backend has no barrier): the first step of "
            f"the {len(self.held)} epoch(s) after one in the window, which waits for the slowest rank's evaluation "
            f"(median {statistics.median(self.held):.3f} s), was kept off the window; it is in the epoch's seconds"
        )

    def async_note(self) -> str | None:
        """What the interval rests on where single steps are not timed (``async_steps``)."""
        if not self.async_steps or not self.durations:
            return None
        n = len(self.segments)
        basis = (
            f"the interval is over its {n} synchronised stretches (one per epoch's timed steps)"
            if n >= stats.MIN_SEGMENTS
            else f"{n} synchronised stretch(es) give no interval (it needs {stats.MIN_SEGMENTS})"
        )
        return (
            "steps return before their work is done (asynchronous dispatch): one step's host time is not its "
            f"work, so no median step is reported and {basis}; the headline is the window's images over its time"
            + self._epoch_end_sentence()
        )

    def _epoch_end_sentence(self) -> str:
        """What the first epoch's last step held, where it was kept off the window (``async_steps``)."""
        if self.epoch_end is None:
            return ""
        size, seconds = self.epoch_end
        steady = size * self.timed_s / self.timed_images if self.timed_images else 0.0
        return (
            f"; the first epoch's last step ({size} images) took {seconds:.3f} s where its images take {steady:.3f} s "
            "at the steady rate: it holds the first end of an epoch, where Keras reads its metrics and the engine "
            "compiles those ops the first time, so it is kept off the window as the first step is and its excess is "
            "in compile_s (docs/timing.md)"
        )

    def short_window_note(self) -> str | None:
        """Why the steady figure is less certain than the rule asks, or None when the window was enough."""
        n, s = len(self.durations), sum(self.durations)
        if not short_window(n, s, self.min_steps, self.min_seconds):
            return None
        return (
            f"timed window short: {n} steps, {s:.2f}s (the rule asks >= {self.min_steps} steps and "
            f">= {self.min_seconds:g}s): the run has no more steps after the warm-up, and training is "
            "never extended for the measurement"
        )


class Epochs:
    """The hooks of a whole training run: the backend calls them around each epoch and each step.

    A backend that trains every epoch in one framework call (Keras: one ``fit(epochs=N)``, as a user
    trains) calls ``on_epoch_begin(e)`` / ``on_epoch_end(e, loss)`` from inside it (a callback); one that
    trains epoch by epoch is driven by ``bench.core.backend.train_epochs``. An epoch's time runs from its
    begin to its end, both synchronised (``timer``), so ``after`` -- the worker's evaluation between epochs,
    its history line -- is in no epoch and never on the step clock. The step hooks are the clock's own
    bound methods: nothing is added to a step.
    """

    def __init__(
        self,
        clock: StepClock,
        timer: Any,
        sizes: Sequence[int],
        after: Callable[[int, float, float], None],
    ) -> None:
        self.clock, self.timer, self.sizes, self.after = clock, timer, list(sizes), after
        self.on_step_begin, self.on_step_end = clock.on_step_begin, clock.on_step_end

    @property
    def n_steps(self) -> int:
        """The current epoch's step count (a Keras callback reads it to close a short last group)."""
        return self.clock.n_steps

    def on_epoch_begin(self, epoch: int) -> None:
        """Epoch ``epoch`` (0-based) is about to take its first step."""
        self.clock.start_epoch(self.sizes[epoch])
        self.timer.start()

    def on_epoch_end(self, epoch: int, loss: float) -> None:
        """Its last step has ended; ``loss``: its mean training loss, a host float."""
        seconds = self.timer.stop()
        self.clock.end_epoch(seconds)
        self.after(epoch, loss, seconds)
