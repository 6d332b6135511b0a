"""Keras 3 backend on whichever engine ``KERAS_BACKEND`` names: catalog models from keras layers, ``model.fit``.

One model and training code for TensorFlow, JAX and torch: the same builders, ``compile`` and
one ``fit`` per epoch over the order the runner chose (what a Keras user measures), with
bench's step hooks in a callback. What differs per engine (threads and devices, the input
pipeline, how gradients are taken, synchronisation, memory, profiler) is in ``engine_*``.
The registry sets ``KERAS_BACKEND`` before this module is imported.
"""

from __future__ import annotations

import importlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from backends.keras import distributed, models, parity, perf
from backends.keras import zoo as keras_zoo
from backends.keras.input import HostImages, augmenter, labels, training_model
from backends.keras.split import tap
from bench.core.catalog import architecture
from bench.core.distributed import DistContext
from bench.core.preprocess import PixelNorm
from bench.core.spec import ModelSpec, RuntimeSpec, TrainSpec
from bench.core.zoo import is_zoo, weights_file

ENGINES = {"tensorflow": "engine_tf", "jax": "engine_jax", "torch": "engine_torch"}
NAMES = {"tensorflow": "keras", "jax": "keras-jax", "torch": "keras-torch"}  # registry names

LOSSES = {
    "cross_entropy": keras.losses.SparseCategoricalCrossentropy,
    "binary_cross_entropy": keras.losses.BinaryCrossentropy,  # labels fed as float (N, 1), see input.labels
}


@dataclass
class KerasState:
    """A compiled model and what training and explaining it need, kept together (not on the backend)."""

    model: keras.Model  # the catalog's graph: explanations, layer taps, weights and FLOPs use it
    augment: keras.Sequential | None = None  # training-only layers, in front of ``model`` in the training model
    traced: dict[tuple[str, str | None], Callable[..., Any]] = field(default_factory=dict)  # by (what, layer)
    compiled: dict[str, Any] = field(default_factory=dict)  # optimizer, loss, jit_compile: what compile() chose
    # The models fit and predict run (input.training_model), by the input they read: dtype, shape, pixel norm.
    trainers: dict[tuple[Any, ...], keras.Model] = field(default_factory=dict)


