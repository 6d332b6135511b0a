"""``python -m bench zoo``: one task per architecture from the template, run by the suite's runner into the
usual results table, with a summary section and a plot, resumable.

The end-to-end sweep runs the two smallest architectures at 32 px on torch (seconds each); with
``pytest --slow`` also on Keras, where the first traced step costs tens of seconds per model.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from bench.core.zoo import ZOO
from bench.run.zoo_cli import raised_sizes, zoo_tasks
from tests.conftest import only_run_dir, run_cli

MODELS = "mobilenet_v3_small,mobilenet"
FILLED = ("eval_img_s", "steady_img_s", "mfu", "peak_host_mb", "params", "flops_per_img", "first_step_s")


def test_one_task_per_architecture_from_the_template_at_the_sweeps_size_and_batch():
    tasks = zoo_tasks(("mobilenet", "xception"), "quick", 48, 4)
    assert [t.name for t in tasks] == ["zoo-mobilenet", "zoo-xception"]
    assert [t.model.arch for t in tasks] == ["zoo:mobilenet", "zoo:xception"]
    assert [t.dataset.image_size for t in tasks] == [48, ZOO["xception"].min_size]  # Keras needs >= 71 px
    assert {(t.train.batch_size, t.train.epochs, t.dataset.max_train) for t in tasks} == {(4, 2, 16)}
    assert not any(t.explain.gradcam or t.decouple.enabled or t.transfer for t in tasks)
    full = zoo_tasks(("efficientnet_b3",), "full", None, None)[0]
    assert (full.dataset.image_size, full.train.batch_size) == (ZOO["efficientnet_b3"].input_size, 32)


def test_every_size_a_models_minimum_raises_is_said():
    """QA 2026-12-07: ``--image-size 8`` ran MobileNet V3 small at 32 px without a word (only the px column said it);
    the quick profile's 32 px raised to Xception's 71 and the Inceptions' 75 likewise. One line names them all."""
    small = zoo_tasks(("mobilenet_v3_small", "xception"), "quick", 8, None)
    assert [t.dataset.image_size for t in small] == [32, 71]
    assert raised_sizes(small, "quick", 8) == (
        "--image-size 8 is below the smallest side these models' Keras builds take, so each runs at its minimum: "
        "32 px mobilenet_v3_small; 71 px xception"
    )
    quick = zoo_tasks(("mobilenet", "inception_v3", "xception", "inception_resnet_v2"), "quick", None, None)
    assert raised_sizes(quick, "quick", None).startswith("the quick profile's 32 px is below")
    assert raised_sizes(quick, "quick", None).endswith("71 px xception; 75 px inception_v3, inception_resnet_v2")
    assert raised_sizes(zoo_tasks(("xception",), "quick", 71, None), "quick", 71) == ""  # its minimum: no raise
    assert raised_sizes(zoo_tasks(("xception",), "full", None, None), "full", None) == ""  # its own 299 px


def test_the_raise_is_a_note_before_anything_runs(clean_env, tmp_path):
    """Said at the start, where a user can stop the sweep (a missing --data-dir then ends it before any row)."""
    args = ["zoo", "--models", "mobilenet_v3_small", "--image-size", "8", "--data-dir", str(tmp_path / "none")]
    done = run_cli([*args, "--out", str(tmp_path / "out")], clean_env, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert (
        "note: --image-size 8 is below the smallest side these models' Keras builds take, so each runs at its "
        "minimum: 32 px mobilenet_v3_small\n" in done.stdout
    )


def test_an_unknown_model_is_a_usage_error_naming_the_known_ones(clean_env):
    done = run_cli(["zoo", "--models", "mobilenet,resnet5"], clean_env, timeout=60)
    assert done.returncode == 2
    assert "unknown zoo model(s) ['resnet5']" in done.stderr and "resnet50" in done.stderr


def _sweep(backends: str, out, env) -> None:
    done = run_cli(
        [
            "zoo",
            "--models",
            MODELS,
            "--backend",
            backends,
            "--image-size",
            "32",
            "--batch",
            "4",
            "--profile",
            "quick",
            "--out",
            str(out),
        ],
        env,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.mark.parametrize("backends", ["torch", pytest.param("torch,keras", marks=pytest.mark.slow)])
@pytest.mark.e2e
def test_a_two_model_sweep_fills_the_table_summary_and_plot_and_resumes(backends, clean_env, tmp_path):
    out = tmp_path / "results"
    _sweep(backends, out, clean_env)
    run_dir = only_run_dir(out)
    df = pd.read_csv(run_dir / "results.csv")
    n = 2 * len(backends.split(","))
    assert len(df) == n and set(df.status) == {"ok"}, df[["task", "backend", "status", "error"]]
    assert set(df.model) == {"zoo:mobilenet_v3_small", "zoo:mobilenet"}
    assert df[list(FILLED)].notna().all().all(), df[list(FILLED)]
    summary = (run_dir / "summary.md").read_text()
    assert "## Zoo sweep" in summary and "| mobilenet_v3_small |" in summary
    assert (run_dir / "plots" / "zoo.png").stat().st_size > 10_000
    # an interrupted sweep: the last row never landed; --resume runs only that one
    lines = (run_dir / "records.jsonl").read_text().splitlines()
    (run_dir / "records.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    state = json.loads((run_dir / "state.json").read_text())
    (run_dir / "state.json").write_text(json.dumps({**state, "state": "interrupted"}))
    done = run_cli(["zoo", "--resume", str(run_dir)], clean_env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"1 of {n} to run" in done.stdout
    assert len(pd.read_csv(run_dir / "results.csv")) == n
    assert json.loads((run_dir / "state.json").read_text())["state"] == "complete"
