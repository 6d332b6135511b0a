"""Task specs: TOML files parsed into frozen dataclasses, with errors that name the key.

A spec is the single framework-agnostic description of an experiment. Both
backends receive the same resolved spec; anything whose default differs between
the frameworks (Adam epsilon, initialisation, XLA) is a field here, so neither
framework's default decides a compared quantity silently.
"""

from __future__ import annotations

import codecs
import dataclasses
import math
import os
import re
import stat
import tomllib
import typing
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.core.architecture import Architecture
from bench.core.catalog import INITS, LAYERS_ID, architecture
from bench.core.cpus import usable_cores
from bench.core.distributed import SCALING_MODES
from bench.core.layers import LayerError, check_params, infer_shapes, map_layers, parse_layers, to_table
from bench.core.zoo import entry as zoo_entry
from bench.core.zoo import input_fits, weights_path

TASKS_DIR = Path(__file__).resolve().parent.parent / "tasks"
PROFILES = ("quick", "full")
MAX_SEED = 2**31 - 1  # every framework's seed functions accept it (numpy refuses negatives, TF wants int64)
# A task name becomes part of file names (logs, jobs, results): a short slug, never a path.
NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")

# Upper bounds that refuse, at load, values the type check passes but no machine runs (issue #25).
MAX_EPOCHS = 10_000  # the recipes train <= 200; each epoch is a history row in the record
# Large-batch ImageNet training went to 64k; a batch is also at most the training images (check_fits_data):
# 10^9 trained, then lost the measured row to a 60 GB allocation.
MAX_BATCH = 65_536
# train.lr: the recipes train at <= 0.01; SGD's linear scaling rule (Goyal et al. 2017: 0.1 per 256 images) reaches
# 25.6 at MAX_BATCH, and 100 leaves room above that. Until 2026-12-07 only NaN and inf were refused: lr = 1e300 was
# taken and every row failed after its data had loaded (torch: an overflow RuntimeError; Keras: loss nan), exit 1
MAX_LR = 100.0
MAX_IMAGE_SIZE = 2_048  # catalog models train at <= 600 px; 60,000 RGB images at 2,048 px are 750 GB
MAX_THREADS = 1_024  # beyond any machine's cores; each thread is a stack and a share of the pool
MAX_STEPS = 1_000_000  # warm-up and timed steps: every step's time is kept in the record
MAX_SLURM_MIN = 60 * 24 * 365  # a SLURM job's time limit: beyond a year it is a typo
MAX_SLURM_CPUS = 4_096  # CPUs one SLURM job asks for (--slurm-cpus): beyond the largest nodes, a typo
MAX_ARRAY_PARALLELISM = 1_000  # jobs of one SLURM array at a time (SLURM's default MaxArraySize is 1,001)
# A SLURM partition or account: written into the job script's #SBATCH lines, so no space, newline or quote
SLURM_NAME = re.compile(r"[A-Za-z0-9_.,-]{0,200}")
MAX_DEVICE_DATA_MB = 2**24  # 16 TiB: more than any device holds
MAX_SUBSET = 2**31 - 1  # dataset.max_train/max_test, decouple.max_train: int32 sample indices
MAX_RANDOM_STATE = 2**32 - 1  # scikit-learn's and numpy's seed range
MAX_TREES = 10_000  # decouple.n_estimators: every tree stays in memory (the study used 100)
MAX_ITER = 1_000_000  # decouple.logreg_max_iter
MAX_FEATURES = 1_048_576  # decouple.top_k: far above any penultimate layer here (ResNet101: 2,048)
MAX_DRAWN = 100  # explain.n_images and decouple.top_features/top_images/n_inputs: each is a panel of a figure
# One machine's rank processes; a run further caps them by its cores or GPUs (bench.run.distributed.check_workers).
MAX_WORKERS = 1_024
# Spec keys a `bench run` option overrides (bench.run.dist_cli), and the option: an error about a value the command
# line gave names the option, what the user typed, not a key of the task file (TaskSpec.flags)
OPTIONS = {
    "distributed.workers": "--workers",
    "distributed.mode": "--scaling",
    "train.epochs": "--epochs",  # bench.run.recipe_cli
    "dataset.max_train": "--max-train",
}
MAX_TIMEOUT_S = 86_400.0  # a day: a longer collective wait is a hang; inf overflowed every rank's timeout
MAX_TASK_BYTES = 1 << 20  # 1 MiB: the built-in task files are at most 2.6 KB; a 64 GB one was read whole


class SpecError(ValueError):
    """A task spec is invalid; the message names the file and the key."""


@dataclass(frozen=True)
class Bound:
    """One check of a value beyond its type (a range, a choice, a pattern): the one style every section is
    validated in. ``key`` is what the message names, ``value`` what it shows as got."""

    key: str
    ok: bool
    expected: str
    value: Any


def _shown(value: Any) -> str:
    """A value as a message shows it: ``repr``, but a boolean as TOML writes it (``true``, not Python's ``True``),
    inside a list or table too; everything else reads as the messages always did."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(map(_shown, value)) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(map(_shown, value)) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_shown(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _first_broken(prefix: str, bounds: Iterable[Bound]) -> None:
    """SpecError for the first bound that does not hold: ``{prefix}{key}: expected {expected}, got {value}``."""
    for b in bounds:
        if not b.ok:
            raise SpecError(f"{prefix}{b.key}: expected {b.expected}, got {_shown(b.value)}")


def _choices(*values: Any) -> dict[str, Any]:
    return {"choices": values}


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    image_size: int = 0  # 0 keeps the dataset's own size
    channels: int = 0  # 0 keeps the dataset's own channels; 1 or 3 converts
    classes: tuple[str, ...] = ()  # a subset by class name, at least 2 distinct; empty = all
    rescale: str = field(default="unit", metadata=_choices("unit", "none"))  # unit: x/255
    mean: tuple[float, ...] = ()  # per-channel, applied after rescale
    std: tuple[float, ...] = ()
    max_train: int = 0  # a seeded random subset; 0 = all
    max_test: int = 0
    # "auto": the dataset's embedded default; "none": real data only
    fallback: str = field(default="auto", metadata=_choices("auto", "none"))


@dataclass(frozen=True)
class ModelSpec:
    arch: str = ""  # a catalog id, "zoo:<id>", or "layers" (set when the task gives ``layers``)
    init: str = field(default="glorot_uniform", metadata=_choices(*INITS))
    options: tuple[tuple[str, Any], ...] = ()  # architecture options, validated by the catalog
    # The task's own sequential CNN (bench.core.layers; the head comes from the classes and the loss):
    # one (key, value) table per layer, every key given (canonical), so it hashes and survives JSON.
    layers: tuple[tuple[tuple[str, Any], ...], ...] = ()
    # ImageNet weights through each library's own mechanism (big models only); default: random init
    pretrained: bool = False
    weights: str = ""  # a local weights file for pretrained=true (offline machines)

    def option(self, name: str) -> Any:
        return dict(self.options)[name]

    def recorded_options(self) -> dict[str, Any]:
        """What a record keeps as ``model_options`` (a recipe field: bench compare's recipe row, the history's task
        hash): the options, and a task's own layer list whole. Until 2026-12-06 a layer list recorded "{}", so two
        lists of one task name (conv 6/16 and 32/64 filters, 4x the weights) were one series and compare called the
        wider one's every time figure a REGRESSION."""
        return {**dict(self.options), **({"layers": [dict(t) for t in self.layers]} if self.layers else {})}


