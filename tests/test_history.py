"""The history store and ``bench history``: rows from run folders, safety of the store, the checks, the CLI."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from bench.core.record import new_record
from bench.core.results import append_record, read_records
from bench.history import annotations, check, dashboard, store
from bench.history.rows import run_rows
from tests.conftest import run_cli
from tests.history_runs import MACHINE, START, make_run

REPO = Path(__file__).resolve().parent.parent
REFERENCE_DIR = REPO / "results" / "reference"
REFERENCE = sorted(p for p in REFERENCE_DIR.iterdir() if (p / "records.jsonl").is_file())
ROW = ("lenet", "torch")


def bench(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return run_cli(list(args), dict(os.environ), timeout=120, cwd=cwd)


def series_runs(root: Path, values: list[float], **kw) -> list[Path]:
    return [make_run(root, i, {ROW: {"steady_img_s": v, "test_acc": 0.9}}, **kw) for i, v in enumerate(values)]


def test_a_run_becomes_long_rows_with_its_interval_commit_machine_and_calibration(tmp_path: Path):
    run = make_run(
        tmp_path, 1, {ROW: {"steady_img_s": 1000.0, "train_s": 5.0, "test_acc": 0.9}}, commit="abc1234-dirty"
    )
    rows = run_rows(run).set_index("metric")
    assert set(rows.index) == {"steady_img_s", "train_s", "test_acc"}
    assert rows.loc["steady_img_s", ["value", "lo", "hi"]].tolist() == pytest.approx([1000, 990, 1010])
    assert pd.isna(rows.loc["train_s", "lo"])  # no interval recorded: none invented
    assert rows.commit.iloc[0] == "abc1234" and rows.dirty.all()
    assert rows.calibration_gflops.iloc[0] == pytest.approx(50.0)
    assert rows.config.iloc[0] == "default" and rows.machine.iloc[0].startswith("Test CPU 9000, 2 cores")
    other_machine = make_run(tmp_path, 2, {ROW: {"steady_img_s": 1.0}}, machine={**MACHINE, "cores": 64})
    other_task = make_run(tmp_path, 3, {ROW: {"steady_img_s": 1.0, "batch_size": 128}})
    assert run_rows(other_machine).machine_id.iloc[0] != rows.machine_id.iloc[0]
    assert run_rows(other_task).spec_hash.iloc[0] != rows.spec_hash.iloc[0]  # a changed task: a new series
    assert run_rows(other_machine).spec_hash.iloc[0] == rows.spec_hash.iloc[0]
    # other epochs (bench all sizes them to the machine): the step throughput's series goes on, the training
    # time's and the accuracy's, which move with the epochs, start anew
    longer = run_rows(make_run(tmp_path, 4, {ROW: {"steady_img_s": 1.0, "train_s": 9.0, "test_acc": 0.9, "epochs": 5}}))
    before = rows.spec_hash.to_dict()
    same = {m: h == before[m] for m, h in zip(longer.metric, longer.spec_hash, strict=True)}
    assert same == {"steady_img_s": True, "train_s": False, "test_acc": False}


def test_the_calibration_is_the_fp32_matmul_and_not_the_bf16_one_a_tuned_row_measured_for_itself():
    """The 2026-12-05 AMD tune: its best rows in bf16 measured bf16 matmuls (844 GFLOP/s for torch) for their own
    MFU; the machine's speed is its fp32 rows' (204), which a run on another day is read against."""
    run = REFERENCE_DIR / "20261205-013320-329a-tune-cifar10-amd-floor"
    rows = run_rows(run)
    speeds = rows.groupby("backend").calibration_gflops.first().round().to_dict()
    assert speeds == {"torch": 204, "keras": 389, "keras-jax": 418, "keras-torch": 201}  # keras-jax: 426 and 409


def test_repeats_give_their_median_and_an_interval_spanning_them(tmp_path: Path):
    run = make_run(tmp_path, 1, {ROW: {"train_s": 5.0}})
    for rep, v in ((1, 7.0), (2, 6.0)):
        append_record(
            run,
            new_record(
                task="lenet",
                backend="torch",
                repeat=rep,
                status="ok",
                train_s=v,
                epochs=2,
                model="lenet5",
                dataset="digits",
                batch_size=64,
                profile="quick",
            ),
        )
    r = run_rows(run).set_index("metric").loc["train_s"]
    assert (r.value, r.lo, r.hi, r.repeats) == (6.0, 5.0, 7.0, 3)


def test_two_stores_of_the_same_runs_load_as_one_frame_whatever_order_their_files_hold_the_rows_in(tmp_path: Path):
    """A run's records.jsonl lists its rows in the order its workers finished, and the store's file keeps that order:
    loaded in (run_date, run_id) order alone, the rows within a run came as the file held them (or as DuckDB read
    them), so two stores of the same runs gave two frames. ``store.ORDER`` sorts them within a run by task, backend,
    configuration and metric: the same frame, raw and normalised, whichever order the runs were written and added."""
    from tests.history_runs import failed_row

    pairs = [("lenet", "torch"), ("lenet", "keras"), ("alex", "torch"), ("alex", "keras")]
    runs = [
        make_run(tmp_path / "a", n, {k: {"steady_img_s": 100.0 + i + n, "test_acc": 0.9} for i, k in enumerate(pairs)})
        for n in (0, 1)
    ]
    runs.append(make_run(tmp_path / "a", 2, {ROW: failed_row(), ("alex", "keras"): {"steady_img_s": 90.0}}))
    for run in runs:  # the same runs, each file's rows in the other order, added newest first
        lines = (run / "records.jsonl").read_text().splitlines(keepends=True)
        (tmp_path / "b" / run.name).mkdir(parents=True)
        (tmp_path / "b" / run.name / "records.jsonl").write_text("".join(reversed(lines)))
        (tmp_path / "b" / run.name / "environment.json").write_text((run / "environment.json").read_text())
        store.add_run(tmp_path / "h1", run)
    for run in reversed(runs):
        store.add_run(tmp_path / "h2", tmp_path / "b" / run.name)
    first, second = (store.load(tmp_path / h) for h in ("h1", "h2"))
    assert list(first.task[:2]) == ["alex", "alex"] and list(second.task[:2]) == ["alex", "alex"]
    pd.testing.assert_frame_equal(first, second)
    pd.testing.assert_frame_equal(store.load(tmp_path / "h1", True), store.load(tmp_path / "h2", True))
    key = list(store.ORDER)
    assert first[key].values.tolist() == sorted(first[key].values.tolist())  # as documented, one row each
    assert not first.duplicated(key).any() and len(first) == 2 * 4 * 2 + 2


def test_importing_a_run_twice_adds_nothing_and_the_normalised_view_divides_rates(tmp_path: Path):
    hist = tmp_path / "history"
    run = make_run(tmp_path, 1, {ROW: {"steady_img_s": 1000.0, "train_s": 4.0, "test_acc": 0.9}}, gflops=40.0)
    first, again = store.add_run(hist, run), store.add_run(hist, run)
    assert first.new and first.rows == 3 and not again.new and again.rows == 0
    assert len(store.load(hist)) == 3
    norm = store.load(hist, normalised=True).set_index("metric")
    assert norm.loc["steady_img_s", "value"] == pytest.approx(1000 / 40)
    assert norm.loc["steady_img_s", "hi"] == pytest.approx(1010 / 40)
    assert norm.loc["train_s", "value"] == pytest.approx(4.0 * 40)  # a time: multiplied
    assert norm.loc["test_acc", "value"] == pytest.approx(0.9)  # accuracy: as it was


def test_a_dashboard_that_cannot_be_written_leaves_the_run_in_the_store_said_so_and_no_partial_file(
    tmp_path: Path, monkeypatch
):
    """QA, 2026-12-05, under a file-size limit: the store took the run, the dashboard did not, and the run said
    "the run was not added to the history", beside a 3 MB .index.html.<pid>.<hex>.partial left behind."""
    import errno

    from bench.history import dashboard
    from bench.run.history_cli import after_run

    run = make_run(tmp_path, 1, {ROW: {"steady_img_s": 1000.0, "test_acc": 0.9}})
    hist = tmp_path / "history"

    def full(self: Path, target: Path) -> Path:
        raise OSError(errno.EFBIG, "File too large")

    monkeypatch.setattr(Path, "replace", full)  # the page written whole, its rename refused
    said: list[str] = []
    after_run(run, said.append)
    monkeypatch.undo()
    assert len(store.load(hist)) == 2  # the run is in the store ...
    (line,) = said  # ... and the one line says so, and what failed
    assert line.startswith(f"history: 2 metric rows of run {run.name} added to {hist}; warning: its dashboard")
    assert "File too large" in line and f"history import {run}` writes it again" in line
    assert not [p.name for p in hist.iterdir() if p.name.endswith(".partial")]
    assert not (hist / dashboard.PAGE).exists()


def add(args: tuple[str, str, multiprocessing.synchronize.Barrier]) -> bool:
    hist, run, barrier = args
    barrier.wait()
    return store.add_run(Path(hist), Path(run)).new


def test_two_runs_finishing_at_once_both_land_and_one_run_added_at_once_twice_lands_once(tmp_path: Path):
    hist = tmp_path / "history"
    runs = [make_run(tmp_path, i, {ROW: {"steady_img_s": 100.0 + i}}) for i in range(4)]
    ctx = multiprocessing.get_context("spawn")
    for pair in ((runs[0], runs[1]), (runs[2], runs[2])):
        barrier = ctx.Manager().Barrier(2)
        with ctx.Pool(2) as pool:
            new = pool.map(add, [(str(hist), str(r), barrier) for r in pair])
        assert sorted(new) == ([True, True] if pair[0] != pair[1] else [False, True])
    assert sorted(store.load(hist).run_id.unique()) == sorted(r.name for r in runs[:3])
    assert not [p for p in (hist / "runs").iterdir() if p.name.endswith(".partial")]


def test_a_corrupt_or_partial_store_is_refused_naming_the_file_and_left_as_it_is(tmp_path: Path):
    hist = tmp_path / "history"
    for i in range(2):
        store.add_run(hist, make_run(tmp_path, i, {ROW: {"steady_img_s": 100.0}}))
    victim = sorted((hist / "runs").iterdir())[0]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])  # a copy cut short
    with pytest.raises(store.HistoryError, match=victim.name):
        store.load(hist)
    with pytest.raises(store.HistoryError, match=victim.name):  # nothing is added on top of a damaged store
        store.add_run(hist, make_run(tmp_path, 5, {ROW: {"steady_img_s": 100.0}}))
    assert victim.read_bytes() == data[: len(data) // 2] and len(list((hist / "runs").iterdir())) == 2
    victim.write_bytes(b"PAR1 not parquet PAR1")
    with pytest.raises(store.HistoryError, match="not a readable history file"):
        store.load(hist)
    pd.DataFrame({"x": [1]}).to_parquet(victim)
    with pytest.raises(store.HistoryError, match="no column"):
        store.load(hist)
    (hist / store.MARKER).unlink()
    with pytest.raises(store.HistoryError, match="partial"):
        store.load(hist)
    with pytest.raises(store.HistoryError, match="no history store"):
        store.load(tmp_path / "nothing")


def test_a_step_is_printed_with_what_changed_and_an_annotation_resets_the_baseline(tmp_path: Path):
    hist = tmp_path / "history"
    runs = series_runs(tmp_path / "a", [100, 101, 99, 100, 100.5, 99.5], commit="aaaa111")
    runs += [
        make_run(
            tmp_path / "a",
            6 + i,
            {ROW: {"steady_img_s": v, "test_acc": 0.9}},
            commit="bbbb222",
            packages={"torch": "2.15.0", "keras": "3.15.1"},
        )
        for i, v in enumerate([80, 81, 79, 80.5])
    ]
    for r in runs:
        store.add_run(hist, r)
    found = [s for s in check.check(store.load(hist), [], check.Thresholds()) if s.key["metric"] == "steady_img_s"]
    (s,) = found
    (st,) = s.steps
    assert st.at == 6 and st.change == pytest.approx(-0.2, abs=0.01)
    assert "commit aaaa111 -> bbbb222" in st.changed and "torch 2.14.1 -> 2.15.0" in st.changed
    assert not s.newest.regression  # the newest run matches the three before it
    slow = make_run(tmp_path / "a", 10, {ROW: {"steady_img_s": 60.0, "test_acc": 0.9}}, commit="cccc333")
    store.add_run(hist, slow)
    (s,) = [s for s in check.check(store.load(hist), [], check.Thresholds()) if s.key["metric"] == "steady_img_s"]
    assert s.newest.regression and s.newest.change == pytest.approx(-0.25, abs=0.02)
    annotations.append(hist, annotations.Annotation(slow.name, "new data loader", metric="steady_img_s"))
    notes = annotations.read(hist)
    (s,) = [s for s in check.check(store.load(hist), notes, check.Thresholds()) if s.key["metric"] == "steady_img_s"]
    assert s.newest is None and s.reset == 10 and s.reset_note == "new data loader"


def test_a_step_between_two_local_patches_of_one_commit_names_them_apart(tmp_path: Path):
    """QA, 2026-12-07: a planted slowdown, then a stronger one, both uncommitted on one commit ("fcaf4d6-dirty" each):
    the step between them read "nothing recorded (same commit, versions, knobs and machine)". A dirty run keeps a
    hash of its uncommitted changes (environment.json's git_diff) and the step names it; a run without one (clean,
    or stored before) says what it did."""
    hist = tmp_path / "history"
    for n, (v, diff) in enumerate([(100, "aaaa1111")] * 3 + [(70, "bbbb2222")] * 3):
        store.add_run(hist, make_run(tmp_path / "a", n, {ROW: {"steady_img_s": v}}, commit="abc1234-dirty", diff=diff))
    (s,) = [s for s in check.check(store.load(hist), [], check.Thresholds()) if s.key["metric"] == "steady_img_s"]
    (st,) = s.steps
    assert st.changed == [
        "commit abc1234-dirty -> abc1234-dirty: other uncommitted changes (diff aaaa1111 -> bbbb2222)"
    ]
    (chart,) = [c for c in dashboard.chart_data([s], []) if c["metric"] == "steady_img_s"]
    assert chart["raw"][0]["commit"][-1] == "abc1234-dirty (diff bbbb2222)"
    old = tmp_path / "old"  # dirty runs that kept no hash: nothing to tell them apart by
    for n, v in enumerate([100] * 3 + [70] * 3):
        store.add_run(old, make_run(tmp_path / "b", n, {ROW: {"steady_img_s": v}}, commit="abc1234-dirty"))
    (s,) = [s for s in check.check(store.load(old), [], check.Thresholds()) if s.key["metric"] == "steady_img_s"]
    assert s.steps[0].changed == ["nothing recorded (same commit, versions, knobs and machine)"]


def test_a_dirty_tree_is_hashed_by_its_uncommitted_changes(tmp_path: Path):
    """environment.json's git_diff: None on a clean tree, a hash of `git diff HEAD` on a dirty one, another for
    other changes, the same for the same ones."""
    from bench.run.environment import git_diff

    git = ["git", "-C", str(tmp_path), "-c", "user.email=qa@example.com", "-c", "user.name=qa"]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "f.py").write_text("x = 1\n")
    subprocess.run([*git, "add", "f.py"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    assert git_diff(tmp_path) is None
    (tmp_path / "f.py").write_text("x = 2\n")
    first = git_diff(tmp_path)
    (tmp_path / "f.py").write_text("x = 3\n")
    second = git_diff(tmp_path)
    assert first and second and first != second and len(first) == 8
    (tmp_path / "f.py").write_text("x = 2\n")
    assert git_diff(tmp_path) == first
    assert git_diff(tmp_path / "not-a-repo") is None


def test_a_configuration_change_starts_a_new_baseline_and_is_no_regression(tmp_path: Path):
    """A tuned "best" row is whichever configuration won its race: its series changes configuration when another
    wins (the fourth AMD cifar10-cnn tune: Keras (torch)'s defaults after three bf16 wins, flagged at +10.6% of
    memory). The newest run of a new configuration starts a baseline, said with its knobs; the same drop in one
    configuration is still a regression."""
    hist = tmp_path / "history"

    def run(n: int, value: float, knobs: dict) -> Path:
        return make_run(tmp_path / "a", n, {ROW: {"steady_img_s": value, "test_acc": 0.9, "knobs": knobs}})

    bf16 = {"precision": "mixed_bfloat16"}
    for n, v in enumerate([100, 101, 99, 100]):
        store.add_run(hist, run(n, v, bf16))
    store.add_run(hist, run(4, 70, {"precision": "float32"}))
    (s,) = [s for s in check.check(store.load(hist), [], check.Thresholds()) if s.key["metric"] == "steady_img_s"]
    assert s.newest is None and s.reset == 4
    assert s.reset_note == "its configuration changed (knob precision mixed_bfloat16 -> float32)"
    same = tmp_path / "same"
    for n, v in enumerate([100, 101, 99, 100, 70]):
        store.add_run(same, run(10 + n, v, bf16))
    (s,) = [s for s in check.check(store.load(same), [], check.Thresholds()) if s.key["metric"] == "steady_img_s"]
    assert s.newest is not None and s.newest.regression and s.reset == 0


def test_a_third_run_far_from_two_that_agree_is_a_regression_though_no_interval_scales_it(tmp_path: Path):
    """QA, 2026-12-06: a planted bug took one backend's test accuracy from 0.964, 0.964 to 0.096 and `bench history`
    said nothing: the newest run's own jump was in the noise it was judged in (half of the two successive differences'
    median), so no series of 2 or 3 runs without intervals could be flagged. Two runs before it set the noise now; one
    run before it still judges nothing (its jump is all the scale there is)."""
    hist = tmp_path / "history"
    for n, acc in enumerate([0.964, 0.964, 0.096]):
        store.add_run(hist, make_run(tmp_path / "a", n, {ROW: {"steady_img_s": 100.0, "test_acc": acc}}))
    (s,) = [s for s in check.check(store.load(hist), [], check.Thresholds()) if s.key["metric"] == "test_acc"]
    assert s.newest is not None and s.newest.regression and s.newest.baseline == 2
    assert "REGRESSION: -90.0% against the median of 2 run(s)" in "\n".join(check.describe(s))
    two = tmp_path / "two"
    for n, acc in enumerate([0.964, 0.096]):
        store.add_run(two, make_run(tmp_path / "b", n, {ROW: {"steady_img_s": 100.0, "test_acc": acc}}))
    (s,) = [s for s in check.check(store.load(two), [], check.Thresholds()) if s.key["metric"] == "test_acc"]
    assert s.newest is not None and not s.newest.regression


def test_an_accuracy_drop_is_judged_in_points_as_bench_compare_judges_it(tmp_path: Path):
    """QA, 2026-12-07: a planted bug (wrong labels on two batches in three) took a seeded LeNet-5's test accuracy from
    0.966 in five runs to 0.932; `bench compare` flagged the 3.4-point drop (--max-acc-drop 0.01) and `bench history`
    never did, exit 0: robust z -35,000, but 3.5% is under the 5% every metric's change had to pass (4.8 points at
    0.966). An accuracy's drop is judged in points, by --max-acc-drop, as compare judges it; one at the threshold is
    not beyond it, and a throughput still needs its 5%."""
    hist = tmp_path / "history"
    for n, acc in enumerate([0.966] * 5 + [0.932]):
        store.add_run(
            hist, make_run(tmp_path / "a", n, {ROW: {"steady_img_s": 100.0, "train_s": 10.0, "test_acc": acc}})
        )
    found = {s.key["metric"]: s for s in check.check(store.load(hist), [], check.Thresholds())}
    acc = found["test_acc"]
    assert acc.newest is not None and acc.newest.regression and acc.newest.change == pytest.approx(-0.034 / 0.966)
    assert "REGRESSION: -3.5% against the median of 5 run(s)" in "\n".join(check.describe(acc))
    out = bench("history", "--store", str(hist))
    assert out.returncode == 1 and "1 regressed newest point(s)" in out.stdout, out.stdout
    assert "(robust z > 4 and worse by > 5%, an accuracy by > 0.01)" in out.stdout
    assert bench("history", "--store", str(hist), "--max-acc-drop", "0.05").returncode == 0
    refused = bench("history", "--store", str(hist), "--max-acc-drop", "5")
    assert refused.returncode == 2 and "write 0.05 for 5 points" in refused.stderr
    at = tmp_path / "at"  # exactly one point: at the threshold, not beyond it (compare's rule)
    for n, acc in enumerate([0.966] * 5 + [0.956]):
        store.add_run(at, make_run(tmp_path / "b", n, {ROW: {"steady_img_s": 100.0, "test_acc": acc}}))
    (s,) = [s for s in check.check(store.load(at), [], check.Thresholds()) if s.key["metric"] == "test_acc"]
    assert s.newest is not None and not s.newest.regression and s.newest.z < -1000
    slow = tmp_path / "slow"  # a rate's change is still relative: 4% slower is under the 5%, however far in z
    for n, v in enumerate([100.0] * 5 + [96.0]):
        store.add_run(slow, make_run(tmp_path / "c", n, {ROW: {"train_s": 10.0 * 100 / v, "test_acc": 0.9}}))
    (s,) = [s for s in check.check(store.load(slow), [], check.Thresholds()) if s.key["metric"] == "train_s"]
    assert s.newest is not None and not s.newest.regression and s.newest.z > 1000


# four other rows whose train_s, throughput and accuracy scatter by a known pattern from run to run
OTHERS = [("cifar10-cnn", "torch"), ("cifar10-cnn", "keras"), ("mnist-cnn", "torch"), ("mnist-cnn", "keras")]


def scatter(s: float) -> list[float]:
    """Five runs' factors whose successive changes are s / (1 + s / 2), 1.2 s / (1 + 0.4 s), s / (1 + 0.3 s) and
    1.2 s / (1 + 0.3 s): [1, 1.05, 0.99, 1.04, 0.98] at s = 0.05."""
    return [1, 1 + s, 1 - 0.2 * s, 1 + 0.8 * s, 1 - 0.4 * s]


def pooled_store(root: Path, mine: dict[int, dict[str, float]]) -> Path:
    """Five runs on one machine of the OTHERS rows (train_s and throughput scattering ~5% run to run, test accuracy
    ~0.5%) and of ROW with the fields ``mine`` gives it in the runs it names."""
    hist = root / "history"
    for n in range(5):
        rows = {
            other: {
                "train_s": 20.0 * (k + 1) * scatter(0.05)[n],
                "throughput_img_s": 500.0 * (k + 1) * scatter(0.05)[n],
                "test_acc": (0.6 + 0.1 * k) * scatter(0.005)[n],
            }
            for k, other in enumerate(OTHERS)
        }
        store.add_run(hist, make_run(root / "runs", n, {**rows, **({ROW: mine[n]} if n in mine else {})}))
    return hist


def runs_of(metric: str, values: list[float], first: int = 0) -> dict[int, dict[str, float]]:
    """ROW's ``metric`` in runs ``first``, ``first`` + 1, ... (``pooled_store``'s ``mine``)."""
    return {n: {metric: v} for n, v in enumerate(values, start=first)}


def judged(hist: Path, metric: str) -> check.Series:
    (s,) = [s for s in check.check(store.load(hist), [], check.Thresholds()) if s.key["task"] == "lenet"]
    assert s.key["metric"] == metric
    return s


# the other rows' changes left in the pool (each series' last, into the run being judged, is not): runs 0-1, 1-2 and
# 2-3, 4.878%, 5.882% and 4.926% at s = 0.05, four rows each; their median in the units of a robust sigma
POOL_5 = 1.4826 * (0.05 / 1.015) / math.sqrt(2)  # 5.165%: the median, 4.926%, with one small change of ROW's below it


def test_a_vm_swing_after_two_close_runs_is_in_the_metrics_run_to_run_noise_on_the_machine(tmp_path: Path):
    """A maintainer's weekly false alarm: train_s (no interval) 10.0 s, 10.1 s, then a shared VM's 11.0 s read robust
    z 9 on a noise from ONE successive difference (0.1 s), and was flagged. The machine's other train_s series
    scatter ~5% from run to run: +9.5% is within 2 of that noise, no regression. Alone in a store there is no pool
    (one change, under MIN_POOL): the series' own noise is all there is, and it is flagged as before."""
    hist = pooled_store(tmp_path / "pooled", runs_of("train_s", [10.0, 10.1, 11.0], 2))
    s = judged(hist, "train_s")
    assert s.pool is not None and s.pool.noise == pytest.approx(POOL_5, rel=1e-9)
    assert (s.pool.changes, s.pool.series) == (13, 5)  # 4 rows x 3 changes, and ROW's 10.0 -> 10.1
    assert s.newest is not None and s.newest.change == pytest.approx(0.95 / 10.05)
    assert s.newest.pooled and s.newest.z == pytest.approx(0.95 / (POOL_5 * 10.05)) and s.newest.z < 2
    assert not s.newest.regression and check.describe(s) == []
    alone = tmp_path / "alone" / "history"
    for n, v in enumerate([10.0, 10.1, 11.0]):
        store.add_run(alone, make_run(tmp_path / "alone" / "runs", n, {ROW: {"train_s": v}}))
    s = judged(alone, "train_s")
    assert s.pool is None and s.newest is not None and s.newest.regression and s.newest.z > 9
    assert "(robust z +9.1)" in "\n".join(check.describe(s))


