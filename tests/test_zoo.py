"""The zoo: every row builds in both frameworks, the parameter counts agree up to the row's named
differences (computed here from the built models), and converted weights give the same logits wherever the
row claims an equal network; where it does not, a test named after the difference shows it.

By default a representative subset runs (one or more rows per family, ConvNeXt-tiny among them);
``pytest --slow`` runs every row (minutes per big model on a CPU: EfficientNet-B7 at 600 px, ...).

Logit parity: torch's BatchNorm statistics are first set to the test images' own statistics (one train-mode
pass) and every bias/norm weight is randomised, so no layer is a near-identity and activations stay alive;
the torch head is then scaled so torch's largest |logit| is 1, which makes the 1e-4 bound a relative one.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys

import numpy as np
import pytest

from bench.core.zoo import DIFFERENCES, ZOO

torch = pytest.importorskip("torch")
pytest.importorskip("torch._dynamo")  # torch, timm and torchvision strictly before tensorflow: segfault

pytest.importorskip("timm")
pytest.importorskip("torchvision")
pytest.importorskip("tensorflow")
import keras  # noqa: E402

from backends.keras import zoo as zoo_keras  # noqa: E402
from backends.keras import zoo_convert  # noqa: E402
from backends.torch import zoo as zoo_torch  # noqa: E402

# imports the frameworks when collected; one lane builds each row once (tests/lanes.py)
pytestmark = [pytest.mark.frameworks, pytest.mark.xdist_group("zoo")]

N_CLASSES = 10
TOLERANCE = 1e-4
PARITY_DEFAULT = (  # one per kind of layer the converter handles: LayerScale, depthwise + 1x1-conv head + SE,
    # preprocessing made the identity, dense concatenation, branches + scale-free BatchNorm, flatten
    "convnext_tiny",
    "mobilenet_v3_small",
    "efficientnet_b0",
    "densenet121",
    "inception_resnet_v2",
    "vgg16",
)
COUNTS_DEFAULT = (*PARITY_DEFAULT, "resnet50", "resnet50_v2", "inception_v3", "xception")
PARITY_IDS = [z for z in ZOO if ZOO[z].equal_network]
COUNT_IDS = list(ZOO)
_BN = torch.nn.modules.batchnorm._BatchNorm


@pytest.fixture(scope="module")
def models(request):
    """(torch model in eval mode, Keras model at the row's input size) for one row; module-scoped and
    parametrised, so pytest builds each row once for all the tests that take it."""
    zoo_id = request.param
    torch.manual_seed(0)
    keras.utils.set_random_seed(0)
    pair = zoo_torch.library_model(zoo_id, N_CLASSES).eval(), zoo_keras.library_model(zoo_id, N_CLASSES)
    yield pair
    keras.backend.clear_session()


def _rows(ids, default=COUNTS_DEFAULT):
    """Parametrise ``models`` over ``ids``; rows outside ``default`` are marked slow (pytest --slow)."""
    params = [pytest.param(z, id=z, marks=() if z in default else pytest.mark.slow) for z in ids]
    return pytest.mark.parametrize("models", params, indirect=True)


# --- the table itself (framework-free) ---


def test_the_table_has_at_least_25_rows_with_known_differences_and_constructors():
    assert len(ZOO) >= 25
    for entry in ZOO.values():
        assert set(entry.differences) <= set(DIFFERENCES), entry.id
        assert callable(getattr(keras.applications, entry.keras)), entry.id
        assert entry.torch_library in ("torchvision", "timm"), entry.id
    assert ZOO["convnext_tiny"].equal_network and "convnext_tiny" in PARITY_IDS


def test_the_table_imports_no_framework():
    code = "import sys, bench.core.zoo; print(sorted({'torch', 'keras', 'tensorflow', 'jax'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=os.getcwd())
    assert out.stdout.strip() == "[]"


# --- parameter counts ---


def _torch_count(model) -> int:
    """Parameters plus BatchNorm moving statistics, which Keras counts (as non-trainable weights)."""
    stats = sum(m.running_mean.numel() + m.running_var.numel() for m in model.modules() if isinstance(m, _BN))
    return sum(p.numel() for p in model.parameters()) + stats


def _keras_layers(model):
    for layer in model.layers:
        yield from _keras_layers(layer) if isinstance(layer, keras.Model) else [layer]


def _param_delta(difference: str, tm, km, entry, heads: tuple[str, str] | None = None) -> int:
    """Keras count minus torch count caused by one named difference, from the libraries' own models (the
    classifiers left out: they are swapped to the same n_classes head); ``heads`` as in ``zoo_convert.pairs``."""
    torch_head, keras_head = heads or (entry.torch_head, entry.keras_head)
    layers = [layer for layer in _keras_layers(km) if layer.name != keras_head]
    head = tm.get_submodule(torch_head)
    if difference == "keras_conv_bias":
        keras_biases = sum(
            int(np.prod(layer.bias.shape))
            for layer in layers
            if isinstance(layer, keras.layers.Conv2D) and layer.bias is not None
        )
        torch_biases = sum(
            m.bias.numel()
            for m in tm.modules()
            if isinstance(m, torch.nn.Conv2d) and m.bias is not None and m is not head
        )
        return keras_biases - torch_biases
    if difference == "keras_bn_no_scale":
        return -sum(
            int(layer.moving_mean.shape[0])
            for layer in layers
            if isinstance(layer, keras.layers.BatchNormalization) and not layer.scale
        )
    if difference == "keras_normalization_stats":
        return sum(
            int(np.prod(w.shape))
            for layer in layers
            if isinstance(layer, keras.layers.Normalization)
            for w in layer.weights
        )
    raise AssertionError(f"no count rule for difference {difference!r}")


@_rows(COUNT_IDS)
def test_both_build_with_the_head_swapped_and_counts_agree_up_to_named_differences(models, request):
    tm, km = models
    entry = ZOO[request.node.callspec.params["models"]]
    head = tm.get_submodule(entry.torch_head)  # a Linear, or a 1x1 Conv2d (timm's ResNetV2)
    assert getattr(head, "out_features", None) or head.out_channels == N_CLASSES
    assert tuple(km.output.shape) == (None, N_CLASSES)
    deltas = {d: _param_delta(d, tm, km, entry) for d in entry.differences if DIFFERENCES[d].changes_params}
    assert all(deltas.values()), f"a named difference is not in the built models: {deltas}"
    assert km.count_params() == _torch_count(tm) + sum(deltas.values()), deltas


# --- logits with converted weights ---


def _images(size: int, n: int = 2) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, size, size, 3)).astype(np.float32)


def _torch_logits(model, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()


def _prepare_torch(tm, km, zoo_id: str, x: np.ndarray, heads: tuple[str, str] | None = None) -> np.ndarray:
    """Randomise the torch model as described at the top, scale its head to |logits| <= 1; its logits.
    ``heads``: the classifiers' names when not the library's (``zoo_convert.pairs``)."""
    gen = torch.Generator().manual_seed(0)

    def uniform(t, low, high):
        return torch.rand(t.shape, generator=gen) * (high - low) + low

    no_scale = {
        id(p.torch_module)
        for p in zoo_convert.pairs(tm, km, zoo_id, heads)
        if p.kind == "bn" and "gamma" not in p.keras_vars
    }
    with torch.no_grad():
        for module in tm.modules():
            for name, p in module.named_parameters(recurse=False):
                if name == "bias":
                    p.copy_(uniform(p, -0.1, 0.1))
                elif isinstance(module, _BN | torch.nn.LayerNorm) or name == "gamma":
                    p.copy_(uniform(p, 0.5, 1.5))
            if isinstance(module, _BN):
                if id(module) in no_scale:  # Keras has no gamma here (difference "keras_bn_no_scale")
                    module.weight.fill_(1.0)
                module.reset_running_stats()
                module.momentum = None  # the cumulative average: the statistics of this one batch
        tm.train()
        tm(torch.from_numpy(x.transpose(0, 3, 1, 2)))
        tm.eval()
        head = tm.get_submodule(heads[0] if heads else ZOO[zoo_id].torch_head)
        scale = float(np.abs(_torch_logits(tm, x)).max())
        head.weight /= scale
        head.bias /= scale
    return _torch_logits(tm, x)


def _converted_difference(tm, km, zoo_id: str, x: np.ndarray) -> tuple[float, np.ndarray]:
    """max |torch - Keras| logits after torch -> Keras conversion, and torch's logits."""
    torch_logits = _prepare_torch(tm, km, zoo_id, x)
    zoo_convert.torch_to_keras(tm, km, zoo_id)
    keras_logits = keras.ops.convert_to_numpy(km(x, training=False))
    return float(np.abs(torch_logits - keras_logits).max()), torch_logits


