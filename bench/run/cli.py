"""``python -m bench``: the suite's command line, its parser, and ``all | run | tune | zoo | list``; each other
command is a module of its own that adds its parser and runs it (report and compare: bench.run.report_cli; data,
history, parity, distributed-launch: their ``*_cli`` modules), the argparse types they share in bench.run.argtypes.

What a command runs (the runner, the tuner, the reports, compare) is imported where the command runs it: the
parser and every refusal before a run need none of it, and it brings pandas and pyarrow (0.4 s of each start; a
refusal took 0.6 s of CPU, `--help` 0.8 s, on the 2-core AMD VM with compiled bytecode).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
import typing
import warnings
from pathlib import Path

import backends
from bench.core.cpus import usable_cores
from bench.core.results import (
    RunFileError,
    RunFileWarning,
    latest_records,
    lost_line,
    phase_failed,
    read_json_or_warn,
    read_records,
    table,
)
from bench.core.spec import MAX_SEED, PROFILES, SpecError, TaskSpec, builtin_tasks, load_task
from bench.measure.budget import parse_duration
from bench.report.backends import reference_of
from bench.run import budget_cli, distributed, environment, stopsignal
from bench.run.argtypes import backend_names, folder, integer, seconds
from bench.run.data_cli import add_data_parser, run_data_command
from bench.run.datacheck import check_task_data
from bench.run.dist_cli import add_distributed_options, add_launch_parser, cmd_launch, with_workers
from bench.run.exec_cli import add_executor_options, executor_fields
from bench.run.history_cli import add_history_parser, run_history_command
from bench.run.knobcheck import refuse_unknown_knob_backends, threads_warnings
from bench.run.parity import nothing_to_compare
from bench.run.parity_cli import add_parity_parser, run_parity_command
from bench.run.plan import MAX_PARITY_STEPS, MAX_REPEATS, RunOptions, check_data_parallel_here, read_plan
from bench.run.recipe_cli import add_recipe_options, options_given, with_recipe_options
from bench.run.report_cli import add_reference, add_report_parsers, cmd_compare, cmd_report, resolve_run
from bench.run.runfolder import STATE, RunStopped
from bench.run.tune_budget import DEFAULT_TUNE_BUDGET, RACE_SHARE, TuneBudget, needed_s, plan_lines, plan_tune
from bench.run.weightscheck import check_pretrained
from bench.run.zoo_cli import add_zoo_options, raised_sizes, zoo_tasks
from datasets import registry

FAILED = ("failed", "timeout", "interrupted")


def _repeats(value: str) -> int:
    return integer(value, 1, MAX_REPEATS)


def _parity_steps(value: str) -> int:
    return integer(value, 1, MAX_PARITY_STEPS)


def _seed(value: str) -> int:
    return integer(value, 0, MAX_SEED)


def _run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--backend",
        type=backend_names,
        default=backends.default_names(),
        help="comma-separated backends, or all (every registered one; a missing framework gives skipped rows); "
        f"default: {','.join(backends.default_names())}",
    )
    p.add_argument(
        "--profile",
        choices=("auto", *PROFILES),
        default="auto",
        help="quick: CPU/CI sizes; full: the documented recipes; auto (default): full when a GPU "
        "is present, else quick",
    )
    p.add_argument(
        "--data-dir",
        help="folder with dataset cache files (e.g. ../shared/data); "
        "also read from BENCH_DATA_DIR; missing datasets fall back to embedded defaults",
    )
    p.add_argument(
        "--out",
        type=folder,
        default=environment.REPO / "results",
        help="where results/<run-id>/ is created (default: %(default)s)",
    )
    p.add_argument(
        "--repeats",
        type=_repeats,
        help="runs per (task, backend), each a fresh process (default: 1; with --budget, as `bench all` has, 3 "
        "for each task the budget holds at its profile's epochs, the cheapest first; a tuning run adds fresh "
        "processes, up to 3 in all, for a default or best row whose timed window was short)",
    )
    p.add_argument("--seed", type=_seed, help="override every task's seed")
    p.add_argument(
        "--resume",
        metavar="RUN",
        help="finish an interrupted run (a results/<run-id> directory or its id) with the plan it was started "
        "with; rows already recorded are kept, the rest run (other run options are ignored)",
    )
    p.add_argument(
        "--pretrained",
        action="store_true",
        help="start the models that have ImageNet weights (resnet101, convnext_tiny) from them, through each "
        "library's own mechanism; offline, put the weight files in $BENCH_WEIGHTS_DIR (refused before any "
        "worker starts where neither a file nor the download is there; the error says which). "
        "Default: random init, recorded in the `pretrained` column",
    )
    p.add_argument(
        "--profile-ops",
        action="store_true",
        help="profile the warm-up steps (Keras's steps_per_execution: whole executions) with torch.profiler / the "
        "TensorFlow profiler; the top 10 ops per backend go into records.jsonl (top_ops) and summary.md",
    )
    p.add_argument(
        "--timeout",
        type=seconds,
        default=3600.0,
        help="per-run limit in seconds; a run over it is stopped and recorded as timeout",
    )
    p.add_argument(
        "--parity-steps",
        type=_parity_steps,
        default=0,
        metavar="N",
        help="after the rows, train each task's model N steps in every backend from one init, conventions "
        "aligned, and add each backend's largest weight and logit difference against the reference (and the "
        "fp32 bound) to its rows, and each task's verdict in a line under its table; a model whose builds differ "
        "says so (docs/methodology.md). Needs a backend besides the reference. Default: no check",
    )
    add_reference(p)
    add_executor_options(p)


def _add_tune_budget(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--budget",
        dest="tune_budget",
        type=budget_cli.duration,
        default=None,  # DEFAULT_TUNE_BUDGET (resolve_budget): None until then, so an explicit one is told apart
        metavar="DURATION",
        help=f"wall-clock budget of the whole tuning run (e.g. 600, 20m, 1h; default {DEFAULT_TUNE_BUDGET})",
    )


def _add_best(p: argparse.ArgumentParser, with_budget: bool = True) -> None:
    p.add_argument(
        "--best",
        action="store_true",
        help="tune instead of run: each backend at its defaults and at its best, within --budget (as `bench "
        "tune`; give it tens of minutes, docs/tuning.md)",
    )
    if with_budget:
        _add_tune_budget(p)
    _add_knobs(p)


def _knob_names(value: str) -> tuple[str, ...]:
    """--knobs: comma-separated knob names. None at all (``--knobs ""``) is an error, as ``--backend ""`` is:
    read as "every knob" it started a 30-minute tune; leaving the option out is how every knob is asked for."""
    names = tuple(dict.fromkeys(x.strip() for x in value.split(",") if x.strip()))
    if not names:
        raise argparse.ArgumentTypeError(
            f"no knob named in {value!r} (give NAME,..., e.g. precision,compile; leave --knobs out for all)"
        )
    return names


def _add_knobs(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--knobs",
        type=_knob_names,
        default=(),
        metavar="NAME,...",
        help="search only these knobs (e.g. precision,compile); the others stay at their defaults (default: all)",
    )


# options whose value may start with "-" and a digit: argparse reads "--budget -5m" as an option missing its value
# ("expected one argument", QA); joined as "--budget=-5m", the value reaches parse_duration, which says what is wrong
_SIGNED_VALUE_OPTIONS = ("--budget",)
_SIGNED = re.compile(r"-[\d.]")


def join_signed_values(argv: typing.Sequence[str]) -> list[str]:
    """``argv`` with each ``--budget -5m`` written ``--budget=-5m``, so a negative value is one argparse reads."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] in _SIGNED_VALUE_OPTIONS and _SIGNED.match(arg) and "--" not in out:
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (the usage itself is one --help away)."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m bench",
        description="Run the same CNN experiments in PyTorch and Keras and compare them side by side.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_all = sub.add_parser(
        "all",
        help="run every built-in task in every backend",
        description="Run every built-in task in every backend and print the side-by-side table.",
    )
    _run_options(p_all)
    add_recipe_options(p_all)
    budget_cli.add_budget_option(p_all, best_default=DEFAULT_TUNE_BUDGET)
    _add_best(p_all, with_budget=False)  # `all --best` tunes within the same --budget (the tune's default)
    p_run = sub.add_parser(
        "run",
        help="run named built-in tasks or TOML files",
        description="Run the given built-in tasks (see `list`) or task TOML files.",
    )
    p_run.add_argument("tasks", nargs="*", metavar="TASK_OR_TOML")
    _run_options(p_run)
    add_recipe_options(p_run)
    budget_cli.add_budget_option(p_run, default=None)
    add_distributed_options(p_run)
    p_tune = sub.add_parser(
        "tune",
        help="each backend at its best: race its performance knobs, then measure default and best afresh",
        description="For each (task, backend): race every configuration of the backend's knobs this machine can "
        "run (successive halving on the headline throughput, an accuracy floor against the default), then run the "
        "default and the winner again in fresh processes; summary.md puts them side by side (docs/tuning.md).",
    )
    p_tune.add_argument("tasks", nargs="*", metavar="TASK_OR_TOML")
    _add_tune_budget(p_tune)
    _add_knobs(p_tune)
    _run_options(p_tune)
    add_recipe_options(p_tune)
    p_list = sub.add_parser(
        "list",
        help="list built-in tasks, datasets and backends",
        description="List built-in tasks, where each dataset resolves, and which backends are installed.",
    )
    p_list.add_argument("--data-dir", help="also look for dataset files here (as `run --data-dir`)")
    p_list.add_argument(
        "--backend", type=backend_names, default=backends.names(), help="backends to list (default: all)"
    )
    p_zoo = sub.add_parser(
        "zoo",
        help="sweep the zoo: inference and training-step throughput of every architecture, per backend",
        description="One task per zoo architecture (bench/tasks/zoo/sweep.toml) through the usual runner: "
        "img/s for inference and training steps, MFU, memory, parameters and FLOPs per backend.",
    )
    add_zoo_options(p_zoo)
    _run_options(p_zoo)
    add_recipe_options(p_zoo)
    _add_best(p_zoo)
    add_data_parser(sub)
    add_launch_parser(sub)
    add_parity_parser(sub)
    add_report_parsers(sub)
    add_history_parser(sub)
    return parser


