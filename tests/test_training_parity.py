"""Training parity: from one init, the same batches in the same order, every backend takes the same steps.

One check (bench.run.parity) trains every case below in every backend, one process per backend (in two parts, the
small models and the zoo models, and one test per part and backend: each test a minute or two), and the tests
read it: weights and held-out logits after 1, 10 and 100 steps against the fp32 bound (bench.measure.parity:
10x the largest distance of the reference run from itself with one-ulp weights and each batch summed in
another order). Tiny inputs and models keep it to a few seconds of training per backend.

With a convention left as the framework ships it the pairs part, and the tests named after it show it: Adam's
epsilon placement at the first step, Keras's float32 bias correction within 100 steps, BatchNorm's unbiased
running variance in the held-out logits (docs/methodology.md, "Training parity").

The zoo models run at 32 px: MobileNet, MobileNetV3-small and ConvNeXt-tiny on every backend for 1 and 3 steps in
the default run (inside the one check: on an Intel Xeon VM, 2026-12-02, idle, the check took 430 s with them and
163 s without, mostly Keras/JAX's XLA compiles and Keras/TF's tracing; on 2026-12-03, with each backend's cases
dealt over two processes side by side, one core each (bench.run.parity.lanes), 309 s against 530 s one process at
a time); MobileNetV2, DenseNet121 and ConvNeXt-tiny
for 1 and 10 steps in the slow tier (551 s there: torch 21 s, torch+rounding 22 s, Keras/TF 156 s, Keras/JAX 291 s,
Keras/torch 50 s). Keras's torch engine computes BatchNorm's batch variance in one pass; ``bn_two_pass_var`` aligns
it, and a test shows what it moves when left out.
"""

from __future__ import annotations

import shutil
import tempfile
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from backends import BACKENDS, missing_packages
from bench.core.catalog import ARCHITECTURES
from bench.core.parity import ALL
from bench.core.spec import DatasetSpec, ModelSpec, RuntimeSpec, TaskSpec, TrainSpec, layer_model
from bench.measure.parity import Bound, PairDiff
from bench.run.parity import FLOOR, REFERENCE, Case, CaseResult, ParityCheck, run_check

pytestmark = [pytest.mark.frameworks, pytest.mark.xdist_group("training_parity")]  # its workers import every framework;
# one lane runs the one check every test here reads (``parity``, cached in the process), one run per test

BACKEND_NAMES = tuple(b for b in BACKENDS if not missing_packages(b))
# a layer list with batch norm on maps and on the flattened features (BatchNorm1d with batch 16: the running
# variance's n / (n - 1) is 7%, which "bn_running_var" aligns)
BN_LIST = [
    {"conv": 8, "kernel": 3, "padding": "same", "activation": "relu"},
    {"batchnorm": True},
    {"pool": "max", "size": 2},
    {"conv": 8, "kernel": 3, "activation": "relu"},
    {"batchnorm": True},
    {"flatten": True},
    {"dense": 16},
    {"batchnorm": True},
    {"activation": "relu"},
]


def catalog(arch: str) -> ModelSpec:
    defaults = {k: o.default for k, o in ARCHITECTURES[arch].options.items()}
    return ModelSpec(arch=arch, options=tuple(sorted(defaults.items())))


