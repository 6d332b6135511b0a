"""summary.md's accuracy-across-seeds section: each backend's mean with its 95% interval, each pair's verdict.

Only tasks with at least two ok repeats of some backend get one (one run has no spread to judge by). The
margin is the task's ``eval.equivalence_margin_pt`` from plan.json (1 point when a run has none); the
statistics are bench.measure.equivalence's.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import pandas as pd

from bench.measure.equivalence import mean_ci, verdict
from bench.report.backends import label, ordered

DEFAULT_MARGIN_PT = 1.0


def margins(plan: dict[str, Any]) -> dict[str, float]:
    """Task name -> its equivalence margin (points), from plan.json's tasks; unusable entries are left out."""
    tasks = plan.get("tasks")
    if not isinstance(tasks, list):
        tasks = []
    out = {}
    for t in tasks:
        if not isinstance(t, dict) or not isinstance(t.get("name"), str) or not isinstance(t.get("eval"), dict):
            continue
        margin = t["eval"].get("equivalence_margin_pt")
        if isinstance(margin, (int, float)) and 0 < margin <= 100:
            out[t["name"]] = float(margin)
    return out


def _accuracies(sub: pd.DataFrame) -> dict[str, list[float]]:
    ok = sub[sub.status == "ok"]
    acc = pd.to_numeric(ok["test_acc"], errors="coerce")
    return {b: acc[ok.backend == b].dropna().tolist() for b in ordered(ok.backend)}


def _seed(value: Any) -> str:
    """A seed as the integer it is: one row without a seed makes pandas hold the column as floats ("0.0")."""
    return "-" if pd.isna(value) else str(int(value))


def _interval(low: float, high: float) -> str:
    """A mean's interval in points, within 0..100: two repeats give Student's t one degree of freedom, and its ends
    ran past what an accuracy can be ("[79.16, 105.84]", QA 2026-12-08); cut at the bound and said so."""
    cut = [w for w, out in (("0", low < 0), ("100", high > 100)) if out]
    text = f"[{max(low, 0.0):.2f}, {min(high, 100.0):.2f}]"
    return text + (f" (cut at {' and '.join(cut)}: too few repeats to bound it)" if cut else "")


def task_lines(sub: pd.DataFrame, margin_pt: float) -> list[str]:
    """One task's table of backends and its list of pair verdicts; [] without repeats to go by."""
    acc = _accuracies(sub)
    if not acc or max(len(v) for v in acc.values()) < 2:
        return []
    lines = ["| backend | repeats | seeds | test accuracy, mean (pt) | 95% interval (pt) |", "|---|---|---|---|---|"]
    ok = sub[sub.status == "ok"]
    for b, values in acc.items():
        seeds = ", ".join(_seed(s) for s in ok[ok.backend == b]["seed"].tolist())
        ci = mean_ci(values)
        mean = f"{ci[0]:.2f}" if ci else f"{100 * values[0]:.2f}" if values else "-"
        interval = _interval(ci[1], ci[2]) if ci else "-"
        lines.append(f"| {label(b)} | {len(values)} | {seeds} | {mean} | {interval} |")
    if len(acc) < 2:  # one backend (a tune's rows of one, a run of one): its interval, and no pair to judge
        return [*lines, ""]
    lines += ["", f"Pairs (second minus first; equivalence margin ±{margin_pt:g} pt):", ""]
    for a, b in combinations(acc, 2):
        v = verdict(acc[a], acc[b], margin_pt)
        extra = f" (TOST p = {v.p_tost:.3f}, difference p = {v.diff.p:.3f})" if v.diff and v.p_tost is not None else ""
        lines.append(f"- {label(b)} vs {label(a)}: {v.text}{extra}")
    return [*lines, ""]


def section(df: pd.DataFrame, plan: dict[str, Any]) -> str:
    """The whole section, or "" when no task has repeats."""
    task_margins = margins(plan)
    body: list[str] = []
    for task in df.task.unique():
        lines = task_lines(df[df.task == task], task_margins.get(task, DEFAULT_MARGIN_PT))
        if lines:
            body += [f"### {task}", "", *lines]
    if not body:
        return ""
    head = [
        "## Accuracy across seeds",
        "",
        "Each repeat trains with its own seed (the `seed` column: the task's seed + the repeat). Mean and 95% "
        "Student-t interval per backend; per pair, two one-sided Welch tests against the task's margin "
        "(`eval.equivalence_margin_pt`) for equivalence, a two-sided Welch test for a difference, both at 5%; "
        "when neither decides, the repeats per backend that would decide with 80% power if the spread stayed "
        "as observed (bench/measure/equivalence.py).",
        "",
    ]
    return "\n".join(head + body) + "\n"
