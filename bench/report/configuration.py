"""Under a task's table: what each backend ran as (precision, compiler, layout, steps per execution, threads, and on a
GPU TF32 and cudnn.benchmark), from the rows' own columns.

The side-by-side table holds figures only, and a tuned ``TASK.best`` table puts each backend's winning knobs side by
side: PyTorch in bf16 and channels_last beside Keras in fp32 with 8 steps per execution, where nothing under the
table said so (QA, 2026-12-06; results.csv and records.jsonl had it). Where the backends ran different precisions the
line says so: their speed then compares different arithmetic, not only different frameworks.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from bench.report.backends import label, ordered

# (column, how a value reads); on a CPU, TF32 and cudnn.benchmark do not exist, whatever a framework's flag says
SETTINGS: tuple[tuple[str, Any], ...] = (
    ("precision", str),
    ("compiled", str),
    ("channels_last", lambda v: "channels_last" if v else "channels_first (NCHW)"),
    ("steps_per_execution", lambda v: f"{int(v)} step(s) per execution"),
    ("threads", lambda v: f"{int(v)} thread(s)"),
    ("fused_optimizer", lambda v: "fused optimiser" if v else ""),  # said when on: off is torch's own choice
)
GPU_SETTINGS: tuple[tuple[str, Any], ...] = (
    ("tf32", lambda v: f"TF32 {v}"),
    ("cudnn_benchmark", lambda v: f"cudnn.benchmark {'on' if v else 'off'}"),
)
WORDS = "as run"


def _given(v: Any) -> bool:
    return v is not None and not (isinstance(v, float) and pd.isna(v)) and v != ""


def _settings(rows: pd.DataFrame) -> list[str]:
    """One backend's settings in words; a setting its repeats ran differently shows every value."""
    # a CPU row's device is "cpu (x86_64)"; a GPU's, the driver's name for it ("NVIDIA H100 80GB HBM3")
    gpu = "device" in rows and any(_given(d) and not str(d).startswith("cpu") for d in rows.device)
    out = []
    for col, words in SETTINGS + (GPU_SETTINGS if gpu else ()):
        if col not in rows:
            continue
        values = list(dict.fromkeys(w for v in rows[col] if _given(v) and (w := words(v))))
        if values:
            out.append("/".join(values))
    return out


def configuration_text(sub: pd.DataFrame) -> str:
    """Each backend's settings in one sentence ("" when no row finished), and whether their precisions differ."""
    ok = sub[sub.status == "ok"] if "status" in sub else sub
    parts = [f"{label(b)}: {', '.join(said)}" for b in ordered(ok.backend) if (said := _settings(ok[ok.backend == b]))]
    if not parts:
        return ""
    text = "; ".join(parts)
    if "precision" in ok:
        by_backend = {b: set(ok[ok.backend == b].precision.dropna().astype(str)) for b in ordered(ok.backend)}
        if len({frozenset(v) for v in by_backend.values() if v}) > 1:
            text += " (the backends ran different precisions: their speeds compare different arithmetic too)"
    return text


def configuration_lines(sub: pd.DataFrame) -> list[str]:
    """summary.md's line for one task's rows (none when no row finished)."""
    text = configuration_text(sub)
    return [f"- **{WORDS}**: {text}", ""] if text else []
