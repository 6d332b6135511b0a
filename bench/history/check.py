"""Every series of the store through ``changes``: steps with what changed, drift, and the newest point.

The newest point is compared with the points before it since the last annotation or the last step
whose new level holds ``LEVEL`` points: a regression is flagged on the run that brought it and
the next few; once it is a level of its own it is a step, printed with what changed, and an
annotation says it was meant.

A series is one (task, backend, configuration, metric) at one task hash on one machine (raw), or
on every machine at once in the normalised view, where each value is divided (a rate) or
multiplied (a time) by its run's calibration. Points are runs, oldest first.

The newest point's scale is floored by its metric's run-to-run noise pooled over every series of the
metric on the machine (``pools``): a series of a few runs knows its own noise hardly at all (10.0 s,
10.1 s and a VM's 11.0 s read z 9 on one successive difference), the metric's many series know it well.
Where the backend's own series give a pool of ``MIN_POOL`` changes, it is that backend's: one framework's swings
under load (torch 208-6,202 img/s for one code) set a floor of 29% that hid another's -46.9%.

The runs just before the newest that were themselves flagged (against the baseline before them) are left out of its
baseline until they are a level (``LEVEL`` runs: then a step): with them in, a change's second and third runs were
judged against a baseline holding its first (z -2.4 where it was -4.5 without).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bench.core.metric_table import ACCURACY
from bench.core.placement import LOAD_COLUMNS, OTHERS_COLUMN, beyond_cores, load_words, others_words
from bench.history import changes
from bench.history.annotations import Annotation
from bench.history.metrics import BY_NAME, Metric
from bench.history.points import Columns, Points, Row
from bench.history.rows import number
from bench.history.thresholds import Thresholds

LEVEL = 3  # points a new level needs before the newest point is compared with it alone
RAW_KEY = ("task", "backend", "config", "metric", "spec_hash", "machine_id")
NORMALISED_KEY = ("task", "backend", "config", "metric", "spec_hash")
POOL_KEY = {False: ("metric", "machine_id"), True: ("metric",)}  # what a noise is pooled over: raw, normalised
# ... and, where its own pool holds MIN_POOL changes, per backend too (one framework's swings are not another's)
BACKEND_POOL = "backend"
# run-to-run changes a pool needs to floor a scale: from fewer its median is as uncertain as a short series' own
MIN_POOL = 10


@dataclass(frozen=True)
class Step:
    at: int  # index of the first point of the new level
    before: float
    after: float
    changed: list[str]
    note: str | None = None

    @property
    def change(self) -> float:
        return (self.after - self.before) / (abs(self.before) or 1.0)


@dataclass(frozen=True)
class Pool:
    """A metric's relative run-to-run noise on one machine (raw) or on every machine (normalised), from all its
    series: 1.4826 x the median |x[i+1] - x[i]| / |(x[i+1] + x[i]) / 2| / sqrt 2 over their successive runs."""

    noise: float
    changes: int  # the successive differences it is the median of
    series: int  # the series they came from
    backend: str | None = None  # the backend it is pooled over alone; None: every backend's series


@dataclass
class Series:
    key: dict[str, str]
    metric: Metric
    points: Points  # the rows, oldest first
    steps: list[Step] = field(default_factory=list)
    drift: changes.Drift | None = None
    newest: changes.Newest | None = None
    reset: int = 0  # the newest point's baseline starts here (an annotation)
    reset_note: str | None = None
    reconfigured: bool = False  # the baseline starts where the row's knobs changed (not at an annotation)
    pool: Pool | None = None  # the metric's pooled run-to-run noise, where its pool is large enough
    left_out: int = 0  # flagged runs just before the newest that its baseline leaves out (fewer than LEVEL)

    @property
    def name(self) -> str:
        k = self.key
        where = f" on {self.points.get('machine')[-1]}" if "machine_id" in k else " (normalised)"
        # a task that ran as it was and as changed (another profile, epochs, batch) is two series: said apart
        spec = f" [{self.points.get('profile')[-1] or 'no'} profile, task {k['spec_hash'][:6]}]"
        return f"{k['task']} / {k['backend']} / {k['config']} / {k['metric']}{spec}{where}"


def series(df: pd.DataFrame, normalised: bool = False) -> Iterator[tuple[dict[str, str], Points]]:
    """The store's rows grouped into series, each oldest run first; rows with no value are left out."""
    key = list(NORMALISED_KEY if normalised else RAW_KEY)
    df = df[df.value.notna() & df.metric.isin(list(BY_NAME))].sort_values(["run_date", "run_id"], kind="stable")
    # text as plain objects: taking rows of arrow-backed text per series cost ~10x the whole analysis
    df = df.astype({c: object for c in df.columns if pd.api.types.is_string_dtype(df[c])}).reset_index(drop=True)
    groups = sorted(df.groupby(key, dropna=False).indices.items())
    if not groups:
        return
    # each column taken once in series order, then a slice of it each (a DataFrame per series cost 0.4 ms to cut
    # and 0.05 ms per column read: 3.5 s of the 19 reference runs' import, in pandas' overhead alone)
    columns = Columns.of(df, np.concatenate([rows for _, rows in groups]))
    start = 0
    for values, rows in groups:
        end = start + len(rows)
        yield dict(zip(key, map(str, values), strict=True)), columns.points(start, end)
        start = end


