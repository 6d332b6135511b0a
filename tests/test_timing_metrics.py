"""The timing logic (with a fake clock) and the metric arithmetic."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.core import metrics
from bench.core.preprocess import epoch_orders, to_float
from bench.core.spec import DatasetSpec
from bench.measure.timing import SyncTimer, summarize_epochs, time_to_target


def test_timer_synchronises_before_every_clock_read():
    events: list[str] = []
    ticks = iter([10.0, 12.5])

    def clock() -> float:
        events.append("clock")
        return next(ticks)

    timer = SyncTimer(lambda: events.append("sync"), clock)
    timer.start()
    assert timer.stop() == 2.5
    assert events == ["sync", "clock", "sync", "clock"]
    with pytest.raises(RuntimeError):
        timer.stop()


def test_first_epoch_is_excluded_from_steady_state():
    s = summarize_epochs([5.0, 1.0, 1.2, 0.8], n_train=1000)
    assert s["epoch_s_median"] == 1.0 and s["throughput_img_s"] == 1000.0
    assert s["compile_s"] == pytest.approx(4.0)
    assert s["train_s"] == pytest.approx(8.0)
    assert (s["epoch_s_min"], s["epoch_s_max"]) == (0.8, 1.2)
    one = summarize_epochs([2.0], n_train=10)
    assert one["compile_s"] is None and one["throughput_img_s"] == 5.0


def test_time_to_target_counts_training_time_only():
    assert time_to_target([2.0, 1.0, 1.0], [0.5, 0.91, 0.95], 0.9) == 3.0
    assert time_to_target([2.0, 1.0], [0.5, 0.6], 0.9) is None


def test_accuracy_and_loss_by_hand():
    logits = np.array([[2.0, 0.0], [0.0, 3.0], [1.0, 0.0]], np.float32)
    y = np.array([0, 1, 1])
    acc, loss = metrics.accuracy_and_loss(logits, y)
    assert acc == pytest.approx(2 / 3)
    expected = -np.mean(
        [math.log(math.e**2 / (math.e**2 + 1)), math.log(math.e**3 / (math.e**3 + 1)), math.log(1 / (math.e + 1))]
    )
    assert loss == pytest.approx(expected, rel=1e-6)


def test_bad_logits_are_refused():
    with pytest.raises(ValueError, match="non-finite"):
        metrics.accuracy_and_loss(np.array([[np.nan, 0.0]]), np.array([0]))
    with pytest.raises(ValueError, match="shape"):
        metrics.check_logits(np.zeros((3, 2)), 3, 10)


def test_classification_report_and_confusion():
    logits = np.eye(3)[[0, 1, 2, 2]]
    out = metrics.classification(logits, np.array([0, 1, 2, 1]), ("a", "b", "c"))
    assert out["confusion_matrix"] == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    assert out["classification_report"]["b"]["recall"] == 0.5


def _cases():
    """Seeded predictions of every shape the metrics meet: a softmax head (some classes never predicted, some absent
    from the labels, one test image), a one-logit binary head, a model that always answers one class, and logits
    so confident that a probability clips at float64's eps."""
    rng = np.random.default_rng(7)
    for n, k in ((1, 3), (2, 2), (37, 5), (300, 10), (64, 2)):
        yield rng.normal(size=(n, k)) * 3, rng.integers(0, k, n)
        yield rng.normal(size=(n, k)), rng.integers(0, max(1, k - 2), n)  # the last classes absent from y
    yield rng.normal(size=(50, 1)), rng.integers(0, 2, 50)  # binary head: one logit scores class 1
    yield np.tile([5.0, 0.0, 0.0], (20, 1)), rng.integers(0, 3, 20)  # always class 0: precision 0/0 elsewhere
    yield np.array([[800.0, -800.0], [-800.0, 800.0], [800.0, -800.0]]), np.array([1, 1, 0])  # log(0) clipped


