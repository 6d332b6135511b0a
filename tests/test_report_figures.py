"""A report written without its figures and page (a run's option: a tune's rungs), and `bench report` after it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from bench.core import metrics
from bench.core.results import append_record
from bench.report.summary import write_reports
from bench.run import cli, runner
from bench.run.plan import RunOptions, plan_options
from tests.test_report import rec

IMAGE = re.compile(r"!\[[^\]]*\]\(([^)]+)\)")  # a Markdown picture: its file


def rung_like_run(run: Path) -> Path:
    """Two backends' rows of a task (curves, overview, confusion matrices to draw) and a zoo row (its sweep plot)."""
    rng = np.random.default_rng(0)
    y = np.arange(40) % 3
    logits = rng.normal(size=(40, 3)) + 2.0 * np.eye(3)[y]  # mostly right, some mistakes
    c = metrics.classification(logits, y, ("a", "b", "c"))
    run.mkdir()
    for backend in ("torch", "keras"):
        append_record(run, rec(backend, 0, train_s=1.0, test_acc=0.8, steady_img_s=100.0, n_test=40, **c))
        append_record(run, rec(backend, 0, task="z", model="zoo:resnet18", steady_img_s=50.0, eval_img_s=90.0))
    (run / "environment.json").write_text(json.dumps({"run_id": run.name, "cores": 2}))
    return run


def pictures(run: Path) -> list[Path]:
    return sorted((run / "plots").glob("*.png")) if (run / "plots").is_dir() else []


def test_a_report_not_full_draws_and_links_no_figure_and_bench_report_then_writes_them_all(tmp_path: Path):
    run = rung_like_run(tmp_path / "rung")
    write_reports(run, full=False)
    assert (run / "results.csv").is_file() and pictures(run) == [] and not (run / "index.html").exists()
    summary = (run / "summary.md").read_text()
    assert IMAGE.findall(summary) == []  # nothing links a picture that is not there, the zoo sweep's neither
    assert "## Test-set confusion matrices" in summary and "## Zoo sweep" in summary  # the tables stay
    (line,) = [x for x in summary.splitlines() if "without its figures" in x]
    assert f"`python -m bench report {run}` writes them" in line

    assert cli.main(["report", str(run)]) == 0
    drawn = {p.name for p in pictures(run)}
    assert {"curves-t.png", "overview.png", "confusion-t.png", "zoo.png"} <= drawn
    summary = (run / "summary.md").read_text()
    assert "without its figures" not in summary
    linked = IMAGE.findall(summary)
    assert {Path(n).name for n in linked} == drawn and all((run / n).is_file() for n in linked)
    page = (run / "index.html").read_text()
    assert {n for n in drawn if f'src="plots/{n}"' in page} == drawn


def test_the_runner_writes_the_report_its_run_options_ask_for(tmp_path: Path):
    """``RunOptions.full_report`` reaches the report (the runner's end) and survives plan.json as the run's option."""
    run = rung_like_run(tmp_path / "run")
    for full in (False, True):
        runner._finalise(run, {"state": "complete", "planned": 4}, print, RunOptions(full_report=full))
        assert bool(pictures(run)) is full and (run / "index.html").exists() is full
    stored = json.loads(json.dumps({"backends": ["torch"], "full_report": False}))
    assert plan_options(stored, tmp_path).full_report is False
    assert plan_options({"backends": ["torch"]}, tmp_path).full_report is True  # a plan from before the option
    with pytest.raises(ValueError, match=r"options\.full_report: must be true or false"):
        plan_options({"backends": ["torch"], "full_report": "no"}, tmp_path)
