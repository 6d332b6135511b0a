"""Decoupled features (the ResNet101 study), once for both backends.

The trained CNN's penultimate features (what its head layer receives) go to a random
forest and a logistic regression. Their accuracy next to the CNN's own says how much
of the accuracy lives in the learned features rather than in the head; the forest's
importance ranking says how few features carry it. Backends only hand over layer
activations as numpy; every fit, score and choice of images is made here.

The pictures need the trained model, which lives only in the worker process, so the
arrays they are drawn from are saved next to the run (``artifacts/<task>.<backend>.<repeat>.decouple.npz``)
and drawn by ``bench.report.decouple_plots`` when the report is written.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from bench.core.catalog import architecture
from bench.core.phase import PhaseFunctions, Trained
from bench.core.record import DECOUPLE_COLUMNS
from bench.core.runfiles import write_atomic
from bench.core.spec import DecoupleSpec


@dataclass(frozen=True)
class Decoupled:
    rf_acc: float
    logreg_acc: float
    ranking: np.ndarray  # feature indices, most important first (forest's impurity importance)
    importances: np.ndarray
    topk: list[dict[str, float]]  # [{"k", "rf_acc", "logreg_acc"}], k ascending, the last is all features


def top_k_sizes(requested: tuple[int, ...], width: int) -> list[int]:
    """The requested k clamped to the feature width, deduplicated, ascending, always ending with all."""
    return sorted({min(k, width) for k in requested} | {width})


def preload() -> None:
    """Import the estimators the phase fits, before its clock starts: ``decouple_s`` is the phase's work, not a
    module load. They cost a row 0.06-0.21 s (120 modules, after scikit-learn's metrics: the 2-core AMD VM at load
    5-8, 2026-12-07; a torch row's server imports no scikit-learn since, so more there), which were in
    ``decouple_s`` until then. Not preloaded in the server: that would put their ~11 MB in every row's
    ``peak_host_mb``, a row without the phase included; a row that runs the phase pays them in its ``wall_s``."""
    for module in ("sklearn.ensemble", "sklearn.linear_model", "sklearn.pipeline", "sklearn.preprocessing"):
        importlib.import_module(module)


def _forest(cfg: DecoupleSpec, n_jobs: int) -> Any:
    from sklearn.ensemble import RandomForestClassifier  # imported where it runs (``preload``: before the clock)

    return RandomForestClassifier(n_estimators=cfg.n_estimators, random_state=cfg.random_state, n_jobs=n_jobs)


def _logistic(cfg: DecoupleSpec) -> Any:
    # Standardised: the features' scales differ by layer and activation, and lbfgs converges on them.
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=cfg.logreg_max_iter))


def _score(model: Any, f_train: np.ndarray, y_train: np.ndarray, f_test: np.ndarray, y_test: np.ndarray) -> float:
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(y_test, model.fit(f_train, y_train).predict(f_test)))


def fit_and_rank(
    f_train: np.ndarray,
    y_train: np.ndarray,
    f_test: np.ndarray,
    y_test: np.ndarray,
    cfg: DecoupleSpec,
    n_jobs: int = -1,
) -> Decoupled:
    """The forest and the logistic regression on all features, the forest's ranking, then both on the top-k.

    BLAS runs single-threaded here: next to a framework's thread pools in the worker, OpenBLAS's
    threads contend and the logistic regression took 12 s instead of 0.2 s (cifar_cnn, 2 cores).
    """
    with threadpool_limits(1, user_api="blas"):
        return _fit_and_rank(f_train, y_train, f_test, y_test, cfg, n_jobs)


def _fit_and_rank(
    f_train: np.ndarray, y_train: np.ndarray, f_test: np.ndarray, y_test: np.ndarray, cfg: DecoupleSpec, n_jobs: int
) -> Decoupled:
    forest = _forest(cfg, n_jobs)
    rf_acc = _score(forest, f_train, y_train, f_test, y_test)
    logreg_acc = _score(_logistic(cfg), f_train, y_train, f_test, y_test)
    importances = forest.feature_importances_
    ranking = np.argsort(-importances, kind="stable")
    width = f_train.shape[1]
    topk = []
    for k in top_k_sizes(cfg.top_k, width):
        if k == width:
            topk.append({"k": k, "rf_acc": rf_acc, "logreg_acc": logreg_acc})
            continue
        cols = ranking[:k]
        topk.append(
            {
                "k": k,
                "rf_acc": _score(_forest(cfg, n_jobs), f_train[:, cols], y_train, f_test[:, cols], y_test),
                "logreg_acc": _score(_logistic(cfg), f_train[:, cols], y_train, f_test[:, cols], y_test),
            }
        )
    return Decoupled(rf_acc, logreg_acc, ranking, importances, topk)


def train_subset(n: int, max_train: int, seed: int) -> np.ndarray:
    """Indices of the training images the forest learns from: all, or a seeded subset in original order."""
    if not max_train or max_train >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, max_train, replace=False))


def picture_inputs(y: np.ndarray, n: int) -> np.ndarray:
    """One test image per class, the first of each, for the first ``n`` classes in class order: the same
    inputs for every backend. Never two of a class: the first five of a cat/dog test set were 4 cats, 1 dog."""
    return np.array([int(np.flatnonzero(y == c)[0]) for c in np.unique(y)[:n]], dtype=np.int64)


def to_display(x: np.ndarray) -> np.ndarray:
    """uint8 images for drawing: as scaled when the model saw 0..1, else min-max per image."""
    x = x.astype(np.float32)
    if x.size and (x.min() < 0 or x.max() > 1):
        lo = x.min(axis=(1, 2, 3), keepdims=True)
        hi = x.max(axis=(1, 2, 3), keepdims=True)
        x = (x - lo) / np.maximum(hi - lo, 1e-12)
    return (x * 255).round().astype(np.uint8)


def most_activating(features: np.ndarray, feature_ids: np.ndarray, n: int) -> np.ndarray:
    """(len(feature_ids), n) row indices of the highest activations of each feature, highest first."""
    return np.stack([np.argsort(-features[:, j], kind="stable")[:n] for j in feature_ids])


def run(t: Trained) -> dict[str, Any]:
    """The worker phase: record fields, plus the pictures' arrays on disk."""
    cfg: DecoupleSpec = t.spec.decouple
    if not cfg.enabled:
        return {}
    preload()
    started = time.perf_counter()
    arch = architecture(t.spec.model)
    bs = t.spec.eval.batch_size
    idx = train_subset(len(t.y_train), cfg.max_train, cfg.random_state)
    x_fit, y_fit = t.floats(t.x_train[idx]), t.y_train[idx]
    x_test = t.floats(t.x_test)
    f_train = t.backend.layer_input(t.state, x_fit, arch.head, bs).reshape(len(idx), -1)
    f_test = t.backend.layer_input(t.state, x_test, arch.head, bs).reshape(len(t.y_test), -1)
    feature_s = time.perf_counter() - started
    res = fit_and_rank(f_train, y_fit, f_test, t.y_test, cfg, n_jobs=t.spec.runtime.threads or -1)

    top = res.ranking[: cfg.top_features]
    rows = most_activating(f_train, top, cfg.top_images)
    shown = picture_inputs(t.y_test, cfg.n_inputs)
    layers = [*arch.conv_layers, *arch.fc_layers]
    acts = t.backend.layer_outputs(t.state, x_test[shown], layers, bs) if layers else {}
    where = t.artifact("decouple")
    if where is not None:
        path, _ = where
        write_atomic(
            path.parent,
            path,
            lambda f: np.savez_compressed(
                f,
                head=arch.head,
                importances=res.importances,
                top_features=top,
                top_images=to_display(x_fit[rows.ravel()]).reshape(*rows.shape, *x_fit.shape[1:]),
                top_labels=y_fit[rows],
                top_values=np.take_along_axis(f_train[:, top].T, rows, axis=1),
                inputs=to_display(x_test[shown]),
                input_labels=t.y_test[shown],
                classes=np.array(t.classes),
                conv_layers=np.array(arch.conv_layers, dtype=str),
                fc_layers=np.array(arch.fc_layers, dtype=str),
                **{f"act_{name}": a.astype(np.float16) for name, a in acts.items()},
            ),
        )
    seconds = time.perf_counter() - started
    print(
        f"@@ decoupled {f_train.shape[1]} features from {arch.head!r}: RF acc {res.rf_acc:.4f}, "
        f"logreg acc {res.logreg_acc:.4f} ({len(idx)} train images, {seconds:.1f}s, features {feature_s:.1f}s)",
        flush=True,
    )
    return {
        "feature_dim": int(f_train.shape[1]),
        "rf_acc": res.rf_acc,
        "logreg_acc": res.logreg_acc,
        "decouple_n_train": len(idx),
        "decouple_s": seconds,
        "decouple_topk": res.topk,
    }


PHASE = PhaseFunctions(
    name="decouple",
    columns=(*DECOUPLE_COLUMNS, "decouple_topk"),
    run=run,
)