# knobs a stored row may lack (rows stored before 2026-12-06 kept no threads): compared only where both runs have them,
# so a store's older rows do not read as a configuration change against the newer ones
RECORDED_SINCE = ("threads",)


def knob_changes(a: str | None, b: str | None) -> list[str]:
    """The knobs that differ between two rows' knobs JSON, "knob NAME A -> B" each."""
    ka, kb = json.loads(a or "{}"), json.loads(b or "{}")
    for k in RECORDED_SINCE:
        if (k in ka) != (k in kb):
            ka.pop(k, None), kb.pop(k, None)
    return [
        f"knob {k} {ka.get(k, '-')} -> {kb.get(k, '-')}"
        for k in sorted(ka.keys() | kb.keys())
        if ka.get(k) != kb.get(k)
    ]


def diff_of(point: Row) -> str | None:
    """The hash of a dirty point's uncommitted changes; None where its run kept none (clean, or stored before)."""
    d = point.get("diff")
    return d if isinstance(d, str) and d else None


def what_changed(a: Row, b: Row) -> list[str]:
    """What differs between two points' runs: commit, dirty state, package versions, knobs, machine, calibration."""
    out = []
    if a["commit"] != b["commit"] or a["dirty"] != b["dirty"]:
        out.append(f"commit {a['commit']}{'-dirty' * bool(a['dirty'])} -> {b['commit']}{'-dirty' * bool(b['dirty'])}")
    elif a["dirty"] and (da := diff_of(a)) and (db := diff_of(b)) and da != db:  # one commit, other local patches
        out.append(f"commit {a['commit']}-dirty -> {b['commit']}-dirty: other uncommitted changes (diff {da} -> {db})")
    pa, pb = json.loads(a["packages"] or "{}"), json.loads(b["packages"] or "{}")
    out += [
        f"{k} {pa.get(k, '-')} -> {pb.get(k, '-')}" for k in sorted(pa.keys() | pb.keys()) if pa.get(k) != pb.get(k)
    ]
    out += knob_changes(a["knobs"], b["knobs"])
    if a["machine_id"] != b["machine_id"]:
        out.append(f"machine {a['machine']} -> {b['machine']}")
    ca, cb = a["calibration_gflops"], b["calibration_gflops"]
    if pd.notna(ca) and pd.notna(cb) and abs(cb / ca - 1) > 0.1:
        out.append(f"calibration {ca:,.0f} -> {cb:,.0f} GFLOP/s ({cb / ca:.2f}x: the machine's own speed)")
    return out or ["nothing recorded (same commit, versions, knobs and machine)"]


