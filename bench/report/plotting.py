"""Report figures: one way to save them, and drawing many at once on every core.

The report draws ~50 figures (curves, overlays, feature maps, top-feature grids); one
matplotlib process needs ~25 s for them on a 2-core machine, a tenth of ``bench all``'s
budget. Nothing is being measured while the report is written, so ``render`` draws
the figures in one process per core.

Those processes fork from a *fork server* (a fresh single-threaded process that imported matplotlib
once), never from the driver: the driver may hold other threads -- Ray's core worker and its gRPC
threads under ``--executor ray`` -- and a child forked mid-lock inherits that lock held forever. A
plain ``fork`` hung a Ray run's report that way after Ctrl-C (the pool waited on a child stuck in a futex).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from bench.core.cpus import usable_cores
from bench.core.runfiles import write_atomic

# A figure to draw: a module-level function (it is sent to another process by name) and its
# arguments, the last being the file it draws; it returns True when it wrote its file, False when it
# had nothing to draw.
PlotJob = tuple[Callable[..., bool], tuple[Any, ...]]


def save_figure(fig: Any, path: Path, dpi: int = 100, tight: bool = True) -> bool:
    """Save ``fig`` to ``path`` and close it; returns True so plot functions can end with it."""
    import matplotlib.pyplot as plt

    if tight:
        fig.tight_layout()
    # plots/NAME.png (runpaths.plot_file): the run folder is two levels up
    write_atomic(path.parents[1], path, lambda f: fig.savefig(f, dpi=dpi, format="png"))
    plt.close(fig)
    return True


def backend_legend(fig: Any, backends: list[str], styles: tuple[tuple[str, dict[str, Any]], ...] = ()) -> None:
    """One legend above a figure's panels: a colour per backend (registry label, registry order), then one
    entry per line style (``(text, Line2D keywords)``), so the legend grows with backends + styles, not their
    product. The figure needs ``layout="constrained"`` (the legend is placed outside the panels)."""
    from matplotlib.artist import Artist
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from bench.report.backends import colour, label

    handles: list[Artist] = [Patch(color=colour(b), label=label(b)) for b in backends]
    handles += [Line2D([], [], color="black", label=text, **kw) for text, kw in styles]
    fig.legend(handles=handles, loc="outside upper center", ncol=min(len(handles), 5), fontsize=8, frameon=False)


def tile(imgs: np.ndarray, gap: int, gap_top: int) -> np.ndarray:
    """(R, K, H, W, C) uint8 images on one white canvas, ``gap_top`` pixels above each row for its titles.

    Image grids drawn as one canvas with text on it, not a subplot per image: fifty subplots
    take ~1 s per figure to lay out and save.
    """
    r, k, h, w, c = imgs.shape
    canvas = np.full((r * (h + gap_top), k * (w + gap) - gap, c), 255, dtype=np.uint8)
    for i in range(r):
        for j in range(k):
            y, x = i * (h + gap_top) + gap_top, j * (w + gap)
            canvas[y : y + h, x : x + w] = imgs[i, j]
    return canvas


def _agg() -> None:
    """Each drawing process: the file-only backend (there is no display to open)."""
    import matplotlib

    matplotlib.use("Agg")


# A pool starts a fresh interpreter that imports matplotlib (1-2 s on 2 cores) before it draws: a run with
# a handful of figures (a one-task run's curves and tables) draws them sooner here, in this process.
IN_PROCESS_UP_TO = 8


def render(jobs: list[PlotJob], processes: int | None = None, in_process_up_to: int = IN_PROCESS_UP_TO) -> list[bool]:
    """Run the plot jobs, in parallel where the platform has a fork server; results in job order. As many
    processes as this process may use cores (its affinity: a pinned test lane, a container's cpuset), not the
    machine's count: two drawing processes on one core each import matplotlib and draw no sooner."""
    n = min(len(jobs), processes or usable_cores())
    if n <= 1 or len(jobs) <= in_process_up_to or "forkserver" not in multiprocessing.get_all_start_methods():
        _agg()
        return [fn(*args) for fn, args in jobs]
    context = multiprocessing.get_context("forkserver")
    # imported once, in the server (started at the first render of this process); each worker forks with them
    context.set_forkserver_preload(["matplotlib.pyplot", *sorted({fn.__module__ for fn, _ in jobs})])
    with ProcessPoolExecutor(n, mp_context=context, initializer=_agg) as pool:
        futures = [pool.submit(fn, *args) for fn, args in jobs]
        return [f.result() for f in futures]
