"""The side-by-side summary: medians over ok repeats, keras/torch ratios, failures listed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench.core.record import new_record
from bench.core.results import append_record, read_records, table
from bench.report.plotting import render
from bench.report.summary import side_by_side, write_reports


def rec(backend: str, repeat: int, status: str = "ok", **kw) -> dict:
    base = dict(task="t", backend=backend, repeat=repeat, status=status, model="lenet5", dataset="mnist",
                model_options="{}", dataset_source="embedded:x", n_train=100, n_test=10, epochs=2, batch_size=8,
                profile="quick")  # fmt: skip
    r = new_record(**base, **kw)
    r["history"] = [{"epoch": 1, "seconds": 1.0, "train_loss": 2.0, "test_acc": 0.5}]
    return r


def test_ratios_use_medians_of_ok_repeats(tmp_path: Path):
    rows = [
        rec("torch", 0, train_s=10.0, test_acc=0.9),
        rec("torch", 1, train_s=12.0, test_acc=0.92),
        rec("torch", 2, train_s=11.0, test_acc=0.91),
        rec("keras", 0, train_s=20.0, test_acc=0.9),
        rec("keras", 1, status="failed", error="boom", train_s=1.0),
    ]
    sbs = side_by_side(table(rows), "t").set_index("metric")
    assert sbs.loc["training time (s)", "torch"] == 11.0
    assert sbs.loc["training time (s)", "keras"] == 20.0  # the failed repeat is not counted
    assert sbs.loc["training time (s)", "keras/torch"] == pytest.approx(20 / 11)
    assert list(sbs.columns) == ["torch", "keras", "keras/torch"]

    for r in rows:
        append_record(tmp_path, r)
    (tmp_path / "environment.json").write_text(json.dumps({"run_id": "x", "cores": 2}))
    df = write_reports(tmp_path)
    assert len(df) == 5 and (tmp_path / "results.csv").is_file()
    summary = (tmp_path / "summary.md").read_text()
    assert "keras repeat 1: **failed**: boom" in summary and "| training time (s)" in summary
    assert (tmp_path / "plots" / "curves-t.png").stat().st_size > 1000


def test_a_torn_last_line_is_ignored(tmp_path: Path):
    append_record(tmp_path, rec("torch", 0))
    with open(tmp_path / "records.jsonl", "a") as f:
        f.write('{"task": "t", "backe')  # the parent died mid-write
    assert len(read_records(tmp_path)) == 1


def test_report_command_rebuilds_everything_from_records_alone(tmp_path: Path, clean_env):
    from tests.conftest import run_cli

    run = tmp_path / "run"
    run.mkdir()
    for r in (rec("torch", 0, train_s=1.0, test_acc=0.9, throughput_img_s=100.0, epoch_s_min=0.9,
                  epoch_s_max=1.1),
              rec("keras", 0, train_s=2.0, test_acc=0.8, throughput_img_s=50.0, epoch_s_min=1.9,
                  epoch_s_max=2.1)):  # fmt: skip
        append_record(run, r)
    proc = run_cli(["report", str(run)], clean_env)
    assert proc.returncode == 0, proc.stderr
    for name in ("results.csv", "summary.md", "plots/curves-t.png", "plots/overview.png"):
        assert (run / name).is_file(), name
    assert "| training time (s)" in (run / "summary.md").read_text()
    assert run_cli(["report", str(tmp_path / "missing")], clean_env).returncode == 2


def _note_pid(path: Path, draw: bool) -> bool:
    """A stand-in plot job: writes which process ran it; returns whether it 'drew'."""
    path.write_text(str(os.getpid()))
    if path.name == "boom.txt":
        raise ValueError("cannot draw boom")
    return draw


def test_render_draws_in_other_processes_and_keeps_job_order(tmp_path: Path):
    jobs = [(_note_pid, (tmp_path / f"{i}.txt", i % 3 == 0)) for i in range(7)]
    assert render(jobs, processes=2) == [True, False, False, True, False, False, True]
    pids = {(tmp_path / f"{i}.txt").read_text() for i in range(7)}
    assert str(os.getpid()) not in pids and 1 <= len(pids) <= 2
    assert render(jobs[:2], processes=1) == [True, False]  # one process: drawn here
    assert (tmp_path / "1.txt").read_text() == str(os.getpid())
    with pytest.raises(ValueError, match="cannot draw boom"):  # a failing figure is not swallowed
        render([*jobs[:2], (_note_pid, (tmp_path / "boom.txt", True))], processes=2)
