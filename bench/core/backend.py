"""The interface every backend implements: framework work only, numpy in and out.

Backends build catalog models, run one training epoch over an order the runner
chooses, predict logits and report what the framework knows about itself
(version, device, threads). They compute no metric and read no clock: timing,
accuracy and everything compared lives in ``bench`` and is written once.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from bench.core.preprocess import PixelNorm
from bench.core.spec import ModelSpec, RuntimeSpec, TrainSpec


class Backend(Protocol):
    name: str  # registry name: "torch" or "keras"

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
        """Attach optimizer and loss; returns the training state used below."""
        ...

    def put(self, x: np.ndarray, y: np.ndarray, norm: PixelNorm | None = None) -> Any:
        """Hand NHWC images and int64 labels to where training reads them, without a float copy on the host.

        uint8 images come with ``norm``: the backend computes ``x * norm.scale + norm.offset`` per
        batch on its device (torch: the uint8 split on the device, or streamed from host memory when
        over ``runtime.device_data_mb``; keras: a batched tf.data map). float32 images (already
        preprocessed, e.g. the explain phase's few) come without it.
        """
        ...

    def prepare_batches(self, state: Any, data: Any, order: np.ndarray, batch_size: int) -> int:
        """Run only ``train_epoch``'s input path over ``order`` (index, move, normalise, augment): no model.

        bench times it (bench.measure.inputpath) for the row's ``input_share``; returns the number of batches.
        """
        ...

    def train_epoch(self, state: Any, data: Any, order: np.ndarray, batch_size: int, hooks: Any = None) -> float:
        """One pass over ``data`` in ``order`` in one training call; returns the mean training loss.

        ``hooks`` (bench.measure.steady.StepClock, or None): ``hooks.on_step_begin(i)`` / ``hooks.on_step_end(i)``
        around each optimiser step, i = the batch's index in this call (torch in its loop, Keras
        from a callback in its one ``fit``). Returning a host float is the synchronisation point.
        """
        ...

    def predict(self, state: Any, data: Any, batch_size: int) -> np.ndarray:
        """Logits (N, n_outputs) as float32 numpy, in inference mode."""
        ...

    def layer_input(self, state: Any, x: np.ndarray, layer: str, batch_size: int) -> np.ndarray:
        """What named ``layer`` receives, (N, ...) float32, in inference mode.

        For the catalog's head layer this is the penultimate feature vector (decoupled features).
        """
        ...

    def layer_outputs(self, state: Any, x: np.ndarray, layers: list[str], batch_size: int) -> dict[str, np.ndarray]:
        """Post-activation outputs of named layers, float32 numpy, inference mode; conv maps as NHWC.

        Post-activation in both frameworks: torch's activation module after the layer, keras's
        fused ``activation=``, so the two backends return the same tensor.
        """
        ...

    def synchronize(self) -> None:
        """Block until queued device work is finished (called before every clock read)."""
        ...

    def peak_device_mb(self) -> float | None:
        """Peak accelerator memory so far, or None on CPU."""
        ...

    # Explainability (bench.phases.explain computes Grad-CAM and saliency from these, once for both).
    # ``columns``/``signs`` pick each image's class score: sign * logits[i, columns[i]]
    # (bench.core.metrics.class_score_signs). Layers are resolved by catalog name; a layer's
    # output is its post-activation map (Keras fuses the activation into Conv2D).

    def forward(self, state: Any, data: Any, layer: str | None = None) -> np.ndarray:
        """Logits of the whole of ``data`` in one inference-mode call, run the way the gradient methods run
        the model (keras: a traced tf.function; ``model.predict``'s per-call overhead would dwarf a small
        batch): the baseline Grad-CAM's cost is compared with.

        ``layer`` (here and in ``input_gradients``): the layer whose gradients the caller also asks
        for. A backend that traces may run all three through one traced function (keras does: one
        trace instead of three); the numbers must not depend on it."""
        ...

    def layer_gradients(
        self, state: Any, data: Any, layer: str, columns: np.ndarray, signs: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Activations of ``layer`` and d(score)/d(activations), both float32 (N, h, w, C), in one pass."""
        ...

    def input_gradients(
        self, state: Any, data: Any, columns: np.ndarray, signs: np.ndarray, layer: str | None = None
    ) -> np.ndarray:
        """d(score)/d(input) as float32 NHWC, the same layout the images were given in."""
        ...

    def get_weights(self, model: Any) -> dict[str, np.ndarray]:
        """Named parameters in the framework's layout: "conv1.weight" OIHW in torch, "conv1.kernel" HWIO in keras."""
        ...

    def set_weights(self, model: Any, weights: dict[str, np.ndarray]) -> None:
        """Load parameters named as ``get_weights`` returns them; every one must be present."""
        ...

    def forward_flops(self, state: Any, input_shape: tuple[int, int, int]) -> float:
        """One image's forward FLOPs by the framework's own counter (a multiply-add = 2)."""
        ...

    def matmul(self, n: int, precision: str) -> Any:
        """A callable running one n x n matmul in ``precision`` (bench times it for the peak FLOP/s)."""
        ...

    def profile_ops(self, run: Any, top: int = 10) -> tuple[float, list[dict[str, Any]]]:
        """``run()`` under the framework's profiler: its result and the top ops [{"op", "ms", "calls"}]."""
        ...

    def profile_start(self) -> None:
        """Start the framework's profiler (the step hooks start it at the first warm-up step)."""
        ...

    def profile_stop(self, top: int = 10) -> list[dict[str, Any]]:
        """Stop it and return the top ops, as ``profile_ops``."""
        ...
