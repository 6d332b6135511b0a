"""Model FLOPs utilisation: the model's training FLOPs per second as a fraction of the device's peak.

    flops_per_img = 3 x forward FLOPs of one image   (backward ~ 2 x forward, the usual MFU
                                                     convention: PaLM, Chinchilla, timm)
    mfu = flops_per_img x steady images/s / peak FLOP/s

The forward FLOPs come from each framework's own counter (torch.utils.flop_counter,
TensorFlow's graph profiler), one multiply-add counting 2. The peak is a table entry
for known GPUs (dense, no sparsity) or, otherwise, measured here: the best of a few
large square matmuls in the same framework and precision, timed with the
synchronising timer: once per run for each framework, device, precision, threads and cores (``peak_key``),
as long as it was taken on a node within its cores (``reusable_peak``), and again wherever it was not.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable, Mapping
from typing import Any

from bench.core.cpus import cores_text
from bench.core.placement import peak_reads_low
from bench.measure.timing import SyncTimer

TRAIN_FLOPS_PER_FORWARD = 3

# Vendor datasheet peaks in TFLOP/s, dense (half the "with sparsity" figure where the sheet gives
# that one): (fp32 without TF32, tf32, bf16, fp16), tensor cores with fp32 accumulation (for the
# GeForce cards the fp32-accumulate rate, which is what mixed-precision training uses). None: the
# GPU has no such mode (V100/T4: no TF32, no bf16), and MFU falls back to the measured matmul peak.
# Keys are the names the drivers report (``torch.cuda.get_device_name``, TensorFlow's
# ``device_name``), written as tokens; see ``match_gpu`` for the matching rule.
Peaks = tuple[float, float | None, float | None, float | None]
KNOWN_GPUS: dict[str, Peaks] = {
    "H100 HBM3": (67.0, 494.7, 989.4, 989.4),  # H100 SXM5: "NVIDIA H100 80GB HBM3"
    "H100 SXM": (67.0, 494.7, 989.4, 989.4),
    "H100 PCIe": (51.2, 378.0, 756.0, 756.0),
    "H100 NVL": (60.0, 417.5, 835.5, 835.5),
    "GH200": (67.0, 494.7, 989.4, 989.4),
    "H200": (67.0, 494.7, 989.4, 989.4),  # H200 SXM: "NVIDIA H200"
    "H200 NVL": (60.0, 417.5, 835.5, 835.5),
    "H20": (44.0, 74.0, 148.0, 148.0),
    "B200": (75.0, 1100.0, 2250.0, 2250.0),
    "GB200": (90.0, 1250.0, 2500.0, 2500.0),
    "A100": (19.5, 156.0, 312.0, 312.0),  # every A100 (SXM4/PCIe, 40/80 GB) has the same peaks
    "A10": (31.2, 62.5, 125.0, 125.0),
    "A10G": (31.2, 35.0, 70.0, 70.0),  # AWS's A10 variant: half the A10's tensor rate
    "A30": (10.3, 82.0, 165.0, 165.0),
    "A40": (37.4, 74.8, 149.7, 149.7),
    "L4": (30.3, 60.0, 121.0, 121.0),
    "L40": (90.5, 90.5, 181.0, 181.0),
    "L40S": (91.6, 183.0, 362.0, 362.0),
    "T4": (8.1, None, None, 65.0),
    "V100 SXM2": (15.7, None, None, 125.0),
    "V100 PCIe": (14.0, None, None, 112.0),
    "V100S": (16.4, None, None, 130.0),
    "RTX 4090": (82.6, 82.6, 165.2, 165.2),
    "RTX 3090": (35.6, 35.6, 71.0, 71.0),
    "RTX 6000 Ada": (91.1, 182.1, 364.2, 364.2),
    "RTX A6000": (38.7, 77.4, 154.8, 154.8),
}
VENDOR_WORDS = {"nvidia", "tesla", "geforce", "generation"}
# Device-name tokens that do not change the peak (memory size, form factor, memory kind).
NEUTRAL = re.compile(r"\d+gb|sxm\d*|pcie|hbm\d*e?")


def _tokens(name: str) -> list[str]:
    """'NVIDIA A100-SXM4-80GB' -> ['a100', 'sxm4', '80gb'] (vendor words dropped, '-' and spaces split)."""
    return [t for t in re.split(r"[\s\-_]+", name.lower()) if t and t not in VENDOR_WORDS]


def match_gpu(device: str) -> str | None:
    """The table key for a driver-reported GPU name, or None.

    A key matches when its first token is the device's model token exactly (so "L4" never
    matches "L40S", nor "A10" "A100") and each of its other tokens is, or starts, one of the
    device's tokens ("SXM" matches "SXM5", "PCIe" matches "PCIE"), and the device's remaining
    tokens only say memory size or form factor ("80GB", "SXM4"): "RTX 4090 D" or a MIG slice
    ("A100-SXM4-40GB MIG 1g.5gb") is not the table's chip. The key with most tokens wins ("H100
    NVL" over "H100 PCIe"). A model with variants of different peaks and no variant token in the
    name (a bare "V100", "H100") matches nothing: the measured peak is used.
    """
    dev = _tokens(device)
    if not dev:
        return None
    best, best_len = None, 0
    for key in KNOWN_GPUS:
        kt = _tokens(key)
        if kt[0] != dev[0]:
            continue
        covered = {d for d in dev[1:] for k in kt[1:] if d.startswith(k)}
        if not all(any(d.startswith(k) for d in dev[1:]) for k in kt[1:]):
            continue
        if all(d in covered or NEUTRAL.fullmatch(d) for d in dev[1:]) and len(kt) > best_len:
            best, best_len = key, len(kt)
    return best


def training_flops_per_image(forward_flops: float) -> float:
    return TRAIN_FLOPS_PER_FORWARD * forward_flops


def known_peak(device: str, precision: str, tf32: bool) -> float | None:
    """The table's dense peak FLOP/s for the GPU named ``device`` in the row's precision (None if unknown)."""
    key = match_gpu(device)
    if key is None:
        return None
    fp32, tf32_peak, bf16, fp16 = KNOWN_GPUS[key]
    if precision == "mixed_bf16":
        peak = bf16
    elif precision == "mixed_fp16":
        peak = fp16
    else:
        peak = tf32_peak if tf32 and tf32_peak is not None else fp32
    return peak * 1e12 if peak is not None else None


# (key, n) -> (FLOP/s, the node's 1-min load average as its matmuls ended)
_MEASURED: dict[tuple[str, int], tuple[float, float]] = {}


def measured_peak(key: str, matmul: Callable[[], None], n: int, timer: SyncTimer, repeats: int = 3) -> float:
    """FLOP/s of the fastest of ``repeats`` n x n matmuls (after one untimed warm-up), cached by ``key``, with the
    node's load as they ended (``measured_load``)."""
    if (key, n) not in _MEASURED:
        matmul()
        best = float("inf")
        for _ in range(repeats):
            timer.start()
            matmul()
            best = min(best, timer.stop())
        _MEASURED[(key, n)] = (2.0 * n**3 / best, os.getloadavg()[0])
    return _MEASURED[(key, n)][0]


