"""The canonical in-memory dataset: uint8 NHWC images, int64 labels, class names.

Every loader (real file, cache, embedded default) returns this one form, so the
runner can hand both backends byte-identical arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

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
class ClassNames:
    """The names a task may call a dataset's classes, and the one place such a name becomes a class: up front
    (``bench.run.datacheck``, from a label table) and once the data is loaded (the class subset, a transfer's
    class map), so the two cannot disagree.

    A class is found by its own name first, then by the real class a stand-in's class stands for (class i of
    Shapes-10 stands for CIFAR-10's class i, so a task naming "cat" runs on real and stand-in data). ``kept``:
    the classes a task keeps (``dataset.classes``), in the order of the model's outputs. A name is found among
    every class before it is looked for among the kept ones: one that is a left-out class's own name and a kept
    class's stand-in name is the left-out class, not predicted, whichever side asks."""

    classes: tuple[str, ...]
    stands_for: tuple[str, ...] = ()
    kept: tuple[int, ...] | None = None  # None: every class, in its own order

    def find(self, name: str) -> int | None:
        """The class, of them all, that ``name`` is (its own name first); None where the data has no such class."""
        if name in self.classes:
            return self.classes.index(name)
        return self.stands_for.index(name) if name in self.stands_for else None

    def twice(self, names: Sequence[str]) -> tuple[str, str] | None:
        """The first two of ``names`` that are one class (each found as ``find`` finds it: "cat" and Shapes-10's
        "ring" that stands for it, or one name repeated); None where each names a class of its own. A task's
        classes are its model's outputs: two names of one class left an output no image is labelled with."""
        seen: dict[int, str] = {}
        for name in names:
            i = self.find(name)
            if i is not None and i in seen:
                return seen[i], name
            if i is not None:
                seen[i] = name
        return None

    def index(self, name: str) -> int | None:
        """The model output that predicts class ``name``: its class's place among the kept ones; None where the
        data has no such class or the task left it out."""
        i = self.find(name)
        if i is None or self.kept is None:
            return i
        return self.kept.index(i) if i in self.kept else None

    def output(self, name: str) -> int:
        """``index``, or a ValueError naming the classes the model predicts."""
        i = self.index(name)
        if i is None:
            raise ValueError(f"the model is not trained on a class {name!r} (its classes: {self.named()})")
        return i

    def keep(self, names: Sequence[str]) -> ClassNames:
        """Only the classes ``names`` (each found as ``index`` finds it), in their order; all of these when empty."""
        if not names:
            return self
        here = range(len(self.classes)) if self.kept is None else self.kept
        return replace(self, kept=tuple(here[self.output(n)] for n in names))

    def named(self) -> str:
        """The kept classes as a task may call them: their own names and what they stand for."""
        here = range(len(self.classes)) if self.kept is None else self.kept
        also = f" standing for {[self.stands_for[i] for i in here]}" if self.stands_for else ""
        return f"{[self.classes[i] for i in here]}{also}"


@dataclass(frozen=True)
class ClassCounts:
    """A split's images per class, with the names a task's ``dataset.classes`` may call them: what a run checks
    its batch size against before it loads an image (a file's label array, an embedded default's table)."""

    classes: tuple[str, ...]
    counts: tuple[int, ...]
    stands_for: tuple[str, ...] = ()

    @property
    def names(self) -> ClassNames:
        """The classes' names, resolved as the loaded data's (``ArrayDataset.names``) are."""
        return ClassNames(self.classes, self.stands_for)

    def selected(self, names: Sequence[str]) -> int | None:
        """Images of the classes ``names`` (all of them when empty), each found as ``ClassNames.find`` finds it;
        None where one is not there (``bench.run.datacheck`` refuses the task then, naming it)."""
        if not names:
            return sum(self.counts)
        index = [self.names.find(n) for n in names]
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
    # Where a task kept some classes (datasets.prepare.select_classes): every class's names and the kept ones,
    # so a name resolves here as it did on the whole data (ClassNames); None where every class is here.
    selected: ClassNames | None = None

    @property
    def names(self) -> ClassNames:
        """The one resolver of a class name for this data (``ClassNames``)."""
        return self.selected or ClassNames(self.classes, self.stands_for)

    def class_index(self, name: str) -> int:
        """Index of class ``name``, by its own name or by the real class it stands for (``ClassNames.index``)."""
        i = self.names.index(name)
        if i is None:
            raise ValueError(f"dataset {self.name!r} has no class {name!r} (has: {self.names.named()})")
        return i

    @property
    def image_shape(self) -> tuple[int, int, int]:
        h, w, c = self.train.x.shape[1:]
        return int(h), int(w), int(c)

    @property
    def n_classes(self) -> int:
        return len(self.classes)
