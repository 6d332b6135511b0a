"""PyTorch backend: catalog models from ``torch.nn``, a plain training loop, uint8 to the device, NCHW there."""

from __future__ import annotations

import contextlib
import platform
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch._dynamo  # see below
import torch.nn.functional as F
from torch import nn

from backends.torch import distributed as torch_dist
from backends.torch import input as torch_input
from backends.torch import models as torch_models
from backends.torch import parity as torch_parity
from backends.torch import perf as torch_perf
from backends.torch import zoo as torch_zoo
from backends.torch.augment import augmenter
from bench.core.blas import row_note
from bench.core.catalog import architecture
from bench.core.preprocess import PixelNorm
from bench.core.spec import ModelSpec, RuntimeSpec, TrainSpec
from bench.core.zoo import is_zoo, weights_file

# torch.optim imports torch._dynamo when the first optimizer is built: 2.3-2.7 s on the 2-core VM
# (2026-11-29), which every forked run paid again inside its build_s. Imported here, with the
# framework, it is paid once per worker server and counted in import_s, as a user's process pays it once.
ACTIVATION_TYPES = (nn.ReLU, nn.Sigmoid, nn.Tanh, nn.GELU, nn.SiLU)


def _loss(kind: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if kind == "binary_cross_entropy":  # one logit per image scores class 1
        return lambda logits, y: F.binary_cross_entropy_with_logits(logits[:, 0], y.to(logits.dtype))
    return F.cross_entropy


def _module(model: nn.Module, name: str) -> nn.Module:
    modules = dict(model.named_modules())
    if name not in modules:
        raise KeyError(f"model has no layer {name!r} (layers: {', '.join(n for n in modules if n)})")
    return modules[name]


def _layer_output_module(model: nn.Module, layer: str) -> nn.Module:
    """The module whose output is ``layer``'s map after its activation, as Keras's fused Conv2D gives it.

    Catalog models put the activation in its own module right after the conv (conv2 -> act2);
    a layer not followed by an activation (e.g. a "backbone" trunk) is used as it is.
    """
    found = _module(model, layer)
    parent_name, _, child = layer.rpartition(".")
    parent = _module(model, parent_name) if parent_name else model
    if isinstance(parent, nn.Sequential):
        names = list(parent._modules)
        following = parent._modules[names[names.index(child) + 1]] if child != names[-1] else None
        if isinstance(following, ACTIVATION_TYPES):
            return following
    return found


def _class_score(logits: torch.Tensor, columns: np.ndarray, signs: np.ndarray) -> torch.Tensor:
    """Sum over the batch of sign * logit[column]: each image's score depends on that image alone."""
    cols = torch.from_numpy(np.asarray(columns, dtype=np.int64)).to(logits.device)
    sign = torch.from_numpy(np.asarray(signs, dtype=np.float32)).to(logits.device)
    return (logits.gather(1, cols[:, None])[:, 0] * sign).sum()


def _compiled(model: nn.Module, mode: str) -> nn.Module:
    """torch.compile in ``runtime.compile_mode`` ("default": torch's own default mode)."""
    compiled = torch.compile(model, mode=None if mode == "default" else mode)
    if not isinstance(compiled, nn.Module):  # a Module compiles to an OptimizedModule; torch types it as a callable
        raise TypeError(f"torch.compile returned {type(compiled).__name__}, not a module")
    return compiled


def _track(t: torch.Tensor) -> torch.Tensor:
    """Gradients reach a layer's output even when the layers before it are frozen (no grad_fn)."""
    return t if t.requires_grad else t.requires_grad_(True)


def _nhwc(t: torch.Tensor) -> np.ndarray:
    return t.detach().permute(0, 2, 3, 1).float().cpu().numpy() if t.ndim == 4 else t.detach().float().cpu().numpy()


@dataclass
class TrainState:
    """Everything a model's training needs between calls, in one object (what ``compile`` returns)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None  # training only, batched, per-sample draws
    # the model the training step calls: torch.compile'd when runtime.torch_compile, in DDP on a data-parallel rank
    step_model: nn.Module | None = None
    # the bare model torch.compile'd for predictions when runtime.torch_compile (not DDP's: a rank predicts alone)
    infer_model: nn.Module | None = None
    autocast_dtype: torch.dtype | None = None  # mixed precision
    channels_last: bool = False  # the layout of every batch the model sees: training's, predict's, Grad-CAM's
    scaler: torch.amp.GradScaler | None = None  # fp16 loss scaling, made at the first fp16 step
    before_step: Callable[[], None] | None = None  # a parity check's Adam epsilon schedule (backends.torch.parity)


class Backend:
    name = "torch"

    def __init__(self) -> None:
        # What ``configure`` chooses for every later call (a backend serves one run): where tensors live
        # and how much of a split may live there. Everything per model is in the TrainState.
        self.device = torch.device("cpu")
        self.device_data_mb = RuntimeSpec().device_data_mb
        self.joined = False  # a data-parallel worker: compile wraps the model in DDP

    def configure(self, runtime: RuntimeSpec, seed: int) -> dict[str, Any]:
        if runtime.device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("runtime.device='cuda' but torch sees no CUDA device")
        use_cuda = runtime.device == "cuda" or (runtime.device == "auto" and torch.cuda.is_available())
        self.device = torch.device("cuda" if use_cuda else "cpu")
        if runtime.threads:
            torch.set_num_threads(runtime.threads)
        torch.manual_seed(seed)
        if runtime.tf32 != "default":
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = runtime.tf32 == "on"
        torch.backends.cudnn.benchmark = runtime.cudnn_benchmark
        self.device_data_mb = runtime.device_data_mb
        device_name = torch.cuda.get_device_name(self.device) if use_cuda else f"cpu ({platform.machine()})"
        blas = None if use_cuda else row_note("libtorch_cpu", "PyTorch")  # oneMKL's generic path (bench.core.blas)
        return {
            "framework": "pytorch",
            "framework_version": torch.__version__,
            "device": device_name,
            "threads": torch.get_num_threads(),
            "notes": [blas] if blas else [],
            "knobs": {
                "precision": runtime.precision,
                "channels_last": runtime.channels_last,
                "torch_compile": runtime.torch_compile,
                "compile_mode": runtime.compile_mode if runtime.torch_compile else None,
                "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
                "tf32_cudnn": torch.backends.cudnn.allow_tf32,
                "cudnn_benchmark": torch.backends.cudnn.benchmark,
                # said only when on: the history's series key is these knobs (bench.history.rows.config_of), and a
                # key every default row gained would have started every torch series anew
                **({"fused_optimizer": True} if runtime.fused_optimizer else {}),
            },
        }

    def build(self, model: ModelSpec, input_shape: tuple[int, int, int], n_outputs: int) -> nn.Module:
        row = architecture(model).zoo
        if is_zoo(model.arch):  # zoo rows: init and pretrained (one local torch file) in backends/torch/zoo.py
            return torch_zoo.build(model.arch, n_outputs, input_shape, model.init, weights_file(model)).to(self.device)
        if row:  # the catalog's big models are zoo rows; --pretrained brings the weights torch's library publishes
            big = torch_zoo.build(row, n_outputs, input_shape, model.init)
            if model.pretrained:
                self.weights_source = torch_zoo.load_pretrained(big, model)
            return big.to(self.device)
        net = torch_models.build(model, input_shape, n_outputs)  # a layer list (no ImageNet weights to load)
        torch_models.init_weights(net, model.init)
        return net.to(self.device)

    def build_to_import(self, model: ModelSpec, input_shape: tuple[int, int, int], n_outputs: int) -> nn.Module:
        """As ``build``: torch's initialisers cost nothing to compile, and drawing them keeps the seeded stream."""
        return self.build(model, input_shape, n_outputs)

    def count_params(self, model: nn.Module) -> int:
        return sum(p.numel() for p in model.parameters())

    def compile(self, model: nn.Module, train: TrainSpec, runtime: RuntimeSpec) -> TrainState:
        if runtime.channels_last:
            model.to(memory_format=torch.channels_last)  # in place: the model handed in is the one trained
        params = model.parameters()
        fused = {"fused": True} if runtime.fused_optimizer else {}  # else torch's own choice (None: not False)
        if train.optimizer == "adam":
            opt: torch.optim.Optimizer = torch.optim.Adam(
                params,
                lr=train.lr,
                betas=(train.beta1, train.beta2),
                eps=train.eps,
                weight_decay=train.weight_decay,
                **fused,
            )
        else:
            opt = torch.optim.SGD(
                params, lr=train.lr, momentum=train.momentum, weight_decay=train.weight_decay, **fused
            )
        amp = {"mixed_bf16": torch.bfloat16, "mixed_fp16": torch.float16}.get(runtime.precision)
        step = _compiled(model, runtime.compile_mode) if runtime.torch_compile else model
        # Data-parallel: DDP around the compiled module, as torch documents it ("Where to apply torch.compile?":
        # compile the inner module passed to the wrapper). torch.compile of the DDP wrapper broke its graph at DDP's
        # own forward (its Logger, torch 2.14 on a CPU) and trained eager: a 2-worker lenet5 row's first step 1.2 s
        # with no inductor compile, where the single-process row's was 38 s. predict etc. use the bare model.
        return TrainState(
            model,
            opt,
            _loss(train.loss),
            augment=augmenter(train.augment),
            step_model=torch_dist.wrap(step, self.device) if self.joined else step,
            # a user who compiles a model predicts with the compiled one, as Keras's predict runs the function its
            # jit_compile compiled: the evaluation times what the `compiled` column says (warmed per batch shape
            # before its timed run, bench.run.evaluate.warm_up)
            infer_model=_compiled(model, runtime.compile_mode) if runtime.torch_compile else None,
            autocast_dtype=amp,
            channels_last=runtime.channels_last,
        )

    def join(self, ctx: Any) -> dict[str, Any]:
        """The ``DataParallel`` role (bench.core.distributed): c10d process group; DDP from ``compile`` on."""
        device, fields = torch_dist.join(ctx)
        self.device, self.joined = device or self.device, True
        return fields

    def barrier(self) -> None:
        """The ranks meet (after the per-epoch evaluation: the next epoch's first all-reduce waits for none)."""
        torch_dist.barrier(self.device if self.device.type == "cuda" else None)

    def leave(self) -> None:
        torch_dist.leave()

    def put(self, x: np.ndarray, y: np.ndarray, norm: PixelNorm | None = None) -> torch_input.Images:
        budget = torch_input.device_budget_bytes(self.device, self.device_data_mb)
        return torch_input.put(x, y, self.device, budget, None if norm is None else (norm.scale, norm.offset))

    def _batches(
        self, state: TrainState, data: torch_input.Images, order: np.ndarray, batch_size: int
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return torch_input.batches(data, order, batch_size, state.channels_last, state.augment)

    def prepare_batches(self, state: TrainState, data: torch_input.Images, order: np.ndarray, batch_size: int) -> int:
        """The input path of ``train_epoch`` alone (index, move, normalise, augment): how many batches it made."""
        n = 0
        for xb, _ in self._batches(state, data, order, batch_size):
            n += xb.shape[0] > 0
        return n

    def train_epoch(self, state: TrainState, data: Any, order: np.ndarray, batch_size: int, hooks: Any = None) -> float:
        # `is None`, not `or`: a compiled module's truth value asks its module for len(), which only a
        # Sequential has (ResNet101, ConvNeXt and every zoo model raised TypeError under torch.compile)
        model = state.step_model if state.step_model is not None else state.model
        opt = state.optimizer
        model.train()
        total = torch.zeros((), device=self.device)
        amp = state.autocast_dtype
        if amp == torch.float16 and state.scaler is None:
            state.scaler = torch.amp.GradScaler(self.device.type)
        scaler = state.scaler
        for step, (xb, yb) in enumerate(self._batches(state, data, order, batch_size)):
            if hooks is not None:
                hooks.on_step_begin(step)
            with self._autocast(state):
                loss = state.loss_fn(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                if state.before_step is not None:
                    state.before_step()
                opt.step()
            total.add_(loss.detach(), alpha=len(yb))  # one in-place op: the loop adds nothing it need not
            if hooks is not None:
                hooks.on_step_end(step)
        return total.item() / len(order)  # .item() waits for the device

    def _autocast(self, state: TrainState) -> contextlib.AbstractContextManager[Any]:
        """The row's mixed precision (``runtime.precision``): its training steps and its predictions run under it."""
        amp = state.autocast_dtype
        return torch.autocast(self.device.type, dtype=amp) if amp is not None else contextlib.nullcontext()

    def _inputs(self, data: torch_input.Images, channels_last: bool = False) -> torch.Tensor:
        """All of a (small) split as one model input batch, in the layout the model trained on (``channels_last``)."""
        return next(torch_input.batches(data, np.arange(len(data)), max(1, len(data)), channels_last))[0]

    @torch.no_grad()
    def predict(self, state: TrainState, data: Any, batch_size: int) -> np.ndarray:
        compiled = state.infer_model is not None
        model = state.infer_model if state.infer_model is not None else state.model
        model.eval()
        out = []
        # the row's precision, as Keras predicts under its dtype policy, and its training batches' layout: fed NCHW, a
        # channels_last model's convolutions ran on input of the other layout than the one it trained and was timed on
        with self._autocast(state):
            for xb, _ in torch_input.batches(data, np.arange(len(data)), batch_size, state.channels_last):
                logits = model(xb)
                # a CUDA-graph mode ("reduce-overhead") replays into the same output buffer: keep a copy
                out.append(logits.clone() if compiled else logits)
        return torch.cat(out).float().cpu().numpy()

    def layer_input(self, state: TrainState, x: np.ndarray, layer: str, batch_size: int) -> np.ndarray:
        return self._capture(state, x, {layer: (_module(state.model, layer), True)}, batch_size)[layer]

    def layer_outputs(
        self, state: TrainState, x: np.ndarray, layers: list[str], batch_size: int
    ) -> dict[str, np.ndarray]:
        return self._capture(state, x, {n: (_layer_output_module(state.model, n), False) for n in layers}, batch_size)

    @torch.no_grad()
    def _capture(
        self, state: TrainState, x: np.ndarray, taps: dict[str, tuple[nn.Module, bool]], batch_size: int
    ) -> dict[str, np.ndarray]:
        """Forward ``x`` (NHWC) in batches through the model in its training layout, keeping each tap's input
        (pre-hook) or output; 4-D maps come back NHWC."""
        model = state.model
        layout = torch.channels_last if state.channels_last else torch.contiguous_format
        got: dict[str, list[torch.Tensor]] = {name: [] for name in taps}

        def keep(name: str, t: torch.Tensor) -> None:  # a copy: a later in-place op must not change it
            got[name].append(t.detach().to("cpu", torch.float32, copy=True))

        handles = [
            m.register_forward_pre_hook(lambda _m, args, n=name: keep(n, args[0]))
            if is_input
            else m.register_forward_hook(lambda _m, _args, out, n=name: keep(n, out))
            for name, (m, is_input) in taps.items()
        ]
        model.eval()
        try:
            for i in range(0, len(x), batch_size):
                nchw = torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size])).to(self.device).permute(0, 3, 1, 2)
                model(nchw.contiguous(memory_format=layout))
        finally:
            for h in handles:
                h.remove()
        out = {name: torch.cat(ts).numpy() for name, ts in got.items()}
        return {name: a.transpose(0, 2, 3, 1) if a.ndim == 4 else a for name, a in out.items()}

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def peak_device_mb(self) -> float | None:
        if self.device.type != "cuda":
            return None
        return torch.cuda.max_memory_allocated(self.device) / 2**20

    @torch.no_grad()
    def forward(self, state: TrainState, data: Any) -> np.ndarray:
        return state.model.eval()(self._inputs(data, state.channels_last)).float().cpu().numpy()

    def layer_gradients(
        self, state: TrainState, data: Any, layer: str, columns: np.ndarray, signs: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        model = state.model.eval()
        saved: list[torch.Tensor] = []
        hook = _layer_output_module(model, layer).register_forward_hook(lambda m, i, out: saved.append(_track(out)))
        try:
            with torch.enable_grad():
                logits = model(self._inputs(data, state.channels_last))
                (grad,) = torch.autograd.grad(_class_score(logits, columns, signs), saved[0])
        finally:
            hook.remove()
        return _nhwc(saved[0]), _nhwc(grad)

    def input_gradients(self, state: TrainState, data: Any, columns: np.ndarray, signs: np.ndarray) -> np.ndarray:
        model = state.model.eval()
        x = self._inputs(data, state.channels_last).detach().requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(_class_score(model(x), columns, signs), x)
        return _nhwc(grad)

    def get_weights(self, model: nn.Module) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}

    def trainable_names(self, model: nn.Module) -> list[str]:
        """The keys of ``get_weights`` that are parameters: not BatchNorm's running statistics (buffers)."""
        return [name for name, p in model.named_parameters() if p.requires_grad]

    def set_weights(self, model: nn.Module, weights: dict[str, np.ndarray]) -> None:
        model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in weights.items()}, strict=True)

    def export_weights(self, state: TrainState) -> dict[str, np.ndarray]:
        """The reference layout is torch's own: the state_dict as it is."""
        return self.get_weights(state.model)

    def import_weights(self, state: TrainState, weights: dict[str, np.ndarray]) -> None:
        self.set_weights(state.model, weights)

    def align(self, state: TrainState, alignments: tuple[str, ...]) -> None:
        torch_parity.align(state, alignments)

    def forward_flops(self, state: TrainState, input_shape: tuple[int, int, int]) -> float:
        return torch_perf.forward_flops(state.model, input_shape, self.device)

    def matmul(self, n: int, precision: str) -> Callable[[], None]:
        return torch_perf.matmul(n, precision, self.device)

    def profile_ops_start(self) -> None:
        self._profiler = torch_perf.profile_ops_start(self.device)

    def profile_ops_stop(self, top: int = 10) -> list[dict[str, Any]]:
        return torch_perf.profile_ops_stop(self._profiler, self.device, top)
