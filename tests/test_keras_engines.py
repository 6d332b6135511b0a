"""Keras 3 on each of its engines (TensorFlow, JAX, torch): registry, parity with torch, end-to-end rows.

A process imports Keras under one engine only, and this one already has TensorFlow's (conftest),
so every engine is measured in a subprocess of its own (``tests.keras_engine_probe``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from backends import BACKENDS, default_names, load_backend
from backends import keras as keras_descriptions
from bench.run.argtypes import backend_names
from tests import parity
from tests.conftest import REPO, TINY_TASK, only_run_dir, records, run_cli

ENGINES = ("keras", "keras-jax", "keras-torch")


SLOW = pytest.mark.slow  # builds ResNet101 and ConvNeXt on three engines (minutes)


def run_probe(args: list[str], timeout: float, env: dict[str, str] | None = None) -> dict[str, Any]:
    """``python -m <args>`` in its own process (an engine other than Keras/TF never loads in pytest's): the JSON of
    its last ``@@probe`` line."""
    proc = subprocess.run(
        [sys.executable, "-m", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("@@probe ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(lines[-1].removeprefix("@@probe "))


@cache
def probe(name: str, big: bool = False) -> dict[str, Any]:
    """Parity with torch on every small-model case (and with ``big`` the big models' parameter counts), one engine."""
    return run_probe(["tests.keras_engine_probe", name, *(["--big"] if big else [])], timeout=900)


def test_the_registry_lists_every_engine_in_order_and_defaults_to_torch_and_keras():
    assert list(BACKENDS) == ["torch", "keras", "keras-jax", "keras-torch"]
    assert default_names() == ("torch", "keras")
    assert backend_names("all") == tuple(BACKENDS) and backend_names("keras-jax,torch") == ("keras-jax", "torch")
    for name, engine, label in (
        ("keras", "tensorflow", "Keras (TF)"),
        ("keras-jax", "jax", "Keras (JAX)"),
        ("keras-torch", "torch", "Keras (torch)"),
    ):
        info = BACKENDS[name]
        assert info.env == (("KERAS_BACKEND", engine),) and info.framework == f"keras-{engine}"
        assert info.display == label and info.module == "backends.keras.backend" and "keras" in info.requires
    assert BACKENDS["keras-jax"].requires == ("jax", "keras") and BACKENDS["keras-torch"].requires == ("torch", "keras")


def test_the_descriptions_import_no_framework():
    """The runner's parent reads the registry without importing Keras, TensorFlow, JAX or torch."""
    code = "import sys, backends; print(sorted({'keras', 'tensorflow', 'jax', 'torch'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.frameworks
def test_a_process_with_keras_on_one_engine_refuses_another():
    import keras

    assert keras.backend.backend() == "tensorflow"  # conftest's engine for this process
    with pytest.raises(RuntimeError, match="already imported with KERAS_BACKEND='tensorflow'"):
        load_backend("keras-jax")
    assert load_backend("keras").name == "keras"


# one lane per engine: the probe is cached in the process that ran it
@pytest.mark.parametrize("name", [pytest.param(e, marks=pytest.mark.xdist_group(f"probe-{e}")) for e in ENGINES])
@pytest.mark.parametrize("case", parity.CASES)
@pytest.mark.frameworks
def test_converted_weights_give_torchs_logits_and_maps_on_every_engine(name, case):
    """Equal parameter counts; logits within 1e-4 of torch's; Grad-CAM and saliency correlation >= 0.999."""
    out = probe(name)
    assert out["backend"] == name and out["matmul"] == "ok"
    _, shape, n_outputs = parity.CASES[case]
    parity.check(out["cases"][case], shape, n_outputs)


@SLOW
@pytest.mark.frameworks
def test_the_big_models_have_one_parameter_count_on_every_engine():
    counts = {name: probe(name, big=True)["big_params"] for name in ENGINES}
    assert counts["keras"] == counts["keras-jax"] == counts["keras-torch"]
    assert counts["keras"]["convnext_tiny"] == 27_821_666  # timm's count too (tests/test_big_models.py)


@pytest.fixture
def tiny_task(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_TASK + "[explain]\ngradcam = true\nsaliency = true\n")
    return path


@pytest.mark.e2e
def test_the_jax_and_torch_engines_give_ok_rows_end_to_end(clean_env, tiny_task: Path, tmp_path: Path):
    out = tmp_path / "results"
    proc = run_cli(["run", str(tiny_task), "--backend", "keras-jax,keras-torch", "--out", str(out)], clean_env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = records(only_run_dir(out))
    assert [(r["backend"], r["status"]) for r in rows] == [("keras-jax", "ok"), ("keras-torch", "ok")]
    jax_row, torch_row = rows
    assert jax_row["framework"] == "keras-jax" and "/ jax 0.10.2" in jax_row["framework_version"]
    assert torch_row["framework"] == "keras-torch" and "/ torch " in torch_row["framework_version"]
    assert jax_row["compiled"] == "jax.jit (XLA)" and torch_row["compiled"] == "eager"
    for r in rows:
        assert r["params"] == 61_706 and r["test_acc"] > 0.3, r  # 10 classes: chance is 0.1
        assert r["steady_img_s"] > 0 and r["first_step_s"] > 0 and r["gradcam_ms_per_img"] > 0, r
        assert r["saliency_ms_per_img"] > 0 and r["explain_layer"] == "conv2"
        assert r["input_share"] is not None and r["flops_per_img"] > 0
        assert "op profiler is TensorFlow engine only" in r["notes"]
    # JAX returns from a step before its work is done: no median step, the interval over synchronised stretches
    assert jax_row["median_step_img_s"] is None and "asynchronous dispatch" in jax_row["notes"]
    assert torch_row["median_step_img_s"] > 0 and "asynchronous dispatch" not in torch_row["notes"]
    # the suite's processes share JAX's persistent compilation cache (tests/conftest.py): the JAX row records it
    # and says its compile times may be reads; the cache holds what this run compiled
    cache = os.environ.get("JAX_COMPILATION_CACHE_DIR")
    assert jax_row["knobs"].get("compilation_cache") == cache and "compilation_cache" not in torch_row["knobs"]
    assert ("persistent compilation cache on" in jax_row["notes"]) == bool(cache)
    assert "persistent compilation cache" not in torch_row["notes"]
    assert not cache or any(Path(cache).iterdir())


@pytest.mark.e2e
def test_a_missing_engine_is_a_skipped_row(clean_env, tiny_task: Path, tmp_path: Path):
    shadow = tmp_path / "shadow" / "jax"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named jax')")
    env = dict(clean_env, PYTHONPATH=str(shadow.parent))
    out = tmp_path / "results"
    proc = run_cli(["run", str(tiny_task), "--backend", "keras-jax", "--out", str(out)], env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (row,) = records(only_run_dir(out))
    assert row["status"] == "skipped" and "No module named jax" in row["error"]


def test_cores_for_gives_each_slot_its_own_cores_and_restricts_nothing_it_need_not():
    from bench.core.cpus import cores_for

    assert cores_for(1, 0, [0, 1]) == [0] and cores_for(1, 1, [0, 1]) == [1]
    assert cores_for(2, 1, [0, 1, 4, 5]) == [4, 5] and cores_for(2, 2, [0, 1, 4, 5]) == [0, 1]  # wraps round
    assert cores_for(3, 1, [0, 1, 2, 3]) == [3, 0, 1]
    assert cores_for(2, 0, [0, 1]) is None and cores_for(4, 0, [0, 1]) is None and cores_for(0, 0, [0, 1]) is None


@pytest.mark.frameworks
def test_a_keras_jax_rows_window_holds_no_compile(clean_env):
    """QA, 2026-12-06: Keras on JAX compiles the ops that read its metrics (jit(equal), jit(_where),
    jit(true_divide)) at the end of the first epoch, and that compile sat in the first synchronised stretch, a
    sample of the row's interval (mnist-lenet5 quick: 1,476-1,910 img/s against medians of 4,378-6,270 for the
    others). A real row under JAX's compile log: no program is compiled while a timed step is on the clock, and
    those of the first epoch's end are in its last step, kept off the window (so the probe does see them)."""
    got = run_probe(["tests.jax_window_probe"], timeout=600, env=clean_env)
    assert got["in_window"] == [], got
    assert "jit(true_divide)" in got["in_first_epoch_end"] and got["epoch_end_step_s"] > 0, got
    # three epochs of four steps: step 0, one warm-up step, one timed, the last off the window; then 4 and 4
    assert got["segments"] == [1, 4, 4] and got["timed_steps"] == 9, got
    assert any("the first epoch's last step (64 images)" in n for n in got["notes"]), got["notes"]


JAX_CPU_USE = """
import json, os, resource, sys, time
from backends import load_backend
from bench.core.spec import RuntimeSpec
b = load_backend("keras-jax")
env = b.configure(RuntimeSpec(threads=int(sys.argv[1]), device="cpu"), 0)
import jax, jax.numpy as jnp
a = jnp.ones((768, 768)); f = jax.jit(lambda a: (a @ a @ a).sum())
f(a).block_until_ready()
r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
while time.perf_counter() - t0 < 1.5:
    f(a).block_until_ready()
r1, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - t0
cpu = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
print(json.dumps({"cores": sorted(os.sched_getaffinity(0)), "threads": env["threads"], "cpu_per_s": cpu / wall,
                  "knob": env["knobs"]["cpu_cores"]}))
"""


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no affinity on this platform")
@pytest.mark.whole_machine  # restricts itself to one core of the two it may use
@pytest.mark.frameworks
def test_keras_jax_with_one_thread_runs_on_one_core(clean_env):
    """XLA's CPU pool ignores thread flags and takes every core it may run on: a Keras/JAX row with threads = 1
    is restricted to one core (a data-parallel worker to its local rank's: ``cores_for``), so it uses one CPU
    second a second (both cores' worth before, measured 1.98), and records the core it ran on."""
    if len(os.sched_getaffinity(0)) < 2:  # read here, not at collection: a lane is pinned to one core (tests/lanes.py)
        pytest.skip("needs 2 cores")
    env = {k: v for k, v in clean_env.items() if not k.startswith("BENCH_DIST_")}
    proc = subprocess.run(
        [sys.executable, "-c", JAX_CPU_USE, "1"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    first = sorted(os.sched_getaffinity(0))[0]
    assert got["cores"] == [first] and got["knob"] == [first] and got["threads"] == 1
    assert got["cpu_per_s"] < 1.1, got


def test_a_pool_sized_by_the_cores_says_it_ran_on_them_and_not_on_a_count_above_them(monkeypatch):
    """XLA's CPU pool ignores thread settings: what it ran on is the cores the process may use, whatever was asked;
    a count above them is said in a note, as is one the cores could not be narrowed to."""
    from bench.core.cpus import pool_threads

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert pool_threads(0) == (2, None) and pool_threads(2) == (2, None)
    threads, note = pool_threads(8)
    assert threads == 2 and note is not None and "8 asked" in note and "2 core(s)" in note
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)  # restrict_to_threads(1) narrowed
    assert pool_threads(1) == (1, None)


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no affinity on this platform")
@pytest.mark.frameworks
def test_keras_jax_asked_for_more_threads_than_cores_records_the_cores_it_ran_on(clean_env):
    """A Keras/JAX row asked for more threads than its process's cores: XLA's pool ran on the cores (nothing adds
    any), so the record's ``threads`` is their count and its notes say what was asked; it once said the ask."""
    cores = len(os.sched_getaffinity(0))
    env = {k: v for k, v in clean_env.items() if not k.startswith("BENCH_DIST_")}
    code = JAX_CPU_USE.replace('"knob": env', '"notes": env.get("notes", []), "knob": env')
    proc = subprocess.run(
        [sys.executable, "-c", code, str(cores + 3)], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["threads"] == len(got["cores"]) == cores, got
    assert any(f"{cores + 3} asked" in n for n in got["notes"]), got


TORCH_STATIC = """
import json, torch
from backends import load_backend
from bench.core.spec import RuntimeSpec
from backends.keras.engine_torch import STATIC_SHAPES_NOTE
engine = load_backend("keras-torch").engine
out = {}
for jit in (False, True):
    got = engine.configure(RuntimeSpec(jit_compile=jit), 0)
    noted = STATIC_SHAPES_NOTE in got["notes"]
    out[str(jit)] = [got["knobs"].get("compile_shapes"), torch._dynamo.config.automatic_dynamic_shapes, noted]
print(json.dumps(out))
"""


@pytest.mark.frameworks
def test_keras_on_torch_compiles_static_shapes_under_jit_compile(clean_env):
    """With torch.compile's automatic dynamic shapes, torch 2.14.1's inductor failed recompiling Keras's LeNet-5
    train step for a dynamic batch, and every mnist-lenet5 row with `[knobs.keras-torch] jit_compile = true` failed
    ("cannot determine truth value of Relational"). Under jit_compile the engine turns them off, and says so.
    In a process of its own: this one has Keras on TensorFlow."""
    env = dict(clean_env, KERAS_BACKEND="torch")
    proc = subprocess.run([sys.executable, "-c", TORCH_STATIC], cwd=REPO, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["False"] == [None, True, False]  # eager: torch's default, nothing said
    assert got["True"] == ["static", False, True]


@pytest.mark.parametrize("name", [pytest.param(e, marks=pytest.mark.xdist_group(f"probe-{e}")) for e in ENGINES])
@pytest.mark.frameworks
def test_a_build_whose_weights_are_imported_draws_cheaply_on_jax_and_keeps_the_seeded_stream(name):
    """bench.run.parity_worker builds a model it imports weights into with ``build_to_import``: on JAX its draws use
    numpy from Keras's seed (JAX's own draws compile a program per initialiser shape), so they
    differ from ``build``'s; on the other engines they are ``build``'s. Every weight is then the imported one, and
    the draws after it (a dropout seed, a pretrained model's head) are the ones ``build`` leaves."""
    built, cheap = probe(name)["throwaway"]
    kernels = [k for k in built["drawn"] if k.endswith("weight")]
    assert kernels and built["drawn"].keys() == cheap["drawn"].keys()
    assert all(len(built["drawn"][k]) == len(cheap["drawn"][k]) for k in kernels)
    assert all((built["drawn"][k] != cheap["drawn"][k]) == (name == "keras-jax") for k in kernels), name
    assert built["imported"] == cheap["imported"] == sorted(built["drawn"])  # every weight is the imported one
    assert built["after"] == cheap["after"]  # the process's seeded stream moved alike
    assert cheap["xla_compiles"] == 0  # numpy draws: none compiled (JAX compiles a program per initialiser shape)


@pytest.mark.parametrize("name", [pytest.param(e, marks=pytest.mark.xdist_group(f"probe-{e}")) for e in ENGINES])
@pytest.mark.frameworks
def test_only_the_tensorflow_engine_imports_tensorflow_and_every_engine_seeds_as_keras_does(name):
    """keras.utils.set_random_seed imports TensorFlow wherever it is installed, to seed it: every Keras/JAX and
    Keras/torch row did, inside its own process (about 6 s of wall time and ~430 MB of peak host RSS a row on the
    2-core VM, 2026-12-06). Their engines seed Keras without it, and the draws after seeding are Keras's own."""
    got = probe(name)["seeding"]
    assert got["tensorflow_imported"] == (name == "keras"), got  # the probe's whole process: builds, parity, matmuls
    assert got["same_draws"], got


@pytest.mark.parametrize("name", [pytest.param(e, marks=pytest.mark.xdist_group(f"probe-{e}")) for e in ENGINES])
@pytest.mark.frameworks
def test_only_the_jax_engine_imports_jax(name):
    """Keras 3.15 and TensorFlow import JAX at their own import wherever it is installed: every Keras/TF and
    Keras/torch row held its ~320 modules (35-48 MB of a tiny MNIST row's peak host RSS on the 2-core VM,
    2026-12-06). Their descriptions keep it out (``kept_out``), and the probe's whole process still trains, converts
    weights and runs the matmuls without it."""
    got = probe(name)
    assert got["jax_imported"] == (name == "keras-jax"), got["jax_imported"]
    assert got["matmul"] == "ok"


@pytest.mark.parametrize("name", [pytest.param(e, marks=pytest.mark.xdist_group(f"probe-{e}")) for e in ENGINES])
@pytest.mark.frameworks
def test_a_rows_notes_say_its_engines_batchnorm_variance_is_one_pass_where_it_is(name):
    """Keras's torch engine computes BatchNorm's batch variance as E[x^2] - E[x]^2, the other engines (and torch) as
    the mean of squared deviations: a difference the rows train with (the parity check aligns it), which no row's
    notes said. The note stands where the engine's own moments are one-pass, and only there."""
    noted = BACKENDS[name].known_differences.count(keras_descriptions.ONE_PASS_VARIANCE) == 1
    assert noted == probe(name)["one_pass_variance"] == (name == "keras-torch")


@pytest.mark.xdist_group("probe-keras-jax")
@pytest.mark.frameworks
def test_a_pretrained_zoo_build_draws_its_trunk_cheaply_on_jax_and_its_head_and_random_rows_as_before():
    """A pretrained zoo row's library model is overwritten by the converter, weight for weight: on JAX it is drawn
    the engine's throwaway way, once per build, and every weight ends as it did with that path off: the trunk the
    file's, the fresh head (10 classes, not the library's 1000) the seeded draws it had. A random-init row's draws
    are its training start: it never takes the path, and its weights are the real draws."""
    got = probe("keras-jax")["zoo_draws"]
    assert got["random-cheap"]["taken"] == 0 and got["random-cheap"]["weights"]
    assert got["pretrained-cheap"]["taken"] == got["pretrained-off"]["taken"] == 1
    assert got["pretrained-cheap"]["weights"] == got["pretrained-off"]["weights"]
    heads = [n for n in got["pretrained-off"]["weights"] if n.split(":")[1].startswith("head/")]
    assert len(heads) == 2, heads  # the head's kernel and bias are among the weights compared