def test_a_collapse_passes_the_metrics_run_to_run_noise_and_says_it_was_judged_in_it(tmp_path: Path):
    """The pool floors the scale; it does not blunt a collapse. The planted bug's test accuracy 0.964, 0.964 and
    0.096 among accuracies that move ~0.5% from run to run; a throughput at 100, 101, 99, 100 then 70 (-30%), and
    at 100, 101, 99 then 0, among throughputs that move ~5%: each flagged, its line naming the noise it judged in."""
    hist = pooled_store(tmp_path / "acc", runs_of("test_acc", [0.964, 0.964, 0.096], 2))
    s = judged(hist, "test_acc")
    assert s.pool is not None and s.pool.noise == pytest.approx(1.4826 * (0.005 / 1.0015) / math.sqrt(2))  # 0.52%
    assert s.newest is not None and s.newest.regression and s.newest.pooled and s.newest.z < -150
    said = "\n".join(check.describe(s))
    assert "REGRESSION: -90.0% against the median of 2 run(s) before it (robust z -172.0 in the metric's " in said
    assert "run-to-run noise on this machine, 0.5% from 13 changes in 5 series)" in said
    for values, first, z in (([100, 101, 99, 100, 70], 0, -30 / POOL_5), ([100, 101, 99, 0], 1, -100 / POOL_5)):
        s = judged(
            pooled_store(tmp_path / str(values[-1]), runs_of("throughput_img_s", values, first)), "throughput_img_s"
        )
        assert s.pool is not None and s.pool.noise == pytest.approx(POOL_5, rel=1e-9)  # ROW's own changes are ~1%
        assert s.newest is not None and s.newest.regression and s.newest.pooled
        assert s.newest.z == pytest.approx(z / 100, rel=1e-9)  # -5.8 and -19.4: the baseline's median is 100


