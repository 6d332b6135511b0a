"""The report's special sections, registered as the phases are: each its lines under a task's table, its own
part of summary.md and its plot jobs. ``summary.write_reports`` renders every section's plots, then writes
their texts in ``SECTIONS`` order, into summary.md and (the same text as HTML) into index.html; adding a section is
one entry here, not an edit of the summary or the page.

A section reads the run through ``ReportView`` (tables, records, the run folder, the plan, and which plot
files this report drew), never by importing a phase: the report sits downstream of the phases.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.core.runpaths import plot_file
from bench.report import accuracy, scaling, tuning
from bench.report.configuration import configuration_lines
from bench.report.confusion import confusion_markdown, confusion_plot_jobs
from bench.report.decouple_plots import decouple_plot_jobs, decouple_section
from bench.report.explain_plots import explain_links, explain_plot_jobs
from bench.report.models import sections as model_sections
from bench.report.parity import parity_lines
from bench.report.plotting import PlotJob
from bench.report.reported import reported_lines
from bench.report.transfer import plot_transfer, transfer_markdown
from bench.report.zoo import zoo_plot_jobs, zoo_section


@dataclass(frozen=True)
class ReportView:
    """What a section reads: the run's tables and records (single-process rows, and every row), its folder."""

    table: pd.DataFrame  # single-process rows (bench.core.results.table)
    records: list[dict[str, Any]]  # the same rows' records
    run_dir: Path
    every: pd.DataFrame  # every row, data-parallel ones too
    reference: str  # the backend ratios divide by
    plan: dict[str, Any]  # plan.json ({} when unreadable)
    drawn: frozenset[Path] = frozenset()  # the plot files this report drew (set before the texts are written)
    every_records: list[dict[str, Any]] = field(default_factory=list)  # every row's records (as ``every``)


def _no_lines(rows: pd.DataFrame) -> list[str]:
    return []


def _no_text(view: ReportView) -> str:
    return ""


def _no_plots(view: ReportView) -> list[PlotJob]:
    return []


@dataclass(frozen=True)
class Section:
    name: str
    task_lines: Callable[[pd.DataFrame], list[str]] = field(default=_no_lines)  # under one task's table
    text: Callable[[ReportView], str] = field(default=_no_text)  # its own part of summary.md ("" when none)
    plot_jobs: Callable[[ReportView], list[PlotJob]] = field(default=_no_plots)


def _confusion_text(view: ReportView) -> str:
    lines = confusion_markdown(view.every_records, view.run_dir, view.drawn)  # data-parallel rows too
    return "\n".join(lines) + "\n" if lines else ""


def _transfer_text(view: ReportView) -> str:
    lines = transfer_markdown(view.records)
    return "\n".join(lines) + "\n" if lines else ""


SECTIONS: tuple[Section, ...] = (
    Section("configuration", task_lines=configuration_lines),
    Section("reported", task_lines=reported_lines),
    Section("models", text=lambda v: model_sections(v.table, v.records, v.reference)),
    # before the confusion matrices: a scaling run's page opened on a 10x10 matrix per row, its scaling table
    # below them (QA, 2026-12-06)
    Section(
        "scaling",
        text=lambda v: scaling.section(v.every, v.run_dir, v.drawn),
        plot_jobs=lambda v: scaling.plot_jobs(v.every, v.run_dir),
    ),
    Section(
        "confusion",
        text=_confusion_text,
        plot_jobs=lambda v: confusion_plot_jobs(v.every_records, v.run_dir),
    ),
    Section(
        "transfer",
        text=_transfer_text,
        plot_jobs=lambda v: [(plot_transfer, (v.records, plot_file(v.run_dir, "transfer")))],
    ),
    Section("explain", task_lines=explain_links, plot_jobs=lambda v: explain_plot_jobs(v.table, v.run_dir)),
    Section("parity", task_lines=parity_lines),
    Section(
        "decouple",
        text=lambda v: decouple_section(v.run_dir, v.records, v.drawn),
        plot_jobs=lambda v: decouple_plot_jobs(v.run_dir, v.records),
    ),
    Section(
        "zoo",
        text=lambda v: zoo_section(v.table, v.run_dir, v.reference, v.drawn),
        plot_jobs=lambda v: zoo_plot_jobs(v.table, v.run_dir, v.reference),
    ),
    Section(
        "tuning",
        text=lambda v: tuning.section(v.records, v.run_dir),
        plot_jobs=lambda v: tuning.plot_jobs(v.records, v.run_dir),
    ),
    Section("accuracy", text=lambda v: accuracy.section(v.table, v.plan)),
)


def task_lines(rows: pd.DataFrame) -> list[str]:
    """Every section's lines under one task's table (``rows``: the task's rows), in ``SECTIONS`` order: summary.md
    and index.html both show these."""
    return [line for section in SECTIONS for line in section.task_lines(rows)]


def texts(view: ReportView) -> list[str]:
    """Every section's own part of summary.md, in ``SECTIONS`` order ("" for a section with nothing to say): summary.md
    appends them, index.html shows the same text as HTML."""
    return [section.text(view) for section in SECTIONS]
