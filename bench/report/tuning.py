"""The tuning run's section of summary.md and its plot: each backend at its defaults and at its best.

Reads the final rows (``TASK.default`` / ``TASK.best``, the re-measurement in fresh processes)
and ``tune.json`` (the race: configurations, rungs, what was dropped and why, this machine's
capabilities). Every figure is computed from those files here, so ``bench report`` redoes it.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

import pandas as pd

from bench.core.placement import busy_words
from bench.core.preprocess import epoch_length
from bench.core.recipe import recorded
from bench.core.results import read_json_or_warn
from bench.core.runpaths import TUNE_FILE, plot_file, plot_name
from bench.measure.timing import MIN_TIME_DELTA_S
from bench.measure.tuning import (
    Trial,
    break_even,
    ci_method,
    floor_failure,
    process_spread,
    rate_ci,
    ratio_ci,
    ratio_text,
    side_rate,
    verdict,
    verdict_method,
)
from bench.report.backends import colour, label, ordered
from bench.report.plotting import PlotJob, backend_legend, save_figure
from bench.report.speedup import ONE_PROCESS, loaded, process_steps


def tuned_rows(records: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, list[dict[str, Any]]]]]:
    """{base task: {backend: {"default"|"best": [ok records]}}} of a tuning run's final rows."""
    out: dict[str, dict[str, dict[str, list[dict[str, Any]]]]] = {}
    for r in records:
        if r.get("config") in ("default", "best") and r.get("base_task") and r.get("workers") is None:
            out.setdefault(r["base_task"], {}).setdefault(r["backend"], {}).setdefault(r["config"], []).append(r)
    return out


def _ok(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r.get("status") == "ok" and r.get("steady_img_s")]


def _median(rows: list[dict[str, Any]], col: str) -> float | None:
    values = [r[col] for r in rows if isinstance(r.get(col), (int, float)) and not isinstance(r.get(col), bool)]
    return float(pd.Series(values).median()) if values else None


def epoch_steps(row: dict[str, Any]) -> int | None:
    """The steps (batches) one epoch of ``row`` trained, as its worker cut them (``bench.run.worker``'s
    ``epoch_length``): every image, the last batch partial, or with ``train.drop_last`` (the row's recorded recipe)
    its whole batches alone. None without the figures. The break-even's epochs divided by the partial batch too:
    "paid back after 60 steps (10.00 epochs)" where an epoch was 5 whole batches of 256, 12 epochs (QA, 2026-12-07)."""
    n, batch = _count_of(row.get("n_train")), _count_of(row.get("batch_size"))
    if not n or not batch:
        return None
    whole = recorded(row).get("train.drop_last") is True
    try:
        images = epoch_length(n, batch if whole else 0)
    except ValueError:  # no whole batch: the worker refused such a row
        return None
    return math.ceil(images / batch)


def _count_of(value: Any) -> int:
    """A whole positive count, however the record holds it (1400 or 1400.0); 0 for anything else."""
    ok = _positive(value) and float(value).is_integer()
    return int(value) if ok else 0


def _trial(rows: list[dict[str, Any]], config: str) -> Trial:
    acc = _median(rows, "test_acc")
    target = rows[0].get("target_acc") if rows else None
    reached = None if not target else all(r.get("time_to_target_s") is not None for r in rows)
    n_test = rows[0].get("n_test") if rows else None
    return Trial(config, "ok", test_acc=acc, n_test=n_test, reached_target=reached, is_default=config == "default")


