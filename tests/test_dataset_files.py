"""Dataset files from elsewhere and image folders: every way one is wrong is a clear error naming file and array."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from datasets.archive import UnsafeArchive, open_tree
from datasets.imagefolder import import_images
from datasets.npz import DatasetFileError, read_npz
from datasets.store import describe


def good_arrays(n: int = 6, h: int = 8, c: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "x_train": rng.integers(0, 256, (n, h, h, c), dtype=np.uint8),
        "y_train": np.arange(n) % 2,
        "x_test": rng.integers(0, 256, (n // 2, h, h, c), dtype=np.uint8),
        "y_test": np.arange(n // 2) % 2,
        "classes": np.array(["cat", "dog"]),
    }


def save(tmp_path: Path, **changes: np.ndarray | None) -> Path:
    arrays = {k: v for k, v in {**good_arrays(), **changes}.items() if v is not None}
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return path


def test_a_good_file_reads_with_float_labels_that_are_whole_numbers(tmp_path: Path):
    ds = read_npz(save(tmp_path, y_test=np.array([0.0, 1.0, 0.0])), "catsdogs")
    assert ds.classes == ("cat", "dog") and ds.test.y.dtype == np.int64 and list(ds.test.y) == [0, 1, 0]
    assert ds.image_shape == (8, 8, 3) and len(ds.train) == 6


BAD = [
    ({"y_test": np.array([0.0, np.nan, 1.0])}, "y_test has NaN or infinite labels"),
    ({"y_train": np.array([0, 1, 0.5, 1, 0, 1])}, "y_train has fractional labels (e.g. 0.5)"),
    ({"y_test": np.array([0, -1, 1])}, "y_test has labels outside 0..1 (min -1"),
    ({"y_test": np.array([0, 2, 1])}, "y_test has labels outside 0..1"),
    ({"y_test": np.array(["a", "b", "c"])}, "y_test must hold integer class indices, got <U1"),
    ({"y_test": np.array([0, 1])}, "y_test must hold one label per image (3)"),
    ({"y_train": np.zeros((6, 1), int)}, "y_train must hold one label per image (6), got shape (6, 1)"),
    ({"x_test": np.zeros((0, 8, 8, 3), np.uint8), "y_test": np.zeros(0, int)}, "x_test is empty"),
    ({"x_train": np.zeros((6, 8, 8, 3), np.float32)}, "x_train must be uint8 (N, H, W, C) with C 1 or 3"),
    ({"x_train": np.zeros((6, 8, 8), np.uint8)}, "x_train must be uint8 (N, H, W, C)"),
    ({"x_test": np.zeros((3, 9, 8, 3), np.uint8)}, "both splits need the same height, width and channels"),
    ({"x_test": np.zeros((3, 8, 8, 1), np.uint8)}, "both splits need the same height, width and channels"),
    ({"classes": np.array([["cat", "dog"]])}, "classes must be a non-empty one-dimensional array"),
    ({"classes": np.array("cat")}, "classes must be a non-empty one-dimensional array"),
    ({"classes": np.array(["cat", "cat"])}, "classes repeats a name"),
    ({"classes": None}, "missing key(s) classes"),
]


@pytest.mark.parametrize(("changes", "says"), BAD, ids=[s for _, s in BAD])
def test_a_wrong_dataset_file_is_refused_naming_file_and_array(tmp_path: Path, changes: dict, says: str):
    path = save(tmp_path, **changes)
    with pytest.raises(DatasetFileError) as e:
        read_npz(path, "catsdogs")
    assert str(e.value).startswith(str(path)) and says in str(e.value)


def test_a_file_that_is_not_a_zip_says_so_in_plain_words(tmp_path: Path):
    pickled = tmp_path / "pickled.npz"
    pickled.write_bytes(pickle.dumps({"x_train": [1, 2, 3]}))
    bare = tmp_path / "bare.npz"
    with open(bare, "wb") as f:
        np.save(f, np.zeros(3))
    for path, kind in ((pickled, "not a zip archive"), (bare, "a single .npy array")):
        with pytest.raises(DatasetFileError, match=f"not an .npz file \\(a zip of .npy arrays\\): {kind}"):
            read_npz(path, "catsdogs")
        assert describe("catsdogs", path).error == "not readable: not an .npz file (a zip of .npy arrays)"


def test_an_array_of_python_objects_is_never_unpickled(tmp_path: Path):
    path = save(tmp_path, classes=np.array(["cat", {"x": 1}], dtype=object))
    with pytest.raises(DatasetFileError, match=r"array classes is not readable: holds Python objects"):
        read_npz(path, "catsdogs")


def image_tree(root: Path) -> Path:
    for split in ("train", "test"):
        for label in ("cat", "dog"):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(2):
                Image.new("RGB", (12, 10), (40 * i, 90, 200)).save(folder / f"{label}.{i}.png")
    return root


def test_an_image_folder_symlink_that_leaves_the_folder_is_refused(tmp_path: Path):
    """Refused with an error, not skipped: a tree that reaches outside itself is not a dataset copy."""
    tree = image_tree(tmp_path / "afhq")
    secret = tmp_path / "secret.png"
    Image.new("RGB", (12, 10)).save(secret)
    (tree / "train" / "cat" / "leak.png").symlink_to(secret)
    with pytest.raises(UnsafeArchive) as e:
        open_tree(tree)
    assert "train/cat/leak.png" in str(e.value) and str(secret) in str(e.value) and "outside" in str(e.value)
    (tree / "train" / "cat" / "leak.png").unlink()
    (tree / "train" / "dog" / "out").symlink_to(tmp_path, target_is_directory=True)  # a folder link, too
    with pytest.raises(UnsafeArchive, match="train/dog/out"):
        open_tree(tree)


def test_an_image_folder_symlink_inside_the_folder_is_read(tmp_path: Path):
    tree = image_tree(tmp_path / "afhq")
    (tree / "test" / "dog" / "again.png").symlink_to(tree / "test" / "dog" / "dog.0.png")
    with open_tree(tree) as t:
        decoded = import_images(t, "afhq", 8, progress=False)
    assert len(decoded.ds.train) == 4 and len(decoded.ds.test) == 5 and not decoded.skipped
