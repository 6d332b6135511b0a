"""The torch <-> Keras weight converter (framework-free: named numpy arrays in and out)."""

from __future__ import annotations

import numpy as np
import pytest

from backends import convert


def _torch_lenet_like(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "conv1.weight": rng.random((4, 3, 5, 5), dtype=np.float32),  # OIHW
        "conv1.bias": rng.random(4, dtype=np.float32),
        "conv2.weight": rng.random((2, 4, 3, 3), dtype=np.float32),
        "conv2.bias": rng.random(2, dtype=np.float32),
        "fc1.weight": rng.random((5, 2 * 2 * 3), dtype=np.float32),  # reads a 2-channel 2x3 map
        "fc1.bias": rng.random(5, dtype=np.float32),
        "fc2.weight": rng.random((7, 5), dtype=np.float32),
        "fc2.bias": rng.random(7, dtype=np.float32),
    }


def test_layouts_and_flatten_order():
    w = _torch_lenet_like(np.random.default_rng(0))
    k = convert.torch_to_keras(w, feature_hw=(2, 3))
    assert k["conv1.kernel"].shape == (5, 5, 3, 4)  # HWIO
    assert k["conv1.kernel"][1, 2, 0, 3] == w["conv1.weight"][3, 0, 1, 2]
    assert k["fc2.kernel"].shape == (5, 7) and np.array_equal(k["fc2.kernel"], w["fc2.weight"].T)
    # Keras flattens (h, w, c), torch (c, h, w): the same input feature sits in a different row
    c_n, h_n, w_n = 2, 2, 3
    for h in range(h_n):
        for x in range(w_n):
            for c in range(c_n):
                keras_row = (h * w_n + x) * c_n + c
                torch_col = (c * h_n + h) * w_n + x
                assert np.array_equal(k["fc1.kernel"][keras_row], w["fc1.weight"][:, torch_col])
    assert np.array_equal(k["fc1.bias"], w["fc1.bias"])


@pytest.mark.parametrize("feature_hw", [(2, 3), None])
def test_round_trip_is_exact(feature_hw):
    rng = np.random.default_rng(1)
    w = _torch_lenet_like(rng)
    if feature_hw is None:  # a square map is inferred from the widths
        w["fc1.weight"] = rng.random((5, 2 * 3 * 3), dtype=np.float32)
    back = convert.keras_to_torch(convert.torch_to_keras(w, feature_hw), feature_hw)
    assert back.keys() == w.keys()
    assert all(np.array_equal(back[n], w[n]) for n in w)


def test_unconvertible_inputs_are_named():
    w = _torch_lenet_like(np.random.default_rng(2))
    with pytest.raises(ValueError, match="pass feature_hw"):
        convert.torch_to_keras(w)  # 12 features over 2 channels is not a square map
    with pytest.raises(ValueError, match=r"bn1\.running_mean"):
        convert.torch_to_keras({**w, "bn1.running_mean": np.zeros(4, np.float32)}, feature_hw=(2, 3))
