"""``bench all --budget DURATION``: size the tasks' epochs to fit the budget, say the plan, then what it achieved.

Before the run: calibrate this machine (bench.measure.budget.calibrate, numpy only: the parent
imports no framework), read each row's measured cost from the newest earlier run that recorded
one (a run folder with ``budget.json``, under ``--out`` or the committed results/reference/),
plan the epochs (bench.measure.budget.plan) and print it -- with the budget a too-small one
would need, before anything runs. After: the planned and the achieved wall time, each row's 95%
half-width and step / epoch ratio, and ``budget.json`` in the run folder (the calibration and
the run's time outside its rows), which makes this run a cost source for the next.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.core.cpus import usable_cores
from bench.core.results import RunFileError, json_default, latest_records, read_json_or_warn, read_records
from bench.core.runfiles import write_atomic
from bench.core.spec import TaskSpec
from bench.measure import budget
from bench.run import environment

BUDGET_FILE = "budget.json"
DEFAULT_BUDGET = "5m"


def _duration(value: str) -> float:
    try:
        return budget.parse_duration(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_budget_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--budget",
        type=_duration,
        default=budget.parse_duration(DEFAULT_BUDGET),
        metavar="DURATION",
        help="wall-clock budget for the whole run (5m, 300s, 90): the quick profile's epochs are sized "
        "from this machine's calibrated speed and each row's measured cost to fit it (default: 5m)",
    )


def machine() -> dict[str, Any]:
    """What a calibration's noise band is judged on: the CPU model and the cores this process may use."""
    return {"cpu": environment.cpu_model(), "usable_cores": usable_cores()}


def measured_costs(
    parents: list[Path], speed: float | None = None
) -> tuple[dict[tuple[str, str], budget.RowCost], tuple[float, float]]:
    """Each (task, backend)'s cost from the newest run folder (by name: run ids start with the time) under
    ``parents`` that has a ``budget.json`` with a calibration and an ok record of the row; and the newest
    such run's time outside its rows with its calibration ((0, 1) when there is none).

    With this machine's ``speed``: a run measured on this machine (its ``budget.json`` says so) whose
    calibration is within the calibration's noise of ``speed`` counts as measured at ``speed``
    (bench.measure.budget.speed_of_costs)."""
    here = machine() if speed is not None else None
    runs = sorted(
        {d for p in parents if p.is_dir() for d in p.iterdir() if (d / BUDGET_FILE).is_file()}, key=lambda d: d.name
    )
    costs: dict[tuple[str, str], budget.RowCost] = {}
    outside = (0.0, 1.0)
    for run in runs:
        info = read_json_or_warn(run / BUDGET_FILE)
        flops, extra = info.get("calibration_flops"), info.get("outside_rows_s")
        if not isinstance(flops, int | float) or isinstance(flops, bool) or not flops > 0:
            continue
        if speed is not None:
            flops = budget.speed_of_costs(float(flops), speed, info.get("machine") == here)
        if isinstance(extra, int | float) and not isinstance(extra, bool) and 0 <= extra < 3600:
            outside = (float(extra), float(flops))
        try:
            records = latest_records(read_records(run))
        except RunFileError:
            continue
        for rec in records:
            if rec.get("workers") is None and (cost := budget.RowCost.from_record(rec, float(flops))):
                costs[cost.task, cost.backend] = cost
    return costs, outside


def _seconds(s: float) -> str:
    return f"{int(s // 60)}m{s % 60:04.1f}s" if s >= 60 else f"{s:.1f}s"


