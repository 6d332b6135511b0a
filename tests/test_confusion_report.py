"""The report's test-set confusion matrix and classification report (each task's own test split, per backend)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from bench.core import metrics
from bench.core.results import RunFileWarning, append_record
from bench.report.confusion import confusion_markdown
from bench.report.summary import write_reports
from tests.test_report import rec


def digits_classification() -> dict:
    """A real classifier's test predictions: logistic regression on scikit-learn's 8x8 digits, 300 test images."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    x, y = load_digits(return_X_y=True)
    model = LogisticRegression(max_iter=200).fit(x[:300], y[:300])  # few training images: some mistakes to count
    logits = model.decision_function(x[-300:])
    return metrics.classification(logits, y[-300:], tuple(f"d{k}" for k in range(10)))


def test_summary_and_plot_show_the_test_confusion_matrix_and_a_report_that_agrees(tmp_path: Path):
    """The lab's confusion matrix and classification report reach summary.md and plots/: the matrix rows add up to
    the test images, the stated accuracy is its diagonal, and each printed precision/recall is the matrix's."""
    c = digits_classification()
    cm = np.array(c["confusion_matrix"])
    acc = np.trace(cm) / cm.sum()
    assert 0.5 < acc < 1.0  # a real matrix with mistakes off the diagonal
    run = tmp_path / "run"
    run.mkdir()
    for backend in ("torch", "keras"):
        append_record(run, rec(backend, 0, train_s=1.0, test_acc=float(acc), n_test=300, **c))
    write_reports(run)
    summary = (run / "summary.md").read_text()
    part = summary.split("## Test-set confusion matrices", 1)[1].split("\n## ", 1)[0]
    assert f"t / PyTorch: {np.trace(cm)} of 300 test images right, accuracy {acc:.4f}" in part
    rows = re.findall(r"^\| (d\d) \| ((?:\d+ \| ){10})(\d+) \|$", part, re.M)
    assert len(rows) == 20  # ten classes, two backends
    for name, counts, total in rows[:10]:
        k = int(name[1:])
        assert [int(v) for v in counts.split(" | ")[:-1] if v.strip()] == cm[k].tolist()
        assert int(total) == cm[k].sum()
    for k in range(10):
        precision, recall = cm[k, k] / max(cm[:, k].sum(), 1), cm[k, k] / cm[k].sum()
        assert f"| d{k} | {precision:.3f} | {recall:.3f} |" in part
    assert "| macro avg |" in part
    assert "![test-set confusion matrices, t](plots/confusion-t.png)" in part
    assert (run / "plots" / "confusion-t.png").is_file()
    assert "plots/confusion-t.png" in (run / "index.html").read_text()


def test_a_matrix_that_does_not_match_its_classes_is_named_and_left_out(tmp_path: Path):
    """A hand-edited records.jsonl: the broken row is named; the other backend's matrix is still shown."""
    good = rec("torch", 0, **digits_classification())
    bad = rec("keras", 0, **digits_classification())
    bad["confusion_matrix"] = bad["confusion_matrix"][:9]
    with pytest.warns(RunFileWarning, match=r"t / keras repeat 0: 'confusion_matrix' is not a 10 x 10 matrix"):
        text = "\n".join(confusion_markdown([good, bad], tmp_path, frozenset()))
    assert "t / PyTorch:" in text and "Keras" not in text
    zoo = rec("torch", 0, task="zoo-resnet50", model="zoo:resnet50", **digits_classification())
    assert "zoo-resnet50" not in "\n".join(confusion_markdown([good, zoo], tmp_path, frozenset()))  # the sweep's


