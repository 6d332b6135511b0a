"""Every metric, computed once for both backends from their numpy outputs (scikit-learn)."""

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
    labels = np.arange(probs.shape[1])
    from sklearn.metrics import log_loss  # here: importing scikit-learn costs ~3 s (SciPy)

    correct = int(np.count_nonzero(probs.argmax(1) == y))
    return len(y), correct, float(log_loss(y, probs, labels=labels, normalize=False))


def preload() -> None:
    """Import what every row's evaluation imports where it is used (scikit-learn's metrics, and SciPy with them),
    now: a worker server calls this before it forks its rows, so each row inherits them instead of importing them
    again in its own process (1.0-1.6 s of every row's wall time on the 2-core AMD VM, 2026-12-06)."""
    import sklearn.metrics  # noqa: F401


def macro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    """The unweighted mean of the per-class F1 over the classes the test labels hold: accuracy's companion where
    the classes are unbalanced (a model that never predicts a rare class keeps a high accuracy, not a high F1).
    A class absent from ``y`` is left out rather than scored 0, so a test subset without it does not lower it."""
    from sklearn.metrics import f1_score

    present = np.unique(y).tolist()
    return float(f1_score(y, pred, labels=present, average="macro", zero_division=0))


def classification(logits: np.ndarray, y: np.ndarray, classes: tuple[str, ...]) -> dict[str, Any]:
    """Macro-F1 (``test_macro_f1``), the confusion matrix and the per-class report, JSON-ready."""
    from sklearn.metrics import classification_report, confusion_matrix

    pred = probabilities(logits).argmax(1)
    labels = list(range(len(classes)))
    return {
        "test_macro_f1": macro_f1(y, pred),
        "confusion_matrix": confusion_matrix(y, pred, labels=labels).tolist(),
        "classification_report": classification_report(
            y, pred, labels=labels, target_names=list(classes), output_dict=True, zero_division=0
        ),
    }
