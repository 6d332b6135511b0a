"""Data-parallel rows (issue #15): the arithmetic, the spec and CLI, the launch configs, and real
2-worker runs through the launcher (rendezvous, teardown, a killed rank, a busy port)."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.stats import hmean

import backends
from bench.core.cpus import usable_cores
from bench.core.distributed import DistContext, per_worker_batch, shard_order
from bench.core.job import DistLayout, Job
from bench.core.results import record_key
from bench.core.spec import MAX_THREADS, MAX_WORKERS, SpecError, parse_task
from bench.measure import scaling
from bench.run import dist_launch, distributed
from bench.run.dist_cli import with_workers
from bench.run.dist_worker import train_rank
from tests.conftest import REPO, TINY_TASK, live_processes, only_run_dir, printed, records, run_cli, sigint_default
from tests.faults import dist_fault_env

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="process groups and /proc")
DP_TASK = (
    TINY_TASK.replace('name = "tiny"', 'name = "tiny-dp"').replace("batch_size = 64", "batch_size = 32")
    + """
[runtime]
warmup_steps = 1
timed_steps = 2
[distributed]
workers = [1, 2]
timeout_s = 30
"""
)


def tiny_spec(**distributed: object):
    import tomllib

    data = tomllib.loads(DP_TASK)
    data["distributed"] = {**data["distributed"], **distributed}
    return parse_task(data, source="tiny.toml")


# -- arithmetic ------------------------------------------------------------------------------------


def test_efficiency_and_allreduce_share_arithmetic():
    assert scaling.efficiency(180.0, 100.0, 2) == pytest.approx(0.9)
    assert scaling.efficiency(100.0, 100.0, 1) == 1.0
    assert scaling.allreduce_share(0.25, 0.2) == pytest.approx(0.2)  # a fifth of the step exchanges gradients
    assert scaling.allreduce_share(0.2, 0.21) < 0  # noise is reported as measured, never clipped
    with pytest.raises(ValueError, match="positive 1-worker rate"):
        scaling.efficiency(1.0, 0.0, 2)
    with pytest.raises(ValueError, match="step times must be > 0"):
        scaling.allreduce_share(0.0, 0.1)
    # QA, 2026-12-08: -96.3% (local 0.0345 s, joined 0.0176 s) stood in the table as a measured share
    share = scaling.allreduce_share(0.0176, 0.0345)
    assert scaling.share_text(share) == f"{share:.1%} (not a share: the unjoined workers ran slower; a busy machine?)"
    assert scaling.share_text(scaling.allreduce_share(0.2, 0.21)) == "-5.0%"  # noise: as measured
    assert scaling.share_text(0.2) == "20.0%" and scaling.share_text(None) == "-"


def test_global_steps_take_the_slowest_rank_and_every_rank_images():
    d, i = scaling.global_steps([[0.1, 0.3, 0.2], [0.2, 0.1, 0.2, 9.0]], [[16, 16, 16], [16, 16, 16, 16]])
    assert d == [0.2, 0.3, 0.2] and i == [32, 32, 32]  # cut to the shortest rank
    t = scaling.throughput(d, i)
    # the window: 96 images in 0.7 s (mean step 0.233 s); the median step 32 / 0.2 s
    assert t["steady_step_s"] == pytest.approx(0.7 / 3) and t["steady_img_s"] == pytest.approx(96 / 0.7)
    assert t["median_step_img_s"] == pytest.approx(160.0)
    assert t["steady_img_s_ci_lo"] <= t["steady_img_s"] <= t["steady_img_s_ci_hi"]
    with pytest.raises(ValueError, match="ranks"):
        scaling.global_steps([[0.1]], [])


def test_efficiency_interval_contains_the_figure_and_narrows_with_more_steps():
    rng = np.random.default_rng(1)
    few_n, few_1 = rng.normal(180, 10, 20), rng.normal(100, 5, 20)
    many_n, many_1 = rng.normal(180, 10, 400), rng.normal(100, 5, 400)
    lo, hi = scaling.efficiency_ci(few_n, few_1, 2)
    assert lo < hmean(few_n) / (2 * hmean(few_1)) < hi
    lo2, hi2 = scaling.efficiency_ci(many_n, many_1, 2)
    assert lo2 < 0.9 < hi2 and hi2 - lo2 < hi - lo
    assert scaling.efficiency_ci([1.0], [1.0, 2.0], 2) is None
    row = {"workers": 2, "steady_img_s": 180.0, "step_img_s": list(few_n), "steady_img_s_ci_lo": 170.0}
    base = {"workers": 1, "steady_img_s": 100.0, "step_img_s": list(few_1), "steady_img_s_ci_lo": 95.0}
    fields = scaling.baseline_fields(row, base)
    assert fields["scaling_eff"] == pytest.approx(0.9) and fields["scaling_eff_ci_lo"] < 0.9
    assert scaling.baseline_fields(row, None) == {}
    # a row whose own headline has no interval (too few synchronised stretches) gives its efficiency none
    assert scaling.baseline_fields({**row, "steady_img_s_ci_lo": None}, base) == {"scaling_eff": pytest.approx(0.9)}


def test_ranks_that_dispatch_asynchronously_are_sampled_per_synchronised_stretch():
    """Keras/JAX ranks: a step returns in 10 ms and the stretch's last step (where the clock synchronises) holds
    the others' work. Read step by step, 400 img/s came out as ± 9,578 on a 2-core VM (2026-12-05); read by
    stretch, the interval rests on the stretches shared by every rank (3 or more), else there is none."""
    ranks = [[0.01, 0.01, 0.48 + 0.02 * k] * 4 for k in range(2)]  # two ranks, four stretches of 3 steps
    images = [[16] * 12] * 2
    d, i = scaling.global_steps(ranks, images)
    by_step = scaling.throughput(d, i)
    by_stretch = scaling.throughput(d, i, scaling.rank_segments([[3, 3, 3, 3]] * 2, len(d)))
    assert by_step["steady_img_s"] == by_stretch["steady_img_s"] == pytest.approx(32 * 12 / (4 * 0.52))
    assert by_step["steady_img_s_hw_pct"] > 25 and by_stretch["steady_img_s_hw_pct"] == pytest.approx(0.0)
    assert by_stretch["median_step_img_s"] is None
    two = scaling.throughput(d[:6], i[:6], scaling.rank_segments([[3, 3]] * 2, 6))
    assert two.get("steady_img_s_ci_lo") is None  # two stretches: no interval rather than a wrong one
    # stretches every rank shares, covering the global steps; anything else is not read as stretches
    assert scaling.rank_segments([[3, 3], [3, 3]], 6) == [3, 3]
    assert scaling.rank_segments([[3, 3], [2, 4]], 6) is None and scaling.rank_segments([None, None], 6) is None
    assert scaling.rank_segments([[3, 3], [3, 3]], 5) is None  # a rank cut short: the stretches no longer fit


def test_rows_timed_step_by_step_keep_the_bootstrap_of_their_steps():
    """Rows without stretches: the interval is the block bootstrap of the harmonic means' ratio, as before stretches
    were read (the same draws: the same interval)."""

    rng = np.random.default_rng(3)
    a, b = rng.normal(180, 10, 60), rng.normal(100, 5, 60)
    expected = step_bootstrap(a, b, 2)
    assert scaling.efficiency_ci(a, b, 2) == pytest.approx(expected, rel=1e-12)
    row = {"workers": 2, "steady_img_s": hmean(a) * 60, "step_img_s": list(a), "steady_img_s_ci_lo": 1.0}
    base = {"workers": 1, "steady_img_s": hmean(b) * 30, "step_img_s": list(b), "steady_img_s_ci_lo": 1.0}
    fields = scaling.baseline_fields(row, base)
    assert (fields["scaling_eff_ci_lo"], fields["scaling_eff_ci_hi"]) == pytest.approx(expected, rel=1e-12)
    none = {**row, "step_segments": None}, {**base, "step_segments": None}  # a record's empty field: the same
    assert scaling.baseline_fields(*none) == fields


def step_bootstrap(a: np.ndarray, b: np.ndarray, workers: int) -> tuple[float, float]:
    """The block bootstrap of hmean(a) / (workers x hmean(b)) over steps: efficiency_ci's reading of step-timed
    rows, and what it read the per-step copies of stretch-timed rows with before their stretches were samples."""
    from bench.measure import stats

    draw = np.random.default_rng(stats.SEED)
    ratio = hmean(a[stats.resample_indices(a, stats.RESAMPLES, draw)], axis=1) / (
        workers * hmean(b[stats.resample_indices(b, stats.RESAMPLES, draw)], axis=1)
    )
    lo, hi = np.quantile(ratio, [0.025, 0.975])
    return float(lo), float(hi)


def test_efficiency_of_rows_timed_in_stretches_is_sampled_per_stretch_and_covers_about_95_percent():
    """Keras/JAX data-parallel rows and their 1-worker baseline: each step carries its stretch's rate, and the
    bootstrap read those copies as independent steps. 3 stretches a row, 5% apart, 40 steps each: the step
    bootstrap's interval covered the true efficiency in 129 of 200 simulated pairs (65%); read per stretch
    (Welch's t over log rates), 193 (95% expected)."""
    from bench.measure import stats, tuning

    rng = np.random.default_rng(7)
    true_eff, steps = 0.8, 40

    def row(img_s: float, workers: int, stretches: int = 3) -> dict:
        rates = img_s * np.exp(0.05 * rng.standard_normal(stretches))
        d = np.repeat(32 / rates, steps)
        return {"workers": workers, **scaling.throughput(list(d), [32] * len(d), [steps] * stretches)}

    covered_now = covered_by_steps = 0
    for _ in range(200):
        dp, base = row(2 * true_eff * 500.0, 2), row(500.0, 1)
        fields = scaling.baseline_fields(dp, base)
        lo, hi = fields["scaling_eff_ci_lo"], fields["scaling_eff_ci_hi"]
        assert lo <= fields["scaling_eff"] <= hi  # the interval holds the figure it stands beside
        covered_now += lo <= true_eff <= hi
        old = step_bootstrap(np.asarray(dp["step_img_s"]), np.asarray(base["step_img_s"]), 2)  # copies as steps
        covered_by_steps += old[0] <= true_eff <= old[1]
        # a record without its segments (written before them) reads its runs of copies as the stretches
        assert scaling.efficiency_ci(dp["step_img_s"], base["step_img_s"], 2) == pytest.approx((lo, hi))
    assert covered_now >= 180, covered_now  # ~190 expected at 95% (193 here)
    assert covered_by_steps < 150, covered_by_steps  # the step reading: 129 of 200 (65%), far too narrow

    dp, base = row(800.0, 2, stretches=4), row(500.0, 1, stretches=3)
    segs = dp["step_segments"], base["step_segments"]
    lo, hi = scaling.efficiency_ci(dp["step_img_s"], base["step_img_s"], 2, segments_n=segs[0], segments_1=segs[1])
    # the ratio of the stretch rates' geometric means, by tuning.ratio_ci (Welch's t), over the workers
    _, rlo, rhi = tuning.ratio_ci(stats.samples(dp["step_img_s"], segs[0]), stats.samples(base["step_img_s"], segs[1]))
    assert (lo, hi) == pytest.approx((rlo / 2, rhi / 2))
    # one row timed step by step (its ranks' stretches differed): it is one draw beside the other's stretches
    mixed = scaling.efficiency_ci(dp["step_img_s"], base["step_img_s"], 2, segments_1=segs[1])
    assert mixed is not None and mixed[1] - mixed[0] > 0
    # fewer stretches than an interval needs, or a series that does not map onto its stretches: none
    for rates, segments in ((base["step_img_s"][:80], [40, 40]), (base["step_img_s"][:60], [40, 40, 40])):
        assert scaling.efficiency_ci(dp["step_img_s"], rates, 2, segments_n=segs[0], segments_1=segments) is None
    # a record of before 2026-12-06, over 400 steps folded across its stretches: read per stretch where a whole
    # fold window lies inside one (the 2-step stretch holds none), none below 3 stretches so read
    base_rates = np.array([450.0, 500.0, 520.0, 480.0])
    for stretches, expected in (([2, 299, 300, 299], 3), ([2, 2, 449, 449], 2)):
        old_series = stats.fold(np.repeat(32 / base_rates, stretches), np.repeat(np.full(4, 32.0), stretches))
        assert len(stats.stretch_rates(list(old_series), stretches) or []) == expected
        got = scaling.efficiency_ci(dp["step_img_s"], list(old_series), 2, segments_n=segs[0], segments_1=stretches)
        if expected < stats.MIN_SEGMENTS:
            assert got is None
        else:
            _, rlo, rhi = tuning.ratio_ci(stats.samples(dp["step_img_s"], segs[0]), [[r] for r in base_rates[1:]])
            assert got == pytest.approx((rlo / 2, rhi / 2), rel=1e-9)


@pytest.fixture
def numpy_backend(monkeypatch):
    """The numpy test backend's description in this process's registry (a rank reads its knob columns there), and
    one with Keras's ``steps_per_execution`` knob column; returns the Backend class."""
    from tests import numpy_backend

    def executions(knobs: dict, spec: Any) -> dict:
        return {"steps_per_execution": spec.runtime.steps_per_execution}

    monkeypatch.setitem(backends.BACKENDS, "numpy", numpy_backend.DESCRIPTION)
    keras_like = dataclasses.replace(numpy_backend.DESCRIPTION, name="numpy-spe", knob_columns=executions)
    monkeypatch.setitem(backends.BACKENDS, "numpy-spe", keras_like)
    return numpy_backend.Backend


CLASSES = ("a", "b", "c")


def rank_data(n: int = 96) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"x_train": rng.integers(0, 255, (n, 6, 6, 1), dtype=np.uint8), "y_train": rng.integers(0, 3, n)}


