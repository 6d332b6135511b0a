"""summary.md's prose: the run's head (machine, packages, speed, what the figures mean) and each task's part."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from bench.core.placement import loaded_words, peak_load, peak_reads_low
from bench.core.results import (
    RECORDS,
    failed_repeats_of_task,
    kept_on_resume,
    lost_line,
    machine_speed,
    phase_failed,
    read_json_or_warn,
    resume_command,
    warn,
)
from bench.core.runpaths import plot_name
from bench.measure.inputpath import input_bound_warnings
from bench.measure.stats import FEW_STEPS
from bench.report.backends import DEFAULT_REFERENCE, label
from bench.report.notes import attributed_notes
from bench.report.placement import placement_warnings
from bench.report.sections import task_lines
from bench.report.speedup import WHAT
from bench.report.tables import markdown_table, ratio_note, side_by_side
from bench.report.taskhead import machine_words, task_head, wall_time_sentence


def kernel_lines(env: dict[str, Any]) -> list[str]:
    """The CPU's vector instructions, and any variable that capped a framework's kernels (bench.run.environment)."""
    lines = [f"CPU vector instructions: {' '.join(flags)}."] if (flags := env.get("cpu_flags")) else []
    if capped := env.get("kernel_variables"):
        lines.append(
            "Kernels chosen by the environment, not only by this CPU: "
            + ", ".join(f"{k}={v}" for k, v in capped.items())
            + "."
        )
    return lines


def speed_lines(df: pd.DataFrame, wall_s: float | None) -> list[str]:
    """The run's wall time and the machine's measured matmul speed per backend: what a run on another
    day (a VM's host can be several times slower) is read against."""
    parts = []
    if wall_s is not None:
        parts.append(wall_time_sentence(wall_s))
    if "peak_flops_source" in df and len(df):
        by_backend, how = machine_speed(df.to_dict("records"))  # fp32 only: a bf16 row's peak is its own
        if by_backend:
            speeds = ", ".join(f"{label(b)} {v / 1e9:,.0f} GFLOP/s" for b, v in by_backend.items())
            parts.append(f"Machine speed (the MFU peak, {how}): {speeds}.")
            parts += apart_sentence(by_backend)
            parts += loaded_peak_sentence(df.to_dict("records"))
    return [" ".join(parts)] if parts else []


def loaded_peak_sentence(records: list[dict[str, Any]]) -> list[str]:
    """A sentence naming each backend whose MFU peak reads low (``peak_reads_low``: measured on a node loaded beyond
    its cores, or while others used its cores, or below the row's own speed), its first such row's reason: the MFU
    against it reads high (Keras at 77-89% on a loaded 2-core VM, 118% beside one busy process), so the figure is
    not to be read unqualified; each such row's notes say it."""
    loaded, other = [], []
    for backend in sorted({str(r.get("backend")) for r in records}):
        mine = [r for r in records if str(r.get("backend")) == backend]
        if words := loaded_words(peak_load(mine)):
            loaded.append(f"{label(backend)}'s at {words}")
        elif why := next((w for r in mine if (w := peak_reads_low(r))), None):
            other.append(f"{label(backend)}'s {why}")
    out = []
    if loaded:
        out.append(
            f"MFU peak measured on a machine loaded beyond its cores ({'; '.join(loaded)}): the matmuls shared the "
            "cores, so that peak reads low and MFU against it high; read those rows by img/s."
        )
    if other:
        out.append(
            f"MFU peak reading low ({'; '.join(other)}): its matmuls shared the cores or ran below their speed, so "
            "MFU against it reads high; read those rows by img/s."
        )
    return out


# How far apart two backends' own matmuls may be on one machine before their MFU columns stop being comparable.
# In the committed reference runs the spread is 1.01-1.38x, except the Xeon's resnet101 tune (1.7x, Keras (JAX)'s
# matmul) and the AVX-512 EPYC's last three (1.9-2.1x: oneMKL's generic path held torch's back; bench.core.blas).
MFU_APART = 1.5


def apart_sentence(by_backend: dict[str, float]) -> list[str]:
    """A sentence when the backends' own matmul peaks differ by MFU_APART or more: each MFU is read against its
    own framework's matmul, so MFU no longer compares the backends; img/s still does."""
    if len(by_backend) < 2:
        return []
    slow, fast = min(by_backend, key=by_backend.__getitem__), max(by_backend, key=by_backend.__getitem__)
    ratio = by_backend[fast] / by_backend[slow]
    if ratio < MFU_APART:
        return []
    return [
        f"The backends' own matmuls differ {ratio:.1f}x on this machine ({label(slow)} slowest, {label(fast)} "
        "fastest), and each row's MFU is read against its own framework's: compare MFU within a backend, and "
        "the backends by img/s."
    ]


def environment_line(env: dict[str, Any]) -> str:
    """summary.md's machine line; a part environment.json does not hold is said to be missing, not printed as
    Python's None (QA, 2026-12-08: "Machine: None (None cores, None GiB), GPU: none; Python None; commit None")."""
    if not env.get("cpu"):
        return f"Machine: {machine_words(env)}."
    gpu = ", ".join(env.get("gpus") or []) or "none"
    python, commit = env.get("python") or "not recorded", env.get("git_commit") or "not recorded"
    return f"Machine: {machine_words(env)}, GPU: {gpu}; Python {python}; commit {commit}."


def commits_line(df: pd.DataFrame, env: dict[str, Any]) -> list[str]:
    """Where the run's rows ran at more than one commit (a resume on other code), each commit's rows: the head
    named the commit the run started at alone, and nothing said a resumed half ran other code (QA, 2026-12-08)."""
    if not {"git_commit", "task", "backend"} <= set(df.columns):
        return []
    rows: dict[str, list[str]] = {}
    for commit, task, backend in zip(df["git_commit"], df["task"], df["backend"], strict=True):
        if isinstance(commit, str) and commit:
            names = rows.setdefault(commit, [])
            if (name := f"{task} / {label(str(backend))}") not in names:
                names.append(name)
    if len(rows) < 2:
        return []
    parts = "; ".join(f"{commit}: {', '.join(names)}" for commit, names in rows.items())
    started = env.get("git_commit") or "not recorded"
    return [
        f"Warning: the rows ran at {len(rows)} commits (resumed on other code; the run started at {started}): "
        f"{parts}. Read their differences with that in mind."
    ]


def summary_markdown(
    df: pd.DataFrame,
    env: dict,
    notice: str = "",
    reference: str = DEFAULT_REFERENCE,
    wall_s: float | None = None,
    curves: Collection[str] | None = None,
    verdicts: Mapping[str, list[str]] | None = None,
    run_name: str = "",
    overview: bool = True,
    note: str = "",
) -> str:
    """summary.md's head and one part per task (table, which backend trains faster, warnings, failures, curves,
    each section's lines, notes). ``curves``: the tasks whose training curves were drawn (None: every task's);
    ``verdicts``: each task's sentences on which backend trains faster (``bench.report.speedup``); ``run_name``:
    the run folder's name, the title (as index.html's), else environment.json's run_id; ``overview``: whether the
    overview plot was drawn (a run with no ok single-process row has none to link); ``note``: a line under the
    notice (``unplotted_line``)."""
    lines = [f"# bench run {run_name or env.get('run_id', '')}", ""] + ([notice, ""] if notice else [])
    lines += [note, ""] if note else []
    lines += [
        environment_line(env),
        *commits_line(df, env),
        "Packages: " + (", ".join(f"{k} {v}" for k, v in (env.get("packages") or {}).items()) or "not recorded") + ".",
        *kernel_lines(env),
        *speed_lines(df, wall_s),
        "",
    ]
    # how to read the side-by-side tables: said where there is one (a run of data-parallel rows alone has none, and
    # had this note, "No ratio columns: ... numpy's rows alone", over its scaling tables; QA, 2026-12-06)
    if (df.status == "ok").any():
        lines += [table_note(reference, df.backend), ""]
    lines += [f"![throughput and accuracy]({plot_name('overview')})", ""] if overview else []
    for task in df.task.unique():
        sub = df[df.task == task]
        head = task_head(sub)
        lines += [
            f"## {task}",
            "",
            head.markdown(),
            "",
            *([f"**Warning**: {head.mixed_data}.", ""] if head.mixed_data else []),
        ]
        sbs = side_by_side(df, task, formatted=True, reference=reference)
        if len(sbs):
            lines += [markdown_table(sbs), ""]
        if (verdicts or {}).get(task):
            lines += [*(f"- **{WHAT}**: {v}" for v in (verdicts or {})[task]), ""]
        lines += task_warnings(sub)
        for _, r in sub[sub.status != "ok"].iterrows():
            lines += [f"- {r['backend']} repeat {r['repeat']}: **{r['status']}**: {r['error']}"]
        for _, r in phase_failed(sub).iterrows():
            lines += [
                f"- {r['backend']} repeat {r['repeat']}: **a phase failed** (the row's training and test figures "
                f"stand, the phase's columns are empty): {r['phase_errors']}"
            ]
        lines += [""]
        if curves is None or task in curves:
            lines += [f"![training curves]({plot_name('curves', task)})", ""]
        lines += task_lines(sub)
        notes = attributed_notes(sub)
        if len(notes):
            lines += ["Notes:", *[f"- {n}" for n in notes], ""]
    return "\n".join(lines) + "\n"


def task_warnings(sub: pd.DataFrame) -> list[str]:
    """The lines under a task's table that say where its comparison may not hold (a row some of whose repeats
    failed, an input-bound row, rows on different devices, a shared node, unlike repeats): summary.md's and
    index.html's alike."""
    rows = sub.to_dict("records")
    flaky = [
        f"- **failed repeats**: {name}: {words}; its figures are those of its ok repeats (each failed one is listed "
        "below)"
        for name, words in failed_repeats_of_task(rows).items()
    ]
    ok = [r for r in rows if r.get("status") == "ok"]  # the rows compared (a timeout keeps what it measured: not one)
    return flaky + input_bound_warnings(ok) + placement_warnings(rows)


def table_note(reference: str, names: Iterable[str]) -> str:
    """The paragraph above the side-by-side tables: what the ratio columns, the headline and its interval mean."""
    return (
        ratio_note(reference, names) + " Steady epoch figures exclude the first epoch."
        " The headline throughput is timed inside the training call(s), over every "
        "step after the first step and the warm-up steps, but the first of the epoch's smaller last batch (a "
        "compile for XLA and torch.compile; docs/timing.md): the timed images over the window's "
        "time (as timm, the Keras benchmarks and MLPerf quote) ± the half-width of its 95% bootstrap interval "
        "over steps (over synchronised stretches, Student's t, where steps are dispatched asynchronously), or "
        "the interval's ends [lo, hi] where its sides differ by more than 20% (and 1% of the value) or it is "
        "wider than the value; with repeats, the table shows their median, and its interval is Student's t over "
        "the processes' rates (the spread between fresh processes, which no single window shows); the median "
        "step's throughput is its own row; with repeats, the between-run spread too. "
        "Under each table, each backend's headline against the reference's, with the 95% interval of the ratio "
        "(blocks of consecutive steps with one process a side, Student's t over the steps' log rates where a "
        f"side has fewer than {FEW_STEPS}; with repeats, Student's t over the processes; each sentence names its "
        "method) and whether it holds 1. "
        "Step / epoch throughput compares it with the epochs, which also pay what an epoch does outside "
        "its steps (per-epoch call overhead). The first-step overhead is the first step's excess "
        "over a steady step (tracing, compilation, warm-up)."
    )


def unplotted_line(run_dir: Path) -> str:
    """The line a report written without its figures and page opens with (``summary.write_reports``, ``full=False``)."""
    return (
        "This report was written without its figures (training curves, confusion matrices and the rest) and its "
        "index.html, as the run was started: a tune writes none for its rungs, out of its budget. "
        f"`python -m bench report {run_dir}` writes them."
    )


def incomplete_notice(run_dir: Path, df: pd.DataFrame) -> str:
    """The line summary.md opens with when state.json says the run did not finish (and why, when it knows), when
    rows of it were lost with their worker, node or job (their --resume line), or when it says the run is complete
    and records.jsonl holds fewer rows than it recorded (the file cut or edited since)."""
    state = read_json_or_warn(run_dir / "state.json")
    planned = state.get("planned")
    if not isinstance(planned, int) or isinstance(planned, bool) or planned < 1:
        if state:
            warn(f"{run_dir / 'state.json'}: no planned number of runs; the run's completeness is not checked")
        return ""
    rows = df.to_dict("records")
    lost = lost_line(rows, run_dir, state.get("command"))
    if state.get("state") == "complete" and len(df) >= planned:
        return f"**This run is incomplete:** {lost}." if lost else ""
    if state.get("state") == "complete":  # it read "This run is incomplete (complete)" (QA, 2026-12-07)
        return (
            f"**{RECORDS} holds {len(df)} of the {planned} rows this complete run recorded: the file was cut or "
            f"edited.** This report is written from the {len(df)} it holds." + (f" {lost}." if lost else "")
        )
    done = sum(kept_on_resume(r) for r in rows)
    why = f" ({state['error']})" if isinstance(state.get("error"), str) else ""
    return (
        f"**This run is incomplete ({state.get('state')}{why}): {done} of {planned} runs recorded.** "
        f"Finish it with `{resume_command(run_dir, state.get('command'))}`."
    )
