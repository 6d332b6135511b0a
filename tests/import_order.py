"""torch (with ``torch._dynamo``) before TensorFlow in every test process, whatever the selection runs first.

TensorFlow imported first makes ``import torch._dynamo`` segfault inside triton (both wheels bundle their own
LLVM pieces). A whole run's order happened to import torch first; a developer's selection (a module that imports
Keras at its top, then a test that compiles with torch) crashed the lane with no Python error. ``conftest`` installs
this finder: the first ``import tensorflow`` in the process imports ``torch._dynamo`` before it, where torch is
installed. It finds nothing itself (``find_spec`` returns None), so every import goes on as before.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType


class TorchBeforeTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Sequence[str] | None, target: ModuleType | None = None) -> ModuleSpec | None:
        if name == "tensorflow" and "torch._dynamo" not in sys.modules:
            sys.meta_path.remove(self)  # once: torch's own imports come back through here otherwise
            if importlib.util.find_spec("torch") is not None:
                import torch._dynamo  # noqa: F401
        return None


def install() -> None:
    if not any(isinstance(f, TorchBeforeTensorFlow) for f in sys.meta_path):
        sys.meta_path.insert(0, TorchBeforeTensorFlow())
