"""Decoupled features: layer taps in both backends, RF/LR on features, the spec section, the pictures."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from bench.core.catalog import ARCHITECTURES
from bench.core.job import Job
from bench.core.phase import Trained
from bench.core.preprocess import PixelNorm
from bench.core.spec import (
    DecoupleSpec,
    ModelSpec,
    RuntimeSpec,
    SpecError,
    TrainSpec,
    load_task,
    parse_task,
    spec_from_dict,
)
from bench.phases import decouple
from bench.report.decouple_plots import decouple_plot_jobs, decouple_section, mosaic
from bench.report.plotting import render
from tests.conftest import TINY_TASK, import_both_frameworks

torch_backend, keras_backend = import_both_frameworks()
import torch  # noqa: E402  (after import_both_frameworks: torch first, then tensorflow)

pytestmark = pytest.mark.frameworks  # imports the frameworks when collected

BACKENDS = [torch_backend, keras_backend]


def model(arch: str, **options) -> ModelSpec:
    defaults = {k: o.default for k, o in ARCHITECTURES[arch].options.items()}
    return ModelSpec(arch=arch, options=tuple(sorted({**defaults, **options}.items())))


def built(backend_module, spec: ModelSpec, shape: tuple[int, int, int], n_outputs: int):
    b = backend_module.Backend()
    b.configure(RuntimeSpec(), seed=0)
    state = b.compile(b.build(spec, shape, n_outputs), TrainSpec(epochs=1, batch_size=8, lr=0.01), RuntimeSpec())
    return b, state


def head_of(backend_module, state, name: str, features: np.ndarray) -> np.ndarray:
    """The head layer applied on its own, in each framework's terms."""
    if backend_module is torch_backend:
        with torch.no_grad():
            return dict(state.model.named_modules())[name](torch.from_numpy(features)).numpy()
    return np.asarray(state.model.get_layer(name)(features))


CASES = [
    # arch spec, input shape, n_outputs, {layer: expected NHWC / (N, units) shape without N}, feature width
    (model("lenet5"), (28, 28, 1), 10, {"conv1": (28, 28, 6), "conv2": (10, 10, 16), "fc1": (120,), "fc2": (84,)}, 84),
    (
        model("lenet5", activation="sigmoid", conv1_padding=0),
        (28, 28, 1),
        10,
        {"conv1": (24, 24, 6), "conv2": (8, 8, 16), "fc1": (120,), "fc2": (84,)},
        84,
    ),
    (
        model("cifar_cnn"),
        (32, 32, 3),
        1,
        {"conv1": (30, 30, 32), "conv2": (13, 13, 64), "conv3": (4, 4, 64), "fc1": (64,)},
        64,
    ),
]


@pytest.mark.parametrize("backend_module", BACKENDS, ids=["torch", "keras"])
@pytest.mark.parametrize(
    ("spec", "shape", "n_outputs", "expected", "width"), CASES, ids=["lenet", "lenet-sig", "cnn-bin"]
)
def test_layer_taps_have_the_catalog_shapes_and_the_features_feed_the_head(
    backend_module, spec, shape, n_outputs, expected, width
):
    arch = ARCHITECTURES[spec.arch]
    assert set(expected) == {*arch.conv_layers, *arch.fc_layers}
    x = np.random.default_rng(1).random((7, *shape), dtype=np.float32)
    b, state = built(backend_module, spec, shape, n_outputs)
    outs = b.layer_outputs(state, x, list(expected), batch_size=3)  # batches of 3, 3, 1
    assert {k: v.shape[1:] for k, v in outs.items()} == expected
    assert all(v.shape[0] == 7 and v.dtype == np.float32 for v in outs.values())
    features = b.layer_input(state, x, arch.head, batch_size=3)
    assert features.shape == (7, width) and features.dtype == np.float32
    logits = b.predict(state, b.put(x, np.zeros(7, np.int64)), 4)
    np.testing.assert_allclose(head_of(backend_module, state, arch.head, features), logits, atol=1e-5)
    # the last hidden layer's post-activation output IS what the head receives
    np.testing.assert_allclose(outs[arch.fc_layers[-1]], features, atol=1e-6)
    lo = 0.0 if spec.option("activation") == "relu" else 1e-9
    assert all(v.min() >= lo for v in outs.values())  # after the activation, not before it


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_both_backends_return_the_same_post_activation_nhwc_map(activation):
    """With conv1's weights copied keras -> torch, both return the same conv1 tensor, element for element."""
    spec = model("lenet5", activation=activation)
    x = np.random.default_rng(2).random((4, 28, 28, 1), dtype=np.float32)
    kb, ks = built(keras_backend, spec, (28, 28, 1), 10)
    tb, ts = built(torch_backend, spec, (28, 28, 1), 10)
    kernel, bias = (np.asarray(w) for w in ks.model.get_layer("conv1").get_weights())
    with torch.no_grad():
        ts.model.conv1.weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1)))  # HWIO -> OIHW
        ts.model.conv1.bias.copy_(torch.from_numpy(bias))
    k_map = kb.layer_outputs(ks, x, ["conv1"], 8)["conv1"]
    t_map = tb.layer_outputs(ts, x, ["conv1"], 8)["conv1"]
    assert k_map.std() > 0.01
    np.testing.assert_allclose(t_map, k_map, atol=1e-5)


