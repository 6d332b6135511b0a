"""What a backend is to the rest of the suite: its roles (Protocols) and its description.

A backend does framework work only, numpy in and out: it builds catalog models, trains
one epoch over an order the runner chooses, predicts, hands over layer activations and
gradients, and reports what the framework knows about itself. It computes no metric and
reads no clock: timing, accuracy and everything compared lives in ``bench``, once.

The contract is split into the roles the callers actually use: the worker trains with a
``Trainer``; the explain and decouple phases look inside with ``Introspection``; the MFU
columns and the op profile use ``Measurement``; the training-parity check uses ``Parity``. A backend
class implements all four
(``Backend``). Training state is the one object ``compile`` returns: whatever a backend
keeps between calls for a model (optimizer, augmenter, traced functions) lives in it.

``BackendInfo`` is a backend's description, framework-free, so the runner parent reads it
without importing a framework: each backend folder exports its descriptions
(``DESCRIPTIONS``) and ``backends/__init__.py`` collects them into the one registry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bench.core.knobs import Knob
from bench.core.preprocess import PixelNorm
from bench.core.spec import ModelSpec, RuntimeSpec, TaskSpec, TrainSpec
from bench.core.zoo import WeightsSource, ZooEntry

KnobColumns = Callable[[dict[str, Any], TaskSpec], dict[str, Any]]


@dataclass(frozen=True)
class CompileCache:
    """Where a backend's compiler keeps compiled programs between processes (bench.measure.compile_cache)."""

    variable: str = ""  # the environment variable naming the folder ("" when its compiler keeps none)
    on_when_unset: bool = False  # whether it keeps one in a default folder when the variable is unset


@dataclass(frozen=True)
class PretrainedLookup:
    """How a backend's worker gets a catalog big model's published ImageNet weights (``--pretrained`` without
    ``model.weights``): ``$BENCH_WEIGHTS_DIR/<file>`` (``zoo.in_weights_dir``), else its library's download,
    which returns the library cache's copy first. Said without importing the framework, so `bench run` refuses
    weights no row could get before any worker starts (``bench.run.weightscheck``)."""

    published: Callable[[ZooEntry], WeightsSource | None]  # the zoo row's weights this backend loads
    cached: Callable[[WeightsSource], Path | None]  # the library cache's copy its download returns (None: none)
    # the URL its download requests; LookupError saying why where it cannot download at all
    origin: Callable[[WeightsSource], str]


@dataclass(frozen=True)
class DataParallelBatchNorm:
    """How a backend's data-parallel engine treats BatchNorm (docs/distributed.md; measured on the seed-variant
    example, 2026-12-06): which batch its statistics are taken over, and why each rank's running statistics are its
    own after training. Said in a 2-worker row's notes, which read the same words for every engine before (a Keras/TF
    row's named torch DDP's broadcast)."""

    # True: the statistics are the global batch's, as the 1-worker row's (Keras on JAX: XLA's mean over the sharded
    # batch, a SyncBatchNorm); False: each worker normalises its own share of the batch
    global_batch: bool = False
    running_stats: str = ""  # why each rank's running statistics differ after training ("" where they cannot)


PER_WORKER_BATCHNORM = DataParallelBatchNorm()  # each worker's share, no reason given: a backend that says nothing
# Dropout under data-parallel training, as a strong-scaling row's accuracy note says it: each rank draws its own masks
# (torch DDP, tf.distribute), so its images meet other draws than in the 1-worker row; a backend that says nothing
PER_RANK_DROPOUT = "dropout draws differ per rank"


