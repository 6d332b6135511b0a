"""Step-level timing (fake clock), the MFU arithmetic and the knob/selection columns: framework-free."""

from __future__ import annotations

import numpy as np
import pytest

from bench import mfu, perf
from bench.spec import EvalSpec, SpecError, load_task, parse_task
from bench.steady import FIRST, REST, TIMED, WARMUP, StepClock, step_kinds
from bench.timing import SyncTimer


class FakeClock:
    """Each training call advances time by 1 s per image, plus 100 s in the very first call (a 'compile')."""

    def __init__(self) -> None:
        self.now = 0.0
        self.events: list[str] = []
        self.calls: list[np.ndarray] = []

    def clock(self) -> float:
        self.events.append("clock")
        return self.now

    def sync(self) -> None:
        self.events.append("sync")

    def train(self, part: np.ndarray) -> float:
        self.now += len(part) * 1.0 + (100.0 if not self.calls else 0.0)
        self.calls.append(part)
        return float(len(self.calls))  # a loss that tells the chunks apart


def test_step_kinds_cut_at_global_step_boundaries():
    assert step_kinds(0, 10, warmup=2, timed=3) == [(FIRST, 0, 1), (WARMUP, 1, 3), (TIMED, 3, 6), (REST, 6, 10)]
    # the second epoch starts inside the timed block
    assert step_kinds(4, 4, warmup=2, timed=3) == [(TIMED, 4, 6), (REST, 6, 8)]
    assert step_kinds(10, 5, warmup=2, timed=3) == [(REST, 10, 15)]
    assert step_kinds(0, 2, warmup=0, timed=5) == [(FIRST, 0, 1), (TIMED, 1, 2)]


def test_step_clock_excludes_first_and_warmup_steps_and_keeps_every_batch():
    f = FakeClock()
    clock = StepClock(SyncTimer(f.sync, f.clock), batch_size=4, warmup=2, timed=3)
    orders = [np.arange(20), np.arange(20, 40)]  # 5 steps per epoch, 10 in all
    losses, seconds = zip(*(clock.epoch(f.train, o) for o in orders), strict=True)
    # every image trained exactly once, in order, in batch-aligned chunks
    assert np.array_equal(np.concatenate(f.calls), np.arange(40))
    assert [len(c) for c in f.calls] == [4, 8, 8, 4, 16]  # first | warm-up | timed (3 steps, 2 epochs) | rest
    assert seconds == pytest.approx((120.0, 20.0))  # epoch times still include everything
    s = clock.summary()
    assert s["first_step_s"] == pytest.approx(104.0)
    assert s["timed_steps"] == 3 and s["warmup_steps"] == 2
    assert s["steady_step_s"] == pytest.approx(4.0) and s["steady_img_s"] == pytest.approx(1.0)
    assert s["compile_s"] == pytest.approx(100.0)
    # the epoch's loss is the image-weighted mean of its chunks' losses
    assert losses[0] == pytest.approx((1 * 4 + 2 * 8 + 3 * 8) / 20)
    # a sync before every clock read
    assert f.events[:4] == ["sync", "clock", "sync", "clock"] and f.events.count("clock") == 2 * len(f.calls)


def test_step_clock_without_timed_steps_is_one_call_per_epoch():
    f = FakeClock()
    clock = StepClock(SyncTimer(f.sync, f.clock), batch_size=4, warmup=2, timed=0)
    clock.epoch(f.train, np.arange(20))
    assert [len(c) for c in f.calls] == [20]
    assert clock.summary()["steady_img_s"] is None and clock.summary()["compile_s"] is None


def test_step_clock_profiles_only_the_warmup_steps():
    f = FakeClock()
    seen = []

    def profile(run):
        seen.append(len(f.calls))
        return run(), [{"op": "conv", "ms": 1.0, "calls": 2}]

    clock = StepClock(SyncTimer(f.sync, f.clock), 4, 2, 3, profile=profile)
    clock.epoch(f.train, np.arange(40))
    assert seen == [1]  # after the first step, around the warm-up chunk
    assert clock.top_ops == [{"op": "conv", "ms": 1.0, "calls": 2}]


def test_mfu_arithmetic():
    assert mfu.training_flops_per_image(2e9) == 6e9
    # 6 GFLOP/img x 100 img/s = 0.6 TFLOP/s of a 1.2 TFLOP/s peak
    assert mfu.mfu(6e9, 100.0, 1.2e12) == pytest.approx(0.5)
    assert mfu.mfu(None, 100.0, 1e12) is None and mfu.mfu(1e9, 0.0, 1e12) is None


def test_known_gpu_peaks_depend_on_precision_and_tf32():
    assert mfu.known_peak("NVIDIA A100-SXM4-40GB", "fp32", tf32=False) == 19.5e12
    assert mfu.known_peak("NVIDIA A100-SXM4-40GB", "fp32", tf32=True) == 156e12
    assert mfu.known_peak("NVIDIA GeForce RTX 3090", "mixed_bf16", tf32=False) == 71e12
    assert mfu.known_peak("cpu (x86_64)", "fp32", tf32=False) is None


def test_measured_peak_times_the_best_matmul_and_caches_it():
    ticks = iter([0.0, 2.0, 10.0, 11.0, 20.0, 24.0])  # 2 s, 1 s, 4 s
    calls = []
    timer = SyncTimer(lambda: None, lambda: next(ticks))
    peak = mfu.measured_peak("test:fp32-unique", lambda: calls.append(1), 1000, timer)
    assert peak == pytest.approx(2 * 1000**3 / 1.0)  # the fastest of three
    assert len(calls) == 4  # one untimed warm-up
    assert mfu.measured_peak("test:fp32-unique", lambda: calls.append(1), 1000, timer) == peak
    assert len(calls) == 4  # cached


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
    k = perf.knob_columns("keras", {"tf32": True}, spec)
    assert k["compiled"] == "tf.function (no XLA)" and k["channels_last"] is None and k["cudnn_benchmark"] is None


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
