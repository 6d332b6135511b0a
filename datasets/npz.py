"""The on-disk cache form: one ``.npz`` per dataset (the same form as ``../shared/data``).

Keys: ``x_train, y_train, x_test, y_test`` (+ optional ``x_val, y_val``) and
``classes``; images uint8 NHWC, labels integers. Nothing is pickled.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from datasets.arrays import ArrayDataset, Split

REQUIRED_KEYS = ("x_train", "y_train", "x_test", "y_test", "classes")


class DatasetFileError(ValueError):
    """A dataset file exists but is not in the cache form; the message says what is wrong."""


def read_npz(path: Path, name: str) -> ArrayDataset:
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in REQUIRED_KEYS if k not in f.files]
            if missing:
                raise DatasetFileError(f"{path}: missing key(s) {', '.join(missing)} (has: {', '.join(f.files)})")
            arrays = {k: f[k] for k in REQUIRED_KEYS}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        if isinstance(e, DatasetFileError):
            raise
        raise DatasetFileError(f"{path}: not a readable .npz file: {e}") from None
    for split in ("train", "test"):
        x = arrays[f"x_{split}"]
        if x.dtype != np.uint8 or x.ndim != 4:
            raise DatasetFileError(f"{path}: x_{split} must be uint8 (N, H, W, C), got {x.dtype} {x.shape}")
    classes = tuple(str(c) for c in arrays["classes"])
    for split in ("train", "test"):
        y = arrays[f"y_{split}"]
        if len(y) and (y.min() < 0 or y.max() >= len(classes)):
            raise DatasetFileError(f"{path}: y_{split} has labels outside 0..{len(classes) - 1}")
    return ArrayDataset(
        name=name,
        train=Split(arrays["x_train"], arrays["y_train"].astype(np.int64)),
        test=Split(arrays["x_test"], arrays["y_test"].astype(np.int64)),
        classes=classes,
        source=f"file:{path}",
    )


def write_npz(ds: ArrayDataset, path: Path, compressed: bool = False) -> Path:
    """Write ``ds`` in the cache form; atomically, so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    save = np.savez_compressed if compressed else np.savez
    with open(tmp, "wb") as f:
        save(
            f,
            x_train=ds.train.x,
            y_train=ds.train.y,
            x_test=ds.test.x,
            y_test=ds.test.y,
            classes=np.array(ds.classes),
        )
    tmp.replace(path)
    return path
