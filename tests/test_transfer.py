"""Cross-dataset transfer: the metrics, the class mapping, the two procedural domains, end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.core.spec import SpecError, load_task, parse_task
from bench.phases.transfer import load_target, transfer_metrics
from bench.run.datacheck import check_task_data
from datasets import embedded, registry
from datasets.arrays import ArrayDataset, ClassCounts, Split
from datasets.prepare import prepare
from datasets.shapes import CLEAN, CLUTTERED, make_shapes
from tests.conftest import only_run_dir, records, run_cli

CIFAR = list(embedded.CIFAR10_CLASSES)


def one_hot_logits(pred: list[int], width: int = 10) -> np.ndarray:
    z = np.full((len(pred), width), -5.0, np.float32)
    z[np.arange(len(pred)), pred] = 5.0
    return z


def test_ten_way_and_restricted_accuracy_by_hand():
    """Target classes cat(0)/dog(1) map to CIFAR 3/5; a 'truck' answer is wrong 10-way but may be right restricted."""
    y = np.array([0, 0, 0, 1, 1])
    logits = one_hot_logits([3, 9, 5, 5, 1])
    logits[1, 3] = 1.0  # image 1 says truck, but prefers cat over dog among the mapped outputs
    logits[4, 5] = 2.0  # image 4 says automobile, prefers dog over cat
    m = transfer_metrics(logits, y, ["cat", "dog"], [3, 5], CIFAR)
    assert m["n"] == 5
    assert m["acc"] == pytest.approx(2 / 5)  # images 0 and 3
    assert m["acc_restricted"] == pytest.approx(4 / 5)  # all but image 2 (a cat called dog)
    assert m["confusion_restricted"] == [[2, 1], [0, 2]]
    full = np.array(m["confusion_full"])
    assert full.shape == (2, 10)
    assert full[0].tolist() == [0, 0, 0, 1, 0, 1, 0, 0, 0, 1]  # cat row: cat, dog, truck
    assert full[1].tolist() == [0, 1, 0, 0, 0, 1, 0, 0, 0, 0]
    assert m["predicted_as"]["truck"] == 1 and sum(m["predicted_as"].values()) == 5
    assert m["report"]["cat"]["recall"] == pytest.approx(2 / 3)


def test_binary_head_transfer_reads_the_single_logit():
    """A one-logit cat/dog model: logit > 0 means the second class (dog)."""
    y = np.array([0, 0, 1, 1])
    logits = np.array([[-2.0], [1.0], [3.0], [0.5]], np.float32)
    m = transfer_metrics(logits, y, ["cat", "dog"], [0, 1], ["cat", "dog"])
    assert m["acc"] == m["acc_restricted"] == pytest.approx(3 / 4)
    assert m["confusion_restricted"] == [[1, 1], [0, 2]]
    with pytest.raises(ValueError, match="model has 2 classes"):
        transfer_metrics(logits, y, ["cat", "dog"], [3, 5], CIFAR)


def test_targets_resolve_through_stand_ins_and_take_the_source_shape():
    """Offline: CIFAR's stand-in (Shapes-10) -> AFHQ's stand-in (clean cat/dog shapes), mapped by real names."""
    task = load_task("cifar10-cnn", "quick")
    source = prepare(registry.load("cifar10", seed=0), max_test=100, seed=0)
    ds, index = load_target(task.transfer[0], source, task, None, seed=0)
    assert index == [3, 5]  # Shapes-10's stand-ins for CIFAR's cat and dog
    assert ds.test.x.shape[1:] == (32, 32, 3)  # 64 px clean images brought to the model's input
    assert ds.classes == ("ring", "h_stripes") and ds.stands_for == ("cat", "dog")
    assert "stand-in for afhq" in ds.source
    assert sorted(np.unique(ds.test.y)) == [0, 1] and len(ds.test) == 1000

    reverse = load_task("catdog-cnn", "quick")
    cat_dog = prepare(registry.load("afhq", seed=0), classes=("cat", "dog"), image_size=32, seed=0)
    target, index = load_target(reverse.transfer[0], cat_dog, reverse, None, seed=0)
    assert index == [0, 1]
    assert target.source == "embedded:procedural-shapes10" and len(target.test) == 200


def test_unknown_class_in_the_map_is_named():
    task = parse_task(
        {
            "name": "t",
            "dataset": {"name": "cifar10"},
            "model": {"arch": "cifar_cnn"},
            "train": {"epochs": 1, "batch_size": 8, "lr": 0.01},
            "transfer": [{"dataset": "afhq", "class_map": {"cat": "kitten"}}],
        }
    )
    source = prepare(registry.load("cifar10", seed=0), max_test=10, seed=0)
    with pytest.raises(ValueError, match=r"not trained on a class 'kitten' \(its classes: \['disk', "):
        load_target(task.transfer[0], source, task, None, seed=0)


AMBIGUOUS = ("a", "b", "c"), ("b", "x", "y")  # class 0, "a", stands for "b": class 1's own name


def ambiguous(seed: int) -> ArrayDataset:
    """Three classes of four 32x32 images each, whose class 0 stands for a name that is class 1's own."""
    y = np.repeat(np.arange(3), 4)
    x = np.random.default_rng(seed).integers(0, 255, (12, 32, 32, 3), dtype=np.uint8)
    classes, stands_for = AMBIGUOUS
    return ArrayDataset("ambiguous", Split(x, y), Split(x, y), classes, "embedded:test", (), stands_for)


