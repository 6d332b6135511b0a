"""Local copies in a dataset's standard layout to the canonical form.

- MNIST: the four idx files (``.gz`` or uncompressed) in one folder, archive or not;
- CIFAR-10: the binary version, ``cifar-10-binary.tar.gz`` or its ``cifar-10-batches-bin/``
  (records of 1 label byte + 3072 pixel bytes, channel-major); the python version is
  refused, because reading it means unpickling, which runs code from the file;
- cats vs dogs and AFHQ: image trees, see ``datasets.imagefolder``.

A file whose published digest is known (see ``datasets.sources``) is checked before it
is parsed, and a mismatch stops the import; every other file is checked by structure
(sizes, headers, label range) and reported as such.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from datasets import imagefolder
from datasets.archive import LayoutError, Tree, open_tree
from datasets.arrays import ArrayDataset, Split
from datasets.download import Digests, file_digests, mismatches, recorded_sha256
from datasets.embedded import CIFAR10_CLASSES
from datasets.sources import Source, published_resource

_CIFAR_RECORD = 1 + 32 * 32 * 3
_MNIST_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
_CIFAR_FILES = {**{f"train{i}": f"data_batch_{i}.bin" for i in range(1, 6)}, "test": "test_batch.bin"}
_PICKLE_MARKERS = ("cifar-10-python.tar.gz", "cifar-10-batches-py", "data_batch_1", "batches.meta")


UNPUBLISHED = "no published checksum: checked by structure only"


class ChecksumMismatch(ValueError):
    """A local file has a published digest and does not match it; nothing was imported."""


class PickleRefused(LayoutError):
    """The CIFAR-10 python version: not read, since unpickling executes code from the file."""


@dataclass
class Imported:
    ds: ArrayDataset
    checks: list[tuple[str, str]] = field(default_factory=list)  # (input, what it was verified against)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # corrupt images: (member, why)
    notes: list[str] = field(default_factory=list)


def _digests(data: bytes) -> Digests:
    return Digests(len(data), hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest())


def check_published(label: str, filename: str, got: Digests, sources: dict[str, Source] | None) -> str:
    """How ``filename`` was verified; raises ``ChecksumMismatch`` before anyone parses it."""
    resource = published_resource(filename, sources)
    if resource is None:
        return UNPUBLISHED
    problems = mismatches(resource, got)
    if problems:
        raise ChecksumMismatch(f"{label}: {'; '.join(problems)}; not imported")
    kinds = " and ".join(
        k for k, v in (("size", resource.size), ("MD5", resource.md5), ("SHA-256", resource.sha256)) if v
    )
    where = f" ({resource.checksum_from})" if resource.checksum_from else ""
    return f"{kinds} match the published ones{where}"


def check_file(path: Path, sources: dict[str, Source] | None) -> str:
    """``check_published`` for a file on disk, or against its SHA-256 recorded at download."""
    got = file_digests(path)
    result = check_published(str(path), path.name, got, sources)
    recorded = recorded_sha256(path)
    if result == UNPUBLISHED and recorded:
        if recorded != got.sha256:
            raise ChecksumMismatch(f"{path}: SHA-256 {got.sha256} differs from the one recorded at download {recorded}")
        result = f"no published checksum exists; SHA-256 {got.sha256} is the one recorded at download"
    return result


def _locate(tree: Tree, wanted: dict[str, str], what: str) -> dict[str, str]:
    """Members for ``wanted`` base names, all from one folder; ``.gz`` preferred (it can be checked)."""
    by_dir: dict[str, dict[str, list[str]]] = {}
    for name in tree.names:
        p = PurePosixPath(name)
        base = p.name.removesuffix(".gz").replace(".", "-")  # also train-images.idx3-ubyte
        for key, file in wanted.items():
            if base == file.replace(".", "-"):
                by_dir.setdefault(str(p.parent), {}).setdefault(key, []).append(name)
    complete = [d for d, got in by_dir.items() if len(got) == len(wanted)]
    if not complete:
        found = "; ".join(f"{d}/: {len(got)} of them" for d, got in sorted(by_dir.items())) or "none of them"
        raise LayoutError(f"{tree.path}: no folder holds all of {what} ({found})")
    if len(complete) > 1:
        raise LayoutError(f"{tree.path}: {what} found in more than one folder: {', '.join(sorted(complete))}/")
    got = by_dir[complete[0]]
    return {k: sorted(got[k], key=lambda n: not n.endswith(".gz"))[0] for k in wanted}


def _read_checked(tree: Tree, name: str, checks: list[tuple[str, str]], sources: dict[str, Source] | None) -> bytes:
    """A member's bytes, checked against its published digest (if any) before anyone parses them."""
    data = tree.read(name)
    label = f"{tree.path}:{name}" if tree.path.is_file() else str(tree.path / name)
    checks.append((label, check_published(label, PurePosixPath(name).name, _digests(data), sources)))
    return data


def read_idx(data: bytes, label: str) -> np.ndarray:
    """An idx array of unsigned bytes, its header checked against its length."""
    if len(data) < 4 or data[0] or data[1]:
        raise LayoutError(f"{label}: not an idx file (bad magic number)")
    kind, ndim = data[2], data[3]
    if kind != 0x08:
        raise LayoutError(f"{label}: idx element type 0x{kind:02x}, expected unsigned bytes (0x08)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise LayoutError(f"{label}: truncated idx header")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        raise LayoutError(f"{label}: {len(data)} bytes, but its header {dims} says {expected}")
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims)


