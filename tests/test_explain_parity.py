"""Both frameworks compute the same function and the same explanations, and ours matches pytorch-grad-cam.

With weights converted between the builds (backends.convert), logits agree within 1e-4
and Grad-CAM / saliency maps correlate >= 0.999 per image, in both directions: so a
speed difference between the backends is a framework difference, not a model one.
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.core import metrics
from bench.core.catalog import architecture
from bench.core.job import Job
from bench.core.layers import infer_shapes, map_layers
from bench.phases import explain
from tests.conftest import import_both_frameworks
from tests.parity import CASES, TRAIN, build, check, compare, min_correlation, model

pytestmark = pytest.mark.frameworks  # imports the frameworks when collected

torch_backend, keras_backend = import_both_frameworks()


@pytest.mark.parametrize("direction", ["torch->keras", "keras->torch"])
@pytest.mark.parametrize(("spec", "shape", "n_outputs"), CASES.values(), ids=CASES.keys())
def test_converted_weights_give_the_same_logits_and_maps(direction, spec, shape, n_outputs):
    """Keras on TensorFlow, in this process (tests/test_keras_engines.py: the JAX and torch engines, torch->keras)."""
    torch_side = build(torch_backend, spec, shape, n_outputs)
    keras_side = build(keras_backend, spec, shape, n_outputs)
    check(compare(torch_side, keras_side, direction, spec, shape, n_outputs), shape, n_outputs)


@pytest.mark.parametrize("backend", [torch_backend, keras_backend], ids=["torch", "keras"])
def test_layer_contract_and_binary_sign(backend):
    b, _, state = build(backend, model("lenet5", activation="sigmoid"), (28, 28, 1), 1)
    x = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    data = b.put(x, np.zeros(4, dtype=np.int64))
    ones, zeros = metrics.class_score_signs(1, np.ones(4)), metrics.class_score_signs(1, np.zeros(4))
    act, g1 = b.layer_gradients(state, data, "conv2", *ones)
    assert act.shape == (4, 10, 10, 16) and act.min() > 0 and act.max() < 1  # after the sigmoid
    _, g0 = b.layer_gradients(state, data, "conv2", *zeros)
    np.testing.assert_allclose(g0, -g1, atol=1e-7)  # class 0's score is minus the logit
    with pytest.raises(KeyError, match="no layer 'conv9'"):
        b.layer_gradients(state, data, "conv9", *ones)


@pytest.mark.parametrize("backend", [torch_backend, keras_backend], ids=["torch", "keras"])
def test_every_layer_the_spec_lets_grad_cam_read_is_a_map_in_both_builds(backend):
    """bench.core.layers.map_layers, what a task's explain.layer is checked against at load, names layers that
    both builds have and that give Grad-CAM a map (batch norm, standalone activation, pool and dropout too)."""
    spec, shape, n_outputs = CASES["layers-every-kind"]
    layers = architecture(spec).layers
    b, _, state = build(backend, spec, shape, n_outputs)
    x = np.random.default_rng(0).random((2, *shape), dtype=np.float32)
    data = b.put(x, np.zeros(2, dtype=np.int64))
    signs = metrics.class_score_signs(n_outputs, np.zeros(2))
    maps = map_layers(layers)
    assert maps == ("conv1", "bn1", "pool1", "conv2", "bn2", "act2", "pool2", "drop1")
    for name, out in zip(maps, infer_shapes(layers, shape), strict=False):
        act, grad = b.layer_gradients(state, data, name, *signs)
        assert act.shape == grad.shape == (2, *out), name
        assert explain.gradcam(act, grad, shape[:2]).shape == (2, *shape[:2])


def test_our_gradcam_equals_pytorch_grad_cam():
    pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from datasets import registry

    ds = registry.load("mnist", fallback="auto")
    b, m, state = build(torch_backend, model("lenet5"), (28, 28, 1), 10)
    train = b.put(ds.train.x[:640].astype(np.float32) / 255, ds.train.y[:640].astype(np.int64))
    for _ in range(2):  # a little training: real, structured maps
        b.train_epoch(state, train, np.random.default_rng(0).permutation(640), 32)
    x, y = ds.test.x[:32].astype(np.float32) / 255, ds.test.y[:32].astype(np.int64)
    data = b.put(x, y)
    pred = b.forward(state, data).argmax(1)
    columns, signs = metrics.class_score_signs(10, pred)
    ours = explain.backend_gradcam(b, state, data, "conv2", columns, signs, (28, 28))
    with GradCAM(model=m, target_layers=[m.act2]) as cam:  # conv2's post-activation output
        nchw = torch_backend.torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        ref = cam(input_tensor=nchw, targets=[ClassifierOutputTarget(int(c)) for c in pred])
    assert ref.shape == ours.shape
    assert sum(r.std() > 0 for r in ref) >= 24  # most maps have structure to compare
    assert min_correlation(ours, ref) >= 0.999


def test_a_frozen_nested_trunk_named_backbone_is_a_target_layer():
    """resnet101/convnext_tiny expose their conv trunk as one layer "backbone" (catalog last_conv)."""
    import keras
    from torch import nn

    x = np.random.default_rng(0).random((2, 16, 16, 3), dtype=np.float32)
    columns, signs = np.array([0, 2]), np.ones(2, dtype=np.float32)
    inner = keras.Input((16, 16, 3))
    trunk = keras.Model(inner, keras.layers.Conv2D(4, 3, activation="relu")(inner), name="backbone")
    trunk.trainable = False
    outer = keras.Input((16, 16, 3))
    head = keras.layers.Dense(3, name="fc")(keras.layers.GlobalAveragePooling2D()(trunk(outer)))
    k = keras_backend.Backend()
    state = keras_backend.KerasState(keras.Model(outer, head))
    act_k, grad_k = k.layer_gradients(state, k.put(x, columns), "backbone", columns, signs)

    tm = nn.Sequential()
    tm.add_module("backbone", nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()))
    tm.add_module("pool", nn.AdaptiveAvgPool2d(1))
    tm.add_module("flatten", nn.Flatten())
    tm.add_module("fc", nn.Linear(4, 3))
    tm.requires_grad_(False)  # frozen entirely: gradients must still reach the trunk's output
    t = torch_backend.Backend()
    act_t, grad_t = t.layer_gradients(torch_backend.TrainState(tm, None), t.put(x, columns), "backbone", columns, signs)
    for act, grad in ((act_k, grad_k), (act_t, grad_t)):
        assert act.shape == grad.shape == (2, 14, 14, 4) and act.min() >= 0 and np.abs(grad).sum() > 0
        # d(score)/d(act) through global average pooling is fc's weight row / (14 * 14), at every position
        assert np.allclose(grad[0], grad[0, 0, 0]) and not np.allclose(grad[0, 0, 0], grad[1, 0, 0])


def test_the_phase_times_both_explains_the_true_class_when_asked_and_saves_the_drawn_maps(tmp_path):
    from bench.core.phase import Trained
    from bench.core.preprocess import PixelNorm
    from bench.core.spec import DatasetSpec, ExplainSpec, TaskSpec

    spec = model("lenet5")
    b, _, state = build(torch_backend, spec, (28, 28, 1), 10)
    rng = np.random.default_rng(0)
    x8, y = rng.integers(0, 256, (50, 28, 28, 1), dtype=np.uint8), np.arange(50) % 5  # 5 of 10 classes present
    task = TaskSpec(
        name="t",
        dataset=DatasetSpec(name="mnist"),
        model=spec,
        train=TRAIN,
        explain=ExplainSpec(gradcam=True, saliency=True, target="true", n_images=20, batch_size=16),
    )
    job = Job({"task": "t", "backend": "torch", "repeat": 0}, artifacts=str(tmp_path / "artifacts"))
    norm = PixelNorm.from_spec(task.dataset, 1)
    x = norm.apply(x8)  # the floats the phase hands the backend
    data8 = b.put(x8, y, norm)
    trained = Trained(b, state, task, tuple("abcdefghij"), x8, y, x8, y, data8, data8, 0, job, norm)
    out = explain.explain_phase(trained)

    assert out["explain_layer"] == "conv2" and out["explain_images"] == 16
    acts, _ = b.layer_gradients(state, b.put(x[:4], y[:4]), "conv2", *metrics.class_score_signs(10, y[:4]))
    assert out["gradcam_layer_hw"] == f"{acts.shape[1]}x{acts.shape[2]}" and acts.shape[1] > 1  # the layer's map
    assert out["gradcam_forward_ratio"] == pytest.approx(out["gradcam_ms_per_img"] / out["forward_ms_per_img"])
    assert out["saliency_ms_per_img"] > 0 and out["explain_file"] == "artifacts/t.torch.0.explain.npz"
    with np.load(tmp_path / out["explain_file"]) as f:
        drawn = explain.picture_indices(y, 10, 20)  # 2 per class of the 5 present
        assert f["y_true"].tolist() == y[drawn].tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
        data = b.put(x[drawn], y[drawn])
        assert f["y_pred"].tolist() == b.forward(state, data).argmax(1).tolist()
        assert (f["y_pred"] != f["y_true"]).any()  # untrained: explaining the label differs from the prediction
        true_cam = explain.backend_gradcam(b, state, data, "conv2", *metrics.class_score_signs(10, y[drawn]), (28, 28))
        np.testing.assert_allclose(f["gradcam"], true_cam, atol=1e-5)  # the label's map, not the prediction's
        assert f["saliency"].shape == (10, 28, 28) and f["x"].shape == (10, 28, 28, 1)
        assert str(f["target"]) == "true"  # the figure's title says whose class the maps explain


def test_keras_on_tensorflow_trains_and_explains_without_leaving_autograph_files(monkeypatch, tmp_path):
    """AutoGraph writes each function it converts to ``__autograph_generated_file*.py`` in the temp folder and
    never removes it: the tf.data map, the batch count, Grad-CAM's and saliency's tf.functions left several per
    Keras row in /tmp (~200 an hour of this suite, 2026-12-07). None has Python control flow on tensors, so none
    is converted."""
    import tensorflow as tf

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))  # where AutoGraph's files go
    b, _, state = build(keras_backend, model("lenet5"), (28, 28, 1), 10)
    x = np.random.default_rng(0).random((8, 28, 28, 1), dtype=np.float32)
    data = b.put(x, np.arange(8) % 10)
    signs = metrics.class_score_signs(10, np.zeros(8))
    assert b.prepare_batches(state, data, np.arange(8), 4) == 2  # the input path's timing counts its batches
    assert np.isfinite(b.train_epoch(state, data, np.arange(8), 4))
    assert b.predict(state, data, 4).shape == b.forward(state, data).shape == (8, 10)
    assert b.layer_gradients(state, data, "conv2", *signs)[1].shape == (8, 10, 10, 16)
    assert b.input_gradients(state, data, *signs).shape == (8, 28, 28, 1)
    assert not list(tmp_path.glob("__autograph_generated_file*"))

    @tf.function  # the control: a function AutoGraph converts writes its file there
    def converted(v: tf.Tensor) -> tf.Tensor:
        return v * 2

    converted(tf.ones(2))
    assert list(tmp_path.glob("__autograph_generated_file*"))