def race_rates(log: dict[str, Any], task: str, backend: str) -> tuple[dict[str, list[float]], str | None]:
    """The throughputs (img/s) each configuration of ``task`` / ``backend``'s race ran at, one a rung it trained and
    was timed in (tune.json's trials: a fresh process each; a configuration that ran as another did counted once),
    and the race's winner (None: no race)."""
    pair = _pair(log, task, backend)
    rates: dict[str, list[float]] = {}
    for rung in pair.get("rungs") or []:
        for trial in rung.get("trials") or []:
            rate = trial.get("steady_img_s")
            if trial.get("status") == "ok" and not trial.get("duplicate_of") and _positive(rate):
                rates.setdefault(str(trial.get("label")), []).append(float(rate))
    return rates, (pair.get("winner") or {}).get("label")


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def backend_figures(
    rows: dict[str, list[dict[str, Any]]], race: dict[str, list[float]] | None = None, winner: str | None = None
) -> dict[str, Any] | None:
    """One backend's default vs best: throughputs, speed-up with its interval, floor, compile, break-even.
    ``race``, ``winner``: its race's processes of each configuration and the one that won (``race_rates``): with
    the fresh rows, the spread between processes a side of one process reads (``ratio_ci``'s ``spread``)."""
    d, b = _ok(rows.get("default", [])), _ok(rows.get("best", []))
    if not d or not b:
        return None
    same = not b[0].get("knob_config")
    groups = {label: list(rates) for label, rates in (race or {}).items()}
    raced_default = statistics.median(groups["default"]) if groups.get("default") else None
    if race:  # the fresh rows are processes of the race's default and winner too
        groups.setdefault("default", []).extend(r["steady_img_s"] for r in d)
        groups.setdefault("default" if same else str(winner), []).extend(r["steady_img_s"] for r in b)
    spread = process_spread(groups.values())
    speedup = ratio_ci(process_steps(b), process_steps(d), spread=spread)
    unproven = _unproven(speedup)
    default, best = _trial(d, "default"), _trial(b, "best")
    accs = (
        [r["test_acc"] for r in d if r.get("test_acc") is not None],
        [r["test_acc"] for r in b if r.get("test_acc") is not None],
    )
    floor = floor_failure(default, best, accs) if b[0].get("knob_config") else ""
    extra, steps = break_even(
        _median(d, "steady_img_s"),
        _median(b, "steady_img_s"),
        _median(d, "compile_s"),
        _median(b, "compile_s"),
        int(d[0].get("batch_size") or 1),
    )
    per_epoch = epoch_steps(d[0])
    # Where the defaults won the race, "best" is the default configuration measured in a second fresh process:
    # both verdicts read the two processes together, never the luckier one (the catsdogs-resnet101 reference:
    # Keras/TF's defaults twice, 1.09x [1.05, 1.14] apart, had made "at its best" 1.14x out of 1.04x).
    default_rows = d + b if same else d
    default_steps = process_steps(default_rows)
    keep_defaults = same or bool(floor) or unproven
    default_img_s, default_ci = _rate(d)
    best_img_s, best_ci = _rate(b)
    return {
        "default_processes": len(d),
        "best_processes": len(b),
        "default_img_s": default_img_s,
        "best_img_s": best_img_s,
        "default_ci": default_ci,
        "best_ci": best_ci,
        "speedup": speedup,
        "speedup_method": ci_method(process_steps(b), process_steps(d), groups=_groups(d + b), spread=spread),
        "race_groups": groups,  # each configuration's processes, the race's and the fresh rows': the verdicts' spread
        "knobs": b[0].get("knob_config") or "the defaults",
        "default_acc": default.test_acc,
        "best_acc": best.test_acc,
        "floor": floor,
        "compile_extra_s": extra,
        "break_even_steps": steps,
        "break_even_epochs": None if steps is None or not per_epoch else steps / per_epoch,
        "default_steps": default_steps,
        "defaults_twice": same,  # default_steps holds the "best" rows too: the defaults measured again
        # The race picks the fastest of many noisy trials; the fresh processes measure it again. A best that
        # fails the floor, or that they do not measure faster than the default (the interval's low end at or
        # below 1), is not chosen: the defaults stand, and no knob is credited with noise.
        "unproven": unproven,
        "chosen_steps": default_steps if keep_defaults else process_steps(b),
        "chosen": "default" if keep_defaults else "best",
        # the rows each verdict reads, for the load they were timed at (``verdict_lines``)
        "default_rows": default_rows,
        "chosen_rows": default_rows if keep_defaults else b,
        "raced_default": raced_default,  # the race's processes of the defaults, their median img/s (None: no race)
        "raced_default_processes": len((race or {}).get("default") or []),
    }


def task_figures(
    by_backend: dict[str, dict[str, list[dict[str, Any]]]], log: dict[str, Any], task: str
) -> dict[str, dict[str, Any]]:
    """``backend_figures`` of each backend of ``task`` that has them, in the report's order, each with its race's
    processes (tune.json, ``log``)."""
    out = {}
    for b in ordered(list(by_backend)):
        if (f := backend_figures(by_backend[b], *race_rates(log, task, b))) is not None:
            out[b] = f
    return out


