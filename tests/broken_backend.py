"""The numpy test backend with a typo in its own imports: the module it names is none of ours and no framework's.

Registered as ``broken`` (tests/numpy_backend.py ``register``): its rows must fail with that ImportError (the code's
fault, kept by the history), not be skipped as a framework that is not installed would be (``backends.not_installed``).
"""

from __future__ import annotations

import tests.numpy_backnd  # noqa: F401  # the typo: tests.numpy_backend
from tests.numpy_backend import Backend  # noqa: F401
