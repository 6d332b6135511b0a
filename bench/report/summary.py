"""From records.jsonl to results.csv, summary.md (backends side by side + ratios) and plots."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.core.phase import RunView
from bench.core.results import latest_records, read_json_or_warn, read_records, table, warn
from bench.core.runpaths import plot_file, plot_name
from bench.measure.inputpath import input_bound_warnings
from bench.phases import PHASES
from bench.report.models import sections as model_sections
from bench.report.plotting import PlotJob, render, save_figure

# (column, label, number format)
SUMMARY_METRICS = (
    ("test_acc", "test accuracy", ".4f"),
    ("test_loss", "test loss", ".4f"),
    ("train_s", "training time (s)", ".2f"),
    ("epoch_s_median", "steady epoch (s, median)", ".3f"),
    ("throughput_img_s", "steady throughput (img/s)", ",.0f"),
    ("steady_img_s", "steady step throughput (img/s, ± 95% CI)", ",.1f"),
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
RATIO_BASE, RATIO_OTHER = "torch", "keras"


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


def side_by_side(df: pd.DataFrame, task: str, formatted: bool = False) -> pd.DataFrame:
    """One task's metrics with a column per backend (median over ok repeats) and keras/torch."""
    ok = with_spread(df[(df.task == task) & (df.status == "ok")])
    rows = []
    for col, label, fmt in SUMMARY_METRICS:
        vals = pd.to_numeric(ok[col], errors="coerce").groupby(ok.backend).median()
        if vals.isna().all():
            continue
        row = {"metric": label}
        for b in sorted(df[df.task == task].backend.unique(), key=lambda b: (b != RATIO_BASE, b)):
            row[b] = vals.get(b)
        base, other = vals.get(RATIO_BASE), vals.get(RATIO_OTHER)
        ratio = other / base if base and other is not None and pd.notna(other) else None
        if formatted:
            row = {k: (_fmt(v, fmt) if k not in ("metric",) else v) for k, v in row.items()}
            if col == "steady_img_s":  # value ± half-width of its 95% interval
                row.update({b: f"{row[b]} ± {_fmt(half_width(ok, b), fmt)}" for b in row if b != "metric"
                            and half_width(ok, b) is not None})  # fmt: skip
            ratio = _fmt(ratio, ".3f")
        row[f"{RATIO_OTHER}/{RATIO_BASE}"] = ratio
        rows.append(row)
    return pd.DataFrame(rows)


def _fmt(v: object, fmt: str) -> str:
    if v is None or pd.isna(v):
        return "-"
    return format(v, fmt)


