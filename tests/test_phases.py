"""The phase contract and the backend registry: what the worker and the report rely on.

Phases declare their columns, and the report registers a section for each; the registry describes every backend
without importing a framework and sets a backend's environment before importing it; a run
written before a column was renamed still reports and compares.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import backends
from bench.core.record import COLUMNS, NESTED, new_record
from bench.core.results import append_record, parse_records
from bench.core.spec import parse_task
from bench.phases import PHASES
from bench.report.sections import SECTIONS, ReportView
from tests.conftest import REPO, run_cli

MINIMAL = {
    "name": "t",
    "dataset": {"name": "mnist"},
    "model": {"arch": "lenet5"},
    "train": {"epochs": 1, "batch_size": 8, "lr": 0.01},
}


def test_every_phase_is_complete_and_adds_only_record_columns():
    """A new phase's columns are checked first, naming the fix: the order assertion came first and a QA trial's
    phase, whose column was no record field (its every row then failed), read only as a changed list."""
    for phase in PHASES:
        unknown = sorted(set(phase.columns) - set(COLUMNS) - set(NESTED))
        assert phase.columns and not unknown, (
            f"phase {phase.name!r}: {unknown or 'no columns'}: add each to Record (bench/core/record.py); the runner "
            "fails a row whose record holds another field"
        )
        assert callable(phase.run), phase.name
    assert [p.name for p in PHASES] == ["transfer", "explain", "decouple"]  # the order the worker runs them
    owned = [c for p in PHASES for c in p.columns]
    assert len(owned) == len(set(owned))  # no column claimed by two phases


def test_every_phase_has_its_report_section_and_an_empty_run_gives_no_text_and_no_plot(tmp_path: Path):
    from bench.core.results import table

    names = [s.name for s in SECTIONS]
    missing = {p.name for p in PHASES} - set(names)
    assert not missing, f"no report section named {sorted(missing)}: add a Section to bench/report/sections.py"
    assert len(names) == len(set(names))
    view = ReportView(table([]), [], tmp_path, table([]), "torch", {})
    for section in SECTIONS:
        assert section.text(view) == "", section.name
        assert section.task_lines(view.table) == [], section.name
        assert section.plot_jobs(view) == [] or section.name in ("transfer",), section.name
    assert not list(tmp_path.iterdir())  # nothing drawn either


def old_decouple_record(task: str, backend: str, repeat: int) -> dict:
    """A record as runs wrote it before the rename: ``lr_acc`` for the logistic regression."""
    rec = new_record(
        run_id="old",
        task=task,
        backend=backend,
        repeat=repeat,
        status="ok",
        model="lenet5",
        profile="quick",
        test_acc=0.9,
        epoch_s_median=1.0,
        throughput_img_s=1000.0,
        feature_dim=84,
        rf_acc=0.8,
        logreg_acc=0.7,
        decouple_n_train=200,
        decouple_s=1.0,
        decouple_topk=[{"k": 10, "rf_acc": 0.6, "logreg_acc": 0.5}, {"k": 84, "rf_acc": 0.8, "logreg_acc": 0.7}],
    )
    rec["lr_acc"] = rec.pop("logreg_acc")
    rec["decouple_topk"] = [
        {"k": t["k"], "rf_acc": t["rf_acc"], "lr_acc": t["logreg_acc"]} for t in rec["decouple_topk"]
    ]
    return rec


# A row as its worker server leaves it (no scikit-learn: bench.core.metrics is numpy's), the decouple phase run on a
# model whose head input is each image's row means: which of the phase's estimators were imported when its clock started
DECOUPLE_CLOCK = r"""
import json, sys, time
import numpy as np
from bench.core.job import Job
from bench.core.phase import Trained
from bench.core.preprocess import PixelNorm
from bench.core.spec import parse_task
from bench.phases import decouple

ESTIMATORS = ("sklearn.ensemble", "sklearn.linear_model", "sklearn.pipeline")
before = [m for m in ESTIMATORS if m in sys.modules]
at_clock = []
real = time.perf_counter


def clock():
    at_clock.append([m for m in ESTIMATORS if m in sys.modules])
    return real()


class RowMeans:
    def layer_input(self, state, x, layer, batch_size):
        return x.mean(axis=(2, 3))

    def layer_outputs(self, state, x, layers, batch_size):
        return {}


spec = parse_task({**json.loads(sys.argv[1]), "decouple": {"enabled": True, "max_train": 60, "top_k": [4]}})
rng = np.random.default_rng(0)
y = rng.integers(0, 3, 90)
x = rng.integers(0, 100, (90, 28, 28, 1)).astype(np.uint8)
for i, c in enumerate(y):
    x[i, 8 * c : 8 * c + 8] += 120
