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


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # QA, 2026-12-08: task m's PyTorch picture went to task m-torch
        ("feature-maps-m-torch.png", ("m", "feature-maps", "torch")),
        ("feature-maps-m-torch-keras.png", ("m-torch", "feature-maps", "keras")),
        ("curves-m-torch.png", ("m-torch", "curves", None)),
        ("top-features-maps-torch.png", ("maps", "top-features", "torch")),  # the task's name inside the kind
        ("curves-maps.png", ("maps", "curves", None)),
    ],
)
def test_a_task_named_like_a_backend_suffix_or_a_plot_kind_gets_its_own_plots(name: str, expected: tuple):
    assert task_of(name, ["m", "m-torch", "maps"], BACKENDS) == expected


def test_a_figure_over_repeats_is_starred_only_where_the_test_across_seeds_would_find_it():
    """QA, 2026-12-08: over repeats the interval was their range, so three a side whose ranges did not touch read
    "test accuracy 1.015 ✱ [1.001, 1.042]" where summary.md's test across seeds said inconclusive (p = 0.18)."""
    import pandas as pd

    from bench.measure.equivalence import difference
    from bench.report.page import interval

    torch, keras = [0.950, 0.951, 0.9595], [0.960, 0.965, 0.990]
    ok = pd.DataFrame({"backend": ["torch"] * 3 + ["keras"] * 3, "test_acc": torch + keras})
    a, ref = interval(ok, "keras", "test_acc"), interval(ok, "torch", "test_acc")
    assert a is not None and ref is not None and a[0] < min(keras) and a[1] > max(keras)
    assert ratio_cell("1.015", 1.015, a, ref)[2] == "overlap"
    assert difference(torch, keras).p > 0.05  # the test across seeds: no difference shown either
    apart = pd.DataFrame(
        {"backend": ["torch"] * 3 + ["keras"] * 3, "test_acc": [0.90, 0.901, 0.902, 0.95, 0.951, 0.952]}
    )
    cell = ratio_cell("1.055", 1.055, interval(apart, "keras", "test_acc"), interval(apart, "torch", "test_acc"))
    assert cell[2] == "sep" and "✱" in cell[0]
    assert interval(ok.iloc[:1], "torch", "test_acc") is None  # one repeat: no spread to go by


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


def all_sections_run(run: Path) -> Path:
    """A small run whose summary.md has the special sections QA found missing from the page: a tune's default and
    best rows (verdicts at defaults and each at its best), three seeded repeats a side (accuracy across seeds) and a
    task with the training-parity check's columns (--parity-steps)."""
    import numpy as np

    run.mkdir()
    (run / "environment.json").write_text(json.dumps({"run_id": run.name}))
    rng = np.random.default_rng(3)
    base = dict(model="lenet5", dataset="mnist", n_train=96, n_test=100, epochs=1, batch_size=8, profile="quick")
    for backend, level in (("torch", 100.0), ("keras", 150.0)):
        for config, speed, knobs in (("default", 1.0, None), ("best", 1.3, "x=on")):
            for repeat in range(3):
                steps = [float(v) for v in level * speed * (1 + 0.03 * rng.standard_normal(60))]
                record = new_record(
                    task=f"t.{config}",
                    base_task="t",
                    config=config,
                    knob_config=knobs,
                    backend=backend,
                    repeat=repeat,
                    seed=repeat,
                    status="ok",
                    step_img_s=steps,
                    steady_img_s=float(np.mean(steps)),
                    test_acc=0.9 + 0.01 * repeat + (0.005 if backend == "keras" else 0.0),
                    **base,
                )
                append_record(run, record)
    for backend, diff in (("torch", 0.0), ("keras", 2.5e-7)):
        parity = dict(
            parity_steps=4,
            parity_weight_diff=diff,
            parity_logit_diff=2 * diff,
            parity_bound_weight=1e-5,
            parity_bound_logit=3e-5,
            parity_within=True,
            parity_alignments="Adam eps 1e-8",
        )
        row = new_record(task="p", backend=backend, repeat=0, seed=0, status="ok", train_s=1.0, **base, **parity)
        append_record(run, row)
    write_reports(run)
    return run


