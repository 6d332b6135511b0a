"""Property tests: whatever records.jsonl holds, reading it and building the table, the summary and a comparison
raise nothing and warn only with the project's own RunFileWarning (no KeyError, TypeError, UnicodeDecodeError ...)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.core.record import COLUMNS
from bench.core.results import RunFileWarning, latest_records, parse_records, table
from bench.report import compare
from bench.report.sections import SECTIONS, ReportView
from bench.report.tables import terminal_summary
from bench.report.text import summary_markdown

# The reader itself is cheap: many examples. The report and compare on top cost ~0.3 s an example on a
# busy 2-core machine: few examples, of the inputs that get past the reader (well-typed records).
READER = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PIPELINE = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
names = st.sampled_from(["t", "u", "../x", ""]) | st.text(max_size=6)
# Records a reader must survive: the keys it joins on well typed, every other column anything JSON can hold.
KEYS = {
    "task": names,
    "backend": st.sampled_from(["torch", "keras", "x"]),
    "repeat": st.integers(-3, 3),
    "status": st.sampled_from(["ok", "failed", "timeout", "interrupted", "?"]),
}
OTHER = [
    c
    for c in (*COLUMNS, "history", "transfer", "decouple_topk", "confusion_matrix", "classification_report")
    if c not in KEYS
]
records = st.fixed_dictionaries(KEYS, optional=dict.fromkeys(OTHER, json_values))


def read_everything(data: bytes, report: bool = True) -> None:
    """The reading side of report and compare on ``data`` as records.jsonl (``report``: the summary and compare too)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        recs = latest_records(parse_records(data, "records.jsonl"))
        df = table(recs)
        if report:
            summary_markdown(df, {"run_id": "fuzz"}, "")
            view = ReportView(df, recs, Path("unused"), df, "torch", {})
            for name in ("transfer", "confusion"):  # these sections read records only
                next(s for s in SECTIONS if s.name == name).text(view)
            terminal_summary(df)
            keyed = compare.keyed(df)
            compare.render(compare.compare(keyed, keyed, compare.Thresholds()))
    foreign = [
        f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})"
        for w in caught
        if not issubclass(w.category, RunFileWarning)
    ]
    assert not foreign


@READER
@given(st.binary(max_size=400))
def test_random_bytes(data: bytes):
    read_everything(data, report=False)


@READER
@given(st.lists(json_values, max_size=4))
def test_random_json_lines(values: list):
    read_everything("\n".join(json.dumps(v) for v in values).encode(), report=False)


@PIPELINE
@given(st.lists(records, min_size=1, max_size=4))
def test_well_typed_but_wrong_records(recs: list[dict]):
    data = "\n".join(json.dumps(r) for r in recs).encode() + b"\n"
    read_everything(data)


def test_a_data_parallel_key_that_is_not_an_integer_is_named_and_skipped():
    """Found by the property test above: ``"workers": ""`` reached ``int()`` in the row key."""
    good = {"task": "t", "backend": "torch", "repeat": 0, "status": "ok", "workers": 2, "scaling_mode": "strong"}
    data = "\n".join(json.dumps({**good, "workers": w}) for w in ("", 2.5, True, 2)).encode() + b"\n"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        recs = parse_records(data, "records.jsonl")
    assert [r["workers"] for r in recs] == [2]
    assert [str(w.message) for w in caught] == [
        f"records.jsonl:{n}: 'workers' is {kind}, not int; line skipped"
        for n, kind in ((1, "str"), (2, "float"), (3, "bool"))
    ]


def test_text_where_a_number_belongs_is_named_and_ignored():
    """Found by the property test: ``"peak_flops": "x"`` reached a median in the summary's speed line."""
    rec = {
        "task": "t",
        "backend": "torch",
        "repeat": 0,
        "status": "ok",
        "peak_flops": "x",
        "model": "lenet5",
        "peak_flops_source": "measured: fp32 matmul",
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (parsed,) = parse_records(json.dumps(rec).encode() + b"\n", "records.jsonl")
        summary_markdown(table([parsed]), {"run_id": "r"})
    assert parsed["peak_flops"] is None and parsed["model"] == "lenet5"
    assert [str(w.message) for w in caught] == ["records.jsonl:1: 'peak_flops' is str, not a value; ignored"]


def test_a_parity_check_on_no_finished_row_says_nothing_and_a_finished_one_is_said():
    """Found by the property test: a run whose only parity-checked row had failed reached ``iloc[0]`` of an
    empty selection in the summary's parity lines."""
    base = {"task": "t", "repeat": 0, "model": "lenet5", "parity_steps": 2, "parity_alignments": "adam_eps"}
    failed = {**base, "backend": "torch", "status": "failed", "parity_weight_diff": 1e-7}
    ok = {**base, "backend": "torch", "status": "ok", "parity_weight_diff": 1e-7, "parity_logit_diff": 2e-7}
    ok |= {"parity_bound_weight": 1e-6, "parity_bound_logit": 1e-5, "parity_within": True}
    assert "Training parity" not in summary_markdown(table([failed]), {"run_id": "r"})
    said = summary_markdown(table([ok]), {"run_id": "r"})
    assert "Training parity: 2 step(s)" in said and "weights 1.00e-07 (bound 1.00e-06)" in said
