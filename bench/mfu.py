"""Model FLOPs utilisation: the model's training FLOPs per second as a fraction of the device's peak.

    flops_per_img = 3 x forward FLOPs of one image   (backward ~ 2 x forward, the usual MFU
                                                     convention: PaLM, Chinchilla, timm)
    mfu = flops_per_img x steady images/s / peak FLOP/s

The forward FLOPs come from each framework's own counter (torch.utils.flop_counter,
TensorFlow's graph profiler), one multiply-add counting 2. The peak is a table entry
for known GPUs (dense, no sparsity) or, otherwise, measured here: the best of a few
large square matmuls in the same framework and precision, timed with the
synchronising timer (cached per process).
"""

from __future__ import annotations

from collections.abc import Callable

from bench.timing import SyncTimer

TRAIN_FLOPS_PER_FORWARD = 3

# Vendor dense peaks in TFLOP/s: (fp32 without TF32, tf32 tensor cores, bf16/fp16 tensor cores).
KNOWN_GPUS: dict[str, tuple[float, float, float]] = {
    "H100 SXM": (67.0, 494.7, 989.4),
    "H100 PCIe": (51.2, 378.0, 756.0),
    "A100": (19.5, 156.0, 312.0),
    "A10G": (31.2, 62.5, 125.0),
    "L4": (30.3, 60.0, 121.0),
    "RTX 4090": (82.6, 82.6, 165.2),
    "RTX 3090": (35.6, 35.6, 71.0),
    "V100": (15.7, 15.7, 125.0),
    "T4": (8.1, 8.1, 65.0),
}


def training_flops_per_image(forward_flops: float) -> float:
    return TRAIN_FLOPS_PER_FORWARD * forward_flops


def known_peak(device: str, precision: str, tf32: bool) -> float | None:
    """The table's dense peak FLOP/s for a GPU named in ``device`` (None if not in the table)."""
    for name, (fp32, tf32_peak, half) in KNOWN_GPUS.items():
        if name.lower() in device.lower():
            if precision != "fp32":
                return half * 1e12
            return (tf32_peak if tf32 else fp32) * 1e12
    return None


_MEASURED: dict[tuple[str, int], float] = {}


def measured_peak(
    key: str, matmul: Callable[[], None], n: int, timer: SyncTimer, repeats: int = 3
) -> float:  # fmt: skip
    """FLOP/s of the fastest of ``repeats`` n x n matmuls (after one untimed warm-up), cached by ``key``."""
    if (key, n) not in _MEASURED:
        matmul()
        best = float("inf")
        for _ in range(repeats):
            timer.start()
            matmul()
            best = min(best, timer.stop())
        _MEASURED[(key, n)] = 2.0 * n**3 / best
    return _MEASURED[(key, n)]


def mfu(flops_per_img: float | None, img_s: float | None, peak_flops: float | None) -> float | None:
    """The fraction of peak the training reached (None when an input is missing)."""
    if not flops_per_img or not img_s or not peak_flops:
        return None
    return flops_per_img * img_s / peak_flops
