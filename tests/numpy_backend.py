"""A framework-free backend for the tests of the run machinery: a real model, trained in numpy, in milliseconds.

The runner, resume, durability, Ctrl-C, timeout and executor tests ask what happens to a run, not what a
framework computes: they need rows that really train (a loss that falls, an accuracy better than chance,
records that differ by seed), but each worker server that imports torch costs 5-6 s here before it trains
anything. This backend builds every catalog model as the same linear classifier on the normalised pixels
(softmax regression; one logit for a binary head) and trains it with the task's optimiser (SGD with
momentum, or Adam as torch places its epsilon), weight decay as L2 in the gradient. Its rows say so in
``known_differences``: a row of this backend measures the suite, not a framework.

It does what a worker's measured part calls (``bench.run.worker``): configure, put, build, compile,
train with step hooks, predict, the FLOP count and a matmul for the MFU columns, the input path, and the
parity layout (one dense layer, torch's ``fc.weight`` (out, in)). The explain and decouple phases look
inside conv layers, which this model has none of: they raise saying so. Registered in a test's
subprocesses by ``tests.faults.backend_env`` (a ``sitecustomize`` on PYTHONPATH), as ``numpy``.
"""

from __future__ import annotations

import dataclasses
import platform
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.core.backend import BackendInfo
from bench.core.preprocess import PixelNorm
from bench.core.spec import ModelSpec, RuntimeSpec, TrainSpec

DESCRIPTION = BackendInfo(
    name="numpy",
    module="tests.numpy_backend",
    framework="numpy",
    requires=("numpy",),
    display="NumPy (test)",
    flop_counter="2 x the dense layer's weights",
    known_differences=("numpy test backend: every model is one dense layer on the pixels",),
)

# What ``configure`` says of the framework on this machine, as torch says which code path its oneMKL took: the
# worker must carry it into the row's notes
CONFIGURE_NOTE = f"numpy {np.__version__} computes this row's dense layer"


def register(parity_reference: bool = False) -> None:
    """Add ``numpy``, ``fault`` (tests/fault_backend.py), ``lossy`` (tests/lossy_backend.py: with the task's
    ``runtime.channels_last``, its weights never train) and ``broken`` (tests/broken_backend.py: its own code imports
    a module that does not exist) to this process's backend registry; with
    ``parity_reference``, numpy is the training-parity check's reference instead of torch."""
    import backends

    backends.BACKENDS["numpy"] = dataclasses.replace(DESCRIPTION, parity_reference=parity_reference)
    backends.BACKENDS["fault"] = dataclasses.replace(DESCRIPTION, name="fault", module="tests.fault_backend")
    backends.BACKENDS["lossy"] = dataclasses.replace(
        DESCRIPTION, name="lossy", module="tests.lossy_backend", display="lossy (test)"
    )
    backends.BACKENDS["broken"] = dataclasses.replace(DESCRIPTION, name="broken", module="tests.broken_backend")
    if parity_reference:
        for name, info in backends.BACKENDS.items():
            if info.parity_reference and name != "numpy":
                backends.BACKENDS[name] = dataclasses.replace(info, parity_reference=False)


