"""Grad-CAM and saliency arithmetic in bench.phases.explain (framework-free: numpy in, numpy out)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.core.catalog import ARCHITECTURES
from bench.core.spec import DatasetSpec, ExplainSpec, ModelSpec, TaskSpec, TrainSpec
from bench.phases import explain


def test_bilinear_upsampling_uses_half_pixel_centres():
    # 2 -> 4 pixels: output centres at 0.5, 1.5, 2.5, 3.5 map to input -0.25, 0.25, 0.75, 1.25 (clamped)
    m = np.array([[[0.0, 4.0]]], dtype=np.float32)
    out = explain.upsample(m, (1, 4))
    np.testing.assert_allclose(out[0, 0], [0.0, 1.0, 3.0, 4.0])


def test_upsampling_matches_opencv():
    cv2 = pytest.importorskip("cv2")
    maps = np.random.default_rng(0).random((3, 5, 7), dtype=np.float32)
    ref = np.stack([cv2.resize(m, (30, 28), interpolation=cv2.INTER_LINEAR) for m in maps])
    np.testing.assert_allclose(explain.upsample(maps, (28, 30)), ref, atol=1e-5)


def test_gradcam_weights_channels_by_mean_gradient_and_clips_negatives():
    acts = np.zeros((1, 2, 2, 2), dtype=np.float32)
    acts[0, :, :, 0] = [[1, 0], [0, 0]]  # channel 0 fires top-left
    acts[0, :, :, 1] = [[0, 0], [0, 3]]  # channel 1 fires bottom-right
    grads = np.zeros_like(acts)
    grads[0, :, :, 0] = 2.0  # weight +2
    grads[0, :, :, 1] = -1.0  # weight -1: its region is clipped by the ReLU
    cam = explain.gradcam(acts, grads, (2, 2))
    np.testing.assert_allclose(cam[0], [[1, 0], [0, 0]])


def test_gradcam_is_normalised_per_image_and_constant_maps_are_zero():
    rng = np.random.default_rng(1)
    acts = rng.random((3, 4, 4, 8), dtype=np.float32)
    grads = rng.random((3, 4, 4, 8), dtype=np.float32)
    grads[1] *= 1000  # scale must not matter after normalisation
    grads[2] = -1.0  # every weight negative: all clipped -> a constant map
    cam = explain.gradcam(acts, grads, (16, 16))
    assert cam.shape == (3, 16, 16)
    for i in (0, 1):
        assert cam[i].min() == pytest.approx(0) and cam[i].max() == pytest.approx(1)
    assert not cam[2].any()
    with pytest.raises(ValueError, match="must both be"):
        explain.gradcam(acts, grads[:, :2], (16, 16))


def test_saliency_is_the_largest_absolute_channel_gradient():
    g = np.array([[[[0.5, -2.0, 1.0]]]], dtype=np.float32)
    assert explain.saliency(g).tolist() == [[[2.0]]]


def test_pictures_three_per_class_for_two_classes_and_one_per_class_up_to_ten():
    y = np.array([1, 0, 1, 1, 0, 1, 0, 0])
    assert explain.picture_indices(y, 2, 6).tolist() == [1, 4, 6, 0, 2, 3]
    y10 = np.tile(np.arange(12), 3)
    assert explain.picture_indices(y10, 12, 6).tolist() == list(range(10))
    assert explain.picture_indices(np.array([0, 0, 0]), 3, 6).tolist() == [0, 1]  # 2 per class; absent ones skipped


def test_target_layer_defaults_to_the_catalog_last_conv():
    def task(layer: str) -> TaskSpec:
        return TaskSpec(
            name="t",
            dataset=DatasetSpec(name="mnist"),
            model=ModelSpec(arch="cifar_cnn"),
            train=TrainSpec(epochs=1, batch_size=8, lr=0.1),
            explain=ExplainSpec(gradcam=True, layer=layer),
        )

    assert explain.target_layer(task("")) == ARCHITECTURES["cifar_cnn"].last_conv == "conv3"
    assert explain.target_layer(task("conv1")) == "conv1"


def test_interleaved_medians_warm_up_once_then_alternate_rounds():
    from bench.measure.timing import SyncTimer

    order: list[str] = []
    ticks = iter(range(1000))
    timer = SyncTimer(lambda: None, clock=lambda: float(next(ticks)))  # every reading one "second" later
    calls = {"a": lambda: order.append("a") or "A", "b": lambda: order.append("b") or "B"}
    seconds, results = explain.interleaved_medians(calls, timer)
    rounds = len(order) // 2 - 1
    assert order[:4] == ["a", "b", "a", "b"] and order == ["a", "b"] * (rounds + 1)
    assert explain.MIN_ROUNDS <= rounds <= explain.MAX_ROUNDS
    assert seconds == {"a": 1.0, "b": 1.0} and results == {"a": "A", "b": "B"}


class _OneByOne:
    """A backend whose Grad-CAM layer has a 1x1 output, as ConvNeXt-tiny's trunk at 32 px."""

    def layer_gradients(self, state, data, layer, columns, signs):
        rng = np.random.default_rng(0)
        return rng.standard_normal((3, 1, 1, 8)), rng.standard_normal((3, 1, 1, 8))


