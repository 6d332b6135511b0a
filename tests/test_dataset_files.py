"""Dataset files from elsewhere and image folders: every way one is wrong is a clear error naming file and array."""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import signal
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from datasets import npz, registry
from datasets.archive import UnsafeArchive, open_tree
from datasets.imagefolder import import_images
from datasets.npz import DatasetFileError, check_sizes, read_npz
from datasets.store import describe, verify_dataset
from tests.conftest import run_cli


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
    cut = tmp_path / "cut.npz"  # a download cut short: the zip's local header, not its end record (QA, 2026-12-05)
    cut.write_bytes(save(tmp_path).read_bytes()[:200])
    kinds = ((pickled, "not a zip archive"), (bare, "a single .npy array"), (cut, "a zip archive cut short"))
    for path, kind in kinds:
        with pytest.raises(DatasetFileError, match=f"not an .npz file \\(a zip of .npy arrays\\): {kind}"):
            read_npz(path, "catsdogs")
        assert describe("catsdogs", path).error == "not readable: not an .npz file (a zip of .npy arrays)"


def test_an_array_of_python_objects_is_never_unpickled(tmp_path: Path):
    path = save(tmp_path, classes=np.array(["cat", {"x": 1}], dtype=object))
    with pytest.raises(DatasetFileError, match=r"array classes is not readable: holds Python objects"):
        read_npz(path, "catsdogs")


def npy(shape: tuple[int, ...], data: bytes = b"", dtype: str = "|u1") -> bytes:
    """A .npy member: a header declaring ``shape`` followed by ``data``, which need not match it."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue() + data


def hostile(tmp_path: Path, key: str, member: bytes, compress: int = zipfile.ZIP_STORED) -> Path:
    """A good dataset file, by hand, with array ``key`` replaced by the bytes ``member``."""
    path = tmp_path / "hostile.npz"
    with zipfile.ZipFile(path, "w") as z:
        for name, a in good_arrays().items():
            buf = io.BytesIO()
            np.save(buf, a)
            z.writestr(f"{name}.npy", member if name == key else buf.getvalue(), compress_type=compress)
    return path


def test_a_header_claiming_1e10_images_is_refused_before_any_allocation(tmp_path: Path):
    """The real memory bound: 7.8 TB declared by a 200-byte member (numpy would try to allocate it)."""
    path = hostile(tmp_path, "x_train", npy((10**10, 28, 28, 1)))
    with pytest.raises(DatasetFileError) as e:
        read_npz(path, "mnist")
    assert str(e.value).startswith(f"{path}: x_train.npy header declares uint8 (10000000000, 28, 28, 1)")
    assert "bytes of memory available: not loaded" in str(e.value)


def test_the_memory_bound_counts_every_array_before_it(tmp_path: Path):
    path = save(tmp_path)  # x_train 1152 bytes, y_train 48, x_test 576, y_test 24, classes 24
    with zipfile.ZipFile(path) as zf:
        check_sizes(path, zf, memory=1824)  # all of it fits exactly
        with pytest.raises(DatasetFileError, match=r"x_test\.npy header declares .* \(576 bytes; 1,776 with the"):
            check_sizes(path, zf, memory=1775)


def test_a_zip_bomb_member_is_refused_before_it_is_inflated(tmp_path: Path, monkeypatch):
    """A consistent header over 3 MB of zeros that deflate ~1000x; the size floor is lowered so the test stays
    small (the real floor is 64 MiB: a 3.9 GB member from 3.7 MB is over it, and over the 100x cap)."""
    zeros = np.zeros((4096, 16, 16, 3), np.uint8)
    path = hostile(tmp_path, "x_train", npy(zeros.shape, zeros.tobytes()), zipfile.ZIP_DEFLATED)
    with zipfile.ZipFile(path) as zf:
        check_sizes(path, zf, memory=None)  # under the real floor: harmless, allowed
        monkeypatch.setattr(npz, "SMALL_MEMBER", 2**20)
        with pytest.raises(DatasetFileError, match=r"x_train would inflate [\d,]+ compressed bytes to 3,145,856 "):
            check_sizes(path, zf, memory=None)
    with pytest.raises(DatasetFileError, match="refused as a zip bomb, not read"):
        read_npz(path, "mnist")


def test_the_expansion_cap_is_far_above_what_the_real_files_compress_to(shared_data: Path, monkeypatch):
    monkeypatch.setattr(npz, "SMALL_MEMBER", 0)  # every member held to the cap, labels included
    for path in sorted(shared_data.glob("*.npz")):
        with zipfile.ZipFile(path) as zf:
            check_sizes(path, zf, memory=None)  # headers only: quick, whatever the file's size


def test_a_header_that_disagrees_with_its_zip_entry_is_refused(tmp_path: Path):
    images = good_arrays()["x_train"]
    path = hostile(tmp_path, "x_train", npy((60, 8, 8, 3), images.tobytes()))
    with pytest.raises(DatasetFileError) as e:
        read_npz(path, "catsdogs")
    assert str(e.value) == (
        f"{path}: x_train.npy header declares uint8 (60, 8, 8, 3) (11,520 bytes of data) but its zip entry "
        "holds 1,152 bytes of data"
    )


def test_a_member_without_an_npy_header_is_refused_before_it_is_read(tmp_path: Path):
    path = hostile(tmp_path, "y_test", b"just some bytes, no header")
    with pytest.raises(DatasetFileError, match=r"y_test\.npy is not a \.npy array \(no NPY header\)"):
        read_npz(path, "catsdogs")


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail instead of hanging: SIGALRM interrupts a blocked open() and the handler's exception ends it."""

    def fail(*_: object) -> None:  # not an OSError, which the reader would wrap as a file error
        raise AssertionError(f"still blocked after {seconds} s (a FIFO opened for reading?)")

    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def make_loop(path: Path) -> None:
    other = path.with_name("other.npz")
    path.symlink_to(other)
    other.symlink_to(path)