def images(shape: tuple[int, int, int], n_classes: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Learnable images: noise plus a bright band whose row depends on the class; 32 more held out."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, n_classes, n)
    x = rng.random((n + 32, *shape), dtype=np.float32) * 0.5
    band = max(1, shape[0] // n_classes)
    for i, c in enumerate(y):
        x[i, c * band % shape[0] : c * band % shape[0] + band] += 0.5
    return x[:n], y, x[n:]


def case(
    name: str,
    model: ModelSpec,
    shape: tuple[int, int, int],
    n_classes: int,
    optimizer: str,
    alignments: tuple[str, ...] = ALL,
    checkpoints: tuple[int, ...] | None = None,
) -> Case:
    lr = 0.01 if optimizer == "sgd" else 1e-3
    spec = TaskSpec(
        name,
        DatasetSpec("synthetic"),
        model,
        TrainSpec(1, 16, lr, optimizer=optimizer),
        runtime=RuntimeSpec(device="cpu", threads=1),
    )
    x, y, held = images(shape, n_classes, 256)
    return Case(name, spec, shape, n_classes, x, y, held, alignments, checkpoints)


MODELS = {
    "lenet5": (catalog("lenet5"), (16, 16, 1), 10),
    "cifar_cnn": (catalog("cifar_cnn"), (20, 20, 3), 10),
    "bn_layers": (layer_model(BN_LIST), (12, 12, 3), 5),
}


def without(name: str) -> tuple[str, ...]:
    return tuple(a for a in ALL if a != name)


def zoo_case(zoo_id: str, alignments: tuple[str, ...] = ALL, checkpoints: tuple[int, ...] | None = None) -> Case:
    return case(zoo_id, ModelSpec(arch=f"zoo:{zoo_id}"), (32, 32, 3), 4, "adam", alignments, checkpoints)


# The default run's zoo models, every engine, 1 and 3 steps: the cheapest whose builds are equal, with BatchNorm and
# depthwise convolutions (MobileNet), squeeze-excite and hard-swish (MobileNetV3-small), LayerNorm and GELU (ConvNeXt).
ZOO_FAST = ("mobilenet", "mobilenet_v3_small", "convnext_tiny")
ZOO_MODELS = ("mobilenet_v2", "densenet121", "convnext_tiny")  # the slow tier's, 1 and 10 steps
# two checks, each trained run by run in tests of their own (below): the small models, 100 steps; the zoo models
CASES = {
    "small": [
        *(case(f"{m}-{opt}", *MODELS[m], opt) for opt in ("sgd", "adam") for m in MODELS),
        case("lenet5-adam-eps-unaligned", *MODELS["lenet5"], "adam", without("adam_eps")),
        case("lenet5-adam-fp32-bias-unaligned", *MODELS["lenet5"], "adam", without("adam_fp32_bias")),
        case("bn_layers-running-var-unaligned", *MODELS["bn_layers"], "sgd", without("bn_running_var")),
    ],
    "zoo": [zoo_case(z, checkpoints=(1, 3)) for z in ZOO_FAST],
}


def _run(cases: list[Case], backends: tuple[str, ...], checkpoints: tuple[int, ...]) -> dict[str, CaseResult]:
    # the trajectories are read into the result: their files (~2 GB for the three zoo models) go with the folder
    with tempfile.TemporaryDirectory(prefix="bench-parity-") as folder:
        return run_check(cases, backends, Path(folder), checkpoints=checkpoints, echo=lambda _: None)


CHECKS: dict[str, ParityCheck] = {}


def parity(part: str) -> ParityCheck:
    """A check the tests here read, in stages: each run (one backend's process) of each part is a test of its
    own below, a minute or two each on one core, so that a whole-machine test waiting in the other lane waits
    for one run, not for the four minutes of the whole check (tests/lanes.py)."""
    if part not in CHECKS:
        folder = Path(tempfile.mkdtemp(prefix=f"bench-parity-{part}-"))
        CHECKS[part] = ParityCheck(CASES[part], BACKEND_NAMES, folder, (1, 10, 100), echo=lambda _: None)
    return CHECKS[part]


@cache
def check() -> dict[str, CaseResult]:
    """Every case compared; trains whatever run no test has trained yet (e.g. under ``-k``)."""
    return {name: res for part in CASES for name, res in parity(part).result().items()}


@pytest.fixture(scope="module", autouse=True)
def scratch():
    """The checks' files (~2 GB of trajectories for the zoo models) live until the module is done."""
    yield
    for check_ in CHECKS.values():
        shutil.rmtree(check_.folder, ignore_errors=True)


RUNS = [REFERENCE, FLOOR, *(b for b in BACKEND_NAMES if b != REFERENCE)]


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("part", CASES)
def test_each_run_trains_every_case_to_its_checkpoints_in_a_process_of_its_own(part, run):
    """The reference first (its seeded initial weights are what every other run starts from, the floor one
    ulp away), then each backend: every case's trajectory holds step 0 and each checkpoint asked of it."""
    check_ = parity(part)
    check_.train(run)
    assert check_.started is not None and [c.name for c in check_.started] == [c.name for c in CASES[part]]
    for c in CASES[part]:
        assert run not in check_.results[c.name].errors, check_.results[c.name].errors[run]
        with np.load(check_.out(c, run)) as f:  # reads the zip's directory, not the arrays
            steps = {int(k.split("/")[1]) for k in f.files if k.startswith("logits/")}
        assert steps == {0, *c.steps((1, 10, 100))}, (c.name, sorted(steps))


def diffs(
    name: str, up_to: int, result: dict[str, CaseResult] | None = None, backends: tuple[str, ...] = BACKEND_NAMES
) -> list[PairDiff]:
    res = (result or check())[name]
    assert res.errors == {}, res.errors
    assert set(res.runs) == {*backends, FLOOR}
    return [d for d in res.diffs if d.step <= up_to]


def _show(ds: list[PairDiff]) -> str:
    return "; ".join(
        f"{d.a}-{d.b}@{d.step}: w {d.weight_diff:.2g}/{d.bound.weight:.2g} l {d.logit_diff:.2g}/{d.bound.logit:.2g}"
        for d in ds
    )


# Where one engine parts from the others on some CPUs, measured: (model, engine) -> the last step its pairs are held
# to. MobileNetV3-small with Adam on a 2-core AMD EPYC VM (2026-12-04): Keras/JAX alone moved 130 of its 1.53M weights
# by more than the bound at step 1 (at most 1.8e-3 against 1.2e-3; 69 of them in the last squeeze-excite
# block's reduce conv, some the other way from torch: Adam's first step is lr * sign(g) for a gradient well above
# epsilon, so a gradient that differs near zero moves its weight by up to 2 * lr), while Keras/TF and the floor
# moved none and one; the held-out logits still agreed within the bound (1.9e-6 against 3.8e-6), and every
# pair held for 3 steps on the Intel VM. XLA's CPU kernels differ between the two CPUs; the exact op is not
# known. The pair's weights are held to step 0 (the exact crossover) and its logits to step 1.
PARTS_AFTER = {("mobilenet_v3_small", "keras-jax"): 0}

# A knife edge: after this step ONE engine, whichever the CPU's rounding tips, may part from the rest, which must
# still agree with each other. bn_layers with SGD held every pair for 100 steps on the Intel Xeon VM; on a 2-core AMD
# EPYC VM (2026-12-02) Keras on TensorFlow alone left the other three between steps 10 and 100, and on another AMD
# EPYC VM (model 17, 2026-12-06) Keras on JAX alone did, Keras/TF then within 1.7e-6 of torch: both times the one
# engine's weights 0.0101 apart at step 100 against a bound of 9.5e-6-1.2e-5, the other three within it of each
# other. The same distance whichever engine parts is one discrete event (a unit tipping one way) that rounding
# decides, not a convention one engine gets wrong (that shows at step 1: Adam's epsilon left unaligned, 3,680
# floors). A test naming the engine held on one CPU and failed on the next (#26): it names none.
ONE_MAY_PART_AFTER = {"bn_layers": 10}


def _held_to(model: str, d: PairDiff) -> bool:
    """Whether pair ``d`` must be within the bound at its step (PARTS_AFTER)."""
    return all(d.step <= PARTS_AFTER.get((model, b), d.step) for b in (d.a, d.b))


def _all_but_one_agree(outside: list[PairDiff]) -> bool:
    """Whether the pairs outside the bound at one step all involve one engine (the rest agree with each other)."""
    return bool(set.intersection(*({d.a, d.b} for d in outside))) if outside else True


@pytest.mark.parametrize("model", MODELS)
def test_with_sgd_every_backend_pair_agrees_within_the_fp32_bound_for_100_steps_or_as_measured_per_cpu(model):
    ds = diffs(f"{model}-sgd", 100)
    assert len(ds) == 4 * len(BACKEND_NAMES) * (len(BACKEND_NAMES) - 1) // 2  # steps 0, 1, 10, 100 per pair
    outside = [d for d in ds if not d.within and _held_to(model, d)]
    after = ONE_MAY_PART_AFTER.get(model)
    if after is not None:
        late = [d for d in outside if d.step > after]
        for step in {d.step for d in late}:
            at = [d for d in late if d.step == step]
            assert _all_but_one_agree(at), f"more than one engine parted at step {step}: {_show(at)}"
        outside = [d for d in outside if d.step <= after]
    assert outside == [], _show(outside)


def test_one_engine_parting_is_told_from_two():
    """The knife-edge rule above: pairs outside the bound that share one engine are one engine parting; pairs
    that share none (two engines each off on its own) are not."""

    def pair(a: str, b: str) -> PairDiff:
        return PairDiff(a, b, 100, 0.01, 0.01, Bound(100, 1e-6, 1e-6, 1e-5, 1e-5, 10.0, 1.0))

    one = [pair("torch", "keras-jax"), pair("keras", "keras-jax"), pair("keras-jax", "keras-torch")]
    assert _all_but_one_agree(one) and _all_but_one_agree([]) and _all_but_one_agree(one[:1])
    assert not _all_but_one_agree([pair("torch", "keras"), pair("keras-jax", "keras-torch")])
    assert not _all_but_one_agree([*one, pair("torch", "keras")])


@pytest.mark.parametrize("model", ["lenet5", "bn_layers"])
def test_with_adam_aligned_every_pair_agrees_within_the_fp32_bound_for_100_steps(model):
    ds = diffs(f"{model}-adam", 100)
    outside = [d for d in ds if not d.within]
    assert outside == [], _show(outside)


def test_with_adam_the_cifar_cnn_agrees_for_its_first_steps_then_torch_and_keras_part_at_a_dying_channel():
    """Measured: after 6 equal steps torch and Keras (its three engines alike, to 5e-7 among themselves at step 10)
    part at step 7 in one conv1 channel whose bias is falling; SGD over the same 100 steps agrees. Not a rounding
    difference the floor shows, and not found yet (docs/methodology.md): held to step 1 for torch's pairs."""
    ds = diffs("cifar_cnn-adam", 10)
    outside = [d for d in ds if not d.within and (d.step <= 1 or REFERENCE not in (d.a, d.b))]
    assert outside == [], _show(outside)


@pytest.mark.parametrize("model", MODELS)
def test_the_trajectories_move_and_start_from_one_set_of_weights(model):
    """Step 0: every backend holds the reference's weights exactly; training then moves them by far more
    than the bound (a check of weights that never moved would pass trivially)."""
    res = check()[f"{model}-sgd"]
    for d in res.diffs:
        if d.step == 0:
            assert d.weight_diff == 0.0 and d.logit_diff <= 1e-4, (d.a, d.b)
    (w0, _), (w100, _) = res.runs[REFERENCE][0], res.runs[REFERENCE][100]
    moved = max(float(np.abs(w100[k] - w0[k]).max()) for k in w0 if w0[k].dtype.kind == "f")
    assert moved > 100 * res.limits[100].weight


def test_adams_epsilon_left_where_each_framework_puts_it_is_caught_at_the_first_step():
    """torch adds epsilon after the bias correction, Keras before: at step 1 Keras's is sqrt(1000) = 31.6x
    larger, which moves small-gradient weights measurably."""
    res = check()["lenet5-adam-eps-unaligned"]
    first = [d for d in res.diffs if d.step == 1 and REFERENCE in (d.a, d.b)]
    assert first and all(d.weight_diff > 10 * d.bound.weight for d in first), _show(first)


def test_kerass_float32_adam_bias_correction_left_in_parts_the_trajectories_within_100_steps():
    """1 - float32(0.999) is 1.3e-5 off 1 - 0.999: every Keras step is 6e-6 longer than torch's at first. Too
    small to see after one step, it is amplified as training goes (LeNet-5: 1.9e-2 apart after 100 steps)."""
    res = check()["lenet5-adam-fp32-bias-unaligned"]
    torch_pairs = [d for d in res.diffs if REFERENCE in (d.a, d.b)]
    assert all(d.within for d in torch_pairs if d.step == 1), _show(torch_pairs)
    assert all(not d.within for d in torch_pairs if d.step == 100), _show(torch_pairs)
    keras_pairs = [d for d in res.diffs if REFERENCE not in (d.a, d.b)]  # Keras's engines share the convention
    assert all(d.within for d in keras_pairs), _show(keras_pairs)


def test_batchnorms_unbiased_running_variance_in_torch_is_caught_in_the_held_out_logits():
    """Training itself uses the batch's statistics (the weights still agree); the running variance torch
    updates with n / (n - 1) shows in the held-out logits, which read it."""
    res = check()["bn_layers-running-var-unaligned"]
    first = [d for d in res.diffs if d.step == 1 and REFERENCE in (d.a, d.b)]
    assert first and all(d.logit_diff > 10 * d.bound.logit for d in first), _show(first)


@pytest.mark.parametrize("zoo_id", ZOO_FAST)
def test_a_zoo_model_crosses_over_exactly_and_every_pair_takes_the_same_first_steps(zoo_id):
    """Converted through its torch twin, every weight equal at step 0 on every engine, then every pair within the
    bound for 3 steps (32 px, Adam)."""
    ds = diffs(zoo_id, 3)
    assert [d.weight_diff for d in ds if d.step == 0] == [0.0] * (len(ds) // 3)
    outside = [d for d in ds if not d.within and _held_to(zoo_id, d)]
    assert outside == [], _show(outside)
    apart_logits = [d for d in ds if d.step <= 1 and d.logit_diff > d.bound.logit]
    assert apart_logits == [], _show(apart_logits)


def test_kerass_one_pass_batch_variance_on_torch_left_in_parts_mobilenet_v3_at_the_first_step():
    """Keras's torch engine computes BatchNorm's batch variance as E[x^2] - E[x]^2 (the other engines and torch:
    mean((x - mean)^2)); in float32 that cancels digits where a channel's mean is large against its spread, and
    Adam's first step turns the changed gradients into steps of the opposite sign (measured on MobileNetV3-small:
    1.8e-3 from torch at step 1 against 2.6e-5 aligned, bound 1.1e-3)."""
    if "keras-torch" not in BACKEND_NAMES:
        pytest.skip("Keras's torch engine is not installed")
    name = "mobilenet_v3_small"
    result = _run([zoo_case(name, without("bn_two_pass_var"))], (REFERENCE, "keras-torch"), (1,))
    unaligned = [d for d in diffs(name, 1, result, (REFERENCE, "keras-torch")) if d.step == 1]
    aligned = [d for d in diffs(name, 1) if d.step == 1 and {d.a, d.b} == {REFERENCE, "keras-torch"}]
    assert unaligned[0].weight_diff > 10 * aligned[0].weight_diff, _show(unaligned + aligned)


@pytest.mark.slow
def test_three_zoo_models_agree_within_the_bound_for_10_steps_on_every_backend():
    result = _run([zoo_case(z) for z in ZOO_MODELS], BACKEND_NAMES, (1, 10))
    for zoo_id in ZOO_MODELS:
        ds = diffs(zoo_id, 10, result)
        outside = [d for d in ds if not d.within]
        assert outside == [], f"{zoo_id}: {_show(outside)}"
