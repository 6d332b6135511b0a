"""The recipe derived from the task spec (bench.core.recipe): every spec field placed, and a change of any training
setting a recipe row in compare and a new series in the history, never a REGRESSION."""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any

import pytest

from bench.core import spec as specs
from bench.core.recipe import COLUMN, EXCLUDED, MOVES, RECORDED, recipe_of, recorded_recipe, spec_fields
from bench.core.record import COLUMNS, RECIPE_FIELDS
from bench.core.results import append_record
from bench.history.rows import run_rows
from bench.report.compare import RECIPE_DIFFERS, Thresholds, compare, load_run, unrecorded_lines
from bench.run.runner import base_record
from tests.conftest import run_cli
from tests.history_runs import make_run

BASE = {
    "name": "my-cnn",
    "dataset": {"name": "mnist"},
    "model": {"arch": "lenet5"},
    "train": {"epochs": 2, "batch_size": 32, "lr": 0.01, "optimizer": "sgd"},
}


def _every_field(cls: type, prefix: str = "") -> list[str]:
    """Every field of ``cls`` and of the spec dataclasses it holds (a tuple of them included), dotted."""
    out = []
    for name, kind in typing.get_type_hints(cls).items():
        inner = typing.get_args(kind)[0] if typing.get_origin(kind) is tuple else kind
        if dataclasses.is_dataclass(inner):
            out += _every_field(inner, f"{prefix}{name}.")
        else:
            out.append(prefix + name)
    return out


def test_every_spec_field_is_recipe_a_column_or_excluded_with_a_reason():
    """A field added to the spec is recipe (recorded, compared, hashed) until placed otherwise, here and only here:
    the hand list of record columns had left the loss, momentum, normalisation and augmentation out."""
    every = _every_field(specs.TaskSpec)
    assert [k for k, _ in spec_fields()] == every  # the module's walk misses no section or field
    for key in every:
        places = [key in COLUMN, key in EXCLUDED, key in RECORDED]
        assert places.count(True) == 1, f"{key}: recipe, a column's or excluded, exactly one of them"
    assert all(isinstance(why, str) and len(why) >= 10 for why in EXCLUDED.values())  # each says why
    assert set(COLUMN.values()) <= set(RECIPE_FIELDS) and set(MOVES) <= set(RECORDED)
    assert all(set(figures) <= set(COLUMNS) for figures in MOVES.values())
    for key in ("train.momentum", "train.weight_decay", "train.loss", "train.augment", "train.drop_last"):
        assert key in RECORDED and key not in MOVES  # a training setting moves every figure
    for key in ("dataset.rescale", "dataset.mean", "dataset.std", "dataset.classes", "train.beta1", "train.beta2"):
        assert key in RECORDED and key not in MOVES


def _task(**sections: dict[str, Any]) -> specs.TaskSpec:
    data = {k: {**v, **sections.get(k, {})} if isinstance(v, dict) else v for k, v in BASE.items()}
    return specs.parse_task({**data, **{k: v for k, v in sections.items() if k not in data}}, "my-cnn.toml")


def _run(path: Path, rec: dict[str, Any], epoch_s: float) -> Path:
    path.mkdir()
    timed = {
        "status": "ok",
        "train_s": 2 * epoch_s,
        "epoch_s_median": epoch_s,
        "throughput_img_s": 1000 / epoch_s,
        "test_acc": 0.95 if epoch_s < 2 else 0.80,
    }
    append_record(path, {**rec, **timed})
    return path


CHANGES = {
    "train.momentum": ({"train": {"momentum": 0.9}}, "0.0", "0.9"),
    "train.weight_decay": ({"train": {"weight_decay": 0.0005}}, "0.0", "0.0005"),
    "train.augment": ({"train": {"augment": ["hflip"]}}, "[]", '["hflip"]'),
    "dataset.mean": ({"dataset": {"mean": [0.1307], "std": [0.3081]}}, "[]", "[0.1307]"),
    "dataset.rescale": ({"dataset": {"rescale": "none"}}, "unit", "none"),
}


@pytest.mark.parametrize("key", list(CHANGES))
def test_runs_apart_in_a_training_or_data_setting_are_another_recipe_and_another_series(
    key: str, tmp_path: Path, clean_env
):
    """Two runs of one task apart in one setting the spec has and no record column held: a recipe row naming it, no
    figure judged (B trained 3x slower and 15 points lower here: no REGRESSION), exit 0, two history series."""
    changed, was, now = CHANGES[key]
    a = base_record("a", _task(), "torch", 0, 0)
    b = base_record("b", _task(**changed), "torch", 0, 0)
    assert {f: a[f] for f in RECIPE_FIELDS} == {f: b[f] for f in RECIPE_FIELDS}  # the old hand list saw no change
    run_a, run_b = _run(tmp_path / "a", a, 1.0), _run(tmp_path / "b", b, 3.0)
    result = compare(load_run(run_a, tmp_path)[0], load_run(run_b, tmp_path)[0], Thresholds())
    recipe = result[result.metric == "recipe"].iloc[0]
    assert f"{key}={was}" in recipe.a.split() and f"{key}={now}" in recipe.b.split()
    assert not result.regression.any() and (result.verdict == RECIPE_DIFFERS).all()
    proc = run_cli(["compare", str(run_a), str(run_b)], clean_env)
    assert proc.returncode == 0 and "recipe differs" in proc.stdout and "REGRESSION" not in proc.stdout
    hashes = [
        run_rows(make_run(tmp_path / "h", n, {("my-cnn", "torch"): {"recipe": r["recipe"], "steady_img_s": 1.0}}))
        for n, r in enumerate((a, b))
    ]
    assert hashes[0].spec_hash.iloc[0] != hashes[1].spec_hash.iloc[0]


