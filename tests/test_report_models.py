"""The "ResNet101 vs ConvNeXt-tiny" and top-ops sections of summary.md, and the CLI's --pretrained/--profile-ops."""

from __future__ import annotations

import pandas as pd
import pytest

from bench.core.record import new_record
from bench.core.results import table
from bench.core.spec import SpecError, load_task
from bench.report.models import resnet_vs_convnext, sections, top_ops
from bench.run.cli import with_cli_overrides
from bench.run.zoo_cli import zoo_tasks


def rec(model: str, backend: str, img_s: float, epoch_s: float, repeat: int = 0, **kw) -> dict:
    return new_record(
        task=f"catsdogs-{model}",
        model=model,
        backend=backend,
        status="ok",
        repeat=repeat,
        profile="quick",
        image_shape="32x32x3",
        steady_img_s=img_s,
        epoch_s_median=epoch_s,
        steady_step_s=16 / img_s,
        first_step_s=1.0,
        mfu=0.1,
        params=1000,
        **kw,
    )


def test_section_has_both_ratios_with_medians_and_spread():
    records = [
        rec("resnet101", "torch", 10.0, 4.0),
        rec("resnet101", "torch", 14.0, 3.0, repeat=1),
        rec("resnet101", "keras", 8.0, 5.0),
        rec("convnext_tiny", "torch", 20.0, 2.0),
        rec("convnext_tiny", "keras", 4.0, 10.0),
    ]
    text = "\n".join(resnet_vs_convnext(table(records)))
    assert "## ResNet101 vs ConvNeXt-tiny" in text
    assert "| ResNet101 | PyTorch | 3.50 [3.00-4.00] | 12.0 [10.0-14.0] |" in text  # the registry's display label
    # ConvNeXt/ResNet img/s: torch 20/12, keras 4/8; keras/torch img/s: ResNet 8/12, ConvNeXt 4/20
    assert "| ConvNeXt-tiny / ResNet101, steady img/s | 1.67 | 0.50 |" in text
    assert "| keras / torch, steady img/s | 0.67 | 0.20 |" in text
    assert "| keras / torch, epoch time | 1.43 | 5.00 |" in text


def test_the_text_says_the_steady_column_is_the_headline_not_the_median_step():
    """The column shows steady_img_s (the window's images over its time); a median step figure stays out."""
    records = [
        rec(m, "torch", v, 1.0, median_step_img_s=3 * v) for m, v in (("resnet101", 10.0), ("convnext_tiny", 20.0))
    ]
    text = "\n".join(resnet_vs_convnext(table(records)))
    assert "| ResNet101 | PyTorch | 1.00 | 10.0 |" in text and "30.0" not in text
    assert "Steady img/s is the headline throughput (`steady_img_s`)" in text and "median step" not in text


def test_every_backend_gets_a_column_and_a_ratio_row_against_the_reference():
    records = [
        rec(m, b, v * f, 1.0)
        for m, f in (("resnet101", 1.0), ("convnext_tiny", 2.0))
        for b, v in (("keras", 5.0), ("torch", 10.0), ("mxnet", 20.0))
    ]
    records.append(rec("convnext_tiny", "torch", 1.0, 1.0, repeat=1) | {"status": "failed"})  # not counted
    text = "\n".join(resnet_vs_convnext(table(records)))
    assert "| ratio | PyTorch | Keras (TF) | mxnet |" in text  # registry order, an unregistered name last
    assert "| ConvNeXt-tiny / ResNet101, steady img/s | 2.00 | 2.00 | 2.00 |" in text
    assert "| keras / torch, steady img/s | 0.50 | 0.50 |" in text
    assert "| mxnet / torch, steady img/s | 2.00 | 2.00 |" in text
    by_keras = "\n".join(resnet_vs_convnext(table(records), reference="keras"))
    assert "| torch / keras, steady img/s | 2.00 | 2.00 |" in by_keras and "| mxnet / keras, epoch time |" in by_keras
    assert "keras / keras" not in by_keras
    # the reference failed on one model: that column says so instead of a number
    no_ref = [r for r in records if not (r["backend"] == "torch" and r["model"] == "resnet101")]
    no_ref.append(rec("resnet101", "torch", 1.0, 1.0) | {"status": "timeout"})
    assert "| keras / torch, steady img/s | torch timeout | 0.50 |" in "\n".join(resnet_vs_convnext(table(no_ref)))


