"""Peak host memory of the training input path over a synthetic uint8 set, in a process of its own.

``python -m bench.run.rssprobe --backend torch --n 25000 --size 224`` builds an (n, size, size, 3)
uint8 set (every page written), puts it through the backend's input path for a few batches
(the batches ``train_epoch`` trains on: torch's augmented ones; Keras's uint8 gather, its
augmentation being the training model's first layers) and prints one JSON line: the
set's size, the resident memory before it existed and the peak since then (VmHWM, reset first).
The framework is imported and the path run once on a tiny set first, so the figure is the
data's, not the imports'.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys

import numpy as np

import backends
from bench.core.preprocess import PixelNorm
from bench.core.spec import DatasetSpec, ModelSpec, RuntimeSpec, TrainSpec

IMAGENET = DatasetSpec(name="synthetic", mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))


def _status_mb(key: str) -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":")) / 1024  # kB


def reset_peak() -> bool:
    """Restart the peak (VmHWM) from the current RSS (Linux >= 4.0), so an earlier peak cannot hide in it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_mb(since_reset: bool) -> float:
    """Peak RSS: since the reset (VmHWM), else over the process's life (ru_maxrss, KiB on Linux)."""
    return _status_mb("VmHWM") if since_reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic(n: int, size: int) -> np.ndarray:
    """Every page written (untouched zero pages would not count), chunk by chunk: no temporary copy."""
    x = np.empty((n, size, size, 3), np.uint8)
    for i in range(0, n, 256):
        x[i : i + 256] = (np.arange(i, min(i + 256, n)) % 251).astype(np.uint8)[:, None, None, None]
    return x


def run_input_path(backend_name: str, x: np.ndarray, batches: int, batch_size: int) -> None:
    backend = backends.load_backend(backend_name)
    backend.configure(RuntimeSpec(device="cpu"), 0)
    model = backend.build(
        ModelSpec(arch="lenet5", options=(("activation", "relu"), ("pooling", "max"), ("conv1_padding", 0))),
        (32, 32, 3),
        2,
    )
    state = backend.compile(
        model, TrainSpec(epochs=1, batch_size=batch_size, lr=1e-3, augment=("hflip", "rotate10")), RuntimeSpec()
    )
    y = np.zeros(len(x), np.int64)
    data = backend.put(x, y, PixelNorm.from_spec(IMAGENET, 3))
    order = np.random.default_rng(0).permutation(len(x))[: batches * batch_size]
    backend.prepare_batches(state, data, order, batch_size)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.run.rssprobe", description=__doc__)
    p.add_argument("--backend", choices=backends.names(), required=True)
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batches", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=32)
    a = p.parse_args(argv)
    run_input_path(a.backend, synthetic(a.batch_size * 2, a.size), 2, a.batch_size)  # imports, tracing
    # Measured from the RSS right before the set exists: on a machine short of memory the kernel may have
    # dropped file-backed pages (libraries) since the imports' peak, which ru_maxrss would still hold.
    reset = reset_peak()
    before = _status_mb("VmRSS")
    x = synthetic(a.n, a.size)
    run_input_path(a.backend, x, a.batches, a.batch_size)
    peak = peak_mb(reset)
    uint8_mb = x.nbytes / 2**20
    growth = peak - before
    fields = {
        "backend": a.backend,
        "n": a.n,
        "size": a.size,
        "uint8_mb": uint8_mb,
        "rss_before_mb": before,
        "peak_mb": peak,
        "growth_mb": growth,
        "growth_over_uint8": growth / uint8_mb,
    }
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in fields.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