def learnable_data(n: int, n_test: int) -> dict[str, np.ndarray]:
    """Images whose bright columns tell their class, most of the time (class c: columns 2c and 2c + 1, in noise)."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, n + n_test)
    x = rng.normal(100, 60, (n + n_test, 6, 6, 1))
    for i, c in enumerate(y):
        x[i, :, 2 * c : 2 * c + 2] += 40
    x = np.clip(x, 0, 255).astype(np.uint8)
    return {"x_train": x[:n], "y_train": y[:n], "x_test": x[n:], "y_test": y[n:]}


def test_a_data_parallel_row_records_rank_0s_node_load_as_its_window_ended(numpy_backend, monkeypatch):
    """A data-parallel row kept no ``load_avg_1m_end`` nor ``node_cores`` (the single-process row has kept them since
    2026-12-06), so bench compare and bench history could not say a DP row was timed on a loaded machine. Rank 0
    takes them by the single-process worker's own helper (bench.core.placement.node_load) and the row keeps them."""
    import os

    class Joins(numpy_backend):
        def join(self, ctx: DistContext) -> dict[str, Any]:
            return {"dist_backend": "none (test)"}

    monkeypatch.setattr(os, "getloadavg", lambda: (7.7, 5.0, 3.0))  # the 1-min figure, not the 5 or 15
    spec, data = tiny_spec(), learnable_data(64, 20)
    addresses = ("127.0.0.1:1", "127.0.0.1:2")
    chief, other = (
        train_rank(Joins(), spec, DistContext(r, 2, addresses), DistLayout(2, "strong", 16), data, CLASSES, seed=0)
        for r in range(2)
    )
    assert (chief["load_avg_1m_end"], chief["node_cores"]) == (7.7, os.cpu_count())
    assert "load_avg_1m_end" not in other  # rank 0's node is the row's, as its record is
    row = distributed.row_fields([chief, other], 2, "strong", 16, 1)
    assert (row["load_avg_1m_end"], row["node_cores"]) == (7.7, os.cpu_count())


def test_a_data_parallel_row_carries_the_single_process_rows_test_set_evaluation(numpy_backend):
    """Issue: rank 0 of a data-parallel row computed its test accuracy and loss itself, so the row had no confusion
    matrix, classification report nor macro-F1. It now evaluates as the single-process worker does
    (bench.run.evaluate), and the row keeps every field: on 1 worker, trained on the same batches as a 1-process row,
    its figures are that row's, and its matrix agrees with its accuracy and macro-F1 (recomputed here from it)."""
    from bench.run.evaluate import EVAL_FIELDS
    from bench.run.worker import train_and_evaluate

    class Joins(numpy_backend):
        def join(self, ctx: DistContext) -> dict[str, Any]:
            return {"dist_backend": "none (test)"}

    spec, data = tiny_spec(), learnable_data(96, 60)  # 96 = 3 batches of 32: both train every image, alike
    spec = dataclasses.replace(spec, train=dataclasses.replace(spec.train, epochs=6))
    ctx = DistContext(rank=0, world_size=1, addresses=("127.0.0.1:1",))
    rank = train_rank(Joins(), spec, ctx, DistLayout(1, "strong", 32), data, CLASSES, seed=0)
    row = distributed.row_fields([rank], 1, "strong", 32, 1)
    single, _ = train_and_evaluate(numpy_backend(), spec, data, CLASSES, seed=0)
    assert all(row.get(k) is not None for k in EVAL_FIELDS), {k: row.get(k) for k in EVAL_FIELDS}
    assert 0.5 < row["test_acc"] < 1  # above chance, some errors: off-diagonal counts to get right
    for k in ("test_acc", "test_loss", "test_macro_f1"):
        assert row[k] == pytest.approx(single[k], rel=1e-9), k
    assert row["confusion_matrix"] == single["confusion_matrix"]
    assert row["classification_report"] == single["classification_report"]  # from the same predictions
    cm = np.array(row["confusion_matrix"])
    assert cm.sum() == 60 and cm.sum(axis=1).tolist() == np.bincount(data["y_test"], minlength=3).tolist()
    assert np.trace(cm) / cm.sum() == pytest.approx(row["test_acc"])
    recall, precision = np.diag(cm) / cm.sum(axis=1), np.diag(cm) / cm.sum(axis=0)
    f1 = 2 * precision * recall / (precision + recall)
    assert row["test_macro_f1"] == pytest.approx(f1.mean())
    assert row["history"][-1]["test_acc"] == row["test_acc"] and row["eval_img_s"] > 0
    # every epoch's test accuracy and loss, the last rank 0's whole-set evaluation, the others its scored part (all)
    assert [h["test_acc"] for h in row["history"]] == pytest.approx([h["test_acc"] for h in single["history"]])
    assert [h["test_loss"] for h in row["history"]] == pytest.approx([h["test_loss"] for h in single["history"]])
    assert len({h["test_acc"] for h in row["history"]}) > 1  # the curve moves: not one figure copied to every epoch


@pytest.mark.parametrize("per_epoch", [False, True], ids=["first-prediction", "after-per-epoch-parts"])
def test_a_data_parallel_rows_timed_evaluation_is_a_warm_one_as_a_single_process_rows(
    numpy_backend, monkeypatch, per_epoch
):
    """QA: rank 0's final evaluation was timed cold: the single-process worker predicts each batch shape untimed first
    (bench.run.evaluate.warm_up) and rank 0 did not, so a compiler's first prediction of a shape (tf.function's trace,
    XLA's compile) was in the row's ``eval_s``. With evaluations between epochs rank 0 had predicted only its own part
    (32 of 64 images: 24 + 8), not the whole set's shorter last batch (16). On a fake clock each new shape costs 2 s,
    a batch 10 ms: 64 test images in batches of 24 take 30 ms whichever way the row got there, on 1 worker and 2."""
    clock = FakeTime()
    monkeypatch.setattr(time, "perf_counter", clock)

    class ShapeCompiling(numpy_backend):
        def __init__(self) -> None:
            super().__init__()
            self.compiled: set[int] = set()

        def join(self, ctx: DistContext) -> dict[str, Any]:
            return {"dist_backend": "none (test)"}

        def predict(self, state: Any, data: Any, batch_size: int) -> np.ndarray:
            for start in range(0, len(data), batch_size):
                shape = min(batch_size, len(data) - start)
                clock.now += 0.010 + 2.0 * (shape not in self.compiled)
                self.compiled.add(shape)
            return super().predict(state, data, batch_size)

    spec, data = tiny_spec(), learnable_data(64, 64)
    spec = dataclasses.replace(
        spec,
        train=dataclasses.replace(spec.train, epochs=2),
        eval=dataclasses.replace(spec.eval, per_epoch=per_epoch, batch_size=24),
    )
    for workers in (1, 2):
        addresses = tuple(f"127.0.0.1:{i + 1}" for i in range(workers))
        ctx = DistContext(0, workers, addresses)
        chief = train_rank(ShapeCompiling(), spec, ctx, DistLayout(workers, "strong", 16), data, CLASSES, seed=0)
        assert chief["eval_s"] == pytest.approx(0.030), (workers, chief["eval_s"])
        assert chief["eval_img_s"] == pytest.approx(64 / 0.030)


def test_a_rows_per_epoch_test_figures_are_its_ranks_parts_summed():
    """Each rank scores a contiguous part of the test set (sizes within one image); the row's epoch figures are the
    parts' sums over the whole set, not a mean of the ranks' accuracies (unequal parts weigh by their images)."""
    from bench.core.distributed import ScoredPart, combine_parts, eval_part

    parts = [eval_part(10, r, 3) for r in range(3)]
    assert [(p.start, p.stop) for p in parts] == [(0, 3), (3, 6), (6, 10)]
    assert eval_part(1, 0, 2) == slice(0, 0) and eval_part(1, 1, 2) == slice(0, 1)  # a rank may have none
    ranks = [
        [ScoredPart(1, 3, 3, 0.3), ScoredPart(2, 3, 1, 3.0)],
        [ScoredPart(1, 1, 0, 2.0), ScoredPart(2, 1, 1, 0.2), ScoredPart(3, 1, 1, 0.1)],  # epoch 3: rank 1 only
    ]
    got = combine_parts(ranks)
    assert got.keys() == {1, 2}  # an epoch a rank did not score is left out
    assert got[1] == pytest.approx((3 / 4, 2.3 / 4)) and got[2] == pytest.approx((2 / 4, 3.2 / 4))
    assert combine_parts([[ScoredPart(1, 0, 0, 0.0)]]) == {}  # no image scored: no figure


def test_parts_scored_apart_add_up_to_the_whole_sets_figures():
    from bench.core import metrics

    rng = np.random.default_rng(3)
    logits, y = rng.normal(size=(11, 4)), rng.integers(0, 4, 11)
    sums = [metrics.score_sums(logits[a:b], y[a:b]) for a, b in ((0, 2), (2, 7), (7, 11))]  # class 3 absent in one
    acc, loss = metrics.accuracy_and_loss(logits, y)
    assert sum(s[0] for s in sums) == 11 and sum(s[1] for s in sums) / 11 == pytest.approx(acc)
    assert sum(s[2] for s in sums) / 11 == pytest.approx(loss)
    assert acc == np.mean(logits.argmax(1) == y)


@pytest.mark.parametrize("per_epoch", [True, False])
def test_every_rank_scores_its_part_after_each_epoch_but_the_last(numpy_backend, per_epoch):
    """A 2-worker row has a test accuracy in every epoch's history, from both ranks' parts (each predicts only its
    own part: no rank idles while another evaluates), and its time to target over rank 0's epoch seconds; with
    eval.per_epoch = false only the last epoch, rank 0's whole-set evaluation, has one, and no time to target."""
    from bench.measure.timing import target_fields

    predicted: list[int] = []

    class Joins(numpy_backend):
        def join(self, ctx: DistContext) -> dict[str, Any]:
            return {"dist_backend": "none (test)"}

        def predict(self, state: Any, data: Any, batch_size: int) -> np.ndarray:
            logits = super().predict(state, data, batch_size)
            predicted.append(len(logits))
            return logits

    spec, data = tiny_spec(), learnable_data(64, 21)
    spec = dataclasses.replace(
        spec,
        train=dataclasses.replace(spec.train, epochs=3, target_acc=0.01),
        eval=dataclasses.replace(spec.eval, per_epoch=per_epoch),
    )
    addresses = ("127.0.0.1:1", "127.0.0.1:2")
    ranks = [
        train_rank(Joins(), spec, DistContext(r, 2, addresses), DistLayout(2, "strong", 16), data, CLASSES, seed=0)
        for r in range(2)
    ]
    row = distributed.row_fields(ranks, 2, "strong", 16, 1)
    scored = [h for h in row["history"] if "test_acc" in h]
    target = target_fields(row["history"], spec.train.target_acc)
    if not per_epoch:
        # rank 0's whole-set evaluation, warmed first (bench.run.evaluate.warm_up: 21 images, under one batch)
        assert [h["epoch"] for h in scored] == [3] and target == {} and predicted == [21, 21]
        return
    assert [h["epoch"] for h in scored] == [1, 2, 3] and predicted == [10, 10, 21, 21, 11, 11]  # rank 0, then 1
    for h in row["history"][:2]:
        parts = [p for r in ranks for p in r["scored_parts"] if p["epoch"] == h["epoch"]]
        assert h["test_acc"] == pytest.approx(sum(p["correct"] for p in parts) / 21)
    assert target == {"time_to_target_s": pytest.approx(row["history"][0]["seconds"])}  # reached after epoch 1