def test_data_parallel_rows_get_a_matrix_each_named_by_workers_and_their_macro_f1_in_the_scaling_table(
    tmp_path: Path,
):
    """A data-parallel row now carries the single-process row's test-set evaluation (bench.run.evaluate): the section
    shows each worker count's matrix under its own name, after the backend's single-process row, each with its own
    counts, the plot a panel each, and the scaling table gives each row's macro-F1 beside its accuracy."""
    run = tmp_path / "run"
    run.mkdir()
    c = digits_classification()
    worse = dict(c, confusion_matrix=np.roll(np.array(c["confusion_matrix"]), 1, axis=1).tolist())  # another model
    dp = dict(scaling_mode="strong", per_worker_batch=8, global_batch=8, steady_img_s=100.0, dist_backend="gloo")
    append_record(run, rec("torch", 0, train_s=1.0, n_test=300, **c))
    append_record(run, rec("torch", 0, workers=2, **dp, test_acc=0.5, **dict(worse, test_macro_f1=0.4567)))
    append_record(run, rec("torch", 0, workers=1, **dp, test_acc=0.9, **dict(c, test_macro_f1=0.8765)))
    write_reports(run)
    summary = (run / "summary.md").read_text()
    part = summary.split("## Test-set confusion matrices", 1)[1].split("\n## ", 1)[0]
    heads = re.findall(r"^(t / PyTorch[^:]*): (\d+) of 300 test images right", part, re.M)
    cm, rolled = np.array(c["confusion_matrix"]), np.array(worse["confusion_matrix"])
    assert heads == [
        ("t / PyTorch", str(np.trace(cm))),
        ("t / PyTorch, 1 worker(s), strong", str(np.trace(cm))),
        ("t / PyTorch, 2 worker(s), strong", str(np.trace(rolled))),
    ]
    assert f"| d0 | {' | '.join(str(v) for v in rolled[0])} | {rolled[0].sum()} |" in part.split(heads[2][0])[1]
    assert (run / "plots" / "confusion-t.png").is_file()
    scaling = summary.split("## Data-parallel scaling", 1)[1]
    assert "test macro-F1" in scaling and "0.8765" in scaling and "0.4567" in scaling


def test_the_lab_reports_accuracy_stands_beside_ours_with_why_a_quick_run_differs():
    """A task's eval.reported_acc reaches its record and summary.md: each backend's gap in points, and a quick
    profile (or stand-in data) is named as the reason the figures do not compare yet; a full run on the real
    data is compared plainly."""
    from bench.core.results import table
    from bench.core.spec import load_task
    from bench.report.reported import reported_lines
    from bench.run.runner import base_record

    assert base_record("r", load_task("cifar10-cnn", "quick"), "torch", 0, 0)["reported_acc"] == pytest.approx(0.708)
    assert base_record("r", load_task("catdog-cnn", "quick"), "torch", 0, 0)["reported_acc"] is None  # none named
    quick = dict(profile="quick", epochs=5, n_train=5000, dataset_source="file:/d/cifar10.npz", reported_acc=0.708)
    rows = table([rec("torch", 0, test_acc=0.47, **quick), rec("keras", 0, test_acc=0.469, **quick)])
    (line, _) = reported_lines(rows)
    assert "70.80% test accuracy; this run: PyTorch 47.00% (-23.80 pt), Keras (TF) 46.90% (-23.90 pt)." in line
    assert "profile `quick` (5 epochs on 5000 training images)" in line
    full = quick | dict(profile="full", epochs=10, n_train=50000)
    (line, _) = reported_lines(table([rec("torch", 0, test_acc=0.712, **full)]))
    assert line.endswith("PyTorch 71.20% (+0.40 pt).")
    stand_in = full | dict(dataset_source="embedded:shapes-10")
    assert "set apart from the full recipe" not in line
    assert "embedded stand-in" in reported_lines(table([rec("torch", 0, test_acc=0.9, **stand_in)]))[0]
    assert reported_lines(table([rec("torch", 0, test_acc=0.9)])) == []  # a task that names no figure


def test_the_lab_report_line_names_every_setting_the_quick_profile_changes():
    """mnist-lenet5-sigmoid's quick profile trains at another lr and batch size as well as on fewer images: the
    line names them all with the full recipe's values, from the record alone (the spec survives the plan's JSON)."""
    import json

    from bench.core.results import table
    from bench.core.spec import load_task, spec_from_dict
    from bench.report.reported import reported_lines
    from bench.run.recipe_cli import with_recipe_options
    from bench.run.runner import base_record

    quick = load_task("mnist-lenet5-sigmoid", "quick")
    assert spec_from_dict(json.loads(json.dumps(quick.to_dict()))) == quick  # how workers and resume get it
    full = load_task("mnist-lenet5-sigmoid", "full")
    assert {k for k, _, _ in quick.profile_changes} == {
        "dataset.max_train",
        "dataset.max_test",
        "train.lr",
        "train.batch_size",
    }  # epochs = 30 in both; target_acc is when a row is timed, not what it learns
    assert full.profile_changes == () and base_record("r", full, "torch", 0, 0)["profile_changes"] is None
    fields = base_record("r", quick, "torch", 0, 0)
    assert fields["lr"] == 0.003 and fields["batch_size"] == 64
    row = {k: fields[k] for k in ("profile", "epochs", "lr", "batch_size", "reported_acc", "profile_changes")}
    rows = table([rec("torch", 0, test_acc=0.95, n_train=10000, dataset_source="file:/d/mnist.npz", **row)])
    (line, _) = reported_lines(rows)
    for part in (
        "profile `quick` (30 epochs on 10000 training images; set apart from the full recipe:",
        "train.lr 0.003 (full recipe: 0.01)",
        "train.batch_size 64 (full recipe: 512)",
        "dataset.max_train 10000 (full recipe: all)",
        "dataset.max_test 2000 (full recipe: all)",
    ):
        assert part in line, part
    drop = load_task("mnist-lenet5", "quick")
    assert "train.drop_last true (full recipe: false)" in base_record("r", drop, "torch", 0, 0)["profile_changes"]
    # QA, 2026-12-07: what --epochs / --max-train set read as the profile's own values (its own: 19 epochs, 10000)
    (flagged,) = with_recipe_options([drop], epochs=1, max_train=500)
    changes = base_record("r", flagged, "torch", 0, 0)["profile_changes"]
    assert "train.epochs 1 (the command line's; full recipe: 20)" in changes, changes
    assert "dataset.max_train 500 (the command line's; full recipe: all)" in changes, changes
    assert "train.drop_last true (full recipe: false)" in changes, changes