def resolve_profile(requested: str) -> str:
    if requested != "auto":
        return requested
    gpus = environment.gpus()
    profile = "full" if gpus else "quick"
    print(f"profile: {profile} ({'GPU: ' + gpus[0] if gpus else 'no GPU found'}; choose with --profile)")
    return profile


def cmd_list(data_dir: str | None = None, names: tuple[str, ...] | None = None) -> int:
    try:
        registry.search_dirs(data_dir)  # the check `run` makes: a bad --data-dir or BENCH_DATA_DIR, one line
    except registry.DatasetNotFound as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("tasks:")
    tasks = {name: load_task(path, datasets=registry.DATASETS) for name, path in builtin_tasks().items()}
    arch_w = max((len(t.model.arch) for t in tasks.values()), default=0)  # convnext_tiny overran a fixed column
    for name, t in tasks.items():
        print(f"  {name:24s} {t.model.arch:{arch_w}s} {t.dataset.name:9s} {t.description}")
    print("datasets:")
    for name, info in registry.DATASETS.items():
        found = registry.find_file(name, data_dir)
        where = (
            str(found)
            if found
            else (
                "embedded default" if info.embedded else f"stand-in: {info.stand_in}" if info.stand_in else "not found"
            )
        )
        print(f"  {name:24s} {where}")
    print("backends:")
    for name in names or backends.names():
        missing = backends.missing_packages(name)
        about = backends.describe(name)
        state = "missing: " + ", ".join(missing) if missing else "installed"
        print(f"  {name:24s} {about.label:14s} {state}{'' if about.default else ' (not in the default set)'}")
    return 0