norm = PixelNorm.from_spec(spec.dataset, 1)
t = Trained(RowMeans(), None, spec, ("a", "b", "c"), x[:60], y[:60], x[60:], y[60:], None, None, 0, Job({}), norm)
time.perf_counter = clock
fields = decouple.run(t)
print("@@" + json.dumps({"before": before, "at_clock": at_clock[0], "rf_acc": fields["rf_acc"]}))
"""


def test_the_decouple_phases_time_starts_after_its_estimators_are_imported():
    """QA: ``decouple_s`` held the import of scikit-learn's ensemble, linear_model and pipeline modules (0.06-0.21 s,
    120 modules, in a row forked from a worker server), which no other phase's
    figure holds. The phase imports them before its clock starts (``decouple.preload``)."""
    proc = subprocess.run(
        [sys.executable, "-c", DECOUPLE_CLOCK, json.dumps(MINIMAL)], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("@@{"))[2:])
    assert out["before"] == []  # a row starts without them: the import is the phase's to place
    assert out["at_clock"] == ["sklearn.ensemble", "sklearn.linear_model", "sklearn.pipeline"]
    assert out["rf_acc"] > 0.6  # the phase ran on features that tell the classes (chance: 1/3)


def test_old_records_read_with_todays_column_names():
    line = json.dumps(old_decouple_record("t", "torch", 0)) + "\n"
    (rec,) = parse_records(line.encode(), "records.jsonl")
    assert rec["logreg_acc"] == 0.7 and "lr_acc" not in rec
    assert [t["logreg_acc"] for t in rec["decouple_topk"]] == [0.5, 0.7]


def test_report_and_compare_on_a_run_written_before_the_rename(tmp_path: Path, clean_env):
    old, new = tmp_path / "old", tmp_path / "new"
    for run in (old, new):
        run.mkdir()
        (run / "environment.json").write_text(json.dumps({"cpu": "x", "packages": {}}))
    for backend in ("torch", "keras"):
        append_record(old, old_decouple_record("t", backend, 0))
        rec = old_decouple_record("t", backend, 0)
        rec["logreg_acc"] = rec.pop("lr_acc")
        append_record(new, rec)
    proc = run_cli(["report", str(old)], clean_env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = (old / "summary.md").read_text()
    assert "## Decoupled features" in summary and "| 0.8000 | 0.7000 |" in summary  # RF and logreg columns
    proc = run_cli(["compare", str(old), str(new)], clean_env)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_old_spec_key_for_the_logistic_regression_still_loads():
    old = parse_task({**MINIMAL, "decouple": {"enabled": True, "lr_max_iter": 50}})
    assert old.decouple.logreg_max_iter == 50


def test_the_registry_describes_every_backend_without_a_framework():
    """In a fresh interpreter: listing, describing and the defaults import neither torch nor TensorFlow."""
    code = (
        "import sys, backends\n"
        "infos = [backends.describe(n) for n in backends.names()]\n"
        "assert backends.default_names() == ('torch', 'keras'), backends.default_names()\n"
        "assert all(i.display and i.framework and i.requires for i in infos)\n"
        "loaded = {'torch', 'tensorflow', 'keras', 'jax'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_unknown_backend_is_a_key_error_that_names_the_known_ones():
    with pytest.raises(KeyError, match="known: torch, keras"):
        backends.describe("mxnet")


@pytest.mark.frameworks
def test_load_backend_sets_the_description_env_before_importing(monkeypatch, tmp_path: Path):
    """The module sees the variable at import time, and the instance carries the registry name."""
    import dataclasses

    module = tmp_path / "probe_backend.py"
    module.write_text("import os\nSEEN = os.environ.get('PROBE_ENGINE')\nclass Backend:\n    name = 'x'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("PROBE_ENGINE", raising=False)
    info = dataclasses.replace(
        backends.describe("torch"), name="probe", module="probe_backend", env=(("PROBE_ENGINE", "jax"),)
    )
    monkeypatch.setitem(backends.BACKENDS, "probe", info)
    b = backends.load_backend("probe")
    assert sys.modules["probe_backend"].SEEN == "jax" and os.environ["PROBE_ENGINE"] == "jax"
    assert b.name == "probe"
    del sys.modules["probe_backend"]


def test_backend_all_is_every_registered_backend(clean_env):
    proc = run_cli(["list", "--backend", "all"], clean_env)
    assert proc.returncode == 0, proc.stderr
    listed = proc.stdout.split("backends:")[1].split()
    assert [n for n in listed if n in backends.BACKENDS] == list(backends.names())
    proc = run_cli(["run", "mnist-lenet5", "--backend", "nope"], clean_env)
    assert proc.returncode == 2 and "or all" in proc.stderr


def test_run_options_default_to_the_registry_defaults():
    from bench.run.plan import RunOptions

    assert RunOptions().backends == backends.default_names()