def test_a_slowdown_of_every_series_at_once_is_not_in_the_noise_it_is_judged_in(tmp_path: Path):
    """Ten series of three runs, every one 30% slower in its newest: the newest runs' changes are left out of the
    pool (with them, half its changes would be the slowdown's own, a pool of ~24%, and none flagged)."""
    hist = tmp_path / "history"
    tasks = [(f"task{k}", "torch") for k in range(10)]
    for n, f in enumerate([1.0, 1.05, 0.7175]):
        store.add_run(
            hist, make_run(tmp_path, n, {t: {"throughput_img_s": 100.0 * (k + 1) * f} for k, t in enumerate(tasks)})
        )
    found = check.check(store.load(hist), [], check.Thresholds())
    assert len(found) == 10
    assert all(s.newest is not None and s.newest.regression and s.newest.change == pytest.approx(-0.3) for s in found)
    assert all(s.pool is not None and (s.pool.changes, s.pool.series) == (10, 10) for s in found)
    noise = [s.pool.noise for s in found if s.pool]
    assert noise == pytest.approx([1.4826 * (0.05 / 1.025) / math.sqrt(2)] * 10)  # 5.1%: the runs 0 -> 1


def test_the_pool_leaves_out_a_change_across_a_reset_and_is_none_under_ten_changes(tmp_path: Path):
    """An annotated run and a change of the row's knobs reset a baseline: the change into them is none of the
    metric's run-to-run noise. Fewer than MIN_POOL changes are no pool. A filter of the CLI's (--task) judges with the
    whole store's pool: the VM's swing of the test above is flagged by no filter."""
    hist = pooled_store(tmp_path, runs_of("train_s", [10.0, 10.1, 11.0], 2))
    df = store.load(hist)
    machine = df.machine_id.iloc[0]

    def changes(notes: list[annotations.Annotation], frame: pd.DataFrame = df) -> int | None:
        pool = check.pools(frame, notes).get(("train_s", machine))
        return pool.changes if pool else None

    day1 = sorted(df.run_id.unique())[1]
    assert changes([]) == 13
    assert changes([annotations.Annotation(day1, "new loader", task="cifar10-cnn")]) == 11  # two rows' 0 -> 1
    assert changes([annotations.Annotation(day1, "new loader", metric="test_acc")]) == 13  # another metric's
    assert changes([annotations.Annotation(day1, "new VM image")]) is None  # 9: every row's 0 -> 1
    bf16 = df.assign(knobs=df.knobs.where(~((df.task == "mnist-cnn") & (df.run_id > day1)), '{"precision": "bf16"}'))
    assert changes([], bf16) == 11  # the two mnist-cnn rows' 1 -> 2
    assert check.MIN_POOL == 10
    for args in ((), ("--task", "lenet"), ("--metric", "train_s"), ("--backend", "torch")):
        out = bench("history", "--store", str(hist), *args)
        assert out.returncode == 0 and "0 regressed newest point(s)" in out.stdout, (args, out.stdout)