def test_rank_0s_progress_line_shows_its_parts_accuracy_after_each_epoch_but_the_last(numpy_backend, capsys):
    """QA: a data-parallel row's progress line per epoch showed only "rank-0 shard loss", though every rank scores
    its part of the test set after each epoch: a user watching a long scaling run saw no accuracy. Rank 0's line now
    gives its part's accuracy (from the sums it keeps), said to be the part's; the last epoch's figure is the whole
    set's evaluation, as a single-process row prints it; the other rank prints nothing."""

    class Joins(numpy_backend):
        def join(self, ctx: DistContext) -> dict[str, Any]:
            return {"dist_backend": "none (test)"}

    spec, data = tiny_spec(), learnable_data(64, 21)
    spec = dataclasses.replace(spec, train=dataclasses.replace(spec.train, epochs=3))
    addresses = ("127.0.0.1:1", "127.0.0.1:2")
    said, ranks = [], []
    for r in range(2):
        ranks.append(
            train_rank(Joins(), spec, DistContext(r, 2, addresses), DistLayout(2, "strong", 16), data, CLASSES, 0)
        )
        said.append([line for line in capsys.readouterr().out.splitlines() if line.startswith("@@ epoch")])
    chief, parts = said[0], ranks[0]["scored_parts"]
    assert said[1] == [] and len(chief) == 3 and [p["epoch"] for p in parts] == [1, 2]
    for line, part in zip(chief[:2], parts, strict=True):
        assert "rank-0 shard loss" in line and f"test acc (rank 0's part, {part['n']} of 21) " in line
        assert float(line.rsplit(" ", 1)[1]) == pytest.approx(part["correct"] / part["n"], abs=5e-5)
    assert "test acc" not in chief[2]  # the last epoch's figure: rank 0's whole-set evaluation, its own line


def _evaluating_ranks(backend: type, epochs: int = 3) -> list[dict[str, Any]]:
    """Both ranks of a joined 2-worker row of ``backend`` that scores its parts after each epoch but the last."""
    spec, data = tiny_spec(), learnable_data(64, 21)
    spec = dataclasses.replace(spec, train=dataclasses.replace(spec.train, epochs=epochs))
    addresses = ("127.0.0.1:1", "127.0.0.1:2")
    layout = DistLayout(2, "strong", 8)  # 4 steps of 4 images an epoch, a rank
    return [train_rank(backend(), spec, DistContext(r, 2, addresses), layout, data, CLASSES, seed=0) for r in range(2)]


def test_the_ranks_meet_after_each_per_epoch_evaluation_before_the_next_epochs_clock(numpy_backend):
    """Issue: the wait for the slowest rank's evaluation landed in the next epoch's first all-reduce (52-161 ms
    against 7-15 ms steps, 2-worker torch lenet5), so in the steady window and rank 0's epoch seconds. Each rank now
    calls its backend's barrier after scoring its part and before the next epoch starts; every step is timed."""
    events: list[str] = []

    class Meets(numpy_backend):
        def join(self, ctx: DistContext) -> dict[str, Any]:
            return {"dist_backend": "none (test)"}

        def train_epoch(self, *args: Any, **kwargs: Any) -> float:
            events.append("train")
            return super().train_epoch(*args, **kwargs)

        def predict(self, state: Any, data: Any, batch_size: int) -> np.ndarray:
            events.append("predict")
            return super().predict(state, data, batch_size)

        def barrier(self) -> None:
            events.append("barrier")

    ranks = _evaluating_ranks(Meets)
    meets = ["train", "predict", "barrier"] * 2 + ["train"]  # each rank's, then rank 0's whole-set evaluation
    assert events == [*meets, "predict", "predict", *meets]  # its untimed warm-up, then the timed one
    for rank in ranks:  # 12 steps: the first and one warm-up step off the window, no other
        assert len(rank["durations"]) == 12 - 2 and not any("did not meet" in n for n in rank["notes"])


def test_a_rank_whose_backend_cannot_meet_keeps_each_first_step_after_an_evaluation_off_its_window(numpy_backend):
    """The fallback: a backend with no barrier leaves the wait in the next epoch's first step, which the clock keeps
    off the window (timed apart, as a new batch size's first step) and the row's notes say so."""

    class Joins(numpy_backend):
        def join(self, ctx: DistContext) -> dict[str, Any]:
            return {"dist_backend": "none (test)"}

    ranks = _evaluating_ranks(Joins)
    for rank in ranks:  # 12 steps: the first, one warm-up step and the first of epochs 2 and 3 off the window
        assert len(rank["durations"]) == 12 - 2 - 2
        assert any("did not meet after each per-epoch evaluation" in n and "2 epoch(s)" in n for n in rank["notes"])
    one_epoch = _evaluating_ranks(Joins, epochs=1)  # no per-epoch evaluation: nothing held
    assert len(one_epoch[0]["durations"]) == 4 - 2 and not any("did not meet" in n for n in one_epoch[0]["notes"])


def test_replicas_are_judged_on_their_trainable_weights_and_batchnorm_statistics_are_explained():
    """Issue: the checksum summed get_weights, BatchNorm's running statistics included, which under torch DDP each
    rank updates from its own batch: a BatchNorm model's 2-worker row read "replicas DIFFER" (spread 0.061, measured)
    though its trainable weights were equal. The checksum is now the trainable weights'; the rest is summed apart."""
    from bench.run.dist_worker import weights_checksums

    class Bn:
        def __init__(self, offset: float) -> None:
            self.offset = offset

        def get_weights(self, model: Any) -> dict[str, np.ndarray]:
            return {"w": np.ones(3), "bn.running_mean": np.full(2, self.offset)}

        def trainable_names(self, model: Any) -> list[str]:
            return ["w"]

    ranks = [weights_checksums(Bn(offset), None) for offset in (0.5, 0.25)]
    assert ranks == [{"checksum": 3.0, "state_checksum": 1.0}, {"checksum": 3.0, "state_checksum": 0.5}]
    note = distributed.replicas_note(ranks)
    assert note is not None and note.startswith("weights after training equal on every rank")
    assert "BatchNorm's running statistics) is each rank's own (spread 0.5)" in note
    drifted = distributed.replicas_note([ranks[0], {**ranks[1], "checksum": 3.5}])
    assert drifted is not None and drifted.startswith("weights after training DIFFER on every rank")
    plain = distributed.replicas_note([{"checksum": 3.0, "state_checksum": None}] * 2)
    assert plain is not None and "BatchNorm" not in plain
    assert distributed.replicas_note([{"checksum": 3.0}, {"checksum": None}]) is None  # a rank could not say
    # QA: a Keras/TF row's note gave torch DDP's broadcast as its reason; each engine gives its own
    said = {
        n: distributed.replicas_note(ranks, backends.describe(n).dp_batchnorm.running_stats) for n in ("torch", "keras")
    }
    assert "(spread 0.5) (torch DDP broadcasts rank 0's" in str(said["torch"])
    assert "MultiWorkerMirroredStrategy does not make them agree" in str(said["keras"]) and "torch" not in said["keras"]


def test_a_data_parallel_row_records_its_configuration_as_a_single_process_row_does(
    numpy_backend, monkeypatch, tmp_path
):
    """QA: a data-parallel row's knob columns (``compiled``, ``channels_last``, ``precision``, ...) and its nested
    ``knobs`` were empty, where a single-process row of the backend records them: the row could not say what ran (a
    torch row under torch.compile that trained eager looked like any other). Rank 0 records them by the
    single-process worker's function (bench.measure.perf.configuration), and the user's compile cache the rank read
    in its knobs, as a single-process row's (a rank started as the launcher starts one: ``dist_worker.main``)."""
    from bench.measure import compile_cache
    from bench.run import dist_worker
    from bench.run.worker import train_and_evaluate

    variable = "BENCH_TEST_COMPILER_CACHE"  # a compiler's cache variable, as tests/test_compile_cache.py names one
    info = dataclasses.replace(
        backends.BACKENDS["numpy-spe"], compile_cache=compile_cache.CompileCache(variable, on_when_unset=True)
    )
    monkeypatch.setitem(backends.BACKENDS, "numpy-spe", info)  # a knob column (steps_per_execution) and a cache
    monkeypatch.setitem(compile_cache.STARTED_WITH, variable, str(tmp_path / "cache"))  # the user named it
    spec, data = tiny_spec(), learnable_data(64, 20)
    spec = dataclasses.replace(spec, runtime=dataclasses.replace(spec.runtime, steps_per_execution=4))
    np.savez(tmp_path / "data.npz", **data)
    ctx = DistContext(rank=0, world_size=1, addresses=("127.0.0.1:1",))
    job = Job(
        {"task": "tiny-dp", "backend": "numpy-spe", "repeat": 0, "seed": 0},
        spec=spec.to_dict(),
        data=str(tmp_path / "data.npz"),
        classes=list(CLASSES),
        dist=DistLayout(1, "strong", 32, local=True),  # joins no group: the configuration is the same either way
        result_dir=str(tmp_path),
    )
    (tmp_path / "job.json").write_text(json.dumps(job.to_json()))
    for key, value in ctx.to_env().items():
        monkeypatch.setenv(key, value)
    assert dist_worker.main([str(tmp_path / "job.json")]) == 0
    rank = json.loads(dist_worker.rank_file(tmp_path, 0).read_text())
    row = distributed.row_fields([rank], 1, "strong", 32, 1)
    backend = numpy_backend()
    backend.name = "numpy-spe"
    single, _ = train_and_evaluate(backend, spec, data, CLASSES, seed=0)
    assert row["knobs"] == {**single["knobs"], "compilation_cache": str(tmp_path / "cache")}
    assert row["knobs"]["precision"] == "fp32"
    for column in ("precision", "pretrained", "steps_per_execution"):  # the common ones and the backend's own
        assert row[column] == single[column] and row[column] is not None, column
    assert row["steps_per_execution"] == 4


@pytest.mark.parametrize("knob", [False, True], ids=["one-batch-a-step", "steps_per_execution-knob"])
def test_a_rank_and_its_row_record_the_warm_up_batches_as_a_single_process_row_does(numpy_backend, knob):
    """QA: data-parallel rows carried the steps_per_execution warm-up note but not ``warmup_batches`` (nor
    ``warmup_steps``): rank 0 gives the clock's figures and the row keeps them, beside the note that cites them. The
    note is for a backend whose description has the steps_per_execution knob (Keras's); one that trains a batch a
    step (torch's, numpy's) is told nothing of executions whatever the task's runtime.steps_per_execution."""
    backend = numpy_backend()
    if knob:
        backend.name = "numpy-spe"
    spec = tiny_spec()
    spec = dataclasses.replace(spec, runtime=dataclasses.replace(spec.runtime, steps_per_execution=4, warmup_steps=3))
    ctx = DistContext(rank=0, world_size=1, addresses=("127.0.0.1:1",))
    out = train_rank(backend, spec, ctx, DistLayout(1, "strong", 4, local=True), rank_data(), CLASSES, seed=0)
    # the numpy backend calls the clock once a batch: the 3 warm-up batches are 3
    assert (out["warmup_steps"], out["warmup_batches"]) == (3, 3)
    noted = [n for n in out["notes"] if "steps_per_execution" in n]
    assert any("the warm-up the 3 batches after it" in n for n in noted) if knob else noted == [], out["notes"]
    ranks = [{**out, "durations": [0.1, 0.1], "images": [16, 16]}, {**out, "rank": 1, "warmup_batches": None}]
    row = distributed.row_fields(ranks, 2, "strong", 4, 1)
    assert (row["warmup_steps"], row["warmup_batches"]) == (3, 3)  # rank 0's, as its other fields


