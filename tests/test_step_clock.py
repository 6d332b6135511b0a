"""The step clock inside the worker's real path: what stays off the clock, and real small runs in both frameworks."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest

import backends
from bench.core.backend import BackendInfo
from bench.core.spec import parse_task
from bench.run.worker import train_and_evaluate

SPEC = parse_task(
    {
        "name": "clock",
        "dataset": {"name": "cifar10"},
        "model": {"arch": "lenet5"},
        "train": {"epochs": 3, "batch_size": 32, "lr": 1e-3},
        "eval": {"per_epoch": True, "batch_size": 256},
        "runtime": {"warmup_steps": 2, "timed_steps": 20},
    }
)
CLASSES = tuple("0123456789")


def data(n: int, size: int = 32, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n),
        "x_test": rng.integers(0, 256, (64, size, size, 3), dtype=np.uint8),
        "y_test": rng.integers(0, 10, 64),
    }


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class SlowBackend:
    """A backend whose every phase advances a fake clock: a step 50 ms, the rest as slow as asked."""

    name = "fake"

    def __init__(self, clock: FakeTime, put_s: float, build_s: float, eval_s: float, setup_s: float) -> None:
        self.t, self.put_s, self.build_s, self.eval_s, self.setup_s = clock, put_s, build_s, eval_s, setup_s

    def configure(self, runtime, seed):
        return {"device": "cpu (fake)", "threads": 1, "knobs": {}}

    def put(self, x, y, norm=None):
        self.t.now += self.put_s
        return x, y

    def build(self, model, shape, n):
        self.t.now += self.build_s
        return "model"

    def compile(self, model, train, runtime):
        return "state"

    def count_params(self, model):
        return 1

    def train_epoch(self, state, data, order, batch_size, hooks=None):
        self.t.now += self.setup_s  # a fit's per-call setup
        for i in range(-(-len(order) // batch_size)):
            hooks.on_step_begin(i)
            self.t.now += 0.050
            hooks.on_step_end(i)
        return 1.0

    def predict(self, state, data, batch_size):
        self.t.now += self.eval_s
        return np.zeros((len(data[0]), 10), np.float32)

    def synchronize(self):
        pass

    def forward_flops(self, state, shape):
        return 1e6

    def matmul(self, n, precision):
        def run():
            self.t.now += 1.0

        return run

    def peak_device_mb(self):
        return None


@pytest.mark.frameworks
def test_slow_evaluation_copy_and_build_stay_off_the_step_clock(monkeypatch):
    fake = BackendInfo(name="fake", module="tests.test_step_clock", framework="fake", requires=())
    monkeypatch.setitem(backends.BACKENDS, "fake", fake)  # the worker asks the registry for its knob columns
    figures = []
    for put_s, build_s, eval_s, setup_s in ((0.0, 0.0, 0.0, 0.0), (7.0, 30.0, 5.0, 0.2)):
        clock = FakeTime()
        monkeypatch.setattr(time, "perf_counter", clock)
        out, _ = train_and_evaluate(SlowBackend(clock, put_s, build_s, eval_s, setup_s), SPEC, data(320), CLASSES, 0)
        figures.append(out)
    fast, slow = figures
    for key in ("steady_img_s", "steady_step_s", "timed_steps", "first_step_s", "steady_img_s_hw_pct"):
        assert fast[key] == pytest.approx(slow[key]), key
    assert fast["steady_img_s"] == pytest.approx(640.0) and fast["timed_steps"] == 30 - 3
    # the epochs pay the per-call setup, the steps do not; the row says so
    assert slow["epoch_overhead_s"] == pytest.approx(0.2) and fast["steady_epoch_ratio"] == pytest.approx(1.0)
    assert slow["steady_epoch_ratio"] == pytest.approx(0.7 / 0.5)
    assert any("0.2" not in n and "setup/teardown outside the steps is 200.0 ms" in n for n in slow["timing_notes"])
    assert fast["timing_notes"] == [] and slow["build_s"] == pytest.approx(30.0)


@pytest.mark.frameworks
def test_drop_last_trains_whole_batches_and_the_epoch_figure_counts_only_them(monkeypatch):
    """330 images at batch 32: without drop_last a 10-image step costs a full 50 ms and drags the
    epoch figure and the headline below the median step's 640 img/s; with it every epoch is 10 whole
    batches and all three agree."""
    import dataclasses

    fake = BackendInfo(name="fake", module="tests.test_step_clock", framework="fake", requires=())
    monkeypatch.setitem(backends.BACKENDS, "fake", fake)
    out = {}
    for drop_last in (False, True):
        spec = dataclasses.replace(SPEC, train=dataclasses.replace(SPEC.train, drop_last=drop_last))
        clock = FakeTime()
        monkeypatch.setattr(time, "perf_counter", clock)
        backend = SlowBackend(clock, 0.0, 0.0, 0.0, 0.0)
        orders = []
        real = backend.train_epoch
        backend.train_epoch = lambda *a, real=real, orders=orders, **kw: orders.append(a[2].copy()) or real(*a, **kw)
        out[drop_last], _ = train_and_evaluate(backend, spec, data(330), CLASSES, 0)
        out[drop_last]["orders"] = orders
    kept, full = out[True], out[False]
    assert [len(o) for o in full["orders"]] == [330] * 3 and [len(o) for o in kept["orders"]] == [320] * 3
    # the first 320 of the same seeded permutation; the 10 left out differ between epochs
    assert all(np.array_equal(k, f[:320]) for k, f in zip(kept["orders"], full["orders"], strict=True))
    assert len({tuple(sorted(set(range(330)) - set(k.tolist()))) for k in kept["orders"]}) == 3
    assert kept["steady_img_s"] == kept["median_step_img_s"] == full["median_step_img_s"] == pytest.approx(640.0)
    assert kept["throughput_img_s"] == pytest.approx(320 / 0.5) and kept["steady_epoch_ratio"] == pytest.approx(1.0)
    # the headline is images over time, as the epochs are: the slow 10-image step costs both alike
    assert full["throughput_img_s"] == pytest.approx(330 / 0.55) and full["steady_img_s"] < 610
    assert full["steady_epoch_ratio"] == pytest.approx(1.0, abs=0.02)
    assert any("each epoch trains 320 of the 330 images (10 whole batches of 32)" in n for n in kept["timing_notes"])
    assert not any("each epoch trains" in n for n in full["timing_notes"])


def test_tf32_and_cudnn_benchmark_are_recorded_on_a_gpu_and_not_applicable_on_a_cpu(monkeypatch):
    """results.csv said "matmul=False, cudnn=True" and cudnn.benchmark False for a CPU row, flags a CPU never reads
    (QA): a CPU row records them as None (an empty cell), as a backend without the knob does; a GPU row keeps them."""

    def columns(knobs, spec):
        return {"tf32": "matmul=False, cudnn=True", "cudnn_benchmark": False, "compiled": "eager"}

    info = BackendInfo(
        name="fake-gpu", module="tests.test_step_clock", framework="fake", requires=(), knob_columns=columns
    )
    monkeypatch.setitem(backends.BACKENDS, "fake-gpu", info)

    class OnDevice(SlowBackend):
        name, device = "fake-gpu", ""

        def configure(self, runtime, seed):  # torch's two raw flags and Keras's one, as the engines record them
            raw = {"tf32_matmul": False, "tf32_cudnn": True, "tf32": True, "cudnn_benchmark": False}
            return {**super().configure(runtime, seed), "device": self.device, "knobs": raw}

    out = {}
    for device in ("cpu (x86_64)", "NVIDIA H100 80GB HBM3"):
        clock = FakeTime()
        monkeypatch.setattr(time, "perf_counter", clock)
        backend = OnDevice(clock, 0.0, 0.0, 0.0, 0.0)
        backend.device = device
        out[device], _ = train_and_evaluate(backend, SPEC, data(64), CLASSES, 0)
    cpu, gpu = out["cpu (x86_64)"], out["NVIDIA H100 80GB HBM3"]
    assert cpu["tf32"] is None and cpu["cudnn_benchmark"] is None and cpu["compiled"] == "eager"
    assert gpu["tf32"] == "matmul=False, cudnn=True" and gpu["cudnn_benchmark"] is False
    # the nested knobs agree with the flat columns: no TF32 or cuDNN flag on a CPU (it kept tf32_cudnn=True and
    # cudnn_benchmark beside empty columns), all on a GPU
    assert cpu["knobs"] == {}
    assert gpu["knobs"] == {"tf32_matmul": False, "tf32_cudnn": True, "tf32": True, "cudnn_benchmark": False}
    from bench.history.rows import config_of  # a CPU series goes on across the change: its old rows read the same

    old_cpu = {**cpu, "knobs": {"tf32_matmul": False, "tf32_cudnn": True, "cudnn_benchmark": False}}
    older_cpu = {**cpu, "knobs": {"cudnn_benchmark": False}}  # as the TF32 change alone left them
    assert config_of(old_cpu) == config_of(older_cpu) == config_of(cpu)
    assert config_of(gpu) != config_of({**gpu, "knobs": {"tf32_matmul": False, "tf32_cudnn": True, "tf32": True}})


def test_a_backend_without_steps_per_execution_is_timed_a_batch_a_step_whatever_the_task_asks(monkeypatch):
    """runtime.steps_per_execution is a task-level key that only Keras acts on (its knob column); the worker handed it
    to the step clock for every backend, so a torch row of a task that set 4 was synchronised at each of its epochs'
    last 4 steps where a new batch size may come and noted "a step is one execution of up to 4 batches". The clock
    now takes the batches a step from the backend's knob columns: 330 images in batches of 32 (a last one of 10)."""
    executions = {"steps_per_execution": 0}

    def columns(knobs, spec):
        executions["steps_per_execution"] = spec.runtime.steps_per_execution
        return dict(executions)

    for name, own in (("fake", None), ("fake-spe", columns)):  # torch's description, and Keras's knob column
        info = BackendInfo(name=name, module="tests.test_step_clock", framework="fake", requires=(), knob_columns=own)
        monkeypatch.setitem(backends.BACKENDS, name, info)

    class Counting(SlowBackend):
        syncs, training = 0, False  # the syncs inside the epochs' calls (the MFU's peak is measured once a process)

        def synchronize(self):
            self.syncs += self.training

        def train_epoch(self, *args, **kw):
            self.training = True
            try:
                return super().train_epoch(*args, **kw)
            finally:
                self.training = False

    out = {}
    for name, spe in (("fake", 1), ("fake", 4), ("fake-spe", 4)):
        clock = FakeTime()
        monkeypatch.setattr(time, "perf_counter", clock)
        backend = Counting(clock, 0.0, 0.0, 0.0, 0.0)
        backend.name = name
        spec = dataclasses.replace(SPEC, runtime=dataclasses.replace(SPEC.runtime, steps_per_execution=spe))
        out[name, spe], _ = train_and_evaluate(backend, spec, data(330), CLASSES, 0)
        out[name, spe]["syncs"] = backend.syncs
    one, four, keras_like = out["fake", 1], out["fake", 4], out["fake-spe", 4]
    same = ("syncs", "timed_steps", "warmup_batches", "steady_img_s", "compile_s", "timing_notes")
    assert {k: four[k] for k in same} == {k: one[k] for k in same}
    # no such knob in the description: no column of its own, None in the row (``new_record``)
    assert four.get("steps_per_execution") is None and not any("execution" in n for n in four["timing_notes"])
    # where the description has the knob, the clock counts executions: the row says so, and syncs before each
    # epoch's last 4 steps while the short batch is new
    assert keras_like["steps_per_execution"] == 4 and keras_like["syncs"] > one["syncs"]
    assert any("steps_per_execution 4: a step is one execution" in n for n in keras_like["timing_notes"])


