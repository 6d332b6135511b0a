"""pytest-benchmark regression checks: one training epoch and one inference pass per backend.

Run as plain tests by default (``--benchmark-disable`` in tox.ini, so they cannot
rot); ``tox -e bench`` times them. torch and keras share a group per model so they
sit next to each other in the output.
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.core.catalog import ARCHITECTURES
from bench.core.spec import ModelSpec, RuntimeSpec, TrainSpec
from tests.conftest import import_both_frameworks

torch_backend, keras_backend = import_both_frameworks()

pytestmark = pytest.mark.frameworks  # imports the frameworks when collected
BACKENDS = {"torch": torch_backend, "keras": keras_backend}
SHAPES = {"lenet5": (28, 28, 1), "cifar_cnn": (32, 32, 3)}
N, BATCH = 512, 64


def _setup(backend_name: str, arch: str):
    b = BACKENDS[backend_name].Backend()
    env = b.configure(RuntimeSpec(), seed=0)
    spec = ModelSpec(arch=arch, options=tuple((k, o.default) for k, o in ARCHITECTURES[arch].options.items()))
    model = b.build(spec, SHAPES[arch], 10)
    state = b.compile(model, TrainSpec(epochs=1, batch_size=BATCH, lr=1e-3), RuntimeSpec())
    rng = np.random.default_rng(0)
    data = b.put(rng.random((N, *SHAPES[arch]), dtype=np.float32), rng.integers(0, 10, N))
    return b, env, state, data


@pytest.mark.parametrize("arch", list(SHAPES))
@pytest.mark.parametrize("backend_name", list(BACKENDS))
def test_train_epoch(benchmark, backend_name: str, arch: str):
    b, env, state, data = _setup(backend_name, arch)
    order = np.arange(N)
    benchmark.group = f"train-epoch {arch} n={N} batch={BATCH}"
    benchmark.extra_info.update(
        framework_version=env["framework_version"],
        device=env["device"],
        threads=env["threads"],
        batch_size=BATCH,
        precision="fp32",
    )
    # train_epoch returns a host float, so every round ends synchronised
    loss = benchmark.pedantic(b.train_epoch, args=(state, data, order, BATCH), rounds=5, warmup_rounds=1)
    assert np.isfinite(loss)


@pytest.mark.parametrize("arch", list(SHAPES))
@pytest.mark.parametrize("backend_name", list(BACKENDS))
def test_predict(benchmark, backend_name: str, arch: str):
    b, env, state, data = _setup(backend_name, arch)
    benchmark.group = f"predict {arch} n={N}"
    benchmark.extra_info.update(
        framework_version=env["framework_version"],
        device=env["device"],
        threads=env["threads"],
        batch_size=256,
        precision="fp32",
    )
    logits = benchmark.pedantic(b.predict, args=(state, data, 256), rounds=5, warmup_rounds=1)
    assert logits.shape == (N, 10)
