"""The zoo: one row per ImageNet architecture that ``keras.applications`` and torchvision/timm both ship.

Framework-free, so the runner parent, reports and tests can read it without importing a framework. The
builders (``backends/torch/zoo.py``, ``backends/keras/zoo.py``) and the weight converter
(``backends/keras/zoo_convert.py``) are driven by these rows only: adding an architecture is adding a row.

A row names every way its two builds differ (``differences``, keys of ``DIFFERENCES``). A difference either
changes the parameter count (``tests/test_zoo.py`` computes each such delta from the built models and checks
the counts add up exactly), changes the function computed (then the row is not an equal network and no
logit parity is claimed; the test named after the difference asserts it), or is aligned by the builders
(then it is neither).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.core.architecture import Architecture

PREFIX = "zoo:"  # a task names a zoo architecture as ``[model] arch = "zoo:<id>"``
WEIGHTS_ENV = "BENCH_WEIGHTS_DIR"  # a folder holding the libraries' weight files, by their usual names


@dataclass(frozen=True)
class Difference:
    """One named way a Keras build differs from its torch counterpart."""

    description: str
    changes_params: bool  # the parameter counts differ by an amount the test computes from the models
    changes_function: bool  # with the same weights the two builds still compute different functions
    breaks_conversion: bool = False  # the converter cannot pair the builds' layers: no weights cross over
    changes_flops: bool = False  # the frameworks' FLOP counters differ by more than 1% because of it


DIFFERENCES: dict[str, Difference] = {
    "keras_conv_bias": Difference(
        "Keras's convolutions carry biases where torch's have none (before a BatchNorm, so with converted weights "
        "a zero bias is the same function)",
        changes_params=True,
        changes_function=False,
    ),
    "resnet_v1_vs_v1_5": Difference(
        "Keras's ResNet is v1 (a downsampling block strides its first 1x1 conv), torchvision's is v1.5 (it strides "
        "the 3x3 conv): same parameters, a different function",
        changes_params=False,
        changes_function=True,
        breaks_conversion=True,
        changes_flops=True,
    ),
    "resnet_v2_stride_last_vs_first": Difference(
        "Keras's ResNetV2 downsamples in the last block of a stage (1x1 max-pool shortcut), timm's in the first "
        "(strided projection shortcut)",
        changes_params=False,
        changes_function=True,
        changes_flops=True,
    ),
    "bn_eps": Difference(
        "the libraries' BatchNorm epsilons differ (e.g. Keras 1.001e-5 or 1e-3, torch 1e-5): the torch build uses "
        "Keras's value (``ZooEntry.bn_eps``), so this is aligned, not a difference in the built models",
        changes_params=False,
        changes_function=False,
    ),
    "keras_bn_no_scale": Difference(
        "Keras's BatchNorms have no scale (gamma) where torch's have one: the torch count is larger by those "
        "gammas; with torch gammas of 1 the functions are the same",
        changes_params=True,
        changes_function=False,
    ),
    "keras_normalization_stats": Difference(
        "Keras builds a Rescaling(1/255) + Normalization into the model that cannot be switched off: the Keras "
        "builder sets the Normalization's variance to 255**-2 so the pair is the identity, and Keras counts the "
        "Normalization's mean/variance/count as parameters",
        changes_params=True,
        changes_function=False,
    ),
    "avgpool_count_include_pad": Difference(
        "torch's 3x3 stride-1 average pools inside the Inception blocks count the zero padding "
        "(count_include_pad=True), Keras's 'same' pools do not: border pixels differ",
        changes_params=False,
        changes_function=True,
    ),
    "maxpool_same_vs_symmetric": Difference(
        "the stride-2 max pools pad symmetrically in torch (padding=1) and TF-'same' (right/bottom only on even "
        "sizes) in Keras: the windows are shifted by one pixel",
        changes_params=False,
        changes_function=True,
    ),
    "nasnet_unported": Difference(
        "timm's NASNet-A Large is a port of the TF graph with its own padding modules and cell wiring; this "
        "converter's walk does not pair its layers with Keras's, so equality is not proven (not claimed equal)",
        changes_params=False,
        changes_function=True,
        breaks_conversion=True,
    ),
}


@dataclass(frozen=True)
class WeightsSource:
    """Where one library publishes a row's ImageNet weights: data, as timm's pretrained configs are, so the
    backends' download and hash code reads the table instead of holding file names of its own."""

    file: str  # the file's usual name: what $BENCH_WEIGHTS_DIR or the library's cache holds
    url: str = ""  # a direct download: the folder the file name is appended to
    hf_hub: str = ""  # else a Hugging Face hub repo id, whose file ``hf_file`` is downloaded
    hf_file: str = ""
    name: str = ""  # the library's own name for these weights, as its users know them

    def __post_init__(self) -> None:
        if bool(self.url) == bool(self.hf_hub) or bool(self.hf_hub) != bool(self.hf_file):
            raise ValueError(f"{self.file}: a weights source is a url or a Hugging Face repo and file, not both")

    @property
    def where(self) -> str:
        """Where a person downloads it by hand."""
        return self.url + self.file if self.url else f"{self.hf_file} of the Hugging Face repo {self.hf_hub}"


