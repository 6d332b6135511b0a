"""The test-set evaluation of a trained model, one path for every row: the single-process worker's and rank 0 of
a data-parallel row (bench.run.dist_worker) call ``evaluate``, so both rows carry the same ``EVAL_FIELDS``.

The backend only predicts (numpy logits); every figure is computed from them in ``bench.core.metrics``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.core import metrics
from bench.core.preprocess import PixelNorm
from bench.core.progress import progress
from bench.measure.timing import SyncTimer

# what ``evaluate`` gives a record: a data-parallel row keeps rank 0's (bench.run.distributed.row_fields)
EVAL_FIELDS = (
    "eval_s",
    "eval_img_s",
    "test_acc",
    "test_loss",
    "test_macro_f1",
    "confusion_matrix",
    "classification_report",
)


def warm_up(backend: Any, state: Any, x: np.ndarray, y: np.ndarray, norm: PixelNorm | None, batch_size: int) -> None:
    """Predict, untimed, one whole batch of the test split and, where the split ends in a shorter batch, as many
    images as that holds: every batch shape the timed evaluation will predict has then been traced (tf.function)
    or compiled (XLA, torch.compile) once, as a per-epoch evaluation leaves it. For a row whose timed evaluation
    would be its first prediction (``eval.per_epoch`` off, or one epoch), and always on rank 0 of a data-parallel
    row (bench.run.dist_worker: its per-epoch predictions were its own part's shapes): there a Keras row's
    ``eval_img_s`` held its predict step's tracing or compile and a torch row's nothing (LeNet-5, one epoch, 1,000
    MNIST test images, 2-core AMD VM at load 1, 2026-12-06: Keras (TF) 13,925 img/s, Keras (JAX) 7,658 cold, 32,044
    and 17,716 warm)."""
    n = len(y)
    rows = np.arange(n if n <= batch_size else batch_size + n % batch_size)
    backend.predict(state, backend.put(x[rows], y[rows], norm), batch_size)


def evaluate(
    backend: Any,
    state: Any,
    test: Any,
    y_test: np.ndarray,
    classes: tuple[str, ...],
    n_outputs: int,
    batch_size: int,
    timer: SyncTimer,
) -> dict[str, Any]:
    """Predict the whole test set (timed on ``timer``, device synchronised) and compute every test-set figure."""
    timer.start()
    logits = backend.predict(state, test, batch_size)
    eval_s = timer.stop()
    metrics.check_logits(logits, len(y_test), n_outputs)
    acc, loss = metrics.accuracy_and_loss(logits, y_test)
    progress(f"test acc {acc:.4f}  loss {loss:.4f}")
    out = {"eval_s": eval_s, "eval_img_s": len(y_test) / eval_s if eval_s > 0 else None, "test_acc": acc}
    out.update(test_loss=loss, **metrics.classification(logits, y_test, classes))
    return out