def analyse(
    key: dict[str, str], points: Points, notes: list[Annotation], t: Thresholds, pool: Pool | None = None
) -> Series:
    """Steps, drift and the newest-point test of one series (its scale floored by ``pool``'s noise)."""
    metric = BY_NAME[key["metric"]]
    s = Series(key, metric, points, pool=pool)
    x = points["value"]
    runs = list(points["run_id"])
    mine = [a for a in notes if a.applies(key["task"], key["backend"], key["metric"]) and a.run in runs]
    for a in mine:
        if runs.index(a.run) >= s.reset:
            s.reset, s.reset_note = runs.index(a.run), a.note
    # another configuration is another baseline, as an annotation makes one: a tuned row's "best" is whichever
    # configuration won its race (the AMD cifar10-cnn tunes: Keras (torch)'s bf16 three times, then its defaults,
    # whose memory was flagged +10.6% against bf16's), and no configuration regressed against another
    knobs = list(points.get("knobs"))
    for i in range(max(1, s.reset + 1), len(knobs)):
        # knobs the same text as the run's before are no change (compared as JSON only where the text differs)
        if knobs[i] != knobs[i - 1] and (changed := knob_changes(knobs[i - 1], knobs[i])):
            s.reset, s.reset_note = i, "its configuration changed (" + "; ".join(changed) + ")"
            s.reconfigured = True
    if len(x) < 2:  # one point: no step, drift or newest-point test (most series of a young store)
        return s
    lo, hi = points["lo"], points["hi"]
    sig = changes.sigmas(x, lo, hi)
    noted = {runs.index(a.run): a.note for a in mine}
    cuts = changes.steps(x, sig, min_change=t.min_step)
    edges = [0, *cuts, len(x)]
    for k, at in enumerate(cuts):
        before, after = changes.median(x[edges[k] : at]), changes.median(x[at : edges[k + 2]])
        s.steps.append(Step(at, before, after, what_changed(points.row(at - 1), points.row(at)), noted.get(at)))
    s.drift = changes.drift(x, cuts)
    # the newest point's baseline: from the annotation, or from the last step whose level holds 3 points before it
    start = max([s.reset, *(st.at for st in s.steps if len(x) - 1 - st.at >= LEVEL)])

    def judged(kept: np.ndarray) -> changes.Newest | None:  # the last of ``kept`` (indices) against those before it
        return judge(x[kept], lo[kept], hi[kept], start, metric, t, pool)

    everything = np.arange(len(x))
    s.newest = judged(everything)
    # the runs just before the newest that were flagged against the baseline before them are left out of its own
    # (the most of them, fewer than LEVEL: that many are a level), so a change's second and third runs are judged
    # against the baseline its first was
    for m in range(LEVEL - 1, 0, -1):
        cut = len(x) - 1 - m  # the first of those m runs
        if cut - start < 1:
            continue
        if all(flagged(judged(np.append(everything[:cut], j))) for j in range(cut, len(x) - 1)):
            s.newest, s.left_out = judged(np.append(everything[:cut], len(x) - 1)), m
            break
    return s


def judge(
    x: np.ndarray, lo: np.ndarray, hi: np.ndarray, start: int, metric: Metric, t: Thresholds, pool: Pool | None
) -> changes.Newest | None:
    """The newest-point test of ``x``'s last value against those from ``start`` on before it (None with none)."""
    if len(x) - start < 2:
        return None
    # the noise the newest point is judged in leaves its own jump out, once two runs or more stand before it
    # (the smaller of the two estimates: a step among those runs would hide it as well): with its jump counted,
    # 3 runs without intervals could flag nothing (QA, 2026-12-06: the test accuracy 0.964, 0.964 and then 0.096
    # of a planted bug passed). One run before it gives no noise: its jump stays the scale, and a change against a
    # single run is no regression (the reference store's runs a day apart would be)
    sig = changes.sigmas(x, lo, hi, noise_of=x[:-1] if len(x) - start >= 3 else None)
    return changes.newest(
        x[start:],
        sig[start:],
        metric.higher_is_better is True,
        t.lookback,
        t.z,
        t.max_acc_drop if metric.kind == ACCURACY else t.min_change,
        pooled=pool.noise if pool else 0.0,
        absolute=metric.kind == ACCURACY,
    )


def flagged(n: changes.Newest | None) -> bool:
    return n is not None and (n.regression or n.improvement)


