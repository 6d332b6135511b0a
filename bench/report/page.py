"""``index.html`` of a run: the side-by-side tables, every plot, the galleries, notes and environment, in one file.

Written with summary.md (``summary.write_reports``, so also by ``bench report``) from what it is
handed: the table, the side-by-side tables and the run's files. It opens from disk with no server
and no network: style and the table-sorting script are inlined, plots are linked relative to the
run folder (``plots/NAME.png``), so the page and its folder travel together. A ratio cell says
whether its interval (the runs' 95% intervals, or the spread of repeats) separates from 1.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pandas as pd

from bench.core.results import phase_failed
from bench.core.runfiles import write_atomic
from bench.measure.equivalence import mean_interval
from bench.report.backends import colour, label, ordered
from bench.report.decouple_plots import PER_BACKEND
from bench.report.html import SORT_SCRIPT, TAB10, Contents, esc, figure, markdown_html, page, table
from bench.report.notes import attributed_notes
from bench.report.sections import task_lines
from bench.report.speedup import HEADLINE, WHAT, HeadlineRatio
from bench.report.tables import headline_interval
from bench.report.taskhead import machine_words, task_head, wall_time_sentence
from bench.report.text import task_warnings

PAGE = "index.html"
# Plots drawn per backend (``KIND-TASK-BACKEND.png``) or per task whose pictures go side by side as galleries.
GALLERIES = (
    ("Grad-CAM and saliency", ("gradcam", "saliency")),
    ("feature maps", ("feature-maps",)),
    ("top features", ("top-features",)),
)
IN_GALLERIES = {kind for _, kinds in GALLERIES for kind in kinds}


def plot_names(run_dir: Path) -> list[str]:
    """The PNG files in ``plots/`` (regular files only: a link there is not shown), sorted."""
    try:
        with os.scandir(Path(run_dir) / "plots") as it:
            return sorted(
                e.name for e in it if e.name.endswith(".png") and stat.S_ISREG(e.stat(follow_symlinks=False).st_mode)
            )
    except OSError:
        return []


def task_of(name: str, tasks: list[str], backends: list[str]) -> tuple[str | None, str, str | None]:
    """(task, kind, backend) a plot's file name stands for; task None for a run-wide plot (overview, transfer).

    Read from the name's end, the longest task first: a per-backend plot (``PER_BACKEND``) ends in a backend and
    no other does. A task named "m-torch" beside "m" took "feature-maps-m-torch.png" (m's PyTorch picture) as its
    own (QA, 2026-12-08), and a task whose name is also in the plot's kind ("maps") was cut at the kind."""
    stem = name.removesuffix(".png")
    for task in sorted(tasks, key=len, reverse=True):
        for backend in (None, *backends):
            tail = f"-{task}" + (f"-{backend}" if backend else "")
            kind = stem[: -len(tail)] if stem.endswith(tail) else ""
            if kind and (kind in PER_BACKEND) == (backend is not None):
                return task, kind, backend
    return None, stem, None


def interval(ok: pd.DataFrame, backend: str, column: str) -> tuple[float, float] | None:
    """A backend's interval of ``column``: the headline's as the table has it (``tables.headline_interval``); for
    another column its runs' 95% interval (medians of the bounds) where the record has one, else the 95% interval
    of the mean of its ok repeats (Student's t) when there are two or more; None otherwise. Until 2026-12-08 the
    repeats' range (min to max): three repeats a side whose ranges did not touch starred a test accuracy ✱ that
    summary.md's test across seeds called inconclusive (p = 0.18)."""
    sub = ok[ok.backend == backend]
    if column == HEADLINE:  # one run's own; over repeats, the processes' (as the table's cell)
        return headline_interval(sub)
    lo, hi = f"{column}_ci_lo", f"{column}_ci_hi"
    if lo in sub and hi in sub:
        bounds = sub[[lo, hi]].apply(pd.to_numeric, errors="coerce").dropna()
        if len(bounds):
            return float(bounds[lo].median()), float(bounds[hi].median())
    values = pd.to_numeric(sub[column], errors="coerce").dropna() if column in sub else pd.Series(dtype=float)
    mean = mean_interval(values.tolist())
    return None if mean is None else (mean[1], mean[2])


def ratio_cell(
    text: str,
    value: Any,
    a: tuple[float, float] | None,
    ref: tuple[float, float] | None,
    own: tuple[float, float] | None = None,
) -> tuple:
    """A ratio cell: its class says whether the ratio's interval excludes 1. The interval is ``own`` where the
    ratio has one of its own (the headline's bootstrap, as the sentence under the table says it), else the
    ends of both backends' intervals divided."""
    if own is not None:
        lo, hi = own
    elif a is None or ref is None or min(ref) <= 0:
        return text, value, ""
    else:
        lo, hi = a[0] / ref[1], a[1] / ref[0]
    sep = hi < 1 or lo > 1
    mark = " ✱" if sep else ""
    return f"{text}{mark} [{lo:.3f}, {hi:.3f}]", value, "sep" if sep else "overlap"


def task_table(
    task: str,
    raw: pd.DataFrame,
    shown: pd.DataFrame,
    ok: pd.DataFrame,
    columns: dict[str, str],
    reference: str,
    ratios: list[HeadlineRatio] | None = None,
) -> str:
    """One task's side-by-side table: values sortable by their numbers, ratio cells marked by their interval (the
    headline throughput's is the sentence's under the table, ``ratios``: its interval, and with several processes
    on a side its ratio too, the processes' geometric means', so the page gives one answer)."""
    sentence = {r.backend: r for r in ratios or []}
    if shown.empty:
        return "<p>No ok row: nothing measured.</p>"
    names = raw.attrs.get("backends", [])
    header = ["metric", *[label(b) for b in names], *raw.attrs.get("ratios", [])]
    rows = []
    by_row = raw.attrs.get("columns") or []  # each row's record column (a transfer row's words name its target)
    for i in range(len(shown)):
        col = by_row[i] if i < len(by_row) else columns.get(shown.metric.iloc[i], "")
        row: list[tuple[Any, float | None, str]] = [(shown.metric.iloc[i], None, "")]
        row += [(shown[b].iloc[i], num(raw[b].iloc[i]), "") for b in names]
        for r in raw.attrs.get("ratios", []):
            backend = r.split("/")[0]
            a, ref = interval(ok, backend, col), interval(ok, reference, col)
            text, value, own = shown[r].iloc[i], num(raw[r].iloc[i]), None
            if col == HEADLINE and (h := sentence.get(backend)) is not None:
                own = (h.lo, h.hi)
                if not h.one_process_each:  # the table's ratio of medians is another estimator: the sentence's
                    text, value = f"{h.ratio:.3f}", h.ratio
            row.append(ratio_cell(text, value, a, ref, own))
        rows.append(row)
    return table(header, rows, table_id=f"table-{task}")


def num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and pd.notna(v) else None


def not_ok_table(df: pd.DataFrame, contents: Contents | None = None) -> str:
    """The rows that failed, timed out or were skipped, and the ok rows a phase failed on; its heading listed in
    ``contents``."""
    bad = df[df.status != "ok"]
    phases = phase_failed(df)
    if bad.empty and phases.empty:
        return ""
    rows = [
        [
            (r.task, None, ""),
            (r.backend, None, ""),
            (str(r.repeat), r.repeat, ""),
            (r.status, None, "bad"),
            (r.error if isinstance(r.error, str) else "(no reason recorded)", None, ""),
        ]
        for r in bad.itertuples()
    ]
    rows += [
        [
            (r.task, None, ""),
            (r.backend, None, ""),
            (str(r.repeat), r.repeat, ""),
            ("ok, a phase failed", None, "bad"),
            (r.phase_errors, None, ""),
        ]
        for r in phases.itertuples()
    ]
    return (contents or Contents()).heading("Rows not ok", "not-ok") + table(
        ["task", "backend", "repeat", "status", "why"], rows, "not-ok-table"
    )


def _load(value: Any) -> Any:
    """A load average as the run's warning says it (1.7, not os.getloadavg's 1.7138671875)."""
    return f"{value:.1f}" if isinstance(value, float) else value


def environment_section(env: dict[str, Any], contents: Contents | None = None) -> str:
    gpus = ", ".join(env.get("gpus") or []) or "none"
    items = [
        ("machine", f"{machine_words(env)}, GPU: {gpus}"),
        ("platform", env.get("platform")),
        ("Python", env.get("python")),
        ("commit", env.get("git_commit")),
        ("command", " ".join(map(str, env.get("argv") or []))),
        ("1-min load at start", _load(env.get("load_avg_1m_at_start"))),
        ("CPU vector instructions", " ".join(env.get("cpu_flags") or [])),
    ]
    items += [(f"variable {k}", v) for k, v in (env.get("kernel_variables") or {}).items()]
    items += [(f"package {k}", v) for k, v in (env.get("packages") or {}).items()]
    rows = [[(k, None, ""), (str(v), None, "")] for k, v in items if v not in (None, "")]
    heading = (contents or Contents()).heading("Environment", "environment")
    return heading + table(["what", "value"], rows, "environment-table", sortable=False)


def task_section(
    task: str,
    df: pd.DataFrame,
    tables: tuple[pd.DataFrame, pd.DataFrame],
    plots: list[tuple],
    columns: dict[str, str],
    reference: str,
    ratios: list[HeadlineRatio] | None = None,
    shown: set[str] | None = None,
    contents: Contents | None = None,
) -> str:
    """One task's part of the page; ``shown``: the plots already on the page (updated with the ones shown here);
    its heading listed in ``contents``."""
    shown = set() if shown is None else shown
    sub = df[df.task == task]
    head = task_head(sub)
    data = (
        f"from <code>{esc(head.source)}</code>, {esc(head.n_train)} train / {esc(head.n_test)} test"
        if head.source is not None
        else "not loaded (no row ran)"
    )
    out = [
        (contents or Contents()).heading(esc(task), f"task-{task}"),
        f"<p class=small>model <code>{esc(head.model)}</code> {esc(head.options)}, dataset "
        f"<code>{esc(head.dataset)}</code> {data}, {esc(head.epochs)}, batch {esc(head.batch_size)}, "
        f"profile <code>{esc(head.profile)}</code>.</p>",
        *([f"<p class=bad><b>Warning</b>: {esc(head.mixed_data)}.</p>"] if head.mixed_data else []),
        task_table(task, *tables, sub[sub.status == "ok"], columns, reference, ratios),
        *(f"<p><b>{esc(WHAT)}</b>: {esc(r.sentence)}</p>" for r in ratios or []),
        markdown_html("\n".join(task_warnings(sub)), [], shown),  # summary.md's warnings, which it lacked (QA)
    ]
    out += [
        f'<p class="bad">{esc(r.backend)} repeat {esc(r.repeat)}: {esc(r.status)}: {esc(r.error)}</p>'
        for r in sub[sub.status != "ok"].itertuples()
    ]
    out += [
        f'<p class="bad">{esc(r.backend)} repeat {esc(r.repeat)}: a phase failed (the row\'s training and test '
        f"figures stand): {esc(r.phase_errors)}</p>"
        for r in phase_failed(sub).itertuples()
    ]
    mine = [(name, kind, backend) for name, t, kind, backend in plots if t == task and name not in shown]
    shown.update(name for name, *_ in mine)
    for title, kinds in GALLERIES:
        pics = [(n, k, b) for n, k, b in mine if k in kinds]
        if pics:
            order = {b: i for i, b in enumerate(ordered(b for _, _, b in pics if b))}
            pics.sort(key=lambda p: (kinds.index(p[1]), order.get(p[2], -1)))  # by kind, then registry order
            figs = "".join(figure(n, f"{k}: {label(b) if b else 'every backend'}") for n, k, b in pics)
            out.append(f'<h3>{esc(title)}</h3><div class="gallery">{figs}</div>')
    rest = [(n, k) for n, k, _ in mine if k not in IN_GALLERIES]
    if rest:
        out.append('<h3>Plots</h3><div class="gallery">' + "".join(figure(n, k) for n, k in rest) + "</div>")
    # the sections' lines under the table, as summary.md has them after its curves (the training-parity check;
    # the overlays they link are in the galleries above)
    out.append(markdown_html("\n".join(task_lines(sub)), [n for n, *_ in plots], shown))
    notes = attributed_notes(sub)
    if notes:
        out.append("<h3>Notes</h3><ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>")
    return "".join(out)


def wall_time(wall_s: float | None) -> str:
    if wall_s is None:
        return "Wall time not recorded (state.json has no wall_s: a run from before it was kept)."
    return wall_time_sentence(wall_s)


def legend(names: list[str]) -> str:
    chips = (f'<span style="color:{TAB10[int(colour(b)[1:]) % len(TAB10)]}">■</span> {esc(label(b))}' for b in names)
    return "<p class=small>Backends: " + " &nbsp; ".join(chips) + "</p>"


# how to read a ratio cell: said where a task's table has ratio columns (not for a run of one backend, or of
# data-parallel rows alone: QA, 2026-12-06)
RATIO_HINT = (
    " A ratio cell is marked ✱ and coloured when the interval of the ratio (from both backends' 95% intervals: a "
    "row's own, or over repeats the 95% interval of their mean; the headline throughput's is the interval of the "
    "sentence under the table, and with repeats its ratio too) excludes 1; grey when it holds 1; plain when there "
    "is no interval."
)


def has_ratios(tables: dict[str, tuple[pd.DataFrame, pd.DataFrame]]) -> bool:
    """Whether any task's side-by-side table has rows and ratio columns (the cells ``RATIO_HINT`` reads)."""
    return any(len(raw) and raw.attrs.get("ratios") for raw, _ in tables.values())


def write_page(
    run_dir: Path,
    df: pd.DataFrame,
    env: dict[str, Any],
    tables: dict[str, tuple[pd.DataFrame, pd.DataFrame]],
    columns: dict[str, str],
    notice: str = "",
    speed: list[str] | None = None,
    reference: str = "",
    wall_s: float | None = None,
    ratios: dict[str, list[HeadlineRatio]] | None = None,
    sections: list[str] | None = None,
) -> Path:
    """Write ``run_dir/index.html``; ``tables`` maps each task to its side-by-side table (numbers, formatted),
    ``columns`` each table's metric label to its record column (for the ratio intervals), ``ratios`` each
    task's headline ratios and the sentences on which backend trains faster (``bench.report.speedup``), ``sections``
    the special sections' parts of summary.md (``bench.report.sections.texts``), shown here as HTML after the tasks:
    each picture they link is shown there, once, and not again among the run-wide plots. A contents line at the top
    links each part's heading the page has (tasks, sections, run-wide plots, rows not ok, environment)."""
    run_dir = Path(run_dir)
    tasks = list(dict.fromkeys(df.task))
    backends = ordered(df.backend)
    plots = [(n, *task_of(n, tasks, backends)) for n in plot_names(run_dir)]
    ratios = ratios or {}
    shown: set[str] = set()
    contents = Contents()  # filled as the parts below are written: it lists just the ones this page has
    parts = [
        task_section(t, df, tables[t], plots, columns, reference, ratios.get(t), shown, contents)
        for t in tasks
        if t in tables
    ]
    names = [n for n, *_ in plots]
    parts += [markdown_html(text, names, shown, contents) for text in sections or []]
    wide = [n for n, t, _, _ in plots if t is None and n not in shown]
    if wide:
        gallery = "".join(figure(n, n) for n in wide)
        parts.append(contents.heading("Run-wide plots", "run-plots") + f'<div class="gallery">{gallery}</div>')
    parts += [not_ok_table(df, contents), environment_section(env, contents)]
    body = [
        f"<h1>bench run {esc(run_dir.name)}</h1>",  # the folder's name, as summary.md's title
        f'<p class="bad">{esc(notice)}</p>' if notice else "",
        contents.html(),
        '<p>Files: <a href="summary.md">summary.md</a> · <a href="results.csv">results.csv</a> · '
        '<a href="records.jsonl">records.jsonl</a></p>',
        f"<p>{esc(wall_time(wall_s))} {' '.join(esc(s) for s in speed or [])}</p>",
        legend(backends) if backends else "",  # a run of data-parallel rows alone: no single-process backend
        f"<p class=small>Click a column to sort.{RATIO_HINT if has_ratios(tables) else ''}</p>",
        *parts,
    ]
    path = run_dir / PAGE
    write_atomic(run_dir, path, page(f"bench run {run_dir.name}", "".join(body), (SORT_SCRIPT,)).encode())
    return path
