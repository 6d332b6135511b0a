"""The GPU check's logic on the CPU at toy sizes: rows, ratios, skipped Keras rows and the table's columns."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bench.run import gpucheck
from tests.conftest import REPO


@pytest.mark.frameworks
def test_tiny_cpu_run_writes_the_table_with_keras_rows_skipped_when_tensorflow_is_missing(tmp_path, clean_env):
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "tensorflow.py").write_text('raise ImportError("no tensorflow on this GPU box")\n')
    env = clean_env | {"PYTHONPATH": os.pathsep.join([str(blocked), str(REPO)])}
    out = tmp_path / "gc"
    cmd = [
        sys.executable,
        "-m",
        "bench.run.gpucheck",
        "--device",
        "cpu",
        "--tiny",
        "--modes",
        "fp32",
        "--out",
        str(out),
    ]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = (out / "gpu-check.md").read_text()
    header = next(line for line in table.splitlines() if line.startswith("| model"))
    assert [c.strip() for c in header.strip("|").split("|")] == list(gpucheck.COLUMNS)
    got = json.loads((out / "gpu-check.json").read_text())
    rows = {(r["model"], r["backend"]): r for r in got["rows"]}
    assert set(rows) == {(m, b) for m in gpucheck.TASKS for b in ("torch", "keras")}
    for model in gpucheck.TASKS:
        torch_row, keras_row = rows[(model, "torch")], rows[(model, "keras")]
        assert torch_row["suite_img_s"] > 0 and torch_row["bare_img_s"] > 0, torch_row
        assert torch_row["suite_over_bare"] == pytest.approx(torch_row["suite_img_s"] / torch_row["bare_img_s"])
        assert 0 < torch_row["input_share"] < 1
        assert keras_row["note"].startswith("skipped: tensorflow not importable (ImportError: no tensorflow")
    ratio = rows[("convnext_tiny", "torch")]["suite_img_s"] / rows[("resnet101", "torch")]["suite_img_s"]
    assert rows[("resnet101", "torch")]["convnext_over_resnet"] == pytest.approx(ratio)
    assert got["versions"]["tensorflow"].startswith("not installed") and got["versions"]["torch"]
    assert "tiny CPU mode" in table and "Data: " in table


@pytest.mark.frameworks  # torch, in the subprocess
def test_a_check_with_no_backend_that_can_run_is_refused_in_one_line_and_writes_nothing(tmp_path, clean_env):
    """`--backends keras` where TensorFlow is missing: every row was skipped, the check wrote its table and exited 0
    (and ran the torch rows it was not asked for). Nothing can be measured: said in one line, exit 2, as no CUDA."""
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "tensorflow.py").write_text('raise ImportError("no tensorflow on this GPU box")\n')
    env = clean_env | {"PYTHONPATH": os.pathsep.join([str(blocked), str(REPO)])}
    out = tmp_path / "gc"
    cmd = [sys.executable, "-m", "bench.run.gpucheck", "--device", "cpu", "--tiny", "--backends", "keras"]
    proc = subprocess.run([*cmd, "--out", str(out)], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines() == [
        "error: gpu-check: nothing to measure: torch: not asked for (--backends); "
        "keras: tensorflow not importable (ImportError: no tensorflow on this GPU box)"
    ]
    assert not out.exists() and "@@ gpu-check" not in proc.stdout  # no row trained


def test_only_the_backends_asked_for_run_and_none_of_them_is_nothing_to_measure():
    skipped = {"torch": gpucheck.NOT_ASKED, "keras": None}
    assert gpucheck.nothing_to_measure(skipped) is None  # keras runs: torch's rows say they were not asked for
    assert gpucheck.nothing_to_measure({"torch": None, "keras": "skipped: tensorflow not importable (x)"}) is None
    both = {"torch": gpucheck.NOT_ASKED, "keras": gpucheck.keras_skip_reason([])}
    assert gpucheck.nothing_to_measure(both) == (
        "nothing to measure: torch: not asked for (--backends); keras: not asked for (--backends)"
    )


def test_a_check_that_measured_nothing_fails_saying_why(tmp_path, monkeypatch, capsys):
    """No row with a throughput is no pass, whatever the rows say (it exited 0 with every row skipped)."""
    rows = [
        {"model": "resnet101", "mode": "fp32", "backend": "torch", "note": "failed: RuntimeError: out of memory"},
        {"model": "resnet101", "mode": "fp32", "backend": "keras", "note": "skipped: tensorflow not importable (x)"},
    ]
    monkeypatch.setattr(gpucheck, "check", lambda *a, **k: (rows, {"size": {}, "tiny": True}))
    monkeypatch.setattr(gpucheck, "versions", lambda: {"device": "cpu (x86_64)"})
    assert gpucheck.main(["--device", "cpu", "--tiny", "--out", str(tmp_path / "gc")]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == (
        "gpu-check: nothing was measured: torch: failed: RuntimeError: out of memory; "
        "keras: skipped: tensorflow not importable (x)"
    )
    monkeypatch.setattr(gpucheck, "check", lambda *a, **k: (rows[1:], {"size": {}, "tiny": True}))
    assert gpucheck.main(["--device", "cpu", "--tiny", "--out", str(tmp_path / "gc")]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == (
        "gpu-check: nothing was measured: keras: skipped: tensorflow not importable (x)"
    )


def test_ratios_and_the_timm_column():
    rows = [
        {"model": m, "mode": mode, "backend": "torch", "suite_img_s": s, "bare_img_s": b}
        for (m, mode, s, b) in [
            ("resnet101", "fp32", 100.0, 100.0),
            ("convnext_tiny", "fp32", 120.0, 125.0),
            ("resnet101", "bf16+channels_last", 300.0, 290.0),
            ("convnext_tiny", "bf16+channels_last", 330.0, 330.0),
        ]
    ]
    gpucheck.add_ratios(rows)
    assert [round(r["suite_over_bare"], 3) for r in rows] == [1.0, 0.96, 1.034, 1.0]
    assert rows[0]["convnext_over_resnet"] == pytest.approx(1.2) and rows[3]["convnext_over_resnet"] == 1.1
    assert "timm_convnext_over_resnet" not in rows[0]  # timm publishes no fp32 training figures
    assert rows[2]["timm_convnext_over_resnet"] == pytest.approx(819.24 / 747.89)
    text = gpucheck.markdown(rows, {"size": {}, "tiny": False}, {"device": "X", "torch": "2"}, 1.0)
    assert "min 0.960 (goal >= 0.97): NOT met" in text


def test_the_best_mode_is_each_frameworks_tuned_configuration_and_the_bare_loop_matches_torchs():
    spec = gpucheck.recipe("convnext_tiny", "best", gpucheck.FULL, "cuda", tiny=False)
    torch_rt, keras_rt = spec.for_backend("torch").runtime, spec.for_backend("keras").runtime
    assert (torch_rt.precision, torch_rt.channels_last, torch_rt.torch_compile) == ("mixed_bf16", True, True)
    assert (keras_rt.precision, keras_rt.jit_compile, keras_rt.torch_compile) == ("mixed_bf16", True, False)
    assert torch_rt.device == keras_rt.device == "cuda" and torch_rt.timed_steps == gpucheck.FULL.timed
    plain = gpucheck.recipe("convnext_tiny", "bf16+channels_last", gpucheck.FULL, "cuda", tiny=False)
    assert plain.knobs == () and plain.runtime.channels_last and not plain.for_backend("torch").runtime.torch_compile


@pytest.mark.frameworks  # torch, in the subprocess
def test_without_a_cuda_device_the_check_is_refused_in_one_line_and_writes_nothing(tmp_path, clean_env):
    """`tox -e gpu-check` on a CPU machine: bad input as argparse's errors are (it exited 1), before any training."""
    out = tmp_path / "gc"
    env = clean_env | {"CUDA_VISIBLE_DEVICES": ""}  # no device, whatever machine runs the test
    cmd = [sys.executable, "-m", "bench.run.gpucheck", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines() == [
        "error: gpu-check: --device cuda but torch sees no CUDA device (use --device cpu --tiny)"
    ]
    assert not out.exists()


def test_an_unknown_mode_is_refused_before_anything_runs(tmp_path, capsys):
    assert gpucheck.main(["--device", "cpu", "--tiny", "--modes", "fp32,fp8", "--out", str(tmp_path / "gc")]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: gpu-check: unknown ['fp8'] (known: fp32, bf16+channels_last, best)"
    ]
    assert not (tmp_path / "gc").exists()


def test_a_failed_row_fails_the_check_and_the_table_is_still_written(tmp_path, monkeypatch, capsys):
    """A row that raised is noted in the table and the other rows go on, but the check exits 1: it exited 0."""
    ok = {"model": "resnet101", "mode": "fp32", "backend": "torch", "suite_img_s": 10.0, "bare_img_s": 10.0}
    bad = {"model": "resnet101", "mode": "fp32", "backend": "keras", "note": "failed: RuntimeError: out of memory"}
    monkeypatch.setattr(gpucheck, "check", lambda *a, **k: ([ok, bad], {"size": {}, "tiny": True}))
    monkeypatch.setattr(gpucheck, "versions", lambda: {"device": "cpu (x86_64)"})
    out = tmp_path / "gc"
    assert gpucheck.main(["--device", "cpu", "--tiny", "--out", str(out)]) == 1
    assert "failed: RuntimeError: out of memory" in (out / "gpu-check.md").read_text()
    assert capsys.readouterr().out.splitlines()[-1] == (
        "gpu-check: 1 row(s) failed: resnet101 fp32 keras (their notes are in the table)"
    )
    monkeypatch.setattr(gpucheck, "check", lambda *a, **k: ([ok], {"size": {}, "tiny": True}))
    assert gpucheck.main(["--device", "cpu", "--tiny", "--out", str(out)]) == 0
