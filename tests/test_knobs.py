"""Knob spaces as data: each backend's declaration, the product this machine runs, the capability probe."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import backends
from bench.core.capabilities import CAPABILITIES, cpu_flags, probe
from bench.core.knobs import configurations, cpu_threads, knob, value
from bench.core.spec import RuntimeSpec, SpecError, load_task, spec_from_dict
from tests.conftest import REPO

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


def test_a_knob_raced_alone_adds_one_configuration_per_value_with_the_others_at_their_defaults():
    """threads in the product would double every rung 0 (torch's 12 on a CPU with bf16, 24 with it): raced
    alone, each of its values is one more configuration, with every other knob at its default."""
    space = (
        knob("compile", value("off"), value("on", torch_compile=True)),
        knob("precision", value("fp32"), value("bf16", precision="mixed_bf16")),
        cpu_threads(16),
    )
    runnable, skipped = configurations(space, ALL)
    assert [c.label for c in runnable] == [
        "default",
        "precision=bf16",
        "compile=on",
        "compile=on, precision=bf16",
        "threads=1",
        "threads=8",
    ]
    assert dict(runnable[-1].runtime) == {"threads": 8} and runnable[-1].changed == ("threads",) and skipped == []
    assert runnable[2].values()["threads"] == "default" and "threads" not in dict(runnable[2].runtime)


@pytest.mark.parametrize(("cores", "counts"), [(1, []), (2, ["1"]), (3, ["1"]), (4, ["1", "2"]), (16, ["1", "8"])])
def test_the_threads_knob_offers_one_and_half_the_usable_cores_where_each_is_another_count(cores, counts):
    """The framework's own count (every usable core in TF and XLA) first; 1 and half the cores where they differ
    from it and from each other: a 2-core machine races 1 against the default, a 1-core machine nothing."""
    threads = cpu_threads(cores)
    assert threads.alone and threads.default.label == "default" and not threads.default.runtime
    assert [v.label for v in threads.values[1:]] == counts
    assert all(dict(v.runtime) == {"threads": int(v.label)} and v.needs == ("cpu",) for v in threads.values[1:])


@pytest.mark.parametrize("name", backends.names())
def test_every_backend_races_the_cpu_threads_knob_alone(name):
    """Every backend's framework applies runtime.threads (torch's and Keras-on-torch's set_num_threads,
    TensorFlow's intra- and inter-op pools, the JAX process's cores), so each declares the shared knob, sized by
    the cores the process that described it may use (a test lane's may differ from this test's: not compared)."""
    (threads,) = [k for k in backends.describe(name).knob_space if k.name == "threads"]
    assert any(threads == cpu_threads(cores) for cores in range(1, 1025)), threads


def test_on_a_gpu_the_threads_knob_is_skipped_saying_so_as_a_cuda_only_knob_is_on_a_cpu():
    """On a GPU the host threads only feed the device: the values are skipped singles that name the capability."""
    space = (*(k for k in backends.describe("torch").knob_space if k.name != "threads"), cpu_threads(4))
    cpu = probe("cpu", cpuinfo=CPU_NO_BF16, gpu_cc=None)
    gpu = probe("auto", cpuinfo=CPU_NO_BF16, gpu_cc=9.0)
    assert cpu["cpu"] and not gpu["cpu"] and "GPU" in gpu["how"]["cpu"]
    on_cpu, _ = configurations(space, cpu)
    on_gpu, skipped = configurations(space, gpu)
    assert [c.label for c in on_cpu if "threads" in c.changed] == ["threads=1", "threads=2"]
    assert not any("threads" in c.changed for c in on_gpu)
    assert {"threads=1 needs cpu", "threads=2 needs cpu"} <= {why for _, why in skipped}


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


def test_a_knob_no_chosen_backend_has_is_refused_naming_whose_it_is_and_one_some_lack_is_said_once(tmp_path, clean_env):
    """`bench tune TASK --backend keras --knobs fused_optimizer` (torch's knob) read "unknown knob", as a typo does:
    the refusal names the backends that have it (exit 2, one line, nothing made). A knob only some of the chosen
    backends have is not refused: each backend that lacks it is said once, searching the others named, or with
    none of them, no race (its best row runs its defaults: a race of the defaults alone was run, and "won")."""
    from bench.run.tune import check_knob_names, knob_lines, unraced
    from tests.conftest import run_cli

    out = tmp_path / "out"
    cmd = ["tune", "mnist-lenet5", "--backend", "keras", "--knobs", "fused_optimizer", "--out", str(out)]
    p = run_cli(cmd, clean_env, timeout=120)
    assert p.returncode == 2 and not out.exists(), p.stdout + p.stderr
    assert p.stderr.splitlines() == [
        "error: --knobs: fused_optimizer is a knob of torch, not of keras "
        "(the knobs of keras: precision, steps_per_execution, tf32, threads, xla)"
    ]
    with pytest.raises(ValueError, match=r"compile is a knob of torch and keras-torch, not of keras or keras-jax"):
        check_knob_names(("compile",), ("keras", "keras-jax"))
    with pytest.raises(
        ValueError, match=r"^--knobs: precison is no backend's knob \(the knobs of torch: channels_last, compile,"
    ):
        check_knob_names(("precison",), ("torch",))
    check_knob_names(("fused_optimizer",), ("torch", "keras"))  # torch has it: not refused
    assert knob_lines(("fused_optimizer",), ("torch", "keras")) == [
        "tune: keras: --knobs fused_optimizer is a knob of torch, none of its own; no race, its best row runs its "
        "defaults"
    ]
    assert unraced(("fused_optimizer",), ("torch", "keras")) == {
        "keras": "--knobs fused_optimizer is a knob of torch, none of its own"
    }
    assert knob_lines(("fused_optimizer", "precision"), ("torch", "keras")) == [
        "tune: keras: searches precision of --knobs; fused_optimizer is a knob of torch"
    ]
    assert unraced(("fused_optimizer", "precision"), ("torch", "keras")) == {}
    assert knob_lines(("precision",), ("torch", "keras")) == [] == knob_lines((), ("torch", "keras"))
    assert unraced((), ("torch", "keras")) == {}  # no --knobs: every knob of each


# As a worker server does (bench.run.forkserver): import the backend, then configure a row's runtime in the process
# that trains it. A count no framework defaults to here (one over the usable cores), so a setting that did not take
# reads as the default.
THREADS_APPLIED = """
import json, sys
from backends import load_backend
from bench.core.cpus import usable_cores
from bench.core.spec import RuntimeSpec
n = usable_cores() + 1
backend = load_backend(sys.argv[1])
env = backend.configure(RuntimeSpec(threads=n, device="cpu"), 0)
got = {"n": n, "row": env["threads"]}
if sys.argv[1] == "keras":
    import tensorflow as tf
    tf.constant(1.0) + 1.0  # the context starts with the pools configure set
    got["pools"] = [tf.config.threading.get_intra_op_parallelism_threads(),
                    tf.config.threading.get_inter_op_parallelism_threads()]
else:
    import torch
    torch.ones(8) + 1
    got["pools"] = [torch.get_num_threads()]
print(json.dumps(got))
"""


@pytest.mark.frameworks
@pytest.mark.parametrize("name", ["torch", "keras", "keras-torch"])
def test_the_threads_knob_sets_the_frameworks_pools_in_a_worker_that_imported_it_before(name, clean_env):
    """A tune's rows fork from a server that imported the framework once: TensorFlow's intra- and inter-op pools can
    be set only before its first op, torch's intra-op pool at any time. The row's threads column is the count set.
    (Keras on JAX restricts the process's cores instead: tests/test_keras_engines.py.)"""
    cmd = [sys.executable, "-c", THREADS_APPLIED, name]
    proc = subprocess.run(cmd, cwd=REPO, env=clean_env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["row"] == got["n"] and set(got["pools"]) == {got["n"]}, got


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


def test_the_threads_knob_is_sized_by_the_cores_of_the_device_slot_a_row_runs_in(monkeypatch):
    """16 usable cores in two ``--executor devices`` slots: each row runs on 8, so "half the cores" is 4, not 8 (the
    slot's every core, the default's count); the local executor's rows keep the knob as the backend declares it."""
    import os

    from bench.core.knobs import threads_for
    from bench.run.plan import RunOptions
    from bench.run.tune import race_space, row_cores

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    slots = RunOptions(executor="devices", devices=(0, 1))
    assert row_cores(slots) == 8 and row_cores(RunOptions()) is None
    (threads,) = [k for k in race_space("torch", (), row_cores(slots)) if k.name == "threads"]
    assert [v.label for v in threads.values] == ["default", "1", "4"]
    declared = backends.describe("torch").knob_space
    assert threads_for(declared, None) == declared and race_space("torch", ("threads",), None) == tuple(
        k for k in declared if k.name == "threads"
    )


def test_under_ray_or_slurm_the_threads_knobs_half_is_resolved_by_the_cores_of_the_worker_the_row_runs_in(monkeypatch):
    """Rows under ``--executor ray`` / ``slurm`` run on machines the tune cannot see: "half the cores" is raced as
    ``half`` (``runtime.threads_share``), which the row's worker resolves by its own usable cores (``for_backend``),
    not half the tuning process's 4; the local executor keeps the count sized here."""
    import os

    from bench.core.spec import RuntimeSpec, TaskSpec
    from bench.run.plan import RunOptions
    from bench.run.tune import REMOTE_EXECUTORS, race_space, row_cores

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(4)), raising=False)
    for executor in REMOTE_EXECUTORS:
        remote = RunOptions(executor=executor)
        assert row_cores(remote) is None
        (threads,) = [k for k in race_space("torch", (), None, remote=True) if k.name == "threads"]
        assert [v.label for v in threads.values] == ["default", "1", "half"]
        assert dict(threads.values[2].runtime) == {"threads_share": "half"}
    task = dataclasses.replace(
        TaskSpec(name="t", dataset=None, model=None, train=None),  # type: ignore[arg-type]  # only runtime is read
        knobs=(("torch", (("threads_share", "half"),)),),
    )
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)  # the worker's cores
    assert task.for_backend("torch").runtime.threads == 32 and task.for_backend("keras").runtime == RuntimeSpec()
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert task.for_backend("torch").runtime.threads == 1