@dataclass(frozen=True)
class BackendInfo:
    """One registered backend, as the runner, the worker and the report need to know it."""

    name: str  # registry name, the record's ``backend`` column: "torch", "keras", "keras-jax", ...
    module: str  # importable module holding ``class Backend``
    framework: str  # the record's ``framework`` column: "pytorch", "keras-tensorflow", ...
    requires: tuple[str, ...]  # top-level packages it needs (found with importlib.util.find_spec, not imported)
    env: tuple[tuple[str, str], ...] = ()  # set in os.environ before ``module`` is imported (e.g. KERAS_BACKEND)
    # Top-level packages its framework imports only because they are installed, for another backend, and never
    # uses in this one: ``backends.load_backend`` keeps them out of the process (the ImportError the framework
    # expects where they are not installed), so its rows' import time and peak host RSS are its own framework's.
    kept_out: tuple[str, ...] = ()
    display: str = ""  # short label for tables and plots ("PyTorch", "Keras (TF)"); the name when empty
    default: bool = False  # in the default backend set of ``run`` / ``all``
    flop_counter: str = ""  # one line: how ``forward_flops`` counts (the record's ``flops_source``)
    known_differences: tuple[str, ...] = ()  # notes every row of this backend carries
    knob_columns: KnobColumns | None = None  # (knobs, spec) -> record columns; None: the common ones only
    knob_space: tuple[Knob, ...] = ()  # what `bench tune` searches (bench.core.knobs); values[0] = out of the box
    # The training-parity check's reference (bench.run.parity): its export layout is the one every backend
    # converts to, its seeded init is where every backend starts, and it runs the one-ulp floor. One backend.
    parity_reference: bool = False
    # Why this backend cannot train data-parallel rows ("" when it can): the runner skips them with this reason
    # before starting any rank (each rank would import the framework only to find it out).
    no_data_parallel: str = ""
    # How its ranks join a data-parallel row on several machines, as `bench distributed-launch` prints it
    # (bench.run.dist_launch): "torchrun" (c10d rendezvous), "tf_config" (TF_CONFIG, MultiWorkerMirroredStrategy),
    # "jax" (jax.distributed's coordinator at the first address), "plain" (the worker line and BENCH_DIST_* alone)
    dist_launch: str = "plain"
    dp_batchnorm: DataParallelBatchNorm = PER_WORKER_BATCHNORM  # BatchNorm under its data-parallel engine
    dp_dropout: str = PER_RANK_DROPOUT  # dropout under it: what differs from 1 worker's draws (docs/distributed.md)
    # Its compiler's persistent cache: a row that would read the default one gets an empty one of its own, so its
    # compile time is a first run's; one the user names is kept and recorded (bench.measure.compile_cache).
    compile_cache: CompileCache = CompileCache()
    # Environment variables that choose which CPU kernels its framework runs (an instruction-set cap, a kernel
    # library switched off): the run's environment records those that are set (bench.run.environment), as a
    # row measured on AVX2 kernels of an AVX-512 machine is not that machine's figure.
    kernel_variables: tuple[str, ...] = ()
    # Where its worker gets --pretrained's ImageNet weights (None: not said; nothing is checked before it runs)
    pretrained: PretrainedLookup | None = None

    @property
    def label(self) -> str:
        return self.display or self.name


class Trainer(Protocol):
    """Build, train, evaluate: what the worker's measured part calls."""

    name: str  # registry name (``backends.load_backend`` sets it)

    def configure(self, runtime: RuntimeSpec, seed: int) -> dict[str, Any]:
        """Pick the device and threads, seed the framework; return what was chosen.

        Keys: framework, framework_version, device, threads, knobs (dict), notes (list).
        """
        ...

    def build(self, model: ModelSpec, input_shape: tuple[int, int, int], n_outputs: int) -> Any:
        """Build catalog model ``model.arch`` for HWC ``input_shape``; outputs ``n_outputs`` logits.

        ``n_outputs == 1`` is a binary head (one sigmoid logit for class 1); the loss in
        ``compile`` follows ``train.loss``.
        """
        ...

    def count_params(self, model: Any) -> int: ...

    def compile(self, model: Any, train: TrainSpec, runtime: RuntimeSpec) -> Any:
        """Attach optimizer and loss; returns the training state every later call takes (one object)."""
        ...

    def put(self, x: np.ndarray, y: np.ndarray, norm: PixelNorm | None = None) -> Any:
        """Hand NHWC images and int64 labels to where training reads them, without a float copy on the host.

        uint8 images come with ``norm``: the backend computes ``x * norm.scale + norm.offset`` per
        batch on its device. float32 images (already preprocessed, e.g. the explain phase's few)
        come without it.
        """
        ...

    def prepare_batches(self, state: Any, data: Any, order: np.ndarray, batch_size: int) -> int:
        """Run only ``train_epoch``'s input path over ``order`` (index, move, normalise, augment): no model.

        bench times it (bench.measure.inputpath) for the row's ``input_share``; returns the number of batches.
        """
        ...

    def train_epoch(self, state: Any, data: Any, order: np.ndarray, batch_size: int, hooks: Any = None) -> float:
        """One pass over ``data`` in ``order`` in one training call; returns the mean training loss.

        ``hooks`` (bench.measure.steady.StepClock, or None): ``hooks.on_step_begin(i)`` /
        ``hooks.on_step_end(i)`` around each optimiser step, i = the batch's index in this call.
        Returning a host float is the synchronisation point.

        A backend whose framework trains many epochs in one call may also define ``train_epochs(state, data,
        orders, batch_size, hooks)``: every epoch in that one call, ``hooks.on_epoch_begin(e)`` before epoch e's
        first step and ``hooks.on_epoch_end(e, loss)`` after its last (``train_epochs`` below is the caller).
        """
        ...

    def predict(self, state: Any, data: Any, batch_size: int) -> np.ndarray:
        """Logits (N, n_outputs) as float32 numpy, in inference mode."""
        ...

    def synchronize(self) -> None:
        """Block until queued device work is finished (called before every clock read)."""
        ...

    # ``async_steps`` (an optional attribute, False when absent; not a protocol member, so no backend must have
    # it): whether a training step returns to the host before its work is done with no
    # bound on how far the host runs ahead (JAX's dispatch, measured on the CPU: three steps of a four-step epoch
    # returned in ~10 ms and the fourth held a second of their work). The step clock then samples its interval
    # per synchronised stretch (bench.measure.stats.window_throughput). A device queue that blocks the host once
    # it is full (CUDA) keeps single steps near their work in a steady window, and is not declared.

    def peak_device_mb(self) -> float | None:
        """Peak accelerator memory so far, or None on CPU."""
        ...


