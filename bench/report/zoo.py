"""The zoo sweep's part of a report (``python -m bench zoo``): a summary.md section and one plot.

Read from the results table alone (rows whose model is a ``zoo:`` id), so ``bench report RUN`` redraws
them. Per architecture and backend: inference img/s (the timed evaluation after training), steady
training img/s (bench.measure.steady), MFU, peak host/device memory, parameters, FLOPs per image;
then each backend against the reference per architecture.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import numpy as np
import pandas as pd

from bench.core.runpaths import link, plot_file
from bench.report.backends import DEFAULT_REFERENCE, colour, label, ordered
from bench.report.plotting import PlotJob, backend_legend, save_figure

PREFIX = "zoo:"
COLUMNS = (  # (header, column, format)
    ("px", "image_shape", ""),
    ("batch", "batch_size", ".0f"),
    ("infer img/s", "eval_img_s", ".1f"),
    ("train img/s", "steady_img_s", ".1f"),
    ("MFU", "mfu", ".2%"),
    ("peak host MB", "peak_host_mb", ".0f"),
    ("params", "params", ",.0f"),
    ("GFLOPs/img", "flops_per_img", ".3f"),
)


def zoo_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The ok rows of zoo architectures, one per (model, backend): the median over repeats."""
    ok = df[(df.status == "ok") & df.model.astype(str).str.startswith(PREFIX)].copy()
    if ok.empty:
        return ok
    ok["flops_per_img"] = pd.to_numeric(ok["flops_per_img"], errors="coerce") / 1e9
    numeric = [c for _, c, f in COLUMNS if f]
    for c in numeric:
        ok[c] = pd.to_numeric(ok[c], errors="coerce")
    first = ok.groupby(["model", "backend"], sort=False)[["image_shape"]].first()
    return ok.groupby(["model", "backend"], sort=False)[numeric].median().join(first).reset_index()


def _cell(value: object, fmt: str) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    if not fmt:
        return str(value).split("x")[0] if isinstance(value, str) else str(value)
    return format(value, fmt)


def ratios(rows: pd.DataFrame, reference: str, column: str) -> pd.DataFrame:
    """model x backend: each backend's ``column`` over the reference's (NaN where either is missing)."""
    wide = rows.pivot(index="model", columns="backend", values=column)
    if reference not in wide:
        return wide.iloc[:, :0]
    return wide.drop(columns=reference).div(wide[reference], axis=0)


def zoo_section(
    df: pd.DataFrame, run_dir: Path, reference: str = DEFAULT_REFERENCE, drawn: Collection[Path] = frozenset()
) -> str:
    """summary.md's "Zoo sweep" section, or "" when the run has no zoo rows; its plot linked where ``drawn`` holds
    it (a report without figures, as a `bench zoo --best` race's rungs write, draws none)."""
    rows = zoo_rows(df)
    if rows.empty:
        return ""
    backends = ordered(rows.backend)
    lines = [
        "",
        "## Zoo sweep",
        "",
        "Per architecture and backend (medians over ok repeats): inference img/s is the timed evaluation "
        "after training (warm: an untimed evaluation ran between the epochs); training img/s is the steady "
        "step throughput after the first step and the warm-up steps (docs/timing.md); GFLOPs per image from "
        "each framework's own counter (docs/zoo.md on where they differ). Failed rows are in the table above.",
        "",
        "| model | backend | " + " | ".join(h for h, _, _ in COLUMNS) + " |",
        "|---|---|" + "--:|" * len(COLUMNS),
    ]
    for model in rows.model.unique():
        for backend in backends:
            sub = rows[(rows.model == model) & (rows.backend == backend)]
            if sub.empty:
                continue
            r = sub.iloc[0]
            cells = [_cell(r[c], f) for _, c, f in COLUMNS]
            lines.append(f"| {model.removeprefix(PREFIX)} | {label(backend)} | " + " | ".join(cells) + " |")
    train, infer = ratios(rows, reference, "steady_img_s"), ratios(rows, reference, "eval_img_s")
    if train.shape[1]:
        lines += [
            "",
            f"Throughput against {label(reference)} (> 1: faster), training / inference:",
            "",
            "| model | " + " | ".join(label(b) for b in train.columns) + " |",
            "|---|" + "--:|" * train.shape[1],
        ]
        for model in train.index:
            cells = [f"{_cell(train.at[model, b], '.2f')} / {_cell(infer.at[model, b], '.2f')}" for b in train]
            lines.append(f"| {model.removeprefix(PREFIX)} | " + " | ".join(cells) + " |")
    if (plot := plot_file(run_dir, "zoo")) in drawn:
        lines += ["", f"![zoo sweep]({link(run_dir, plot)})"]
    lines += [""]
    return "\n".join(lines)


def plot_zoo(rows: pd.DataFrame, reference: str, path: Path) -> bool:
    """Left: training and inference img/s per model per backend (log axis); right: each backend's
    training-throughput ratio against the reference per model (log axis, 1 = as fast)."""
    import matplotlib.pyplot as plt

    if rows.empty:
        return False
    models = list(rows.model.unique())
    backends = ordered(rows.backend)
    fig, (ax_t, ax_r) = plt.subplots(1, 2, figsize=(max(8, 0.45 * len(models) * 2 + 4), 4.8), layout="constrained")
    x = np.arange(len(models))
    width = 0.8 / len(backends)
    for i, backend in enumerate(backends):
        sub = rows[rows.backend == backend].set_index("model").reindex(models)
        ax_t.bar(x + i * width - 0.4 + width / 2, sub.steady_img_s, width, color=colour(backend))
        ax_t.scatter(x + i * width - 0.4 + width / 2, sub.eval_img_s, marker="_", s=60, color="black", zorder=3)
    ax_t.set_yscale("log")
    ax_t.set_title("img/s: training steps (bars), inference (black ticks)")
    ratio = ratios(rows, reference, "steady_img_s").reindex(models)
    for backend in ratio.columns:
        ax_r.plot(x, ratio[backend], "o", color=colour(backend))
    ax_r.axhline(1.0, color="grey", lw=0.8)
    ax_r.set_yscale("log")
    ax_r.set_title(f"training img/s, backend / {label(reference)}")
    for ax in (ax_t, ax_r):
        ax.set_xticks(x, [m.removeprefix(PREFIX) for m in models], rotation=60, ha="right", fontsize=7)
        ax.grid(axis="y", alpha=0.3, which="both")
    backend_legend(fig, backends)
    return save_figure(fig, path, dpi=110, tight=False)


def zoo_plot_jobs(df: pd.DataFrame, run_dir: Path, reference: str = DEFAULT_REFERENCE) -> list[PlotJob]:
    rows = zoo_rows(df)
    return [(plot_zoo, (rows, reference, plot_file(run_dir, "zoo")))] if not rows.empty else []
