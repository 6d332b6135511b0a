"""The record columns the history follows, which way each is better, and how each is normalised.

A VM's host can run the same code 2.7x slower on one day than on another. Every run measures
the machine's matmul speed per framework (``peak_flops``, "measured: ..."); the normalised view
divides a rate by it and multiplies a time by it, so a slower machine reads as the same code.
Accuracy, memory and MFU (already a share of the measured peak) are not normalised.
"""

from __future__ import annotations

from bench.core import metric_table
from bench.core.metric_table import FOLLOWED, Metric

RATE, TIME, PLAIN = 1, -1, 0  # what normalising does: divide by the calibration, multiply, nothing

# The followed figures, in the history's order, each with its words, better direction and interval columns
# (bench.core.metric_table: ``Metric.followed``)
METRICS: tuple[Metric, ...] = FOLLOWED
BY_NAME = {m.column: m for m in METRICS}


def normalising(m: Metric) -> int:
    """What normalising does to ``m``: a rate divides by the calibration (RATE), a time multiplies (TIME)."""
    return {metric_table.RATE: RATE, metric_table.TIME: TIME}.get(m.kind, PLAIN)
