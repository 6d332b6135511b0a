"""The run's own figures: training curves per task and the overview bars (throughput and accuracy)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.report.backends import colour, label, ordered
from bench.report.plotting import backend_legend, save_figure
from bench.report.tables import overview_throughput

LINESTYLES = ("-", "--", ":", "-.")  # repeats of one backend: its colour, one line style each
# a marker per way of training: "o" one process; the data-parallel layouts (workers, scaling mode) the others, in order
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
# markers a curve draws at most: one per epoch crowded a 63-epoch curve into a smear that hid its line and its style
MARKS = 20


def markevery(n: int) -> list[int] | None:
    """Which of a curve's ``n`` points carry a marker: every one up to MARKS, else MARKS spread evenly with the
    first and last among them (the final epoch's figure is the one read)."""
    if n <= MARKS:
        return None
    return sorted({int(i) for i in np.linspace(0, n - 1, MARKS).round()})


def layout(r: dict) -> tuple[int, str] | None:
    """A data-parallel row's (workers, scaling mode); None for a single-process row."""
    workers = r.get("workers")
    return None if workers is None or pd.isna(workers) else (int(workers), str(r.get("scaling_mode") or "strong"))


def layout_words(where: tuple[int, str] | None) -> str:
    """ "x2 (strong)" for a data-parallel layout, "1 process" for none."""
    return "1 process" if where is None else f"x{where[0]} ({where[1]})"


def curve_label(r: dict) -> str:
    """A curve's name: "PyTorch" for a single-process row, "PyTorch x2 (strong)" for a data-parallel one."""
    where = layout(r)
    return label(r["backend"]) if where is None else f"{label(r['backend'])} {layout_words(where)}"


# Throughputs that span more than this factor go on a log axis: `bench all` puts LeNet-5 at ~8,000 img/s beside
# ResNet101 at ~15, whose bars a linear axis draws at a thousandth of its height, invisible.
LOG_SPREAD = 20.0


def throughput_scale(values: list[float]) -> str:
    """ "log" when the positive throughputs span more than LOG_SPREAD, else "linear"."""
    positive = [v for v in values if v > 0]
    return "log" if positive and max(positive) > LOG_SPREAD * min(positive) else "linear"


# A mark (the lab's reported accuracy, chance level) this close to the accuracies is drawn and kept in the axis'
# range: 98.2% vs 98.5% beside the lab's 98.43%, or a cat/dog model's 62% above its 50% chance
NEAR = 0.15
# How a task's marks are drawn over its accuracy bars (``task_marks``), as (legend text, line style)
ACC_MARKS = (
    ("the lab's reported accuracy", {"linestyle": "--"}),
    ("chance (one over the classes)", {"linestyle": ":"}),
)
# The least the accuracy axis is padded by beyond its values: one run's two backends 0.3 points apart still read apart
ACC_PAD = 0.005


def accuracy_range(values: list[float], marks: list[float]) -> tuple[float, float]:
    """The accuracy axis's limits from the values drawn, with each mark within NEAR of them, padded by a tenth of
    their span (at least ACC_PAD), at most 1, from 0 where the range nearly reaches it. A fixed 0-1 axis drew 98.2%
    and 98.5% as one height (QA, 2026-12-06)."""
    drawn = [v for v in values if 0.0 <= v <= 1.0]
    if not drawn:
        return 0.0, 1.0
    lo, hi = min(drawn), max(drawn)
    near = [m for m in marks if lo - NEAR <= m <= hi + NEAR]
    lo, hi = min([lo, *near]), max([hi, *near])
    pad = max(0.1 * (hi - lo), ACC_PAD)
    lo, hi = lo - pad, min(1.0, hi + pad)
    return (0.0 if lo < 0.1 * (hi - lo) else lo), hi  # a range from near 0 (accuracies from chance up) from 0


def task_marks(ok: pd.DataFrame, task: str) -> list[float | None]:
    """A task's marks, in ACC_MARKS's order: the lab's reported accuracy and chance level (one over its classes),
    each None where its rows do not say it."""
    rows = ok[ok.task == task]

    def median(col: str) -> float | None:
        values = pd.to_numeric(rows[col], errors="coerce").dropna() if col in rows else pd.Series(dtype=float)
        return float(values.median()) if len(values) else None

    classes = median("n_classes")
    return [median("reported_acc"), 1.0 / classes if classes and classes >= 2 else None]


def time_series(history: list[dict]) -> tuple[list[float], list[float]]:
    """(training seconds so far, test accuracy) at each epoch with a test accuracy: the epochs' ``seconds``
    summed up to it, evaluation left out, as ``time_to_target_s`` counts them. Empty where an epoch has no seconds."""
    if any(e.get("seconds") is None for e in history):
        return [], []
    elapsed, seconds, accuracy = 0.0, [], []
    for e in history:
        elapsed += float(e["seconds"])
        if "test_acc" in e:
            seconds.append(elapsed)
            accuracy.append(float(e["test_acc"]))
    return seconds, accuracy


def targets(runs: list[dict]) -> list[float]:
    """The rows' target accuracies (``train.target_acc``, which each record carries), each once; none for 0/None."""
    return sorted({float(t) for r in runs if (t := r.get("target_acc"))})


def plot_curves(records: list[dict], task: str, path: Path) -> bool:
    """Per-epoch training loss and test accuracy, and test accuracy against training seconds (which backend reaches
    an accuracy first: the time-to-train view) with the task's target accuracy as a line: a colour per backend, a
    line style per repeat, a marker per way of training (one process, or a data-parallel row's workers and scaling
    mode: "PyTorch x2 (strong)")."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    runs = [r for r in records if r["task"] == task and r.get("status") == "ok" and r.get("history")]
    if not runs:
        return False
    # the time panel under the two epoch panels, as wide as both: three side by side shrank every label to half
    # its size where summary.md is read (~900 px wide)
    fig = plt.figure(figsize=(10, 7), layout="constrained")
    grid = fig.add_gridspec(2, 2)
    ax_loss, ax_acc, ax_time = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1]), fig.add_subplot(grid[1, :])
    # data-parallel rows: a marker per (workers, mode), so a 2-worker curve is not read as a 1-process one
    layouts = [None, *sorted({w for r in runs if (w := layout(r)) is not None})]
    markers = {w: MARKERS[i % len(MARKERS)] for i, w in enumerate(layouts)}
    for r in runs:
        h = r["history"]
        style: dict[str, Any] = {
            "color": colour(r["backend"]),
            "linestyle": LINESTYLES[(r.get("repeat") or 0) % len(LINESTYLES)],
            "marker": markers[layout(r)],
            "label": curve_label(r),
        }
        ax_loss.plot([e["epoch"] for e in h], [e["train_loss"] for e in h], markevery=markevery(len(h)), **style)
        acc = [(e["epoch"], e["test_acc"]) for e in h if "test_acc" in e]
        if acc:
            ax_acc.plot(*zip(*acc, strict=False), markevery=markevery(len(acc)), **style)
        seconds, accuracy = time_series(h)
        if seconds:
            ax_time.plot(seconds, accuracy, markevery=markevery(len(seconds)), **style)
    for target in (goals := targets(runs)):
        ax_time.axhline(target, color="black", lw=0.9, alpha=0.6, label=f"target {target:g}")
        ax_time.annotate(
            f"target {target:g}",
            (0.995, target),
            xycoords=("axes fraction", "data"),
            ha="right",
            va="bottom",
            fontsize=8,
            bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 1},  # legible over a curve
        )
    if goals:  # room above the highest line for its label, which the axes' top edge cut through
        lo, hi = ax_time.get_ylim()  # the lines' values included
        ax_time.set_ylim(lo, max(hi, max(goals) + 0.08 * (hi - lo)))
    ax_loss.set(title=f"{task}: training loss", xlabel="epoch", ylabel="cross-entropy")
    ax_acc.set(title=f"{task}: test accuracy", xlabel="epoch", ylabel="accuracy")
    ax_time.set(
        title=f"{task}: test accuracy against training time (evaluation left out)",
        xlabel="training seconds so far (the epochs' seconds summed)",
        ylabel="accuracy",
    )
    for ax in (ax_loss, ax_acc, ax_time):
        ax.grid(alpha=0.3)
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole: no "epoch 1.25" ticks
    repeats = sorted({r.get("repeat") or 0 for r in runs})
    styles = tuple((f"repeat {k}", {"linestyle": LINESTYLES[k % len(LINESTYLES)]}) for k in repeats)
    drawn = [w for w in layouts if any(layout(r) == w for r in runs)]
    ways = tuple((layout_words(w), {"marker": markers[w], "linestyle": ""}) for w in drawn)
    backend_legend(
        fig,
        ordered(r["backend"] for r in runs),
        (ways if len(layouts) > 1 else ()) + (styles if len(repeats) > 1 else ()),
    )
    return save_figure(fig, path, dpi=110, tight=False)


CROWDED = 8  # tasks in the overview beyond which its two charts stand one above the other (``plot_bars``)


def plot_bars(df: pd.DataFrame, path: Path) -> bool:
    """The headline training throughput (bar) with its 95% interval (whiskers), and test accuracy: one bar
    per backend in registry order. A row without a headline (an old record) is drawn hatched from its epochs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    ok = df[df.status == "ok"]
    if ok.empty:
        return False
    g = overview_throughput(ok)
    tasks = list(dict.fromkeys(ok.task))
    backends = ordered(ok.backend)
    width = 0.8 / len(backends)
    # beyond CROWDED tasks side by side the two charts' labels ran into a blur (the 39-model zoo, QA 2026-12-08): one
    # above the other, as wide as their bars need, each value written upright
    crowded = len(tasks) > CROWDED
    if crowded:
        wide = min(max(11.0, 0.22 * len(tasks) * len(backends) + 2), 60.0)
        fig, (ax_t, ax_a) = plt.subplots(2, 1, figsize=(wide, 9), layout="constrained")
    else:
        fig, (ax_t, ax_a) = plt.subplots(1, 2, figsize=(11, 4.3), layout="constrained")
    for i, b in enumerate(backends):
        x = np.arange(len(tasks)) + (i - (len(backends) - 1) / 2) * width
        rows = [g.loc[(t, b)] if (t, b) in g.index else None for t in tasks]
        thr = [_number(r.thr) if r is not None else 0 for r in rows]
        err = [
            [max(0, v - _number(r.lo, v)) if r is not None else 0 for v, r in zip(thr, rows, strict=True)],
            [max(0, _number(r.hi, v) - v) if r is not None else 0 for v, r in zip(thr, rows, strict=True)],
        ]
        hatch = ["//" if r is not None and r.epochs else "" for r in rows]
        bars = ax_t.bar(x, thr, width, yerr=err, capsize=3, color=colour(b), hatch=hatch)
        # above its whisker's cap, not on it (padding, in points), with room above the highest (``margins`` below)
        labels = [f"{v:,.0f}" if v >= 10 else f"{v:.2g}" if v else "" for v in thr]
        ax_t.bar_label(bars, labels=labels, fontsize=6, padding=2, rotation=90 if crowded else 0)
        ax_a.bar(x, [_number(r.acc) if r is not None else 0 for r in rows], width, color=colour(b))
    marks = [task_marks(ok, t) for t in tasks]
    lo, hi = accuracy_range([_number(v, -1.0) for v in g.acc], [m for ms in marks for m in ms if m is not None])
    ax_a.set_ylim(lo, hi)
    drawn: set[int] = set()  # which of ACC_MARKS lie within the axis: each over its task's bars, named once
    for i, ms in enumerate(marks):
        for k, mark in enumerate(ms):
            if mark is not None and lo <= mark <= hi:
                ax_a.hlines(mark, i - 0.45, i + 0.45, color="black", linewidth=1, **ACC_MARKS[k][1])
                drawn.add(k)
    scale = throughput_scale([_number(v) for v in g.thr])
    ax_t.set_yscale(scale)
    # the values are written above the whiskers: without headroom the highest ran into the frame and its gridline
    # (QA, 2026-12-06: "13,184" on the cap of a [7,014, 19,645] whisker, at the axes' top)
    ax_t.margins(y=0.12)
    throughput_title = "training throughput, headline ± 95% CI (img/s" + (", log scale)" if scale == "log" else ")")
    if g.epochs.any():
        throughput_title += "\nhatched: no headline recorded, the median epoch's (slowest..fastest epoch)"
    accuracy_title = "test accuracy" + (f" (the axis starts at {lo:.3g}, not 0)" if lo > 0 else "")
    for ax, title in ((ax_t, throughput_title), (ax_a, accuracy_title)):
        ax.set_xticks(np.arange(len(tasks)), tasks, rotation=90 if crowded else 15, ha="center" if crowded else "right")
        ax.set_xlim(-0.6, len(tasks) - 0.4)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    backend_legend(fig, backends, tuple(style for k, style in enumerate(ACC_MARKS) if k in drawn))
    return save_figure(fig, path, dpi=110, tight=False)


def _number(v: object, default: float = 0.0) -> float:
    """A figure to draw: ``default`` for a missing (NaN) one."""
    return float(v) if isinstance(v, int | float) and v == v else default