def with_cli_overrides(tasks: list[TaskSpec], pretrained: bool, profile_ops: bool) -> list[TaskSpec]:
    """Apply --pretrained (to the tasks whose catalog model takes each library's ImageNet weights) and
    --profile-ops. A zoo model takes its weights from a torch file named in its task (``model.weights``), which
    the command line cannot give: its tasks are left as they are, and refused up front if none is left."""
    from bench.core.catalog import architecture

    out = []
    for t in tasks:
        arch = architecture(t.model)
        if pretrained and arch.pretrained and not arch.id.startswith("zoo:"):
            t = dataclasses.replace(t, model=dataclasses.replace(t.model, pretrained=True))
        if profile_ops:
            rt = t.runtime
            rt = dataclasses.replace(
                rt, profile_ops=True, warmup_steps=max(rt.warmup_steps, 1), timed_steps=max(rt.timed_steps, 1)
            )
            t = dataclasses.replace(t, runtime=rt)
        out.append(t)
    if pretrained and not any(t.model.pretrained for t in out):
        raise SpecError(
            "--pretrained: none of these tasks has a catalog model with ImageNet weights (resnet101, convnext_tiny); "
            "a zoo model starts from a torch weights file named in its task file (model.weights, docs/zoo.md)"
        )
    return out