class Introspection(Protocol):
    """Activations and gradients of named layers: what the explain and decouple phases compute from.

    ``columns``/``signs`` pick each image's class score: sign * logits[i, columns[i]]
    (bench.core.metrics.class_score_signs). Layers are resolved by catalog name; a layer's
    output is its post-activation map (Keras fuses the activation into Conv2D).
    """

    def layer_input(self, state: Any, x: np.ndarray, layer: str, batch_size: int) -> np.ndarray:
        """What named ``layer`` receives, (N, ...) float32, in inference mode (for the head: the features)."""
        ...

    def layer_outputs(self, state: Any, x: np.ndarray, layers: list[str], batch_size: int) -> dict[str, np.ndarray]:
        """Post-activation outputs of named layers, float32 numpy, inference mode; conv maps as NHWC."""
        ...

    def forward(self, state: Any, data: Any) -> np.ndarray:
        """Logits of the whole of ``data`` in one inference-mode call, run the way the gradient methods run
        the model: the baseline Grad-CAM's cost is compared with."""
        ...

    def layer_gradients(
        self, state: Any, data: Any, layer: str, columns: np.ndarray, signs: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Activations of ``layer`` and d(score)/d(activations), both float32 (N, h, w, C), in one pass."""
        ...

    def input_gradients(self, state: Any, data: Any, columns: np.ndarray, signs: np.ndarray) -> np.ndarray:
        """d(score)/d(input) as float32 NHWC, the same layout the images were given in."""
        ...


class Measurement(Protocol):
    """The framework's own instruments: its FLOP counter, a matmul to time, its op profiler."""

    def forward_flops(self, state: Any, input_shape: tuple[int, int, int]) -> float:
        """One image's forward FLOPs by the framework's own counter (a multiply-add = 2)."""
        ...

    def matmul(self, n: int, precision: str) -> Any:
        """A callable running one n x n matmul in ``precision`` (bench times it for the peak FLOP/s)."""
        ...

    def profile_ops_start(self) -> None:
        """Start the framework's profiler (the step hooks start it at the first warm-up step)."""
        ...

    def profile_ops_stop(self, top: int = 10) -> list[dict[str, Any]]:
        """Stop it; the top ops by self time: [{"op", "ms", "calls"}] (device time on a GPU, host time on a CPU)."""
        ...


class Parity(Protocol):
    """Weights in and out in one reference layout, and the framework's training conventions switched for a check.

    The reference layout is torch's ``state_dict``: names, shapes (OIHW kernels, (out, in) dense weights) and
    BatchNorm statistics, so weights from any backend compare element by element (bench.run.parity). A
    backend that cannot hand a model over raises ``bench.core.parity.ParityError`` saying why.
    """

    def build_to_import(self, model: ModelSpec, input_shape: tuple[int, int, int], n_outputs: int) -> Any:
        """``build`` for a model whose every weight ``import_weights`` sets next: its initial values are thrown
        away, so a backend may draw them another, cheaper way (Keras on JAX: bench.run.parity_worker)."""
        ...

    def export_weights(self, state: Any) -> dict[str, np.ndarray]:
        """Every weight and BatchNorm statistic of the state's model, float32 numpy, in the reference layout."""
        ...

    def import_weights(self, state: Any, weights: dict[str, np.ndarray]) -> None:
        """Set the model to ``weights`` (reference layout, as ``export_weights`` gives them), exactly."""
        ...

    def align(self, state: Any, alignments: tuple[str, ...]) -> None:
        """Train with the conventions ``alignments`` names (bench.core.parity.ALIGNMENTS), the rest as shipped."""
        ...


class Backend(Trainer, Introspection, Measurement, Parity, Protocol):
    """A whole backend: every role. ``backends.load_backend(name)`` returns one."""


def train_epochs(
    backend: Trainer, state: Any, data: Any, orders: Sequence[np.ndarray], batch_size: int, hooks: Any
) -> None:
    """Train one epoch per order, the way the framework trains many: in one call where the backend has one
    (``train_epochs``: Keras's ``fit(epochs=N)``, whose per-call setup a user pays once, not once per epoch),
    else one ``train_epoch`` call per epoch (torch's loop has no per-call setup to pay). ``hooks``:
    ``bench.measure.steady.Epochs``."""
    own = getattr(backend, "train_epochs", None)
    if own is not None:
        own(state, data, orders, batch_size, hooks)
        return
    for epoch, order in enumerate(orders):
        hooks.on_epoch_begin(epoch)
        loss = backend.train_epoch(state, data, order, batch_size, hooks)
        hooks.on_epoch_end(epoch, loss)
