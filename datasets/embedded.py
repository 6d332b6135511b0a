"""Embedded offline defaults: real or procedural data that ships with the code or its deps.

Used when a real dataset is not on disk, so ``python -m bench all`` runs anywhere
with no download. The result row always says ``dataset_source=embedded:...``.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from datasets.arrays import ArrayDataset, Split


def stratified_split(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a seeded, per-class split (every class keeps its share in both parts)."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test = round(len(idx) * test_fraction)
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def digits28(seed: int = 0) -> ArrayDataset:
    """scikit-learn's 1,797 real 8x8 handwritten digits, brought to MNIST's form.

    Like MNIST, each digit is scaled into a 20x20 box (bilinear) and centred on a
    28x28 black canvas, with ink as bright pixels in 0..255.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    small = (digits.images * (255.0 / 16.0)).round().astype(np.uint8)
    x = np.zeros((len(small), 28, 28, 1), np.uint8)
    for i, img in enumerate(small):
        x[i, 4:24, 4:24, 0] = np.asarray(Image.fromarray(img).resize((20, 20), Image.BILINEAR))
    y = digits.target.astype(np.int64)
    tr, te = stratified_split(y, test_fraction=0.2, seed=seed)
    return ArrayDataset(
        name="mnist",
        train=Split(x[tr], y[tr]),
        test=Split(x[te], y[te]),
        classes=tuple(str(d) for d in range(10)),
        source="embedded:sklearn-digits-28x28",
        notes=("stand-in for MNIST: scikit-learn's 8x8 digits upscaled to 28x28",),
    )


def shapes10(seed: int = 0, n_train: int = 5000, n_test: int = 1000) -> ArrayDataset:
    """Procedural 32x32 RGB 10-class shapes: the offline stand-in for CIFAR-10."""
    from datasets.shapes import make_shapes10

    train, test, classes = make_shapes10(n_train, n_test, seed=seed)
    return ArrayDataset(
        name="cifar10",
        train=train,
        test=test,
        classes=classes,
        source="embedded:procedural-shapes10",
        notes=("stand-in for CIFAR-10: procedurally generated shapes, class by shape not colour",),
    )


def catsdogs_shapes(seed: int = 0, n_train: int = 2500, n_test: int = 1000) -> ArrayDataset:
    """Procedural 32x32 RGB, 2 classes ("cat" = disks, "dog" = crosses): the offline stand-in for cats vs dogs.

    Two classes of Shapes-10 (same renderer, same distractors), so ``python -m bench all``
    can run the cat/dog tasks with no download; about a fifth of the generated images are kept.
    """
    from datasets.shapes import CLASSES, make_shapes10

    train, test, _ = make_shapes10(n_train, n_test, seed=seed)
    pick = (CLASSES.index("disk"), CLASSES.index("cross"))

    def two(split: Split) -> Split:
        keep = np.isin(split.y, pick)
        return Split(split.x[keep], (split.y[keep] == pick[1]).astype(np.int64))

    return ArrayDataset(
        name="catsdogs",
        train=two(train),
        test=two(test),
        classes=("cat", "dog"),
        source="embedded:procedural-shapes-2class",
        notes=("stand-in for cats vs dogs: procedural disks ('cat') vs crosses ('dog'), 32x32",),
    )
