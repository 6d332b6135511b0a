"""Keras 3 on its three engines (TensorFlow, JAX, torch): one model and training code, small engine adapters.

Framework-free on purpose: the runner's parent process imports this description (names,
packages, ``KERAS_BACKEND``) and never Keras itself. Layout: ``backend`` (the Backend, engine-
free), ``registry`` + ``models`` (the catalog's builders), ``input`` (uint8 host images,
augmentation, the batches of the JAX and torch engines), ``perf`` (FLOP count, matmul),
``engine_tf`` / ``engine_jax`` / ``engine_torch`` (what differs per engine).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.core.backend import (
    PER_RANK_DROPOUT,
    PER_WORKER_BATCHNORM,
    BackendInfo,
    CompileCache,
    DataParallelBatchNorm,
    PretrainedLookup,
)
from bench.core.cpus import usable_cores
from bench.core.knobs import Knob, cpu_threads, knob, value
from bench.core.zoo import WeightsSource, ZooEntry

_COMMON = (
    "keras: Adam epsilon is added before bias correction (torch: after)",
    "keras: normalisation and augmentation are the training model's first layers, float32, inside the train step "
    "(Keras's placement for GPUs); its input path is a uint8 gather (torch: normalise + augment on the device "
    "before the step, in its input path)",
)


# How each engine runs fit's train step, from the spec's runtime.jit_compile (see engine_*.jit_compile).
COMPILED: dict[str, Callable[[bool], str]] = {
    "tensorflow": lambda jit: "tf.function + XLA (jit_compile)" if jit else "tf.function (no XLA)",
    "jax": lambda jit: "jax.jit (XLA)",  # always: without it JAX runs op by op
    "torch": lambda jit: "torch.compile (jit_compile)" if jit else "eager",
}


def knob_columns(engine: str) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """Keras's knob columns: the engine's compiler, TF32, steps per execution (NHWC throughout: no channels_last;
    no cudnn.benchmark, no fused optimiser: those columns stay empty in its rows)."""

    def columns(knobs: dict[str, Any], spec: Any) -> dict[str, Any]:
        return {
            "compiled": COMPILED[engine](spec.runtime.jit_compile),
            "tf32": str(knobs.get("tf32")),
            "steps_per_execution": spec.runtime.steps_per_execution,
        }

    return columns


# What `bench tune` searches, per engine. steps_per_execution: optimiser steps per compiled call of fit
# (1 calls back to Python after every step). XLA: TF's jit_compile, always on under JAX (nothing to
# search), torch.compile on the torch engine. TF32 is on by default in TF and JAX on GPUs. threads (CPU only), as
# each engine applies runtime.threads in its fresh worker before the framework's first op: TensorFlow's intra- and
# inter-op pools, the cores the JAX process may run on (XLA's pool ignores thread flags: bench.core.cpus), torch's
# set_num_threads.
_PRECISION = knob(
    "precision",
    value("fp32"),
    value("bf16", ("bf16",), precision="mixed_bf16"),
    value("fp16", ("fp16",), precision="mixed_fp16"),
)
_SPE = knob("steps_per_execution", value("1"), value("8", steps_per_execution=8), value("32", steps_per_execution=32))
_THREADS = cpu_threads(usable_cores())
KNOB_SPACES: dict[str, tuple[Knob, ...]] = {
    "tensorflow": (knob("xla", value("off"), value("on", jit_compile=True)), _PRECISION, _SPE,
                   knob("tf32", value("on"), value("off", ("cuda",), tf32="off")), _THREADS),
    "jax": (_PRECISION, _SPE, knob("tf32", value("on"), value("off", ("cuda",), tf32="off")), _THREADS),
    # no steps_per_execution: Keras 3.15's torch trainer refuses any value but 1 (ValueError in fit; 8 of
    # 12 configurations of the 2026-12-02 reference tune failed on it)
    "torch": (knob("compile", value("off"), value("on", ("compiler",), jit_compile=True)), _PRECISION, _THREADS),
}  # fmt: skip


# Each engine's compiler cache between processes: JAX keeps none unless $JAX_COMPILATION_CACHE_DIR names one;
# torch.compile's inductor keeps one in /tmp by default; TensorFlow's XLA keeps none.
COMPILE_CACHES = {
    "jax": CompileCache("JAX_COMPILATION_CACHE_DIR"),
    "torch": CompileCache("TORCHINDUCTOR_CACHE_DIR", on_when_unset=True),
}

# What chooses each engine's CPU kernels: TensorFlow's oneDNN ops (on by default on x86 Linux; off with
# TF_ENABLE_ONEDNN_OPTS=0) and their instruction-set cap, and XLA's flags (--xla_cpu_max_isa); torch as the
# torch backend (ATen's kernels, oneDNN's convolutions)
_ONEDNN = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
KERNEL_VARIABLES = {
    "tensorflow": ("TF_ENABLE_ONEDNN_OPTS", *_ONEDNN, "XLA_FLAGS"),
    "jax": ("XLA_FLAGS",),
    "torch": ("ATEN_CPU_CAPABILITY", *_ONEDNN),
}

# Keras engine -> its data-parallel session's module (backends.keras.distributed imports it); the others have none
DATA_PARALLEL_SESSIONS = {"tensorflow": "dist_tf", "jax": "dist_jax"}


def backend_name(engine: str) -> str:
    """The backend id of Keras on ``engine`` (what --backend takes): keras is TensorFlow's."""
    return "keras" if engine == "tensorflow" else f"keras-{engine}"