def test_a_rank_whose_steps_return_early_records_the_first_epochs_last_step_kept_off_its_window(numpy_backend):
    """Data-parallel Keras/JAX rows kept the first epoch's last step off the window (it holds the metrics' first
    compiles) but recorded neither its time nor a note that cited it: rank 0 now gives ``epoch_end_step_s`` (and
    ``new_shape_step_s``) as a single-process row does, and the row keeps them. Steps that run when called: None."""

    class Early(numpy_backend):
        async_steps = True  # as Keras on JAX says of its steps (backends.keras.engine_jax)

    ctx = DistContext(rank=0, world_size=1, addresses=("127.0.0.1:1",))
    layout = DistLayout(1, "strong", 4, local=True)  # 24 steps an epoch: the first epoch's end is in the window
    early = train_rank(Early(), tiny_spec(), ctx, layout, rank_data(), CLASSES, seed=0)
    assert early["epoch_end_step_s"] > 0 and early["new_shape_step_s"] is None
    assert any("the first epoch's last step (4 images) took" in n for n in early["notes"]), early["notes"]
    assert len(early["durations"]) == 2 * 24 - 1 - 1 - 1  # the first step, a warm-up step and that one off it
    on_time = train_rank(numpy_backend(), tiny_spec(), ctx, layout, rank_data(), CLASSES, seed=0)
    assert on_time["epoch_end_step_s"] is None and len(on_time["durations"]) == 2 * 24 - 1 - 1
    row = distributed.row_fields([early, {**early, "rank": 1, "epoch_end_step_s": 9.0}], 2, "strong", 4, 1)
    assert row["epoch_end_step_s"] == early["epoch_end_step_s"] and row["new_shape_step_s"] is None  # rank 0's


def test_a_rank_whose_shard_is_under_one_batch_records_the_batch_it_trained(numpy_backend):
    """QA: weak scaling of 96 images at 64 a worker on 2 workers gives each rank 48 images, under one batch: every
    epoch was one step of 48 images a rank, but the row recorded the nominal 64 (global 128, more than the
    training set). The rank now trains and reports its share as its batch, and the row records it, saying why."""
    backend, spec = numpy_backend(), tiny_spec()
    spec = dataclasses.replace(spec, train=dataclasses.replace(spec.train, epochs=4))  # a step an epoch: 2 timed
    layout = DistLayout(2, "weak", 64, local=True)  # local: the ranks time the same window without joining
    ranks = [
        train_rank(
            backend,
            spec,
            DistContext(rank=r, world_size=2, addresses=("127.0.0.1:1", "127.0.0.1:2")),
            layout,
            rank_data(96),
            CLASSES,
            seed=0,
        )
        for r in range(2)
    ]
    assert [r["per_worker_batch"] for r in ranks] == [48, 48] and set(ranks[0]["images"]) == {48}
    row = distributed.row_fields(ranks, 2, "weak", 64, 1)
    assert (row["per_worker_batch"], row["global_batch"]) == (48, 96)
    assert any("share of the 96 training images (48) is under one per-worker batch of 64" in n for n in row["notes"])
    assert any("per-worker batch 48, global batch 96" in n for n in row["notes"]), row["notes"]
    whole = train_rank(
        backend,
        spec,
        DistContext(rank=0, world_size=1, addresses=("127.0.0.1:1",)),
        DistLayout(1, "weak", 64, local=True),
        rank_data(96),
        CLASSES,
        seed=0,
    )
    assert whole["per_worker_batch"] == 64 and not any("under one per-worker batch" in n for n in whole["notes"])


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("early", [False, True], ids=["steps-run-when-called", "steps-return-early"])
def test_a_data_parallel_row_records_compile_s_as_a_single_process_row_does(numpy_backend, monkeypatch, early):
    """QA: a data-parallel row recorded its first step but no ``compile_s``, which a single-process row has (the first
    step's excess over a steady step, and that of each step kept off the window over what its images take at the
    steady rate). A rank now gives its clock's summary, as the single-process worker records it, and the row keeps
    rank 0's; the scaling table shows it. On a fake clock: every step takes 10 ms, the run's first 1 s more, and
    where steps return early the first epoch's last (kept off the window) 0.3 s more."""
    clock = FakeTime()
    monkeypatch.setattr(time, "perf_counter", clock)  # the step clock and the rank's epochs read it

    class Timed(numpy_backend):
        async_steps = early
        steps = 0

        def train_epoch(self, state, data, order, batch_size, hooks=None):
            last = -(-len(order) // batch_size) - 1
            first_epoch = self.steps == 0

            class Hooks:
                def on_step_begin(_, i):
                    hooks.on_step_begin(i)

                def on_step_end(_, i):
                    clock.now += 0.010 + (1.0 if self.steps == 0 else 0.0)
                    clock.now += 0.3 if early and first_epoch and i == last else 0.0
                    self.steps += 1
                    hooks.on_step_end(i)

            return super().train_epoch(state, data, order, batch_size, Hooks())

    ctx = DistContext(rank=0, world_size=1, addresses=("127.0.0.1:1",))
    rank = train_rank(Timed(), tiny_spec(), ctx, DistLayout(1, "strong", 4, local=True), rank_data(), CLASSES, seed=0)
    assert rank["first_step_s"] == pytest.approx(1.01) and rank["epoch_end_step_s"] == (
        pytest.approx(0.31) if early else None
    )
    # 1.01 s against a steady 10 ms step; the kept-off step's 0.31 s against its 4 images at 400 img/s
    assert rank["compile_s"] == pytest.approx(1.0 + (0.3 if early else 0.0))
    other = {**rank, "rank": 1, "compile_s": 5.0}
    row = distributed.row_fields([rank, other], 2, "strong", 4, 1)
    assert row["compile_s"] == rank["compile_s"]  # rank 0's, as its first step
    from bench.core.record import new_record
    from bench.core.results import table
    from bench.report import scaling as scaling_report

    rec = new_record(task="t", backend="numpy", repeat=0, status="ok", workers=2, scaling_mode="strong")
    shown = scaling_report.scaling_table(table([{**rec, **row}]), "t")
    assert list(shown["first-step overhead (s)"]) == [f"{rank['compile_s']:.3f}"]


def test_strong_keeps_the_global_batch_weak_the_per_worker_batch():
    assert [per_worker_batch(64, w, "strong") for w in (1, 2, 4)] == [64, 32, 16]
    assert [per_worker_batch(64, w, "weak") for w in (1, 2, 4)] == [64, 64, 64]
    with pytest.raises(ValueError, match="does not split"):
        per_worker_batch(64, 3, "strong")
    order = np.random.default_rng(0).permutation(300)
    shards = [shard_order(order, r, 2, 32) for r in range(2)]
    assert [len(s) for s in shards] == [128, 128] and not set(shards[0]) & set(shards[1])
    # strong scaling: the two ranks' k-th batches together are exactly the 1-worker run's k-th global batch
    one = shard_order(order, 0, 1, 64)
    assert set(shards[0][:32]) | set(shards[1][:32]) == set(one[:64])


def test_threads_per_worker_keep_workers_times_threads_within_the_cores():
    assert distributed.threads_per_worker(0, (1, 2), cores=2) == 1
    assert distributed.threads_per_worker(0, (1, 2, 4), cores=16) == 4
    assert distributed.threads_per_worker(0, (8,), cores=2) == 1
    assert distributed.threads_per_worker(3, (1, 2), cores=2) == 3  # asked for: kept
    if hasattr(os, "sched_setaffinity"):  # by default the cores this process may use, not the machine's
        allowed = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(allowed)})
        try:
            assert distributed.threads_per_worker(0, (1,)) == 1
        finally:
            os.sched_setaffinity(0, allowed)


def test_threads_past_the_cores_are_printed_before_the_run_and_noted_in_the_row_and_summary(
    monkeypatch, tmp_path, clean_env
):
    """QA: an explicit threads_per_worker that, times the workers, is more threads than cores ran without a word,
    its img/s and efficiency timing threads waiting for cores. The run now says so before it starts, the row's notes
    carry it, and summary.md's scaling section warns under the task's table."""
    assert scaling.oversubscription(2, 1, 2) is None and scaling.oversubscription(1, 2, 2) is None  # fits
    assert scaling.oversubscription(2, 2, 2).startswith(scaling.OVERSUBSCRIBED + "2 worker(s) x 2 thread(s) = 4")
    assert scaling.oversubscription(1, 3, 2) is not None  # one rank of 3 threads on 2 cores is oversubscribed too
    assert distributed.oversubscription_notes([tiny_spec()], cores=2) == []  # 0: cores // max(workers) each
    (line,) = distributed.oversubscription_notes([tiny_spec(threads_per_worker=2)], cores=2)
    assert line.startswith("tiny.toml: 2 workers x 2 thread(s) = 4 threads on this machine's 2 cores") and (
        "distributed.threads_per_worker = 2" in line
    )
    (line,) = distributed.oversubscription_notes([tiny_spec(workers=[4], mode="weak")], cores=2)  # BENCH_MAX_WORKERS
    assert "4 workers x 1 thread(s) = 4 threads" in line and "BENCH_MAX_WORKERS" in line

    # the row: run_row with its ranks faked, on a 2-core machine
    rank = {"durations": [0.1, 0.1], "images": [16, 16], "notes": [], "checksum": 1.0}
    monkeypatch.setattr(distributed, "launch", lambda *a, **k: [dict(rank), dict(rank)])
    monkeypatch.setattr(distributed, "usable_cores", lambda: 2)
    spec = tiny_spec(threads_per_worker=2, allreduce_share=False)
    spec = dataclasses.replace(spec, runtime=dataclasses.replace(spec.runtime, device="cpu"))
    where = distributed.Launch(tmp_path, tmp_path, tmp_path, {}, 60.0)  # unused: launch is the fake's
    job = Job({"task": "tiny-dp", "backend": "torch", "repeat": 0})
    notes = distributed.run_row(job, spec, 2, "strong", where)["notes"]
    assert [n for n in notes if n.startswith(scaling.OVERSUBSCRIBED)] == [scaling.oversubscription(2, 2, 2)]
    one = dataclasses.replace(spec, distributed=dataclasses.replace(spec.distributed, threads_per_worker=1))
    fits = distributed.run_row(job, one, 2, "strong", where)
    assert not any(n.startswith(scaling.OVERSUBSCRIBED) for n in fits["notes"])

    from bench.core.record import join_notes, new_record
    from bench.core.results import table
    from bench.report import scaling as scaling_report

    def row(workers: int, notes: list[str]) -> dict[str, Any]:
        rec = new_record(task="tiny-dp", backend="torch", repeat=0, status="ok", workers=workers, steady_img_s=9.0)
        return {**rec, "scaling_mode": "strong", "notes": join_notes(["1 worker(s) x 2 thread(s)", *notes])}

    text = scaling_report.section(table([row(1, []), row(2, notes)]), tmp_path)
    warned = [ln for ln in text.splitlines() if "**oversubscribed**" in ln]
    assert len(warned) == 1 and "2 worker(s), strong scaling: 2 worker(s) x 2 thread(s) = 4 threads" in warned[0]

    # the command line says it before any row runs (here the data folder is refused next: nothing runs)
    task = tmp_path / "tiny.toml"
    task.write_text(DP_TASK.replace("timeout_s = 30", f"timeout_s = 30\nthreads_per_worker = {usable_cores()}"))
    args = ["run", str(task), "--out", str(tmp_path / "o"), "--data-dir", str(tmp_path / "absent")]
    # an xdist lane holds one core, which alone would refuse the 2 workers before the note (check_workers)
    proc = run_cli(args, {**clean_env, "BENCH_MAX_WORKERS": "2"})
    assert proc.returncode == 2 and f"note: {task}: 2 workers x {usable_cores()} thread(s)" in proc.stdout, proc.stdout


