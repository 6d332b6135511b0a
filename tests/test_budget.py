"""`bench all --budget`: the duration parser, the calibration, the cost model and the plan that fits a budget."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.core.spec import builtin_tasks, load_task
from bench.measure import budget
from bench.measure.budget import RowCost, TaskSize
from bench.run import budget_cli, cli
from datasets import registry
from tests.conftest import REPO

GF = 1e9


@pytest.mark.parametrize(("text", "seconds"), [("5m", 300), ("300s", 300), ("90", 90), ("1m30s", 90), ("1.5h", 5400)])
def test_durations_parse(text, seconds):
    assert budget.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "x", "5 m", "-3", "m", "5mm"])
def test_a_bad_duration_names_itself(text):
    with pytest.raises(ValueError, match="is not a duration"):
        budget.parse_duration(text)
    with pytest.raises(ValueError, match="more than 0 seconds"):
        budget.parse_duration("0s")


def test_a_bad_budget_on_the_command_line_is_one_line_and_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["all", "--budget", "5 minutes"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--budget: '5 minutes' is not a duration" in err and len(err.strip().splitlines()) == 1


def test_calibration_is_a_matmul_rate_within_its_time():
    ticks = iter(range(1000))
    rate = budget.calibrate(seconds=3, n=64, clock=lambda: float(next(ticks)))  # each read 1 "s" later
    assert rate == pytest.approx(2 * 64**3 / 1.0)  # every product took one tick; the loop stops after 3
    assert 1e6 < budget.calibrate(seconds=0.05, n=128) < 1e14  # a real product, even on a loaded machine


def cost(
    task="t",
    backend="torch",
    flops=100 * GF,
    fixed=10.0,
    first=2.0,
    img_s=1000.0,
    call=0.0,
    n=1000,
    eval_s=0.0,
    import_s=0.0,
    data_s=0.0,
) -> RowCost:
    return RowCost(task, backend, flops, fixed, first, img_s, call, n, eval_s, import_s, data_s)


def test_a_row_costs_its_fixed_part_first_step_epochs_and_evaluations_scaled_by_speed():
    c = cost(fixed=10.0, first=2.0, img_s=1000.0, call=0.1, eval_s=0.5)
    # 3 epochs of 1000 images at 1000 img/s + 0.1 s per call, 2 evaluations between them
    assert budget.estimate_row_s(c, 3, 1000, 100 * GF) == pytest.approx(10 + 2 + 3 * 1.1 + 2 * 0.5)
    assert budget.estimate_row_s(c, 3, 1000, 50 * GF) == pytest.approx(2 * (10 + 2 + 3 * 1.1 + 2 * 0.5))


def test_record_to_cost_takes_the_training_calls_and_evaluations_out_of_the_fixed_part():
    rec = {
        "task": "t",
        "backend": "keras",
        "status": "ok",
        "wall_s": 30.0,
        "train_s": 12.0,
        "first_step_s": 3.0,
        "steady_img_s": 500.0,
        "n_train": 2000,
        "epoch_overhead_s": 0.005,
        "eval_s": 1.0,
        "import_s": 9.0,
        "history": [{"epoch": e, "test_acc": 0.5} for e in (1, 2, 3)],
    }
    c = RowCost.from_record(rec, 70 * GF)
    assert c.fixed_s == pytest.approx(30 - 12 - 2 * 1.0) and c.eval_s == 1.0 and c.call_s == 0.005
    assert c.import_s == 9.0 and c.flops == 70 * GF
    assert RowCost.from_record({**rec, "status": "failed"}, GF) is None
    assert RowCost.from_record({**rec, "steady_img_s": "fast"}, GF) is None  # a hand edit is no cost


SIZE = TaskSize("t", epochs=10, batch_size=100, warmup_steps=2, timed_steps=20, max_train=None)


def test_a_roomy_budget_keeps_the_profile():
    costs = {("t", "torch"): cost()}  # 10 epochs of 1 s: a 32 s row, windows of ~10 s
    p = budget.plan([SIZE], ["torch"], costs, 300, 100 * GF)
    assert p.tasks[0].epochs == 10 and p.fits and p.planned_s == pytest.approx(22.0)


def test_a_tight_budget_shrinks_epochs_but_not_below_the_floor_and_says_what_it_needs():
    costs = {("t", "torch"): cost(), ("t", "keras"): cost(backend="keras", first=20.0, img_s=500.0)}
    p = budget.plan([SIZE], ["torch", "keras"], costs, 60, 100 * GF)
    assert p.fits and p.planned_s <= 60 * budget.MARGIN and 2 <= p.tasks[0].epochs < 10
    # half the speed: the same plan would take twice as long, so fewer epochs
    slow = budget.plan([SIZE], ["torch", "keras"], costs, 60, 50 * GF)
    assert slow.tasks[0].epochs < p.tasks[0].epochs or not slow.fits
    # the floor: 2 epochs hold 20 - 1 - 2 = 17 steps < 20 timed steps, so 3 epochs; keras's first step alone is 20 s
    tiny = budget.plan([SIZE], ["torch", "keras"], costs, 30, 100 * GF)
    assert not tiny.fits and tiny.tasks[0].epochs == 3
    assert tiny.floor_s == pytest.approx((10 + 2 + 3 * 1) + (10 + 20 + 3 * 2))


def test_a_fast_machine_gets_more_epochs_until_the_window_lasts_its_goal():
    costs = {("t", "torch"): cost(img_s=1000.0, n=200)}  # 2 steps an epoch, 0.1 s each at the measured speed
    size = TaskSize("t", epochs=5, batch_size=100, warmup_steps=0, timed_steps=1, max_train=None)
    p = budget.plan([size], ["torch"], costs, 300, 100 * GF)
    # (2 x 16 - 1) steps x 0.1 s = 3.1 s >= the 3 s goal; 15 epochs would give 2.9 s
    assert p.tasks[0].epochs == 16 and p.tasks[0].windows["torch"] == pytest.approx(3.1)
    faster = budget.plan([size], ["torch"], costs, 300, 1000 * GF)  # 10x the speed: 0.01 s steps
    assert faster.tasks[0].epochs == budget.MAX_GROWTH * 5  # never past 4x the profile
    slow = budget.plan([size], ["torch"], {("t", "torch"): cost(img_s=100.0, n=200)}, 300, 100 * GF)
    assert slow.tasks[0].epochs == 5  # 1 s steps: 9 timed steps already last the 3 s goal


def test_an_epoch_grows_to_dwarf_the_calls_own_overhead_when_the_profile_capped_it():
    keras = cost(backend="keras", img_s=10_000.0, call=0.005, n=1000)  # 0.1 s epochs, 5 ms per call: 5%
    size = TaskSize("t", epochs=5, batch_size=100, warmup_steps=2, timed_steps=20, max_train=1000)
    p = budget.plan([size], ["keras"], {("t", "keras"): keras}, 300, 100 * GF)
    n = p.tasks[0].n_images
    assert n % 100 == 0 and keras.call_s / (n / keras.img_s + keras.call_s) <= budget.CALL_SHARE
    data_bound = TaskSize("t", epochs=5, batch_size=100, warmup_steps=2, timed_steps=20, max_train=5000)
    assert budget.plan([data_bound], ["keras"], {("t", "keras"): keras}, 300, 100 * GF).tasks[0].n_images == 1000


def test_a_budget_between_the_profiles_and_the_wanted_growth_grows_small_tasks_and_keeps_the_big_ones():
    """One dial in two stretches: a big task that wants no growth keeps its profile's 10 epochs while a small
    one grows toward its 3 s window; one factor on the wanted epochs cut the big task to pay for it."""
    big = TaskSize("big", epochs=10, batch_size=100, warmup_steps=2, timed_steps=20, max_train=None)
    small = TaskSize("small", epochs=5, batch_size=100, warmup_steps=0, timed_steps=1, max_train=None)
    costs = {
        ("big", "torch"): cost("big", fixed=0.0, first=0.0, img_s=100.0),  # 10 s epochs: 100 s at 10
        ("small", "torch"): cost("small", fixed=0.0, first=0.0, img_s=1000.0, n=200),
    }  # small: 0.2 s epochs, wants 16 for its 3 s window
    p = budget.plan([big, small], ["torch"], costs, 102 / budget.MARGIN, 100 * GF)
    epochs = {t.name: t.epochs for t in p.tasks}
    assert epochs["big"] == 10 and 5 < epochs["small"] < 16 and p.planned_s <= 102 + 1e-9
    roomy = budget.plan([big, small], ["torch"], costs, 200, 100 * GF)
    assert {t.name: t.epochs for t in roomy.tasks} == {"big": 10, "small": 16}
    tight = budget.plan([big, small], ["torch"], costs, 60 / budget.MARGIN, 100 * GF)  # below the profiles
    epochs = {t.name: t.epochs for t in tight.tasks}
    assert 3 <= epochs["big"] < 10 and 2 <= epochs["small"] <= 5 and tight.planned_s <= 60 + 1e-9


def test_rows_without_a_cost_are_named_and_keep_their_profile():
    p = budget.plan([SIZE], ["torch", "keras"], {("t", "torch"): cost()}, 300, 100 * GF)
    assert p.unknown == ["t/keras"] and p.tasks == []


def write_run(parent: Path, name: str, flops: float, recs: list[dict]) -> Path:
    run = parent / name
    run.mkdir(parents=True)
    (run / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (run / "budget.json").write_text(json.dumps({"calibration_flops": flops, "outside_rows_s": 4.0}))
    return run


def rec(task: str, backend: str, img_s: float) -> dict:
    return {
        "task": task,
        "backend": backend,
        "repeat": 0,
        "status": "ok",
        "wall_s": 20.0,
        "train_s": 10.0,
        "first_step_s": 1.0,
        "steady_img_s": img_s,
        "n_train": 1000,
    }


def test_costs_come_from_the_newest_calibrated_run_of_each_row(tmp_path):
    write_run(tmp_path, "20261201-000000-aaaa", 50 * GF, [rec("a", "torch", 100.0), rec("b", "torch", 10.0)])
    write_run(tmp_path, "20261202-000000-bbbb", 80 * GF, [rec("a", "torch", 200.0)])
    (tmp_path / "20261203-000000-cccc").mkdir()  # no budget.json: not a cost source
    costs, outside = budget_cli.measured_costs([tmp_path, tmp_path / "missing"])
    assert costs["a", "torch"].img_s == 200.0 and costs["a", "torch"].flops == 80 * GF
    assert costs["b", "torch"].img_s == 10.0 and costs["b", "torch"].flops == 50 * GF
    assert outside == (4.0, 80 * GF)


def test_a_calibration_within_its_noise_on_the_same_machine_leaves_the_costs_unscaled(tmp_path):
    """192-268 GFLOP/s within 45 minutes on one idle VM, the rows unchanged: that is noise, not a slower
    machine. Twice as slow, fewer usable cores (`taskset`: another machine) or another CPU still scale."""
    here, fewer, there = tmp_path / "here", tmp_path / "fewer", tmp_path / "there"
    for parent, machine in (
        (here, budget_cli.machine()),
        (fewer, {**budget_cli.machine(), "usable_cores": 99}),
        (there, None),
    ):
        run = write_run(parent, "20261202-000000-aaaa", 268 * GF, [rec("a", "torch", 100.0)])
        info = json.loads((run / "budget.json").read_text())
        (run / "budget.json").write_text(json.dumps({**info, "machine": machine}))
    assert budget_cli.measured_costs([here], 192 * GF)[0]["a", "torch"].flops == 192 * GF
    assert budget_cli.measured_costs([here], 192 * GF)[1] == (4.0, 192 * GF)  # the run's outside time too
    assert budget_cli.measured_costs([here], 130 * GF)[0]["a", "torch"].flops == 268 * GF  # 2x: scaled
    assert budget_cli.measured_costs([fewer], 192 * GF)[0]["a", "torch"].flops == 268 * GF
    assert budget_cli.measured_costs([there], 192 * GF)[0]["a", "torch"].flops == 268 * GF
    assert budget_cli.measured_costs([here])[0]["a", "torch"].flops == 268 * GF  # no speed given: as recorded
    assert budget.speed_of_costs(268 * GF, 400 * GF, same_machine=True) == 400 * GF  # 1.49x: still noise


def test_fit_resizes_the_builtin_tasks_and_prints_the_plan(tmp_path, monkeypatch):
    monkeypatch.setattr(budget_cli.environment, "REPO", tmp_path)  # the committed cost runs are not this test's
    tasks = [load_task(p, "quick", registry.DATASETS) for p in builtin_tasks().values()]
    recs = [rec(t.name, b, 50.0) for t in tasks for b in ("torch", "keras")]
    write_run(tmp_path, "20261201-000000-aaaa", 1e15, recs)  # measured on a machine ~10,000x this one
    monkeypatch.setattr(budget, "CONFIRM_PAUSE_S", 0.0)
    lines: list[str] = []
    resized, fitted = budget_cli.fit(tasks, ("torch", "keras"), 300.0, tmp_path, lines.append)
    plan = fitted["plan"]
    # every task at its fewest epochs (2, or enough for its timed steps), none above its profile
    assert [t.train.epochs for t in resized] == [tp.epochs for tp in plan.tasks]
    assert all(2 <= r.train.epochs <= t.train.epochs for r, t in zip(resized, tasks, strict=True))
    assert sum(r.train.epochs for r in resized) < sum(t.train.epochs for t in tasks)
    assert not plan.fits and any(line.startswith("warning: budget 5m00.0s is too small") for line in lines)
    need = next(line for line in lines if line.startswith("warning"))
    assert f"--budget {int(plan.floor_s / budget.MARGIN) + 1}s" in need
    # this machine read far outside the costs' calibration: the reading was confirmed, and the fastest counts
    assert len(fitted["readings"]) == 1 + budget.CONFIRM_READINGS and fitted["speed"] == max(fitted["readings"])
    assert "lay outside that noise, so it was read 4 more times" in lines[0]


def test_a_calibration_outside_the_costs_noise_band_is_read_again_and_the_fastest_counts():
    pauses: list[float] = []
    later = iter([150 * GF, 90 * GF, 200 * GF, 120 * GF])
    speed, readings = budget.confirmed(84 * GF, 268 * GF, measure=lambda: next(later), sleep=pauses.append)
    assert speed == 200 * GF and readings == [84 * GF, 150 * GF, 90 * GF, 200 * GF, 120 * GF]
    assert pauses == [budget.CONFIRM_PAUSE_S] * budget.CONFIRM_READINGS
    # within the band, or with no measured cost to compare with: the one reading stands, nothing is read again
    never = lambda: pytest.fail("read again")  # noqa: E731
    assert budget.confirmed(190 * GF, 268 * GF, measure=never, sleep=pauses.append) == (190 * GF, [190 * GF])
    assert budget.confirmed(84 * GF, None, measure=never, sleep=pauses.append) == (84 * GF, [84 * GF])
    # a machine that really is slow reads slow every time and stays slow
    slow = iter([80 * GF, 86 * GF, 83 * GF, 85 * GF])
    assert budget.confirmed(84 * GF, 268 * GF, measure=lambda: next(slow), sleep=lambda s: None)[0] == 86 * GF


def test_after_the_run_the_planned_and_achieved_time_and_each_rows_half_width_are_said_and_kept(tmp_path):
    run = tmp_path / "20261202-000000-dddd"
    run.mkdir()
    r = {
        **rec("t", "torch", 100.0),
        "epochs": 3,
        "steady_img_s_hw_pct": 1.234,
        "steady_epoch_ratio": 1.01,
        "import_s": 5.0,
    }
    (run / "records.jsonl").write_text(json.dumps(r) + "\n")
    p = budget.plan([SIZE], ["torch"], {("t", "torch"): cost()}, 300, 100 * GF)
    lines: list[str] = []
    fitted = {"started": budget_cli.time.perf_counter() - 42.0, "speed": 100 * GF, "plan": p, "budget_s": 300.0}
    budget_cli.report(run, fitted, lines.append)
    assert lines[0].startswith("budget 5m00.0s: planned 22.0s, achieved 42.")
    assert lines[1] == "  t / torch: 3 epochs, 95% half-width 1.2%, step / epoch 1.010"
    kept = json.loads((run / "budget.json").read_text())
    assert kept["machine"] == budget_cli.machine() and kept["machine"]["usable_cores"] >= 1
    assert kept["calibration_flops"] == 100 * GF and kept["tasks"][0]["epochs"] == 10
    assert 42 - 20 - 5 <= kept["outside_rows_s"] < 42 - 20 - 5 + 5  # achieved - the row's wall_s - its import
    costs, outside = budget_cli.measured_costs([tmp_path])  # the run is now a cost source
    assert costs["t", "torch"].img_s == 100.0 and outside[1] == 100 * GF


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2, reason="one core")
def test_a_process_held_to_one_core_counts_one_and_so_does_its_calibration_blas():
    """`taskset -c 0 python -m bench all` (the half-speed check): the rows record the cores they may use."""
    code = (
        "import os; os.sched_setaffinity(0, [sorted(os.sched_getaffinity(0))[0]]); "
        "from bench.core.cpus import usable_cores; from threadpoolctl import threadpool_info; import numpy; "
        "print(usable_cores(), max(i['num_threads'] for i in threadpool_info()), os.cpu_count())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    cores, blas, machine = map(int, out.stdout.split())
    assert cores == 1 and blas == 1 and machine >= 2  # numpy's BLAS (the calibration) runs one thread too
