"""The zoo table's published ImageNet weights: data the backends' download code reads (no framework imported)."""

from __future__ import annotations

import re

import pytest

from bench.core.catalog import ARCHITECTURES
from bench.core.zoo import ZOO, WeightsSource


def test_every_big_catalog_model_names_both_libraries_published_weights_from_the_table():
    big = [a for a, arch in ARCHITECTURES.items() if not arch.layers]
    assert big == ["resnet101", "convnext_tiny"]
    for arch in big:
        row = ZOO[arch]
        assert row.torch_weights is not None and row.keras_weights is not None, arch
        assert ARCHITECTURES[arch].pretrained == f"{row.torch_weights.name} / {row.keras_weights.name}"
    assert [z for z, row in ZOO.items() if row.torch_weights or row.keras_weights] == big  # no other row claims any


def test_a_direct_torch_download_publishes_the_hash_it_must_match_in_its_name():
    for row in ZOO.values():
        src = row.torch_weights
        if src is not None and src.url:  # torch.hub's convention: name-<sha256 prefix>.pth
            assert re.search(r"-[0-9a-f]{8,64}\.pth$", src.file), src.file
            assert src.where == src.url + src.file and src.url.startswith("https://")
    hub = ZOO["convnext_tiny"].torch_weights
    assert hub is not None
    assert hub.where == "model.safetensors of the Hugging Face repo timm/convnext_tiny.in12k_ft_in1k"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"url": "https://x/", "hf_hub": "a/b", "hf_file": "m.safetensors"},  # both
        {},  # neither
        {"hf_hub": "a/b"},  # a repo without its file
    ],
)
def test_a_source_is_a_url_or_a_hub_file_and_says_which_file(kwargs):
    with pytest.raises(ValueError, match=r"^w\.pth: a weights source is a url or a Hugging Face repo and file"):
        WeightsSource("w.pth", **kwargs)