def fit(
    tasks: list[TaskSpec], backends: tuple[str, ...], budget_s: float, out: Path, echo: Callable[[str], None] = print
) -> tuple[list[TaskSpec], dict[str, Any]]:
    """The tasks resized to fit ``budget_s``, and what ``report`` needs afterwards; the plan is printed."""
    started = time.perf_counter()
    parents = [out, environment.REPO / "results" / "reference"]
    first = budget.calibrate()
    raw, _ = measured_costs(parents)  # at the calibrations they were measured at
    measured_at = statistics.median(c.flops for c in raw.values()) if raw else None
    speed, readings = budget.confirmed(first, measured_at)
    costs, (outside_s, outside_flops) = measured_costs(parents, speed)
    sizes = [
        budget.TaskSize(
            t.name,
            t.train.epochs,
            t.train.batch_size,
            t.runtime.warmup_steps,
            t.runtime.timed_steps,
            t.dataset.max_train or None,
        )
        for t in tasks
    ]
    p = budget.plan(sizes, backends, costs, budget_s, speed, outside_s * outside_flops / speed)
    by_name = {tp.name: tp for tp in p.tasks}
    resized = []
    for t in tasks:
        tp = by_name.get(t.name)
        if tp is not None:
            t = dataclasses.replace(t, train=dataclasses.replace(t.train, epochs=tp.epochs))
            if tp.n_images > tp.profile_images:
                t = dataclasses.replace(t, dataset=dataclasses.replace(t.dataset, max_train=tp.n_images))
        resized.append(t)
    planned = f"planned {_seconds(p.planned_s)}" + (" for the rows with a measured cost" if p.unknown else "")
    again = (
        f"; a first reading of {first / 1e9:.0f} lay outside that noise, so it was read {len(readings) - 1} more "
        f"times: {', '.join(f'{r / 1e9:.0f}' for r in readings[1:])}, the fastest counts"
        if len(readings) > 1
        else ""
    )
    echo(
        f"budget {_seconds(budget_s)}: this machine's float32 matmul {speed / 1e9:.0f} GFLOP/s (numpy, "
        f"{CALIBRATION_NOTE}{again}); {planned if p.tasks else 'no plan: no row has a measured cost yet'}"
    )
    for tp in p.tasks:
        size = f"{tp.epochs} epochs (profile {tp.profile_epochs})"
        if tp.n_images > tp.profile_images:
            size += f", {tp.n_images:,} images per epoch (profile {tp.profile_images:,})"
        rows = ", ".join(f"{b} ~{_seconds(s)} (window ~{tp.windows[b]:.1f}s)" for b, s in tp.rows.items())
        echo(f"  {tp.name}: {size}: {rows}")
    if p.unknown:
        echo(f"  no measured cost yet for {', '.join(p.unknown)}: as the profile says (this run records it)")
    if not p.fits:
        echo(
            f"warning: budget {_seconds(budget_s)} is too small: the rows' irreducible part (imports, first "
            f"steps, evaluation, phases, the fewest epochs) needs ~{_seconds(p.floor_s)}; run with --budget "
            f"{int(p.floor_s / budget.MARGIN) + 1}s to fit; going on at the fewest epochs"
        )
    return resized, {"started": started, "speed": speed, "readings": readings, "plan": p, "budget_s": budget_s}


CALIBRATION_NOTE = (
    "its ratio to the calibration the costs were measured at scales them, unless within the calibration's "
    f"{budget.CALIBRATION_NOISE:g}x noise on the machine they were measured on"
)


def report(run_dir: Path, fitted: dict[str, Any], echo: Callable[[str], None] = print) -> None:
    """The planned and achieved wall time and each row's half-width; ``budget.json`` for the next run's plan."""
    achieved = time.perf_counter() - fitted["started"]
    p: budget.Plan = fitted["plan"]
    records = latest_records(read_records(run_dir))
    planned = f"planned {_seconds(p.planned_s)}" if p.tasks else "no plan (no measured costs)"
    echo(f"budget {_seconds(fitted['budget_s'])}: {planned}, achieved {_seconds(achieved)}")
    for r in records:
        hw, ratio = r.get("steady_img_s_hw_pct"), r.get("steady_epoch_ratio")
        if r.get("status") == "ok":
            echo(
                f"  {r['task']} / {r['backend']}: {r.get('epochs')} epochs, 95% half-width "
                f"{'-' if hw is None else f'{hw:.1f}%'}, step / epoch {'-' if ratio is None else f'{ratio:.3f}'}"
            )
    rows_s = sum(r.get("wall_s") or 0.0 for r in records)
    imports = {r["backend"]: r.get("import_s") or 0.0 for r in records}
    data = {
        "calibration_flops": fitted["speed"],
        "machine": machine(),
        "calibration": f"numpy float32 {budget.CALIBRATION_N}x{budget.CALIBRATION_N} matmul, best over "
        f"{budget.CALIBRATION_S}s",
        "calibration_readings": fitted.get("readings", [fitted["speed"]]),
        "budget_s": fitted["budget_s"],
        "planned_s": p.planned_s,
        "achieved_s": achieved,
        "outside_rows_s": max(0.0, achieved - rows_s - sum(imports.values())),
        "tasks": [dataclasses.asdict(t) for t in p.tasks],
        "unknown": p.unknown,
    }
    try:
        write_atomic(run_dir, run_dir / BUDGET_FILE, json.dumps(data, indent=2, default=json_default).encode())
    except OSError as e:
        echo(f"error: could not write {run_dir / BUDGET_FILE} ({e})")
