"""The result record: one flat dict per (task, backend, repeat), with a fixed column order.

``Record`` declares every field once, with its type. Scalars become ``results.csv`` columns; the few
nested values (per-epoch history, confusion matrix, classification report, knobs) stay in ``records.jsonl``.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any

from bench.core.metric_table import METRICS


@dataclass(frozen=True)
class Record:
    """One row's fields and the type each holds: the one declaration of a record. The table's columns, in
    order, are its scalar fields; the nested ones stay in records.jsonl. Rows travel as the JSON objects
    this describes (a worker's answer, a line of records.jsonl, a row of the pandas table); where a worker's
    record crosses back into the runner it is checked against these types (bench.core.results.checked_answer),
    and a reader of records.jsonl ignores, naming it, a value of the wrong kind (bench.core.results.bad_values).
    ``int`` marks a count (a float there is a broken record when a worker writes it); ``float`` any number."""

    run_id: str | None = None
    task: str | None = None
    profile: str | None = None
    backend: str | None = None
    repeat: int | None = None
    status: str | None = None
    error: str | None = None
    phase_errors: str | None = None  # "explain: TypeError: ...": phases that raised on an ok row (" | " between)
    # a timeout row's stage when its limit hit: "training", "input_path", "mfu_peak" (bench.core.phase.STAGE_WORDS) or a
    # phase's name; what it had measured before that stage is kept in the row, which stays "timeout"
    # (bench.run.executors.remote.timed_out). None elsewhere, and in a timeout record from before 2026-12-08 (which
    # kept nothing it had measured)
    timed_out_in: str | None = None
    # True: a failed row lost with its worker, node or job (a Ray worker or node died, SLURM lost or cancelled the
    # job, a local worker server died), not by a failure of its own: --resume runs it again, as an interrupted one
    # (bench.core.results.kept_on_resume). None otherwise, and in every record from before 2026-12-06 (kept).
    lost: bool | None = None
    framework: str | None = None
    framework_version: str | None = None
    device: str | None = None
    threads: int | None = None
    seed: int | None = None
    model: str | None = None
    model_options: str | None = None
    init: str | None = None
    params: int | None = None
    dataset: str | None = None
    dataset_source: str | None = None
    image_shape: str | None = None
    n_classes: int | None = None
    n_train: int | None = None
    n_test: int | None = None
    optimizer: str | None = None
    lr: float | None = None
    adam_eps: float | None = None
    epochs: int | None = None
    batch_size: int | None = None
    # the task spec's other recipe settings (loss, momentum, normalisation, augmentation ...), JSON: every field
    # bench.core.recipe derives from the spec that no column above holds; None in a record from before 2026-12-06
    recipe: str | None = None
    data_load_s: float | None = None
    data_prep_s: float | None = None
    build_s: float | None = None
    train_s: float | None = None
    first_epoch_s: float | None = None
    compile_s: float | None = None
    epoch_s_median: float | None = None
    epoch_s_min: float | None = None
    epoch_s_max: float | None = None
    throughput_img_s: float | None = None
    first_step_s: float | None = None
    new_shape_step_s: float | None = None
    epoch_end_step_s: float | None = None  # async steps: the first epoch's last step, off the window
    warmup_steps: int | None = None
    warmup_batches: int | None = None  # batches between the first step and the window (whole Keras executions)
    profiled_batches: int | None = None  # --profile-ops: the optimiser steps its top_ops' times are summed over
    timed_steps: int | None = None
    timed_s: float | None = None
    steady_step_s: float | None = None
    steady_img_s: float | None = None
    steady_img_s_ci_lo: float | None = None
    steady_img_s_ci_hi: float | None = None
    steady_img_s_hw_pct: float | None = None
    median_step_img_s: float | None = None
    epoch_overhead_s: float | None = None
    steady_epoch_ratio: float | None = None
    input_step_s: float | None = None
    input_batches: int | None = None
    input_share: float | None = None
    flops_per_img: float | None = None
    flops_source: str | None = None
    peak_flops: float | None = None
    peak_flops_source: str | None = None
    # the node's 1-min load average as a measured peak's matmuls ended (bench.measure.mfu.measured_load): beyond
    # node_cores, the peak reads low and MFU high, and the row's notes say so; None for a vendor table's peak
    peak_flops_load: float | None = None
    # a measured peak's key (bench.measure.mfu.peak_key: node, framework, device, precision, threads, cores), and True
    # where the row read it from an earlier row of its run (the local executor's) instead of measuring it again:
    # machine_speed counts each measurement once
    peak_flops_key: str | None = None
    peak_flops_reused: bool | None = None
    mfu: float | None = None
    precision: str | None = None
    channels_last: bool | None = None
    compiled: str | None = None
    tf32: str | None = None
    cudnn_benchmark: bool | None = None
    fused_optimizer: bool | None = None  # torch: the optimiser's fused kernel (runtime.fused_optimizer)
    steps_per_execution: int | None = None
    config: str | None = None
    base_task: str | None = None
    knob_config: str | None = None
    pretrained: str | None = None
    best_epoch: int | None = None
    best_test_acc: float | None = None
    eval_s: float | None = None
    eval_img_s: float | None = None
    test_acc: float | None = None
    test_loss: float | None = None
    test_macro_f1: float | None = None  # per-class F1 averaged over the test labels' classes (bench.core.metrics)
    target_acc: float | None = None
    reported_acc: float | None = None  # the task's eval.reported_acc: what the original experiment saw
    # What the row's profile sets apart from the full recipe ("train.lr 0.003 (full recipe: 0.01), ..."; the
    # TaskSpec's profile_changes): named beside reported_acc as what keeps the two figures apart
    profile_changes: str | None = None
    time_to_target_s: float | None = None
    # The transfer phase's columns (TRANSFER_COLUMNS).
    transfer_dataset: str | None = None  # the first target's: the table's transfer rows are its
    transfer_targets: int | None = None  # how many targets the row transferred to (each in ``transfer``)
    transfer_source: str | None = None
    transfer_n: int | None = None
    transfer_acc: float | None = None
    transfer_acc_restricted: float | None = None
    # The decouple phase's (DECOUPLE_COLUMNS).
    feature_dim: int | None = None
    rf_acc: float | None = None
    logreg_acc: float | None = None
    decouple_n_train: int | None = None
    decouple_s: float | None = None
    # The explain phase's (EXPLAIN_COLUMNS).
    forward_ms_per_img: float | None = None
    gradcam_ms_per_img: float | None = None
    saliency_ms_per_img: float | None = None
    gradcam_forward_ratio: float | None = None
    explain_layer: str | None = None
    gradcam_layer_hw: str | None = None  # the Grad-CAM layer's output size, "HxW" ("1x1": the maps are flat)
    explain_images: int | None = None
    explain_file: str | None = None
    explain_s: float | None = None
    # A data-parallel row's (DISTRIBUTED_COLUMNS; issue #15, bench.run.distributed): None in a single-process row.
    workers: int | None = None
    scaling_mode: str | None = None
    per_worker_batch: int | None = None
    global_batch: int | None = None
    dist_backend: str | None = None
    scaling_eff: float | None = None
    scaling_eff_ci_lo: float | None = None
    scaling_eff_ci_hi: float | None = None
    allreduce_share: float | None = None
    allreduce_source: str | None = None
    local_step_s: float | None = None
    # The run's training-parity check (PARITY_COLUMNS; --parity-steps): None in a run without it.
    parity_steps: int | None = None
    parity_weight_diff: float | None = None
    parity_logit_diff: float | None = None
    parity_bound_weight: float | None = None
    parity_bound_logit: float | None = None
    parity_within: bool | None = None
    parity_alignments: str | None = None
    parity_note: str | None = None
    peak_host_mb: float | None = None
    peak_device_mb: float | None = None
    # Where the row ran (bench.core.placement.PLACEMENT_COLUMNS).
    executor: str | None = None
    node: str | None = None
    placement: str | None = None
    rows_beside: int | None = None
    # The row's node as its training window ended: its 1-min load average and os.cpu_count() (environment.json
    # keeps the driver's load at the run's start alone, and a run on a loaded machine read as a regression)
    load_avg_1m_end: float | None = None
    node_cores: int | None = None
    # Over its training, the share of its cores' time other processes used, % (bench.core.placement.OthersOnCores):
    # one busy process beside a 2-core row left the load average under the "beyond its cores" line
    others_cpu_pct: float | None = None
    import_s: float | None = None
    wall_s: float | None = None
    git_commit: str | None = None
    started_at: str | None = None
    notes: str | None = None
    # Nested values: records.jsonl only, never a table column (NESTED).
    history: list[dict[str, Any]] | None = None
    confusion_matrix: list[list[int]] | None = None
    classification_report: dict[str, Any] | None = None
    knobs: dict[str, Any] | None = None
    transfer: list[dict[str, Any]] | None = None
    decouple_topk: list[dict[str, Any]] | None = None
    top_ops: list[dict[str, Any]] | None = None
    step_img_s: list[float] | None = None
    # where steps are dispatched asynchronously (Keras/JAX): the entries of step_img_s each synchronised stretch
    # holds, all its rate: one per timed step up to 400 steps, beyond one per k = ceil(steps / 400) of the
    # stretch's steps (before 2026-12-06: its steps); the stretches are the samples (bench.measure.stats.samples)
    step_segments: list[int] | None = None
    rank_checksums: list[float] | None = None


def _held() -> dict[str, type]:
    """The class each field holds besides None (``list[dict[str, Any]] | None`` -> list)."""
    held = {}
    for name, hint in typing.get_type_hints(Record).items():
        (kind,) = (a for a in typing.get_args(hint) if a is not type(None))
        held[name] = typing.get_origin(kind) or kind
    return held


HELD = _held()
KINDS = {name: {str: "text", bool: "flag", int: "count", float: "number"}.get(c, "nested") for name, c in HELD.items()}
COLUMNS = tuple(name for name, kind in KINDS.items() if kind != "nested")  # results.csv's, in this order
NESTED = tuple(name for name, kind in KINDS.items() if kind == "nested")
# The only columns that hold true/false; a boolean anywhere else is a hand edit (and would break arithmetic).
FLAG_COLUMNS = tuple(name for name, kind in KINDS.items() if kind == "flag")
# The columns that hold text; every other scalar column holds a number (or nothing). Checked against every
# committed record: the report takes medians of the rest, and a string there is an edited file.
TEXT_COLUMNS = frozenset(name for name, kind in KINDS.items() if kind == "text")
COUNT_COLUMNS = frozenset(name for name, kind in KINDS.items() if kind == "count")


def span(first: str, last: str) -> tuple[str, ...]:
    """The columns from ``first`` to ``last`` in the record's order: a group declared once, in ``Record``."""
    return COLUMNS[COLUMNS.index(first) : COLUMNS.index(last) + 1]


# The scalar columns each phase adds (bench.phases: its ``columns``), and the other groups, in the table's order.
TRANSFER_COLUMNS = span("transfer_dataset", "transfer_acc_restricted")
DECOUPLE_COLUMNS = span("feature_dim", "decouple_s")
EXPLAIN_COLUMNS = span("forward_ms_per_img", "explain_s")
DISTRIBUTED_COLUMNS = span("workers", "local_step_s")  # data-parallel rows (issue #15; bench.run.distributed)
PARITY_COLUMNS = span("parity_steps", "parity_note")  # a run's training-parity check (bench.run.parity)


# The record's own columns of what a row ran, the recipe before 2026-12-06; bench.core.recipe adds the rest of the
# spec's settings (its ``recipe`` column) and says which spec field each of these holds. Together they are the
# history's series key (bench.history.rows) and what `bench compare` checks two runs share before it calls a change a
# regression (bench.report.compare).
RECIPE_FIELDS = (
    "profile",
    "model",
    "model_options",
    "init",
    "pretrained",
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
    "seed",
    "workers",
    "scaling_mode",
    "per_worker_batch",
    "global_batch",
)
# The recipe fields that size a run, and the metrics each moves (each metric says which: ``Metric.moves_with`` in
# bench.core.metric_table): another number of epochs changes the training time and what the model learns, not a
# step's throughput. `bench all` sizes both to the machine and the time left (bench.measure.budget), so two of its
# runs may differ in them alone: the history keeps a metric's series across such runs when the metric does not move
# with the field, and `bench compare` judges it.
SIZE_FIELDS = ("epochs", "n_train")
MOVES_WITH = {f: tuple(m.column for m in METRICS if f in m.moves_with) for f in SIZE_FIELDS}


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
    unknown = set(fields) - set(KINDS)
    if unknown:
        raise KeyError(f"unknown record field(s): {sorted(unknown)}")
    rec: dict[str, Any] = dict.fromkeys(COLUMNS)
    rec.update(fields)
    return rec


# the engines' raw GPU-only flags in a record's nested ``knobs``: TF32 (torch's two, Keras's one or JAX's precision
# name) and torch's cuDNN autotuning, each a flat column left empty on a CPU (bench.measure.perf.GPU_ONLY_COLUMNS)
GPU_KNOBS = ("tf32", "tf32_matmul", "tf32_cudnn", "cudnn_benchmark")


def on_cpu(device: str) -> bool:
    """Whether a backend's ``configure`` named a CPU ("cpu (x86_64)")."""
    return device.startswith("cpu")


def device_knobs(knobs: dict[str, Any], device: str) -> dict[str, Any]:
    """The nested ``knobs`` as a record keeps them: on a CPU without the TF32 and cuDNN flags, as its flat ``tf32``
    and ``cudnn_benchmark`` columns are empty (the nested dict had kept torch's ``tf32_cudnn=True`` and
    ``cudnn_benchmark`` beside empty columns)."""
    return {k: v for k, v in knobs.items() if k not in GPU_KNOBS} if on_cpu(device) else knobs
