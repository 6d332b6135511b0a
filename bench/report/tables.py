"""The side-by-side tables: each task's metrics, a column per backend and a ratio column per other backend.

``side_by_side`` is the one table summary.md, the terminal, the run page and the tests read; it takes
medians over ok repeats and says, in a ratio cell the reference cannot fill, why.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from bench.core.metric_table import TABLE
from bench.core.results import failed_repeats_of_task, phase_failed
from bench.measure import stats
from bench.report import scaling
from bench.report.backends import DEFAULT_REFERENCE, label, ordered, ratio_name, reference_missing

# The words summary.md and the run's page give each figure: `bench compare` and the history dashboard name a
# figure with the same words, so one name is one figure everywhere (QA, 2026-12-06: the history's "steady step
# throughput" was the headline, not summary.md's "median step throughput").
WORDS = {m.column: m.words for m in TABLE}
# Which way a ratio above 1 points, in the note above the tables and the terminal's heading (``BETTER``'s kinds)
LARGER_BETTER, LARGER_WORSE = "accuracy, F1, img/s and MFU", "loss, seconds and MB"


def with_spread(ok: pd.DataFrame) -> pd.DataFrame:
    """``steady_img_s_spread_pct``: (max - min) / median of the repeats' steady figures, per backend.

    The between-run spread, reported apart from each run's own interval: on a shared machine
    it is usually the larger of the two. NaN with one repeat.
    """
    ok = ok.copy()
    v = pd.to_numeric(ok["steady_img_s"], errors="coerce")
    g = v.groupby(ok.backend)
    spread = 100 * (g.transform("max") - g.transform("min")) / g.transform("median")
    ok["steady_img_s_spread_pct"] = spread.where(g.transform("count") >= 2)
    return ok


def half_width(ok: pd.DataFrame, backend: str) -> float | None:
    """The steady figure's 95% half-width: its run's own; over repeats, half the processes' interval
    (``headline_interval``)."""
    sub = ok[ok.backend == backend]
    if len(headline_values(sub)) >= 2:
        ends = headline_interval(sub)
        return None if ends is None else (ends[1] - ends[0]) / 2
    hw = (
        pd.to_numeric(sub["steady_img_s_hw_pct"], errors="coerce")
        / 100
        * pd.to_numeric(sub["steady_img_s"], errors="coerce")
    ).dropna()
    return float(hw.median()) if len(hw) else None


def interval(ok: pd.DataFrame, backend: str) -> tuple[float, float] | None:
    """The steady figure's 95% interval ends (``headline_interval``) for one backend's ok rows in ``ok``."""
    return headline_interval(ok[ok.backend == backend])


def headline_values(rows: pd.DataFrame) -> pd.Series:
    """The positive headline figures of ``rows`` (one per repeat: a fresh process each)."""
    values = pd.to_numeric(rows["steady_img_s"], errors="coerce").dropna() if "steady_img_s" in rows else pd.Series()
    return values[values > 0]


def headline_interval(rows: pd.DataFrame) -> tuple[float, float] | None:
    """One backend's headline interval from its ok ``rows``: a single run's own (bootstrap over blocks of steps,
    or Student's t over stretches); over two or more repeats, Student's t over the processes' log rates
    (``stats.log_t_interval``, as the sentence under the table reads them), widened to hold the median the table
    shows. The medians of each run's own ends stood for it until 2026-12-06, and hid the spread between processes
    that the verdicts read (QA: a cell of ± 2% beside a 92% spread between its three repeats)."""
    values = headline_values(rows)
    if len(values) >= 2:
        _, lo, hi = stats.log_t_interval(values.to_numpy(dtype=float))
        middle = float(values.median())
        return min(lo, middle), max(hi, middle)
    ends = [pd.to_numeric(rows[c], errors="coerce").median() for c in ("steady_img_s_ci_lo", "steady_img_s_ci_hi")]
    return None if any(pd.isna(e) for e in ends) else (float(ends[0]), float(ends[1]))


def _lopsided(value: float | None, ok: pd.DataFrame, backend: str) -> bool:
    """Whether ``backend``'s headline interval is lopsided (``stats.lopsided``): ± would misdraw it."""
    ends = interval(ok, backend)
    return ends is not None and value is not None and pd.notna(value) and stats.lopsided(value, *ends)


def _with_interval(text: str, value: float | None, ok: pd.DataFrame, backend: str, fmt: str, ends_: bool) -> str:
    """The headline's cell: ``value ± half-width``, or ``value [lo, hi]`` where ``ends_`` (a row in which any
    backend's interval is lopsided shows every backend's ends), the value alone without an interval."""
    hw = half_width(ok, backend)
    if hw is None or value is None or pd.isna(value):
        return text
    ends = interval(ok, backend)
    if ends is not None and ends_:
        return f"{text} [{_fmt(ends[0], fmt)}, {_fmt(ends[1], fmt)}]"
    return f"{text} ± {_fmt(hw, fmt)}"


# The figures of a steady epoch, the first left out (bench.measure.timing.summarize_epochs): a row of one epoch has
# none, and its first epoch (its compiles, its first step) stood in them under "steady" (QA, 2026-12-07: a one-epoch
# zoo row's "steady throughput" 3 img/s against 139, ratio 0.023, beside the header's "exclude the first epoch")
STEADY_EPOCH = ("epoch_s_median", "throughput_img_s", "steady_epoch_ratio")


def _no_steady_epoch(ok: pd.DataFrame) -> set[str]:
    """The backends whose ok rows trained one epoch each: no steady epoch to show."""
    if "epochs" not in ok:
        return set()
    epochs = pd.to_numeric(ok["epochs"], errors="coerce")
    return {str(b) for b, e in epochs.groupby(ok.backend) if e.notna().all() and (e <= 1).all()}


def side_by_side(
    df: pd.DataFrame, task: str, formatted: bool = False, reference: str = DEFAULT_REFERENCE
) -> pd.DataFrame:
    """One task's metrics: a column per backend (median over ok repeats, registry order), then one ratio
    column ``<backend>/<reference>`` per other backend.

    Formatted, a ratio cell the reference cannot fill says why (e.g. "torch failed", "no torch row").
    """
    rows_all = df[df.task == task]
    ok = with_spread(rows_all[rows_all.status == "ok"])
    names = ordered(rows_all.backend)
    others = [b for b in names if b != reference]
    why = reference_missing(rows_all, reference)
    rows, cols = [], []
    one_epoch = _no_steady_epoch(ok)
    targets = transfer_targets(ok)
    for m in TABLE:  # the table's rows, in order (bench.core.metric_table)
        col, metric, fmt = m.column, m.words, m.fmt or ""
        if col in TRANSFER_HEADLINES and targets:
            metric += f" -> {targets[0]}" + (f" (the first of {targets[1]} targets)" if targets[1] > 1 else "")
        vals = pd.to_numeric(ok[col], errors="coerce").groupby(ok.backend).median()
        if col in STEADY_EPOCH:
            vals = vals.where(~vals.index.isin(list(one_epoch)))
        if vals.isna().all():
            continue
        row = {"metric": metric, **{b: vals.get(b) for b in names}}
        base = vals.get(reference)
        ratios: dict[str, float | str | None] = {b: _ratio(vals.get(b), base) for b in others}
        if formatted:
            row = {k: (_fmt(v, fmt) if k != "metric" else v) for k, v in row.items()}
            if col == "steady_img_s":  # value ± half-width of its 95% interval, or, in one row read one way, every
                # backend's ends where any is lopsided (QA: "7,030.1 ± 709.6" beside "[6,439.2, 9,864.8]")
                ends = any(_lopsided(vals.get(b), ok, b) for b in names)
                row.update({b: _with_interval(row[b], vals.get(b), ok, b, fmt, ends) for b in names})
            ratios = {b: why or _fmt(r, ".3f") for b, r in ratios.items()}
        row.update({ratio_name(b, reference): r for b, r in ratios.items()})
        rows.append(row)
        cols.append(col)
    out = pd.DataFrame(rows)
    # each row's record column, for the page's ratio intervals (a transfer row's words name its target)
    out.attrs.update(backends=names, ratios=[ratio_name(b, reference) for b in others], columns=cols)
    return out


# the table's transfer rows: the first target's figures (bench.phases.transfer), each target's in its section
TRANSFER_HEADLINES = ("transfer_acc", "transfer_acc_restricted")


def transfer_targets(ok: pd.DataFrame) -> tuple[str, int] | None:
    """(the first target's dataset, how many targets) of a task's ok rows (``transfer_dataset``,
    ``transfer_targets``: 1 where a record from before it says none); None without a transfer. The table's
    "transfer acc" read the first of two targets without naming it (QA, 2026-12-08)."""
    if "transfer_dataset" not in ok or not ok.transfer_dataset.notna().any():
        return None
    n = pd.to_numeric(ok.get("transfer_targets", pd.Series(dtype=float)), errors="coerce").max()
    return str(ok.transfer_dataset.dropna().iloc[0]), int(n) if pd.notna(n) else 1


def _ratio(value: float | None, base: float | None) -> float | None:
    """value / base, None when either is missing or the base is 0."""
    return value / base if base and value is not None and pd.notna(value) else None


def _fmt(v: object, fmt: str) -> str:
    if v is None or pd.isna(v):
        return "-"
    return format(v, fmt)


def ratio_note(reference: str, names: Iterable[str]) -> str:
    """What the ratio columns mean and which way is better, said once above the tables; where ``names`` (the
    run's backends) has none but the reference, that there are none and why."""
    if not [b for b in names if b != reference]:
        return (
            f"No ratio columns: a ratio needs two backends, and this run has {label(reference)}'s rows alone "
            "(`--backend` takes a comma-separated list)."
        )
    return (
        f"Ratios are each backend's median over ok repeats divided by {label(reference)}'s (the reference, "
        f"`--reference {reference}`), one column `<backend>/{reference}` per other backend. Above 1 the backend's "
        f"figure is larger: better in the {LARGER_BETTER} rows, worse in the {LARGER_WORSE} rows (slower, more memory)."
    )


def markdown_table(sbs: pd.DataFrame, tablefmt: str = "pipe") -> str:
    """A side-by-side table as text, the backend columns under their display labels."""
    shown = sbs.rename(columns={b: label(b) for b in sbs.attrs.get("backends", [])})
    return shown.to_markdown(
        index=False, tablefmt=tablefmt, colalign=("left",) + ("right",) * (shown.shape[1] - 1), disable_numparse=True
    )


def overview_throughput(ok: pd.DataFrame) -> pd.DataFrame:
    """Per (task, backend) of ok rows, what the overview draws: the headline throughput ``thr`` (timed images
    over window time, the table's headline) with its 95% interval ``lo``..``hi`` (``headline_interval``, as the
    table's cell: over repeats, the processes'), and the median test accuracy ``acc``. ``epochs``: True where a
    row has no headline (a record from before the step clock), drawn from its epochs instead: the median epoch's
    throughput, the slowest and fastest steady epoch as its range."""
    ok = ok.copy()
    for col in (
        "steady_img_s",
        "steady_img_s_ci_lo",
        "steady_img_s_ci_hi",
        "throughput_img_s",
        "epoch_s_median",
        "epoch_s_min",
        "epoch_s_max",
        "test_acc",
    ):
        ok[col] = pd.to_numeric(ok[col], errors="coerce") if col in ok else float("nan")
    # the images an epoch trained (throughput x median epoch): fewer than n_train with train.drop_last
    images = ok.throughput_img_s * ok.epoch_s_median
    headline = ok.steady_img_s.notna()
    ok["epochs"] = ~headline
    ok["thr"] = ok.steady_img_s.where(headline, ok.throughput_img_s)
    ok["lo"] = ok.steady_img_s_ci_lo.where(headline, images / ok.epoch_s_max)
    ok["hi"] = ok.steady_img_s_ci_hi.where(headline, images / ok.epoch_s_min)
    out = ok.groupby(["task", "backend"]).agg(
        thr=("thr", "median"),
        lo=("lo", "median"),
        hi=("hi", "median"),
        acc=("test_acc", "median"),
        epochs=("epochs", "any"),
    )
    for (task, backend), rows in ok[headline].groupby(["task", "backend"]):
        if len(headline_values(rows)) >= 2:  # the processes' interval, as the table's cell
            out.loc[(task, backend), ["lo", "hi"]] = headline_interval(rows)
    return out


def terminal_summary(
    df: pd.DataFrame, reference: str = DEFAULT_REFERENCE, verdicts: dict[str, list[str]] | None = None
) -> str:
    """The side-by-side tables the CLI prints at the end, after one line on what the ratios mean; under each, its
    ``verdicts`` (which backend trains faster, ``bench.report.speedup``)."""
    df_all = df
    parts, ratios = [], False
    df, _ = scaling.split(df)  # the data-parallel rows: their own tables, after these
    for task in df.task.unique():
        sbs = side_by_side(df, task, formatted=True, reference=reference)
        parts.append(f"\n== {task} ==")
        if len(sbs):
            parts.append(markdown_table(sbs, tablefmt="simple"))
            ratios = ratios or bool(sbs.attrs["ratios"])
        parts += [f"  {v}" for v in (verdicts or {}).get(task, [])]
        flaky = failed_repeats_of_task(df[df.task == task].to_dict("records"))
        parts += [f"  {name}: {words} (its figures: its ok repeats')" for name, words in flaky.items()]
        for _, r in df[(df.task == task) & (df.status != "ok")].iterrows():
            parts.append(f"  {r.backend}: {r.status}: {r.error}")
        for _, r in phase_failed(df[df.task == task]).iterrows():
            parts.append(f"  {r.backend} repeat {r['repeat']}: ok, but a phase failed: {r.phase_errors}")
    head = [
        f"ratios: <backend>/{reference} of the medians over ok repeats (> 1: a larger figure: better for "
        f"{LARGER_BETTER}, worse for {LARGER_WORSE})"
    ]
    return "\n".join(head * ratios + parts) + scaling.terminal_lines(df_all)
