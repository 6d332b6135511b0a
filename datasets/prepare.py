"""Shape a loaded dataset to what a task asks for: class subset, subsample, channels, size.

Done once, in numpy, before either backend sees the data, so both frameworks train
on identical uint8 arrays (DESIGN.md rule 2).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from PIL import Image

from datasets.arrays import ArrayDataset, Split


def select_classes(ds: ArrayDataset, names: tuple[str, ...]) -> ArrayDataset:
    """Keep only ``names`` (own or stood-for class names) and relabel them 0..k-1 in the given order."""
    old = np.array([ds.class_index(n) for n in names])
    if twice := ds.names.twice(names):  # refused up front (bench.run.datacheck); the data may have changed since
        raise ValueError(f"dataset {ds.name!r}: classes {twice[0]!r} and {twice[1]!r} name one class twice")
    lut = np.full(len(ds.classes), -1, np.int64)
    lut[old] = np.arange(len(names))

    def sub(s: Split) -> Split:
        keep = np.isin(s.y, old)
        return Split(s.x[keep], lut[s.y[keep]])

    stands_for = tuple(ds.stands_for[i] for i in old) if ds.stands_for else ()
    classes = tuple(ds.classes[i] for i in old)
    kept = ds.names.keep(names)  # what a name of this data is stays what it was on the whole data
    return replace(ds, train=sub(ds.train), test=sub(ds.test), classes=classes, stands_for=stands_for, selected=kept)


def subsample(split: Split, n: int, rng: np.random.Generator) -> Split:
    """A seeded random subset of ``n`` items, stratified by class; all when ``n`` is 0 or too big."""
    if n <= 0 or n >= len(split):
        return split
    classes, counts = np.unique(split.y, return_counts=True)
    quota = np.floor(counts / counts.sum() * n).astype(int)
    quota[np.argsort(-(counts / counts.sum() * n - quota))[: n - quota.sum()]] += 1
    idx = np.concatenate(
        [rng.choice(np.flatnonzero(split.y == c), q, replace=False) for c, q in zip(classes, quota, strict=False)]
    )
    return split.take(np.sort(idx))


def convert_channels(x: np.ndarray, channels: int) -> np.ndarray:
    if channels == 0 or x.shape[-1] == channels:
        return x
    if channels == 3 and x.shape[-1] == 1:
        return np.repeat(x, 3, axis=-1)
    if channels == 1 and x.shape[-1] == 3:  # ITU-R 601 luma, as PIL's "L" mode
        luma = x.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        return luma.round().clip(0, 255).astype(np.uint8)[..., None]
    raise ValueError(f"cannot convert {x.shape[-1]} channels to {channels}")


def resize(x: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of every image to ``size`` x ``size`` (PIL, antialiased when shrinking)."""
    if size == 0 or x.shape[1:3] == (size, size):
        return x
    out = np.empty((len(x), size, size, x.shape[-1]), np.uint8)
    for i, img in enumerate(x):
        pil = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img)
        out[i] = np.asarray(pil.resize((size, size), Image.Resampling.BILINEAR)).reshape(size, size, -1)
    return out


def prepare(
    ds: ArrayDataset,
    *,
    classes: tuple[str, ...] = (),
    max_train: int = 0,
    max_test: int = 0,
    channels: int = 0,
    image_size: int = 0,
    seed: int = 0,
) -> ArrayDataset:
    """Apply a task's dataset part; subsampling before resizing keeps it cheap."""
    if classes:
        ds = select_classes(ds, classes)
    rng = np.random.default_rng([seed, 1])  # own stream: independent of the epoch order
    train, test = subsample(ds.train, max_train, rng), subsample(ds.test, max_test, rng)

    def shape(s: Split) -> Split:
        return Split(resize(convert_channels(s.x, channels), image_size), s.y)

    return replace(ds, train=shape(train), test=shape(test))