def test_drop_last_with_fewer_images_than_a_batch_names_the_key():
    from bench.core.preprocess import epoch_orders

    with pytest.raises(ValueError, match=r"train\.drop_last: 20 training images make no whole batch of 32"):
        epoch_orders(20, 2, 0, whole_batches_of=32)


@pytest.fixture(scope="module")
def frameworks():
    from tests.conftest import import_both_frameworks

    return import_both_frameworks()


@pytest.mark.parametrize("which", [0, 1], ids=["torch", "keras"])
@pytest.mark.frameworks
def test_real_small_run_steady_figure_matches_its_epochs(frameworks, which):
    """LeNet-5 on 640 images, 3 epochs of 20 steps: every step after the warm-up is timed, torch in one call per
    epoch, Keras in one ``fit`` over the three (as a user trains).

    Where per-call overhead used to dominate (a separate ``fit`` per window) the step figure was a
    fraction of the epoch figure; here it must be within a sane factor of it, its interval must hold
    it, and the epochs' extra must be what the row calls the per-call overhead.
    """
    backend = frameworks[which].Backend()
    calls = []
    name = "train_epochs" if hasattr(backend, "train_epochs") else "train_epoch"
    real = getattr(backend, name)
    setattr(backend, name, lambda *a, **kw: calls.append(np.shape(a[2])) or real(*a, **kw))
    out, _ = train_and_evaluate(backend, SPEC, data(640), CLASSES, seed=0)
    # torch: one training call per epoch, the whole epoch's order; Keras: one call, every epoch's order
    assert calls == ([(640,)] * 3 if which == 0 else [(3, 640)])
    assert out["timed_steps"] == 3 * 20 - 3
    assert out["steady_img_s_ci_lo"] <= out["steady_img_s"] <= out["steady_img_s_ci_hi"]
    n_over_epoch = 640 / out["epoch_s_median"]
    assert out["throughput_img_s"] == pytest.approx(n_over_epoch)
    # an epoch is its steps plus the call's own setup/teardown (fit's iterator, the final loss read)
    assert 0 <= out["epoch_overhead_s"] < out["epoch_s_median"]
    steps_img_s = 640 / (out["epoch_s_median"] - out["epoch_overhead_s"])
    assert 0.5 < out["steady_img_s"] / steps_img_s < 2.0
    # the old cut-up window measured 0.22x the epoch figure for Keras LeNet-5 (each window a fit
    # call of its own); the bounds are loose because the machine is shared (torch at 2 threads
    # swings several-fold under load), and the step figure may exceed the epochs' only by what
    # the call's own overhead takes
    assert out["steady_epoch_ratio"] > 0.4
    assert out["steady_epoch_ratio"] < 2.0 * out["epoch_s_median"] / (out["epoch_s_median"] - out["epoch_overhead_s"])
    assert out["first_step_s"] > 0 and out["mfu"] > 0