def summary_markdown(df: pd.DataFrame, env: dict, notice: str = "") -> str:
    lines = [f"# bench run {env.get('run_id', '')}", ""] + ([notice, ""] if notice else [])
    gpu = ", ".join(env.get("gpus") or []) or "none"
    lines += [
        f"Machine: {env.get('cpu')} ({env.get('cores')} cores, {env.get('memory_gib')} GiB), GPU: {gpu}; "
        f"Python {env.get('python')}; commit {env.get('git_commit')}.",
        "Packages: " + ", ".join(f"{k} {v}" for k, v in env.get("packages", {}).items()) + ".",
        "",
        "Ratios are keras/torch of the medians over ok repeats. Steady epoch figures exclude the "
        "first epoch. The steady step throughput is timed inside the one training call per epoch, over every "
        "step after the first step and the warm-up steps (docs/timing.md): the median step throughput "
        "± the half-width of its 95% bootstrap interval; with repeats, the between-run spread is its own row. "
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
        sbs = side_by_side(df, task, formatted=True)
        if len(sbs):
            lines += [
                sbs.to_markdown(
                    index=False, colalign=("left",) + ("right",) * (sbs.shape[1] - 1), disable_numparse=True
                ),
                "",
            ]
        lines += input_bound_warnings(sub.to_dict("records"))
        for _, r in sub[sub.status != "ok"].iterrows():
            lines += [f"- {r['backend']} repeat {r['repeat']}: **{r['status']}**: {r['error']}"]
        lines += ["", f"![training curves]({plot_name('curves', task)})", ""]
        lines += [line for phase in PHASES for line in phase.task_lines(sub)]
        notes = sorted({n for cell in sub.notes.dropna() for n in cell.split("; ")})
        if len(notes):
            lines += ["Notes:", *[f"- {n}" for n in notes], ""]
    return "\n".join(lines) + "\n"


def plot_curves(records: list[dict], task: str, path: Path) -> bool:
    """Per-epoch training loss and test accuracy, both backends on one axis each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for r in records if r["task"] == task and r.get("status") == "ok" and r.get("history")]
    if not runs:
        return False
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    for r in runs:
        h = r["history"]
        label = f"{r['backend']} (repeat {r['repeat']})" if r.get("repeat") else r["backend"]
        ax_loss.plot([e["epoch"] for e in h], [e["train_loss"] for e in h], marker="o", label=label)
        acc = [(e["epoch"], e["test_acc"]) for e in h if "test_acc" in e]
        if acc:
            ax_acc.plot(*zip(*acc, strict=False), marker="o", label=label)
    ax_loss.set(title=f"{task}: training loss", xlabel="epoch", ylabel="cross-entropy")
    ax_acc.set(title=f"{task}: test accuracy", xlabel="epoch", ylabel="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    return save_figure(fig, path, dpi=110)


def plot_bars(df: pd.DataFrame, path: Path) -> bool:
    """Steady throughput (bar = median, whiskers = slowest..fastest steady epoch) and test accuracy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    ok = df[df.status == "ok"].copy()
    if ok.empty:
        return False
    for col in ("throughput_img_s", "epoch_s_min", "epoch_s_max", "n_train", "test_acc"):
        ok[col] = pd.to_numeric(ok[col], errors="coerce")
    ok["fast"], ok["slow"] = ok.n_train / ok.epoch_s_min, ok.n_train / ok.epoch_s_max
    g = ok.groupby(["task", "backend"]).agg(
        thr=("throughput_img_s", "median"), fast=("fast", "max"), slow=("slow", "min"), acc=("test_acc", "median")
    )
    tasks = list(dict.fromkeys(ok.task))
    backends = sorted(ok.backend.unique(), key=lambda b: (b != RATIO_BASE, b))
    width = 0.8 / len(backends)
    fig, (ax_t, ax_a) = plt.subplots(1, 2, figsize=(11, 4))
    for i, b in enumerate(backends):
        x = np.arange(len(tasks)) + (i - (len(backends) - 1) / 2) * width
        rows = [g.loc[(t, b)] if (t, b) in g.index else None for t in tasks]
        thr = [r.thr if r is not None else 0 for r in rows]
        err = [[max(0, r.thr - r.slow) if r is not None else 0 for r in rows],
               [max(0, r.fast - r.thr) if r is not None else 0 for r in rows]]  # fmt: skip
        ax_t.bar(x, thr, width, yerr=err, capsize=3, label=b)
        ax_a.bar(x, [r.acc if r is not None else 0 for r in rows], width, label=b)
    for ax, title in ((ax_t, "steady training throughput (img/s)"), (ax_a, "test accuracy")):
        ax.set_xticks(np.arange(len(tasks)), tasks, rotation=15, ha="right")
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    ax_t.legend()
    ax_a.legend(loc="lower right")
    ax_a.set_ylim(0, 1)
    return save_figure(fig, path, dpi=110)


def write_reports(run_dir: Path) -> pd.DataFrame:
    """results.csv, summary.md and plots/ from records.jsonl alone."""
    records = latest_records(read_records(run_dir))
    df = table(records)
    df.to_csv(run_dir / "results.csv.partial", index=False)
    (run_dir / "results.csv.partial").replace(run_dir / "results.csv")
    env = read_json_or_warn(run_dir / "environment.json")
    jobs: list[PlotJob] = [
        (plot_curves, ([r for r in records if r["task"] == task], task, plot_file(run_dir, "curves", task)))
        for task in df.task.unique()
    ]
    jobs.append((plot_bars, (df, plot_file(run_dir, "overview"))))
    view = RunView(df, records, run_dir)
    render(jobs + [job for phase in PHASES for job in phase.plot_jobs(view)])
    notice = incomplete_notice(run_dir, df)
    sections = [section for phase in PHASES if (section := phase.summary_section(view))]  # in PHASES order
    text = summary_markdown(df, env, notice) + model_sections(df, records) + "".join(sections)
    tmp = run_dir / "summary.md.partial"
    tmp.write_text(text)
    tmp.replace(run_dir / "summary.md")
    return df


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


def terminal_summary(df: pd.DataFrame) -> str:
    """The side-by-side tables the CLI prints at the end."""
    parts = []
    for task in df.task.unique():
        sbs = side_by_side(df, task, formatted=True)
        parts.append(f"\n== {task} ==")
        if len(sbs):
            parts.append(
                sbs.to_markdown(
                    index=False,
                    tablefmt="simple",
                    colalign=("left",) + ("right",) * (sbs.shape[1] - 1),
                    disable_numparse=True,
                )
            )
        for _, r in df[(df.task == task) & (df.status != "ok")].iterrows():
            parts.append(f"  {r.backend}: {r.status}: {r.error}")
    return "\n".join(parts)
