"""`bench tune`: each backend at its best, found by a race over its own knobs, then measured afresh.

For each (task, backend): every configuration of the backend's knob space that this machine can
run (``bench.core.knobs``, ``bench.core.capabilities``) trains the task for a short window
(rung 0: one epoch); ``bench.measure.tuning.decide`` keeps at most half, by the headline
throughput, dropping at once whoever's interval lies below the leader's and whoever loses accuracy
against the default; survivors train twice as long in the next rung, while the budget allows. A
throughput without an interval is not ranked while the budget holds a longer rung (``Tuner._decide``):
its window grows with the rungs' epochs until it has one. Each rung is an ordinary run of the
runner (its own folder under ``trials/``, one fresh worker process per configuration, records, logs
and a summary of its own), so nothing here times anything; the rungs' worker servers stay warm for
the next rung and the final rows (``shared_servers``).

The race's measurements choose; they are not reported. The winner and the default are then run
again, in fresh processes, as the task's full training recipe (rows ``TASK.default`` and
``TASK.best``, the winners as ``[knobs.BACKEND]``): picking the best of many noisy figures and
reporting that figure would overstate it. The explain, decouple and transfer phases are left out
of tuning runs: they measure the trained model, not the knobs (``bench run`` measures them).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backends import describe, names
from bench.core.capabilities import probe
from bench.core.cpus import usable_cores
from bench.core.knobs import Config, Knob, configurations, threads_for
from bench.core.results import TUNING_BUDGET_SPENT, latest_records, read_json_object, read_records
from bench.core.runfiles import make_folder
from bench.core.runpaths import TRIALS, TUNE_FILE
from bench.core.spec import TaskSpec
from bench.measure import steady
from bench.measure.tuning import Decision, Trial, decide, tie
from bench.report.summary import write_reports
from bench.run import history_cli
from bench.run.executors.devices import slot_share
from bench.run.executors.remote import stopped_words
from bench.run.plan import RunOptions, write_plan
from bench.run.recipe_cli import KEYS, options_of
from bench.run.resume import RACE_NOT_RESUMED
from bench.run.runfolder import STATE, new_run_dir, write_json
from bench.run.runner import execute, run_environment
from bench.run.tune_budget import RACE_SHARE, FreshResize, TuneBudget, end_line, race_costs, spendable_s, unplanned
from bench.run.workers import shared_servers

MAX_RUNGS = 4  # rung r trains 2**r epochs (capped at the task's own): 1, 2, 4, 8
MIN_TRIAL_TIMEOUT_S = 120.0  # a trial may compile for that long where its pair's share holds it (max-autotune, CPU)
# A fresh row whose timed window is shorter than the window rule asks (Keras/TF's steps_per_execution 32 on
# cifar10-cnn's quick recipe: 12 timed calls, an interval of +-30%, "no significant difference" at its best on the
# AMD VM) is measured again in fresh processes, up to this many in all, while the tune's budget lasts: the verdict
# then reads the spread between the processes (Student's t over them, bench.measure.tuning.ratio_ci), and from two
# its quantile of 12.7 leaves an interval too wide to decide anything. Chosen by the window's length alone, never
# by the verdict: measuring again until a difference shows would make one.
MIN_PROCESSES = 3


def pair_share(race_s: float, elapsed_s: float, index: int, pairs: int) -> float:
    """The seconds pair ``index`` of ``pairs`` may race from now, when the races have ``race_s`` in all (counted
    from the tune's start) and ``elapsed_s`` is gone: an equal split of what is left (what earlier pairs left
    unspent goes to the pairs after them), but never into the whole planned share of a pair after it. Its rung 0
    may start configurations until its share is spent, and every trial is stopped there (``Tuner._run``), so no
    pair's overrun is a later pair's, nor the fresh rows'. Until 2026-12-07 rung 0 started configurations until
    1.5 times its share, a trial ran up to 2 minutes past it, and a later pair kept half its share: a 100 s tune of
    a tiny task at load 5 on 2 cores raced 119 s of its planned 70 (one torch.compile trial of 59 s), Keras/TF
    kept 18 s of its 35, and the default and best rows, 0 s left, were left out: no verdict."""
    planned = race_s / max(1, pairs)
    later = max(0, pairs - index - 1)
    left = race_s - elapsed_s
    return max(0.0, min(left / (later + 1), left - planned * later))


def searched(space: tuple[Knob, ...], only: tuple[str, ...]) -> tuple[Knob, ...]:
    """The knobs of ``space`` named in ``only`` (all when empty); the others stay at their defaults."""
    return tuple(k for k in space if not only or k.name in only)


def row_cores(opts: RunOptions) -> int | None:
    """The cores each row gets where they are not this process's usable cores: with ``--executor devices``, its
    slot's share (bench.run.executors.devices); under slurm, the cores each job asks (``--slurm-cpus``; under
    ``--slurm-local`` that many of this machine's, all of them without it), where the jobs run; None elsewhere (the
    rows run on this process's cores, or under ray on nodes whose cores the plan does not know: ``duplicated`` finds
    what that leaves)."""
    if opts.executor == "devices":
        return slot_share(len(opts.devices) or 1)
    if opts.executor == "slurm" and opts.slurm_local:
        return min(opts.slurm_cpus or usable_cores(), usable_cores())
    if opts.executor == "slurm":
        return opts.slurm_cpus
    return None


REMOTE_EXECUTORS = ("ray", "slurm")  # the rows run on machines this process cannot see


def race_space(backend: str, only: tuple[str, ...], cores: int | None, remote: bool = False) -> tuple[Knob, ...]:
    """The knobs a race of ``backend`` searches (``searched``), its threads knob sized to the cores each row gets
    (``row_cores``): "half the cores" is half a slot's where the rows run in slots, and with ``remote`` (ray,
    slurm) half the cores of the worker each row runs in, resolved there."""
    return searched(threads_for(describe(backend).knob_space, cores, remote), only)


THREAD_FIELDS = ("threads", "threads_share")  # the runtime fields of the threads knob (bench.core.knobs)


def duplicated(alive: list[str], by_label: dict[str, Config], records: dict[str, dict[str, Any]]) -> dict[str, str]:
    """label -> the configuration it ran as: a configuration whose threads its row's worker resolved
    (``threads_share``: half that worker's cores) and whose record ran the thread count of an earlier one of
    ``alive`` with the same other knobs (a 2-core worker's "half" is 1). Known only once the rows ran (ray's nodes),
    so the race counts it once: the verdict reads the earlier, and the trial says whose it was."""
    seen: dict[tuple[Any, ...], str] = {}
    out: dict[str, str] = {}
    for label in alive:
        rec = records.get(label) or {}
        threads = rec.get("threads")
        if rec.get("status") != "ok" or not isinstance(threads, int) or isinstance(threads, bool):
            continue
        runtime = dict(by_label[label].runtime)
        key = (tuple((k, v) for k, v in sorted(runtime.items()) if k not in THREAD_FIELDS), threads)
        if key in seen and runtime.get("threads_share"):
            out[label] = seen[key]
        else:
            seen.setdefault(key, label)
    return out


def knob_owners(knob: str, backends: tuple[str, ...]) -> list[str]:
    """The ones of ``backends`` that declare ``knob`` (``BackendInfo.knob_space``), in their order."""
    return [b for b in backends if any(k.name == knob for k in describe(b).knob_space)]


def _listed(backends: list[str], last: str = "and") -> str:
    """ "torch", "torch and keras", "torch, keras and keras-jax"."""
    return f" {last} ".join(x for x in (", ".join(backends[:-1]), backends[-1]) if x) if backends else "none"


def check_knob_names(only: tuple[str, ...], backends: tuple[str, ...]) -> None:
    """ValueError naming a ``--knobs`` entry that none of ``backends`` has: whose knob it is (QA, 2026-12-06:
    ``--backend keras --knobs fused_optimizer`` read "unknown knob", though torch has it), or that no backend has it,
    and the knobs ``backends`` have."""
    unknown = [n for n in only if not knob_owners(n, backends)]
    if not unknown:
        return
    whose = [
        f"{n} is a knob of {_listed(owners)}, not of {_listed(list(backends), 'or')}"
        if (owners := knob_owners(n, names()))
        else f"{n} is no backend's knob"
        for n in unknown
    ]
    known = sorted({k.name for b in backends for k in describe(b).knob_space})
    raise ValueError(
        f"--knobs: {'; '.join(whose)} (the knobs of {_listed(list(backends))}: {', '.join(known) or 'none'})"
    )


def _others(only: tuple[str, ...], backend: str, backends: tuple[str, ...]) -> list[str]:
    """The ``--knobs`` entries ``backend`` lacks, each as whose knob it is among ``backends``."""
    return [f"{n} is a knob of {_listed(knob_owners(n, backends))}" for n in only if not knob_owners(n, (backend,))]


def unraced(only: tuple[str, ...], backends: tuple[str, ...]) -> dict[str, str]:
    """The ones of ``backends`` of whose knobs ``--knobs`` (``only``) names none, each with why. Their race would be
    of the defaults alone, one configuration the defaults "won" (until 2026-12-06 it ran, said nothing of why, and
    the summary said the defaults won it): they have none, and their best row runs the defaults."""
    return {
        b: f"--knobs {'; '.join(_others(only, b, backends))}, none of its own"
        for b in backends
        if only and not searched(describe(b).knob_space, only)
    }


def knob_lines(only: tuple[str, ...], backends: tuple[str, ...]) -> list[str]:
    """What the tune's start says, once, of each backend that lacks some of the knobs ``--knobs`` names: which it
    searches, or that it has no race (its best row is its defaults); [] when every backend has every knob named."""
    none = unraced(only, backends)
    return [
        f"tune: {b}: {none[b]}; no race, its best row runs its defaults"
        if b in none
        else f"tune: {b}: searches {', '.join(n for n in only if knob_owners(n, (b,)))} of --knobs; {'; '.join(lacks)}"
        for b in backends
        if (lacks := _others(only, b, backends))
    ]


def lean(task: TaskSpec) -> TaskSpec:
    """The task's training alone: no Grad-CAM, saliency, decoupled features or transfer (see the module doc)."""
    return dataclasses.replace(
        task,
        explain=dataclasses.replace(task.explain, gradcam=False, saliency=False),
        decouple=dataclasses.replace(task.decouple, enabled=False),
        transfer=(),
        runtime=dataclasses.replace(task.runtime, profile_ops=False),
    )


def config_spec(task: TaskSpec, backend_knobs: dict[str, Config], tag: str, epochs: int | None = None) -> TaskSpec:
    """``task`` as configuration ``tag``: a row name of its own, each backend's knobs as ``[knobs.BACKEND]``."""
    base = lean(task)
    name = f"{task.name[: 63 - len(tag)]}.{tag}"
    knobs = tuple(sorted((b, c.runtime) for b, c in backend_knobs.items() if c.runtime))
    train = base.train if epochs is None else dataclasses.replace(base.train, epochs=epochs)
    return dataclasses.replace(base, name=name, config=tag, base=task.name, knobs=knobs, train=train)


def trial_of(rec: dict[str, Any], config: Config) -> Trial:
    target = rec.get("target_acc")
    return Trial(
        config=config.label,
        status=str(rec.get("status")),
        img_s=rec.get("steady_img_s"),
        lo=rec.get("steady_img_s_ci_lo"),
        hi=rec.get("steady_img_s_ci_hi"),
        test_acc=rec.get("test_acc"),
        n_test=rec.get("n_test"),
        reached_target=None if not target else rec.get("time_to_target_s") is not None,
        error=rec.get("error"),
        is_default=config.is_default,
    )


TRIAL_FIELDS = (
    "status",
    "error",
    "steady_img_s",
    "steady_img_s_ci_lo",
    "steady_img_s_ci_hi",
    "steady_img_s_hw_pct",
    "timed_steps",
    "first_step_s",
    "steady_step_s",
    "compile_s",
    "test_acc",
    "time_to_target_s",
    "wall_s",
    "threads",  # what the row ran on: a worker-resolved "half" says its count (``duplicated``)
)


class Tuner:
    def __init__(
        self,
        run_dir: Path,
        opts: RunOptions,
        budget_s: float,
        env: dict[str, Any],
        echo: Callable[[str], None],
        only: tuple[str, ...] = (),
        started: float | None = None,
    ) -> None:
        """``started``: perf_counter when the tune's budget started counting (the plan's calibration before it is
        the tune's time too: ``TuneBudget.started``); by default now."""
        self.run_dir, self.opts, self.budget_s, self.env, self.echo = run_dir, opts, budget_s, env, echo
        self.only = only  # the knobs searched (--knobs); () = every knob of the backend
        self.started = time.perf_counter() if started is None else started
        self.plan_s = time.perf_counter() - self.started  # the calibration and plan before this tune's first file
        self.log: dict[str, Any] = {"budget_s": budget_s, "race_share": RACE_SHARE, "pairs": []}
        self.log["plan_s"] = round(self.plan_s, 1)  # in the tune's "took", not in the race's

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def save(self) -> None:
        self.log["wall_s"] = round(self.elapsed(), 1)
        write_json(self.run_dir / TUNE_FILE, self.log)

    def race(self, task: TaskSpec, backend: str, budget_s: float, capabilities: dict[str, Any]) -> Config:
        """Successive halving over ``backend``'s knob space for ``task`` within ``budget_s`` from now: rung 0 may
        start configurations until then (every configuration deserves one look; what rung 0 spends comes out of the
        later rungs), and every trial is stopped then. Returns the winning configuration."""
        runnable, skipped = configurations(
            race_space(backend, self.only, row_cores(self.opts), self.opts.executor in REMOTE_EXECUTORS), capabilities
        )
        tags = {c.label: f"t{i:02d}" for i, c in enumerate(runnable)}
        by_label = {c.label: c for c in runnable}
        entry: dict[str, Any] = {
            "task": task.name,
            "backend": backend,
            "batch_size": task.train.batch_size,
            "budget_s": round(budget_s, 1),
            "configs": [
                {"tag": tags[c.label], "label": c.label, "knobs": c.values(), "runtime": dict(c.runtime)}
                for c in runnable
            ],
            "skipped": [{"label": c.label, "why": why} for c, why in skipped],
            "rungs": [],
        }
        self.log["pairs"].append(entry)
        self.echo(
            f"tune {task.name} / {backend}: {len(runnable)} configuration(s), {len(skipped)} skipped here "
            f"({'; '.join(w for _, w in skipped) or 'none'}); race budget {budget_s:.0f}s"
        )
        alive = [c.label for c in runnable]
        default = runnable[0].label
        leader = default
        began = time.perf_counter()
        timeout = max(MIN_TRIAL_TIMEOUT_S, budget_s / 2)
        for rung in range(MAX_RUNGS):
            epochs = min(task.train.epochs, 2**rung)
            specs = [config_spec(task, {backend: by_label[label]}, tags[label], epochs) for label in alive]
            sub = self.run_dir / TRIALS / f"{task.name}.{backend}.r{rung}"
            # a rung's report without figures or index.html: no one reads them, and they were most of this process's
            # time between rungs, out of the budget (docs/tuning.md); the tune's own report says what each race did,
            # and `bench report RUNG` writes the rest
            limit = min(self.opts.timeout_s, timeout)
            one = dataclasses.replace(self.opts, backends=(backend,), repeats=1, timeout_s=limit, full_report=False)
            records = self._run(sub, specs, one, began + budget_s)
            by_tag = {r.get("config"): r for r in records}
            same = duplicated(alive, by_label, {label: by_tag.get(tags[label], {}) for label in alive})
            trials = [
                trial_of(by_tag.get(tags[label], {"status": "missing"}), by_label[label])
                for label in alive
                if label not in same
            ]
            keep = max(1, math.ceil(len([t for t in trials if not t.is_default]) / 2))
            walls = {label: float(by_tag.get(tags[label], {}).get("wall_s") or 0.0) for label in alive}
            decision, stop = self._decide(trials, keep, (rung, epochs), task, default, walls, began + budget_s)
            dropped = decision.dropped | {
                label: f"ran as {twin} did ({by_tag[tags[label]].get('threads')} thread(s) on its worker): counted once"
                for label, twin in same.items()
            }
            entry["rungs"].append(
                {
                    "rung": rung,
                    "epochs": epochs,
                    "folder": str(sub.relative_to(self.run_dir)),
                    "trials": [
                        {
                            "tag": tags[label],
                            "label": label,
                            **{k: by_tag.get(tags[label], {}).get(k) for k in TRIAL_FIELDS},
                            **({"duplicate_of": same[label]} if label in same else {}),
                        }
                        for label in alive
                    ],
                    "kept": decision.kept,
                    "dropped": dropped,
                    "below_floor": decision.below_floor,
                    "leader": decision.leader,
                    "unranked": decision.unranked,
                }
            )
            self.save()
            leader = decision.leader or default
            alive = decision.kept
            self.echo(
                f"tune {task.name} / {backend}: rung {rung} ({epochs} epoch(s)): leader {leader}; "
                f"{len(decision.kept)} kept, {len(decision.dropped)} dropped"
                + (f"; {len(decision.unranked)} without an interval race on unranked" if decision.unranked else "")
                + "".join(f"; {label} ran as {twin} did, counted once" for label, twin in same.items())
            )
            if stop is not None:
                if stop:
                    entry["stopped"] = stop
                if said := tie(trials, decision):
                    entry["tie"] = said
                    self.echo(f"tune {task.name} / {backend}: {said}")
                break
        entry["winner"] = {"tag": tags[leader], "label": leader, "runtime": dict(by_label[leader].runtime)}
        self.save()
        return by_label[leader]

    def _decide(
        self,
        trials: list[Trial],
        keep: int,
        at: tuple[int, int],
        task: TaskSpec,
        default: str,
        walls: dict[str, float],
        deadline: float,
    ) -> tuple[Decision, str | None]:
        """Rung ``at`` (its index and epochs)'s decision, and why no rung follows it (``_after``; None: one does).
        A configuration timed without an interval races on unranked to the next rung where the budget holds that
        rung for every survivor: a window grows with the rungs' epochs until it has one. Where no rung follows, the
        point estimates rank it (the drop says so), and the survivors race on where the budget holds them."""
        final = at[1] >= task.train.epochs
        decision = decide(trials, keep, final, longer=True)
        stop = self._after(at, task, default, walls, decision.kept, deadline)
        if stop is None:
            return decision, None
        decision = decide(trials, keep, final, longer=False)
        again = self._after(at, task, default, walls, decision.kept, deadline)
        return decision, stop if again == "" else again  # nothing left to race: the budget's doing, said so

    def _after(
        self,
        at: tuple[int, int],
        task: TaskSpec,
        default: str,
        walls: dict[str, float],
        kept: list[str],
        deadline: float,
    ) -> str | None:
        """Why no rung follows rung ``at`` for ``kept``: "" where the race has none (the task's own length, or
        MAX_RUNGS, or nothing left to race), a sentence where the budget would not hold it (each survivor's wall
        time in this rung, twice the epochs); None where one follows."""
        rung, epochs = at
        if rung + 1 >= MAX_RUNGS or min(task.train.epochs, 2 ** (rung + 1)) == epochs:
            return ""  # nothing longer to learn from
        if len(kept) <= 1 or not [label for label in kept if label != default]:
            return ""  # nothing left to race
        if sum(2 * walls.get(label, 0.0) for label in kept) > deadline - time.perf_counter():
            return f"rung {rung + 1} would not fit the budget"
        return None

    def _run(self, folder: Path, specs: list[TaskSpec], opts: RunOptions, deadline: float) -> list[dict[str, Any]]:
        """One rung: an ordinary run of ``specs`` in ``folder`` (plan, records, logs, summary of its own); the
        configurations not started by ``deadline`` are skipped rows that say so, and one still running then is
        stopped, its trial saying why (its record, as every timeout's, the limit it ran under)."""

        def stop() -> str | None:
            if time.perf_counter() < deadline:
                return None
            return f"{TUNING_BUDGET_SPENT} for this (task, backend) was spent before this configuration started"

        cut: dict[str, float] = {}  # configuration (its row's task name) -> the seconds its share left it

        def limit(spec: TaskSpec) -> float | None:
            left = round(max(1.0, deadline - time.perf_counter()), 1)  # said as the row's limit
            if left >= opts.timeout_s:
                return None
            cut[spec.name] = left
            return left

        make_folder(self.run_dir, folder.parent)
        make_folder(self.run_dir, folder)
        write_plan(folder, specs, opts)
        write_json(folder / "environment.json", self.env)
        execute(
            folder,
            specs,
            opts,
            self.env,
            lambda line: self.echo(f"  {line}"),
            stop,
            history=False,
            after_interrupt=RACE_NOT_RESUMED,  # resuming the rung's folder would finish the rung, not the tune
            limit=limit,
        )
        records = latest_records(read_records(folder))
        for rec in records:
            if rec.get("status") == "timeout" and (left := cut.get(str(rec.get("task")))) is not None:
                stopped = f"stopped {left:.0f}s after it started, at the end of this (task, backend)'s race budget"
                rec["error"] = stopped + stopped_words(rec)  # the stage it was in, and what its row kept
        return records


def tune_suite(
    tasks: list[TaskSpec],
    opts: RunOptions,
    budget_s: float,
    echo: Callable[[str], None] = print,
    only: tuple[str, ...] = (),
    remeasure: bool = True,
    command: str = "tune",
    plan: TuneBudget | None = None,
    fit: bool = True,
) -> Path:
    """Race every (task, backend), then run each task's default and best rows in the run folder; returns it.
    ``remeasure``: add fresh processes to a row whose timed window was short (MIN_PROCESSES; off when the user
    chose the repeats). ``plan``: the race's seconds and the fresh rows' costs (bench.run.tune_budget.plan_tune;
    None: RACE_SHARE of the budget). ``fit``: the fresh rows sized to what the race left (FreshResize); False where
    the command line set their recipe (--epochs, --max-train): they train it as given."""
    run_dir = new_run_dir(opts.out)
    env = run_environment(run_dir, tasks, opts, tune_budget_s=budget_s, command=command)
    check_knob_names(only, opts.backends)
    tuner = Tuner(run_dir, opts, budget_s, env, echo, only, plan.started if plan else None)
    devices = sorted({t.runtime.device for t in tasks})
    capabilities = probe("cpu" if devices == ["cpu"] else "auto")
    tuner.log["capabilities"] = capabilities
    env["capabilities"] = capabilities
    tuner.save()  # from the start: a tune stopped in its race is known as one (--resume says what to do)
    # the pairs with a knob to race: a backend without one, or with none of --knobs, runs its defaults as best
    tuner.log["unraced"] = unraced(only, opts.backends)
    pairs = [(t, b) for t in tasks for b in opts.backends if searched(describe(b).knob_space, only)]
    race_s = plan.race_s if plan else budget_s * RACE_SHARE
    tuner.log["race_budget_s"] = round(race_s, 1)
    share = race_s / max(1, len(pairs))
    echo(
        f"tune: {len(tasks)} task(s) x {len(opts.backends)} backend(s), budget {budget_s:.0f}s "
        f"(race ~{share:.0f}s per pair, then default and best re-measured in fresh processes) -> {run_dir}"
    )
    for line in knob_lines(only, opts.backends):  # said once: a knob some backends lack is not searched by them
        echo(line)
    echo("tune: this machine: " + "; ".join(f"{k}: {v}" for k, v in capabilities["how"].items()))
    # every rung and the final rows are runs of their own: their worker servers stay warm from one to the next
    with shared_servers():
        winners: dict[str, dict[str, Config]] = {}
        for i, (task, backend) in enumerate(pairs):  # what a pair before it left unspent goes to the pairs after it
            share = pair_share(race_s, tuner.elapsed(), i, len(pairs))
            winners.setdefault(task.name, {})[backend] = tuner.race(task, backend, share, capabilities)
        final = []
        for task in tasks:  # at the plan's epochs until sized again: what --resume runs (TuneBudget.as_planned)
            final.append(config_spec(task, {}, "default"))
            final.append(config_spec(task, winners.get(task.name, {}), "best"))
        final = [plan.as_planned(t) for t in final] if plan else final
        tuner.log["final"] = [
            {"task": t.name, "base": t.base, "config": t.config, "knobs": [list(k) for k in t.knobs]} for t in final
        ]
        # what the summary can say before the fresh rows end: the race's own, the plan before it not in it
        tuner.log["race_s"] = round(tuner.elapsed() - tuner.plan_s, 1)
        tuner.save()
        write_plan(run_dir, final, opts)
        write_json(run_dir / "environment.json", env)
        echo(f"tune: the race took {tuner.log['race_s']:.0f}s; measuring default and best again in fresh processes")
        tb = plan or unplanned(tasks, opts.backends, budget_s, opts.repeats)
        resize = (
            FreshResize(tb, tuner.started, race_costs(run_dir, tuner.log["pairs"], tb.speed), echo) if fit else None
        )
        try:
            # into the history once, with every process; each task's epochs sized to what the race left
            execute(run_dir, final, opts, env, echo, history=False, resize=resize)
            if resize is not None:
                final = [resize.sized.get(t.name, t) for t in final]  # the short windows' repeats: the same epochs
                tuner.log["fresh_plans"] = resize.log
            if remeasure:
                remeasure_short_windows(run_dir, final, opts, env, echo, tuner)
                if any(e.get("added") == 0 for e in tuner.log.get("remeasured") or []):
                    # a row the budget left short ran nothing, so no run rewrote the reports after it was logged:
                    # summary.md and the page did not say it (QA, 2026-12-06; tune.json alone did)
                    tuner.save()
                    write_reports(run_dir, opts.reference)
        finally:
            tuner.save()
    if read_json_object(run_dir / STATE, {}).get("state") == "complete":
        history_cli.after_run(run_dir, echo)
    given = None if fit else [o for o in KEYS if any(o in options_of(t) for t in tasks)]  # rows as the recipe set
    echo(end_line(plan, budget_s, race_s, (tuner.elapsed(), float(tuner.log["race_s"]), tuner.plan_s), given))
    return run_dir


def short_window(record: dict[str, Any], min_steps: int) -> bool:
    """Whether an ok row's timed window is shorter than the window rule asks (bench.measure.steady.short_window)."""
    n, seconds = record.get("timed_steps"), record.get("timed_s")
    if not isinstance(n, int) or not isinstance(seconds, int | float):
        return False
    return steady.short_window(n, seconds, min_steps)


def short_windows(
    records: list[dict[str, Any]], final: list[TaskSpec], backends: tuple[str, ...]
) -> list[tuple[TaskSpec, str, list[dict[str, Any]]]]:
    """(spec, backend, its ok rows) of each final row measured in fewer than MIN_PROCESSES fresh processes, every
    one of them with a short window."""
    out = []
    for spec in final:
        for backend in backends:
            rows = [r for r in records if r.get("task") == spec.name and r.get("backend") == backend]
            ok = [r for r in rows if r.get("status") == "ok"]
            need = spec.for_backend(backend).runtime.timed_steps
            if ok and len(ok) == len(rows) < MIN_PROCESSES and all(short_window(r, need) for r in ok):
                out.append((spec, backend, ok))
    return out


def partners(
    records: list[dict[str, Any]], final: list[TaskSpec], backends: tuple[str, ...], wanted: dict[tuple[str, str], int]
) -> list[tuple[TaskSpec, str, list[dict[str, Any]], int]]:
    """(spec, backend, its ok rows, processes wanted) of each final row whose partner (the same task and backend's
    other configuration) was measured again for its short window (``wanted``: (task, backend) -> the partner's
    processes) and that has fewer: best / default then reads processes against processes. A row with a failed
    process is left as it is."""
    out = []
    for spec in final:
        for backend in backends:
            target = wanted.get((spec.base, backend), 0)
            rows = [r for r in records if r.get("task") == spec.name and r.get("backend") == backend]
            ok = [r for r in rows if r.get("status") == "ok"]
            if ok and len(ok) == len(rows) < target:
                out.append((spec, backend, ok, target))
    return out


def remeasure_short_windows(
    run_dir: Path,
    final: list[TaskSpec],
    opts: RunOptions,
    env: dict[str, Any],
    echo: Callable[[str], None],
    tuner: Tuner,
) -> None:
    """Measure each short-windowed final row again, in fresh processes (repeats of its own), until it has
    MIN_PROCESSES or the tune's budget is spent, then its partner (the same backend's other configuration) as
    often: best / default is read over the processes (Student's t), and against one process the three's spread
    between processes stands for the one's too (on the 2026-12-05 AMD cifar10-cnn tune, Keras/TF's winner at
    7,208-10,746 img/s in three processes against its defaults' 6,118 in one: 1.49x [0.55, 4.07], unproven);
    against three, each side's own, about half as wide. tune.json's ``remeasured`` says what was added and why."""
    short = short_windows(latest_records(read_records(run_dir)), final, opts.backends)
    shorts = {(spec.name, backend) for spec, backend, _ in short}
    wanted: dict[tuple[str, str], int] = {}
    for spec, backend, rows in short:
        steps = ", ".join(f"{r['timed_steps']} steps in {r['timed_s']:.2f}s" for r in rows)
        added = _measure_again(spec, backend, rows, MIN_PROCESSES, {"windows": steps}, tuner)
        wanted[spec.base, backend] = max(wanted.get((spec.base, backend), 0), len(rows) + added)
        why = f"timed window short ({steps})"
        echo(f"tune: {spec.name} / {backend}: {why}; " + (f"{added} more fresh process(es)" if added else NO_BUDGET))
        if added:
            _execute_repeats(run_dir, spec, backend, len(rows) + added, opts, env, echo)
    for spec, backend, rows, target in partners(latest_records(read_records(run_dir)), final, opts.backends, wanted):
        if (spec.name, backend) in shorts:
            continue
        other = "best" if spec.config == "default" else "default"
        added = _measure_again(spec, backend, rows, target, {"partner": other}, tuner)
        why = f"its {other} row was measured in {target} processes"
        echo(f"tune: {spec.name} / {backend}: {why}; " + (f"{added} more fresh process(es)" if added else NO_BUDGET))
        if added:
            _execute_repeats(run_dir, spec, backend, len(rows) + added, opts, env, echo)


NO_BUDGET = "no budget left to measure it again"


def _measure_again(
    spec: TaskSpec, backend: str, rows: list[dict[str, Any]], target: int, why: dict[str, str], tuner: Tuner
) -> int:
    """How many fresh processes to add to ``rows`` (up to ``target`` in all, as the tune's budget holds, its reserve
    kept: ``spendable_s``, as the fresh rows' plans keep it), logged in tune.json before the rows run (each run's
    report reads it)."""
    per_process = max(float(r.get("wall_s") or 0.0) for r in rows) or 1.0
    left = spendable_s(tuner.budget_s, tuner.elapsed())
    added = max(0, min(target - len(rows), int(left // per_process)))
    entry = {"task": spec.base, "config": spec.config, "backend": backend, **why, "processes": len(rows)}
    entry["wanted"] = target  # the report says where the budget stopped short of it
    tuner.log.setdefault("remeasured", []).append({**entry, "added": added})
    tuner.save()
    return added


def _execute_repeats(
    run_dir: Path,
    spec: TaskSpec,
    backend: str,
    repeats: int,
    opts: RunOptions,
    env: dict[str, Any],
    echo: Callable[[str], None],
) -> None:
    more = dataclasses.replace(opts, backends=(backend,), repeats=repeats, parity_steps=0)
    execute(run_dir, [spec], more, env, echo, history=False)