@pytest.mark.parametrize("spe", [8, 13])
@pytest.mark.frameworks
def test_keras_trains_each_epoch_its_own_batches_whatever_the_steps_per_execution(frameworks, monkeypatch, spe):
    """13 steps an epoch (392 images, batches of 32, the last of 8) and 4 epochs. Given steps_per_epoch, Keras keeps
    one iterator across a fit's epochs and runs every execution whole: with 8 steps an execution the epochs trained
    16, 16, 16 and 4 batches, Keras warned that the input ran out, and the step clock counted images that were not
    the ones trained (cifar10-cnn with 32: epochs of 96 steps, the fifth of 11). Each epoch must train its 13,
    read from the optimizer's step counter at each epoch's end; 13 divides the epoch and keeps the one fit."""
    keras_backend = frameworks[1]
    backend = keras_backend.Backend()
    iterations: list[int] = []
    real_end = keras_backend.StepHooks.on_epoch_end

    def on_epoch_end(self, epoch, logs=None):
        iterations.append(int(self.model.optimizer.iterations.numpy()))
        real_end(self, epoch, logs)

    monkeypatch.setattr(keras_backend.StepHooks, "on_epoch_end", on_epoch_end)
    fits = []
    real_fit = backend._fit
    monkeypatch.setattr(backend, "_fit", lambda *a, **kw: fits.append(np.shape(a[2])) or real_fit(*a, **kw))
    spec = dataclasses.replace(
        SPEC,
        train=dataclasses.replace(SPEC.train, epochs=4),
        runtime=dataclasses.replace(SPEC.runtime, steps_per_execution=spe),
    )
    out, _ = train_and_evaluate(backend, spec, data(392), CLASSES, seed=0)
    assert np.diff([0, *iterations]).tolist() == [13] * 4
    # a fit per epoch only where the execution does not divide the epoch
    assert fits == ([(392,)] * 4 if spe == 8 else [(4, 392)])
    assert [h["epoch"] for h in out["history"]] == [1, 2, 3, 4] and "test_acc" in out["history"][-1]
    # the first execution is the first step; the warm-up of 2 batches is rounded up to whole executions: with 8 the
    # first epoch's second one (batches 8..12), with 13 the second epoch; the window times the rest
    assert out["warmup_batches"] == (5 if spe == 8 else 13) and out["timed_steps"] == (6 if spe == 8 else 2)
    assert any(f"steps_per_execution {spe}: " in n for n in out["timing_notes"])
    assert out["steady_img_s"] > 0