def pools(df: pd.DataFrame, notes: list[Annotation], normalised: bool = False) -> dict[tuple[str, ...], Pool]:
    """Each metric's run-to-run noise per machine (``POOL_KEY``), pooled over every series' successive runs, and per
    backend as well (keyed by ``POOL_KEY``'s values and the backend); only the pools of ``MIN_POOL`` differences or
    more. Left out: a difference into a series' newest run (the runs being judged would set their own scale: a commit
    slowing every series at once would hide itself), and one across a baseline reset (the row's knobs changed, an
    annotation). One across a step stays: one difference per step, which the median barely feels."""
    key, by = list(NORMALISED_KEY if normalised else RAW_KEY), list(POOL_KEY[normalised])
    d = df[df.value.notna() & df.metric.isin(list(BY_NAME))]
    if len(d) < 2:
        return {}
    d = d.assign(series_no=d.groupby(key, dropna=False, sort=False).ngroup().to_numpy())
    d = d.sort_values(["series_no", "run_date", "run_id"], kind="stable")  # each series oldest first, as ``series``
    sid, x = d.series_no.to_numpy(), d.value.to_numpy(float)
    a, b = x[:-1], x[1:]  # pair j: rows j and j + 1
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(b - a) / np.abs((a + b) / 2)
    newest = np.append(sid[2:] != sid[1:-1], True)  # row j + 1 is its series' last
    keep = (sid[1:] == sid[:-1]) & ~newest & np.isfinite(rel)
    knobs = d.knobs.fillna("").to_numpy(object)
    for j in np.flatnonzero(keep & (knobs[1:] != knobs[:-1])):  # few: compared as the baseline compares them
        keep[j] = not knob_changes(knobs[j], knobs[j + 1])
    later = {c: d[c].to_numpy(object)[1:] for c in ("run_id", "task", "backend", "metric")}
    for note in notes:
        hit = later["run_id"] == note.run
        for col, want in (("task", note.task), ("backend", note.backend), ("metric", note.metric)):
            if want is not None:
                hit &= later[col] == want
        keep &= ~hit
    diffs = pd.DataFrame(
        {
            "rel": rel[keep],
            "series": sid[1:][keep],
            **{c: d[c].to_numpy(object)[1:][keep] for c in [*by, BACKEND_POOL]},
        }
    )
    out = {}
    for cols in (by, [*by, BACKEND_POOL]):  # every backend's, then each backend's own (keyed by it as well)
        agg = diffs.groupby(cols, dropna=False).agg(
            median=("rel", "median"), n=("rel", "size"), series=("series", "nunique")
        )
        for r in agg[agg.n >= MIN_POOL].reset_index().to_dict("records"):
            noise = 1.4826 * float(r["median"]) / math.sqrt(2)
            out[tuple(str(r[c]) for c in cols)] = Pool(noise, int(r["n"]), int(r["series"]), r.get(BACKEND_POOL))
    return out


def pool_of(found: dict[tuple[str, ...], Pool], key: dict[str, str], normalised: bool) -> Pool | None:
    """A series' pool: its backend's own where that holds ``MIN_POOL`` changes, else its metric's on the machine
    (in the normalised view, on every machine)."""
    where = tuple(key[c] for c in POOL_KEY[normalised])
    return found.get((*where, key[BACKEND_POOL])) or found.get(where)


def check(
    df: pd.DataFrame,
    notes: list[Annotation],
    t: Thresholds,
    normalised: bool = False,
    pooled_from: pd.DataFrame | None = None,
) -> list[Series]:
    """Every series of ``df`` analysed, each newest point's scale floored by its metric's pool, pooled over
    ``pooled_from`` (the whole store where ``df`` is narrowed to a task, backend or metric: a filter must not
    change a verdict)."""
    found = pools(df if pooled_from is None else pooled_from, notes, normalised)
    return [analyse(key, points, notes, t, pool_of(found, key, normalised)) for key, points in series(df, normalised)]


def threshold_words(t: Thresholds) -> str:
    """What a regressed newest point passes, as the summary line and the dashboard say it."""
    return f"robust z > {t.z:g} and worse by > {t.min_change:.0%}, an accuracy by > {t.max_acc_drop:g}"


