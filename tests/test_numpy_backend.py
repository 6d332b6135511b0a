"""The numpy test backend (tests/numpy_backend.py) is a real model: its gradients are the loss's, it learns."""

from __future__ import annotations

import numpy as np
import pytest

from bench.core.preprocess import PixelNorm
from bench.core.spec import ModelSpec, RuntimeSpec, TrainSpec
from tests.numpy_backend import Backend, _loss_and_grad


@pytest.mark.parametrize("binary", [False, True])
def test_the_loss_gradient_matches_finite_differences(binary: bool):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((6, 1 if binary else 4))
    y = rng.integers(0, 2 if binary else 4, 6)
    _, grad = _loss_and_grad(logits, y, binary)
    eps, numeric = 1e-6, np.zeros_like(logits)
    for i in np.ndindex(logits.shape):
        up, down = logits.copy(), logits.copy()
        up[i] += eps
        down[i] -= eps
        numeric[i] = (_loss_and_grad(up, y, binary)[0] - _loss_and_grad(down, y, binary)[0]) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, atol=1e-6)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_it_learns_a_separable_task_well_above_chance(optimizer: str):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (400, 8, 8, 1), dtype=np.uint8)
    y = (x[:, :4].mean(axis=(1, 2, 3)) > x[:, 4:].mean(axis=(1, 2, 3))).astype(np.int64)  # which half is brighter
    backend = Backend()
    backend.configure(RuntimeSpec(), seed=0)
    data = backend.put(x, y, PixelNorm(np.array([1 / 255], np.float32), np.array([-0.5], np.float32)))
    state = backend.compile(
        backend.build(ModelSpec(arch="lenet5"), (8, 8, 1), 2),
        TrainSpec(epochs=1, batch_size=32, optimizer=optimizer, lr=0.05, momentum=0.9),
        RuntimeSpec(),
    )
    losses = [backend.train_epoch(state, data, rng.permutation(400), 32) for _ in range(10)]
    assert losses[-1] < 0.6 * losses[0]
    assert (backend.predict(state, data, 64).argmax(axis=1) == y).mean() > 0.9
