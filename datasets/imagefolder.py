"""Image trees (PetImages, ImageFolder, AFHQ) to the canonical form, corrupt images skipped.

Layouts, found anywhere under the folder or archive:

- ``PetImages/Cat/*.jpg``, ``PetImages/Dog/*.jpg`` (Microsoft's Dogs-vs-Cats archive): no
  split is published, so a seeded, stratified 20% is held out as the test split;
- ``<split>/<class>/*`` with split ``train`` and ``test`` or ``val`` (AFHQ:
  ``afhq/train/cat``, ``afhq/val/wild``); aliases like ``training_set`` and ``cats`` are read too.

Each image is opened twice with PIL, once to ``verify()`` the file and once to decode
it fully, so truncated and undecodable files are found; they are skipped and counted,
never fatal (PetImages ships some). Kept images are converted to RGB, centre-cropped
to a square on the shorter side and resized with LANCZOS, as ``../shared/data`` was made.
"""

from __future__ import annotations

import io
import re
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np
from PIL import Image
from tqdm import tqdm

from datasets.archive import LayoutError, Tree
from datasets.arrays import ArrayDataset, Split
from datasets.embedded import stratified_split

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"})
CLASSES: dict[str, tuple[str, ...]] = {"catsdogs": ("cat", "dog"), "afhq": ("cat", "dog", "wild")}
HOLDOUT = 0.2  # test share carved from a layout without a published split
_SPLITS = {
    "train": "train",
    "training": "train",
    "training_set": "train",
    "test": "test",
    "testing": "test",
    "test_set": "test",
    "val": "val",
    "valid": "val",
    "validation": "val",
}
_CLASS_ALIASES = {"cats": "cat", "dogs": "dog"}


@dataclass(frozen=True)
class Entry:
    name: str  # member name in the tree
    split: str  # train | test | val | all (no published split)
    label: str


@dataclass
class Decoded:
    ds: ArrayDataset
    skipped: list[tuple[str, str]]  # (member, why) for every corrupt or undecodable image
    notes: list[str]


def decode_square(data: bytes, size: int) -> np.ndarray:
    """One image as uint8 (size, size, 3); raises on a corrupt or undecodable file."""
    if not data:
        raise ValueError("empty file")
    with warnings.catch_warnings():  # EXIF and palette warnings: the pixels are what matter
        warnings.simplefilter("ignore")
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            rgb = im.convert("RGB")
    w, h = rgb.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    square = rgb.crop((left, top, left + side, top + side))
    return np.asarray(square.resize((size, size), Image.Resampling.LANCZOS), dtype=np.uint8)


