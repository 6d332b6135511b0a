"""Zoo rows as task models (``[model] arch = "zoo:<id>"``): the spec accepts them, both backends build them
with the catalog's layer names (``backbone`` for Grad-CAM, ``head``), the frameworks' own FLOP counters
agree within 1% or by a named difference, Grad-CAM through the suite's explain code agrees (>= 0.999) with
converted weights, and one torch weights file initialises both frameworks (``model.pretrained``).

Default: a small subset at small sizes; ``pytest --slow``: FLOPs of every row at its input size and
Grad-CAM at the rows' input size (224).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.core import metrics
from bench.core.catalog import architecture
from bench.core.spec import ModelSpec, RuntimeSpec, SpecError, TrainSpec, load_task
from bench.core.zoo import DIFFERENCES, ZOO, zoo_architecture
from tests.conftest import import_both_frameworks

torch_backend, keras_backend = import_both_frameworks()
pytest.importorskip("timm")
import keras  # noqa: E402
import torch  # noqa: E402

from backends.keras import zoo_convert  # noqa: E402
from bench.phases import explain  # noqa: E402
from tests.parity import min_correlation  # noqa: E402
from tests.test_zoo import _param_delta, _prepare_torch, _torch_count  # noqa: E402

pytestmark = pytest.mark.frameworks  # imports the frameworks when collected

FLOPS_DEFAULT = ("mobilenet_v3_small", "resnet50", "xception")  # depthwise + SE; a named difference; separable
HEADS = ("head", "head")  # the task models' classifiers, in both frameworks


def _task_toml(tmp_path: Path, model: str) -> Path:
    path = tmp_path / "zoo.toml"
    path.write_text(
        'name = "zoo-t"\n[dataset]\nname = "cifar10"\nchannels = 3\n'
        f"[model]\n{model}\n[train]\nepochs = 1\nbatch_size = 4\nlr = 1e-3\n"
    )
    return path


def test_a_zoo_id_is_a_task_model_with_the_rows_differences_as_notes(tmp_path):
    spec = load_task(_task_toml(tmp_path, 'arch = "zoo:densenet121"'))
    arch = architecture(spec.model)
    assert (arch.id, arch.last_conv, arch.head) == ("zoo:densenet121", "backbone", "head")
    assert "DenseNet121" in arch.description and arch.pretrained
    resnet = zoo_architecture("zoo:resnet50")
    assert any(DIFFERENCES["resnet_v1_vs_v1_5"].description in n for n in resnet.notes)
    assert not resnet.pretrained  # the converter cannot pair v1 with v1.5


@pytest.mark.parametrize(
    ("model", "error"),
    [
        ('arch = "zoo:resnet5"', r"model\.arch: unknown zoo architecture 'zoo:resnet5' \(known: zoo:resnet50"),
        ('arch = "zoo:convnext_tiny"\npretrained = true', r"model\.weights: zoo:convnext_tiny takes pretrained"),
        ('arch = "zoo:resnet50"\npretrained = true\nweights = "x.pth"', r"model 'zoo:resnet50' has no ImageNet"),
    ],
)
def test_bad_zoo_models_are_refused_naming_the_key(tmp_path, model, error):
    with pytest.raises(SpecError, match=error):
        load_task(_task_toml(tmp_path, model))


def _built(backend_module, zoo_id: str, size: int, n: int = 10, **model):
    b = backend_module.Backend()
    b.configure(RuntimeSpec(), seed=0)
    m = b.build(ModelSpec(arch=f"zoo:{zoo_id}", **model), (size, size, 3), n)
    return b, m, b.compile(m, TrainSpec(epochs=1, batch_size=2, lr=1e-3), RuntimeSpec())


@pytest.mark.parametrize("zoo_id", ["efficientnet_b0"])  # depthwise, squeeze-excite, a parameter difference
def test_both_backends_build_the_task_model_with_backbone_and_head(zoo_id):
    tb, tm, ts = _built(torch_backend, zoo_id, 32)
    kb, km, ks = _built(keras_backend, zoo_id, 32)
    entry = ZOO[zoo_id]
    deltas = sum(_param_delta(d, tm, km, entry, HEADS) for d in entry.differences if DIFFERENCES[d].changes_params)
    assert km.count_params() == _torch_count(tm) + deltas
    x = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    for b, state in ((tb, ts), (kb, ks)):
        feats = b.layer_input(state, x, "head", 2)
        assert feats.shape == (2, tm.head.in_features)
        act, grad = b.layer_gradients(state, b.put(x, np.zeros(2, np.int64)), "backbone", np.zeros(2, int), np.ones(2))
        assert (
            act.shape == grad.shape and act.shape[0] == 2 and act.shape[-1] == km.get_layer("backbone").output.shape[-1]
        )
    assert all(layer.momentum == 0.9 for layer in km.layers if isinstance(layer, keras.layers.BatchNormalization))
    assert tb.train_epoch(ts, tb.put(x, np.array([0, 1])), np.arange(2), 2) > 0


def _flop_ids():
    """Every row; those outside FLOPS_DEFAULT are slow (pytest --slow) and run at their input size."""
    return [pytest.param(z, marks=() if z in FLOPS_DEFAULT else pytest.mark.slow) for z in ZOO]


@pytest.mark.parametrize("zoo_id", _flop_ids())
def test_the_frameworks_flop_counters_agree_within_1pct_or_the_difference_is_named(zoo_id):
    entry = ZOO[zoo_id]
    full = zoo_id not in FLOPS_DEFAULT or zoo_id == "mobilenet_v3_small"
    size = entry.input_size if full else max(64, entry.min_size)
    tb, _, ts = _built(torch_backend, zoo_id, size)
    kb, _, ks = _built(keras_backend, zoo_id, size)
    t, k = tb.forward_flops(ts, (size, size, 3)), kb.forward_flops(ks, (size, size, 3))
    named = [d for d in entry.differences if DIFFERENCES[d].changes_flops]
    if named:  # the named difference is real: the counts differ by more than 1%
        assert abs(k / t - 1) > 0.01, f"{zoo_id}: {named} names a FLOP difference, the counters agree ({k / t:.4f})"
    else:
        assert abs(k / t - 1) <= 0.01, f"{zoo_id}: keras/torch FLOPs {k / t:.4f} and no named difference"


@pytest.mark.parametrize("size", [96, pytest.param(224, marks=pytest.mark.slow)])  # 96 px: a 3x3 last map
@pytest.mark.parametrize("zoo_id", ["convnext_tiny", "densenet121"])
def test_gradcam_through_the_explain_code_agrees_with_converted_weights(zoo_id, size, record_property):
    tb, tm, ts = _built(torch_backend, zoo_id, size)
    kb, km, ks = _built(keras_backend, zoo_id, size)
    x = np.random.default_rng(0).standard_normal((2, size, size, 3)).astype(np.float32)
    _prepare_torch(tm, km, zoo_id, x, HEADS)  # BatchNorm statistics and biases alive, |logits| <= 1
    zoo_convert.torch_to_keras(tm, km, zoo_id, HEADS)
    td, kd = tb.put(x, np.zeros(2, np.int64)), kb.put(x, np.zeros(2, np.int64))
    logits_t, logits_k = tb.forward(ts, td), kb.forward(ks, kd)
    assert np.abs(logits_t[0] - logits_t[1]).max() > 0.05  # alive: the images get different logits
    assert np.abs(logits_t - logits_k).max() <= 1e-4
    columns, signs = metrics.class_score_signs(10, logits_t.argmax(1))
    cams = [
        explain.backend_gradcam(b, s, d, "backbone", columns, signs, (size, size))
        for b, s, d in ((tb, ts, td), (kb, ks, kd))
    ]
    record_property("max_abs_logit_diff", float(np.abs(logits_t - logits_k).max()))  # in --junitxml (docs/zoo.md)
    record_property("gradcam_min_corr", min_correlation(*cams))
    assert min_correlation(*cams) >= 0.999


def _random_weights_file(tmp_path: Path, zoo_id: str, size: int) -> Path:
    """A torch state_dict of the row's library model with live random weights (BatchNorm statistics of
    real activations, non-trivial gammas and biases), as a user's timm/torchvision file would be shaped."""
    from backends.keras import zoo as keras_zoo
    from backends.torch import zoo as torch_zoo

    net = torch_zoo.library_model(zoo_id, 1000)
    lib = keras_zoo.library_model(zoo_id, 1000, size)
    _prepare_torch(net, lib, zoo_id, np.random.default_rng(1).standard_normal((4, size, size, 3)).astype(np.float32))
    path = tmp_path / f"{zoo_id}.pth"
    torch.save(net.state_dict(), path)
    return path