def headings(markdown: str, page: str) -> tuple[list[str], list[str]]:
    """Every heading of summary.md and of index.html, as text."""
    import html

    md = [re.sub(r"^#+ ", "", line) for line in markdown.splitlines() if re.match(r"#{1,6} ", line)]
    return md, [html.unescape(re.sub(r"<[^>]+>", "", h)) for h in re.findall(r"<h[1-6][^>]*>(.*?)</h[1-6]>", page)]


def test_the_page_has_every_section_of_summary_md_with_its_numbers(tmp_path: Path):
    """QA: index.html, "the same" as summary.md, had no tuning verdicts, no accuracy across seeds and no parity lines.
    Every heading of summary.md is a heading of the page (a section added to one cannot be missing from the
    other), and the sections' figures are the same text."""
    run = all_sections_run(tmp_path / "run")
    summary, page = (run / "summary.md").read_text(), (run / "index.html").read_text()
    md, html_headings = headings(summary, page)
    assert {"Each framework at its best", "Accuracy across seeds"} <= set(md)
    assert set(md) <= set(html_headings), set(md) - set(html_headings)
    text = re.sub(r"<[^>]+>", "", page).replace("&#x27;", "'")  # the page's words, as a reader sees them
    verdicts = re.findall(r"- \*\*(at defaults|each at its best)\*\*: (.+)", summary)
    assert len(verdicts) == 2
    for stage, line in verdicts:
        assert f"{stage}: {line}" in text
        assert re.search(r"\d\.\d\dx \[\d\.\d\d, \d\.\d\d\]", line), line  # a ratio with its interval, on both
    accuracy = [ln for ln in summary.splitlines() if ln.startswith("| Keras (TF) | 3 | 0, 1, 2 |")]
    assert len(accuracy) == 2  # t.default and t.best
    for row in accuracy:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert "<td>" + "</td><td>".join(cells) + "</td>" in page
    parity = [ln.removeprefix("- ") for ln in summary.splitlines() if ln.startswith("- Keras (TF): weights ")]
    assert parity == [
        "Keras (TF): weights 2.50e-07 (bound 1.00e-05), held-out logits 5.00e-07 (bound 3.00e-05): within the bound"
    ]
    assert f"<li>{parity[0]}</li>" in page
    assert "Training parity: 4 step(s) from one init" in text
    images = re.findall(r'<img src="([^"]+)"', page)
    assert len(images) == len(set(images)) and "plots/tuned-t.png" in images  # each plot once, the tune's too


def test_a_sections_markdown_on_the_page_is_escaped_and_shows_only_drawn_plots_once():
    from bench.report.html import markdown_html

    evil = "<img src=x onerror=alert(1)>"
    text = "\n".join(
        [
            f"## {evil}",
            f"- **{evil}**: `{evil}`",
            "",
            "| a | b |",
            "|:--|--:|",
            f"| {evil} | 1 |",
            "",
            f"<details><summary>{evil}</summary>",
            "</details>",
            "![drawn](plots/a.png)",
            "",
            "![again](plots/a.png)",
            "![missing](plots/b.png)",
            "![other](plots/c.png)",
        ]
    )
    shown: set[str] = set()
    out = markdown_html(text, ["a.png", "c.png"], shown)
    assert evil not in out and out.count("&lt;img src=x onerror=alert(1)&gt;") == 5
    assert "<details><summary>" in out and "<b>" in out and "<code>" in out and "<td>1</td>" in out
    assert re.findall(r'<img src="([^"]+)"', out) == ["plots/a.png", "plots/c.png"] and shown == {"a.png", "c.png"}
    assert out.count('<div class="gallery">') == 1  # pictures one after the other, side by side
    assert markdown_html("![drawn](plots/a.png)", ["a.png"], shown) == ""  # already on the page


def contents_and_headings(page: str) -> tuple[list[str], list[str]]:
    """The ids the page's contents line links, and the ids of its part headings (<h2>), in page order."""
    nav = re.search(r'<nav id="contents">(.*?)</nav>', page)
    return re.findall(r'href="#([^"]+)"', nav[1] if nav else ""), re.findall(r'<h2 id="([^"]+)"', page)