def test_a_rows_own_findings_are_shown_under_its_tasks_scaling_table(monkeypatch, tmp_path):
    """QA: a row's data-parallel findings (its ranks' weights DIFFER, its accuracy against 1 worker, why it has no
    efficiency) reached results.csv and records.jsonl only: a reader of summary.md's or index.html's scaling table
    could not tell that a row's replicas had drifted apart. Each row with findings now has a line under the table,
    in the table's order, naming the row; the notes every row carries (the engine, the layout) stay in results.csv.
    What the rows ran as (compiler, layout, precision) is said under the table, as under a single-process one.
    The rows are made as the runner makes them: ``row_fields`` from the ranks' results, ``record`` against the
    1-worker row (its launch faked)."""
    from bench.core.record import split_notes
    from bench.core.results import append_record
    from bench.report.summary import write_reports

    def ranks(workers: int, checksums: list[float]) -> list[dict[str, Any]]:
        chief = {"durations": [0.1] * 4, "images": [16] * 4, "notes": ["engine: gloo at 127.0.0.1:1"], "test_acc": 0.5}
        chief["configuration"] = {"precision": "fp32", "compiled": "torch.compile (default)", "channels_last": True}
        return [{**chief, "checksum": c} for c in checksums[:workers]]

    made: dict[tuple[int, str], list[dict[str, Any]]] = {
        (1, "strong"): ranks(1, [3.0]),
        (2, "strong"): [{**r, "test_acc": 0.51} for r in ranks(2, [3.0, 3.5])],  # the replicas drifted apart
        (2, "weak"): ranks(2, [3.0, 3.0]),  # no 1-worker weak row: no efficiency
    }
    spec = tiny_spec(mode=["strong", "weak"], allreduce_share=False)
    monkeypatch.setattr(
        distributed, "run_row", lambda job, spec, w, mode, where: distributed.row_fields(made[(w, mode)], w, mode, 8, 1)
    )
    where = distributed.Launch(tmp_path, tmp_path, tmp_path, {}, 60.0)  # unused: run_row is the fake's
    job = Job({"task": "tiny-dp", "backend": "torch", "repeat": 0})
    rows: list[dict[str, Any]] = []
    for workers, mode in made:
        rows.append(distributed.record(job, spec, workers, mode, where, rows))
    findings = {
        (r["workers"], r["scaling_mode"]): [n for n in split_notes(r["notes"]) if n.startswith(scaling.FINDINGS)]
        for r in rows
    }
    assert findings[(1, "strong")] == []
    assert [n.split(" (")[0] for n in findings[(2, "strong")]] == [
        "weights after training DIFFER on every rank",
        "test acc +0.0100 against 1 worker at the same global batch",
    ]
    assert findings[(2, "weak")][1].startswith("scaling efficiency not given: no ok 1-worker row")

    run = tmp_path / "run"
    run.mkdir()
    for r in rows:
        append_record(run, r)
    write_reports(run)
    summary = (run / "summary.md").read_text()
    section = summary[summary.index("### tiny-dp") :]
    shown = section.split("\nNotes:\n", 1)[1].split("\n\n")[0].splitlines()
    assert shown == [
        "- PyTorch, 2 worker(s), strong scaling: " + "; ".join(findings[(2, "strong")]),
        "- PyTorch, 2 worker(s), weak scaling: " + "; ".join(findings[(2, "weak")]),
    ], shown
    assert section.index("| PyTorch") < section.index("\nNotes:\n")  # under the table
    # and what the rows ran as, from their configuration columns, as under a single-process table (until 2026-12-07
    # a data-parallel row had none)
    ran = "- **as run**: PyTorch: fp32, torch.compile (default), channels_last, 1 thread(s)\n"
    assert section.index("| PyTorch") < section.index(ran) < section.index("\nNotes:\n"), section
    assert "engine: gloo" not in section and "per-worker batch 8, global batch" not in section
    page = (run / "index.html").read_text()
    assert "weights after training DIFFER on every rank" in page and "scaling efficiency not given" in page


def test_ranks_run_on_cpu_or_one_gpu_each():
    assert distributed.ranks_device("cpu", 2, ["GPU 0"]) == "cpu"
    assert distributed.ranks_device("auto", 2, []) == "cpu"
    assert distributed.ranks_device("auto", 2, ["GPU 0", "GPU 1"]) == "cuda"
    with pytest.raises(ValueError, match="2 workers on CUDA need one GPU each; this machine has 1"):
        distributed.ranks_device("auto", 2, ["GPU 0"])


def test_with_repeats_the_scaling_table_pairs_each_row_with_its_own_1_worker_row():
    """QA: `--workers 1,2 --repeats 2` printed two 1-worker and two 2-worker rows alike, with no repeat: the
    efficiencies could not be told apart or recomputed from the table. Each repeat's rows now sit together, named."""
    from bench.core.record import new_record
    from bench.core.results import table
    from bench.report import scaling as scaling_report

    def row(repeat: int, workers: int, img_s: float) -> dict[str, Any]:
        rec = new_record(task="t", backend="torch", repeat=repeat, status="ok", workers=workers, steady_img_s=img_s)
        return {**rec, "scaling_mode": "strong", "scaling_eff": 1.0}

    rates = {(0, 1): 500.0, (1, 1): 800.0, (0, 2): 900.0, (1, 2): 960.0}
    rows = [row(r, w, v) for (r, w), v in rates.items()]
    for r in rows:
        if r["workers"] == 2:
            r["scaling_eff"] = scaling.efficiency(r["steady_img_s"], rates[(r["repeat"], 1)], 2)
    shown = scaling_report.scaling_table(table(rows), "t")
    assert list(zip(shown["repeat"], shown["workers"], strict=True)) == [(0, 1), (0, 2), (1, 1), (1, 2)]
    for one, two in ((0, 1), (2, 3)):  # each 2-worker row's efficiency from the row above it
        img = [float(shown[scaling_report.IMG_S][i].replace(",", "")) for i in (one, two)]
        assert shown["efficiency [95%]"][two] == f"{img[1] / (2 * img[0]):.2f}"
    single = scaling_report.scaling_table(table([r for r in rows if r["repeat"] == 0]), "t")
    assert "repeat" not in single.columns  # one repeat: the table as before


def test_the_scaling_table_gives_the_time_to_target_where_the_task_has_a_target():
    """Data-parallel rows have per-epoch test figures and a time to target (2026-12-06), which the scaling table did
    not show. It does where the task has a target (the metric registry's words and format); "not reached" for an ok
    row that never got there; no column for a task without a target."""
    from bench.core.metric_table import BY_COLUMN
    from bench.core.record import new_record
    from bench.core.results import table
    from bench.report import scaling as scaling_report

    def row(workers: int, seconds: float | None, target: float | None) -> dict[str, Any]:
        rec = new_record(task="t", backend="torch", repeat=0, status="ok", workers=workers, steady_img_s=100.0)
        return {**rec, "scaling_mode": "strong", "target_acc": target, "time_to_target_s": seconds}

    column = BY_COLUMN["time_to_target_s"].words
    shown = scaling_report.scaling_table(table([row(1, 12.345, 0.9), row(2, None, 0.9)]), "t")
    assert list(shown[column]) == ["12.35", "not reached"]
    assert list(shown.columns).index(column) == list(shown.columns).index("test acc") + 1
    assert column not in scaling_report.scaling_table(table([row(1, None, None), row(2, None, None)]), "t").columns


def test_a_backend_without_data_parallel_names_the_backends_with_it_as_backend_takes_them():
    """QA: keras-torch's skipped rows said "run data-parallel rows with tensorflow, jax": engines, which --backend
    refuses. The reason names backend ids, each registered and able to run data-parallel rows."""
    why = [backends.describe(n).no_data_parallel for n in backends.names()]
    told = [w.split("--backend ", 1)[1].split(",") for w in why if w]
    assert told, "no backend without data-parallel rows to check"
    for names in told:
        assert names and all(n in backends.names() and not backends.describe(n).no_data_parallel for n in names), names


# Keras on JAX: one mask over the global batch (tests/test_distributed_keras.py measures it), not each rank's own
JAX_DROPOUT = (
    "dropout draws one mask over the global batch, as 1 worker does, but on its images in another order, each rank's "
    "shard in turn, so an image meets another draw unless each rank's batch is one image"
)
BN_DROPOUT = {"layers": [{"conv": 4, "kernel": 3}, {"batchnorm": True}, {"flatten": True}, {"dropout": 0.5}]}


@pytest.mark.parametrize(
    ("model", "backend", "said"),
    [
        ({"arch": "lenet5"}, "torch", "only float rounding differs"),
        ({"arch": "mnist_cnn"}, "torch", "dropout draws differ per rank, and float rounding"),
        (
            BN_DROPOUT,
            "torch",
            "dropout draws differ per rank, BatchNorm normalises each worker's share of the batch, and float rounding",
        ),
        (
            BN_DROPOUT,
            "keras",
            "dropout draws differ per rank, BatchNorm normalises each worker's share of the batch, and float rounding",
        ),
        (BN_DROPOUT, "keras-jax", f"{JAX_DROPOUT}, and float rounding"),
        ({"arch": "resnet101"}, "keras-jax", f"float rounding, and where the model has them: {JAX_DROPOUT}"),
        (
            {"arch": "resnet101"},
            "torch",
            "float rounding, and where the model has them: dropout draws differ per rank, BatchNorm normalises each "
            "worker's share of the batch",
        ),
    ],
    ids=[
        "lenet5",
        "mnist_cnn",
        "layers-bn-dropout",
        "keras-bn-dropout",
        "keras-jax-bn-dropout",
        "keras-jax-zoo",
        "zoo",
    ],
)
def test_a_strong_rows_accuracy_note_names_what_besides_rounding_tells_it_from_one_worker(
    monkeypatch, tmp_path, model: dict[str, Any], backend: str, said: str
):
    """QA: mnist_cnn's 2-worker strong row scored 4.7 points above its 1-worker row, and its note said "the same
    batches, gradients averaged: only float rounding differs"; its two dropouts draw per rank (docs/distributed.md:
    dropout and BatchNorm are the exceptions). The note names what the row's model has. Keras on JAX takes
    BatchNorm's statistics over the global batch, as 1 worker does (QA 2026-12-06: its note named BatchNorm too), and
    draws one dropout mask over the global batch, not one per rank (QA: its note said "differ per rank")."""
    import tomllib

    data = tomllib.loads(DP_TASK)
    data["model"] = model
    spec = parse_task(data, source="tiny.toml")
    monkeypatch.setattr(distributed, "run_row", lambda *a: {"steady_img_s": 90.0, "test_acc": 0.861, "notes": []})
    base = {"task": "t", "backend": backend, "repeat": 0, "scaling_mode": "strong", "workers": 1, "status": "ok"}
    base |= {"steady_img_s": 60.0, "test_acc": 0.814}
    where = distributed.Launch(tmp_path, tmp_path, tmp_path, {}, 60.0)  # unused: run_row is the fake's
    rec = distributed.record(Job({"task": "t", "backend": backend, "repeat": 0}), spec, 2, "strong", where, [base])
    assert (
        f"test acc +0.0470 against 1 worker at the same global batch (the same batches, gradients averaged: {said})"
        in (rec["notes"])
    ), rec["notes"]


@pytest.mark.parametrize("workers", [(), (1, 2)])
def test_only_a_task_with_single_process_rows_loads_its_transfer_set_and_carries_its_note(tmp_path: Path, workers):
    """QA: data-parallel rows carried the transfer set's stand-in note ("afhq not found: catsdogs ... stands in for
    it") and the runner loaded that set for them, though they never run the transfer phase. A task whose rows are all
    data-parallel now loads no transfer target and its rows carry only their own data's notes; a single-process
    row still gets the target and its note."""
    from bench.core.spec import load_task
    from bench.run import plan, runner

    task = load_task("cifar10-cnn", "quick")  # transfer to afhq; no data files here: its stand-in, with a note
    task = dataclasses.replace(
        task,
        dataset=dataclasses.replace(task.dataset, max_train=64, max_test=16),
        distributed=dataclasses.replace(task.distributed, workers=workers),
    )
    said: list[str] = []
    (tmp_path / ".jobs").mkdir()  # as the run's folder has it
    rows = plan.plan_rows([task], ["torch"], 1)
    jobs = [job for _, job in runner._jobs(rows, tmp_path, plan.RunOptions(), {}, said.append, keep_data=True)]
    assert len(jobs) == max(1, len(workers)) and all(not job.error for job in jobs), said
    loaded = any("transfer target afhq" in line for line in said)
    for job in jobs:
        noted = any("afhq not found" in n for n in job.notes)
        assert any("stand-in for CIFAR-10" in n for n in job.notes)  # the data it trains on is still said
        assert (loaded, noted, len(job.transfer)) == ((True, True, 1) if not workers else (False, False, 0))
    assert bool(list((tmp_path / ".jobs").glob("*transfer*"))) == (not workers)


