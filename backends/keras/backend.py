"""Keras 3 backend on the TensorFlow engine: catalog models from keras layers, ``model.fit``.

Training uses Keras's own out-of-the-box path (``compile`` + ``fit``), one call per
epoch over the order the runner chose, because that is what a Keras user measures.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import platform
import weakref
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from bench.catalog import model_registry
from bench.preprocess import PixelNorm
from bench.spec import ModelSpec, RuntimeSpec, TrainSpec

MODELS, register_model = model_registry()  # builders by catalog id, as timm's @register_model


def _pool(kind: str, name: str) -> layers.Layer:
    return layers.AveragePooling2D(2, name=name) if kind == "avg" else layers.MaxPooling2D(2, name=name)


@register_model
def lenet5(spec: ModelSpec, input_shape: tuple[int, int, int], n_classes: int) -> keras.Model:
    act, init = spec.option("activation"), spec.init
    pad = spec.option("conv1_padding")
    return keras.Sequential(
        [
            keras.Input(input_shape),
            *([layers.ZeroPadding2D(pad, name="pad1")] if pad else []),
            layers.Conv2D(6, 5, activation=act, kernel_initializer=init, name="conv1"),
            _pool(spec.option("pooling"), "pool1"),
            layers.Conv2D(16, 5, activation=act, kernel_initializer=init, name="conv2"),
            _pool(spec.option("pooling"), "pool2"),
            layers.Flatten(name="flatten"),
            layers.Dense(120, activation=act, kernel_initializer=init, name="fc1"),
            layers.Dense(84, activation=act, kernel_initializer=init, name="fc2"),
            layers.Dense(n_classes, kernel_initializer=init, name="fc3"),
        ],
        name="lenet5",
    )


@register_model
def cifar_cnn(spec: ModelSpec, input_shape: tuple[int, int, int], n_classes: int) -> keras.Model:
    act, init = spec.option("activation"), spec.init
    return keras.Sequential(
        [
            keras.Input(input_shape),
            layers.Conv2D(32, 3, activation=act, kernel_initializer=init, name="conv1"),
            layers.MaxPooling2D(2, name="pool1"),
            layers.Conv2D(64, 3, activation=act, kernel_initializer=init, name="conv2"),
            layers.MaxPooling2D(2, name="pool2"),
            layers.Conv2D(64, 3, activation=act, kernel_initializer=init, name="conv3"),
            layers.Flatten(name="flatten"),
            layers.Dense(64, activation=act, kernel_initializer=init, name="fc1"),
            layers.Dense(n_classes, kernel_initializer=init, name="fc2"),
        ],
        name="cifar_cnn",
    )


def _layer_and_logits(model: keras.Model, layer: str) -> keras.Model:
    """A model with two outputs, ``layer``'s (post-activation: Keras fuses it into Conv2D) and the logits."""
    names = [lay.name for lay in model.layers]
    if layer not in names:
        raise KeyError(f"model has no layer {layer!r} (layers: {', '.join(names)})")
    target = model.get_layer(layer)
    # A nested model's ``.output`` is its own inner graph's; its call inside ``model`` is an inbound node.
    for tensor in [target.output] + [node.output_tensors[0] for node in target._inbound_nodes]:
        try:
            return keras.Model(model.inputs, [tensor, *model.outputs])
        except ValueError:
            continue
    raise ValueError(f"layer {layer!r} is not connected to the model's inputs")


def _class_score(logits: tf.Tensor, columns: tf.Tensor, signs: tf.Tensor) -> tf.Tensor:
    """Sum over the batch of sign * logit[column]: each image's score depends on that image alone."""
    return tf.reduce_sum(tf.gather(logits, columns[:, None], batch_dims=1)[:, 0] * signs)


# The modes of a model's explain function (see Backend._explain_fn).
FORWARD, LAYER_GRADIENTS, INPUT_GRADIENTS = 0, 1, 2

LOSSES = {
    "cross_entropy": keras.losses.SparseCategoricalCrossentropy,
    "binary_cross_entropy": keras.losses.BinaryCrossentropy,  # labels fed as float (N, 1), see _labels
}