def test_unknown_layer_names_the_layer():
    b, state = built(torch_backend, model("lenet5"), (28, 28, 1), 10)
    with pytest.raises(KeyError, match="no layer 'fc9'"):
        b.layer_input(state, np.zeros((1, 28, 28, 1), np.float32), "fc9", 1)


# --------------------------------------------------------------------------- bench.phases.decouple


def quadrant_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """4 classes set by the signs of features 3 and 7 only; 18 more columns of noise."""
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(n, 20)).astype(np.float32)
    y = (f[:, 3] > 0).astype(np.int64) * 2 + (f[:, 7] > 0)
    f[:, 3] += np.sign(f[:, 3]) * 0.5  # a margin: separable
    f[:, 7] += np.sign(f[:, 7]) * 0.5
    return f, y


def test_forest_and_logistic_regression_find_the_informative_features():
    f_train, y_train = quadrant_data(600, 0)
    f_test, y_test = quadrant_data(300, 1)
    res = decouple.fit_and_rank(f_train, y_train, f_test, y_test, DecoupleSpec(top_k=(1, 2, 100, 2)), n_jobs=2)
    assert res.rf_acc > 0.95
    assert res.logreg_acc > 0.9  # quadrants: argmax of (±f3 ± f7) is linear
    assert set(res.ranking[:2]) == {3, 7}
    assert res.importances[[3, 7]].sum() > 0.5 and res.importances.sum() == pytest.approx(1)
    by_k = {t["k"]: t for t in res.topk}
    assert list(by_k) == [1, 2, 20]  # clamped to the width, deduplicated, ascending
    assert by_k[1]["rf_acc"] < 0.7  # one of the two deciding features: about half right
    assert by_k[2]["rf_acc"] > 0.95  # the ranking chose the right two
    assert by_k[20] == {"k": 20, "rf_acc": res.rf_acc, "logreg_acc": res.logreg_acc}


@pytest.mark.parametrize(
    ("requested", "width", "sizes"),
    [
        ((10, 100, 500, 1000), 84, [10, 84]),
        ((10, 100, 500, 1000), 2048, [10, 100, 500, 1000, 2048]),
        ((5, 5, 200), 64, [5, 64]),
        ((), 30, [30]),
    ],
)
def test_top_k_sizes(requested, width, sizes):
    assert decouple.top_k_sizes(requested, width) == sizes


