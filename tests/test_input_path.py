"""The input path: uint8 until the device, normalised there; batched augmentation with today's distribution
(flip p = 0.5, rotation uniform in +-10 degrees, nearest neighbour, zero fill) in both backends; streaming."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.core.preprocess import PixelNorm, to_float
from bench.core.spec import DatasetSpec
from bench.measure.inputpath import WARN_SHARE, input_bound_warnings
from tests.conftest import import_both_frameworks

torch_backend, keras_backend = import_both_frameworks()
import keras  # noqa: E402
import torch  # noqa: E402

from backends.keras import engine_tf  # noqa: E402
from backends.keras import input as keras_input  # noqa: E402
from backends.torch import augment as torch_augment  # noqa: E402
from backends.torch import input as torch_input  # noqa: E402

pytestmark = pytest.mark.frameworks  # imports the frameworks when collected

IDENTITY = PixelNorm(np.ones(1, np.float32), np.zeros(1, np.float32))
BACKENDS = ["torch", "keras"]


def through_input_path(
    backend: str, x: np.ndarray, names: tuple[str, ...], batch_size: int = 64, norm: PixelNorm = IDENTITY
) -> np.ndarray:
    """The batches ``train_epoch`` would train on (order = arange), as NHWC numpy."""
    y = np.zeros(len(x), np.int64)
    order = np.arange(len(x))
    if backend == "torch":
        data = torch_input.put(x, y, torch.device("cpu"), float("inf"), (norm.scale, norm.offset))
        aug = torch_augment.augmenter(names)
        out = [xb.permute(0, 2, 3, 1).numpy() for xb, _ in torch_input.batches(data, order, batch_size, False, aug)]
    else:
        # The gathered uint8 batches through the training model's first layers (normalise, augment).
        data = keras_input.HostImages(x, y, norm.scale, norm.offset)
        first = keras_input.training_model(keras.layers.Identity(name="model"), data, keras_input.augmenter(names, 0))
        out = [np.asarray(first(xb, training=True)) for xb, _ in engine_tf.batches(data, order, batch_size, y)]
    return np.concatenate(out)


def test_pixel_norm_folds_rescale_and_mean_std_into_one_multiply_add():
    spec = DatasetSpec(name="c", mean=(0.5, 0.4, 0.3), std=(0.25, 0.5, 1.0))
    x = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(3, axis=3)
    expected = (x / 255.0 - np.array(spec.mean)) / np.array(spec.std)
    np.testing.assert_allclose(to_float(x, spec), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_float(x, DatasetSpec(name="c", rescale="none")), x)
    with pytest.raises(ValueError, match="3 values for 1 channels"):
        PixelNorm.from_spec(spec, 1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_device_normalises_uint8_batches_as_the_host_would(backend):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (70, 9, 9, 3), dtype=np.uint8)
    norm = PixelNorm.from_spec(DatasetSpec(name="c", mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)), 3)
    out = through_input_path(backend, x, (), batch_size=32, norm=norm)
    np.testing.assert_allclose(out, norm.apply(x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_flips_are_drawn_per_image_with_probability_one_half_and_fresh_per_batch(backend):
    x = np.zeros((2048, 4, 4, 1), np.uint8)
    x[:, :, 0] = 200  # left column bright
    out = through_input_path(backend, x, ("hflip",))
    flipped = out[:, 0, -1, 0] == 200
    assert np.array_equal(flipped, out[:, 0, 0, 0] == 0)  # each image is either itself or its mirror
    assert 0.45 < flipped.mean() < 0.55  # binomial sd 0.011
    per_batch = flipped.reshape(-1, 64)
    assert len({tuple(b) for b in per_batch}) == len(per_batch)  # no batch repeats another's draws


def bright_pixel_angles(out: np.ndarray, centre: int) -> np.ndarray:
    """The rotation angle of each image, in degrees, from where its one bright off-centre pixel landed."""
    angles = []
    for img in out[..., 0]:
        rows, cols = np.nonzero(img > 0)
        if len(rows):  # nearest neighbour may drop or double the one pixel; the centroid is where it went
            angles.append(math.degrees(math.atan2(-(rows.mean() - centre), cols.mean() - centre)))
    return np.array(angles)


@pytest.mark.parametrize("backend", BACKENDS)
def test_rotation_angles_are_uniform_in_plus_minus_10_degrees(backend):
    size, radius = 65, 28
    x = np.zeros((1024, size, size, 1), np.uint8)
    x[:, size // 2, size // 2 + radius] = 255  # a single bright pixel right of the centre
    angles = bright_pixel_angles(through_input_path(backend, x, ("rotate10",)), size // 2)
    assert len(angles) > 0.95 * len(x)
    tol = math.degrees(math.atan(0.75 / radius))  # nearest-neighbour rounding at this radius
    assert np.abs(angles).max() <= 10 + tol
    assert angles.min() < -9 and angles.max() > 9  # the whole range is drawn
    assert abs(angles.mean()) < 0.6 and 4.4 < np.abs(angles).mean() < 5.6  # uniform: E|a| = 5


@pytest.mark.parametrize("backend", BACKENDS)
def test_rotation_is_nearest_neighbour_with_zero_fill(backend):
    rng = np.random.default_rng(1)
    x = (rng.integers(1, 26, (256, 33, 33, 1)) * 10).astype(np.uint8)  # values 10..250, never 0
    out = through_input_path(backend, x, ("rotate10",))
    assert set(np.unique(out)) <= set(np.unique(x)) | {0}  # nearest neighbour: no value is interpolated
    for img, src in zip(out[:32], x[:32], strict=True):
        assert set(np.unique(img)) <= set(np.unique(src)) | {0}
    ones = np.full((512, 33, 33, 1), 100, np.uint8)
    rot = through_input_path(backend, ones, ("rotate10",))
    assert (rot[:, 16, 16] == 100).all()  # the centre stays
    corners = rot[:, [0, 0, -1, -1], [0, -1, 0, -1], 0]
    assert 0.6 < (corners == 0).all(axis=1).mean() < 1.0  # zero fill outside (|angle| > ~1.8 degrees)


def test_rotation_by_zero_degrees_is_the_identity():
    x = np.random.default_rng(2).random((8, 3, 17, 23), dtype=np.float32)  # non-square
    assert torch.equal(torch_augment.rotate(torch.from_numpy(x), torch.zeros(8)), torch.from_numpy(x))
    layer = keras.layers.RandomRotation(0.0, fill_mode="constant", fill_value=0.0, interpolation="nearest")
    nhwc = x.transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(np.asarray(layer(nhwc, training=True)), nhwc)


def test_a_non_square_rotation_by_90_degrees_is_not_sheared():
    x = torch.zeros(1, 1, 9, 15)
    x[0, 0, 4, 7:11] = 1.0  # a horizontal bar of 4 from the centre to the right
    out = torch_augment.rotate(x, torch.tensor([90.0]))
    rows, cols = torch.nonzero(out[0, 0], as_tuple=True)
    assert set(cols.tolist()) == {7} and sorted(rows.tolist()) == [1, 2, 3, 4]  # a vertical bar of 4, upwards


def test_a_split_over_the_device_budget_streams_the_same_batches():
    rng = np.random.default_rng(3)
    x, y = rng.integers(0, 256, (100, 6, 6, 3), dtype=np.uint8), rng.integers(0, 5, 100)
    norm = (np.full(3, 0.5, np.float32), np.full(3, -1.0, np.float32))
    resident = torch_input.put(x, y, torch.device("cpu"), float("inf"), norm)
    streamed = torch_input.put(x, y, torch.device("cpu"), 0, norm)
    assert streamed.streamed and not resident.streamed
    assert streamed.x.data_ptr() == torch.from_numpy(x).data_ptr() or np.shares_memory(streamed.x.numpy(), x)
    order = rng.permutation(100)
    for (a, ya), (b, yb) in zip(
        torch_input.batches(resident, order, 16, True), torch_input.batches(streamed, order, 16, True), strict=True
    ):
        assert torch.equal(a, b) and torch.equal(ya, yb) and a.is_contiguous(memory_format=torch.channels_last)
    assert torch_input.device_budget_bytes(torch.device("cpu"), 1) == float("inf")  # the CPU is the host


def test_summary_flags_rows_whose_input_path_is_a_large_share_of_a_step():
    rows = [
        {"backend": "torch", "repeat": 0, "input_share": WARN_SHARE * 2, "input_step_s": 0.002},
        {"backend": "keras", "repeat": 0, "input_share": WARN_SHARE / 2, "input_step_s": 0.001},
        {"backend": "keras", "repeat": 1, "input_share": None, "input_step_s": None},
    ]
    (line,) = input_bound_warnings(rows)
    assert "torch repeat 0" in line and "20%" in line and "2.00 ms" in line


@pytest.mark.parametrize("backend", BACKENDS)
def test_host_memory_holds_the_uint8_set_only(backend):
    """2,000 images at 64 px (23 MB uint8) through the training input path, augmentation included, in a
    fresh process: peak RSS grows by at most 1.3x the set plus a fixed allowance (a float32 copy would be 4x)."""
    import json
    import subprocess
    import sys

    from tests.conftest import REPO

    cmd = [sys.executable, "-m", "bench.run.rssprobe", "--backend", backend, "--n", "2000", "--size", "64"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["uint8_mb"] == pytest.approx(2000 * 64 * 64 * 3 / 2**20, abs=0.1)
    assert got["growth_mb"] >= 0.9 * got["uint8_mb"]  # the set itself is counted (its pages were written)
    assert got["growth_mb"] <= 1.3 * got["uint8_mb"] + 16, got


def test_input_time_per_batch_is_the_slope_so_a_calls_fixed_cost_drops_out():
    """A backend whose input path costs 0.3 s per call (tracing) + 10 ms per batch, on a clock it advances."""
    from bench.measure.inputpath import input_fields
    from bench.measure.timing import SyncTimer

    now = [0.0]

    class Backend:
        def prepare_batches(self, state, data, order, batch_size):
            n = -(-len(order) // batch_size)
            now[0] += 0.3 + 0.01 * n
            return n

    timer = SyncTimer(lambda: None, clock=lambda: now[0])
    got = input_fields(Backend(), None, None, np.arange(64 * 32), 32, timer, {"steady_step_s": 0.2})
    assert got["input_step_s"] == pytest.approx(0.01) and got["input_share"] == pytest.approx(0.05)
    assert got["input_batches"] == 16  # k = 8 already took >= MIN_SECONDS; then 2k
    # Keras's steps_per_execution 8: a timed step is 8 batches (1.6 s), a batch's step still 0.2 s (160 img/s)
    executions = input_fields(
        Backend(), None, None, np.arange(64 * 32), 32, timer, {"steady_step_s": 1.6, "steady_img_s": 160.0}
    )
    assert executions["input_share"] == pytest.approx(0.05)  # read against the 8-batch step: 0.006 (QA, 2026-12-05)
    short = input_fields(Backend(), None, None, np.arange(4 * 32), 32, timer, {"epoch_s_median": 0.8})
    # An epoch of 4 batches is read round again (k = 8, 2k = 16 batches), so the slope still drops the
    # per-call cost; the mean of its 4 batches would have read 85 ms per batch, 8.5x the true cost.
    assert short["input_step_s"] == pytest.approx(0.01) and short["input_batches"] == 16
    assert short["input_share"] == pytest.approx(0.01 / 0.2)  # 0.8 s epoch / 4 steps


def test_a_real_torch_input_path_is_timed_per_batch():
    from bench.core.spec import ModelSpec, RuntimeSpec, TrainSpec
    from bench.measure.inputpath import input_fields
    from bench.measure.timing import SyncTimer

    b = torch_backend.Backend()
    b.configure(RuntimeSpec(), 0)
    spec = ModelSpec(arch="cifar_cnn", options=(("activation", "relu"),))
    train = TrainSpec(epochs=1, batch_size=32, lr=1e-3, augment=("hflip", "rotate10"))
    state = b.compile(b.build(spec, (32, 32, 3), 10), train, RuntimeSpec())
    x = np.random.default_rng(0).integers(0, 256, (640, 32, 32, 3), dtype=np.uint8)
    data = b.put(x, np.zeros(640, np.int64), PixelNorm.from_spec(DatasetSpec(name="c"), 3))
    assert b.prepare_batches(state, data, np.arange(640), 32) == 20
    got = input_fields(b, state, data, np.arange(640), 32, SyncTimer(b.synchronize), {"steady_step_s": 1.0})
    assert 0 < got["input_step_s"] < 1 and got["input_share"] == got["input_step_s"]
    # 2k for an auto-ranged k = 8, 16, 32, ... (the order cycled past the epoch's 20 batches)
    assert got["input_batches"] in {2 * 8 * 2**i for i in range(9)}


def test_keras_tf_pipeline_is_built_once_per_split_and_follows_each_calls_order():
    """A ``fit`` per epoch reuses one tf.data pipeline (building it traces a function, ~20 ms a time);
    each call's batches are that call's order, also for an iterator made after the order changed."""
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (10, 2, 2, 1), dtype=np.uint8)
    y = np.arange(10, dtype=np.int64)
    data = keras_input.HostImages(x, y)
    first, second = rng.permutation(10), rng.permutation(10)
    ds1 = engine_tf.batches(data, first, 4, y)
    got1 = [yb.numpy() for _, yb in ds1]
    ds2 = engine_tf.batches(data, second, 4, y)
    assert ds2 is ds1 and len(data.pipelines) == 1
    got2 = [yb.numpy() for _, yb in ds2]
    assert [len(b) for b in got2] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate(got1), first)
    np.testing.assert_array_equal(np.concatenate(got2), second)
    xs = np.concatenate([xb.numpy() for xb, _ in engine_tf.batches(data, first, 4, y)])
    np.testing.assert_array_equal(xs, x[first])
    engine_tf.batches(data, first, 5, y)  # another batch size is another pipeline
    assert len(data.pipelines) == 2
    with pytest.raises(ValueError, match=r"reads 1 order\(s\) of 10 samples, got \(1, 3\)"):
        data.pipelines[next(iter(data.pipelines))](np.arange(3))


def test_a_keras_fit_per_epoch_makes_one_input_iterator_and_gathers_each_batch_once():
    """With a known length, Keras's epoch iterator made the next epoch's iterator as an epoch ended (inside the
    last step) and the next ``fit`` threw it away, with the two batches it had prefetched: the TF pipeline's length
    is left unknown and ``fit`` is told the step count, so each epoch gathers its batches once and no more."""
    from bench.core.spec import ModelSpec, RuntimeSpec, TrainSpec

    b = keras_backend.Backend()
    b.configure(RuntimeSpec(), 0)
    train = TrainSpec(epochs=1, batch_size=32, lr=1e-3)
    state = b.compile(b.build(ModelSpec(arch="lenet5"), (28, 28, 1), 10), train, RuntimeSpec())
    x = np.random.default_rng(0).integers(0, 256, (200, 28, 28, 1), dtype=np.uint8)
    data = b.put(x, np.arange(200, dtype=np.int64) % 10, IDENTITY)
    made = []
    real_iter = engine_tf.tf.data.Dataset.__iter__
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(engine_tf.tf.data.Dataset, "__iter__", lambda ds: made.append(1) or real_iter(ds))
        for _ in range(3):
            b.train_epoch(state, data, np.random.default_rng(1).permutation(200), 32)
    pipeline = next(iter(data.pipelines.values()))
    assert len(made) == 3  # one iterator per fit (before: two, the second thrown away)
    assert pipeline.gathers == 3 * 7  # ceil(200 / 32) batches a call: nothing prefetched past the end
    logits = b.predict(state, data, 64)  # told its steps too: every sample once, in order
    assert logits.shape == (200, 10) and np.isfinite(logits).all()


class _EpochEvents:
    """Hooks as bench.measure.steady.Epochs has them, writing down what the backend calls."""

    n_steps = 7

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def on_epoch_begin(self, epoch: int) -> None:
        self.events.append(("begin", epoch))

    def on_epoch_end(self, epoch: int, loss: float) -> None:
        self.events.append(("end", epoch, loss))

    def on_step_begin(self, i: int) -> None:
        self.events.append(("step", i))

    def on_step_end(self, i: int) -> None:
        self.events.append(("step_end", i))


def test_one_fit_over_every_epoch_trains_what_a_fit_per_epoch_trains_with_one_input_iterator():
    """Keras trains a row's epochs in one ``fit(epochs=N)`` (its per-call setup once, as a user pays it): the
    same batches in the same order, so the same losses and weights as one fit per epoch from the same start;
    one input iterator for the whole run, each batch gathered once; the epoch hooks around each epoch's steps."""
    from bench.core.spec import ModelSpec, RuntimeSpec, TrainSpec

    b = keras_backend.Backend()
    b.configure(RuntimeSpec(), 0)
    train = TrainSpec(epochs=3, batch_size=32, lr=1e-3)
    one, per = (b.compile(b.build(ModelSpec(arch="lenet5"), (28, 28, 1), 10), train, RuntimeSpec()) for _ in "ab")
    b.import_weights(per, b.export_weights(one))
    x = np.random.default_rng(0).integers(0, 256, (200, 28, 28, 1), dtype=np.uint8)
    data = b.put(x, np.arange(200, dtype=np.int64) % 10, IDENTITY)
    orders = [np.random.default_rng(e).permutation(200) for e in range(3)]
    per_epoch_losses = [b.train_epoch(per, data, order, 32) for order in orders]
    hooks, made = _EpochEvents(), []
    real_iter = engine_tf.tf.data.Dataset.__iter__
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(engine_tf.tf.data.Dataset, "__iter__", lambda ds: made.append(1) or real_iter(ds))
        b.train_epochs(one, data, orders, 32, hooks)
    assert len(made) == 1
    (pipeline,) = [p for p in data.pipelines.values() if p.epochs == 3]
    assert pipeline.gathers == 3 * 7
    steps = [("step", i) if k % 2 == 0 else ("step_end", i) for i in range(7) for k in range(2)]
    expected = [e for epoch in range(3) for e in [("begin", epoch), *steps, ("end", epoch)]]
    assert [e[:2] for e in hooks.events] == expected
    one_fit_losses = [e[2] for e in hooks.events if e[0] == "end"]
    np.testing.assert_allclose(one_fit_losses, per_epoch_losses, rtol=1e-6)
    a, c = b.export_weights(one), b.export_weights(per)
    assert max(float(np.abs(a[k] - c[k]).max()) for k in a) <= 1e-6