def test_a_backends_drop_is_judged_in_its_own_noise_not_in_a_noisier_backends_on_the_machine(tmp_path: Path):
    """QA, 2026-12-07: under load torch's series swung 208-6,202 img/s for one code, and the machine's pool over every
    backend (29%) hid a Keras -46.9% run (z -1.6). Here six torch series scatter ~27% from run to run and four keras
    ones ~1.6%: ROW (keras) at 100, 101, 99, 100 then 60 is flagged in keras's own pool; torch's series are judged in
    theirs. With fewer than MIN_POOL keras changes, the machine's pool is all there is: then it hides the drop."""
    torch_rows = [(f"noisy{k}", "torch") for k in range(6)]
    keras_rows = [(f"calm{k}", "keras") for k in range(4)]

    def store_of(root: Path, calm: list[tuple[str, str]]) -> Path:
        hist = root / "history"
        for n in range(5):
            rows = {r: {"throughput_img_s": 300.0 * (k + 1) * scatter(0.3)[n]} for k, r in enumerate(torch_rows)}
            rows |= {r: {"throughput_img_s": 500.0 * (k + 1) * scatter(0.02)[n]} for k, r in enumerate(calm)}
            rows[("lenet", "keras")] = {"throughput_img_s": [100.0, 101.0, 99.0, 100.0, 60.0][n]}
            store.add_run(hist, make_run(root / "runs", n, rows))
        return hist

    hist = store_of(tmp_path / "two", keras_rows)
    found = check.check(store.load(hist), [], check.Thresholds())
    (s,) = [s for s in found if s.key["task"] == "lenet"]
    assert s.pool is not None and s.pool.backend == "keras" and (s.pool.changes, s.pool.series) == (15, 5)
    assert s.pool.noise < 0.03 and s.newest is not None and s.newest.regression and s.newest.z < -10
    said = "\n".join(check.describe(s))
    assert "REGRESSION: -40.0% against the median of 4 run(s) before it (robust z " in said
    assert (
        "in the metric's run-to-run noise of keras on this machine, " in said and "from 15 changes in 5 series" in said
    )
    noisy = [s for s in found if s.key["backend"] == "torch"]
    assert len(noisy) == 6 and all(s.pool and s.pool.backend == "torch" and s.pool.noise > 0.25 for s in noisy)
    machine = store.load(hist).machine_id.iloc[0]
    whole = check.pools(store.load(hist), [])[("throughput_img_s", machine)]  # every backend's: torch's swings
    assert whole.changes == 33 and whole.noise > 0.25 and whole.backend is None
    few = store_of(tmp_path / "few", keras_rows[:2])  # 2 x 3 keras changes and ROW's 3: under MIN_POOL
    (s,) = [s for s in check.check(store.load(few), [], check.Thresholds()) if s.key["task"] == "lenet"]
    assert s.pool is not None and s.pool.backend is None and s.pool.noise > 0.25
    assert s.newest is not None and not s.newest.regression and -2 < s.newest.z < -1
    assert "noise on this machine" not in "\n".join(check.describe(s))  # nothing said: no flag


def test_a_series_points_are_its_rows_of_the_store_oldest_first_as_a_row_of_the_frame_reads_them(tmp_path: Path):
    """The checks and the dashboard read a series' points as column arrays taken once for every series and sliced
    (bench.history.points), not as a DataFrame each: each series' points are its rows with a value, oldest first (run
    date, then run id), each column's value as a row of the store's frame gives it (a date a Timestamp, a missing text
    NaN), and read-only (the arrays are shared: a check changing one would change the rows of every series)."""
    hist = tmp_path / "history"
    for n, day in enumerate([3, 1, 2, 1]):  # ids out of date order; runs 1 and 3 at one instant
        rows = {ROW: {"steady_img_s": 100.0 + n, "test_acc": 0.9}, ("cnn", "keras"): {"train_s": 10.0 + n}}
        dirty = {"commit": "abc1234-dirty", "diff": f"d{n}"} if n % 2 else {}
        store.add_run(hist, make_run(tmp_path / "runs", n, rows, started=START + timedelta(days=day), **dirty))
    df = store.load(hist)
    found = list(check.series(df))
    assert sorted(k["metric"] for k, _ in found) == ["steady_img_s", "test_acc", "train_s"]
    for k, points in found:
        assert [r[-1] for r in points["run_id"]] == ["1", "3", "2", "0"] and len(points) == 4
        mine = df[(df[list(k)] == pd.Series(k)).all(axis=1)].sort_values(["run_date", "run_id"], kind="stable")
        for i in range(len(points)):
            want, got = mine.iloc[i], points.row(i)
            assert got.keys() == set(df.columns)
            assert all(got[c] == want[c] or (pd.isna(got[c]) and pd.isna(want[c])) for c in df.columns), (k, i)
        assert isinstance(points["run_date"][0], pd.Timestamp) and points["value"].dtype == float
        assert [points.row(i)["diff"] for i in (0, 1)] == ["d1", "d3"] and math.isnan(points.row(-1)["diff"])
        with pytest.raises(ValueError):
            points["value"][0] = 0.0


def test_a_changes_second_and_third_runs_are_judged_against_the_baseline_before_its_first(tmp_path: Path):
    """QA, 2026-12-07: after a change, its 2nd and 3rd runs were judged against a baseline that held its 1st (z -2.4
    where it was -4.5 without). A training time scattering 10 +- 1 s, then 15 s from a commit on: each of the first
    three runs at 15 s is judged against the five runs before the change (the flagged ones just before it left out,
    said so, with what changed since the baseline's last run); with them in, the third read z 3.9 and passed. The
    fourth finds the three a level: a step, as before."""
    hist = tmp_path / "history"
    base, bad = [10.0, 11.0, 9.2, 10.4, 9.6], [15.0, 15.0, 15.0, 15.0]
    for n, v in enumerate(base):
        store.add_run(hist, make_run(tmp_path / "runs", n, {ROW: {"train_s": v}}, commit="aaaa111"))
    verdicts = []
    for k, v in enumerate(bad):
        store.add_run(hist, make_run(tmp_path / "runs", len(base) + k, {ROW: {"train_s": v}}, commit="bbbb222"))
        (s,) = check.check(store.load(hist), [], check.Thresholds())
        verdicts.append(s)
    first, second, third, fourth = verdicts
    assert first.newest is not None and first.newest.regression and first.left_out == 0
    for s, left in ((second, 1), (third, 2)):
        assert s.newest is not None and s.newest.regression and s.left_out == left
        assert (s.newest.z, s.newest.change, s.newest.baseline) == (first.newest.z, 0.5, 5)
    said = check.describe(third)
    at = next(i for i, line in enumerate(said) if "newest run" in line)
    assert said[at].endswith(
        ": REGRESSION: +50.0% against the median of 5 run(s) before it, the 2 flagged runs just before it left out "
        "(robust z +4.3)"
    ), said
    assert said[at + 1] == "    commit aaaa111 -> bbbb222"  # the change's cause, not the nothing between its runs
    assert "the flagged run just before it left out (robust z" in "\n".join(check.describe(second))
    points = third.points["value"]
    kept = check.judge(points, points * math.nan, points * math.nan, 0, third.metric, check.Thresholds(), None)
    assert kept is not None and not kept.regression and 3.8 < kept.z < 4  # the earlier runs in: missed
    assert fourth.newest is not None and not fourth.newest.regression and fourth.left_out == 0
    assert [st.at for st in fourth.steps] == [5] and any("step at run" in line for line in check.describe(fourth))


def test_a_change_of_the_rows_threads_is_named_and_starts_a_new_baseline(tmp_path: Path):
    """QA 2026-12-06: a task's `[runtime] threads = 1` made a loaded VM's LeNet-5 17x faster, and `bench history`
    named only the calibration for it (the record's threads were not in the store). The threads are a knob: their
    change is said and starts a baseline; a row stored without them (before 2026-12-06) is no change."""
    hist = tmp_path / "history"

    def run(n: int, value: float, **fields) -> Path:
        return make_run(tmp_path / "a", n, {ROW: {"steady_img_s": value, "test_acc": 0.9, **fields}})

    store.add_run(hist, run(0, 100))  # stored before threads were kept
    for n, v in enumerate([101, 99, 100], start=1):
        store.add_run(hist, run(n, v, threads=2))
    (s,) = [s for s in check.check(store.load(hist), [], check.Thresholds()) if s.key["metric"] == "steady_img_s"]
    assert s.reset == 0 and s.reset_note is None
    store.add_run(hist, run(4, 60, threads=1))
    (s,) = [s for s in check.check(store.load(hist), [], check.Thresholds()) if s.key["metric"] == "steady_img_s"]
    assert s.newest is None and s.reset == 4
    assert s.reset_note == "its configuration changed (knob threads 2 -> 1)"


def test_a_configuration_change_at_the_newest_run_is_said_with_its_values(tmp_path: Path):
    """QA 2026-12-06: a newest run whose knobs changed starts a baseline, and `bench history` printed nothing of it,
    a 7x change included; it says the change once, as the run lands, with the values either side."""
    hist = tmp_path / "history"
    for n, (v, threads) in enumerate([(100, 2), (101, 2), (99, 2), (60, 1)]):
        store.add_run(hist, make_run(tmp_path / "a", n, {ROW: {"steady_img_s": v, "threads": threads}}))
    (s,) = [s for s in check.check(store.load(hist), [], check.Thresholds()) if s.key["metric"] == "steady_img_s"]
    (line,) = check.describe(s)[1:]
    assert "a new baseline, not judged: its configuration changed (knob threads 2 -> 1): 99 -> 60 (-39.4%)" in line
    store.add_run(hist, make_run(tmp_path / "a", 4, {ROW: {"steady_img_s": 61, "threads": 1}}))
    (s,) = [s for s in check.check(store.load(hist), [], check.Thresholds()) if s.key["metric"] == "steady_img_s"]
    assert check.describe(s) == []  # said once: the next run is judged against the new baseline


