"""The on-disk cache form: one ``.npz`` per dataset (the same form as ``../shared/data``).

Keys: ``x_train, y_train, x_test, y_test`` (+ optional ``x_val, y_val``) and
``classes``; images uint8 NHWC (C 1 or 3), labels integers (or whole-number floats) in
range of ``classes``. Nothing is pickled.
"""

from __future__ import annotations

import contextlib
import math
import os
import stat
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np

from datasets.arrays import ArrayDataset, ClassCounts, Split

REQUIRED_KEYS = ("x_train", "y_train", "x_test", "y_test", "classes")

# Expansion bound for a compressed member (a zip bomb inflates ~1000x: DEFLATE's ceiling is ~1032x).
# Measured on ../shared/data: image arrays inflate 1.09x (CIFAR-10), 1.12x (Dogs vs Cats 64), 4.8x (MNIST),
# label arrays 2x-24x; the embedded stand-ins, saved compressed, 1.1x-2.8x (images), up to 22x (labels).
MAX_EXPANSION = 100
# Below this a member is not held to MAX_EXPANSION (memory still bounds it): sorted int64 labels legitimately
# inflate far more (1M of them, 10 classes: 8 MB from 12 kB, 680x), and 64 MiB per array is harmless.
SMALL_MEMBER = 64 * 2**20

_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


class DatasetFileError(ValueError):
    """A dataset file exists but is not in the cache form; the message says what is wrong."""


def available_memory() -> int | None:
    """Bytes the machine can still give (Linux MemAvailable, else free pages); None where neither is known."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def check_regular_file(path: Path) -> None:
    """A present path that is no regular file is an error naming it, never read: opening a FIFO would block,
    and a folder or a link loop must not pass for an absent file (that would silently use the stand-in)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as e:  # a link loop, a dangling link, a folder we may not enter
        raise DatasetFileError(f"{path}: cannot be read: {e.strerror or e}") from None
    if not stat.S_ISREG(mode):
        kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
        raise DatasetFileError(f"{path}: is {kind}, not a dataset file (an .npz file)")


def _member(zf: zipfile.ZipFile, key: str) -> zipfile.ZipInfo | None:
    """The zip entry ``np.load(...)[key]`` reads: a bare ``key`` first, else ``key.npy``."""
    for name in (key, f"{key}.npy"):
        if name in zf.NameToInfo:
            return zf.getinfo(name)
    return None


def _check_expansion(path: Path, key: str, info: zipfile.ZipInfo, memory: int | None) -> None:
    """The zip's own sizes, before a byte is inflated: a member that would fill memory or inflate like a bomb."""
    if memory is not None and info.file_size > memory:
        raise DatasetFileError(
            f"{path}: {key} is {info.file_size:,} bytes uncompressed, more than the {memory:,} bytes of memory "
            "available: not read"
        )
    if info.file_size > SMALL_MEMBER and info.file_size > MAX_EXPANSION * max(info.compress_size, 1):
        raise DatasetFileError(
            f"{path}: {key} would inflate {info.compress_size:,} compressed bytes to {info.file_size:,} "
            f"(over {MAX_EXPANSION}x; image data compresses at most ~5x): refused as a zip bomb, not read"
        )


