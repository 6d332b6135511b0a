"""ResNet-101 and ConvNeXt-tiny in both backends: parameter parity (differences named), the layer-name
contract (backbone / head), preprocessing, --pretrained, augmentation, FLOP counters and the op profilers."""

from __future__ import annotations

import urllib.error

import numpy as np
import pytest

from bench.core.catalog import ARCHITECTURES
from bench.core.spec import ModelSpec, RuntimeSpec, TrainSpec
from tests.conftest import import_both_frameworks

torch_backend, keras_backend = import_both_frameworks()
import keras  # noqa: E402
import torch  # noqa: E402

# imports the frameworks when collected; one lane builds the models once (tests/lanes.py)
pytestmark = [pytest.mark.frameworks, pytest.mark.xdist_group("big_models")]

# Measured here and named in the catalog notes: keras's ResNet convolutions have biases, and keras's
# count includes BatchNorm's moving statistics (torch keeps them as buffers, outside parameters()).
RESNET101_KERAS_CONV_BIASES = 52_672
RESNET101_BN_MOVING_STATS = 105_344
EXPECTED = {  # (torch, keras) with a 2-logit head at 32x32
    "resnet101": (42_504_258, 42_504_258 + RESNET101_KERAS_CONV_BIASES + RESNET101_BN_MOVING_STATS),
    "convnext_tiny": (27_821_666, 27_821_666),
}


@pytest.fixture(scope="module")
def built():
    out = {}
    for arch in EXPECTED:
        t, k = torch_backend.Backend(), keras_backend.Backend()
        t.configure(RuntimeSpec(), 0)
        k.configure(RuntimeSpec(), 0)
        spec = ModelSpec(arch=arch)
        out[arch] = (t, t.build(spec, (32, 32, 3), 2), k, k.build(spec, (32, 32, 3), 2))
    return out


@pytest.mark.parametrize("arch", list(EXPECTED))
def test_parameter_counts_match_up_to_the_named_difference(built, arch):
    t, tm, k, km = built[arch]
    assert (t.count_params(tm), k.count_params(km)) == EXPECTED[arch]
    if arch == "resnet101":
        keras_conv_biases = sum(
            int(np.prod(layer.bias.shape))
            for layer in km.layers
            if isinstance(layer, keras.layers.Conv2D) and layer.bias is not None
        )
        assert keras_conv_biases == RESNET101_KERAS_CONV_BIASES
        assert all(m.bias is None for m in tm.modules() if isinstance(m, torch.nn.Conv2d))
        non_trainable = sum(int(np.prod(w.shape)) for w in km.non_trainable_weights)
        buffers = sum(b.numel() for n, b in tm.named_buffers() if n.endswith(("running_mean", "running_var")))
        assert non_trainable == buffers == RESNET101_BN_MOVING_STATS
        assert "158,016" in " ".join(ARCHITECTURES[arch].notes)
    assert any("parameters" in n or "preprocessing" in n for n in ARCHITECTURES[arch].notes)


@pytest.mark.parametrize("arch", list(EXPECTED))
def test_backbone_and_head_are_named_in_both(built, arch):
    _t, tm, _k, km = built[arch]
    a = ARCHITECTURES[arch]
    seen = []
    hook = getattr(tm, a.last_conv).register_forward_hook(lambda _m, _i, out: seen.append(out))
    with torch.no_grad():
        tm.eval()(torch.zeros(2, 3, 32, 32))
    hook.remove()
    (fmap,) = seen
    channels = {"resnet101": 2048, "convnext_tiny": 768}[arch]
    assert fmap.shape == (2, channels, 1, 1)
    assert getattr(tm, a.head).in_features == channels and getattr(tm, a.head).out_features == 2
    # the keras backbone is connected to model.inputs: a Grad-CAM model can be cut from it
    cam = keras.Model(km.inputs, [km.get_layer(a.last_conv).output, km.output])
    kfmap, logits = cam([np.zeros((2, 32, 32, 3), np.float32)])  # its inputs are a list
    assert tuple(kfmap.shape) == (2, 1, 1, channels) and tuple(logits.shape) == (2, 2)
    assert km.get_layer(a.head).input.shape[-1] == channels