@pytest.mark.parametrize(
    ("kept", "source_class", "output"),
    [
        (("a", "c"), "b", None),  # class 1's own name, left out: not class 0, which only stands for "b"
        (("b", "c"), "b", 0),
        (("b", "c"), "x", 0),  # class 1's stand-in name
        (("c", "a"), "y", 0),
        ((), "b", 1),
    ],
)
def test_a_name_resolves_alike_up_front_and_in_transfer(monkeypatch, kept, source_class, output):
    """A class name that is one class's own and another's stand-in name: the up-front check (bench.run.datacheck,
    from the label table) and the transfer phase (from the loaded, subset data) name the same model output, or
    both refuse it. With dataset.classes = [a, c], "b" was refused up front (class 1, not trained on) and mapped
    to class 0 in transfer, whose subset had forgotten that "b" is another class's own name."""
    classes, stands_for = AMBIGUOUS
    counts = ClassCounts(classes, (4, 4, 4), stands_for)
    info = registry.DatasetInfo(
        "ambiguous", "ambiguous.npz", "test", ambiguous, embedded_shape=(32, 32, 3), embedded_train=counts
    )
    monkeypatch.setitem(registry.DATASETS, "ambiguous", info)
    monkeypatch.setenv("BENCH_CACHE", "/nonexistent-bench-cache")  # no file of that name: the embedded default
    task = parse_task(
        {
            "name": "t",
            "dataset": {"name": "ambiguous", "classes": list(kept)},
            "model": {"arch": "cifar_cnn"},
            "train": {"epochs": 1, "batch_size": 2, "lr": 0.01},
            "transfer": [{"dataset": "ambiguous", "class_map": {"c": source_class}}],
        },
        datasets=registry.DATASETS,
    )
    source = prepare(registry.load("ambiguous"), classes=kept)
    if output is None:
        with pytest.raises(SpecError, match=f"not trained on a class '{source_class}'"):
            check_task_data([task], None)
        with pytest.raises(ValueError, match=f"not trained on a class '{source_class}'"):
            load_target(task.transfer[0], source, task, None, seed=0)
    else:
        check_task_data([task], None)
        assert load_target(task.transfer[0], source, task, None, seed=0)[1] == [output]


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ({"dataset": "afhq", "class_map": {}}, "class_map: expected a non-empty table"),
        ({"dataset": "afhq", "class_map": {"cat": "cat", "dog": "cat"}}, "map to the same source class"),
        ({"dataset": "afhq", "class_map": {"cat": "cat"}, "reported_acc": 58}, r"transfer\[0\].reported_acc"),
        ({"dataset": "afhq", "class_map": {"cat": "cat"}, "split": "val"}, r"transfer\[0\].split"),
        ({"dataset": "imagenet", "class_map": {"cat": "cat"}}, "unknown dataset 'imagenet'"),
        ("afhq", r"transfer\[0\]: expected a table"),
    ],
)
def test_transfer_spec_errors_name_the_key(target, message):
    doc = {
        "name": "t",
        "dataset": {"name": "cifar10"},
        "model": {"arch": "cifar_cnn"},
        "train": {"epochs": 1, "batch_size": 8, "lr": 0.01},
        "transfer": [target],
    }
    with pytest.raises(SpecError, match=message):
        parse_task(doc, datasets=registry.DATASETS)


def _pixel_noise(x: np.ndarray) -> float:
    """Median |Laplacian| per image: flat regions dominate the median, so edges don't count, noise does."""
    g = x.astype(np.float32).mean(-1)
    lap = 4 * g[:, 1:-1, 1:-1] - g[:, :-2, 1:-1] - g[:, 2:, 1:-1] - g[:, 1:-1, :-2] - g[:, 1:-1, 2:]
    return float(np.median(np.abs(lap).reshape(len(g), -1), axis=1).mean())


