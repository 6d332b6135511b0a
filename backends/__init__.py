"""The one registry of backends: every name the suite knows, in the order reports show them.

Each backend folder describes itself in a framework-free ``__init__`` (``DESCRIPTIONS``, a tuple
of ``bench.core.backend.BackendInfo``); this module collects them, so the runner's parent
process can list backends, say "skipped: <package> not installed" and label reports without
importing any framework. ``load_backend`` is the only way ``bench`` reaches a backend module:
it sets the description's ``env`` (e.g. KERAS_BACKEND) and then imports it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Any

from backends import torch as torch_backends
from bench.core.backend import Backend, BackendInfo


def _keras_knob_columns(knobs: dict[str, Any], spec: Any) -> dict[str, Any]:
    compiled = "tf.function + XLA (jit_compile)" if spec.runtime.jit_compile else "tf.function (no XLA)"
    return {"compiled": compiled, "tf32": str(knobs.get("tf32"))}


# keras-engines moves this into backends/keras/__init__.py (with keras-jax and keras-torch).
KERAS = BackendInfo(
    name="keras",
    module="backends.keras_backend",
    framework="keras-tensorflow",
    requires=("tensorflow", "keras"),
    env=(("KERAS_BACKEND", "tensorflow"),),
    display="Keras/TF",
    default=True,
    flop_counter="keras layer walk (conv/dense multiply-adds x2, as torch's counter) forward x3",
    known_differences=(
        "keras: Adam epsilon is added before bias correction (torch: after)",
        "keras: model.fit reads uint8 host arrays through a batched tf.data map (normalise, augment) "
        "(torch: uint8 split on the device, or streamed when over runtime.device_data_mb; normalised there)",
        "keras: tf.data autotuning off (on, its thread stalls the end of some fit calls by ~0.85 s; docs/timing.md)",
    ),
    knob_columns=_keras_knob_columns,
)

BACKENDS: dict[str, BackendInfo] = {b.name: b for b in (*torch_backends.DESCRIPTIONS, KERAS)}


def describe(name: str) -> BackendInfo:
    """A registered backend's description; KeyError naming the known ones otherwise."""
    if name not in BACKENDS:
        raise KeyError(f"unknown backend {name!r} (known: {', '.join(BACKENDS)})")
    return BACKENDS[name]


def names() -> tuple[str, ...]:
    """Every registered backend, in registry order (``--backend all``)."""
    return tuple(BACKENDS)


def default_names() -> tuple[str, ...]:
    """The backends ``run`` and ``all`` use when ``--backend`` is not given."""
    return tuple(b.name for b in BACKENDS.values() if b.default)


def missing_packages(name: str) -> list[str]:
    """Packages a backend needs that cannot be found (checked without importing them)."""
    return [p for p in describe(name).requires if importlib.util.find_spec(p) is None]


def load_backend(name: str) -> Backend:
    """Set the backend's environment, import its module (and so its framework), instantiate it.

    The instance's ``name`` is the registry name, whichever class serves it.
    """
    info = describe(name)
    for key, value in info.env:
        os.environ[key] = value
    backend = importlib.import_module(info.module).Backend()
    backend.name = name
    return backend
