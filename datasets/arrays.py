"""The canonical in-memory dataset: uint8 NHWC images, int64 labels, class names.

Every loader (real file, cache, embedded default) returns this one form, so the
runner can hand both backends byte-identical arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Split:
    """One split of a dataset: images ``x`` (N, H, W, C) uint8 and labels ``y`` (N,) int64."""

    x: np.ndarray
    y: np.ndarray

    def __post_init__(self) -> None:
        if self.x.dtype != np.uint8 or self.x.ndim != 4:
            raise ValueError(f"x must be uint8 (N, H, W, C), got {self.x.dtype} {self.x.shape}")
        if self.y.ndim != 1 or len(self.y) != len(self.x):
            raise ValueError(f"y must be (N,) matching x, got {self.y.shape} for {len(self.x)} images")
        if self.y.dtype != np.int64:
            object.__setattr__(self, "y", self.y.astype(np.int64))

    def __len__(self) -> int:
        return len(self.y)

    def take(self, index: np.ndarray) -> Split:
        return Split(self.x[index], self.y[index])


@dataclass(frozen=True)
class ClassCounts:
    """A split's images per class, with the names a task's ``dataset.classes`` may call them: what a run checks
    its batch size against before it loads an image (a file's label array, an embedded default's table)."""

    classes: tuple[str, ...]
    counts: tuple[int, ...]
    stands_for: tuple[str, ...] = ()

    def index(self, name: str) -> int | None:
        """The class ``name`` is, found as ``ArrayDataset.class_index`` finds it (its own name first); None where
        the data has no such class."""
        if name in self.classes:
            return self.classes.index(name)
        return self.stands_for.index(name) if name in self.stands_for else None

    def named(self) -> str:
        """The classes as ``ArrayDataset.class_index``'s error lists them: what a task may call them."""
        also = f" standing for {list(self.stands_for)}" if self.stands_for else ""
        return f"{list(self.classes)}{also}"

    def selected(self, names: Sequence[str]) -> int | None:
        """Images of the classes ``names`` (all of them when empty), each found as ``index`` finds it; None where
        one is not there (``bench.run.datacheck`` refuses the task then, naming it)."""
        if not names:
            return sum(self.counts)
        index = [self.index(n) for n in names]
        if None in index:
            return None
        return sum(self.counts[i] for i in {i for i in index if i is not None})


@dataclass(frozen=True)
class ArrayDataset:
    """A dataset in canonical form plus where it came from (shown in every result row)."""

    name: str
    train: Split
    test: Split
    classes: tuple[str, ...]
    source: str  # e.g. "file:/data/mnist.npz" or "embedded:sklearn-digits-28"
    notes: tuple[str, ...] = field(default=())
    # A stand-in's classes say what they stand for: class i of Shapes-10 stands for
    # CIFAR-10's class i, so a spec that names "cat" resolves on real and stand-in data.
    stands_for: tuple[str, ...] = field(default=())

    def class_index(self, name: str) -> int:
        """Index of class ``name``, by its own name or by the real class it stands for."""
        if name in self.classes:
            return self.classes.index(name)
        if name in self.stands_for:
            return self.stands_for.index(name)
        also = f" standing for {list(self.stands_for)}" if self.stands_for else ""
        raise ValueError(f"dataset {self.name!r} has no class {name!r} (has: {list(self.classes)}{also})")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        h, w, c = self.train.x.shape[1:]
        return int(h), int(w), int(c)

    @property
    def n_classes(self) -> int:
        return len(self.classes)