def test_the_two_domains_share_classes_but_not_their_look():
    """Clean: large centred objects, no clutter or noise; cluttered: small objects anywhere, noise, distractors.

    (That the gap is real for a CNN is shown by the transfer rows of `bench all`.)
    """
    ids = (3, 5)
    _, clean, names_a = make_shapes(0, 200, seed=1, domain=CLEAN, class_ids=ids)
    _, busy, names_b = make_shapes(0, 200, seed=1, domain=CLUTTERED, class_ids=ids)
    assert names_a == names_b == ("ring", "h_stripes")
    ring = clean.y == 0  # solid shapes have flat regions; stripes are all edges in both domains
    assert _pixel_noise(busy.x[busy.y == 0]) > 3 * _pixel_noise(clean.x[ring])


def test_afhq_falls_back_to_the_cat_dog_stand_in_and_says_so(clean_env):
    ds = registry.load("afhq", seed=0)
    assert ds.source == "embedded:procedural-shapes-catdog-clean (stand-in for afhq)"
    assert any("afhq not found" in n for n in ds.notes)
    with pytest.raises(registry.DatasetNotFound):
        registry.load("afhq", fallback="none")


def test_afhq_uses_the_real_kaggle_set_when_present(shared_data, monkeypatch):
    monkeypatch.setenv("BENCH_DATA_DIR", str(shared_data))
    ds = registry.load("afhq")
    assert ds.source.startswith("file:") and ds.source.endswith("kaggle_dogs_vs_cats_64.npz (stand-in for afhq)")
    assert ds.classes == ("cat", "dog") and len(ds.test) == 2000


TINY_TRANSFER = """
name = "tiny-catdog"
[dataset]
name = "afhq"
classes = ["cat", "dog"]
image_size = 32
max_train = 300
max_test = 100
[model]
arch = "cifar_cnn"
[train]
epochs = 2
batch_size = 64
lr = 0.001
loss = "binary_cross_entropy"
[[transfer]]
dataset = "cifar10"
class_map = { cat = "cat", dog = "dog" }
reported_acc = 0.38
"""


@pytest.mark.e2e
def test_transfer_end_to_end_in_both_backends(clean_env, tmp_path: Path):
    spec = tmp_path / "tiny-catdog.toml"
    spec.write_text(TINY_TRANSFER)
    out = tmp_path / "results"
    proc = run_cli(["run", str(spec), "--profile", "quick", "--out", str(out)], clean_env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "transfer target cifar10: embedded:procedural-shapes10, 100 test images of ring/h_stripes" in proc.stdout
    run_dir = only_run_dir(out)
    rows = records(run_dir)
    assert [(r["backend"], r["status"]) for r in rows] == [("torch", "ok"), ("keras", "ok")]
    for r in rows:
        assert r["params"] == 122_570 - 9 * 65  # one output: 64 weights + 1 bias
        assert r["transfer_dataset"] == "cifar10" and r["transfer_n"] == 100
        t = r["transfer"][0]
        assert t["source_index"] == [0, 1] and t["reported_acc"] == 0.38
        assert np.asarray(t["confusion_restricted"]).sum() == 100
        assert r["transfer_acc"] == t["acc"] == pytest.approx(np.trace(t["confusion_restricted"]) / 100)
    summary = (run_dir / "summary.md").read_text()
    assert "## Cross-dataset transfer" in summary and "38.0%" in summary
    assert (run_dir / "plots" / "transfer.png").stat().st_size > 5000


def test_real_cifar_and_kaggle_map_onto_each_other(shared_data, monkeypatch):
    """On the real files: CIFAR-10's cat/dog are classes 3/5; Kaggle 64 px images come down to 32x32."""
    monkeypatch.setenv("BENCH_DATA_DIR", str(shared_data))
    task = load_task("cifar10-cnn", "quick")
    source = prepare(registry.load("cifar10"), max_train=10, max_test=10, seed=0)
    ds, index = load_target(task.transfer[0], source, task, None, seed=0)
    assert index == [3, 5] and ds.classes == ("cat", "dog")
    assert ds.test.x.shape == (1000, 32, 32, 3) and np.bincount(ds.test.y).tolist() == [500, 500]
    reverse = load_task("catdog-cnn", "full")
    cat_dog = prepare(registry.load("afhq"), classes=("cat", "dog"), max_train=10, max_test=10, image_size=32)
    target, index = load_target(reverse.transfer[0], cat_dog, reverse, None, seed=0)
    assert index == [0, 1] and len(target.test) == 2000  # CIFAR-10's 1,000 cat + 1,000 dog test images
    assert target.source.endswith("cifar10.npz")


def _entry() -> dict:
    m = transfer_metrics(one_hot_logits([3, 9, 5, 5, 1]), np.array([0, 0, 0, 1, 1]), ["cat", "dog"], [3, 5], CIFAR)
    return {"dataset": "afhq", "source": "stand-in", "classes": ["cat", "dog"], "reported_acc": None} | m


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("dataset", None, "'dataset' is not text"),
        ("acc", "0.4", "'acc' is not a number"),
        ("acc_restricted", True, "'acc_restricted' is not a number"),
        ("classes", [], "'classes' is not a list"),
        ("confusion_full", [[1, 2]], "'confusion_full' is not a 2 x 10 matrix"),
        ("confusion_restricted", [[1, "x"], [0, 2]], "'confusion_restricted' is not a 2 x 2 matrix"),
        ("report", {"cat": {}}, "'report' has no precision"),
        ("predicted_as", [1, 2], "'predicted_as' is not a class -> count object"),
    ],
)
def test_a_broken_transfer_entry_is_named_and_the_others_still_reported(field, value, named):
    """A hand-edited records.jsonl: the broken entry is skipped with a RunFileWarning naming row and field;
    the good entry of the same record is still in the table."""
    from bench.core.results import RunFileWarning
    from bench.report.transfer import transfer_markdown

    good, bad = _entry(), _entry() | {field: value}
    rec = {"task": "cifar10-cnn", "backend": "torch", "repeat": 0, "status": "ok", "transfer": [bad, good]}
    with pytest.warns(RunFileWarning, match=rf"cifar10-cnn / torch repeat 0: transfer\[0\] {named}"):
        lines = transfer_markdown([rec])
    rows = [line for line in "\n".join(lines).splitlines() if line.startswith("| cifar10-cnn")]
    assert len(rows) == 1 and "40.0%" in rows[0] and "60.0%" in rows[0]  # the good entry: acc 2/5, restricted 3/5