def _natural(name: str) -> list:
    """Sort key that puts cat.2.jpg before cat.10.jpg."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _macos_metadata(parts: tuple[str, ...]) -> bool:
    """AppleDouble files a zip made on macOS carries (``__MACOSX/``, ``._name``): not images."""
    return parts[0] == "__MACOSX" or parts[-1].startswith("._")


def find_entries(tree: Tree, dataset: str) -> tuple[list[Entry], int]:
    """The images of ``tree`` in a known layout, and how many other files were ignored."""
    allowed = CLASSES[dataset]
    entries: list[Entry] = []
    roots: set[tuple[str, bool]] = set()
    unknown: Counter[str] = Counter()
    ignored = 0
    for name in tree.names:
        own = PurePosixPath(name).parts
        parts = (*tree.outer, *own)  # a folder's own name counts: `import catsdogs ~/PetImages`
        if len(parts) < 3 or PurePosixPath(name).suffix.lower() not in IMAGE_SUFFIXES or _macos_metadata(own):
            ignored += 1  # README files, Thumbs.db, macOS ._ forks, ...
            continue
        group, folder = parts[-3], parts[-2]
        if group == "PetImages" and folder in ("Cat", "Dog"):
            split = "all"
        elif group.lower() in _SPLITS:
            split = _SPLITS[group.lower()]
        else:
            ignored += 1
            continue
        label = _CLASS_ALIASES.get(folder.lower(), folder.lower())
        if label not in allowed:
            unknown[f"{'/'.join(parts[-3:-1])}/"] += 1
            continue
        roots.add(("/".join(parts[:-3]), split == "all"))
        entries.append(Entry(name, split, label))
    where = str(tree.path)
    if unknown:
        found = ", ".join(f"{d} ({n} images)" for d, n in sorted(unknown.items()))
        expected = ", ".join(allowed)
        raise LayoutError(f"{where}: class folder(s) {found} are not {dataset} classes (expected: {expected})")
    if not entries:
        raise LayoutError(
            f"{where}: no images found in PetImages/{{Cat,Dog}}/ or <split>/<class>/ folders "
            f"(split: train with test or val; class: {', '.join(allowed)})"
        )
    if len(roots) > 1:
        listed = ", ".join(sorted(f"{r or '.'}/" + ("PetImages" if pet else "<split>") for r, pet in roots))
        raise LayoutError(f"{where}: more than one image tree ({listed}); import one at a time")
    return entries, ignored


def _choose_splits(entries: list[Entry], notes: list[str], where: str) -> tuple[str, str | None]:
    """(train split, test split) to use; test None means: hold out a share of train."""
    present = Counter(e.split for e in entries)
    if "all" in present:
        notes.append(f"no published split: {HOLDOUT:.0%} of each class held out as test (seed 0)")
        return "all", None
    if "train" not in present:
        raise LayoutError(f"{where}: no train/ folder beside {', '.join(sorted(present))}/")
    if "test" in present:
        if "val" in present:
            notes.append(f"val/ ({present['val']} images) not imported: the cache form holds train and test")
        return "train", "test"
    if "val" in present:
        notes.append("val/ used as the test split")
        return "train", "val"
    notes.append(f"no test/ or val/ folder: {HOLDOUT:.0%} of each class of train/ held out as test (seed 0)")
    return "train", None


def _check_two_classes(tree: Tree, dataset: str, counts: Counter[str], decoded: bool = False) -> None:
    """LayoutError where the images hold fewer than two classes: a one-class "dataset" imported with exit 0 and
    trained a classifier that cannot be wrong (a PetImages tree with Cat/ renamed, or every Dog image corrupt)."""
    if len(counts) < 2:
        had = ", ".join(f"{c} ({n} images)" for c, n in sorted(counts.items())) or "none"
        what = "decoded" if decoded else "found"
        raise LayoutError(
            f"{tree.path}: images of one class only {what} ({had}); a classifier needs two or more of "
            f"{', '.join(CLASSES[dataset])}"
        )


def import_images(tree: Tree, dataset: str, size: int, *, progress: bool = True) -> Decoded:
    """Decode every image of ``tree`` into ``dataset``'s canonical form at ``size`` x ``size``."""
    entries, ignored = find_entries(tree, dataset)
    notes: list[str] = []
    if ignored:
        notes.append(f"{ignored} file(s) outside the image folders or not images were ignored")
    train_split, test_split = _choose_splits(entries, notes, str(tree.path))
    present = {e.label for e in entries}
    classes = tuple(c for c in CLASSES[dataset] if c in present)
    _check_two_classes(tree, dataset, Counter(e.label for e in entries if e.split in (train_split, test_split)))
    used = [e for e in entries if e.split in (train_split, test_split)]
    used.sort(key=lambda e: (e.split, classes.index(e.label), _natural(e.name)))

    x = np.empty((len(used), size, size, 3), np.uint8)
    keep = np.zeros(len(used), bool)
    skipped: list[tuple[str, str]] = []
    for i, e in enumerate(tqdm(used, desc=f"{dataset}: images", unit="img", disable=not progress, leave=False)):
        try:  # third-party decoders raise many kinds of errors on malformed input
            x[i] = decode_square(tree.read(e.name), size)
            keep[i] = True
        except Exception as err:  # a corrupt image is counted, never fatal
            skipped.append((e.name, f"{type(err).__name__}: {err}"[:160]))
    if not keep.any():
        raise LayoutError(f"{tree.path}: none of the {len(used)} images could be decoded")
    y = np.array([classes.index(e.label) for e in used], np.int64)
    split = np.array([e.split for e in used])
    x, y, split = x[keep], y[keep], split[keep]
    _check_two_classes(tree, dataset, Counter(classes[i] for i in y), decoded=True)
    if test_split is None:
        tr, te = stratified_split(y, HOLDOUT, seed=0)
        tr, te = np.sort(tr), np.sort(te)
    else:
        tr, te = np.flatnonzero(split == train_split), np.flatnonzero(split == test_split)
    ds = ArrayDataset(
        name=dataset,
        train=Split(x[tr], y[tr]),
        test=Split(x[te], y[te]),
        classes=classes,
        source=f"import:{tree.path}",
        notes=tuple(notes),
    )
    return Decoded(ds, skipped, notes)
