"""Which datasets exist, where their files are looked for, and what stands in offline.

Resolution order for a dataset's cache file ``<file>``: the explicit ``data_dir``
(``--data-dir``), then ``$BENCH_DATA_DIR``, then the user cache (``$BENCH_CACHE``,
default ``~/.cache/bench``); within a directory, ``file`` before its ``alternatives``
(the names ``python -m bench data fetch/import`` write). Pointing ``BENCH_DATA_DIR``
at ``../shared/data`` makes ``mnist`` and ``cifar10`` resolve to the real files there.
When no file is there, the dataset's embedded default is used unless the spec says
``fallback="none"``; something there that is not a readable dataset file (a folder, a
FIFO, a link loop) is an error naming it, never a reason to fall back.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from datasets import embedded
from datasets.arrays import ArrayDataset, ClassCounts
from datasets.npz import image_shape as file_image_shape
from datasets.npz import read_npz, train_counts
from datasets.shapes import CLASSES as SHAPES

T = TypeVar("T")


class DatasetNotFound(FileNotFoundError):
    """No file for a dataset and no fallback allowed; the message lists where it looked."""


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    file: str  # cache-form file name
    description: str
    embedded: Callable[[int], ArrayDataset] | None = None  # offline default, by seed
    alternatives: tuple[str, ...] = ()  # other cache-file names, e.g. written by `bench data import`
    stand_in: str = ""  # another dataset used when this one has no file (before any embedded default)
    # (H, W, C) of the embedded default's images: a task's layer list is checked against it before anything
    # starts, without making the images (tests/test_datasets.py checks it against ``embedded``)
    embedded_shape: tuple[int, int, int] | None = None
    # its training images per class, by the names a task's dataset.classes may give them: a batch is checked
    # against them before anything starts, without making the images (tests/test_datasets.py checks them too)
    embedded_train: ClassCounts | None = None

    @property
    def files(self) -> tuple[str, ...]:
        """Every cache-file name this dataset may have, in the order they are looked for."""
        return (self.file, *self.alternatives)


DATASETS: dict[str, DatasetInfo] = {
    d.name: d
    for d in (
        DatasetInfo(
            "mnist",
            "mnist.npz",
            "MNIST handwritten digits, 28x28 grey, 10 classes",
            embedded.digits28,
            embedded_shape=(28, 28, 1),
            # the 80% of each class of scikit-learn's digits that embedded.stratified_split keeps for training
            embedded_train=ClassCounts(tuple("0123456789"), (142, 146, 142, 146, 145, 146, 145, 143, 139, 144)),
        ),
        DatasetInfo(
            "cifar10",
            "cifar10.npz",
            "CIFAR-10, 32x32 RGB, 10 classes",
            embedded.shapes10,
            embedded_shape=(32, 32, 3),
            embedded_train=ClassCounts(SHAPES, (500,) * 10, embedded.CIFAR10_CLASSES),  # 5,000, balanced
        ),
        DatasetInfo(
            "catsdogs",
            "kaggle_dogs_vs_cats_64.npz",
            "Kaggle Dogs vs. Cats (Microsoft Asirra), RGB, 2 classes",
            embedded.shapes_catdog,
            alternatives=("catsdogs.npz",),  # the full PetImages set or an ImageFolder, imported
            embedded_shape=(64, 64, 3),
            embedded_train=ClassCounts(("ring", "h_stripes"), (1000, 1000), ("cat", "dog")),  # 2,000, balanced
        ),
        # No copy of AFHQ can be had on these machines: the Kaggle cat/dog set (or its
        # embedded stand-in) takes its place, and the row's dataset_source says so.
        DatasetInfo("afhq", "afhq.npz", "AFHQ animal faces (StarGAN v2), RGB, cat/dog/wild", stand_in="catsdogs"),
    )
}


def default_cache_dir() -> Path:
    return Path(os.environ.get("BENCH_CACHE") or Path.home() / ".cache" / "bench")


def _checked_dir(d: Path, origin: str) -> Path:
    """``d`` if it is a folder this process can list; `run`, `list` and `data` all refuse it here (exit 2)."""
    if not os.path.exists(d):
        raise DatasetNotFound(f"data directory {d} does not exist (from {origin})")
    if not os.path.isdir(d):
        raise DatasetNotFound(f"data directory {d} is not a directory (from {origin})")
    if not os.access(d, os.R_OK | os.X_OK):  # its files would look absent: the embedded stand-in, silently
        raise DatasetNotFound(f"data directory {d} cannot be read: permission denied (from {origin})")
    return d


def search_dirs(data_dir: str | Path | None = None) -> list[Path]:
    """The directories searched for cache files, in order."""
    dirs = []
    if data_dir:
        dirs.append(_checked_dir(Path(data_dir), "--data-dir"))
    env = os.environ.get("BENCH_DATA_DIR")
    if env:
        dirs.append(_checked_dir(Path(env), "BENCH_DATA_DIR"))
    dirs.append(default_cache_dir())
    return dirs


def find_file(name: str, data_dir: str | Path | None = None) -> Path | None:
    """The first of the dataset's files present in the search folders. Present is anything at that name (a
    folder, a FIFO, a link loop: ``read_npz`` refuses it by name); only an absent file means the fallback."""
    info = DATASETS[name]
    for d in search_dirs(data_dir):
        for file in info.files:
            path = d / file
            if os.path.isfile(path):
                return path.resolve()
            if os.path.lexists(path):
                return path.absolute()  # resolving a link loop would raise
    return None


def load(name: str, data_dir: str | Path | None = None, fallback: str = "auto", seed: int = 0) -> ArrayDataset:
    """Load ``name`` from the first cache file found, else its embedded default."""
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})")
    info = DATASETS[name]
    path = find_file(name, data_dir)
    if path is not None:
        return read_npz(path, name)
    if info.stand_in and fallback != "none":
        ds = load(info.stand_in, data_dir, fallback, seed)
        why = f"{name} not found: {info.stand_in} ({ds.source}) stands in for it"
        return replace(ds, source=f"{ds.source} (stand-in for {name})", notes=(*ds.notes, why))
    if fallback == "none" or info.embedded is None:
        raise _not_found(info, data_dir, fallback)
    return info.embedded(seed)


def _not_found(info: DatasetInfo, data_dir: str | Path | None, fallback: str = "auto") -> DatasetNotFound:
    """Where ``load`` looked, and why nothing else stood in: the spec's fallback = "none" turned off a stand-in or an
    embedded default (afhq has no embedded default but a stand-in, which the message had left out), or there is none."""
    looked = ", ".join(str(d / file) for d in search_dirs(data_dir) for file in info.files)
    if fallback == "none" and info.stand_in:
        why = f"the spec says fallback='none', which turns off its stand-in ({info.stand_in})"
    elif fallback == "none" and info.embedded:
        why = "the spec says fallback='none'"
    else:
        why = "it has no embedded default"
    return DatasetNotFound(
        f"dataset {info.name!r} not found (looked in: {looked}) and {why}; "
        f"set BENCH_DATA_DIR or --data-dir to a folder holding {' or '.join(info.files)}, "
        f"or get it with `python -m bench data fetch {info.name}` / `data import {info.name} PATH`"
    )


def check_found(name: str, data_dir: str | Path | None = None, fallback: str = "auto") -> None:
    """DatasetNotFound, as ``load`` would raise it, where ``name`` has neither a file nor a stand-in nor an
    embedded default it may use: a run says so before it starts, not when the task's turn comes."""
    info = DATASETS[name]
    if find_file(name, data_dir) is not None:
        return
    if info.stand_in and fallback != "none":
        check_found(info.stand_in, data_dir, fallback)
    elif fallback == "none" or info.embedded is None:
        raise _not_found(info, data_dir, fallback)


