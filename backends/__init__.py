"""Framework backends behind one small interface (see ``backends.base.Backend``).

The registry names each backend's module and the packages it needs, so the
runner can report "skipped: <package> not installed" without importing any
framework in the parent process.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass

from backends.base import Backend


@dataclass(frozen=True)
class BackendInfo:
    name: str
    module: str
    framework: str
    requires: tuple[str, ...]  # importable top-level packages
    display: str = ""  # short label for tables and plots ("" = the name)


BACKENDS: dict[str, BackendInfo] = {
    b.name: b
    for b in (
        BackendInfo("torch", "backends.torch_backend", "pytorch", ("torch", "torchvision"), "PyTorch"),
        BackendInfo("keras", "backends.keras_backend", "keras-tensorflow", ("tensorflow", "keras"), "Keras/TF"),
    )
}


def missing_packages(name: str) -> list[str]:
    """Packages a backend needs that cannot be found (checked without importing them)."""
    return [p for p in BACKENDS[name].requires if importlib.util.find_spec(p) is None]


def load_backend(name: str) -> Backend:
    """Import one backend's module (and so its framework) and instantiate it."""
    if name not in BACKENDS:
        raise KeyError(f"unknown backend {name!r} (known: {', '.join(BACKENDS)})")
    return importlib.import_module(BACKENDS[name].module).Backend()
