"""Grad-CAM and saliency, computed once for both backends, and what they cost.

Backends supply only the framework part (``layer_gradients``, ``input_gradients``:
activations and gradients as NHWC numpy); everything from there on — channel weights,
the weighted map, ReLU, upsampling, normalisation, saliency, timing — is this module,
so the two frameworks' maps differ only where their numbers differ.

The explained class is each image's *predicted* class by default (``explain.target =
"true"`` explains the label instead); the score is its logit (a one-logit binary head:
the logit for class 1, minus the logit for class 0; see ``metrics.class_score_signs``).
"""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.core import metrics
from bench.core.catalog import architecture
from bench.core.phase import PhaseFunctions, Trained
from bench.core.preprocess import minmax
from bench.core.record import EXPLAIN_COLUMNS
from bench.core.runfiles import write_atomic
from bench.measure.timing import SyncTimer

# Each call is warmed up once (tracing, allocator), then the calls are timed in interleaved
# rounds, so a burst of load from elsewhere hits forward and Grad-CAM alike; medians are
# reported. At least MIN_ROUNDS, more (up to MAX_ROUNDS) while under ROUNDS_BUDGET_S: small
# models get 25 rounds of milliseconds; a round of Keras ResNet101 on CPU takes 1.6 s (its
# saliency call alone 1.5 s), where three rounds already average over seconds of work.
MIN_ROUNDS, MAX_ROUNDS, ROUNDS_BUDGET_S = 3, 25, 0.5


@functools.lru_cache(maxsize=64)
def bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of 1-D bilinear resizing with half-pixel centres (cv2, torch align_corners=False)."""
    src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = (src - lo).astype(np.float32)
    m = np.zeros((n_out, n_in), dtype=np.float32)
    np.add.at(m, (np.arange(n_out), lo), 1 - frac)
    np.add.at(m, (np.arange(n_out), hi), frac)
    m.flags.writeable = False  # shared by every call through the cache
    return m


def upsample(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of (N, h, w) maps to (N, H, W): two small matrix products, no image library."""
    ry, rx = bilinear_matrix(maps.shape[1], size[0]), bilinear_matrix(maps.shape[2], size[1])
    return ry @ maps.astype(np.float32, copy=False) @ rx.T