def npy_header(path: Path, key: str, f: IO[bytes]) -> tuple[tuple[int, ...], np.dtype, int]:
    """Shape, dtype and header length of the .npy array ``f`` starts with, reading only its header."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
    except ValueError:
        raise DatasetFileError(f"{path}: {key}.npy is not a .npy array (no NPY header)") from None
    read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
    try:
        shape, _, dtype = read_header(f)
    except ValueError as e:
        raise DatasetFileError(f"{path}: {key}.npy has an unreadable .npy header: {e}") from None
    if any(n < 0 for n in shape):
        raise DatasetFileError(f"{path}: {key}.npy header declares a negative dimension: shape {shape}")
    return tuple(shape), dtype, f.tell()


def image_shape(path: Path) -> tuple[int, int, int] | None:
    """(H, W, C) of the file's training images, from ``x_train``'s .npy header alone (no image is read: a cache
    file can be GBs). None where the header cannot say: reading the file (``read_npz``) names what is wrong."""
    try:
        check_regular_file(path)
        with zipfile.ZipFile(path) as zf:
            info = _member(zf, "x_train")
            if info is None:
                return None
            with zf.open(info) as f:
                shape = npy_header(path, "x_train", f)[0]
    except (OSError, ValueError, EOFError, RuntimeError, zipfile.BadZipFile, zlib.error):
        return None
    if len(shape) != 4 or shape[3] not in (1, 3) or 0 in shape[1:]:
        return None
    return (shape[1], shape[2], shape[3])


def train_counts(path: Path) -> ClassCounts | None:
    """The file's training images per class, from ``y_train`` and ``classes`` alone (no image is read: a cache
    file can be GBs), each array held to the same size checks as ``read_npz``'s. None where these two cannot
    say: reading the file names what is wrong."""
    memory = available_memory()
    try:
        check_regular_file(path)
        if not zipfile.is_zipfile(path):
            return None
        with np.load(path, allow_pickle=False) as f:
            total = 0
            for key in ("y_train", "classes"):
                info = _member(f.zip, key)
                if info is None:
                    return None
                _check_expansion(path, key, info, memory)
                with f.zip.open(info) as member:
                    total = _check_declared(path, key, member, info.file_size, total, memory)
            classes = _class_names(path, f["classes"])
            y = np.asarray(f["y_train"])
            labels = _labels(path, "y_train", y, len(y) if y.ndim == 1 else -1, len(classes))
    except (OSError, ValueError, EOFError, RuntimeError, zipfile.BadZipFile, zlib.error):
        return None
    return ClassCounts(classes, tuple(int(n) for n in np.bincount(labels, minlength=len(classes))))


def _check_declared(path: Path, key: str, f: IO[bytes], file_size: int, total: int, memory: int | None) -> int:
    """``total`` plus the bytes this member's header declares, refused over ``memory`` or unlike its zip entry."""
    shape, dtype, header_len = npy_header(path, key, f)
    declared = math.prod(shape) * dtype.itemsize
    if memory is not None and total + declared > memory:
        raise DatasetFileError(
            f"{path}: {key}.npy header declares {dtype} {shape} ({declared:,} bytes; {total + declared:,} with "
            f"the arrays before it), more than the {memory:,} bytes of memory available: not loaded"
        )
    if not dtype.hasobject and header_len + declared != file_size:  # a pickled array has no fixed size
        raise DatasetFileError(
            f"{path}: {key}.npy header declares {dtype} {shape} ({declared:,} bytes of data) but its zip entry "
            f"holds {file_size - header_len:,} bytes of data"
        )
    return total + declared


def check_sizes(path: Path, zf: zipfile.ZipFile, memory: int | None) -> None:
    """Every required array's size, from its zip entry and .npy header, against ``memory`` (bytes; None:
    unknown) before any is allocated: numpy allocates whatever a header declares, 10^10 images included."""
    total = 0
    for key in REQUIRED_KEYS:
        info = _member(zf, key)
        if info is None:
            continue  # np.load names the missing keys
        _check_expansion(path, key, info, memory)
        with zf.open(info) as f:
            total = _check_declared(path, key, f, info.file_size, total, memory)


def _load_arrays(path: Path, memory: int | None) -> dict[str, np.ndarray]:
    """The required arrays of an .npz file, each read without pickle; every failure names the file (and array)."""
    check_regular_file(path)
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as e:
        raise DatasetFileError(f"{path}: cannot be read: {e.strerror or e}") from None
    if not zipfile.is_zipfile(path):
        kind = (
            "a single .npy array"
            if head.startswith(b"\x93NUMPY")
            else "a zip archive cut short (no end record: truncated?)"
            if head.startswith(b"PK\x03\x04")
            else "not a zip archive"
        )
        raise DatasetFileError(f"{path}: not an .npz file (a zip of .npy arrays): {kind}, starts with {head!r}")
    with _checked_npz(path, memory) as f:
        return _read_members(path, f)