def timed_under_load(load: Any, cores: Any, at: Any = None, others: Any = None) -> str:
    """'timed at load 7.7 on 2 cores' when a point's run was timed on a machine loaded beyond its cores, else ''.

    Said beside a step or a flag, which it leaves as they are: a run at load 7.7 on 2 cores read 3.3x slower than
    its twin (QA, 2026-12-06). ``at`` "start": the rows kept no load of their own (before 2026-12-06), the figure
    is the run's at its start (``bench.core.placement.run_load``), and the words say so; none at all says nothing.
    Under the load line, ``others`` (the row's ``others_cpu_pct``) past its own line: 'timed with others using 38%
    of the cores' (one busy process beside a 2-core row: load 1.3)."""
    load, cores = number(load), number(cores)
    if load is None or not cores or not beyond_cores(load, cores):
        words = others_words([{OTHERS_COLUMN: number(others)}])
        return f"timed with {words}" if words else ""
    if isinstance(at, str) and at == "start":  # a store cell may be pd.NA, whose == is no bool
        return f"started at {load_words(load, cores)} (its rows recorded no load of their own)"
    return f"timed at {load_words(load, cores)}"


def load_clause(point: Row) -> str:
    """The point's ``timed_under_load`` as a clause of a verdict's line."""
    words = timed_under_load(*(point.get(c) for c in (*LOAD_COLUMNS, "load_at", OTHERS_COLUMN)))
    return f", {words}" if words else ""


def pool_clause(s: Series) -> str:
    """' in the metric's run-to-run noise on this machine, 4.1% from 37 changes in 9 series' where the pool set
    the newest point's scale, else ''."""
    if not (s.pool and s.newest and s.newest.pooled):
        return ""
    where = "on this machine" if "machine_id" in s.key else "on every machine"
    whose = f" of {s.pool.backend}" if s.pool.backend else ""
    return (
        f" in the metric's run-to-run noise{whose} {where}, {s.pool.noise:.1%} from {s.pool.changes} changes in "
        f"{s.pool.series} series"
    )


def describe(s: Series) -> list[str]:
    """What ``bench history`` prints about one series: nothing when it has no step, drift or flag."""
    lines = []
    p = s.points
    runs, dates = p["run_id"], p["run_date"]
    for st in s.steps:
        lines.append(
            f"  step at run {runs[st.at]} ({dates[st.at]:%Y-%m-%d}): "
            f"{st.before:,.4g} -> {st.after:,.4g} ({st.change:+.1%}){load_clause(p.row(st.at))}"
            + (f" [{st.note}]" if st.note else "")
        )
        lines += [f"    {c}" for c in st.changed]
    if s.drift:
        lines.append(
            f"  drift: {s.drift.change:+.1%} over {len(p)} runs (Kendall tau {s.drift.tau:+.2f}, p {s.drift.p:.1g})"
        )
    n = s.newest
    if n and (n.regression or n.improvement):
        what = "REGRESSION" if n.regression else "improvement"
        left = {0: "", 1: ", the flagged run just before it left out"}.get(
            s.left_out, f", the {s.left_out} flagged runs just before it left out"
        )
        lines.append(
            f"  newest run {runs[-1]}: {what}: {n.change:+.1%} against the median of "
            f"{n.baseline} run(s) before it{left} (robust z {n.z:+.1f}{pool_clause(s)}){load_clause(p.row(-1))}"
        )
        # what changed since its baseline's last run (the first flagged run's cause, where some are left out)
        lines += [f"    {c}" for c in what_changed(p.row(-2 - s.left_out), p.row(-1))]
    if lines and s.reset_note:
        lines.append(f"  baseline reset at run {runs[s.reset]}: {s.reset_note}")
    elif s.reconfigured and s.reset == len(p) - 1:  # said once, as it lands: a new baseline is judged against nothing
        a, b = p["value"][-2], p["value"][-1]
        lines.append(
            f"  newest run {runs[-1]}: a new baseline, not judged: {s.reset_note}: {a:,.4g} -> {b:,.4g}"
            + (f" ({b / a - 1:+.1%})" if a else "")
        )
    return [s.name, *lines] if lines else []
