"""Data-parallel rows in summary.md: a scaling table and plot per task (issue #15).

A run with ``workers`` rows gets, per task, one table (a row per backend, scaling mode and worker
count: global img/s with its 95% half-width, efficiency with its interval, all-reduce share,
first-step overhead, accuracy, and where the task has a target accuracy the time to reach it and its
speed-up against the 1-worker row); under it what each backend ran as (``configuration``: precision, compiler,
layout, threads per worker), a warning per row whose ranks ran more threads than cores and
each row's own findings (its ranks' weights equal or not, its accuracy against 1 worker, why it has no efficiency:
``scaling.FINDINGS``; results.csv has every note); and one figure: global img/s and efficiency
against workers, a line per backend (registry colours), solid for strong and dashed for weak
scaling. The single-process tables never see these rows (``split``): a 2-worker row is not
a repeat of the 1-process one. A task with data-parallel rows alone has no part of summary.md of its own: its
section says what it trained (model, data, epochs) and links its training curves.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import pandas as pd

from bench.core.metric_table import BY_COLUMN
from bench.core.record import split_notes
from bench.core.runpaths import link, plot_file
from bench.measure import stats
from bench.measure.scaling import FINDINGS, OVERSUBSCRIBED, baseline, share_text, target_speedup
from bench.report.backends import colour, label, ordered
from bench.report.configuration import configuration_lines
from bench.report.plotting import PlotJob, backend_legend, save_figure
from bench.report.taskhead import task_head

STYLES = {"strong": "-", "weak": "--"}


def is_distributed(df: pd.DataFrame) -> pd.Series:
    """Which rows are data-parallel ones (a ``workers`` count)."""
    if "workers" not in df:
        return pd.Series(False, index=df.index)
    return pd.to_numeric(df["workers"], errors="coerce").notna()


def split(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(single-process rows, data-parallel rows)."""
    mask = is_distributed(df)
    return df[~mask], df[mask]


def _num(v: object, fmt: str) -> str:
    return "-" if v is None or pd.isna(v) else format(v, fmt)


def _several_repeats(sub: pd.DataFrame) -> bool:
    return "repeat" in sub and sub["repeat"].nunique() > 1


def _in_order(dist: pd.DataFrame, task: str) -> pd.DataFrame:
    """``task``'s rows as its table lists them: by backend, then mode, repeat and workers (``_w``)."""
    sub = dist[dist.task == task]
    order = ["scaling_mode", "repeat", "_w"] if _several_repeats(sub) else ["scaling_mode", "_w"]
    parts = [sub[sub.backend == b] for b in ordered(sub.backend)]
    return pd.concat([p.assign(_w=pd.to_numeric(p.workers, errors="coerce")).sort_values(order) for p in parts])


TO_TARGET = BY_COLUMN["time_to_target_s"]  # the column's words and format, as the single-process tables have them


def _targets(dist: pd.DataFrame, task: str) -> list[float]:
    """The target accuracies (``train.target_acc``) of ``task``'s rows, each once."""
    if "target_acc" not in dist:
        return []
    return sorted(set(pd.to_numeric(dist[dist.task == task].target_acc, errors="coerce").dropna()))


def target_line(dist: pd.DataFrame, task: str) -> str | None:
    """Which accuracy the time to target is to (QA: the column read "not reached" and nothing said of what)."""
    targets = _targets(dist, task)
    if not targets:
        return None
    return (
        f"Target test accuracy {' / '.join(format(t, 'g') for t in targets)} (`train.target_acc`): the time to it is "
        "rank 0's epoch seconds until the epoch's test accuracy, the ranks' parts summed, reached it; its speed-up "
        "is the 1-worker row's time over this row's (the 1-worker row its efficiency is against)."
    )


# Not a record column (so not in bench.core.metric_table, whose entries are): drawn here from the row and its
# 1-worker row, paired as its efficiency was when measured (``baseline``), so a run recorded before it has it too.
SPEEDUP = "time-to-target speed-up"