def _groups(rows: list[dict[str, Any]]) -> str:
    """What ``process_steps`` of these rows holds one list of step rates per: fresh processes, or synchronised
    stretches where a row's steps were dispatched asynchronously (``bench.measure.stats.samples``)."""
    stretches = any(len(process_steps([r])) > 1 for r in rows)
    if len(rows) > 2:  # a default and a best row are one process a side
        return "synchronised stretches of the fresh processes" if stretches else "fresh processes"
    return "synchronised stretches (steps dispatched asynchronously)" if stretches else "processes"


def _rate(rows: list[dict[str, Any]]) -> tuple[float | None, tuple[float | None, float | None]]:
    """A configuration's throughput and its 95% interval: the row's own in one fresh process; over several (a short
    window measured again, or --repeats), the geometric mean of the processes' rates with Student's t over them
    (bench.measure.tuning.rate_ci): the spread between processes in the interval, not the median of each
    process's interval."""
    if len(rows) > 1 and (over := rate_ci(process_steps(rows))) is not None:
        return over[0], (over[1], over[2])
    return _median(rows, "steady_img_s"), (_median(rows, "steady_img_s_ci_lo"), _median(rows, "steady_img_s_ci_hi"))


def _unproven(speedup: tuple[float, float, float] | None) -> bool:
    return speedup is None or speedup[1] <= 1.0


def standing(f: dict[str, Any], unraced: bool = False) -> str:
    """Which configuration the verdict reads for one backend's figures (``backend_figures``), and why the defaults
    where they stand: a race's winner that lost in the fresh processes was drawn as the winner in the table and the
    chart, a bullet under them alone saying its defaults stood (QA, 2026-12-06)."""
    if f["chosen"] == "best":
        return "best"
    if unraced:
        why = "no race"
    elif f["defaults_twice"]:
        why = "measured twice"
    elif f["floor"]:
        why = "best below the accuracy floor"
    elif f["speedup"] is not None and f["speedup"][2] < 1.0:
        why = "best slower"
    else:
        why = "best not measured faster"
    return f"the defaults ({why})"


def standings(records: list[dict[str, Any]], run_dir: Path) -> dict[tuple[str, str], str]:
    """Per (task, backend) of a tune, which configuration its verdict reads (``standing``), as summary.md's table
    says it; {} for a run with no tuned rows. The history keeps it beside the "best" rows: its dashboard listed a
    tune's best configuration as the best where the tune had measured it no faster and its defaults stood."""
    rows = tuned_rows(records)
    if not rows:
        return {}
    log = read_json_or_warn(run_dir / TUNE_FILE)
    unraced = _unraced(log)
    return {
        (task, b): standing(f, b in unraced)
        for task, by_backend in rows.items()
        for b, f in task_figures(by_backend, log, task).items()
    }


def _bold(text: str, chosen: bool) -> str:
    return f"**{text}**" if chosen and text != "-" else text


def _fmt_ci(v: float | None, ci: tuple[float | None, float | None]) -> str:
    if v is None:
        return "-"
    lo, hi = ci
    return f"{v:,.1f}" + (f" [{lo:,.1f}, {hi:,.1f}]" if lo is not None and hi is not None else "")


def break_even_words(f: dict[str, Any]) -> str:
    """The compile cost and break-even cell: the extra first-step seconds and the steps that pay them back. An
    extra within the time floor is a single timing's scheduler noise (``MIN_TIME_DELTA_S``), not a cost: it read
    "+0.0s, paid back after 1 steps" (QA, 2026-12-06: 4 ms of a bf16 configuration's first step)."""
    extra, steps, epochs = f["compile_extra_s"], f["break_even_steps"], f["break_even_epochs"]
    if f.get("knobs") == "the defaults":
        return "- (the defaults, measured twice)"
    if extra is None:
        return "-"
    if steps == 0:
        return "no extra first-step cost"
    if extra <= MIN_TIME_DELTA_S:
        return f"no extra first-step cost (+{_duration(extra)}: noise, under the {MIN_TIME_DELTA_S * 1e3:g} ms floor)"
    if steps is None:
        return f"+{_duration(extra)} never paid back (steps no faster)"
    paid = f"+{_duration(extra)}, paid back after {steps:,} step{'' if steps == 1 else 's'}"
    if not epochs:
        return paid
    return paid + (f" ({epochs:.2f} epochs)" if epochs >= 0.005 else " (under 0.01 epochs)")


