"""One Keras engine measured against torch in a process of its own: ``python -m tests.keras_engine_probe NAME``.

A process imports Keras under one engine only (``KERAS_BACKEND``, set by the registry before
the import), so the per-engine tests run this and read one JSON line: parity with torch for
every small-model case (``tests.parity``), the peak-FLOP matmul in fp32 and bf16, and with
``--big`` the parameter counts of the keras.applications models.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def main(argv: list[str]) -> int:
    import torch._dynamo  # noqa: F401 - torch (with _dynamo) strictly before tensorflow: the other order segfaults

    from backends import load_backend
    from backends.torch import backend as torch_backend
    from bench.core.spec import ModelSpec, RuntimeSpec
    from tests import parity

    name, big = argv[0], "--big" in argv
    keras_backend = load_backend(name)
    out: dict[str, Any] = {"backend": keras_backend.name, "cases": {}, "big_params": {}}
    for case, (spec, shape, n_outputs) in parity.CASES.items():
        torch_side = parity.build(torch_backend, spec, shape, n_outputs)
        keras_side = parity.build(keras_backend, spec, shape, n_outputs)
        out["cases"][case] = parity.compare(torch_side, keras_side, "torch->keras", spec, shape, n_outputs)
    out["throwaway"] = [throwaway(keras_backend, how) for how in ("build", "build_to_import")]
    for precision in ("fp32", "mixed_bf16"):  # the peak-FLOP matmul, read back on every engine
        keras_backend.matmul(64, precision)()
    out["matmul"] = "ok"
    if big:
        keras_backend.configure(RuntimeSpec(), seed=0)
        for arch in ("resnet101", "convnext_tiny"):
            built = keras_backend.build(ModelSpec(arch=arch), (32, 32, 3), 2)
            out["big_params"][arch] = keras_backend.count_params(built)
    print("@@probe " + json.dumps(out))
    return 0


def throwaway(backend: Any, how: str) -> dict[str, Any]:
    """LeNet-5 built ``how`` from seed 0: its weights as drawn (flat), the names of those an import then set, and
    the process's next draw."""
    import keras
    import numpy as np

    from bench.core.spec import RuntimeSpec
    from tests import parity

    spec, shape, n_outputs = parity.CASES["lenet5-relu-avg"]
    backend.configure(RuntimeSpec(), seed=0)
    state = backend.compile(getattr(backend, how)(spec, shape, n_outputs), parity.TRAIN, RuntimeSpec())
    drawn = backend.export_weights(state)
    backend.import_weights(state, {k: np.full_like(v, 0.5) for k, v in drawn.items()})
    return {
        "drawn": {k: v.ravel().tolist() for k, v in drawn.items()},
        "imported": sorted(k for k, v in backend.export_weights(state).items() if (v == 0.5).all()),
        "after": np.asarray(keras.random.uniform((5,))).tolist(),
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