@contextlib.contextmanager
def _checked_npz(path: Path, memory: int | None) -> Iterator[np.lib.npyio.NpzFile]:
    """The .npz file open without pickle, its required keys there and their sizes checked (``check_sizes``); any
    failure, inside the block too, a DatasetFileError naming the file (``_load_arrays``, ``check_without_images``)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in REQUIRED_KEYS if k not in f.files]
            if missing:
                raise DatasetFileError(f"{path}: missing key(s) {', '.join(missing)} (has: {', '.join(f.files)})")
            assert f.zip is not None  # open: the with block holds it
            check_sizes(path, f.zip, memory)
            yield f
    except (OSError, ValueError, EOFError, RuntimeError, zipfile.BadZipFile, zlib.error) as e:
        # zipfile: BadZipFile (bad CRC, header), NotImplementedError (a RuntimeError) for an unknown zip version
        # or compression, RuntimeError for an encrypted member; zlib.error for a damaged compressed member
        if isinstance(e, DatasetFileError):
            raise
        raise DatasetFileError(f"{path}: not a readable .npz file: {e}") from None


def _read_members(path: Path, f: np.lib.npyio.NpzFile, keys: tuple[str, ...] = REQUIRED_KEYS) -> dict[str, np.ndarray]:
    """Each of ``keys``, read without pickle once its size has been checked."""
    arrays = {}
    for key in keys:
        try:
            arrays[key] = f[key]
        except (OSError, ValueError, EOFError, RuntimeError, zipfile.BadZipFile, zlib.error) as e:
            why = "holds Python objects (pickled data), which are never loaded" if "pickle" in str(e) else e
            raise DatasetFileError(f"{path}: array {key} is not readable: {why}") from None
        if not isinstance(arrays[key], np.ndarray):  # numpy hands back a member without the .npy header raw
            raise DatasetFileError(f"{path}: {key}.npy is not a .npy array (no NPY header)")
    return arrays


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


def _images(path: Path, key: str, dtype: np.dtype, shape: tuple[int, ...]) -> None:
    """An image array's dtype and shape (from the array or from its .npy header alone): uint8 (N, H, W, C)."""
    if dtype != np.uint8 or len(shape) != 4 or shape[3] not in (1, 3):
        raise DatasetFileError(f"{path}: {key} must be uint8 (N, H, W, C) with C 1 or 3, got {dtype} {shape}")
    if 0 in shape:
        raise DatasetFileError(f"{path}: {key} is empty (shape {shape}); every split needs images")


def _same_image_shape(path: Path, train: tuple[int, ...], test: tuple[int, ...]) -> None:
    if train[1:] != test[1:]:
        raise DatasetFileError(
            f"{path}: x_train images are {train[1:]} (H, W, C), x_test images "
            f"{test[1:]}: both splits need the same height, width and channels"
        )


def check_without_images(path: Path) -> None:
    """Every check ``read_npz`` makes but on the pixels themselves: the images' dtype and shape from their .npy
    headers, the labels and class names read whole (kilobytes). ``bench data list`` said "cached" with an image
    count for files every run then refused (labels out of range, float32 images, counts that do not match; QA,
    2026-12-07); reading the images too would load GBs on each ``list``."""
    check_regular_file(path)
    if not zipfile.is_zipfile(path):
        raise DatasetFileError(f"{path}: not an .npz file (a zip of .npy arrays)")
    with _checked_npz(path, available_memory()) as f:
        assert f.zip is not None  # open: the with block holds it
        shapes = {}
        for split in ("train", "test"):
            with f.zip.open(f"x_{split}.npy") as member:
                shape, dtype, _ = npy_header(path, f"x_{split}", member)
            _images(path, f"x_{split}", dtype, shape)
            shapes[split] = shape
        _same_image_shape(path, shapes["train"], shapes["test"])
        small = _read_members(path, f, ("y_train", "y_test", "classes"))
    classes = _class_names(path, small["classes"])
    for split in ("train", "test"):
        _labels(path, f"y_{split}", small[f"y_{split}"], shapes[split][0], len(classes))


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
    arrays = _load_arrays(path, available_memory())
    for split in ("train", "test"):
        x = arrays[f"x_{split}"]
        _images(path, f"x_{split}", x.dtype, x.shape)
    _same_image_shape(path, arrays["x_train"].shape, arrays["x_test"].shape)
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
