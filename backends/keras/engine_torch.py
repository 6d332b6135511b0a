"""The torch engine's pieces: threads and device, PyDataset input, torch.autograd gradients, CUDA sync and memory.

Keras on torch runs eagerly unless ``jit_compile`` (then Keras wraps the step in torch.compile).
Its device is fixed when Keras is imported (``KERAS_TORCH_DEVICE`` or the first GPU). The op
profiler is TensorFlow's only.
"""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import torch
from keras.src.backend.torch.core import get_device

from backends.keras.input import Batches, HostImages
from backends.keras.seeding import set_random_seed
from backends.keras.split import class_score, split_at
from bench.core.blas import row_note

STATIC_SHAPES_NOTE = (
    "torch.compile (jit_compile) with automatic dynamic shapes off: each batch shape compiles a static graph "
    "(with them on, torch 2.14.1's inductor failed recompiling Keras's train step for a dynamic batch)"
)


def _tensor(x: np.ndarray) -> torch.Tensor:
    return keras.ops.convert_to_tensor(x)  # on Keras's device


class Engine:
    """Keras on torch: configure, input batches, gradients, synchronisation, memory (no op profiler)."""

    def __init__(self) -> None:
        self.gpu = False

    def configure(self, runtime: Any, seed: int) -> dict[str, Any]:
        device = str(get_device())
        self.gpu = device.startswith("cuda")
        if runtime.device == "cuda" and not self.gpu:
            raise RuntimeError(f"runtime.device='cuda' but Keras's torch engine runs on {device!r}")
        if runtime.device == "cpu" and self.gpu:
            raise RuntimeError("runtime.device='cpu' on a GPU machine: set KERAS_TORCH_DEVICE=cpu before the run")
        if runtime.threads:
            torch.set_num_threads(runtime.threads)
        if runtime.tf32 != "default":
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = runtime.tf32 == "on"
        set_random_seed(seed, tensorflow=False)
        name = torch.cuda.get_device_name(0) if self.gpu else f"cpu ({platform.machine()})"
        blas = None if self.gpu else row_note("libtorch_cpu", "PyTorch")  # oneMKL's generic path (bench.core.blas)
        notes = [blas] if blas else []
        if runtime.jit_compile:
            # Keras's torch trainer compiles its train step with torch.compile's defaults, which recompile a
            # step whose input shape changed with the batch dimension dynamic. With torch 2.14.1 inductor failed
            # that recompile of LeNet-5's step ("cannot determine truth value of Relational: 1 < s69", in
            # get_stride_order), and every such row with it. Static: one graph per batch shape (a run has two or
            # three: the batch, the epoch's last one, the evaluation's), as XLA compiles them.
            torch._dynamo.config.automatic_dynamic_shapes = False
            notes.append(STATIC_SHAPES_NOTE)
        return {
            "framework_version": f"keras {keras.__version__} / torch {torch.__version__}",
            "device": name,
            "threads": torch.get_num_threads() or os.cpu_count(),
            "notes": notes,
            "knobs": {
                "jit_compile": runtime.jit_compile,
                "tf32": torch.backends.cuda.matmul.allow_tf32,
                # convolutions: torch's default lets cuDNN run them in TF32 (the MFU's peak reads it); on a GPU only,
                # so a CPU row's knobs stay as they were
                **({"tf32_cudnn": torch.backends.cudnn.allow_tf32} if torch.cuda.is_available() else {}),
                # only where it applies: an eager row's knobs stay as they were (the history reads a change of
                # knobs as a change of configuration)
                **({"compile_shapes": "static"} if runtime.jit_compile else {}),
            },
        }

    def jit_compile(self, runtime: Any) -> bool:
        return runtime.jit_compile

    def throwaway_draws(self) -> contextlib.AbstractContextManager[Any]:
        """Draws nobody keeps cost nothing to compile here: as any other (engine_jax's differ)."""
        return contextlib.nullcontext()

    def batches(self, data: HostImages, order: np.ndarray, batch_size: int, y: np.ndarray | None = None) -> Batches:
        return Batches(data, order, batch_size, y)

    def count_batches(self, ds: Batches) -> int:
        """Gather each batch and move it to the device, as fit's data adapter does: the batch count."""
        for i in range(len(ds)):
            [keras.ops.convert_to_tensor(a) for a in ds[i]]
        self.synchronize()
        return len(ds)

    def watch(self, model: keras.Model) -> None:
        """Nothing to track: CUDA synchronisation waits for the whole device."""

    def forward_fn(self, model: keras.Model) -> Callable[[np.ndarray], np.ndarray]:
        def run(x: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return keras.ops.convert_to_numpy(model(_tensor(x), training=False))

        return run

    def layer_gradients_fn(self, model: keras.Model, layer: str) -> Callable[..., tuple[np.ndarray, np.ndarray]]:
        trunk, head = split_at(model, layer)

        def run(x: np.ndarray, columns: np.ndarray, signs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            with torch.no_grad():
                act = trunk(_tensor(x), training=False)
            act = act.detach().requires_grad_(True)
            score = class_score(head(act, training=False), _tensor(columns), _tensor(signs))
            (grad,) = torch.autograd.grad(score, act)
            return keras.ops.convert_to_numpy(act), keras.ops.convert_to_numpy(grad)

        return run

    def input_gradients_fn(self, model: keras.Model) -> Callable[..., np.ndarray]:
        def run(x: np.ndarray, columns: np.ndarray, signs: np.ndarray) -> np.ndarray:
            xt = _tensor(x).requires_grad_(True)
            score = class_score(model(xt, training=False), _tensor(columns), _tensor(signs))
            (grad,) = torch.autograd.grad(score, xt)
            return keras.ops.convert_to_numpy(grad)

        return run

    def synchronize(self) -> None:
        if self.gpu:  # on the CPU, torch ops have finished when they return
            torch.cuda.synchronize()

    def peak_device_mb(self) -> float | None:
        return torch.cuda.max_memory_allocated() / 2**20 if self.gpu else None

    def profile_ops_start(self) -> None:
        """No op profiler on this engine (TensorFlow engine only; the row's notes say so)."""

    def profile_ops_stop(self, handle: Any, top: int = 10) -> list[dict[str, Any]]:
        return []
