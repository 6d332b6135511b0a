"""The spec's pixel preprocessing, applied once in numpy so both backends see equal floats."""

from __future__ import annotations

import numpy as np

from bench.spec import DatasetSpec


def to_float(x: np.ndarray, spec: DatasetSpec) -> np.ndarray:
    """uint8 NHWC -> float32 NHWC: optional /255, then optional per-channel (x - mean) / std."""
    out = x.astype(np.float32)
    if spec.rescale == "unit":
        out *= np.float32(1.0 / 255.0)
    if spec.mean:
        if len(spec.mean) != out.shape[-1]:
            raise ValueError(f"dataset.mean has {len(spec.mean)} values for {out.shape[-1]} channels")
        out -= np.asarray(spec.mean, np.float32)
        out /= np.asarray(spec.std, np.float32)
    return out


def epoch_orders(n: int, epochs: int, seed: int) -> list[np.ndarray]:
    """The per-epoch sample order, one seeded permutation per epoch, shared by both backends."""
    rng = np.random.default_rng([seed, 2])
    return [rng.permutation(n).astype(np.int64) for _ in range(epochs)]
