"""From records.jsonl to results.csv, summary.md, plots/ and index.html: the report's orchestration.

What it writes comes from ``tables`` (the side-by-side tables), ``text`` (summary.md's head and each
task's part), ``figures`` (curves, overview) and the special sections registered in
``bench.report.sections.SECTIONS`` (models, phases, zoo, scaling, tuning, accuracy across seeds),
each its own text and plot jobs; ``page`` writes index.html from the same tables and the same section texts.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pandas as pd

from bench.core.metric_table import TABLE
from bench.core.results import latest_records, read_json_or_warn, read_records, run_wall_s, table
from bench.core.runfiles import write_atomic
from bench.core.runpaths import plot_file
from bench.report.backends import planned_reference, reference_of
from bench.report.figures import plot_bars, plot_curves
from bench.report.page import write_page
from bench.report.plotting import PlotJob, render
from bench.report.sections import SECTIONS, ReportView, texts
from bench.report.speedup import headline_ratios
from bench.report.tables import side_by_side
from bench.report.text import incomplete_notice, speed_lines, summary_markdown, unplotted_line


def write_reports(run_dir: Path, reference: str | None = None, full: bool = True) -> pd.DataFrame:
    """results.csv, summary.md, index.html and plots/ from records.jsonl alone; ratios against ``reference`` (None:
    the one plan.json says the run was started with, else as ``reference_of`` chooses from the run's rows).
    ``full``: the plots and index.html too; without them (a run started so: a tune's rungs, where a 13-configuration
    rung of mnist-lenet5 drew 21-23 figures, and the page was more than half of what was left) summary.md links no
    picture and says that `bench report` writes them."""
    plan = read_json_or_warn(run_dir / "plan.json")
    every = in_plan_order(latest_records(read_records(run_dir)), plan)
    df_every = table(every)
    reference = reference_of(df_every.backend, reference or planned_reference(plan))
    write_atomic(run_dir, run_dir / "results.csv", df_every.to_csv(index=False).encode())
    records = [r for r in every if r.get("workers") is None]  # data-parallel rows: their own section
    df = table(records)
    env = read_json_or_warn(run_dir / "environment.json")
    # every row of the task: a data-parallel row's curves too, marked by its workers; a task of data-parallel rows
    # alone has its curves too (its scaling section links them)
    jobs: list[PlotJob] = [
        (plot_curves, ([r for r in every if r["task"] == task], task, plot_file(run_dir, "curves", task)))
        for task in df_every.task.unique()
    ]
    jobs.append((plot_bars, (df, plot_file(run_dir, "overview"))))
    view = ReportView(df, records, run_dir, df_every, reference, plan, every_records=every)
    jobs += [job for section in SECTIONS for job in section.plot_jobs(view)]
    # every plot job's last argument is the file it draws; a section links only the ones drawn
    drawn = (
        frozenset(args[-1] for (_, args), ok in zip(jobs, render(jobs), strict=True) if ok and args)
        if full
        else frozenset()
    )
    view = dataclasses.replace(view, drawn=drawn)
    notice = incomplete_notice(run_dir, df_every)
    wall_s = run_wall_s(run_dir / "state.json")
    curves = {t for t in df.task.unique() if plot_file(run_dir, "curves", t) in drawn}
    ratios = headline_ratios(records, reference)
    verdicts = {task: [r.sentence for r in found] for task, found in ratios.items()}
    overview = plot_file(run_dir, "overview") in drawn
    note = "" if full else unplotted_line(run_dir)
    text = summary_markdown(df, env, notice, reference, wall_s, curves, verdicts, run_dir.name, overview, note)
    sections = texts(view)
    text += "".join(sections)
    write_atomic(run_dir, run_dir / "summary.md", text.encode())
    if full:
        tasks = df.task.unique()
        tables = {t: (side_by_side(df, t, reference=reference), side_by_side(df, t, True, reference)) for t in tasks}
        columns = {m.words: m.column for m in TABLE}
        speed = speed_lines(df, None)
        write_page(run_dir, df, env, tables, columns, notice, speed, reference, wall_s, ratios, sections)
    return df


def in_plan_order(records: list[dict[str, Any]], plan: dict[str, Any]) -> list[dict[str, Any]]:
    """``records`` in the order plan.json lists their tasks and backends, repeats ascending: a row rerun
    by ``--resume`` is reported where it was planned, not last. Rows the plan does not name keep their
    order, after the rest; a plan that names nothing leaves the order as written."""
    tasks = plan.get("tasks")
    if not isinstance(tasks, list):
        tasks = []
    names = [t["name"] for t in tasks if isinstance(t, dict) and isinstance(t.get("name"), str)]
    options = plan.get("options")
    if not isinstance(options, dict):
        options = {}
    backends = [b for b in options.get("backends") or [] if isinstance(b, str)]
    if not names:
        return records
    task_at = {name: i for i, name in reversed(list(enumerate(names)))}
    backend_at = {b: i for i, b in reversed(list(enumerate(backends)))}

    def place(r: dict[str, Any]) -> tuple[int, int, int]:
        return task_at.get(r["task"], len(names)), backend_at.get(r["backend"], len(backends)), r["repeat"]

    return sorted(records, key=place)  # stable: data-parallel rows of one key stay as written
