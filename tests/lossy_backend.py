"""A torch backend with one knob that really trades accuracy for speed: the tuner's accuracy floor must refuse it.

Knob ``freeze`` = ``features`` trains the output layer's bias only (every weight keeps its random initial
value): its backward pass stops at the head, so its steps are faster, and the model learns little more
than the class frequencies. The value rides on ``runtime.channels_last``, which this backend reads as
"freeze" and then leaves off (a test backend cannot add fields to RuntimeSpec). Registered as ``lossy``
in a test's subprocesses by ``LOSSY_SITECUSTOMIZE`` (tests/test_tune_cli.py), as tests/fault_backend.py is.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from backends.torch.backend import Backend as TorchBackend


class Backend(TorchBackend):
    name = "lossy"

    def compile(self, model: Any, train: Any, runtime: Any) -> Any:
        if runtime.channels_last:
            params = list(model.parameters())
            for p in params[:-1]:  # everything but the head's bias
                p.requires_grad_(False)
            runtime = dataclasses.replace(runtime, channels_last=False)
        return super().compile(model, train, runtime)