def test_a_slower_machine_is_a_step_in_the_raw_series_and_none_in_the_normalised_view(tmp_path: Path):
    """The same code on a machine running at 60% of its speed: throughput and calibration both drop."""
    hist = tmp_path / "history"
    for i in range(12):
        slow = 0.6 if i >= 6 else 1.0
        jitter = 1 + 0.004 * ((i * 7) % 5 - 2)
        store.add_run(hist, make_run(tmp_path, i, {ROW: {"steady_img_s": 1000 * slow * jitter}}, gflops=50 * slow))
    raw = check.check(store.load(hist), [], check.Thresholds())
    norm = check.check(store.load(hist, normalised=True), [], check.Thresholds(), normalised=True)
    assert [s.at for s in raw[0].steps] == [6]
    assert "calibration 50 -> 30 GFLOP/s (0.60x: the machine's own speed)" in raw[0].steps[0].changed
    assert norm[0].steps == [] and not norm[0].newest.regression


def test_a_matmul_peak_measured_under_load_calibrates_nothing_and_its_import_says_so(tmp_path: Path, capsys):
    """Since 2026-12-06 a row records the node's load as its peak's matmuls ended (``peak_flops_load``): beyond its
    cores they shared them, the peak reads low, and the normalised view (img/s / calibration) read the run high by as
    much. Such a peak is no calibration: a backend's calm peaks calibrate it alone; a backend with none is out of the
    normalised view, and the import says why."""
    from bench.run.history_cli import after_run, import_runs

    hist = tmp_path / "history"
    # torch: its peak under load (it reads 20 GFLOP/s); keras: one loaded at 20 and a repeat's calm one at 50
    torch_loaded = {"steady_img_s": 1000.0, "peak_flops_load": 5.0, "node_cores": 2}
    keras_loaded = {"steady_img_s": 900.0, "peak_flops_load": 4.0, "node_cores": 2}
    run = make_run(tmp_path / "runs", 1, {ROW: torch_loaded, ("lenet", "keras"): keras_loaded}, gflops=20)
    keras = json.loads((run / "records.jsonl").read_text().splitlines()[1])
    append_record(run, {**keras, "repeat": 1, "peak_flops": 50e9, "peak_flops_load": 1.0})
    speeds = run_rows(run).groupby("backend").calibration_gflops.first()
    assert pd.isna(speeds["torch"]) and speeds["keras"] == pytest.approx(50.0)
    assert import_runs(hist, [run]) == 0
    said = capsys.readouterr().out
    assert "torch's matmul peak was measured at load 5.0 on 2 cores, beyond its cores: no calibration" in said
    assert "keras's" not in said  # a calm peak calibrates it
    norm = store.load(hist, normalised=True)
    assert set(norm.dropna(subset=["calibration_gflops"]).backend) == {"keras"}
    lines: list[str] = []
    after_run(make_run(tmp_path / "runs", 2, {ROW: torch_loaded}, gflops=20), echo=lines.append)
    assert "rows are not in the normalised view" in lines[0]
    after_run(make_run(tmp_path / "runs", 3, {ROW: {"steady_img_s": 1000.0}}), echo=lines.append)
    assert "normalised view" not in lines[1]  # a peak of no recorded load: as before


def test_a_run_on_capped_kernels_is_another_machine_whose_step_says_so_and_an_uncapped_one_keeps_its_own(
    tmp_path: Path,
):
    """The same CPU, its kernels capped at AVX2 from run 6 on (bench.run.environment's ``kernel_variables``): in
    the raw view a series of its own (not a regression of the uncapped one); where series join across machines
    (normalised by calibration, here unchanged), the step names the cap. A run that recorded no cap is the
    machine it was before the variables were recorded."""
    hist = tmp_path / "history"
    capped = {**MACHINE, "kernel_variables": {"ATEN_CPU_CAPABILITY": "avx2"}}
    for i in range(12):
        jitter = 1 + 0.004 * ((i * 7) % 5 - 2)
        env = capped if i >= 6 else {**MACHINE, "kernel_variables": {}, "cpu_flags": ["avx2", "avx512f"]}
        store.add_run(hist, make_run(tmp_path, i, {ROW: {"steady_img_s": 1000 * (0.7 if i >= 6 else 1) * jitter}},
                                     machine=env))  # fmt: skip
    raw = [s for s in check.check(store.load(hist), [], check.Thresholds()) if s.key["metric"] == "steady_img_s"]
    assert [len(s.points) for s in raw] == [6, 6] and all(not s.steps and not s.newest.regression for s in raw)
    norm = check.check(store.load(hist, normalised=True), [], check.Thresholds(), normalised=True)
    (joined,) = [s for s in norm if s.key["metric"] == "steady_img_s"]
    assert [s.at for s in joined.steps] == [6]
    assert (
        "machine Test CPU 9000, 2 cores, 23.5 GiB, no GPU -> Test CPU 9000, 2 cores, 23.5 GiB, no GPU, kernels "
        "capped by ATEN_CPU_CAPABILITY=avx2"
    ) in joined.steps[0].changed
    before = run_rows(make_run(tmp_path / "old", 1, {ROW: {"steady_img_s": 1.0}}))  # no kernel_variables at all
    assert before.machine_id.iloc[0] == store.load(hist).sort_values("run_id").machine_id.iloc[0]


def test_a_run_restricted_to_fewer_cores_is_another_machine_whose_words_say_so(tmp_path: Path):
    """QA, 2026-12-06: a run under `taskset -c 0` on the 2-core VM (each framework on 1 thread: torch 18x faster
    there, Keras 0.8x) joined the 2-core runs' series, nothing in its machine or knobs saying why it moved. Its
    environment.json records the cores it was restricted to (bench.run.environment.restricted_cores): a series of
    its own, its words saying so; an unrestricted run's fingerprint is the one it had before."""
    hist = tmp_path / "history"
    restricted = {**MACHINE, "usable_cores": 1}
    for i in range(8):
        env = restricted if i >= 4 else MACHINE
        store.add_run(hist, make_run(tmp_path, i, {ROW: {"steady_img_s": 1000.0 * (3 if i >= 4 else 1)}}, machine=env))
    raw = [s for s in check.check(store.load(hist), [], check.Thresholds()) if s.key["metric"] == "steady_img_s"]
    assert [len(s.points) for s in raw] == [4, 4] and all(not s.newest.regression for s in raw)
    words = set(store.load(hist).machine)
    assert words == {
        "Test CPU 9000, 2 cores, 23.5 GiB, no GPU",
        "Test CPU 9000, 2 cores, 23.5 GiB, no GPU, the run on 1 of them",
    }
    before = run_rows(make_run(tmp_path / "old", 1, {ROW: {"steady_img_s": 1.0}}))
    assert before.machine_id.iloc[0] == store.load(hist).sort_values("run_id").machine_id.iloc[0]


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs 2 cores to restrict a process to one")
def test_environment_records_the_cores_a_restricted_run_may_use_and_nothing_otherwise():
    from bench.run.environment import restricted_cores

    probe = "import os; os.sched_setaffinity(0, {0}); from bench.run.environment import restricted_cores; " + (
        "print(restricted_cores())"
    )
    pinned = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO)
    assert pinned.stdout.strip() == "{'usable_cores': 1}", pinned.stderr
    assert restricted_cores() == {} or restricted_cores()["usable_cores"] < (os.cpu_count() or 0)


def test_history_cli_imports_the_reference_runs_and_finds_no_false_regression(tmp_path: Path):
    """The reference runs imported afresh, with the reference history's annotations (what a person said of a
    change there): nothing left unexplained. Without them nothing is flagged either: the one annotated change, Keras
    (JAX)'s cifar10-cnn train_s +11.7% (robust z 4.7 on its own 3 runs, flagged until the pool), is within the
    machine's train_s run-to-run noise (7.2% from 14 changes in 7 series; the other backends' train_s moved 8-26%
    into that run too)."""
    hist = tmp_path / "history"
    out = bench("history", "--store", str(hist), "import", *map(str, REFERENCE))
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("rows added as run") == len(REFERENCE)
    assert (hist / "index.html").stat().st_size > 1_000_000  # plotly's script inlined
    assert len(list((hist / "runs").iterdir())) == len(REFERENCE)
    unannotated = bench("history", "--store", str(hist))
    assert unannotated.returncode == 0 and "0 regressed newest point(s)" in unannotated.stdout, unannotated.stdout
    (jax,) = [
        s
        for s in check.check(store.load(hist), [], check.Thresholds())
        if s.name.startswith("cifar10-cnn / keras-jax / default / train_s") and len(s.points) == 4
    ]
    assert jax.pool is not None and (jax.pool.changes, jax.pool.series) == (14, 7) and 0.07 < jax.pool.noise < 0.075
    assert jax.newest is not None and jax.newest.pooled and jax.newest.change == pytest.approx(0.117, abs=5e-4)
    assert 1.5 < jax.newest.z < 1.7 and not jax.newest.regression  # 11.7% / 7.2%
    # in its own noise, the VM's slower afternoon is flagged: its third run against the first two, and so its fourth
    # against those two too, the third (flagged) left out (with it in, +11.7% at z 4.7)
    alone = check.analyse(jax.key, jax.points, [], check.Thresholds())
    assert alone.newest is not None and alone.newest.regression and alone.left_out == 1 and 7.0 < alone.newest.z < 7.2
    assert alone.newest.change == pytest.approx(0.1265, abs=5e-4) and alone.newest.baseline == 2
    notes = (REPO / "results" / "history-reference" / annotations.FILE).read_text()
    (hist / annotations.FILE).write_text(notes)
    checked = bench("history", "--store", str(hist))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "0 regressed newest point(s)" in checked.stdout


