"""Dataset resolution (embedded vs data dir), the cache form, and task-level preparation."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from datasets import registry
from datasets.arrays import ArrayDataset, ClassCounts, Split
from datasets.embedded import digits28
from datasets.npz import DatasetFileError, read_npz, write_npz
from datasets.prepare import convert_channels, prepare, resize, subsample


def tiny(name: str = "mnist", n: int = 40, size: int = 28, c: int = 1, k: int = 10) -> ArrayDataset:
    rng = np.random.default_rng(0)

    def split(m):
        return Split(rng.integers(0, 256, (m, size, size, c), dtype=np.uint8), np.arange(m) % k)

    return ArrayDataset(name, split(n), split(n // 2), tuple(str(i) for i in range(k)), "test")


def test_embedded_mnist_is_real_digits_in_mnist_form(clean_env):
    ds = registry.load("mnist")
    assert ds.source == "embedded:sklearn-digits-28x28"
    assert ds.train.x.shape[1:] == (28, 28, 1) and ds.train.x.dtype == np.uint8
    assert len(ds.train) + len(ds.test) == 1797
    assert set(np.unique(ds.test.y)) == set(range(10))
    assert ds.train.x[:, :4].max() == 0 and ds.train.x[:, 24:].max() == 0  # a 20x20 box centred in 28x28
    assert ds.train.x.max() > 200  # ink is bright, as in MNIST
    assert np.array_equal(digits28(0).train.x, ds.train.x)  # deterministic


def test_the_embedded_digits_are_scikit_learns_read_without_importing_it():
    from sklearn.datasets import load_digits

    from datasets.embedded import _sklearn_digits

    images, target = _sklearn_digits()
    digits = load_digits()
    assert np.array_equal(images, digits.images) and np.array_equal(target, digits.target)


def test_data_dir_resolution_order(clean_env, tmp_path: Path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    write_npz(tiny(n=40), a / "mnist.npz")
    write_npz(tiny(n=60), b / "mnist.npz")
    monkeypatch.setenv("BENCH_DATA_DIR", str(b))
    assert len(registry.load("mnist").train) == 60
    assert len(registry.load("mnist", data_dir=a).train) == 40  # --data-dir wins
    ds = registry.load("mnist", data_dir=a)
    assert ds.source == f"file:{(a / 'mnist.npz').resolve()}"


def test_cache_dir_is_searched(clean_env):
    write_npz(tiny(n=20), registry.default_cache_dir() / "mnist.npz")
    assert registry.load("mnist").source.startswith("file:")


def test_missing_data_dir_and_no_fallback_are_clear_errors(clean_env, tmp_path: Path):
    with pytest.raises(registry.DatasetNotFound, match="does not exist"):
        registry.load("mnist", data_dir=tmp_path / "nope")
    with pytest.raises(registry.DatasetNotFound, match=r"mnist\.npz.*fallback='none'"):
        registry.load("mnist", fallback="none")
    with pytest.raises(registry.DatasetNotFound, match=r"kaggle_dogs_vs_cats_64\.npz.*catsdogs\.npz.*fallback='none'"):
        registry.load("catsdogs", fallback="none")


def test_bad_cache_file_names_what_is_wrong(tmp_path: Path):
    np.savez(tmp_path / "x.npz", x_train=np.zeros((2, 4, 4, 1), np.uint8))
    with pytest.raises(DatasetFileError, match="missing key"):
        read_npz(tmp_path / "x.npz", "mnist")
    (tmp_path / "y.npz").write_bytes(b"not a zip")
    with pytest.raises(DatasetFileError, match=r"not an \.npz file"):
        read_npz(tmp_path / "y.npz", "mnist")
    ds = tiny()
    np.savez(
        tmp_path / "z.npz",
        x_train=ds.train.x,
        y_train=ds.train.y + 10,
        x_test=ds.test.x,
        y_test=ds.test.y,
        classes=np.array(ds.classes),
    )
    with pytest.raises(DatasetFileError, match="labels outside"):
        read_npz(tmp_path / "z.npz", "mnist")


def test_shared_data_resolves_to_the_real_files(clean_env, shared_data: Path):
    mnist = registry.load("mnist", data_dir=shared_data)
    assert mnist.source == f"file:{(shared_data / 'mnist.npz').resolve()}"
    assert (len(mnist.train), len(mnist.test)) == (60000, 10000)
    assert mnist.train.y[:5].tolist() == [5, 0, 4, 1, 9] and mnist.train.y.dtype == np.int64
    if (shared_data / "cifar10.npz").is_file():
        assert registry.find_file("cifar10", shared_data) is not None


def test_the_image_shape_is_known_without_loading_as_load_would_give_it(clean_env, tmp_path: Path):
    """What a task's layer list is checked against before a run starts (bench.run.datacheck.check_images_fit)."""
    for name in registry.DATASETS:  # the embedded defaults (afhq: its stand-in's), as declared in the registry
        assert registry.image_shape(name) == registry.load(name).image_shape, name
    write_npz(tiny(size=12, c=3), tmp_path / "mnist.npz")  # a file decides, from its header: not MNIST's 28x28x1
    assert registry.image_shape("mnist", data_dir=tmp_path) == (12, 12, 3)
    assert registry.image_shape("mnist", fallback="none") is None  # no data at all: loading says so
    assert registry.image_shape("afhq", fallback="none") is None
    (tmp_path / "cifar10.npz").write_bytes(b"not a zip")  # unreadable: loading names what is wrong
    assert registry.image_shape("cifar10", data_dir=tmp_path) is None


