"""The result record: one flat dict per (task, backend, repeat), with a fixed column order.

Scalars become ``results.csv`` columns; the few nested values (per-epoch history,
confusion matrix, classification report, knobs) stay in ``records.jsonl``.
"""

from __future__ import annotations

from typing import Any

from bench.core.placement import PLACEMENT_COLUMNS

# The scalar columns each phase adds (bench.phases: its ``columns``), in the table's order.
TRANSFER_COLUMNS = (
    "transfer_dataset",
    "transfer_source",
    "transfer_n",
    "transfer_acc",
    "transfer_acc_restricted",
)
DECOUPLE_COLUMNS = (
    "feature_dim",
    "rf_acc",
    "logreg_acc",
    "decouple_n_train",
    "decouple_s",
)
EXPLAIN_COLUMNS = (
    "forward_ms_per_img",
    "gradcam_ms_per_img",
    "saliency_ms_per_img",
    "gradcam_forward_ratio",
    "explain_layer",
    "explain_images",
    "explain_file",
    "explain_s",
)

# Data-parallel rows (issue #15; bench.run.distributed): None in a single-process row.
DISTRIBUTED_COLUMNS = (
    "workers",
    "scaling_mode",
    "per_worker_batch",
    "global_batch",
    "dist_backend",
    "scaling_eff",
    "scaling_eff_ci_lo",
    "scaling_eff_ci_hi",
    "allreduce_share",
    "allreduce_source",
    "local_step_s",
)

# A run's training-parity check (``--parity-steps``, bench.run.parity): each row's backend against the
# reference from one init, after that many steps; None in a run without it.
PARITY_COLUMNS = (
    "parity_steps",
    "parity_weight_diff",
    "parity_logit_diff",
    "parity_bound_weight",
    "parity_bound_logit",
    "parity_within",
    "parity_alignments",
    "parity_note",
)

COLUMNS = (
    "run_id",
    "task",
    "profile",
    "backend",
    "repeat",
    "status",
    "error",
    "framework",
    "framework_version",
    "device",
    "threads",
    "seed",
    "model",
    "model_options",
    "init",
    "params",
    "dataset",
    "dataset_source",
    "image_shape",
    "n_classes",
    "n_train",
    "n_test",
    "optimizer",
    "lr",
    "adam_eps",
    "epochs",
    "batch_size",
    "data_load_s",
    "data_prep_s",
    "build_s",
    "train_s",
    "first_epoch_s",
    "compile_s",
    "epoch_s_median",
    "epoch_s_min",
    "epoch_s_max",
    "throughput_img_s",
    "first_step_s",
    "warmup_steps",
    "timed_steps",
    "timed_s",
    "steady_step_s",
    "steady_img_s",
    "steady_img_s_ci_lo",
    "steady_img_s_ci_hi",
    "steady_img_s_hw_pct",
    "median_step_img_s",
    "epoch_overhead_s",
    "steady_epoch_ratio",
    "input_step_s",
    "input_batches",
    "input_share",
    "flops_per_img",
    "flops_source",
    "peak_flops",
    "peak_flops_source",
    "mfu",
    "precision",
    "channels_last",
    "compiled",
    "tf32",
    "cudnn_benchmark",
    "steps_per_execution",
    "config",
    "base_task",
    "knob_config",
    "pretrained",
    "best_epoch",
    "best_test_acc",
    "eval_s",
    "eval_img_s",
    "test_acc",
    "test_loss",
    "target_acc",
    "time_to_target_s",
    *TRANSFER_COLUMNS,
    *DECOUPLE_COLUMNS,
    *EXPLAIN_COLUMNS,
    *DISTRIBUTED_COLUMNS,
    *PARITY_COLUMNS,
    "peak_host_mb",
    "peak_device_mb",
    *PLACEMENT_COLUMNS,
    "import_s",
    "wall_s",
    "git_commit",
    "started_at",
    "notes",
)

