"""The per-row performance columns that need the framework's instruments: FLOPs, peak FLOP/s, MFU, knobs.

The backend counts FLOPs and runs a matmul; the timing, the table lookup and every
number written to the record are computed here, once for both backends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from backends import describe
from bench.core.catalog import architecture
from bench.core.cpus import threads_over_cores
from bench.core.record import device_knobs, on_cpu
from bench.core.spec import TaskSpec
from bench.measure import mfu
from bench.measure.timing import SyncTimer

# JAX's default matmul precision, as engine_jax records it: "highest" is fp32; "tensorfloat32" and JAX's own
# default (XLA's, which lets TF32 run fp32 matmuls and convolutions on NVIDIA Ampere and later) are not.
JAX_FP32_PRECISIONS = ("highest", "float32")


def ran_tf32(knobs: dict[str, Any]) -> bool:
    """Whether the row's fp32 matmuls or convolutions may have run in TF32, read from the knobs each engine records:
    torch's ``tf32_matmul`` / ``tf32_cudnn`` (either: torch's own default runs convolutions in TF32, and a CNN's
    FLOPs are mostly those), Keras/TF's and Keras/torch's bool ``tf32``, Keras/JAX's precision name. Where TF32
    may have run, the peak is TF32's: an MFU read against fp32's came out above 1 (QA, 2026-12-05: 1.54 for a
    torch default CNN on an A100); and ``bool("highest")`` had put Keras/JAX's fp32 rows against TF32's peak."""
    if "tf32_matmul" in knobs or "tf32_cudnn" in knobs:
        return any(knobs.get(k) is True for k in ("tf32_matmul", "tf32_cudnn", "tf32"))
    value = knobs.get("tf32", False)
    if isinstance(value, str):
        return value.lower() not in JAX_FP32_PRECISIONS
    return bool(value)


def mfu_fields(
    backend: Any,
    state: Any,
    spec: TaskSpec,
    input_shape: tuple[int, int, int],
    out: dict[str, Any],
    known_peaks: Mapping[str, Sequence[float]] | None = None,
) -> dict[str, Any]:
    """flops_per_img, peak_flops (+ where each came from) and mfu for a trained run's steady throughput.
    ``known_peaks`` (the job's ``peaks``: what earlier rows of the run measured, by ``mfu.peak_key``) stand in for a
    measurement with the same key; the row then says so (``peak_flops_reused``)."""
    forward = backend.forward_flops(state, input_shape)
    fields: dict[str, Any] = {
        "flops_per_img": mfu.training_flops_per_image(forward),
        "flops_source": describe(backend.name).flop_counter or backend.name,
    }
    precision = spec.runtime.precision
    knobs = out.get("knobs") or {}
    tf32 = ran_tf32(knobs)
    device = str(out.get("device", ""))
    peak = mfu.known_peak(device, precision, tf32)
    if peak is not None:
        mode = {"mixed_bf16": "bf16", "mixed_fp16": "fp16"}.get(precision, "tf32" if tf32 else "fp32")
        fields.update(peak_flops=peak, peak_flops_source=f"vendor table: {mfu.match_gpu(device)} {mode} (dense)")
    else:
        n = 2048 if device.startswith("cpu") else 8192
        timer = SyncTimer(backend.synchronize)
        key = mfu.peak_key(backend.name, device, precision, tf32, out.get("threads"), n)
        earlier = (known_peaks or {}).get(key)
        load: float | None
        if earlier is not None and len(earlier) == 2:
            peak, load, reused = float(earlier[0]), float(earlier[1]), True
        else:
            peak = mfu.measured_peak(key, backend.matmul(n, precision), n, timer)
            load, reused = mfu.measured_load(key, n), False
        why = "" if device.startswith("cpu") else f" ({device!r} not in the vendor table for {precision})"
        fields.update(peak_flops=peak, peak_flops_source=f"measured: best of 3 {n}x{n} {precision} matmuls{why}")
        fields["peak_flops_load"] = load  # a loaded node's peak reads low (loaded_peak_note)
        fields.update(peak_flops_key=key, peak_flops_reused=reused)
    # the step window's images over its time (no per-call overhead, warm-up excluded); the epochs
    # only when no step was timed
    img_s = out.get("steady_img_s") or out.get("throughput_img_s")
    fields["mfu"] = mfu.mfu(fields["flops_per_img"], img_s, peak)
    return fields


# settings of NVIDIA GPUs alone: on a CPU a framework's flag still reads True (torch's cudnn.allow_tf32, TF's
# TF32), and results.csv said "matmul=False, cudnn=True" for a CPU row where it means nothing (QA)
GPU_ONLY_COLUMNS = ("tf32", "cudnn_benchmark")


def knob_columns(backend: str, knobs: dict[str, Any], spec: TaskSpec, device: str = "") -> dict[str, Any]:
    """The performance knobs as flat columns (the full dict stays in the nested ``knobs``).

    The common ones here; what only some backends have (compiled, tf32, channels_last, cudnn_benchmark,
    fused_optimizer, ...) from the backend's own description (``BackendInfo.knob_columns``) alone: a backend without
    such a knob leaves the column out and its record holds None (``new_record``), so a new knob column is a ``Record``
    field and its backend's entry, not a name here and in every other backend too; ``GPU_ONLY_COLUMNS`` None on a CPU
    ``device`` (the backend's ``configure``'s: "cpu (x86_64)").
    """
    m = spec.model
    columns: dict[str, Any] = {
        "precision": spec.runtime.precision,
        "pretrained": f"imagenet ({m.weights or 'library download or $BENCH_WEIGHTS_DIR'})"
        if m.pretrained
        else f"no (random init: {m.init})",
    }
    own = describe(backend).knob_columns
    if own is not None:
        columns.update(own(knobs, spec))
    if on_cpu(device):
        columns.update(dict.fromkeys(GPU_ONLY_COLUMNS))
    return columns


def configuration(backend: str, env: Mapping[str, Any], spec: TaskSpec) -> dict[str, Any]:
    """What a row records of how its backend ran, from ``configure``'s answer (``env``): the nested ``knobs`` as the
    record keeps them (``device_knobs``) and their flat columns (``knob_columns``). The single-process worker and a
    data-parallel row's rank 0 both record this: until 2026-12-07 a data-parallel row had neither (``compiled``,
    ``channels_last``, ``precision``, the knobs Keras/JAX's ``cpu_cores`` is in: empty), so it could not say what
    ran."""
    device = str(env.get("device", ""))
    knobs = dict(env.get("knobs") or {})
    return {"knobs": device_knobs(knobs, device), **knob_columns(backend, knobs, spec, device)}


def batches_per_step(columns: dict[str, Any]) -> int:
    """The batches one step of the step clock covers, from the row's knob columns (``knob_columns``): Keras's
    ``steps_per_execution`` k (it calls back once an execution of k batches), 1 where the backend's description has
    no such knob. torch trains and calls the clock once a batch whatever the task's runtime.steps_per_execution:
    read from the spec, a torch row of a task that set it had its epochs' last steps synchronised and a note that
    called its warm-up "executions"."""
    k = columns.get("steps_per_execution")
    return int(k) if k else 1


def best_epoch_fields(history: list[dict[str, Any]], spec: TaskSpec) -> dict[str, Any]:
    """eval.select = "best_test": the epoch with the best TEST accuracy, as the cat/dog reports selected it."""
    if spec.eval.select != "best_test":
        return {}
    scored = [h for h in history if "test_acc" in h]
    if not scored:
        return {}
    best = max(scored, key=lambda h: h["test_acc"])  # earliest of equal ones
    return {"best_epoch": best["epoch"], "best_test_acc": best["test_acc"]}


def row_notes(spec: TaskSpec) -> list[str]:
    """Notes every row of this task carries: the catalog's named library differences, the selection rule; and where
    its threads are more than the cores the row's process may use, that (``cpus.threads_over_cores``)."""
    notes = list(architecture(spec.model).notes)
    if over := threads_over_cores(spec.runtime.threads):
        notes.append(over)
    if spec.eval.select == "best_test":
        notes.append(
            "best_test_acc/best_epoch: the best epoch chosen on the TEST split (optimistic, as the original "
            "report did); test_acc is the last epoch's"
        )
    if spec.train.augment:
        notes.append(f"augmentation (training only, per image, each framework's own): {', '.join(spec.train.augment)}")
    return notes
