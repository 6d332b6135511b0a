"""Both backends build every catalog model, with the same parameter count, and can learn."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from bench.core.catalog import ARCHITECTURES
from bench.core.spec import ModelSpec, RuntimeSpec, TrainSpec
from tests.conftest import import_both_frameworks

torch_backend, keras_backend = import_both_frameworks()
from backends.torch import models as torch_models  # noqa: E402

pytestmark = pytest.mark.frameworks  # imports the frameworks when collected


def model(arch: str, **options) -> ModelSpec:
    defaults = {k: o.default for k, o in ARCHITECTURES[arch].options.items()}
    return ModelSpec(arch=arch, options=tuple(sorted({**defaults, **options}.items())))


@pytest.mark.parametrize("arch", ["resnet101", "convnext_tiny"])
def test_a_big_catalog_model_computes_its_librarys_own_network(arch):
    """Results unchanged by the move to the zoo: given torchvision's / timm's model's weights (its classifier
    as the head), the catalog build's logits are that model's own."""
    from backends.torch import zoo as torch_zoo
    from bench.core.zoo import ZOO

    torch = pytest.importorskip("torch")
    lib = torch_zoo.library_model(arch, 2).eval()
    backend = torch_backend.Backend()
    backend.configure(RuntimeSpec(), 0)
    net = backend.build(ModelSpec(arch=arch), (32, 32, 3), 2).eval()
    state, classifier = lib.state_dict(), ZOO[arch].torch_head + "."
    net.net.load_state_dict({k: v for k, v in state.items() if not k.startswith(classifier)}, strict=False)
    net.head.load_state_dict({k.removeprefix(classifier): v for k, v in state.items() if k.startswith(classifier)})
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours, theirs = net(x), lib(x)
    assert torch.allclose(ours, theirs, rtol=0, atol=1e-5 * float(theirs.abs().max())), (ours, theirs)


def layout(model) -> list[tuple[str, str, list[tuple[int, ...]]]]:
    """A Keras model's layers in order: kind, name (without Keras's own numbering) and weight shapes."""
    return [
        (type(layer).__name__, layer.name.rstrip("_0123456789"), [tuple(w.shape) for w in layer.weights])
        for layer in model.layers
    ]


def test_the_big_catalog_models_are_zoo_rows_built_by_the_zoos_builders():
    """One registry of ImageNet architectures: resnet101 and convnext_tiny are zoo rows under their catalog names,
    and each backend's catalog build is that row's zoo build (the same layers, names and shapes); every layer
    list (lenet5, cifar_cnn) is built by the generic builder, which refuses a big model naming its row."""
    big = {a: arch.zoo for a, arch in ARCHITECTURES.items() if not arch.layers}
    assert big == {"resnet101": "resnet101", "convnext_tiny": "convnext_tiny"}
    torch_zoo = pytest.importorskip("backends.torch.zoo")
    keras_zoo = pytest.importorskip("backends.keras.zoo")
    t, k = torch_backend.Backend(), keras_backend.Backend()
    t.configure(RuntimeSpec(), 0)
    k.configure(RuntimeSpec(), 0)
    for arch in big:
        catalog_t = t.build(ModelSpec(arch=arch), (32, 32, 3), 2)
        row_t = torch_zoo.build(arch, 2, (32, 32, 3), "glorot_uniform")
        assert {n: v.shape for n, v in catalog_t.state_dict().items()} == {
            n: v.shape for n, v in row_t.state_dict().items()
        }
        catalog_k = k.build(ModelSpec(arch=arch), (32, 32, 3), 2)
        row_k = keras_zoo.build(arch, 2, (32, 32, 3), "glorot_uniform")
        assert layout(catalog_k) == layout(row_k)
    with pytest.raises(ValueError, match=r"resnet101: a big model, built by backends/torch/zoo\.py as zoo row"):
        torch_models.build(ModelSpec(arch="resnet101"), (32, 32, 3), 2)


@pytest.mark.parametrize("init", ["glorot_uniform", "he_uniform", "lecun_uniform"])
def test_initialisers_have_the_same_scale(init):
    """The spec's init gives the same weight distribution in both (torch's default would not)."""
    spec = ModelSpec(arch="cifar_cnn", init=init, options=(("activation", "relu"),))
    tm = torch_backend.Backend().build(spec, (32, 32, 3), 10)
    km = keras_backend.Backend().build(spec, (32, 32, 3), 10)
    t_w = tm.fc1.weight.detach().numpy()
    k_w = km.get_layer("fc1").kernel.numpy()
    fan_in, fan_out = 1024, 64
    limit = {
        "glorot_uniform": np.sqrt(6 / (fan_in + fan_out)),
        "he_uniform": np.sqrt(6 / fan_in),
        "lecun_uniform": np.sqrt(3 / fan_in),
    }[init]
    for w in (t_w, k_w):
        assert np.abs(w).max() <= limit + 1e-7
        assert np.std(w) == pytest.approx(limit / np.sqrt(3), rel=0.05)  # std of U(-a, a)
    assert np.all(tm.fc1.bias.detach().numpy() == 0)


@pytest.mark.parametrize("loss", ["cross_entropy", "binary_cross_entropy"])
@pytest.mark.parametrize("backend_module", [torch_backend, keras_backend], ids=["torch", "keras"])
def test_training_reduces_loss_and_predicts_logits(backend_module, loss):
    """Both heads learn: softmax over 2 logits, and one sigmoid logit with binary cross-entropy."""
    from bench.core.metrics import accuracy_and_loss

    rng = np.random.default_rng(0)
    y = np.arange(128) % 2
    x = rng.random((128, 28, 28, 1), dtype=np.float32) * 0.5
    x[y == 1, :14] += 0.5  # class 1: a bright top half
    b = backend_module.Backend()
    env = b.configure(RuntimeSpec(), seed=0)
    assert env["device"].startswith("cpu") and env["threads"] >= 1
    width = 1 if loss == "binary_cross_entropy" else 2
    net = b.build(model("lenet5"), (28, 28, 1), width)
    state = b.compile(net, TrainSpec(epochs=1, batch_size=32, lr=0.01, loss=loss), RuntimeSpec())
    data = b.put(x, y)
    losses = [b.train_epoch(state, data, rng.permutation(128), 32) for _ in range(8)]
    assert losses[-1] < losses[0] * 0.8
    logits = b.predict(state, data, 50)
    assert logits.shape == (128, width) and logits.dtype == np.float32
    acc, test_loss = accuracy_and_loss(logits, y)
    assert acc > 0.8
    assert test_loss < losses[0] * 0.5  # bench reads the head the way the framework trained it
    assert b.peak_device_mb() is None


@pytest.mark.long  # inductor compiles LeNet-5 twice: 10-40 s on the 2-core VM
def test_a_compiled_torch_row_predicts_with_its_compiled_model(monkeypatch, tmp_path: Path):
    """Keras predicts with the function its ``jit_compile`` compiled; a torch row with ``torch_compile`` trained its
    compiled model and predicted with the eager one, so its ``eval_img_s`` timed eager inference under a `compiled`
    column that said torch.compile (LeNet-5, 1,000 MNIST test images, batch 256, 1 thread, 2-core AMD VM at load 5-6,
    2026-12-07: eager 13,955 img/s, compiled 19,917). ``predict`` now runs the bare model torch.compile'd: the first
    prediction compiles (dynamo counts a graph), the same shapes again compile nothing (the warm-up's promise), its
    logits are the model's, and training goes on with its own compiled step after it."""
    import torch
    from torch._dynamo.utils import counters

    if not shutil.which(os.environ.get("CXX", "g++")) and not shutil.which("c++"):
        pytest.skip("torch.compile's inductor needs a C++ compiler on the CPU")
    # inductor's cache in a folder of the test's own, as a row's is (bench.measure.compile_cache): its FX graph
    # cache does not key on $ATEN_CPU_CAPABILITY, and the graph another process compiled for AVX-512 in the
    # shared /tmp folder, read back under `tox -e other-kernels`'s avx2 on one core, gave logits of 1e23
    # (torch 2.14.1, 2026-12-07; with a folder of its own, the same logits as eager)
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    rt = RuntimeSpec(torch_compile=True)
    b = torch_backend.Backend()
    b.configure(rt, seed=0)
    net = b.build(model("lenet5"), (28, 28, 1), 10)
    state = b.compile(net, TrainSpec(epochs=1, batch_size=8, lr=0.01), rt)
    x = np.random.default_rng(0).random((20, 28, 28, 1), dtype=np.float32)
    data = b.put(x, np.zeros(20, np.int64))
    torch._dynamo.reset()
    counters.clear()
    got = b.predict(state, data, 16)  # batches of 16 and 4
    compiled = counters["stats"]["unique_graphs"]
    again = b.predict(state, data, 16)
    assert compiled >= 1 and counters["stats"]["unique_graphs"] == compiled  # warm: the same shapes compile nothing
    with torch.no_grad():
        eager = net.eval()(b._inputs(data)).numpy()
    np.testing.assert_allclose(got, eager, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(again, got)
    assert np.isfinite(b.train_epoch(state, data, np.arange(20), 8))


def test_a_mixed_precision_torch_row_predicts_at_its_precision():
    """Keras predicts under its dtype policy, so a Keras ``mixed_bf16`` row's evaluation runs in bfloat16; torch's
    autocast was on in its training steps only, so a torch ``mixed_bf16`` row's evaluation ran in float32: its
    ``eval_img_s`` timed other work than Keras's (LeNet-5 on 1,000 MNIST test images, 2-core AMD VM, 2026-12-06:
    23,000 img/s in float32, 38,000 under autocast) and its ``test_acc`` another precision than it trained in.
    ``predict`` gives the model's logits under the row's autocast, not its float32 ones."""
    import torch

    b = torch_backend.Backend()
    b.configure(RuntimeSpec(precision="mixed_bf16"), seed=0)
    net = b.build(model("lenet5"), (28, 28, 1), 10)
    state = b.compile(net, TrainSpec(epochs=1, batch_size=16, lr=0.01), RuntimeSpec(precision="mixed_bf16"))
    x = np.random.default_rng(0).random((16, 28, 28, 1), dtype=np.float32)
    data = b.put(x, np.zeros(16, np.int64))
    got = b.predict(state, data, 16)
    with torch.no_grad():
        fp32 = net(b._inputs(data)).float().numpy()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = net(b._inputs(data)).float().numpy()
    assert np.abs(bf16 - fp32).max() > 1e-4  # the two precisions' logits differ here
    np.testing.assert_array_equal(got, bf16)


def test_a_data_parallel_torch_rows_training_step_runs_its_model_compiled(monkeypatch):
    """QA: a 2-worker torch row under ``torch_compile`` had a 1.2 s first step where the single-process row's was 38 s:
    ``compile`` torch.compile'd the DDP wrapper, whose own forward broke dynamo's graph (DDP's Logger) before the
    model, so the steps trained eager under a row that said torch.compile (TORCH_LOGS: no inductor compile until the
    evaluation's bare model). DDP now wraps the compiled module, as torch documents. One rank in a real c10d group
    (gloo, world size 1), dynamo's compiler swapped for one that keeps the graphs it is given (inductor's C++ build
    would take tens of seconds): the training step's graph holds the model's convolutions, with no graph break."""
    import socket

    import torch
    from torch._dynamo.utils import counters

    from bench.core.distributed import DistContext

    graphs: list[torch.fx.GraphModule] = []

    def keep(gm: torch.fx.GraphModule, example_inputs: list) -> object:
        graphs.append(gm)
        return gm.forward

    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model, mode=None: real_compile(model, backend=keep))
    with socket.socket() as s:  # a free port for the group's store (env:// rendezvous, as the launcher sets it)
        s.bind(("127.0.0.1", 0))
        ctx = DistContext(rank=0, world_size=1, addresses=(f"127.0.0.1:{s.getsockname()[1]}",), timeout_s=30)
    for key, value in {**ctx.torch_env(), "GLOO_SOCKET_IFNAME": "lo"}.items():
        monkeypatch.setenv(key, value)  # join sets only what is unset: the test's environment is restored after
    rt = RuntimeSpec(torch_compile=True)
    b = torch_backend.Backend()
    b.configure(rt, seed=0)
    b.join(ctx)
    try:
        net = b.build(model("lenet5"), (28, 28, 1), 10)
        state = b.compile(net, TrainSpec(epochs=1, batch_size=16, lr=0.01), rt)
        x = np.random.default_rng(0).random((32, 28, 28, 1), dtype=np.float32)
        torch._dynamo.reset()
        counters.clear()
        assert np.isfinite(b.train_epoch(state, b.put(x, np.zeros(32, np.int64)), np.arange(32), 16))
    finally:
        b.leave()
        torch._dynamo.reset()
    convs = [n for g in graphs for n in g.graph.nodes if "conv2d" in str(n.target)]
    assert len(convs) == 2, [str(g.graph) for g in graphs]  # LeNet-5's two convolutions, traced by the compiler
    assert not counters["graph_break"], dict(counters["graph_break"])
    assert isinstance(state.step_model, torch.nn.parallel.DistributedDataParallel)  # and gradients all-reduced by DDP


def test_a_channels_last_torch_row_predicts_in_the_layout_it_trained_in():
    """QA: ``runtime.channels_last`` converts the model and lays every training batch out channels_last, but
    ``predict`` (the row's evaluation, timed as ``eval_img_s``), ``forward`` and the Grad-CAM captures fed NCHW: the
    model's convolutions ran on input of the other layout (oneDNN reorders it) than the one it trained and was timed
    on. A spy on the model's input: every call sees the training batches' layout, and the logits are the same
    function's (three channels: with one, NCHW and channels_last are the same strides)."""
    import torch

    rt = RuntimeSpec(channels_last=True)
    b = torch_backend.Backend()
    b.configure(rt, seed=0)
    net = b.build(model("cifar_cnn"), (32, 32, 3), 10)
    state = b.compile(net, TrainSpec(epochs=1, batch_size=8, lr=1e-3), rt)
    seen: list[tuple[str, bool]] = []
    where = ["train"]
    net.register_forward_pre_hook(
        lambda _m, args: seen.append((where[0], args[0].is_contiguous(memory_format=torch.channels_last)))
    )
    x = np.random.default_rng(0).random((8, 32, 32, 3), dtype=np.float32)
    data = b.put(x, np.zeros(8, np.int64))
    b.train_epoch(state, data, np.arange(8), 8)
    where[0] = "predict"
    got = b.predict(state, data, 8)
    where[0] = "forward"
    b.forward(state, data)
    where[0] = "capture"
    b.layer_outputs(state, x, ["conv1"], 8)
    assert seen == [(w, True) for w in ("train", "predict", "forward", "capture")], seen
    with torch.no_grad():
        nchw = net.eval()(b._inputs(data)).numpy()  # the same model fed NCHW: the same function, to rounding
    np.testing.assert_allclose(got, nchw, rtol=1e-4, atol=1e-5)
