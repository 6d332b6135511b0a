"""A task's notes under its table, each said once and attributed to the rows that carry it.

Rows carry notes of their own (a short timed window, a headline that parts from the epochs): a note that
one repeat of one backend carries reads, unattributed, as if it were the task's (QA, 2026-12-05: one
sentence three times, with three different figures, under one table and no backend named).
"""

from __future__ import annotations

import pandas as pd

from bench.core.record import split_notes
from bench.report.backends import label, ordered


def attributed_notes(rows: pd.DataFrame) -> list[str]:
    """Each distinct note of ``rows`` (one task's), prefixed with the rows that carry it unless every row does:
    "PyTorch: ...", "Keras (TF) repeat 2: ...", sorted by note."""
    carriers: dict[str, list[tuple[str, int]]] = {}
    for _, r in rows.iterrows():
        if pd.isna(r.get("notes")):
            continue
        for note in split_notes(str(r["notes"])):
            carriers.setdefault(note, []).append((str(r["backend"]), int(r["repeat"])))
    everyone = {(str(b), int(n)) for b, n in zip(rows.backend, rows.repeat, strict=True)}
    out = []
    for note, who in sorted(carriers.items()):
        if set(who) == everyone:
            out.append(note)
            continue
        names = []
        for backend in ordered({b for b, _ in who}):
            repeats = sorted(n for b, n in who if b == backend)
            all_repeats = sorted(n for b, n in everyone if b == backend)
            names.append(label(backend) + ("" if repeats == all_repeats else f" repeat {', '.join(map(str, repeats))}"))
        out.append(f"{'; '.join(names)}: {note}")
    return out