def test_one_torch_weights_file_initialises_both_frameworks_through_the_converter(tmp_path):
    zoo_id, size = "mobilenet_v3_small", 64
    path = _random_weights_file(tmp_path, zoo_id, size)
    model = {"pretrained": True, "weights": str(path)}
    tb, tm, ts = _built(torch_backend, zoo_id, size, **model)
    kb, km, ks = _built(keras_backend, zoo_id, size, **model)
    x = np.random.default_rng(0).standard_normal((2, size, size, 3)).astype(np.float32)
    with torch.no_grad():  # the heads are fresh draws: give Keras torch's, then the whole networks agree
        km.get_layer("head").set_weights([tm.head.weight.numpy().T, tm.head.bias.numpy()])
    td, kd = tb.put(x, np.zeros(2, np.int64)), kb.put(x, np.zeros(2, np.int64))
    logits_t, logits_k = tb.forward(ts, td), kb.forward(ks, kd)
    assert np.abs(logits_t[0] - logits_t[1]).max() > 1e-3  # alive
    assert np.abs(logits_t - logits_k).max() <= 1e-4


def test_a_missing_or_mismatched_weights_file_names_the_file_and_the_first_layer(tmp_path):
    from backends.torch import zoo as torch_zoo

    other = tmp_path / "mobilenet_v3_large.pth"
    torch.save(torch_zoo.library_model("mobilenet_v3_large", 1000).state_dict(), other)
    for backend_module in (torch_backend, keras_backend):
        with pytest.raises(
            Exception,
            match=rf"{other}: not zoo:mobilenet_v3_small weights: conv_stem\.weight|"
            rf"{other}: not zoo:mobilenet_v3_small weights: .*blocks",
        ):
            _built(backend_module, "mobilenet_v3_small", 64, pretrained=True, weights=str(other))
        with pytest.raises(FileNotFoundError, match=r"model\.weights: .*nothing\.pth is not a file"):
            _built(backend_module, "mobilenet_v3_small", 64, pretrained=True, weights=str(tmp_path / "nothing.pth"))
