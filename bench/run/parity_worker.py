"""One backend's part of a training-parity check: ``python -m bench.run.parity_worker JOB.json [JOB.json ...]``.

Each job (bench.core.parity.ParityJob): build the task's model, start from the given reference-layout weights
(or export its own seeded init), apply the alignments, train the handed-over order batch by batch up to every
checkpoint, and write the weights (reference layout) and held-out logits at step 0 and each checkpoint. Jobs
share the process, so a backend's import is paid once for several models. No metric is computed here.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import numpy as np

from bench.core.backend import BackendInfo
from bench.core.cpus import restrict_to_handed_cores
from bench.core.parity import ParityJob, parity_train


def run(job: ParityJob) -> None:
    from backends import load_backend
    from bench.core.spec import spec_from_dict

    backend = load_backend(job.backend)
    spec = spec_from_dict(job.spec)
    backend.configure(spec.runtime, job.seed)
    # with weights to start from, the build's own draws are thrown away (Keras/JAX draws them with no XLA compile)
    build = backend.build_to_import if job.initial else backend.build
    model = build(spec.model, job.input_shape, job.n_outputs)
    state = backend.compile(model, parity_train(spec.train), spec.runtime)
    if job.initial:
        with np.load(job.initial, allow_pickle=False) as f:
            backend.import_weights(state, {k: f[k] for k in f.files})
    backend.align(state, job.alignments)
    with np.load(job.data, allow_pickle=False) as f:
        x, y, held, order = f["x"], f["y"], f["held"], f["order"]
    train, held_data = backend.put(x, y), backend.put(held, np.zeros(len(held), np.int64))
    bs = spec.train.batch_size
    out: dict[str, np.ndarray] = {}

    def read(step: int) -> None:
        for name, value in backend.export_weights(state).items():
            out[f"w/{step}/{name}"] = value
        out[f"logits/{step}"] = backend.predict(state, held_data, len(held))

    read(0)
    done = 0
    for step in job.checkpoints:
        backend.train_epoch(state, train, order[done * bs : step * bs], bs)
        done = step
        read(step)
    np.savez(job.out, allow_pickle=False, **out)


def _loads_torch_beside(job: ParityJob, info: BackendInfo) -> bool:
    """Whether this job's process may hold torch beside another framework: a TensorFlow engine, or any
    backend but the parity reference converting a zoo model (a ``zoo:`` id or a big catalog model) through its
    twin in the reference (torch) build (torchvision's import then loads torch's _dynamo and triton, which
    segfaults once TensorFlow or jaxlib is loaded: Keras/JAX on an Intel Xeon). ``info``: the backend's
    description."""
    from bench.core.catalog import architecture

    arch = str(job.spec.get("model", {}).get("arch", ""))
    try:
        zoo = bool(architecture(arch).zoo)
    except KeyError:  # "layers" (the task's own list) or an id the worker will refuse itself
        zoo = False
    return "tensorflow" in info.requires or (zoo and not info.parity_reference)


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m bench.run.parity_worker JOB.json [JOB.json ...]", file=sys.stderr)
        return 2
    restrict_to_handed_cores()  # the lane's cores (bench.run.parity.lanes), before any framework is imported
    from backends import describe

    jobs = [ParityJob.from_dict(json.loads(Path(path).read_text())) for path in argv]
    if any(_loads_torch_beside(job, describe(job.backend)) for job in jobs):
        with contextlib.suppress(ImportError):  # torch and its _dynamo first, else triton's import segfaults
            import torch._dynamo  # noqa: F401
    for job in jobs:  # a job that fails is reported and the next one runs: the parent says which and why
        try:
            run(job)
        except Exception as e:
            print(
                f"@@parity-failed {job.out} {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}", flush=True
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
