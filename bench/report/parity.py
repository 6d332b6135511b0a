"""Under a task's table: the run's training-parity check (``--parity-steps``), one line per backend.

The check (bench.run.parity) trains the task's model from one init in every backend and puts each backend's
largest weight and held-out logit difference against the reference, and the fp32 bound, into its rows
(bench.core.record.PARITY_COLUMNS); this says them in words, or why a backend has none.
"""

from __future__ import annotations

import pandas as pd

from backends import BACKENDS
from bench.report.backends import label, ordered

REFERENCE = next((b.name for b in BACKENDS.values() if b.parity_reference), "")


def _checked(sub: pd.DataFrame) -> pd.DataFrame:
    """One task's finished rows that carry the check's columns (none when the run had no check)."""
    if "parity_steps" not in sub:
        return sub.iloc[:0]
    return sub[(sub.status == "ok") & sub.parity_steps.notna()]


def parity_lines(sub: pd.DataFrame) -> list[str]:
    """summary.md lines for one task's rows; none when the run had no check (or no finished row has one)."""
    checked = _checked(sub)
    if checked.empty:
        return []
    first = checked.iloc[0]
    lines = [
        f"Training parity: {int(first.parity_steps)} step(s) from one init, the same batches in every backend, "
        f"conventions aligned ({first.parity_alignments}); the largest difference against {label(REFERENCE)}, "
        "and the fp32 bound (docs/methodology.md):",
        "",
    ]
    for backend in ordered(checked.backend):
        r = checked[checked.backend == backend].iloc[0]
        if pd.isna(r.parity_weight_diff):
            lines.append(f"- {label(backend)}: {r.parity_note}")
            continue
        if pd.isna(r.parity_within):  # the bound could not decide: the note says why
            verdict = str(r.parity_note)
        else:
            verdict = "within the bound" if bool(r.parity_within) else "**outside the bound**"
        lines.append(
            f"- {label(backend)}: weights {r.parity_weight_diff:.2e} (bound {r.parity_bound_weight:.2e}), "
            f"held-out logits {r.parity_logit_diff:.2e} (bound {r.parity_bound_logit:.2e}): {verdict}"
        )
    return [*lines, ""]


def parity_verdict(sub: pd.DataFrame) -> str:
    """The terminal's line under one task's table: each backend's verdict against the reference, in words ("" when
    the run had no check). summary.md alone said it, so an outside pair went unseen by whoever read the terminal."""
    checked = _checked(sub)
    parts = []
    for backend in ordered(checked.backend):
        r = checked[checked.backend == backend].iloc[0]
        if backend == REFERENCE:
            continue
        if pd.isna(r.parity_weight_diff):
            parts.append(f"{label(backend)}: no check ({r.parity_note})")
        elif pd.isna(r.parity_within):
            parts.append(f"{label(backend)}: undecided (rounding alone moves it as far as training: summary.md)")
        else:
            said = "within the bound" if bool(r.parity_within) else "OUTSIDE the bound"
            parts.append(
                f"{label(backend)}: {said} (weights {r.parity_weight_diff:.2e} / {r.parity_bound_weight:.2e}, "
                f"logits {r.parity_logit_diff:.2e} / {r.parity_bound_logit:.2e})"
            )
    if not parts:
        return ""
    return f"training parity, {int(checked.iloc[0].parity_steps)} step(s) against {label(REFERENCE)}: " + "; ".join(
        parts
    )
