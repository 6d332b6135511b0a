"""``results/history/index.html``: a trend chart per (task, metric), every backend's series in it, in one file.

Plotly draws the charts; its script is inlined from the installed package (``plotly.offline.get_plotlyjs``),
so the page opens from disk with no network. The data is one JSON block; charts are drawn when they
scroll into view (a page of the whole zoo holds hundreds), and the controls pick the metric, the raw
or normalised view, and regressions only. Each series shows its points with their 95% intervals (a
band, and a bar on each point), its steps as markers, and its newest point flagged when the newest-point test
calls it a regression. The time axis is set from the run dates (``time_axis``), not left to plotly, and the
legend has a margin of its own below the date labels, its columns counted again when the window is resized.
Where tuned rows exist (a configuration other than default), a table sets each backend's default against its
best. Rows whose newest run failed or timed out (``bench.history.failures``) are a table of their own, above the
charts: they have no point to draw.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.core.placement import LOAD_COLUMNS, OTHERS_COLUMN
from bench.history.check import Series, Thresholds, check, knob_changes, threshold_words, timed_under_load
from bench.history.failures import Failure, before, failures, first_line, outcome, unflagged_words
from bench.history.metrics import BY_NAME, METRICS
from bench.report.backends import colour, label
from bench.report.html import TAB10, Contents, esc, json_block, page, table

PAGE = "index.html"
MIN_SPAN = pd.Timedelta(hours=1)  # the least a time axis shows: ~10 ticks of 5 minutes
# a backend's series in one chart, told apart (plotly's names); not ▲ or ✕, which mark a step and a regression
DASHES = ("solid", "dash", "dot", "dashdot")
SYMBOLS = ("circle", "square", "diamond", "cross")

SCRIPT = r"""
const D = JSON.parse(document.getElementById('history-data').textContent);
const charts = document.getElementById('charts');
const metricSel = document.getElementById('metric'), onlyReg = document.getElementById('regressions');
const viewSel = document.getElementById('view'), filter = document.getElementById('task-filter');
const drawn = new Set();
// run data in chart text: plotly reads a few HTML tags in titles and names, so < > & are given as entities
function txt(s) { return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;'); }
function fin(v) { return v !== null && v !== undefined && isFinite(v); }
function traces(list) {
  const out = [];
  for (const s of list) {
    const band = s.x.map((x, i) => [x, s.lo[i], s.hi[i]]).filter(p => fin(p[1]) && fin(p[2]));
    if (band.length) out.push({x: band.map(p => p[0]).concat(band.map(p => p[0]).reverse()),
      y: band.map(p => p[2]).concat(band.map(p => p[1]).reverse()), fill: 'toself', mode: 'lines',
      line: {width: 0}, fillcolor: s.colour + '33', hoverinfo: 'skip', showlegend: false, name: txt(s.name) + ' 95%'});
    const bars = {type: 'data', symmetric: false, color: s.colour, thickness: 1, width: 3,
      array: s.y.map((y, i) => fin(s.hi[i]) ? s.hi[i] - y : null),
      arrayminus: s.y.map((y, i) => fin(s.lo[i]) ? y - s.lo[i] : null)};
    out.push({x: s.x, y: s.y, mode: 'lines+markers', name: txt(s.name), meta: 'points',
      line: {color: s.colour, dash: s.dash}, marker: {symbol: s.symbol, size: 7},
      error_y: bars,
      customdata: s.run.map((r, i) => [txt(r), txt(s.commit[i]), s.load[i] ? '<br>' + txt(s.load[i]) : '']),
      hovertemplate: '%{y:.4g}<br>run %{customdata[0]}<br>commit %{customdata[1]}%{customdata[2]}<extra>' +
        txt(s.name) + '</extra>'});
    if (s.steps.length) out.push({x: s.steps.map(i => s.x[i]), y: s.steps.map(i => s.y[i]), mode: 'markers',
      name: txt(s.name) + ' step', meta: 'steps', showlegend: false,
      marker: {symbol: 'triangle-up', size: 13, color: s.colour, line: {color: '#000', width: 1}}});
    if (s.regression) out.push({x: [s.x[s.x.length - 1]], y: [s.y[s.y.length - 1]], mode: 'markers',
      name: txt(s.name) + ' regression', meta: 'regression', showlegend: false,
      marker: {symbol: 'x', size: 15, color: '#d00'}});
  }
  return out;
}
// The legend: an entry per series (a step and a regression are explained above the charts), in as many
// columns of equal width as its widest name allows, below the axis in a margin of its own (yref 'container':
// plotly reserves its height apart from the date labels', which it overlapped at y -0.1), the chart growing by
// a row of it so the plot keeps its height.
const ruler = document.createElement('canvas').getContext('2d');
ruler.font = '12px "Open Sans", verdana, arial, sans-serif';  // plotly's legend font
const PLOT = 320, ROW = 21, MARGIN = {l: 60, r: 10};
function legendColumns(div, list) {
  const widest = Math.max(...list.map(s => ruler.measureText(s.name).width)) + 50;  // the line, its marker, gaps
  const width = Math.max(div.clientWidth, 300) - MARGIN.l - MARGIN.r;
  return Math.max(1, Math.min(list.length, Math.floor(width / widest)));
}
function shown(div) {
  const c = D.charts[+div.dataset.i];
  return viewSel.value === 'normalised' ? c.normalised : c.raw;
}
function draw(div) {
  const c = D.charts[+div.dataset.i], view = viewSel.value, list = shown(div);
  const cols = legendColumns(div, list), height = PLOT + Math.ceil(list.length / cols) * ROW;
  div.style.height = height + 'px'; div.dataset.cols = cols;
  Plotly.react(div, traces(list), {title: {text: txt(c.task) + ': ' + c.label + (view === 'normalised' ?
    ' / calibration' : ''), font: {size: 14}}, height: height, margin: {...MARGIN, t: 40, b: 10},
    xaxis: {type: 'date', automargin: true, ...c.xaxis[view]}, yaxis: {automargin: true},
    legend: {orientation: 'h', x: 0, xanchor: 'left', yref: 'container', y: 0, yanchor: 'bottom',
      entrywidth: 1 / cols, entrywidthmode: 'fraction'}}, {displaylogo: false, responsive: true});
  drawn.add(div.id);
}
// The columns are counted for the width a chart has when drawn: a window made narrower (or wider) later draws
// again each chart whose legend now fits another number of columns, once the resizing pauses for a frame.
let resizing = 0;
window.addEventListener('resize', () => { cancelAnimationFrame(resizing); resizing = requestAnimationFrame(() => {
  for (const d of charts.children) if (drawn.has(d.id) && +d.dataset.cols !== legendColumns(d, shown(d))) draw(d);
}); });
const seen = new IntersectionObserver(es => es.forEach(e => { if (e.isIntersecting) draw(e.target); }));
function rebuild() {
  charts.replaceChildren(); drawn.clear(); seen.disconnect();
  const view = viewSel.value, text = filter.value.toLowerCase();
  D.charts.forEach((c, i) => {
    const list = view === 'normalised' ? c.normalised : c.raw;
    if (c.metric !== metricSel.value || !list.length || (text && !c.task.toLowerCase().includes(text))) return;
    if (onlyReg.checked && !list.some(s => s.regression)) return;
    const div = document.createElement('div'); div.className = 'chart'; div.id = 'chart-' + i; div.dataset.i = i;
    charts.appendChild(div); seen.observe(div);
  });
  document.getElementById('shown').textContent = charts.children.length + ' chart(s)';
}
window.renderAll = () => Array.from(charts.children).forEach(d => drawn.has(d.id) || draw(d));
[metricSel, onlyReg, viewSel].forEach(e => e.addEventListener('change', rebuild));
filter.addEventListener('input', rebuild);
rebuild();
"""


def finite(a: np.ndarray) -> list[float | None]:
    """A float column's values for the page's JSON: None where one is NaN or infinite (``clean`` of each)."""
    return [v if ok else None for v, ok in zip(a.tolist(), np.isfinite(a).tolist(), strict=True)]


def series_data(s: Series, suffix: str) -> dict[str, Any]:
    p = s.points
    config = s.key["config"].removeprefix("default").strip() or s.key["config"]
    name = label(s.key["backend"]) + ("" if config == "default" else f" [{config}]") + suffix
    return {
        "name": name,
        "colour": TAB10[int(colour(s.key["backend"])[1:]) % len(TAB10)],
        "x": [t.isoformat() for t in p["run_date"]],
        "y": finite(p["value"]),
        "lo": finite(p["lo"]),
        "hi": finite(p["hi"]),
        "run": p["run_id"].tolist(),
        # as bench history says it: two runs of one commit, one with local changes, were one commit in the hover
        "commit": [
            f"{c}{'-dirty' * bool(d)}" + (f" (diff {h})" if isinstance(h, str) and h else "")
            for c, d, h in zip(p.get("commit"), p.get("dirty"), p.get("diff"), strict=True)
        ],
        # the hover's last line where the run was timed on a machine loaded beyond its cores (bench history's clause)
        # (points read without the store's load columns: None each)
        "load": [
            timed_under_load(*lc)
            for lc in zip(*(p.get(c) for c in (*LOAD_COLUMNS, "load_at", OTHERS_COLUMN)), strict=True)
        ],
        "steps": [st.at for st in s.steps],
        "regression": bool(s.newest and s.newest.regression),
    }


def time_axis(dates: list[pd.Timestamp]) -> dict[str, Any]:
    """A chart's time axis (plotly ``xaxis`` settings) over its points' run dates.

    Left to plotly, one run's axis spanned a millisecond, ticked "23:59:59.9995". Runs at one instant (a chart of
    one run, as a data-parallel task's often is) or minutes apart: an hour in view, centred on them, so a tick is
    never finer than minutes (one run's axis had spanned two days, ticked in dates, its points alone in the middle
    of it: the padding of runs minutes apart is the one that fits them). Runs days or months apart: their span and
    5% each side, plotly's date ticks."""
    lo, hi = min(dates), max(dates)
    pad = max((hi - lo) * 0.05, (MIN_SPAN - (hi - lo)) / 2)
    return {"range": [(lo - pad).isoformat(), (hi + pad).isoformat()]}


def suffix(s: Series, machines: dict[str, str], specs: int) -> str:
    """What tells this series from the others of its chart: its machine (the CPU and the words of the machine the
    chart's other machines lack), the task's hash, when they vary. The CPU alone named a run held to 1 of 2 cores
    "AMD EPYC" beside the unheld runs' "AMD EPYC": two legend entries of one name (QA, 2026-12-07)."""
    out = ""
    if len(machines) > 1:  # fingerprint -> words, of the chart's series
        cpu, *rest = s.points.get("machine")[0].split(", ")
        shared = set.intersection(*(set(m.split(", ")) for m in machines.values()))
        out = " · " + ", ".join([cpu, *(w for w in rest if w not in shared)])
    return out + (f" · task {s.key['spec_hash'][:6]}" if specs > 1 else "")


def styled(data: list[dict[str, Any]], group: list[Series]) -> list[dict[str, Any]]:
    """Each series of a backend its own line dash and marker: a backend's series share its colour, and two of its
    task hashes (a batch size changed) were told apart by the legend's words alone, both solid lines of dots."""
    nth: dict[str, int] = {}
    for d, s in zip(data, group, strict=True):
        k = nth[s.key["backend"]] = nth.get(s.key["backend"], -1) + 1
        d["dash"], d["symbol"] = DASHES[k % len(DASHES)], SYMBOLS[k % len(SYMBOLS)]
    return data


def chart_data(raw: list[Series], normalised: list[Series]) -> list[dict[str, Any]]:
    """One entry per (task, metric): its raw series (one per backend, configuration, task hash and machine) and
    its normalised ones (one per backend, configuration and task hash, every machine together)."""
    grouped: dict[tuple[str, str], dict[str, list[Series]]] = {}
    for view, group in (("raw", raw), ("normalised", normalised)):
        for s in group:
            grouped.setdefault((s.key["task"], s.key["metric"]), {"raw": [], "normalised": []})[view].append(s)
    charts = []
    for (task, metric), views in sorted(grouped.items()):
        chart: dict[str, Any] = {"task": task, "metric": metric, "label": BY_NAME[metric].words, "xaxis": {}}
        for view, group in views.items():
            machines = {s.points.get("machine_id")[0]: s.points.get("machine")[0] for s in group}
            specs = len({s.key["spec_hash"] for s in group})
            chart[view] = styled([series_data(s, suffix(s, machines, specs)) for s in group], group)
            if group:  # a series is oldest first: its first and last dates bound it
                chart["xaxis"][view] = time_axis([t for s in group for t in s.points["run_date"][[0, -1]]])
        charts.append(chart)
    return charts


def _figure(x: float, fmt: str | None = None) -> str:
    """In the metric's own format where it has one (``Metric.fmt``: MFU 32.97%, as the run's pages show it), else 4
    significant digits, in plain digits where the figure is large: 39,880, not 3.988e+04."""
    if fmt:
        return format(x, fmt)
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:,.4g}"


