"""What summary.md and index.html both open with: each task's model, data and size, from its rows (and the run's
wall-time sentence, so the two outputs say it alike).

A row that never ran (left out by the budget, refused, a missing framework) carries no data fields, so
the facts come from a row that loaded the data; the counts print as integers even when such a row made
the table's column floats.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class TaskHead:
    model: str
    options: str
    dataset: str
    source: str | None  # where the data came from; None when no row loaded it
    n_train: str
    n_test: str
    epochs: str  # "1 epoch", "5 epochs"
    batch_size: str
    profile: str
    # Rows that loaded different data (a resume elsewhere, by hand; a run refuses it since 2026-12-05): said
    # above the table, which would otherwise put frameworks trained on different data side by side.
    mixed_data: str | None = None

    def markdown(self) -> str:
        """The task's line in summary.md: "Model `lenet5` {...}, dataset `mnist` from `file:...`, 5000 train / 1000
        test, 3 epochs, batch 64, profile `quick`." (a task's part, or its scaling section where it has no part)."""
        data = (
            f"from `{self.source}`, {self.n_train} train / {self.n_test} test"
            if self.source is not None
            else "not loaded (no row ran)"
        )
        return (
            f"Model `{self.model}` {self.options}, dataset `{self.dataset}` {data}, {self.epochs}, "
            f"batch {self.batch_size}, profile `{self.profile}`."
        )


def count(v: object) -> str:
    """A count as a table column holds it: 5000, not 5000.0; "?" when missing (numpy's scalars count too)."""
    if not isinstance(v, numbers.Real) or isinstance(v, bool | np.bool_) or v != v:
        return "?"
    return str(round(v))


def epochs(v: object) -> str:
    """A row's epochs as a sentence says them: "1 epoch", "5 epochs" ("? epochs" when missing)."""
    n = count(v)
    return f"{n} epoch" if n == "1" else f"{n} epochs"


def task_head(rows: pd.DataFrame) -> TaskHead:
    """The facts of the task whose rows (one task's part of the table) are ``rows``."""
    loaded = rows[rows.n_train.notna()]
    first = (loaded if len(loaded) else rows).iloc[0]
    return TaskHead(
        model=str(first.model),
        options=str(first.model_options),
        dataset=str(first.dataset),
        source=str(first.dataset_source) if len(loaded) else None,
        n_train=count(first.n_train),
        n_test=count(first.n_test),
        epochs=epochs(first.epochs),
        batch_size=count(first.batch_size),
        profile=str(first.profile),
        mixed_data=mixed_data(loaded),
    )


def mixed_data(loaded: pd.DataFrame) -> str | None:
    """ "rows trained on different data: <source> (<n> train) for <backends>; ..." when they did, else None."""
    groups = loaded.groupby([loaded.dataset_source.astype(str), loaded.n_train.map(count)], sort=False).backend
    if groups.ngroups < 2:
        return None
    parts = [f"{src} ({n} train) for {', '.join(dict.fromkeys(map(str, b)))}" for (src, n), b in groups]
    return "rows trained on different data, so their figures do not compare: " + "; ".join(parts)


def wall_time_sentence(wall_s: float) -> str:
    """state.json's wall time, saying what it spans: `bench all` prints its "achieved" from the command's start,
    which also holds its start-up, calibration and plan (QA, 2026-12-05: 4 min 17 s here, 4 min 32.5 s there)."""
    minutes, seconds = divmod(round(wall_s), 60)
    return (
        f"Wall time {minutes} min {seconds} s, from the first row to the reports (the command's start-up and plan "
        "before them not counted)."
    )


def machine_words(env: dict[str, Any]) -> str:
    """The machine as summary.md's head and the page's environment name it: CPU, cores (and the cores a run was
    restricted to, by taskset or a cpuset: environment.json's ``usable_cores``, its frameworks' threads sized by
    them), memory."""
    if not env.get("cpu"):  # no environment.json, or one without the machine: summary.md read "None (None cores"
        return "not recorded (the run's environment.json is missing or unreadable)"
    usable = env.get("usable_cores")
    restricted = f", this run on {usable} of them (taskset or a cpuset)" if usable else ""
    return f"{env.get('cpu')} ({env.get('cores') or '?'} cores{restricted}, {env.get('memory_gib') or '?'} GiB)"
