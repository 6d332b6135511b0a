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
    # a ratio with an interval of its own (the headline's bootstrap) shows that one, not the ends divided
    text, _, cls = ratio_cell("1.56", 1.56, (140, 170), (95, 105), own=(1.47, 1.66))
    assert cls == "sep" and text.endswith("[1.470, 1.660]")
    assert ratio_cell("1.02", 1.02, None, None, own=(0.95, 1.09))[2] == "overlap"


def test_the_headline_ratio_cell_shows_the_interval_of_the_sentence_under_the_table(tmp_path: Path):
    """One process a side: the page's headline cell and the sentence give one interval, the bootstrap's (dividing
    the ends of the two rows' own intervals gave a wider box beside a narrower sentence)."""
    import numpy as np

    run = tmp_path / "run"
    run.mkdir()
    rng = np.random.default_rng(5)
    for backend, level in (("torch", 100.0), ("keras", 150.0)):
        rates = level * (1 + 0.04 * rng.standard_normal(200))
        headline = float(len(rates) / (1 / rates).sum())
        fields = dict(steady_img_s=headline, steady_img_s_ci_lo=0.95 * headline, steady_img_s_ci_hi=1.05 * headline)
        steps = [float(v) for v in rates]
        append_record(run, new_record(task="t", backend=backend, repeat=0, status="ok", step_img_s=steps, **fields))
    write_reports(run)
    page = (run / "index.html").read_text()
    row = page[page.index("headline throughput: timed images") :]
    row = row[: row.index("</tr>")]
    cell = re.search(r"1\.50\d ✱ \[([\d.]+), ([\d.]+)\]", row)
    said = re.search(r"Keras \(TF\) 1\.50x \[([\d.]+), ([\d.]+)\] faster than PyTorch", page)
    assert cell and said, row
    assert [f"{float(v):.2f}" for v in cell.groups()] == list(said.groups())
    assert float(cell[2]) - float(cell[1]) < 150 * 1.05 / 95 - 150 * 0.95 / 105  # narrower than the ends divided


def test_with_repeats_the_headline_ratio_cell_gives_the_sentences_ratio_interval_and_verdict(tmp_path: Path):
    """Three processes a side, Keras's 120-160% of torch's: the ends of the repeats' spread divided marked the cell
    significant above a sentence that found no significant difference (a `bench all --repeats 3` page, catdog-cnn:
    "1.366 ✱ [1.264, 1.546]" over "1.29x [0.94, 1.75]"). The cell now is the sentence: its ratio, interval and mark."""
    import numpy as np

    run = tmp_path / "run"
    run.mkdir()
    rng = np.random.default_rng(6)
    for backend, levels in (("torch", (100.0, 103.0, 98.0)), ("keras", (121.0, 126.0, 165.0))):
        for k, level in enumerate(levels):
            rates = level * (1 + 0.02 * rng.standard_normal(200))
            headline = float(len(rates) / (1 / rates).sum())
            fields = dict(steady_img_s=headline, steady_img_s_ci_lo=0.99 * headline, steady_img_s_ci_hi=1.01 * headline)
            steps = [float(v) for v in rates]
            rec = new_record(task="t", backend=backend, repeat=k, status="ok", step_img_s=steps, **fields)
            append_record(run, rec)
    write_reports(run)
    page = (run / "index.html").read_text()
    row = page[page.index("headline throughput: timed images") :]
    row = row[: row.index("</tr>")]
    said = re.search(
        r"no significant difference between Keras \(TF\) and PyTorch \(([\d.]+)x \[([\d.]+), ([\d.]+)\]\)", page
    )
    assert said, page[page.index("headline throughput</b>") :][:400]
    cells = re.findall(r">([\d.]+) \[([\d.]+), ([\d.]+)\]<", row)  # the backends' own cells, then the ratio's
    assert cells and "✱" not in row, row
    cell = cells[-1]
    assert [f"{float(v):.2f}" for v in cell] == list(said.groups())
    summary = (run / "summary.md").read_text()
    table = re.search(r"a ratio of medians over repeats: ([\d.]+)\)", summary)  # the table's, named beside it
    assert table and float(table[1]) == pytest.approx(126 / 100, abs=0.02), summary[-600:]


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
