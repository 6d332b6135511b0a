"""The run page's parts without a browser: which plot belongs where, ratio intervals, escaping of run data."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bench.core.record import new_record
from bench.core.results import append_record
from bench.report.html import json_block
from bench.report.page import ratio_cell, task_of
from bench.report.summary import write_reports

TASKS = ["mnist-lenet5", "mnist-lenet5-sigmoid", "cifar10-cnn"]
BACKENDS = ["torch", "keras", "keras-jax"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("curves-mnist-lenet5.png", ("mnist-lenet5", "curves", None)),
        ("curves-mnist-lenet5-sigmoid.png", ("mnist-lenet5-sigmoid", "curves", None)),  # not the shorter task's
        ("feature-maps-cifar10-cnn-keras-jax.png", ("cifar10-cnn", "feature-maps", "keras-jax")),
        ("gradcam-mnist-lenet5-sigmoid.png", ("mnist-lenet5-sigmoid", "gradcam", None)),
        ("overview.png", (None, "overview", None)),
        ("curves-cifar10-cnn-unknown.png", (None, "curves-cifar10-cnn-unknown", None)),  # no such backend: run-wide
    ],
)
def test_each_plot_goes_to_its_task_and_backend(name: str, expected: tuple):
    assert task_of(name, TASKS, BACKENDS) == expected


def test_a_ratio_cell_is_marked_only_when_its_interval_excludes_one():
    assert ratio_cell("0.5", 0.5, (48, 52), (98, 102))[2] == "sep"  # [0.47, 0.53]
    assert ratio_cell("0.99", 0.99, (97, 101), (98, 102))[2] == "overlap"  # [0.95, 1.03]
    text, _, cls = ratio_cell("1.1", 1.1, (108, 112), (98, 102))
    assert cls == "sep" and re.search(r"\[1\.059, 1\.143\]", text)
    assert ratio_cell("1.1", 1.1, None, (98, 102))[2] == ""  # no interval: no claim


def test_run_data_cannot_close_a_tag_or_the_data_block(tmp_path: Path):
    """Task names, errors and notes come from records anyone can edit: escaped in the page."""
    run = tmp_path / "run"
    run.mkdir()
    evil = "<img src=x onerror=alert(1)>"
    append_record(run, new_record(task=evil, backend="torch", repeat=0, status="failed", error=f"{evil} failed"))
    append_record(run, new_record(task="t", backend="torch", repeat=0, status="ok", train_s=1.0, notes=evil))
    write_reports(run)
    page = (run / "index.html").read_text()
    assert evil not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    block = json_block("d", {"x": "</script><script>alert(1)</script>"})
    data = json.loads(block[block.index(">") + 1 : -len("</script>")])
    assert block.count("</script>") == 1 and data["x"] == "</script><script>alert(1)</script>"


def test_a_linked_plot_is_not_shown(tmp_path: Path):
    run = tmp_path / "run"
    run.mkdir()
    append_record(run, new_record(task="t", backend="torch", repeat=0, status="ok", train_s=1.0))
    (run / "plots").mkdir()
    (tmp_path / "secret.png").write_bytes(b"x")
    (run / "plots" / "curves-t-torch.png").symlink_to(tmp_path / "secret.png")
    from bench.report.page import plot_names

    assert plot_names(run) == []
