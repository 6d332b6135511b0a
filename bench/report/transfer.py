"""The "Cross-dataset transfer" part of summary.md and its confusion-matrix plots.

Reads only the records' ``transfer`` field (computed once in ``bench.phases.transfer``), so a
report can be regenerated from records.jsonl alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from bench.core.results import is_number, warn
from bench.core.runpaths import plot_name
from bench.report.backends import label, ordered
from bench.report.plotting import save_figure


def _pct(v: Any) -> str:
    return "-" if v is None or pd.isna(v) else f"{100 * v:.1f}%"


def _counts(m: Any, rows: int, cols: int) -> bool:
    """``m`` is a ``rows`` x ``cols`` matrix of counts."""
    rows_ok = isinstance(m, list) and len(m) == rows
    return rows_ok and all(isinstance(r, list) and len(r) == cols and all(is_number(v) for v in r) for r in m)


def entry_problem(t: Any) -> str | None:
    """Why one entry of a record's ``transfer`` list cannot be reported (a hand-edited or foreign
    records.jsonl), or None. The shape is ``bench.phases.transfer``'s: what the tables and plots read."""
    if not isinstance(t, dict):
        return f"is {type(t).__name__}, not an object"
    for key in ("dataset", "source"):
        if not isinstance(t.get(key), str):
            return f"{key!r} is not text"
    for key in ("n", "acc", "acc_restricted"):
        if not is_number(t.get(key)):
            return f"{key!r} is not a number"
    if t.get("reported_acc") is not None and not is_number(t["reported_acc"]):
        return "'reported_acc' is not a number"
    classes, seen = t.get("classes"), t.get("predicted_as")
    if not (isinstance(classes, list) and classes and all(isinstance(c, str) for c in classes)):
        return "'classes' is not a list of class names"
    if not (isinstance(seen, dict) and all(is_number(v) for v in seen.values())):
        return "'predicted_as' is not a class -> count object"
    if not _counts(t.get("confusion_full"), len(classes), len(seen)):
        return f"'confusion_full' is not a {len(classes)} x {len(seen)} matrix of counts"
    if not _counts(t.get("confusion_restricted"), len(classes), len(classes)):
        return f"'confusion_restricted' is not a {len(classes)} x {len(classes)} matrix of counts"
    report = t.get("report")
    scores = ("precision", "recall", "f1-score", "support")
    per_class = [report.get(c) for c in classes] if isinstance(report, dict) else [None]
    if not all(isinstance(c, dict) and all(is_number(c.get(k)) for k in scores) for c in per_class):
        return "'report' has no precision/recall/f1-score/support for every class"
    return None


def transfer_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (task, backend, repeat, target) of the ok records that have transfer results;
    tasks in run order, backends in registry order. An entry that cannot be reported is named and skipped."""
    rows = []
    for r in records:
        if r.get("status") != "ok":
            continue
        for i, t in enumerate(r.get("transfer") or []):
            problem = entry_problem(t)
            if problem:
                warn(f"{r['task']} / {r['backend']} repeat {r['repeat']}: transfer[{i}] {problem}; not reported")
                continue
            rows.append(
                {
                    "task": r["task"],
                    "backend": r["backend"],
                    "repeat": r["repeat"],
                    "in-domain acc": r.get("test_acc"),
                    "target": t["dataset"],
                    "target source": t["source"],
                    "images": t["n"],
                    "acc (all classes)": t["acc"],
                    "acc (mapped classes)": t["acc_restricted"],
                    "reported": t.get("reported_acc"),
                    "_t": t,
                }
            )
    tasks, backends = list(dict.fromkeys(r["task"] for r in rows)), ordered(r["backend"] for r in rows)
    return sorted(rows, key=lambda r: (tasks.index(r["task"]), backends.index(r["backend"]), r["repeat"]))


def _confusion_md(t: dict[str, Any]) -> list[str]:
    """The target classes' rows against every source class the model predicted at least once."""
    classes = list(t["predicted_as"])
    used = [k for k, c in enumerate(classes) if t["predicted_as"][c] > 0]
    head = "| true \\ predicted | " + " | ".join(classes[k] for k in used) + " |"
    lines = [head, "|" + "---|" * (len(used) + 1)]
    for name, row in zip(t["classes"], t["confusion_full"], strict=True):
        lines.append(f"| {name} | " + " | ".join(str(row[k]) for k in used) + " |")
    return lines