def test_summary_prints_value_with_half_width_and_the_spread_between_repeats():
    from bench.core.record import new_record
    from bench.core.results import table
    from bench.measure import stats
    from bench.report.tables import side_by_side

    recs = [
        new_record(
            task="t",
            backend="torch",
            repeat=r,
            status="ok",
            steady_img_s=v,
            steady_img_s_hw_pct=hw,
            throughput_img_s=95.0,
            steady_epoch_ratio=v / 95.0,
        )
        for r, (v, hw) in enumerate([(100.0, 2.0), (110.0, 4.0), (90.0, 3.0)])
    ]
    recs.append(
        new_record(task="t", backend="keras", repeat=0, status="ok", steady_img_s=50.0, steady_img_s_hw_pct=4.0)
    )
    rows = side_by_side(table(recs), "t", formatted=True).set_index("metric")
    steady = rows.loc["headline throughput: timed images / window time (img/s, 95% CI)"]
    # torch: median of the repeats 100, ± half of the processes' interval (Student's t over 90, 100, 110: their
    # own half-widths of 2-4.4 img/s hid a 20% spread); keras, one run: its own half-width
    _, lo, hi = stats.log_t_interval(np.array([100.0, 110.0, 90.0]))
    assert steady["torch"] == f"100.0 ± {(hi - lo) / 2:.1f}" and steady["keras"] == "50.0 ± 2.0"
    assert (hi - lo) / 2 > 20
    assert rows.loc["step throughput spread between repeats (%)", "torch"] == "20.0"
    assert rows.loc["step throughput spread between repeats (%)", "keras"] == "-"  # one repeat: no spread