def sweep_tasks(args: argparse.Namespace, profile: str) -> list[TaskSpec]:
    """``bench zoo``'s tasks, and a note at the start where a model's minimum side raises the size asked."""
    tasks = zoo_tasks(args.models, profile, args.image_size, args.batch)
    if line := raised_sizes(tasks, profile, args.image_size):
        print(f"note: {line}")
    return tasks


def refuse_duplicate_names(tasks: list[TaskSpec]) -> None:
    """Two tasks with one name would share prepared data, logs and records: the second would silently reuse
    the first one's data and only one row would appear."""
    seen: dict[str, str] = {}
    for t in tasks:
        if t.name in seen:
            raise SpecError(f"two tasks are named {t.name!r}: {seen[t.name]} and {t.source}; task names must differ")
        seen[t.name] = t.source


def finish(run_dir: Path, reference: str | None = None) -> int:
    """Print the side-by-side tables; exit 1 when a run failed or timed out, or a phase failed on a row.
    ``reference``: --reference (None: as summary.md chooses it, ``reference_of``)."""
    from bench.report.configuration import WORDS as AS_RUN
    from bench.report.configuration import configuration_text
    from bench.report.parity import parity_verdict
    from bench.report.speedup import speed_verdicts
    from bench.report.tables import terminal_summary

    latest = latest_records(read_records(run_dir))
    df = table(latest)
    reference = reference_of(df.backend, reference)
    verdicts = speed_verdicts(latest, reference)
    for task in df.task.unique():  # --parity-steps: its verdict under the table too, not in summary.md alone
        if line := parity_verdict(df[df.task == task]):
            verdicts.setdefault(task, []).append(line)
        if said := configuration_text(df[df.task == task]):  # what each backend ran as, as summary.md says it
            verdicts.setdefault(task, []).append(f"{AS_RUN}: {said}")
    print(terminal_summary(df, reference, verdicts))
    written = [n for n in RUN_FILES if (run_dir / n.rstrip("/")).exists()]  # a full disk may have kept some out
    print(f"\nwrote {run_dir}/ ({', '.join(written) or 'nothing'})")
    if lost := lost_line(latest, run_dir, read_json_or_warn(run_dir / STATE).get("command")):
        print(lost)
    return 1 if df.status.isin(FAILED).any() or len(phase_failed(df)) else 0


RUN_FILES = ("records.jsonl", "results.csv", "summary.md", "index.html", "environment.json", "plots/", "logs/")


def ignored_on_resume(args: argparse.Namespace) -> list[str]:
    """The options given beside ``--resume`` that it ignores (every one but where the rows run and ``--out``), as
    the command line spells them: each set away from its default. QA, 2026-12-07: --seed, --repeats and the recipe
    options were said to be ignored, --backend, --profile, --reference and --timeout were dropped without a word."""
    defaults = vars(build_parser().parse_args([args.command]))
    used = {"command", "resume", "out", "tasks", *executor_dests()}
    return [
        RENAMED.get(dest, "--" + dest.replace("_", "-"))
        for dest, value in vars(args).items()
        if dest not in used and value != defaults.get(dest)
    ]


RENAMED = {"tune_budget": "--budget"}  # an option whose argparse name is not its own (``dest=``)


def executor_dests() -> set[str]:
    """The options of where the rows run, which a resume takes (``executor_fields``), by their argparse names."""
    p = argparse.ArgumentParser(add_help=False)
    add_executor_options(p)
    return set(vars(p.parse_args([])))