def test_the_plot_names_its_figure_the_mapped_class_accuracy_and_what_stood_in(monkeypatch, tmp_path: Path):
    """transfer.png's panels draw the mapped classes' confusion matrix: its 60.0% is the table's "acc (mapped
    classes)", not "acc (all classes)" (40.0%), and the title says so; it fits its panel. QA, 2026-12-06: the
    panel said "-> afhq" over Kaggle's cat/dog photos (no AFHQ file: catsdogs stood in); it names the stand-in's
    file (or embedded set) on a line of its own, and a real target as it is."""
    from bench.report import transfer as report_transfer

    drawn = []
    monkeypatch.setattr(report_transfer, "save_figure", lambda fig, path, **kw: drawn.append(fig) or True)
    kaggle = "file:/work/shared/data/kaggle_dogs_vs_cats_64.npz (stand-in for afhq)"
    rec = {"task": "cifar10-cnn", "backend": "torch", "repeat": 0, "status": "ok", "transfer": [_entry()]}
    rec["transfer"][0]["source"] = kaggle
    assert report_transfer.plot_transfer([rec], tmp_path / "plots" / "transfer.png")
    (fig,) = drawn
    fig.canvas.draw()
    title = fig.axes[0].title
    expected = "-> afhq\n(stand-in: kaggle_dogs_vs_cats_64.npz)\nacc (mapped classes) 60.0%"
    assert title.get_text().endswith(expected), title.get_text()
    box = title.get_window_extent(fig.canvas.get_renderer())
    assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1, (title.get_text(), box)
    import matplotlib.pyplot as plt

    plt.close(fig)
    words = report_transfer.target_words
    embedded = "embedded:procedural-shapes-catdog-clean (stand-in for afhq)"
    assert words({"dataset": "afhq", "source": embedded}) == "afhq\n(stand-in: procedural-shapes-catdog-clean)"
    assert words({"dataset": "cifar10", "source": "embedded:procedural-shapes10"}) == (
        "cifar10\n(stand-in: procedural-shapes10)"
    )
    assert words({"dataset": "cifar10", "source": "file:/data/cifar10.npz"}) == "cifar10"


def test_the_classification_report_is_shown_under_the_matrix_it_is_read_from():
    """summary.md's transfer report is scikit-learn's over the mapped classes: it follows the mapped classes'
    matrix (whose rows give its recalls), and the all-classes matrix above says its own accuracy."""
    import re

    from bench.report.transfer import transfer_markdown

    t = _entry()
    rec = {"task": "cifar10-cnn", "backend": "torch", "repeat": 0, "status": "ok", "transfer": [t]}
    text = "\n".join(transfer_markdown([rec]))
    assert "on afhq, confusion matrix (all classes, acc 40.0%):" in text
    mapped = text.split("on afhq, mapped classes (cat/dog outputs only, acc 60.0%):", 1)[1]
    matrix = dict(re.findall(r"^\| (cat|dog) \| (\d+ \| \d+) \|$", mapped, re.M))
    assert set(matrix) == {"cat", "dog"}
    recalls = dict(re.findall(r"^\| (cat|dog) \| [\d.]+ \| ([\d.]+) \|", mapped, re.M))
    for k, name in enumerate(("cat", "dog")):
        row = [int(v) for v in matrix[name].split(" | ")]
        assert row == t["confusion_restricted"][k]
        assert float(recalls[name]) == pytest.approx(row[k] / sum(row), abs=5e-4)