@dataclass(frozen=True)
class TrainSpec:
    epochs: int
    batch_size: int
    lr: float
    optimizer: str = field(default="adam", metadata=_choices("adam", "sgd"))
    beta1: float = 0.9
    beta2: float = 0.999
    # Keras defaults to 1e-7, torch to 1e-8; the spec decides. Keras adds epsilon to
    # sqrt(v) before bias correction, torch after: a known, recorded difference.
    eps: float = 1e-7
    momentum: float = 0.0  # sgd only
    weight_decay: float = 0.0
    # cross_entropy: softmax over one logit per class. binary_cross_entropy: two classes,
    # ONE logit (sigmoid) for the second class, as the cat/dog reports built it.
    loss: str = field(default="cross_entropy", metadata=_choices("cross_entropy", "binary_cross_entropy"))
    target_acc: float = 0.0  # time-to-accuracy target on the test split; 0 = none
    # training-only augmentation, each framework's own transforms/layers, per image (see AUGMENTATIONS)
    augment: tuple[str, ...] = ()
    # Trim each epoch's shuffled order to whole batches (torch's DataLoader(drop_last=True),
    # tf.data's drop_remainder), the same images left out in both backends. Off by default: the
    # recipes train on every image. A partial last batch runs slower per image (fixed per-step
    # costs over fewer images), which the epoch figure includes and the step median leaves out.
    drop_last: bool = False


# hflip: random horizontal flip (p=0.5); rotate10: random rotation, uniform in +-10 degrees,
# nearest-neighbour, zero fill (in the normalised image, i.e. the mean colour)
AUGMENTATIONS = ("hflip", "rotate10")


@dataclass(frozen=True)
class EvalSpec:
    batch_size: int = 1000
    per_epoch: bool = True  # evaluate after every epoch (untimed) for training curves
    # "best_test": also report the best epoch on the TEST split (optimistic; what the cat/dog reports did)
    select: str = field(default="last", metadata=_choices("last", "best_test"))
    # With repeats: how far apart (percentage points of test accuracy) two backends may be and still be called
    # equivalent (bench.measure.equivalence: two one-sided tests against +-this margin).
    equivalence_margin_pt: float = 1.0
    # The test accuracy the original experiment (a lab report) saw with the full recipe, shown beside ours in
    # summary.md with what this run's profile changed; 0 = none.
    reported_acc: float = 0.0


@dataclass(frozen=True)
class ExplainSpec:
    gradcam: bool = False
    saliency: bool = False
    layer: str = ""  # "" = the catalog's last conv layer
    n_images: int = 6  # drawn: n_images // n_classes per class, at least one (bench.phases.explain.picture_indices)
    batch_size: int = 32  # test images per timed Grad-CAM/saliency/forward call (the drawn ones included)
    target: str = field(default="predicted", metadata=_choices("predicted", "true"))  # the class explained


@dataclass(frozen=True)
class DecoupleSpec:
    """Decoupled features: the trained CNN's penultimate features (the head layer's input) fed to
    a random forest and a logistic regression, to see how much of the accuracy lives in the features."""

    enabled: bool = False  # the built-in small tasks turn it on; big models pay a pass over train
    max_train: int = 0  # seeded subset of the training images the forest and logreg learn from; 0 = all
    top_k: tuple[int, ...] = (10, 100, 500, 1000)  # RF and logreg on the k most important features (+ all)
    n_estimators: int = 100  # RandomForestClassifier, as in the ResNet101 study
    random_state: int = 42
    logreg_max_iter: int = 1000  # LogisticRegression (on standardised features)
    top_features: int = 5  # features whose most activating training images are drawn
    top_images: int = 10  # images per such feature
    n_inputs: int = 5  # classes (one test image each) whose feature maps and fully connected activations are drawn


@dataclass(frozen=True)
class TransferSpec:
    """Evaluate the trained model on another dataset's images, classes mapped by name."""

    dataset: str
    class_map: tuple[tuple[str, str], ...] = ()  # (target class, source class) pairs
    split: str = field(default="test", metadata=_choices("test", "train"))  # which target images
    reported_acc: float = 0.0  # what the original experiment saw (shown beside ours); 0 = none


@dataclass(frozen=True)
class RuntimeSpec:
    device: str = field(default="auto", metadata=_choices("auto", "cpu", "cuda"))
    threads: int = 0  # 0 = each framework's default, recorded per row
    # "half": threads = half the cores of the process the row runs in, resolved there (``for_backend``, in the row's
    # worker): bench tune's threads knob under --executor ray / slurm, whose rows run on machines the tune cannot see
    threads_share: str = field(default="", metadata=_choices("", "half"))
    jit_compile: bool = False  # Keras XLA; "auto" is off on CPU and slower here when on
    # Performance knobs; each default is the framework's out-of-the-box behaviour, recorded per row.
    precision: str = field(default="fp32", metadata=_choices("fp32", "mixed_bf16", "mixed_fp16"))
    channels_last: bool = False  # torch memory layout (keras is always NHWC)
    torch_compile: bool = False
    # torch.compile's mode when torch_compile is on: "default", "max-autotune-no-cudagraphs" (CPU and GPU),
    # "reduce-overhead" / "max-autotune" (CUDA graphs: CUDA only)
    compile_mode: str = field(
        default="default", metadata=_choices("default", "max-autotune-no-cudagraphs", "reduce-overhead", "max-autotune")
    )
    # Keras: optimiser steps per compiled call of fit (its default 1 calls back to Python after every step); a backend
    # whose description has no such knob column (torch) trains a batch a step whatever it says (perf.batches_per_step)
    steps_per_execution: int = 1
    tf32: str = field(default="default", metadata=_choices("default", "on", "off"))  # GPU matmul/conv in TF32
    cudnn_benchmark: bool = False  # torch cuDNN autotuning
    # torch: the optimiser's fused kernel (Adam/SGD fused=True), one kernel over every parameter tensor; torch's own
    # choice is a loop over the tensors on a CPU (foreach kernels on CUDA)
    fused_optimizer: bool = False
    # Step timing inside the training run (bench.measure.steady): the first step (tracing/compilation)
    # and warmup_steps are excluded; every later step is timed, and the window must reach at
    # least timed_steps steps (and bench.measure.steady.MIN_WINDOW_S seconds) or the row says it is short.
    warmup_steps: int = 2
    timed_steps: int = 20
    profile_ops: bool = False  # top operations by self time with the framework's own profiler
    # torch on CUDA: a training split larger than this (uint8) streams from host memory; 0 = 25% of the device
    device_data_mb: int = 0
    # Under --executor slurm (docs/executors.md), unless the command line says: the job array's partition and
    # account ("" = SLURM's default) and each job's time limit in minutes (0 = the per-run timeout + 5 min)
    slurm_partition: str = ""
    slurm_account: str = ""
    slurm_time_min: int = 0


@dataclass(frozen=True)
class DistributedSpec:
    """Data-parallel scaling rows (issue #15): opt-in; a task without the section runs as one process, and a
    section must name its worker counts (one with ``mode`` alone ran single-process rows, silently).

    Each (workers, mode) is a row of its own; ``mode`` is "strong" (train.batch_size is the global
    batch, split across workers) or "weak" (it is each worker's batch), a string or a list of both.
    """

    workers: tuple[int, ...] = ()  # e.g. [1, 2]; the 1-worker row is the efficiency's baseline
    mode: tuple[str, ...] = ("strong",)
    threads_per_worker: int = 0  # 0 = cores // max(workers): workers x threads <= cores, same in the baseline
    timeout_s: float = 120.0  # rendezvous / collective timeout: a dead peer fails the row within it
    allreduce_share: bool = True  # also time the window in workers that never join (see bench.measure.scaling)


