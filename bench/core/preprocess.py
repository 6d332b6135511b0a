"""The spec's pixel preprocessing as one per-channel affine map, so both backends apply equal floats.

Images stay uint8 (NHWC, as loaded) until they reach the device; there each backend computes
``x * scale + offset`` per batch. ``/255`` then ``(x - mean) / std`` folds into
``scale = 1 / (255 std)``, ``offset = -mean / std``: one multiply-add, the same constants everywhere.
``to_float`` is that map on the host, for the few images the phases after training need; ``minmax``
rescales maps and images to [0, 1] (Grad-CAM's last step, and how the report draws an input).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from bench.core.spec import DatasetSpec


@dataclass(frozen=True)
class PixelNorm:
    """Per-channel ``float = uint8 * scale + offset`` (float32, shape (C,))."""

    scale: np.ndarray
    offset: np.ndarray

    @classmethod
    def from_spec(cls, spec: DatasetSpec, channels: int) -> PixelNorm:
        scale = np.full(channels, 1.0 / 255.0 if spec.rescale == "unit" else 1.0, np.float64)
        offset = np.zeros(channels, np.float64)
        if spec.mean:
            if len(spec.mean) != channels or len(spec.std) != channels:
                raise ValueError(
                    f"dataset.mean/std have {len(spec.mean)}/{len(spec.std)} values for {channels} channels"
                )
            std = np.asarray(spec.std, np.float64)
            scale, offset = scale / std, -np.asarray(spec.mean, np.float64) / std
        return cls(scale.astype(np.float32), offset.astype(np.float32))

    def apply(self, x: np.ndarray) -> np.ndarray:
        """uint8 NHWC -> float32 NHWC on the host."""
        out = x.astype(np.float32)
        out *= self.scale
        out += self.offset
        return out


def to_float(x: np.ndarray, spec: DatasetSpec) -> np.ndarray:
    """uint8 NHWC -> float32 NHWC: optional /255, then optional per-channel (x - mean) / std."""
    return PixelNorm.from_spec(spec, x.shape[-1]).apply(x)


def minmax(maps: np.ndarray) -> np.ndarray:
    """Each map scaled to [0, 1]; a constant map becomes all zeros (nothing stands out)."""
    lo = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - lo
    return np.where(span > 0, (maps - lo) / np.where(span > 0, span, 1), 0).astype(np.float32)


def epoch_orders(n: int, epochs: int, seed: int, whole_batches_of: int = 0) -> Iterator[np.ndarray]:
    """The per-epoch sample order, one seeded permutation per epoch, shared by both backends.

    Made one epoch at a time: building every epoch's order first grew a worker to 4.6 GB in 25 s
    for 10^20 epochs. ``whole_batches_of`` > 0 (``train.drop_last``) trims each order to a multiple
    of that batch size (checked here, before any epoch): the images dropped differ per epoch, as
    with a shuffling loader's ``drop_last``.
    """
    keep = epoch_length(n, whole_batches_of)
    return _orders(n, epochs, seed, keep)


def epoch_length(n: int, whole_batches_of: int = 0) -> int:
    """The images one epoch trains on: all ``n``, or whole batches of ``whole_batches_of`` (drop_last)."""
    if whole_batches_of <= 0:
        return n
    keep = n - n % whole_batches_of
    if keep == 0:
        raise ValueError(f"train.drop_last: {n} training images make no whole batch of {whole_batches_of}")
    return keep


def _orders(n: int, epochs: int, seed: int, keep: int) -> Iterator[np.ndarray]:
    rng = np.random.default_rng([seed, 2])
    for _ in range(epochs):
        yield rng.permutation(n).astype(np.int64)[:keep]