def cmd_resume(args: argparse.Namespace) -> int:
    from bench.run.resume import resume_suite

    run_dir = resolve_run(args.resume, args.out)
    given = ignored_on_resume(args)
    if given or getattr(args, "tasks", None):
        print(f"--resume runs the plan the run started with: {', '.join(given) or 'the tasks named'} ignored")
    try:
        resume_suite(run_dir, where=executor_fields(args), command=args.command)
    except RunStopped as e:
        return stopped(run_dir, e)
    except (FileNotFoundError, RuntimeError, RunFileError, SpecError, ValueError) as e:  # SpecError: a bad plan task
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM during the run (stopsignal)
        return stopsignal.exit_code(e)
    return finish(run_dir, read_plan(run_dir)[1].reference)  # the plan's reference, as summary.md's


def reference_not_run(reference: str | None, backends: tuple[str, ...]) -> str | None:
    """Why a ``--reference`` the run does not train is refused (None when it trains it, or none was given): every
    ratio cell of the run would read "no X row" (QA, 2026-12-06: `tune ... --reference keras-jax` with torch and
    keras started its race). Not given, ratios divide by the first backend the run has (``reference_of``)."""
    if reference is None or reference in backends:
        return None
    return (
        f"--reference {reference}: not one of the backends this run trains (--backend {','.join(backends)}), so "
        f"every ratio would read 'no {reference} row': add it to --backend, or name one of them"
    )


def sized_twice(args: argparse.Namespace) -> str | None:
    """Why --epochs / --max-train are refused: beside an explicit --budget (``bench all``'s, or a tuning run's, which
    sizes the epochs and images to this machine, a tune's its default and best rows'); None when they are not given,
    or alone. In a tuning run they set the recipe its race is capped by and its default and best rows train."""
    options = options_given(args)
    if not options:
        return None
    if getattr(args, "budget", None) is not None or getattr(args, "tune_budget", None) is not None:
        return (
            f"{options[0]}: not with --budget, which sizes the epochs and training images to this machine itself: "
            "give one of them"
        )
    return None


def stopped(run_dir: Path, e: RunStopped) -> int:
    """A run that could not write its files: what it has, then the one line that says why (exit 1)."""
    finish(run_dir)
    print(f"error: {e}", file=sys.stderr)
    return 1


def resolve_budget(args: argparse.Namespace, tuning: bool) -> None:
    """``--budget`` left out (None): the command's default, or with ``--best`` the tune's (``all --best`` had
    raced six tasks in ``bench all``'s 5 minutes, 18 s a pair, and said "--budget sizes the quick profile"); a
    tune's own option (``tune``, ``zoo --best``) its DEFAULT_TUNE_BUDGET."""
    if hasattr(args, "budget") and args.budget is None:
        default = getattr(args, "best_budget_default" if tuning else "budget_default", None)
        args.budget = parse_duration(default) if default else None
    if hasattr(args, "tune_budget") and args.tune_budget is None:
        args.tune_budget = parse_duration(DEFAULT_TUNE_BUDGET)