def test_a_lopsided_interval_is_shown_by_its_ends_not_as_plus_minus():
    """806.6 [443, 2,200] (a few slow steps' bootstrap) read "806.6 ± 878.8", a lower end below 0 it does not have;
    a symmetric interval keeps ±, but not in a row where another backend's is lopsided: one row reads one way (QA,
    2026-12-06: "7,030.1 ± 709.6" beside "[6,439.2, 9,864.8]"). The data-parallel table, a row per backend and
    worker count, follows the rule cell by cell."""
    from bench.core.record import new_record
    from bench.core.results import table
    from bench.measure import stats
    from bench.report import scaling
    from bench.report.tables import side_by_side

    def row(backend: str, v: float, lo: float, hi: float, **kw) -> dict:
        hw = stats.half_width_pct(v, lo, hi)
        return new_record(
            task="t",
            backend=backend,
            repeat=0,
            status="ok",
            steady_img_s=v,
            steady_img_s_ci_lo=lo,
            steady_img_s_ci_hi=hi,
            steady_img_s_hw_pct=hw,
            **kw,
        )

    recs = [row("torch", 806.6, 443.0, 2200.0), row("keras", 100.0, 98.0, 102.2)]
    rows = side_by_side(table(recs), "t", formatted=True).set_index("metric")
    steady = rows.loc["headline throughput: timed images / window time (img/s, 95% CI)"]
    assert steady["torch"] == "806.6 [443.0, 2,200.0]" and steady["keras"] == "100.0 [98.0, 102.2]"
    assert "±" not in steady.name  # QA: the row's words said "± 95% CI" over cells that show ends
    recs = [row("torch", 806.6, 790.0, 823.2), row("keras", 100.0, 98.0, 102.2)]  # neither lopsided: both ±
    steady = side_by_side(table(recs), "t", formatted=True).set_index("metric").loc[steady.name]
    assert steady["torch"] == "806.6 ± 16.6" and steady["keras"] == "100.0 ± 2.1"
    # the rule's edges: sides 10 and 12.6 (21% of the larger) are lopsided, 10 and 12.4 (19%) are not;
    # equal sides wider than the figure are (± would reach below 0)
    assert stats.lopsided(100, 90, 112.6) and not stats.lopsided(100, 90, 112.4)
    assert stats.lopsided(10, -1, 21) and not stats.lopsided(10, 0, 20) and not stats.lopsided(5, 5, 5)
    assert not stats.lopsided(1215.6, 1211.3, 1218.4)  # sides 4.3 and 2.8: 35% apart, but 0.1% of the figure
    dist = [row(b, *v, workers=2, scaling_mode="strong") for b, v in (("torch", (400.0, 300.0, 9000.0)),)]
    dist += [row("keras", 100.0, 98.0, 102.0, workers=2, scaling_mode="strong")]
    cells = list(scaling.scaling_table(table(dist), "t")[scaling.IMG_S])
    assert cells == ["400.0 [300.0, 9,000.0]", "100.0 [98.0, 102.0]"]  # the column reads one way, as the row does
    dist[0].update(steady_img_s_ci_lo=390.0, steady_img_s_ci_hi=410.0, steady_img_s_hw_pct=2.5)  # neither lopsided
    assert list(scaling.scaling_table(table(dist), "t")[scaling.IMG_S]) == ["400.0 ± 10.0", "100.0 ± 2.0"]


