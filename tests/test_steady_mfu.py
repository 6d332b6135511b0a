"""Step timing inside one call per epoch (fake clock), the MFU arithmetic and peak table, the knob columns."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pandas as pd
import pytest

import backends
from bench.core.record import new_record
from bench.core.results import machine_speed
from bench.core.spec import EvalSpec, SpecError, load_task, parse_task
from bench.measure import mfu, perf
from bench.measure.steady import StepClock
from bench.measure.timing import SyncTimer


class FakeClock:
    """A clock that only moves when told; counts its reads and the syncs around them."""

    def __init__(self) -> None:
        self.now = 0.0
        self.events: list[str] = []

    def clock(self) -> float:
        self.events.append("clock")
        return self.now

    def sync(self) -> None:
        self.events.append("sync")


def train_call(
    f: FakeClock,
    hooks: StepClock,
    n_images: int,
    batch: int,
    step_s: float,
    setup_s: float = 0.0,
    gap_s: float = 0.0,
    first_extra_s: float = 0.0,
    short_extra_s: float = 0.0,
) -> None:
    """What a backend's train_epoch does: per-call setup, then each step between its two hooks."""
    f.now += setup_s
    for i in range(-(-n_images // batch)):
        f.now += gap_s  # taking the batch before the begin hook (torch indexes/augments there)
        hooks.on_step_begin(i)
        size = min(batch, n_images - i * batch)
        f.now += step_s * size / batch + (first_extra_s if hooks.base + i == 0 else 0.0)
        f.now += short_extra_s if size < batch else 0.0  # the epoch's smaller last batch: a compile, or noise
        hooks.on_step_end(i)
    f.now += setup_s  # teardown: the final loss read


def run_epochs(f: FakeClock, clock: StepClock, epochs: int, n_images: int, eval_s: float = 0.0, **kw) -> list[float]:
    seconds = []
    for _ in range(epochs):
        hooks = clock.start_epoch(n_images)
        t0 = f.now
        train_call(f, hooks, n_images, clock.batch_size, **kw)
        seconds.append(f.now - t0)
        clock.end_epoch(seconds[-1])
        f.now += eval_s  # per-epoch evaluation between two calls
    return seconds


def test_first_step_warmup_and_window_inside_one_call_per_epoch():
    f = FakeClock()
    lines: list[str] = []
    clock = StepClock(
        f.sync, batch_size=4, warmup=2, min_steps=3, min_seconds=0.0, clock=f.clock, report=lines.append, epochs=2
    )
    seconds = run_epochs(f, clock, 2, 20, step_s=1.0, setup_s=0.5, first_extra_s=100.0)
    assert seconds == pytest.approx([106.0, 6.0])  # epoch times include the call's setup and teardown
    s = clock.summary()
    assert s["first_step_s"] == pytest.approx(101.0)
    # steps 3..9 timed: 2 in epoch 1, 5 in epoch 2; every step is 4 images in 1 s
    assert s["timed_steps"] == 7 and s["timed_s"] == pytest.approx(7.0)
    assert s["steady_img_s"] == pytest.approx(4.0) and s["steady_step_s"] == pytest.approx(1.0)
    assert s["median_step_img_s"] == pytest.approx(4.0) and s["compile_s"] == pytest.approx(100.0)
    assert s["epoch_overhead_s"] == pytest.approx(1.0)  # only epoch 2 lies wholly in the window
    assert clock.short_window_note() is None
    assert any("first step 101.00s" in line for line in lines)


def test_syncs_only_at_window_boundaries():
    f = FakeClock()
    clock = StepClock(
        f.sync, batch_size=1, warmup=1, min_steps=1, min_seconds=0.0, clock=f.clock, report=lambda m: None
    )
    run_epochs(f, clock, 2, 50, step_s=0.01)
    # first step: begin + end; window: begin of step 2, end of epoch 1; begin and end of epoch 2
    assert f.events.count("sync") == 6
    # one read per step end, plus each call's first begin and the window's first begin
    assert f.events.count("clock") == 2 * 50 + 3


def test_evaluation_setup_and_a_slow_batch_fetch_outside_the_call_do_not_move_the_steady_figure():
    figures = []
    for eval_s, setup_s in ((0.0, 0.0), (50.0, 3.0)):
        f = FakeClock()
        clock = StepClock(f.sync, 8, warmup=2, min_steps=1, min_seconds=0.0, clock=f.clock, report=lambda m: None)
        run_epochs(f, clock, 3, 64, eval_s=eval_s, setup_s=setup_s, step_s=0.5)
        figures.append(clock.summary())
    assert figures[0]["steady_img_s"] == figures[1]["steady_img_s"] == pytest.approx(16.0)
    assert figures[1]["epoch_overhead_s"] == pytest.approx(6.0)


def test_time_between_steps_inside_the_call_is_on_the_clock():
    """End to end: the batch fetch before ``on_step_begin`` belongs to the step (not to a gap nobody sees)."""
    f = FakeClock()
    clock = StepClock(f.sync, 4, warmup=1, min_steps=1, min_seconds=0.0, clock=f.clock, report=lambda m: None)
    run_epochs(f, clock, 2, 40, step_s=1.0, gap_s=1.0)
    s = clock.summary()
    # the first timed step of each call runs from its own begin (1 s); the others 2 s end to end
    assert sorted(set(np.round(np.array(s["step_img_s"]), 6))) == [2.0, 4.0]
    # the headline is the window's images over its time: 18 steps of 4 images in 2 x 1 s + 16 x 2 s
    assert s["steady_img_s"] == pytest.approx(18 * 4 / 34) and s["median_step_img_s"] == pytest.approx(2.0)


def test_partial_last_batch_counts_its_images_and_a_short_window_is_said():
    f = FakeClock()
    clock = StepClock(f.sync, 4, warmup=1, min_steps=20, min_seconds=0.0, clock=f.clock, report=lambda m: None)
    run_epochs(f, clock, 2, 10, step_s=1.0)  # steps of 4, 4, 2 images; the last takes 0.5 s
    s = clock.summary()
    # the first epoch's short step is the first of its size (a compile for some: off the window); the second's counts
    assert s["timed_steps"] == 3 and s["steady_img_s"] == pytest.approx(10 / 2.5) and s["new_shape_step_s"] == 0.5
    assert "timed window short: 3 steps" in clock.short_window_note()
    assert clock.new_shape_note() is None  # it took what its images take: no compile, nothing to say
    # a short window's 1% is less than one interruption of the scheduler: 5 ms more on a 0.08 s window is no compile
    # (QA, 2026-12-07: an eager PyTorch row was told its last batch was compiled again)
    g = FakeClock()
    short = StepClock(g.sync, 4, warmup=1, min_steps=20, min_seconds=0.0, clock=g.clock, report=lambda m: None)
    run_epochs(g, short, 2, 10, step_s=0.016, short_extra_s=0.005)
    assert short.summary()["new_shape_step_s"] == pytest.approx(0.013) and short.new_shape_note() is None
    h = FakeClock()  # 30 ms more: beyond an interruption, said
    slow = StepClock(h.sync, 4, warmup=1, min_steps=20, min_seconds=0.0, clock=h.clock, report=lambda m: None)
    run_epochs(h, slow, 2, 10, step_s=0.016, short_extra_s=0.030)
    assert "the first step with a batch of 2 images" in (slow.new_shape_note() or "")
    empty = StepClock(f.sync, 4, warmup=5, clock=f.clock, report=lambda m: None)
    run_epochs(f, empty, 1, 8, step_s=1.0)
    assert empty.summary()["timed_steps"] == 0 and "steady_img_s" not in empty.summary()


def test_the_window_keeps_every_step_after_warmup_and_has_an_interval():
    f = FakeClock()
    clock = StepClock(f.sync, 2, warmup=2, min_steps=20, min_seconds=1.0, clock=f.clock, report=lambda m: None)
    rng = np.random.default_rng(1)
    for _ in range(3):
        hooks = clock.start_epoch(100)
        for i in range(50):
            hooks.on_step_begin(i)
            f.now += 0.1 * (1 + 0.05 * rng.standard_normal())
            hooks.on_step_end(i)
        clock.end_epoch(5.0)
    s = clock.summary()
    assert s["timed_steps"] == 147 and clock.short_window_note() is None
    assert s["steady_img_s_ci_lo"] < s["steady_img_s"] < s["steady_img_s_ci_hi"]
    assert 0 < s["steady_img_s_hw_pct"] < 3 and s["steady_img_s"] == pytest.approx(20.0, rel=0.03)
    assert clock.summary() == s  # seeded: the same steps give the same interval


def test_progress_is_throttled_by_time_and_says_steps_rate_and_time_left():
    f = FakeClock()
    lines: list[str] = []
    clock = StepClock(
        f.sync, 10, warmup=1, min_steps=1, min_seconds=0.0, clock=f.clock, report=lines.append, epochs=2, every_s=5.0
    )
    run_epochs(f, clock, 2, 10_000, step_s=0.01)  # 1,000 steps of 10 ms per epoch: 20 s in all
    steps = [line for line in lines if line.startswith("epoch ")]
    assert len(steps) == 3  # one line per 5 s of training (at 5, 10, 15 s), not one per step
    assert steps[0].startswith("epoch 1/2 step ") and "1,000.0 img/s" in steps[-1] and "s left" in steps[-1]
    reads = f.events.count("clock")
    assert reads == 2 * 1000 + 3  # progress reads no extra clock: it uses the step's own timestamp


def executions(f: FakeClock, hooks: StepClock, n_batches: int, k: int, batch_s: float, first_extra_s: float) -> None:
    """What Keras's fit does with steps_per_execution k (backends/keras StepHooks): one callback pair per execution,
    begin at its first batch, end at its last; an epoch that k does not divide ends in a shorter execution."""
    for first in range(0, n_batches, k):
        last = min(first + k, n_batches) - 1
        hooks.on_step_begin(first)
        f.now += (last - first + 1) * batch_s + (first_extra_s if hooks.base + first == 0 else 0.0)
        hooks.on_step_end(last)


@pytest.mark.parametrize(
    ("k", "warmup", "left_out"),
    [(1, 3, 3), (4, 0, 0), (4, 2, 4), (4, 4, 4), (4, 5, 8), (8, 2, 8)],
)
def test_the_warmup_leaves_out_at_least_its_batches_in_whole_executions(k, warmup, left_out):
    """With steps_per_execution k a step is an execution of k batches: the first step is the first execution, and
    the warm-up the executions after it that hold at least ``warmup`` batches. Counted in global batch indices, the
    window used to open at the first execution beginning at or after batch 1 + warmup: with k = 4 and a warm-up
    of 2 that was batch 4, the second execution, so no warm-up was left out at all."""
    f = FakeClock()
    clock = StepClock(
        f.sync, 2, warmup=warmup, min_steps=1, min_seconds=0.0, clock=f.clock, report=lambda m: None, batches_per_step=k
    )
    hooks = clock.start_epoch(2 * 48)  # 48 whole batches of 2 images
    executions(f, hooks, 48, k, batch_s=0.5, first_extra_s=10.0)
    clock.end_epoch(f.now)
    s = clock.summary()
    assert s["first_step_s"] == pytest.approx(k * 0.5 + 10.0)  # the first execution, whole
    assert s["warmup_batches"] == left_out and left_out >= warmup and left_out % k == 0
    assert s["timed_steps"] * k == 48 - k - left_out and s["timed_s"] == pytest.approx((48 - k - left_out) * 0.5)
    assert s["steady_img_s"] == pytest.approx(4.0)  # 2 images in 0.5 s: nothing of the first execution in it
    note = clock.warmup_note()
    assert note is None if k == 1 else f"the warm-up the {left_out} batches after it" in note


def test_the_warmup_in_whole_executions_when_each_epoch_ends_in_a_shorter_one():
    """13 batches an epoch with 8 an execution: a fit per epoch runs executions of 8 and 5 (backends/keras). The
    first execution is batches 0..7; a warm-up of 2 asks batches 8 and 9, which the epoch's second execution (8..12)
    holds, so the window opens with the next epoch, 5 batches left out."""
    f = FakeClock()
    clock = StepClock(
        f.sync, 4, warmup=2, min_steps=1, min_seconds=0.0, clock=f.clock, report=lambda m: None, batches_per_step=8
    )
    for _ in range(3):
        hooks = clock.start_epoch(4 * 13)
        t0 = f.now
        executions(f, hooks, 13, 8, batch_s=0.25, first_extra_s=5.0)
        clock.end_epoch(f.now - t0)
    s = clock.summary()
    assert s["warmup_batches"] == 5 and s["timed_steps"] == 4  # executions of 8, 5, 8, 5 batches
    assert s["timed_s"] == pytest.approx(26 * 0.25) and s["steady_img_s"] == pytest.approx(16.0)
    assert "first execution (8 batches)" in clock.warmup_note()


def test_profiler_runs_around_the_warmup_steps_only():
    f = FakeClock()
    calls: list[tuple[str, int]] = []
    start = lambda: calls.append(("start", len(f.events)))  # noqa: E731
    stop = lambda: calls.append(("stop", len(f.events))) or [{"op": "conv", "ms": 1.0}]  # noqa: E731
    clock = StepClock(
        f.sync, 4, warmup=2, min_steps=1, min_seconds=0.0, clock=f.clock, report=lambda m: None, profiler=(start, stop)
    )
    hooks = clock.start_epoch(40)
    seen = []
    for i in range(10):
        hooks.on_step_begin(i)
        seen.append([c[0] for c in calls])
        hooks.on_step_end(i)
    assert seen[0] == [] and seen[1] == ["start"] and seen[3] == ["start", "stop"]
    assert clock.top_ops == [{"op": "conv", "ms": 1.0}]
    assert clock.profiled_batches == 2


@pytest.mark.parametrize(("k", "warmup", "profiled"), [(4, 2, 4), (4, 5, 8), (8, 1, 8)])
def test_the_profiler_runs_around_the_warmup_executions_with_steps_per_execution(k, warmup, profiled):
    """With steps_per_execution k there is no callback at batch 1: the profiler used to start never. It runs from the
    begin of the execution after the first to the end of the warm-up's last, and says how many batches it held."""
    f = FakeClock()
    calls: list[tuple[str, int]] = []
    batch = [0]  # the batch the hooks are at

    def start() -> None:
        calls.append(("start", batch[0]))

    def stop() -> list[dict]:
        calls.append(("stop", batch[0]))
        return [{"op": "conv", "ms": 1.0}]

    quiet = lambda m: None  # noqa: E731
    clock = StepClock(f.sync, 2, warmup, 1, 0.0, f.clock, quiet, profiler=(start, stop), batches_per_step=k)
    hooks = clock.start_epoch(2 * 48)
    for first in range(0, 48, k):
        batch[0] = first
        hooks.on_step_begin(first)
        f.now += 1.0
        batch[0] = first + k - 1
        hooks.on_step_end(first + k - 1)
    clock.end_epoch(f.now)
    # started at the second execution's begin, stopped at the end of the last one before the window
    assert calls == [("start", k), ("stop", k + profiled - 1)]
    assert clock.top_ops == [{"op": "conv", "ms": 1.0}] and clock.profiled_batches == profiled
    assert clock.summary()["warmup_batches"] == profiled


def test_mfu_arithmetic():
    assert mfu.training_flops_per_image(2e9) == 6e9
    # 6 GFLOP/img x 100 img/s = 0.6 TFLOP/s of a 1.2 TFLOP/s peak
    assert mfu.mfu(6e9, 100.0, 1.2e12) == pytest.approx(0.5)
    assert mfu.mfu(None, 100.0, 1e12) is None and mfu.mfu(1e9, 0.0, 1e12) is None


def test_known_gpu_peaks_depend_on_precision_and_tf32():
    assert mfu.known_peak("NVIDIA A100-SXM4-40GB", "fp32", tf32=False) == 19.5e12
    assert mfu.known_peak("NVIDIA A100-SXM4-40GB", "fp32", tf32=True) == 156e12
    assert mfu.known_peak("NVIDIA A100 80GB PCIe", "mixed_bf16", tf32=False) == 312e12
    assert mfu.known_peak("NVIDIA GeForce RTX 3090", "mixed_bf16", tf32=False) == 71e12
    assert mfu.known_peak("Tesla T4", "mixed_fp16", tf32=False) == 65e12
    assert mfu.known_peak("Tesla T4", "mixed_bf16", tf32=False) is None  # no bf16: the measured peak
    assert mfu.known_peak("Tesla V100-SXM2-16GB", "fp32", tf32=True) == 15.7e12  # no TF32 on Volta
    assert mfu.known_peak("cpu (x86_64)", "fp32", tf32=False) is None


# Names exactly as torch.cuda.get_device_name / TensorFlow's device_name report them.
DRIVER_NAMES = {
    "NVIDIA H100 80GB HBM3": ("H100 HBM3", 989.4),
    "NVIDIA H100 PCIe": ("H100 PCIe", 756.0),
    "NVIDIA H100 NVL": ("H100 NVL", 835.5),
    "NVIDIA H200": ("H200", 989.4),
    "NVIDIA H200 NVL": ("H200 NVL", 835.5),
    "NVIDIA GH200 480GB": ("GH200", 989.4),
    "NVIDIA H20": ("H20", 148.0),
    "NVIDIA B200": ("B200", 2250.0),
    "NVIDIA GB200": ("GB200", 2500.0),
    "NVIDIA A100-SXM4-40GB": ("A100", 312.0),
    "NVIDIA A100-SXM4-80GB": ("A100", 312.0),
    "NVIDIA A100-PCIE-40GB": ("A100", 312.0),
    "NVIDIA A100 80GB PCIe": ("A100", 312.0),
    "NVIDIA A10": ("A10", 125.0),
    "NVIDIA A10G": ("A10G", 70.0),
    "NVIDIA A30": ("A30", 165.0),
    "NVIDIA A40": ("A40", 149.7),
    "NVIDIA L4": ("L4", 121.0),
    "NVIDIA L40": ("L40", 181.0),
    "NVIDIA L40S": ("L40S", 362.0),
    "Tesla T4": ("T4", None),
    "Tesla V100-SXM2-32GB": ("V100 SXM2", None),
    "Tesla V100-PCIE-16GB": ("V100 PCIe", None),
    "Tesla V100S-PCIE-32GB": ("V100S", None),
    "NVIDIA GeForce RTX 4090": ("RTX 4090", 165.2),
    "NVIDIA GeForce RTX 3090": ("RTX 3090", 71.0),
    "NVIDIA RTX 6000 Ada Generation": ("RTX 6000 Ada", 364.2),
    "NVIDIA RTX A6000": ("RTX A6000", 154.8),
}


@pytest.mark.parametrize(("device", "expected"), DRIVER_NAMES.items(), ids=list(DRIVER_NAMES))
def test_driver_reported_gpu_names_find_their_own_entry(device, expected):
    key, bf16 = expected
    assert mfu.match_gpu(device) == key
    peak = mfu.known_peak(device, "mixed_bf16", tf32=False)
    assert (peak / 1e12 if peak else None) == (pytest.approx(bf16) if bf16 else None)


@pytest.mark.parametrize(
    "device",
    [
        "NVIDIA H100",
        "Tesla V100",
        "NVIDIA GeForce RTX 4090 D",
        "NVIDIA A100-SXM4-40GB MIG 1g.5gb",
        "NVIDIA GeForce RTX 5090",
        "AMD Instinct MI300X",
        "cpu (x86_64)",
        "",
    ],
)
def test_unknown_or_ambiguous_devices_fall_back_to_the_measured_peak(device):
    """A bare "H100" could be SXM or PCIe (peaks 30% apart); a MIG slice or a "D" card is not the chip."""
    assert mfu.match_gpu(device) is None and mfu.known_peak(device, "fp32", tf32=True) is None


class FakeBackend:
    """A backend's MFU instruments alone: 1 GFLOP a forward, a matmul that takes no time."""

    name = "torch"

    def forward_flops(self, state, shape):
        return 1e9

    def matmul(self, n, precision):
        return lambda: None

    def synchronize(self):
        pass


def test_mfu_fields_say_where_the_peak_came_from():
    from bench.core.spec import load_task

    spec = load_task("mnist-lenet5", "quick")
    out = perf.mfu_fields(
        FakeBackend(),
        None,
        spec,
        (28, 28, 1),
        {"device": "NVIDIA L40S", "knobs": {"tf32_matmul": True}, "steady_img_s": 1000.0, "throughput_img_s": 10.0},
    )
    assert out["peak_flops"] == 183e12 and out["peak_flops_source"] == "vendor table: L40S tf32 (dense)"
    assert out["mfu"] == pytest.approx(3e9 * 1000 / 183e12)  # the step window's figure, not the epochs'


def test_measured_peak_times_the_best_matmul_and_caches_it():
    ticks = iter([0.0, 2.0, 10.0, 11.0, 20.0, 24.0])  # 2 s, 1 s, 4 s
    calls = []
    timer = SyncTimer(lambda: None, lambda: next(ticks))
    peak = mfu.measured_peak("test:fp32-unique", lambda: calls.append(1), 1000, timer)
    assert peak == pytest.approx(2 * 1000**3 / 1.0)  # the fastest of three
    assert len(calls) == 4  # one untimed warm-up
    assert mfu.measured_peak("test:fp32-unique", lambda: calls.append(1), 1000, timer) == peak
    assert len(calls) == 4  # cached


def test_a_peak_measured_on_a_machine_loaded_beyond_its_cores_says_so_beside_its_mfu(monkeypatch):
    """QA: Keras's MFU read 77-89% on a loaded 2-core VM, against its own matmul peak measured under that load (the
    matmuls shared the cores: the peak low, MFU high). The load as the matmuls ended is recorded with the peak, and a
    row whose peak was measured beyond its node's cores carries a note saying so; within them, nothing is said."""
    from bench.core.spec import load_task

    monkeypatch.setattr(mfu, "_MEASURED", {})
    monkeypatch.setattr(os, "getloadavg", lambda: (7.7, 5.0, 3.0))
    spec = load_task("mnist-lenet5", "quick")
    out = perf.mfu_fields(FakeBackend(), None, spec, (28, 28, 1), {"device": "cpu (x86_64)", "steady_img_s": 1e3})
    assert out["peak_flops_source"].startswith("measured") and out["peak_flops_load"] == 7.7
    note = mfu.loaded_peak_note({**out, "node_cores": 2})
    assert note is not None and "load 7.7 on 2 cores" in note and "MFU high" in note
    assert mfu.loaded_peak_note({**out, "node_cores": 8}) is None
    assert mfu.loaded_peak_note({**out, "peak_flops_load": None, "node_cores": 2}) is None
    # a vendor table's peak is no measurement of this machine: no load beside it
    gpu = perf.mfu_fields(FakeBackend(), None, spec, (28, 28, 1), {"device": "NVIDIA L40S", "steady_img_s": 1e3})
    assert "peak_flops_load" not in gpu


class NoMatmul(FakeBackend):
    """A backend whose matmul must not run: a row that reads an earlier row's peak never times one."""

    def matmul(self, n, precision):
        raise AssertionError("measured the peak again")


def test_an_earlier_rows_peak_with_the_same_key_stands_in_for_the_matmuls_and_the_row_says_so(monkeypatch):
    """Each row re-measured its peak (best of three 2048^2 matmuls: 0.4-0.8 s a row idle on the 2-core AMD VM, 2 s
    at load 3): a row whose key (node, framework, device, precision, TF32, threads, cores) an earlier row of the run
    measured reads that peak and its load; any other key is measured."""
    from bench.core.spec import load_task

    monkeypatch.setattr(mfu, "_MEASURED", {})
    monkeypatch.setattr(os, "getloadavg", lambda: (1.0, 1.0, 1.0))
    spec = load_task("mnist-lenet5", "quick")
    cpu = {"device": "cpu (x86_64)", "steady_img_s": 1e3, "threads": 2}
    first = perf.mfu_fields(FakeBackend(), None, spec, (28, 28, 1), cpu)
    assert first["peak_flops_reused"] is False and first["peak_flops_load"] == 1.0
    key = first["peak_flops_key"]
    assert "|torch|cpu (x86_64)|fp32|tf32=False|threads=2|cores=" in key and key.endswith("|n=2048")
    known = {key: [5e10, 0.5]}
    again = perf.mfu_fields(NoMatmul(), None, spec, (28, 28, 1), cpu, known)
    assert again["peak_flops"] == 5e10 and again["peak_flops_load"] == 0.5 and again["peak_flops_reused"] is True
    assert again["peak_flops_key"] == key and again["peak_flops_source"] == first["peak_flops_source"]
    assert again["mfu"] == pytest.approx(3e9 * 1e3 / 5e10)
    with pytest.raises(AssertionError, match="measured the peak again"):  # one thread: another matmul, measured
        perf.mfu_fields(NoMatmul(), None, spec, (28, 28, 1), {**cpu, "threads": 1}, known)
    with pytest.raises(AssertionError, match="measured the peak again"):  # another precision's
        bf16 = dataclasses.replace(spec, runtime=dataclasses.replace(spec.runtime, precision="mixed_bf16"))
        perf.mfu_fields(NoMatmul(), None, bf16, (28, 28, 1), cpu, known)


def test_a_peak_measured_beside_a_busy_process_or_under_the_rows_own_speed_reads_low_and_is_not_reused():
    """QA, 2026-12-08: a Keras (TF) row read MFU 118.27% with no word: its peak was measured at load 2.56 on 2 cores
    (under the load line of 3) while others used 35% of its cores, and the next rows read that peak. The others'
    share over the row's training and an MFU above 100% each say the peak reads low: the row's note and summary.md
    say so, the history leaves it out of the calibration, and no later row reads it."""
    from bench.core.placement import peak_reads_low
    from bench.core.results import table
    from bench.history.rows import loaded_peak, uncalibrated
    from bench.report.text import speed_lines

    row = {
        "status": "ok", "backend": "keras", "task": "t", "repeat": 0, "peak_flops_key": "k", "peak_flops": 5e10,
        "peak_flops_load": 2.56, "node_cores": 2, "others_cpu_pct": 35.0, "mfu": 1.1827,
        "peak_flops_source": "measured: best of 3 2048x2048 fp32 matmuls", "precision": "fp32",
    }  # fmt: skip
    assert peak_reads_low(row) == "with others using 35% of the cores"
    assert peak_reads_low({**row, "others_cpu_pct": 3.0}) == "below the row's own speed: MFU 118%"
    calm = {**row, "others_cpu_pct": 3.0, "mfu": 0.42}
    assert peak_reads_low(calm) is None and peak_reads_low({**row, "peak_flops_key": None}) is None  # a vendor's
    assert "others using 35% of the cores" in (mfu.loaded_peak_note(row) or "")
    assert "MFU 118%" in (mfu.loaded_peak_note({**row, "others_cpu_pct": 3.0}) or "")
    assert mfu.reusable_peak(row) is None and mfu.reusable_peak(calm) == ("k", [5e10, 2.56])
    # a row that read an earlier peak: its own others' share is not the peak's (that row's was calm to be read)
    assert peak_reads_low({**row, "peak_flops_reused": True, "mfu": 0.5}) is None
    assert loaded_peak(row) and not loaded_peak(calm)
    assert uncalibrated([row]) == ["keras's matmul peak reads low (with others using 35% of the cores)"]
    from bench.core.record import new_record

    fields = {k: v for k, v in row.items() if k not in ("status", "backend", "task", "repeat")}
    (line,) = speed_lines(table([new_record(task="t", backend="keras", repeat=0, status="ok", **fields)]), None)
    assert "MFU peak reading low (Keras (TF)'s with others using 35% of the cores)" in line, line


def test_only_a_peak_a_row_measured_itself_on_a_node_within_its_cores_is_kept_for_the_rows_after_it():
    measured = {"status": "ok", "peak_flops_key": "k", "peak_flops": 2e11, "peak_flops_load": 1.2, "node_cores": 2}
    assert mfu.reusable_peak(measured) == ("k", [2e11, 1.2])
    assert mfu.reusable_peak({**measured, "peak_flops_load": 3.5}) is None  # loaded: the next row measures again
    assert mfu.reusable_peak({**measured, "peak_flops_reused": True}) is None  # read, not measured
    assert mfu.reusable_peak({**measured, "status": "failed"}) is None
    assert mfu.reusable_peak({**measured, "peak_flops_key": None}) is None  # a vendor table's peak
    # the machine's speed counts each measurement once: a row that read its peak is not a second reading
    rows = [{**measured, "backend": "torch", "peak_flops_source": "measured: x", "precision": "fp32"}]
    rows += [{**rows[0], "peak_flops": 1e11, "peak_flops_load": 0.9}]
    rows += [{**rows[1], "peak_flops_reused": True}] * 3
    assert machine_speed(rows)[0] == {"torch": pytest.approx(1.5e11)}


def test_the_local_executor_hands_each_row_the_peaks_its_earlier_rows_kept(tmp_path):
    """The local executor runs rows one at a time on one node: the only place a peak is handed on (rows side by side,
    on Ray or SLURM measure their own)."""
    from bench.core.job import Job
    from bench.run.executors import Row
    from bench.run.executors.local import Local

    loads = iter([4.0, 1.0, 1.0])  # on 2 cores: the first row's peak was measured on a loaded node

    seen: list[dict] = []

    class Workers:
        def run(self, job, timeout_s, echo):
            seen.append(dict(job.peaks))
            known = job.peaks.get("k")
            return {"status": "ok", "peak_flops_key": "k", "node_cores": 2, "peak_flops_reused": known is not None,
                    "peak_flops": known[0] if known else 1e11 * len(seen),
                    "peak_flops_load": known[1] if known else next(loads)}  # fmt: skip

    local = Local(tmp_path)
    local.workers = Workers()  # type: ignore[assignment]
    rows = [Row(Job({"task": "t", "backend": "numpy", "repeat": i}), f"row {i}") for i in range(4)]
    recs = [rec.record for _, rec in local.run(iter(rows), 10.0, print)]
    assert seen == [{}, {}, {"k": [2e11, 1.0]}, {"k": [2e11, 1.0]}]
    assert [r["peak_flops_reused"] for r in recs] == [False, False, True, True]
    assert [r["peak_flops"] for r in recs] == [1e11, 2e11, 2e11, 2e11]


def test_best_epoch_is_chosen_on_the_test_split_only_when_asked():
    spec = load_task("catsdogs-resnet101", "quick")
    history = [{"epoch": 1, "test_acc": 0.6}, {"epoch": 2, "test_acc": 0.8}, {"epoch": 3, "test_acc": 0.8}]
    assert perf.best_epoch_fields(history, spec) == {"best_epoch": 2, "best_test_acc": 0.8}
    import dataclasses

    last = dataclasses.replace(spec, eval=EvalSpec(select="last"))
    assert perf.best_epoch_fields(history, last) == {}
    notes = " ".join(perf.row_notes(spec))
    assert "TEST split" in notes and "52,672" in notes and "v1.5" in notes and "hflip, rotate10" in notes


def test_knob_columns_default_to_out_of_the_box_and_follow_the_spec():
    spec = load_task("catsdogs-convnext-tiny", "quick")
    t = perf.knob_columns("torch", {"tf32_matmul": False, "tf32_cudnn": True}, spec)
    assert t["precision"] == "fp32" and t["compiled"] == "eager" and t["channels_last"] is False
    assert t["pretrained"] == "no (random init: glorot_uniform)"
    assert t["fused_optimizer"] is False
    k = perf.knob_columns("keras", {"tf32": True}, spec)
    assert k["compiled"] == "tf.function (no XLA)" and k["steps_per_execution"] == 1
    # torch's knobs are no names in Keras's description: its record holds None for them, as the worker makes it
    row = new_record(**k)
    assert row["channels_last"] is None and row["cudnn_benchmark"] is None and row["fused_optimizer"] is None


def test_every_knob_column_a_backend_sets_is_a_record_column():
    """A backend's knob columns become its record's fields (``new_record`` refuses another name): a new knob's
    column is a ``Record`` field and its backend's entry."""
    spec = load_task("mnist-lenet5", "quick")
    for name in backends.names():
        new_record(**perf.knob_columns(name, {}, spec))


BASE = {"name": "t", "dataset": {"name": "catsdogs"}, "train": {"epochs": 1, "batch_size": 4, "lr": 0.1}}


@pytest.mark.parametrize(
    ("model", "train", "runtime", "message"),
    [
        ({"arch": "lenet5", "pretrained": True}, {}, {}, "model.pretrained: model 'lenet5' has no ImageNet weights"),
        ({"arch": "resnet101", "weights": "/x.pth"}, {}, {}, "model.weights: only used with model.pretrained"),
        ({"arch": "resnet101"}, {"augment": ["hflip", "jitter"]}, {}, "train.augment"),
        ({"arch": "resnet101"}, {"augment": ["hflip", "hflip"]}, {}, "train.augment"),
        ({"arch": "resnet101"}, {}, {"precision": "fp8"}, "runtime.precision"),
        ({"arch": "resnet101"}, {}, {"profile_ops": True, "warmup_steps": 0}, "runtime.warmup_steps"),
    ],
)
def test_bad_performance_and_model_keys_are_named(model, train, runtime, message):
    doc = {**BASE, "model": model, "train": {**BASE["train"], **train}, "runtime": runtime}
    with pytest.raises(SpecError, match=message):
        parse_task(doc, source="x.toml")


def test_big_model_tasks_carry_the_original_recipe_in_full():
    for name in ("catsdogs-resnet101", "catsdogs-convnext-tiny"):
        full = load_task(name, "full")
        assert (full.dataset.image_size, full.train.lr, full.train.batch_size, full.train.epochs) == (224, 1e-4, 32, 5)
        assert full.train.augment == ("hflip", "rotate10") and full.eval.select == "best_test"
        assert full.dataset.mean == (0.485, 0.456, 0.406) and full.dataset.std == (0.229, 0.224, 0.225)
        quick = load_task(name, "quick")
        assert quick.dataset.image_size <= 64 and quick.runtime.timed_steps >= 1


def test_the_step_epoch_ratio_compares_the_same_epochs_so_epochs_that_differ_do_not_move_it():
    """Four epochs of 10 steps, the second twice as slow (another process's load), no per-call cost:
    the window (from epoch 1's timed steps on) and the median epoch part by that spread, but steps
    and epochs over the same epochs agree exactly, and the row says which is which. A per-call
    setup then moves the ratio by exactly its share, and the note names it."""
    from bench.measure.timing import agreement_note, spread_note, steady_agreement, summarize_epochs

    for setup_s in (0.0, 0.05):
        f = FakeClock()
        clock = StepClock(f.sync, 4, warmup=1, min_steps=1, min_seconds=0.0, clock=f.clock, report=lambda m: None)
        seconds = []
        for step_s in (1.0, 2.0, 1.0, 1.0):
            hooks = clock.start_epoch(40)
            t0 = f.now
            train_call(f, hooks, 40, 4, step_s=step_s, setup_s=setup_s)
            seconds.append(f.now - t0)
            clock.end_epoch(seconds[-1])
        out = summarize_epochs(seconds, 40)
        out.update(clock.summary())
        out.update(steady_agreement(out))
        # epochs 2-4 lie wholly in the window: 40 s of steps, each epoch 2 setups more
        assert out["steady_epoch_ratio"] == pytest.approx((40 + 3 * 2 * setup_s) / 40)
        # the headline: 38 timed steps of 4 images in 8 + 20 + 10 + 10 s; the epoch figure: the median of 20, 10, 10
        assert out["steady_img_s"] == pytest.approx(152 / 48.0)
        assert out["throughput_img_s"] == pytest.approx(40 / (10 + 2 * setup_s))
    assert agreement_note(out, 4) is None  # 1.01x: within the band
    note = spread_note(out, 4) or ""
    assert "0.800x the median epoch's throughput: the window also holds the first epoch's steps" in note
    assert "the steady epochs differ by 99% (slowest/fastest); over the same epochs steps and epochs agree" in note
    assert "differ by" not in (spread_note(out, 2) or "")  # one steady epoch: no spread among them to name
    out["epoch_overhead_s"], out["steady_epoch_ratio"] = 1.0, 1.1  # a call that spends a tenth outside its steps
    assert "setup/teardown outside the steps is 1000.0 ms" in (agreement_note(out, 4) or "")
    assert spread_note(out, 4) is None  # the ratio's note explains the row; one cause at a time


def test_a_one_epoch_run_falls_back_to_the_window_against_its_only_epoch():
    from bench.measure.timing import agreement_note, steady_agreement

    out = {"steady_img_s": 120.0, "throughput_img_s": 100.0, "epoch_s_median": 1.0}
    assert steady_agreement(out) == {"steady_epoch_ratio": pytest.approx(1.2)}
    out.update(steady_agreement(out))
    assert "no steady epoch (one epoch only" in (agreement_note(out, 1) or "")
    assert steady_agreement({"steady_epoch_ratio": 1.0, "steady_img_s": 1.0, "throughput_img_s": 2.0}) == {}


def test_steps_that_return_before_their_work_is_done_are_sampled_per_synchronised_stretch():
    """JAX's dispatch, as measured on the CPU: a stretch's steps return in 10 ms each and its last one (where the
    clock synchronises) holds the others' work. The headline is the same either way; the per-step samples are
    not the work's, so the interval rests on the stretches (3 or more) and there is no median step."""
    from bench.measure import stats
    from bench.measure.tuning import mean_rate

    durations = [0.01, 0.01, 0.98] * 4  # four epochs' stretches of 3 steps, 1 s each
    images = [8] * 12
    plain = stats.window_throughput(durations, images)
    jax_like = stats.window_throughput(durations, images, [3, 3, 3, 3])
    assert plain["steady_img_s"] == jax_like["steady_img_s"] == pytest.approx(24.0)
    assert plain["median_step_img_s"] == pytest.approx(800.0) and jax_like["median_step_img_s"] is None
    assert plain["steady_img_s_hw_pct"] > 25  # the dispatch times read as a wildly varying step
    assert jax_like["steady_img_s_hw_pct"] == pytest.approx(0.0)  # four equal stretches
    # each step carries its stretch's rate, so the series' harmonic mean is the headline (the tuner reads it)
    assert mean_rate(jax_like["step_img_s"]) == pytest.approx(24.0)
    two = stats.window_throughput([0.5, 1.5, 0.5, 0.5], [8] * 4, [2, 2])
    assert two["steady_img_s"] == pytest.approx(32 / 3) and two.get("steady_img_s_ci_lo") is None
    with pytest.raises(ValueError, match=r"segments \[2, 1\] do not cover the 4 timed steps"):
        stats.window_throughput([0.5] * 4, [8] * 4, [2, 1])

    f = FakeClock()
    clock = StepClock(f.sync, 8, warmup=1, min_steps=1, min_seconds=0.0, clock=f.clock, report=lambda m: None)
    clock.async_steps = True
    run_epochs(f, clock, 4, 40, step_s=1.0)
    s = clock.summary()
    # the first epoch: step 0, one warm-up step, two timed, and its last step off the window (its end is the run's
    # first: test_the_first_end_of_an_epoch_is_off_an_asynchronous_window)
    assert clock.segments == [2, 5, 5, 5] and s["median_step_img_s"] is None and s["steady_img_s"] == pytest.approx(8.0)
    assert "over its 4 synchronised stretches" in (clock.async_note() or "")


def test_an_asynchronous_rows_verdicts_read_its_stretches_as_the_samples_and_are_wrong_about_one_in_twenty():
    """QA, 2026-12-05: each step of a stretch carries the stretch's rate, and the verdicts read those as so many
    independent steps: two Keras/JAX rows of one speed, 3 stretches each 5% apart, were called different 38% of
    the time (57% with 2 stretches). Read per stretch (``stats.samples``, Student's t) it is about 5%, and a
    row's own interval over its stretches covers the true rate about 95% of the time (the bootstrap: 66-81%)."""
    from bench.measure import stats
    from bench.measure.tuning import ratio_ci
    from bench.report.speedup import process_steps

    rng = np.random.default_rng(11)

    def row(stretches: int = 3, steps: int = 40) -> dict:
        rates = 1000.0 * np.exp(0.05 * rng.standard_normal(stretches))  # the drift between stretches
        durations = np.repeat(16 / rates, steps)  # 16 images a step, at its stretch's rate
        return stats.window_throughput(list(durations), [16] * len(durations), [steps] * stretches)

    rows = [row() for _ in range(400)]
    assert rows[0]["step_segments"] == [40, 40, 40] and len(process_steps(rows[:1])) == 3
    called = 0
    for a, b in zip(rows[::2], rows[1::2], strict=True):
        r = ratio_ci(process_steps([a]), process_steps([b]))
        assert r is not None
        called += not (r[1] <= 1.0 <= r[2])
    assert called <= 20, called  # 200 comparisons: ~10 expected at 5%; the old reading called ~76 different
    covered = sum(r["steady_img_s_ci_lo"] <= 1000.0 <= r["steady_img_s_ci_hi"] for r in rows)
    assert covered >= 360, covered  # ~380 of 400 expected at 95%


def stretch_row(rates: np.ndarray, steps: int) -> dict:
    """A stretch-timed row (Keras/JAX) through the real window rule: ``steps`` steps of 16 images a stretch, at
    each stretch's rate."""
    from bench.measure import stats

    durations = np.repeat(16 / rates, steps)
    return stats.window_throughput(list(durations), [16] * len(durations), [steps] * len(rates))


def test_a_long_stretch_timed_row_keeps_one_sample_per_stretch_everywhere():
    """Past 400 timed steps the series is thinned within stretches, never across: 1,000 steps in 5 stretches give
    5 samples to the speed sentence, the tuner, ``bench compare`` and the efficiency interval, and the same verdict
    as the same stretches at 80 steps each. Until 2026-12-06 the per-step copies were folded across stretches
    (333 values against segments of 1,000 steps), read as one run of 333 steps: a 4.8% wide ratio interval where
    the stretches give 11%, and no efficiency interval."""
    from bench.measure import scaling, stats
    from bench.measure.tuning import ratio_ci
    from bench.report.compare import with_step_samples
    from bench.report.speedup import process_steps

    rng = np.random.default_rng(1)
    ra, rb = (1000.0 * np.exp(0.05 * rng.standard_normal(5)) for _ in range(2))
    a, b, short_a, short_b = stretch_row(ra, 200), stretch_row(rb, 200), stretch_row(ra, 80), stretch_row(rb, 80)
    assert a["timed_steps"] == 1000 and len(a["step_img_s"]) <= stats.MAX_SAMPLES + 5
    assert a["step_segments"] == [67] * 5 and sum(a["step_segments"]) == len(a["step_img_s"])  # entries, not steps
    assert short_a["step_segments"] == [80] * 5  # up to 400 steps: one entry a step, as before
    assert stats.stretch_rates(a["step_img_s"], a["step_segments"]) == pytest.approx(ra, rel=1e-12)
    assert len(process_steps([a])) == 5
    frame = with_step_samples(pd.DataFrame(), [{**a, "status": "ok", "task": "t", "backend": "keras-jax"}])
    assert [len(groups) for groups in frame.attrs["steps"].values()] == [5]
    long_ci, short_ci = (
        ratio_ci(process_steps([a]), process_steps([b])),
        ratio_ci(process_steps([short_a]), process_steps([short_b])),
    )
    assert long_ci == pytest.approx(short_ci, rel=1e-9)
    assert (long_ci[2] - long_ci[1]) / long_ci[0] > 0.08  # five stretches 5% apart: ~11% wide
    segs = {"segments_n": a["step_segments"], "segments_1": b["step_segments"]}
    short_segs = {"segments_n": short_a["step_segments"], "segments_1": short_b["step_segments"]}
    eff = scaling.efficiency_ci(a["step_img_s"], b["step_img_s"], 2, **segs)
    assert eff == pytest.approx(scaling.efficiency_ci(short_a["step_img_s"], short_b["step_img_s"], 2, **short_segs))
    # the headline and its own interval never read the series: as before
    assert a["steady_img_s"] == pytest.approx(short_a["steady_img_s"])
    assert a["steady_img_s_ci_lo"] == pytest.approx(short_a["steady_img_s_ci_lo"])


def test_rows_timed_step_by_step_and_short_stretch_timed_rows_record_the_series_they_did():
    """Only stretch-timed rows past 400 steps changed: a row timed step by step records its steps (folded past 400)
    and its steps are its sample; a stretch-timed row up to 400 steps records each step's copy of its stretch's
    rate, as the pre-2026-12-06 rule computed it, bit for bit."""
    from bench.measure import stats
    from bench.report.speedup import process_steps

    rng = np.random.default_rng(4)
    for n in (50, 400, 1001):
        d, w = rng.uniform(0.01, 0.03, n), rng.integers(8, 17, n)
        out = stats.window_throughput(list(d), list(w))
        assert out["step_img_s"] == stats.fold(d, w).tolist() and "step_segments" not in out
        lo, hi = stats.rate_ci(d, w)[1:]
        assert (out["steady_img_s_ci_lo"], out["steady_img_s_ci_hi"]) == (
            min(lo, out["steady_img_s"]),
            max(hi, out["steady_img_s"]),
        )
        assert process_steps([{**out}]) == [out["step_img_s"]]
    d, w, segments = rng.uniform(0.01, 0.03, 400), rng.integers(8, 17, 400), [7, 193, 200]
    ends = np.cumsum(segments)[:-1]
    sd, sw = (np.array([p.sum() for p in np.split(x.astype(np.float64), ends)]) for x in (d, w))
    n = np.asarray(segments, dtype=np.float64)
    out = stats.window_throughput(list(d), list(w), segments)
    assert out["step_img_s"] == stats.fold(np.repeat(sd / n, segments), np.repeat(sw / n, segments)).tolist()
    assert out["step_segments"] == segments


def test_long_stretch_timed_rows_of_one_speed_are_called_different_about_one_time_in_twenty():
    """200 pairs of rows of one speed, 1,000 steps in 5 stretches each, 5% apart: read per stretch about 5% are
    called different; the series read as steps (how such rows were read until 2026-12-06) called 61 (30%)."""
    from bench.measure import stats
    from bench.measure.tuning import ratio_ci
    from bench.report.speedup import process_steps

    rng = np.random.default_rng(2)
    called = called_as_steps = 0
    for _ in range(200):
        a, b = (stretch_row(1000.0 * np.exp(0.05 * rng.standard_normal(5)), 200) for _ in range(2))
        r = ratio_ci(process_steps([a]), process_steps([b]))
        assert r is not None
        called += not (r[1] <= 1.0 <= r[2])
        # the series as folded before: each step's copy of its stretch's rate, in windows of 3 steps across stretches
        old_a, old_b = (
            stats.fold(
                np.repeat(16 / np.asarray(stats.stretch_rates(x["step_img_s"], x["step_segments"])), 200), [16] * 1000
            )
            for x in (a, b)
        )
        s = ratio_ci(list(old_a), list(old_b), resamples=400)  # coarser quantiles, a tenth of the time
        called_as_steps += not (s[1] <= 1.0 <= s[2])
    assert called <= 20, called  # ~10 expected at 5% (15 here)
    assert called_as_steps >= 40, called_as_steps  # 61 of 200 (30%): far above the 5% a 95% interval allows


def test_records_of_long_stretch_timed_rows_written_before_the_fix_are_read_per_stretch():
    """Before 2026-12-06 the per-step copies were folded in windows of k = ceil(steps / 400) consecutive steps
    across stretches, ``step_segments`` in steps. A window wholly inside a stretch is its rate: each stretch is
    read from its first such window; a stretch too short to hold one (a partial first epoch) gives no sample.
    A series that maps neither way is read as its steps, as before."""
    from bench.measure import stats

    rates = np.array([900.0, 1000.0, 1100.0, 950.0, 1050.0])
    segments = [2, 249, 250, 250, 249]  # 1,000 steps: k = 3, 333 windows; the 2-step stretch holds none
    n = np.asarray(segments, dtype=np.float64)
    d, w = 16 * n / rates, 16 * n  # each stretch's time and images
    folded = stats.fold(np.repeat(d / n, segments), np.repeat(w / n, segments))  # what window_throughput recorded
    assert len(folded) == 333
    assert stats.stretch_rates(list(folded), segments) == pytest.approx(rates[1:], rel=1e-12)
    assert stats.samples(list(folded), segments) == [[pytest.approx(r, rel=1e-12)] for r in rates[1:]]
    assert stats.samples(list(folded[:300]), segments) == [list(folded[:300])]  # neither shape: its steps
    assert stats.stretch_rates([1.0, 2.0], None) is None and stats.stretch_rates([1.0, 2.0], [1, 0, 1]) is None


def test_records_written_before_step_segments_read_their_runs_of_copies_as_stretches():
    """Records of stretch-timed rows written before ``step_segments`` (2026-12-05) hold each stretch's rate once per
    step, exact copies, and no segments: their runs of equal rates are the stretches, so `bench report`, `compare`
    and the scaling interval read one sample per stretch from them too (the committed reference runs' Keras/JAX
    rows: 391 steps in runs of 75-79). A series timed step by step has no such runs and is read as its steps."""
    from bench.measure import scaling, stats

    rates = [7000.0, 7400.0, 6900.0, 7200.0, 7100.0]
    legacy = np.repeat(rates, [75, 79, 79, 79, 79]).tolist()
    assert stats.stretch_rates(legacy, None) == rates
    assert stats.samples(legacy, None) == [[r] for r in rates]
    # a folded record's windows that crossed two stretches are single mixed values between the runs: dropped
    folded = [*[7000.0] * 40, 7210.0, *[7400.0] * 40, 7150.0, *[6900.0] * 40]
    assert stats.stretch_rates(folded, None) == [7000.0, 7400.0, 6900.0]
    steps = np.random.default_rng(0).normal(7000, 300, 391).tolist()  # a torch row: no two rates alike
    assert stats.stretch_rates(steps, None) is None and stats.samples(steps, None) == [steps]
    # mostly steps with a few repeats (a coarse clock): still its steps
    coarse = [*steps[:300], *[7000.0] * 91]
    assert stats.stretch_rates(coarse, None) is None
    # the scaling interval reads a legacy data-parallel pair per stretch too: as wide as the same stretches recorded
    # with their segments, and none from a pair of 2 stretches
    two = np.repeat([3.2 * r for r in rates], [75, 79, 79, 79, 79]).tolist()
    segs = [75, 79, 79, 79, 79]
    with_segments = scaling.efficiency_ci(two, legacy, 4, segments_n=segs, segments_1=segs)
    assert with_segments is not None and scaling.efficiency_ci(two, legacy, 4) == pytest.approx(with_segments)
    assert scaling.efficiency_ci(two[:154], legacy[:154], 4) is None


class QueueClock(FakeClock):
    """A backend whose steps return before their work is done (JAX): a step queues its work and returns at once;
    a sync waits for the queue."""

    def __init__(self) -> None:
        super().__init__()
        self.queued = 0.0

    def sync(self) -> None:
        super().sync()
        self.now, self.queued = self.now + self.queued, 0.0


def ragged_epochs(f: FakeClock, clock: StepClock, epochs: int, compile_s: float, queue: bool = False) -> None:
    """Epochs of 44 images in batches of 8 (five of 8, a last one of 4), 0.1 s per 8 images; the first step
    compiles for 1 s, the first step of 4 images compiles again for ``compile_s``."""
    seen: set[int] = set()
    for _ in range(epochs):
        hooks = clock.start_epoch(44)
        t0 = f.now
        for i in range(6):
            hooks.on_step_begin(i)
            size = 8 if i < 5 else 4
            work = 0.1 * size / 8 + (1.0 if not seen else compile_s if size not in seen else 0.0)
            seen.add(size)
            if isinstance(f, QueueClock) and queue:
                f.queued += work
                f.now += 0.001  # the host returns at once
            else:
                f.now += work
            hooks.on_step_end(i)
        clock.end_epoch(f.now - t0)


@pytest.mark.parametrize("queue", [False, True], ids=["steps-synchronous", "steps-asynchronous"])
def test_the_first_step_of_a_smaller_last_batch_is_a_compile_kept_off_the_window(queue):
    """XLA and torch.compile compile again for the epoch's smaller last batch the first time (3-10 s a step in the
    2026-12-02 cifar10-cnn tune): that step is off the window, as the first step is, its excess over the steady
    rate goes to compile_s, and every later short batch is an ordinary step. Where steps return before their work
    is done, the clock synchronises before that step, so the work queued before it stays in the window."""
    f = QueueClock()
    clock = StepClock(f.sync, 8, warmup=1, min_steps=1, min_seconds=0.0, clock=f.clock, report=lambda m: None)
    clock.async_steps = queue
    ragged_epochs(f, clock, 3, compile_s=3.0, queue=queue)
    s = clock.summary()
    # 18 steps: step 0, one warm-up step, the first short one off the window; 15 timed
    assert s["timed_steps"] == 15 and s["new_shape_step_s"] == pytest.approx(3.0 + 0.05, abs=0.01)
    # the timed steps' images over their work: 3 full batches + (5 + 1 short) x 2 epochs at 80 img/s
    timed_images = 3 * 8 + 2 * 44
    assert s["steady_img_s"] == pytest.approx(80.0, rel=0.05 if queue else 1e-9)
    assert s["timed_s"] == pytest.approx(timed_images / 80.0, rel=0.05 if queue else 1e-9)
    assert s["compile_s"] == pytest.approx(1.0 + 3.0, abs=0.05)  # both compiles, over their steady work
    assert "the first step with a batch of 4 images" in (clock.new_shape_note() or "")
    assert "3.000 s more than its images take" in (clock.new_shape_note() or "") or queue
    if queue:
        assert sum(clock.segments) == 15 and all(n > 0 for n in clock.segments)


def end_of_epoch_compiles(f: FakeClock, clock: StepClock, epochs: int, end_s: float, queue: bool) -> None:
    """Epochs of five steps of 8 images, 0.1 s of work each; after the last step's dispatch, the epoch's end runs
    on the host (Keras reads its metrics) and the first time compiles for ``end_s`` (XLA, for each eager op)."""
    for e in range(epochs):
        hooks = clock.start_epoch(40)
        t0 = f.now
        for i in range(5):
            hooks.on_step_begin(i)
            if isinstance(f, QueueClock) and queue:
                f.queued += 0.1
                f.now += 0.001  # the host returns at once
            else:
                f.now += 0.1
            if i == 4 and e == 0:
                f.now += end_s  # the end of the first epoch: compiles on the host, before Keras's on_epoch_end
            hooks.on_step_end(i)
        clock.end_epoch(f.now - t0)


@pytest.mark.parametrize("queue", [False, True], ids=["steps-synchronous", "steps-asynchronous"])
def test_the_first_end_of_an_epoch_is_off_an_asynchronous_window(queue):
    """QA, 2026-12-06: Keras on JAX compiles the ops that read its metrics at the end of the first epoch (jit(equal),
    jit(_where), jit(true_divide): 25-60 ms each), inside the stretch that ends there, and each stretch is a sample
    of the row's interval (mnist-lenet5 quick: a first stretch of 1,476-1,910 img/s against medians of 4,378-6,270).
    Where steps return early, that step is off the window (its excess in compile_s); where they run when called it
    is one timed step among many, as before."""
    f = QueueClock()
    clock = StepClock(f.sync, 8, warmup=1, min_steps=1, min_seconds=0.0, clock=f.clock, report=lambda m: None)
    clock.async_steps = queue
    end_of_epoch_compiles(f, clock, 4, end_s=0.5, queue=queue)
    s = clock.summary()
    if not queue:  # unchanged: steps 2-4 of the first epoch and every later step are timed, the compile with them
        assert s["timed_steps"] == 18 and s["epoch_end_step_s"] is None
        assert s["timed_s"] == pytest.approx(18 * 0.1 + 0.5) and clock.async_note() is None
        return
    assert clock.segments == [2, 5, 5, 5] and s["timed_steps"] == 17
    starts = np.cumsum([0, *clock.segments[:-1]])
    rates = [8 * n / sum(clock.durations[a : a + n]) for a, n in zip(starts, clock.segments, strict=True)]
    assert rates == pytest.approx([80.0] * 4, rel=0.02)  # the first stretch as fast as the others
    assert s["epoch_end_step_s"] == pytest.approx(0.1 + 0.5, abs=0.01)
    assert s["compile_s"] == pytest.approx(0.5, abs=0.01)  # the step's excess over its images at the steady rate
    assert "the first epoch's last step (8 images) took 0.60" in (clock.async_note() or "")
    assert s["new_shape_step_s"] is None and clock.new_shape_note() is None


def test_a_short_batch_already_trained_in_the_warm_up_is_an_ordinary_step_in_the_window():
    f = FakeClock()
    clock = StepClock(f.sync, 8, warmup=6, min_steps=1, min_seconds=0.0, clock=f.clock, report=lambda m: None)
    ragged_epochs(f, clock, 3, compile_s=3.0)  # steps 0-6 take in the first epoch's short step (step 5)
    s = clock.summary()
    assert s["timed_steps"] == 18 - 7 and s["new_shape_step_s"] is None and clock.new_shape_note() is None
    assert s["steady_img_s"] == pytest.approx(80.0)
    plain = StepClock(f.sync, 8, warmup=1, min_steps=1, min_seconds=0.0, clock=f.clock, report=lambda m: None)
    run_epochs(f, plain, 2, 40, step_s=0.1)  # whole batches only: nothing left out
    assert plain.summary()["timed_steps"] == 10 - 2 and plain.new_shape is None


@pytest.mark.parametrize(
    ("knobs", "tf32"),
    [
        ({"tf32_matmul": False, "tf32_cudnn": True}, True),  # torch's default: cuDNN's convolutions in TF32
        ({"tf32_matmul": False, "tf32_cudnn": False}, False),  # torch, tf32 = "off"
        ({"tf32": False, "tf32_cudnn": True}, True),  # Keras on torch, on a GPU
        ({"tf32": True}, True),  # Keras on TensorFlow (its default on Ampere)
        ({"tf32": False}, False),
        ({"tf32": "highest"}, False),  # Keras on JAX, tf32 = "off": fp32
        ({"tf32": "tensorfloat32"}, True),
        ({"tf32": "default"}, True),  # JAX's own default lets XLA use TF32 on the GPU
        ({}, False),
    ],
)
def test_the_peak_is_tf32s_wherever_a_row_may_have_run_tf32_whatever_its_engine_calls_it(knobs, tf32):
    """QA, 2026-12-05: bool("highest") put Keras/JAX's fp32 rows against TF32's peak (MFU 8x too low on an A100),
    and torch's default CNN, its convolutions in TF32, against fp32's (MFU 1.54)."""
    assert perf.ran_tf32(knobs) is tf32
    assert mfu.known_peak("NVIDIA A100-SXM4-80GB", "fp32", perf.ran_tf32(knobs)) == (156e12 if tf32 else 19.5e12)