def cmd_run(
    task_names: list[str], args: argparse.Namespace, make_tasks: typing.Callable[[str], list[TaskSpec]] | None = None
) -> int:
    """Run the named tasks, or those ``make_tasks(profile)`` makes (``bench zoo``)."""
    if args.resume:
        return cmd_resume(args)
    if not task_names and make_tasks is None:
        print("error: name at least one task or TOML file (see `python -m bench list`)", file=sys.stderr)
        return 2
    if args.parity_steps and (why := nothing_to_compare(args.backend)):  # QA: trained torch and its floor for nothing
        print(f"error: --parity-steps: {why}", file=sys.stderr)
        return 2
    if why := reference_not_run(args.reference, args.backend):
        print(f"error: {why}", file=sys.stderr)
        return 2
    if why := sized_twice(args):
        print(f"error: {why}", file=sys.stderr)
        return 2
    profile = resolve_profile(args.profile)
    try:
        flags = ("distributed.workers",) if getattr(args, "workers", None) else ()  # counts from --workers
        sets = registry.DATASETS
        tasks = make_tasks(profile) if make_tasks else [load_task(t, profile, sets, flags) for t in task_names]
        refuse_duplicate_names(tasks)
        refuse_unknown_knob_backends(tasks)
        tasks = with_cli_overrides(tasks, args.pretrained, args.profile_ops)
        tasks = with_recipe_options(tasks, getattr(args, "epochs", None), getattr(args, "max_train", None))
        tasks = with_workers(tasks, getattr(args, "workers", None), getattr(args, "scaling", None))
        # rank processes this machine can hold, before any starts; the error names --workers where it gave them
        distributed.check_workers(tasks)
        for line in distributed.oversubscription_notes(tasks):
            print(f"note: {line}")
        registry.search_dirs(args.data_dir)  # a mistyped --data-dir fails before any work
        check_task_data(tasks, args.data_dir)  # data absent, a batch or a layer list it cannot take: before any worker
        where = executor_fields(args) or {}
        check_data_parallel_here(tasks, where.get("executor", "local"))
        # --pretrained weights no row could get here (no file, no download): before any worker, as the data
        check_pretrained(tasks, args.backend, where.get("executor", "local"))
    except (SpecError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    tuning = getattr(args, "best", False) or args.command == "tune"
    if getattr(args, "knobs", ()) and not tuning:
        print("error: --knobs chooses what --best searches: add --best", file=sys.stderr)
        return 2
    if tuning and args.parity_steps:  # refused as --knobs without --best is: an option the command would not honour
        print(
            "error: --parity-steps: not with a tuning run (its rungs are many short runs); run it on the best rows' "
            "task with `bench run TASK --parity-steps N`",
            file=sys.stderr,
        )
        return 2
    resolve_budget(args, tuning)
    options = options_given(args)
    if options and getattr(args, "budget", None) is not None and not tuning:  # `all`'s default (an explicit: refused)
        print(f"{' and '.join(options)} set the recipe: the run is not sized to a budget (--budget)")
        args.budget = None
    fitted, auto = None, False  # `all --budget`: the quick profile sized to the budget (a tuning run races instead)
    if getattr(args, "budget", None) is not None and profile == "quick" and not tuning:
        # no --repeats: the budget chooses each task's processes a side, but not a data-parallel row's (its ranks'
        # cost is not in the plan's cost model)
        auto = args.repeats is None and not any(t.distributed.workers for t in tasks)
        tasks, fitted = budget_cli.fit(
            tasks, args.backend, args.budget, args.out, repeats=None if auto else args.repeats or 1
        )
    elif getattr(args, "budget", None) is not None and not tuning:  # a tune's budget is its race's and rows'
        print(f"--budget sizes the quick profile; the {profile} profile runs its recipes as written")
    opts = RunOptions(
        backends=args.backend,
        data_dir=str(Path(args.data_dir).absolute()) if args.data_dir else None,
        data_env=str(Path(os.environ["BENCH_DATA_DIR"]).absolute()) if os.environ.get("BENCH_DATA_DIR") else None,
        out=args.out,
        repeats=args.repeats or 1,
        # without --repeats, the budget chose each task's processes a side (budget.with_processes)
        task_repeats={n: r for n, r in fitted.plan.repeats.items() if r > 1} if fitted and auto else {},
        seed=args.seed,
        timeout_s=args.timeout,
        reference=args.reference,
        parity_steps=args.parity_steps,  # 0 in a tuning run (refused above)
        **where,
    )
    from bench.report import tuning as tuning_report  # after every refusal: they need none of these (pandas)
    from bench.run.runner import run_suite
    from bench.run.tune import REMOTE_EXECUTORS, check_knob_names, row_cores, tune_suite

    # the cores each row gets: ray's nodes are not known here (the rows' notes say it there)
    cores = row_cores(opts) or (None if opts.executor in REMOTE_EXECUTORS else usable_cores())
    for line in threads_warnings(tasks, opts.backends, cores) if cores else ():
        print(f"warning: {line}")
    try:
        if tuning:
            check_knob_names(getattr(args, "knobs", ()), opts.backends)
            budget_s = getattr(args, "tune_budget", None) or args.budget
            tb: TuneBudget | None = None
            if options:  # the default budget gives way, as `all`'s: the race keeps its share, the rows are as given
                print(
                    f"{' and '.join(options)} set the recipe: the race is held to its share of the tune's default "
                    f"budget ({DEFAULT_TUNE_BUDGET}); the default and best rows train the recipe as given, not sized "
                    "to a budget (--budget)"
                )
            elif (tb := tune_plan(tasks, opts.backends, budget_s, args.out, opts.repeats)) is None:
                return 2
            else:
                tasks = [t for t in tasks if t.name not in tb.whole.left_out]
            only, remeasure = getattr(args, "knobs", ()), args.repeats is None
            run_dir = tune_suite(
                tasks, opts, budget_s, only=only, remeasure=remeasure, command=args.command, plan=tb, fit=not options
            )
        else:
            run_dir = run_suite(tasks, opts, resize=fitted.replan if fitted else None, command=args.command)
    except RunStopped as e:
        return stopped(e.run_dir, e)
    except OSError as e:  # --out unwritable: nothing has started
        print(f"error: {e.strerror if e.strerror else e}", file=sys.stderr)
        return 2
    except ValueError as e:  # --knobs naming no knob of these backends: nothing has started
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM during the run (stopsignal)
        return stopsignal.exit_code(e)
    code = finish(run_dir, args.reference)
    if tuning:  # what the tune found, as summary.md says it: the .best table's sentence reads the rows as they ran
        print("\n".join(tuning_report.terminal_lines(latest_records(read_records(run_dir)), run_dir)))
    if fitted is not None:
        budget_cli.report(run_dir, fitted)
    return code


def tune_plan(
    tasks: list[TaskSpec], backends: tuple[str, ...], budget_s: float, out: Path, repeats: int = 1
) -> TuneBudget | None:
    """The tune's plan, said before it starts (bench.run.tune_budget); None, refused in one line, where ``budget_s``
    cannot hold even one task's default and best rows at their fewest epochs, as earlier runs measured the rows (a
    1 s budget skipped every race configuration and ran at thousands of % of itself). Where no run measured a row,
    the start says its part is not known before the race measures it. ``repeats``: the fresh processes of each row."""
    tb = plan_tune(tasks, backends, budget_s, out, repeats, RACE_SHARE)
    if tb.whole.left_out and not tb.whole.epochs:
        print(
            f"error: --budget {budget_s:.0f}s is less than the tune needs at least: its default and best rows at "
            f"their fewest epochs take ~{tb.whole.whole_floor_s:.0f}s on this machine, after ~{tb.imports_s:.0f}s "
            "importing the frameworks (the costs as earlier runs measured them); run with about --budget "
            f"{needed_s(0.0, tb.whole.whole_floor_s + tb.imports_s)}s",
            file=sys.stderr,
        )
        return None
    print("\n".join(plan_lines(tb)))
    if tb.whole.unknown:
        rows = ", ".join(r.replace("/", " in ") for r in tb.whole.unknown)
        print(
            f"tune: no earlier run measured {rows}: whether --budget {budget_s:.0f}s holds their default and best "
            "rows is not known before the race measures them (the end says how much of the budget the tune took)"
        )
    return tb


def show_run_file_warnings() -> None:
    """An unreadable run file or line is one ``warning: FILE:LINE: ...`` line on stderr, once."""
    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, RunFileWarning):
            print(f"warning: {message}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    warnings.showwarning = show


def main(argv: list[str] | None = None) -> int:
    show_run_file_warnings()
    args = build_parser().parse_args(join_signed_values(sys.argv[1:] if argv is None else argv))
    if args.command == "list":
        return cmd_list(args.data_dir, args.backend)
    if args.command == "data":
        return run_data_command(args)
    if args.command == "report":
        return cmd_report(args)
    if args.command == "compare":
        return cmd_compare(args)
    if args.command == "distributed-launch":
        return cmd_launch(args)
    if args.command == "history":
        return run_history_command(args)
    if args.command == "parity":
        return run_parity_command(args)
    if args.command == "all":
        return cmd_run(list(builtin_tasks()), args)
    if args.command == "tune":
        return cmd_run(args.tasks, args)
    if args.command == "zoo":
        return cmd_run([], args, lambda profile: sweep_tasks(args, profile))
    return cmd_run(args.tasks, args)