def _speedup(r: pd.Series, rows: list[dict]) -> str:
    """The 1-worker row's time to target over this row's ("-" where either has none: "not reached" says why)."""
    row = r.to_dict()
    return _num(target_speedup(row, baseline(rows, row)), ".2f") if r.status == "ok" else "-"


def _to_target(r: pd.Series) -> str:
    """Rank 0's seconds to the task's target accuracy; "not reached" for an ok row that never got there."""
    if r.status != "ok":
        return "-"
    seconds = r.get("time_to_target_s")
    return "not reached" if seconds is None or pd.isna(seconds) else _num(seconds, TO_TARGET.fmt or "")


IMG_S = "img/s (global, 95%)"  # ± its half-width, or its ends [lo, hi] (``scaling_table``)


def _interval(r: pd.Series) -> tuple[float, float] | None:
    """An ok row's headline interval, or None."""
    lo, hi = r.steady_img_s_ci_lo, r.steady_img_s_ci_hi
    return (lo, hi) if r.status == "ok" and pd.notna(r.steady_img_s) and pd.notna(lo) and pd.notna(hi) else None


def scaling_table(dist: pd.DataFrame, task: str) -> pd.DataFrame:
    """One task's data-parallel rows, formatted: backend, mode, workers, batches, img/s, efficiency, share, acc, F1."""
    rows = []
    # with repeats, each N-worker row's efficiency is against its own repeat's 1-worker row: show which is which
    several = _several_repeats(dist[dist.task == task])
    # time to target where the task has one: per-epoch test figures since 2026-12-06
    target = bool(_targets(dist, task))
    shown = _in_order(dist, task)
    records = dist.to_dict("records")  # what each row's 1-worker row is looked for among
    # the column reads one way: where any row's interval is lopsided (± would misdraw it), every row shows its ends
    # (QA: "277.4 [214.6, 358.6]" sat above "419.0 ± 39.5", as the side-by-side headline row did before e7c41e2)
    intervals = [(r.steady_img_s, both) for _, r in shown.iterrows() if (both := _interval(r)) is not None]
    ends = any(stats.lopsided(value, *both) for value, both in intervals)
    for _, r in shown.iterrows():
        ok = r.status == "ok"
        hw = r.steady_img_s_hw_pct / 100 * r.steady_img_s if ok and pd.notna(r.steady_img_s_hw_pct) else None
        spread = "" if hw is None else f" ± {_num(hw, ',.1f')}"
        if hw is not None and ends and (both := _interval(r)) is not None:
            spread = f" [{_num(both[0], ',.1f')}, {_num(both[1], ',.1f')}]"
        eff = _num(r.scaling_eff, ".2f") if ok else "-"
        if ok and pd.notna(r.scaling_eff_ci_lo):
            eff += f" [{r.scaling_eff_ci_lo:.2f}, {r.scaling_eff_ci_hi:.2f}]"
        rows.append(
            {
                "backend": label(r.backend),
                "mode": r.scaling_mode,
                "workers": int(r._w),
                **({"repeat": int(r["repeat"])} if several else {}),
                "batch / worker": _num(r.per_worker_batch, ".0f"),
                "global batch": _num(r.global_batch, ".0f"),
                "engine": r.dist_backend if isinstance(r.dist_backend, str) and r.dist_backend else "-",
                IMG_S: _num(r.steady_img_s, ",.1f") + spread if ok else "-",
                "efficiency [95%]": eff,
                "all-reduce share": share_text(r.allreduce_share) if ok else "-",
                # rank 0's first step (and steps kept off the window) over a steady step, as the single-process
                # tables' "first-step overhead": a data-parallel row is in none of them
                "first-step overhead (s)": _num(r.compile_s, ".3f") if ok else "-",
                "test acc": _num(r.test_acc, ".4f") if ok else "-",
                **({TO_TARGET.words: _to_target(r), SPEEDUP: _speedup(r, records)} if target else {}),
                "test macro-F1": _num(r.get("test_macro_f1"), ".4f") if ok else "-",  # rank 0's, as test acc
                "status": "ok" if ok else f"{r.status}: {r.error}",
            }
        )
    return pd.DataFrame(rows)