def test_keras_convnext_has_no_preprocessing_of_its_own(built):
    _, _, _, km = built["convnext_tiny"]
    preprocessing = (keras.layers.Normalization, keras.layers.Rescaling)
    assert not [layer.name for layer in km.layers if isinstance(layer, preprocessing)]
    # (keras's default would add one: the check can fail)
    default = keras.applications.ConvNeXtTiny(include_top=False, weights=None, input_shape=(32, 32, 3))
    assert [layer.name for layer in default.layers if isinstance(layer, preprocessing)]
    # ConvNeXt's head normalises the pooled vector (as timm), not the 4-D map
    norm = km.get_layer("convnext_tiny_head_layernorm")
    assert isinstance(norm, keras.layers.LayerNormalization) and len(norm.input.shape) == 2
    assert km.get_layer("head").input.shape == norm.output.shape == (None, 768)


def test_keras_resnet_batchnorm_momentum_matches_torch(built):
    _, tm, _, km = built["resnet101"]
    moms = {layer.momentum for layer in km.layers if isinstance(layer, keras.layers.BatchNormalization)}
    assert moms == {0.9}
    assert {m.momentum for m in tm.modules() if isinstance(m, torch.nn.BatchNorm2d)} == {0.1}


def test_spec_init_replaces_the_libraries_own(built):
    """glorot_uniform for every conv/dense kernel in both: the same bound on the same layer shape."""
    _, tm, _, km = built["convnext_tiny"]
    w_t = tm.head.weight.detach().numpy()
    w_k = km.get_layer("head").kernel.numpy()
    limit = np.sqrt(6 / (768 + 2))
    for w in (w_t, w_k):
        assert np.abs(w).max() <= limit and np.std(w) == pytest.approx(limit / np.sqrt(3), rel=0.1)
    stem_t = tm.net.stem[0].weight.detach().numpy()  # 96x3x4x4
    stem_k = km.get_layer("convnext_tiny_stem").layers[0].kernel.numpy()
    assert np.std(stem_t) == pytest.approx(np.std(stem_k), rel=0.05)


def test_pretrained_offline_error_says_how_to_provide_the_file(monkeypatch, tmp_path):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    from keras.src.utils import file_utils

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # an empty hub cache
    monkeypatch.setattr(file_utils, "get_file", offline)
    monkeypatch.delenv("BENCH_WEIGHTS_DIR", raising=False)
    spec = ModelSpec(arch="resnet101", pretrained=True)
    with pytest.raises(RuntimeError, match=r"resnet101-63fe2227\.pth.*BENCH_WEIGHTS_DIR.*\[model\] weights"):
        torch_backend.Backend().build(spec, (32, 32, 3), 2)
    with pytest.raises(RuntimeError, match=r"resnet101_weights_tf_dim_ordering_tf_kernels_notop\.h5.*BENCH_WEIGHTS"):
        keras_backend.Backend().build(spec, (32, 32, 3), 2)
    with pytest.raises(FileNotFoundError, match=r"model\.weights"):
        torch_backend.Backend().build(
            ModelSpec(arch="resnet101", pretrained=True, weights=str(tmp_path / "no")), (32, 32, 3), 2
        )


def test_keras_applications_no_top_weights_fill_the_trunk_and_convnexts_head_norm_and_the_head_stays_fresh(
    tmp_path,
):
    """--pretrained on Keras: the published no-top file (here one saved from a seeded no-top build) fills every
    trunk layer by name; its last LayerNormalization (on the map in the no-top model) becomes the top's norm of
    the pooled vector, as timm has it; the head is drawn with the spec's init."""
    from backends.keras.models import big

    keras.utils.set_random_seed(3)
    notop = keras.applications.ConvNeXtTiny(
        include_top=False, weights=None, input_shape=(32, 32, 3), include_preprocessing=False
    )
    for w in notop.weights:  # every variable away from its initial value, biases and norms included
        w.assign(w + np.random.default_rng(len(w.path)).normal(0, 0.01, w.shape).astype("float32"))
    path = tmp_path / "convnext_tiny_notop.weights.h5"
    notop.save_weights(path)
    km = big(ModelSpec(arch="convnext_tiny", pretrained=True, weights=str(path)), (32, 32, 3), 2)
    stem = notop.get_layer("convnext_tiny_stem")
    built = km.get_layer("convnext_tiny_stem").get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(built, stem.get_weights(), strict=True))
    last_norm = notop.layers[-1]
    assert isinstance(last_norm, keras.layers.LayerNormalization)
    norm = km.get_layer("convnext_tiny_head_layernorm").get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(norm, last_norm.get_weights(), strict=True))
    head = km.get_layer("head")
    assert np.abs(head.kernel.numpy()).max() <= np.sqrt(6 / (768 + 2)) and not head.bias.numpy().any()


