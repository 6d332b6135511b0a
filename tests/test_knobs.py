"""Knob spaces as data: each backend's declaration, the product this machine runs, the capability probe."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import backends
from bench.core.capabilities import CAPABILITIES, cpu_flags, probe
from bench.core.knobs import configurations, knob, value
from bench.core.spec import RuntimeSpec, SpecError, load_task, spec_from_dict

CPU_NO_BF16 = "processor : 0\nflags : fpu sse2 avx2 avx512f\n"
CPU_AMX = "processor : 0\nflags : fpu avx512f avx512_bf16 amx_bf16 amx_tile\n"
ALL = dict.fromkeys(CAPABILITIES, True)


def test_the_product_of_the_knobs_with_the_default_first_and_labels_that_name_what_changed():
    space = (
        knob("compile", value("off"), value("on", torch_compile=True)),
        knob("precision", value("fp32"), value("bf16", ("bf16",), precision="mixed_bf16")),
    )
    runnable, skipped = configurations(space, ALL)
    assert [c.label for c in runnable] == ["default", "precision=bf16", "compile=on", "compile=on, precision=bf16"]
    assert runnable[0].is_default and not runnable[3].is_default and skipped == []
    assert dict(runnable[3].runtime) == {"torch_compile": True, "precision": "mixed_bf16"}
    assert runnable[1].values() == {"compile": "off", "precision": "bf16"}


def test_a_value_this_machine_cannot_run_is_skipped_once_with_the_capability_it_needs():
    space = (
        knob("compile", value("off"), value("on", ("compiler",), torch_compile=True)),
        knob(
            "precision",
            value("fp32"),
            value("bf16", ("bf16",), precision="mixed_bf16"),
            value("fp16", ("fp16", "cuda"), precision="mixed_fp16"),
        ),
    )
    runnable, skipped = configurations(space, {"compiler": True, "bf16": False, "cuda": False, "fp16": False})
    assert [c.label for c in runnable] == ["default", "compile=on"]
    assert [why for _, why in skipped] == ["precision=bf16 needs bf16", "precision=fp16 needs fp16, cuda"]


@pytest.mark.parametrize("name", backends.names())
def test_every_backend_declares_a_space_whose_values_are_valid_runtime_fields(name):
    space = backends.describe(name).knob_space
    assert space, f"{name} declares no knobs"
    task = load_task("mnist-lenet5", "quick")
    runnable, _ = configurations(space, ALL)
    assert runnable[0].is_default and not runnable[0].runtime  # out of the box sets nothing
    for c in runnable:  # each configuration goes through the same validation as a task file's [knobs.NAME]
        spec = spec_from_dict({**task.to_dict(), "knobs": [[name, [list(kv) for kv in c.runtime]]]})
        rt = spec.for_backend(name).runtime
        assert all(getattr(rt, k) == v for k, v in c.runtime)
    assert len({c.label for c in runnable}) == len(runnable)


def test_keras_on_torch_offers_no_steps_per_execution_which_its_trainer_refuses():
    """Keras 3.15's torch trainer raises ValueError for steps_per_execution > 1: 8 of 12 configurations of the
    first reference tune failed on it. The other engines run several steps per call."""
    names = {b: {k.name for k in backends.describe(b).knob_space} for b in ("keras", "keras-jax", "keras-torch")}
    assert "steps_per_execution" not in names["keras-torch"] and "compile" in names["keras-torch"]
    assert all("steps_per_execution" in names[b] for b in ("keras", "keras-jax"))


def test_cuda_only_knobs_are_skipped_on_a_cpu_machine_and_offered_on_a_gpu():
    cpu = probe("auto", cpuinfo=CPU_NO_BF16, gpu_cc=None)
    gpu = probe("auto", cpuinfo=CPU_NO_BF16, gpu_cc=9.0)
    torch_space = backends.describe("torch").knob_space
    on_cpu, skipped = configurations(torch_space, cpu)
    on_gpu, _ = configurations(torch_space, gpu)
    assert not any("cudnn_benchmark=on" in c.label or "precision=bf16" in c.label for c in on_cpu)
    reasons = {w for _, w in skipped}
    assert {"precision=bf16 needs bf16", "cudnn_benchmark=on needs cuda", "tf32=on needs cuda"} <= reasons
    assert any(c.label == "precision=fp16" for c in on_gpu) and any("reduce-overhead" in c.label for c in on_gpu)
    assert len(on_gpu) > len(on_cpu)


def test_the_probe_reads_bf16_from_cpu_flags_or_the_gpu_and_says_how():
    assert cpu_flags(CPU_AMX) >= {"amx_bf16", "avx512_bf16"}
    amx = probe("cpu", cpuinfo=CPU_AMX, gpu_cc=None)
    assert amx["bf16"] and not amx["cuda"] and not amx["fp16"] and "amx_bf16" in amx["how"]["bf16"]
    assert not probe("cpu", cpuinfo=CPU_NO_BF16, gpu_cc=None)["bf16"]
    old_gpu = probe("auto", cpuinfo=CPU_AMX, gpu_cc=7.5)
    assert old_gpu["cuda"] and old_gpu["fp16"] and not old_gpu["bf16"]  # Turing: no bf16 units, the CPU's don't count
    pinned = probe("cpu", cpuinfo=CPU_NO_BF16, gpu_cc=9.0)
    assert not pinned["cuda"] and "pinned to the CPU" in pinned["how"]["cuda"]


def test_knob_tables_in_a_task_file_are_checked_like_runtime_and_apply_to_their_backend_only(tmp_path):
    base = load_task("mnist-lenet5", "quick").to_dict()
    spec = spec_from_dict({**base, "knobs": {"keras": {"steps_per_execution": 8, "jit_compile": True}}})
    assert spec.for_backend("keras").runtime.steps_per_execution == 8
    assert spec.for_backend("keras").runtime.jit_compile and spec.for_backend("torch").runtime == RuntimeSpec()
    for bad, says in [
        ({"keras": {"steps_per_execution": 0}}, "knobs.keras.steps_per_execution: expected an integer in 1..1024"),
        ({"torch": {"compile_mode": "fastest"}}, "knobs.torch.compile_mode: expected one of"),
        ({"torch": {"bogus": 1}}, "knobs.torch.bogus: unknown key"),
        ({"../x": {"threads": 1}}, "is not a backend name"),
        ({"torch": 3}, "knobs.torch: expected a table"),
    ]:
        with pytest.raises(SpecError, match=says):
            spec_from_dict({**base, "knobs": bad})
    # a round trip through the plan keeps the knobs, the configuration label and the base task
    tuned = dataclasses.replace(spec, name="mnist-lenet5.best", config="best", base="mnist-lenet5")
    again = spec_from_dict(tuned.to_dict())
    assert (again.knobs, again.config, again.base) == (tuned.knobs, "best", "mnist-lenet5")


def test_a_knob_table_for_a_backend_that_does_not_exist_is_refused_before_any_work(tmp_path, clean_env):
    from tests.conftest import TINY_TASK, run_cli

    task = tmp_path / "k.toml"
    task.write_text(TINY_TASK + "[knobs.pytorch]\nthreads = 1\n")
    p = run_cli(["run", str(task), "--out", str(tmp_path / "out")], clean_env, timeout=120)
    assert p.returncode == 2 and "knobs.pytorch: unknown backend (expected one of: torch, keras" in p.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_the_zoo_searches_only_the_knobs_named_and_knobs_without_best_is_refused(tmp_path, clean_env):
    """`bench zoo --best --knobs ...` narrows the race as `bench tune --knobs` does; without --best the flag
    would change nothing, so it is refused before any work, and so is a name no backend has."""
    from tests.conftest import run_cli

    out = tmp_path / "out"
    alone = run_cli(["zoo", "--models", "mobilenet", "--knobs", "precision", "--out", str(out)], clean_env, timeout=120)
    assert alone.returncode == 2 and "--knobs chooses what --best searches: add --best" in alone.stderr
    typo = run_cli(
        ["zoo", "--models", "mobilenet", "--best", "--knobs", "precison", "--backend", "torch", "--out", str(out)],
        clean_env,
        timeout=120,
    )
    assert typo.returncode == 2 and "precison" in typo.stderr
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.e2e
@pytest.mark.frameworks
def test_a_task_that_pins_a_mixed_precision_runs_every_phase_in_both_frameworks(tmp_path, clean_env):
    """docs/tuning.md tells a user to pin a winner as ``[knobs.BACKEND]``; with ``precision = "mixed_bf16"``
    Keras's Grad-CAM failed ('Mul' of bfloat16 logits and float32 signs) and the row with it, though
    `bench tune` never saw it (its rows leave the phases out). The class score is now float32 in every engine."""
    from tests.conftest import TINY_TASK, only_run_dir, records, run_cli

    task = tmp_path / "bf16.toml"
    pinned = "".join(f'[knobs.{b}]\nprecision = "mixed_bf16"\n' for b in ("torch", "keras"))
    task.write_text(TINY_TASK + "[explain]\ngradcam = true\nsaliency = true\n" + pinned)
    out = tmp_path / "out"
    p = run_cli(["run", str(task), "--backend", "torch,keras", "--out", str(out)], clean_env)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    rows = records(only_run_dir(out))
    assert [(r["backend"], r["status"], r["precision"]) for r in rows] == [
        ("torch", "ok", "mixed_bf16"),
        ("keras", "ok", "mixed_bf16"),
    ], [r.get("error") for r in rows]
    for r in rows:
        assert r["gradcam_ms_per_img"] > 0 and r["saliency_ms_per_img"] > 0 and r["test_acc"] > 0.2, r
        with np.load(only_run_dir(out) / r["explain_file"]) as f:
            assert np.isfinite(f["gradcam"]).all() and f["gradcam"].max() == 1  # maps, not NaN from a bf16 score