def _who(r: pd.Series, several: bool) -> str:
    """A row of the table in words: "PyTorch, 2 worker(s), strong scaling" (its repeat where there are several)."""
    repeat = f" repeat {int(r['repeat'])}" if several else ""
    return f"{label(r.backend)}{repeat}, {int(r.workers)} worker(s), {r.scaling_mode} scaling"


def _notes(r: pd.Series) -> list[str]:
    return split_notes(r.notes) if isinstance(r.get("notes"), str) else []


def oversubscribed(dist: pd.DataFrame, task: str) -> list[str]:
    """A warning line per row of ``task`` whose ranks ran more threads than cores (its note says so): its img/s and
    efficiency include threads waiting for cores, which nothing in the table shows."""
    several = _several_repeats(dist[dist.task == task])
    return [
        f"- **oversubscribed**: {_who(r, several)}: {note.removeprefix(OVERSUBSCRIBED)}"
        for _, r in _in_order(dist, task).iterrows()
        for note in _notes(r)
        if note.startswith(OVERSUBSCRIBED)
    ]


def findings(dist: pd.DataFrame, task: str) -> list[str]:
    """A line per row of ``task`` with findings of its own (``scaling.FINDINGS``: its ranks' weights equal or DIFFER,
    its accuracy against 1 worker, why it has no efficiency, ...), in the table's order: they were in results.csv
    only, and a reader of the table could not tell that a row's replicas had drifted apart."""
    several = _several_repeats(dist[dist.task == task])
    lines = []
    for _, r in _in_order(dist, task).iterrows():
        if mine := [n for n in _notes(r) if n.startswith(FINDINGS)]:
            lines.append(f"- {_who(r, several)}: {'; '.join(mine)}")
    return lines


def section(df: pd.DataFrame, run_dir: Path, drawn: Collection[Path] = frozenset()) -> str:
    """The summary.md section, or "" when the run has no data-parallel rows. A task with no single-process row has no
    part of its own in summary.md: its model, data and training curves (among ``drawn``) are given here."""
    single, dist = split(df)
    if dist.empty:
        return ""
    parts = [
        "\n## Data-parallel scaling\n",
        "Each row trains the task on N worker processes with the framework's own engine; img/s is global "
        "(all workers), with its 95% interval: ± its half-width, or, where any row's interval is lopsided, every "
        "row's ends [lo, hi]. Strong scaling keeps the global batch, "
        "weak keeps the batch per worker. Efficiency = img/s(N) / (N x img/s(1)) against the 1-worker row "
        "of the same backend and mode (same threads per worker), with its 95% interval: a block bootstrap of "
        "the two rows' step rates, or, for rows timed in synchronised stretches (Keras on JAX), Welch's t over "
        f"the stretches' log rates, and none with fewer than {stats.MIN_SEGMENTS} stretches a side. "
        "All-reduce share = 1 - step time of the same window in N workers that never exchange gradients / "
        "step time with the exchange. First-step overhead = rank 0's first step (and the steps kept off the window) "
        "over a steady step of its window, as a single-process row's (compile_s). See docs/distributed.md.\n",
    ]
    for task in dist.task.unique():
        parts.append(f"\n### {task}\n")
        alone = not (single.task == task).any()  # no part of its own above: what it trained on is said here
        if alone:
            parts.append(f"\n{task_head(dist[dist.task == task]).markdown()}\n")
        if target := target_line(dist, task):
            parts.append(f"\n{target}\n")
        parts.append("\n" + _md(scaling_table(dist, task)) + "\n")
        if said := configuration_lines(dist[dist.task == task]):  # what each backend's rows ran as (compiler, ...)
            parts.append("\n" + "\n".join(said))
        if warnings := oversubscribed(dist, task):
            parts.append("\n" + "\n".join(warnings) + "\n")
        if lines := findings(dist, task):
            parts.append("\nNotes:\n" + "\n".join(lines) + "\n")
        path = plot_file(run_dir, "scaling", task)
        if path.exists():
            parts.append(f"\n![scaling of {task}]({link(run_dir, path)})\n")
        if alone and (curves := plot_file(run_dir, "curves", task)) in drawn:
            parts.append(f"\n![training curves of {task}]({link(run_dir, curves)})\n")
    return "".join(parts)


