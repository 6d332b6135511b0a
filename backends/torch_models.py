"""The big catalog models in PyTorch: torchvision ResNet-101 and timm ConvNeXt-tiny, no top, plus the task's head.

Each is wrapped so the catalog's layer names hold in both backends: ``model.backbone``
is the whole convolutional trunk (its output is the last feature map, Grad-CAM's
layer) and ``model.head`` is the final ``nn.Linear`` (its input is the penultimate
feature vector). ImageNet weights come through each library's own mechanism.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from backends.torch_backend import register_model
from bench.spec import ModelSpec

WEIGHTS_ENV = "BENCH_WEIGHTS_DIR"  # a folder holding the libraries' weight files, by their usual names


class TrunkAndHead(nn.Module):
    """backbone (conv trunk) -> global average pool -> optional norm -> flatten -> head (Linear)."""

    def __init__(self, backbone: nn.Module, width: int, n_outputs: int, norm: nn.Module | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.norm = norm if norm is not None else nn.Identity()  # ConvNeXt's head LayerNorm (after pooling)
        self.flatten = nn.Flatten()
        self.head = nn.Linear(width, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.flatten(self.norm(self.pool(self.backbone(x)))))


@register_model
def resnet101(spec: ModelSpec, input_shape: tuple[int, int, int], n_outputs: int) -> nn.Module:
    import torchvision

    if input_shape[2] != 3:
        raise ValueError(f"resnet101 needs 3-channel images, got {input_shape} (set dataset.channels = 3)")
    net = torchvision.models.resnet101(weights=None)
    trunk = nn.Sequential(*(getattr(net, n) for n in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2",
                                                      "layer3", "layer4")))  # fmt: skip
    return TrunkAndHead(trunk, net.fc.in_features, n_outputs)


@register_model
def convnext_tiny(spec: ModelSpec, input_shape: tuple[int, int, int], n_outputs: int) -> nn.Module:
    import timm

    if input_shape[2] != 3:
        raise ValueError(f"convnext_tiny needs 3-channel images, got {input_shape} (set dataset.channels = 3)")
    net = timm.create_model("convnext_tiny", pretrained=False, num_classes=0)
    trunk = nn.Sequential(net.stem, net.stages, net.norm_pre)
    return TrunkAndHead(trunk, net.num_features, n_outputs, norm=net.head.norm)


# --------------------------------------------------------------------------- ImageNet weights

_TORCHVISION_FILE = "resnet101-63fe2227.pth"  # ResNet101_Weights.IMAGENET1K_V1 (v1.5 trunk, as built above)
_TIMM_FILE = "convnext_tiny.safetensors"


def how_to_provide(arch: str) -> str:
    if arch == "resnet101":
        where = (
            f"download https://download.pytorch.org/models/{_TORCHVISION_FILE} on a machine with internet and put "
            f"it in ${WEIGHTS_ENV}/ or torch's hub cache ({Path(torch.hub.get_dir()) / 'checkpoints'}/)"
        )
    else:
        where = (
            "download model.safetensors of the Hugging Face repo timm/convnext_tiny.in12k_ft_in1k on a machine "
            f"with internet and save it as ${WEIGHTS_ENV}/{_TIMM_FILE}"
        )
    return f'{where}, or name the file in the task: [model] weights = "/path/to/file"'


def _local_file(spec: ModelSpec, default_name: str) -> Path | None:
    if spec.weights:
        path = Path(spec.weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"model.weights: {path} is not a file")
        return path
    folder = os.environ.get(WEIGHTS_ENV)
    if folder and (Path(folder) / default_name).is_file():
        return Path(folder) / default_name
    return None


def load_pretrained(net: nn.Module, spec: ModelSpec) -> str:
    """Load ImageNet weights into ``net.backbone`` (the head keeps its fresh init); returns where they came from.

    A local file (``model.weights`` or ``$BENCH_WEIGHTS_DIR``) is used first, else the
    library's own download (torch hub / Hugging Face hub), whose failure is turned into
    an error that says how to provide the file offline.
    """
    name = _TORCHVISION_FILE if spec.arch == "resnet101" else _TIMM_FILE
    path = _local_file(spec, name)
    try:
        if spec.arch == "resnet101":
            if path is not None:
                state = torch.load(path, map_location="cpu", weights_only=True)
            else:
                from torchvision.models import ResNet101_Weights

                state = ResNet101_Weights.IMAGENET1K_V1.get_state_dict(progress=False)
            source = str(path or "torchvision IMAGENET1K_V1")
            trunk_keys = {"conv1": "0", "bn1": "1", "layer1": "4", "layer2": "5", "layer3": "6", "layer4": "7"}
            state = {
                trunk_keys[k.split(".", 1)[0]] + "." + k.split(".", 1)[1]: v
                for k, v in state.items()
                if k.split(".", 1)[0] in trunk_keys
            }
            net.backbone.load_state_dict(state, strict=True)
        else:
            import timm

            overlay = {"file": str(path)} if path is not None else None
            ref = timm.create_model("convnext_tiny", pretrained=True, num_classes=0, pretrained_cfg_overlay=overlay)
            source = str(path or "timm convnext_tiny.in12k_ft_in1k")
            net.backbone.load_state_dict(nn.Sequential(ref.stem, ref.stages, ref.norm_pre).state_dict(), strict=True)
            net.norm.load_state_dict(ref.head.norm.state_dict(), strict=True)
    except (OSError, RuntimeError, ValueError) as e:
        if isinstance(e, RuntimeError) and "state_dict" in str(e):
            raise
        raise RuntimeError(
            f"--pretrained: could not get ImageNet weights for {spec.arch} ({type(e).__name__}: {e}); "
            f"this machine may have no access to the download. To use a local copy: {how_to_provide(spec.arch)}"
        ) from e
    return f"imagenet ({source})"