def _duration(seconds: float) -> str:
    """A cost in seconds as read: "85 ms" under a tenth of a second (where "0.0s" said nothing), else "2.3s"."""
    return f"{seconds * 1e3:.0f} ms" if seconds < 0.1 else f"{seconds:.1f}s"


def verdict_lines(figures: dict[str, dict[str, Any]]) -> list[str]:
    """At defaults and each at its best: the fastest backend against the next, with the ratio's interval."""
    lines = []
    for stage, steps_key, what in (("at defaults", "default_steps", ""), ("each at its best", "chosen_steps", "best")):
        ranked = sorted(
            ((b, f) for b, f in figures.items() if f[steps_key]),
            key=lambda bf: -side_rate(bf[1][steps_key]),
        )
        if len(ranked) < 2:
            continue
        (fb, ff), (sb, sf) = ranked[0], ranked[1]
        # a side of one process: the spread between processes of the two backends' races (and fresh rows), one machine
        spread = process_spread([*(ff.get("race_groups") or {}).values(), *(sf.get("race_groups") or {}).values()])
        text = verdict(label(fb), label(sb), ratio_ci(ff[steps_key], sf[steps_key], spread=spread))
        counts = len(ff[steps_key]), len(sf[steps_key])
        # the interval's method, as the table's sentence says it
        notes = [verdict_method(ff[steps_key], sf[steps_key], spread=spread)]
        if min(counts) < 2 and spread is None:
            notes.append(ONE_PROCESS)  # what one process leaves out
        elif max(counts) == 1:
            notes.append("one process a side")  # the method says where its spread between processes came from
        if max(counts) > 1:  # how many processes, and why more than the task's default table holds (its sentence
            # reads those): with the defaults measured twice on one side and once on the other, the line said only
            # "one process a side" beside a ratio that was not the table's (QA, 2026-12-06)
            twice = [label(b) for b, f in ranked[:2] if f.get("defaults_twice") and f[steps_key] is f["default_steps"]]
            notes.append(
                f"{counts[0]} and {counts[1]} processes"
                + (
                    f"; {' and '.join(twice)}: the defaults' rows and their second measurement as 'best', read "
                    "together, so this can differ from the sentence under the default table"
                    if twice
                    else ""
                )
            )
        # the load the two sides were timed at, as the sentence under a task's table names it: a verdict on a machine
        # loaded beyond its cores said nothing of it where that sentence did (QA, 2026-12-06: "at defaults: Keras
        # (TF) 11.68x faster" at load 6 on 2 cores, the race's PyTorch defaults 3.2x faster minutes before)
        rows_key = steps_key.replace("_steps", "_rows")
        busy = loaded({b: f.get(rows_key) or [] for b, f in ranked[:2]})
        notes += [busy] if busy else []
        text += f" ({'; '.join(notes)})"
        if what:
            chosen = "; ".join(
                f"{label(b)}: {f['knobs'] if f['chosen'] == 'best' else 'the defaults'}" for b, f in ranked
            )
            text += f" ({chosen})"
        lines.append(f"- **{stage}**: {text}")
    return lines