# BatchNorm under each engine's data-parallel training, as measured (2026-12-06, a quick 2-worker row of
# bench/tasks/examples/mnist-lenet5-seed-variant.toml; docs/distributed.md): TensorFlow's
# MultiWorkerMirroredStrategy leaves each worker its own moving statistics (spread 0.318, trainable weights equal);
# on JAX the model is one SPMD program over the global batch, whose mean XLA takes across the shards: the moving
# statistics are one copy, equal on every rank, and the 2-device batch statistics are the 1-device ones to float
# rounding (a batch whose halves differ by 5 in mean)
DP_BATCHNORM = {
    "tensorflow": DataParallelBatchNorm(
        running_stats="each worker updates its own from its share of the batch, and MultiWorkerMirroredStrategy "
        "does not make them agree"
    ),
    "jax": DataParallelBatchNorm(global_batch=True),
}
# Keras on JAX: one SPMD program over the global batch, so dropout draws one mask over it from the replicated seed
# state, the 1-worker row's mask (measured: 2 devices' masks are 1 device's, step by step, same seed, in one process
# and in 2 jax.distributed processes each feeding its half of the batch: tests/test_distributed_keras.py); the global
# batch holds 1 worker's images reordered (each rank's shard in turn: every W-th image), so most meet another draw
DP_DROPOUT = {
    "jax": "dropout draws one mask over the global batch, as 1 worker does, but on its images in another order, "
    "each rank's shard in turn, so an image meets another draw unless each rank's batch is one image",
}


def no_data_parallel(engine: str) -> str:
    """Why Keras on ``engine`` cannot train data-parallel rows; "" where it can. Names the backends that can as
    --backend takes them (the engines' names are not backend ids)."""
    if engine in DATA_PARALLEL_SESSIONS:
        return ""
    return (
        f"Keras on {engine} has no data-parallel engine (keras.distribution is JAX-only, tf.distribute "
        f"TensorFlow-only): run data-parallel rows with --backend "
        f"{','.join(backend_name(e) for e in DATA_PARALLEL_SESSIONS)}"
    )


# Where the workers find a big model's published ImageNet weights, said without importing Keras: the runner's
# parent refuses a run no row could get weights for (bench.run.weightscheck). keras.applications downloads with
# keras.utils.get_file, which first returns its cache's copy.
def keras_home() -> Path:
    """``keras.config``'s home as Keras sets it at import: ``$KERAS_HOME``, else ``~/.keras`` (``/tmp/.keras``
    where the home folder is not writable)."""
    if "KERAS_HOME" in os.environ:
        return Path(os.environ["KERAS_HOME"])
    base = os.path.expanduser("~")
    return Path(base if os.access(base, os.W_OK) else "/tmp") / ".keras"


def published(row: ZooEntry) -> WeightsSource | None:
    return row.keras_weights


def models_dir() -> Path:
    """``get_file``'s folder for keras.applications' files: ``<home>/models``, under ``/tmp/.keras`` where the home
    exists and is not writable (a home Keras has yet to make holds nothing, and Keras makes it at import)."""
    base = keras_home().expanduser()
    if base.is_dir() and not os.access(base, os.W_OK):
        base = Path("/tmp/.keras")
    return base / "models"


def cached(source: WeightsSource) -> Path | None:
    """``get_file``'s cache file: ``models_dir()/<file>``."""
    path = models_dir() / source.file
    return path if path.is_file() else None


