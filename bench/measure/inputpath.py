"""The input path's own share of a training step, measured once for every backend.

After training, the backend's ``prepare_batches`` runs the input path of ``train_epoch`` alone
(index, host-to-device copy, normalisation, augmentation; no model) over the first batches of
the first epoch's order, timed with the synchronising timer: k batches (auto-ranged) and 2k, and
the time per batch is the slope between them, so a call's one-off cost (building and tracing a
tf.data pipeline, once per epoch) does not count per step. An epoch shorter than 2k batches is
read round again (the order cycled), so the slope is taken on every row: a short epoch's mean
would charge the whole per-call cost to its few batches (Keras LeNet-5's 6 batches read 13-18%
that way against a 1.3-1.5 ms per-batch cost in isolation). ``input_share`` = that / the steady
step time: a row whose input path takes a large share of a step times the suite's data handling,
not the framework, and the summary says so.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.measure.timing import SyncTimer

MIN_BATCHES = 8  # at least this many batches (or the whole epoch) ...
MIN_SECONDS = 0.2  # ... and doubled until they take this long (a 2-core CPU reads ~1 ms steadily over it)
MAX_BATCHES = 4096  # ... but no further: the measurement must stay a small part of a row
WARN_SHARE = 0.10  # summary.md flags a row above this


def step_seconds(fields: dict[str, Any], n_train: int, batch_size: int) -> float | None:
    """The steady time of one batch's step: a batch's images at the window's rate, else the median steady epoch
    over its batches. Not ``steady_step_s``: with Keras's ``steps_per_execution`` k, a timed step is k batches,
    and the share read against it came out k times too small (QA, 2026-12-05: 6% for a true 50% at k = 8)."""
    if fields.get("steady_img_s"):
        return batch_size / float(fields["steady_img_s"])
    if fields.get("steady_step_s"):
        return float(fields["steady_step_s"])
    if fields.get("epoch_s_median"):
        return float(fields["epoch_s_median"]) / -(-n_train // batch_size)
    return None


def input_fields(
    backend: Any, state: Any, data: Any, order: np.ndarray, batch_size: int, timer: SyncTimer, fields: dict[str, Any]
) -> dict[str, Any]:
    """``input_step_s`` (seconds per batch), ``input_batches`` (how many were timed), ``input_share``."""
    if not hasattr(backend, "prepare_batches") or len(order) == 0:
        return {}

    def timed(k: int) -> tuple[float, int]:
        idx = np.resize(order, k * batch_size)  # cycled when k batches outrun the epoch
        timer.start()
        n = backend.prepare_batches(state, data, idx, batch_size)
        return timer.stop(), n

    backend.prepare_batches(state, data, order[:batch_size], batch_size)  # warm: first allocations
    k = MIN_BATCHES
    seconds, n = timed(k)
    while seconds < MIN_SECONDS and 2 * k <= MAX_BATCHES // 2:
        k *= 2
        seconds, n = timed(k)
    # The slope between k and 2k batches: a call's fixed cost (tf.data tracing) drops out.
    seconds2, n2 = timed(2 * k)
    slope = (seconds2 - seconds) / max(n2 - n, 1)
    per_batch = slope if slope > 0 else seconds2 / max(n2, 1)  # a disturbed reading: the upper bound
    step_s = step_seconds(fields, len(order), batch_size)
    return {
        "input_step_s": per_batch,
        "input_batches": n2,
        "input_share": per_batch / step_s if step_s else None,
    }


def input_bound_warnings(rows: list[dict[str, Any]]) -> list[str]:
    """summary.md lines for the rows whose input path takes more than WARN_SHARE of a step."""
    return [
        f"- **input-bound?** {r['backend']} repeat {r['repeat']}: the input path alone takes "
        f"{r['input_share']:.0%} of a steady step ({1000 * r['input_step_s']:.2f} ms per batch): "
        "the row times the data handling as much as the framework"
        for r in rows
        if isinstance(r.get("input_share"), (int, float)) and r["input_share"] > WARN_SHARE
    ]