def test_history_cli_finds_a_planted_regression_on_a_reference_run_and_exits_1(tmp_path: Path):
    """A reference run's records, re-dated as six later runs of one series; the last at half the throughput."""
    source = REPO / "results" / "reference" / "20261129-015237-8cb5-all-backends"
    records = [json.loads(line) for line in (source / "records.jsonl").read_text().splitlines()]
    env = json.loads((source / "environment.json").read_text())
    runs = []
    for i in range(6):
        run = tmp_path / f"20261201-00000{i}-plnt"
        run.mkdir()
        (run / "environment.json").write_text(json.dumps({**env, "run_id": run.name, "git_commit": f"{i}aaaaaa"}))
        lines = []
        for r in records:
            r = {**r, "run_id": run.name, "started_at": f"2026-12-01T00:00:0{i}+0000"}
            if i == 5 and r["task"] == "cifar10-cnn" and r["backend"] == "keras":
                # this old record's headline is its window_img_s (read as steady_img_s since the headline moved)
                for col in ("steady_img_s", "steady_img_s_ci_lo", "steady_img_s_ci_hi", "window_img_s"):
                    r[col] = r[col] / 2
            lines.append(json.dumps(r))
        (run / "records.jsonl").write_text("\n".join(lines) + "\n")
        runs.append(run)
    hist = tmp_path / "history"
    assert bench("history", "--store", str(hist), "import", *map(str, runs[:5])).returncode == 0
    assert bench("history", "--store", str(hist)).returncode == 0
    assert bench("history", "--store", str(hist), "import", str(runs[5])).returncode == 0
    out = bench("history", "--store", str(hist), "--metric", "steady_img_s")
    assert out.returncode == 1, out.stdout
    assert "cifar10-cnn / keras / default / steady_img_s" in out.stdout and "REGRESSION: -50.0%" in out.stdout
    assert "commit 4aaaaaa -> 5aaaaaa" in out.stdout and "1 regressed newest point(s)" in out.stdout
    assert bench("history", "--store", str(hist), "--backend", "torch").returncode == 0
    flagged = (hist / "index.html").read_text()
    for blank in ("", "   "):  # QA, 2026-12-07: it reset every series, and the check said "baseline reset at run R:"
        refused = bench("history", "--store", str(hist), "annotate", runs[5].name, "--note", blank)
        assert refused.returncode == 2 and "--note: empty: say why the baseline starts again here" in refused.stderr
    assert not (hist / annotations.FILE).exists()
    noted = bench("history", "--store", str(hist), "annotate", runs[5].name, "--note", "halved on purpose")
    assert noted.returncode == 0 and f"wrote {hist / 'index.html'}" in noted.stdout
    assert bench("history", "--store", str(hist)).returncode == 0
    # the dashboard is written again with the note: its flag at that run is gone (QA: stale until the next import)
    page = (hist / "index.html").read_text()
    assert page.count('"regression": true') < flagged.count('"regression": true')


def test_history_cli_refuses_a_bad_store_in_one_line_exit_2(tmp_path: Path):
    out = bench("history", "--store", str(tmp_path / "none"))
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "no history store" in out.stderr
    bad = bench("history", "--store", str(tmp_path / "h"), "import", str(tmp_path))
    assert bad.returncode == 2 and "not a run directory" in bad.stderr
    skipped = tmp_path / "skipped-run"
    skipped.mkdir()
    append_record(skipped, new_record(task="t", backend="torch", repeat=0, status="skipped", error="not installed"))
    out = bench("history", "--store", str(tmp_path / "h"), "import", str(skipped))
    assert out.returncode == 0 and "nothing added" in out.stdout and (tmp_path / "h" / "index.html").is_file()
    assert bench("history", "--store", str(tmp_path / "h")).returncode == 0  # an empty store checks clean


def test_history_import_of_a_missing_path_names_it_and_creates_no_store(tmp_path: Path):
    """QA, 2026-12-06: `history import <missing path> --store NEW` created the store (STORE.json, runs/) before it
    failed. Every path is checked first: one line naming the bad one, exit 2, nothing written, not even the
    good run named before it."""
    good = make_run(tmp_path / "runs", 0, {ROW: {"steady_img_s": 100.0}})
    store_dir = tmp_path / "NEW"
    not_a_folder = "not a run directory or a history store (a store merges by its folder)"
    for bad, says in ((tmp_path / "nope", "no such run folder"), (good / "records.jsonl", not_a_folder)):
        out = bench("history", "import", str(good), str(bad), "--store", str(store_dir))
        assert out.returncode == 2 and out.stdout == "", out.stdout
        assert out.stderr == f"error: {bad}: {says}; nothing imported\n"
        assert not store_dir.exists()
    out = bench("history", "import", str(good), "--store", str(store_dir))
    assert out.returncode == 0 and "rows added as run" in out.stdout, out.stderr


def test_a_rung_of_a_tunes_race_is_refused_and_the_tune_itself_imports(tmp_path: Path):
    """QA, 2026-12-07: `history import TUNE/trials/RUNG` added the race's trials as run TUNE (a rung's records carry
    the tune's id), and the tune itself was then "in the history already": its default and best rows never went in.
    A rung is refused, naming the tune's folder; the tune imports."""
    tune = make_run(tmp_path / "runs", 0, {ROW: {"steady_img_s": 100.0}})
    (tune / "tune.json").write_text("{}")
    rung = tune / "trials" / "lenet.torch.r0"
    rung.mkdir(parents=True)
    shutil.copy(tune / "records.jsonl", rung / "records.jsonl")  # the tune's run id, as a rung's records have it
    store_dir = tmp_path / "h"
    out = bench("history", "--store", str(store_dir), "import", str(rung))
    assert out.returncode == 2 and not store_dir.exists(), out.stdout
    assert out.stderr == (
        f"error: {rung}: a rung of the race of tune {tune.name} (its rows carry the tune's run id and are trials, not "
        f"results): import the tune's folder, {tune}; nothing imported\n"
    )
    out = bench("history", "--store", str(store_dir), "import", str(tune))
    assert out.returncode == 0 and f"rows added as run {tune.name}" in out.stdout, out.stdout + out.stderr
    plain = tmp_path / "elsewhere" / "trials" / "x"  # a folder named trials with no tune above it: a run as any
    shutil.copytree(make_run(tmp_path / "other", 1, {ROW: {"steady_img_s": 100.0}}), plain)
    assert bench("history", "--store", str(store_dir), "import", str(plain)).returncode == 0


def test_a_run_imported_without_its_environment_file_is_said_to_be_kept_under_an_unknown_machine(tmp_path: Path):
    """QA, 2026-12-07: a run whose environment.json was lost was added without a word, its rows under machine "?"
    and no commit, a series apart; and a run is added once, so importing it again after restoring the file adds
    nothing. The import says so; a run with the file, and one in the store already, say nothing of it."""
    runs = tmp_path / "runs"
    whole, bare = make_run(runs, 0, {ROW: {"steady_img_s": 100.0}}), make_run(runs, 1, {ROW: {"steady_img_s": 101.0}})
    (bare / "environment.json").unlink()
    store_dir = tmp_path / "store"
    out = bench("history", "import", str(whole), str(bare), "--store", str(store_dir))
    assert out.returncode == 0 and out.stdout.count("rows added as run") == 2, out.stdout + out.stderr
    assert out.stderr == (
        f"warning: {bare}: no environment.json: its rows are kept under an unknown machine ('?') and no commit, a "
        "series of their own (a run is added once: restore the file before importing it)\n"
    ), out.stderr
    again = bench("history", "import", str(bare), "--store", str(store_dir))
    assert again.returncode == 0 and "nothing added" in again.stdout and again.stderr == "", again.stderr


def test_history_cli_refuses_a_task_backend_or_run_the_store_does_not_hold_exit_2(tmp_path: Path):
    """A typo checked no series and printed '0 regressed' with exit 0: a CI regression gate passed on nothing."""
    hist = tmp_path / "history"
    runs = series_runs(tmp_path / "a", [100, 101, 99])
    for r in runs:
        store.add_run(hist, r)
    out = bench("history", "--store", str(hist), "--task", "lenett")
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stdout + out.stderr
    assert "--task: no series of task 'lenett'" in out.stderr and "(its tasks: lenet)" in out.stderr
    out = bench("history", "--store", str(hist), "--task", "lenet", "--backend", "nonsense")
    assert out.returncode == 2 and "backend 'nonsense' with --task lenet" in out.stderr
    assert "(its backends: torch)" in out.stderr
    assert bench("history", "--store", str(hist), "--task", "lenet", "--backend", "torch").returncode == 0
    noted = bench("history", "--store", str(hist), "annotate", "no-such-run", "--note", "x")
    assert noted.returncode == 2 and "run 'no-such-run' is not in the history" in noted.stderr
    assert not (hist / annotations.FILE).exists()
    assert bench("history", "--store", str(hist), "annotate", runs[-1].name, "--note", "x").returncode == 0
    empty = tmp_path / "empty"
    store.check_store(empty, create=True)
    assert bench("history", "--store", str(empty), "--task", "any").returncode == 0  # nothing to know them by


def test_default_against_best_gives_large_figures_in_plain_digits_and_the_ratio():
    """QA, 2026-12-05: the dashboard's default-against-best table wrote 3.988e+04 img/s."""
    from bench.history.dashboard import default_vs_best

    rows = [
        dict(task="t", backend="torch", metric="steady_img_s", config=c, run_id="r1", run_date="2026-12-05", value=v)
        for c, v in (("default", 39_880.4), ("best", 43_120.0))
    ]
    html = default_vs_best(pd.DataFrame(rows))
    assert "39,880" in html and "43,120" in html and "1.081" in html and "e+0" not in html
    # QA, 2026-12-06: the table named its figures by their record columns ("steady_img_s", "mfu 0.3297") where the
    # charts above it, summary.md and compare give their words and formats
    mfu = [{**r, "metric": "mfu", "value": v} for r, v in zip(rows, (0.3297, 0.2438), strict=True)]
    html = default_vs_best(pd.DataFrame(rows + mfu))
    assert "headline throughput: timed images / window time (img/s, 95% CI)" in html and "steady_img_s" not in html
    assert "<td>MFU</td>" in html and ">32.97%<" in html and ">24.38%<" in html and ">0.3297<" not in html
    assert ">39,880.4<" in html  # the headline's own format (its sort key, data-v, stays the number)
    # and what the best ran apart from the default: every tuned row of a tune is config "best", which said nothing
    knobs = {"default": '{"precision": "fp32", "threads": 2}', "best": '{"precision": "fp32", "threads": 1}'}
    html = default_vs_best(pd.DataFrame([{**r, "knobs": knobs[r["config"]]} for r in rows]))
    assert "<td>best: knob threads 2 -&gt; 1</td>" in html, html
    html = default_vs_best(pd.DataFrame([{**r, "knobs": knobs["default"]} for r in rows]))
    assert "<td>best: the defaults</td>" in html, html  # its defaults won the race, measured again


