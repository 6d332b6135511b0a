"""The "Test-set confusion matrices" part of summary.md and its plots: each task's own test split, per backend
(and per data-parallel row: one per worker count and scaling mode).

Reads only the records' ``confusion_matrix`` and ``classification_report`` (computed once in
``bench.core.metrics.classification`` from the test predictions), so ``bench report RUN`` redraws them.
The class names are the report's per-class keys, in the dataset's order.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from bench.core.results import is_number, warn
from bench.core.runpaths import plot_file, plot_name
from bench.report.backends import label, ordered
from bench.report.plotting import PlotJob, save_figure

SCORES = ("precision", "recall", "f1-score", "support")
AVERAGES = ("macro avg", "weighted avg")
MAX_MD_CLASSES = 20  # a wider matrix is drawn but not written out as a markdown table
ZOO = "zoo:"  # a zoo architecture's rows (the sweep's: timings after a handful of steps) are left to the zoo section


def class_names(record: dict[str, Any]) -> list[str] | None:
    """The classes of a record's test-set classification report, in its order; None when it has none."""
    report = record.get("classification_report")
    if not isinstance(report, dict):
        return None
    names = [k for k in report if k not in ("accuracy", *AVERAGES)]
    return names or None


def problem(record: dict[str, Any]) -> str | None:
    """Why a record's confusion matrix and report cannot be shown (a hand-edited records.jsonl), or None."""
    names, cm = class_names(record), record.get("confusion_matrix")
    if names is None:
        return "'classification_report' has no classes"
    n = len(names)
    if not (isinstance(cm, list) and len(cm) == n and all(isinstance(r, list) and len(r) == n for r in cm)):
        return f"'confusion_matrix' is not a {n} x {n} matrix"
    if not all(is_number(v) and math.isfinite(v) and v >= 0 for r in cm for v in r):
        return "'confusion_matrix' holds something other than counts"
    report = record["classification_report"]
    if not all(isinstance(report[c], dict) and all(is_number(report[c].get(k)) for k in SCORES) for c in names):
        return "'classification_report' has no precision/recall/f1-score/support for every class"
    return None


def _row(r: dict[str, Any]) -> tuple[str, str, int, str]:
    """A record's place in the section: task, backend, and a data-parallel row's worker count and mode (0, "": none)."""
    workers = r.get("workers")
    count = workers if isinstance(workers, int) and not isinstance(workers, bool) else 0  # JSON's workers: an int
    return r["task"], r["backend"], count, str(r.get("scaling_mode") or "")


def _workers(r: dict[str, Any]) -> str:
    """A data-parallel row's words after its backend, ", 2 worker(s), strong"; "" for a single-process row."""
    _, _, workers, mode = _row(r)
    return f", {workers} worker(s), {mode}" if workers else ""