# The only columns that hold true/false; a boolean anywhere else is a hand edit (and would break arithmetic).
FLAG_COLUMNS = ("channels_last", "cudnn_benchmark", "parity_within")
# The columns that hold text; every other scalar column holds a number (or nothing). Checked against every
# committed record: the report takes medians of the rest, and a string there is an edited file.
TEXT_COLUMNS = frozenset(
    (
        "run_id",
        "task",
        "profile",
        "backend",
        "status",
        "error",
        "framework",
        "framework_version",
        "device",
        "model",
        "model_options",
        "init",
        "dataset",
        "dataset_source",
        "image_shape",
        "optimizer",
        "flops_source",
        "peak_flops_source",
        "precision",
        "compiled",
        "tf32",
        "pretrained",
        "transfer_dataset",
        "transfer_source",
        "explain_layer",
        "explain_file",
        "scaling_mode",
        "dist_backend",
        "allreduce_source",
        "git_commit",
        "started_at",
        "notes",
        "config",
        "base_task",
        "knob_config",
        "executor",
        "node",
        "placement",
        "parity_alignments",
        "parity_note",
    )
)

NESTED = (
    "history",
    "confusion_matrix",
    "classification_report",
    "knobs",
    "transfer",
    "decouple_topk",
    "top_ops",
    "step_img_s",
    "rank_checksums",  # data-parallel rows: each rank's weight checksum after training
)


# Columns renamed since (old -> new), in records and in their nested decouple_topk entries: runs written
# before the rename read as if written after it (bench.core.results.parse_records applies it).
RENAMED = {"lr_acc": "logreg_acc"}  # "lr" is the learning rate; this is the logistic regression's accuracy


def renamed(rec: dict[str, Any]) -> dict[str, Any]:
    """``rec`` with old column names replaced by today's (a new name already present wins)."""
    for old, new in RENAMED.items():
        if old in rec:
            value = rec.pop(old)
            rec.setdefault(new, value)
    old_headline(rec)
    topk = rec.get("decouple_topk")
    if isinstance(topk, list):
        rec["decouple_topk"] = [renamed(t) if isinstance(t, dict) else t for t in topk]
    return rec


def old_headline(rec: dict[str, Any]) -> None:
    """A record from before the headline became the window's mean (it has ``window_img_s``, no
    ``median_step_img_s``): its ``steady_img_s`` was the median step's, so it moves to
    ``median_step_img_s`` and the window's mean becomes the headline. Its interval belonged to the
    median, so the headline of such a row has none (nothing is reported that was not measured)."""
    window = rec.pop("window_img_s", None)
    if window is None or "median_step_img_s" in rec:
        return
    rec["median_step_img_s"] = rec.get("steady_img_s")
    rec["steady_img_s"] = window
    for key in ("steady_img_s_ci_lo", "steady_img_s_ci_hi", "steady_img_s_hw_pct"):
        rec[key] = None
    if rec.get("batch_size") and window:
        rec["steady_step_s"] = rec["batch_size"] / window
    if rec.get("throughput_img_s") and window:
        rec["steady_epoch_ratio"] = window / rec["throughput_img_s"]


NOTE_SEP = "; "  # the notes column: one text, the row's notes joined


def join_notes(notes: list[str]) -> str | None:
    """The ``notes`` column: a note's own "; " becomes ", " so that ``split_notes`` gives the notes back."""
    return NOTE_SEP.join(n.replace(NOTE_SEP, ", ") for n in notes) or None


def split_notes(cell: str) -> list[str]:
    return cell.split(NOTE_SEP)


def new_record(**fields: Any) -> dict[str, Any]:
    """A record with every column present (None where not measured)."""
    unknown = set(fields) - set(COLUMNS) - set(NESTED)
    if unknown:
        raise KeyError(f"unknown record field(s): {sorted(unknown)}")
    rec: dict[str, Any] = dict.fromkeys(COLUMNS)
    rec.update(fields)
    return rec
