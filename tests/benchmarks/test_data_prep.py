"""pytest-benchmark: the framework-free data path (shaping a task's data, float preprocessing)."""

from __future__ import annotations

import numpy as np

from bench.core.preprocess import to_float
from bench.core.spec import DatasetSpec
from datasets.arrays import ArrayDataset, Split
from datasets.prepare import prepare
from datasets.shapes import make_shapes10


def _cifar_like(n: int = 5000) -> ArrayDataset:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    y = np.arange(n) % 10
    return ArrayDataset("cifar10", Split(x, y), Split(x[:1000], y[:1000]), tuple("abcdefghij"), "bench")


def test_prepare_subset_and_resize(benchmark):
    ds = _cifar_like()
    benchmark.group = "data-prep"
    benchmark.extra_info.update(n=len(ds.train), image="32x32x3 -> 24x24x3")
    out = benchmark.pedantic(
        prepare, args=(ds,), kwargs={"max_train": 2000, "image_size": 24}, rounds=5, warmup_rounds=1
    )
    assert out.train.x.shape == (2000, 24, 24, 3)


def test_to_float_normalise(benchmark):
    x = _cifar_like().train.x
    spec = DatasetSpec(name="cifar10", mean=(0.49, 0.48, 0.45), std=(0.25, 0.24, 0.26))
    benchmark.group = "data-prep"
    benchmark.extra_info.update(n=len(x), image="32x32x3")
    out = benchmark.pedantic(to_float, args=(x, spec), rounds=5, warmup_rounds=1)
    assert out.dtype == np.float32 and abs(float(out.mean())) < 1.5


def test_make_shapes10(benchmark):
    """The procedural stand-in is vectorised (a per-pixel Python loop would take minutes); timed here, not asserted."""
    benchmark.group = "data-prep"
    benchmark.extra_info.update(n=2000, image="32x32x3")
    train, test, _ = benchmark.pedantic(make_shapes10, args=(2000, 0), kwargs={"seed": 5}, rounds=3, warmup_rounds=1)
    assert train.x.shape == (2000, 32, 32, 3) and len(test) == 0
