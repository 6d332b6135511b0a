"""The record columns the history follows, which way each is better, and how each is normalised.

A VM's host can run the same code 2.7x slower on one day than on another. Every run measures
the machine's matmul speed per framework (``peak_flops``, "measured: ..."); the normalised view
divides a rate by it and multiplies a time by it, so a slower machine reads as the same code.
Accuracy, memory and MFU (already a share of the measured peak) are not normalised.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.report.tables import WORDS

RATE, TIME, PLAIN = 1, -1, 0  # what normalising does: divide by the calibration, multiply, nothing


@dataclass(frozen=True)
class Metric:
    """One followed column: which way is better, how it normalises, and its interval's columns if any."""

    name: str
    higher_is_better: bool
    kind: int = PLAIN
    lo: str | None = None  # the record columns of the interval's bounds
    hi: str | None = None
    label: str = ""  # summary.md's words for the figure (``WORDS``)


METRICS: tuple[Metric, ...] = (
    Metric("steady_img_s", True, RATE, "steady_img_s_ci_lo", "steady_img_s_ci_hi", WORDS["steady_img_s"]),
    Metric("throughput_img_s", True, RATE, label=WORDS["throughput_img_s"]),
    Metric("eval_img_s", True, RATE, label=WORDS["eval_img_s"]),
    Metric("train_s", False, TIME, label=WORDS["train_s"]),
    Metric("epoch_s_median", False, TIME, "epoch_s_min", "epoch_s_max", WORDS["epoch_s_median"]),
    Metric("compile_s", False, TIME, label=WORDS["compile_s"]),
    Metric("gradcam_ms_per_img", False, TIME, label=WORDS["gradcam_ms_per_img"]),
    Metric("test_acc", True, label=WORDS["test_acc"]),
    Metric("transfer_acc", True, label=WORDS["transfer_acc"]),
    Metric("mfu", True, label=WORDS["mfu"]),
    Metric("peak_host_mb", False, label=WORDS["peak_host_mb"]),
    # not a row of the task's table: the scaling section's figure title (bench.report.scaling)
    Metric("scaling_eff", True, PLAIN, "scaling_eff_ci_lo", "scaling_eff_ci_hi", "scaling efficiency"),
)
BY_NAME = {m.name: m for m in METRICS}
