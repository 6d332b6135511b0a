"""Framework backends behind one small interface (see ``backends.base.Backend``), in registry order.

The registry names each backend's module, the packages it needs and the environment it must
be imported under, so the runner can report "skipped: <package> not installed" without
importing any framework in the parent process. Each backend folder describes itself in a
framework-free ``DESCRIPTIONS`` tuple; this module only collects them.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from backends.base import Backend


@dataclass(frozen=True)
class BackendInfo:
    """What central code may know about a backend without importing its framework."""

    name: str  # registry name, the records' ``backend`` column
    module: str  # importable module holding ``class Backend``
    framework: str
    requires: tuple[str, ...]  # importable top-level packages
    env: tuple[tuple[str, str], ...] = ()  # set in os.environ before ``module`` is imported
    display: str = ""  # short label for tables and plots
    default: bool = False  # in the default backend set of ``run`` / ``all``
    flop_counter: str = ""
    known_differences: tuple[str, ...] = ()  # written into each row's notes
    knob_columns: Callable[[dict[str, Any], Any], dict[str, Any]] | None = None  # (knobs, spec) -> columns


# Imported after BackendInfo: the backend folders' descriptions are built from it (the lead
# re-points this to bench/core/backend.py when the core layout lands).
from backends.keras import DESCRIPTIONS as _KERAS  # noqa: E402

_TORCH = (
    BackendInfo(
        "torch", "backends.torch_backend", "pytorch", ("torch", "torchvision"), display="PyTorch", default=True,
        flop_counter="torch.utils.flop_counter forward x3",
    ),
)  # fmt: skip

BACKENDS: dict[str, BackendInfo] = {b.name: b for b in (*_TORCH, *_KERAS)}
DEFAULT_BACKENDS: tuple[str, ...] = tuple(b.name for b in BACKENDS.values() if b.default)


def missing_packages(name: str) -> list[str]:
    """Packages a backend needs that cannot be found (checked without importing them)."""
    return [p for p in BACKENDS[name].requires if importlib.util.find_spec(p) is None]


def load_backend(name: str) -> Backend:
    """Set the backend's environment (e.g. KERAS_BACKEND), import its module (and framework), instantiate it.

    The environment must be in place before the framework's first import in this process: a
    process that already imported Keras under another engine cannot switch (checked here).
    """
    if name not in BACKENDS:
        raise KeyError(f"unknown backend {name!r} (known: {', '.join(BACKENDS)})")
    info = BACKENDS[name]
    for key, value in info.env:
        keras = sys.modules.get("keras")
        if key == "KERAS_BACKEND" and keras is not None and keras.backend.backend() != value:
            raise RuntimeError(f"{name}: keras is already imported with KERAS_BACKEND={keras.backend.backend()!r}")
        os.environ[key] = value
    return importlib.import_module(info.module).Backend()