def _labels(model: keras.Model, y: np.ndarray) -> np.ndarray:
    """Integer labels for a softmax head; float (N, 1) for a one-logit binary head (no silent broadcasting)."""
    return y.astype(np.float32).reshape(-1, 1) if model.output_shape[-1] == 1 else y


def _tap(tap: keras.Model, x: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Run a multi-output sub-model eagerly in inference mode (``predict`` would trace a new function each time)."""
    parts = [tap([x[i : i + batch_size]], training=False) for i in range(0, len(x), batch_size)]
    parts = [p if isinstance(p, (list, tuple)) else [p] for p in parts]  # one output comes back unwrapped
    return [np.concatenate([np.asarray(p[j]) for p in parts]).astype(np.float32) for j in range(len(tap.outputs))]


class Backend:
    name = "keras"

    def __init__(self) -> None:
        self._explain_fns: dict[tuple[int, str | None], Callable[..., Any]] = {}  # (id(model), layer)

    def configure(self, runtime: RuntimeSpec, seed: int) -> dict[str, Any]:
        gpus = tf.config.list_physical_devices("GPU")
        if runtime.device == "cuda" and not gpus:
            raise RuntimeError("runtime.device='cuda' but TensorFlow sees no GPU")
        if runtime.device == "cpu" and gpus:
            tf.config.set_visible_devices([], "GPU")
            gpus = []
        if runtime.threads:  # must happen before TensorFlow runs its first op
            tf.config.threading.set_intra_op_parallelism_threads(runtime.threads)
            tf.config.threading.set_inter_op_parallelism_threads(runtime.threads)
        for gpu in gpus:  # allocate as needed, so the peak-memory reading means something
            tf.config.experimental.set_memory_growth(gpu, True)
        keras.utils.set_random_seed(seed)
        self.seed = seed
        if runtime.precision != "fp32":
            keras.config.set_dtype_policy(runtime.precision.replace("fp16", "float16").replace("bf16", "bfloat16"))
        if runtime.tf32 != "default":
            tf.config.experimental.enable_tensor_float_32_execution(runtime.tf32 == "on")
        self.gpu = bool(gpus)
        if gpus:
            device = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU:0")
        else:
            device = f"cpu ({platform.machine()})"
        intra = tf.config.threading.get_intra_op_parallelism_threads()
        return {
            "framework": "keras-tensorflow",
            "framework_version": f"keras {keras.__version__} / tensorflow {tf.__version__}",
            "device": device,
            "threads": intra or os.cpu_count(),  # 0 means TF's default: every core
            "knobs": {
                "precision": keras.config.dtype_policy().name,
                "jit_compile": runtime.jit_compile,
                "tf32": tf.config.experimental.tensor_float_32_execution_enabled(),
                "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
            },
        }

    def build(self, model: ModelSpec, input_shape: tuple[int, int, int], n_outputs: int) -> keras.Model:
        return MODELS[model.arch](model, input_shape, n_outputs)

    def count_params(self, model: keras.Model) -> int:
        return int(model.count_params())

    def compile(self, model: keras.Model, train: TrainSpec, runtime: RuntimeSpec) -> keras.Model:
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
        model.compile(
            optimizer=opt,
            loss=LOSSES[train.loss](from_logits=True),
            jit_compile=runtime.jit_compile,
        )
        # Create Adam's slot variables now, eagerly. Left to fit(), they are created inside the
        # first traced train step, which makes TF trace that step twice (once to create variables,
        # once without) and lift every initializer out of the graph: 68 s instead of 31 s for
        # ResNet101's first step on a 2-core CPU. torch's Adam allocates its state in step 1, but
        # that costs microseconds; what first_step_s should show for Keras is tracing, not this.
        opt.build(model.trainable_variables)
        _AUGMENT[model] = augmenter(train.augment, getattr(self, "seed", 0))
        return model

    def put(self, x: np.ndarray, y: np.ndarray, norm: PixelNorm | None = None) -> HostImages:
        """Host arrays as they are (uint8 stays uint8): model.fit reads them through tf.data, Keras's way."""
        return HostImages(x, y, None if norm is None else norm.scale, None if norm is None else norm.offset)

    def _batches(self, state: keras.Model, data: HostImages, order: np.ndarray, batch_size: int) -> tf.data.Dataset:
        return batches(data, order, batch_size, _labels(state, data.y), _AUGMENT.get(state))

    def prepare_batches(self, state: keras.Model, data: HostImages, order: np.ndarray, batch_size: int) -> int:
        """The input pipeline of ``train_epoch`` alone, iterated inside TF as ``fit`` iterates it: the batch count."""
        return int(self._batches(state, data, order, batch_size).reduce(np.int64(0), lambda n, _: n + 1))

    def train_epoch(
        self, state: keras.Model, data: Any, order: np.ndarray, batch_size: int, hooks: Any = None
    ) -> float:
        callbacks = [StepHooks(hooks)] if hooks is not None else None
        hist = state.fit(
            self._batches(state, data, order, batch_size), epochs=1, shuffle=False, verbose=0, callbacks=callbacks
        )
        return float(hist.history["loss"][-1])  # a host value: the epoch has finished

    def predict(self, state: keras.Model, data: Any, batch_size: int) -> np.ndarray:
        ds = batches(data, np.arange(len(data)), batch_size)
        return np.asarray(state.predict(ds, verbose=0), dtype=np.float32)

    def layer_input(self, state: keras.Model, x: np.ndarray, layer: str, batch_size: int) -> np.ndarray:
        return _tap(keras.Model(state.inputs, [state.get_layer(layer).input]), x, batch_size)[0]

    def layer_outputs(
        self, state: keras.Model, x: np.ndarray, layers: list[str], batch_size: int
    ) -> dict[str, np.ndarray]:
        """Layer outputs include the fused activation (``Conv2D(activation=...)``), already NHWC."""
        outs = _tap(keras.Model(state.inputs, [state.get_layer(n).output for n in layers]), x, batch_size)
        return dict(zip(layers, outs, strict=True))

    def synchronize(self) -> None:
        # On a GPU, TF returns from a train step before its kernels ran: wait for every device.
        # On the CPU there is nothing queued (ops run in the calling thread's executor).
        if getattr(self, "gpu", False):
            tf.test.experimental.sync_devices()

    def peak_device_mb(self) -> float | None:
        if not self.gpu:
            return None
        return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20

    def forward(self, state: keras.Model, data: Any, layer: str | None = None) -> np.ndarray:
        return self._explain(state, data, layer, FORWARD)[0].numpy()

    def layer_gradients(
        self, state: keras.Model, data: Any, layer: str, columns: np.ndarray, signs: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        _, act, grad, _ = self._explain(state, data, layer, LAYER_GRADIENTS, columns, signs)
        return act.numpy(), grad.numpy()

    def input_gradients(
        self, state: keras.Model, data: Any, columns: np.ndarray, signs: np.ndarray, layer: str | None = None
    ) -> np.ndarray:
        return self._explain(state, data, layer, INPUT_GRADIENTS, columns, signs)[3].numpy()

    def _explain(
        self, model: keras.Model, data: Any, layer: str | None, what: int,
        columns: np.ndarray | None = None, signs: np.ndarray | None = None,
    ) -> tuple[tf.Tensor, ...]:  # fmt: skip
        """Run the (model, layer)'s explain function in mode ``what``; unused gradients come back as zeros."""
        x = tf.constant(data.floats())
        if columns is None:
            columns, signs = np.zeros(len(x), np.int64), np.zeros(len(x), np.float32)
        return self._explain_fn(model, layer)(x, tf.constant(columns), tf.constant(signs), tf.constant(what))

    def _explain_fn(self, model: keras.Model, layer: str | None) -> Callable[..., Any]:
        """One traced tf.function per (model, layer) for the forward pass, Grad-CAM's and saliency's gradients.

        Tracing a 100-layer model costs seconds per function (ResNet101 on 2 CPU cores: forward
        3 s, layer gradients 5 s, input gradients 7 s). One trace with a ``switch_case`` over the
        three costs 9 s, and each call still runs only its own branch: the forward pass, then
        nothing (forward), the backward pass to ``layer`` (Grad-CAM) or to the input (saliency).
        """
        key = (id(model), layer)
        if key not in self._explain_fns:
            split = _layer_and_logits(model, layer) if layer is not None else None

            @tf.function(reduce_retracing=True)
            def fn(x: tf.Tensor, columns: tf.Tensor, signs: tf.Tensor, what: tf.Tensor) -> Any:
                with tf.GradientTape(persistent=True) as tape:  # persistent: used in two branches
                    tape.watch(x)
                    act, logits = split(x, training=False) if split is not None else (x, model(x, training=False))
                    score = _class_score(logits, columns, signs)
                g_act, g_x = tf.switch_case(
                    what,
                    [
                        lambda: (tf.zeros_like(act), tf.zeros_like(x)),
                        lambda: (tape.gradient(score, act), tf.zeros_like(x)),
                        lambda: (tf.zeros_like(act), tape.gradient(score, x)),
                    ],
                )
                return logits, act, g_act, g_x

            self._explain_fns[key] = fn
        return self._explain_fns[key]

    def get_weights(self, model: keras.Model) -> dict[str, np.ndarray]:
        return {f"{lay.name}.{w.name}": np.array(w.numpy()) for lay in model.layers for w in lay.weights}

    def set_weights(self, model: keras.Model, weights: dict[str, np.ndarray]) -> None:
        variables = {f"{lay.name}.{w.name}": w for lay in model.layers for w in lay.weights}
        if set(variables) != set(weights):
            raise KeyError(f"weights do not match the model: missing {sorted(set(variables) - set(weights))}, "
                           f"unexpected {sorted(set(weights) - set(variables))}")  # fmt: skip
        for name, var in variables.items():
            if tuple(var.shape) != weights[name].shape:
                raise ValueError(f"{name}: model has shape {tuple(var.shape)}, weights have {weights[name].shape}")
            var.assign(weights[name])

    def forward_flops(self, state: keras.Model, input_shape: tuple[int, int, int]) -> float:
        return keras_perf.forward_flops(state, input_shape)

    def matmul(self, n: int, precision: str) -> Any:
        return keras_perf.matmul(n, precision)

    def profile_ops(self, run: Any, top: int = 10) -> tuple[float, list[dict[str, Any]]]:
        return keras_perf.profile_ops(run, top)

    def profile_start(self) -> None:
        self._profile_dir = keras_perf.profile_start()

    def profile_stop(self, top: int = 10) -> list[dict[str, Any]]:
        return keras_perf.profile_stop(self._profile_dir, top)


class StepHooks(keras.callbacks.Callback):
    """bench's per-step hooks inside the one ``fit`` call: step i ends where step i + 1 begins.

    Only ``on_train_batch_begin`` and ``on_epoch_end`` are overridden, on purpose: a callback
    that overrides ``on_train_batch_end`` makes Keras convert each step's logs to host floats
    synchronously (it turns off its asynchronous callback dispatch), which on a GPU would drain
    the queue every step -- a sync the bare ``fit`` does not have. The end of the last step is
    ``on_epoch_end``, which Keras calls after reading the epoch's metrics (the step has finished).
    ``steps_per_execution`` stays 1 (Keras's default): one callback per optimiser step; on the
    CPU each train step then returns when it has run.
    """

    def __init__(self, hooks: Any) -> None:
        super().__init__()
        self.hooks, self.step = hooks, -1

    def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
        if self.step >= 0:
            self.hooks.on_step_end(self.step)
        self.step = batch
        self.hooks.on_step_begin(batch)

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if self.step >= 0:
            self.hooks.on_step_end(self.step)


# Training-only augmenters by model (kept off the model so its layers stay the catalog's graph).
_AUGMENT: weakref.WeakKeyDictionary[keras.Model, Any] = weakref.WeakKeyDictionary()

# Registers the big catalog models (resnet101, convnext_tiny); imported last because that module
# registers into MODELS above.
from backends import keras_models, keras_perf  # noqa: E402, F401
from backends.keras_augment import HostImages, augmenter, batches  # noqa: E402