def weights_path(weights: str, folder: str | Path = ".") -> Path:
    """The one reading of ``model.weights`` (zoo and catalog models alike): ``~`` expanded, a relative path
    relative to ``folder`` (the task file's, when the spec is parsed), made absolute. Zoo models had not expanded
    ``~`` and both read a relative path from the repository, where workers run, not from the task file."""
    return Path(os.path.abspath(Path(folder).expanduser() / Path(weights).expanduser()))


def in_weights_dir(file: str) -> Path | None:
    """``$BENCH_WEIGHTS_DIR/<file>`` where it is a file: the first place every backend looks for published
    weights (after ``model.weights``), and where an offline machine's user puts them."""
    folder = os.environ.get(WEIGHTS_ENV)
    path = Path(folder) / file if folder else None
    return path if path is not None and path.is_file() else None


@dataclass(frozen=True)
class ZooEntry:
    """One architecture in both ecosystems; strings only, so this module imports no framework."""

    id: str
    keras: str  # constructor name in keras.applications
    torch: str  # "torchvision:<fn>" or "timm:<model name>"
    input_size: int  # the architecture's default (ImageNet) input side, pixels
    family: str
    keras_head: str  # the Keras classifier layer's name (Dense, or a 1x1 Conv2D in MobileNet V1/V3)
    torch_head: str  # dotted path of the torch classifier module (nn.Linear)
    differences: tuple[str, ...] = ()
    keras_kwargs: tuple[tuple[str, object], ...] = ()
    torch_kwargs: tuple[tuple[str, object], ...] = ()
    bn_eps: float | None = None  # Keras's BatchNorm epsilon, set on every torch BatchNorm when given
    min_size: int = 32  # the smallest input side keras.applications accepts (what a sweep at a small size uses)
    # ImageNet weights each library publishes for the catalog model built on this row (--pretrained downloads them)
    torch_weights: WeightsSource | None = None
    keras_weights: WeightsSource | None = None

    @property
    def equal_network(self) -> bool:
        """True when no named difference changes the function: converted weights must give the same logits."""
        return not any(DIFFERENCES[d].changes_function for d in self.differences)

    @property
    def torch_library(self) -> str:
        return self.torch.partition(":")[0]

    @property
    def torch_name(self) -> str:
        return self.torch.partition(":")[2]


_NO_PREPROCESSING = (("include_preprocessing", False),)
_TF_SAME = (("pad_type", "same"),)


