"""Small run folders for the history and page tests: real records.jsonl and environment.json, written as a run
writes them (``append_record``), with figures a test chooses; nothing is trained."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.core.record import new_record
from bench.core.results import append_record

MACHINE = {"cpu": "Test CPU 9000", "cores": 2, "memory_gib": 23.5, "gpus": []}
START = datetime(2026, 11, 1, tzinfo=UTC)


def make_run(
    root: Path,
    n: int,
    rows: dict[tuple[str, str], dict[str, Any]],
    commit: str = "abc1234",
    packages: dict[str, str] | None = None,
    machine: dict[str, Any] | None = None,
    gflops: float | None = 50.0,
    started: datetime | None = None,
    diff: str | None = None,
) -> Path:
    """Run number ``n`` (its id and start a day after run n-1, unless ``started`` says when) with one ok record per
    (task, backend) in ``rows``, each holding the given fields (``steady_img_s`` gets a +-1% 95% interval unless
    the fields set one; ``status`` and ``error`` make a row that did not work: ``failed_row``)."""
    started = started or START + timedelta(days=n)
    run_id = f"{started:%Y%m%d-%H%M%S}-{n:04x}"
    run_dir = Path(root) / run_id
    run_dir.mkdir(parents=True)
    env = {
        **(machine or MACHINE),
        "python": "3.11.7",
        "git_commit": commit,
        "run_id": run_id,
        "packages": packages or {"torch": "2.14.1", "keras": "3.15.1"},
        **({"git_diff": diff} if diff else {}),
    }
    (run_dir / "environment.json").write_text(json.dumps(env))
    for (task, backend), fields in rows.items():
        steady = fields.get("steady_img_s")
        extra = {"steady_img_s_ci_lo": steady * 0.99, "steady_img_s_ci_hi": steady * 1.01} if steady else {}
        calib = {"peak_flops": gflops * 1e9, "peak_flops_source": "measured: test"} if gflops else {}
        fields = dict(fields)
        status = fields.pop("status", "ok")
        fields = {
            "model": "lenet5",
            "dataset": "digits",
            "epochs": 2,
            "batch_size": 64,
            "profile": "quick",
            **calib,
            **extra,
            **fields,
        }
        record = new_record(
            run_id=run_id,
            task=task,
            backend=backend,
            repeat=0,
            status=status,
            git_commit=commit,
            started_at=f"{started:%Y-%m-%dT%H:%M:%S+0000}",
            **fields,
        )
        append_record(run_dir, record)
    return run_dir


def failed_row(error: str = "RuntimeError: boom\n  at line 3", status: str = "failed") -> dict[str, Any]:
    """A ``make_run`` row that ran and did not work, as a runner records one: a status and an error, no figure and
    no knobs (its backend failed before configuring itself)."""
    return {"status": status, "error": error}


def add_repeat(run_dir: Path, task: str, backend: str, repeat: int, **fields: Any) -> None:
    """Another repeat of a ``make_run`` row: its repeat 0's record with ``fields`` over it (``failed_row()``: one that
    did not work, its figures gone)."""
    lines = (Path(run_dir) / "records.jsonl").read_text().splitlines()
    first = next(r for r in map(json.loads, lines) if (r["task"], r["backend"], r["repeat"]) == (task, backend, 0))
    if fields.get("status", "ok") != "ok":  # a repeat that did not work measured nothing
        first = {k: v for k, v in first.items() if k in ("run_id", "task", "backend", "git_commit", "started_at")}
        first = new_record(**first)
    append_record(run_dir, {**first, "repeat": repeat, **fields})
