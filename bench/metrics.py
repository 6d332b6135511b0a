"""Every metric, computed once for both backends from their numpy outputs (scikit-learn)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, log_loss


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def check_logits(logits: np.ndarray, n: int, n_classes: int) -> None:
    if logits.shape != (n, n_classes):
        raise ValueError(f"backend returned logits of shape {logits.shape}, expected {(n, n_classes)}")
    if not np.isfinite(logits).all():
        raise ValueError("backend returned non-finite logits (training diverged?)")


def accuracy_and_loss(logits: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Top-1 accuracy and mean cross-entropy of ``logits`` against integer labels ``y``."""
    check_logits(logits, len(y), logits.shape[1])
    probs = softmax(logits)
    labels = np.arange(logits.shape[1])
    return float(accuracy_score(y, probs.argmax(1))), float(log_loss(y, probs, labels=labels))


def classification(logits: np.ndarray, y: np.ndarray, classes: tuple[str, ...]) -> dict[str, Any]:
    """Confusion matrix and per-class report, JSON-ready."""
    pred = logits.argmax(1)
    labels = list(range(len(classes)))
    return {
        "confusion_matrix": confusion_matrix(y, pred, labels=labels).tolist(),
        "classification_report": classification_report(
            y, pred, labels=labels, target_names=list(classes), output_dict=True, zero_division=0
        ),
    }