def test_a_data_parallel_row_has_its_own_record_key():
    base = {"task": "t", "backend": "torch", "repeat": 0}
    assert record_key(base) == ("t", "torch", 0)
    assert record_key({**base, "workers": 2, "scaling_mode": "weak"}) == ("t", "torch", 0, 2, "weak")
    assert record_key({**base, "workers": 2, "scaling_mode": "weak"}) != record_key(
        {**base, "workers": 1, "scaling_mode": "weak"}
    )


def test_a_row_with_no_timed_steps_says_so_not_that_the_1_worker_row_is_missing(monkeypatch, tmp_path):
    """QA: a weak-scaling task whose epochs are one step each (200 images, batch 128) gave ok rows with no steady
    rate; the 2-worker row's note said there was no ok 1-worker row, beside one, and its line read "0 img/s"."""
    from bench.run.runner import _one_line

    fields = {"steady_img_s": None, "test_acc": 0.4, "notes": []}
    monkeypatch.setattr(distributed, "run_row", lambda *a: dict(fields))
    job = Job({"task": "t", "backend": "torch", "repeat": 0})
    base = {"task": "t", "backend": "torch", "repeat": 0, "scaling_mode": "weak", "workers": 1, "status": "ok"}
    where = distributed.Launch(tmp_path, tmp_path, tmp_path, {}, 60.0)  # unused: run_row is the fake's
    for one_rate in (None, 500.0):
        rec = distributed.record(job, tiny_spec(), 2, "weak", where, [{**base, "steady_img_s": one_rate}])
        assert rec["status"] == "ok" and rec.get("scaling_eff") is None
        assert "no ok 1-worker row" not in rec["notes"] and "no timed steps in this row" in rec["notes"], rec["notes"]
        assert ("the 1-worker row" in rec["notes"]) == (one_rate is None)
        assert "0 img/s" not in _one_line(rec) and "no timed steps" in _one_line(rec), _one_line(rec)
    rec = distributed.record(job, tiny_spec(), 2, "weak", where, [])
    assert "no ok 1-worker row of this task, backend and mode" in rec["notes"]


# -- spec and command line -------------------------------------------------------------------------


def test_distributed_section_parses_and_round_trips():
    spec = tiny_spec(mode=["strong", "weak"])
    assert spec.distributed.workers == (1, 2) and spec.distributed.mode == ("strong", "weak")
    assert tiny_spec(mode="weak").distributed.mode == ("weak",)
    from bench.core.spec import spec_from_dict

    assert spec_from_dict(spec.to_dict()).distributed == spec.distributed


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"workers": [0, 2]}, "distributed.workers: expected distinct integers >= 1, got [0, 2]"),
        ({"workers": [2, 2]}, "distributed.workers: expected distinct integers >= 1"),
        ({"mode": "linear"}, "distributed.mode: expected one of ['strong', 'weak']"),
        ({"timeout_s": 0}, "distributed.timeout_s: expected a number of seconds > 0"),
        ({"threads_per_worker": -1}, "distributed.threads_per_worker: expected an integer >= 0"),
        ({"nodes": 2}, "distributed.nodes: unknown key"),
        ({"workers": [1, 3]}, "train.batch_size: strong scaling splits the global batch 32"),
    ],
)
def test_bad_distributed_sections_name_the_key(section, message):
    with pytest.raises(SpecError, match=None) as e:
        tiny_spec(**section)
    assert message in str(e.value)


def test_a_distributed_section_without_worker_counts_is_refused_naming_the_key(clean_env, tmp_path):
    """QA: ``[distributed] mode = "weak"`` with no ``workers`` (or ``workers = []``) ran single-process rows and
    said nothing. The section asks for data-parallel rows: without counts it is refused as any bad key is, and a
    task without the section (its ``to_dict`` carries an empty one) still round-trips."""
    import tomllib

    from bench.core.spec import spec_from_dict

    data = tomllib.loads(DP_TASK)
    for section, got in (({"mode": "weak"}, "got no workers key"), ({"mode": "weak", "workers": []}, "workers = []")):
        with pytest.raises(SpecError) as e:
            parse_task({**data, "distributed": section}, source="tiny.toml")
        assert str(e.value).startswith("tiny.toml: distributed.workers: expected worker counts") and got in str(e.value)
    quick = {"quick": {"distributed": {"workers": []}}}  # a profile that empties the counts is named
    with pytest.raises(SpecError, match=r"tiny\.toml: profiles\.quick\.distributed\.workers: expected worker counts"):
        parse_task({**data, "profiles": quick}, source="tiny.toml")
    plain = parse_task({k: v for k, v in data.items() if k != "distributed"}, source="tiny.toml")
    assert plain.distributed.workers == () and spec_from_dict(plain.to_dict()) == plain
    task = tmp_path / "mode-only.toml"
    task.write_text(DP_TASK.replace("workers = [1, 2]\n", 'mode = "weak"\n'))
    proc = run_cli(["run", str(task), "--out", str(tmp_path / "o")], clean_env)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert f"{task}: distributed.workers: expected worker counts" in proc.stderr
    assert not (tmp_path / "o").exists()  # refused before a run folder


def test_a_mode_only_distributed_section_is_taken_with_workers_from_the_command_line(clean_env, tmp_path):
    """A ``[distributed]`` section with ``mode`` and no ``workers`` was refused even under ``--workers``, which
    gives the counts (and overrides the section's): taken then, the mode kept; without the flag still refused."""
    from bench.core.spec import load_task

    task = tmp_path / "mode-only.toml"
    task.write_text(DP_TASK.replace("workers = [1, 2]\n", 'mode = "weak"\n'))
    with pytest.raises(SpecError, match=r"distributed\.workers: expected worker counts"):
        load_task(task)
    spec = with_workers([load_task(task, flags=("distributed.workers",))], (1, 2), None)[0]
    assert spec.distributed.workers == (1, 2) and spec.distributed.mode == ("weak",)
    # through the command line: past the spec to the next check (a --data-dir that is not there), nothing run
    missing = tmp_path / "no-data"
    proc = run_cli(
        ["run", str(task), "--out", str(tmp_path / "o"), "--workers", "1", "--data-dir", str(missing)], clean_env
    )
    assert proc.returncode == 2 and str(missing) in proc.stderr, proc.stderr
    assert "distributed.workers" not in proc.stderr


def test_cli_workers_override_and_its_errors(clean_env, tmp_path):
    spec = tiny_spec()
    assert with_workers([spec], (2, 4), ("weak",))[0].distributed.workers == (2, 4)
    with pytest.raises(SpecError, match="strong scaling splits the global batch 32"):
        with_workers([spec], (1, 3), None)
    plain = parse_task({k: v for k, v in __import__("tomllib").loads(DP_TASK).items() if k != "distributed"})
    with pytest.raises(SpecError, match="--scaling needs --workers"):
        with_workers([plain], None, ("weak",))
    task = tmp_path / "tiny.toml"
    task.write_text(DP_TASK)
    for args, why in (
        (["--workers", "0,2"], "distinct worker counts >= 1"),
        (["--workers", "a"], "worker counts"),
        (["--scaling", "linear"], "expected strong or weak"),
    ):
        proc = run_cli(["run", str(task), "--out", str(tmp_path / "o"), *args], clean_env)
        assert proc.returncode == 2 and why in proc.stderr, proc.stderr
    # QA: `--workers 3` on a 2-core machine was refused naming distributed.workers, a key the user never wrote
    too_many = usable_cores() + 1  # weak scaling: any count splits the batch
    for args, says in (
        (["--workers", str(too_many), "--scaling", "weak"], f"error: --workers: {too_many} workers is more than"),
        (
            ["--workers", str(MAX_WORKERS + 1)],
            f"--workers: expected distinct worker counts >= 1 (at most {MAX_WORKERS:,})",
        ),
    ):
        proc = run_cli(["run", str(task), "--out", str(tmp_path / "o"), *args], clean_env)
        assert proc.returncode == 2 and "distributed.workers" not in proc.stderr, proc.stderr
        assert says in proc.stderr.splitlines()[-1], proc.stderr
    proc = run_cli(["all", "--workers", "2"], clean_env)  # bench all stays single-process
    assert proc.returncode == 2 and "unrecognized arguments: --workers" in proc.stderr


def test_a_batch_the_worker_counts_cannot_split_is_refused_naming_what_the_user_gave(clean_env, tmp_path):
    """QA: `bench run TASK --workers 3` (strong scaling by default, a batch of 32) was refused suggesting
    `mode = "weak"`, a task-file key, to a user who typed options. Where the command line set the counts or the mode
    (it overrides the file), the error names --workers and suggests --scaling weak; a task file's counts keep the
    file's words. The task records which keys the options set, through its dict (plan.json, a rank's job) too."""
    import argparse

    from bench.core.spec import OPTIONS, spec_from_dict
    from bench.run.dist_cli import add_distributed_options
    from bench.run.recipe_cli import add_recipe_options

    with pytest.raises(SpecError) as e:  # the file's counts and mode
        tiny_spec(workers=[1, 3])
    assert "which [1, 3] workers cannot all do" in str(e.value) and str(e.value).endswith('or mode = "weak")')
    assert "--" not in str(e.value)
    spec = tiny_spec()
    with pytest.raises(SpecError) as e:  # --workers 1,3
        with_workers([spec], (1, 3), None)
    assert str(e.value).startswith("tiny.toml: train.batch_size: strong scaling splits the global batch 32")
    assert "which --workers 1,3 cannot all do (a multiple of every worker count, or --scaling weak)" in str(e.value)
    assert "mode =" not in str(e.value)
    with pytest.raises(SpecError) as e:  # the file's counts, --scaling strong over the file's weak
        with_workers([tiny_spec(workers=[1, 3], mode="weak")], None, ("strong",))
    assert "which [1, 3] workers cannot all do (a multiple of every worker count, or --scaling weak)" in str(e.value)
    weak = with_workers([spec], (1, 3), ("weak",))[0]  # the way out the error gives
    assert weak.flags == ("distributed.mode", "distributed.workers") and spec.flags == ()
    assert with_workers([spec], (2,), None)[0].flags == ("distributed.workers",)
    assert spec_from_dict(weak.to_dict()) == weak  # plan.json and a rank's job keep them
    old = {k: v for k, v in weak.to_dict().items() if k != "flags"}  # a plan written before they were kept
    assert spec_from_dict(old).flags == ()
    for bad in ("distributed.workers", ["train.batch_size"], ["distributed.mode"] * 2, [["distributed.mode"]]):
        with pytest.raises(SpecError, match=r"tiny\.toml: flags: expected a list of distinct keys"):
            spec_from_dict({**weak.to_dict(), "flags": bad})
    parser = argparse.ArgumentParser()
    add_distributed_options(parser)
    add_recipe_options(parser)  # --epochs and --max-train: `run`'s options that set spec keys too
    assert set(OPTIONS.values()) <= set(parser._option_string_actions)  # the options the errors name exist

    task = tmp_path / "tiny.toml"
    task.write_text(DP_TASK)
    proc = run_cli(["run", str(task), "--out", str(tmp_path / "o"), "--workers", "3"], clean_env)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "which --workers 3 cannot all do (a multiple of every worker count, or --scaling weak)" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_weak_scaling_with_fewer_training_images_than_workers_is_refused_before_a_rank_starts(clean_env, tmp_path):
    """QA: weak scaling gives each rank every ``workers``-th training image; with fewer images than workers a rank's
    shard was empty, unguarded. The run is refused up front (exit 2, one line, no run folder), naming the counts
    where they were given (--workers or distributed.workers) and the numbers; one image a rank is enough."""
    from bench.core.spec import check_fits_data, load_task
    from bench.run.datacheck import check_task_data
    from datasets.npz import write_npz
    from tests.test_datasets import tiny

    spec = tiny_spec(workers=[1, 3], mode="weak")
    spec = dataclasses.replace(spec, train=dataclasses.replace(spec.train, batch_size=1))
    check_fits_data(spec, 3)  # one image a rank
    assert len(shard_order(np.arange(3), 2, 3, 1)) == 1 and len(shard_order(np.arange(2), 2, 3, 1)) == 0
    with pytest.raises(SpecError) as e:
        check_fits_data(spec, 2)
    assert str(e.value) == (
        "tiny.toml: distributed.workers: weak scaling shares the 2 training images of task tiny-dp between the "
        "workers, and 3 workers would leave a rank none (at most 2 workers)"
    )
    strong = dataclasses.replace(spec, distributed=dataclasses.replace(spec.distributed, mode=("strong",)))
    with pytest.raises(SpecError, match=r"train\.batch_size: 3 is more than the 2 training images"):
        check_fits_data(dataclasses.replace(strong, train=dataclasses.replace(spec.train, batch_size=3)), 2)

    data = tmp_path / "data"
    write_npz(tiny(n=80, size=28), data / "mnist.npz")
    task = tmp_path / "few.toml"
    task.write_text(DP_TASK.replace("max_train = 300", "max_train = 2").replace("batch_size = 32", "batch_size = 2"))
    in_file = tmp_path / "few-weak.toml"
    in_file.write_text(task.read_text().replace("workers = [1, 2]", 'workers = [1, 3]\nmode = "weak"'))
    with pytest.raises(SpecError, match=rf"^{in_file}: distributed\.workers: weak scaling shares the 2 training"):
        check_task_data([load_task(in_file, None, None)], str(data))
    env = {**clean_env, "BENCH_MAX_WORKERS": "4"}  # past the cores check: the data's is the one refused
    out = tmp_path / "o"
    args = ["run", str(task), "--out", str(out), "--data-dir", str(data), "--workers", "1,3", "--scaling", "weak"]
    proc = run_cli(args, env)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("error: --workers: weak scaling shares the 2 training images of task tiny-dp"), (
        proc.stderr
    )
    assert "3 workers would leave a rank none (at most 2 workers)" in proc.stderr
    assert not out.exists()  # refused before a run folder or a rank


