"""Property tests: whatever bytes or structures a task file or dataset file holds, only the project's own
error types come out (SpecError, DatasetFileError), never a KeyError, TypeError, IndexError, numpy's
ValueError, UnicodeDecodeError, ZeroDivisionError or AttributeError."""

from __future__ import annotations

import copy
import io
import json
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bench.core.spec import SpecError, TaskSpec, builtin_tasks, load_task, parse_task, spec_from_dict
from datasets.arrays import ArrayDataset
from datasets.npz import REQUIRED_KEYS, DatasetFileError, read_npz

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


# --------------------------------------------------------------------------- task files

SCALARS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=12),
    st.sampled_from(["../x", "/etc/passwd", ".h", "", "mnist", "lenet5", "adam", "quick", "cat", "relu"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=8,
)
KEYS = [
    "name",
    "seed",
    "description",
    "profiles",
    "profiles.quick",
    "profiles.full",
    "profiles.quick.train",
    "dataset",
    "dataset.name",
    "dataset.image_size",
    "dataset.channels",
    "dataset.classes",
    "dataset.mean",
    "dataset.std",
    "dataset.max_train",
    "model",
    "model.arch",
    "model.init",
    "model.activation",
    "model.pooling",
    "model.pretrained",
    "model.weights",
    "model.options",
    "train",
    "train.epochs",
    "train.batch_size",
    "train.lr",
    "train.eps",
    "train.loss",
    "train.augment",
    "train.target_acc",
    "eval",
    "eval.batch_size",
    "eval.select",
    "explain.n_images",
    "explain.layer",
    "decouple",
    "decouple.top_k",
    "decouple.max_train",
    "transfer",
    "runtime",
    "runtime.threads",
    "runtime.device",
    "runtime.precision",
    "runtime.warmup_steps",
    "unknown",
    "dataset.unknown",
]
MINIMAL = {
    "name": "t",
    "dataset": {"name": "mnist"},
    "model": {"arch": "lenet5"},
    "train": {"epochs": 2, "batch_size": 32, "lr": 0.01},
    "transfer": [{"dataset": "afhq", "class_map": {"cat": "cat"}}],
}


def put(doc: Any, path: str, value: Any) -> Any:
    """``doc`` with ``value`` at the dotted ``path`` (a missing or non-table step becomes a table)."""
    doc = copy.deepcopy(doc)
    *heads, last = path.split(".")
    node = doc
    for h in heads:
        if not isinstance(node.get(h), dict):
            node[h] = {}
        node = node[h]
    node[last] = value
    return doc


def only_spec_errors(load) -> TaskSpec | None:
    try:
        spec = load()
    except SpecError:
        return None
    assert isinstance(spec, TaskSpec)
    return spec


@FAST
@given(data=st.binary(max_size=400))
def test_any_bytes_in_a_task_file_give_a_spec_or_a_spec_error(scratch: Path, data: bytes):
    path = scratch / "task.toml"
    path.write_bytes(data)
    only_spec_errors(lambda: load_task(path))


TOML_VALUES = st.sampled_from(
    [
        '"../../x"',
        '"/abs"',
        "-1",
        "0",
        "1e400",
        "nan",
        "inf",
        "-inf",
        '""',
        "[]",
        '[1, "a"]',
        "{}",
        "{a = 1}",
        "true",
        "1979-05-27",
        "99999999999999999999",
        '"\\u00e9"',
        "[[1]]",
        '["hflip", "hflip"]',
        '"x"',
        "1.5",
    ]
)


@FAST
@given(task=st.sampled_from(sorted(builtin_tasks())), line=st.integers(0, 80), value=TOML_VALUES, how=st.integers(0, 2))
def test_a_builtin_task_file_with_one_value_changed_gives_a_spec_or_a_spec_error(
    scratch: Path, task: str, line: int, value: str, how: int
):
    lines = builtin_tasks()[task].read_text().splitlines()
    i = line % len(lines)
    if how == 0 and " = " in lines[i]:
        lines[i] = lines[i].split(" = ", 1)[0] + " = " + value
    elif how == 1:
        del lines[i]
    else:
        lines.insert(i, lines[i])  # a repeated key or table
    path = scratch / "task.toml"
    path.write_text("\n".join(lines) + "\n")
    for profile in (None, "quick"):
        only_spec_errors(lambda p=profile: load_task(path, p))


@FAST
@given(changes=st.lists(st.tuples(st.sampled_from(KEYS), VALUES), min_size=1, max_size=3))
def test_wrong_structures_in_a_parsed_task_give_a_spec_error(changes: list[tuple[str, Any]]):
    doc = MINIMAL
    for key, value in changes:
        doc = put(doc, key, value)
    only_spec_errors(lambda: parse_task(doc, source="fuzz.toml", profile="quick"))


PLAN = json.loads(json.dumps(load_task("cifar10-cnn", "quick").to_dict()))  # as plan.json holds it


@FAST
@given(
    key=st.sampled_from([*KEYS, "source", "profile", "transfer.0", "model.options"]),
    value=st.one_of(VALUES, st.none()),
    drop=st.sampled_from([None, "dataset", "train", "model", "name", "runtime"]),
)
def test_wrong_structures_in_a_plan_entry_give_a_spec_error(key: str, value: Any, drop: str | None):
    doc = put(PLAN, key, value) if key != "transfer.0" else {**PLAN, "transfer": [value]}
    if drop:
        doc.pop(drop, None)
    only_spec_errors(lambda: spec_from_dict(doc))


# --------------------------------------------------------------------------- dataset files


def only_dataset_errors(path: Path) -> ArrayDataset | None:
    try:
        ds = read_npz(path, "fuzz")
    except DatasetFileError as e:
        assert str(e).startswith(str(path))
        return None
    assert ds.train.x.dtype == np.uint8 and ds.train.y.dtype == np.int64
    assert ds.test.y.min() >= 0 and ds.test.y.max() < len(ds.classes) and len(ds.train) and len(ds.test)
    assert ds.train.x.shape[1:] == ds.test.x.shape[1:]
    return ds


@FAST
@given(data=st.binary(max_size=600), zip_prefix=st.booleans())
def test_any_bytes_in_a_dataset_file_give_a_dataset_or_its_error(scratch: Path, data: bytes, zip_prefix: bool):
    path = scratch / "data.npz"
    if zip_prefix:  # a zip whose member is junk, so the reader gets past the zip check
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for key in REQUIRED_KEYS:
                z.writestr(f"{key}.npy", data)
        data = buf.getvalue()
    path.write_bytes(data)
    only_dataset_errors(path)


DTYPES = st.sampled_from(
    [np.uint8, np.int8, np.int64, np.uint64, np.float16, np.float64, np.bool_, "<U3", "S2", np.complex64, "M8[s]"]
)
ARRAYS = DTYPES.flatmap(lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=3)))


