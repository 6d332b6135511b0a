"""Grad-CAM and saliency overlays for the report: the same images, torch and Keras side by side.

Drawn from the per-row ``artifacts/explain-*.npz`` files the explain phase writes (see
bench.explain), so ``bench report RUN`` can redraw them from a finished run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench.explain import minmax
from bench.plotting import save_figure

KINDS = {"gradcam": ("Grad-CAM", "jet"), "saliency": ("saliency", "hot")}


def _maps_by_backend(df: pd.DataFrame, task: str, run_dir: Path) -> dict[str, dict[str, np.ndarray]]:
    """The first ok repeat's saved maps of each backend for ``task``."""
    rows = df[(df.task == task) & (df.status == "ok")]
    if "explain_file" not in rows:
        return {}
    out: dict[str, dict[str, np.ndarray]] = {}
    for _, r in rows.sort_values("repeat").iterrows():
        path = run_dir / str(r.explain_file)
        if r.backend not in out and pd.notna(r.explain_file) and path.is_file():
            with np.load(path, allow_pickle=False) as f:
                out[r.backend] = {k: f[k] for k in f.files}
    return dict(sorted(out.items(), key=lambda kv: (kv[0] != "torch", kv[0])))  # torch first, as in the tables


def _show(ax, img: np.ndarray) -> None:
    """An image as the model saw it, rescaled to [0, 1] for display (grey for one channel)."""
    img = minmax(img.transpose(2, 0, 1)).transpose(1, 2, 0) if img.shape[2] > 1 else minmax(img[None, :, :, 0])[0]
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)


def plot_overlays(maps: dict[str, dict[str, np.ndarray]], kind: str, task: str, path: Path) -> bool:
    """Rows: the input, then one overlay row per backend; columns: the drawn test images."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    maps = {b: m for b, m in maps.items() if kind in m}
    if not maps:
        return False
    label, cmap = KINDS[kind]
    first = next(iter(maps.values()))
    x, y, classes = first["x"], first["y_true"], [str(c) for c in first["classes"]]
    n = len(x)
    fig, axes = plt.subplots(1 + len(maps), n, figsize=(1.7 * n + 0.6, 1.9 * (1 + len(maps))), squeeze=False)
    for j in range(n):
        _show(axes[0, j], x[j])
        axes[0, j].set_title(f"true: {classes[y[j]]}", fontsize=9)
        for i, (backend, m) in enumerate(maps.items(), start=1):
            ax = axes[i, j]
            _show(ax, x[j])
            heat = m[kind][j] if kind == "gradcam" else minmax(m[kind][j : j + 1])[0]
            ax.imshow(heat, cmap=cmap, alpha=0.5, vmin=0, vmax=1)
            pred = int(m["y_pred"][j])
            ax.set_title(f"{backend} pred: {classes[pred]}", fontsize=9, color="black" if pred == y[j] else "red")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    layer = str(first["layer"])
    where = f"layer {layer}, " if kind == "gradcam" else ""
    fig.suptitle(f"{task}: {label} ({where}predicted class; red = wrong prediction)", fontsize=11)
    return save_figure(fig, path, dpi=90)


def write_explain_plots(df: pd.DataFrame, run_dir: Path) -> None:
    """plots/gradcam-TASK.png and plots/saliency-TASK.png for every task whose rows saved maps."""
    for task in df.task.unique():
        maps = _maps_by_backend(df, task, run_dir)
        for kind in KINDS:
            plot_overlays(maps, kind, task, run_dir / "plots" / f"{kind}-{task}.png")


def explain_links(sub: pd.DataFrame) -> list[str]:
    """summary.md lines linking one task's overlays (the rows of ``sub`` say whether maps were saved)."""
    if "explain_file" not in sub or sub.explain_file.isna().all():
        return []
    task = sub.task.iloc[0]
    return [
        f"![{KINDS[k][0]} overlays](plots/{k}-{task}.png)\n"
        for k in KINDS
        if f"{k}_ms_per_img" in sub and sub[f"{k}_ms_per_img"].notna().any()
    ] + [""]
