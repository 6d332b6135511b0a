"""Grad-CAM and saliency overlays for the report: the same images, one row per backend in registry order.

Drawn from the per-row ``artifacts/*.explain.npz`` files the explain phase writes (see
bench.phases.explain), so ``bench report RUN`` can redraw them from a finished run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench.core.preprocess import minmax
from bench.core.runpaths import load_artifact, plot_file, plot_name
from bench.report.backends import label, ordered
from bench.report.plotting import PlotJob, save_figure, tile

KINDS = {"gradcam": ("Grad-CAM", "jet"), "saliency": ("saliency", "hot")}


def _maps_by_backend(df: pd.DataFrame, task: str, run_dir: Path) -> dict[str, dict[str, np.ndarray]]:
    """The first ok repeat's saved maps of each backend for ``task``."""
    rows = df[(df.task == task) & (df.status == "ok")]
    if "explain_file" not in rows:
        return {}
    out: dict[str, dict[str, np.ndarray]] = {}
    for _, r in rows.sort_values("repeat").iterrows():
        if r.backend in out or not isinstance(r.explain_file, str):
            continue
        maps = load_artifact(run_dir, r.explain_file)
        if maps is not None:
            out[r.backend] = maps
    return {b: out[b] for b in ordered(out)}  # registry order, as in the tables


def _display(img: np.ndarray) -> np.ndarray:
    """An image as the model saw it, rescaled to [0, 1] per channel, as RGB (grey repeated)."""
    img = minmax(img.transpose(2, 0, 1)).transpose(1, 2, 0)
    return np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img


def plot_overlays(maps: dict[str, dict[str, np.ndarray]], kind: str, task: str, path: Path) -> bool:
    """Rows: the input, then one overlay row per backend; columns: the drawn test images.

    The panels are blended in numpy and tiled onto one canvas with the titles as text: a
    subplot per panel (30 for a 10-class task) took 1.2 s per figure.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    maps = {b: m for b, m in maps.items() if kind in m}
    if not maps:
        return False
    title, cmap = KINDS[kind]
    first = next(iter(maps.values()))
    x, y, classes = first["x"], first["y_true"], [str(c) for c in first["classes"]]
    n, (h, w) = len(x), x.shape[1:3]
    shown = np.stack([_display(img) for img in x])
    rows = [shown]
    for m in maps.values():
        heat = m[kind] if kind == "gradcam" else minmax(m[kind])
        rows.append(0.5 * shown + 0.5 * matplotlib.colormaps[cmap](heat)[..., :3])
    gap, gap_top = max(2, w // 8), max(8, h // 3)
    canvas = tile((np.stack(rows) * 255).round().astype(np.uint8), gap, gap_top)
    fig, ax = plt.subplots(figsize=(1.7 * n + 1.4, 1.9 * len(rows)))
    ax.imshow(canvas)
    for i, backend in enumerate(["input", *maps], start=0):  # each row's name at its left
        name = label(backend) if i else backend
        ax.text(-gap, i * (h + gap_top) + gap_top + h / 2, name, ha="right", va="center", fontsize=9)
    for j in range(n):
        ax.text(j * (w + gap) + w / 2, gap_top - 1, f"true: {classes[y[j]]}", ha="center", va="bottom", fontsize=9)
        for i, m in enumerate(maps.values(), start=1):
            if np.ptp(m[kind][j]) == 0:  # nothing highlighted: say so, not an empty-looking overlay
                top = i * (h + gap_top) + gap_top
                ax.text(j * (w + gap) + w / 2, top + h / 2, "flat map", ha="center", va="center", fontsize=8, color="w")
            pred = int(m["y_pred"][j])
            ax.text(
                j * (w + gap) + w / 2,
                i * (h + gap_top) + gap_top - 1,
                f"pred: {classes[pred]}",
                ha="center",
                va="bottom",
                fontsize=9,
                color="black" if pred == y[j] else "red",
            )
    ax.set_axis_off()
    layer = str(first["layer"])
    where = f"layer {layer}, " if kind == "gradcam" else ""
    whose = "true class" if str(first.get("target", "predicted")) == "true" else "predicted class"
    fig.suptitle(f"{task}: {title} ({where}{whose}; red = wrong prediction)", fontsize=11)
    return save_figure(fig, path, dpi=90)


def explain_plot_jobs(df: pd.DataFrame, run_dir: Path) -> list[PlotJob]:
    """plots/gradcam-TASK.png and plots/saliency-TASK.png for every task whose rows saved maps."""
    jobs: list[PlotJob] = []
    for task in df.task.unique():
        maps = _maps_by_backend(df, task, run_dir)
        jobs += [(plot_overlays, (maps, kind, task, plot_file(run_dir, kind, task))) for kind in KINDS]
    return jobs


def explain_links(sub: pd.DataFrame) -> list[str]:
    """summary.md lines linking one task's overlays (the rows of ``sub`` say whether maps were saved)."""
    if "explain_file" not in sub or sub.explain_file.isna().all():
        return []
    task = sub.task.iloc[0]
    return [
        f"![{KINDS[k][0]} overlays]({plot_name(k, task)})\n"
        for k in KINDS
        if f"{k}_ms_per_img" in sub and sub[f"{k}_ms_per_img"].notna().any()
    ] + [*flat_layer_lines(sub), ""]


def flat_layer_lines(sub: pd.DataFrame) -> list[str]:
    """A line per backend whose Grad-CAM layer had a 1x1 output: its maps are flat by construction, not a bug."""
    if "gradcam_layer_hw" not in sub:
        return []
    ok = sub[(sub.status == "ok") & (sub.gradcam_layer_hw == "1x1")]
    lines = []
    for b in ordered(ok.backend):
        r = ok[ok.backend == b].iloc[0]
        size = f"{r.image_shape}, " if isinstance(r.get("image_shape"), str) else ""
        lines.append(
            f"- Grad-CAM ({label(b)}): layer `{r.explain_layer}` has a 1x1 output at this input size ({size}"
            f'profile `{r.profile}`): one value per image, so its maps are flat ("flat map"); a larger input, as '
            "the full profile's, gives the layer a spatial map."
        )
    return [*lines, ""] if lines else []