def test_image_choices():
    y = np.array([3, 1, 1, 0, 3, 2, 0])
    assert decouple.picture_inputs(y, 5).tolist() == [3, 1, 5, 0]  # the first of each class, never two of one
    assert decouple.picture_inputs(y, 2).tolist() == [3, 1]  # the first n classes
    cats_first = np.array([0, 0, 0, 0, 1, 0, 1, 1])  # a cat/dog test set's first five: 4 cats, 1 dog
    assert y[decouple.picture_inputs(y, 5)].tolist() == [0, 1, 2, 3]
    assert cats_first[decouple.picture_inputs(cats_first, 5)].tolist() == [0, 1]
    feats = np.array([[0.0, 5], [3, 1], [2, 9], [1, 0]])
    assert decouple.most_activating(feats, np.array([1, 0]), 2).tolist() == [[2, 0], [1, 2]]
    sub = decouple.train_subset(100, 30, seed=42)
    assert len(sub) == len(set(sub)) == 30 and np.all(np.diff(sub) > 0)
    assert np.array_equal(sub, decouple.train_subset(100, 30, seed=42))
    assert np.array_equal(decouple.train_subset(10, 0, 42), np.arange(10))
    shown = decouple.to_display(np.array([[[[-1.0]], [[1.0]]]]))  # normalised input: min-max per image
    assert shown.dtype == np.uint8 and shown.ravel().tolist() == [0, 255]


def test_mosaic_tiles_every_channel():
    maps = np.arange(2 * 3 * 5, dtype=np.float32).reshape(2, 3, 5)
    m = mosaic(maps)
    assert m.shape == (2 * 2 + 1, 3 * 3 + 2)  # 5 channels -> 3 columns x 2 rows, 1-px gaps
    assert np.nanmin(m) == 0 and np.nanmax(m) == 1 and np.isnan(m).any()


def test_phase_on_a_trained_model_writes_fields_arrays_and_pictures(tmp_path: Path):
    """The worker phase end to end in-process (torch), then the report section it feeds."""
    from datasets.embedded import digits28

    ds = digits28()
    x_train, y_train = ds.train.x[:400], ds.train.y[:400]  # uint8, as the worker keeps them
    x_test, y_test = ds.test.x[:150], ds.test.y[:150]
    spec = parse_task(
        {
            "name": "t",
            "dataset": {"name": "mnist"},
            "model": {"arch": "lenet5"},
            "train": {"epochs": 3, "batch_size": 32, "lr": 0.003},
            "decouple": {"enabled": True, "max_train": 300, "top_k": [10, 500], "top_images": 4, "n_inputs": 3},
        }
    )
    b, state = built(torch_backend, spec.model, (28, 28, 1), 10)
    norm = PixelNorm.from_spec(spec.dataset, 1)
    data = b.put(x_train, y_train, norm)
    for epoch in range(3):
        b.train_epoch(state, data, np.random.default_rng(epoch).permutation(400), 32)
    artifacts = tmp_path / "artifacts"
    job = Job({"task": "t", "backend": "torch", "repeat": 0}, artifacts=str(artifacts))
    t = Trained(b, state, spec, tuple(ds.classes), x_train, y_train, x_test, y_test, data, None, 0, job, norm)
    fields = decouple.run(t)
    assert fields["feature_dim"] == 84 and fields["decouple_n_train"] == 300
    assert fields["rf_acc"] > 0.5 and fields["logreg_acc"] > 0.5  # 10 classes: chance is 0.1
    assert set(fields) <= set(decouple.PHASE.columns)  # the phase declares what it adds
    assert [r["k"] for r in fields["decouple_topk"]] == [10, 84]
    with np.load(artifacts / "t.torch.0.decouple.npz") as a:
        assert a["top_images"].shape == (5, 4, 28, 28, 1) and a["top_images"].dtype == np.uint8
        assert a["act_conv2"].shape == (3, 10, 10, 16) and a["inputs"].shape == (3, 28, 28, 1)
        assert a["input_labels"].tolist() == [0, 1, 2]  # one test image per class, in class order
        assert np.all(np.diff(a["top_values"], axis=1) <= 0)  # highest activation first
        assert a["importances"][a["top_features"]].tolist() == sorted(a["importances"], reverse=True)[:5]

    rec = {"task": "t", "backend": "torch", "repeat": 0, "status": "ok", "test_acc": 0.9, **fields}
    jobs = decouple_plot_jobs(tmp_path, [rec])  # drawn through the report's plot jobs, then linked
    drawn = frozenset(args[-1] for (_, args), ok in zip(jobs, render(jobs), strict=True) if ok)
    text = decouple_section(tmp_path, [rec], drawn)
    pngs = ["decouple-topk-t.png", "top-features-t-torch.png", "feature-maps-t-torch.png", "fc-activations-t.png"]
    for name in pngs:
        assert (tmp_path / "plots" / name).stat().st_size > 5000, name
        assert f"(plots/{name})" in text
    assert "| 84 (all) |" in text
    assert "(plots/" not in decouple_section(tmp_path, [rec], frozenset())  # a picture not drawn is not linked
    assert decouple_section(tmp_path, [{**rec, "rf_acc": None}], drawn) == ""  # nothing decoupled: no section
    assert decouple.run(SimpleNamespace(spec=parse_task({**MINIMAL}))) == {}  # off by default


