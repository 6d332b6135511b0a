"""Training parity's framework-free half: the rounding floor, the bound, pair differences, what can be checked."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.core.parity import ALIGNMENTS, ParityError, ParityJob, check_alignments, parity_train
from bench.core.results import latest_records, read_records
from bench.core.spec import DatasetSpec, ModelSpec, TaskSpec, TrainSpec
from bench.measure import parity as P
from bench.run.parity import not_comparable, step_order
from tests.conftest import REPO, TINY_TASK, only_run_dir, run_cli


def _weights(seed: int) -> P.Weights:
    rng = np.random.default_rng(seed)
    return {
        "conv1.weight": rng.normal(size=(4, 3, 3, 3)).astype(np.float32),
        "bn1.running_var": rng.random(4).astype(np.float32) + 0.5,
        "bn1.num_batches_tracked": np.array(7, np.int64),
    }


def test_the_ulp_perturbation_moves_every_float_by_exactly_one_ulp_and_keeps_integers():
    w = _weights(0)
    p = P.ulp_perturbed(w, seed=3)
    for name in ("conv1.weight", "bn1.running_var"):
        steps = np.abs(p[name].astype(np.float64) - w[name]) / np.spacing(np.abs(w[name])).astype(np.float64)
        assert np.all((steps > 0.49) & (steps < 1.01)), name  # one ulp up or down (half at a power of two)
        up = p[name] > w[name]
        assert 0.2 < up.mean() < 0.8  # both directions drawn
    assert p["bn1.num_batches_tracked"] == 7
    assert all(np.array_equal(P.ulp_perturbed(w, 3)[k], p[k]) for k in w)  # seeded


def test_shuffling_within_batches_keeps_each_batch_and_changes_its_order():
    order = step_order(50, 12, 8, seed=1)
    assert len(order) == 96 and set(order) == set(range(50))  # 96 indices from permutations of 50
    assert sorted(order[:50]) == list(range(50))  # the first 50 are one whole permutation
    s = P.shuffled_within_batches(order, 8, seed=2)
    for i in range(0, 96, 8):
        assert sorted(s[i : i + 8]) == sorted(order[i : i + 8])
    assert not np.array_equal(s, order)


def test_weight_diff_compares_floats_by_name_and_refuses_other_models():
    a, b = _weights(0), _weights(0)
    b["conv1.weight"] = b["conv1.weight"].copy()
    b["conv1.weight"][1, 2, 0, 0] += 0.25
    b["bn1.num_batches_tracked"] = np.array(0, np.int64)  # Keras has no counter: not compared
    assert P.weight_diff(a, b) == pytest.approx(0.25, rel=1e-6)
    with pytest.raises(ValueError, match="differ in names"):
        P.weight_diff(a, {k: v for k, v in b.items() if k != "bn1.running_var"})
    with pytest.raises(ValueError, match=r"conv1\.weight: shapes"):
        P.weight_diff(a, {**b, "conv1.weight": np.zeros((4, 3, 3, 1), np.float32)})


def _trajectory(scale: float, seed: int = 0) -> P.Trajectory:
    """Steps 0, 1, 10 of one model, every value moved by ``scale`` x (step + 1) in a seeded direction."""
    rng = np.random.default_rng(seed)
    base, logits = _weights(0), np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4)
    out = {}
    for step in (0, 1, 10):
        move = scale * (step + 1)
        w = {
            k: (v + move * rng.choice([-1, 1], v.shape)).astype(v.dtype) if v.dtype.kind == "f" else v
            for k, v in base.items()
        }
        out[step] = (w, (logits + move * rng.choice([-1, 1], logits.shape)).astype(np.float32))
    return out


def test_the_bound_is_factor_times_the_largest_floor_so_far_and_at_least_one_ulp():
    ref = _trajectory(0.0)
    floor = _trajectory(1e-6, seed=1)
    limits = P.bounds(ref, floor, factor=10)
    assert limits[1].floor_weight == pytest.approx(2e-6, rel=0.05) and limits[1].weight == pytest.approx(2e-5, rel=0.05)
    assert limits[10].weight == pytest.approx(10 * 11e-6, rel=0.05)
    assert limits[0].weight >= 10 * P.EPS32 * P.largest(ref[0][0])  # one ulp of the largest weight at least
    shrinking = {0: floor[10], 1: floor[10], 10: floor[0]}  # a floor that shrinks later keeps its worst so far
    assert P.bounds(ref, shrinking, 10)[10].weight == pytest.approx(P.bounds(ref, shrinking, 10)[1].weight)


def test_pair_diffs_hold_pairs_within_the_bound_and_flag_one_outside():
    ref, floor = _trajectory(0.0), _trajectory(1e-6, seed=1)
    limits = P.bounds(ref, floor, factor=10)
    runs = {"a": ref, "b": _trajectory(3e-6, seed=2), "c": _trajectory(3e-4, seed=3)}
    diffs = {(d.a, d.b, d.step): d for d in P.pair_diffs(runs, limits)}
    assert len(diffs) == 9  # 3 pairs x 3 steps
    assert diffs[("a", "b", 10)].within and diffs[("a", "b", 10)].ratio == pytest.approx(0.3, rel=0.05)
    assert not diffs[("a", "c", 10)].within and diffs[("a", "c", 10)].ratio > 10
    assert P.growth(diffs.values())[("a", "c")][1][0] == pytest.approx(6e-4, rel=1e-3)


def test_a_bound_as_large_as_trainings_own_movement_decides_nothing_and_says_where_rounding_took_over():
    """QA, 2026-12-05: `bench parity mnist-lenet5` held torch and Keras 7e-7 apart to a bound of 0.2, because
    the floor run's conv1 bias took an Adam step of the other sign (2 lr) at step 1: a check that could not fail."""
    ref = _trajectory(1e-3)  # training moves every weight by up to 3e-3 by step 1, 1.2e-2 by step 10
    floor = {step: ({k: v.copy() for k, v in w.items()}, logits) for step, (w, logits) in ref.items()}
    assert all(b.decides for b in P.bounds(ref, floor).values())  # a floor of one ulp: every step decides
    for step in (1, 10):
        name = next(k for k, v in floor[step][0].items() if v.dtype.kind == "f")
        floor[step][0][name] = floor[step][0][name] + 0.02  # a whole Adam step of the other sign, kept
    limits = P.bounds(ref, floor)
    assert limits[0].decides and not limits[1].decides and not limits[10].decides
    assert limits[1].moved == pytest.approx(3e-3, rel=1e-3) and limits[1].floor_at == name
    why = limits[1].why_undecided()
    assert why.startswith(f"undecided: rounding alone moved {name} by 0.02 by step 1") and "(0.003)" in why
    # step 1 is the first there is: the hint names no fewer steps to take (QA, 2026-12-07: "(fewer steps, ...)" under
    # mnist-lenet5's step 1), and says what would decide; at step 10 fewer steps are still there to try
    assert why.endswith(
        "this case cannot tell a convention from rounding (undecided at the first step, so fewer steps cannot help: "
        f"only a case whose gradient at {name} is not at rounding level would decide)"
    ), why
    assert "fewer steps," not in why
    # at step 10, with step 1 of the same check undecided too, "fewer steps" would send the reader back to step 1
    later = limits[10].why_undecided()
    assert later.startswith(f"undecided: rounding alone moved {name} by 0.02 by step 10")
    assert later.endswith(
        "(undecided at every step of this check from step 1, so fewer steps are unlikely to help: a case whose "
        "gradients are not at rounding level would decide)"
    ), later
    # step 1 decided (its floor one ulp), step 10 not: the hint names the step that decides
    fewer = P.bounds(ref, {**floor, 1: ref[1]})
    assert fewer[1].decides and not fewer[10].decides
    decides = "(fewer steps: step 1 of this check decides; or a case whose gradients are not at rounding level)"
    assert fewer[10].why_undecided().endswith(decides)
    # a check whose first step is 10, undecided: fewer steps are still there to try
    alone = P.bounds({k: ref[k] for k in (0, 10)}, {k: floor[k] for k in (0, 10)})
    assert alone[10].why_undecided().endswith("(fewer steps, or a case whose gradients are not at rounding level)")
    diff = P.pair_diffs({"a": ref, "b": ref}, limits)[1]
    assert diff.within and not diff.bound.decides  # within a bound that decides nothing: no verdict is given


