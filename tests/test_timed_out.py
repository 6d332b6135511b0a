"""A row stopped at its time limit after training keeps what it measured (QA, 2026-12-08: a Keras row that had
trained and tested, `test acc 0.9685` in its log, timed out in Grad-CAM and its record said `train_s None,
test_acc None`). The worker writes the row so far as each stage starts (``bench.core.phase.SoFar``); the runner
keeps that record on a timeout, names the stage (``timed_out_in``) and says it in the error every report quotes.
The row stays "timeout": not ok for the tables, compare, the history or --resume, as before."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.core.job import Job
from bench.core.phase import MFU_PEAK, TRAINING, PhaseFunctions, SoFar, Trained
from bench.core.record import new_record
from bench.core.results import NOT_OK, RunFileWarning, failed_repeats, kept_on_resume
from bench.core.runpaths import so_far_file
from bench.core.spec import load_task
from bench.run.executors.remote import no_result, read_so_far
from tests.conftest import TINY_TASK

JOB = {"task": "tiny", "backend": "numpy", "repeat": 0, "seed": 3}
LIMIT = "stopped after the per-run limit of 6 s"


def measured(**fields: Any) -> dict[str, Any]:
    """A worker's record after training and testing, as it writes it when a phase starts."""
    figures = {"test_acc": 0.9685, "train_s": 3.14, "steady_img_s": 812.5, "notes": "a note"}
    return new_record(**JOB, status="ok", **{**figures, **fields})


def test_a_timeout_in_a_phase_keeps_the_figures_measured_before_it_and_names_the_phase():
    row = no_result(JOB, timeout_s=6.0, so_far=SoFar("explain", measured(history=[{"epoch": 1, "train_loss": 0.4}])))
    assert (row["status"], row["timed_out_in"]) == ("timeout", "explain")
    assert (row["test_acc"], row["train_s"], row["steady_img_s"], row["notes"]) == (0.9685, 3.14, 812.5, "a note")
    assert row["history"] == [{"epoch": 1, "train_loss": 0.4}]
    assert row["error"] == f"{LIMIT} in phase explain; kept what it measured before it: test acc 0.9685, train 3.1 s"
    # not ok, as every timeout before it: --resume keeps it (does not run it again), the readers count it as not ok
    assert kept_on_resume(row) and row["status"] in NOT_OK
    assert failed_repeats([measured(), row]) == "1 of 2 repeats timed out"


def test_a_timeout_in_training_says_so_and_one_before_any_stage_is_as_before():
    row = no_result(JOB, timeout_s=6.0, so_far=SoFar(TRAINING, new_record(**JOB)))
    assert (row["status"], row["timed_out_in"], row["error"]) == ("timeout", "training", f"{LIMIT} during training")
    assert row["test_acc"] is None and row["train_s"] is None
    # stopped after the test evaluation, in the MFU peak's matmuls (QA's Keras row, as the log's last line read)
    peak = no_result(JOB, timeout_s=6.0, so_far=SoFar(MFU_PEAK, measured()))
    assert (peak["timed_out_in"], peak["test_acc"]) == ("mfu_peak", 0.9685)
    kept = "kept what it measured before it: test acc 0.9685, train 3.1 s"
    assert peak["error"] == f"{LIMIT} while measuring the MFU peak; {kept}"
    assert no_result(JOB, timeout_s=6.0) == new_record(**JOB, status="timeout", error=LIMIT)


def test_a_record_so_far_that_breaks_the_contract_is_not_kept_but_its_stage_is():
    broken = no_result(JOB, timeout_s=6.0, so_far=SoFar("decouple", measured(test_acc="high")))
    assert (broken["status"], broken["timed_out_in"], broken["test_acc"], broken["train_s"]) == (
        "timeout",
        "decouple",
        None,
        None,
    )
    assert broken["error"] == (
        f"{LIMIT} in phase decouple; nothing kept: the worker's record broke its contract: no single value of the "
        "column's kind in test_acc"
    )
    other = no_result(JOB, timeout_s=6.0, so_far=SoFar("explain", {**measured(), "repeat": 1}))
    assert (other["repeat"], other["test_acc"], other["timed_out_in"]) == (0, None, "explain")
    assert "nothing kept: the worker's record is unusable: a record of row tiny/numpy/1" in other["error"]


@pytest.mark.parametrize(
    "raw",
    [[], {"stage": "explain"}, {"stage": "explain", "record": [], "x": 1}, {"stage": "../x", "record": {}}],
    ids=["list", "no-record", "extra-key", "not-a-name"],
)
def test_a_so_far_file_of_another_shape_is_refused_and_the_row_times_out_as_before(tmp_path: Path, raw: object):
    result = tmp_path / "tiny.numpy.0.result.json"
    so_far_file(result).write_text(json.dumps(raw))
    with pytest.warns(RunFileWarning, match=r"result\.sofar\.json: unreadable, what the row had measured before"):
        assert read_so_far(tmp_path, result) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_so_far(tmp_path, tmp_path / "other.result.json") is None  # none written: nothing to say