@dataclass(frozen=True)
class TaskSpec:
    name: str
    dataset: DatasetSpec
    model: ModelSpec
    train: TrainSpec
    description: str = ""
    seed: int = 0
    eval: EvalSpec = EvalSpec()
    explain: ExplainSpec = ExplainSpec()
    decouple: DecoupleSpec = DecoupleSpec()
    transfer: tuple[TransferSpec, ...] = ()
    runtime: RuntimeSpec = RuntimeSpec()
    distributed: DistributedSpec = DistributedSpec()
    profile: str = ""  # which profile was applied ("" = none)
    source: str = ""  # the TOML file it came from
    # Per-backend runtime overrides, ``[knobs.BACKEND]`` tables: ((backend, ((runtime field, value), ...)), ...).
    # How `bench tune` runs each backend with its own best configuration in one task (``for_backend``).
    knobs: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()
    config: str = ""  # the knob configuration's label in a tuning run ("default", "best", "t03"); "" otherwise
    base: str = ""  # the task a tuning row was derived from ("" = this task itself)
    # What the applied profile sets apart from the full recipe's (the file's ``full`` profile, or its base tables
    # where it has none): ((dotted key, this spec's value, the full recipe's value), ...) over RECIPE_KEYS; what
    # summary.md names when it sets a row's accuracy beside the lab report's. () for the full recipe itself.
    profile_changes: tuple[tuple[str, Any, Any], ...] = ()
    # The keys of OPTIONS the command line set (bench.run.dist_cli.with_workers), kept in plan.json: an error names
    # the option for these (``named``), on --resume too
    flags: tuple[str, ...] = ()

    def named(self, key: str) -> str:
        """``key`` as an error names it: the command-line option that set it, else the task file's key."""
        return OPTIONS[key] if key in self.flags else f"{self.source}: {key}"

    def for_backend(self, backend: str) -> TaskSpec:
        """This task as ``backend`` runs it: its ``[knobs.BACKEND]`` overrides applied to ``runtime``."""
        own = dict(dict(self.knobs).get(backend, ()))
        runtime = dataclasses.replace(self.runtime, **own) if own else self.runtime
        if runtime.threads_share == "half":  # resolved by the cores of the process this runs in: the row's worker
            runtime = dataclasses.replace(runtime, threads=max(1, usable_cores() // 2))
        return dataclasses.replace(self, runtime=runtime) if runtime is not self.runtime else self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def n_outputs(self, n_classes: int) -> int:
        """Width of the model's last layer: one logit per class, or a single one for a binary head."""
        if self.train.loss == "binary_cross_entropy":
            if n_classes != 2:
                raise SpecError(
                    f"{self.source}: train.loss: binary_cross_entropy needs exactly 2 classes, the data has {n_classes}"
                )
            return 1
        return n_classes


# --------------------------------------------------------------------------- parsing

_SECTIONS = {
    "dataset": DatasetSpec,
    "model": ModelSpec,
    "train": TrainSpec,
    "eval": EvalSpec,
    "explain": ExplainSpec,
    "decouple": DecoupleSpec,
    "runtime": RuntimeSpec,
    "distributed": DistributedSpec,
}


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is tuple:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(tp, str(tp))


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check one TOML value against a field type; ints are accepted as floats."""
    origin = typing.get_origin(tp)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):  # TOML and JSON give lists, TaskSpec.to_dict tuples
            raise SpecError(f"{where}: expected {_type_name(tp)}, got {_shown(value)}")
        item = typing.get_args(tp)[0]
        return tuple(_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    ok = (
        isinstance(value, bool)
        if tp is bool
        else (isinstance(value, tp) and not isinstance(value, bool))
        or (tp is float and isinstance(value, int) and not isinstance(value, bool))
    )
    if not ok:
        raise SpecError(f"{where}: expected {_type_name(tp)}, got {_shown(value)}")
    return float(value) if tp is float else value


# Keys renamed since (old name -> new): a task file or an old run's plan.json that uses the old name still loads.
_RENAMED = {("DecoupleSpec", "lr_max_iter"): "logreg_max_iter"}  # lr is the learning rate; this is logistic regression


def _build(
    cls: type, table: Any, where: str, extra_ok: bool = False, at: str | None = None
) -> tuple[Any, dict[str, Any]]:
    """Build dataclass ``cls`` from a TOML table; unknown keys are errors unless ``extra_ok``.

    ``at`` precedes each key in a message: ``where.`` by default (``file: train.lr``), ``file: `` for the
    document's top level, whose keys belong to no section."""
    at = f"{where}." if at is None else at
    if not isinstance(table, dict):
        raise SpecError(f"{where}: expected a table, got {_shown(table)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    entries: dict[str, Any] = table  # a TOML or JSON table: its keys are strings
    for key, value in entries.items():
        key = _RENAMED.get((cls.__name__, key), key)
        f = fields.get(key)
        if f is None or key in ("options",):
            if extra_ok:
                extra[key] = value
                continue
            known = ", ".join(k for k in fields if k not in ("options", "profile", "source"))
            raise SpecError(f"{at}{key}: unknown key (expected one of: {known})")
        v = _coerce(value, hints[key], f"{at}{key}")
        choices = f.metadata.get("choices")
        if choices:
            _first_broken(at, [Bound(key, v in choices, f"one of {list(choices)}", v)])
        kwargs[key] = v
    missing = [
        n
        for n, f in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and n not in kwargs
    ]
    if missing:
        raise SpecError(f"{where}: missing required key(s): {', '.join(missing)}")
    return kwargs, extra


def _layer_list(items: Any, kwargs: dict[str, Any], extra: dict[str, Any], where: str) -> ModelSpec:
    """``[model] layers = [...]``: the list checked (errors name ``model.layers[i].key``), kept canonical."""
    if kwargs.get("arch", LAYERS_ID) != LAYERS_ID:
        raise SpecError(f"{where}.layers: give model.arch = {kwargs['arch']!r} or model.layers, not both")
    if extra:
        key = next(iter(extra))
        raise SpecError(f"{where}.{key}: unknown key for a layer-list model (expected one of: layers, init)")
    try:
        return layer_model(items, f"{where}.layers", **kwargs)
    except LayerError as e:
        raise SpecError(str(e)) from None


def layer_model(items: Any, where: str = "model.layers", **fields: Any) -> ModelSpec:
    """A ModelSpec of a layer list (TOML tables, checked: a LayerError names ``where[i].key``)."""
    tables = tuple(tuple(to_table(layer).items()) for layer in parse_layers(items, where))
    return ModelSpec(**{**fields, "arch": LAYERS_ID, "layers": tables})


def _model(table: Any, where: str) -> ModelSpec:
    items = table.get("layers") if isinstance(table, dict) else None
    if items is not None:
        table = {k: v for k, v in table.items() if k != "layers"}
    kwargs, extra = _build(ModelSpec, table, where, extra_ok=True)
    if items is not None:
        return _layer_list(items, kwargs, extra, where)
    if not kwargs.get("arch"):
        raise SpecError(f"{where}: missing required key arch (a model id) or layers (a list of layer tables)")
    try:
        arch = architecture(kwargs["arch"])
    except KeyError as e:
        raise SpecError(f"{where}.arch: {e.args[0]}") from None
    options = {name: opt.default for name, opt in arch.options.items()}
    for key, value in extra.items():
        opt = arch.options.get(key)
        if opt is None:
            known = ", ".join(["arch", "init", *arch.options])
            raise SpecError(f"{where}.{key}: unknown key for model {arch.id!r} (expected one of: {known})")
        v = _coerce(value, opt.type, f"{where}.{key}")
        if opt.choices and v not in opt.choices:
            raise SpecError(f"{where}.{key}: expected one of {list(opt.choices)}, got {_shown(v)}")
        options[key] = v
    return ModelSpec(options=tuple(sorted(options.items())), **kwargs)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_task(
    data: dict[str, Any],
    source: str = "<spec>",
    profile: str | None = None,
    datasets: Collection[str] | None = None,
    flags: tuple[str, ...] = (),
    folder: Path | None = None,
) -> TaskSpec:
    """Validate a TOML document (already parsed) and apply ``profile`` overrides.

    The base tables and every profile are validated, each as the spec it gives: a bad value that only
    another profile (or none) uses is refused now, not when that profile runs.

    ``datasets``: the dataset names that exist (``datasets.registry.DATASETS``; the core does not import
    the loaders); when given, a task naming another is a SpecError here rather than when its data is loaded.
    ``flags``: the keys the command line set (``TaskSpec.flags``), which its errors name as options.
    ``folder``: the task file's, from which a relative ``model.weights`` is read (``zoo.weights_path``): made
    absolute here, so the up-front check, the workers (run from the repository) and plan.json agree.
    """
    data = dict(data)
    profiles = data.pop("profiles", {})
    if not isinstance(profiles, dict):
        raise SpecError(f"{source}: profiles: expected a table of profiles")
    for name in profiles:
        if name not in PROFILES:
            raise SpecError(f"{source}: profiles.{name}: unknown profile (expected one of: {', '.join(PROFILES)})")
        if not isinstance(profiles[name], dict):
            raise SpecError(f"{source}: profiles.{name}: expected a table of overrides, got {_shown(profiles[name])}")
    if profile and profile not in PROFILES:
        raise SpecError(f"{source}: unknown profile {profile!r} (expected one of: {', '.join(PROFILES)})")
    asked = profile if profile in profiles else None  # a profile the file leaves out gives the base spec
    specs = {asked: _profile_spec(data, profiles, asked, source, datasets, flags)}
    for other in (None, *profiles):  # every spec the file can give: a bad value in any of them is refused now
        if other not in specs:
            specs[other] = _profile_spec(data, profiles, other, source, datasets, flags)
    if folder is not None:
        specs = {name: _weights_from(s, folder) for name, s in specs.items()}
    spec, full = specs[asked], specs["full" if "full" in profiles else None]
    return dataclasses.replace(spec, profile=profile or "", profile_changes=recipe_changes(spec, full))


def _weights_from(spec: TaskSpec, folder: Path) -> TaskSpec:
    """``spec`` with its ``model.weights`` absolute, a relative one read from ``folder``."""
    if not spec.model.weights:
        return spec
    model = dataclasses.replace(spec.model, weights=str(weights_path(spec.model.weights, folder)))
    return dataclasses.replace(spec, model=model)


# The settings that decide what a model learns, so what can keep its accuracy from the full recipe's: every field
# of these sections but the train.target_acc threshold (when a row is timed, not what it trains), and how the
# reported epoch is chosen.
RECIPE_KEYS = (
    *(f"dataset.{f.name}" for f in dataclasses.fields(DatasetSpec)),
    *(f"model.{f.name}" for f in dataclasses.fields(ModelSpec)),
    *(f"train.{f.name}" for f in dataclasses.fields(TrainSpec) if f.name != "target_acc"),
    "eval.select",
)
# What 0 means for a recipe setting that reads 0 as "not set" (their fields' comments)
_ZERO_MEANS = {
    "dataset.max_train": "all",
    "dataset.max_test": "all",
    "dataset.image_size": "the dataset's own",
    "dataset.channels": "the dataset's own",
}


def recipe_changes(spec: TaskSpec, full: TaskSpec) -> tuple[tuple[str, Any, Any], ...]:
    """The RECIPE_KEYS where ``spec`` differs from ``full``: (dotted key, spec's value, full's value), in order."""
    out = []
    for key in RECIPE_KEYS:
        section, name = key.split(".")
        mine, theirs = getattr(getattr(spec, section), name), getattr(getattr(full, section), name)
        if mine != theirs:
            out.append((key, mine, theirs))
    return tuple(out)


def with_recipe(spec: TaskSpec, section: str, **values: Any) -> TaskSpec:
    """``spec`` with recipe fields of ``section`` set (the budget's epochs and images), its ``profile_changes``
    kept true: a value apart from the full recipe's is named as the profile's own are, one back at it is not."""
    changes = {k: (mine, full) for k, mine, full in spec.profile_changes}
    for name, value in values.items():
        key = f"{section}.{name}"
        full = changes[key][1] if key in changes else getattr(getattr(spec, section), name)  # unchanged: the full's
        changes.pop(key, None)
        if value != full:
            changes[key] = (value, full)
    spec = dataclasses.replace(spec, **{section: dataclasses.replace(getattr(spec, section), **values)})
    return dataclasses.replace(spec, profile_changes=tuple((k, *changes[k]) for k in RECIPE_KEYS if k in changes))


def describe_changes(changes: Iterable[Sequence[Any]], flags: Collection[str] = ()) -> str:
    """``profile_changes`` as one text: "train.lr 0.003 (full recipe: 0.01), dataset.max_train 10000 (full
    recipe: all)"; empty when there are none. A key in ``flags`` (a task's ``flags``: the command line set it, e.g.
    --epochs) says so: "train.epochs 1 (the command line's; full recipe: 20)", not the profile's doing."""

    def shown(key: str, v: Any) -> str:
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(shown("", x) for x in v) + "]"
        if isinstance(v, bool):
            return str(v).lower()  # as the TOML file writes it
        if v == 0 and key in _ZERO_MEANS:
            return _ZERO_MEANS[key]
        return f"{v:g}" if isinstance(v, float) else str(v)

    def whose(key: str) -> str:
        return "the command line's; " if key in flags else ""

    return ", ".join(
        f"{key} {shown(key, mine)} ({whose(key)}full recipe: {shown(key, full)})" for key, mine, full in changes
    )


def _profile_spec(
    data: dict[str, Any],
    profiles: dict[str, Any],
    name: str | None,
    source: str,
    datasets: Collection[str] | None,
    flags: tuple[str, ...] = (),
) -> TaskSpec:
    """The spec profile ``name`` gives (None: the base tables); an error names ``profiles.NAME.KEY`` when the
    profile sets the key, else the base key and the profile it broke."""
    if name is None:
        return _parse_tables(data, source, datasets, flags)
    try:
        return _parse_tables(_merge(data, profiles[name]), source, datasets, flags)
    except SpecError as e:
        text = str(e).removeprefix(f"{source}: ")
        key = re.match(r"[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*", text)
        if key and _sets(profiles[name], key.group().split(".")):
            raise SpecError(f"{source}: profiles.{name}.{text}") from None
        raise SpecError(f"{e} (with [profiles.{name}] applied)") from None


def _sets(table: Any, keys: list[str]) -> bool:
    """Whether the nested ``table`` holds the dotted key ``keys``."""
    for k in keys:
        if not isinstance(table, dict) or k not in table:
            return False
        table = table[k]
    return True


def _parse_tables(
    data: dict[str, Any], source: str, datasets: Collection[str] | None, flags: tuple[str, ...] = ()
) -> TaskSpec:
    """One spec from the document's tables (profiles already merged in)."""
    where = source
    top = {k: v for k, v in data.items() if k not in _SECTIONS and k not in ("transfer", "knobs")}
    _check_top_keys(top, where)
    kwargs, _ = _build(_TopLevel, top, where, at=f"{where}: ")
    if "knobs" in data:
        kwargs["knobs"] = _knobs(data["knobs"], f"{where}: knobs")
    for key, cls in _SECTIONS.items():
        if key not in data:
            if key in ("dataset", "model", "train"):
                raise SpecError(f"{where}: missing required table [{key}]")
            continue
        if cls is ModelSpec:
            kwargs[key] = _model(data[key], f"{where}: {key}")
        elif cls is DistributedSpec:
            kwargs[key] = _distributed(data[key], f"{where}: {key}", "distributed.workers" in flags)
        else:
            kwargs[key] = cls(**_build(cls, data[key], f"{where}: {key}")[0])
    transfer = data.get("transfer", [])
    if not isinstance(transfer, list):
        raise SpecError(f"{where}: transfer: expected an array of tables [[transfer]]")
    targets = []
    for i, t in enumerate(transfer):
        if not isinstance(t, dict):
            raise SpecError(f"{where}: transfer[{i}]: expected a table, got {_shown(t)}")
        tk, _ = _build(TransferSpec, {k: v for k, v in t.items() if k != "class_map"}, f"{where}: transfer[{i}]")
        cmap = t.get("class_map", {})
        if not isinstance(cmap, dict) or not cmap or not all(isinstance(v, str) for v in cmap.values()):
            raise SpecError(
                f"{where}: transfer[{i}].class_map: expected a non-empty table of target class = source class"
            )
        if len(set(cmap.values())) < len(cmap):
            raise SpecError(f"{where}: transfer[{i}].class_map: two target classes map to the same source class")
        targets.append(TransferSpec(class_map=tuple(cmap.items()), **tk))
    spec = TaskSpec(transfer=tuple(targets), source=source, flags=flags, **kwargs)
    _check_values(spec, where, datasets)
    return spec


@dataclass(frozen=True)
class _TopLevel:
    """The top-level keys of a task file (the sections are parsed separately)."""

    name: str
    description: str = ""
    seed: int = 0
    config: str = ""
    base: str = ""


def _check_top_keys(top: dict[str, Any], where: str) -> None:
    """An unknown top-level key (often a misspelt section, ``[trian]``): the message lists the sections too."""
    fields = [f.name for f in dataclasses.fields(_TopLevel)]
    for key in top:
        if key not in fields:
            known = ", ".join([*fields, *_SECTIONS, "transfer", "knobs", "profiles"])
            raise SpecError(f"{where}: {key}: unknown key (expected one of: {known})")


def _knobs(table: Any, where: str) -> tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]:
    """``[knobs.BACKEND]``: runtime fields per backend, checked as ``[runtime]`` is (the backend names are
    checked by the runner, which knows the registry). A ``to_dict`` list of pairs is accepted too."""
    if isinstance(table, (list, tuple)):
        table = {b: _pairs(v, f"{where}.{b}") for b, v in _pairs(table, where).items()}
    if not isinstance(table, dict):
        raise SpecError(f"{where}: expected a table of [knobs.BACKEND] tables, got {_shown(table)}")
    out = []
    for backend, fields in table.items():
        if not isinstance(backend, str) or NAME_PATTERN.fullmatch(backend) is None:
            raise SpecError(f"{where}: {backend!r} is not a backend name")
        if isinstance(fields, (list, tuple)):
            fields = _pairs(fields, f"{where}.{backend}")
        kwargs, _ = _build(RuntimeSpec, fields, f"{where}.{backend}")
        named = (
            dataclasses.replace(b, key=b.key.removeprefix("runtime.")) for b in _runtime_bounds(RuntimeSpec(**kwargs))
        )
        _first_broken(f"{where}.{backend}.", (b for b in named if b.key in kwargs))
        out.append((backend, tuple(sorted(kwargs.items()))))
    return tuple(sorted(out))


def _check_values(spec: TaskSpec, where: str, datasets: Collection[str] | None) -> None:
    """Range checks that types alone cannot express."""
    t, d, r = spec.train, spec.dataset, spec.runtime
    bounds = [
        Bound(
            "name",
            NAME_PATTERN.fullmatch(spec.name) is not None,
            "a short name of letters, digits, '-', '_', '.' (at most 64, not starting with '.' or '-')",
            spec.name,
        ),
        Bound("seed", 0 <= spec.seed <= MAX_SEED, f"an integer in 0..{MAX_SEED}", spec.seed),
        Bound(
            "config", not spec.config or NAME_PATTERN.fullmatch(spec.config) is not None, "a short label", spec.config
        ),
        Bound("base", not spec.base or NAME_PATTERN.fullmatch(spec.base) is not None, "a task name", spec.base),
        Bound("train.epochs", t.epochs >= 1, "an integer >= 1", t.epochs),
        Bound("train.batch_size", t.batch_size >= 1, "an integer >= 1", t.batch_size),
        Bound("train.lr", t.lr > 0, "a number > 0", t.lr),
        Bound("train.eps", t.eps > 0, "a number > 0", t.eps),
        Bound("train.target_acc", 0 <= t.target_acc <= 1, "a number in [0, 1]", t.target_acc),
        Bound("eval.batch_size", spec.eval.batch_size >= 1, "an integer >= 1", spec.eval.batch_size),
        *_train_bounds(t),
        *_optimizer_bounds(t),
        *_per_epoch_bounds(spec),
        Bound(
            "eval.batch_size", spec.eval.batch_size <= MAX_BATCH, f"an integer in 1..{MAX_BATCH}", spec.eval.batch_size
        ),
        Bound(
            "eval.equivalence_margin_pt",
            _finite(spec.eval.equivalence_margin_pt, 0, 100, low_open=True),
            "a number of percentage points in (0, 100]",
            spec.eval.equivalence_margin_pt,
        ),
        Bound("eval.reported_acc", 0 <= spec.eval.reported_acc <= 1, "a number in [0, 1]", spec.eval.reported_acc),
        *_explain_bounds(spec.explain),
        Bound("dataset.channels", d.channels in (0, 1, 3), "0 (native), 1 or 3", d.channels),
        Bound("dataset.image_size", d.image_size >= 0, "an integer >= 0", d.image_size),
        Bound("dataset.max_train", d.max_train >= 0, "an integer >= 0", d.max_train),
        Bound("dataset.max_test", d.max_test >= 0, "an integer >= 0", d.max_test),
        Bound("dataset.std", all(x > 0 for x in d.std), "positive numbers", d.std),
        *_dataset_bounds(d),
        Bound("dataset.mean", len(d.mean) == len(d.std), f"as many values as dataset.std ({len(d.std)})", d.mean),
        _channel_values(d, d.channels),
        Bound("runtime.threads", r.threads >= 0, "an integer >= 0", r.threads),
        Bound("runtime.device_data_mb", r.device_data_mb >= 0, "an integer >= 0", r.device_data_mb),
        *_decouple_bounds(spec.decouple),
        Bound("runtime.warmup_steps", r.warmup_steps >= 0, "an integer >= 0", r.warmup_steps),
        Bound("runtime.timed_steps", r.timed_steps >= 0, "an integer >= 0", r.timed_steps),
        *_runtime_bounds(r),
        Bound(
            "runtime.warmup_steps",
            not r.profile_ops or (r.warmup_steps >= 1 and r.timed_steps >= 1),
            "an integer >= 1 with runtime.profile_ops (the warm-up steps are the profiled ones; timed_steps >= 1)",
            r.warmup_steps,
        ),
        Bound(
            "train.loss",
            t.loss != "binary_cross_entropy" or len(d.classes) in (0, 2),
            f"cross_entropy with {len(d.classes)} classes (binary_cross_entropy needs exactly 2)",
            t.loss,
        ),
        Bound(
            "train.augment",
            all(a in AUGMENTATIONS for a in t.augment) and len(set(t.augment)) == len(t.augment),
            f"a list of distinct values from {list(AUGMENTATIONS)}",
            t.augment,
        ),
        *(
            Bound(f"transfer[{i}].reported_acc", 0 <= x.reported_acc <= 1, "a number in [0, 1]", x.reported_acc)
            for i, x in enumerate(spec.transfer)
        ),
    ]
    _first_broken(f"{where}: ", bounds)
    if "strong" in spec.distributed.mode and any(spec.train.batch_size % w for w in spec.distributed.workers):
        raise SpecError(f"{where}: train.batch_size: {_unsplit_batch(spec)}")
    arch = architecture(spec.model)
    # else the data's own size decides: checked before the run starts (bench.run.datacheck.check_images_fit)
    if arch.layers and spec.dataset.image_size:
        size = spec.dataset.image_size
        shape = (size, size, spec.dataset.channels or 1)  # the data's own channels: 1 at least (the fewest weights)
        try:
            infer_shapes(arch.layers, shape)
            check_params(arch.layers, shape, _least_outputs(spec))
        except LayerError as e:
            raise SpecError(f"{where}: {e}") from None
    if arch.zoo:  # what the spec fixes of the images; the data's own channels and size: check_fits_image
        size = spec.dataset.image_size
        _first_broken(f"{where}: ", _zoo_input(arch, (size, size, spec.dataset.channels)))
    if spec.explain.layer:
        _first_broken(f"{where}: ", [_explain_layer(spec.explain.layer, arch)])
    if spec.model.pretrained and not arch.pretrained:
        raise SpecError(f"{where}: model.pretrained: model {arch.id!r} has no ImageNet weights in the catalog")
    if spec.model.weights and not spec.model.pretrained:
        raise SpecError(f"{where}: model.weights: only used with model.pretrained = true")
    if spec.model.pretrained and not spec.model.weights and arch.id.startswith("zoo:"):
        raise SpecError(f"{where}: model.weights: {arch.id} takes pretrained weights from a local torch file only")
    if datasets is None:
        return
    for key, name in [("dataset.name", spec.dataset.name)] + [
        (f"transfer[{i}].dataset", t.dataset) for i, t in enumerate(spec.transfer)
    ]:
        if name not in datasets:
            raise SpecError(f"{where}: {key}: unknown dataset {name!r} (expected one of: {', '.join(datasets)})")


def _unsplit_batch(spec: TaskSpec) -> str:
    """Why strong scaling cannot split the batch, with the counts and the way out as the user gave them: the
    command line's options where it set the counts or the mode (it overrides the file), else the file's keys."""
    d = spec.distributed
    by_option = "distributed.workers" in spec.flags
    counts = (
        f"{OPTIONS['distributed.workers']} {','.join(map(str, d.workers))}"
        if by_option
        else f"{list(d.workers)} workers"
    )
    by_options = any(k.startswith("distributed.") for k in spec.flags)  # --workers or --scaling, not --epochs
    weak = f"{OPTIONS['distributed.mode']} weak" if by_options else 'mode = "weak"'
    return (
        f"strong scaling splits the global batch {spec.train.batch_size} into equal shares, which {counts} cannot "
        f"all do (a multiple of every worker count, or {weak})"
    )


def _distributed(table: Any, where: str, counts_given: bool = False) -> DistributedSpec:
    """[distributed]: ``mode`` may be one string or a list; workers distinct, >= 1; modes known. No counts is
    refused unless ``counts_given``: ``--workers`` gives them (its values replace the section's)."""
    if isinstance(table, dict) and isinstance(table.get("mode"), str):
        table = {**table, "mode": [table["mode"]]}
    d = DistributedSpec(**_build(DistributedSpec, table, where)[0])
    bounds = [
        Bound(
            "workers",
            all(w >= 1 for w in d.workers) and len(set(d.workers)) == len(d.workers),
            "distinct integers >= 1",
            list(d.workers),
        ),
        Bound(
            "mode",
            bool(d.mode) and all(m in SCALING_MODES for m in d.mode) and len(set(d.mode)) == len(d.mode),
            f"one of {list(SCALING_MODES)} or a list of them",
            list(d.mode),
        ),
        Bound("threads_per_worker", d.threads_per_worker >= 0, "an integer >= 0", d.threads_per_worker),
        Bound("timeout_s", d.timeout_s > 0, "a number of seconds > 0", d.timeout_s),
        *_distributed_bounds(d),
    ]
    _first_broken(f"{where}.", bounds)
    # every key of the section configures data-parallel rows: without counts it ran none, silently
    if not d.workers and not counts_given:
        given = "workers = []" if "workers" in table else "no workers key"
        raise SpecError(
            f"{where}.workers: expected worker counts such as [1, 2] (a [distributed] section asks for data-parallel "
            f"rows, one per count, which --workers may override; leave the section out for single-process rows), "
            f"got {given}"
        )
    return d


def _decouple_bounds(d: DecoupleSpec) -> list[Bound]:
    positive = ("n_estimators", "logreg_max_iter", "top_features", "top_images", "n_inputs")
    highest = {
        "n_estimators": MAX_TREES,
        "logreg_max_iter": MAX_ITER,
        "top_features": MAX_DRAWN,
        "top_images": MAX_DRAWN,
        "n_inputs": MAX_DRAWN,
    }
    return [
        Bound("decouple.max_train", d.max_train >= 0, "an integer >= 0", d.max_train),
        Bound("decouple.top_k", all(k >= 1 for k in d.top_k), "integers >= 1", d.top_k),
        *(Bound(f"decouple.{n}", getattr(d, n) >= 1, "an integer >= 1", getattr(d, n)) for n in positive),
        Bound("decouple.max_train", d.max_train <= MAX_SUBSET, f"an integer in 0..{MAX_SUBSET}", d.max_train),
        Bound("decouple.top_k", all(k <= MAX_FEATURES for k in d.top_k), f"integers in 1..{MAX_FEATURES}", d.top_k),
        *(
            Bound(f"decouple.{n}", getattr(d, n) <= top, f"an integer in 1..{top}", getattr(d, n))
            for n, top in highest.items()
        ),
        Bound(
            "decouple.random_state",
            0 <= d.random_state <= MAX_RANDOM_STATE,
            f"an integer in 0..{MAX_RANDOM_STATE}",
            d.random_state,
        ),
    ]


def _least_outputs(spec: TaskSpec) -> int:
    """The fewest outputs the model's head can have before the data's classes are known: one with a binary loss,
    else as many as ``dataset.classes`` names (1 where it names none), so ``check_params`` refuses only a list
    that is too large whatever the data."""
    return 1 if spec.train.loss == "binary_cross_entropy" else max(len(spec.dataset.classes), 1)


# The [train] settings that only one optimizer reads: under the other one they did nothing, silently (QA 2026-12-08:
# optimizer = "sgd" with beta1, "adam" with momentum)
OPTIMIZER_FIELDS = {"adam": ("beta1", "beta2", "eps"), "sgd": ("momentum",)}


def _optimizer_bounds(t: TrainSpec) -> list[Bound]:
    """A setting of the optimizer the task does not use, at another value than its default: refused. A setting left
    out holds its default, and so does a plan.json's (``to_dict`` gives every field), so only a value given is."""
    defaults = {f.name: f.default for f in dataclasses.fields(TrainSpec)}
    return [
        Bound(
            f"train.{name}",
            getattr(t, name) == defaults[name],
            f'no value (or its default {defaults[name]!r}) with optimizer = "{t.optimizer}": {name} is a setting of '
            f'optimizer = "{owner}", which "{t.optimizer}" ignores',
            getattr(t, name),
        )
        for owner, names in OPTIMIZER_FIELDS.items()
        if owner != t.optimizer
        for name in names
    ]


def _per_epoch_bounds(spec: TaskSpec) -> list[Bound]:
    """What reads every epoch's test accuracy, refused with ``eval.per_epoch = false``, which evaluates the last epoch
    only: the best epoch on the test split (the row's note called the last one "the best epoch chosen on the TEST
    split") and the time to a target accuracy (None where the last epoch had passed it: when an epoch first reached
    it is not known). Refused, not computed: neither can be without the evaluations the task turned off."""
    e, t = spec.eval, spec.train
    return [
        Bound(
            "eval.select",
            e.per_epoch or e.select != "best_test",
            "'last' with eval.per_epoch = false (the best epoch is chosen among evaluated epochs, and only the last "
            "one is evaluated)",
            e.select,
        ),
        Bound(
            "train.target_acc",
            e.per_epoch or not t.target_acc,
            "0 (none) with eval.per_epoch = false (the time to the target is the training time until an epoch's "
            "evaluation first reached it, and only the last epoch is evaluated)",
            t.target_acc,
        ),
    ]


def _finite(x: float, low: float, high: float, low_open: bool = False, high_open: bool = False) -> bool:
    """``x`` in the interval (NaN never is; infinities only where a bound is infinite)."""
    above = x > low if low_open else x >= low
    below = x < high if high_open else x <= high
    return math.isfinite(x) and above and below


def _train_bounds(t: TrainSpec) -> list[Bound]:
    """What [train] may hold beyond its types: NaN or inf anywhere was noticed only as divergence, or as
    torch's own message; epochs and batch are capped (see MAX_EPOCHS, MAX_BATCH)."""
    return [
        Bound("train.epochs", t.epochs <= MAX_EPOCHS, f"an integer in 1..{MAX_EPOCHS}", t.epochs),
        Bound(
            "train.batch_size",
            t.batch_size <= MAX_BATCH,
            f"an integer in 1..{MAX_BATCH} (and at most the training images)",
            t.batch_size,
        ),
        Bound("train.lr", math.isfinite(t.lr), "a finite number > 0", t.lr),
        Bound("train.lr", t.lr <= MAX_LR, f"a number in (0, {MAX_LR:g}]", t.lr),
        Bound("train.beta1", _finite(t.beta1, 0, 1, high_open=True), "a number in [0, 1)", t.beta1),
        Bound("train.beta2", _finite(t.beta2, 0, 1, high_open=True), "a number in [0, 1)", t.beta2),
        Bound("train.eps", _finite(t.eps, 0, 1, low_open=True), "a number in (0, 1]", t.eps),
        Bound("train.momentum", _finite(t.momentum, 0, 1, high_open=True), "a number in [0, 1)", t.momentum),
        Bound("train.weight_decay", _finite(t.weight_decay, 0, 1), "a number in [0, 1]", t.weight_decay),
    ]


def _explain_layer(layer: str, arch: Architecture) -> Bound:
    """``explain.layer`` against the layers every backend names alike, so it is refused at load, not after
    other rows trained: a layer list's map layers (bench.core.layers), or a big model's ``last_conv``. Each
    library names a big model's other layers its own way (torchvision's ``layer4`` is inside the torch build's
    ``net``, Keras's ``conv5_block3_out`` is no torch name): any other name fails in at least one backend."""
    if arch.layers:
        maps = map_layers(arch.layers)
        expected = f"a layer of {arch.id!r} with a map for Grad-CAM to read (one of: {', '.join(maps)})"
        return Bound("explain.layer", layer in maps, expected, layer)
    expected = (
        f"{arch.last_conv!r}, the map of {arch.id!r} that every backend names alike (each library names its "
        "other layers its own way)"
    )
    return Bound("explain.layer", layer == arch.last_conv, expected, layer)


def _zoo_input(arch: Architecture, shape: tuple[int, int, int], shown: bool = False) -> list[Bound]:
    """A big model's images of ``shape`` (H, W, C; 0 where the data's own decides, which passes): RGB, square, at
    least the row's minimum side, by the rule its builds check (``bench.core.zoo.input_fits``). ``shown``: name the
    shape."""
    h, w, c = shape
    row = zoo_entry(arch.zoo)
    rgb, square, big = input_fits(row, shape)
    said = f" (the images are {h}x{w}x{c})" if shown else ""
    return [
        Bound("dataset.channels", rgb, f"3: {arch.id} takes RGB images{said}", c),
        Bound("dataset.image_size", square, f"a size: {arch.id} takes square images{said}", 0),
        Bound("dataset.image_size", big, f"at least {row.min_size}: the smallest side {arch.id} takes{said}", h),
    ]


def _explain_bounds(e: ExplainSpec) -> list[Bound]:
    return [
        Bound("explain.n_images", 1 <= e.n_images <= MAX_DRAWN, f"an integer in 1..{MAX_DRAWN}", e.n_images),
        Bound("explain.batch_size", 1 <= e.batch_size <= MAX_BATCH, f"an integer in 1..{MAX_BATCH}", e.batch_size),
    ]


def _channel_values(d: DatasetSpec, channels: int, shown: str = "") -> Bound:
    """``dataset.mean`` (and std, as many) holds one value per channel of the images (``PixelNorm``): ``channels``,
    or 1 or 3 where the data's own decide (0). ``shown``: the images' shape, for the message."""
    fits = len(d.mean) in ((channels,) if channels else (1, 3))
    said = f" (the images are {shown})" if shown else ""
    per = (
        f"{channels} value{'s' * (channels > 1)}, one per channel{said}"
        if channels
        else "1 or 3 values, one per channel"
    )
    return Bound("dataset.mean", not d.mean or fits, per, d.mean)


def _dataset_bounds(d: DatasetSpec) -> list[Bound]:
    return [
        Bound("dataset.image_size", d.image_size <= MAX_IMAGE_SIZE, f"an integer in 0..{MAX_IMAGE_SIZE}", d.image_size),
        Bound("dataset.max_train", d.max_train <= MAX_SUBSET, f"an integer in 0..{MAX_SUBSET}", d.max_train),
        Bound("dataset.max_test", d.max_test <= MAX_SUBSET, f"an integer in 0..{MAX_SUBSET}", d.max_test),
        Bound("dataset.std", all(math.isfinite(x) for x in d.std), "finite positive numbers", d.std),
        Bound("dataset.mean", all(math.isfinite(m) for m in d.mean), "finite numbers", d.mean),
        # one class trains a model that cannot be wrong; a repeat left an output no image is labelled with
        Bound(
            "dataset.classes",
            not d.classes or (len(d.classes) >= 2 and len(set(d.classes)) == len(d.classes)),
            "at least 2 distinct class names (or none: all classes)",
            list(d.classes),
        ),
    ]


def _runtime_bounds(r: RuntimeSpec) -> list[Bound]:
    return [
        Bound("runtime.threads", r.threads <= MAX_THREADS, f"an integer in 0..{MAX_THREADS}", r.threads),
        Bound(
            "runtime.device_data_mb",
            r.device_data_mb <= MAX_DEVICE_DATA_MB,
            f"an integer in 0..{MAX_DEVICE_DATA_MB}",
            r.device_data_mb,
        ),
        Bound("runtime.warmup_steps", r.warmup_steps <= MAX_STEPS, f"an integer in 0..{MAX_STEPS}", r.warmup_steps),
        Bound("runtime.timed_steps", r.timed_steps <= MAX_STEPS, f"an integer in 0..{MAX_STEPS}", r.timed_steps),
        Bound(
            "runtime.steps_per_execution",
            1 <= r.steps_per_execution <= 1024,
            "an integer in 1..1024",
            r.steps_per_execution,
        ),
        Bound(
            "runtime.slurm_time_min",
            0 <= r.slurm_time_min <= MAX_SLURM_MIN,
            f"an integer in 0..{MAX_SLURM_MIN}",
            r.slurm_time_min,
        ),
        Bound(
            "runtime.slurm_partition", bool(SLURM_NAME.fullmatch(r.slurm_partition)), SLURM_NAME_RULE, r.slurm_partition
        ),
        Bound("runtime.slurm_account", bool(SLURM_NAME.fullmatch(r.slurm_account)), SLURM_NAME_RULE, r.slurm_account),
    ]


SLURM_NAME_RULE = "at most 200 letters, digits and _ . , -"


def _distributed_bounds(d: DistributedSpec) -> list[Bound]:
    """Caps that hold on any machine; the run caps workers again by this machine's cores or GPUs."""
    return [
        Bound(
            "workers",
            all(w <= MAX_WORKERS for w in d.workers),
            f"integers in 1..{MAX_WORKERS} (one rank process each)",
            list(d.workers),
        ),
        Bound(
            "threads_per_worker",
            d.threads_per_worker <= MAX_THREADS,
            f"an integer in 0..{MAX_THREADS}",
            d.threads_per_worker,
        ),
        Bound(
            "timeout_s",
            _finite(d.timeout_s, 0, MAX_TIMEOUT_S, low_open=True),
            f"a finite number of seconds in (0, {MAX_TIMEOUT_S:g}]",
            d.timeout_s,
        ),
    ]


def check_fits_data(spec: TaskSpec, n_train: int, image_shape: tuple[int, int, int] | None = None) -> None:
    """SpecError unless a batch fits the training images, each weak-scaling worker gets one (``shard_order`` gives a
    rank every ``workers``-th image: with fewer images than workers a rank had none) and a layer list fits their
    shape: with the data's own size (``dataset.image_size = 0``) these are known only once the data is loaded.
    Strong scaling needs no such check: its global batch, at most the images, splits into the counts."""
    if spec.train.batch_size > n_train:
        capped = "dataset.max_train" in spec.flags and spec.dataset.max_train == n_train  # the option's number
        given = f" {OPTIONS['dataset.max_train']} {n_train} leaves" if capped else ""
        raise SpecError(
            f"{spec.source}: train.batch_size: {spec.train.batch_size} is more than the {n_train} "
            f"training images{given} (a batch is at most the training set)"
        )
    d = spec.distributed
    if "weak" in d.mode and d.workers and max(d.workers) > n_train:
        raise SpecError(
            f"{spec.named('distributed.workers')}: weak scaling shares the {n_train} training images of task "
            f"{spec.name} between the workers, and {max(d.workers)} workers would leave a rank none (at most "
            f"{n_train} workers)"
        )
    if image_shape is not None:
        check_fits_image(spec, image_shape)


def check_fits_image(spec: TaskSpec, image_shape: tuple[int, int, int]) -> None:
    """SpecError unless the task takes images of ``image_shape`` (H, W, C): dataset.mean/std a value per channel,
    a layer list their shape, a big model (a zoo row's builds) their channels and size. Checked before a run starts
    where the shape is known without loading the data (a dataset file's header, an embedded default:
    bench.run.datacheck.check_images_fit), and again once the data is loaded; found by a backend instead, each
    failed every row."""
    arch = architecture(spec.model)
    h, w, c = image_shape
    _first_broken(f"{spec.source}: ", [_channel_values(spec.dataset, c, f"{h}x{w}x{c}")])
    if arch.zoo:
        _first_broken(f"{spec.source}: ", _zoo_input(arch, image_shape, shown=True))
    if arch.layers:
        try:
            infer_shapes(arch.layers, image_shape)
            check_params(arch.layers, image_shape, _least_outputs(spec))
        except LayerError as e:
            h, w, c = image_shape
            raise SpecError(f"{spec.source}: {e} (the images are {h}x{w}x{c})") from None


def builtin_tasks() -> dict[str, Path]:
    """Built-in task name -> TOML path, in a stable order."""
    return {p.stem: p for p in sorted(TASKS_DIR.glob("*.toml"))}


def load_task(
    name_or_path: str | Path,
    profile: str | None = None,
    datasets: Collection[str] | None = None,
    flags: tuple[str, ...] = (),
) -> TaskSpec:
    """Load a built-in task by name, or a user's TOML file by path. ``flags``: the keys the command line sets
    (``TaskSpec.flags``): a [distributed] section without workers is taken when ``--workers`` gives them."""
    builtin = builtin_tasks()
    path = builtin.get(str(name_or_path), Path(name_or_path))
    try:
        raw = _task_bytes(path, builtin)
    except OSError as e:
        raise SpecError(f"{path}: cannot be read: {e.strerror or e}") from None
    # A UTF-8 byte-order mark (Notepad and other Windows editors write one) is no TOML statement: tomllib took it for
    # one ("Invalid statement (at line 1, column 1)"); it says nothing a UTF-8 file needs, so it is skipped
    bom = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    try:
        data = tomllib.loads(raw[bom:].decode("utf-8"))
    except UnicodeDecodeError as e:
        raise SpecError(f"{path}: not UTF-8 text (byte {bom + e.start}: {e.reason}); TOML files are UTF-8") from None
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{path}: not valid TOML: {e}") from None
    except ValueError as e:  # an integer over Python's 4,300-digit limit: int() refuses it inside tomllib
        raise SpecError(f"{path}: not valid TOML: {str(e).split(';')[0]}") from None
    except RecursionError:  # tomllib recurses per level: ~500 nested arrays or tables exhaust Python's stack
        raise SpecError(
            f"{path}: not valid TOML: nested too deeply (arrays or tables hundreds of levels deep)"
        ) from None
    return parse_task(data, source=str(path), profile=profile, datasets=datasets, flags=flags, folder=path.parent)


def _task_bytes(path: Path, builtin: dict[str, Path]) -> bytes:
    """The file's bytes, after ``stat`` says it is a regular file of a task file's size: a FIFO would block
    the open and a 64 GB file the read (MemoryError); the open is non-blocking too, the read bounded."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise SpecError(f"{path}: no such task or file (built-in tasks: {', '.join(builtin)})") from None
    if not stat.S_ISREG(st.st_mode):
        raise SpecError(f"{path}: not a regular file (a task file is a TOML file)")
    if st.st_size > MAX_TASK_BYTES:
        raise SpecError(f"{path}: {st.st_size:,} bytes is too large for a task file (at most {MAX_TASK_BYTES:,})")
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO swapped in since the stat
    with os.fdopen(fd, "rb") as f:
        data = f.read(MAX_TASK_BYTES + 1)
    if len(data) > MAX_TASK_BYTES:  # grew since the stat
        raise SpecError(f"{path}: too large for a task file (more than {MAX_TASK_BYTES:,} bytes)")
    return data


def _pairs(value: Any, where: str) -> dict[str, Any]:
    """A ``to_dict`` list of (key, value) pairs back to a table."""
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(p, (list, tuple)) and len(p) == 2 and isinstance(p[0], str) for p in value
    ):
        raise SpecError(f"{where}: expected a list of [name, value] pairs, got {_shown(value)}")
    return dict(value)


def spec_from_dict(d: Any, datasets: Collection[str] | None = None) -> TaskSpec:
    """Rebuild a TaskSpec from ``TaskSpec.to_dict()`` (how the runner hands it to a worker and keeps the plan).

    The dict goes through the same validation as a TOML file (a plan.json may have been edited since), so a
    malformed one is a SpecError, never a KeyError or TypeError. ``datasets`` as for ``parse_task``.
    """
    if not isinstance(d, dict):
        raise SpecError(f"<job>: expected a task table, got {type(d).__name__}")
    source, profile = d.get("source", "<job>"), d.get("profile", "")
    if not isinstance(source, str) or not isinstance(profile, str) or profile not in ("", *PROFILES):
        raise SpecError(f"<job>: source and profile must be strings, got {source!r}, {profile!r}")
    data = {k: v for k, v in d.items() if k not in ("source", "profile", "profile_changes", "flags")}
    flags = d.get("flags", [])  # a plan.json from before 2026-12-06 has none: its counts are named as file keys
    if (
        not isinstance(flags, (list, tuple))
        or not all(isinstance(f, str) and f in OPTIONS for f in flags)
        or len(set(flags)) < len(flags)
    ):
        raise SpecError(
            f"{source}: flags: expected a list of distinct keys out of {list(OPTIONS)}, got {_shown(flags)}"
        )
    changes = d.get("profile_changes", [])
    if not isinstance(changes, (list, tuple)) or not all(
        isinstance(c, (list, tuple)) and len(c) == 3 and c[0] in RECIPE_KEYS for c in changes
    ):
        raise SpecError(
            f"{source}: profile_changes: expected a list of [recipe key, value, full value], got {_shown(changes)}"
        )
    dist = data.get("distributed")
    if isinstance(dist, dict) and dist.get("workers") in ((), []):  # to_dict of a single-process task
        del data["distributed"]
    if isinstance(data.get("model"), dict):
        model = dict(data["model"])
        options = _pairs(model.pop("options", []), f"{source}: model.options")
        if set(options) & set(model):
            raise SpecError(f"{source}: model.options: repeats a model key ({', '.join(set(options) & set(model))})")
        if model.get("layers") in ((), []):  # to_dict of a model without a list
            del model["layers"]
        elif isinstance(model.get("layers"), (list, tuple)):
            model["layers"] = [_pairs(t, f"{source}: model.layers[{i}]") for i, t in enumerate(model["layers"])]
        data["model"] = {**model, **options}
    if isinstance(data.get("transfer"), (list, tuple)):
        data["transfer"] = [
            {**t, "class_map": _pairs(t.get("class_map", []), f"{source}: transfer[{i}].class_map")}
            if isinstance(t, dict)
            else t
            for i, t in enumerate(data["transfer"])
        ]
    spec = parse_task(data, source=source, datasets=datasets, flags=tuple(flags))
    return dataclasses.replace(
        spec, profile=profile, profile_changes=tuple((k, _frozen(a), _frozen(b)) for k, a, b in changes)
    )


def _frozen(v: Any) -> Any:
    """A JSON value with its lists as tuples again (as the spec's dataclasses hold them)."""
    return tuple(_frozen(x) for x in v) if isinstance(v, (list, tuple)) else v