def test_the_contents_line_links_each_part_the_page_has_and_no_other(tmp_path: Path):
    """Tasks, the sections summary.md has (a tune's verdicts, accuracy across seeds), run-wide plots, environment: each
    linked once, in page order; a part the run lacks (rows not ok, transfer, zoo) is not in the list."""
    run = all_sections_run(tmp_path / "sections")
    linked, parts = contents_and_headings((run / "index.html").read_text())
    assert linked == parts and len(set(linked)) == len(linked)
    assert linked[:3] == ["task-t.default", "task-t.best", "task-p"]
    assert {"sec-each-framework-at-its-best", "sec-accuracy-across-seeds", "environment"} <= set(linked)
    assert "not-ok" not in linked and not any("transfer" in i or "zoo" in i for i in linked)
    plain = tmp_path / "plain"
    plain.mkdir()
    append_record(plain, new_record(task="t", backend="torch", repeat=0, status="ok", train_s=1.0))
    append_record(plain, new_record(task="t", backend="keras", repeat=0, status="failed", error="boom"))
    write_reports(plain)
    linked, parts = contents_and_headings((plain / "index.html").read_text())
    assert linked == parts and [i for i in linked if i not in ("run-plots",)] == ["task-t", "not-ok", "environment"]


def test_a_contents_entry_from_section_text_has_a_safe_unique_id_and_escaped_label():
    from bench.report.html import Contents, markdown_html

    evil = '"><img src=x onerror=alert(1)>'
    contents = Contents()
    out = markdown_html(f"## {evil}\n\n## {evil}\n\n### not listed", [], set(), contents)
    nav = contents.html()
    assert evil not in out + nav and nav.count("&lt;img src=x onerror=alert(1)&gt;") == 2
    ids = [i for i, _ in contents.entries]
    assert ids == ["sec-img-src-x-onerror-alert-1", "sec-img-src-x-onerror-alert-1-2"]
    assert all(re.fullmatch(r"[a-z0-9-]+", i) for i in ids) and re.findall(r'<h2 id="([^"]+)"', out) == ids
    assert "<h3>not listed</h3>" in out and Contents().html() == ""


def test_every_table_on_the_page_scrolls_in_its_own_box(tmp_path: Path):
    """QA: a 10-class confusion matrix at 560 px and the scaling table at 1200 px ran past the page's edge, and the
    whole page scrolled sideways, its text too. Every table, the side-by-side ones and those from summary.md's
    sections, sits alone in a box the style lets scroll."""
    from bench.report.html import STYLE

    run = all_sections_run(tmp_path / "run")
    page = (run / "index.html").read_text()
    tables = re.findall(r"(.{0,20})<table\b", page)
    closes = re.findall(r"</table>(.{0,6})", page)
    assert len(tables) >= 5 and len(closes) == len(tables)
    assert all(before.endswith('<div class="wide">') for before in tables), tables
    assert all(after == "</div>" for after in closes), closes
    assert ".wide{overflow-x:auto;max-width:100%}" in STYLE


def test_the_environment_table_gives_the_load_as_the_runs_warning_does():
    """QA: the page's environment table said "1-min load at start 1.7138671875" (os.getloadavg's float as stored)."""
    from bench.report.page import environment_section

    text = re.sub(r"<[^>]+>", " ", environment_section({"load_avg_1m_at_start": 1.7138671875}))
    assert re.search(r"1-min load at start\s+1\.7\s", text) and "1.713" not in text, text


def test_the_page_says_what_summary_md_warns_under_a_tasks_table(tmp_path: Path):
    """QA, 2026-12-06: summary.md warned under mnist-lenet5's table that PyTorch's input path took 13% of a step
    (input-bound?), and the run's page, "the same, sortable, with every plot", left that line out, as it left out
    rows on different devices and on a shared node: a reader of the page took the ratios at face value."""
    run = tmp_path / "run"
    run.mkdir()
    rows = (
        ("torch", dict(input_share=0.3, input_step_s=0.0125, device="cpu")),
        ("keras", dict(input_share=0.01, input_step_s=0.0004, device="NVIDIA H100", node="n1", rows_beside=1)),
    )
    for backend, fields in rows:
        append_record(run, new_record(task="t", backend=backend, repeat=0, status="ok", **fields))
    write_reports(run)
    page = (run / "index.html").read_text()
    summary = (run / "summary.md").read_text()
    for words in ("input-bound?", "30% of a steady step (12.50 ms per batch)", "different devices", "shared node"):
        assert words in summary and words in page, words
    assert "keras repeat 0: the input path" not in page  # 1% is under the bar: no line
