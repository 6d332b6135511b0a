"""One Keras engine measured against torch in a process of its own: ``python -m tests.keras_engine_probe NAME``.

A process imports Keras under one engine only (``KERAS_BACKEND``, set by the registry before
the import), so the per-engine tests run this and read one JSON line: parity with torch for
every small-model case (``tests.parity``), the peak-FLOP matmul in fp32 and bf16, and with
``--big`` the parameter counts of the keras.applications models.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Any

ZOO_DRAWS = "mobilenet"  # the zoo's smallest convertible row: its build draws the fewest initialiser shapes


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
        keras_side = parity.build(keras_backend, spec, shape, n_outputs, to_import=True)  # torch's weights copied in
        out["cases"][case] = parity.compare(torch_side, keras_side, "torch->keras", spec, shape, n_outputs)
    out["throwaway"] = [throwaway(keras_backend, how) for how in ("build", "build_to_import")]
    if name == "keras-jax":  # the engine whose throwaway draws differ (the others' are a null context)
        out["zoo_draws"] = zoo_draws(keras_backend)
    for precision in ("fp32", "mixed_bf16"):  # the peak-FLOP matmul, read back on every engine
        keras_backend.matmul(64, precision)()
    out["matmul"] = "ok"
    out["seeding"] = seeding(name)
    out["jax_imported"] = sys.modules.get("jax") is not None  # the whole process's: builds, parity, matmuls
    out["one_pass_variance"] = one_pass_variance()
    if big:
        keras_backend.configure(RuntimeSpec(), seed=0)
        for arch in ("resnet101", "convnext_tiny"):
            built = keras_backend.build(ModelSpec(arch=arch), (32, 32, 3), 2)
            out["big_params"][arch] = keras_backend.count_params(built)
    print("@@probe " + json.dumps(out))
    return 0


def one_pass_variance() -> bool:
    """Whether the engine's ``keras.ops.moments`` (BatchNorm's batch statistics) computes the variance in one pass,
    E[x^2] - E[x]^2: float32 values of mean 1e4 and spread 1 leave it far off, where the mean of squared deviations
    is within float32's rounding."""
    import keras
    import numpy as np

    x = (1e4 + np.random.default_rng(0).standard_normal((256, 4))).astype(np.float32)
    _, variance = keras.ops.moments(keras.ops.convert_to_tensor(x), axes=[0])
    exact = x.astype(np.float64).var(axis=0)
    return bool(np.max(np.abs(np.asarray(keras.ops.convert_to_numpy(variance)) - exact) / exact) > 1e-2)


def seeding(name: str) -> dict[str, Any]:
    """Whether this engine's rows so far imported TensorFlow (``backends.keras.seeding``), and the draws after its
    seeding against those after Keras's own ``set_random_seed`` (which imports TensorFlow where it can: so second)."""
    import random

    import keras
    import numpy as np

    from backends.keras.seeding import set_random_seed

    def draws() -> list[Any]:
        return [np.asarray(keras.random.uniform((3,))).tolist(), np.random.rand(2).tolist(), random.random()]

    imported = "tensorflow" in sys.modules
    set_random_seed(7, tensorflow=name == "keras")
    ours = draws()
    keras.utils.set_random_seed(7)
    return {"tensorflow_imported": imported, "same_draws": ours == draws()}


def throwaway(backend: Any, how: str) -> dict[str, Any]:
    """LeNet-5 built ``how`` from seed 0: its weights as drawn (flat), the names of those an import then set, and
    the process's next draw."""
    import keras
    import numpy as np

    from bench.core.spec import RuntimeSpec
    from tests import parity

    spec, shape, n_outputs = parity.CASES["lenet5-relu-avg"]
    backend.configure(RuntimeSpec(), seed=0)
    with xla_compiles() as compiled:
        model = getattr(backend, how)(spec, shape, n_outputs)
    state = backend.compile(model, parity.TRAIN, RuntimeSpec())
    drawn = backend.export_weights(state)
    backend.import_weights(state, {k: np.full_like(v, 0.5) for k, v in drawn.items()})
    return {
        "drawn": {k: v.ravel().tolist() for k, v in drawn.items()},
        "imported": sorted(k for k, v in backend.export_weights(state).items() if (v == 0.5).all()),
        "after": np.asarray(keras.random.uniform((5,))).tolist(),
        "xla_compiles": len(compiled),  # while it built (JAX only: the others' list stays empty)
    }