def good() -> dict[str, np.ndarray]:
    return {
        "x_train": np.zeros((4, 2, 2, 1), np.uint8),
        "y_train": np.array([0, 1, 0, 1]),
        "x_test": np.zeros((2, 2, 2, 1), np.uint8),
        "y_test": np.array([1, 0]),
        "classes": np.array(["a", "b"]),
    }


@FAST
@given(
    replace=st.dictionaries(st.sampled_from([*REQUIRED_KEYS, "x_val", "other"]), ARRAYS, max_size=3),
    drop=st.sets(st.sampled_from(REQUIRED_KEYS), max_size=2),
    compressed=st.booleans(),
    objects=st.booleans(),
)
def test_wrong_arrays_in_a_dataset_file_give_a_dataset_or_its_error(
    scratch: Path, replace: dict, drop: set, compressed: bool, objects: bool
):
    arrays = {k: v for k, v in {**good(), **replace}.items() if k not in drop}
    if objects and arrays:
        key = sorted(arrays)[0]
        arrays[key] = np.array([{"a": 1}, None], dtype=object)
    path = scratch / "data.npz"
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    only_dataset_errors(path)


@FAST
@given(
    positions=st.lists(st.integers(0, 10**6), min_size=1, max_size=4),
    byte=st.integers(0, 255),
    compressed=st.booleans(),
)
def test_a_damaged_dataset_file_gives_its_error(scratch: Path, positions: list[int], byte: int, compressed: bool):
    path = scratch / "data.npz"
    (np.savez_compressed if compressed else np.savez)(path, **good())
    raw = bytearray(path.read_bytes())
    for p in positions:
        raw[p % len(raw)] = byte
    path.write_bytes(bytes(raw))
    only_dataset_errors(path)