@_rows(PARITY_IDS, PARITY_DEFAULT)
def test_converted_weights_give_the_same_logits_both_ways(models, request, record_property):
    tm, km = models
    zoo_id = request.node.callspec.params["models"]
    x = _images(ZOO[zoo_id].input_size)
    diff, torch_logits = _converted_difference(tm, km, zoo_id, x)
    record_property("max_abs_logit_diff", diff)  # in --junitxml, for the zoo's table
    # the two images get different logits: the network is alive, not a constant from the head's bias
    assert np.abs(torch_logits[0] - torch_logits[1]).max() > 0.05
    assert diff <= TOLERANCE, f"{zoo_id}: max |torch - keras| logits {diff:.3g}"
    with torch.no_grad():  # and back: Keras -> a torch model whose weights were wiped
        for p in tm.parameters():
            p.zero_()
        for m in tm.modules():
            if isinstance(m, _BN):
                m.reset_running_stats()
    zoo_convert.keras_to_torch(km, tm, zoo_id)
    assert np.abs(_torch_logits(tm, x) - torch_logits).max() <= TOLERANCE


# --- rows that are not equal networks: each named difference shown ---


@_rows([z for z in COUNT_IDS if "resnet_v1_vs_v1_5" in ZOO[z].differences])
def test_resnet_differs_v1_vs_v1_5_keras_strides_the_first_1x1_torch_the_3x3(models):
    tm, km = models
    block = tm.layer2[0]
    assert (block.conv1.stride, block.conv2.stride) == ((1, 1), (2, 2))
    assert km.get_layer("conv3_block1_1_conv").strides == (2, 2)
    assert km.get_layer("conv3_block1_2_conv").strides == (1, 1)


