"""Under a task's table: the test accuracy the original experiment (a lab report) saw, beside this run's, and
what this run did differently that can explain a gap (a smaller profile, stand-in data).

Reads the rows' ``reported_acc`` (the task's ``eval.reported_acc``), ``test_acc``, ``profile``, ``epochs``,
``n_train``, ``profile_changes``, ``dataset_source`` and ``pretrained``: a report rebuilt from records.jsonl says
the same.
"""

from __future__ import annotations

import pandas as pd

from bench.report.backends import label, ordered
from bench.report.taskhead import count, epochs


def reported_lines(sub: pd.DataFrame) -> list[str]:
    """summary.md lines for one task's rows; none when the task names no reported accuracy or no row finished."""
    if "reported_acc" not in sub:
        return []
    ok = sub[(sub.status == "ok") & pd.to_numeric(sub.reported_acc, errors="coerce").between(0, 1)]
    ok = ok[pd.to_numeric(ok.test_acc, errors="coerce").notna()]
    if ok.empty:
        return []
    first = ok.iloc[0]
    reported = float(first.reported_acc)
    ours = []
    for b in ordered(ok.backend):
        acc = pd.to_numeric(ok[ok.backend == b].test_acc).median()
        ours.append(f"{label(b)} {100 * acc:.2f}% ({100 * (acc - reported):+.2f} pt)")
    repeats = " (median of the ok repeats)" if ok.duplicated("backend").any() else ""
    line = f"- **lab report**: {100 * reported:.2f}% test accuracy; this run{repeats}: {', '.join(ours)}."
    why = []
    changes = first.get("profile_changes")  # every setting the profile changes, not only the sizes
    if str(first.profile) != "full" and changes != "":  # "": it changes none, the full recipe ran
        # what the command line set (--epochs, --max-train) says so in ``changes`` (QA, 2026-12-07: it read as
        # the profile's own)
        sets = f"; set apart from the full recipe: {changes}" if isinstance(changes, str) and changes else ""
        why.append(
            f"profile `{first.profile}` ({epochs(first.epochs)} on {count(first.n_train)} training images"
            f"{sets}), while the report's figure is the full recipe's (`--profile full`)"
        )
    elif isinstance(changes, str) and changes:  # the full profile, resized on the command line (--epochs ...)
        why.append(f"the full recipe was run with {changes}, while the report's figure is the recipe's as written")
    if str(first.dataset_source).startswith("embedded:"):
        why.append(f"the data are an embedded stand-in (`{first.dataset_source}`), not the report's dataset")
    if why:
        line += " Not comparable as it stands: " + "; ".join(why) + "."
    if isinstance(first.pretrained, str) and first.pretrained:
        line += f" Weights: {first.pretrained}."
    return [line, ""]
