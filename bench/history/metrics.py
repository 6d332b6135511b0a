"""The record columns the history follows, which way each is better, and how each is normalised.

A VM's host can run the same code 2.7x slower on one day than on another. Every run measures
the machine's matmul speed per framework (``peak_flops``, "measured: ..."); the normalised view
divides a rate by it and multiplies a time by it, so a slower machine reads as the same code.
Accuracy, memory and MFU (already a share of the measured peak) are not normalised.
"""

from __future__ import annotations

from dataclasses import dataclass

RATE, TIME, PLAIN = 1, -1, 0  # what normalising does: divide by the calibration, multiply, nothing


@dataclass(frozen=True)
class Metric:
    """One followed column: which way is better, how it normalises, and its interval's columns if any."""

    name: str
    higher_is_better: bool
    kind: int = PLAIN
    lo: str | None = None  # the record columns of the interval's bounds
    hi: str | None = None
    label: str = ""


METRICS: tuple[Metric, ...] = (
    Metric("steady_img_s", True, RATE, "steady_img_s_ci_lo", "steady_img_s_ci_hi", "steady step throughput (img/s)"),
    Metric("throughput_img_s", True, RATE, label="steady epoch throughput (img/s)"),
    Metric("eval_img_s", True, RATE, label="inference (img/s)"),
    Metric("train_s", False, TIME, label="training time (s)"),
    Metric("epoch_s_median", False, TIME, "epoch_s_min", "epoch_s_max", "steady epoch (s)"),
    Metric("compile_s", False, TIME, label="first-step overhead (s)"),
    Metric("gradcam_ms_per_img", False, TIME, label="Grad-CAM (ms/img)"),
    Metric("test_acc", True, label="test accuracy"),
    Metric("transfer_acc", True, label="transfer accuracy"),
    Metric("mfu", True, label="MFU"),
    Metric("peak_host_mb", False, label="peak host RSS (MB)"),
    Metric("scaling_eff", True, PLAIN, "scaling_eff_ci_lo", "scaling_eff_ci_hi", "scaling efficiency"),
)
BY_NAME = {m.name: m for m in METRICS}
