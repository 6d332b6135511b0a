"""From records.jsonl to results.csv, summary.md (backends side by side + ratios) and plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from bench.core.phase import RunView
from bench.core.record import split_notes
from bench.core.results import latest_records, read_json_or_warn, read_records, run_wall_s, table, warn
from bench.core.runfiles import write_atomic
from bench.core.runpaths import plot_file, plot_name
from bench.measure.inputpath import input_bound_warnings
from bench.phases import PHASES
from bench.report import accuracy, scaling, tuning
from bench.report.backends import DEFAULT_REFERENCE, colour, label, ordered, ratio_name, reference_missing
from bench.report.models import sections as model_sections
from bench.report.page import write_page
from bench.report.placement import placement_warnings
from bench.report.plotting import PlotJob, backend_legend, render, save_figure
from bench.report.zoo import zoo_plot_jobs, zoo_section

# (column, label, number format)
SUMMARY_METRICS = (
    ("test_acc", "test accuracy", ".4f"),
    ("test_loss", "test loss", ".4f"),
    ("train_s", "training time (s)", ".2f"),
    ("epoch_s_median", "steady epoch (s, median)", ".3f"),
    ("throughput_img_s", "steady throughput (img/s)", ",.0f"),
    ("steady_img_s", "headline throughput: timed images / window time (img/s, ± 95% CI)", ",.1f"),
    ("median_step_img_s", "median step throughput (img/s)", ",.1f"),
    ("steady_img_s_spread_pct", "step throughput spread between repeats (%)", ".1f"),
    ("steady_epoch_ratio", "step / epoch throughput", ".3f"),
    ("timed_steps", "timed steps", ",.0f"),
    ("timed_s", "timed window (s)", ".2f"),
    ("epoch_overhead_s", "per-epoch call overhead (s)", ".3f"),
    ("input_share", "input path / step", ".1%"),
    ("first_epoch_s", "first epoch (s)", ".3f"),
    ("first_step_s", "first step (s)", ".3f"),
    ("compile_s", "first-step overhead (s)", ".3f"),
    ("mfu", "MFU", ".2%"),
    ("eval_img_s", "inference (img/s)", ",.0f"),
    ("time_to_target_s", "time to target acc (s)", ".2f"),
    ("transfer_acc", "transfer acc (all classes)", ".4f"),
    ("transfer_acc_restricted", "transfer acc (mapped classes)", ".4f"),
    ("forward_ms_per_img", "forward, explain batch (ms/img)", ".3f"),
    ("gradcam_ms_per_img", "Grad-CAM (ms/img)", ".3f"),
    ("gradcam_forward_ratio", "Grad-CAM / forward", ".2f"),
    ("saliency_ms_per_img", "saliency (ms/img)", ".3f"),
    ("peak_host_mb", "peak host RSS (MB)", ",.0f"),
    ("peak_device_mb", "peak device memory (MB)", ",.0f"),
    ("params", "parameters", ",.0f"),
)


def with_spread(ok: pd.DataFrame) -> pd.DataFrame:
    """``steady_img_s_spread_pct``: (max - min) / median of the repeats' steady figures, per backend.

    The between-run spread, reported apart from each run's own interval: on a shared machine
    it is usually the larger of the two. NaN with one repeat.
    """
    ok = ok.copy()
    v = pd.to_numeric(ok["steady_img_s"], errors="coerce")
    g = v.groupby(ok.backend)
    spread = 100 * (g.transform("max") - g.transform("min")) / g.transform("median")
    ok["steady_img_s_spread_pct"] = spread.where(g.transform("count") >= 2)
    return ok


def half_width(ok: pd.DataFrame, backend: str) -> float | None:
    """The steady figure's 95% half-width: the median over repeats of each run's own half-width."""
    sub = ok[ok.backend == backend]
    hw = (pd.to_numeric(sub["steady_img_s_hw_pct"], errors="coerce") / 100 *
          pd.to_numeric(sub["steady_img_s"], errors="coerce")).dropna()  # fmt: skip
    return float(hw.median()) if len(hw) else None


def side_by_side(df: pd.DataFrame, task: str, formatted: bool = False,
                 reference: str = DEFAULT_REFERENCE) -> pd.DataFrame:  # fmt: skip
    """One task's metrics: a column per backend (median over ok repeats, registry order), then one ratio
    column ``<backend>/<reference>`` per other backend.

    Formatted, a ratio cell the reference cannot fill says why (e.g. "torch failed", "no torch row").
    """
    rows_all = df[df.task == task]
    ok = with_spread(rows_all[rows_all.status == "ok"])
    names = ordered(rows_all.backend)
    others = [b for b in names if b != reference]
    why = reference_missing(rows_all, reference)
    rows = []
    for col, metric, fmt in SUMMARY_METRICS:
        vals = pd.to_numeric(ok[col], errors="coerce").groupby(ok.backend).median()
        if vals.isna().all():
            continue
        row = {"metric": metric, **{b: vals.get(b) for b in names}}
        base = vals.get(reference)
        ratios = {b: _ratio(vals.get(b), base) for b in others}
        if formatted:
            row = {k: (_fmt(v, fmt) if k != "metric" else v) for k, v in row.items()}
            if col == "steady_img_s":  # value ± half-width of its 95% interval
                row.update({b: f"{row[b]} ± {_fmt(half_width(ok, b), fmt)}" for b in names
                            if half_width(ok, b) is not None})  # fmt: skip
            ratios = {b: why or _fmt(r, ".3f") for b, r in ratios.items()}
        row.update({ratio_name(b, reference): r for b, r in ratios.items()})
        rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs.update(backends=names, ratios=[ratio_name(b, reference) for b in others])
    return out


def _ratio(value: float | None, base: float | None) -> float | None:
    """value / base, None when either is missing or the base is 0."""
    return value / base if base and value is not None and pd.notna(value) else None


def _fmt(v: object, fmt: str) -> str:
    if v is None or pd.isna(v):
        return "-"
    return format(v, fmt)


def ratio_note(reference: str) -> str:
    """What the ratio columns mean and which way is better, said once above the tables."""
    return (
        f"Ratios are each backend's median over ok repeats divided by {label(reference)}'s (the reference, "
        f"`--reference {reference}`), one column `<backend>/{reference}` per other backend. Above 1 the backend's "
        "figure is larger: better in the accuracy, img/s and MFU rows, worse in the loss, seconds and MB rows "
        "(slower, more memory)."
    )


def markdown_table(sbs: pd.DataFrame, tablefmt: str = "pipe") -> str:
    """A side-by-side table as text, the backend columns under their display labels."""
    shown = sbs.rename(columns={b: label(b) for b in sbs.attrs.get("backends", [])})
    return shown.to_markdown(index=False, tablefmt=tablefmt, colalign=("left",) + ("right",) * (shown.shape[1] - 1),
                             disable_numparse=True)  # fmt: skip


def speed_lines(df: pd.DataFrame, wall_s: float | None) -> list[str]:
    """The run's wall time and the machine's measured matmul speed per backend: what a run on another
    day (a VM's host can be several times slower) is read against."""
    parts = []
    if wall_s is not None:
        minutes, seconds = divmod(round(wall_s), 60)
        parts.append(f"Wall time {minutes} min {seconds} s.")
    if "peak_flops_source" in df and len(df):
        measured = df[df.peak_flops_source.astype(str).str.startswith("measured") & df.peak_flops.notna()]
        by_backend = measured.groupby("backend", sort=False).peak_flops.median()
        if len(by_backend):
            how = measured.peak_flops_source.iloc[0].removeprefix("measured: ")
            speeds = ", ".join(f"{label(b)} {v / 1e9:,.0f} GFLOP/s" for b, v in by_backend.items())
            parts.append(f"Machine speed (the MFU peak, {how}): {speeds}.")
    return [" ".join(parts)] if parts else []


def summary_markdown(df: pd.DataFrame, env: dict, notice: str = "", records: list[dict] | None = None,
                     reference: str = DEFAULT_REFERENCE, wall_s: float | None = None) -> str:  # fmt: skip
    lines = [f"# bench run {env.get('run_id', '')}", ""] + ([notice, ""] if notice else [])
    gpu = ", ".join(env.get("gpus") or []) or "none"
    lines += [
        f"Machine: {env.get('cpu')} ({env.get('cores')} cores, {env.get('memory_gib')} GiB), GPU: {gpu}; "
        f"Python {env.get('python')}; commit {env.get('git_commit')}.",
        "Packages: " + ", ".join(f"{k} {v}" for k, v in env.get("packages", {}).items()) + ".",
        *speed_lines(df, wall_s),
        "",
        ratio_note(reference) + " Steady epoch figures exclude the first epoch."
        " The headline throughput is timed inside the one training call per epoch, over every "
        "step after the first step and the warm-up steps (docs/timing.md): the timed images over the window's "
        "time (as timm, the Keras benchmarks and MLPerf quote) ± the half-width of its 95% bootstrap interval "
        "over steps; the median step's throughput is its own row; with repeats, the between-run spread too. "
        "Step / epoch throughput compares it with the epochs, which also pay each training call's own "
        "setup and teardown (per-epoch call overhead). The first-step overhead is the first step's excess "
        "over a steady step (tracing, compilation, warm-up).",
        "",
        f"![throughput and accuracy]({plot_name('overview')})",
        "",
    ]
    for task in df.task.unique():
        sub = df[df.task == task]
        first = sub.iloc[0]
        lines += [
            f"## {task}",
            "",
            f"Model `{first.model}` {first.model_options}, dataset `{first.dataset}` "
            f"from `{first.dataset_source}`, {first.n_train} train / {first.n_test} test, "
            f"{first.epochs} epochs, batch {first.batch_size}, profile `{first.profile}`.",
            "",
        ]
        sbs = side_by_side(df, task, formatted=True, reference=reference)
        if len(sbs):
            lines += [markdown_table(sbs), ""]
        lines += input_bound_warnings(sub.to_dict("records"))
        lines += placement_warnings(sub.to_dict("records"))
        for _, r in sub[sub.status != "ok"].iterrows():
            lines += [f"- {r['backend']} repeat {r['repeat']}: **{r['status']}**: {r['error']}"]
        lines += ["", f"![training curves]({plot_name('curves', task)})", ""]
        lines += [line for phase in PHASES for line in phase.task_lines(sub)]
        notes = sorted({n for cell in sub.notes.dropna() for n in split_notes(cell)})
        if len(notes):
            lines += ["Notes:", *[f"- {n}" for n in notes], ""]
    return "\n".join(lines) + "\n"


LINESTYLES = ("-", "--", ":", "-.")  # repeats of one backend: its colour, one line style each


def plot_curves(records: list[dict], task: str, path: Path) -> bool:
    """Per-epoch training loss and test accuracy: a colour per backend, a line style per repeat."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for r in records if r["task"] == task and r.get("status") == "ok" and r.get("history")]
    if not runs:
        return False
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    for r in runs:
        h = r["history"]
        style = {"color": colour(r["backend"]), "linestyle": LINESTYLES[(r.get("repeat") or 0) % len(LINESTYLES)],
                 "marker": "o"}  # fmt: skip
        ax_loss.plot([e["epoch"] for e in h], [e["train_loss"] for e in h], **style)
        acc = [(e["epoch"], e["test_acc"]) for e in h if "test_acc" in e]
        if acc:
            ax_acc.plot(*zip(*acc, strict=False), **style)
    ax_loss.set(title=f"{task}: training loss", xlabel="epoch", ylabel="cross-entropy")
    ax_acc.set(title=f"{task}: test accuracy", xlabel="epoch", ylabel="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
    repeats = sorted({r.get("repeat") or 0 for r in runs})
    styles = tuple((f"repeat {k}", {"linestyle": LINESTYLES[k % len(LINESTYLES)]}) for k in repeats)
    backend_legend(fig, ordered(r["backend"] for r in runs), styles if len(repeats) > 1 else ())
    return save_figure(fig, path, dpi=110, tight=False)


def epoch_throughput_range(ok: pd.DataFrame) -> pd.DataFrame:
    """Per (task, backend) of ok rows: median steady throughput ``thr``, the fastest (``fast``) and slowest
    (``slow``) steady epoch's, and the median test accuracy ``acc``."""
    ok = ok.copy()
    for col in ("throughput_img_s", "epoch_s_median", "epoch_s_min", "epoch_s_max", "test_acc"):
        ok[col] = pd.to_numeric(ok[col], errors="coerce")
    # the images an epoch trained (throughput x median epoch): fewer than n_train with train.drop_last
    images = ok.throughput_img_s * ok.epoch_s_median
    ok["fast"], ok["slow"] = images / ok.epoch_s_min, images / ok.epoch_s_max
    return ok.groupby(["task", "backend"]).agg(
        thr=("throughput_img_s", "median"), fast=("fast", "max"), slow=("slow", "min"), acc=("test_acc", "median")
    )


def plot_bars(df: pd.DataFrame, path: Path) -> bool:
    """Steady throughput (bar = median, whiskers = slowest..fastest steady epoch) and test accuracy,
    one bar per backend in registry order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    ok = df[df.status == "ok"]
    if ok.empty:
        return False
    g = epoch_throughput_range(ok)
    tasks = list(dict.fromkeys(ok.task))
    backends = ordered(ok.backend)
    width = 0.8 / len(backends)
    fig, (ax_t, ax_a) = plt.subplots(1, 2, figsize=(11, 4.3), layout="constrained")
    for i, b in enumerate(backends):
        x = np.arange(len(tasks)) + (i - (len(backends) - 1) / 2) * width
        rows = [g.loc[(t, b)] if (t, b) in g.index else None for t in tasks]
        thr = [r.thr if r is not None else 0 for r in rows]
        err = [[max(0, r.thr - r.slow) if r is not None else 0 for r in rows],
               [max(0, r.fast - r.thr) if r is not None else 0 for r in rows]]  # fmt: skip
        ax_t.bar(x, thr, width, yerr=err, capsize=3, color=colour(b))
        ax_a.bar(x, [r.acc if r is not None else 0 for r in rows], width, color=colour(b))
    for ax, title in ((ax_t, "steady training throughput (img/s)"), (ax_a, "test accuracy")):
        ax.set_xticks(np.arange(len(tasks)), tasks, rotation=15, ha="right")
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    ax_a.set_ylim(0, 1)
    backend_legend(fig, backends)
    return save_figure(fig, path, dpi=110, tight=False)


def write_reports(run_dir: Path, reference: str = DEFAULT_REFERENCE) -> pd.DataFrame:
    """results.csv, summary.md and plots/ from records.jsonl alone; ratios against ``reference``."""
    every = in_plan_order(latest_records(read_records(run_dir)), read_json_or_warn(run_dir / "plan.json"))
    df_every = table(every)
    write_atomic(run_dir, run_dir / "results.csv", df_every.to_csv(index=False).encode())
    records = [r for r in every if r.get("workers") is None]  # data-parallel rows: their own section
    df = table(records)
    env = read_json_or_warn(run_dir / "environment.json")
    jobs: list[PlotJob] = [
        (plot_curves, ([r for r in records if r["task"] == task], task, plot_file(run_dir, "curves", task)))
        for task in df.task.unique()
    ]
    jobs.append((plot_bars, (df, plot_file(run_dir, "overview"))))
    view = RunView(df, records, run_dir)
    jobs += zoo_plot_jobs(df, run_dir, reference)
    jobs += tuning.plot_jobs(records, run_dir)
    render(jobs + [job for phase in PHASES for job in phase.plot_jobs(view)] + scaling.plot_jobs(df_every, run_dir))
    notice = incomplete_notice(run_dir, df_every)
    sections = [section for phase in PHASES if (section := phase.summary_section(view))]  # in PHASES order
    wall_s = run_wall_s(run_dir / "state.json")
    text = summary_markdown(df, env, notice, records, reference, wall_s) + model_sections(df, records, reference)
    text += "".join(sections) + zoo_section(df, run_dir, reference) + scaling.section(df_every, run_dir)
    text += tuning.section(records, run_dir)
    text += accuracy.section(df, read_json_or_warn(run_dir / "plan.json"))
    write_atomic(run_dir, run_dir / "summary.md", text.encode())
    tasks = df.task.unique()
    tables = {t: (side_by_side(df, t, reference=reference), side_by_side(df, t, True, reference)) for t in tasks}
    columns = {name: col for col, name, _ in SUMMARY_METRICS}
    write_page(run_dir, df, env, tables, columns, notice, speed_lines(df, None), reference, wall_s)
    return df


def in_plan_order(records: list[dict[str, Any]], plan: dict[str, Any]) -> list[dict[str, Any]]:
    """``records`` in the order plan.json lists their tasks and backends, repeats ascending: a row rerun
    by ``--resume`` is reported where it was planned, not last. Rows the plan does not name keep their
    order, after the rest; a plan that names nothing leaves the order as written."""
    tasks = plan.get("tasks") if isinstance(plan.get("tasks"), list) else []
    names = [t["name"] for t in tasks if isinstance(t, dict) and isinstance(t.get("name"), str)]
    options = plan.get("options") if isinstance(plan.get("options"), dict) else {}
    backends = [b for b in options.get("backends") or [] if isinstance(b, str)]
    if not names:
        return records
    task_at = {name: i for i, name in reversed(list(enumerate(names)))}
    backend_at = {b: i for i, b in reversed(list(enumerate(backends)))}

    def place(r: dict[str, Any]) -> tuple[int, int, int]:
        return task_at.get(r["task"], len(names)), backend_at.get(r["backend"], len(backends)), r["repeat"]

    return sorted(records, key=place)  # stable: data-parallel rows of one key stay as written


def incomplete_notice(run_dir: Path, df: pd.DataFrame) -> str:
    """The line summary.md opens with when state.json says the run did not finish (and why, when it knows)."""
    state = read_json_or_warn(run_dir / "state.json")
    planned = state.get("planned")
    if not isinstance(planned, int) or isinstance(planned, bool) or planned < 1:
        if state:
            warn(f"{run_dir / 'state.json'}: no planned number of runs; the run's completeness is not checked")
        return ""
    if state.get("state") == "complete" and len(df) >= planned:
        return ""
    done = int(df.status.isin(["ok", "skipped", "failed", "timeout"]).sum())
    why = f" ({state['error']})" if isinstance(state.get("error"), str) else ""
    return (
        f"**This run is incomplete ({state.get('state')}{why}): {done} of {planned} runs recorded.** "
        f"Finish it with `python -m bench all --resume {run_dir}`."
    )


def terminal_summary(df: pd.DataFrame, reference: str = DEFAULT_REFERENCE) -> str:
    """The side-by-side tables the CLI prints at the end, after one line on what the ratios mean."""
    df_all = df
    parts, ratios = [], False
    df, _ = scaling.split(df)  # the data-parallel rows: their own tables, after these
    for task in df.task.unique():
        sbs = side_by_side(df, task, formatted=True, reference=reference)
        parts.append(f"\n== {task} ==")
        if len(sbs):
            parts.append(markdown_table(sbs, tablefmt="simple"))
            ratios = ratios or bool(sbs.attrs["ratios"])
        for _, r in df[(df.task == task) & (df.status != "ok")].iterrows():
            parts.append(f"  {r.backend}: {r.status}: {r.error}")
    head = [f"ratios: <backend>/{reference} of the medians over ok repeats (> 1: a larger figure: better for "
            "accuracy, img/s and MFU, worse for loss, seconds and MB)"]  # fmt: skip
    return "\n".join(head * ratios + parts) + scaling.terminal_lines(df_all)