def _spec(arch: str) -> TaskSpec:
    return TaskSpec("t", DatasetSpec("mnist"), ModelSpec(arch=arch), TrainSpec(1, 8, 1e-3, augment=("hflip",)))


def test_what_can_be_checked_is_said_and_the_rest_is_refused_naming_why():
    assert not_comparable(_spec("lenet5")) is None and not_comparable(_spec("zoo:mobilenet_v2")) is None
    assert "resnet_v1_vs_v1_5" in not_comparable(_spec("zoo:resnet50"))
    assert "not the same network" in not_comparable(_spec("zoo:inception_v3"))
    assert not_comparable(_spec("convnext_tiny")) is None  # the catalog's big models are zoo rows
    assert not_comparable(_spec("resnet101")) == (
        "resnet101: not the same network in both libraries (keras_conv_bias, resnet_v1_vs_v1_5, bn_eps)"
    )
    assert parity_train(_spec("lenet5").train).augment == ()
    with pytest.raises(ParityError, match="unknown alignment"):
        check_alignments(("adam_eps", "bn_momentum"))
    assert check_alignments(tuple(ALIGNMENTS)) == tuple(ALIGNMENTS)
    job = ParityJob("torch", {}, (8, 8, 1), 2, "d", "o", checkpoints=(1, 5), alignments=("adam_eps",))
    assert ParityJob.from_dict(json.loads(json.dumps(dataclasses.asdict(job)))) == job


