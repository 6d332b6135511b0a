"""`bench compare`: identical runs pass, an injected slowdown or accuracy drop is flagged and fails."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.core.record import new_record
from bench.core.results import LEFT_OUT_BY_BUDGET, append_record
from bench.measure.timing import MIN_TIME_DELTA_S
from bench.report import tables
from bench.report.compare import (
    MACHINE_DIFFERS,
    METRICS,
    NO_BASELINE,
    NOT_RUN_BUDGET,
    NOT_RUN_LOST,
    NOT_RUN_SKIPPED,
    STILL_FAILING,
    TIME_FLOOR,
    Thresholds,
    compare,
    environment_differences,
    load_lines,
    load_run,
    machine_differences,
    reference_ratios,
    render,
    render_reference,
    run_planned,
    unjudged,
    unmeasured_lines,
)
from bench.report.tables import WORDS
from bench.run import cli, report_cli
from bench.run.executors.remote import no_result
from tests.conftest import run_cli

STEADY, EPOCH = WORDS["steady_img_s"], WORDS["epoch_s_median"]  # summary.md's words, which compare prints

ENV = {"cpu": "Xeon", "cores": 2, "gpus": [], "python": "3.11.7", "packages": {"torch": "2.14.1", "keras": "3.15.1"}}


def make_run(
    path: Path,
    slow: float = 1.0,
    acc_drop: float = 0.0,
    env: dict | None = None,
    keras_status: str = "ok",
    recipe: dict | None = None,
) -> Path:
    path.mkdir(parents=True)
    for backend, epoch_s in (("torch", 1.0), ("keras", 1.5)):
        for repeat in range(3):
            e = epoch_s * (1 + 0.02 * repeat) * (slow if backend == "torch" else 1)
            append_record(
                path,
                new_record(
                    run_id=path.name,
                    task="mnist-lenet5",
                    backend=backend,
                    repeat=repeat,
                    model="lenet5",
                    profile="quick",
                    status=keras_status if backend == "keras" else "ok",
                    device="cpu",
                    threads=2,
                    train_s=8 * e,
                    epoch_s_median=e,
                    throughput_img_s=1000 / e,
                    eval_img_s=5000.0,
                    test_acc=0.95 - (acc_drop if backend == "keras" else 0),
                    peak_host_mb=800.0,
                    **{"epochs": 8, "batch_size": 32, "n_train": 1000, **(recipe or {})},
                ),
            )
    (path / "environment.json").write_text(json.dumps(env or ENV))
    return path


def test_identical_runs_show_no_regression(tmp_path: Path, clean_env):
    a, b = make_run(tmp_path / "a"), make_run(tmp_path / "b")
    result = compare(load_run(a, tmp_path)[0], load_run(b, tmp_path)[0], Thresholds())
    assert not result.regression.any() and (result.ratio == 1.0).all()
    proc = run_cli(["compare", str(a), str(b)], clean_env)
    assert proc.returncode == 0 and "no regression" in proc.stdout and "warning" not in proc.stdout


def test_one_run_named_twice_is_refused_in_one_line_not_compared_with_itself(tmp_path: Path, clean_env):
    """QA, 2026-12-06: `bench compare A A` printed every figure against itself (ratio 1.000) and "no regression",
    exit 0: a guard pointed at one run twice passed having compared nothing. The same folder (by path, by run id
    under --results, or a copy of it: the same records) is bad input: one line, exit 2."""
    a = make_run(tmp_path / "results" / "20261206-101010-abcd")
    copy = tmp_path / "copy"
    shutil.copytree(a, copy)
    for pair in ((str(a), str(a)), (a.name, str(a)), (str(a), f"{a}/"), (str(a), str(copy))):
        proc = run_cli(["compare", *pair, "--results", str(tmp_path / "results")], clean_env)
        assert proc.returncode == 2 and proc.stdout == "", (pair, proc.stdout)
        assert proc.stderr.count("\n") == 1 and "nothing to compare" in proc.stderr, (pair, proc.stderr)
        assert ("is a copy of the run" if pair[1] == str(copy) else "A and B are the same run") in proc.stderr
    other = make_run(tmp_path / "results" / "20261206-111111-ef01")  # the same figures, another run: compared
    proc = run_cli(["compare", str(a), str(other)], clean_env)
    assert proc.returncode == 0 and "no regression" in proc.stdout, proc.stderr


def test_an_injected_slowdown_is_flagged_and_fails(tmp_path: Path, clean_env):
    a, b = make_run(tmp_path / "a"), make_run(tmp_path / "b", slow=1.3)
    result = compare(load_run(a, tmp_path)[0], load_run(b, tmp_path)[0], Thresholds(max_slowdown=0.1))
    flagged = result[result.regression]
    assert set(flagged.backend) == {"torch"}
    assert set(flagged.metric) == {"training time (s)", EPOCH, "steady throughput (img/s)"}
    row = result[(result.backend == "torch") & (result.metric == EPOCH)].iloc[0]
    assert abs(row.ratio - 1.3) < 1e-9 and abs(row.delta - 0.306) < 1e-9  # medians: 1.02 -> 1.326
    proc = run_cli(["compare", str(a), str(b), "--markdown", str(tmp_path / "cmp.md")], clean_env)
    assert proc.returncode == 1 and "3 regression(s)" in proc.stdout and "REGRESSION" in proc.stdout
    assert "REGRESSION" in (tmp_path / "cmp.md").read_text()
    # a looser threshold accepts the same slowdown
    assert run_cli(["compare", str(a), str(b), "--max-slowdown", "0.5"], clean_env).returncode == 0


def test_a_markdown_path_that_cannot_be_written_exits_2_before_printing(tmp_path: Path, clean_env):
    """Checked first: a late failure printed the comparison, a traceback, and exited 1 (CI's "regression")."""
    a, b = make_run(tmp_path / "a"), make_run(tmp_path / "b")
    missing = tmp_path / "nope" / "cmp.md"
    cases = ((missing, f"folder {missing.parent} does not exist"), (tmp_path, f"{tmp_path} is a directory"))
    for target, says in cases:
        proc = run_cli(["compare", str(a), str(b), "--markdown", str(target)], clean_env)
        assert proc.returncode == 2 and proc.stdout == "", proc.stderr
        assert proc.stderr.count("\n") == 1 and f"argument --markdown: {says}" in proc.stderr, proc.stderr
    assert not (tmp_path / "nope").exists()


def test_a_markdown_path_that_is_a_fifo_is_refused_not_waited_on(tmp_path: Path, clean_env):
    """Opening a FIFO to write waits for a reader: compare hung forever. Refused at parse time, and the
    final open does not block either (a FIFO put there after the check)."""
    a, b = make_run(tmp_path / "a"), make_run(tmp_path / "b")
    fifo = tmp_path / "cmp.md"
    os.mkfifo(fifo)
    link = tmp_path / "link.md"
    link.symlink_to(fifo)
    for target in (fifo, link):
        proc = run_cli(["compare", str(a), str(b), "--markdown", str(target)], clean_env, timeout=120)
        assert proc.returncode == 2 and proc.stdout == "", proc.stderr
        assert proc.stderr.count("\n") == 1 and f"{target} is not a regular file" in proc.stderr, proc.stderr
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # with a reader the open succeeds: fstat refuses
    try:
        with pytest.raises(OSError, match="not a regular file"):
            report_cli.write_regular(fifo, "x")
    finally:
        os.close(reader)
    with pytest.raises(OSError):  # no reader: the non-blocking open fails (ENXIO) at once
        report_cli.write_regular(fifo, "x")


def test_accuracy_drop_and_a_failed_row_are_regressions(tmp_path: Path):
    a = make_run(tmp_path / "a")
    dropped = compare(
        load_run(a, tmp_path)[0], load_run(make_run(tmp_path / "b", acc_drop=0.02), tmp_path)[0], Thresholds()
    )
    assert list(dropped[dropped.regression].metric) == ["test accuracy"]
    failed = compare(
        load_run(a, tmp_path)[0], load_run(make_run(tmp_path / "c", keras_status="failed"), tmp_path)[0], Thresholds()
    )
    (row,) = failed[failed.regression].itertuples()
    assert row.backend == "keras" and row.metric == "status"


def test_a_recipe_that_differs_is_said_and_the_figures_it_moves_are_not_judged(tmp_path: Path, clean_env):
    """`bench all` sizes epochs to the machine: two of its runs may differ in epochs alone. Training time and
    accuracy then move with the epochs and are shown, not judged; the step figures are still judged. Any other
    recipe change (here the batch size) leaves no figure to judge."""
    a = make_run(tmp_path / "a")
    longer = make_run(tmp_path / "b", slow=1.3, acc_drop=0.02, recipe={"epochs": 12})
    result = compare(load_run(a, tmp_path)[0], load_run(longer, tmp_path)[0], Thresholds())
    recipe = result[result.metric == "recipe"]
    assert set(recipe.backend) == {"torch", "keras"} and not recipe.regression.any()
    assert set(recipe.a) == {"epochs=8"} and set(recipe.b) == {"epochs=12"}
    flagged = result[result.regression]
    assert set(flagged.backend) == {"torch"}
    assert set(flagged.metric) == {EPOCH, "steady throughput (img/s)"}  # the step figures: judged
    left = result[result.verdict == "recipe differs"]
    assert set(left.metric) == {"recipe", "training time (s)", "test accuracy"}
    proc = run_cli(["compare", str(a), str(longer)], clean_env)
    assert proc.returncode == 1 and "recipe differs" in proc.stdout and "2 regression(s)" in proc.stdout
    last = proc.stdout.strip().splitlines()[-1]  # the verdict says what it left out, not a bare pass
    assert "4 figure(s) not judged: the recipe differs (training time (s), test accuracy)" in last
    batch = make_run(tmp_path / "c", slow=1.3, recipe={"batch_size": 64})
    other = compare(load_run(a, tmp_path)[0], load_run(batch, tmp_path)[0], Thresholds())
    assert not other.regression.any() and set(other[other.metric == "recipe"].b) == {"batch_size=64"}
    assert (other.verdict == "recipe differs").all()
    # more images per epoch: the epoch figures move with them (each epoch call's overhead over more images), and so
    # does the epoch throughput, the images over that median epoch (QA, 2026-12-07: judged, a REGRESSION, beside an
    # epoch time "recipe differs"); the step figures are judged
    more = make_run(tmp_path / "d", slow=1.3, recipe={"n_train": 4000})
    sized = compare(load_run(a, tmp_path)[0], load_run(more, tmp_path)[0], Thresholds())
    assert not sized.regression.any(), sized
    assert {EPOCH, "steady throughput (img/s)"} <= set(sized[sized.verdict == "recipe differs"].metric)


def test_a_row_that_ran_another_configuration_in_b_is_shown_and_not_judged(tmp_path: Path, clean_env):
    """QA, 2026-12-07: two tunes' Keras (torch) "best" rows, bf16 in A and its fp32 defaults in B, read "test accuracy
    REGRESSION" and an MFU of 9.14% -> 38.05% (another precision's peak) without a word of why. Another configuration
    of a key's knobs (or its threads, where both runs kept them) is said in a row, its figures shown, not judged, as
    bench history starts a new baseline there; the last line counts them."""
    base = {"steady_img_s": 1000.0, "test_acc": 0.45, "train_s": 9.0}
    a = write(tmp_path / "a", [row("a", **base, knob_config="precision=mixed_bf16", threads=2)])
    b = write(tmp_path / "b", [row("b", **{**base, "test_acc": 0.40, "train_s": 20.0}, threads=2)])
    result = compare(a, b, Thresholds())
    assert not result.regression.any(), result
    (said,) = result[result.metric == "configuration"].itertuples()
    assert (said.a, said.b) == ("precision=mixed_bf16; threads=2", "defaults; threads=2")
    assert set(result.verdict) == {"configuration differs"}
    assert "3 figure(s) not judged: another configuration ran in B (t / torch)" in unjudged(result)
    more = write(tmp_path / "c", [row("c", **base, threads=4)])  # the defaults on more threads: another configuration
    assert "configuration" in set(compare(b, more, Thresholds()).metric)
    older = write(tmp_path / "d", [row("d", **{**base, "train_s": 20.0})])  # kept no threads: knobs alone compared
    judged = compare(b, older, Thresholds())
    assert "configuration" not in set(judged.metric) and "configuration differs" not in set(judged.verdict)


def test_a_reference_neither_run_has_is_refused_not_dropped_without_a_word(tmp_path: Path, capsys):
    """QA, 2026-12-07: `compare A B --reference keras-jax` on two torch and Keras runs left out the table of ratios
    to the reference, exit 0, where `run` refuses such a reference: one line naming the runs' backends, exit 2."""
    a, b = make_run(tmp_path / "a"), make_run(tmp_path / "b")
    assert cli.main(["compare", str(a), str(b), "--reference", "keras-jax"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == (
        "error: --reference keras-jax: neither run has a keras-jax row (their backends: torch, keras), so there is "
        "no ratio to it to compare: name one of them\n"
    )
    assert cli.main(["compare", str(a), str(b), "--reference", "keras"]) == 0
    assert "Backends against keras (" in capsys.readouterr().out


def test_environment_differences_are_warned(tmp_path: Path, clean_env):
    other = {**ENV, "cores": 8, "packages": {"torch": "2.15.0", "keras": "3.15.1"}}
    a, b = make_run(tmp_path / "a"), make_run(tmp_path / "b", env=other)
    warnings = environment_differences(ENV, other, load_run(a, tmp_path)[0], load_run(b, tmp_path)[0])
    assert "cores differs: 2 vs 8" in warnings and "torch differs: 2.14.1 vs 2.15.0" in warnings
    proc = run_cli(["compare", str(a), str(b)], clean_env)
    assert "warning: the runs differ: torch differs" in proc.stdout
    proc = run_cli(["compare", str(a), str(tmp_path / "nope")], clean_env)
    assert proc.returncode == 2 and "not a run directory" in proc.stderr


def test_a_run_timed_on_a_machine_loaded_beyond_its_cores_is_said_in_one_line(tmp_path: Path, clean_env):
    """QA, 2026-12-06: two identical runs, both at load 7.7 on 2 cores, read 3.3x apart, a significant regression
    with no word of the load. Each row keeps its node's load as its window ended; compare says when either run's
    rows ran beyond their cores (the most loaded row), and an old run's rows without it fall back to the load at
    its start. The exit status is the verdict's, as before."""
    quiet, loaded = row("a", load_avg_1m_end=1.2, node_cores=2), row("b", load_avg_1m_end=7.7, node_cores=2)
    a = write(tmp_path / "a", [quiet, row("a", backend="keras", load_avg_1m_end=1.9, node_cores=2)])
    b = write(tmp_path / "b", [loaded, row("b", backend="keras", load_avg_1m_end=3.0, node_cores=2)])
    said = "B's rows ran at load 7.7 on 2 cores: a slowdown may be the machine's"
    assert load_lines(a, b, {}, {}) == [said] and load_lines(a, a, {}, {}) == []
    old = write(tmp_path / "old", [row("old")])  # before the field: the start's load, where environment.json has it
    busy = {"load_avg_1m_at_start": 7.7, "cores": 2}
    (line,) = load_lines(old, a, busy, {})
    assert line.startswith("A's rows started at load 7.7 on 2 cores") and "recorded no load of their own" in line
    assert load_lines(old, a, {}, {}) == [] and load_lines(old, a, {**busy, "load_avg_1m_at_start": 1.5}, {}) == []
    # under the load line, others on a share of a row's cores (bench.core.placement.OthersOnCores) are said too
    beside = write(tmp_path / "beside", [row("c", load_avg_1m_end=1.3, node_cores=2, others_cpu_pct=41.0)])
    assert load_lines(a, beside, {}, {}) == [
        "B's rows ran with others using 41% of the cores: a slowdown may be the machine's"
    ]
    # through the command: an identical pair passes with the line, a slowdown still fails with it
    first, same = make_run(tmp_path / "c"), make_run(tmp_path / "d", env={**ENV, "load_avg_1m_at_start": 7.7})
    proc = run_cli(["compare", str(first), str(same)], clean_env)
    assert proc.returncode == 0 and "warning: B's rows started at load 7.7 on 2 cores" in proc.stdout, proc.stdout
    slow = make_run(tmp_path / "e", slow=1.3, env={**ENV, "load_avg_1m_at_start": 7.7})
    proc = run_cli(["compare", str(first), str(slow), "--max-slowdown", "0.1"], clean_env)
    assert proc.returncode == 1 and "warning: B's rows started at load 7.7" in proc.stdout


def test_runs_through_different_executors_say_so_and_why_host_memory_differs(tmp_path: Path):
    """QA, 2026-12-05: every row's peak host RSS a regression between a local run and the same run through Ray
    (a fresh process holds its framework's import; a forked row shares its server's), and no word why."""
    a = write(tmp_path / "a", [row("a", executor="local", peak_host_mb=600.0)])
    b = write(tmp_path / "b", [row("b", executor="ray", peak_host_mb=900.0)])
    (warning,) = [w for w in environment_differences({}, {}, a, b) if w.startswith("executor")]
    assert warning.startswith("executor differs: ['local'] vs ['ray']: a row run in a fresh process")


def test_the_rows_footing_is_compared_over_the_keys_ok_in_both_runs(tmp_path: Path):
    """QA, 2026-12-06: against a run whose one row failed before it chose a device, compare warned "device differs:
    ['cpu (x86_64)'] vs []" (and threads, executor); and a backend in one run only set its threads against the
    other's. Those are no difference of footing: the rows compared are the keys ok on both sides."""
    footing = {"device": "cpu (x86_64)", "threads": 2, "executor": "local"}
    a = write(tmp_path / "a", [row("a", **footing), row("a", backend="keras", **{**footing, "threads": 1})])
    failed = write(tmp_path / "b", [row("b", status="failed"), row("b", backend="keras", status="failed")])
    torch_only = write(tmp_path / "c", [row("c", **footing)])
    assert environment_differences({}, {}, a, failed) == [] and environment_differences({}, {}, a, torch_only) == []
    moved = write(tmp_path / "d", [row("d", **{**footing, "device": "cuda:0 (H100)"})])
    assert environment_differences({}, {}, a, moved) == ["device differs: ['cpu (x86_64)'] vs ['cuda:0 (H100)']"]
    # QA, 2026-12-06: the 12-day-old reference run, its records from before the executor field, against today's run
    # warned "executor differs: [] vs ['local']": a side that recorded none is not compared
    before = [row("old", device="cpu (x86_64)", threads=2), row("old", backend="keras", threads=1)]
    old = write(tmp_path / "old", before)
    assert environment_differences({}, {}, old, a) == [] and environment_differences({}, {}, a, old) == []


def test_runs_without_the_reference_backend_print_no_reference_table(tmp_path: Path, clean_env):
    """QA, 2026-12-06: two runs of keras alone printed "Backends against torch" over rows of "no torch row" in both
    runs: no ratio to show. A row with a ratio on one side still shows the other side's reason."""
    runs = [tmp_path / "a", tmp_path / "b"]
    a, b = (write(p, [row(p.name, backend="keras", epoch_s_median=1.5, test_acc=0.5)]) for p in runs)
    assert reference_ratios(a, b, "torch").empty and render_reference(reference_ratios(a, b, "torch")) == ""
    proc = run_cli(["compare", *map(str, runs)], clean_env)
    assert proc.returncode == 0 and "Backends against" not in proc.stdout and "no torch row" not in proc.stdout


def row(run: str, backend: str = "torch", repeat: int = 0, status: str = "ok", **fields) -> dict:
    return new_record(
        run_id=run, task="t", backend=backend, repeat=repeat, model="m", profile="quick", status=status, **fields
    )


def write(path: Path, records: list[dict]) -> pd.DataFrame:
    path.mkdir(parents=True)
    for r in records:
        append_record(path, r)
    return load_run(path, path.parent)[0]


def steady(img_s: float, hw: float, steps: list[float] | None = None, **kw) -> dict:
    return {
        "steady_img_s": img_s,
        "steady_img_s_ci_lo": img_s - hw,
        "steady_img_s_ci_hi": img_s + hw,
        "step_img_s": steps or [],
        **kw,
    }


def verdict_of(result: pd.DataFrame, metric: str) -> str:
    return result[result.metric == metric].iloc[0].verdict


@pytest.mark.parametrize(
    ("col", "label", "a", "at_limit", "t"),
    [
        ("steady_img_s", STEADY, 110.0, 100.0, Thresholds(max_slowdown=0.1)),
        ("mfu", "MFU", 0.22, 0.2, Thresholds(max_slowdown=0.1)),
        ("first_step_s", "first step (s)", 2.0, 2.2, Thresholds(max_slowdown=0.1)),
        ("eval_img_s", "inference (img/s)", 1100.0, 1000.0, Thresholds(max_slowdown=0.1)),
        ("train_s", "training time (s)", 10.0, 11.0, Thresholds(max_slowdown=0.1)),
        ("epoch_s_median", EPOCH, 1.0, 1.1, Thresholds(max_slowdown=0.1)),
        ("throughput_img_s", "steady throughput (img/s)", 110.0, 100.0, Thresholds(max_slowdown=0.1)),
        ("peak_host_mb", "peak host RSS (MB)", 800.0, 1000.0, Thresholds(max_memory_growth=0.25)),
        ("peak_device_mb", "peak device memory (MB)", 800.0, 1000.0, Thresholds(max_memory_growth=0.25)),
        ("test_acc", "test accuracy", 0.95, 0.94, Thresholds(max_acc_drop=0.01)),
    ],
)
def test_every_threshold_at_its_boundary(tmp_path: Path, col, label, a, at_limit, t):
    """Exactly at the threshold is no regression; a hair beyond it is (one repeat: no interval, threshold alone)."""
    base = write(tmp_path / "a", [row("a", **{col: a})])
    at = compare(base, write(tmp_path / "b", [row("b", **{col: at_limit})]), t)
    assert verdict_of(at, label) == ""
    higher = {m.column: m.higher_is_better for m in METRICS}[col]
    worse = at_limit - 1e-4 * abs(at_limit) if higher else at_limit * 1.0001
    beyond = compare(base, write(tmp_path / "c", [row("c", **{col: worse})]), t)
    assert verdict_of(beyond, label) == "regression" and beyond[beyond.metric == label].regression.all()


def test_a_slowdown_is_a_regression_only_when_the_intervals_separate(tmp_path: Path):
    a = write(tmp_path / "a", [row("a", **steady(100.0, 2.0))])
    separate = compare(a, write(tmp_path / "b", [row("b", **steady(80.0, 2.0))]), Thresholds())
    assert verdict_of(separate, STEADY) == "regression"
    overlap = compare(a, write(tmp_path / "c", [row("c", **steady(80.0, 20.0))]), Thresholds())
    assert verdict_of(overlap, STEADY) == "inconclusive"
    assert not overlap.regression.any()
    small = compare(a, write(tmp_path / "d", [row("d", **steady(95.0, 0.5))]), Thresholds())
    assert verdict_of(small, STEADY) == ""  # separate, but within the threshold


def test_the_ratios_bootstrap_on_step_throughputs_decides_when_intervals_overlap(tmp_path: Path):
    rng = np.random.default_rng(0)
    fast, slow = list(100 + rng.normal(0, 3, 200)), list(80 + rng.normal(0, 3, 200))
    a = write(tmp_path / "a", [row("a", **steady(100.0, 30.0, fast))])
    b = write(tmp_path / "b", [row("b", **steady(80.0, 30.0, slow))])
    result = compare(a, b, Thresholds())
    r = result[result.metric == STEADY].iloc[0]
    assert r.p_value < 1e-6 and r.verdict == "regression"
    same = write(tmp_path / "c", [row("c", **steady(80.0, 30.0, list(100 + rng.normal(0, 3, 200))))])
    r = compare(a, same, Thresholds())
    assert verdict_of(r, STEADY) == "inconclusive"


def test_an_mfu_that_fell_while_the_throughput_did_not_is_the_peaks_move_not_a_regression(tmp_path: Path):
    """QA, 2026-12-05: the window's throughput 1.33x, its MFU 0.158 -> 0.110 flagged a regression (exit 1): each
    row's peak is its own matmul measured on a loaded machine, 255 then 487 GFLOP/s."""
    a = write(tmp_path / "a", [row("a", **steady(100.0, 2.0, mfu=0.2, peak_flops=255e9))])
    faster = write(tmp_path / "b", [row("b", **steady(133.0, 2.0, mfu=0.14, peak_flops=487e9))])
    result = compare(a, faster, Thresholds())
    assert verdict_of(result, "MFU") == "peak moved" and not result.regression.any()
    assert "| peak moved" in render(result)
    slower = write(tmp_path / "c", [row("c", **steady(80.0, 2.0, mfu=0.14, peak_flops=300e9))])
    result = compare(a, slower, Thresholds())  # the throughput fell too: the MFU row is judged as before
    assert verdict_of(result, "MFU") == "regression" and result[result.metric == "MFU"].regression.all()


def test_an_mfu_is_no_more_a_regression_than_its_throughput(tmp_path: Path):
    """QA, 2026-12-06, two runs of one row on a loaded VM: the throughput 0.914x (within the 10% threshold, p = 0.18)
    and MFU 0.505x, its peak 256 then 463 GFLOP/s, read "REGRESSION" beside that same p-value: MFU's interval (the
    row's throughput interval over its own peak) did not overlap A's. A throughput within its threshold leaves the
    rest of the fall to the peak; one beyond it but not significant leaves MFU inconclusive too."""
    rng = np.random.default_rng(0)

    def steps(rate: float) -> list[float]:
        return list(rate + rng.normal(0, 0.1 * rate, 60))

    a = write(tmp_path / "a", [row("a", **steady(100.0, 2.0, steps(100.0), mfu=0.27, peak_flops=256e9))])
    within = write(tmp_path / "b", [row("b", **steady(91.4, 2.0, steps(91.4), mfu=0.135, peak_flops=463e9))])
    result = compare(a, within, Thresholds())
    assert verdict_of(result, STEADY) == "" and verdict_of(result, "MFU") == "peak moved"
    assert not result.regression.any()
    unsure = write(tmp_path / "c", [row("c", **steady(85.0, 20.0, mfu=0.12, peak_flops=463e9))])  # no steps: no p
    result = compare(a, unsure, Thresholds())
    assert verdict_of(result, STEADY) == "inconclusive" and verdict_of(result, "MFU") == "inconclusive"
    assert not result.regression.any()


def test_repeats_give_epoch_columns_an_interval(tmp_path: Path):
    a = write(tmp_path / "a", [row("a", repeat=i, epoch_s_median=v) for i, v in enumerate((1.0, 1.3, 1.6))])
    spread = write(tmp_path / "b", [row("b", repeat=i, epoch_s_median=v) for i, v in enumerate((1.2, 1.5, 1.8))])
    assert verdict_of(compare(a, spread, Thresholds()), EPOCH) == "inconclusive"
    apart = write(tmp_path / "c", [row("c", repeat=i, epoch_s_median=v) for i, v in enumerate((1.7, 1.8, 1.9))])
    assert verdict_of(compare(a, apart, Thresholds()), EPOCH) == "regression"


def test_rows_new_in_b_are_reported_not_flagged(tmp_path: Path, clean_env):
    a = make_run(tmp_path / "a")
    b = make_run(tmp_path / "b")
    append_record(
        b,
        new_record(
            run_id="b",
            task="cifar10-cnn",
            backend="torch",
            repeat=0,
            model="cifar_cnn",
            profile="quick",
            status="ok",
            throughput_img_s=10.0,
        ),
    )
    result = compare(load_run(a, tmp_path)[0], load_run(b, tmp_path)[0], Thresholds())
    new = result[result.task == "cifar10-cnn"]
    assert len(new) == 1 and new.iloc[0].metric == "status" and not new.iloc[0].regression
    assert "missing" in str(new.iloc[0].a)


def test_a_side_with_no_ok_row_is_a_status_row_not_a_crash(tmp_path: Path, clean_env):
    """B failed everywhere: every key is a regression (exit 1). A failed and B is fine: exit 0. New in B: listed."""
    a, b = make_run(tmp_path / "a"), tmp_path / "b"
    b.mkdir()
    for backend in ("torch", "keras"):
        append_record(
            b,
            new_record(
                task="mnist-lenet5",
                backend=backend,
                repeat=0,
                model="lenet5",
                profile="quick",
                status="failed",
                error="boom",
            ),
        )
    back = run_cli(["compare", str(b), str(a)], clean_env)  # the baseline failed, B is fine: no regression
    assert back.returncode == 0 and "no regression" in back.stdout, back.stdout + back.stderr
    assert back.stdout.count("| failed ") == 2
    append_record(
        b,
        new_record(
            task="new-task", backend="torch", repeat=0, model="lenet5", profile="quick", status="ok", train_s=1.0
        ),
    )
    result = compare(load_run(a, tmp_path)[0], load_run(b, tmp_path)[0], Thresholds())
    status = result[result.metric == "status"].set_index(["task", "backend"])
    assert status.loc[("mnist-lenet5", "torch")][["a", "b", "regression"]].tolist() == ["ok", "failed", True]
    assert status.loc[("mnist-lenet5", "keras")][["a", "b", "regression"]].tolist() == ["ok", "failed", True]
    assert status.loc[("new-task", "torch")][["a", "b", "regression"]].tolist() == ["missing (new in B)", "ok", False]
    proc = run_cli(["compare", str(a), str(b)], clean_env)
    assert proc.returncode == 1 and "2 regression(s)" in proc.stdout, proc.stdout + proc.stderr
    assert "missing (new in B)" in proc.stdout and "Traceback" not in proc.stderr


def test_rows_follow_the_registry_order_of_backends(tmp_path: Path):
    a, b = make_run(tmp_path / "a"), make_run(tmp_path / "b")
    result = compare(load_run(a, tmp_path)[0], load_run(b, tmp_path)[0], Thresholds())
    assert list(dict.fromkeys(result.backend)) == ["torch", "keras"]  # not alphabetical


def test_each_backend_against_the_reference_in_both_runs(tmp_path: Path, clean_env):
    a, b = make_run(tmp_path / "a"), make_run(tmp_path / "b", slow=1.3)  # B: torch 30% slower, keras unchanged
    ra, rb = load_run(a, tmp_path)[0], load_run(b, tmp_path)[0]
    ratios = reference_ratios(ra, rb, "torch").set_index(["ratio", "metric"])
    epoch = ratios.loc[("keras/torch", EPOCH)]
    assert epoch.a == pytest.approx(1.5) and epoch.b == pytest.approx(1.5 / 1.3)
    assert epoch["b/a"] == pytest.approx(1 / 1.3)  # keras gained on torch
    assert set(ratios.index.get_level_values("ratio")) == {"keras/torch"}
    by_keras = reference_ratios(ra, rb, "keras")
    assert set(by_keras.ratio) == {"torch/keras"}
    assert by_keras[by_keras.metric == EPOCH].iloc[0].b == pytest.approx(1.3 / 1.5)
    proc = run_cli(["compare", str(a), str(b), "--reference", "keras"], clean_env)
    assert "Backends against keras" in proc.stdout and "| torch/keras |" in proc.stdout, proc.stdout
    bad = run_cli(["compare", str(a), str(b), "--reference", "nope"], clean_env)
    assert bad.returncode == 2 and "unknown backend 'nope' (choose from torch, keras" in bad.stderr


def test_without_reference_compare_divides_by_a_backend_both_runs_have(tmp_path: Path, clean_env):
    """Runs of keras and keras-jax, no torch, no --reference: keras-jax against keras, as each run's summary.md
    has it, rather than no table at all (every ratio against torch would be missing)."""
    for name, jax_s in (("a", 1.0), ("b", 2.0)):
        rows = [row(name, backend="keras", epoch_s_median=1.5), row(name, backend="keras-jax", epoch_s_median=jax_s)]
        write(tmp_path / name, rows)
    proc = run_cli(["compare", str(tmp_path / "a"), str(tmp_path / "b")], clean_env)
    assert "Backends against keras" in proc.stdout and "no torch row" not in proc.stdout, proc.stdout + proc.stderr
    assert re.search(r"\| keras-jax/keras \| 0\.667 \| 1\.333 \| 2\.000 \|", proc.stdout), proc.stdout
    named = run_cli(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--reference", "torch"], clean_env)
    assert "Backends against" not in named.stdout, named.stdout  # --reference torch kept: no ratio to show


def test_a_reference_without_an_ok_row_is_named_in_the_ratio_cells(tmp_path: Path):
    a = make_run(tmp_path / "a")
    b = write(
        tmp_path / "b", [row("b", backend="torch", status="failed"), row("b", backend="keras", epoch_s_median=2.0)]
    )
    a_t = write(
        tmp_path / "c", [row("c", backend="torch", epoch_s_median=1.0), row("c", backend="keras", epoch_s_median=1.5)]
    )
    ratios = reference_ratios(a_t, b, "torch")
    epoch = ratios[ratios.metric == EPOCH].iloc[0]
    assert epoch.a == pytest.approx(1.5) and epoch.b == "torch failed" and epoch["b/a"] is None
    assert "torch failed" in render_reference(ratios) and render_reference(reference_ratios(a_t, b, "keras")) != ""
    only_a = write(
        tmp_path / "d",
        [
            row("d", backend="torch", epoch_s_median=1.0, test_acc=0.5),
            row("d", backend="keras", epoch_s_median=1.5, test_acc=0.6),
        ],
    )
    shown = render_reference(reference_ratios(only_a, a_t, "torch"))  # test accuracy only in A: "-" in B, not nan
    assert "nan" not in shown and re.search(r"\| test accuracy +\| keras/torch \| 1\.200 \| - +\| - +\|", shown), shown
    assert reference_ratios(load_run(a, tmp_path)[0], b, "torch").empty  # no task in both runs: nothing to show


def test_a_run_with_no_environment_is_said_once_not_field_by_field(tmp_path: Path, clean_env):
    """QA: a run folder without environment.json read as some 14 "X differs: ... vs None" warnings."""
    frame = load_run(make_run(tmp_path / "a"), tmp_path)[0]
    assert environment_differences(ENV, {}, frame, frame) == [
        "environment unknown for the second run (B): no readable environment.json; machines and packages not compared"
    ]
    assert environment_differences({}, ENV, frame, frame)[0].startswith("environment unknown for the first run (A)")


def test_a_time_difference_under_the_floor_is_not_judged(tmp_path: Path, capsys):
    """QA, 2026-12-06: with one repeat, training 2 ms -> 2.5 ms and a first step 0.4 -> 0.9 ms were regressions on
    their threshold alone. Their seconds moved by less than the floor: not judged, and the command exits 0; the
    epoch throughput and inference are judged by the seconds they were measured as. The same changes at 100x the
    seconds (beyond the floor), or with the floor at 0, are regressions."""

    def times(scale: float, slower: float) -> dict:
        epoch = 0.002 * scale * slower
        return {
            "train_s": 2 * epoch,
            "epoch_s_median": epoch,
            "throughput_img_s": 64 / epoch,
            "first_step_s": 0.0004 * scale * slower**4,
            "eval_s": 0.001 * scale * slower,
            "eval_img_s": 100 / (0.001 * scale * slower),
        }

    timed = [m for m in METRICS if m.column in ("train_s", "epoch_s_median", "throughput_img_s", "first_step_s")]
    labels = [m.words for m in timed] + [WORDS["eval_img_s"]]
    runs = {name: tmp_path / name for name in ("a", "b", "a100", "b100")}
    small = compare(
        write(runs["a"], [row("a", **times(1, 1))]), write(runs["b"], [row("b", **times(1, 1.25))]), Thresholds()
    )
    assert [verdict_of(small, m) for m in labels] == [TIME_FLOOR] * len(labels) and not small.regression.any()
    assert "under the time floor" in render(small) and "REGRESSION" not in render(small)
    no_floor = compare(
        load_run(runs["a"], tmp_path)[0], load_run(runs["b"], tmp_path)[0], Thresholds(min_time_delta_s=0)
    )
    assert [verdict_of(no_floor, m) for m in labels] == ["regression"] * len(labels)
    large = compare(
        write(runs["a100"], [row("a", **times(100, 1))]),
        write(runs["b100"], [row("b", **times(100, 1.25))]),
        Thresholds(),
    )
    assert [verdict_of(large, m) for m in labels] == ["regression"] * len(labels)

    assert cli.main(["compare", str(runs["a"]), str(runs["b"])]) == 0
    out = capsys.readouterr().out
    assert "no regression" in out and f"time floor {MIN_TIME_DELTA_S * 1e3:g} ms" in out
    assert cli.main(["compare", str(runs["a"]), str(runs["b"]), "--min-time-delta", "0"]) == 1
    capsys.readouterr()
    with pytest.raises(SystemExit) as bad:
        cli.main(["compare", str(runs["a"]), str(runs["b"]), "--min-time-delta", "-0.01"])
    assert bad.value.code == 2 and "--min-time-delta: must be >= 0, got -0.01" in capsys.readouterr().err


def test_a_row_failed_in_both_runs_is_still_failing_not_a_regression_and_still_exits_1(tmp_path: Path, capsys):
    """QA, 2026-12-06: a failed row in A and again in B said "1 regression(s)". B failing where A failed
    too is not a regression B brought, but a guard must not pass on it: "still failing", exit 1. Failing in B
    alone stays a regression."""
    a, again = tmp_path / "a", tmp_path / "again"
    write(a, [row("a", train_s=1.0), row("a", backend="keras", status="failed", error="boom")])
    write(again, [row("again", train_s=1.0), row("again", backend="keras", status="failed", error="boom")])
    result = compare(load_run(a, tmp_path)[0], load_run(again, tmp_path)[0], Thresholds())
    status = result[result.metric == "status"].iloc[0]
    got = status[["backend", "a", "b", "verdict", "regression"]].tolist()
    assert got == ["keras", "failed", "failed", STILL_FAILING, False]
    assert cli.main(["compare", str(a), str(again)]) == 1
    out = capsys.readouterr().out
    assert "| still failing" in out and "REGRESSION" not in out
    assert "no regression, 1 row(s) still failing, as in A" in out
    b = tmp_path / "b"
    write(b, [row("b", train_s=1.0, backend="keras"), row("b", status="failed", error="boom")])
    assert cli.main(["compare", str(a), str(b)]) == 1  # torch: newly failing; keras: fixed
    out = capsys.readouterr().out
    assert "1 regression(s) beyond the thresholds" in out and "still failing" not in out


def test_a_regression_with_no_interval_on_a_side_says_it_was_judged_by_its_threshold_alone(tmp_path: Path, clean_env):
    """QA, 2026-12-06: two runs of one small task a minute apart on the loaded 2-core VM, one repeat each, gave five
    "REGRESSION"s (training time, steady epoch, first step, inference: no interval) beside a headline the test
    found no difference in, and exit 1, the table not saying which had been tested. They are still regressions
    (the documented rule), now marked, and the last line says how many and what tests them; with repeats the
    same slowdown is tested, and nothing is marked."""
    a = write(tmp_path / "a", [row("a", train_s=10.0, epoch_s_median=1.0)])
    b = write(tmp_path / "b", [row("b", train_s=13.0, epoch_s_median=1.3)])
    shown = render(compare(a, b, Thresholds()))
    assert shown.count("REGRESSION (threshold alone)") == 2, shown
    proc = run_cli(["compare", str(tmp_path / "a"), str(tmp_path / "b")], clean_env)
    assert proc.returncode == 1
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("2 regression(s)") and "2 of them by the threshold alone" in last, last
    assert "--repeats 3" in last
    tested = run_cli(
        ["compare", str(make_run(tmp_path / "ra")), str(make_run(tmp_path / "rb", slow=1.3))], clean_env
    ).stdout
    assert "REGRESSION" in tested and "threshold alone" not in tested


def test_runs_that_share_no_task_are_refused_in_one_line_not_all_regressions(tmp_path: Path, capsys):
    """QA: the sigmoid LeNet run compared with the ReLU one flagged every row of A "missing" from B, a REGRESSION
    each, exit 1. With no (task, backend) row in both there is nothing to compare: one line naming each run's
    tasks, exit 2. Where some are shared, a task only in A stays a regression, and the output says which tasks
    only one run has."""

    def of(task: str, backend: str = "torch", **fields) -> dict:
        return {**row("r", backend, **fields), "task": task}

    relu = [of("mnist-lenet5", train_s=1.0), of("mnist-lenet5", "keras", train_s=2.0)]
    sigmoid = [of("mnist-lenet5-sigmoid", train_s=1.0)]
    a, b = tmp_path / "a", tmp_path / "b"
    write(a, relu)
    write(b, sigmoid)
    assert cli.main(["compare", str(a), str(b)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"error: {a} and {b}: the runs share no task to compare"), err
    assert "A has mnist-lenet5 (torch, keras); B has mnist-lenet5-sigmoid (torch)" in err
    other_backend = tmp_path / "keras-only"
    write(other_backend, [of("mnist-lenet5-sigmoid", "keras", train_s=1.0)])
    assert cli.main(["compare", str(b), str(other_backend)]) == 2  # the same task, no backend in common
    assert "A has mnist-lenet5-sigmoid (torch); B has mnist-lenet5-sigmoid (keras)" in capsys.readouterr().err
    both = tmp_path / "both"
    write(both, [of("mnist-lenet5", train_s=1.0), of("cifar10-cnn", train_s=1.0)])
    assert cli.main(["compare", str(a), str(both)]) == 1  # keras's mnist-lenet5 row is missing from B: as before
    out = capsys.readouterr().out
    assert "Only in B, new (not judged): cifar10-cnn (torch)" in out and "Only in A" not in out
    assert "1 regression(s)" in out
    # the same task and backend in another profile (QA, 2026-12-07: a quick run against a full one read the quick row
    # "missing", a REGRESSION, exit 1): nothing to compare either, and the line says what differs
    full = tmp_path / "full"
    write(full, [{**of("mnist-lenet5", train_s=9.0), "profile": "full"}])
    assert cli.main(["compare", str(a), str(full)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == (
        f"error: {a} and {full}: the runs share no row of one model and profile to compare (mnist-lenet5 / torch: "
        "the quick profile in A, the full in B)\n"
    ), err
    assert cli.main(["compare", str(both), str(a)]) == 1  # cifar10-cnn missing from B: a regression, as before
    out = capsys.readouterr().out
    assert "Only in A, missing from B (a regression each): cifar10-cnn (torch)" in out and "Only in B" not in out


def test_compare_divides_by_the_plans_reference_where_they_agree_and_says_which_where_they_differ(
    tmp_path: Path, clean_env
):
    """compare took the default rule over both runs, not the plans' --reference (each run's summary.md's): two
    `--reference keras` runs were shown against torch. Both plans naming one: that one; differing: the default,
    said in one line; --reference still chooses."""
    import json

    a, b = make_run(tmp_path / "a"), make_run(tmp_path / "b", slow=1.3)
    for run in (a, b):
        (run / "plan.json").write_text(json.dumps({"options": {"reference": "keras"}}))
    agree = run_cli(["compare", str(a), str(b)], clean_env)
    assert "Backends against keras" in agree.stdout and "| torch/keras |" in agree.stdout, agree.stdout
    assert "note:" not in agree.stdout
    (b / "plan.json").write_text(json.dumps({"options": {}}))
    differ = run_cli(["compare", str(a), str(b)], clean_env)
    notes = [line for line in differ.stdout.splitlines() if line.startswith("note:")]
    assert notes == [
        "note: A's plan --reference keras, B's plan no --reference: ratios against torch, the default over both "
        "runs (choose with --reference)"
    ], differ.stdout
    assert "Backends against torch" in differ.stdout and "| keras/torch |" in differ.stdout
    named = run_cli(["compare", str(a), str(b), "--reference", "keras"], clean_env)
    assert "Backends against keras" in named.stdout and "note:" not in named.stdout


def test_each_figure_is_shown_in_its_registry_format_as_the_side_by_side_table_shows_it(tmp_path: Path):
    """QA, 2026-12-06: compare's a/b columns read MFU 0.4683 where the results table read 46.83%, and "1,389"
    beside "173.57". Each compared figure's a, b and delta now take its entry's format (``Metric.fmt``): an a cell
    is the side-by-side table's cell of the same run (the headline without its interval)."""
    values = {"train_s": 173.574, "epoch_s_median": 0.81234, "throughput_img_s": 1389.2, "steady_img_s": 12345.67}
    values |= {"mfu": 0.468312, "first_step_s": 0.12345, "eval_img_s": 5432.1, "test_acc": 0.91234}
    values |= {"test_macro_f1": 0.90123, "peak_host_mb": 812.4, "peak_device_mb": 1500.0}
    runs = []
    for name, scale in (("a", 1.0), ("b", 1.02)):
        (tmp_path / name).mkdir()
        row = {c: v * scale for c, v in values.items()}
        append_record(tmp_path / name, new_record(run_id=name, task="t", backend="torch", repeat=0, status="ok", **row))
        runs.append(load_run(tmp_path / name, tmp_path)[0])
    result = compare(*runs, Thresholds())
    assert set(result.metric) == {m.words for m in METRICS}
    cells = {
        parts[5]: (parts[6], parts[7], parts[8])
        for line in render(result).splitlines()[2:]
        if len(parts := [c.strip() for c in line.split("|")]) > 8
    }
    table = tables.side_by_side(runs[0], "t", formatted=True).set_index("metric")
    for m in METRICS:
        a, b, delta = cells[m.words]
        assert a == table.loc[m.words, "torch"].split(" ± ")[0] == format(values[m.column], m.fmt or ""), m.words
        assert b == format(values[m.column] * 1.02, m.fmt or "") and delta == format(
            values[m.column] * 1.02 - values[m.column], m.fmt or ""
        )
    assert cells["MFU"][0] == "46.83%"


def test_a_macro_f1_drop_is_judged_as_an_accuracy_drop_is_and_not_where_the_epochs_differ(tmp_path: Path):
    """QA, 2026-12-06: test macro-F1 was recorded but not compared. It is now a row after test accuracy, judged by the
    same absolute threshold (--max-acc-drop), and, read off the same predictions, moves with the epochs and images
    per epoch as accuracy does: shown, not judged, where those differ."""

    def run(name: str, f1: float, epochs: int = 8) -> pd.DataFrame:
        (tmp_path / name).mkdir()
        row = dict(test_acc=0.9, test_macro_f1=f1, peak_host_mb=800.0, epochs=epochs, n_train=1000)
        append_record(tmp_path / name, new_record(run_id=name, task="t", backend="torch", repeat=0, status="ok", **row))
        return load_run(tmp_path / name, tmp_path)[0]

    a = run("a", 0.88)
    dropped = compare(a, run("b", 0.85), Thresholds(max_acc_drop=0.02))
    assert list(dropped.metric) == ["test accuracy", "test macro-F1", WORDS["peak_host_mb"]]
    assert list(dropped[dropped.regression].metric) == ["test macro-F1"]
    assert not compare(a, run("c", 0.86), Thresholds(max_acc_drop=0.02)).regression.any()  # at the threshold
    fewer = compare(a, run("d", 0.5, epochs=4), Thresholds(max_acc_drop=0.02)).set_index("metric")
    assert fewer.loc["test macro-F1", "verdict"] == "recipe differs" and not fewer.regression.any()


def test_two_layer_lists_of_one_task_name_are_another_recipe_not_a_regression(tmp_path: Path):
    """QA, 2026-12-06: a task's own layer list recorded model_options "{}", so a list of conv 32/64 filters compared
    with the same task name's conv 6/16 (4x the weights, 7.8x the training time) read as 12 REGRESSIONs, and the
    history kept both in one series. The list is in model_options now: a recipe row, nothing judged, another hash."""
    from bench.core.recipe import recipe_of
    from bench.core.spec import parse_task
    from bench.run.runner import base_record

    def task(filters: tuple[int, int]):
        layers = [
            {"conv": filters[0], "kernel": 5, "padding": 2, "activation": "relu"},
            {"pool": "avg", "size": 2},
            {"conv": filters[1], "kernel": 5, "activation": "relu"},
            {"flatten": True},
        ]
        data = {
            "name": "my-cnn",
            "dataset": {"name": "mnist"},
            "model": {"layers": layers},
            "train": {"epochs": 2, "batch_size": 32, "lr": 0.01},
        }
        return parse_task(data, "my-cnn.toml")

    small, wide = base_record("a", task((6, 16)), "torch", 0, 0), base_record("b", task((32, 64)), "torch", 0, 0)
    assert small["model"] == wide["model"] == "layers" and small["model_options"] != wide["model_options"]
    assert '"conv": 32' in wide["model_options"] and recipe_of(small) != recipe_of(wide)
    records = {}
    for name, rec, epoch_s in (("a", small, 1.0), ("b", wide, 7.8)):
        path = tmp_path / name
        path.mkdir()
        timed = {"status": "ok", "train_s": 2 * epoch_s, "epoch_s_median": epoch_s, "test_acc": 0.95}
        append_record(path, {**rec, **timed})
        records[name] = load_run(path, tmp_path)[0]
    result = compare(records["a"], records["b"], Thresholds())
    assert not result.regression.any() and (result.verdict == "recipe differs").all()
    assert '"conv": 32' in result[result.metric == "recipe"].b.iloc[0]


def test_an_interrupted_run_compares_the_rows_that_landed_and_says_it_stopped(tmp_path: Path, clean_env):
    """B stopped by Ctrl-C (state.json "interrupted", the row then running recorded "interrupted", the rest never
    run: the runner's own format, tests/test_resume.py makes one for real): each key it never measured was "missing",
    a REGRESSION, with no word of the state. Its landed rows are compared; the others are "not run", not judged; a
    line says how to finish it, and a guard still does not pass on it (exit 1)."""
    a = make_run(tmp_path / "a")
    append_record(a, new_record(run_id="a", task="other", backend="torch", repeat=0, status="ok", train_s=1.0))
    b = make_run(tmp_path / "b", keras_status="interrupted")
    state = {"planned": 9, "state": "interrupted", "command": "run", "recorded": 3, "wall_s": 12.0}
    (b / "state.json").write_text(json.dumps(state))
    result = compare(load_run(a, tmp_path)[0], load_run(b, tmp_path)[0], Thresholds(), b_state="interrupted")
    status = result[result.metric == "status"].set_index("task")
    assert status.loc["mnist-lenet5", "verdict"] == "not run" and status.loc["other", "verdict"] == "not run"
    assert status.loc["mnist-lenet5", "b"] == "interrupted (interrupted)" and not result.regression.any()
    assert set(result[result.metric != "status"].backend) == {"torch"}  # the landed rows: compared
    proc = run_cli(["compare", str(a), str(b)], clean_env)
    assert proc.returncode == 1 and "REGRESSION" not in proc.stdout, proc.stdout
    lines = proc.stdout.splitlines()
    assert "threads differs" not in proc.stdout  # A's row of "other" holds no threads: its column is floats
    assert "Only in A, not run in B (B is interrupted: not judged): other (torch)" in lines
    assert (
        f"warning: B is interrupted, 3 of 9 planned rows recorded; finish it with: python -m bench run --resume {b}"
        in lines
    )
    assert lines[-1].startswith("no regression, B is interrupted: only the rows that landed are compared, 2 not run")
    (b / "state.json").write_text(json.dumps({**state, "state": "complete"}))  # the same rows in a finished run
    proc = run_cli(["compare", str(a), str(b)], clean_env)
    assert proc.returncode == 1 and proc.stdout.count("REGRESSION") == 2 and "not run" not in proc.stdout
    # an interrupted baseline is said; its rows are what they are (a row B has and it lacks is new, not judged)
    early = make_run(tmp_path / "early", keras_status="interrupted")
    (early / "state.json").write_text(json.dumps(state))
    proc = run_cli(["compare", str(early), str(make_run(tmp_path / "c"))], clean_env)
    assert proc.returncode == 0 and "warning: A is interrupted, 3 of 9 planned rows recorded" in proc.stdout


def test_rows_b_has_no_ok_one_of_are_said_with_their_errors_and_a_task_lost_in_a_and_absent_in_b_is_not_judged(
    tmp_path: Path, clean_env
):
    """QA, 2026-12-06: a task A had whose rows all ended without a result in B read as a bare "failed" or "timeout"
    REGRESSION per backend, never why; and a task whose every row A lost with its worker, node or job, absent from
    a B that planned it, read "missing from B (a regression each)" and a REGRESSION, exit 1, with nothing measured
    on either side. Now each key of B without an ok row gets a line under the table with its rows' statuses and
    errors (a lost row as "lost"), and the lost-in-A task is no baseline, not judged, said as such."""

    def task_row(run: str, task: str, backend: str, status: str = "ok", **fields) -> dict:
        return new_record(
            run_id=run,
            task=task,
            backend=backend,
            repeat=fields.pop("repeat", 0),
            model="m",
            profile="quick",
            status=status,
            **({"train_s": 1.0, "test_acc": 0.9} if status == "ok" else {}),
            **fields,
        )

    a, b = tmp_path / "a", tmp_path / "b"
    write(a, [task_row("a", t, be) for t in ("kept", "gone") for be in ("torch", "keras")])
    oom = "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n(more lines of the message)"
    write(
        b,
        [
            task_row("b", "kept", "torch"),
            task_row("b", "kept", "keras"),
            task_row("b", "gone", "torch", "failed", error=oom),
            task_row("b", "gone", "torch", "timeout", repeat=1, error="stopped after the per-run limit of 60 s"),
            no_result(task_row("b", "gone", "keras", "failed"), lost="the Ray worker died"),
        ],
    )
    proc = run_cli(["compare", str(a), str(b)], clean_env)
    lines = proc.stdout.splitlines()
    assert proc.returncode == 1 and "missing" not in proc.stdout, proc.stdout
    at = lines.index("Keys of B without an ok row, and why (as B recorded its rows):")
    assert lines[at + 1 : at + 3] == [
        "- gone (torch): failed: OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB; "
        "timeout: stopped after the per-run limit of 60 s",
        "- gone (keras): lost: no result: the Ray worker died",
    ]
    assert lines[at + 3] == ""
    long = tmp_path / "long"
    write(long, [task_row("l", "kept", "torch"), task_row("l", "gone", "torch", "failed", error="x" * 500)])
    result = compare(load_run(a, tmp_path)[0], load_run(long, tmp_path)[0], Thresholds())
    (said,) = [line for line in unmeasured_lines(load_run(long, tmp_path)[0], result) if line.startswith("- ")]
    assert said == f"- gone (torch): failed: {'x' * 157}..."
    # A lost every row of a task, B (which planned it) has none: nothing measured on either side, not judged
    lost_a, empty_b = tmp_path / "lost-a", tmp_path / "empty-b"
    write(lost_a, [task_row("la", "kept", "torch"), no_result(task_row("la", "gone", "torch"), lost="node lost")])
    write(empty_b, [task_row("eb", "kept", "torch")])
    plan = {"tasks": [{"name": "kept"}, {"name": "gone"}], "options": {"backends": ["torch"]}}
    (empty_b / "plan.json").write_text(json.dumps(plan))
    result = compare(
        load_run(lost_a, tmp_path)[0],
        load_run(empty_b, tmp_path)[0],
        Thresholds(),
        planned_b=run_planned(empty_b, tmp_path),
    )
    status = result[result.metric == "status"].iloc[0]
    assert status[["task", "a", "b", "verdict", "regression"]].tolist() == [
        "gone",
        "lost",
        "missing",
        NO_BASELINE,
        False,
    ]
    proc = run_cli(["compare", str(lost_a), str(empty_b)], clean_env)
    assert proc.returncode == 0 and "REGRESSION" not in proc.stdout and "missing from B" not in proc.stdout
    assert (
        "Only in A, where its rows were lost with their worker, node or job (no baseline), and without a row in B "
        "(not judged): gone (torch)"
    ) in proc.stdout.splitlines()


def test_a_row_lost_with_its_worker_is_not_run_in_b_and_no_baseline_in_a(tmp_path: Path, clean_env):
    """A row lost with its worker, node or job (record ``lost: true``, as the executors write it) is no failure of the
    code compared, and `--resume` runs it again. Until 2026-12-06 compare read it as failed: a REGRESSION in B, and
    "still failing" against a failed B. Lost in B: "not run (lost)", the --resume line in a warning, exit 1 as for
    an interrupted B; lost in A: "no baseline", B's row judged as a row new in B (a failure of B's own is still a
    regression). A key with a repeat that failed by itself is a failure, lost repeats beside it or not."""
    lost = "WorkerCrashedError: the worker died"
    a = tmp_path / "a"
    write(a, [row("a", train_s=1.0), row("a", backend="keras", train_s=1.0)])
    b = tmp_path / "b"
    write(b, [row("b", train_s=1.0), no_result(row("b", backend="keras"), lost=lost)])
    (b / "state.json").write_text(json.dumps({"planned": 2, "state": "complete", "command": "run", "recorded": 2}))
    result = compare(load_run(a, tmp_path)[0], load_run(b, tmp_path)[0], Thresholds())
    status = result[result.metric == "status"].iloc[0]
    got = status[["backend", "a", "b", "verdict", "regression"]].tolist()
    assert got == ["keras", "ok", "lost", NOT_RUN_LOST, False]
    proc = run_cli(["compare", str(a), str(b)], clean_env)
    lines = proc.stdout.splitlines()
    assert proc.returncode == 1 and "REGRESSION" not in proc.stdout, proc.stdout
    assert f"not by a failure of its own: `python -m bench run --resume {b}` runs it again" in lines[-2]
    assert lines[-2].startswith("warning: B: 1 row was lost with its worker, node or job")
    assert lines[-1].startswith("no regression, 1 row(s) of B lost with their worker, node or job: not run")
    # lost in A: no baseline; B's ok row is fine (exit 0), B's own failure is a regression, not "still failing"
    back = run_cli(["compare", str(b), str(a)], clean_env)
    assert back.returncode == 0 and "| no baseline (lost in A)" in back.stdout, back.stdout
    assert "warning: A: 1 row was lost" in back.stdout and "a lost row is no baseline" in back.stdout
    failed = tmp_path / "failed"
    write(failed, [row("f", train_s=1.0), row("f", backend="keras", status="failed", error="boom")])
    result = compare(load_run(b, tmp_path)[0], load_run(failed, tmp_path)[0], Thresholds())
    status = result[result.metric == "status"].iloc[0]
    assert status[["a", "b", "regression"]].tolist() == ["lost", "failed", True] and pd.isna(status.verdict)
    assert cli.main(["compare", str(b), str(failed)]) == 1
    # lost on both sides: not run; a key with ok repeats beside a lost one is compared on them, and still exit 1
    assert verdict_of(compare(*(load_run(b, tmp_path)[0],) * 2, Thresholds()), "status") == NOT_RUN_LOST
    mixed = tmp_path / "mixed"
    keras = [row("m", backend="keras", train_s=1.0), no_result(row("m", backend="keras", repeat=1), lost=lost)]
    write(mixed, [row("m", train_s=1.0), *keras])
    result = compare(load_run(a, tmp_path)[0], load_run(mixed, tmp_path)[0], Thresholds())
    assert "status" not in set(result.metric) and not result.regression.any()
    proc = run_cli(["compare", str(a), str(mixed)], clean_env)
    assert proc.returncode == 1 and "1 row(s) of B lost with their worker, node or job: not run" in proc.stdout
    own = tmp_path / "own"  # a repeat that failed by itself: the code's failure, whatever was lost beside it
    write(own, [row("o", train_s=1.0), {**keras[1], "repeat": 0, "lost": None, "error": "boom"}, keras[1]])
    result = compare(load_run(a, tmp_path)[0], load_run(own, tmp_path)[0], Thresholds())
    assert result[result.metric == "status"].regression.tolist() == [True]


def test_runs_on_other_machines_show_their_speed_figures_unjudged_and_still_judge_accuracy(tmp_path: Path, clean_env):
    """QA, 2026-12-06: the Intel Xeon reference run against a run of the same code on the AMD EPYC VM read every
    time and throughput figure a "REGRESSION (threshold alone)", exit 1, the machines named only in a warning under
    the table. Another CPU (or core count, GPU) moves every speed figure: they are shown as "machine differs" and not
    judged, the last line says so; accuracy is still judged, and on one machine the same slowdown still fails."""
    amd = {**ENV, "cpu": "AMD EPYC"}
    a, slow = make_run(tmp_path / "a"), make_run(tmp_path / "b", slow=1.3, env=amd)
    frames = [load_run(p, tmp_path)[0] for p in (a, slow)]
    assert machine_differences(ENV, amd, *frames) == ["cpu differs: 'Xeon' vs 'AMD EPYC'"]
    assert machine_differences(ENV, {**ENV, "python": "3.12.1"}, *frames) == []  # not another machine
    # usable_cores where both recorded it: a run from before it (none) on the same machine is not another machine
    assert machine_differences({**ENV, "usable_cores": 2}, {**ENV, "usable_cores": 1}, *frames) == [
        "usable_cores differs: 2 vs 1"
    ]
    assert machine_differences(ENV, {**ENV, "usable_cores": 2}, *frames) == []
    # a run held to fewer cores records them, an unheld one nothing (bench.run.environment.restricted_cores): QA,
    # 2026-12-07, a `taskset -c 0` run against an unheld one of 2 cores was judged on every speed figure, exit 1
    assert machine_differences(ENV, {**ENV, "usable_cores": 1}, *frames) == ["usable_cores differs: 2 vs 1"]
    assert machine_differences({**ENV, "usable_cores": 1}, ENV, *frames) == ["usable_cores differs: 1 vs 2"]
    held = make_run(tmp_path / "held", slow=1.3, env={**ENV, "usable_cores": 1})
    proc = run_cli(["compare", str(a), str(held)], clean_env)
    assert proc.returncode == 0 and "no regression, 8 speed figure(s) not judged: the machines differ" in proc.stdout
    assert "warning: the runs differ: usable_cores differs: 2 vs 1" in proc.stdout, proc.stdout
    result = compare(*frames, Thresholds(), other_machine=True)
    assert not result.regression.any()
    speed = {"training time (s)", EPOCH, "steady throughput (img/s)", "inference (img/s)"}
    assert set(result[result.verdict == MACHINE_DIFFERS].metric) == speed
    proc = run_cli(["compare", str(a), str(slow)], clean_env)
    last = proc.stdout.strip().splitlines()[-1]
    assert proc.returncode == 0 and last.startswith("no regression, 8 speed figure(s) not judged: the machines differ")
    assert "machine differs" in proc.stdout and "warning: the runs differ: cpu differs" in proc.stdout
    dropped = make_run(tmp_path / "c", slow=1.3, acc_drop=0.05, env=amd)  # accuracy: judged across machines too
    proc = run_cli(["compare", str(a), str(dropped)], clean_env)
    assert proc.returncode == 1 and "1 regression(s)" in proc.stdout, proc.stdout
    same = run_cli(["compare", str(a), str(make_run(tmp_path / "d", slow=1.3))], clean_env)
    assert same.returncode == 1 and "machine differs" not in same.stdout


def test_a_task_b_never_planned_is_not_run_in_b_not_a_regression(tmp_path: Path, clean_env):
    """QA, 2026-12-06: a student's run of two of the reference run's four tasks compared with it read a REGRESSION
    for each (task, backend) of the two it was never asked to run, exit 1. A task B's plan.json does not name is
    "not run in B" and not judged; one it names and has no row of (interrupted, lost) is still a regression, and so
    is any missing row of a run without a plan."""
    a = tmp_path / "a"
    write(a, [{**row("a", backend=b_, train_s=1.0), "task": t} for t in ("t", "u") for b_ in ("torch", "keras")])
    b = tmp_path / "b"
    write(b, [{**row("b", backend=b_, train_s=1.0), "task": "t"} for b_ in ("torch", "keras")])
    plan = {"tasks": [{"name": "t"}], "options": {"backends": ["torch", "keras"]}}
    assert cli.main(["compare", str(a), str(b)]) == 1  # no plan: missing rows are regressions, as before
    (b / "plan.json").write_text(json.dumps(plan))
    assert run_planned(b, tmp_path) == {("t", "torch"), ("t", "keras")}
    proc = run_cli(["compare", str(a), str(b)], clean_env)
    assert proc.returncode == 0 and proc.stdout.count("not run in B") == 3, proc.stdout
    assert "Only in A, not run in B (B's plan did not name them; not judged): u (torch, keras)" in proc.stdout
    (b / "plan.json").write_text(json.dumps({**plan, "tasks": [{"name": "t"}, {"name": "u"}]}))
    proc = run_cli(["compare", str(a), str(b)], clean_env)  # planned and not recorded: lost, a regression each
    assert proc.returncode == 1 and "Only in A, missing from B (a regression each): u (torch, keras)" in proc.stdout


def test_a_p_value_below_the_bootstraps_resolution_reads_as_a_bound_not_zero():
    """A one-process side's p is twice the share of 2,000 resampled ratios across 1: none across is p < 0.001, which
    the table printed as "0" (QA, 2026-12-07)."""
    from bench.report.compare import _p_value

    assert _p_value(0.0) == "< 0.001" and _p_value(0.0312) == "0.0312" and _p_value(None) == "-"
    assert _p_value(float("nan")) == "-" and _p_value(1.0) == "1"


def test_a_row_b_s_budget_left_out_is_not_run_in_b_not_a_regression_and_a_failed_one_still_is(tmp_path: Path, capsys):
    """`bench all --budget` leaves out the tasks that no longer fit (a skipped row saying why, bench.run.budget_cli):
    B ran out of time, the code did nothing wrong. Until 2026-12-07 such a row was a REGRESSION, exit 1, with its
    reason printed under the table. It is "not run in B (budget)", and alone exits 0; a failed or timed-out row beside
    it is still a regression, and a row skipped for another reason (a framework not installed) is judged as before."""
    left = f"{LEFT_OUT_BY_BUDGET} 5m 0s: its rows need ~2m at their fewest epochs; run with --budget 400s"
    a, b = tmp_path / "a", tmp_path / "b"
    write(a, [row("a", train_s=1.0), row("a", backend="keras", train_s=1.0)])
    write(b, [row("b", train_s=1.0), row("b", backend="keras", status="skipped", error=left)])
    result = compare(load_run(a, tmp_path)[0], load_run(b, tmp_path)[0], Thresholds())
    status = result[result.metric == "status"]
    assert status[["backend", "a", "b", "verdict", "regression"]].values.tolist() == [
        ["keras", "ok", "skipped", NOT_RUN_BUDGET, False]
    ]
    assert cli.main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "| not run in B (budget)" in out and "REGRESSION" not in out
    assert f"- t (keras): skipped: {left[:80]}" in out  # why, as B recorded it
    assert (
        out.strip()
        .splitlines()[-1]
        .startswith("no regression, 1 row(s) not run in B: its budget left them out (not judged)")
    )
    failed = tmp_path / "failed"  # the torch row failed beside it: that one is still B's regression
    write(
        failed,
        [
            row("f", status="timeout", error="stopped after 600 s"),
            row("f", backend="keras", status="skipped", error=left),
        ],
    )
    result = compare(load_run(a, tmp_path)[0], load_run(failed, tmp_path)[0], Thresholds())
    status = result[result.metric == "status"].fillna({"verdict": ""})
    assert status[["backend", "verdict", "regression"]].values.tolist() == [
        ["torch", "", True],
        ["keras", NOT_RUN_BUDGET, False],
    ]
    assert cli.main(["compare", str(a), str(failed)]) == 1
    assert "1 regression(s) beyond the thresholds, 1 row(s) not run in B" in capsys.readouterr().out
    absent = tmp_path / "absent"  # skipped, but not by the budget: B could not run it at all, as before
    write(absent, [row("n", train_s=1.0), row("n", backend="keras", status="skipped", error="not installed: keras")])
    assert pd.isna(verdict_of(compare(load_run(a, tmp_path)[0], load_run(absent, tmp_path)[0], Thresholds()), "status"))
    assert cli.main(["compare", str(a), str(absent)]) == 1


def test_a_row_new_in_b_that_b_skipped_is_not_run_in_b_and_a_new_row_that_failed_is_still_a_regression(
    tmp_path: Path, capsys
):
    """A key A has no row of (or lost every row of) and B skipped for a reason other than its budget (a framework not
    installed) was never run in B, and there was nothing of it to lose: until 2026-12-07 it was a REGRESSION, exit 1.
    It is "not run in B (skipped)" with B's reason under the table, exit 0 alone; a new key that failed in B is
    still a regression, and one A ran ok and B skipped is still one too."""
    why = "not installed: keras"
    a, b = tmp_path / "a", tmp_path / "b"
    write(a, [row("a", train_s=1.0)])
    write(
        b, [row("b", train_s=1.0), *(row("b", backend="keras", repeat=r, status="skipped", error=why) for r in (0, 1))]
    )
    result = compare(load_run(a, tmp_path)[0], load_run(b, tmp_path)[0], Thresholds())
    assert result[result.metric == "status"][["backend", "a", "b", "verdict", "regression"]].values.tolist() == [
        ["keras", "missing (new in B)", "skipped", NOT_RUN_SKIPPED, False]
    ]
    assert cli.main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "| not run in B (skipped)" in out and "REGRESSION" not in out
    assert f"- t (keras): skipped: {why}" in out  # the reason, as B recorded it
    assert (
        out.strip()
        .splitlines()[-1]
        .startswith("no regression, 1 row(s) new in B that B skipped (not judged; why under the table)")
    )
    failed = tmp_path / "failed"  # new in B and failed there: the code's failure, a regression as before
    write(failed, [row("f", train_s=1.0), row("f", backend="keras", status="failed", error="boom")])
    result = compare(load_run(a, tmp_path)[0], load_run(failed, tmp_path)[0], Thresholds())
    status = result[result.metric == "status"]
    assert status[["a", "b", "regression"]].values.tolist() == [["missing (new in B)", "failed", True]]
    assert pd.isna(status.verdict.iloc[0]) and cli.main(["compare", str(a), str(failed)]) == 1
    capsys.readouterr()
    lost = tmp_path / "lost"  # every row of A lost: no baseline, so B's skipped row is judged as a new one is
    write(lost, [row("l", train_s=1.0), no_result(row("l", backend="keras"), lost="WorkerCrashedError: died")])
    assert verdict_of(compare(load_run(lost, tmp_path)[0], load_run(b, tmp_path)[0], Thresholds()), "status") == (
        NOT_RUN_SKIPPED
    )
    ran = tmp_path / "ran"  # A ran it ok and B skipped it: B lost what A could run, a regression as before
    write(ran, [row("r", train_s=1.0), row("r", backend="keras", train_s=1.0)])
    result = compare(load_run(ran, tmp_path)[0], load_run(b, tmp_path)[0], Thresholds())
    assert result[result.metric == "status"][["a", "b", "regression"]].values.tolist() == [["ok", "skipped", True]]
    assert cli.main(["compare", str(ran), str(b)]) == 1


def test_a_row_that_failed_one_repeat_of_three_says_so_and_regresses_where_a_had_every_repeat_ok(
    tmp_path: Path, capsys
):
    """A flaky row in B (repeats 0 and 2 ok, 1 failed) had an ok row, so compare judged its figures and never said
    the failure: exit 0 (until 2026-12-07). Its figures are still the ok repeats' medians; a ``repeats`` row says
    "1 of 3 repeats failed", a regression where A's repeats all worked, "still failing" where A's failed too (exit
    1 both ways), said and not judged where only A's did; the lines under the table give the failed repeat's error."""
    a = tmp_path / "a"
    write(a, [row("a", backend="keras", repeat=r, train_s=1.0 + r / 100) for r in range(3)])
    b = tmp_path / "b"
    flaky = [row("b", backend="keras", train_s=1.0), row("b", backend="keras", repeat=1, status="failed", error="boom")]
    write(b, [*flaky, row("b", backend="keras", repeat=2, train_s=1.04)])
    result = compare(load_run(a, tmp_path)[0], load_run(b, tmp_path)[0], Thresholds())
    said = result[result.metric == "repeats"][["a", "b", "regression"]].values.tolist()
    assert said == [["ok", "1 of 3 repeats failed", True]]
    (train,) = result[result.metric == "training time (s)"][["a", "b"]].values.tolist()
    assert train == pytest.approx([1.01, 1.02])  # the medians of the ok repeats, the failed one not among them
    assert cli.main(["compare", str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert "| repeats " in out and "1 regression(s) beyond the thresholds" in out
    assert "- t (keras): 1 of 3 repeats failed: failed: boom" in out
    again = tmp_path / "again"
    write(again, [{**r, "run_id": "again"} for r in [*flaky, row("b", backend="keras", repeat=2, train_s=1.04)]])
    assert cli.main(["compare", str(b), str(again)]) == 1  # flaky in both: still failing
    assert "1 row(s) still failing, as in A" in capsys.readouterr().out
    assert cli.main(["compare", str(b), str(a)]) == 0  # fixed in B: said, not judged
    out = capsys.readouterr().out
    assert "| 1 of 3 repeats failed | ok " in out and "no regression" in out


def test_one_value_inside_the_other_runs_spread_over_seeds_is_inconclusive_not_a_regression(tmp_path: Path, capsys):
    """QA, 2026-12-07: A with --repeats 3 (Keras, seeds 0, 1, 2: 88.45 / 92.65 / 91.30%) against B's one row, seed 0
    (88.45%, A's seed 0 to the digit), read "test accuracy 0.9130 -> 0.8845 REGRESSION (threshold alone)", exit 1:
    A's spread over seeds was there and not read. One value against the other side's repeats is tested as one more
    draw of them (Student's t, its p shown), either way round; a value far outside their spread still regresses."""
    accs = (0.8845, 0.9265, 0.9130)
    a = write(tmp_path / "a", [row("a", backend="keras", repeat=r, seed=r, test_acc=v) for r, v in enumerate(accs)])
    b = write(tmp_path / "b", [row("b", backend="keras", seed=0, test_acc=0.8845)])
    result = compare(a, b, Thresholds())
    acc = result[result.metric == "test accuracy"].iloc[0]
    assert (acc.a, acc.b) == (0.9130, 0.8845) and acc.verdict == "inconclusive" and not acc.regression
    assert 0.05 < acc.p_value < 1 and acc.threshold_alone is not True
    assert cli.main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "REGRESSION" not in out and "1 inconclusive change(s)" in out.splitlines()[-1]
    # the other way round: B's three seeds against A's one value (A's seed 1), 1.35 points above B's median
    high = write(tmp_path / "high", [row("h", backend="keras", seed=1, test_acc=0.9265)])
    assert verdict_of(compare(high, a, Thresholds()), "test accuracy") == "inconclusive"
    # far outside the spread the seeds showed: a regression, tested (not by the threshold alone)
    low = write(tmp_path / "low", [row("l", backend="keras", seed=0, test_acc=0.60)])
    (acc,) = compare(a, low, Thresholds()).query("metric == 'test accuracy'").itertuples()
    assert acc.verdict == "regression" and acc.p_value < 0.05 and acc.threshold_alone is not True
    # one value a side has no spread to read: judged by the threshold alone, as before
    one = write(tmp_path / "one", [row("o", backend="keras", seed=0, test_acc=0.9265)])
    (acc,) = compare(one, b, Thresholds()).query("metric == 'test accuracy'").itertuples()
    assert acc.verdict == "regression" and acc.threshold_alone is True


def test_a_row_interrupted_in_a_is_no_baseline_and_its_failure_in_b_a_new_one_not_still_failing(tmp_path: Path, capsys):
    """QA, 2026-12-07: A's Keras row was interrupted (Ctrl-C), B's timed out: "status | interrupted | timeout | still
    failing" and "no regression, 1 row(s) still failing, as in A", though A never failed. An interrupted row of A
    measured nothing, as a lost one: no baseline, and B's failure is a new one, a regression (exit 1 either way)."""
    a = tmp_path / "a"
    write(a, [row("a", train_s=1.0), row("a", backend="keras", status="interrupted")])
    state = {"planned": 2, "state": "interrupted", "command": "run", "recorded": 1}
    (a / "state.json").write_text(json.dumps(state))
    b = tmp_path / "b"
    write(b, [row("b", train_s=1.0), row("b", backend="keras", status="timeout", error="stopped after 60 s")])
    result = compare(load_run(a, tmp_path)[0], load_run(b, tmp_path)[0], Thresholds())
    status = result[result.metric == "status"].iloc[0]
    assert status[["backend", "a", "b", "regression"]].tolist() == ["keras", "interrupted", "timeout", True]
    assert pd.isna(status.verdict)
    assert cli.main(["compare", str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert "still failing" not in out and "| REGRESSION" in out
    assert out.splitlines()[-1].startswith("1 regression(s) beyond the thresholds")
    ok = tmp_path / "ok"  # B's row ran ok: nothing to judge it against, said as such (exit 0)
    write(ok, [row("ok", train_s=1.0), row("ok", backend="keras", train_s=1.0)])
    result = compare(load_run(a, tmp_path)[0], load_run(ok, tmp_path)[0], Thresholds())
    assert verdict_of(result, "status") == "no baseline (interrupted in A)" and not result.regression.any()
    assert cli.main(["compare", str(a), str(ok)]) == 0
    assert "| no baseline (interrupted in A)" in capsys.readouterr().out
    # a task only A has, its one row interrupted: nothing measured on either side, not "missing from B"
    gone = new_record(run_id="a", task="gone", backend="torch", repeat=0, model="m", profile="quick")
    append_record(a, {**gone, "status": "interrupted"})
    assert cli.main(["compare", str(a), str(ok)]) == 0
    out = capsys.readouterr().out
    assert "missing from B" not in out and "REGRESSION" not in out
    assert (
        "Only in A, where its rows were interrupted (no baseline), and without a row in B (not judged): gone (torch)"
        in out
    )


def test_a_run_killed_before_its_first_record_and_a_file_are_named_as_such_not_as_no_run_directory(
    tmp_path: Path, capsys
):
    """QA, 2026-12-07: a run killed before its first row ended (plan.json, state.json "running", no records.jsonl;
    `--resume` finishes it) was "not a run directory (no records.jsonl there ...)"; and a path to a file read as no
    run directory either. Both exit 2 (nothing to compare), saying what the path is."""
    a = make_run(tmp_path / "a")
    killed = tmp_path / "killed"
    killed.mkdir()
    (killed / "plan.json").write_text(json.dumps({"tasks": [{"name": "mnist-lenet5"}], "options": {}}))
    (killed / "state.json").write_text(json.dumps({"planned": 4, "state": "running", "command": "run"}))
    assert cli.main(["compare", str(a), str(killed)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: {killed}: incomplete (running): 0 of 4 rows recorded; finish it with "
        f"`python -m bench run --resume {killed}`; nothing to compare\n"
    )
    afile = tmp_path / "a-file"
    afile.write_text("x")
    assert cli.main(["compare", str(afile), str(a)]) == 2
    assert capsys.readouterr().err == f"error: {afile}: is a file, not a run folder\n"