def _restricted_md(t: dict[str, Any]) -> list[str]:
    """The mapped classes' confusion matrix: only their outputs compete (what the report below is read from)."""
    lines = ["| true \\ predicted | " + " | ".join(t["classes"]) + " |", "|" + "---|" * (len(t["classes"]) + 1)]
    for name, row in zip(t["classes"], t["confusion_restricted"], strict=True):
        lines.append(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
    return lines


def _report_md(t: dict[str, Any]) -> list[str]:
    """The per-class report over the mapped classes (scikit-learn's classification report, in numpy), as a table."""
    lines = ["| class | precision | recall | f1 | images |", "|---|---|---|---|---|"]
    for name in t["classes"]:
        c = t["report"][name]
        scores = " | ".join(f"{c[k]:.3f}" for k in ("precision", "recall", "f1-score"))
        lines.append(f"| {name} | {scores} | {c['support']:.0f} |")
    return lines


def transfer_markdown(records: list[dict[str, Any]]) -> list[str]:
    """Summary lines: the transfer table (ours beside the report's figure) and per-row confusion matrices."""
    rows = transfer_rows(records)
    if not rows:
        return []
    table = pd.DataFrame([{k: v for k, v in r.items() if k != "_t"} for r in rows])
    table["backend"] = table["backend"].map(label)
    for col in ("in-domain acc", "acc (all classes)", "acc (mapped classes)", "reported"):
        table[col] = table[col].map(_pct)
    lines = [
        "## Cross-dataset transfer",
        "",
        "Each trained model, unchanged, on another dataset's images of the mapped classes. "
        "*all classes*: any prediction other than the mapped class is wrong; *mapped classes*: only the "
        "mapped classes' outputs compete. *reported*: what the original experiment saw.",
        "",
        table.to_markdown(index=False, disable_numparse=True),
        "",
    ]
    for r in rows:
        t = r["_t"]
        where = f"{r['task']} / {label(r['backend'])} (repeat {r['repeat']}) on {t['dataset']}"
        mapped = "/".join(t["classes"])
        lines += [f"{where}, confusion matrix (all classes, acc {_pct(t['acc'])}):", "", *_confusion_md(t), ""]
        # the report is scikit-learn's over the restricted predictions: shown under the matrix it is read from
        lines += [f"{where}, mapped classes ({mapped} outputs only, acc {_pct(t['acc_restricted'])}):", ""]
        lines += [*_restricted_md(t), "", *_report_md(t), ""]
    lines += [f"![transfer confusion matrices, mapped classes]({plot_name('transfer')})", ""]
    return lines


STAND_IN = " (stand-in for "


def target_words(t: dict[str, Any]) -> str:
    """The target as a plot names it: its dataset, and on a line of its own what stood in for it. A panel read alone
    said "-> afhq" over Kaggle's cat/dog photos (QA, 2026-12-06); the table beside it says so in its source column."""
    source = str(t.get("source") or "")
    if source.startswith("embedded:"):
        return f"{t['dataset']}\n(stand-in: {source.split(STAND_IN)[0].removeprefix('embedded:')})"
    if STAND_IN in source:
        return f"{t['dataset']}\n(stand-in: {Path(source.split(STAND_IN)[0].removeprefix('file:')).name})"
    return str(t["dataset"])


def plot_transfer(records: list[dict[str, Any]], path: Path) -> bool:
    """Confusion matrices (mapped classes) of every first-repeat transfer result: one row of panels per
    (task, target), one column per backend in registry order, each titled with its mapped-class accuracy."""
    rows = [r for r in transfer_rows(records) if r["repeat"] == 0]
    if not rows:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    pairs = list(dict.fromkeys((r["task"], r["target"]) for r in rows))
    backends = ordered(r["backend"] for r in rows)
    fig, axes = plt.subplots(len(pairs), len(backends), figsize=(3.6 * len(backends), 3.6 * len(pairs)), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()  # a (task, target) a backend has no result for stays blank
    for r in rows:
        ax, t = axes[pairs.index((r["task"], r["target"])), backends.index(r["backend"])], r["_t"]
        ax.set_axis_on()
        cm = np.asarray(t["confusion_restricted"])
        ax.imshow(cm, cmap="Blues", vmin=0)  # colour and text contrast both scale from 0
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center", color="white" if v > cm.max() / 2 else "black")
        ax.set_xticks(range(len(t["classes"])), t["classes"], rotation=30)
        ax.set_yticks(range(len(t["classes"])), t["classes"])
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        # the matrix's own figure: accuracy over the mapped classes (the table's "acc (mapped classes)"), named so
        # that it is not read as the all-classes one beside it
        where = f"{r['task']} / {label(r['backend'])}\n-> {target_words(t)}"
        ax.set_title(f"{where}\nacc (mapped classes) {_pct(t['acc_restricted'])}", fontsize=9)
    return save_figure(fig, path, dpi=100)