def train_count(name: str, data_dir: Path | None = None, fallback: str = "auto", classes: tuple[str, ...] = ()):
    """The count bench.run.datacheck.check_batch_fits reads: ``class_counts``, of the task's classes."""
    counts = registry.class_counts(name, data_dir, fallback)
    return None if counts is None else counts.selected(classes)


def test_the_training_count_is_known_without_loading_as_load_and_prepare_would_give_it(clean_env, tmp_path: Path):
    """What a task's batch size is checked against before a run starts (bench.run.datacheck): the embedded
    defaults' tables (afhq: its stand-in's) are what the generators make, at any seed; a file's labels decide."""
    for name in registry.DATASETS:
        for seed in (0, 1):
            ds = registry.load(name, seed=seed)
            assert train_count(name) == len(ds.train), name
            if table := registry.DATASETS[name].embedded_train:  # the table is the generator's, class by class
                counts = tuple(np.bincount(ds.train.y, minlength=len(ds.classes)).tolist())
                assert table == ClassCounts(ds.classes, counts, ds.stands_for), name
            picked = ds.stands_for[:2] or ds.classes[:2]  # a subset by the names a task gives (cat, dog)
            kept = prepare(ds, classes=picked)
            assert train_count(name, classes=picked) == len(kept.train), (name, picked)
            assert train_count(name, classes=ds.classes[-2:]) == len(prepare(ds, classes=ds.classes[-2:]).train)
    assert train_count("mnist", classes=("3", "x")) is None  # a class not there: datacheck says so
    write_npz(tiny(n=40, k=4), tmp_path / "mnist.npz")  # a file decides: 40 images, 10 of each of 4 classes
    assert train_count("mnist", data_dir=tmp_path) == 40
    assert train_count("mnist", data_dir=tmp_path, classes=("1", "3")) == 20
    assert train_count("mnist", fallback="none") is None  # no data at all: loading says so
    assert train_count("afhq", fallback="none") is None
    (tmp_path / "cifar10.npz").write_bytes(b"not a zip")  # unreadable: loading names what is wrong
    assert train_count("cifar10", data_dir=tmp_path) is None


def test_a_dataset_with_nothing_to_load_is_said_before_loading_as_load_says_it(clean_env, tmp_path: Path):
    for name in registry.DATASETS:
        registry.check_found(name)  # an embedded default (afhq: its stand-in's)
    write_npz(tiny(), tmp_path / "mnist.npz")
    registry.check_found("mnist", tmp_path, fallback="none")
    for name in ("cifar10", "afhq"):
        with pytest.raises(registry.DatasetNotFound) as said:
            registry.check_found(name, tmp_path, fallback="none")
        with pytest.raises(registry.DatasetNotFound) as loading:
            registry.load(name, tmp_path, fallback="none")
        assert str(said.value) == str(loading.value) and f"dataset {name!r} not found (looked in" in str(said.value)


def test_subsample_is_stratified_and_seeded():
    s = Split(np.zeros((1000, 2, 2, 1), np.uint8), np.repeat(np.arange(10), 100))
    a = subsample(s, 105, np.random.default_rng(1))
    assert len(a) == 105 and np.bincount(a.y).min() >= 10
    b = subsample(s, 105, np.random.default_rng(1))
    assert np.array_equal(a.y, b.y)
    assert subsample(s, 0, np.random.default_rng(1)) is s


def test_prepare_class_subset_channels_and_size():
    ds = prepare(tiny(c=3, size=32, k=10), classes=("5", "3"), channels=1, image_size=16)
    assert ds.classes == ("5", "3")
    assert set(np.unique(ds.train.y)) == {0, 1}  # relabelled in the given order
    assert ds.train.x.shape[1:] == (16, 16, 1)
    with pytest.raises(ValueError, match="no class"):
        prepare(tiny(), classes=("cat",))
    # refused up front (the spec, bench.run.datacheck); the data's own check, where it changed since
    with pytest.raises(ValueError, match="classes '5' and '5' name one class twice"):
        prepare(tiny(c=3, size=32, k=10), classes=("5", "3", "5"))
    standing = replace(tiny(k=3), stands_for=("cat", "dog", "bird"))
    with pytest.raises(ValueError, match="classes 'dog' and '1' name one class twice"):  # "1" stands for "dog"
        prepare(standing, classes=("dog", "2", "1"))
    assert prepare(standing, classes=("dog", "2")).classes == ("1", "2")


def test_channel_and_resize_values():
    grey = np.full((1, 4, 4, 1), 77, np.uint8)
    assert np.all(convert_channels(grey, 3) == 77)
    rgb = np.zeros((1, 4, 4, 3), np.uint8)
    rgb[..., 1] = 100
    assert convert_channels(rgb, 1)[0, 0, 0, 0] == round(0.587 * 100)
    flat = np.full((2, 8, 8, 3), 200, np.uint8)
    assert np.all(resize(flat, 4) == 200) and resize(flat, 8) is flat
