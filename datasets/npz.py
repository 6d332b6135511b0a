"""The on-disk cache form: one ``.npz`` per dataset (the same form as ``../shared/data``).

Keys: ``x_train, y_train, x_test, y_test`` (+ optional ``x_val, y_val``) and
``classes``; images uint8 NHWC (C 1 or 3), labels integers (or whole-number floats) in
range of ``classes``. Nothing is pickled.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from datasets.arrays import ArrayDataset, Split

REQUIRED_KEYS = ("x_train", "y_train", "x_test", "y_test", "classes")


class DatasetFileError(ValueError):
    """A dataset file exists but is not in the cache form; the message says what is wrong."""


def _load_arrays(path: Path) -> dict[str, np.ndarray]:
    """The required arrays of an .npz file, each read without pickle; every failure names the file (and array)."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as e:
        raise DatasetFileError(f"{path}: cannot be read: {e.strerror or e}") from None
    if not zipfile.is_zipfile(path):
        kind = "a single .npy array" if head.startswith(b"\x93NUMPY") else "not a zip archive"
        raise DatasetFileError(f"{path}: not an .npz file (a zip of .npy arrays): {kind}, starts with {head!r}")
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in REQUIRED_KEYS if k not in f.files]
            if missing:
                raise DatasetFileError(f"{path}: missing key(s) {', '.join(missing)} (has: {', '.join(f.files)})")
            arrays = {}
            for key in REQUIRED_KEYS:
                try:
                    arrays[key] = f[key]
                except (OSError, ValueError, EOFError, RuntimeError, zipfile.BadZipFile, zlib.error) as e:
                    why = "holds Python objects (pickled data), which are never loaded" if "pickle" in str(e) else e
                    raise DatasetFileError(f"{path}: array {key} is not readable: {why}") from None
                if not isinstance(arrays[key], np.ndarray):  # numpy hands back a member without the .npy header raw
                    raise DatasetFileError(f"{path}: {key}.npy is not a .npy array (no NPY header)")
            return arrays
    except (OSError, ValueError, EOFError, RuntimeError, zipfile.BadZipFile, zlib.error) as e:
        # zipfile: BadZipFile (bad CRC, header), NotImplementedError (a RuntimeError) for an unknown zip version
        # or compression, RuntimeError for an encrypted member; zlib.error for a damaged compressed member
        if isinstance(e, DatasetFileError):
            raise
        raise DatasetFileError(f"{path}: not a readable .npz file: {e}") from None


def _labels(path: Path, key: str, y: np.ndarray, n_images: int, n_classes: int) -> np.ndarray:
    """``y`` as int64 class indices: whole numbers in 0..n_classes-1, one per image."""
    if y.ndim != 1 or len(y) != n_images:
        raise DatasetFileError(f"{path}: {key} must hold one label per image ({n_images}), got shape {y.shape}")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all():
            raise DatasetFileError(f"{path}: {key} has NaN or infinite labels")
        if (y != np.round(y)).any():
            raise DatasetFileError(f"{path}: {key} has fractional labels (e.g. {y[y != np.round(y)][0]})")
    elif y.dtype.kind not in "iu":
        raise DatasetFileError(f"{path}: {key} must hold integer class indices, got {y.dtype}")
    if y.min() < 0 or y.max() >= n_classes:
        raise DatasetFileError(
            f"{path}: {key} has labels outside 0..{n_classes - 1} (min {y.min()}, max {y.max()}; {n_classes} classes)"
        )
    return y.astype(np.int64)


def _images(path: Path, key: str, x: np.ndarray) -> None:
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[3] not in (1, 3):
        raise DatasetFileError(f"{path}: {key} must be uint8 (N, H, W, C) with C 1 or 3, got {x.dtype} {x.shape}")
    if 0 in x.shape:
        raise DatasetFileError(f"{path}: {key} is empty (shape {x.shape}); every split needs images")


def _class_names(path: Path, classes: np.ndarray) -> tuple[str, ...]:
    if classes.ndim != 1 or classes.dtype.kind not in "USiu" or len(classes) == 0:
        raise DatasetFileError(
            f"{path}: classes must be a non-empty one-dimensional array of names, got {classes.dtype} {classes.shape}"
        )
    names = tuple(c.decode("utf-8", "replace") if isinstance(c, bytes) else str(c) for c in classes.tolist())
    if len(set(names)) < len(names):
        raise DatasetFileError(f"{path}: classes repeats a name: {list(names)}")
    return names


def read_npz(path: Path, name: str) -> ArrayDataset:
    """Read and check a dataset file: any file from elsewhere is untrusted, so every way it can be wrong is a
    DatasetFileError naming the file and the array, never a numpy error or a silently wrong dataset."""
    arrays = _load_arrays(path)
    for split in ("train", "test"):
        _images(path, f"x_{split}", arrays[f"x_{split}"])
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise DatasetFileError(
            f"{path}: x_train images are {arrays['x_train'].shape[1:]} (H, W, C), x_test images "
            f"{arrays['x_test'].shape[1:]}: both splits need the same height, width and channels"
        )
    classes = _class_names(path, arrays["classes"])
    y = {s: _labels(path, f"y_{s}", arrays[f"y_{s}"], len(arrays[f"x_{s}"]), len(classes)) for s in ("train", "test")}
    return ArrayDataset(
        name=name,
        train=Split(arrays["x_train"], y["train"]),
        test=Split(arrays["x_test"], y["test"]),
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