def _minutes(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def section(records: list[dict[str, Any]], run_dir: Path) -> str:
    rows = tuned_rows(records)
    if not rows:
        return ""
    log = read_json_or_warn(run_dir / TUNE_FILE)
    caps = (log.get("capabilities") or {}).get("how") or {}
    out = [
        "## Each framework at its best",
        "",
        "Each backend raced the configurations of its own knobs that this machine runs (successive halving on the "
        "step throughput, an accuracy floor against the default; docs/tuning.md); the winner and the default were "
        "then trained again, in fresh processes, with the task's recipe: the figures below are that second "
        "measurement, never the race's. Speed-up: best / default images per second over the timed steps, with "
        "its 95% interval (the method under each task's table).",
        "",
    ]
    if caps:
        out += ["This machine: " + "; ".join(f"{k}: {v}" for k, v in caps.items()) + ".", ""]
    if isinstance(race := log.get("race_s"), int | float) and isinstance(budget := log.get("budget_s"), int | float):
        out += [
            f"The race took {_minutes(race)} of the tune's {_minutes(budget)} budget; the wall time at the head "
            "of this summary is the fresh rows' after it.",
            "",
        ]
    for task, by_backend in rows.items():
        figures = task_figures(by_backend, log, task)
        out += [f"### {task}", ""]
        if figures:
            table = pd.DataFrame(
                [
                    {
                        "backend": label(b),
                        # the figures the verdict reads are in bold: the race's winner is not one where it lost
                        "default img/s [95% CI]": _bold(
                            _fmt_ci(f["default_img_s"], f["default_ci"]), f["chosen"] == "default"
                        ),
                        "best img/s [95% CI]": _bold(  # the defaults measured twice: both rows are read
                            _fmt_ci(f["best_img_s"], f["best_ci"]), f["chosen"] == "best" or f["defaults_twice"]
                        ),
                        "best / default": "-" if f["speedup"] is None else ratio_text(*f["speedup"]),
                        "race's winner": "none (no race)" if b in _unraced(log) else f["knobs"],
                        "stands, measured again": standing(f, b in _unraced(log)),
                        "test acc default → best": f"{f['default_acc']:.4f} → {f['best_acc']:.4f}"
                        if f["default_acc"] is not None and f["best_acc"] is not None
                        else "-",
                        "compile cost, break-even": break_even_words(f),
                    }
                    for b, f in figures.items()
                ]
            )
            out += [table.to_markdown(index=False), "", *method_lines(figures), ""]
            out += [*verdict_lines(figures), "", *stand_lines(figures, log, task)]
        missing = [b for b in by_backend if b not in figures]
        for b in missing:
            bad = [r for rs in by_backend[b].values() for r in rs if r.get("status") != "ok"]
            why = "; ".join(f"{r.get('config')}: {r.get('status')}: {r.get('error')}" for r in bad) or "no timed steps"
            out.append(f"- {label(b)}: no default/best comparison ({why})")
        out += remeasured_lines(log, task)
        out += race_lines(log, task)
        out += [""] + [
            line
            for pair in log.get("pairs") or []
            if isinstance(pair, dict) and pair.get("task") == task
            for line in race_table(pair)
        ]
        out += ["", f"![default and best]({plot_name('tuned', task)})", ""]
    return "\n".join(out) + "\n"


def method_lines(figures: dict[str, dict[str, Any]]) -> list[str]:
    """How the best / default intervals of a task's table were computed, backends grouped by method: one process
    a side is the bootstrap over its steps, several on a side Student's t over the processes (``ci_method``)."""
    by_method: dict[str, list[str]] = {}
    for b, f in figures.items():
        if f["speedup"] is not None:
            by_method.setdefault(f["speedup_method"], []).append(label(b))
    if not by_method:
        return []
    return [
        "Intervals of best / default: "
        + "; ".join(f"{method}: {', '.join(names)}" for method, names in by_method.items())
        + ". With several processes on a side, that side's img/s interval is Student's t over its processes too; "
        "with one, the row's own (the headline's)."
    ]


# A fresh default process this many times off the race's own processes of the defaults ran at another speed than
# the configuration has: fresh processes of one row run 5-15% apart here (docs/timing.md), a race's shorter rungs a
# little more. QA, 2026-12-07: PyTorch's fresh default at 1,047.8 img/s under load 2.7, where the race had measured
# its defaults at 17,972, and the tune's verdicts rested on it without a word.
RACE_MISMATCH = 3.0


def mismatch_line(b: str, f: dict[str, Any]) -> str | None:
    """The line that says a backend's fresh default process ran far off the race's processes of the same defaults."""
    fresh, raced = f["default_img_s"], f.get("raced_default")
    if not fresh or not raced or max(fresh / raced, raced / fresh) < RACE_MISMATCH:
        return None
    rows = f["default_rows"]
    busy = busy_words(rows)
    way = "slower" if fresh < raced else "faster"
    return (
        f"- {label(b)}: its fresh default process ran at {fresh:,.1f} img/s, {max(fresh / raced, raced / fresh):.1f}x "
        f"{way} than the race's {_processes_words(f['raced_default_processes'])} of the same defaults "
        f"({raced:,.1f} img/s)"
        + (f", {busy}" if busy else "")
        + ": one process's speed, not the configuration's, and the verdicts read it: run the tune again on a "
        "quieter machine, or with --repeats 3"
    )


def _processes_words(n: int) -> str:
    return "process" if n == 1 else f"{n} processes (median)"


def stand_lines(figures: dict[str, dict[str, Any]], log: dict[str, Any], task: str) -> list[str]:
    """Per backend, why its defaults stand in the verdict at its best, where they do; and where its fresh default
    process ran far off the race's of the same defaults (``mismatch_line``)."""
    out = [line for b, f in figures.items() if (line := mismatch_line(b, f))]
    for b, f in figures.items():
        if f["floor"]:
            out.append(
                f"- {label(b)}: the re-measured best fails the accuracy floor ({f['floor']}): "
                "its defaults stand in the verdict"
            )
        elif f["knobs"] == "the defaults" and f["speedup"] is not None:
            how = (
                f"stand: no race ({why})"
                if (why := _unraced(log).get(b))
                else "won the race"
                if _finished(_pair(log, task, b)) or not log
                else "stand: no race trial finished"
            )
            out.append(
                f"- {label(b)}: the defaults {how}; measured as default and as best in fresh processes "
                f"({f['default_processes']} and {f['best_processes']}) they ran {ratio_text(*f['speedup'])} apart "
                "(the spread between processes), and both verdicts read them together"
            )
        elif f["unproven"] and f["knobs"] != "the defaults" and f["speedup"] is not None:
            out.append(
                f"- {label(b)}: the race's winner ({f['knobs']}) was not measured faster than the defaults "
                f"when run again in a fresh process (best / default {ratio_text(*f['speedup'])}): its defaults "
                "stand in the verdict"
            )
    return out


def terminal_lines(records: list[dict[str, Any]], run_dir: Path) -> list[str]:
    """The tune's verdicts for the terminal, per task: the ``TASK.best`` table's sentence compares the best rows as
    they ran, where a winner the fresh processes did not measure faster (or below the floor) is not chosen; only
    summary.md said so (QA, 2026-12-06: "17.69x faster" under the table, 12.89x in the verdict)."""
    rows = tuned_rows(records)
    log = read_json_or_warn(run_dir / TUNE_FILE) if rows else {}
    out = []
    for task, by_backend in rows.items():
        figures = task_figures(by_backend, log, task)
        lines = [*verdict_lines(figures), *stand_lines(figures, log, task)]
        if lines:
            out += ["", f"== {task}: each framework at its best (summary.md, docs/tuning.md) ==", ""]
            out += ["  " + line.removeprefix("- ").replace("**", "") for line in lines]
    return out


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def remeasured_lines(log: dict[str, Any], task: str) -> list[str]:
    """The fresh rows measured again because their timed window was short (bench.run.tune.MIN_PROCESSES), and their
    partners (the same backend's other configuration) measured as often."""
    lines = []
    for entry in log.get("remeasured") or []:
        if not isinstance(entry, dict) or entry.get("task") != task:
            continue
        added, processes = _count(entry.get("added")), _count(entry.get("processes"))  # tune.json: any JSON
        wanted = _count(entry.get("wanted"))  # 0 in a tune.json from before 2026-12-05: not said then
        short = f", of the {wanted} wanted: the budget ran out" if added and processes + added < wanted else ""
        who = f"{label(str(entry.get('backend')))} {entry.get('config')}"
        if entry.get("partner"):
            head = f"- {who}: its {entry.get('partner')} row was measured again (a short window)"
            lines.append(
                f"{head}, so this one was measured in {processes + added} fresh processes in all ({added} added"
                f"{short}): best / default reads processes against processes"
                if added
                else f"{head}, and the budget left no time to measure this one as often"
            )
            continue
        head = f"- {who}: its timed window was short ({entry.get('windows')})"
        if added:
            lines.append(
                f"{head}, so it was measured in {processes + added} fresh processes in all ({added} added after the "
                f"others, chosen by the window's length, not by the verdict{short}); its figures and intervals read "
                "them together"
            )
        else:
            lines.append(f"{head}, and the budget left no time to measure it again: `--repeats 3` narrows its interval")
    return lines


def race_lines(log: dict[str, Any], task: str) -> list[str]:
    """What each race did: configurations, skipped ones and why, rungs, the winner, where the trials are; and each
    backend that had none to run (``--knobs`` named none of its knobs: bench.run.tune.unraced)."""
    lines = [f"- race, {label(b)}: none ({why}); its best row runs its defaults" for b, why in _unraced(log).items()]
    for pair in log.get("pairs") or []:
        if not isinstance(pair, dict) or pair.get("task") != task:
            continue
        rungs = pair.get("rungs") or []
        # below the floor where it last ran: an earlier, shorter rung may have judged otherwise (bench.measure.tuning)
        last = {t.get("label"): r for r in rungs for t in r.get("trials") or []}
        floor = sorted(c for c, r in last.items() if c in (r.get("below_floor") or {}))
        at_last = {t.get("label"): t for r in rungs for t in r.get("trials") or []}
        untimed = [c for c, t in at_last.items() if _untimed(t) and not t.get("duplicate_of")]
        # a configuration whose worker ran another's (bench.run.tune.duplicated) is one configuration, not two
        twins = {
            t.get("label"): t["duplicate_of"] for r in rungs for t in r.get("trials") or [] if t.get("duplicate_of")
        }
        dropped = sum(len(set(r.get("dropped") or {}) - set(twins)) for r in rungs)
        winner = (pair.get("winner") or {}).get("label", "-")
        if not _finished(pair):
            winner = "none (no configuration finished a trial: the defaults stand)"
        lines.append(
            f"- race, {label(str(pair.get('backend')))}: {len(pair.get('configs') or []) - len(twins)} configurations"
            + (f" ({'; '.join(f'{a} ran as {b}' for a, b in twins.items())}: counted once)" if twins else "")
            + f", {len(rungs)} rung(s) ({', '.join(str(r.get('epochs')) for r in rungs)} epochs), {dropped} dropped"
            + (f", below the accuracy floor: {'; '.join(floor)}" if floor else "")
            + (f", {len(untimed)} with {UNTIMED} (the table names them)" if untimed else "")
            + f"; winner: {winner}"
            + (f"; {pair['tie']}" if pair.get("tie") and _finished(pair) else "")  # not shown faster (tuning.tie)
            + (
                f"; skipped here: {'; '.join(s.get('why', '') for s in pair.get('skipped') or [])}"
                if pair.get("skipped")
                else ""
            )
            + (f"; {pair['stopped']}" if pair.get("stopped") else "")
            + (f" (trials: `{rungs[0].get('folder', '')}`...)" if rungs else "")
        )
    return lines


def _unraced(log: dict[str, Any]) -> dict[str, str]:
    """The backends the tune raced nothing of, each with why (tune.json's ``unraced``; none in a tune before it)."""
    said = log.get("unraced")
    return {str(b): str(why) for b, why in said.items()} if isinstance(said, dict) else {}


def _finished(pair: dict[str, Any]) -> bool:
    """Whether the race's last rung had a leader: some configuration trained, timed and kept the floor."""
    rungs = pair.get("rungs") or []
    return bool(rungs) and rungs[-1].get("leader") is not None


def _pair(log: dict[str, Any], task: str, backend: str) -> dict[str, Any]:
    return next(
        (
            p
            for p in log.get("pairs") or []
            if isinstance(p, dict) and (p.get("task"), p.get("backend")) == (task, backend)
        ),
        {},
    )


UNTIMED = "no throughput measured"


def _untimed(trial: dict[str, Any]) -> bool:
    """A trial that trained and tested but timed no step (a rung shorter than an execution of steps_per_execution
    and the warm-up): it read "raced to the end" beside those that raced on their throughput (QA, 2026-12-07)."""
    return trial.get("status") == "ok" and not _positive(trial.get("steady_img_s"))


def race_table(pair: dict[str, Any]) -> list[str]:
    """Every configuration of one race at the last rung it ran in: its figures and what became of it."""
    last: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for rung in pair.get("rungs") or []:
        for trial in rung.get("trials") or []:
            last[trial.get("label")] = (rung, trial)
    winner = (pair.get("winner") or {}).get("label")
    finished = _finished(pair)
    rows = []
    for label_, (rung, trial) in last.items():
        lo, hi = trial.get("steady_img_s_ci_lo"), trial.get("steady_img_s_ci_hi")
        if label_ == winner and finished:
            outcome = "**winner**"
        elif label_ == winner:  # nothing finished: the defaults stand, without having won anything
            why = (rung.get("dropped") or {}).get(label_, "no result")
            outcome = f"{why} (no configuration finished: the defaults stand)"
        elif label_ in (rung.get("below_floor") or {}):
            outcome = f"below the accuracy floor: {rung['below_floor'][label_]}"
            outcome += f"; {UNTIMED}" if _untimed(trial) else ""
        elif label_ in (rung.get("dropped") or {}):
            outcome = f"dropped: {rung['dropped'][label_]}"
        elif _untimed(trial):
            outcome = f"{UNTIMED} (its {rung.get('epochs')} epoch(s) ended within the first step and the warm-up)"
        else:
            outcome = "raced to the end"
        acc = trial.get("test_acc")
        control = next((t for t in rung.get("trials") or [] if t.get("label") == "default"), None)
        paid = "-"
        if control is not None and label_ != "default":
            extra, steps = break_even(
                control.get("steady_img_s"),
                trial.get("steady_img_s"),
                control.get("compile_s"),
                trial.get("compile_s"),
                int(pair.get("batch_size") or 1),
            )
            paid = break_even_words({"compile_extra_s": extra, "break_even_steps": steps, "break_even_epochs": None})
        rows.append(
            {
                "configuration": label_,
                "rung (epochs)": f"{rung.get('rung')} ({rung.get('epochs')})",
                "img/s [95% CI]": _fmt_ci(trial.get("steady_img_s"), (lo, hi)),
                "first step (s)": "-" if trial.get("first_step_s") is None else f"{trial['first_step_s']:.2f}",
                "test acc": "-" if acc is None else f"{acc:.4f}",
                "compile cost vs default, break-even": paid,
                "outcome": outcome,
            }
        )
    if not rows:
        return []
    title = f"race, {label(str(pair.get('backend')))}: every configuration at the last rung it ran in"
    return [
        "<details><summary>" + title + "</summary>",
        "",
        pd.DataFrame(rows).to_markdown(index=False),
        "",
        "</details>",
        "",
    ]


def plot_tuned(figures: dict[str, dict[str, Any]], task: str, path: Path) -> bool:
    """Default and best throughput per backend, whiskers = the 95% intervals. The bar the verdict reads (``chosen``)
    is drawn full and named under the backend; the other faded: a best that lost to its defaults measured again
    was drawn as the winner (QA, 2026-12-06)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    if not figures:
        return False
    backends = list(figures)
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    x = np.arange(len(backends))
    bars = (-0.2, "default_img_s", "default_ci", "", "default"), (0.2, "best_img_s", "best_ci", "//", "best")
    for offset, key, ci, hatch, config in bars:
        vals = [figures[b][key] or 0 for b in backends]
        err = [
            [max(0.0, v - (figures[b][ci][0] or v)) for b, v in zip(backends, vals, strict=True)],
            [max(0.0, (figures[b][ci][1] or v) - v) for b, v in zip(backends, vals, strict=True)],
        ]
        drawn = ax.bar(
            x + offset,
            vals,
            0.4,
            yerr=err,
            capsize=3,
            color=[colour(b) for b in backends],
            hatch=hatch,
            edgecolor="black",
            label=config,
        )
        for bar, b in zip(drawn, backends, strict=True):
            bar.set_alpha(1.0 if figures[b]["chosen"] == config else FADED)
    ax.set_xticks(x, [f"{label(b)}\n{STANDS[figures[b]['chosen']]}" for b in backends])
    # two lines: on one, a 7-inch figure cut the title off at "best (hatche"
    ax.set_title(
        f"{task}: headline training throughput (img/s, ± 95% CI)\ndefault (plain), best (hatched); faded: not chosen"
    )
    ax.grid(axis="y", alpha=0.3)
    backend_legend(fig, backends)
    return save_figure(fig, path, dpi=110, tight=False)


FADED = 0.3  # the alpha of the bar the verdict does not read
STANDS = {"best": "best stands", "default": "defaults stand"}  # under each backend's bars (``standing``)


def plot_jobs(records: list[dict[str, Any]], run_dir: Path) -> list[PlotJob]:
    jobs: list[PlotJob] = []
    rows = tuned_rows(records)
    log = read_json_or_warn(run_dir / TUNE_FILE) if rows else {}
    for task, by_backend in rows.items():
        figures = task_figures(by_backend, log, task)
        jobs.append((plot_tuned, (figures, task, plot_file(run_dir, "tuned", task))))
    return jobs