def test_a_quick_run_of_a_task_with_no_quick_profile_is_the_full_recipe_not_a_reason_for_the_gap(tmp_path):
    """A student's own task file with no [profiles] ran as `quick` (no GPU) exactly as `--profile full` would,
    yet the lab-report line said "Not comparable as it stands: profile `quick` ..., while the report's figure is
    the full recipe's": the record now says the profile changed nothing ("") and the line names no such reason."""
    from bench.core.results import table
    from bench.core.spec import load_task
    from bench.report.reported import reported_lines
    from bench.run.runner import base_record

    path = tmp_path / "mine.toml"
    path.write_text(
        'name = "mine"\n[dataset]\nname = "mnist"\nmax_train = 3000\n[model]\narch = "lenet5"\n'
        "[train]\nepochs = 3\nbatch_size = 128\nlr = 0.001\n[eval]\nreported_acc = 0.9843\n"
    )
    fields = base_record("r", load_task(str(path), "quick"), "torch", 0, 0)
    assert fields["profile"] == "quick" and fields["profile_changes"] == ""
    row = {k: fields[k] for k in ("profile", "epochs", "reported_acc", "profile_changes")}
    rows = table([rec("torch", 0, test_acc=0.9, n_train=3000, dataset_source="file:/d/mnist.npz", **row)])
    (line, _) = reported_lines(rows)
    assert line.endswith("PyTorch 90.00% (-8.43 pt).") and "Not comparable" not in line
    old = rows.assign(profile_changes=None)  # a record from before profile_changes: the profile may be the reason
    assert "Not comparable as it stands: profile `quick`" in reported_lines(old)[0]


def test_the_budgets_epochs_and_images_are_named_among_the_profiles_changes():
    """`bench all --budget` sizes a quick task's epochs (and images) by time: the lab-report line named only
    what the profile file sets, not the epochs the budget chose; and a size back at the full recipe's is none."""
    from bench.core.spec import RECIPE_KEYS, load_task, with_recipe
    from bench.measure.budget import TaskPlan
    from bench.run.budget_cli import _resized

    quick = load_task("mnist-lenet5-sigmoid", "quick")  # its quick profile keeps the full recipe's 30 epochs
    assert "train.epochs" not in {k for k, _, _ in quick.profile_changes}
    planned = TaskPlan(
        "mnist-lenet5-sigmoid", epochs=12, profile_epochs=quick.train.epochs, n_images=20000, profile_images=10000
    )
    resized = _resized(quick, planned)
    changes = {k: (mine, full) for k, mine, full in resized.profile_changes}
    assert resized.train.epochs == 12 and changes["train.epochs"] == (12, 30)
    assert resized.dataset.max_train == 20000 and changes["dataset.max_train"] == (20000, 0)
    assert [k for k, _, _ in resized.profile_changes] == [k for k in RECIPE_KEYS if k in changes]
    back = with_recipe(resized, "train", epochs=30)  # the full recipe's own: no longer a change
    assert "train.epochs" not in {k for k, _, _ in back.profile_changes} and back.train.epochs == 30