NOT_FILES = {
    "a symlink loop": (make_loop, "cannot be read: Too many levels of symbolic links"),
    "a FIFO": (os.mkfifo, "is a FIFO (named pipe), not a dataset file"),
    "a directory": (Path.mkdir, "is a directory, not a dataset file"),
    "a dangling link": (lambda p: p.symlink_to(p.with_name("gone.npz")), "cannot be read: No such file"),
}


@pytest.mark.parametrize("kind", NOT_FILES)
def test_a_dataset_path_that_is_no_file_is_an_error_naming_it_never_the_stand_in(kind: str, tmp_path, monkeypatch):
    make, says = NOT_FILES[kind]
    make(tmp_path / "mnist.npz")
    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path))
    path = tmp_path.absolute() / "mnist.npz"
    with deadline(10):
        with pytest.raises(DatasetFileError) as e:
            registry.load("mnist")
        assert str(e.value).startswith(f"{path}: {says}")
        assert describe("mnist", path).error.startswith(f"not readable: {says}")  # `bench data list`
        verdict = verify_dataset("mnist")  # `bench data verify`: never hashes it
        assert not verdict.ok and verdict.lines[0].startswith(f"FAIL  {path}: {says}")


def test_bench_list_refuses_a_data_dir_that_is_a_file_like_run(tmp_path: Path, clean_env):
    """`list` and `run` share the check: exit 2, one line, before any output."""
    env = dict(clean_env, BENCH_DATA_DIR=str(tmp_path / "mnist.npz"))
    (tmp_path / "mnist.npz").write_bytes(b"")
    says = f"error: data directory {tmp_path / 'mnist.npz'} is not a directory (from BENCH_DATA_DIR)"
    for args in (["list"], ["run", "mnist-lenet5", "--backend", "torch", "--out", str(tmp_path / "out")]):
        proc = run_cli(args, env, timeout=120)
        assert proc.returncode == 2 and proc.stderr == says + "\n", (args, proc.stderr)
        assert "tasks:" not in proc.stdout
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod-000 folder, so there is nothing to refuse")
def test_bench_list_refuses_an_unreadable_data_dir(tmp_path: Path, clean_env):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0)
    try:
        proc = run_cli(["list"], dict(clean_env, BENCH_DATA_DIR=str(folder)), timeout=120)
    finally:
        folder.chmod(0o755)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == f"error: data directory {folder} cannot be read: permission denied (from BENCH_DATA_DIR)\n"


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