@_rows([z for z in COUNT_IDS if "resnet_v2_stride_last_vs_first" in ZOO[z].differences])
def test_resnet_v2_differs_keras_downsamples_in_the_last_block_timm_in_the_first(models):
    tm, km = models
    assert tm.stages[1].blocks[0].conv2.stride == (2, 2)
    assert all(b.conv2.stride == (1, 1) for b in tm.stages[1].blocks[1:])
    last = max(
        int(layer.name.split("_block")[1].split("_")[0]) for layer in km.layers if layer.name.startswith("conv2_")
    )
    assert km.get_layer(f"conv2_block{last}_2_conv").strides == (2, 2)
    assert km.get_layer("conv3_block1_2_conv").strides == (1, 1)


@_rows([z for z in COUNT_IDS if "resnet_v1_vs_v1_5" in ZOO[z].differences][:1])
def test_converter_names_the_first_layer_pair_that_does_not_fit(models):
    tm, km = models  # Keras defines the shortcut before the main path, torch after: the pairing breaks there
    with pytest.raises(ValueError, match=r"torch layer1\.0\.bn1 / Keras conv2_block1_0_bn does not fit"):
        zoo_convert.torch_to_keras(tm, km, "resnet50")


@_rows([z for z in COUNT_IDS if "maxpool_same_vs_symmetric" in ZOO[z].differences])
def test_xception_differs_by_maxpool_padding_at_299_and_is_equal_where_every_map_is_odd(models):
    tm, km = models
    diff, _ = _converted_difference(tm, km, "xception", _images(299))
    assert diff > 1e-3  # 299 -> 147 -> 74: the second max pool reads an even map, torch and TF windows shift
    small = zoo_keras.library_model("xception", N_CLASSES, 71)  # 71 -> 33 -> 17 -> 9 -> 5: 'same' pads symmetrically
    x = _images(71)
    zoo_convert.torch_to_keras(tm, small, "xception")
    assert np.abs(_torch_logits(tm, x) - keras.ops.convert_to_numpy(small(x, training=False))).max() <= TOLERANCE


@_rows([z for z in COUNT_IDS if "avgpool_count_include_pad" in ZOO[z].differences])
def test_inception_v3_differs_only_by_avgpool_counting_the_padding(models, monkeypatch):
    tm, km = models
    x = _images(299)
    diff, _ = _converted_difference(tm, km, "inception_v3", x)
    assert diff > 1e-3
    functional = sys.modules["torchvision.models.inception"].F
    monkeypatch.setattr(functional, "avg_pool2d", functools.partial(functional.avg_pool2d, count_include_pad=False))
    keras_logits = keras.ops.convert_to_numpy(km(x, training=False))
    assert np.abs(_torch_logits(tm, x) - keras_logits).max() <= TOLERANCE


@_rows([z for z in COUNT_IDS if "nasnet_unported" in ZOO[z].differences])
def test_nasnet_large_is_not_claimed_equal_the_converter_cannot_pair_its_cells(models):
    tm, km = models  # when this starts passing the conversion, prove parity and drop the difference
    with pytest.raises(ValueError, match=r"does not fit|unpaired"):
        zoo_convert.torch_to_keras(tm, km, "nasnet_large")
