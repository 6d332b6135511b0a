"""The worker's record where it crosses back into the runner (bench.core.results.checked_answer): the
contract records.jsonl holds, checked where the record is written, naming what broke it."""

from __future__ import annotations

from bench.core.record import COLUMNS, new_record
from bench.core.results import checked_answer

JOB = {"task": "tiny", "backend": "numpy", "repeat": 0, "seed": 3}


def answer(**fields):
    return new_record(**JOB, status="ok", test_acc=0.91, steady_img_s=1234.5, notes="a note", **fields)


def test_a_well_formed_record_passes_unchanged():
    rec = answer(history=[{"epoch": 1, "train_loss": 0.5}], channels_last=True)
    assert checked_answer(rec, JOB) is rec


def test_text_where_a_number_belongs_fails_the_row_naming_it_and_keeps_the_rest():
    got = checked_answer(answer(mfu="12%", params=[1, 2]), JOB)
    assert got["status"] == "failed"
    assert got["error"] == "the worker's record broke its contract: no single value of the column's kind in params, mfu"
    assert got["mfu"] is None and got["params"] is None
    assert got["test_acc"] == 0.91 and got["steady_img_s"] == 1234.5 and got["notes"] == "a note"


def test_a_field_no_record_has_is_named_dropped_and_a_workers_own_error_kept():
    rec = {**answer(), "status": "failed", "error": "RuntimeError: boom", "tset_acc": 0.9}
    got = checked_answer(rec, JOB)
    assert "tset_acc" not in got and got["test_acc"] == 0.91
    assert got["error"] == "RuntimeError: boom; the worker's record broke its contract: unknown field(s) tset_acc"


def test_a_record_of_another_row_or_without_its_keys_is_a_failed_row_of_this_one():
    other = checked_answer({**answer(), "repeat": 1}, JOB)
    assert other["status"] == "failed" and (other["task"], other["repeat"], other["seed"]) == ("tiny", 0, 3)
    assert other["error"] == "the worker's record is unusable: a record of row tiny/numpy/1, not of this one"
    assert set(other) == set(COLUMNS)
    broken = checked_answer({"task": "tiny", "backend": "numpy", "repeat": "0", "status": "ok"}, JOB)
    assert broken["error"] == "the worker's record is unusable: 'repeat' is str, not int"
    nested = checked_answer(answer(history={"epoch": 1}), JOB)
    assert nested["error"] == "the worker's record is unusable: 'history' is dict, not list"


def test_a_float_where_a_count_belongs_fails_a_workers_row_but_a_count_in_a_number_column_does_not():
    got = checked_answer(answer(n_train=9999.5, lr=1), JOB)
    assert got["error"] == "the worker's record broke its contract: no single value of the column's kind in n_train"
    assert got["n_train"] is None and got["lr"] == 1


def test_the_record_declares_every_column_once_with_its_kind_and_the_groups_are_spans_of_it():
    from bench.core.placement import PLACEMENT_COLUMNS
    from bench.core.record import FLAG_COLUMNS, KINDS, NESTED, TEXT_COLUMNS, span

    assert span("executor", "rows_beside") == PLACEMENT_COLUMNS
    assert set(KINDS) == set(COLUMNS) | set(NESTED) and not set(COLUMNS) & set(NESTED)
    assert FLAG_COLUMNS == (
        "lost",
        "peak_flops_reused",
        "channels_last",
        "cudnn_benchmark",
        "fused_optimizer",
        "parity_within",
    )
    assert {"task", "backend", "notes", "precision"} <= TEXT_COLUMNS and "steady_img_s" not in TEXT_COLUMNS
    assert (KINDS["repeat"], KINDS["steady_img_s"], KINDS["history"]) == ("count", "number", "nested")
