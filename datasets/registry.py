"""Which datasets exist, where their files are looked for, and what stands in offline.

Resolution order for a dataset's cache file ``<file>``: the explicit ``data_dir``
(``--data-dir``), then ``$BENCH_DATA_DIR``, then the user cache (``$BENCH_CACHE``,
default ``~/.cache/bench``); within a directory, ``file`` before its ``alternatives``
(the names ``python -m bench data fetch/import`` write). Pointing ``BENCH_DATA_DIR``
at ``../shared/data`` makes ``mnist`` and ``cifar10`` resolve to the real files there.
When no file is found, the dataset's embedded default is used unless the spec says
``fallback="none"``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from datasets import embedded
from datasets.arrays import ArrayDataset
from datasets.npz import read_npz


class DatasetNotFound(FileNotFoundError):
    """No file for a dataset and no fallback allowed; the message lists where it looked."""


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    file: str  # cache-form file name
    description: str
    embedded: Callable[[int], ArrayDataset] | None = None  # offline default, by seed
    alternatives: tuple[str, ...] = ()  # other cache-file names, e.g. written by `bench data import`

    @property
    def files(self) -> tuple[str, ...]:
        """Every cache-file name this dataset may have, in the order they are looked for."""
        return (self.file, *self.alternatives)


DATASETS: dict[str, DatasetInfo] = {
    d.name: d
    for d in (
        DatasetInfo("mnist", "mnist.npz", "MNIST handwritten digits, 28x28 grey, 10 classes", embedded.digits28),
        DatasetInfo("cifar10", "cifar10.npz", "CIFAR-10, 32x32 RGB, 10 classes", embedded.shapes10),
        DatasetInfo(
            "catsdogs",
            "kaggle_dogs_vs_cats_64.npz",
            "Kaggle Dogs vs. Cats (Microsoft Asirra), RGB, 2 classes",
            embedded.catsdogs_shapes,
            alternatives=("catsdogs.npz",),  # the full PetImages set or an ImageFolder, imported
        ),
        DatasetInfo("afhq", "afhq.npz", "AFHQ animal faces (StarGAN v2), RGB, cat/dog/wild"),
    )
}


def default_cache_dir() -> Path:
    return Path(os.environ.get("BENCH_CACHE") or Path.home() / ".cache" / "bench")


def search_dirs(data_dir: str | Path | None = None) -> list[Path]:
    """The directories searched for cache files, in order."""
    dirs = []
    if data_dir:
        d = Path(data_dir)
        if not d.is_dir():
            raise DatasetNotFound(f"data directory {d} does not exist (from --data-dir)")
        dirs.append(d)
    env = os.environ.get("BENCH_DATA_DIR")
    if env:
        d = Path(env)
        if not d.is_dir():
            raise DatasetNotFound(f"data directory {d} does not exist (from BENCH_DATA_DIR)")
        dirs.append(d)
    dirs.append(default_cache_dir())
    return dirs


def find_file(name: str, data_dir: str | Path | None = None) -> Path | None:
    info = DATASETS[name]
    for d in search_dirs(data_dir):
        for file in info.files:
            if (d / file).is_file():
                return (d / file).resolve()
    return None


def load(name: str, data_dir: str | Path | None = None, fallback: str = "auto", seed: int = 0) -> ArrayDataset:
    """Load ``name`` from the first cache file found, else its embedded default."""
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})")
    info = DATASETS[name]
    path = find_file(name, data_dir)
    if path is not None:
        return read_npz(path, name)
    if fallback == "none" or info.embedded is None:
        looked = ", ".join(str(d / file) for d in search_dirs(data_dir) for file in info.files)
        why = "the spec says fallback='none'" if info.embedded else "it has no embedded default"
        raise DatasetNotFound(
            f"dataset {name!r} not found (looked in: {looked}) and {why}; "
            f"set BENCH_DATA_DIR or --data-dir to a folder holding {' or '.join(info.files)}, "
            f"or get it with `python -m bench data fetch {name}` / `data import {name} PATH`"
        )
    return info.embedded(seed)