# --------------------------------------------------------------------------- spec

MINIMAL = {
    "name": "t",
    "dataset": {"name": "mnist"},
    "model": {"arch": "lenet5"},
    "train": {"epochs": 2, "batch_size": 32, "lr": 0.01},
}


@pytest.mark.parametrize(
    ("section", "fragment"),
    [
        ({"enable": True}, "decouple.enable: unknown key (expected one of: enabled, max_train, top_k"),
        ({"enabled": "yes"}, "decouple.enabled: expected true or false, got 'yes'"),
        ({"max_train": -1}, "decouple.max_train: expected an integer >= 0, got -1"),
        ({"top_k": [10, 0]}, "decouple.top_k: expected integers >= 1, got (10, 0)"),
        ({"top_k": 10}, "decouple.top_k: expected a list of an integer"),
        ({"n_estimators": 0}, "decouple.n_estimators: expected an integer >= 1, got 0"),
    ],
)
def test_decouple_spec_errors_name_the_key(section, fragment):
    with pytest.raises(SpecError) as e:
        parse_task({**MINIMAL, "decouple": section}, source="my.toml")
    assert str(e.value).startswith("my.toml") and fragment in str(e.value)


def test_decouple_is_on_for_the_builtin_tasks_and_survives_the_job_roundtrip():
    quick, full = load_task("cifar10-cnn", "quick"), load_task("cifar10-cnn", "full")
    assert quick.decouple.enabled and quick.decouple.max_train == 2000 and full.decouple.max_train == 0
    assert quick.decouple.n_estimators == 100 and quick.decouple.random_state == 42
    assert spec_from_dict(quick.to_dict()) == quick
    old_plan = {k: v for k, v in quick.to_dict().items() if k != "decouple"}  # a run planned before [decouple]
    assert spec_from_dict(old_plan).decouple == DecoupleSpec()
    assert not parse_task(MINIMAL).decouple.enabled


# --------------------------------------------------------------------------- end to end

TINY_DECOUPLE_TASK = (
    TINY_TASK.replace('name = "tiny"', 'name = "tiny-dc"')
    + """
[decouple]
enabled = true
max_train = 200
top_k = [10, 1000]
"""
)


@pytest.mark.e2e
def test_cli_run_gives_rf_and_logreg_columns_and_pictures(clean_env, tmp_path: Path):
    import pandas as pd

    from tests.conftest import only_run_dir, records, run_cli

    task = tmp_path / "tiny-dc.toml"
    task.write_text(TINY_DECOUPLE_TASK)
    proc = run_cli(["run", str(task), "--out", str(tmp_path / "results")], clean_env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = only_run_dir(tmp_path / "results")
    csv = pd.read_csv(run_dir / "results.csv")
    assert list(csv.backend) == ["torch", "keras"]
    assert (csv.feature_dim == 84).all() and (csv.decouple_n_train == 200).all()
    assert (csv.rf_acc > 0.3).all() and (csv.logreg_acc > 0.3).all()  # 10 classes: chance is 0.1
    assert (csv.decouple_s > 0).all()
    for r in records(run_dir):
        assert [t["k"] for t in r["decouple_topk"]] == [10, 84]
        assert r["decouple_topk"][-1]["rf_acc"] == r["rf_acc"]
    summary = (run_dir / "summary.md").read_text()
    assert "## Decoupled features" in summary and "decoupled 84 features from 'fc3'" in proc.stdout
    for name in ["decouple-topk-tiny-dc.png", "fc-activations-tiny-dc.png"] + [
        f"{kind}-tiny-dc-{b}.png" for kind in ("feature-maps", "top-features") for b in ("torch", "keras")
    ]:
        assert (run_dir / "plots" / name).is_file(), name
        assert f"(plots/{name})" in summary
