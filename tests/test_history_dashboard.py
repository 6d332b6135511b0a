"""The history dashboard's chart data, without a browser: what each chart is called and the time axis it gets.

tests/test_pages_browser.py opens the page itself; these check the data it is drawn from."""

from __future__ import annotations

from bench.history.metrics import BY_NAME, METRICS
from bench.report import compare
from bench.report.tables import SUMMARY_METRICS


def test_each_figure_has_one_name_the_words_summary_md_gives_it():
    """QA, 2026-12-06: the history called the headline (``steady_img_s``) "steady step throughput", easy to read as
    summary.md's "median step throughput", another figure. The history and `bench compare` name every figure
    summary.md's table shows with the table's words, and no two figures share a name."""
    words = {column: text for column, text, _ in SUMMARY_METRICS}
    assert len(set(words.values())) == len(words)
    shown = [m for m in METRICS if m.name in words]
    assert {m.name: m.label for m in shown} == {m.name: words[m.name] for m in shown}
    assert {col: text for col, text, *_ in compare.METRICS} == {col: words[col] for col, *_ in compare.METRICS}
    assert BY_NAME["steady_img_s"].label.startswith("headline throughput")
    assert BY_NAME["steady_img_s"].label != words["median_step_img_s"]
    others = [m.label for m in METRICS if m.name not in words]  # scaling efficiency: the scaling section's words
    assert others == ["scaling efficiency"] and not set(others) & set(words.values())
