"""Every metric, computed once for both backends from their numpy outputs.

numpy alone, scikit-learn's definitions (tests/test_timing_metrics.py holds every figure equal to its): importing
``sklearn.metrics`` took 1.1 s of CPU on the 2-core AMD VM (SciPy and pandas with it), once in every worker server
and every process that scores a row without one (a data-parallel rank, a node's worker), and put their pages in
each row's ``peak_host_mb``. The decouple phase's estimators are scikit-learn's, imported where it runs."""

from __future__ import annotations

from typing import Any

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def probabilities(logits: np.ndarray) -> np.ndarray:
    """Class probabilities (N, K) from either head: K logits (softmax) or one binary logit (sigmoid).

    A binary head's single logit scores the second class, so its probabilities are
    ``[1 - sigmoid(z), sigmoid(z)]``: every metric below then treats both heads alike.
    """
    if logits.shape[1] == 1:
        p1 = 1.0 / (1.0 + np.exp(-logits[:, 0].astype(np.float64)))
        return np.stack([1.0 - p1, p1], axis=1)
    return softmax(logits)


def class_score_signs(logits_width: int, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which logit column scores each target class, and with what sign (Grad-CAM, saliency).

    Softmax head: column ``c``, sign +1. Binary head: column 0, +1 for class 1 and -1
    for class 0 (the log-odds of class 0 is minus the logit).
    """
    target = np.asarray(target, dtype=np.int64)
    if logits_width == 1:
        return np.zeros_like(target), np.where(target == 1, 1.0, -1.0).astype(np.float32)
    return target, np.ones(len(target), dtype=np.float32)


def check_logits(logits: np.ndarray, n: int, n_outputs: int) -> None:
    if logits.shape != (n, n_outputs):
        raise ValueError(f"backend returned logits of shape {logits.shape}, expected {(n, n_outputs)}")
    if not np.isfinite(logits).all():
        raise ValueError("backend returned non-finite logits (training diverged?)")


def accuracy_and_loss(logits: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Top-1 accuracy and mean cross-entropy of ``logits`` against integer labels ``y``."""
    n, correct, loss_sum = score_sums(logits, y)
    return correct / n, loss_sum / n


def score_sums(logits: np.ndarray, y: np.ndarray) -> tuple[int, int, float]:
    """(images, correct top-1, summed cross-entropy): the sum form ``accuracy_and_loss`` divides, which parts of a
    test set scored apart (a data-parallel row's ranks) add up to the whole set's figures."""
    check_logits(logits, len(y), logits.shape[1])
    probs = probabilities(logits)
    y = np.asarray(y, dtype=np.int64)
    if len(y) and (y.min() < 0 or y.max() >= probs.shape[1]):
        raise ValueError(f"labels outside 0..{probs.shape[1] - 1} for {probs.shape[1]} classes")
    correct = int(np.count_nonzero(probs.argmax(1) == y))
    # scikit-learn's log_loss(normalize=False): each image's probability of its class, clipped to [eps, 1 - eps]
    eps = np.finfo(probs.dtype).eps
    return len(y), correct, float(-np.sum(np.log(np.clip(probs[np.arange(len(y)), y], eps, 1 - eps))))


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` per class, 0 where ``den`` is 0: scikit-learn's ``zero_division=0`` (no class scored is no
    precision, rather than a NaN that would make every average NaN)."""
    out = np.zeros(len(num), dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def confusion(y: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """(k, k) counts: row = true class, column = predicted class (scikit-learn's ``confusion_matrix``)."""
    y, pred = np.asarray(y, dtype=np.int64), np.asarray(pred, dtype=np.int64)
    return np.bincount(y * k + pred, minlength=k * k).reshape(k, k)


def accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    """The fraction of ``pred`` equal to ``y``."""
    return float(np.count_nonzero(np.asarray(y) == np.asarray(pred)) / len(y))


def per_class(y: np.ndarray, pred: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support of each class in ``labels`` (the arrays of scikit-learn's
    ``precision_recall_fscore_support(average=None, zero_division=0)``)."""
    y, pred = np.asarray(y, dtype=np.int64), np.asarray(pred, dtype=np.int64)
    k = int(max(labels.max(initial=0), y.max(initial=0), pred.max(initial=0))) + 1
    tp = np.bincount(y[y == pred], minlength=k)[labels].astype(np.float64)
    true = np.bincount(y, minlength=k)[labels].astype(np.float64)
    predicted = np.bincount(pred, minlength=k)[labels].astype(np.float64)
    return {
        "precision": _divide(tp, predicted),
        "recall": _divide(tp, true),
        "f1-score": _divide(2 * tp, true + predicted),
        "support": true,
    }


def macro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    """The unweighted mean of the per-class F1 over the classes the test labels hold: accuracy's companion where
    the classes are unbalanced (a model that never predicts a rare class keeps a high accuracy, not a high F1).
    A class absent from ``y`` is left out rather than scored 0, so a test subset without it does not lower it."""
    return float(np.average(per_class(y, pred, np.unique(y))["f1-score"]))


def class_report(y: np.ndarray, pred: np.ndarray, names: list[str]) -> dict[str, Any]:
    """Per class (named ``names[k]`` for class ``k``) its precision, recall, F1 and support, then the accuracy and
    the macro and support-weighted averages: scikit-learn's ``classification_report(output_dict=True,
    zero_division=0)`` over every class, key for key."""
    scores = per_class(y, pred, np.arange(len(names)))
    support = scores["support"]
    report: dict[str, Any] = {name: {key: float(v[k]) for key, v in scores.items()} for k, name in enumerate(names)}
    report["accuracy"] = accuracy(y, pred)
    total = float(np.sum(support))
    for average, weights in (("macro avg", None), ("weighted avg", support)):
        report[average] = {
            key: float(np.average(scores[key], weights=weights)) for key in ("precision", "recall", "f1-score")
        } | {"support": total}
    return report


def classification(logits: np.ndarray, y: np.ndarray, classes: tuple[str, ...]) -> dict[str, Any]:
    """Macro-F1 (``test_macro_f1``), the confusion matrix and the per-class report, JSON-ready."""
    pred = probabilities(logits).argmax(1)
    return {
        "test_macro_f1": macro_f1(y, pred),
        "confusion_matrix": confusion(y, pred, len(classes)).tolist(),
        "classification_report": class_report(y, pred, list(classes)),
    }