def default_vs_best(df: pd.DataFrame) -> str:
    """Per (task, backend, metric) of the newest run with tuned rows: default against the best configuration.

    A tuned row names a configuration of its own (a data-parallel row's label starts with "default"). Grouped
    in one pass over the store (per group it cost ~15 ms: 5 s of a dashboard over 13 runs)."""
    df = df[df.metric.isin(list(BY_NAME)) & ((df.config == "default") | ~df.config.str.startswith("default"))]
    key = ["task", "backend", "metric"]
    df = df.assign(is_default=df.config == "default", is_tuned=df.config != "default").reset_index(drop=True)
    runs = df.groupby([*key, "run_id"], sort=False).agg(
        has_default=("is_default", "any"), has_tuned=("is_tuned", "any"), date=("run_date", "min")
    )
    both = runs[runs.has_default & runs.has_tuned].reset_index()
    if both.empty:
        return "<p>No tuned rows in the history yet: every row ran its backend's default configuration.</p>"
    newest = both.sort_values("date", kind="stable").groupby(key).tail(1)[[*key, "run_id"]]
    last = df.merge(newest, on=[*key, "run_id"])
    higher = last.metric.map(lambda m: BY_NAME[m].higher_is_better)
    last = last.assign(score=last.value.where(higher, -last.value))
    default = last[last.is_default].groupby(key).value.first(skipna=False)
    knobs = last.knobs if "knobs" in last else pd.Series(None, index=last.index, dtype=object)
    default_knobs = knobs[last.is_default].groupby([last[k] for k in key]).first()
    others = last[last.is_tuned & last.score.notna()]
    # each key's best row as a dict (a .loc per row cost ~0.5 ms: 0.15 s of the reference runs' dashboard)
    best = others.loc[others.groupby(key).score.idxmax()].set_index(key).to_dict("index")
    rows = []
    for (task, backend, metric), d in default.items():
        if (b := best.get((task, backend, metric))) is None:
            continue  # no tuned configuration of that run measured this metric
        m = BY_NAME[metric]  # its words and format, as the charts, summary.md and compare give them (QA, 2026-12-06:
        rows.append(  # this table alone said "steady_img_s", and MFU 0.3297 beside the run page's 32.97%)
            [
                (task, None, ""),
                (label(backend), None, ""),
                (m.words, None, ""),
                (_figure(d, m.fmt), d, ""),
                (_figure(b["value"], m.fmt), b["value"], ""),
                (_configuration(b["config"], default_knobs.get((task, backend, metric)), b.get("knobs")), None, ""),
                (f"{b['value'] / d:.3f}" if d else "-", b["value"] / d if d else None, ""),
                (_verdict(b.get("stands")), None, ""),
                (b["run_id"], None, ""),
            ]
        )
    return table(
        [
            "task",
            "backend",
            "metric",
            "default",
            "best",
            "best configuration",
            "best / default",
            "tune's verdict",
            "run",
        ],
        rows,
        "default-vs-best",
    )


