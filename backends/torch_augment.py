"""Training-only augmentation in PyTorch with torchvision's own transforms, drawn per image.

torchvision's v2 transforms draw ONE set of random parameters per call, so a batch
tensor would be flipped or rotated as a whole; the original recipe augmented each
image in its DataLoader, so this applies the transform image by image.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torchvision.transforms import InterpolationMode, v2

_TRANSFORMS: dict[str, Callable[[], torch.nn.Module]] = {
    "hflip": lambda: v2.RandomHorizontalFlip(p=0.5),
    # torchvision's defaults: nearest neighbour, zero fill (the normalised image's 0 = the mean colour)
    "rotate10": lambda: v2.RandomRotation(10.0, interpolation=InterpolationMode.NEAREST, fill=0.0),
}


def augmenter(names: tuple[str, ...]) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """A per-image NCHW batch augmenter for the spec's ``train.augment`` list, or None for none."""
    if not names:
        return None
    unknown = [n for n in names if n not in _TRANSFORMS]
    if unknown:
        raise ValueError(f"train.augment: unknown augmentation(s) {unknown} (known: {', '.join(_TRANSFORMS)})")
    pipeline = v2.Compose([_TRANSFORMS[n]() for n in names])
    return lambda batch: torch.stack([pipeline(img) for img in batch])
