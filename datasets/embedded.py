"""Embedded offline defaults: real or procedural data that ships with the code or its deps.

Used when a real dataset is not on disk, so ``python -m bench all`` runs anywhere
with no download. The result row always says ``dataset_source=embedded:...``.
"""

from __future__ import annotations

import gzip
import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from datasets.arrays import ArrayDataset, Split

# CIFAR-10's classes in label order; Shapes-10's class i stands for class i here.
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


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


def _sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """The (1797, 8, 8) images (0..16) and labels of ``sklearn.datasets.load_digits``, read from the file it
    reads: importing scikit-learn takes 2.5 s on 2 cores, 80x the read, and every quick run paid it."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("scikit-learn is not installed: it carries the embedded digits")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"
    with gzip.open(path) as f:
        table = np.loadtxt(f, delimiter=",")
    return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)


@lru_cache(maxsize=4)  # one suite run loads a stand-in for several tasks and transfer targets
def digits28(seed: int = 0) -> ArrayDataset:
    """scikit-learn's 1,797 real 8x8 handwritten digits, brought to MNIST's form.

    Like MNIST, each digit is scaled into a 20x20 box (bilinear) and centred on a
    28x28 black canvas, with ink as bright pixels in 0..255.
    """
    images, target = _sklearn_digits()
    small = (images * (255.0 / 16.0)).round().astype(np.uint8)
    x = np.zeros((len(small), 28, 28, 1), np.uint8)
    for i, img in enumerate(small):
        x[i, 4:24, 4:24, 0] = np.asarray(Image.fromarray(img).resize((20, 20), Image.Resampling.BILINEAR))
    y = target.astype(np.int64)
    tr, te = stratified_split(y, test_fraction=0.2, seed=seed)
    return ArrayDataset(
        name="mnist",
        train=Split(x[tr], y[tr]),
        test=Split(x[te], y[te]),
        classes=tuple(str(d) for d in range(10)),
        source="embedded:sklearn-digits-28x28",
        notes=("stand-in for MNIST: scikit-learn's 8x8 digits upscaled to 28x28",),
    )


@lru_cache(maxsize=4)
def shapes10(seed: int = 0, n_train: int = 5000, n_test: int = 1000) -> ArrayDataset:
    """Procedural 32x32 RGB 10-class shapes: the offline stand-in for CIFAR-10."""
    from datasets.shapes import make_shapes10

    train, test, classes = make_shapes10(n_train, n_test, seed=seed)
    note = "stand-in for CIFAR-10: procedurally generated shapes, class by shape not colour"
    return ArrayDataset("cifar10", train, test, classes, "embedded:procedural-shapes10", (note,), CIFAR10_CLASSES)


@lru_cache(maxsize=4)
def shapes_catdog(seed: int = 0, n_train: int = 2000, n_test: int = 1000, size: int = 64) -> ArrayDataset:
    """The cat/dog stand-in: Shapes-10's "cat" and "dog" classes (ring, h_stripes), drawn clean and centred.

    Same classes as the CIFAR-10 stand-in, another domain (large centred objects, no
    clutter, little noise, 64 px like the Kaggle set), so transfer between the two
    shows a real domain gap offline. Own seed stream: no image is shared with Shapes-10.
    """
    from datasets.shapes import CLEAN, make_shapes

    ids = (CIFAR10_CLASSES.index("cat"), CIFAR10_CLASSES.index("dog"))
    train, test, classes = make_shapes(n_train, n_test, seed=seed + 7919, size=size, domain=CLEAN, class_ids=ids)
    note = "stand-in for cats vs dogs: Shapes-10's cat/dog stand-in classes, large, centred and clean"
    source = "embedded:procedural-shapes-catdog-clean"
    return ArrayDataset("catsdogs", train, test, classes, source, (note,), ("cat", "dog"))