@contextlib.contextmanager
def xla_compiles() -> Iterator[list[float]]:
    """The XLA programs JAX compiles inside (each one's compile seconds); nothing where JAX is not imported."""
    out: list[float] = []
    if sys.modules.get("jax") is None:  # not imported, or blocked (None): the other engines
        yield out
        return
    from jax import monitoring

    def listen(event: str, seconds: float, **_: Any) -> None:
        if event == "/jax/core/compile/backend_compile_duration":
            out.append(seconds)

    monitoring.register_event_duration_secs_listener(listen)
    try:
        yield out
    finally:
        monitoring.unregister_event_duration_listener(listen)


def zoo_draws(backend: Any, zoo_id: str = ZOO_DRAWS) -> dict[str, Any]:
    """``zoo_id`` built from seed 0 for 10 classes (a fresh head): random-init, and from a torch weights file with the
    engine's throwaway draws and with them turned off (a null context): a digest of every weight and how often the
    build took the throwaway draws."""
    import contextlib
    import hashlib
    import tempfile
    from pathlib import Path

    import keras
    import numpy as np
    import torch

    from backends.keras import zoo as keras_zoo
    from backends.torch import zoo as torch_zoo
    from bench.core.spec import ModelSpec, RuntimeSpec

    real, out = backend.engine.throwaway_draws, {}
    convert = keras_zoo._load_converted
    keras_zoo._load_converted = converted_once(convert)  # the two pretrained builds read one file: converted once
    with tempfile.TemporaryDirectory(prefix="bench-probe-") as tmp:
        path = Path(tmp) / f"{zoo_id}.pth"
        torch.manual_seed(1)
        torch.save(torch_zoo.library_model(zoo_id, 1000).state_dict(), path)
        # a random-init build never takes the path (so its draws with the path off are the same by construction):
        # built once, to count; the pretrained build with the path on and off, to compare every weight
        for pretrained, cheap in ((False, True), (True, True), (True, False)):
            taken: list[int] = []

            def spy(cheap: bool = cheap, taken: list[int] = taken) -> Any:
                taken.append(1)
                return real() if cheap else contextlib.nullcontext()

            backend.engine.throwaway_draws = spy
            backend.configure(RuntimeSpec(), seed=0)
            weights = str(path) if pretrained else ""
            model = backend.build(
                ModelSpec(arch=f"zoo:{zoo_id}", pretrained=pretrained, weights=weights), (32, 32, 3), 10
            )
            digests = {
                f"{i}:{v.path}": hashlib.sha1(np.asarray(keras.ops.convert_to_numpy(v)).tobytes()).hexdigest()
                for i, v in enumerate(model.weights)
            }
            out[f"{'pretrained' if pretrained else 'random'}-{'cheap' if cheap else 'off'}"] = {
                "taken": len(taken),
                "weights": digests,
            }
    backend.engine.throwaway_draws, keras_zoo._load_converted = real, convert
    return out


def converted_once(convert: Any) -> Any:
    """``backends.keras.zoo._load_converted`` that runs its converter subprocess (torch and Keras/torch imported, the
    model built twice: ~12 s of a lane) once per file and sets the weights it gave then on a later build of the
    same file: what the probe compares is the draws around the conversion, not the conversion."""
    import keras
    import numpy as np

    done: dict[tuple[Any, ...], list[Any]] = {}

    def load(lib: Any, zoo_id: str, n_outputs: int, size: int, path: Any) -> None:
        key = (zoo_id, n_outputs, size, str(path))
        if key not in done:
            convert(lib, zoo_id, n_outputs, size, path)
            done[key] = [np.asarray(keras.ops.convert_to_numpy(v)) for v in lib.weights]
            return
        for var, value in zip(lib.weights, done[key], strict=True):
            var.assign(value)

    return load


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