@pytest.mark.parametrize(("which", "spe"), [(0, 1), (1, 1), (1, 2)], ids=["torch", "keras", "keras-spe2"])
@pytest.mark.frameworks
def test_profile_ops_runs_the_profiler_around_the_warmup_steps_inside_the_call(frameworks, which, spe):
    """6 batches, a warm-up of 2. With steps_per_execution 2 Keras calls back at batches 0, 2 and 4 only: the
    profiler, started at batch 1, never ran; it profiles the execution after the first (batches 2 and 3)."""
    spec = dataclasses.replace(
        SPEC,
        runtime=dataclasses.replace(SPEC.runtime, profile_ops=True, steps_per_execution=spe),
        train=dataclasses.replace(SPEC.train, epochs=1),
    )
    out, _ = train_and_evaluate(frameworks[which].Backend(), spec, data(192), CLASSES, seed=0)
    assert out["top_ops"] and all(op["ms"] > 0 and op["calls"] >= 1 for op in out["top_ops"])
    assert out["profiled_batches"] == out["warmup_batches"] == 2
    assert out["timed_steps"] * spe == 6 - spe - 2  # the first step and the profiled warm-up are not timed
    if which == 1:  # TensorFlow's per-node events summed per op type, as torch's profiler reports them
        assert all("/" not in op["op"] and op["costliest_ms"] <= op["ms"] for op in out["top_ops"])
        # a LeNet-5 step's costliest kernels include a convolution's, whatever this CPU's kernels are called
        # (Eigen: Conv2DBackpropFilter; oneDNN on AVX-512 machines: _MklNativeConv2DBackpropFilterWithBias)
        assert any("Conv2D" in op["op"] and "conv" in op["costliest"] for op in out["top_ops"]), out["top_ops"]


