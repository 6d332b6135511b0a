"""summary.md sections for the big-model comparison: "ResNet101 vs ConvNeXt-tiny" and the top ops per backend.

Rendered from the results table (and, for the op lists, the records' nested ``top_ops``)
so ``bench report RUN`` regenerates them from records.jsonl alone.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from bench.report.backends import DEFAULT_REFERENCE, label, ordered, reference_missing

PAIR = ("resnet101", "convnext_tiny")  # (base, other): the ratio is other/base
LABELS = {"resnet101": "ResNet101", "convnext_tiny": "ConvNeXt-tiny"}


def _spread(values: pd.Series, fmt: str) -> str:
    """median, with [min-max] when there is more than one repeat."""
    v = pd.to_numeric(values, errors="coerce").dropna()
    if v.empty:
        return "-"
    text = format(v.median(), fmt)
    return text + (f" [{format(v.min(), fmt)}-{format(v.max(), fmt)}]" if len(v) > 1 else "")


def _median(df: pd.DataFrame, model: str, backend: str, col: str) -> float | None:
    v = pd.to_numeric(df[(df.model == model) & (df.backend == backend)][col], errors="coerce").dropna()
    return float(v.median()) if len(v) else None


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a and b else "-"


def resnet_vs_convnext(df: pd.DataFrame, reference: str = DEFAULT_REFERENCE) -> list[str]:
    """Time per epoch, steady img/s, first step and MFU per (model, backend), ConvNeXt/ResNet per backend
    and each backend against the reference per model."""
    ok = df[(df.status == "ok") & df.model.isin(PAIR)]
    if ok.empty or ok.model.nunique() < 2:
        return []
    backends = ordered(ok.backend)
    lines = [
        "## ResNet101 vs ConvNeXt-tiny",
        "",
        "Medians over ok repeats, [min-max] when repeated. Steady img/s is the headline throughput "
        "(`steady_img_s`): the timed window's images over its time, the window being every step after "
        "the first step and `warmup_steps` warm-up steps, timed inside the training call(s) "
        "(docs/timing.md); steady step is the window's mean step time. The first step (tracing, "
        "compilation, warm-up) is its own column. Tasks: "
        + ", ".join(f"`{t}` ({p}, {s})" for t, p, s in ok[["task", "profile", "image_shape"]].drop_duplicates().values)
        + ".",
        "",
        "| model | backend | epoch (s) | steady img/s | steady step (s) | first step (s) | MFU | params |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for model in PAIR:
        for backend in backends:
            sub = ok[(ok.model == model) & (ok.backend == backend)]
            if sub.empty:
                continue
            mfu = pd.to_numeric(sub.mfu, errors="coerce").dropna()
            lines.append(
                f"| {LABELS[model]} | {label(backend)} | {_spread(sub.epoch_s_median, '.2f')} | "
                f"{_spread(sub.steady_img_s, '.1f')} | {_spread(sub.steady_step_s, '.3f')} | "
                f"{_spread(sub.first_step_s, '.1f')} | {format(mfu.median(), '.2%') if len(mfu) else '-'} | "
                f"{int(sub.params.iloc[0]):,} |"
            )
    lines += ["", "| ratio | " + " | ".join(map(label, backends)) + " |", "|---|" + "--:|" * len(backends)]
    for col, what in (("steady_img_s", "steady img/s"), ("epoch_s_median", "epoch time")):
        cells = [_ratio(_median(ok, PAIR[1], b, col), _median(ok, PAIR[0], b, col)) for b in backends]
        lines.append(f"| ConvNeXt-tiny / ResNet101, {what} | " + " | ".join(cells) + " |")
    others = [b for b in backends if b != reference]
    if others:
        lines += ["", "| ratio | " + " | ".join(LABELS[m] for m in PAIR) + " |", "|---|" + "--:|" * len(PAIR)]
        missing = [reference_missing(df[df.model == m], reference) for m in PAIR]
        for b in others:
            for col, what in (("steady_img_s", "steady img/s"), ("epoch_s_median", "epoch time")):
                cells = [
                    why or _ratio(_median(ok, m, b, col), _median(ok, m, reference, col))
                    for m, why in zip(PAIR, missing, strict=True)
                ]
                lines.append(f"| {b} / {reference}, {what} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"A ratio above 1 in img/s means the numerator trains faster; `<backend> / {reference}` divides by the "
        f"reference backend, {label(reference)}. MFU = 3 x forward FLOPs per image "
        "(the framework's own counter) x steady img/s / peak FLOP/s (see `flops_source`, `peak_flops_source`).",
        "",
    ]
    return lines


def top_ops(records: list[dict[str, Any]], top: int = 10) -> list[str]:
    """The top ops by self time per (task, backend), from runs with --profile-ops."""
    runs = [r for r in records if r.get("status") == "ok" and r.get("top_ops")]
    if not runs:
        return []
    tasks, backends = list(dict.fromkeys(r["task"] for r in runs)), ordered(r["backend"] for r in runs)
    runs.sort(key=lambda r: (tasks.index(r["task"]), backends.index(r["backend"]), r.get("repeat", 0)))
    lines = [
        "## Top operations by time (--profile-ops)",
        "",
        "Measured over the warm-up steps (not the timed ones; Keras's steps_per_execution: whole executions, "
        "the times per optimiser step) with torch.profiler (self time per op type) "
        "and the TensorFlow profiler (kernel time summed per op type; the costliest node's name says "
        "which Keras layer).",
        "",
    ]

    def cell(text: object) -> str:
        return "`" + str(text).replace("|", "\\|") + "`"

    for r in runs:
        steps = r.get("profiled_batches") or r.get("warmup_steps") or 1  # optimiser steps (Keras: not executions)
        nodes = any("costliest" in op for op in r["top_ops"])
        lines += [
            f"### {r['task']} / {label(r['backend'])} (repeat {r.get('repeat', 0)})",
            "",
            "| op | ms per step | calls |" + (" costliest node (ms per step) |" if nodes else ""),
            "|---|--:|--:|" + ("---|" if nodes else ""),
        ]
        for op in r["top_ops"][:top]:
            row = f"| {cell(op['op'])} | {op['ms'] / steps:.2f} | {op['calls']} |"
            if nodes:
                row += f" {cell(op['costliest'])} ({op['costliest_ms'] / steps:.2f}) |" if "costliest" in op else " |"
            lines.append(row)
        lines.append("")
    return lines


def sections(df: pd.DataFrame, records: list[dict[str, Any]], reference: str = DEFAULT_REFERENCE) -> str:
    """Both sections as Markdown ('' when the run has neither); ratios between backends against ``reference``."""
    lines = resnet_vs_convnext(df, reference) + top_ops(records)
    return "\n".join(lines) + ("\n" if lines else "")