@pytest.mark.parametrize("cores", range(1, 10))
def test_a_race_under_slurm_whose_worker_cores_are_known_never_names_one_thread_count_twice(monkeypatch, cores):
    """``--slurm-cpus N`` (or ``--slurm-local``: this machine's) says the cores each row's worker has: the threads
    knob's values, resolved there, are distinct counts (the default: every core), so no configuration is raced twice;
    ray's nodes are not known at plan time, so its knob keeps ``half`` (``duplicated`` finds what that leaves)."""
    import os

    from bench.core.spec import TaskSpec
    from bench.run.plan import RunOptions
    from bench.run.tune import race_space, row_cores

    def counts(opts: RunOptions) -> list[int]:
        (threads,) = [k for k in race_space("torch", (), row_cores(opts), remote=True) if k.name == "threads"]
        task = TaskSpec(name="t", dataset=None, model=None, train=None)  # type: ignore[arg-type]  # runtime alone
        ran = []
        for v in threads.values:
            own = dataclasses.replace(task, knobs=(("torch", v.runtime),)).for_backend("torch").runtime.threads
            ran.append(own or cores)  # 0: the framework's own count, every core of the worker
        return ran

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)  # the worker's
    for opts in (RunOptions(executor="slurm", slurm_cpus=cores), RunOptions(executor="slurm", slurm_local=True)):
        ran = counts(opts)
        assert len(ran) == len(set(ran)) and set(ran) == {1, max(1, cores // 2), cores}, (opts, ran)
    assert len(counts(RunOptions(executor="ray"))) == 3  # default, 1, half: unknown until the rows ran


def test_a_ray_race_whose_worker_resolved_half_to_another_count_times_it_once(monkeypatch, tmp_path):
    """Under ray the cores of a row's node are known once it ran: on a 2-core worker "half" ran 1 thread, as
    ``threads=1`` did. The trial says whose it was (``duplicate_of``) and the verdict counts it once: its own
    figure never leads (here the faster by noise) and does not widen the halving."""
    import os

    from bench.report.tuning import race_lines
    from bench.run.plan import RunOptions
    from bench.run.tune import Tuner
    from tests.test_tune_budget import tiny_task

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)  # the worker's 2 cores
    speed = {"t00": 900.0, "t01": 1000.0, "t02": 1010.0}  # by tag: default, 1, half (the fastest by noise alone)

    def rows(folder, specs, opts, deadline):  # each row as its worker would record it
        out = []
        for spec in specs:
            threads = spec.for_backend("torch").runtime.threads or 2
            img = speed[spec.config]
            out.append(
                {"config": spec.config, "status": "ok", "threads": threads, "steady_img_s": img}
                | {"steady_img_s_ci_lo": img - 50, "steady_img_s_ci_hi": img + 50, "test_acc": 0.9, "n_test": 128}
            )
        return out

    tuner = Tuner(tmp_path, RunOptions(executor="ray", backends=("torch",)), 600.0, {}, lambda _: None, ("threads",))
    monkeypatch.setattr(tuner, "_run", rows)
    winner = tuner.race(tiny_task(tmp_path, epochs=2), "torch", 600.0, {"cpu": True})
    pair = tuner.log["pairs"][0]
    assert [c["label"] for c in pair["configs"]] == ["default", "threads=1", "threads=half"]
    first = pair["rungs"][0]
    half = next(t for t in first["trials"] if t["label"] == "threads=half")
    assert half["duplicate_of"] == "threads=1" and half["threads"] == 1
    assert "counted once" in first["dropped"]["threads=half"] and "threads=half" not in first["kept"]
    assert winner.label == "threads=1" and all("threads=half" not in r["kept"] for r in pair["rungs"])
    (line,) = race_lines(tuner.log, pair["task"])
    assert "2 configurations (threads=half ran as threads=1: counted once)" in line, line


@pytest.mark.parametrize("name", backends.names())
def test_every_field_a_knob_sets_is_filed_as_a_knob_not_recipe(name):
    """bench/core/recipe.py takes a spec field it does not place as recipe: a knob's field left there would make a
    tuned row another recipe for compare and the history (docs/tuning.md, Adding a knob)."""
    from bench.core.recipe import EXCLUDED

    fields = {k for knob in backends.describe(name).knob_space for v in knob.values for k, _ in v.runtime}
    assert fields and not {f for f in fields if f"runtime.{f}" not in EXCLUDED}


# --------------------------------------------------------------------------- threads above the cores


def test_threads_above_the_cores_a_row_may_use_are_noted_in_the_row(monkeypatch):
    """The note is the row's own (``perf.row_notes``, in the row's process): its cores are its slot's or cgroup's,
    as ``usable_cores`` reads them. QA 2026-12-08: torch at 1,000 threads on 2 cores ran ~500x slower, unsaid."""
    from bench.core import cpus
    from bench.measure import perf

    monkeypatch.setattr(cpus, "usable_cores", lambda: 2)
    assert cpus.threads_over_cores(2) is None and cpus.threads_over_cores(0) is None
    base = load_task("mnist-lenet5", "quick")
    for threads, noted in ((0, False), (2, False), (3, True), (1000, True)):
        spec = dataclasses.replace(base, runtime=RuntimeSpec(threads=threads))
        notes = [n for n in perf.row_notes(spec) if n.startswith("runtime.threads")]
        assert bool(notes) is noted, (threads, notes)
        if noted:
            assert notes == [
                f"runtime.threads = {threads} is more than the 2 core(s) this process may use: a framework that "
                "starts that many threads has them wait for cores, and this row's times include the wait (0: the "
                "framework's own count)"
            ]


def test_threads_above_the_cores_each_row_gets_are_warned_of_before_the_run_naming_the_setting():
    """Per task and setting, with the backends it is for; a [knobs.NAME] table's count names that table; the
    data-parallel rows' threads are ``oversubscription_notes``'."""
    from bench.run.knobcheck import threads_warnings

    base = load_task("mnist-lenet5", "quick")
    task = dataclasses.replace(base, runtime=RuntimeSpec(threads=1000))
    lines = threads_warnings([task], ("torch", "keras"), 2)
    assert lines == [
        f"{task.source}: runtime.threads = 1000 is more than the 2 core(s) each row gets (torch, keras): a framework "
        "that starts that many threads has them wait for cores, and the rows' times include the wait, as their notes "
        "say (0: the framework's own count)"
    ]
    own = dataclasses.replace(base, knobs=(("torch", (("threads", 4),)),))
    (line,) = threads_warnings([own], ("torch", "keras"), 2)
    assert line.startswith(f"{own.source}: knobs.torch.threads = 4 is more than the 2 core(s) each row gets (torch):")
    assert threads_warnings([own, base], ("torch", "keras"), 4) == []
    workers = dataclasses.replace(task, distributed=dataclasses.replace(task.distributed, workers=(1, 2)))
    assert threads_warnings([workers], ("torch",), 2) == []


def test_a_run_whose_threads_are_above_the_cores_says_so_before_it_starts_and_in_the_row(tmp_path, clean_env):
    from tests.conftest import TINY_TASK, only_run_dir, records, run_cli
    from tests.faults import backend_env

    task = tmp_path / "threads.toml"
    task.write_text(TINY_TASK + "[runtime]\nthreads = 1000\n")
    env = backend_env(clean_env, tmp_path / "site")
    p = run_cli(["run", str(task), "--backend", "numpy", "--out", str(tmp_path / "out")], env, timeout=300)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    cores = len(os.sched_getaffinity(0))
    said = f"warning: {task}: runtime.threads = 1000 is more than the {cores} core(s) each row gets (numpy): "
    assert said in p.stdout, p.stdout
    assert p.stdout.index(said) < p.stdout.index("[1/1] tiny / numpy"), p.stdout  # before any row
    (row,) = records(only_run_dir(tmp_path / "out"))
    assert f"runtime.threads = 1000 is more than the {cores} core(s) this process may use" in row["notes"]


def test_knobs_named_twice_are_searched_once_as_a_backend_named_twice_runs_once():
    from bench.run.cli import build_parser

    args = build_parser().parse_args(["tune", "mnist-lenet5", "--backend", "torch,torch", "--knobs", "threads,threads"])
    assert (args.backend, args.knobs) == (("torch",), ("threads",))