@pytest.mark.frameworks
def test_tensorflow_trace_events_are_summed_per_op_type_with_the_costliest_node(frameworks):
    from backends.keras.engine_tf import ops_by_type

    events = [
        ("m/conv5_0/Conv2DBackpropInput:Conv2DBackpropInput", 114_000_000_000),
        ("m/conv5_2/Conv2DBackpropInput:Conv2DBackpropInput", 76_000_000_000),
        ("m/conv5_2/Conv2DBackpropInput:Conv2DBackpropInput", 4_000_000_000),  # the same node, a second event
        ("CpuExecutable::ExecuteAsyncOnStream", 150_000_000_000),
        ("m/fc/MatMul:MatMul", 1_000_000_000),
    ]
    top = ops_by_type(events, top=2)
    assert top == [
        {
            "op": "Conv2DBackpropInput",
            "ms": 194.0,
            "calls": 3,
            "costliest": "m/conv5_0/Conv2DBackpropInput:Conv2DBackpropInput",
            "costliest_ms": 114.0,
        },
        {
            "op": "CpuExecutable::ExecuteAsyncOnStream",
            "ms": 150.0,
            "calls": 1,
            "costliest": "CpuExecutable::ExecuteAsyncOnStream",
            "costliest_ms": 150.0,
        },
    ]
    # a node's events add up before the costliest is chosen: 76 + 4 + 46 beats 114
    more = [*events, ("m/conv5_2/Conv2DBackpropInput:Conv2DBackpropInput", 46_000_000_000)]
    assert ops_by_type(more)[0]["costliest"] == "m/conv5_2/Conv2DBackpropInput:Conv2DBackpropInput"


class ShapeCompilingBackend(SlowBackend):
    """Its predict compiles a batch shape the first time it sees it (2 s: XLA's, tf.function's tracing), then
    predicts a batch in 10 ms."""

    def __init__(self, clock: FakeTime) -> None:
        super().__init__(clock, 0.0, 0.0, 0.0, 0.0)
        self.compiled: set[int] = set()

    def predict(self, state, data, batch_size):
        n = len(data[0])
        for start in range(0, n, batch_size):
            shape = min(batch_size, n - start)
            self.t.now += 0.010 + 2.0 * (shape not in self.compiled)
            self.compiled.add(shape)
        return np.zeros((n, 10), np.float32)


@pytest.mark.frameworks
@pytest.mark.parametrize(("per_epoch", "epochs"), [(True, 3), (False, 3), (True, 1)])
def test_the_timed_evaluation_is_a_warm_one_whether_or_not_an_evaluation_came_before_it(monkeypatch, per_epoch, epochs):
    """A compiler's first prediction of each batch shape is a compile: with evaluations between epochs the final,
    timed one predicts warm; without them (``eval.per_epoch`` off, or one epoch) it was the row's first and its
    time held the compile of every shape, which a Keras row pays (tf.function, XLA) and an eager torch row does not.
    64 test images in batches of 24: 24, 24, 16, so 30 ms of predicting however the row got there."""
    fake = BackendInfo(name="fake", module="tests.test_step_clock", framework="fake", requires=())
    monkeypatch.setitem(backends.BACKENDS, "fake", fake)
    spec = dataclasses.replace(
        SPEC,
        train=dataclasses.replace(SPEC.train, epochs=epochs),
        eval=dataclasses.replace(SPEC.eval, per_epoch=per_epoch, batch_size=24),
    )
    clock = FakeTime()
    monkeypatch.setattr(time, "perf_counter", clock)
    out, _ = train_and_evaluate(ShapeCompilingBackend(clock), spec, data(320), CLASSES, 0)
    assert out["eval_s"] == pytest.approx(0.030) and out["eval_img_s"] == pytest.approx(64 / 0.030)
