"""pytest-benchmark: our Grad-CAM (torch backend gradients + bench.phases.explain) against pytorch-grad-cam.

Both produce the same maps (tests/test_explain_parity.py) for the same model, batch and
target classes; the two benchmarks share a group so they sit next to each other, and
``test_ours_is_at_least_as_fast`` measures their ratio in one run, interleaved (only with
``--benchmark-enable``: as a plain test it would be a timed unit test), as does
``test_gradcam_within_three_forward_passes`` for issue #5's goal in both backends.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import pytest

from bench.core import metrics
from bench.core.catalog import ARCHITECTURES
from bench.core.spec import ModelSpec, RuntimeSpec, TrainSpec
from bench.phases import explain
from tests.conftest import import_both_frameworks

torch_backend, keras_backend = import_both_frameworks()
BACKENDS = {"torch": torch_backend, "keras": keras_backend}
pytest.importorskip("pytorch_grad_cam")
from pytorch_grad_cam import GradCAM  # noqa: E402
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402

pytestmark = pytest.mark.frameworks  # imports the frameworks when collected

SHAPES = {"lenet5": (28, 28, 1), "cifar_cnn": (32, 32, 3)}
N = 32


def _setup(arch: str):
    b = torch_backend.Backend()
    env = b.configure(RuntimeSpec(), seed=0)
    spec = ModelSpec(arch=arch, options=tuple((k, o.default) for k, o in ARCHITECTURES[arch].options.items()))
    model = b.build(spec, SHAPES[arch], 10)
    state = b.compile(model, TrainSpec(epochs=1, batch_size=N, lr=1e-3), RuntimeSpec())
    data = b.put(np.random.default_rng(0).random((N, *SHAPES[arch]), dtype=np.float32), np.zeros(N, dtype=np.int64))
    pred = b.forward(state, data).argmax(1)
    columns, signs = metrics.class_score_signs(10, pred)
    layer = ARCHITECTURES[arch].last_conv
    ours = lambda: explain.backend_gradcam(b, state, data, layer, columns, signs, SHAPES[arch][:2])  # noqa: E731
    cam = GradCAM(model=model, target_layers=[getattr(model, layer.replace("conv", "act"))])  # post-activation
    targets = [ClassifierOutputTarget(int(c)) for c in pred]
    inputs = b._inputs(data)  # the NCHW float batch the model sees
    theirs = lambda: cam(input_tensor=inputs, targets=targets)  # noqa: E731
    return env, ours, theirs


@pytest.mark.parametrize("arch", list(SHAPES))
@pytest.mark.parametrize("impl", ["ours", "pytorch-grad-cam"])
def test_gradcam(benchmark, impl: str, arch: str):
    env, ours, theirs = _setup(arch)
    benchmark.group = f"gradcam torch {arch} n={N}"
    benchmark.extra_info.update(framework_version=env["framework_version"], threads=env["threads"], batch_size=N)
    maps = benchmark.pedantic(ours if impl == "ours" else theirs, rounds=10, warmup_rounds=2)
    assert maps.shape == (N, *SHAPES[arch][:2])


@pytest.mark.parametrize("arch", list(SHAPES))
def test_ours_is_at_least_as_fast(benchmark, arch: str):
    """Median of interleaved calls (so drift from other load hits both alike); ours/theirs <= 1."""
    if benchmark.disabled:
        pytest.skip("a speed ratio is only checked with --benchmark-enable")
    _, ours, theirs = _setup(arch)
    t_ours, t_theirs, ratio = _interleaved_median_ratio(ours, theirs)
    benchmark.group = f"gradcam torch {arch} n={N}"
    benchmark.extra_info.update(ours_over_pytorch_grad_cam=ratio)
    benchmark.pedantic(ours, rounds=3)
    print(f"\n{arch}: ours {1000 * t_ours:.2f} ms, pytorch-grad-cam {1000 * t_theirs:.2f} ms, ratio {ratio:.3f}")
    assert ratio <= 1.0


def _interleaved_median_ratio(fast, slow, rounds: int = 30) -> tuple[float, float, float]:
    """Medians (s) of ``fast`` and ``slow`` timed alternately, and their ratio fast/slow."""
    fast(), slow()  # warm-up: tracing, allocator
    a, b = [], []
    for _ in range(rounds):
        for fn, acc in ((fast, a), (slow, b)):
            t0 = time.perf_counter()
            fn()
            acc.append(time.perf_counter() - t0)
    return statistics.median(a), statistics.median(b), statistics.median(a) / statistics.median(b)


@pytest.mark.parametrize("arch", list(SHAPES))
@pytest.mark.parametrize("backend_name", ["torch", "keras"])
def test_gradcam_within_three_forward_passes(benchmark, backend_name: str, arch: str):
    """Issue #5's goal, per backend: Grad-CAM (gradients + bench.phases.explain) <= 3x a forward pass of the batch."""
    if benchmark.disabled:
        pytest.skip("a speed ratio is only checked with --benchmark-enable")
    b = BACKENDS[backend_name].Backend()
    b.configure(RuntimeSpec(), seed=0)
    spec = ModelSpec(arch=arch, options=tuple((k, o.default) for k, o in ARCHITECTURES[arch].options.items()))
    state = b.compile(b.build(spec, SHAPES[arch], 10), TrainSpec(epochs=1, batch_size=N, lr=1e-3), RuntimeSpec())
    data = b.put(np.random.default_rng(0).random((N, *SHAPES[arch]), dtype=np.float32), np.zeros(N, dtype=np.int64))
    columns, signs = metrics.class_score_signs(10, b.forward(state, data).argmax(1))
    layer = ARCHITECTURES[arch].last_conv

    def cam():
        return explain.backend_gradcam(b, state, data, layer, columns, signs, SHAPES[arch][:2])

    t_cam, t_fwd, ratio = _interleaved_median_ratio(cam, lambda: b.forward(state, data))
    benchmark.group = f"gradcam vs forward {arch} n={N}"
    benchmark.extra_info.update(gradcam_forward_ratio=ratio)
    benchmark.pedantic(cam, rounds=3)
    print(f"\n{backend_name} {arch}: Grad-CAM {1000 * t_cam:.2f} ms, forward {1000 * t_fwd:.2f} ms, ratio {ratio:.2f}")
    assert ratio <= 3.0