@pytest.mark.parametrize("case", range(len(list(_cases()))))
def test_every_figure_equals_scikit_learns(case: int):
    """bench.core.metrics is numpy so that no row imports scikit-learn (1.1 s of CPU a worker server, SciPy and
    pandas with it): each figure it records must still be scikit-learn's definition, to the last bit where the
    arithmetic is the same (sums in the same order) and to 1e-12 otherwise."""
    from sklearn.metrics import classification_report, confusion_matrix, f1_score, log_loss

    logits, y = list(_cases())[case]
    probs = metrics.probabilities(logits)
    k = probs.shape[1]
    names = tuple(f"c{i}" for i in range(k))
    pred = probs.argmax(1)
    n, correct, loss_sum = metrics.score_sums(logits, y)
    assert (n, correct) == (len(y), int((pred == y).sum()))
    assert loss_sum == log_loss(y, y_proba=probs, labels=np.arange(k), normalize=False)
    out = metrics.classification(logits, y, names)
    assert out["confusion_matrix"] == confusion_matrix(y, pred, labels=np.arange(k)).tolist()
    present = np.unique(y)
    assert out["test_macro_f1"] == pytest.approx(
        f1_score(y, pred, labels=present, average="macro", zero_division=0), abs=1e-12
    )
    theirs = classification_report(y, pred, labels=np.arange(k), target_names=names, output_dict=True, zero_division=0)
    ours = out["classification_report"]
    assert list(ours) == list(theirs)  # the classes in order, then accuracy, macro avg, weighted avg
    for key, value in theirs.items():
        if isinstance(value, dict):
            assert list(ours[key]) == list(value)
            assert all(ours[key][m] == pytest.approx(v, abs=1e-12) for m, v in value.items()), (key, ours[key], value)
        else:
            assert ours[key] == pytest.approx(value, abs=1e-12)


def test_labels_outside_the_heads_classes_are_refused():
    # scikit-learn refused them inside log_loss; an index past the last column must not read another image's score
    with pytest.raises(ValueError, match=r"labels outside 0\.\.1 for 2 classes"):
        metrics.score_sums(np.zeros((2, 2)), np.array([0, 2]))


def test_preprocessing_and_orders():
    x = np.full((2, 2, 2, 3), 255, np.uint8)
    assert np.allclose(to_float(x, DatasetSpec(name="cifar10")), 1.0)
    norm = to_float(x, DatasetSpec(name="cifar10", mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1.0)))
    assert np.allclose(norm[0, 0, 0], [2.0, 1.0, 0.5])
    a, b = list(epoch_orders(50, 3, seed=7)), list(epoch_orders(50, 3, seed=7))
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=False))
    assert not np.array_equal(a[0], a[1]) and sorted(a[0]) == list(range(50))


def test_epoch_orders_are_made_one_epoch_at_a_time_with_the_same_stream():
    """10^20 epochs cost nothing until they run (the eager list grew a worker to 4.6 GB), and the orders
    are the ones the eager list gave (one generator, a permutation per epoch), so results stay comparable."""
    orders = epoch_orders(1000, 10**20, seed=3)
    rng = np.random.default_rng([3, 2])
    for _ in range(3):
        assert np.array_equal(next(orders), rng.permutation(1000))
    trimmed = next(epoch_orders(100, 10**20, seed=3, whole_batches_of=32))
    assert len(trimmed) == 96 and np.array_equal(trimmed, np.random.default_rng([3, 2]).permutation(100)[:96])


def test_binary_head_probabilities_and_class_scores():
    """One logit z scores class 1: p = [1 - sigmoid(z), sigmoid(z)]; class 0's score is -z."""
    from bench.core.metrics import accuracy_and_loss, class_score_signs, probabilities

    z = np.array([[0.0], [2.0], [-3.0]], dtype=np.float32)
    p = probabilities(z)
    assert p.shape == (3, 2)
    np.testing.assert_allclose(p[:, 1], 1 / (1 + np.exp(-z[:, 0])), rtol=1e-6)
    np.testing.assert_allclose(p.sum(1), 1.0)
    acc, loss = accuracy_and_loss(z[1:], np.array([1, 0]))
    assert acc == 1.0
    assert loss == pytest.approx(np.mean([np.log1p(np.exp(-2.0)), np.log1p(np.exp(-3.0))]), rel=1e-6)
    cols, signs = class_score_signs(1, np.array([0, 1]))
    assert cols.tolist() == [0, 0] and signs.tolist() == [-1.0, 1.0]
    cols, signs = class_score_signs(10, np.array([3, 5]))
    assert cols.tolist() == [3, 5] and signs.tolist() == [1.0, 1.0]