def measured_load(key: str, n: int) -> float | None:
    """The node's 1-min load average as ``measured_peak``'s matmuls for (key, n) ended; None before they ran. On
    a machine loaded beyond its cores the matmuls shared them, so the peak reads low and MFU against it high (Keras
    rows at 77-89% on a loaded 2-core VM)."""
    got = _MEASURED.get((key, n))
    return got[1] if got else None


def peak_key(backend: str, device: str, precision: str, tf32: bool, threads: object, n: int) -> str:
    """What a measured peak depends on, as one string: the node, the framework, its device and precision (and TF32),
    the threads it ran and the cores it was allowed, the matmul's size. Two rows of a run with the same key time the
    same matmul on the same silicon, so the second may read the first's peak (``reusable_peak``)."""
    cores = cores_text(sorted(os.sched_getaffinity(0))) if hasattr(os, "sched_getaffinity") else "?"
    return f"{socket.gethostname()}|{backend}|{device}|{precision}|tf32={tf32}|threads={threads}|cores={cores}|n={n}"


def reusable_peak(record: Mapping[str, Any]) -> tuple[str, list[float]] | None:
    """(``peak_key``, [FLOP/s, load]) of a row's peak for the run's later rows to read, or None: only a peak this row
    measured itself (not one it read), and none that reads low (``peak_reads_low``: a loaded node, others on its
    cores, an MFU above 100%): the next row with its key measures again, and may keep a truer one. Re-measured in
    every row until 2026-12-07, the best of three 2048^2 matmuls cost each row 0.4-0.8 s idle on a 2-core AMD VM (2 s
    at load 3) and read the same figure within its noise."""
    key, peak, load = record.get("peak_flops_key"), record.get("peak_flops"), record.get("peak_flops_load")
    if not isinstance(key, str) or record.get("peak_flops_reused") or record.get("status") != "ok":
        return None
    if not isinstance(peak, int | float) or isinstance(peak, bool) or not peak > 0:
        return None
    if not isinstance(load, int | float) or peak_reads_low(record):
        return None
    return key, [float(peak), float(load)]


def loaded_peak_note(record: Mapping[str, Any]) -> str | None:
    """The row's note where its measured peak reads low (``peak_reads_low``): its MFU is then not the figure to
    read unqualified."""
    if (why := peak_reads_low(record)) is None:
        return None
    if why.startswith("below"):
        return (
            f"MFU: its peak reads {why} (the best of its matmuls ran slower than its training: they shared the cores "
            "or ran below their speed); read img/s"
        )
    return (
        f"MFU: its peak was measured {why}: the matmuls shared the cores, so the peak reads low and MFU high (read "
        "img/s; MFU compares rows measured on a machine within its cores)"
    )


def mfu(flops_per_img: float | None, img_s: float | None, peak_flops: float | None) -> float | None:
    """The fraction of peak the training reached (None when an input is missing)."""
    if not flops_per_img or not img_s or not peak_flops:
        return None
    return flops_per_img * img_s / peak_flops