# -- multi-machine launch --------------------------------------------------------------------------


def test_launch_plan_gives_torchrun_and_tf_config_per_host():
    plan = dist_launch.launch_plan(["n0", "n1", "n2"], "cifar10-cnn", port=29400, worker_port=2222, threads=4)
    assert [h.rank for h in plan] == [0, 1, 2] and [h.host for h in plan] == ["n0", "n1", "n2"]
    for h in plan:
        cmd = h.torchrun
        assert cmd[0] == "torchrun" and cmd[-3:] == ["-m", "bench.run.dist_worker", "JOB.json"]
        opts = dict(zip(cmd[1:-3:2], cmd[2:-3:2], strict=True))
        assert opts == {
            "--nnodes": "3",
            "--nproc-per-node": "1",
            "--node-rank": str(h.rank),
            "--rdzv-backend": "c10d",
            "--rdzv-endpoint": "n0:29400",
            "--rdzv-id": "bench-cifar10-cnn",
        }
        assert h.tf_config == {
            "cluster": {"worker": ["n0:2222", "n1:2222", "n2:2222"]},
            "task": {"type": "worker", "index": h.rank},
        }
        ctx = DistContext.from_env(h.env)  # what the worker on that host reads back
        assert ctx is not None and (ctx.rank, ctx.world_size, ctx.threads) == (h.rank, 3, 4)
        assert ctx.tf_config() == h.tf_config and ctx.master_addr == "n0"
    for bad, why in (("", "comma-separated"), ("a,a", "listed twice"), ("a:1,b", "not a host name")):
        with pytest.raises(ValueError, match=why):
            dist_launch.parse_hosts(bad)