def plot_jobs(df: pd.DataFrame, run_dir: Path) -> list[PlotJob]:
    _, dist = split(df)
    return [(plot_scaling, (dist[dist.task == t], t, plot_file(run_dir, "scaling", t))) for t in dist.task.unique()]


def _error_bars(rows: pd.DataFrame, column: str) -> list[list[float]]:
    """``column``'s 95% interval per row as matplotlib's (below, above) distances, 0 where a row has none (the table
    shows them; the figure drew the points alone, QA 2026-12-06)."""
    value = pd.to_numeric(rows[column], errors="coerce")
    lo = pd.to_numeric(rows.get(f"{column}_ci_lo", pd.Series(index=rows.index, dtype=float)), errors="coerce")
    hi = pd.to_numeric(rows.get(f"{column}_ci_hi", pd.Series(index=rows.index, dtype=float)), errors="coerce")
    return [(value - lo).clip(lower=0).fillna(0).tolist(), (hi - value).clip(lower=0).fillna(0).tolist()]


def plot_scaling(rows: pd.DataFrame, task: str, path: Path) -> bool:
    """Global img/s and efficiency against workers, each point with its 95% interval: a line per backend and mode."""
    import matplotlib.pyplot as plt

    ok = rows[rows.status == "ok"].copy()
    if ok.empty:
        return False
    ok["_w"] = pd.to_numeric(ok.workers, errors="coerce")
    names = ordered(ok.backend)
    fig, (ax_t, ax_e) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    for b in names:
        for mode, style in STYLES.items():
            sub = ok[(ok.backend == b) & (ok.scaling_mode == mode)].sort_values("_w")
            if sub.empty:
                continue
            for ax, column in ((ax_t, "steady_img_s"), (ax_e, "scaling_eff")):  # each with the table's 95% interval
                value = pd.to_numeric(sub[column], errors="coerce")
                ax.errorbar(
                    sub._w, value, yerr=_error_bars(sub, column), fmt=style, marker="o", color=colour(b), capsize=3
                )
    ax_e.axhline(1.0, color="grey", lw=0.8, ls=":")
    for ax, title in ((ax_t, f"{task}: global img/s"), (ax_e, "scaling efficiency")):
        ax.set_xlabel("workers")
        ax.set_xticks(sorted(ok._w.unique()))
        ax.set_title(title)
        ax.grid(alpha=0.3)
    ax_e.set_ylim(bottom=0)
    modes = tuple((m, {"ls": s}) for m, s in STYLES.items() if (ok.scaling_mode == m).any())
    backend_legend(fig, names, modes)
    return save_figure(fig, path, dpi=110, tight=False)


def terminal_lines(df: pd.DataFrame) -> str:
    """The scaling tables for the CLI's closing summary ("" without data-parallel rows)."""
    _, dist = split(df)
    if dist.empty:
        return ""
    return "".join(
        f"\n== {t}: data-parallel scaling ==\n{_md(scaling_table(dist, t), 'simple')}" for t in dist.task.unique()
    )


def _md(table: pd.DataFrame, tablefmt: str = "pipe") -> str:
    return table.to_markdown(index=False, tablefmt=tablefmt, disable_numparse=True)