def confusion_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first ok repeat of each (task, backend) with a confusion matrix, and of each data-parallel (task, backend,
    workers, mode), zoo architectures' rows aside; tasks in run order, backends in registry order, a backend's
    single-process row before its data-parallel ones. A record whose matrix or report cannot be shown is named and
    skipped."""
    first: dict[tuple[str, str, int, str], dict[str, Any]] = {}
    for r in sorted((r for r in records if r.get("status") == "ok"), key=lambda r: r.get("repeat") or 0):
        zoo = str(r.get("model")).startswith(ZOO)
        if zoo or r.get("confusion_matrix") is None or _row(r) in first:
            continue
        why = problem(r)
        if why:
            where = f"{r['task']} / {r['backend']}{_workers(r)} repeat {r.get('repeat')}"
            warn(f"{where}: {why}; its confusion matrix is not reported")
            continue
        first[_row(r)] = r
    tasks = list(dict.fromkeys(k[0] for k in first))
    backends = ordered(k[1] for k in first)
    return sorted(first.values(), key=lambda r: (tasks.index(r["task"]), backends.index(r["backend"]), _row(r)[2:]))


def _matrix_md(names: list[str], cm: list[list[Any]]) -> list[str]:
    lines = ["| true \\ predicted | " + " | ".join(names) + " | images |", "|" + "---|" * (len(names) + 2)]
    for name, row in zip(names, cm, strict=True):
        lines.append(f"| {name} | " + " | ".join(str(round(v)) for v in row) + f" | {round(sum(row))} |")
    return lines


def _report_md(names: list[str], report: dict[str, Any]) -> list[str]:
    lines = ["| class | precision | recall | f1 | images |", "|---|---|---|---|---|"]
    for name in [*names, *(a for a in AVERAGES if isinstance(report.get(a), dict))]:
        c = report[name]
        if not all(is_number(c.get(k)) for k in SCORES):
            continue
        scores = " | ".join(f"{c[k]:.3f}" for k in ("precision", "recall", "f1-score"))
        lines.append(f"| {name} | {scores} | {c['support']:.0f} |")
    absent = [n for n in names if is_number((report.get(n) or {}).get("support")) and report[n]["support"] == 0]
    if absent and len(absent) < len(names):
        # the table's test macro-F1 leaves a class the test labels lack out (bench.core.metrics.macro_f1); this
        # report's macro avg, scikit-learn's, scores it 0: QA (2026-12-08) read 0.133 and 0.067 for one row
        lines += [
            "",
            f"No test image of {', '.join(absent)}: this report's macro avg scores "
            f"{'it' if len(absent) == 1 else 'them'} 0 over all {len(names)} classes (scikit-learn's); the tables' "
            "test macro-F1 averages the "
            f"{len(names) - len(absent)} classes the test labels hold.",
        ]
    return lines


def confusion_markdown(records: list[dict[str, Any]], run_dir: Path, drawn: frozenset[Path]) -> list[str]:
    """Summary lines: per task and backend (first repeat) the test-set confusion matrix and classification report,
    and each task's plot where this report drew it."""
    rows = confusion_rows(records)
    if not rows:
        return []
    lines = [
        "## Test-set confusion matrices",
        "",
        "Each task's own test split, first repeat of each backend (and of each data-parallel row: its worker "
        "count and scaling mode, rank 0's model evaluated as a single-process row's): rows are the true classes, "
        "columns the predicted ones; the accuracy is the diagonal over all images, and the classification report "
        "(scikit-learn's definitions) is read from the same predictions.",
        "",
    ]
    for r in rows:
        names, cm = class_names(r) or [], r["confusion_matrix"]
        total = sum(sum(row) for row in cm)
        right = sum(cm[i][i] for i in range(len(names)))
        acc = f"{right / total:.4f}" if total else "-"
        where = f"{r['task']} / {label(r['backend'])}{_workers(r)}"
        lines += [f"{where}: {right:.0f} of {total:.0f} test images right, accuracy {acc}", ""]
        if len(names) <= MAX_MD_CLASSES:
            lines += [*_matrix_md(names, cm), ""]
        else:
            lines += [f"({len(names)} classes: the matrix is in records.jsonl and the plot)", ""]
        lines += [*_report_md(names, r["classification_report"]), ""]
    tasks = dict.fromkeys(r["task"] for r in rows)
    drew = [t for t in tasks if plot_file(run_dir, "confusion", t) in drawn]
    lines += [f"![test-set confusion matrices, {t}]({plot_name('confusion', t)})" for t in drew]
    return [*lines, ""]


def plot_confusion(rows: list[dict[str, Any]], task: str, path: Path) -> bool:
    """One panel per backend: ``task``'s test-set confusion matrix, counts written in, titled with its accuracy."""
    mine = [r for r in rows if r["task"] == task]
    if not mine:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    n = len(class_names(mine[0]) or [])
    side = max(3.2, 0.45 * n + 1.6)  # a square panel; the height adds the suptitle, the title and rotated ticks
    fig, axes = plt.subplots(1, len(mine), figsize=(side * len(mine), side + 0.9), squeeze=False)
    for ax, r in zip(axes[0], mine, strict=True):
        names = class_names(r) or []
        cm = np.asarray(r["confusion_matrix"])
        ax.imshow(cm, cmap="Blues", vmin=0)
        if len(names) <= MAX_MD_CLASSES:
            for (i, j), v in np.ndenumerate(cm):
                colour = "white" if v > cm.max() / 2 else "black"
                ax.text(j, i, str(v), ha="center", va="center", color=colour, fontsize=8 if n > 5 else 10)
        ax.set_xticks(range(len(names)), names, rotation=45 if n > 2 else 0, ha="right" if n > 2 else "center")
        ax.set_yticks(range(len(names)), names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        total = int(cm.sum())
        acc = f"{np.trace(cm) / total:.1%}" if total else "-"
        ax.set_title(f"{label(r['backend'])}{_workers(r)}: acc {acc} of {total}", fontsize=10)
    fig.suptitle(f"{task}: test-set confusion matrix", fontsize=11)
    return save_figure(fig, path, dpi=100)


def confusion_plot_jobs(records: list[dict[str, Any]], run_dir: Path) -> list[PlotJob]:
    rows = confusion_rows(records)
    tasks = dict.fromkeys(r["task"] for r in rows)
    return [(plot_confusion, (rows, t, plot_file(run_dir, "confusion", t))) for t in tasks]
