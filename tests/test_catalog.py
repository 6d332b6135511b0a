"""The catalog's small models (framework-free): each layer list's names, shapes and parameter count, and the
docs' lists of catalog ids (tests/test_layers.py and tests/parity.py build them in both frameworks)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.core.catalog import ARCHITECTURES, architecture
from bench.core.layers import infer_shapes, names, param_counts
from bench.core.spec import ModelSpec

ROOT = Path(__file__).resolve().parents[1]


def test_mnist_cnn_is_the_pytorch_and_keras_mnist_example():
    """conv32 3x3 -> conv64 3x3 -> max 2 -> dropout .25 -> dense 128 -> dropout .5 -> head, on 28x28x1."""
    arch = architecture(ModelSpec(arch="mnist_cnn", options=(("activation", "relu"),)))
    layers = arch.layers
    assert [n for n, _ in names(layers)] == ["conv1", "conv2", "pool1", "drop1", "flatten", "fc1", "drop2"]
    facts = (arch.last_conv, arch.head, arch.conv_layers, arch.fc_layers)
    assert facts == ("conv2", "fc2", ("conv1", "conv2"), ("fc1",))
    assert infer_shapes(layers, (28, 28, 1))[4] == (12 * 12 * 64,)  # fc1 sees 9216 features, as in the examples
    # 32*(9+1) + 64*(32*9+1) + 128*(9216+1) + 10*(128+1), no batch-norm statistics
    assert param_counts(layers, (28, 28, 1), 10) == (320 + 18_496 + 1_179_776 + 1_290, 0)
    tanh = architecture(ModelSpec(arch="mnist_cnn", options=(("activation", "tanh"),))).layers
    assert [getattr(layer, "activation", None) for layer in tanh if hasattr(layer, "activation")] == ["tanh"] * 3


@pytest.mark.parametrize("page", ["README.md", "docs/tasks.md"])
def test_the_task_examples_arch_comment_lists_every_catalog_id(page: str):
    """The `arch = "lenet5"  # a | b | ...` line is where a user learns the ids: a new catalog row must reach it."""
    line = re.search(r'^arch = "lenet5" +# (.*)$', (ROOT / page).read_text(), re.M)
    assert line, f'{page}: no `arch = "lenet5"  # ...` line listing the catalog ids'
    listed = {w.strip() for w in line.group(1).split("|")}
    missing = [a for a in ARCHITECTURES if a not in listed]
    assert not missing, f'{page}: add {", ".join(missing)} to the `arch = "lenet5"  # ...` comment (catalog ids)'
