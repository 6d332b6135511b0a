"""Parity of a torch build and a Keras build of one catalog model, measured once for every Keras engine.

Framework-free itself: it drives whatever backends it is handed. ``test_explain_parity`` uses it
in the test process (Keras on TensorFlow), ``keras_engine_probe`` in one subprocess per engine.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from backends import convert
from bench.core import metrics
from bench.core.catalog import ARCHITECTURES, architecture
from bench.core.layers import param_counts
from bench.core.spec import ModelSpec, RuntimeSpec, TrainSpec, layer_model
from bench.phases import explain

TRAIN = TrainSpec(epochs=1, batch_size=32, lr=1e-3)


def model(arch: str, **options: Any) -> ModelSpec:
    defaults = {k: o.default for k, o in ARCHITECTURES[arch].options.items()}
    return ModelSpec(arch=arch, options=tuple(sorted({**defaults, **options}.items())))


# Every kind of layer, with a batch norm on a map and one on the flattened features, a standalone
# activation after a conv without one, "same" and int padding, a strided conv and an overlapping pool.
EVERY_KIND = [
    {"conv": 8, "kernel": 3, "padding": "same", "activation": "relu"},
    {"batchnorm": True, "momentum": 0.2, "eps": 1e-3},
    {"pool": "max", "size": 2},
    {"conv": 6, "kernel": 3, "stride": 2, "padding": 1},
    {"batchnorm": True},
    {"activation": "tanh"},
    {"pool": "avg", "size": 2, "stride": 1},
    {"dropout": 0.1},
    {"flatten": True},
    {"batchnorm": True},
    {"dense": 16, "activation": "sigmoid"},
    {"dropout": 0.2},
    {"dense": 12},
]
GLOBAL_POOL = [
    {"conv": 4, "kernel": 3, "activation": "relu"},
    {"conv": 6, "kernel": 3, "padding": 1, "activation": "tanh"},
    {"global_pool": "max"},
    {"dense": 8, "activation": "relu"},
]

CASES = {
    "lenet5-relu-avg": (model("lenet5"), (28, 28, 1), 10),
    "lenet5-sigmoid-max-nopad": (
        model("lenet5", activation="sigmoid", pooling="max", conv1_padding=0),
        (28, 28, 1),
        10,
    ),
    "lenet5-tanh": (model("lenet5", activation="tanh"), (28, 28, 1), 10),
    "cifar_cnn": (model("cifar_cnn"), (32, 32, 3), 10),
    "cifar_cnn-binary": (model("cifar_cnn"), (32, 32, 3), 1),  # one logit, class 0 scored as minus it
    "mnist_cnn": (model("mnist_cnn"), (28, 28, 1), 10),
    # task-written layer lists (bench.core.layers): every kind of layer, and a global-pool head
    "layers-every-kind": (layer_model(EVERY_KIND), (16, 16, 3), 5),
    "layers-global-pool": (layer_model(GLOBAL_POOL), (12, 12, 1), 3),
}


def min_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Smallest per-image Pearson correlation; two constant maps that are equal count as 1."""
    out = []
    for x, y in zip(a.reshape(len(a), -1), b.reshape(len(b), -1), strict=True):
        if x.std() == 0 or y.std() == 0:
            out.append(1.0 if np.allclose(x, y) else 0.0)
        else:
            out.append(float(np.corrcoef(x, y)[0, 1]))
    return min(out)


def build(
    backend: Any, spec: ModelSpec, shape: tuple[int, int, int], n_outputs: int, to_import: bool = False
) -> tuple[Any, Any, Any]:
    """A configured backend instance, its model and its compiled state; ``to_import``: the side ``compare`` copies
    every weight into, built as the backend builds a model it imports weights into (``build_to_import``)."""
    b = backend.Backend() if hasattr(backend, "Backend") else backend
    b.configure(RuntimeSpec(), seed=0)
    m = (b.build_to_import if to_import else b.build)(spec, shape, n_outputs)
    return b, m, b.compile(m, TRAIN, RuntimeSpec())


def compare(
    torch_side: tuple[Any, Any, Any],
    keras_side: tuple[Any, Any, Any],
    direction: str,
    spec: ModelSpec,
    shape: tuple[int, int, int],
    n_outputs: int,
) -> dict[str, Any]:
    """Copy the weights one way (bench.convert), then measure how far apart logits and explanations are."""
    (t, tm, ts), (k, km, ks) = torch_side, keras_side
    if direction == "torch->keras":
        k.set_weights(km, convert.torch_to_keras(t.get_weights(tm)))
    else:
        t.set_weights(tm, convert.keras_to_torch(k.get_weights(km)))
    rng = np.random.default_rng(0)
    x, y = rng.random((12, *shape), dtype=np.float32), rng.integers(0, 2, 12)
    td, kd = t.put(x, y), k.put(x, y)
    logits_t, logits_k = t.forward(ts, td), k.forward(ks, kd)
    columns, signs = metrics.class_score_signs(n_outputs, metrics.probabilities(logits_t).argmax(1))
    arch = architecture(spec)
    layer = arch.last_conv
    act_t, grad_t = t.layer_gradients(ts, td, layer, columns, signs)
    act_k, grad_k = k.layer_gradients(ks, kd, layer, columns, signs)
    cam_t, cam_k = explain.gradcam(act_t, grad_t, shape[:2]), explain.gradcam(act_k, grad_k, shape[:2])
    sal_t = explain.backend_saliency(t, ts, td, columns, signs)
    sal_k = explain.backend_saliency(k, ks, kd, columns, signs)
    return {
        "params": [t.count_params(tm), k.count_params(km)],
        # bench.core.layers' own count: (trainable, BatchNorm statistics, which keras counts and torch does not)
        "expected_params": list(param_counts(arch.layers, shape, n_outputs)) if arch.layers else None,
        "logits_shape": [list(logits_t.shape), list(logits_k.shape)],
        "logits_diff": float(np.abs(logits_t - logits_k).max()),
        "predict_diff": float(np.abs(t.predict(ts, td, 5) - k.predict(ks, kd, 5)).max()),
        "act_shape": [list(act_t.shape), list(act_k.shape)],
        "act_diff": float(np.abs(act_t - act_k).max()) if act_t.shape == act_k.shape else None,
        "gradcam_corr": min_correlation(cam_t, cam_k),
        "saliency_shape": [list(sal_t.shape), list(sal_k.shape)],
        "saliency_corr": min_correlation(sal_t, sal_k) if sal_t.shape == sal_k.shape else None,
    }


def check(res: dict[str, Any], shape: tuple[int, int, int], n_outputs: int) -> None:
    """The parity thresholds: equal parameter counts, logits within 1e-4, maps correlated >= 0.999."""
    if res["expected_params"] is None:
        assert res["params"][0] == res["params"][1]
    else:  # torch: the trainable ones; keras: also the BatchNorm moving mean/variance
        trainable, stats = res["expected_params"]
        assert res["params"] == [trainable, trainable + stats]
    assert res["logits_shape"] == [[12, n_outputs]] * 2
    assert res["logits_diff"] <= 1e-4 and res["predict_diff"] <= 1e-4
    assert res["act_shape"][0] == res["act_shape"][1] and res["act_shape"][0][0] == 12  # NHWC, post-activation
    assert res["act_diff"] <= 1e-4
    assert res["gradcam_corr"] >= 0.999
    assert res["saliency_shape"] == [[12, *shape[:2]]] * 2
    assert res["saliency_corr"] >= 0.999