def _verdict(stands: object) -> str:
    """Which configuration the tune's verdict read (the store's ``stands``): its race's winner where the fresh
    processes measured it faster, else its defaults and why; "-" for a row no tune judged (or stored before)."""
    if not isinstance(stands, str) or not stands:
        return "-"
    return "best stands" if stands == "best" else stands.replace("the defaults", "defaults stand", 1)


def _configuration(config: str, default: str | None, best: str | None) -> str:
    """A tuned row's configuration and the knobs it ran apart from the default row's ("best: knob threads 2 -> 1"):
    a tune's every such row is config "best", which alone said nothing of what won (QA, 2026-12-06); where the knobs
    are the default's (its defaults won the race, measured again), that."""
    if not isinstance(default, str) or not isinstance(best, str):
        return config  # a store row without knobs: its configuration's name is all there is
    return f"{config}: {'; '.join(changed)}" if (changed := knob_changes(default, best)) else f"{config}: the defaults"


def not_working(found: list[Failure]) -> str:
    """The rows whose newest run failed or timed out: a regression where an earlier run had them ok."""
    rows = [
        [
            (f.key["task"], None, ""),
            (label(f.key["backend"]), None, ""),
            (f.key["config"], None, ""),
            (f.failed.machine, None, ""),
            (f.failed.run_id, None, ""),
            (outcome(f.failed), None, "bad"),
            (first_line(f.failed.error), None, ""),
            (before(f), None, ""),
        ]
        for f in found
    ]
    header = ["task", "backend", "configuration", "machine", "newest run", "status", "error", "before"]
    return table(header, rows, "not-working")