def test_section_is_absent_without_both_models():
    assert resnet_vs_convnext(table([rec("resnet101", "torch", 10.0, 4.0)])) == []
    assert sections(pd.DataFrame(table([])), []) == ""


def test_top_ops_per_backend_in_ms_per_step():
    r = rec("resnet101", "keras", 10.0, 4.0, warmup_steps=2)
    r["top_ops"] = [{"op": "a/conv:Conv2D", "ms": 30.0, "calls": 4}, {"op": "x|y", "ms": 10.0, "calls": 2}]
    text = "\n".join(top_ops([r]))
    assert "### catsdogs-resnet101 / Keras (TF)" in text
    assert "| `a/conv:Conv2D` | 15.00 | 4 |" in text and "x\\|y" in text
    # Keras with steps_per_execution 8 and a warm-up of 2: the profile held one whole execution, 8 optimiser steps
    r.update(steps_per_execution=8, profiled_batches=8)
    assert "| `a/conv:Conv2D` | 3.75 | 4 |" in "\n".join(top_ops([r]))


def test_top_ops_name_the_costliest_node_where_the_profiler_sums_by_type():
    r = rec("resnet101", "keras", 10.0, 4.0, warmup_steps=2)
    r["top_ops"] = [
        {
            "op": "Conv2DBackpropInput",
            "ms": 40.0,
            "calls": 6,
            "costliest": "m/c5/x:Conv2DBackpropInput",
            "costliest_ms": 22.0,
        },
        {"op": "MatMul", "ms": 4.0, "calls": 2},
    ]
    text = "\n".join(top_ops([r]))
    assert "| op | ms per step | calls | costliest node (ms per step) |" in text
    assert "| `Conv2DBackpropInput` | 20.00 | 6 | `m/c5/x:Conv2DBackpropInput` (11.00) |" in text
    assert "| `MatMul` | 2.00 | 2 | |" in text
    torch_row = rec("resnet101", "torch", 10.0, 4.0, warmup_steps=2)
    torch_row["top_ops"] = [{"op": "aten::mm", "ms": 8.0, "calls": 3}]
    assert "| `aten::mm` | 4.00 | 3 |\n" in "\n".join(top_ops([torch_row])) + "\n"


def test_cli_overrides_apply_pretrained_only_where_weights_exist():
    tasks = [load_task("mnist-lenet5", "quick"), load_task("catsdogs-resnet101", "quick")]
    out = with_cli_overrides(tasks, pretrained=True, profile_ops=True)
    assert [t.model.pretrained for t in out] == [False, True]
    assert all(t.runtime.profile_ops and t.runtime.warmup_steps >= 1 for t in out)
    with pytest.raises(SpecError, match="--pretrained"):
        with_cli_overrides(tasks[:1], pretrained=True, profile_ops=False)


def test_pretrained_leaves_zoo_models_to_their_task_files_weights_and_is_refused_where_only_they_are():
    """QA, 2026-12-07: `bench zoo --models convnext_tiny --pretrained` set `pretrained` on a zoo task, whose weights
    only a task file can name (model.weights): the run started and every row failed in its worker (exit 1, a failed
    row in the history); `--models resnet101` was refused "(e.g. resnet101)". Refused up front now, saying where a
    zoo model's weights come from."""
    zoo = zoo_tasks(("convnext_tiny", "resnet101"), "quick", None, None)
    catalog = load_task("catsdogs-convnext-tiny", "quick")
    out = with_cli_overrides([*zoo, catalog], pretrained=True, profile_ops=False)
    assert [t.model.pretrained for t in out] == [False, False, True]
    with pytest.raises(SpecError) as refused:
        with_cli_overrides(zoo, pretrained=True, profile_ops=False)
    assert "(resnet101, convnext_tiny)" in str(refused.value) and "model.weights" in str(refused.value)