def test_a_one_by_one_layer_gives_flat_maps_and_says_its_size():
    """The quick ConvNeXt's Grad-CAM overlays were blank with nothing saying why: the phase now learns the layer's
    size, and a 1x1 layer's maps are flat (one value per image) whatever the gradients."""
    seen: dict = {}
    maps = explain.backend_gradcam(_OneByOne(), None, None, "backbone", np.zeros(3, int), np.ones(3), (32, 32), seen)
    assert seen["hw"] == (1, 1)
    assert maps.shape == (3, 32, 32) and np.ptp(maps, axis=(1, 2)).max() == 0


def test_the_report_marks_flat_maps_and_names_a_one_by_one_layer(monkeypatch, tmp_path):
    """Each flat panel of the overlay figure says "flat map"; summary.md says which backend's layer was 1x1."""
    import pandas as pd

    from bench.report import explain_plots

    drawn = []
    monkeypatch.setattr(explain_plots, "save_figure", lambda fig, path, **kw: drawn.append(fig) or True)
    rng = np.random.default_rng(1)
    common = {"x": rng.random((2, 8, 8, 3)), "y_true": np.array([0, 1]), "classes": np.array(["cat", "dog"])}
    flat = common | {"y_pred": np.array([0, 1]), "layer": np.asarray("backbone"), "gradcam": np.zeros((2, 8, 8))}
    spatial = flat | {"gradcam": rng.random((2, 8, 8))}
    assert explain_plots.plot_overlays({"torch": spatial, "keras": flat}, "gradcam", "t", tmp_path / "g.png")
    (fig,) = drawn
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts.count("flat map") == 2  # Keras's two panels, none of torch's
    import matplotlib.pyplot as plt

    plt.close(fig)
    rows = pd.DataFrame(
        [
            {
                "task": "t",
                "backend": b,
                "status": "ok",
                "explain_layer": "backbone",
                "gradcam_layer_hw": hw,
                "image_shape": "32x32x3",
                "profile": "quick",
                "explain_file": "a.npz",
                "gradcam_ms_per_img": 1.0,
            }
            for b, hw in (("torch", "7x7"), ("keras", "1x1"))
        ]
    )
    lines = explain_plots.explain_links(rows)
    flat_lines = [line for line in lines if "1x1" in line]
    assert len(flat_lines) == 1 and flat_lines[0].startswith("- Grad-CAM (Keras (TF)): layer `backbone` has a 1x1")
    assert "32x32x3, profile `quick`" in flat_lines[0]


@pytest.mark.parametrize(
    ("target", "whose"), [(None, "predicted class"), ("predicted", "predicted class"), ("true", "true class")]
)
def test_the_overlay_title_says_whose_class_the_maps_explain(monkeypatch, tmp_path, target, whose):
    """A task with explain.target = "true" drew overlays titled "predicted class": the title now reads the target
    the phase saved (an artifact from before it was saved: the default, predicted)."""
    from bench.report import explain_plots

    drawn = []
    monkeypatch.setattr(explain_plots, "save_figure", lambda fig, path, **kw: drawn.append(fig) or True)
    rng = np.random.default_rng(2)
    maps = {"x": rng.random((2, 8, 8, 1)), "y_true": np.array([0, 1]), "y_pred": np.array([1, 1])}
    maps |= {"classes": np.array(["0", "1"]), "layer": np.asarray("conv1"), "gradcam": rng.random((2, 8, 8))}
    if target:
        maps["target"] = np.asarray(target)
    assert explain_plots.plot_overlays({"torch": maps}, "gradcam", "t", tmp_path / "g.png")
    (fig,) = drawn
    assert fig.get_suptitle() == f"t: Grad-CAM (layer conv1, {whose}; red = wrong prediction)"
    import matplotlib.pyplot as plt

    plt.close(fig)