def gradcam(acts: np.ndarray, grads: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Grad-CAM from (N, h, w, C) activations and gradients: maps (N, H, W) in [0, 1].

    Channel weights are the spatial mean of the gradients; the map is the ReLU of the
    weighted channel sum, bilinearly upsampled to the input size, then min-max normalised.
    """
    if acts.shape != grads.shape or acts.ndim != 4:
        raise ValueError(f"activations {acts.shape} and gradients {grads.shape} must both be (N, h, w, C)")
    n, h, w, c = acts.shape
    weights = grads.mean(axis=(1, 2))
    cam = np.maximum((acts.reshape(n, h * w, c) @ weights[:, :, None]).reshape(n, h, w), 0)
    return minmax(upsample(cam, size))


def saliency(input_grads: np.ndarray) -> np.ndarray:
    """Saliency (N, H, W): the largest |d score / d input| over the input channels of each pixel."""
    return np.abs(input_grads).max(axis=3)


def backend_gradcam(
    backend: Any,
    state: Any,
    data: Any,
    layer: str,
    columns: np.ndarray,
    signs: np.ndarray,
    size: tuple[int, int],
    seen: dict[str, Any] | None = None,
) -> np.ndarray:
    """Grad-CAM maps (N, H, W) of a backend's model: its gradients, this module's arithmetic. ``seen["hw"]`` gets
    the layer's spatial size: a 1x1 output (ConvNeXt's trunk at 32 px) leaves one value per image, a flat map."""
    acts, grads = backend.layer_gradients(state, data, layer, columns, signs)
    if seen is not None:
        seen["hw"] = acts.shape[1:3]
    return gradcam(acts, grads, size)


def backend_saliency(backend: Any, state: Any, data: Any, columns: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """Saliency maps (N, H, W) of a backend's model: its input gradients, this module's arithmetic."""
    return saliency(backend.input_gradients(state, data, columns, signs))


def target_layer(spec: Any) -> str:
    """The spec's ``explain.layer``, or the catalog's last conv layer (named alike in both backends)."""
    return spec.explain.layer or architecture(spec.model).last_conv


def picture_indices(y: np.ndarray, n_classes: int, n_images: int) -> np.ndarray:
    """Images to draw: ``n_images // n_classes`` per class (at least one; 3 cats + 3 dogs for 2 classes
    and the default 6), the first of each class in the test set, at most max(n_images, 10) in all."""
    per_class = max(1, n_images // n_classes)
    cap = max(n_images, min(10, n_classes))
    picked = [i for c in range(n_classes) for i in np.flatnonzero(y == c)[:per_class]]
    return np.asarray(picked[:cap], dtype=np.int64)


def interleaved_medians(
    calls: dict[str, Callable[[], Any]], timer: SyncTimer
) -> tuple[dict[str, float], dict[str, Any]]:
    """Median seconds of each call over interleaved synchronised rounds (warm-up excluded), and its last result."""
    results = {name: fn() for name, fn in calls.items()}
    times: dict[str, list[float]] = {name: [] for name in calls}
    started = time.perf_counter()
    rounds = 0
    while rounds < MIN_ROUNDS or (rounds < MAX_ROUNDS and time.perf_counter() - started < ROUNDS_BUDGET_S):
        for name, fn in calls.items():
            timer.start()
            results[name] = fn()
            times[name].append(timer.stop())
        rounds += 1
    return {name: statistics.median(t) for name, t in times.items()}, results


def explain_phase(t: Trained) -> dict[str, Any]:
    """The worker phase: time Grad-CAM, saliency and a forward pass on one batch; save the drawn maps."""
    spec = t.spec.explain
    if not (spec.gradcam or spec.saliency):
        return {}
    started = time.perf_counter()
    backend, state = t.backend, t.state
    drawn = picture_indices(t.y_test, len(t.classes), spec.n_images)
    rest = np.setdiff1d(np.arange(len(t.y_test)), drawn)[: max(0, spec.batch_size - len(drawn))]
    idx = np.concatenate([drawn, rest])
    x, y = t.floats(t.x_test[idx]), t.y_test[idx]
    data = backend.put(x, y)
    timer = SyncTimer(backend.synchronize)
    n = len(idx)

    layer = target_layer(t.spec)
    logits = backend.forward(state, data)
    pred = metrics.probabilities(logits).argmax(1)
    columns, signs = metrics.class_score_signs(logits.shape[1], pred if spec.target == "predicted" else y)
    size = x.shape[1:3]
    calls: dict[str, Callable[[], Any]] = {"forward": lambda: backend.forward(state, data)}
    seen: dict[str, Any] = {}
    if spec.gradcam:
        calls["gradcam"] = lambda: backend_gradcam(backend, state, data, layer, columns, signs, size, seen)
    if spec.saliency:
        calls["saliency"] = lambda: backend_saliency(backend, state, data, columns, signs)
    seconds, results = interleaved_medians(calls, timer)
    out: dict[str, Any] = {"explain_layer": layer, "explain_images": n}
    if "hw" in seen:
        out["gradcam_layer_hw"] = "x".join(str(v) for v in seen["hw"])
    out.update({f"{name}_ms_per_img": 1000 * s / n for name, s in seconds.items()})
    if spec.gradcam and seconds["forward"] > 0:
        out["gradcam_forward_ratio"] = seconds["gradcam"] / seconds["forward"]
    maps = {name: results[name] for name in ("gradcam", "saliency") if name in results}
    where = t.artifact("explain")
    if where is not None:
        path, out["explain_file"] = where
        k = len(drawn)
        write_atomic(
            path.parent,
            path,
            lambda f: np.savez_compressed(
                f,
                x=x[:k],
                y_true=y[:k],
                y_pred=pred[:k],
                classes=np.asarray(t.classes),
                layer=np.asarray(layer),
                target=np.asarray(spec.target),  # whose class the maps explain, for the figure's title
                **{name: m[:k] for name, m in maps.items()},
            ),
        )
    out["explain_s"] = time.perf_counter() - started  # the whole phase, warm-up and saving included
    cost = [f"forward {out['forward_ms_per_img']:.3f}"] + [
        f"{k} {out[f'{k}_ms_per_img']:.3f}" for k in ("gradcam", "saliency") if f"{k}_ms_per_img" in out
    ]
    print(f"@@ explain ({layer}, {n} images): ms/img " + ", ".join(cost), flush=True)
    return out


PHASE = PhaseFunctions(
    name="explain",
    columns=EXPLAIN_COLUMNS,
    run=explain_phase,
)