def _rows() -> list[ZooEntry]:
    rows = []
    resnets = (  # (id suffix, Keras suffix, torch source, family, torch head, how the strides differ)
        ("", "", "torchvision:resnet{}", "resnet", "fc", "resnet_v1_vs_v1_5"),
        ("_v2", "V2", "timm:resnetv2_{}", "resnet_v2", "head.fc", "resnet_v2_stride_last_vs_first"),
    )
    for suffix, keras_suffix, torch_source, family, head, strides in resnets:
        for depth in (50, 101, 152):
            rows.append(
                ZooEntry(
                    f"resnet{depth}{suffix}", f"ResNet{depth}{keras_suffix}", torch_source.format(depth), 224,
                    family, "predictions", head, ("keras_conv_bias", strides, "bn_eps"), bn_eps=1.001e-5,
                )
            )  # fmt: skip
    for depth in (121, 169, 201):
        rows.append(
            ZooEntry(
                f"densenet{depth}", f"DenseNet{depth}", f"torchvision:densenet{depth}", 224, "densenet",
                "predictions", "classifier", ("bn_eps",), bn_eps=1.001e-5,
            )
        )  # fmt: skip
    rows += [
        ZooEntry(
            "mobilenet", "MobileNet", "timm:mobilenetv1_100", 224, "mobilenet", "conv_preds", "classifier",
            ("bn_eps",), torch_kwargs=_TF_SAME, bn_eps=1e-3,
        ),
        ZooEntry(
            "mobilenet_v2", "MobileNetV2", "timm:mobilenetv2_100", 224, "mobilenet", "predictions", "classifier",
            ("bn_eps",), torch_kwargs=_TF_SAME, bn_eps=1e-3,
        ),
        ZooEntry(
            "mobilenet_v3_small", "MobileNetV3Small", "timm:tf_mobilenetv3_small_100", 224, "mobilenet", "logits",
            "classifier", keras_kwargs=_NO_PREPROCESSING,
        ),
        ZooEntry(
            "mobilenet_v3_large", "MobileNetV3Large", "timm:tf_mobilenetv3_large_100", 224, "mobilenet", "logits",
            "classifier", keras_kwargs=_NO_PREPROCESSING,
        ),
    ]  # fmt: skip
    for b, size in enumerate((224, 240, 260, 300, 380, 456, 528, 600)):
        rows.append(
            ZooEntry(
                f"efficientnet_b{b}", f"EfficientNetB{b}", f"timm:tf_efficientnet_b{b}", size, "efficientnet",
                "predictions", "classifier", ("keras_normalization_stats",),
            )
        )  # fmt: skip
    for v, size in (("b0", 224), ("b1", 240), ("b2", 260), ("b3", 300), ("s", 384), ("m", 480), ("l", 480)):
        rows.append(
            ZooEntry(
                f"efficientnetv2_{v}", f"EfficientNetV2{v.upper()}", f"timm:tf_efficientnetv2_{v}", size,
                "efficientnet_v2", "predictions", "classifier", keras_kwargs=_NO_PREPROCESSING,
            )
        )  # fmt: skip
    for size_name in ("tiny", "small", "base", "large", "xlarge"):
        rows.append(
            ZooEntry(
                f"convnext_{size_name}", f"ConvNeXt{size_name.capitalize().replace('Xl', 'XL')}",
                f"timm:convnext_{size_name}", 224, "convnext", f"convnext_{size_name}_head_dense", "head.fc",
                keras_kwargs=_NO_PREPROCESSING,
            )
        )  # fmt: skip
    for depth in (16, 19):
        rows.append(
            ZooEntry(f"vgg{depth}", f"VGG{depth}", f"torchvision:vgg{depth}", 224, "vgg", "predictions", "classifier.6")
        )
    rows += [
        ZooEntry(
            "inception_v3", "InceptionV3", "torchvision:inception_v3", 299, "inception", "predictions", "fc",
            ("keras_bn_no_scale", "avgpool_count_include_pad"),
            torch_kwargs=(("aux_logits", False), ("init_weights", True)), min_size=75,
        ),
        ZooEntry(
            "inception_resnet_v2", "InceptionResNetV2", "timm:inception_resnet_v2", 299, "inception",
            "predictions", "classif", ("keras_bn_no_scale",), min_size=75,
        ),
        ZooEntry(
            "xception", "Xception", "timm:legacy_xception", 299, "xception", "predictions", "fc",
            ("bn_eps", "maxpool_same_vs_symmetric"), bn_eps=1e-3, min_size=71,
        ),
        ZooEntry(
            "nasnet_large", "NASNetLarge", "timm:nasnetalarge", 331, "nasnet", "predictions", "last_linear",
            ("nasnet_unported",),
        ),
    ]  # fmt: skip
    return rows


_KERAS_APPLICATIONS = "https://storage.googleapis.com/tensorflow/keras-applications/"
IMAGENET = {  # row id -> (torch, Keras) published ImageNet weights, no classifier needed
    "resnet101": (
        WeightsSource("resnet101-63fe2227.pth", url="https://download.pytorch.org/models/",
                      name="torchvision ResNet101_Weights.IMAGENET1K_V1"),
        WeightsSource("resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5", url=_KERAS_APPLICATIONS + "resnet/",
                      name="keras.applications weights='imagenet'"),
    ),
    "convnext_tiny": (
        WeightsSource("convnext_tiny.safetensors", hf_hub="timm/convnext_tiny.in12k_ft_in1k",
                      hf_file="model.safetensors", name="timm convnext_tiny pretrained=True (Hugging Face hub)"),
        WeightsSource("convnext_tiny_notop.h5", url=_KERAS_APPLICATIONS + "convnext/",
                      name="keras.applications weights='imagenet'"),
    ),
}  # fmt: skip


def _with_weights(row: ZooEntry) -> ZooEntry:
    torch_weights, keras_weights = IMAGENET.get(row.id, (None, None))
    return replace(row, torch_weights=torch_weights, keras_weights=keras_weights)