def test_the_parity_command_refuses_a_bad_alignment_and_says_why_an_unequal_zoo_model_has_no_check(tmp_path):
    env = dict(os.environ)
    bad = run_cli(["parity", "mnist-lenet5", "--align", "adam_eps,bogus"], env)
    assert bad.returncode == 2 and "unknown alignment(s) ['bogus']" in bad.stderr
    # an --out that cannot be a folder (a file on its path): one line and exit 2, not a traceback, no check run
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    unwritable = run_cli(["parity", "mnist-lenet5", "--steps", "1", "--out", str(blocked / "out")], env)
    said = unwritable.stdout + unwritable.stderr
    assert unwritable.returncode == 2 and f"error: parity: --out {blocked / 'out'}: Not a directory" in said, said
    assert "Traceback" not in said and "parity: torch" not in said
    task = tmp_path / "r50.toml"
    task.write_text(
        'name = "r50"\n[dataset]\nname = "mnist"\nchannels = 3\nimage_size = 32\nmax_train = 64\nmax_test = 32\n'
        '[model]\narch = "zoo:resnet50"\n[train]\nepochs = 1\nbatch_size = 8\nlr = 0.001\n'
    )
    out = tmp_path / "out"
    proc = run_cli(["parity", str(task), "--out", str(out), "--steps", "1,2"], env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (csv,) = out.glob("r50-*/parity.csv")
    row = pd.read_csv(csv).iloc[0]
    assert row.pair == "all" and row.status.startswith("no check: zoo:resnet50: not the same network")
    assert "resnet_v1_vs_v1_5" in row.status and "framework" not in proc.stderr


def test_the_parity_command_refuses_an_align_that_names_no_convention_as_it_refuses_an_unknown_one(tmp_path):
    """QA, 2026-12-07: `parity TASK --align ''` ran the check with every convention as shipped (the table said
    alignments none, exit 0), where `--align bogus` is refused: an empty value, or commas alone, names nothing, and
    is refused the same way, naming what --align takes, before any backend starts."""
    out = tmp_path / "out"
    for value in ("", ",", " , "):
        args = ["parity", "mnist-lenet5", "--align", value, "--steps", "1", "--out", str(out)]
        proc = run_cli(args, dict(os.environ))
        assert proc.returncode == 2 and proc.stdout == "", proc.stdout
        said = f"argument --align: {value!r} names no alignment: give one of all, shipped, none, or a list of "
        assert said + ", ".join(ALIGNMENTS) in proc.stderr, proc.stderr
        assert not out.exists()


def test_the_parity_command_refuses_a_backend_list_with_nothing_to_compare(tmp_path):
    """QA, 2026-12-06: `parity TASK --backend torch` trained torch and its floor, printed an empty table and exited
    0: every backend is compared with the reference, so the reference alone compares nothing."""
    out = tmp_path / "out"
    proc = run_cli(["parity", "mnist-lenet5", "--backend", "torch", "--out", str(out)], dict(os.environ))
    said = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "--backend torch: every backend is compared with torch" in said, said
    assert "parity: torch" not in said and not out.exists()


def test_the_parity_commands_bad_input_is_one_error_line_on_stderr(tmp_path):
    """QA, 2026-12-06: `parity nope` said "parity: nope: no such task" on stdout (2>/dev/null kept it, a pipe to a
    file hid it), where every other command says "error: ..." on stderr."""
    for args, says in (
        (["nope"], "error: parity: nope: no such task or file"),
        (["mnist-lenet5", "--backend", "torch"], "error: parity: --backend torch: every backend"),
        (["mnist-lenet5", "--data-dir", str(tmp_path / "none")], "error: parity: data directory"),
    ):
        proc = run_cli(["parity", *args, "--out", str(tmp_path / "out")], dict(os.environ))
        assert proc.returncode == 2 and proc.stdout == "", proc.stdout
        assert proc.stderr.startswith(says) and proc.stderr.count("\n") == 1, proc.stderr


def test_the_parity_command_says_when_images_asks_more_than_the_task_holds(tmp_path):
    """--images above the task's training images was capped silently (QA); the data decides the count (a stand-in
    or max_train), so the check runs on what there is and says so, on the terminal and in parity.md."""
    task = tmp_path / "r50.toml"  # a model with no check: no framework starts, the data is still loaded
    task.write_text(
        'name = "r50"\n[dataset]\nname = "mnist"\nchannels = 3\nimage_size = 32\nmax_train = 64\nmax_test = 32\n'
        '[model]\narch = "zoo:resnet50"\n[train]\nepochs = 1\nbatch_size = 8\nlr = 0.001\n'
    )
    out = tmp_path / "out"
    said = "parity: --images 1000: r50's training data holds 64 images: the steps cycle over those 64"
    proc = run_cli(["parity", str(task), "--out", str(out), "--steps", "1", "--images", "1000"], dict(os.environ))
    assert proc.returncode == 0 and said in proc.stdout, proc.stdout + proc.stderr
    (md,) = out.glob("r50-*/parity.md")
    assert said in md.read_text()
    proc = run_cli(["parity", str(task), "--out", str(out), "--steps", "1", "--images", "64"], dict(os.environ))
    assert proc.returncode == 0 and "--images 64" not in proc.stdout, proc.stdout + proc.stderr


def test_the_parity_command_exits_1_naming_a_pair_outside_its_bound_unless_conventions_are_left_apart(
    clean_env, tmp_path: Path
):
    """QA, 2026-12-06: `bench parity` exited 0 with a pair outside its bound (only the table's `within` said False).
    The numpy test backend is the reference; `lossy` is the same code whose weights never train under the task's
    channels_last, so it leaves the reference at the first step; `fault` is the same code, bit for bit."""
    from tests.faults import fault_env

    env = fault_env(clean_env, tmp_path / "faults", {}, parity_reference=True)  # `fault` with nothing to act out
    task, out = tmp_path / "tiny.toml", tmp_path / "out"
    task.write_text(TINY_TASK + "[runtime]\nchannels_last = true\n")
    args = ["parity", str(task), "--steps", "1,2", "--images", "64", "--out", str(out)]
    apart = run_cli([*args, "--backend", "numpy,lossy,fault"], env)
    said = apart.stdout.splitlines()
    assert apart.returncode == 1, apart.stdout[-3000:] + apart.stderr[-3000:]
    assert said[-1].startswith("parity: outside the fp32 bound: NumPy (test) vs lossy (test) from step 1 ("), said
    assert "NumPy (test) vs NumPy (test)" not in said[-1] and "no check" not in apart.stdout  # fault: within
    (md,) = out.glob("tiny-*/parity.md")
    assert md.read_text().rstrip().endswith(said[-1])
    shipped = run_cli([*args, "--backend", "numpy,lossy", "--align", "none"], env)  # apart is expected there
    last = shipped.stdout.splitlines()[-1]
    assert shipped.returncode == 0 and "NumPy (test) vs lossy (test) from step 1" in last, shipped.stdout[-3000:]
    assert "expected with --align none" in last and "exits 0" in last
    same = run_cli([*args, "--backend", "numpy,fault"], env)
    assert same.returncode == 0 and "outside" not in same.stdout, same.stdout[-3000:] + same.stderr[-3000:]
    assert "| NumPy (test) vs NumPy (test) |      2 |" in same.stdout and "no check" not in same.stdout


@pytest.mark.e2e
def test_the_parity_command_checks_a_tasks_model_on_its_data_and_writes_the_columns(tmp_path):
    out = tmp_path / "out"
    proc = run_cli(
        # the sigmoid LeNet-5: the ReLU one's floor run can take an Adam step of the other sign (undecided, above)
        [
            "parity",
            "mnist-lenet5-sigmoid",
            "--backend",
            "torch,keras",
            "--steps",
            "1,2",
            "--images",
            "32",
            "--out",
            str(out),
        ],
        dict(os.environ),
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (folder,) = out.glob("mnist-lenet5-sigmoid-*")
    table = pd.read_csv(folder / "parity.csv")
    assert list(table.pair) == ["PyTorch vs Keras (TF)"] * 3 and list(table.step) == [0, 1, 2]
    assert table.max_weight_diff[0] == 0 and table.within.all() and (table.status == "ok").all()
    assert (table.max_weight_diff[1:] <= table.bound_weight[1:]).all() and table.bound_weight[2] > 0
    assert "| PyTorch vs Keras (TF) |" in (folder / "parity.md").read_text()


@pytest.mark.e2e
def test_a_run_with_parity_steps_puts_each_backends_difference_in_its_rows(clean_env, tmp_path: Path):
    """`run --parity-steps`: after the rows, the check's columns in every ok row and lines in summary.md; the
    numpy test backend is the reference here, so no framework is imported (`fault` is the same backend)."""
    from tests.faults import fault_env

    env = fault_env(clean_env, tmp_path / "faults", {}, parity_reference=True)  # `fault` with nothing to act out
    task, out = tmp_path / "tiny.toml", tmp_path / "r"
    task.write_text(TINY_TASK)  # LeNet-5: its builds are one network in every backend (a layer list)
    proc = run_cli(["run", str(task), "--backend", "numpy,fault", "--parity-steps", "5", "--out", str(out)], env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = only_run_dir(out)
    rows = {r["backend"]: r for r in latest_records(read_records(run_dir))}
    ref, other = rows["numpy"], rows["fault"]
    assert ref["parity_steps"] == other["parity_steps"] == 5 and "the reference" in ref["parity_note"]
    assert other["parity_weight_diff"] == other["parity_logit_diff"] == 0.0  # the same code: bit for bit
    assert other["parity_within"] is True and other["parity_bound_weight"] > 0  # the floor run moved by an ulp
    assert len(read_records(run_dir)) == 4  # each row once, then once more with its columns
    summary = (run_dir / "summary.md").read_text()
    assert "Training parity: 5 step(s) from one init" in summary and "weights 0.00e+00" in summary
    assert "resumed" not in proc.stdout and run_cli(["run", "--resume", str(run_dir)], env).returncode == 0
    assert len(read_records(run_dir)) == 4  # a resumed run does not check again what was checked


@pytest.mark.e2e
def test_a_run_with_parity_steps_says_each_tasks_verdict_under_its_table_on_the_terminal(clean_env, tmp_path: Path):
    """QA, 2026-12-06: `run --parity-steps` wrote its verdict to summary.md alone; an outside pair went unseen on the
    terminal. `lossy` (its weights frozen by the task's channels_last) leaves the numpy reference; `fault` does not."""
    from tests.faults import fault_env

    env = fault_env(clean_env, tmp_path / "faults", {}, parity_reference=True)  # `fault` with nothing to act out
    task, out = tmp_path / "tiny.toml", tmp_path / "r"
    task.write_text(TINY_TASK.replace("epochs = 2", "epochs = 1") + "[runtime]\nchannels_last = true\n")
    args = ["run", str(task), "--backend", "numpy,fault,lossy", "--parity-steps", "3", "--out", str(out)]
    proc = run_cli(args, env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]  # the rows' status: the check says its own
    said = proc.stdout.splitlines()
    table = said.index("== tiny ==")
    (verdict,) = [i for i, ln in enumerate(said) if "training parity, 3 step(s) against NumPy (test): " in ln]
    assert table < verdict < next(i for i, ln in enumerate(said) if ln.startswith("wrote ")), said  # under it
    line = said[verdict]
    assert "NumPy (test): within the bound (weights 0.00e+00 / " in line, line  # fault: the same code, bit for bit
    assert "lossy (test): OUTSIDE the bound (weights " in line, line
    assert line.index("within") < line.index("OUTSIDE") and "\n" not in line


@pytest.mark.e2e
def test_parity_steps_skip_a_task_whose_rows_besides_the_references_all_failed(clean_env, tmp_path: Path):
    """The reference alone has nothing to be compared with: its check would train it and its floor for nothing."""
    from tests.faults import fault_env

    env = fault_env(clean_env, tmp_path / "faults", {1: "kill"}, parity_reference=True)  # the fault row dies
    task, out = tmp_path / "tiny.toml", tmp_path / "r"
    task.write_text(TINY_TASK.replace("epochs = 2", "epochs = 1"))
    proc = run_cli(["run", str(task), "--backend", "numpy,fault", "--parity-steps", "3", "--out", str(out)], env)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]  # the failed row
    assert "tiny: training parity: no ok row but numpy's, nothing to compare it with" in proc.stdout, proc.stdout
    assert "parity: numpy" not in proc.stdout and "training parity, " not in proc.stdout
    assert all(r.get("parity_steps") is None for r in latest_records(read_records(only_run_dir(out))))


def test_parity_steps_with_no_backend_but_the_reference_is_refused_before_anything_runs(tmp_path: Path):
    """QA, 2026-12-06: `run --backend torch --parity-steps N` trained torch and its floor for nothing: every backend
    is compared with the reference, as `bench parity --backend torch` says it (the same line)."""
    out = tmp_path / "out"
    proc = run_cli(
        ["run", "mnist-lenet5", "--backend", "torch", "--parity-steps", "3", "--out", str(out)], dict(os.environ)
    )
    assert proc.returncode == 2 and proc.stdout == "", proc.stdout
    assert proc.stderr == (
        "error: --parity-steps: --backend torch: every backend is compared with torch, which always runs: name another "
        "(e.g. --backend torch,keras)\n"
    )
    assert not out.exists()


@pytest.mark.e2e
def test_parity_steps_on_a_model_whose_builds_differ_say_so_in_every_row(clean_env, tmp_path: Path):
    from tests.faults import backend_env

    env = backend_env(clean_env, tmp_path / "site", parity_reference=True)
    task = tmp_path / "tiny.toml"
    big = TINY_TASK.replace('arch = "lenet5"', 'arch = "resnet101"')  # torchvision's and keras's builds
    task.write_text(big.replace("max_test = 100", "max_test = 100\nchannels = 3\nimage_size = 32"))  # RGB, as they take
    args = ["run", str(task), "--backend", "numpy,lossy", "--parity-steps", "5", "--out", str(tmp_path / "r")]
    proc = run_cli(args, env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = latest_records(read_records(only_run_dir(tmp_path / "r")))
    assert len(rows) == 2 and all(r["status"] == "ok" and r["parity_weight_diff"] is None for r in rows)
    row = rows[0]
    assert "resnet101: not the same network in both libraries (keras_conv_bias, resnet_v1_vs_v1_5" in row["parity_note"]


def test_a_worker_that_dies_is_reported_with_its_signal_and_its_last_own_line():
    """A segfaulting worker (Keras/JAX importing triton after jaxlib on an Intel Xeon) printed only TensorFlow's
    banner before; the error now names the signal and skips the absl log lines."""
    from bench.run.forkserver import exit_description
    from bench.run.parity import _last_line

    assert exit_description(-11) == "killed by SIGSEGV"  # what the error names first
    stderr = "Traceback ...\nValueError: bad\nI0000 00:00:1796 port.cc:153] oneDNN custom operations are on\n"
    assert _last_line(stderr) == "ValueError: bad"
    assert _last_line("W0000 00:00:1 x\n") == "no output"


def test_a_keras_engine_converting_a_zoo_model_loads_torch_first():
    from backends import describe
    from bench.run.parity_worker import _loads_torch_beside

    def job(arch: str) -> ParityJob:
        return ParityJob("keras-jax", {"model": {"arch": arch}}, (32, 32, 3), 4, "d.npz", "o.npz")

    assert _loads_torch_beside(job("zoo:mobilenet_v2"), describe("keras-jax"))
    assert not _loads_torch_beside(job("lenet5"), describe("keras-jax"))  # no torch twin: no torch import
    assert _loads_torch_beside(job("lenet5"), describe("keras"))  # TensorFlow's engine: always
    assert not _loads_torch_beside(job("zoo:mobilenet_v2"), describe("torch"))  # the reference itself
    assert _loads_torch_beside(job("convnext_tiny"), describe("keras-jax"))  # a catalog id for a zoo row
    assert not _loads_torch_beside(job("layers"), describe("keras-jax"))


def _case(threads: int) -> object:
    from bench.core.spec import RuntimeSpec
    from bench.run.parity import Case

    spec = TaskSpec("t", DatasetSpec("synthetic"), ModelSpec("lenet5"), TrainSpec(1, 16, 0.01),
                    runtime=RuntimeSpec(device="cpu", threads=threads))  # fmt: skip
    x = np.zeros((4, 8, 8, 1), np.float32)
    return Case("t", spec, (8, 8, 1), 2, x, np.zeros(4, np.int64), x)


@pytest.mark.parametrize(
    ("cores", "threads", "expected"),
    [
        ([0, 1], 1, [[0], [1]]),  # the check's own cases on the 2-core VM: two backends at a time
        ([2, 3, 5, 7], 2, [[2, 3], [5, 7]]),
        ([0, 1], 0, [None]),  # a case on every core: one process at a time, unrestricted
        ([0, 1], 2, [None]),
        ([4], 1, [None]),
    ],
)
def test_backends_train_side_by_side_only_on_cores_of_their_own(monkeypatch, cores, threads, expected):
    from bench.run import parity

    monkeypatch.setattr(parity.os, "sched_getaffinity", lambda _pid: set(cores))
    assert parity.lanes([_case(threads)]) == expected


def test_a_child_handed_cores_runs_on_exactly_those():
    import subprocess
    import sys

    first = min(os.sched_getaffinity(0))
    code = "import os; from bench.core.cpus import restrict_to_handed_cores as r; "
    code += "print(r(), sorted(os.sched_getaffinity(0)))"
    env = {**os.environ, "BENCH_CORES": str(first)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"[{first}] [{first}]"
    env.pop("BENCH_CORES")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.startswith("None ")


def test_a_check_in_stages_refuses_a_run_it_does_not_have_before_training_anything(tmp_path: Path):
    from bench.run.parity import FLOOR, REFERENCE, ParityCheck

    check = ParityCheck([], [REFERENCE, "keras"], tmp_path, echo=lambda _: None)
    assert check.labels == [REFERENCE, FLOOR, "keras"]
    runs = r"\(runs: torch, torch\+rounding, keras\)"
    with pytest.raises(ValueError, match=r"no run named \['jax'\] in this check " + runs):
        check.train("jax")
    assert check.started is None and list(tmp_path.iterdir()) == []  # nothing ran, nothing written
    assert check.result() == {} and check.trained == {REFERENCE, FLOOR, "keras"}  # no case: nothing to train


HANG_WORKER = """import os, sys, time
if "bench.run.parity_worker" in sys.orig_argv:
    open({pid!r}, "w").write(str(os.getpid()))
    time.sleep(120)
"""
LAUNCH = """from pathlib import Path
from bench.core.parity import ParityJob
from bench.run.parity import _launch
_launch([ParityJob("numpy", {{}}, (8, 8, 1), 2, "d", {out!r})], Path({folder!r}), print)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG")
def test_a_parity_worker_dies_with_the_check_that_started_it(tmp_path: Path):
    """QA, 2026-12-06: `bench parity` stopped by SIGTERM (a CI job cancelled) left its backend's worker training
    on, orphaned, for as long as its steps took (up to TIMEOUT_S): the run's own workers die with their parents."""
    site, pid_file = tmp_path / "site", tmp_path / "worker.pid"
    site.mkdir()
    (site / "sitecustomize.py").write_text(HANG_WORKER.format(pid=str(pid_file)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(REPO)]))
    code = LAUNCH.format(out=str(tmp_path / "o.npz"), folder=str(tmp_path))
    parent = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env, stdout=subprocess.DEVNULL)
    worker = 0
    try:
        deadline = time.monotonic() + 60
        while not (pid_file.is_file() and pid_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        worker = int(pid_file.read_text())
        parent.kill()
        parent.wait(10)
        deadline = time.monotonic() + 10
        while alive(worker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(worker), "the parity worker outlived the check that started it"
    finally:
        parent.kill()
        if worker and alive(worker):
            os.kill(worker, signal.SIGKILL)


@pytest.mark.skipif(sys.platform != "linux", reason="/proc")
def test_ctrl_c_to_the_parity_command_alone_stops_its_worker_and_exits_130(clean_env, tmp_path: Path):
    """QA, 2026-12-06: a SIGINT to `bench parity` alone (`kill -INT PID`; a terminal's Ctrl-C reaches its workers
    too) waited for the running worker to finish its steps, up to TIMEOUT_S, before it exited. It stops the worker
    and exits 130, saying so as `bench run` does. The numpy test backend is the reference, so no framework loads;
    the worker waits an hour, so a check that waits for it fails."""
    from tests.conftest import printed, start_cli
    from tests.faults import backend_env

    env = backend_env(clean_env, tmp_path / "site", parity_reference=True)
    pid_file, site = tmp_path / "worker.pid", tmp_path / "site" / "sitecustomize.py"
    site.write_text(site.read_text() + HANG_WORKER.format(pid=str(pid_file)).replace("sleep(120)", "sleep(3600)"))
    task, out = tmp_path / "tiny.toml", tmp_path / "out"
    task.write_text(TINY_TASK)
    args = ["parity", str(task), "--backend", "numpy,fault", "--steps", "1", "--images", "64", "--out", str(out)]
    proc = start_cli(args, env, tmp_path / "log")  # its own group is the test's: the signal goes to it alone
    worker = 0
    try:
        deadline = time.monotonic() + 120
        while not (pid_file.is_file() and pid_file.read_text()):
            assert proc.poll() is None and time.monotonic() < deadline, printed(proc)
            time.sleep(0.05)
        worker = int(pid_file.read_text())
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=60)  # a guard against a hang: the worker would run on for an hour
        except subprocess.TimeoutExpired:
            pytest.fail("bench parity still waits on its worker after SIGINT: " + printed(proc)[-2000:])
        said = printed(proc)
        assert code == 130 and "Traceback" not in said, said[-3000:]
        (folder,) = out.glob("tiny-*")  # set apart as interrupted: no listing takes it for a finished check
        assert folder.name.endswith("-interrupted") and (folder / "work").is_dir()
        assert said.rstrip().splitlines()[-1] == (
            f"interrupted: parity: nothing compared; its folder is kept as {folder} (the runs that finished are in "
            "its work/)"
        )
        assert not alive(worker), "the worker outlived the interrupted check"  # stopped and reaped, not orphaned
        assert not (folder / "parity.csv").exists()
    finally:
        proc.kill()
        if worker and alive(worker):
            os.kill(worker, signal.SIGKILL)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its new parent to reap it does not)."""
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
