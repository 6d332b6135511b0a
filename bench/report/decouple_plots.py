"""The decoupled-features part of summary.md and its pictures, drawn from the records and saved arrays.

Feature maps, fully connected activations, the top-k accuracy curve and the images
that most activate the forest's top features; every backend side by side, in registry order. Reads
``artifacts/<task>.<backend>.<repeat>.decouple.npz`` written by ``bench.phases.decouple``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from bench.core.runpaths import artifact_name, load_artifact, plot_file, plot_name
from bench.report.backends import colour, label, ordered
from bench.report.plotting import PlotJob, backend_legend, save_figure, tile

# the plots drawn once per backend ("feature-maps-TASK-BACKEND.png"); every other plot is the task's (bench.report.page
# reads each file's task and backend back from its name)
TOP_FEATURES, FEATURE_MAPS = "top-features", "feature-maps"
PER_BACKEND = (TOP_FEATURES, FEATURE_MAPS)

Picture = tuple[int, str, tuple[str, ...], PlotJob]  # (line to insert the link at, alt text, plot name, job)


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> None:
    save_figure(fig, path, dpi=100, tight=False)


def mosaic(maps: np.ndarray, gap: int = 1) -> np.ndarray:
    """(H, W, C) channels tiled into one near-square 2-D image, each channel min-max scaled, NaN gaps."""
    h, w, c = maps.shape
    cols = math.ceil(math.sqrt(c))
    rows = math.ceil(c / cols)
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), np.nan, dtype=np.float32)
    for i in range(c):
        m = maps[:, :, i].astype(np.float32)
        span = m.max() - m.min()
        r, q = divmod(i, cols)
        out[r * (h + gap) : r * (h + gap) + h, q * (w + gap) : q * (w + gap) + w] = (m - m.min()) / span if span else 0
    return out


def _show_image(ax: Any, img: np.ndarray) -> None:
    ax.imshow(img[:, :, 0] if img.shape[2] == 1 else img, cmap="gray" if img.shape[2] == 1 else None)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_feature_maps(a: Any, title: str, path: Path) -> bool:
    """Columns: the chosen inputs; rows: the input image, then each conv layer's channels as a mosaic."""
    layers = [str(n) for n in a["conv_layers"]]
    if not layers:
        return False
    plt = _plt()
    inputs, classes = a["inputs"], a["classes"]
    n = len(inputs)
    fig, axes = plt.subplots(1 + len(layers), n, figsize=(2.2 * n, 2.3 * (1 + len(layers))), squeeze=False)
    for j in range(n):
        _show_image(axes[0, j], inputs[j])
        axes[0, j].set_title(f"class {classes[a['input_labels'][j]]}", fontsize=9)
        for i, name in enumerate(layers, start=1):
            maps = a[f"act_{name}"][j]
            axes[i, j].imshow(mosaic(maps), cmap="viridis")
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
            if j == 0:
                axes[i, j].set_ylabel(f"{name} ({maps.shape[2]} ch)", fontsize=9)
    axes[0, 0].set_ylabel("input", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)
    return True


def plot_fc_activations(arrays: dict[str, Any], task: str, path: Path) -> bool:
    """One heat map per (backend, fully connected layer): a row of panels per backend; in a panel, rows =
    inputs, columns = units."""
    backends = [b for b in ordered(arrays) if len(arrays[b]["fc_layers"])]
    if not backends:
        return False
    plt = _plt()
    layers = [str(n) for n in arrays[backends[0]]["fc_layers"]]
    fig, axes = plt.subplots(
        len(backends), len(layers), figsize=(6 * len(layers), 1.9 * len(backends) + 0.6), squeeze=False
    )
    for i, b in enumerate(backends):
        a = arrays[b]
        labels = [f"class {a['classes'][y]}" for y in a["input_labels"]]
        for j, name in enumerate(layers):
            act = a[f"act_{name}"].astype(np.float32)
            im = axes[i, j].imshow(act, aspect="auto", cmap="viridis", interpolation="nearest")
            axes[i, j].set_yticks(range(len(labels)), labels, fontsize=7)
            axes[i, j].set_title(f"{label(b)}: {name} ({act.shape[1]} units, after activation)", fontsize=9)
            fig.colorbar(im, ax=axes[i, j], fraction=0.03)
    for ax in axes[-1]:
        ax.set_xlabel("unit")
    what = "one test image per class, the same in every backend"
    # two lines: on one, a model with one fc layer (the CIFAR CNN's 6-inch figure) cut its title at both ends
    fig.suptitle(f"{task}: fully connected activations\n({what})", fontsize=10)
    fig.tight_layout()
    _save(fig, path)
    return True