def test_default_against_best_says_where_the_tunes_defaults_stood(tmp_path: Path):
    """The dashboard listed a tune's race winner as "best" with its ratio where the tune's fresh processes had not
    measured it faster and its verdict read the defaults (noticed 2026-12-07): the store keeps which configuration
    each tune's verdict read (``stands``, as summary.md's table says it) and the table says it."""
    from bench.history.dashboard import default_vs_best
    from bench.report.tuning import standings

    run = REFERENCE_DIR / "20261205-033829-0671-tune-cifar10-amd-3"
    hist = tmp_path / "history"
    store.add_run(hist, run)
    df = store.load(hist)
    best = df[df.config == "best"].drop_duplicates(["task", "backend"]).set_index("backend").stands.to_dict()
    # torch's bf16 winner measured faster again; Keras (TF)'s winner not: its defaults stand
    assert best == {
        "torch": "best",
        "keras": "the defaults (best not measured faster)",
        "keras-jax": "the defaults (measured twice)",
        "keras-torch": "the defaults (best not measured faster)",
    }
    assert best == {b: v for (_, b), v in standings(read_records(run), run).items()}
    assert df[df.config != "best"].stands.isna().all()
    html = default_vs_best(df[df.metric == "steady_img_s"])
    rows = {r.split("<td>")[2].split("<")[0]: r for r in html.split("<tr>")[2:]}
    assert "<td>best stands</td>" in rows["PyTorch"], rows["PyTorch"]
    assert "<td>defaults stand (best not measured faster)</td>" in rows["Keras (TF)"]
    assert "<th>tune&#x27;s verdict</th>" in html, html[:400]


def test_an_unfinished_run_is_not_imported_so_its_resume_adds_it_whole(tmp_path: Path):
    """QA, 2026-12-06: `history import results/2*` took an interrupted run's first rows; its --resume then
    finished it, found the run id in the store and added nothing, silently: its other rows never landed."""
    hist = tmp_path / "history"
    run = make_run(tmp_path, 1, {ROW: {"steady_img_s": 1000.0, "test_acc": 0.9}})
    (run / "state.json").write_text(json.dumps({"planned": 2, "state": "interrupted", "command": "all"}))
    out = bench("history", "--store", str(hist), "import", str(run))
    assert out.returncode == 0, out.stderr
    assert f"{run}: not added: the run is interrupted" in out.stdout
    assert f"finish it first: python -m bench all --resume {run}" in out.stdout
    assert store.load(hist).empty
    (run / "state.json").write_text(json.dumps({"planned": 2, "state": "complete", "command": "all"}))
    out = bench("history", "--store", str(hist), "import", str(run))
    assert "2 rows added" in out.stdout and len(store.load(hist)) == 2


def test_an_annotation_naming_a_task_backend_or_metric_its_run_does_not_hold_is_refused_exit_2(tmp_path: Path):
    """QA, 2026-12-06: `annotate RUN --task mnist-lenet55` was written and said "annotated": a note on no series of
    its run resets no baseline, and the regression it was meant to explain stayed flagged."""
    hist = tmp_path / "history"
    runs = series_runs(tmp_path / "a", [100, 101])
    for r in runs:
        store.add_run(hist, r)
    run = runs[-1].name
    out = bench("history", "--store", str(hist), "annotate", run, "--note", "x", "--task", "lenett")
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stdout + out.stderr
    assert f"--task: no series of task 'lenett' with run {run}" in out.stderr and "(its tasks: lenet)" in out.stderr
    out = bench("history", "--store", str(hist), "annotate", run, "--note", "x", "--backend", "kers")
    assert out.returncode == 2 and "(its backends: torch)" in out.stderr
    out = bench("history", "--store", str(hist), "annotate", run, "--note", "x", "--metric", "scaling_eff")
    assert out.returncode == 2 and "metric 'scaling_eff'" in out.stderr
    assert not (hist / annotations.FILE).exists()
    ok = bench("history", "--store", str(hist), "annotate", run, "--note", "x", "--task", "lenet", "--backend", "torch")
    assert ok.returncode == 0 and len(annotations.read(hist)) == 1


def test_nothing_added_says_why_the_run_in_the_store_already_or_no_row_that_ran(tmp_path: Path):
    """QA, 2026-12-06: "nothing added (... is in the history already, or has no ok row)" left the reader to guess,
    and a completed run whose id the store held already (imported unfinished) was added to nothing silently. A run
    whose every row failed is added (its rows' status and error, since 2026-12-07); one whose every row was skipped
    (a framework not installed, a budget) ran nothing, and adds nothing."""
    from bench.run.history_cli import after_run

    hist = tmp_path / "history"
    run = make_run(tmp_path, 1, {ROW: {"steady_img_s": 1000.0}})
    store.add_run(hist, run)
    out = bench("history", "--store", str(hist), "import", str(run))
    assert f"nothing added (run {run.name}: it is in the history already)" in out.stdout
    said: list[str] = []
    after_run(run, said.append)
    assert said == [f"history: nothing added to {hist}: run {run.name} was there already, as it was then"]
    skipped = tmp_path / "skipped-run"
    skipped.mkdir()
    append_record(skipped, new_record(task="t", backend="torch", repeat=0, status="skipped", error="not installed"))
    out = bench("history", "--store", str(hist), "import", str(skipped))
    assert out.returncode == 0, out.stderr
    assert "nothing added (run skipped-run: no row of it ran (no ok, failed or timed-out row))" in out.stdout
    said.clear()
    after_run(skipped, said.append)
    assert said == []  # a run that ran no row adds nothing: no line
    failed = tmp_path / "failed-run"
    failed.mkdir()
    append_record(failed, new_record(task="t", backend="torch", repeat=0, status="failed", error="boom"))
    after_run(failed, said.append)
    (line,) = said
    assert line.startswith(
        f"history: 1 metric rows of run failed-run added to {hist} (1 of them a row that failed or timed out: its "
        "status and error) (dashboard "
    ), line


def test_two_series_of_one_task_are_told_apart_by_their_profile_and_task_hash(tmp_path: Path):
    """QA, 2026-12-06: `history --verbose` printed "cifar10-cnn / keras / default / steady_img_s on AMD EPYC..."
    twice, with 4 points and with 1: one series per task hash, named alike (the dashboard's legend says which)."""
    hist = tmp_path / "history"
    for i, profile in enumerate(["quick", "quick", "full"]):
        store.add_run(hist, make_run(tmp_path, i, {ROW: {"steady_img_s": 100.0, "profile": profile}}))
    out = bench("history", "--store", str(hist), "--metric", "steady_img_s", "--verbose")
    lines = [line for line in out.stdout.splitlines() if line.endswith("point(s), no step")]
    assert len(lines) == 2 and len({line.split(" on ")[0] for line in lines}) == 2, out.stdout
    quick, full = sorted(lines, key=lambda line: "full" in line)
    assert "lenet / torch / default / steady_img_s [quick profile, task " in quick and "2 point(s)" in quick
    assert "[full profile, task " in full and "1 point(s)" in full


def steady_series(s: list[check.Series]) -> check.Series:
    (one,) = [x for x in s if x.key["metric"] == "steady_img_s"]
    return one


def test_a_verdict_at_a_run_timed_beyond_its_cores_says_so_and_judges_as_before(tmp_path: Path):
    """QA, 2026-12-06: a run at load 7.7 on 2 cores read 3.3x slower than its twin, and bench history reported its
    regression like any other. The store keeps each row's load as its window ended (its most loaded repeat's, per
    core) and the verdict at such a run says so in one clause; what is flagged, and the exit status, are as before."""
    quiet = {"load_avg_1m_end": 1.0, "node_cores": 2}  # busy, but not beyond its cores: nothing said

    def store_of(name: str, last: dict) -> Path:
        hist = tmp_path / name / "history"
        for n, v in enumerate([100, 101, 99, 100, 100.5, 99.5]):
            store.add_run(hist, make_run(tmp_path / name, n, {ROW: {"steady_img_s": v, **quiet}}))
        store.add_run(hist, make_run(tmp_path / name, 6, {ROW: {"steady_img_s": 60.0, **last}}))
        return hist

    loaded, calm = store_of("loaded", {"load_avg_1m_end": 7.7, "node_cores": 2}), store_of("calm", quiet)
    # under the load line, others on a share of the row's cores (its most so of its repeats) are said the same way
    beside = store_of("beside", {**quiet, "others_cpu_pct": 41.0})
    (b,) = [
        line
        for line in check.describe(steady_series(check.check(store.load(beside), [], check.Thresholds())))
        if "newest run" in line
    ]
    assert b.endswith(", timed with others using 41% of the cores"), b
    s, c = (steady_series(check.check(store.load(h), [], check.Thresholds())) for h in (loaded, calm))
    assert s.newest.regression and c.newest.regression and s.newest.z == pytest.approx(c.newest.z)
    said = [line for line in check.describe(s) if "newest run" in line]
    assert said == [line + ", timed at load 7.7 on 2 cores" for line in check.describe(c) if "newest run" in line]
    assert not any("timed at" in line for line in check.describe(c))
    proc = bench("history", "--store", str(loaded))
    assert proc.returncode == 1 and "(robust z -" in proc.stdout and "timed at load 7.7 on 2 cores" in proc.stdout
    # a step at a loaded run says so too; the run before it, quiet, is not the step's
    steps = tmp_path / "steps"
    for n, v in enumerate([100, 101, 99, 100, 80, 81, 79, 80.5]):
        load = {"load_avg_1m_end": 7.7 if n == 4 else 1.0, "node_cores": 2}
        store.add_run(steps / "history", make_run(steps, n, {ROW: {"steady_img_s": v, **load}}))
    s = steady_series(check.check(store.load(steps / "history"), [], check.Thresholds()))
    assert [st.at for st in s.steps] == [4]
    (line,) = [line for line in check.describe(s) if "step at run" in line]
    assert line.endswith("100 -> 80.25 (-19.8%), timed at load 7.7 on 2 cores")