def test_the_worker_writes_the_row_so_far_as_each_stage_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """In-process, with the numpy test backend and three phases in place of the real ones: each reads the file as
    it starts, as do training and the two measures after the test evaluation. Training's record has nothing
    measured; each later one has the training and test figures, and a phase's the columns of the phases before it
    and the error of one that raised."""
    import backends
    from bench.measure import perf
    from bench.run import worker
    from bench.run.runner import base_record
    from tests.numpy_backend import DESCRIPTION

    monkeypatch.setitem(backends.BACKENDS, "numpy", DESCRIPTION)
    monkeypatch.setattr(perf, "mfu_fields", lambda *args, **kwargs: {})  # its 2048x2048 matmuls: not what is tested
    task = tmp_path / "tiny.toml"
    task.write_text(TINY_TASK)
    spec = load_task(str(task), "quick")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 400)
    x = np.clip(rng.normal(60, 40, (400, 28, 28, 1)) + 15 * y[:, None, None, None], 0, 255).astype(np.uint8)
    np.savez(tmp_path / "data.npz", x_train=x[:300], y_train=y[:300], x_test=x[300:], y_test=y[300:])
    result = tmp_path / "tiny.numpy.0.result.json"
    seen: list[SoFar] = []

    def look() -> None:
        seen.append(SoFar.from_json(json.loads(so_far_file(result).read_text())))

    def phase(name: str, fields: dict[str, Any] | None) -> PhaseFunctions:
        def run(trained: Trained) -> dict[str, Any]:
            look()
            if fields is None:
                raise RuntimeError("boom")
            return fields

        return PhaseFunctions(name, tuple(fields or ()), run)

    train = worker.train_and_evaluate

    def training(*args: Any) -> Any:
        *given, starting = args  # the worker's own, and a look after each of its calls

        def told(stage: str, fields: dict[str, Any]) -> None:
            starting(stage, fields)
            look()

        look()
        return train(*given, told)

    monkeypatch.setattr(worker, "train_and_evaluate", training)
    phases = (phase("transfer", {"transfer_acc": 0.5}), phase("explain", None), phase("decouple", {}))
    monkeypatch.setattr(worker, "PHASES", phases)
    job = Job(
        base_record("r", spec, "numpy", 0, 0),
        spec=spec.to_dict(),
        data=str(tmp_path / "data.npz"),
        classes=[str(c) for c in range(10)],
        result=str(result),
    )
    rec = worker.run_job(job, import_s=0.25)
    assert [s.stage for s in seen] == ["training", "input_path", "mfu_peak", "transfer", "explain", "decouple"]
    start, input_path, mfu_peak, transfer, explain, decouple = (s.record for s in seen)
    assert start["status"] is None and start["test_acc"] is None and start["import_s"] == 0.25
    for r in (input_path, mfu_peak, transfer, explain, decouple):  # a whole record, as the worker's: no working fields
        assert r["test_acc"] == rec["test_acc"] and r["train_s"] == rec["train_s"] and r["params"] == rec["params"]
        assert len(r["history"]) == spec.train.epochs and isinstance(r["notes"], str) and r["import_s"] == 0.25
        assert "configure_notes" not in r and "timing_notes" not in r
    assert input_path["input_share"] is None and mfu_peak["input_share"] == rec["input_share"] is not None
    assert input_path["status"] is None and transfer["status"] == "ok"  # ok once trained, tested and measured
    assert transfer["transfer_acc"] is None and explain["transfer_acc"] == decouple["transfer_acc"] == 0.5
    assert explain["phase_errors"] is None and decouple["phase_errors"] == "explain: RuntimeError: boom"
    assert (rec["status"], rec["phase_errors"], rec["transfer_acc"]) == ("ok", "explain: RuntimeError: boom", 0.5)
    assert not result.exists()  # the record itself is main's to write, as before


def test_compare_reads_a_timeout_that_kept_figures_as_not_ok_and_says_its_phase(tmp_path: Path):
    """B's keras rows timed out in explain with better figures than A's: compare judges none of them (its figures
    are the ok repeats', and B has none), calls the status a regression as before, and its reason names the phase
    and what was kept."""
    from bench.core.results import append_record
    from bench.report.compare import Thresholds, compare, load_run, unmeasured_lines

    def run(name: str, keras: str) -> Path:
        path = tmp_path / name
        path.mkdir()
        for backend in ("torch", "keras"):
            fields = dict(task="t", backend=backend, repeat=0, model="m", profile="quick", run_id=name)
            ok = new_record(**fields, status="ok", test_acc=0.9, train_s=10.0, epoch_s_median=1.0, epochs=8)
            if backend == "keras" and keras == "timeout":
                faster = {**ok, "test_acc": 0.99, "train_s": 5.0, "epoch_s_median": 0.5}
                ok = no_result(fields, timeout_s=6.0, so_far=SoFar("explain", faster))
            append_record(path, ok)
        return path

    a, b = load_run(run("a", "ok"), tmp_path)[0], load_run(run("b", "timeout"), tmp_path)[0]
    result = compare(a, b, Thresholds())
    keras = result[result.backend == "keras"]
    assert list(keras.metric) == ["status"] and list(keras.b) == ["timeout"] and keras.regression.all()
    assert unmeasured_lines(b, result) == [
        "Keys of B without an ok row, and why (as B recorded its rows):",
        f"- t (keras): timeout: {LIMIT} in phase explain; kept what it measured before it: test acc 0.9900, "
        "train 5.0 s",
    ]
