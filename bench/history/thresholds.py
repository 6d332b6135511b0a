"""What `bench history` calls a regression: its thresholds, in a module of their own because every `bench` command
builds the history sub-command's parser (its defaults are these), and the checks beside them bring pandas (0.4 s)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Thresholds:
    z: float = 4.0  # robust z the newest point must pass to be a regression
    min_change: float = 0.05  # ... and this relative change, in the worse direction
    # ... or, for an accuracy, this drop in points (bench compare's --max-acc-drop): 5% of 0.966 is 4.8 points, and a
    # planted bug's 0.966 -> 0.932 (z -35,000 on a seeded series) was a step and never a regression (QA, 2026-12-07)
    max_acc_drop: float = 0.01
    lookback: int = 20  # points before the newest that form its baseline
    min_step: float = 0.01  # a step smaller than this (relative) is not reported