def test_an_old_runs_rows_without_a_load_read_its_start_load_as_bench_compare_reads_it(tmp_path: Path):
    """Rows recorded before 2026-12-06 kept no load of their own; bench compare then reads the run's environment.json
    load at its start, and bench history reads it too (one helper, ``bench.core.placement.run_load``): a regression
    at such a run says it started beyond its cores, in words that say whose figure it is; the verdict is as before."""
    from bench.core.placement import run_load
    from bench.report.compare import load_lines

    hist = tmp_path / "history"
    for n, v in enumerate([100, 101, 99, 100, 100.5, 99.5]):
        store.add_run(hist, make_run(tmp_path, n, {ROW: {"steady_img_s": v}}))
    old = make_run(tmp_path, 6, {ROW: {"steady_img_s": 60.0}}, machine={**MACHINE, "load_avg_1m_at_start": 7.7})
    store.add_run(hist, old)
    s = steady_series(check.check(store.load(hist), [], check.Thresholds()))
    (line,) = [line for line in check.describe(s) if "newest run" in line]
    said = "started at load 7.7 on 2 cores (its rows recorded no load of their own)"
    assert s.newest.regression and line.endswith(f", {said}"), line
    assert not any("started at" in line for line in check.describe(s) if "newest run" not in line)
    # the same figure bench compare names for the run, from the same helper
    env = json.loads((old / "environment.json").read_text())
    assert run_load([{}], env) == {"load_avg_1m_end": 7.7, "node_cores": 2, "load_at": "start"}
    rows = pd.DataFrame([{"status": "ok", "load_avg_1m_end": None, "node_cores": None}])
    assert load_lines(rows, rows, env, {}) == [
        "A's rows started at load 7.7 on 2 cores: a slowdown may be the machine's "
        "(its rows recorded no load of their own)"
    ]
    # a row's own load, where it kept one, is what both read
    own = {"load_avg_1m_end": 3.0, "node_cores": 2}
    assert run_load([own], env) == {**own, "load_at": "end"}


def test_a_rows_load_is_its_most_loaded_repeats_per_core():
    from bench.core.placement import most_loaded

    repeats = [{"load_avg_1m_end": 7.7, "node_cores": 8}, {"load_avg_1m_end": 3.0, "node_cores": 2}, {}]
    assert most_loaded(repeats) == {"load_avg_1m_end": 3.0, "node_cores": 2}  # 1.5 a core, not 0.96
    assert most_loaded([{}, {"load_avg_1m_end": 7.7}]) == {"load_avg_1m_end": None, "node_cores": None}


def test_a_store_from_before_the_load_was_kept_reads_and_judges_as_before(tmp_path: Path):
    """Run files written before 2026-12-06 have no load columns. The store reads them as empty, a run file beside
    them that has the columns included: no migration, no new store format, nothing rewritten; their series are
    judged as the same runs stored now are, and the committed reference store still reads."""
    from bench.history.rows import ADDED, typed

    values = [100, 101, 99, 100, 100.5, 99.5, 60]
    runs = [make_run(tmp_path / "runs", n, {ROW: {"steady_img_s": v}}) for n, v in enumerate(values)]
    old, now = tmp_path / "old", tmp_path / "now"
    runs_dir = store.check_store(old, create=True)
    for r in runs:  # as the store's code before 2026-12-06 wrote them
        rows = typed(run_rows(r)).drop(columns=list(ADDED))
        rows.to_parquet(runs_dir / f"{rows.run_id.iloc[0]}.parquet", index=False)
        store.add_run(now, r)
    a, b = store.load(old), store.load(now)
    assert set(ADDED) <= set(a.columns) and a[list(ADDED)].isna().all().all()
    assert [check.describe(s) for s in check.check(a, [], check.Thresholds())] == [
        check.describe(s) for s in check.check(b, [], check.Thresholds())
    ]
    assert steady_series(check.check(a, [], check.Thresholds())).newest.regression
    # a newer run beside the old files: its load read, theirs empty
    store.add_run(
        old, make_run(tmp_path / "runs", 7, {ROW: {"steady_img_s": 59, "load_avg_1m_end": 7.7, "node_cores": 2}})
    )
    mixed = store.load(old)
    assert mixed.load_avg_1m_end.notna().sum() == 1 and mixed.node_cores.max() == 2
    assert any(
        "timed at load 7.7 on 2 cores" in line
        for line in check.describe(steady_series(check.check(mixed, [], check.Thresholds())))
    )
    reference = store.load(REPO / "results" / "history-reference")
    assert len(reference) and reference[list(ADDED)].isna().all().all()


def test_mfu_carries_the_headlines_interval_and_is_flagged_only_where_the_headline_is(tmp_path: Path):
    """QA, 2026-12-07: a loaded run's headline throughput fell with a wide interval and was not flagged, while its MFU
    (that throughput over a peak, with no interval of its own) read REGRESSION -62.9%, robust z -44.8: two close runs
    before it were its only noise. MFU is given the headline's interval, scaled: here both fell 15% within their
    noise, and neither is flagged."""
    hist = tmp_path / "history"
    for n, (v, lo, hi) in enumerate([(12900, 9000, 16000), (12950, 9100, 16500), (11000, 400, 13000)]):
        fields = {"steady_img_s": float(v), "steady_img_s_ci_lo": float(lo), "steady_img_s_ci_hi": float(hi)}
        store.add_run(hist, make_run(tmp_path, n, {ROW: {**fields, "mfu": 0.3 * v / 12900}}))
    df = store.load(hist)
    newest = df[(df.metric == "mfu") & (df.run_id == df.run_id.max())].iloc[0]
    assert newest["lo"] == pytest.approx(newest["value"] * 400 / 11000)
    assert newest["hi"] == pytest.approx(newest["value"] * 13000 / 11000)
    series = {s.key["metric"]: s for s in check.check(df, [], check.Thresholds())}
    assert not series["steady_img_s"].newest.regression and not series["mfu"].newest.regression


def test_a_runs_own_load_is_not_beyond_its_cores_and_others_work_on_top_of_it_is():
    """A run's own rows keep a node at about its cores: `bench all` on an idle 2-core VM (2026-12-06) recorded 0.9-2.3
    as its rows ended and as its matmul peaks were measured, and a plain ``load > cores`` flagged that run's MFU,
    its history calibration and bench compare's load line. Others' work on top (7.7 on 2 cores: identical runs 3.3x
    apart; 4-5 while other sessions ran) still counts, through every reader (compare, history, MFU note)."""
    from bench.core.placement import beyond_cores, busy_above
    from bench.history.rows import loaded_peak
    from bench.measure.mfu import loaded_peak_note

    own_run = [0.93, 1.49, 2.12, 2.31]  # that run's loads, as its records kept them
    assert not any(beyond_cores(load, 2) for load in own_run)
    assert all(beyond_cores(load, 2) for load in (3.1, 4.0, 7.7))
    assert busy_above(1) == 2 and busy_above(2) == 3 and busy_above(16) == 24  # the cores plus one on small nodes
    row = {"peak_flops_key": "k", "node_cores": 2}
    assert loaded_peak_note({**row, "peak_flops_load": 2.31}) is None
    assert "load 4.0 on 2 cores" in (loaded_peak_note({**row, "peak_flops_load": 4.0}) or "")
    assert not loaded_peak({"peak_flops_load": 2.31, "node_cores": 2}) and loaded_peak(
        {"peak_flops_load": 5.0, "node_cores": 2}
    )


def test_a_store_merges_into_another_by_its_folder_with_its_annotations(tmp_path: Path):
    """QA, 2026-12-07: two stores (a CI machine's, a laptop's) could be made one only by copying files by hand, and
    `history import OTHER/runs/X.parquet` said "X.parquet/state.json: cannot be inspected (Not a directory)".
    `history import OTHER_STORE` adds each of its runs not here yet (rows as stored, a file from before a column was
    added with it empty) and its annotations this store lacks; the merged store reads as one built from every run."""
    from bench.history.rows import ADDED, typed

    runs = [make_run(tmp_path / "runs", n, {ROW: {"steady_img_s": v}}) for n, v in enumerate([100, 101, 99, 100, 70])]
    mine, other, whole = tmp_path / "mine", tmp_path / "other", tmp_path / "whole"
    for r in runs[:3]:
        store.add_run(mine, r)
    for r in runs:
        store.add_run(whole, r)
    other_runs = store.check_store(other, create=True)
    for r in runs[2:]:  # as the store's code before 2026-12-06 wrote them: no load columns
        rows = typed(run_rows(r)).drop(columns=list(ADDED))
        rows.to_parquet(other_runs / f"{rows.run_id.iloc[0]}.parquet", index=False)
    note = annotations.Annotation(runs[4].name, "new loader", metric="steady_img_s")
    annotations.append(other, note)
    out = bench("history", "--store", str(mine), "import", str(other))
    assert (
        out.returncode == 0 and f"{other}: 2 run(s) added (" in out.stdout and "1 in this store already" in out.stdout
    )
    assert annotations.read(mine) == [note]
    key = ["run_id", "task", "backend", "metric"]
    merged, built = (store.load(s).sort_values(key).reset_index(drop=True) for s in (mine, whole))
    pd.testing.assert_frame_equal(merged.drop(columns=list(ADDED)), built.drop(columns=list(ADDED)))
    again = bench("history", "--store", str(mine), "import", str(other))
    assert "0 run(s) added (0 rows), 3 in this store already" in again.stdout and annotations.read(mine) == [note]
    (s,) = [s for s in check.check(store.load(mine), [note], check.Thresholds()) if s.key["metric"] == "steady_img_s"]
    assert s.reset_note == "new loader" and s.newest is None
    a_file = next(other_runs.iterdir())
    bad = bench("history", "--store", str(mine), "import", str(a_file))
    assert bad.returncode == 2 and bad.stderr.strip() == (
        f"error: {a_file}: not a run directory or a history store (a store merges by its folder); nothing imported"
    )
    itself = bench("history", "--store", str(mine), "import", str(mine))
    assert itself.returncode == 2 and "the store itself; nothing to merge" in itself.stderr