ZOO: dict[str, ZooEntry] = {row.id: _with_weights(row) for row in _rows()}


ADAPTATIONS = (  # what the task-model builds (backends/<fw>/zoo.py) change in both libraries' models, alike
    "the library's classifier is replaced by a `head` Dense/Linear of the task's width; `backbone` is the last "
    "feature map before global pooling (Grad-CAM's layer), the layers between them are the library's own",
    "BatchNorm momentum set to torch's 0.1 in keras (its default 0.99)",
    "every convolution and dense kernel re-drawn with the spec's `model.init`, biases zero (no library's default)",
)


class ZooError(ValueError):
    """An unknown zoo id or an input the row's builds cannot take; the message names the id and what is known."""


def entry(zoo_id: str) -> ZooEntry:
    """The row of ``zoo_id`` (``"zoo:<id>"`` or the bare id); ZooError naming the known ids otherwise."""
    bare = zoo_id.removeprefix(PREFIX)
    if bare not in ZOO:
        raise ZooError(f"unknown zoo architecture {zoo_id!r} (known: {', '.join(PREFIX + z for z in ZOO)})")
    return ZOO[bare]


def input_fits(row: ZooEntry, shape: tuple[int, int, int]) -> tuple[bool, bool, bool]:
    """Whether images of ``shape`` (HWC) are what the row's builds take: (RGB, square, at least ``min_size``). The
    one rule for the build (``checked_input``) and the task file's check (bench.core.spec), where 0 is a size or
    channel count the data's own decides, which passes until the data is read."""
    h, w, c = shape
    return c in (0, 3), h == w, h == 0 or h >= row.min_size


def checked_input(zoo_id: str, input_shape: tuple[int, int, int]) -> ZooEntry:
    """The row, once ``input_shape`` (HWC) is one its builds take: square, RGB, at least ``min_size``."""
    row = entry(zoo_id)
    if not all(input_fits(row, input_shape)) or 0 in input_shape:
        raise ZooError(
            f"zoo:{row.id} needs square 3-channel images of at least {row.min_size} px, got {input_shape} "
            "(set dataset.channels = 3 and dataset.image_size)"
        )
    return row


def is_zoo(arch: str) -> bool:
    return arch.startswith(PREFIX)


def imagenet_weights(row_id: str) -> str:
    """The published ImageNet weights of a row, as the catalog says them ("" for none)."""
    row = entry(row_id)
    sources = [s.name for s in (row.torch_weights, row.keras_weights) if s is not None]
    return " / ".join(sources)


def weights_file(model: Any) -> str | None:
    """The torch state_dict file a zoo model (a ``ModelSpec``) starts from; None for random init. The zoo
    downloads nothing: ``pretrained`` without ``weights`` (e.g. ``--pretrained`` on a zoo task) is an error."""
    if not model.pretrained:
        return None
    if not model.weights:
        raise ZooError(
            f"{model.arch}: pretrained weights come from a local torch state_dict file only: set "
            '[model] weights = "/path/to/file" (timm/torchvision keys; docs/zoo.md)'
        )
    return str(weights_path(model.weights))


def convertible(row: ZooEntry) -> bool:
    """Whether the converter pairs the row's builds, so one torch weights file can initialise both."""
    return not any(DIFFERENCES[d].breaks_conversion for d in row.differences)


def zoo_architecture(zoo_id: str) -> Architecture:
    """The catalog's view of a zoo row (contract with ``bench.core.catalog.architecture``): Grad-CAM on the
    trunk (``backbone``), features at the ``head``'s input, the named differences as the rows' notes."""
    row = entry(zoo_id)
    torch_source = row.torch.replace(":", ".models." if row.torch_library == "torchvision" else ".create_model:", 1)
    notes = [f"{row.id}: {d}: {DIFFERENCES[d].description}" for d in row.differences]
    notes += [f"{row.id}: {a}" for a in ADAPTATIONS]
    if not row.equal_network:
        notes.append(f"{row.id}: not the same network in both libraries (see the differences above)")
    pretrained = (
        f"one local torch state_dict of {row.torch} (model.weights): torch loads it, Keras gets it through "
        "backends/keras/zoo_convert.py"
        if convertible(row)
        else ""
    )
    return Architecture(
        zoo=row.id,
        id=PREFIX + row.id,
        description=f"{row.id}: {torch_source} / keras.applications.{row.keras}, library classifier -> head",
        options={},
        last_conv="backbone",
        head="head",
        pretrained=pretrained,
        notes=tuple(notes),
    )
