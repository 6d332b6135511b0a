"""Which backend trains a task faster, by how much, and how sure: a line per backend under each task's table.

The table's ratio column divides the medians of the headline throughputs and says nothing of their noise; the
page's ratio cells divide the two intervals' ends, a box wider than the ratio's own interval. Here the ratio
of the headline throughputs gets its own 95% interval, drawn as ``bench tune``'s verdicts and ``bench compare``'s
test are (``bench.measure.tuning.ratio_ci``), and a ratio whose interval holds 1 is said to be no significant
difference. Rows without step samples (older records) give no line.

The sentence shows the ratio and interval its verdict is decided on, so a "faster" never stands beside an
interval that holds 1. With one process a side, that is the table's ratio: the bootstrap over blocks of steps
weighs every step alike, where the headline weighs each by its images (an epoch's smaller last batch: a
percent or two apart), so the bootstrap's interval is scaled by that factor, its relative spread about the
table's ratio. With several processes on a side the sample is the processes (Student's t over their log
rates: a bootstrap that draws 3 processes called equal speeds different one time in five), the ratio that of
their geometric means; the table divides the medians over repeats, another estimator, named beside it.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from bench.core.placement import busy_words
from bench.measure.stats import samples
from bench.measure.tuning import ratio_ci, verdict, verdict_method
from bench.report.backends import label, ordered

WHAT = "headline throughput"  # the table row it reads (summary.md's head says how the interval is drawn)
HEADLINE = "steady_img_s"  # that row's record column
# A fresh process of the same row runs 5-15% off another on a shared VM (docs/timing.md), more than one window's
# own interval: a side measured once cannot show it.
ONE_PROCESS = (
    "one process a side: --repeats 3, or a --budget that holds three processes a side, adds the spread between "
    "processes to the interval"
)


def loaded(rows: dict[str, list[dict[str, Any]]]) -> str | None:
    """The note on a ratio whose rows (per backend) were timed on a machine loaded beyond its cores, or None. QA,
    2026-12-06: the full mnist-lenet5 recipe on the shared 2-core VM read "Keras (TF) 9.26x [6.01, 12.53] faster
    than PyTorch" (577.7 s against 62.6 s; the reference Xeon run: 63 s against 92 s), its rows at load 4.1 and
    5.0 on 2 cores, and neither line nor table said so: other jobs take each side's cores by their own amount.
    A row whose cores other processes used beyond ``OTHERS_BUSY_PCT`` of their time is named too, at a load under
    the line (one busy process beside a 2-core row: load 1.3)."""
    said = {label(backend): words for backend, mine in rows.items() if (words := busy_words(mine))}
    if not said:
        return None
    # a load beyond the cores is said as before; a side named by others' share of its cores makes it "busy"
    where = "a machine loaded beyond its cores" if all(w.startswith("at ") for w in said.values()) else "a busy machine"
    return f"timed on {where} ({', '.join(f'{b} {w}' for b, w in said.items())}): the ratio may be the machine's"


def process_steps(rows: list[dict[str, Any]]) -> list[list[float]]:
    """Each row's step rates, one list per fresh process (a repeat), or per synchronised stretch where its steps
    were dispatched asynchronously (``stats.samples``): what ``ratio_ci`` reads."""
    out = []
    for r in rows:
        if r.get("step_img_s"):
            out += samples([float(v) for v in r["step_img_s"]], r.get("step_segments"))
    return out


def _samples(*sides: tuple[str, list[dict[str, Any]], list[list[float]]]) -> str:
    """What each side's samples (a side: its backend, its rows and their ``process_steps``) are, in words: "3 and 3
    processes", or, where a side was timed in synchronised stretches, "Keras (JAX)'s 6 synchronised stretches of 1
    process and PyTorch's 1 process": such a row run once read "6 and 1 processes" (QA, 2026-12-06)."""
    counts = [(len(drawn), sum(1 for r in rows if r.get("step_img_s"))) for _, rows, drawn in sides]
    if all(n == processes for n, processes in counts):
        return f"{' and '.join(str(n) for n, _ in counts)} processes"
    said = []
    for (backend, _, _), (n, processes) in zip(sides, counts, strict=True):
        words = f"{processes} process{'es' * (processes != 1)}"
        said.append(f"{label(backend)}'s {words if n == processes else f'{n} synchronised stretches of {words}'}")
    return " and ".join(said)


def _headline(rows: list[dict[str, Any]]) -> float | None:
    """The table's figure: the median over repeats of the headline throughput."""
    values = [float(r[HEADLINE]) for r in rows if isinstance(r.get(HEADLINE), int | float)]
    return statistics.median(values) if values else None


@dataclass(frozen=True)
class HeadlineRatio:
    """One backend's headline throughput against the reference's, as the sentence under the table gives it."""

    backend: str
    ratio: float  # backend / reference: the table's with one process a side, else the processes' geometric means'
    lo: float
    hi: float
    one_process_each: bool  # then ``ratio`` is the table's; the page's headline ratio cell shows ratio and interval
    sentence: str


def headline_ratios(records: list[dict[str, Any]], reference: str) -> dict[str, list[HeadlineRatio]]:
    """Per task, each backend's ratio against ``reference`` with its interval and sentence (the faster side named
    first), from the ok single-process rows' step samples; a task whose reference has none gets nothing."""
    out: dict[str, list[HeadlineRatio]] = {}
    tasks = dict.fromkeys(r["task"] for r in records)
    for task in tasks:
        rows = [r for r in records if r["task"] == task and r.get("status") == "ok" and r.get("workers") is None]
        by_backend = {b: [r for r in rows if r["backend"] == b] for b in ordered(r["backend"] for r in rows)}
        base, base_rate = process_steps(by_backend.get(reference, [])), _headline(by_backend.get(reference, []))
        if not base or not base_rate:
            continue
        found = []
        for backend, mine in by_backend.items():
            rate, steps = _headline(mine), process_steps(mine)
            ci = ratio_ci(steps, base) if backend != reference and rate else None
            if ci is None or rate is None:
                continue
            table = rate / base_rate
            one_each = max(len(steps), len(base)) == 1
            if one_each:  # the table's ratio, the interval's spread about it
                ratio, lo, hi = table, *(table * bound / ci[0] for bound in ci[1:])
            else:
                ratio, lo, hi = ci
            fast, slow = (backend, reference) if ratio >= 1 else (reference, backend)
            shown = (ratio, lo, hi) if ratio >= 1 else (1 / ratio, 1 / hi, 1 / lo)
            text = verdict(label(fast), label(slow), shown)  # decided on the interval it shows
            notes = [verdict_method(steps, base)] if one_each else []  # several: Student's t, said below
            notes += [ONE_PROCESS] if min(len(steps), len(base)) < 2 else []
            if not one_each:
                sides = _samples((backend, mine, steps), (reference, by_backend[reference], base))
                notes.append(
                    f"{sides}, the ratio of their geometric means, Student's t over "
                    f"them; the table's {backend}/{reference}, a ratio of medians over repeats: {table:.3f}"
                )
            busy = loaded({b: by_backend[b] for b in (backend, reference)})
            notes += [busy] if busy else []
            sentence = text + (f" ({'; '.join(notes)})" if notes else "")
            found.append(HeadlineRatio(backend, ratio, lo, hi, one_each, sentence))
        if found:
            out[task] = found
    return out


def speed_verdicts(records: list[dict[str, Any]], reference: str) -> dict[str, list[str]]:
    """Per task, the sentences under its table (``headline_ratios``)."""
    return {task: [r.sentence for r in ratios] for task, ratios in headline_ratios(records, reference).items()}
