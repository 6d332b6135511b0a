"""`bench tune --budget` binds: the fresh default and best rows sized to what the race leaves (QA, 2026-12-06: a
4-minute tune took 10 min 25 s, its fresh rows at the full recipe whatever was left)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import NamedTuple

import pytest

from bench.core.spec import load_task
from bench.measure import budget
from bench.measure.budget import TaskSize
from bench.measure.tune_plan import FreshInputs, plan_fresh
from bench.run import budget_cli
from bench.run.tune import config_spec
from bench.run.tune_budget import RACE_SHARE, FreshResize, TuneBudget, race_costs
from datasets import registry
from tests.test_budget import SPEED, TINY, at_fixed_speed, cost, rec, write_run

SIZE = TaskSize("t", epochs=12, batch_size=32, warmup_steps=2, timed_steps=20, max_train=None)
# 1 s an epoch of 256 images, 2 s besides (fixed and first step): 14 s a row at the recipe's 12 epochs
ROW = cost("t", "numpy", flops=SPEED, fixed=1.0, first=1.0, img_s=256.0, n=256)


def fresh(available: float, sizes=(SIZE,), costs=None, processes: int = 1):
    costs = {("t", "numpy", "default"): ROW} if costs is None else costs
    return plan_fresh(FreshInputs(list(sizes), ["numpy"], costs, processes, available, SPEED))


def test_the_fresh_rows_keep_the_recipe_where_it_fits_and_are_sized_down_to_fit_where_not():
    fewest = budget.fewest_epochs(SIZE, [ROW], 256)
    assert 2 <= fewest < 12  # 8 batches an epoch: a few epochs hold the window's 20 timed steps
    roomy = fresh(100.0)
    assert roomy.epochs == {"t": 12} and roomy.planned_s == pytest.approx(2 * 14.0)  # default and best
    tight = fresh(20.0)
    assert fewest <= tight.epochs["t"] < 12 and tight.planned_s <= 20.0
    assert tight.epochs["t"] == (20 - 2 * 2) // 2  # the most epochs two rows of 2 s + 1 s an epoch fit in 20 s
    assert fresh(60.0, processes=3).epochs["t"] < 12  # three processes of each row: 84 s at the recipe
    assert tight.floor_s["t"] == pytest.approx(2 * (2 + fewest)) and not tight.left_out


def test_a_faster_best_measured_by_the_race_leaves_room_for_more_epochs():
    race_best = cost("t", "numpy", flops=SPEED, fixed=1.0, first=1.0, img_s=1024.0, n=256)
    both = {("t", "numpy", "default"): ROW, ("t", "numpy", "best"): race_best}
    assert fresh(20.0, costs=both).epochs["t"] > fresh(20.0).epochs["t"]


def test_tasks_whose_floors_do_not_fit_are_left_out_the_costliest_first_and_one_without_a_cost_is_named():
    huge = TaskSize("huge", epochs=2, batch_size=32, warmup_steps=0, timed_steps=1, max_train=None)
    costs = {
        ("t", "numpy", "default"): ROW,
        ("huge", "numpy", "default"): cost("huge", "numpy", flops=SPEED, fixed=500.0, first=1.0, n=256),
    }
    other = TaskSize("mine", epochs=3, batch_size=32, warmup_steps=0, timed_steps=1, max_train=None)
    p = fresh(40.0, sizes=(SIZE, huge, other), costs=costs)
    assert list(p.left_out) == ["huge"] and p.left_out["huge"] > 1000 and set(p.epochs) == {"t"}
    assert p.whole_floor_s == pytest.approx(p.floor_s["t"] + p.floor_s["huge"]) and p.unknown == ["mine/numpy"]
    assert fresh(1.0).left_out and not fresh(1.0).epochs


def tiny_task(tmp_path: Path, epochs: int = 12):
    path = tmp_path / "t.toml"
    path.write_text(TINY.format(name="t").replace("epochs = 2", f"epochs = {epochs}"))
    return load_task(str(path), "quick", registry.DATASETS)


def test_the_race_rows_are_the_costs_and_default_and_best_train_the_same_epochs_or_are_left_out_together(tmp_path):
    """After the race, each fresh task is sized from the race's own rows (the winner's as the best's cost) and the
    time left, before its default row; its best row runs the same epochs (the accuracy floor compares them)."""
    rung = tmp_path / "trials" / "t.numpy.r0"
    rung.mkdir(parents=True)
    rows = [
        {**rec(f"t.{tag}", "numpy", img), "config": tag, "n_train": 256} for tag, img in (("t00", 256), ("t01", 1e3))
    ]
    (rung / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    trials = [{"tag": "t00", "label": "default", "status": "ok"}, {"tag": "t01", "label": "x=on", "status": "ok"}]
    pair = {
        "task": "t",
        "backend": "numpy",
        "winner": {"label": "x=on"},
        "rungs": [{"folder": str(rung), "trials": trials}],
    }
    race = race_costs(tmp_path, [pair], budget.Speed(SPEED, SPEED))
    assert race["t", "numpy", "default"].img_s == 256 and race["t", "numpy", "best"].img_s == 1e3
    task = tiny_task(tmp_path)
    specs = [config_spec(task, {}, c) for c in ("default", "best")]
    empty = fresh(0.0, costs={})
    tb = TuneBudget(
        100.0, budget.Speed(SPEED, SPEED), [budget_cli.task_size(task)], ("numpy",), 1, {}, empty, empty, 0.0
    )
    lines: list[str] = []
    sized = FreshResize(tb, time.perf_counter() - 20.0, race, lines.append)  # 80 s of 100 left
    default = sized(specs[0], [])
    assert isinstance(default, type(task)) and 2 <= default.train.epochs <= 12
    assert sized(specs[1], []).train.epochs == default.train.epochs and "default and best at" in lines[0]
    late = FreshResize(tb, time.perf_counter() - 99.0, race, lines.append)  # 1 s left: not even the floors
    why = late(specs[0], [])
    assert isinstance(why, str) and why.startswith("left out to fit the budget") and late(specs[1], []) == why
    needs = int(re.search(r"--budget (\d+)s", why).group(1))
    assert needs > 100


def test_a_task_left_out_at_its_turn_names_a_budget_whose_tune_would_hold_it(tmp_path):
    """ "--budget Ns to include it" named the time spent (the race included) plus the tasks still to run: a tune at N s
    races for longer (RACE_SHARE of its budget), so its fresh rows got no more and the task was left out again. The
    budget named now, planned as ``plan_tune`` plans it, leaves the fresh rows every task's floor at the costs now
    and what the race took beyond its plan."""
    tasks = {}
    for name in ("t", "u"):
        path = tmp_path / f"{name}.toml"
        path.write_text(TINY.format(name=name).replace("epochs = 2", "epochs = 12"))
        tasks[name] = load_task(str(path), "quick", registry.DATASETS)
    sizes = [budget_cli.task_size(t) for t in tasks.values()]
    costs = {(n, "numpy", "default"): cost(n, "numpy", SPEED, 1.0, 1.0, 256.0, n=256) for n in tasks}
    empty = fresh(0.0, costs={})
    tb = TuneBudget(100.0, budget.Speed(SPEED, SPEED), sizes, ("numpy",), 1, {}, empty, empty, 55.0)
    # the race planned 55 s and ran 75 (20 s over); t's rows then took 12 s: u is left out at its turn
    resize = FreshResize(tb, time.perf_counter() - 75.0, costs, lambda _: None)
    resize.decided["t"] = 2
    resize.started -= 12.0
    why = resize(config_spec(tasks["u"], {}, "default"), [])
    assert isinstance(why, str) and why.startswith("left out to fit the budget"), why
    named = int(re.search(r"--budget (\d+)s to include every task", why).group(1))
    every = fresh(0.0, sizes=sizes, costs=costs).whole_floor_s
    u_floor = fresh(0.0, sizes=sizes[1:], costs=costs).whole_floor_s
    assert named > int((75.0 + 12.0 + u_floor) / budget.MARGIN) + 1  # what it named before: too little
    # a tune at that budget, planned as plan_tune plans it, its race over by as much: every task's floors fit
    whole = fresh(budget.MARGIN * named, sizes=sizes, costs=costs)
    reserve = min(whole.planned_s, max(every, (1 - RACE_SHARE) * budget.MARGIN * named))
    race_s = min(RACE_SHARE * named, budget.MARGIN * named - reserve)
    left_for_fresh = budget.MARGIN * named - race_s - 20.0
    assert left_for_fresh >= every and not fresh(left_for_fresh, sizes=sizes, costs=costs).left_out


class SizedTune(NamedTuple):
    proc: subprocess.CompletedProcess
    out: Path
    run: Path
    env: dict[str, str]


@pytest.fixture(scope="module")
def sized(tmp_path_factory: pytest.TempPathFactory) -> SizedTune:
    """`bench tune --budget 40s` of a 12-epoch task whose rows an earlier run measured at 2 s an epoch (numpy test
    backend, real worker processes): default and best at the recipe would take ~52 s. Run once for the module's
    tests (one lane: ``SIZED``), which read it; the resume test resumes a copy. Its environment is cleaned as
    ``_no_bench_environment`` cleans a test's: a module's fixture is set up before that one."""
    from tests.conftest import SET_BY_FRAMEWORKS, run_cli

    tmp_path = tmp_path_factory.mktemp("sized")
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_") and k not in SET_BY_FRAMEWORKS}
    clean_env["BENCH_CACHE"] = str(tmp_path / "bench-cache")
    out = tmp_path / "out"
    task = tmp_path / "t.toml"
    task.write_text(TINY.format(name="t").replace("epochs = 2", "epochs = 12"))
    cost_rec = {**rec("t", "numpy", 128.0), "n_train": 256, "wall_s": 11.0, "train_s": 10.0}
    source = write_run(out, "20991231-000000-aaaa", SPEED, [cost_rec])
    info = json.loads((source / "budget.json").read_text())
    (source / "budget.json").write_text(json.dumps({**info, "machine": budget_cli.machine()}))
    env = at_fixed_speed(clean_env, tmp_path / "site")
    cmd = ["tune", str(task), "--backend", "numpy", "--budget", "40s", "--repeats", "1", "--out", str(out)]
    p = run_cli(cmd, env, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    run = next(d for d in out.iterdir() if d.is_dir() and d.name not in (source.name, "history"))
    return SizedTune(p, out, run, env)


SIZED = pytest.mark.xdist_group("sized-tune")  # the tests that read that tune: one lane, one tune


@SIZED
@pytest.mark.e2e
def test_a_tune_whose_fresh_rows_would_overrun_at_their_recipe_is_sized_down_and_ends_within_its_budget(
    sized: SizedTune,
):
    """The plan says fewer epochs than the recipe's 12, both rows train them, and the end says planned and
    achieved, within the budget (``sized``)."""
    from tests.conftest import records

    p, run = sized.proc, sized.run
    planned = re.search(r"  t: default and best at (\d+) epochs \(recipe 12\)", p.stdout)
    assert planned and int(planned.group(1)) < 12, p.stdout[:2000]
    log = json.loads((run / "tune.json").read_text())
    (sized,) = log["fresh_plans"]
    assert 2 <= sized["epochs"] < 12
    rows = records(run)
    assert {(r["config"], r["epochs"], r["status"]) for r in rows} == {
        (c, sized["epochs"], "ok") for c in ("default", "best")
    }
    end = re.search(r"tune: budget 40s, planned (\d+)s \(race \d+s\), took (\d+)s \((\d+)% of the budget\)", p.stdout)
    assert end and int(end.group(1)) <= 40 and int(end.group(2)) <= 40, p.stdout[-2000:]


@SIZED
@pytest.mark.e2e
def test_a_sized_tune_resumed_keeps_its_plan_and_budget_and_runs_only_the_row_it_is_missing(sized: SizedTune, tmp_path):
    """A sized tune stopped after its default row (its best row's record gone): `tune --resume` races nothing again,
    keeps the default row as it ran, and trains the best at the epochs the plan sized, within the budget's plan."""
    from tests.conftest import records, run_cli

    out, env = tmp_path / "out", sized.env
    shutil.copytree(sized.out, out)  # the other test reads the tune as it ended
    run = out / sized.run.name
    plan, log = (run / "plan.json").read_text(), (run / "tune.json").read_text()
    (sized,) = json.loads(log)["fresh_plans"]
    lines = (run / "records.jsonl").read_text().splitlines()
    (run / "records.jsonl").write_text("".join(f"{x}\n" for x in lines if json.loads(x)["config"] != "best"))
    default = records(run)
    trials = sorted(str(f.relative_to(run)) for f in (run / "trials").rglob("*"))
    p = run_cli(["tune", "--resume", str(run), "--out", str(out)], env, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "1 of 2 to run" in p.stdout, p.stdout[-2000:]
    after = records(run)
    assert [r for r in after if r["config"] == "default"] == default  # not run again
    assert [(r["config"], r["epochs"], r["status"]) for r in after if r["config"] == "best"] == [
        ("best", sized["epochs"], "ok")
    ]
    assert sized["epochs"] < 12  # the plan's, not the recipe's
    assert (run / "plan.json").read_text() == plan and (run / "tune.json").read_text() == log  # budget 40 s kept
    assert sorted(str(f.relative_to(run)) for f in (run / "trials").rglob("*")) == trials  # no rung raced again


def test_the_short_windows_extra_processes_keep_the_budgets_reserve():
    """A short window's extra fresh processes are sized to what is left less the reserve the fresh rows' plans keep
    (MARGIN of the budget): 20 s left of 100 is 15 s to spend, which holds no 18 s process (it held one before)."""
    from types import SimpleNamespace

    from bench.run.tune import _measure_again
    from bench.run.tune_budget import spendable_s

    tuner = SimpleNamespace(budget_s=100.0, elapsed=lambda: 80.0, log={}, save=lambda: None)
    spec = SimpleNamespace(base="t", config="default")
    assert spendable_s(100.0, 80.0) == pytest.approx(budget.MARGIN * 100.0 - 80.0)
    assert _measure_again(spec, "numpy", [{"wall_s": 18.0}], 3, {}, tuner) == 0
    assert tuner.log["remeasured"][-1]["added"] == 0
    roomy = SimpleNamespace(budget_s=100.0, elapsed=lambda: 40.0, log={}, save=lambda: None)
    assert _measure_again(spec, "numpy", [{"wall_s": 18.0}], 3, {}, roomy) == 2  # 55 s to spend: two more of 18 s


def test_a_machine_slow_in_the_race_too_is_corrected_once_the_pace_reads_only_what_the_fresh_rows_ran_off_the_race():
    """The race's costs carry the load (4x slower than the earlier run's): fresh rows that ran at the race's costs
    give a pace of 1.0, so the next task is planned at the race's costs, not at 4x them; rows 2x slower than the race
    give 2.0."""
    earlier = {("t", "numpy", "default"): ROW}
    loaded = cost("t", "numpy", flops=SPEED, fixed=1.0, first=1.0, img_s=64.0, n=256)
    race = {("t", "numpy", "default"): loaded, ("t", "numpy", "best"): loaded}
    empty = fresh(0.0, costs={})
    tb = TuneBudget(100.0, budget.Speed(SPEED, SPEED), [SIZE], ("numpy",), 1, earlier, empty, empty, 0.0)
    resize = FreshResize(tb, time.perf_counter(), race, lambda _: None)
    wall = budget.estimate_row_s(loaded, 4, 256, tb.speed)
    done = [
        {"base_task": "t", "backend": "numpy", "config": c, "status": "ok", "epochs": 4, "n_train": 256}
        for c in ("default", "best")
    ]
    assert resize.pace([{**r, "wall_s": wall} for r in done]) == pytest.approx(1.0)
    assert resize.pace([{**r, "wall_s": 2 * wall} for r in done]) == pytest.approx(2.0)


def test_the_tunes_took_counts_from_before_its_calibration_and_says_that_part(tmp_path, monkeypatch):
    """The budget starts counting before the plan's calibration (as bench all's does): the tune's "took" holds it,
    so planned against achieved is the whole command's, and tune.json says how much of it was the plan."""
    from bench.run import tune_budget
    from bench.run.tune import Tuner

    readings: list[float] = []

    def calibrate(threads: int | None = None) -> float:
        readings.append(time.perf_counter())
        return SPEED

    monkeypatch.setattr(budget, "calibrate", calibrate)
    monkeypatch.setattr(budget_cli, "measured_costs", lambda parents, speed=None: ({("t", "numpy"): ROW}, None))
    task = tiny_task(tmp_path)
    tb = tune_budget.plan_tune([task], ("numpy",), 100.0, tmp_path, 1, 0.7)
    assert readings and tb.started <= min(readings)
    tuner = Tuner(tmp_path, None, 100.0, {}, lambda _: None, (), tb.started)  # type: ignore[arg-type]
    assert tuner.started == tb.started and tuner.plan_s >= max(readings) - tb.started
    assert tuner.elapsed() >= tuner.plan_s and tuner.log["plan_s"] == round(tuner.plan_s, 1)


def test_the_plan_counts_the_frameworks_imports_the_race_pays_before_anything_else(tmp_path, monkeypatch):
    """QA, 2026-12-06: `bench tune --budget 5s` was refused naming `--budget 35s`, the default and best rows' floor
    alone; a 35 s tune then spent 17 s starting its worker servers (importing PyTorch and TensorFlow) in a race of a
    few seconds, and left those rows out (26.7 s, 17 s left): it measured nothing. The import, once a backend, is in
    the plan as `bench all`'s has it: a budget that holds the rows' floor but not the import too is refused, and
    the race's seconds hold the import."""
    from bench.run import tune_budget

    monkeypatch.setattr(budget, "calibrate", lambda threads=None: SPEED)
    imported = cost("t", "numpy", flops=SPEED, fixed=1.0, first=1.0, img_s=256.0, n=256, import_s=20.0)
    monkeypatch.setattr(budget_cli, "measured_costs", lambda parents, speed=None: ({("t", "numpy"): imported}, None))
    task = tiny_task(tmp_path)

    def plan(budget_s: float) -> TuneBudget:
        return tune_budget.plan_tune([task], ("numpy",), budget_s, tmp_path, 1, 0.7)

    floor = plan(1000.0).whole.whole_floor_s
    short = plan((floor + 10.0) / budget.MARGIN)  # holds the rows' floor, not the 20 s import before them
    assert short.whole.left_out and not short.whole.epochs  # refused (bench.run.cli.tune_plan)
    assert plan(1000.0).imports_s == pytest.approx(20.0)  # once for the backend, at the speed it was measured at
    enough = plan((floor + 25.0) / budget.MARGIN)
    assert enough.whole.epochs and enough.race_s >= enough.imports_s
    assert enough.race_s + enough.fresh.planned_s <= budget.MARGIN * enough.budget_s + 1e-6


def test_a_tune_stopped_in_its_default_row_has_its_best_row_sized_in_plan_json_too(tmp_path):
    """plan.json is what --resume runs: once the default row of a task is sized, its best row is written at the
    same epochs (it was left at the recipe's 12 until its own turn, so a tune stopped in the default row resumed
    the best at 12 against a default of fewer)."""
    from bench.run.plan import RunOptions, kept_in_plan, plan_rows

    task = tiny_task(tmp_path)
    specs = [config_spec(task, {}, c) for c in ("default", "best")]
    empty = fresh(0.0, costs={})
    tb = TuneBudget(
        100.0, budget.Speed(SPEED, SPEED), [budget_cli.task_size(task)], ("numpy",), 1, {}, empty, empty, 0.0
    )
    resize = FreshResize(tb, time.perf_counter() - 80.0, {("t", "numpy", "default"): ROW}, lambda _: None)
    opts = RunOptions(backends=("numpy",), out=tmp_path)
    resized = kept_in_plan(resize, tmp_path, specs, opts, plan_rows(specs, opts.backends, 1), {})
    default = resized(specs[0], [])
    assert isinstance(default, type(task)) and default.train.epochs < 12
    planned = json.loads((tmp_path / "plan.json").read_text())["tasks"]
    assert [(t["name"], t["train"]["epochs"]) for t in planned] == [
        ("t.default", default.train.epochs),
        ("t.best", default.train.epochs),
    ]


def test_the_fresh_rows_are_planned_at_the_epochs_of_the_plan_before_the_race_until_sized_again(tmp_path):
    """plan.json's fresh rows, before each task's turn, hold the epochs the plan before the race gave it (a tune
    stopped before a task's turn resumed it at the full recipe); a task the plan has no epochs for keeps its own."""
    task = tiny_task(tmp_path)
    planned = fresh(20.0)
    assert planned.epochs["t"] < 12
    tb = TuneBudget(100.0, budget.Speed(SPEED, SPEED), [SIZE], ("numpy",), 1, {}, planned, planned, 0.0)
    best = tb.as_planned(config_spec(task, {}, "best"))
    assert (
        best.train.epochs == planned.epochs["t"] and ("train.epochs", planned.epochs["t"], 12) in best.profile_changes
    )
    unknown = TuneBudget(
        100.0, budget.Speed(SPEED, SPEED), [SIZE], ("numpy",), 1, {}, planned, fresh(0.0, costs={}), 0.0
    )
    assert unknown.as_planned(config_spec(task, {}, "best")).train.epochs == 12


STALLING_SITECUSTOMIZE = """
import dataclasses
import backends
from bench.core.knobs import knob, value
import tests.numpy_backend
backends.BACKENDS["stalling"] = dataclasses.replace(
    tests.numpy_backend.DESCRIPTION, name="stalling", module="tests.stalling_backend", display="stalling (test)",
    knob_space=(knob("stall", value("off"), value("on", channels_last=True)),),
)
backends.BACKENDS["lossy"] = dataclasses.replace(
    backends.BACKENDS["lossy"], knob_space=(knob("freeze", value("off"), value("features", channels_last=True)),)
)
"""


@pytest.mark.e2e
def test_a_trial_that_outlasts_its_pairs_share_is_stopped_and_the_next_pair_and_the_fresh_rows_keep_theirs(
    tmp_path, clean_env
):
    """QA, 2026-12-06: a 100 s tune of a tiny task at load 5 on 2 cores ran a torch.compile trial of 59 s in
    PyTorch's race (its share 35 s), the race took 119 s of its planned 70, Keras/TF's race kept 18 s, half its
    share, and the default and best rows, 0 s left, were left out: no verdict. Here the first pair's ``stall=on``
    configuration waits 90 s before its first step in a 60 s tune: it is stopped at the end of its pair's share,
    saying so; the second pair keeps about its planned share; the default and best rows run and the verdicts are
    said."""
    from tests.conftest import only_run_dir, records, run_cli
    from tests.faults import backend_env
    from tests.stalling_backend import STALL_S

    task = tmp_path / "t.toml"
    task.write_text(TINY.format(name="t").replace("epochs = 2", "epochs = 1"))
    out = tmp_path / "out"
    env = backend_env(clean_env, tmp_path / "site")
    with (tmp_path / "site" / "sitecustomize.py").open("a") as f:
        f.write(STALLING_SITECUSTOMIZE)
    cmd = ["tune", str(task), "--backend", "stalling,lossy", "--budget", "60s", "--repeats", "1", "--out", str(out)]
    p = run_cli(cmd, env, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    run = only_run_dir(out)
    log = json.loads((run / "tune.json").read_text())
    stalling, lossy = log["pairs"]
    planned = log["race_budget_s"] / 2
    (rung,) = stalling["rungs"]
    stalled = next(t for t in rung["trials"] if t["label"] == "stall=on")
    assert stalled["status"] == "timeout", stalled
    # and where it was: the stall is in its compile, before its first step (the stage the row's record names)
    said = "s after it started, at the end of this (task, backend)'s race budget during training"
    assert stalled["error"].endswith(said), stalled["error"]
    assert "stall=on" in rung["dropped"] and stalling["winner"]["label"] == "default"
    # the next pair raced in about its whole planned share (it kept half before), whatever the first one's trial
    assert lossy["budget_s"] >= 0.75 * planned and lossy["rungs"][0]["trials"][0]["status"] == "ok", lossy
    assert log["race_s"] < STALL_S  # the race did not wait for the stalled trial
    rows = {(r["config"], r["backend"]): r["status"] for r in records(run)}
    assert rows == {(c, b): "ok" for c in ("default", "best") for b in ("stalling", "lossy")}, rows
    summary = (run / "summary.md").read_text()
    assert "- **at defaults**:" in summary and "- **each at its best**:" in summary


def test_the_tunes_end_says_the_race_alone_was_planned_where_the_command_line_set_the_rows_recipe():
    """`tune --epochs 1` (or --max-train): the default and best rows train the recipe as given, sized to no budget;
    the end said the whole default budget was planned ("budget 1800s, planned 1800s (race 1260s), took 22s (1% of
    the budget)"). It says the race alone was, and what it and the tune took; a sized tune's line is as before."""
    from bench.run.tune_budget import end_line

    given = end_line(None, 1800.0, 1260.0, (22.4, 3.2, 0.0), ["--epochs", "--max-train"])
    assert given == (
        "tune: --epochs and --max-train set the default and best rows' recipe: trained as given, not planned to a "
        "budget; planned: the race alone, 1260s (its share of the 1800s default budget), which took 3s; the tune "
        "took 22s, 0.0s of it the calibration and plan before the race"
    )
    assert "planned 1800s" not in given and "of the budget)" not in given
    plan = fresh(20.0)  # the fresh rows sized into 20 s: planned is the race and that plan
    tb = TuneBudget(100.0, budget.Speed(SPEED, SPEED), [SIZE], ("numpy",), 1, {}, plan, plan, 70.0)
    sized = end_line(tb, 100.0, 70.0, (95.0, 68.0, 1.5), None)
    assert sized == (
        f"tune: budget 100s, planned {70 + plan.planned_s:.0f}s (race 70s), took 95s (95% of the budget), 1.5s of it "
        "the calibration and plan before the race"
    )


@pytest.mark.e2e
def test_a_tune_with_epochs_ends_saying_its_rows_were_not_planned_to_a_budget(tmp_path, clean_env):
    """The command's own end line, from a real tune of the numpy test backend with --epochs 1 (one process a row)."""
    from tests.conftest import only_run_dir, run_cli

    task = tmp_path / "t.toml"
    task.write_text(TINY.format(name="t"))
    env = at_fixed_speed(clean_env, tmp_path / "site")
    cmd = ["tune", str(task), "--backend", "numpy", "--epochs", "1", "--repeats", "1", "--out", str(tmp_path / "o")]
    p = run_cli(cmd, env, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    (end,) = [line for line in p.stdout.splitlines() if line.startswith("tune: --epochs set")]
    assert re.fullmatch(
        r"tune: --epochs set the default and best rows' recipe: trained as given, not planned to a budget; planned: "
        r"the race alone, 1260s \(its share of the 1800s default budget\), which took \d+s; the tune took \d+s, "
        r"[\d.]+s of it the calibration and plan before the race",
        end,
    ), end
    assert "planned 1800s" not in p.stdout
    assert {r["epochs"] for r in map(json.loads, (only_run_dir(tmp_path / "o") / "records.jsonl").open())} == {1}


class FakeRungs:
    """Stands in for ``Tuner._run`` and the tune's clock: each trial takes ``per_epoch_s`` a training epoch on a
    clock that only the rungs move, its throughput has no interval under ``interval_from`` epochs (a window of too
    few timed steps), and ``bf16`` runs 0.9x the default (3,557 against 3,998 img/s: QA's figures)."""

    def __init__(self, interval_from: int, per_epoch_s: float = 5.0) -> None:
        self.now, self.interval_from, self.per_epoch_s = 0.0, interval_from, per_epoch_s
        self.rungs: list[int] = []

    def clock(self) -> float:
        return self.now

    def run(self, folder: Path, specs: list, opts: object, deadline: float) -> list[dict]:
        epochs = specs[0].train.epochs
        self.rungs.append(epochs)
        out = []
        for spec in specs:
            wall = self.per_epoch_s * epochs
            self.now += wall
            img_s = 3998.0 if spec.config == "t00" else 3557.0
            ci = (img_s * 0.98, img_s * 1.02) if epochs >= self.interval_from else (None, None)
            figures = {"steady_img_s": img_s, "steady_img_s_ci_lo": ci[0], "steady_img_s_ci_hi": ci[1]}
            out.append({"config": spec.config, "status": "ok", **figures, "test_acc": 0.9, "wall_s": wall})
        return out


def fake_race(monkeypatch, tmp_path: Path, fake: FakeRungs, budget_s: float, epochs: int = 8):
    """One race of a backend with a two-valued precision knob (default, bf16), its rungs ``fake``'s: (tune.json's
    pair, the seconds the race took on ``fake``'s clock)."""
    import dataclasses
    import types

    import backends
    from bench.core.knobs import knob, value
    from bench.run import tune
    from bench.run.plan import RunOptions
    from tests.numpy_backend import DESCRIPTION

    space = (knob("precision", value("fp32"), value("bf16", precision="mixed_bf16")),)
    monkeypatch.setitem(backends.BACKENDS, "numpy", dataclasses.replace(DESCRIPTION, knob_space=space))
    monkeypatch.setattr(tune, "time", types.SimpleNamespace(perf_counter=fake.clock))
    tuner = tune.Tuner(tmp_path, RunOptions(backends=("numpy",), out=tmp_path), budget_s, {}, lambda _: None)
    monkeypatch.setattr(tuner, "_run", fake.run)
    start = fake.now
    tuner.race(tiny_task(tmp_path, epochs), "numpy", budget_s, {})
    return tuner.log["pairs"][0], fake.now - start


def test_a_rung_without_intervals_drops_nothing_while_the_budget_holds_a_longer_rung(tmp_path, monkeypatch):
    """QA, 2026-12-08: `bench tune mnist-lenet5 --knobs precision --backend keras-jax` dropped bf16 in rung 0, "rank
    2 of 2 by throughput", on two point estimates without intervals (Keras on JAX times one synchronised stretch
    an epoch, and an interval needs 3), and the race ended 22 s into its 21 minutes. A configuration is not dropped
    on a rung without intervals while the budget holds a longer one: the rungs grow (1, 2, 4 epochs) until the
    throughputs have intervals, and the race stays within its share."""
    fake = FakeRungs(interval_from=4)
    pair, took = fake_race(monkeypatch, tmp_path, fake, budget_s=1000.0)
    rungs = pair["rungs"]
    assert [r["epochs"] for r in rungs] == [1, 2, 4] == fake.rungs
    for rung in rungs[:2]:  # no interval: nothing dropped, bf16 races on unranked
        assert rung["dropped"] == {} and set(rung["kept"]) == {"default", "precision=bf16"}, rung
        assert rung["unranked"] == ["default", "precision=bf16"]
    # with intervals, bf16's lies below the default's: dropped on that, not on a point estimate
    assert rungs[2]["dropped"]["precision=bf16"].startswith("3,557.0 img/s [3,485.9, 3,628.1] lies below")
    assert pair["winner"]["label"] == "default" and "tie" not in pair and "stopped" not in pair
    assert took <= 1000.0


def test_where_the_budget_holds_no_longer_rung_point_estimates_rank_and_the_race_says_the_tie(tmp_path, monkeypatch):
    """The same race in a share that holds rung 0 alone (two trials of 5 s, then a rung 1 of ~20 s in 12 s left):
    its last rung has no interval, so the point estimates rank, the drop says it rests on them, and the race says
    its leader was not shown faster (a tie: the defaults stand unless the fresh processes measure a winner faster).
    The race stays within its share."""
    from bench.report.tuning import race_lines, race_table

    fake = FakeRungs(interval_from=4)
    pair, took = fake_race(monkeypatch, tmp_path, fake, budget_s=22.0)
    (rung,) = pair["rungs"]
    assert pair["stopped"] == "rung 1 would not fit the budget" and took <= 22.0
    why = rung["dropped"]["precision=bf16"]
    assert why.startswith("halving: rank 2 of 2 by throughput") and "by point estimates" in why, why
    assert pair["tie"] == (
        "a tie at its last rung: default leads on its point estimate, not shown faster than precision=bf16 (too few "
        "timed steps for an interval)"
    )
    pair["task"] = "t"
    (line,) = race_lines({"pairs": [pair]}, "t")
    assert pair["tie"] in line
    assert "not shown slower" in "\n".join(race_table(pair))


SLOW_KNOB_SITECUSTOMIZE = """
import dataclasses
import backends
from bench.core.knobs import knob, value
import tests.numpy_backend
backends.BACKENDS["threaded"] = dataclasses.replace(
    tests.numpy_backend.DESCRIPTION, name="threaded", module="tests.threaded_backend", display="threaded (test)",
    knob_space=(knob("layout", value("off"), value("on", threads=1)),),
)
"""


@pytest.mark.e2e
def test_a_tune_whose_first_rung_times_one_step_races_on_until_its_throughputs_have_intervals(tmp_path, clean_env):
    """The QA case end to end (numpy test backend, real worker processes): epochs of 4 steps, so rung 0's one epoch
    times one step after the first and the warm-up of 2, and no interval. ``layout=on`` runs each step 10 ms slower
    (tests/threaded_backend.py: the task's 2 threads are fast, the knob's 1 slow). It was dropped in rung 0, "rank
    2 of 2 by throughput", on one step a side; now it races on to rung 1 (2 epochs, 5 timed steps), where both
    throughputs have intervals and the drop rests on them. The race stays within its share."""
    from tests.conftest import only_run_dir, run_cli
    from tests.faults import backend_env

    task = tmp_path / "t.toml"
    tiny = TINY.format(name="t").replace("max_train = 256", "max_train = 128").replace("epochs = 2", "epochs = 4")
    task.write_text(tiny + "[runtime]\nthreads = 2\n")
    env = backend_env(clean_env, tmp_path / "site")
    with (tmp_path / "site" / "sitecustomize.py").open("a") as f:
        f.write(SLOW_KNOB_SITECUSTOMIZE)
    out = tmp_path / "out"
    cmd = ["tune", str(task), "--backend", "threaded", "--budget", "90s", "--repeats", "1", "--out", str(out)]
    p = run_cli(cmd, env, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    log = json.loads((only_run_dir(out) / "tune.json").read_text())
    (pair,) = log["pairs"]
    first = pair["rungs"][0]
    assert [t["timed_steps"] for t in first["trials"]] == [1, 1], first["trials"]
    assert all(t["steady_img_s_ci_lo"] is None for t in first["trials"])
    assert first["dropped"] == {} and set(first["kept"]) == {"default", "layout=on"}, first
    second = pair["rungs"][1]
    assert second["epochs"] == 2 and all(t["steady_img_s_ci_lo"] for t in second["trials"]), second["trials"]
    why = second["dropped"]["layout=on"]
    assert "lies below the leader's interval" in why or why.endswith("overlaps the leader's: not shown slower"), why
    assert pair["winner"]["label"] == "default"
    assert log["race_s"] <= log["race_budget_s"]