def class_counts(name: str, data_dir: str | Path | None = None, fallback: str = "auto") -> ClassCounts | None:
    """The training images per class ``load`` gives, with the names a task may call the classes, known without
    loading any (``ClassCounts.selected`` counts a task's classes: bench.run.datacheck's batch check): the file's
    labels, else the stand-in's or the embedded default's table. None where they cannot say (an unreadable file, no
    data allowed): ``load`` then says why."""
    return _known(name, data_dir, fallback, train_counts, lambda info: info.embedded_train)


def image_shape(name: str, data_dir: str | Path | None = None, fallback: str = "auto") -> tuple[int, int, int] | None:
    """(H, W, C) of the images ``load`` would give, known without loading any: the file's own header, else the
    stand-in's or the embedded default's shape. None where it cannot be known so (an unreadable file, no data
    allowed): ``load`` then says why."""
    return _known(
        name, data_dir, fallback, file_image_shape, lambda info: None if info.embedded is None else info.embedded_shape
    )


def _known(
    name: str,
    data_dir: str | Path | None,
    fallback: str,
    from_file: Callable[[Path], T | None],
    from_default: Callable[[DatasetInfo], T | None],
) -> T | None:
    """What ``from_file`` reads of the file ``load`` would use, else of the stand-in's, else ``from_default`` of
    the embedded default: the order ``load`` itself follows, so a check up front reads the data a run gets."""
    info = DATASETS[name]
    path = find_file(name, data_dir)
    if path is not None:
        return from_file(path)
    if info.stand_in and fallback != "none":
        return _known(info.stand_in, data_dir, fallback, from_file, from_default)
    return None if fallback == "none" else from_default(info)
