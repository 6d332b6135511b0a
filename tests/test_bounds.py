"""Absurd values refused before any work (issue #25): every number of a task has bounds, each refused with a
SpecError naming the key and accepted at its boundary; layer lists and TOML nesting have a depth limit; a batch
must fit the training images; the command line says it in one line, exit 2."""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from bench.core import spec as S
from bench.core.layers import (
    MAX_LAYERS,
    MAX_PARAMS,
    MAX_SPAN,
    MAX_WIDTH,
    LayerError,
    check_params,
    param_counts,
    parse_layers,
)
from bench.core.spec import SpecError, check_fits_data, check_fits_image, load_task, parse_task
from bench.run.datacheck import check_task_data
from datasets.npz import write_npz
from tests.conftest import REPO, TINY_TASK, run_cli
from tests.faults import backend_env
from tests.test_datasets import tiny
from tests.test_spec import with_ as spec_with

MINIMAL = tomllib.loads(TINY_TASK)
CONV = {"conv": 2, "kernel": 1}


def with_(path: str, value: Any, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """``base`` (the tiny task) with ``value`` at the dotted ``path``."""
    return spec_with(path, value, base or MINIMAL)


# (key, refused value, accepted boundary value); the key is what the error names
BOUNDS = [
    ("train.epochs", 10**20, S.MAX_EPOCHS),
    ("train.batch_size", 10**9, S.MAX_BATCH),
    ("train.lr", math.inf, 10.0),
    ("train.lr", 1e300, S.MAX_LR),  # QA 2026-12-07: taken, then every row failed (torch's overflow, Keras's nan)
    ("train.lr", S.MAX_LR * 1.01, 25.6),  # SGD's linear scaling rule at MAX_BATCH
    ("train.beta1", math.nan, 0.0),
    ("train.beta2", 1.0, 0.999999),
    ("train.eps", math.inf, 1.0),
    ("train.eps", 2.0, 1e-12),
    ("train.momentum", 1.0, 0.99),
    ("train.weight_decay", -0.1, 1.0),
    ("train.weight_decay", math.nan, 0.0),
    ("eval.batch_size", S.MAX_BATCH + 1, S.MAX_BATCH),
    ("eval.equivalence_margin_pt", 0.0, 100.0),
    ("eval.equivalence_margin_pt", math.nan, 0.01),
    ("explain.batch_size", 0, 1),
    ("explain.batch_size", S.MAX_BATCH + 1, S.MAX_BATCH),
    ("explain.n_images", 0, 1),
    ("explain.n_images", S.MAX_DRAWN + 1, S.MAX_DRAWN),
    ("dataset.image_size", S.MAX_IMAGE_SIZE + 1, S.MAX_IMAGE_SIZE),
    ("dataset.max_train", S.MAX_SUBSET + 1, S.MAX_SUBSET),
    ("dataset.max_test", 2**62, S.MAX_SUBSET),
    ("runtime.threads", S.MAX_THREADS + 1, S.MAX_THREADS),
    ("runtime.device_data_mb", S.MAX_DEVICE_DATA_MB + 1, S.MAX_DEVICE_DATA_MB),
    ("runtime.warmup_steps", S.MAX_STEPS + 1, S.MAX_STEPS),
    ("runtime.timed_steps", S.MAX_STEPS + 1, S.MAX_STEPS),
    ("runtime.slurm_time_min", S.MAX_SLURM_MIN + 1, S.MAX_SLURM_MIN),
    ("runtime.slurm_time_min", -1, 0),
    ("runtime.slurm_partition", "gpu\n#SBATCH --wrap=x", "gpu-a100_2"),  # it goes into the job script
    ("runtime.slurm_account", "a b", "lab.ml"),
    ("decouple.max_train", S.MAX_SUBSET + 1, S.MAX_SUBSET),
    ("decouple.top_k", [S.MAX_FEATURES + 1], [S.MAX_FEATURES]),
    ("decouple.n_estimators", S.MAX_TREES + 1, S.MAX_TREES),
    ("decouple.logreg_max_iter", S.MAX_ITER + 1, S.MAX_ITER),
    ("decouple.top_features", S.MAX_DRAWN + 1, S.MAX_DRAWN),
    ("decouple.top_images", S.MAX_DRAWN + 1, S.MAX_DRAWN),
    ("decouple.n_inputs", S.MAX_DRAWN + 1, S.MAX_DRAWN),
    ("decouple.random_state", -1, S.MAX_RANDOM_STATE),
    ("decouple.random_state", S.MAX_RANDOM_STATE + 1, 0),
    ("distributed.workers", [S.MAX_WORKERS + 1], [1, S.MAX_WORKERS]),
    ("distributed.threads_per_worker", S.MAX_THREADS + 1, S.MAX_THREADS),
    ("distributed.timeout_s", math.inf, S.MAX_TIMEOUT_S),
    ("distributed.timeout_s", math.nan, 0.5),
]


@pytest.mark.parametrize(("key", "bad", "good"), BOUNDS, ids=[f"{k}={b}" for k, b, _ in BOUNDS])
def test_a_value_past_its_bound_is_refused_naming_the_key_and_the_bound_is_accepted(key, bad, good):
    base = with_("distributed.workers", [1], with_("distributed.mode", "weak"))  # any worker count splits the batch
    if key == "train.momentum":  # SGD's: under Adam (the tiny task's) a momentum is refused whatever its value
        base = with_("train.optimizer", "sgd", base)
    with pytest.raises(SpecError) as e:
        parse_task(with_(key, bad, base), source="absurd.toml")
    assert str(e.value).startswith(f"absurd.toml: {key}"), str(e.value)
    parse_task(with_(key, good, base), source="absurd.toml")


def test_dataset_mean_and_std_are_finite():
    doc = with_("dataset.std", [0.5])
    for key, bad in (("dataset.std", [math.inf]), ("dataset.mean", [math.nan])):
        with pytest.raises(SpecError, match=rf"absurd\.toml: {key}: expected finite"):
            parse_task(with_(key, bad, doc), source="absurd.toml")
    assert parse_task(with_("dataset.mean", [0.1], doc)).dataset.mean == (0.1,)


def test_the_old_messages_below_the_lower_bounds_are_kept():
    """The new upper bounds sit beside the old checks: the old texts (tests hold them) still come first."""
    old = [
        ("train.epochs", 0, "an integer >= 1, got 0"),
        ("train.lr", math.nan, "a number > 0"),
        ("train.eps", 0.0, "a number > 0"),
        ("eval.batch_size", 0, "an integer >= 1"),
    ]
    for key, bad, says in old:
        with pytest.raises(SpecError, match=f"{key}: expected {says}"):
            parse_task(with_(key, bad), source="absurd.toml")


def test_a_batch_larger_than_the_training_images_names_the_key_and_the_count():
    spec = parse_task(with_("train.batch_size", 301), source="absurd.toml")
    with pytest.raises(SpecError, match=r"absurd\.toml: train\.batch_size: 301 is more than the 300 training images"):
        check_fits_data(spec, 300)
    check_fits_data(spec, 301)


# --------------------------------------------------------------------------- depth


def test_a_layer_list_longer_than_the_limit_is_refused_naming_the_key():
    with pytest.raises(LayerError, match=rf"model\.layers: 5,000 layers; at most {MAX_LAYERS:,}"):
        parse_layers([CONV] * 5000)
    assert len(parse_layers([CONV] * MAX_LAYERS)) == MAX_LAYERS
    doc = with_("model", {"layers": [CONV] * (MAX_LAYERS + 1) + [{"flatten": True}]})
    with pytest.raises(SpecError, match=r"absurd\.toml: model\.layers: 1,002 layers"):
        parse_task(doc, source="absurd.toml")


@pytest.mark.parametrize(
    ("layer", "key", "high"),
    [
        ({"conv": MAX_WIDTH, "kernel": 1}, "conv", MAX_WIDTH),
        ({"conv": 2, "kernel": MAX_SPAN}, "kernel", MAX_SPAN),
        ({"conv": 2, "kernel": 1, "stride": MAX_SPAN}, "stride", MAX_SPAN),
        ({"conv": 2, "kernel": 1, "padding": MAX_SPAN}, "padding", MAX_SPAN),
        ({"dense": MAX_WIDTH}, "dense", MAX_WIDTH),
        ({"pool": "max", "size": MAX_SPAN}, "size", MAX_SPAN),
    ],
)
def test_layer_sizes_have_bounds_named_by_index_and_key(layer, key, high):
    parse_layers([CONV, layer])  # the boundary (shapes are checked later, against the input)
    with pytest.raises(LayerError, match=rf"model\.layers\[1\]\.{key}: expected an? .*int <= {high}, got {high + 1}"):
        parse_layers([CONV, {**layer, key: high + 1}])


# QA 2026-12-08: 65,536 filters flattened into 65,536 units, 3.4e12 parameters: loaded, then torch's allocator failed
HUGE = [{"conv": MAX_WIDTH, "kernel": 1}, {"flatten": True}, {"dense": MAX_WIDTH}]


def test_a_layer_list_with_more_parameters_than_the_bound_is_refused_naming_the_layer_and_the_count():
    """Counted framework-free (``param_counts``'s arithmetic) once the input's shape is known: at load with
    dataset.image_size, else before the run with the data's own shape (``check_fits_image``); the boundary passes."""
    layers = parse_layers(HUGE)
    count = 28 * 28 * MAX_WIDTH * MAX_WIDTH + MAX_WIDTH  # the dense layer's weights and biases
    with pytest.raises(LayerError) as e:
        check_params(layers, (28, 28, 1), 10)
    said = str(e.value)
    assert said.startswith(f"model.layers[2] (dense {MAX_WIDTH}): {count:,} parameters, at least "), said
    assert f"more than the {MAX_PARAMS:,} a layer list may have (a fixed bound" in said and "\n" not in said
    doc = with_("model", {"layers": HUGE}, with_("dataset.image_size", 28))
    with pytest.raises(SpecError, match=rf"^absurd\.toml: model\.layers\[2\] \(dense {MAX_WIDTH}\): {count:,} param"):
        parse_task(doc, source="absurd.toml")
    spec = parse_task(with_("model", {"layers": HUGE}), source="absurd.toml")  # the data's own size: not known yet
    with pytest.raises(SpecError, match=r"absurd\.toml: model\.layers\[2\].* \(the images are 28x28x1\)$"):
        check_fits_image(spec, (28, 28, 1))
    # the head counts too, and is named where it is the largest: 128x128x65,536 features into 2 classes
    wide = parse_layers([{"conv": MAX_WIDTH, "kernel": 1}, {"flatten": True}])
    with pytest.raises(LayerError, match=r"^model\.layers: the head \(fc1\): 2,147,483,650 parameters"):
        check_params(wide, (128, 128, 1), 2)
    # either side of the bound, counted as param_counts counts: 8x8x256 features into a dense layer and one logit
    features, fixed = 8 * 8 * 256, 256 + 256 + 1  # the conv's weights and biases, the head's bias
    units = (MAX_PARAMS - fixed) // (features + 1 + 1)  # per unit: its weights, its bias, its weight in the head
    for n, fits in ((units, True), (units + 1, False)):
        layers = parse_layers([{"conv": 256, "kernel": 1}, {"flatten": True}, {"dense": n}])
        assert (param_counts(layers, (8, 8, 1), 1)[0] <= MAX_PARAMS) is fits
        if fits:
            check_params(layers, (8, 8, 1), 1)
        else:
            with pytest.raises(LayerError, match=rf"^model\.layers\[2\] \(dense {n}\)"):
                check_params(layers, (8, 8, 1), 1)


@pytest.mark.parametrize(
    ("layer", "says"),
    [
        ({"batchnorm": True, "eps": math.inf}, "eps: expected a number in (0, 1], got inf"),
        ({"batchnorm": True, "eps": 1e300}, "eps: expected a number in (0, 1], got 1e+300"),
        ({"batchnorm": True, "eps": 1.5}, "eps: expected a number in (0, 1], got 1.5"),
        ({"batchnorm": True, "eps": math.nan}, "eps: expected a number > 0, got nan"),  # the old text, kept
        ({"batchnorm": True, "momentum": 0}, "momentum: expected a number in (0, 1), got 0 (the running statistics"),
        ({"batchnorm": True, "momentum": math.inf}, "momentum: expected a number in [0, 1), got inf"),
        ({"batchnorm": True, "momentum": math.nan}, "momentum: expected a number in [0, 1), got nan"),
        ({"dropout": math.inf}, "dropout: expected a number in [0, 1), got inf"),
        ({"dropout": math.nan}, "dropout: expected a number in [0, 1), got nan"),
    ],
)
def test_a_layers_float_settings_are_bounded_as_the_train_sections_are(layer, says):
    """QA: eps = inf or 1e300 was taken and trained to chance; train.eps is bounded to (0, 1], so is a layer's. A
    momentum of 0 never moves the running statistics the evaluation normalises with (mean 0, variance 1)."""
    with pytest.raises(LayerError) as e:
        parse_layers([CONV, layer])
    assert str(e.value).startswith(f"model.layers[1].{says}"), str(e.value)


def test_a_layers_float_settings_are_accepted_at_their_bounds():
    bn, drop = parse_layers([CONV, {"batchnorm": True, "eps": 1.0, "momentum": 1e-6}, {"dropout": 0.0}])[1:]
    assert (bn.eps, bn.momentum, drop.rate) == (1.0, 1e-6, 0.0)


def test_toml_nested_too_deeply_is_not_valid_toml(tmp_path: Path):
    path = tmp_path / "deep.toml"
    path.write_text(TINY_TASK + "[model.deep]\nx = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(SpecError, match=r"deep\.toml: not valid TOML: nested too deeply"):
        load_task(path)
    path.write_text(TINY_TASK.replace("[model]", "[model]\nx = " + "{a = " * 5000 + "1" + "}" * 5000))
    with pytest.raises(SpecError, match=r"deep\.toml: not valid TOML: nested too deeply"):
        load_task(path)


def test_an_integer_over_pythons_digit_limit_is_not_valid_toml(tmp_path: Path):
    """tomllib's int() raised ValueError (a traceback, exit 1) for the 5,001 digits."""
    path = tmp_path / "digits.toml"
    path.write_text(TINY_TASK.replace("epochs = 2", "epochs = 1" + "0" * 5000))
    with pytest.raises(SpecError, match=r"digits\.toml: not valid TOML: Exceeds the limit \(4300 digits\)"):
        load_task(path)


def test_a_task_file_too_large_or_not_a_regular_file_is_refused_before_reading(tmp_path: Path):
    """Checked with stat first: a 64 GB sparse file raised MemoryError in the read, a FIFO blocks an open."""
    padded = tmp_path / "padded.toml"
    padded.write_text(TINY_TASK + "#" * S.MAX_TASK_BYTES + "\n")  # valid TOML, just too long
    with pytest.raises(SpecError, match=rf"padded\.toml: {padded.stat().st_size:,} bytes is too large for a task"):
        load_task(padded)
    huge = tmp_path / "huge.toml"
    with huge.open("wb") as f:
        f.truncate(64 << 30)
    with pytest.raises(SpecError, match=r"huge\.toml: 68,719,476,736 bytes is too large for a task file"):
        load_task(huge)
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    for path in (fifo, tmp_path):
        with pytest.raises(SpecError, match=rf"{path.name}: not a regular file"):
            load_task(path)


# --------------------------------------------------------------------------- the command line


def test_the_command_line_refuses_absurd_values_in_one_line_exit_2(clean_env, tmp_path: Path):
    out = tmp_path / "results"
    dist = TINY_TASK + '[distributed]\nmode = "weak"\n'
    cases = [
        (TINY_TASK.replace("epochs = 2", "epochs = 100000000000000000000"), "train.epochs: expected an integer in"),
        (TINY_TASK.replace("lr = 0.01", "lr = inf"), "train.lr: expected a finite number > 0, got inf"),
        (TINY_TASK.replace("lr = 0.01", "lr = 1e300"), "train.lr: expected a number in (0, 100], got 1e+300"),
        (TINY_TASK + "[explain]\nbatch_size = 0\n", "explain.batch_size: expected an integer in 1..65536, got 0"),
        (dist + "workers = [2]\ntimeout_s = inf\n", "distributed.timeout_s: expected a finite number of seconds"),
        (dist + 'workers = [1000]\n[runtime]\ndevice = "cpu"\n', "distributed.workers: 1000 workers is more than"),
        (TINY_TASK + "x = " + "[" * 5000 + "]" * 5000 + "\n", "not valid TOML: nested too deeply"),
    ]
    for i, (text, says) in enumerate(cases):
        path = tmp_path / f"absurd{i}.toml"
        path.write_text(text)
        proc = run_cli(["run", str(path), "--out", str(out)], clean_env)
        assert proc.returncode == 2, (says, proc.stdout[-2000:], proc.stderr[-2000:])
        assert f"absurd{i}.toml" in proc.stderr and says in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert not out.exists()


def test_help_and_a_refusal_import_no_table_runner_or_plotting_library(tmp_path: Path):
    """Every command builds the whole parser, and most refusals come before a run: the runner, tuner, reports and
    compare they need none of are imported where a command runs them (bench.run.cli). With them at the top, each
    `--help` or exit-2 command imported pandas and pyarrow first: 0.6-0.8 s of CPU a start, 0.35-0.4 s without."""
    import subprocess
    import sys

    bad = tmp_path / "bad.toml"
    bad.write_text(TINY_TASK.replace("lr = 0.01", "lr = -1"))
    heavy = "('pandas', 'pyarrow', 'matplotlib', 'sklearn', 'scipy', 'torch', 'tensorflow', 'jax')"
    for argv in (["--help"], ["run", str(bad)], ["history", "--help"], ["compare", "--max-slowdown", "50", "a", "b"]):
        code = (
            "import sys; from bench.run import cli\n"
            f"try:\n    code = cli.main({argv!r})\nexcept SystemExit as e:\n    code = e.code\n"
            f"print(code, sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy})))"
        )
        proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
        assert proc.stdout.strip().splitlines()[-1] in ("0 []", "2 []"), (argv, proc.stdout[-800:], proc.stderr[-800:])


def refused_before_the_run(cases: list[tuple[str, dict[str, str], str]], tmp_path: Path) -> tuple[Path, str]:
    """Each (task file text, environment, part of the message) refused by `bench run`: exit 2, one line naming the
    file, before any worker or run folder. The last task file's path (to write an accepted task to) and its line."""
    out = tmp_path / "results"
    path, said = tmp_path, ""
    for i, (text, env, says) in enumerate(cases):
        path = tmp_path / f"refused{i}.toml"
        path.write_text(text)
        proc = run_cli(["run", str(path), "--backend", "numpy", "--out", str(out)], env)
        assert proc.returncode == 2, (says, proc.stdout[-2000:], proc.stderr[-2000:])
        said = proc.stderr
        assert said.startswith(f"error: {path}: ") and says in said, said
        assert len(said.strip().splitlines()) == 1 and "worker" not in proc.stdout, said
    assert not out.exists()  # no run folder, no records
    return path, said


def test_a_batch_larger_than_the_training_images_or_data_not_there_is_refused_before_the_run_starts(
    clean_env, tmp_path: Path
):
    """The training images a task gets are counted from the data's labels or tables (no image loaded) and an
    absent dataset the task allows no stand-in for is found absent, before any worker or run folder: one line
    each, exit 2, naming the task file and the key (each failed the task's rows when its turn came)."""
    data = tmp_path / "data"
    write_npz(tiny(n=80, k=10), data / "mnist.npz")  # 8 images of each of 10 classes
    bare = backend_env(clean_env, tmp_path / "site")  # no BENCH_DATA_DIR: the embedded digits, 1,438 of them
    env = dict(bare, BENCH_DATA_DIR=str(data))
    subset = TINY_TASK.replace("max_train = 300", 'max_train = 300\nclasses = ["1", "3"]')
    strict = TINY_TASK.replace("max_train = 300", 'max_train = 300\nfallback = "none"')
    target = strict + '[[transfer]]\ndataset = "cifar10"\nclass_map = { "3" = "3" }\n'
    cases = [
        (TINY_TASK.replace("batch_size = 64", "batch_size = 301"), bare, "301 is more than the 300 training"),
        (TINY_TASK.replace("batch_size = 64", "batch_size = 81"), env, "81 is more than the 80 training"),
        (subset, env, "64 is more than the 16 training"),  # the two classes' images of the file
        (strict, bare, "dataset.name: dataset 'mnist' not found (looked in: "),
        (target, env, "transfer[0].dataset: dataset 'cifar10' not found (looked in: "),
    ]
    path, said = refused_before_the_run(cases, tmp_path)
    assert "and the spec says fallback='none'; set BENCH_DATA_DIR or --data-dir" in said
    path.write_text(TINY_TASK.replace("batch_size = 64", "batch_size = 80"))  # all 80 images: one batch fits
    check_task_data([load_task(path, None, None)], str(data))


def test_a_layer_list_with_too_many_parameters_for_the_datas_images_is_refused_before_the_run_starts(
    clean_env, tmp_path: Path
):
    """QA 2026-12-08: the list loaded, a run folder was made and the row failed in torch's allocator, exit 1."""
    bare = backend_env(clean_env, tmp_path / "site")  # the embedded digits: their shape is known without loading
    text = TINY_TASK.replace(
        'arch = "lenet5"', "layers = [{conv = 65536, kernel = 1}, {flatten = true}, {dense = 65536}]"
    )
    _, said = refused_before_the_run([(text, bare, f"model.layers[2] (dense {MAX_WIDTH}): ")], tmp_path)
    assert "parameters, at least " in said and f"more than the {MAX_PARAMS:,} a layer list may have" in said


def test_a_class_the_data_does_not_have_is_refused_before_the_run_starts(clean_env, tmp_path: Path):
    """dataset.classes and a transfer's class_map are held against the data's class names (a file's, the embedded
    default's and what it stands for) before any worker or run folder: one line, exit 2, naming the task file and
    the key. Each failed the task's rows once its data was loaded, with neither file nor key in the message; so did
    dataset.classes naming one class twice, by its own name and by the one it stands for (the CIFAR-10 stand-in's
    "ring" is "cat"), after the workers had started."""
    data = tmp_path / "data"
    write_npz(tiny(n=80, k=4), data / "mnist.npz")  # a file decides: classes 0..3 only
    bare = backend_env(clean_env, tmp_path / "site")  # no BENCH_DATA_DIR: the embedded stand-ins
    env = dict(bare, BENCH_DATA_DIR=str(data))

    def classes(names: str) -> str:
        return TINY_TASK.replace("max_train = 300", f"max_train = 300\nclasses = [{names}]")

    def transfer(pairs: str) -> str:
        return f'[[transfer]]\ndataset = "cifar10"\nclass_map = {{ {pairs} }}\n'

    def on_cifar10(names: str) -> str:
        return classes(names).replace('name = "mnist"', 'name = "cifar10"')

    cases = [
        (
            on_cifar10('"dog", "cat", "ring"'),
            bare,
            "dataset.classes: 'cat' and 'ring' name one class of 'cifar10' twice (has: ['disk', ",
        ),
        (classes('"1", "eleven"'), bare, "dataset.classes: 'mnist' has no class 'eleven' (has: ['0', '1', "),
        (classes('"2", "7"'), env, "dataset.classes: 'mnist' has no class '7' (has: ['0', '1', '2', '3'])"),
        (TINY_TASK + transfer('kat = "3"'), bare, "transfer[0].class_map: 'cifar10' has no class 'kat' (has: ['disk'"),
        (  # a binary head on all ten classes; with three named, the task is refused at load
            TINY_TASK.replace("lr = 0.01", 'lr = 0.01\nloss = "binary_cross_entropy"'),
            bare,
            "train.loss: binary_cross_entropy needs exactly 2 classes, the data has 10",
        ),
        (
            classes('"1", "3", "5"').replace("lr = 0.01", 'lr = 0.01\nloss = "binary_cross_entropy"'),
            bare,
            "train.loss: expected cross_entropy with 3 classes (binary_cross_entropy needs exactly 2), got 'binary_",
        ),
        (
            classes('"1", "3"') + transfer('cat = "5"'),
            bare,
            "transfer[0].class_map.cat: the model is not trained on a class '5' (its classes: ['1', '3'])",
        ),
    ]
    path, _ = refused_before_the_run(cases, tmp_path)
    # accepted: the classes the data has, by their own names or by what a stand-in stands for (cifar10's cat)
    for text, data_dir in [
        (classes('"1", "3"') + transfer('cat = "3"'), None),
        (TINY_TASK + transfer('cat = "3", dog = "5"'), None),
        (classes('"0", "1", "2", "3"'), str(data)),  # 80 images: a batch of 64 fits
        (on_cifar10('"cat", "h_stripes"'), None),  # two classes, one by what it stands for, one by its own name
    ]:
        path.write_text(text)
        check_task_data([load_task(path, None, None)], data_dir)
    # a transfer's class_map naming one target class twice (refused once the target was loaded) or mapping two
    # target classes to one source class by two of its names (it ran, scoring both against one output)
    for text, says in [
        (TINY_TASK + transfer('cat = "1", ring = "2"'), "'cat' and 'ring' name one class of 'cifar10' twice"),
        (
            on_cifar10('"dog", "cat", "bird"') + transfer('dog = "cat", deer = "ring"'),
            r"two target classes map to the same source class \('cat' and 'ring' are one class of 'cifar10'\)",
        ),
    ]:
        path.write_text(text)
        with pytest.raises(SpecError, match=rf"{path}: transfer\[0\]\.class_map: {says}"):
            check_task_data([load_task(path, None, None)], None)
    # a name repeated as written is the spec's to refuse (bench.core.spec); the data's check refuses it too
    task = load_task(path, None, None)
    again = dataclasses.replace(task, dataset=dataclasses.replace(task.dataset, classes=("cat", "dog", "cat")))
    with pytest.raises(SpecError, match=r"dataset\.classes: 'cat' and 'cat' name one class of 'cifar10' twice"):
        check_task_data([again], None)


def test_a_batch_the_loaded_data_cannot_fill_fails_the_tasks_rows_before_any_trains(tmp_path: Path):
    """Checked again once the data is loaded (a file changed after the up-front check): the task's rows fail,
    each naming the key and the count, and nothing is saved for a worker."""
    from bench.run import task_data

    spec = parse_task(with_("train.batch_size", 301), source="absurd.toml")
    said: list[str] = []
    prepared = task_data.prepare_task(spec, None, 0, tmp_path / ".jobs", said.append)
    why = (
        "absurd.toml: train.batch_size: 301 is more than the 300 training images (a batch is at most the training set)"
    )
    assert prepared == {"error": why} and said == [f"tiny: {why}"]
    assert not (tmp_path / ".jobs").exists()


def test_a_resume_refuses_a_batch_or_data_its_plan_cannot_have_now_before_anything_starts(clean_env, tmp_path: Path):
    """`--resume` checks as `bench run` does, with the plan's data: a file cut to fewer images than a batch since
    the run started, or gone where the task allows no stand-in, is one line, exit 2, the run folder untouched."""
    from bench.run import plan, runfolder

    data, out = tmp_path / "data", tmp_path / "results"
    for i, (change, says) in enumerate(
        [
            (lambda: write_npz(tiny(n=40), data / "mnist.npz"), "train.batch_size: 64 is more than the 40 training"),
            (lambda: (data / "mnist.npz").unlink(), "dataset.name: dataset 'mnist' not found (looked in: "),
        ]
    ):
        write_npz(tiny(n=80), data / "mnist.npz")
        path = tmp_path / f"plan{i}.toml"
        path.write_text(TINY_TASK.replace("max_train = 300", 'max_train = 300\nfallback = "none"'))
        task = load_task(path, None, None)
        check_task_data([task], str(data))  # what the run started on: 80 images
        run_dir = runfolder.new_run_dir(out)
        plan.write_plan(run_dir, [task], plan.RunOptions(backends=("numpy",), out=out, data_dir=str(data)))
        change()
        before = sorted(p.name for p in run_dir.iterdir())
        proc = run_cli(["run", "--resume", str(run_dir)], backend_env(clean_env, tmp_path / "site"))
        assert proc.returncode == 2, (proc.stdout[-2000:], proc.stderr[-2000:])
        assert proc.stderr.startswith(f"error: {path}: {says}") and len(proc.stderr.splitlines()) == 1, proc.stderr
        assert "worker" not in proc.stdout, proc.stdout
        assert sorted(p.name for p in run_dir.iterdir()) == before  # no environment.json, state.json or records


def test_tune_and_all_best_refuse_a_batch_larger_than_the_training_images_before_anything_starts(
    clean_env, tmp_path: Path
):
    """`bench tune` and `bench all --best` hold their tasks against the data as `bench run` does, before the race:
    one line naming the task file and the key, exit 2, no run folder (checked by hand until now). A knob cannot
    change the batch (tests/test_tuning.py), so this one check covers every configuration the tune would race."""
    data = tmp_path / "data"
    write_npz(tiny(n=40), data / "mnist.npz")  # 40 training images: fewer than a built-in mnist task's batch
    env = backend_env(clean_env, tmp_path / "site")  # no BENCH_DATA_DIR: the embedded digits for `tune`
    big = tmp_path / "big.toml"
    big.write_text(TINY_TASK.replace("batch_size = 64", "batch_size = 301"))
    out = tmp_path / "results"
    for argv, says in [
        (["tune", str(big)], re.escape(f"error: {big}: train.batch_size: 301 is more than the 300 training images")),
        (
            ["all", "--best", "--data-dir", str(data)],  # the built-in tasks, their budget the tune's default
            r"error: \S+/bench/tasks/[\w.-]+\.toml: train\.batch_size: \d+ is more than the 40 training images",
        ),
    ]:
        proc = run_cli([*argv, "--backend", "numpy", "--out", str(out)], env)
        assert proc.returncode == 2, (argv, proc.stdout[-2000:], proc.stderr[-2000:])
        assert re.match(says, proc.stderr) and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert "worker" not in proc.stdout and "tune:" not in proc.stdout, proc.stdout  # no server, no race
    assert not out.exists()  # no run folder, no tune file, no records


def test_a_layer_list_that_cannot_fit_the_datasets_images_is_refused_before_the_run_starts(clean_env, tmp_path: Path):
    """Without dataset.image_size the images keep the dataset's own size, known before loading (the embedded
    default's, or a file's header): `bench run` refuses the list in one line, exit 2, before any worker or
    run folder, naming the layer and the size."""
    shrinking = (
        '[model]\nlayers = [{ conv = 6, kernel = 5 }, { pool = "max", size = 2 }, { conv = 16, kernel = 5 }, '
        '{ pool = "max", size = 2 }, { conv = 32, kernel = 5 }, { flatten = true }]\n'
    )
    big_kernel = "[model]\nlayers = [{ conv = 4, kernel = 20 }, { flatten = true }]\n"  # fits 28 px, not 12
    small = tmp_path / "data"
    write_npz(tiny(n=80, size=12), small / "mnist.npz")  # 80 images: a batch of 64 fits
    fit = "smaller than the kernel (the images are"
    cases = [
        (shrinking, [], f"model.layers[4] (conv 32@5x5): input is 4x4, {fit} 28x28x1)"),
        (big_kernel, ["--data-dir", str(small)], f"model.layers[0] (conv 4@20x20): input is 12x12, {fit} 12x12x1)"),
    ]
    out = tmp_path / "results"
    for i, (model, extra, says) in enumerate(cases):
        path = tmp_path / f"unfit{i}.toml"
        path.write_text(TINY_TASK.replace('[model]\narch = "lenet5"\n', model))
        proc = run_cli(["run", str(path), "--backend", "torch", "--out", str(out), *extra], clean_env)
        assert proc.returncode == 2, (says, proc.stdout[-2000:], proc.stderr[-2000:])
        assert proc.stderr.strip() == f"error: {path}: {says}", proc.stderr
        assert "worker" not in proc.stdout, proc.stdout
    assert not out.exists()  # no run folder, no records


def test_images_a_big_model_cannot_take_are_refused_before_the_run_starts(clean_env, tmp_path: Path):
    """A zoo row's builds take square RGB images of at least the row's side (bench.core.zoo.checked_input): what
    the spec fixes is refused when the task is loaded, the data's own channels and size (MNIST's 28x28x1) before
    any worker or run folder, one line naming the file and the key. Each failed every row in the backend's build."""
    zoo = '[model]\narch = "zoo:mobilenet_v3_small"\n'
    task = TINY_TASK.replace('[model]\narch = "lenet5"\n', zoo)

    def with_dataset(lines: str) -> str:
        return task.replace("max_train = 300", f"max_train = 300\n{lines}")

    small = "dataset.image_size: expected at least 32: the smallest side zoo:mobilenet_v3_small takes"
    cases = [
        (
            task,
            "dataset.channels: expected 3: zoo:mobilenet_v3_small takes RGB images (the images are 28x28x1), got 1",
        ),
        (with_dataset("channels = 3"), f"{small} (the images are 28x28x3), got 28"),
        (with_dataset("channels = 3\nimage_size = 16"), f"{small}, got 16"),  # at load
        (with_dataset("channels = 1\nimage_size = 64"), "dataset.channels: expected 3: zoo:mobilenet_v3_small takes"),
    ]
    env = backend_env(clean_env, tmp_path / "site")
    path, _ = refused_before_the_run([(text, env, says) for text, says in cases], tmp_path)
    with pytest.raises(SpecError, match=r"dataset\.image_size: expected at least 32: the smallest side resnet101"):
        parse_task(
            with_("dataset.image_size", 16, tomllib.loads((S.TASKS_DIR / "catsdogs-resnet101.toml").read_text()))
        )
    path.write_text(with_dataset("channels = 3\nimage_size = 32"))  # the row's smallest side: accepted
    check_task_data([load_task(path, None, None)], None)


def test_the_task_files_check_and_the_zoo_build_refuse_the_same_images():
    """One rule (bench.core.zoo.input_fits): a shape the task file's check passes is one the build takes, and one
    it refuses the build refuses; 0 (the data's own decides) passes the file's check and only it."""
    from bench.core.catalog import architecture
    from bench.core.zoo import ZooError, checked_input

    arch = architecture("zoo:mobilenet_v3_small")
    for shape in [(32, 32, 3), (224, 224, 3), (31, 31, 3), (32, 40, 3), (32, 32, 1), (64, 64, 4), (16, 16, 1)]:
        file_ok = all(b.ok for b in S._zoo_input(arch, shape))
        try:
            checked_input(arch.zoo, shape)
            built = True
        except ZooError as e:
            built = False
            assert "needs square 3-channel images of at least 32 px" in str(e), e
        assert file_ok == built, shape
    assert all(b.ok for b in S._zoo_input(arch, (0, 0, 0)))
    with pytest.raises(ZooError):
        checked_input(arch.zoo, (0, 0, 3))


def test_a_mean_and_std_without_a_value_per_channel_are_refused_before_the_run_starts(clean_env, tmp_path: Path):
    """dataset.mean/std hold one value per channel of the images the task gets (bench.core.preprocess.PixelNorm):
    refused when the task is loaded where the spec sets the channels (or no image has that many), else before any
    worker or run folder from the data's own (MNIST's one), one line naming the file and the key. Each failed every
    row once the data was loaded (`dataset.mean/std have 3/3 values for 1 channels`, no file named)."""

    def norm(mean: str, more: str = "") -> str:
        std = mean.replace("0.5", "0.25")
        return TINY_TASK.replace("max_train = 300", f"max_train = 300\nmean = [{mean}]\nstd = [{std}]\n{more}")

    cases = [
        (norm("0.5, 0.5, 0.5"), "dataset.mean: expected 1 value, one per channel (the images are 28x28x1), got (0.5, "),
        (norm("0.5, 0.5"), "dataset.mean: expected 1 or 3 values, one per channel, got (0.5, 0.5)"),  # at load
        (norm("0.5", "channels = 3"), "dataset.mean: expected 3 values, one per channel, got (0.5,)"),  # at load
    ]
    env = backend_env(clean_env, tmp_path / "site")
    path, _ = refused_before_the_run([(text, env, says) for text, says in cases], tmp_path)
    for text in (norm("0.5"), norm("0.5, 0.5, 0.5", "channels = 3")):  # a value per channel: accepted
        path.write_text(text)
        check_task_data([load_task(path, None, None)], None)


def test_a_resume_refuses_a_layer_list_that_cannot_fit_the_plans_images_before_anything_starts(
    clean_env, tmp_path: Path
):
    """`--resume` runs `bench run`'s up-front check too: a run started on 28 px MNIST whose data file is 12 px
    now (replaced since) is refused in the same line, exit 2, before the run folder is touched (it failed one
    row per backend, each after its worker had started)."""
    from bench.run import plan, runfolder

    path = tmp_path / "unfit.toml"
    path.write_text(
        TINY_TASK.replace(
            '[model]\narch = "lenet5"\n', "[model]\nlayers = [{ conv = 4, kernel = 20 }, { flatten = true }]\n"
        )
    )
    data = tmp_path / "data"
    write_npz(tiny(n=80, size=28), data / "mnist.npz")  # 80 images: a batch of 64 fits
    task = load_task(path, None, None)
    check_task_data([task], str(data))  # what the run started on fits the kernel
    out = tmp_path / "results"
    run_dir = runfolder.new_run_dir(out)
    plan.write_plan(run_dir, [task], plan.RunOptions(backends=("torch",), out=out, data_dir=str(data)))
    write_npz(tiny(n=80, size=12), data / "mnist.npz")  # the file the plan names, replaced
    before = sorted(p.name for p in run_dir.iterdir())
    for command in ("run", "all"):
        proc = run_cli([command, "--resume", str(run_dir)], clean_env)
        assert proc.returncode == 2, (proc.stdout[-2000:], proc.stderr[-2000:])
        says = "model.layers[0] (conv 4@20x20): input is 12x12, smaller than the kernel (the images are 12x12x1)"
        assert proc.stderr.strip() == f"error: {path}: {says}", proc.stderr
        assert "worker" not in proc.stdout, proc.stdout
    assert sorted(p.name for p in run_dir.iterdir()) == before  # no environment.json, state.json or records


def test_an_unknown_grad_cam_layer_is_refused_before_the_run_starts_listing_the_layers(clean_env, tmp_path: Path):
    path = tmp_path / "cam.toml"
    path.write_text(TINY_TASK + '[explain]\ngradcam = true\nlayer = "conv9"\n')
    out = tmp_path / "results"
    proc = run_cli(["run", str(path), "--backend", "torch", "--out", str(out)], clean_env)
    assert proc.returncode == 2, (proc.stdout[-2000:], proc.stderr[-2000:])
    assert proc.stderr.strip() == (
        f"error: {path}: explain.layer: expected a layer of 'lenet5' with a map for Grad-CAM to read "
        "(one of: conv1, pool1, conv2, pool2), got 'conv9'"
    ), proc.stderr
    assert "worker" not in proc.stdout and not out.exists()


def test_a_big_models_grad_cam_layer_that_a_backend_does_not_name_is_refused_before_the_run_starts(
    clean_env, tmp_path: Path
):
    """Big models (zoo rows) name their layers per library, and a wrong name failed each row's explain phase
    after it trained, other rows' training before it: refused at load now, framework-free, naming the layer and
    the task file, before any worker or run folder (the one map both builds name: the catalog's ``backbone``)."""
    builtin = (REPO / "bench/tasks/catsdogs-resnet101.toml").read_text()
    out = tmp_path / "results"
    for arch, layer in (("resnet101", "layer4"), ("zoo:convnext_tiny", "stages.3")):
        path = tmp_path / f"cam-{layer}.toml"
        path.write_text(
            builtin.replace('arch = "resnet101"', f'arch = "{arch}"').replace(
                "[explain]\n", f'[explain]\nlayer = "{layer}"\n'
            )
        )
        proc = run_cli(["run", str(path), "--backend", "torch,keras", "--out", str(out)], clean_env)
        assert proc.returncode == 2, (proc.stdout[-2000:], proc.stderr[-2000:])
        assert proc.stderr.strip() == (
            f"error: {path}: explain.layer: expected 'backbone', the map of {arch!r} that every backend names "
            f"alike (each library names its other layers its own way), got {layer!r} (with [profiles.quick] applied)"
        ), proc.stderr
        assert "worker" not in proc.stdout and not out.exists()


def test_a_layer_list_that_cannot_fit_the_loaded_images_names_the_layer_and_the_size():
    """Checked again once the data is loaded (a file whose header could not say its shape), before any row."""
    spec = parse_task(with_("model", {"layers": [{"conv": 4, "kernel": 40}, {"flatten": True}]}), source="t.toml")
    check_fits_data(spec, 300, (40, 40, 1))  # the kernel fits a 40 px image
    with pytest.raises(
        SpecError, match=r"t\.toml: model\.layers\[0\].*smaller than the kernel \(the images are 28x28x1\)"
    ):
        check_fits_data(spec, 300, (28, 28, 1))