@pytest.mark.parametrize("backend_module", [torch_backend, keras_backend], ids=["torch", "keras"])
def test_augmentation_is_per_image_and_training_only(backend_module):
    x = np.zeros((64, 8, 8, 3), np.float32)
    x[:, :, :4] = 1.0  # left half bright
    if backend_module is torch_backend:
        aug = torch_backend.augmenter(("hflip",))
        out = aug(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy().transpose(0, 2, 3, 1)
    else:
        aug = keras_backend.augmenter(("hflip",), seed=0)
        out = np.asarray(aug(x, training=True))
        assert np.array_equal(np.asarray(aug(x, training=False)), x)  # inference: identity
    flipped = out[:, 0, -1, 0] == 1.0
    assert 10 < flipped.sum() < 54  # drawn per image, not once per batch
    rot = (
        torch_backend.augmenter(("rotate10",))
        if backend_module is torch_backend
        else keras_backend.augmenter(("rotate10",), seed=0)
    )
    assert rot is not None


def test_forward_flops_match_the_analytic_count_of_cifar_cnn():
    """conv/dense multiply-adds x 2: torch's flop_counter and the keras layer walk exactly; TF's graph
    profiler also counts the bias adds (< 1% more)."""
    from backends.keras import perf as keras_perf

    spec = ModelSpec(arch="cifar_cnn", options=(("activation", "relu"),))
    macs = 30 * 30 * 32 * 27 + 13 * 13 * 64 * 288 + 4 * 4 * 64 * 576 + 1024 * 64 + 64 * 10
    t, k = torch_backend.Backend(), keras_backend.Backend()
    t.configure(RuntimeSpec(), 0)
    tm = t.build(spec, (32, 32, 3), 10)
    state = t.compile(tm, TrainSpec(epochs=1, batch_size=8, lr=1e-3), RuntimeSpec())
    assert t.forward_flops(state, (32, 32, 3)) == 2 * macs
    km = k.build(spec, (32, 32, 3), 10)
    assert k.forward_flops(keras_backend.KerasState(km), (32, 32, 3)) == 2 * macs
    profiled = keras_perf.graph_profiler_flops(km, (32, 32, 3))
    assert 2 * macs <= profiled <= 2 * macs * 1.01


def test_forward_flops_of_the_big_models_agree_between_the_frameworks(built):
    from backends.torch import perf as torch_perf

    counts = {}
    for arch in EXPECTED:
        _, tm, k, km = built[arch]
        counts[arch] = (
            torch_perf.forward_flops(tm, (32, 32, 3), torch.device("cpu")),
            k.forward_flops(keras_backend.KerasState(km), (32, 32, 3)),
        )
    # the same architecture (grouped 7x7 convs included): the same count
    assert counts["convnext_tiny"][0] == counts["convnext_tiny"][1]
    # v1 (keras) puts the stride on the 1x1 conv of a downsampling block, so its 3x3 convs run at the
    # lower resolution: fewer FLOPs than torchvision's v1.5
    torch_count, keras_count = counts["resnet101"]
    assert 0.9 * torch_count < keras_count < torch_count


@pytest.mark.parametrize("backend_module", [torch_backend, keras_backend], ids=["torch", "keras"])
def test_profile_ops_lists_named_ops_with_times(backend_module):
    b = backend_module.Backend()
    b.configure(RuntimeSpec(), 0)
    spec = ModelSpec(arch="cifar_cnn", options=(("activation", "relu"),))
    state = b.compile(b.build(spec, (32, 32, 3), 10), TrainSpec(epochs=1, batch_size=16, lr=1e-3), RuntimeSpec())
    rng = np.random.default_rng(0)
    data = b.put(rng.random((64, 32, 32, 3), dtype=np.float32), rng.integers(0, 10, 64))
    b.train_epoch(state, data, np.arange(64), 16)  # trace outside the profile
    b.profile_ops_start()  # as the step hooks start and stop it around the warm-up steps
    loss = b.train_epoch(state, data, np.arange(64), 16)
    ops = b.profile_ops_stop(top=10)
    assert np.isfinite(loss)
    assert 3 <= len(ops) <= 10
    assert all(isinstance(o["op"], str) and o["ms"] > 0 and o["calls"] >= 1 for o in ops)
    assert [o["ms"] for o in ops] == sorted((o["ms"] for o in ops), reverse=True)
    assert any("conv" in o["op"].lower() for o in ops)


@pytest.mark.parametrize("backend_module", [torch_backend, keras_backend], ids=["torch", "keras"])
def test_matmul_runs_in_the_training_precision(backend_module):
    b = backend_module.Backend()
    b.configure(RuntimeSpec(), 0)
    for precision in ("fp32", "mixed_bf16"):
        b.matmul(64, precision)()


@pytest.mark.parametrize("backend_module", [torch_backend, keras_backend], ids=["torch", "keras"])
def test_precision_and_layout_knobs_take_effect(backend_module):
    """mixed_bf16 (and channels_last in torch) train, and the knobs say so; keras's global policy is restored."""
    rt = RuntimeSpec(precision="mixed_bf16", channels_last=backend_module is torch_backend)
    b = backend_module.Backend()
    try:
        env = b.configure(rt, 0)
        spec = ModelSpec(arch="cifar_cnn", options=(("activation", "relu"),))
        net = b.build(spec, (32, 32, 3), 10)
        state = b.compile(net, TrainSpec(epochs=1, batch_size=16, lr=1e-3), rt)
        rng = np.random.default_rng(0)
        data = b.put(rng.random((32, 32, 32, 3), dtype=np.float32), rng.integers(0, 10, 32))
        assert np.isfinite(b.train_epoch(state, data, np.arange(32), 16))
        if backend_module is torch_backend:
            assert env["knobs"]["precision"] == "mixed_bf16" and env["knobs"]["channels_last"] is True
            assert net.conv2.weight.is_contiguous(memory_format=torch.channels_last)
            assert state.autocast_dtype == torch.bfloat16
        else:
            assert env["knobs"]["precision"] == "mixed_bfloat16"
            assert net.get_layer("conv1").compute_dtype == "bfloat16"
    finally:
        keras.config.set_dtype_policy("float32")


# torch's knobs dict as every row had it before the fused_optimizer knob (the history's series key)
TORCH_KNOBS_BEFORE_FUSED = {
    "precision",
    "channels_last",
    "torch_compile",
    "compile_mode",
    "tf32_matmul",
    "tf32_cudnn",
    "cudnn_benchmark",
}


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_the_fused_optimizer_knob_runs_torchs_fused_kernel_and_takes_the_same_steps(optimizer):
    """``runtime.fused_optimizer`` (a torch knob of `bench tune`): the optimiser is built with ``fused=True`` (torch's
    own choice on a CPU is a loop over the tensors), the row's knobs say so (a default row's knobs, the history's
    series key, do not name it), and three steps from one init end at the same weights as the default's within
    float32 rounding: a faster kernel, not another training."""
    rng = np.random.default_rng(0)
    x, y = rng.random((32, 32, 32, 3), dtype=np.float32), rng.integers(0, 10, 32)
    train = TrainSpec(epochs=1, batch_size=8, lr=1e-2, optimizer=optimizer, momentum=0.9)
    weights = {}
    for fused in (False, True):
        rt = RuntimeSpec(fused_optimizer=fused)
        b = torch_backend.Backend()
        env = b.configure(rt, 0)
        net = b.build(ModelSpec(arch="cifar_cnn", options=(("activation", "relu"),)), (32, 32, 3), 10)
        state = b.compile(net, train, rt)
        assert env["knobs"].get("fused_optimizer", False) is fused and bool(state.optimizer.defaults["fused"]) is fused
        # a default row's knobs, the history's series key, are what they were before the knob existed
        assert fused or set(env["knobs"]) == TORCH_KNOBS_BEFORE_FUSED
        b.train_epoch(state, b.put(x, y), np.arange(24), 8)
        weights[fused] = [p.detach().clone() for p in net.parameters()]
    moved = max(float((a - p0).abs().max()) for a, p0 in zip(weights[False], weights[True], strict=True))
    assert moved < 1e-4, moved


def test_a_compiled_big_model_trains(built):
    """torch.compile of a model that is not a Sequential (every big and zoo model): its compiled wrapper has no
    len(), so its truth value raised TypeError in train_epoch; dynamo's eager backend traces it here without
    inductor's minutes of code generation."""
    t, net, _, _ = built["convnext_tiny"]
    state = t.compile(net, TrainSpec(epochs=1, batch_size=4, lr=1e-4), RuntimeSpec())
    state.step_model = torch.compile(net, backend="eager")
    rng = np.random.default_rng(0)
    data = t.put(rng.random((8, 32, 32, 3), dtype=np.float32), rng.integers(0, 2, 8))
    assert np.isfinite(t.train_epoch(state, data, np.arange(8), 4))
