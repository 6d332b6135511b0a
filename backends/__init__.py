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
import sys

from backends import keras as keras_backends
from backends import torch as torch_backends
from bench.core.backend import Backend, BackendInfo

BACKENDS: dict[str, BackendInfo] = {b.name: b for b in (*torch_backends.DESCRIPTIONS, *keras_backends.DESCRIPTIONS)}


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


def not_installed(name: str, error: ImportError) -> bool:
    """Whether ``error``, raised by ``load_backend(name)``, says a package the backend's description requires is
    missing (not installed, or its own import fails: a skipped row) rather than that the backend's own code imports
    what is not there (a typo, a module of ours gone: a failed row, which the history keeps). Until 2026-12-07 every
    ImportError was a skipped row, and a backend broken by our own import read as a framework not installed.

    Told apart by the missing module's top-level package (``error.name``) against ``requires``, and by where the
    error was raised: inside a required package's own import (a shadowed or broken install raises there, whatever
    it names)."""
    required = describe(name).requires
    missing = (error.name or "").partition(".")[0]
    if missing in missing_packages(name):
        return True
    tb = error.__traceback__  # the import system's own frames are left out of an ImportError's traceback
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    raised_in = str(tb.tb_frame.f_globals.get("__name__", "")) if tb is not None else ""
    return raised_in.partition(".")[0] in required


def load_backend(name: str) -> Backend:
    """Set the backend's environment, import its module (and so its framework), instantiate it.

    The environment must be in place before the framework's first import in this process: a
    process that already imported Keras under another engine cannot switch (checked here). The
    description's ``kept_out`` packages are made unimportable first, where not imported yet.
    The instance's ``name`` is the registry name, whichever class serves it.
    """
    info = describe(name)
    for key, value in info.env:
        keras = sys.modules.get("keras")
        if key == "KERAS_BACKEND" and keras is not None and keras.backend.backend() != value:
            raise RuntimeError(f"{name}: keras is already imported with KERAS_BACKEND={keras.backend.backend()!r}")
        os.environ[key] = value
    for package in info.kept_out:
        if package not in sys.modules:  # imported already (a process that needs it): it stays
            sys.modules[package] = None  # type: ignore[assignment]  # "import package" raises ImportError
    backend = importlib.import_module(info.module).Backend()
    backend.name = name
    return backend
