"""Every test process imports torch's _dynamo before TensorFlow, whatever a selection imports first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

# stand-ins for the two frameworks, each saying when it is imported: the order is what the finder decides, and
# the real pair (TensorFlow first, then torch._dynamo: exit -11 inside triton) would cost a test 10-40 s
FAKES = {
    "torch/__init__.py": "import sys; sys.stdout.write('torch\\n')",
    "torch/_dynamo.py": "import sys; sys.stdout.write('torch._dynamo\\n')",
    "tensorflow/__init__.py": "import sys; sys.stdout.write('tensorflow\\n')",
}


def imports(tmp_path: Path, install: bool) -> list[str]:
    for name, text in FAKES.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    code = f"import sys; sys.path[:0] = [{str(tmp_path)!r}, {str(REPO)!r}]\n"
    code += "from tests import import_order; import_order.install()\n" if install else ""
    code += "import tensorflow\nimport torch._dynamo\nimport tensorflow\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.split()


def test_tensorflow_imported_first_brings_torch_dynamo_in_before_it(tmp_path):
    """A developer's selection that ran a Keras test before a torch.compile one crashed its lane (TensorFlow, then
    ``import torch._dynamo``: a segfault); conftest's finder imports torch._dynamo ahead of TensorFlow, once."""
    assert imports(tmp_path, install=False) == ["tensorflow", "torch", "torch._dynamo"]  # the order that crashed
    assert imports(tmp_path, install=True) == ["torch", "torch._dynamo", "tensorflow"]


def test_without_torch_tensorflow_imports_alone(tmp_path):
    (tmp_path / "tensorflow").mkdir()
    (tmp_path / "tensorflow/__init__.py").write_text(FAKES["tensorflow/__init__.py"])
    code = f"import sys; sys.path[:0] = [{str(tmp_path)!r}, {str(REPO)!r}]\n"
    code += "import importlib.util, sys\nsys.modules['torch'] = None\n"  # torch not importable here
    code += "from tests import import_order; import_order.install(); import tensorflow\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.split() == ["tensorflow"], done.stderr