def origin(source: WeightsSource) -> str:
    """The URL ``keras.applications`` requests (the zoo table's row holds its folder)."""
    return source.url + source.file


PUBLISHED = PretrainedLookup(published, cached, origin)


# JAX where the engine is not JAX: Keras 3.15 imports it at its own import wherever it is installed (its orbax
# checkpoint callback patches jax.monitoring), and so does TensorFlow (TFLite's JAX entry), each going on without it
# when it is not. In a Keras/TF or Keras/torch row that was JAX's ~320 modules, 35-48 MB of a tiny MNIST row's peak
# host RSS (2026-12-06, the 2-core AMD VM), which no other backend's row holds; nothing of theirs calls JAX.
KEPT_OUT = {"tensorflow": ("jax", "jaxlib"), "torch": ("jax", "jaxlib")}


# How each engine's ranks join on several machines (bench.core.backend.BackendInfo.dist_launch); torch's has no
# data-parallel engine (``no_data_parallel``)
DIST_LAUNCH = {"tensorflow": "tf_config", "jax": "jax"}


def _info(
    name: str, engine: str, requires: tuple[str, ...], display: str, default: bool, notes: tuple[str, ...]
) -> BackendInfo:
    return BackendInfo(
        name=name,
        module="backends.keras.backend",
        framework=f"keras-{engine}",
        requires=requires,
        env=(("KERAS_BACKEND", engine),),
        kept_out=KEPT_OUT.get(engine, ()),
        display=display,
        default=default,
        flop_counter="keras layer walk (conv/dense multiply-adds x2, as torch's counter) forward x3",
        known_differences=_COMMON + notes,
        knob_columns=knob_columns(engine),
        knob_space=KNOB_SPACES[engine],
        no_data_parallel=no_data_parallel(engine),
        dist_launch=DIST_LAUNCH.get(engine, "plain"),
        dp_batchnorm=DP_BATCHNORM.get(engine, PER_WORKER_BATCHNORM),
        dp_dropout=DP_DROPOUT.get(engine, PER_RANK_DROPOUT),
        compile_cache=COMPILE_CACHES.get(engine, CompileCache()),
        kernel_variables=KERNEL_VARIABLES[engine],
        pretrained=PUBLISHED,
    )


# Keras's torch engine's ops.moments (keras/src/backend/torch/nn.py, "faster but less numerically stable"); on
# TensorFlow and JAX, as in torch, the batch variance is the mean of squared deviations. The training-parity
# check aligns it (bn_two_pass_var, docs/methodology.md); a row trains as Keras ships it, so its notes say it.
ONE_PASS_VARIANCE = (
    "keras-torch: a BatchNorm layer's batch variance in training is E[x^2] - E[x]^2, in one pass (torch, and Keras on "
    "TensorFlow and JAX: the mean of squared deviations): in float32 it loses digits where a channel's mean is "
    "large against its spread (MobileNetV3-small's first Adam step moved up to 2 x lr from the other engines')"
)


DESCRIPTIONS: tuple[BackendInfo, ...] = (
    _info("keras", "tensorflow", ("tensorflow", "keras"), "Keras (TF)", True, (
        "keras: model.fit reads uint8 host batches through a tf.data gather, prefetched "
        "(torch: uint8 split on the device, or streamed when over runtime.device_data_mb)",
        "keras: tf.data autotuning off (on, its thread stalls the end of some fit calls by ~0.85 s, docs/timing.md)",
    )),
    _info("keras-jax", "jax", ("jax", "keras"), "Keras (JAX)", False, (
        "keras-jax: model.fit reads uint8 host batches from a keras.utils.PyDataset (gathered in the training "
        "thread, no prefetch); train step under jax.jit (XLA) whatever jit_compile",
        "keras-jax: op profiler is TensorFlow engine only",
        "keras-jax: building the model and its optimizer runs each initialiser and zero fill as an XLA program "
        "compiled for its shape (LeNet-5 with Adam: 18), before the first step: in model build (s)",
    )),
    _info("keras-torch", "torch", ("torch", "keras"), "Keras (torch)", False, (
        "keras-torch: model.fit reads uint8 host batches from a keras.utils.PyDataset (gathered in the training "
        "thread, no prefetch); eager torch unless jit_compile (torch.compile)",
        "keras-torch: op profiler is TensorFlow engine only",
        ONE_PASS_VARIANCE,
    )),
)  # fmt: skip