@dataclass
class Images:
    """One split as ``put`` keeps it: uint8 (or float32) NHWC, labels, and the per-batch normalisation."""

    x: np.ndarray
    y: np.ndarray
    norm: PixelNorm | None

    def __len__(self) -> int:
        return len(self.y)

    def batch(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = self.x[idx] if self.norm is None else self.norm.apply(self.x[idx])
        return x.reshape(len(idx), -1).astype(np.float32, copy=False), self.y[idx]


@dataclass
class Linear:
    """logits = x @ w.T + b: torch's nn.Linear layout, so export_weights is the reference layout as it is."""

    w: np.ndarray  # (n_outputs, inputs)
    b: np.ndarray  # (n_outputs,)

    def params(self) -> list[np.ndarray]:
        return [self.w, self.b]


@dataclass
class TrainState:
    model: Linear
    train: TrainSpec
    moments: list[list[np.ndarray]] = field(default_factory=list)  # SGD: [velocity]; Adam: [m, v] per param
    steps: int = 0
    frozen: bool = False  # the weights stay at their initial values, the bias alone trains (tests/lossy_backend.py)


def _loss_and_grad(logits: np.ndarray, y: np.ndarray, binary: bool) -> tuple[float, np.ndarray]:
    """Mean loss over the batch and d(loss)/d(logits): softmax cross-entropy, or BCE on one logit."""
    n = len(y)
    if binary:
        z = logits[:, 0].astype(np.float64)
        p = 1 / (1 + np.exp(-z))
        loss = np.mean(np.logaddexp(0, z) - y * z)
        return float(loss), ((p - y) / n)[:, None].astype(np.float32)
    shifted = logits - logits.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    grad = np.exp(logp)
    grad[np.arange(n), y] -= 1
    return float(-logp[np.arange(n), y].mean()), (grad / n).astype(np.float32)


class Backend:
    name = "numpy"

    def __init__(self) -> None:
        self.rng = np.random.default_rng(0)

    def configure(self, runtime: RuntimeSpec, seed: int) -> dict[str, Any]:
        if runtime.device == "cuda":
            raise RuntimeError("runtime.device='cuda' but the numpy backend runs on the CPU only")
        self.rng = np.random.default_rng(seed)
        return {
            "framework": "numpy",
            "framework_version": np.__version__,
            "device": f"cpu ({platform.machine()})",
            "threads": runtime.threads or 1,
            "knobs": {"precision": runtime.precision},
            "notes": [CONFIGURE_NOTE],  # what a framework says of itself here (a torch row: oneMKL's code path)
        }

    def build(self, model: ModelSpec, input_shape: tuple[int, int, int], n_outputs: int) -> Linear:
        inputs = int(np.prod(input_shape))
        bound = 1 / np.sqrt(inputs)  # torch's nn.Linear default init
        w = self.rng.uniform(-bound, bound, (n_outputs, inputs)).astype(np.float32)
        return Linear(w, self.rng.uniform(-bound, bound, n_outputs).astype(np.float32))

    build_to_import = build  # numpy's draws are cheap: the same stream either way

    def count_params(self, model: Linear) -> int:
        return sum(p.size for p in model.params())

    def compile(self, model: Linear, train: TrainSpec, runtime: RuntimeSpec) -> TrainState:
        return TrainState(model, train)

    def put(self, x: np.ndarray, y: np.ndarray, norm: PixelNorm | None = None) -> Images:
        return Images(x, y.astype(np.int64), norm)

    def _batches(self, data: Images, order: np.ndarray, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for i in range(0, len(order), batch_size):
            yield data.batch(order[i : i + batch_size])

    def prepare_batches(self, state: TrainState, data: Images, order: np.ndarray, batch_size: int) -> int:
        return sum(1 for _ in self._batches(data, order, batch_size))

    def _step(self, state: TrainState, grads: list[np.ndarray]) -> None:
        t, params = state.train, state.model.params()
        if state.frozen:
            params, grads = params[1:], grads[1:]
        state.steps += 1
        grads = [g + t.weight_decay * p for g, p in zip(grads, params, strict=True)]
        if t.optimizer == "adam":
            if not state.moments:
                state.moments = [[np.zeros_like(p), np.zeros_like(p)] for p in params]
            for p, g, (m, v) in zip(params, grads, state.moments, strict=True):
                m *= t.beta1
                m += (1 - t.beta1) * g
                v *= t.beta2
                v += (1 - t.beta2) * g * g
                m_hat, v_hat = m / (1 - t.beta1**state.steps), v / (1 - t.beta2**state.steps)
                p -= (t.lr * m_hat / (np.sqrt(v_hat) + t.eps)).astype(np.float32)
            return
        if not state.moments:
            state.moments = [[np.zeros_like(p)] for p in params]
        for p, g, (velocity,) in zip(params, grads, state.moments, strict=True):
            velocity *= t.momentum
            velocity += g
            p -= (t.lr * velocity).astype(np.float32)

    def train_epoch(
        self, state: TrainState, data: Images, order: np.ndarray, batch_size: int, hooks: Any = None
    ) -> float:
        model, binary, total = state.model, state.train.loss == "binary_cross_entropy", 0.0
        for step, (xb, yb) in enumerate(self._batches(data, order, batch_size)):
            if hooks is not None:
                hooks.on_step_begin(step)
            loss, dlogits = _loss_and_grad(xb @ model.w.T + model.b, yb, binary)
            dw = np.zeros(0, np.float32) if state.frozen else dlogits.T @ xb  # no weight gradient when frozen
            self._step(state, [dw, dlogits.sum(axis=0)])
            total += loss * len(yb)
            if hooks is not None:
                hooks.on_step_end(step)
        return total / len(order)

    def predict(self, state: TrainState, data: Images, batch_size: int) -> np.ndarray:
        m = state.model
        out = [xb @ m.w.T + m.b for xb, _ in self._batches(data, np.arange(len(data)), batch_size)]
        return np.concatenate(out).astype(np.float32)

    def forward(self, state: TrainState, data: Images) -> np.ndarray:
        return self.predict(state, data, max(1, len(data)))

    def synchronize(self) -> None:
        """numpy returns when its work is done."""

    def peak_device_mb(self) -> float | None:
        return None

    def _no_layers(self, *_: Any, **__: Any) -> Any:
        raise NotImplementedError("the numpy test backend's model is one dense layer: no conv layer to look inside")

    layer_input = layer_outputs = layer_gradients = input_gradients = _no_layers

    def forward_flops(self, state: TrainState, input_shape: tuple[int, int, int]) -> float:
        return 2.0 * state.model.w.size

    def matmul(self, n: int, precision: str) -> Callable[[], None]:
        if precision != "fp32":
            raise ValueError(f"the numpy backend computes in fp32 only, not {precision!r}")
        a, b = (np.random.default_rng(0).standard_normal((n, n), dtype=np.float32) for _ in range(2))

        def run() -> None:
            np.matmul(a, b)

        return run

    def profile_ops_start(self) -> None:
        raise NotImplementedError("numpy has no op profiler")

    profile_ops_stop = profile_ops_start

    def export_weights(self, state: TrainState) -> dict[str, np.ndarray]:
        return {"fc.weight": state.model.w.copy(), "fc.bias": state.model.b.copy()}

    def import_weights(self, state: TrainState, weights: dict[str, np.ndarray]) -> None:
        state.model.w[...], state.model.b[...] = weights["fc.weight"], weights["fc.bias"]

    def align(self, state: TrainState, alignments: tuple[str, ...]) -> None:
        """One dense layer, no BatchNorm, Adam as torch places epsilon: nothing to align."""