def test_distributed_launch_command_prints_every_host(clean_env):
    proc = run_cli(
        ["distributed-launch", "--hosts", "alpha,beta", "--task", "cifar10-cnn", "--backend", "keras"], clean_env
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "## host alpha (rank 0)" in out and "## host beta (rank 1)" in out
    assert """'{"cluster": {"worker": ["alpha:12345", "beta:12345"]}, "task": {"type": "worker", "index": 1}}'""" in out


WORKER_LINE = "python -m bench.run.dist_worker JOB.json"


def host_blocks(text: str) -> list[list[str]]:
    """The command lines of each ``## host`` block of ``render``'s text (its comment lines left out)."""
    return [
        [line for line in block.splitlines()[1:] if line and not line.startswith("#")]
        for block in text.split("## host ")[1:]
    ]


def test_each_backend_gets_the_launch_its_ranks_need():
    """QA 2026-12-07: torch, keras and keras-jax were printed the same two lines (torchrun and TF_CONFIG) each. A
    torch rank joins under torchrun; a Keras/TF rank from TF_CONFIG on the plain worker line; a Keras/JAX rank from
    BENCH_DIST_* alone (the coordinator is the first address): one line each, the others' launchers absent."""
    plan = dist_launch.launch_plan(["n0", "n1"], "cifar10-cnn", port=29400, worker_port=2222)
    torch_ = host_blocks(dist_launch.render(plan, "torch"))
    tf = host_blocks(dist_launch.render(plan, "keras"))
    jax = host_blocks(dist_launch.render(plan, "keras-jax"))
    assert [len(b) for b in torch_ + tf + jax] == [1] * 6
    for rank, ((t,), (k,), (j,)) in enumerate(zip(torch_, tf, jax, strict=True)):
        assert " torchrun " in t and "TF_CONFIG" not in t and f"--node-rank {rank}" in t
        assert k.startswith("TF_CONFIG=") and "torchrun" not in k and k.endswith(WORKER_LINE)
        assert f'"index": {rank}}}' in k
        assert "torchrun" not in j and "TF_CONFIG" not in j and j.endswith(WORKER_LINE)
        assert f"BENCH_DIST_RANK={rank} " in j and "BENCH_DIST_ADDRESSES=n0:2222,n1:2222 " in j
    head = {b: dist_launch.render(plan, b).splitlines()[0] for b in ("torch", "keras", "keras-jax")}
    assert head["torch"].endswith("torch rendezvous (c10d) at n0:29400")
    assert head["keras"].endswith("TF chief (MultiWorkerMirroredStrategy) at n0:2222")
    assert head["keras-jax"].endswith("JAX coordinator (jax.distributed) at n0:2222")


def test_launch_threads_zero_is_the_frameworks_default_and_a_count_is_every_pool():
    """--threads' help says 0 is the framework's default (a row's runtime.threads = 0); it was printed as 1."""
    zero = dist_launch.launch_plan(["n0"], "t")[0].env
    assert zero["BENCH_DIST_THREADS"] == "0" and "OMP_NUM_THREADS" not in zero
    ctx = DistContext.from_env(zero)
    assert ctx is not None and ctx.threads == 0
    four = dist_launch.launch_plan(["n0"], "t", threads=4)[0].env
    assert (four["BENCH_DIST_THREADS"], four["OMP_NUM_THREADS"], four["MKL_NUM_THREADS"]) == ("4", "4", "4")
    for bad in (-4, MAX_THREADS + 1):
        with pytest.raises(ValueError, match=rf"--threads: must be an integer in 0\.\.1,024, got {bad}"):
            dist_launch.launch_plan(["n0"], "t", threads=bad)
    with pytest.raises(ValueError, match="not a task name"):
        dist_launch.launch_plan(["n0"], "bench/tasks/examples/mnist-layers.toml")


def test_distributed_launch_checks_the_task_backend_and_threads_as_bench_run_does(clean_env, tmp_path):
    """QA 2026-12-07: ``--task nope``, a broken task file, keras-torch (no data-parallel engine) and ``--threads -4``
    were printed with exit 0, and a task file's path went into the rendezvous id, slashes included."""
    base = ["distributed-launch", "--hosts", "a,b"]
    example = "bench/tasks/examples/mnist-layers.toml"
    proc = run_cli([*base, "--task", example, "--backend", "torch"], clean_env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("--rdzv-id bench-mnist-layers ") == 2  # the task's name, a token
    broken = tmp_path / "broken.toml"
    broken.write_text('name = "x"\n[train]\nlr = 1\n')
    refused = [
        (["--task", "nope", "--backend", "torch"], "error: nope: no such task or file (built-in tasks: "),
        (["--task", str(broken), "--backend", "torch"], f"error: {broken}: missing required table [dataset]"),
        (
            ["--task", example, "--backend", "keras-torch"],
            "error: --backend keras-torch: Keras on torch has no data-parallel engine",
        ),
        (
            ["--task", example, "--backend", "torch", "--threads", "-4"],
            "python -m bench distributed-launch: error: argument --threads: must be an integer in 0..1,024, got -4",
        ),
        (["--task", example, "--backend", "torch", "--threads", "100000"], "got 100000"),
    ]
    for args, says in refused:
        proc = run_cli([*base, *args], clean_env)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and not proc.stdout, (args, proc)
        assert says in proc.stderr, proc.stderr


# -- ports -----------------------------------------------------------------------------------------


def test_free_ports_are_distinct_and_bindable():
    ports = distributed.free_ports(4)
    assert len(set(ports)) == 4
    distributed.check_free(tuple(f"127.0.0.1:{p}" for p in ports))


def test_a_port_already_in_use_is_a_clear_error_before_anything_starts(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        addrs = (f"127.0.0.1:{port}", f"127.0.0.1:{distributed.free_ports(1)[0]}")
        with pytest.raises(distributed.PortInUse, match=f"rendezvous port 127.0.0.1:{port} is already in use"):
            distributed.check_free(addrs)
        where = distributed.Launch(tmp_path / "jobs", tmp_path / "logs", REPO, {}, 30.0, addresses=addrs)
        job = Job({}, dist=DistLayout(workers=2, mode="strong", per_worker_batch=16))
        with pytest.raises(distributed.PortInUse, match=str(port)):
            distributed.launch(job, 2, 1, tiny_spec(), where, local=False)
    assert not (tmp_path / "logs").exists()  # refused before any rank was started


# -- real runs -------------------------------------------------------------------------------------


def _ranks_or_not(name: str) -> Any:  # a pytest.param
    """A backend that trains data-parallel rows needs the whole machine (two ranks, a core each: tests/lanes.py);
    one whose description says it cannot starts no rank, so it runs in a lane (its description imports nothing)."""
    return pytest.param(name, marks=() if backends.describe(name).no_data_parallel else pytest.mark.whole_machine)


@linux_only
@pytest.mark.parametrize("backend", [_ranks_or_not(name) for name in backends.names()])
@pytest.mark.e2e
def test_two_workers_rendezvous_train_and_leave_nothing_behind(backend, clean_env, tmp_path):
    """1 and 2 workers of each backend with a data-parallel role: ok rows, equal replicas, no process left. A
    backend whose description promises data-parallel rows and whose Backend cannot join fails here: its 2-worker
    row fails (bench.run.dist_worker), it is not skipped."""
    if missing := backends.missing_packages(backend):
        pytest.skip(f"{backend}: not installed: {', '.join(missing)}")
    task = tmp_path / "tiny.toml"
    task.write_text(DP_TASK.replace("lr = 0.01", "lr = 0.01\ntarget_acc = 0.05"))  # reached: 10 classes, 2 epochs
    out = tmp_path / "results"
    why = backends.describe(backend).no_data_parallel
    # one without ranks runs in a lane, on one core: the plan's check of 2 workers against the cores comes first
    env = {**clean_env, "BENCH_MAX_WORKERS": "2"} if why else clean_env
    proc = run_cli(["run", str(task), "--backend", backend, "--out", str(out)], env, timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = only_run_dir(out)
    rows = {r["workers"]: r for r in records(run_dir)}
    if why:  # said by its description: skipped rows saying why, no rank started, nothing left running
        assert "has no data-parallel engine" in why
        assert all(r["status"] == "skipped" and r["error"] == why and r["wall_s"] == 0.0 for r in rows.values()), rows
        assert sorted(rows) == [1, 2] and live_processes(str(run_dir)) == []
        return
    assert sorted(rows) == [1, 2] and all(r["status"] == "ok" for r in rows.values()), rows
    # where each ran, as every row says (QA, 2026-12-05: executor, node and placement were empty here)
    assert [(r["executor"], r["placement"], r["rows_beside"]) for r in rows.values()] == [
        ("local", f"{w} rank processes", 0) for w in rows
    ]
    one, two = rows[1], rows[2]
    assert (one["per_worker_batch"], one["global_batch"], two["per_worker_batch"], two["global_batch"]) == (
        32,
        32,
        16,
        32,
    )
    assert two["dist_backend"] and two["scaling_mode"] == "strong" and one["scaling_eff"] == 1.0
    # what ran, as a single-process row of the backend records it (its knobs and their columns; until 2026-12-07 empty)
    assert all(isinstance(r["knobs"], dict) and r["precision"] == "fp32" for r in rows.values()), rows
    compiled = {"torch": "eager", "keras": "tf.function (no XLA)", "keras-jax": "jax.jit (XLA)"}.get(backend)
    assert [r["compiled"] for r in rows.values()] == [compiled] * 2, rows
    assert two["scaling_eff"] == pytest.approx(two["steady_img_s"] / (2 * one["steady_img_s"]))
    assert two["allreduce_source"] == "same window, workers not joined" and two["local_step_s"] > 0
    assert two["allreduce_share"] == pytest.approx(1 - two["local_step_s"] / two["steady_step_s"])
    sums = two["rank_checksums"]
    assert len(sums) == 2 and sums[0] == pytest.approx(sums[1], rel=1e-6), sums  # DDP kept the replicas equal
    # strong scaling, averaged gradients: the same global batches, so the same model up to float rounding
    assert two["test_acc"] == pytest.approx(one["test_acc"], abs=0.03)
    for row in (one, two):  # rank 0's evaluation, the single-process row's fields (bench.run.evaluate)
        cm = np.array(row["confusion_matrix"])
        assert cm.shape == (10, 10) and cm.sum() == 100 and np.trace(cm) / 100 == pytest.approx(row["test_acc"])
        assert row["classification_report"]["accuracy"] == pytest.approx(row["test_acc"])
        assert 0 <= row["test_macro_f1"] <= 1 and row["eval_img_s"] > 0
    for row in (one, two):  # every epoch's test accuracy (the first summed from the ranks' parts), time to target
        assert [h["epoch"] for h in row["history"] if "test_acc" in h] == [1, 2], row["history"]
        first = row["history"][0]["seconds"]
        reached = [
            s
            for s, h in zip((first, first + row["history"][1]["seconds"]), row["history"], strict=True)
            if h["test_acc"] >= 0.05
        ]
        assert row["time_to_target_s"] == pytest.approx(reached[0]), (row["history"], row["time_to_target_s"])
    # the first step's excess over a steady one, as a single-process row records it (rank 0's), in the table too
    assert one["compile_s"] >= 0 and two["compile_s"] >= 0, (one, two)
    summary = (run_dir / "summary.md").read_text()
    assert "## Data-parallel scaling" in summary and (run_dir / "plots" / "scaling-tiny-dp.png").is_file()
    assert "first-step overhead (s)" in summary
    assert live_processes(str(run_dir)) == []


@linux_only
@pytest.mark.whole_machine  # two ranks, a core each (tests/lanes.py)
@pytest.mark.e2e
def test_a_killed_rank_fails_its_row_by_name_and_the_next_row_runs(clean_env, tmp_path):
    task = tmp_path / "tiny.toml"
    task.write_text(DP_TASK.replace("workers = [1, 2]", "workers = [2]\nallreduce_share = false"))
    out = tmp_path / "results"
    env = dist_fault_env(clean_env, tmp_path / "site", kill_rank=1)
    proc = run_cli(["run", str(task), "--backend", "faultdp,torch", "--out", str(out)], env, timeout=400)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]  # a failed row: exit 1
    run_dir = only_run_dir(out)
    rows = {r["backend"]: r for r in records(run_dir)}
    failed, ok = rows["faultdp"], rows["torch"]
    assert failed["status"] == "failed" and failed["error"].startswith("rank 1 killed by SIGKILL"), failed["error"]
    assert failed["wall_s"] < 30 + distributed.GRACE_S + 30  # bounded: the collective timeout, not forever
    assert ok["status"] == "ok" and ok["workers"] == 2
    assert live_processes(str(run_dir)) == []


@linux_only
@pytest.mark.e2e
def test_ctrl_c_stops_every_rank_and_resume_reruns_the_row(clean_env, tmp_path):
    """Ctrl-C while both ranks are inside training: exit 130, the row interrupted, no rank left; --resume reruns it.
    Nothing here is timed, so it runs in a lane: its two ranks share the lane's core (BENCH_MAX_WORKERS)."""
    task = tmp_path / "tiny.toml"
    task.write_text(DP_TASK.replace("workers = [1, 2]", "workers = [2]\nallreduce_share = false"))
    out, hold = tmp_path / "results", tmp_path / "hold"
    hold.mkdir()
    env = {**dist_fault_env(clean_env, tmp_path / "site", kill_rank=-1), "BENCH_MAX_WORKERS": "2"}
    args = [sys.executable, "-m", "bench", "run", str(task), "--backend", "faultdp", "--out", str(out)]
    proc = subprocess.Popen(
        args,
        cwd=REPO,
        env={**env, "DIST_HOLD_DIR": str(hold)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=sigint_default,
    )
    try:
        deadline = time.monotonic() + 300
        while not all((hold / f"held-{r}").exists() for r in (0, 1)):
            assert proc.poll() is None and time.monotonic() < deadline, printed(proc)
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, output
    run_dir = only_run_dir(out)
    (row,) = records(run_dir)
    assert row["status"] == "interrupted" and row["workers"] == 2, row
    assert live_processes(str(run_dir)) == []
    resumed = run_cli(["run", "--resume", str(run_dir)], env, timeout=400)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    rows = [r for r in records(run_dir) if r["status"] == "ok"]
    assert len(rows) == 1 and rows[0]["workers"] == 2


# A sitecustomize for the runner only (ranks have BENCH_DIST_RANK): after each fork of a rank, in the parent,
# note it in $FORK_MARK_DIR and hold 0.3 s there, where CPython's at-fork handlers run. A Ctrl-C that landed
# inside one was printed ("Exception ignored in ... _releaseLock") and dropped: the run went on.
SLOW_FORK = """import os, time
from pathlib import Path
if os.environ.get("FORK_MARK_DIR") and "BENCH_DIST_RANK" not in os.environ:
    def _noted_fork():
        marks = Path(os.environ["FORK_MARK_DIR"])
        (marks / f"fork-{len(list(marks.iterdir()))}").touch()
        time.sleep(0.3)
    os.register_at_fork(after_in_parent=_noted_fork)
"""


def interrupt_at_fork(env: dict[str, str], tmp_path: Path, workers: int, at: int) -> tuple[int, str, Path]:
    """Run a ``workers``-rank row and Ctrl-C its whole process group (as a terminal does) while the runner
    is inside the fork of rank ``at``; the exit code, the output and the run directory."""
    task = tmp_path / "tiny.toml"
    text = DP_TASK.replace("workers = [1, 2]", f"workers = [{workers}]\nallreduce_share = false")
    task.write_text(text.replace("batch_size = 32", f"batch_size = {8 * workers}"))
    site, marks, out = tmp_path / "site", tmp_path / "forks", tmp_path / "results"
    site.mkdir()
    marks.mkdir()
    (site / "sitecustomize.py").write_text(SLOW_FORK)
    path = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH", "")) if p)
    env = {**env, "PYTHONPATH": path, "FORK_MARK_DIR": str(marks), "BENCH_MAX_WORKERS": str(workers)}
    args = [sys.executable, "-m", "bench", "run", str(task), "--backend", "torch", "--out", str(out)]
    proc = subprocess.Popen(
        args,
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=sigint_default,
    )
    try:
        deadline = time.monotonic() + 300
        while not (marks / f"fork-{at}").exists():
            assert proc.poll() is None and time.monotonic() < deadline, printed(proc)
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGINT)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode, output, only_run_dir(out)


@linux_only
@pytest.mark.parametrize(("workers", "at"), [(2, 0), (2, 1), (12, 6)])
@pytest.mark.e2e
def test_ctrl_c_while_ranks_start_stops_the_run_and_every_rank(clean_env, tmp_path, workers, at):
    """Every time: exit 130, the row interrupted, no rank left, whichever rank's fork the Ctrl-C lands in. No rank
    trains, so it runs in a lane: the ranks share its core (BENCH_MAX_WORKERS, as 12 ranks share two cores)."""
    code, output, run_dir = interrupt_at_fork(clean_env, tmp_path, workers, at)
    assert code == 130, output[-3000:]
    (row,) = records(run_dir)
    assert row["status"] == "interrupted" and row["workers"] == workers, row
    deadline = time.monotonic() + 10  # SIGKILLed groups are reaped by the runner before it exits; /proc may lag
    while live_processes(str(run_dir)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert live_processes(str(run_dir)) == []


def test_workers_are_capped_by_the_cores_unless_the_override_allows_more():
    many = tiny_spec(workers=[1, 4], mode="weak")
    distributed.check_workers([many], environ={}, cores=4, gpus=[])  # one rank per core: the boundary
    says = r"tiny\.toml: distributed\.workers: 4 workers is more than this machine's 2 cores .*BENCH_MAX_WORKERS=4"
    with pytest.raises(SpecError, match=says):
        distributed.check_workers([many], environ={}, cores=2, gpus=[])
    distributed.check_workers([many], environ={"BENCH_MAX_WORKERS": "4"}, cores=2, gpus=[])
    with pytest.raises(SpecError, match=r"4 workers is more than BENCH_MAX_WORKERS=3"):
        distributed.check_workers([many], environ={"BENCH_MAX_WORKERS": "3"}, cores=2, gpus=[])
    with pytest.raises(SpecError, match=r"BENCH_MAX_WORKERS: expected an integer >= 1, got 'lots'"):
        distributed.check_workers([many], environ={"BENCH_MAX_WORKERS": "lots"}, cores=2, gpus=[])
    with pytest.raises(SpecError, match=r"distributed\.workers: 4 workers on CUDA need one GPU each"):
        distributed.check_workers([many], environ={"BENCH_MAX_WORKERS": "4"}, cores=2, gpus=["GPU 0"])
    flagged = with_workers([many], (1, 4), None)  # the counts came from the command line: the error names the flag
    with pytest.raises(SpecError) as e:
        distributed.check_workers(flagged, environ={}, cores=2, gpus=[])
    assert str(e.value).startswith("--workers: 4 workers is more than this machine's 2 cores"), str(e.value)
    with pytest.raises(SpecError, match=r"^--workers: 4 workers on CUDA need one GPU each"):
        distributed.check_workers(flagged, environ={"BENCH_MAX_WORKERS": "4"}, cores=2, gpus=["GPU 0"])
    plain = dataclasses.replace(many, distributed=type(many.distributed)())  # a task without [distributed]
    distributed.check_workers([plain], environ={}, cores=1, gpus=[])  # no data-parallel rows


def test_a_resumed_run_names_where_its_worker_counts_came_from(clean_env, tmp_path):
    """QA: --resume on a machine that cannot hold the run's ranks named ``distributed.workers`` though the counts
    came from --workers: plan.json did not say where they came from. It keeps the keys the command line set
    (``TaskSpec.flags``), so the resume names --workers; a plan written before it still resumes, naming the key."""
    import json

    from bench.run.plan import RunOptions, read_plan, write_plan
    from bench.run.runfolder import new_run_dir

    out = tmp_path / "results"
    run_dir = new_run_dir(out)
    tasks = with_workers([tiny_spec()], (1, 2), ("weak",))
    write_plan(run_dir, tasks, RunOptions(backends=("torch",), out=out))
    plan = json.loads((run_dir / "plan.json").read_text())
    assert plan["tasks"][0]["flags"] == ["distributed.mode", "distributed.workers"]
    assert read_plan(run_dir)[0] == tasks
    env = {**clean_env, "BENCH_MAX_WORKERS": "1"}  # the machine resuming runs fewer ranks than the plan's 2
    proc = run_cli(["run", "--resume", str(run_dir)], env)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("error: --workers: 2 workers is more than BENCH_MAX_WORKERS=1"), proc.stderr
    for task in plan["tasks"]:  # as a plan.json written before 2026-12-06 has it
        del task["flags"]
    (run_dir / "plan.json").write_text(json.dumps(plan))
    (old,) = read_plan(run_dir)[0]
    assert old == dataclasses.replace(tasks[0], flags=())
    proc = run_cli(["run", "--resume", str(run_dir)], env)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("error: tiny.toml: distributed.workers: 2 workers is more than"), proc.stderr