class Backend:
    def __init__(self) -> None:
        engine = keras.backend.backend()
        self.name = NAMES[engine]
        self.engine = importlib.import_module(f"backends.keras.{ENGINES[engine]}").Engine()
        self.dist: Any = None  # the engine's data-parallel session after join (backends.keras.distributed)

    def configure(self, runtime: RuntimeSpec, seed: int) -> dict[str, Any]:
        if runtime.precision != "fp32":
            keras.config.set_dtype_policy(runtime.precision.replace("fp16", "float16").replace("bf16", "bfloat16"))
        distributed.early_start(keras.backend.backend())  # JAX: before configure creates its backends
        env = self.engine.configure(runtime, seed)
        env["knobs"] = {
            "precision": keras.config.dtype_policy().name,
            "steps_per_execution": runtime.steps_per_execution,
            **env["knobs"],
        }
        return {"framework": f"keras-{keras.backend.backend()}", **env}

    def join(self, ctx: DistContext) -> dict[str, Any]:
        """Train data-parallel from now on (bench.core.distributed.DataParallel): build, compile, fit in the engine's
        distribution; ``train_epoch`` gets this worker's shard and batch."""
        self.dist = distributed.join(keras.backend.backend(), ctx)
        return self.dist.record()

    def barrier(self) -> None:
        """The workers meet (after the per-epoch evaluation: the next epoch's first all-reduce waits for none)."""
        if self.dist is not None:
            self.dist.barrier()

    def leave(self) -> None:
        """Leave the group. The session stays: ``predict`` and ``get_weights`` keep reading this worker's
        copy (the model's variables are still the strategy's / global arrays); training ends here."""
        if self.dist is not None:
            self.dist.leave()

    def build(self, model: ModelSpec, input_shape: tuple[int, int, int], n_outputs: int) -> keras.Model:
        with distributed.scope(self.dist):  # data-parallel: variables are the strategy's / distribution's
            if is_zoo(model.arch):  # zoo rows: init, and pretrained through the converter, in backends/keras/zoo.py
                return keras_zoo.build(
                    model.arch, n_outputs, input_shape, model.init, weights_file(model), self.engine.throwaway_draws
                )
            if architecture(model).zoo:  # the catalog's big models: zoo rows, with keras.applications' weights
                return models.big(model, input_shape, n_outputs)
            return models.build(model, input_shape, n_outputs)

    def build_to_import(self, model: ModelSpec, input_shape: tuple[int, int, int], n_outputs: int) -> keras.Model:
        """``build``, its initial draws thrown away (``import_weights`` follows): drawn the engine's cheap way."""
        with self.engine.throwaway_draws():
            return self.build(model, input_shape, n_outputs)

    def count_params(self, model: keras.Model) -> int:
        return int(model.count_params())

    def compile(self, model: keras.Model, train: TrainSpec, runtime: RuntimeSpec) -> KerasState:
        with distributed.scope(self.dist):  # the optimizer's slots live where the model's variables do
            return self._compile(model, train, runtime)

    def _compile(self, model: keras.Model, train: TrainSpec, runtime: RuntimeSpec) -> KerasState:
        if train.optimizer == "adam":
            opt = keras.optimizers.Adam(
                learning_rate=train.lr,
                beta_1=train.beta1,
                beta_2=train.beta2,
                epsilon=train.eps,
                weight_decay=train.weight_decay or None,
            )
        else:
            opt = keras.optimizers.SGD(
                learning_rate=train.lr, momentum=train.momentum, weight_decay=train.weight_decay or None
            )
        compiled = {
            "optimizer": opt,
            "loss": LOSSES[train.loss](from_logits=True),
            "jit_compile": self.engine.jit_compile(runtime),
            "steps_per_execution": runtime.steps_per_execution,
        }
        model.compile(**compiled)
        # Create Adam's slot variables now, eagerly. Left to fit(), they are created inside the
        # first traced train step, which makes TF trace that step twice (once to create variables,
        # once without) and lift every initializer out of the graph: 68 s instead of 31 s for
        # ResNet101's first step on a 2-core CPU. torch's Adam allocates its state in step 1, but
        # that costs microseconds; what first_step_s should show for Keras is tracing, not this.
        opt.build(model.trainable_variables)
        # The augmentation layers' seed comes from the process's RNG, which configure seeded.
        aug = augmenter(train.augment, int(np.random.randint(2**31 - 64)))
        return KerasState(model, aug, compiled=compiled)

    def _trainer(self, state: KerasState, data: HostImages) -> keras.Model:
        """The training model for ``data``'s input (normalise, augment, catalog model), built and compiled once."""
        norm = None if data.scale is None or data.offset is None else (data.scale.tobytes(), data.offset.tobytes())
        key = (data.x.dtype.str, data.x.shape[1:], norm)
        if key not in state.trainers:
            with distributed.scope(self.dist):
                trainer = training_model(state.model, data, state.augment)
                trainer.compile(**state.compiled)  # the catalog model's optimizer: its slots already exist
            if self.dist is not None:
                self.dist.adopt(trainer)
            state.trainers[key] = trainer
        return state.trainers[key]

    def put(self, x: np.ndarray, y: np.ndarray, norm: PixelNorm | None = None) -> HostImages:
        """Host arrays as they are (uint8 stays uint8): model.fit reads them batch by batch, Keras's way."""
        return HostImages(x, y, None if norm is None else norm.scale, None if norm is None else norm.offset)

    def _batches(self, state: KerasState, data: HostImages, order: np.ndarray, batch_size: int) -> Any:
        if self.dist is not None:  # data-parallel: this worker's shard, batched as it is (no re-sharding)
            return self.dist.batches(data, order, batch_size, labels(state.model, data.y))
        return self.engine.batches(data, order, batch_size, labels(state.model, data.y))

    def prepare_batches(self, state: KerasState, data: HostImages, order: np.ndarray, batch_size: int) -> int:
        """The input path of ``train_epoch`` alone, iterated as ``fit`` iterates it: the batch count."""
        return self.engine.count_batches(self._batches(state, data, order, batch_size))

    def train_epoch(
        self, state: KerasState, data: HostImages, order: np.ndarray, batch_size: int, hooks: Any = None
    ) -> float:
        spe = int(state.compiled.get("steps_per_execution", 1))
        callbacks = [StepHooks(hooks, spe)] if hooks is not None else None
        trainer = self._trainer(state, data)
        self.engine.watch(trainer)
        hist = trainer.fit(
            self._batches(state, data, order, batch_size),
            epochs=1,
            steps_per_epoch=-(-len(order) // batch_size),  # the input's length is not Keras's to find out
            shuffle=False,
            verbose=0,
            callbacks=callbacks,
        )
        return float(hist.history["loss"][-1])  # a host value: the epoch has finished

    def train_epochs(
        self, state: KerasState, data: HostImages, orders: Sequence[np.ndarray], batch_size: int, hooks: Any
    ) -> None:
        """Every epoch in one ``fit(epochs=N)``, as a user trains: fit's per-call setup (its callbacks, the
        epoch iterator, the train function's lookup; 9-12 ms on 2 cores, 4-9% of a LeNet-5 epoch) is paid
        once per run, not once per epoch. One input pipeline covers every epoch's order (epoch e's batches
        follow epoch e-1's); ``StepHooks`` calls the epoch hooks, and the worker evaluates between epochs
        from inside the call."""
        if self.dist is not None:  # data-parallel rows train epoch by epoch (bench.run.dist_worker)
            raise NotImplementedError("train_epochs with a data-parallel distribution")
        sizes = {len(o) for o in orders}
        if len(sizes) != 1:
            raise ValueError(f"every epoch must train on as many images; got {sorted(sizes)}")
        spe = int(state.compiled.get("steps_per_execution", 1))
        per_epoch = -(-sizes.pop() // batch_size)
        if per_epoch % spe:
            # Given steps_per_epoch, Keras keeps one iterator across a fit's epochs and runs every execution whole:
            # an execution that does not divide the epoch runs on into the next epoch's batches, and the last epoch
            # runs out of data (cifar10-cnn's 79 steps, steps_per_execution 32: epochs of 96 steps, the fifth of 11,
            # and step-clock samples whose images were not the ones trained). One fit per epoch ends each epoch
            # where its data ends, in a shorter last execution, as fit over arrays does.
            for epoch, order in enumerate(orders):
                self._fit(state, data, order, batch_size, 1, StepHooks(hooks, spe, first_epoch=epoch))
            return
        self._fit(state, data, np.stack(orders), batch_size, len(orders), StepHooks(hooks, spe))

    def _fit(
        self, state: KerasState, data: HostImages, orders: np.ndarray, batch_size: int, epochs: int, hooks: StepHooks
    ) -> None:
        trainer = self._trainer(state, data)
        self.engine.watch(trainer)
        trainer.fit(
            self._batches(state, data, orders, batch_size),
            epochs=epochs,
            steps_per_epoch=-(-np.atleast_2d(orders).shape[1] // batch_size),
            shuffle=False,
            verbose=0,
            callbacks=[hooks],
        )

    def predict(self, state: KerasState, data: HostImages, batch_size: int) -> np.ndarray:
        if self.dist is not None:  # data-parallel: this worker alone, no collective (any rank may evaluate)
            return self.dist.predict(self._trainer(state, data), data, batch_size)
        batches = self.engine.batches(data, np.arange(len(data)), batch_size)
        steps = -(-len(data) // batch_size)
        return np.asarray(self._trainer(state, data).predict(batches, steps=steps, verbose=0), dtype=np.float32)

    def layer_input(self, state: KerasState, x: np.ndarray, layer: str, batch_size: int) -> np.ndarray:
        model = state.model
        return tap(keras.Model(model.inputs, [model.get_layer(layer).input]), x, batch_size)[0]

    def layer_outputs(
        self, state: KerasState, x: np.ndarray, layers: list[str], batch_size: int
    ) -> dict[str, np.ndarray]:
        """Layer outputs include the fused activation (``Conv2D(activation=...)``), already NHWC."""
        model = state.model
        outs = tap(keras.Model(model.inputs, [model.get_layer(n).output for n in layers]), x, batch_size)
        return dict(zip(layers, outs, strict=True))

    def synchronize(self) -> None:
        self.engine.synchronize()

    @property
    def async_steps(self) -> bool:
        """Whether a training step returns before its work is done (the engine's: JAX's dispatch)."""
        return bool(getattr(self.engine, "async_steps", False))

    def peak_device_mb(self) -> float | None:
        return self.engine.peak_device_mb()

    def _traced(self, state: KerasState, what: str, layer: str | None = None) -> Callable[..., Any]:
        """One traced/jitted function per (model, what, layer), built on first use (tracing costs seconds)."""
        key = (what, layer)
        if key not in state.traced:
            if what == "forward":
                state.traced[key] = self.engine.forward_fn(state.model)
            elif what == "layer":
                state.traced[key] = self.engine.layer_gradients_fn(state.model, layer)
            else:
                state.traced[key] = self.engine.input_gradients_fn(state.model)
        return state.traced[key]

    def forward(self, state: KerasState, data: HostImages) -> np.ndarray:
        return self._traced(state, "forward")(data.floats())

    def layer_gradients(
        self, state: KerasState, data: HostImages, layer: str, columns: np.ndarray, signs: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        return self._traced(state, "layer", layer)(data.floats(), _ints(columns), _floats(signs))

    def input_gradients(
        self, state: KerasState, data: HostImages, columns: np.ndarray, signs: np.ndarray
    ) -> np.ndarray:
        return self._traced(state, "input")(data.floats(), _ints(columns), _floats(signs))

    def get_weights(self, model: keras.Model) -> dict[str, np.ndarray]:
        """Named variables (``layer.kernel`` HWIO, ``layer.bias``), engine-free: for the converter and tests."""
        return {f"{lay.name}.{w.name}": self._host(w.value) for lay in model.layers for w in lay.weights}

    def trainable_names(self, model: keras.Model) -> list[str]:
        """The keys of ``get_weights`` that training updates: not BatchNorm's moving mean and variance."""
        return [f"{lay.name}.{w.name}" for lay in model.layers for w in lay.trainable_weights]

    def _host(self, value: Any) -> np.ndarray:
        if self.dist is not None:  # data-parallel: this worker's copy (a JAX global array spans every process)
            return self.dist.host(value)
        return np.array(keras.ops.convert_to_numpy(value))

    def set_weights(self, model: keras.Model, weights: dict[str, np.ndarray]) -> None:
        variables = {f"{lay.name}.{w.name}": w for lay in model.layers for w in lay.weights}
        if set(variables) != set(weights):
            raise KeyError(
                f"weights do not match the model: missing {sorted(set(variables) - set(weights))}, "
                f"unexpected {sorted(set(weights) - set(variables))}"
            )
        for name, var in variables.items():
            if tuple(var.shape) != weights[name].shape:
                raise ValueError(f"{name}: model has shape {tuple(var.shape)}, weights have {weights[name].shape}")
            var.assign(weights[name])

    def export_weights(self, state: KerasState) -> dict[str, np.ndarray]:
        return parity.export_weights(self, state.model)

    def import_weights(self, state: KerasState, weights: dict[str, np.ndarray]) -> None:
        parity.import_weights(self, state.model, weights)

    def align(self, state: KerasState, alignments: tuple[str, ...]) -> None:
        parity.align(state.model, alignments)

    def forward_flops(self, state: KerasState, input_shape: tuple[int, int, int]) -> float:
        return perf.forward_flops(state.model, input_shape)

    def matmul(self, n: int, precision: str) -> Any:
        return perf.matmul(n, precision)

    def profile_ops_start(self) -> None:
        self._profile = self.engine.profile_ops_start()

    def profile_ops_stop(self, top: int = 10) -> list[dict[str, Any]]:
        return self.engine.profile_ops_stop(self._profile, top)


def _ints(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, np.int64)


def _floats(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, np.float32)


class StepHooks(keras.callbacks.Callback):
    """bench's per-step hooks inside the one ``fit`` call: step i ends where step i + 1 begins.

    Only ``on_train_batch_begin`` and the epoch's two ends are overridden, on purpose: a callback
    that overrides ``on_train_batch_end`` makes Keras convert each step's logs to host floats
    synchronously (it turns off its asynchronous callback dispatch), which on a GPU would drain
    the queue every step -- a sync the bare ``fit`` does not have. The end of the last step is
    ``on_epoch_end``, which Keras calls after reading the epoch's metrics (the step has finished).
    With ``steps_per_execution`` = k > 1 (a tuning knob; Keras's default is 1) Keras calls back once
    per k optimiser steps, with the first batch's index: the hooks then see one "step" covering
    batches b..b+k-1 (``on_step_begin(b)`` ... ``on_step_end(b+k-1)``), and the step clock counts its
    images. On the CPU each train call returns when it has run (TF, torch; JAX dispatches
    asynchronously and the step clock's synchronize waits for the model's state at window boundaries).
    """

    def __init__(self, hooks: Any, steps_per_execution: int = 1, first_epoch: int = 0) -> None:
        super().__init__()
        self.hooks, self.step, self.spe = hooks, -1, steps_per_execution
        self.epochs = hasattr(hooks, "on_epoch_begin")  # bench.measure.steady.Epochs: one fit over every epoch
        self.first_epoch = first_epoch  # the run's epoch of this fit's first (a fit per epoch: its index)

    def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
        if self.step >= 0:
            self.hooks.on_step_end(batch - 1)
        self.step = batch
        self.hooks.on_step_begin(batch)

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.step = -1  # batch indices start again at 0 in every epoch of one fit
        if self.epochs:
            self.hooks.on_epoch_begin(self.first_epoch + epoch)

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if self.step >= 0:
            last = self.step + self.spe - 1  # the call's last batch: a last group may be short
            self.hooks.on_step_end(min(last, getattr(self.hooks, "n_steps", last + 1) - 1))
        if self.epochs:  # the epoch's mean loss, which Keras has read to the host for its history
            self.hooks.on_epoch_end(self.first_epoch + epoch, float((logs or {})["loss"]))