def test_a_record_from_before_hashes_and_compares_as_it_did(tmp_path: Path, clean_env):
    """A record without the ``recipe`` column (every run before 2026-12-06, the reference store's) hashes as its
    record columns did, and a record of today at the defaults hashes and compares the same: the series go on.
    Against one of today that sets a field apart from its default, the old record's setting is unknown, not
    different (a built-in task's own normalisation ran then too): compared on the recipe columns alone, judged, and
    a line says so; two records of today apart in it are another recipe."""
    today = base_record("b", _task(), "torch", 0, 0)
    old = {k: v for k, v in today.items() if k != "recipe"}
    legacy = {f: old.get(f) for f in RECIPE_FIELDS}
    assert recipe_of(old) == legacy and recipe_of(today) == legacy
    assert recipe_of(old, "steady_img_s") == recipe_of(today, "steady_img_s")
    run_old, run_today = _run(tmp_path / "old", old, 1.0), _run(tmp_path / "today", today, 1.0)
    same = compare(load_run(run_old, tmp_path)[0], load_run(run_today, tmp_path)[0], Thresholds())
    assert "recipe" not in set(same.metric)
    apart = base_record(
        "c", _task(train={"loss": "binary_cross_entropy"}, dataset={"classes": ["0", "1"]}), "torch", 0, 0
    )
    run_apart = _run(tmp_path / "c", apart, 3.0)  # 3x the training time, 15 points lower
    old_df, apart_df = load_run(run_old, tmp_path)[0], load_run(run_apart, tmp_path)[0]
    result = compare(old_df, apart_df, Thresholds())
    assert "recipe" not in set(result.metric) and result.regression.any()  # judged on the recipe columns
    line = unrecorded_lines(old_df, apart_df)
    assert len(line) == 1 and line[0].startswith("run A was written before") and not unrecorded_lines(old_df, old_df)
    # a run of today whose rows were all skipped (a tune's fresh rows the budget left out) compares no figure: it is
    # not "written before" (QA, 2026-12-06), whichever side it is on
    skipped = tmp_path / "skipped"
    skipped.mkdir()
    append_record(skipped, {**today, "status": "skipped", "error": "left out to fit the budget"})
    skipped_df = load_run(skipped, tmp_path)[0]
    assert unrecorded_lines(skipped_df, apart_df) == [] and unrecorded_lines(apart_df, skipped_df) == []
    proc = run_cli(["compare", str(run_old), str(run_apart)], clean_env)
    assert proc.returncode == 1 and "warning: run A was written before" in proc.stdout
    today_apart = compare(load_run(run_today, tmp_path)[0], apart_df, Thresholds())
    recipe = today_apart[today_apart.metric == "recipe"].iloc[0]
    assert "train.loss=cross_entropy" in recipe.a.split() and "train.loss=binary_cross_entropy" in recipe.b.split()
    assert 'dataset.classes=["0","1"]' in recipe.b.split() and not today_apart.regression.any()


def test_a_phase_setting_starts_its_own_figures_anew_and_leaves_training_judged(tmp_path: Path, clean_env):
    """Another Grad-CAM batch moves the explain timings (and the peak RSS, read after the phases), not the training:
    the step throughput's series goes on, the Grad-CAM time's starts anew, and compare still judges the training."""
    a = base_record("a", _task(explain={"gradcam": True}), "torch", 0, 0)
    b = base_record("b", _task(explain={"gradcam": True, "batch_size": 8}), "torch", 0, 0)
    assert recipe_of(a, "steady_img_s") == recipe_of(b, "steady_img_s")
    assert recipe_of(a, "gradcam_ms_per_img") != recipe_of(b, "gradcam_ms_per_img")
    result = compare(
        load_run(_run(tmp_path / "a", a, 1.0), tmp_path)[0],
        load_run(_run(tmp_path / "b", b, 3.0), tmp_path)[0],
        Thresholds(),
    )
    assert result[result.metric == "recipe"].b.iloc[0] == "explain.batch_size=8"
    assert result.regression.any()  # 3x the training time, same training: judged


def test_the_recorded_recipe_is_every_recorded_field_as_the_spec_holds_it():
    recipe = json.loads(recorded_recipe(_task(train={"augment": ["hflip", "rotate10"]})))
    assert set(recipe) == set(RECORDED) and recipe["train.augment"] == ["hflip", "rotate10"]
    assert recipe["transfer.dataset"] == []  # no transfer: the default