def import_mnist(tree: Tree, sources: dict[str, Source] | None = None) -> Imported:
    files = _locate(tree, _MNIST_FILES, "the four MNIST idx files")
    checks: list[tuple[str, str]] = []
    arrays = {}
    for key, name in files.items():
        data = _read_checked(tree, name, checks, sources)
        if name.endswith(".gz"):
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError, zlib.error) as e:
                raise LayoutError(f"{tree.path}: {name}: not a valid gzip file ({e})") from None
        arrays[key] = read_idx(data, f"{tree.path}: {name}")
    for split in ("train", "test"):
        x, y = arrays[f"{split}_x"], arrays[f"{split}_y"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise LayoutError(f"{tree.path}: {split} images {x.shape} and labels {y.shape} do not pair up")
        if len(y) and y.max() > 9:
            raise LayoutError(f"{tree.path}: {split} labels go up to {y.max()}, MNIST has 0..9")
    ds = ArrayDataset(
        name="mnist",
        train=Split(arrays["train_x"][..., None].copy(), arrays["train_y"].astype(np.int64)),
        test=Split(arrays["test_x"][..., None].copy(), arrays["test_y"].astype(np.int64)),
        classes=tuple(str(d) for d in range(10)),
        source=f"import:{tree.path}",
    )
    return Imported(ds, checks)


def read_cifar_batch(data: bytes, label: str) -> tuple[np.ndarray, np.ndarray]:
    """Binary-version records (label byte, 1024 R, 1024 G, 1024 B) to NHWC uint8 and labels."""
    if not data or len(data) % _CIFAR_RECORD:
        raise LayoutError(f"{label}: {len(data)} bytes is not a whole number of {_CIFAR_RECORD}-byte records")
    records = np.frombuffer(data, np.uint8).reshape(-1, _CIFAR_RECORD)
    y = records[:, 0].astype(np.int64)
    if y.max() > 9:
        raise LayoutError(f"{label}: label {y.max()} outside 0..9")
    x = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(x), y


def _refuse_pickle_version(names: list[str], where: Path) -> None:
    for name in names:
        parts = PurePosixPath(name).parts
        if any(p in _PICKLE_MARKERS for p in parts):
            raise PickleRefused(
                f"{where}: {name} is from the CIFAR-10 python (pickle) version, which bench does not import "
                "(unpickling runs code from the file); use the binary version, cifar-10-binary.tar.gz, "
                "from https://www.cs.toronto.edu/~kriz/cifar.html"
            )


def import_cifar10(tree: Tree, sources: dict[str, Source] | None = None) -> Imported:
    try:
        files = _locate(tree, _CIFAR_FILES, "the six CIFAR-10 binary batches (data_batch_1..5.bin, test_batch.bin)")
    except LayoutError:
        _refuse_pickle_version(tree.names, tree.path)
        raise
    checks: list[tuple[str, str]] = []
    notes: list[str] = []
    parts = {}
    for key, name in files.items():
        parts[key] = read_cifar_batch(_read_checked(tree, name, checks, sources), f"{tree.path}: {name}")
    classes: tuple[str, ...] = CIFAR10_CLASSES
    meta = str(PurePosixPath(files["test"]).parent / "batches.meta.txt").removeprefix("./")
    if meta in tree.names:
        text = tree.read(meta).decode("ascii", "replace")
        classes = tuple(line.strip() for line in text.splitlines() if line.strip())
        if len(classes) != 10:
            raise LayoutError(f"{tree.path}: {meta} lists {len(classes)} class names, CIFAR-10 has 10")
    else:
        notes.append("no batches.meta.txt: the standard CIFAR-10 class names were used")
    train = [parts[f"train{i}"] for i in range(1, 6)]
    ds = ArrayDataset(
        name="cifar10",
        train=Split(np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train])),
        test=Split(*parts["test"]),
        classes=classes,
        source=f"import:{tree.path}",
    )
    return Imported(ds, checks, notes=notes)


def import_path(
    dataset: str, path: Path, *, size: int = 64, sources: dict[str, Source] | None = None, progress: bool = True
) -> Imported:
    """Read ``dataset`` from a local file or folder; a published digest is checked first."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    container = None
    if path.is_file():
        if dataset == "cifar10":
            _refuse_pickle_version([path.name], path.parent)
        container = (str(path), check_file(path, sources))
    with open_tree(path) as tree:
        if dataset == "mnist":
            out = import_mnist(tree, sources)
        elif dataset == "cifar10":
            out = import_cifar10(tree, sources)
        elif dataset in imagefolder.CLASSES:
            decoded = imagefolder.import_images(tree, dataset, size, progress=progress)
            out = Imported(decoded.ds, skipped=decoded.skipped, notes=decoded.notes)
            if container is None:
                out.checks.append((str(path), "a folder of images has no published checksum; each image was decoded"))
        else:
            raise LayoutError(f"no importer for dataset {dataset!r}")
    if container is not None:
        # Members of an archive that matched a digest are covered by it: say so once.
        covered = container[1] != UNPUBLISHED
        out.checks = [container, *(c for c in out.checks if not (covered and c[1] == UNPUBLISHED))]
    return out