def plot_topk(rows: dict[str, dict[str, Any]], task: str, path: Path) -> bool:
    """Accuracy of RF (solid) and logistic regression (dashed) on the top-k features; the CNN's own as a dotted line."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.4), layout="constrained")
    backends = ordered(rows)
    for b in backends:
        r, color = rows[b], colour(b)
        ks = [t["k"] for t in r["decouple_topk"]]
        ax.plot(ks, [t["rf_acc"] for t in r["decouple_topk"]], "o-", color=color)
        ax.plot(ks, [t["logreg_acc"] for t in r["decouple_topk"]], "s--", color=color)
        if r.get("test_acc") is not None:
            ax.axhline(r["test_acc"], color=color, linestyle=":")
    ax.set_xscale("log")
    ks = sorted({t["k"] for r in rows.values() for t in r["decouple_topk"]})
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.minorticks_off()
    ax.set(
        title=f"{task}: accuracy on the top-k penultimate features",
        xlabel="k (most important first)",
        ylabel="test accuracy",
    )
    ax.grid(alpha=0.3)
    styles = (
        ("random forest", {"linestyle": "-", "marker": "o"}),
        ("logistic regression", {"linestyle": "--", "marker": "s"}),
        ("CNN", {"linestyle": ":"}),
    )
    backend_legend(fig, backends, styles)
    _save(fig, path)
    return True


def plot_top_features(a: Any, title: str, path: Path) -> bool:
    """For each of the forest's top features, the training images that activate it most.

    One image canvas with text on it, not a subplot per image: fifty subplots took 0.7 s per figure.
    """
    imgs = a["top_images"]
    if imgs.size == 0:
        return False
    plt = _plt()
    f, k, h, w, _ = imgs.shape
    gap, gap_top = max(2, w // 8), max(6, h // 3)
    canvas = tile(imgs, gap, gap_top)
    fig, ax = plt.subplots(figsize=(1.2 * k + 1.3, 1.45 * f + 0.6))
    ax.imshow(canvas[:, :, 0] if canvas.shape[2] == 1 else canvas, cmap="gray", vmin=0, vmax=255)
    for i in range(f):
        feat = int(a["top_features"][i])
        for j in range(k):
            label = a["classes"][a["top_labels"][i, j]]
            ax.text(
                j * (w + gap) + w / 2,
                i * (h + gap_top) + gap_top - 1,
                f"{label}: {a['top_values'][i, j]:.3g}",
                ha="center",
                va="bottom",
                fontsize=7,
            )
        ax.text(
            -gap,
            i * (h + gap_top) + gap_top + h / 2,
            f"#{i + 1}: f{feat}\nimp {a['importances'][feat]:.3f}",
            ha="right",
            va="center",
            fontsize=8,
        )
    ax.set_axis_off()
    ax.set_title(f"{title}\n(above each image: its true class: the feature's activation)", fontsize=9)
    fig.tight_layout()
    _save(fig, path)
    return True


def _fmt(v: Any, fmt: str = ".4f") -> str:
    return "-" if v is None else format(v, fmt)


def _decouple_parts(run_dir: Path, records: list[dict[str, Any]]) -> tuple[list[str], list[Picture]]:
    """The section's lines and its pictures (line to link them before, alt text, plot name, job)."""
    done = [r for r in records if r.get("status") == "ok" and r.get("rf_acc") is not None]
    if not done:
        return [], []
    tasks, order = list(dict.fromkeys(r["task"] for r in done)), ordered(r["backend"] for r in done)
    done.sort(key=lambda r: (tasks.index(r["task"]), order.index(r["backend"]), r["repeat"]))
    lines = [
        "## Decoupled features",
        "",
        "The trained CNN's penultimate features (the input of its head layer) feed a random forest and a "
        "standardised logistic regression, fitted on the training images' features and scored on the test split. "
        "Top-k: both refitted on the forest's k most important features.",
        "",
        "| task | backend | repeat | features | train images | CNN acc | RF acc | logreg acc | seconds |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in done:
        lines.append(
            f"| {r['task']} | {label(r['backend'])} | {r['repeat']} | {r['feature_dim']} | {r['decouple_n_train']} | "
            f"{_fmt(r.get('test_acc'))} | {_fmt(r['rf_acc'])} | {_fmt(r['logreg_acc'])} | "
            f"{_fmt(r['decouple_s'], '.1f')} |"
        )
    lines.append("")
    pictures: list[Picture] = []
    for task in tasks:
        first: dict[str, dict[str, Any]] = {}  # the lowest repeat of each backend
        for r in sorted((r for r in done if r["task"] == task), key=lambda r: r["repeat"]):
            first.setdefault(r["backend"], r)
        backends = ordered(first)
        lines += [f"### {task}: decoupled features", ""]
        ks = sorted({t["k"] for r in first.values() for t in r["decouple_topk"]})
        head = "| k | " + " | ".join(f"RF {label(b)} | logreg {label(b)}" for b in backends) + " |"
        lines += [head, "|" + "---:|" * (1 + 2 * len(backends))]
        for k in ks:
            cells = []
            for b in backends:
                t = next((t for t in first[b]["decouple_topk"] if t["k"] == k), None)
                cells += [_fmt(t and t["rf_acc"]), _fmt(t and t["logreg_acc"])]
            width = max(r["feature_dim"] for r in first.values())
            lines.append(f"| {k}{' (all)' if k == width else ''} | " + " | ".join(cells) + " |")
        lines.append("")
        arrays = {}
        for b in backends:
            found = load_artifact(run_dir, artifact_name(task, b, first[b]["repeat"], "decouple"))
            if found is not None:
                arrays[b] = found
        at = len(lines)
        pictures.append((at, "top-k accuracy", ("decouple-topk", task), (plot_topk, (first, task))))
        for b, a in arrays.items():
            title = f"{task} / {label(b)}: training images that most activate the forest's top features"
            job: PlotJob = (plot_top_features, (a, title))
            pictures.append((at, f"top features ({label(b)})", (TOP_FEATURES, task, b), job))
        for b, a in arrays.items():
            title = (
                f"{task} / {label(b)}: conv feature maps after activation, one tile per channel\n"
                "(one test image per class, the first of each, the same in every backend)"
            )
            job = (plot_feature_maps, (a, title))
            pictures.append((at, f"feature maps ({label(b)})", (FEATURE_MAPS, task, b), job))
        job = (plot_fc_activations, (arrays, task))
        pictures.append((at, "fully connected activations", ("fc-activations", task), job))
    return lines, pictures


def decouple_plot_jobs(run_dir: Path, records: list[dict[str, Any]]) -> list[PlotJob]:
    """Every picture of the section, as plot jobs (the report renders them before it writes the text)."""
    return [(fn, (*args, plot_file(run_dir, *name))) for _, _, name, (fn, args) in _decouple_parts(run_dir, records)[1]]


def decouple_section(run_dir: Path, records: list[dict[str, Any]], drawn: frozenset[Path]) -> str:
    """Markdown for summary.md, linking the pictures that were drawn (``drawn``: their files); empty when
    nothing was decoupled."""
    lines, pictures = _decouple_parts(run_dir, records)
    if not lines:
        return ""
    links: dict[int, list[str]] = {}
    for at, alt, name, _ in pictures:
        if plot_file(run_dir, *name) in drawn:  # a picture with nothing to draw is not linked
            links.setdefault(at, []).extend([f"![{alt}]({plot_name(*name)})", ""])
    out = [ln for i, line in enumerate(lines) for ln in [*links.get(i, []), line]] + links.get(len(lines), [])
    return "\n".join(out) + "\n"