def write_dashboard(
    store: Path,
    df: pd.DataFrame,
    normalised_df: pd.DataFrame,
    raw: list[Series],
    normalised: list[Series],
    t: Thresholds,
    broken: list[Failure] | None = None,
) -> Path:
    """Write ``store/index.html`` from the store's rows, their checked series and the rows that did not work."""
    from plotly.offline import get_plotlyjs

    broken = broken or []
    charts = chart_data(raw, normalised)
    present = [m for m in METRICS if any(c["metric"] == m.column for c in charts)]
    options = "".join(f'<option value="{m.column}">{esc(m.words)}</option>' for m in present)
    # per view, as `bench history` and `--normalised` count them: their sum read 4 where each said 2 (QA, 2026-12-07)
    regressions = [sum(1 for s in view if s.newest and s.newest.regression) for view in (raw, normalised)]
    runs = df.run_id.nunique() if len(df) else 0
    contents = Contents()  # the charts can be hundreds: a link reaches the table below them
    # first, as on the page: rows that stopped working have no point to draw
    broken_part = contents.heading("Rows not working", "not-working") + not_working(broken) if broken else ""
    charts_part = (
        contents.heading("Trends", "trends")
        + f'<p>metric <select id="metric">{options}</select> view <select id="view"><option value="raw">raw (per '
        'machine)</option><option value="normalised">normalised (every machine)</option></select> task '
        '<input id="task-filter" placeholder="filter"> <label><input type="checkbox" id="regressions"> regressions '
        'only</label> <span id="shown" class="small"></span></p><div id="charts"></div>'
    )
    best_part = contents.heading("Default against best", "default-against-best") + default_vs_best(df)
    stopped = sum(f.regression for f in broken)
    body = (
        f"<h1>bench history</h1><p>{runs} run(s), {df.commit.nunique() if len(df) else 0} commit(s), "
        f"{df.machine_id.nunique() if len(df) else 0} machine(s), {len(df)} rows; {len(raw)} raw series, "
        f"{len(normalised)} normalised; newest point flagged as a regression in {regressions[0]} raw series and "
        f"{regressions[1]} normalised "
        f"({threshold_words(t)}); {stopped} row(s) failed or timed out in their newest run after working before"
        + unflagged_words(broken)
        + ". A band is a point's 95% interval, ▲ a step, "
        "✕ a regressed newest point. Normalised: rates divided and times multiplied by the run's measured matmul "
        "speed (GFLOP/s), so a slower machine does not read as slower code; runs without a calibration are not in "
        "that view.</p>"
        + contents.html()
        + broken_part
        + charts_part
        + best_part
        + json_block("history-data", {"charts": charts})
    )
    style = "<style>.chart{height:320px;margin:6px 0;border:1px solid #eee}</style>"
    path = Path(store) / PAGE
    tmp = path.with_name(f".{PAGE}.{os.getpid()}.{secrets.token_hex(4)}.partial")  # two runs finishing at once
    try:
        tmp.write_text(page("bench history", style + body, (get_plotlyjs(), SCRIPT)), encoding="utf-8")
        tmp.replace(path)
    except BaseException:  # a full disk: no 3 MB .partial left behind for every failed run
        tmp.unlink(missing_ok=True)
        raise
    return path


def build(store: Path, t: Thresholds | None = None) -> Path:
    """Read the store, check every series and write the dashboard."""
    from bench.history import annotations
    from bench.history import store as history_store

    t = t or Thresholds()
    notes = annotations.read(store)
    df = history_store.load(store)
    nd = history_store.load(store, normalised=True)
    raw, normalised = check(df, notes, t), check(nd, notes, t, normalised=True)
    return write_dashboard(store, df, nd, raw, normalised, t, failures(df, notes))