def test_macro_f1_averages_each_test_class_f1_unweighted_and_leaves_out_absent_classes():
    """Labels 0,0,0,1 predicted 0,0,1,1: class 0 F1 = 2*1*(2/3)/(1+2/3) = 0.8, class 1 F1 = 2*0.5*1/1.5 = 2/3, so
    macro-F1 0.7333 where accuracy is 0.75 and the support-weighted F1 0.7667; a third class that neither the labels
    nor the predictions hold is left out (scored 0 it would give 0.4889)."""
    logits = np.array([[2.0, 0.0, -1.0], [1.0, 0.0, -1.0], [0.0, 1.0, -1.0], [0.0, 3.0, -1.0]])
    y = np.array([0, 0, 0, 1])
    out = metrics.classification(logits, y, ("a", "b", "c"))
    assert out["test_macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert out["test_macro_f1"] == pytest.approx(out["classification_report"]["macro avg"]["f1-score"] * 3 / 2)
    # a binary head: its one logit scores class 1 (positive: class 1), the same predictions as above
    binary = metrics.classification(np.array([[-2.0], [-1.0], [1.0], [3.0]]), y, ("cat", "dog"))
    assert binary["test_macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    # a model that always says the majority class: accuracy 0.75, macro-F1 (6/7 + 0) / 2
    always = metrics.classification(np.tile([1.0, 0.0], (4, 1)), y, ("cat", "dog"))
    assert always["test_macro_f1"] == pytest.approx(3 / 7)


def test_the_summary_table_shows_each_backends_median_macro_f1_and_its_ratio(tmp_path: Path):
    for backend, repeat, f1 in (("torch", 0, 0.60), ("torch", 1, 0.80), ("torch", 2, 0.70), ("keras", 0, 0.63)):
        append_record(tmp_path, rec(backend, repeat, test_acc=0.9, test_macro_f1=f1))
    write_reports(tmp_path)
    summary = (tmp_path / "summary.md").read_text()
    row = next(line for line in summary.splitlines() if line.startswith("| test macro-F1"))
    assert [c.strip() for c in row.strip("|").split("|")] == ["test macro-F1", "0.7000", "0.6300", "0.900"]


@pytest.mark.parametrize("classes, panels", [(10, 2), (10, 1), (2, 3)])
def test_the_confusion_plot_keeps_every_axis_label_inside_the_picture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, classes: int, panels: int
):
    """QA: the 10-class plot's "predicted" sat half under the PNG's bottom edge (square panels, rotated ticks and a
    suptitle in a figure one title high): each panel's axis labels and title are drawn inside the saved picture."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from bench.report.confusion import plot_confusion

    y = np.arange(40 * classes) % classes
    logits = np.eye(classes)[(y + (np.arange(y.size) % 7 == 0)) % classes]  # one in seven a class off
    c = metrics.classification(logits, y, tuple(f"c{k}" for k in range(classes)))
    rows = [rec(b, 0, **c) for b in ("torch", "keras", "jax")[:panels]]
    inside: list[bool] = []
    save = Figure.savefig

    def spy(fig: Figure, *args, **kwargs):
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
        for ax in fig.axes:
            for text in (ax.xaxis.label, ax.yaxis.label, ax.title):
                box = text.get_window_extent(renderer)
                inside.append(box.x0 >= 0 and box.y0 >= 0 and box.x1 <= fig.bbox.width and box.y1 <= fig.bbox.height)
        return save(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", spy)
    (tmp_path / "plots").mkdir()
    assert plot_confusion(rows, "t", tmp_path / "plots" / "confusion-t.png")
    assert len(inside) == 3 * panels and all(inside)


def test_a_test_split_missing_classes_says_why_the_reports_macro_avg_is_not_the_tables_macro_f1(tmp_path: Path):
    """QA, 2026-12-08: MNIST with max_test = 5 read test macro-F1 0.1333 in the table and macro avg 0.067 in the
    classification report, without a word: the table averages the classes the test labels hold, the report
    (scikit-learn's) scores every absent class 0. The report says so, and both figures are right as said."""
    y = np.array([0, 1, 2, 3, 4])
    logits = np.eye(10)[[0, 1, 5, 5, 5]]  # two right, three wrong
    c = metrics.classification(logits, y, tuple(str(k) for k in range(10)))
    present = c["classification_report"]
    assert c["test_macro_f1"] == pytest.approx(np.mean([present[str(k)]["f1-score"] for k in range(5)]))
    assert present["macro avg"]["f1-score"] == pytest.approx(np.mean([present[str(k)]["f1-score"] for k in range(10)]))
    run = tmp_path / "run"
    run.mkdir()
    append_record(run, rec("torch", 0, train_s=1.0, test_acc=0.4, n_test=5, **c))
    part = "\n".join(confusion_markdown([rec("torch", 0, train_s=1.0, test_acc=0.4, n_test=5, **c)], run, frozenset()))
    assert (
        "No test image of 5, 6, 7, 8, 9: this report's macro avg scores them 0 over all 10 classes (scikit-learn's); "
        "the tables' test macro-F1 averages the 5 classes the test labels hold." in part
    ), part
    full = metrics.classification(np.eye(10)[np.arange(10)], np.arange(10), tuple(str(k) for k in range(10)))
    assert "No test image" not in "\n".join(confusion_markdown([rec("torch", 0, **full)], run, frozenset()))
