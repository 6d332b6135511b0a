"""``python -m bench all | list | run``: the suite's command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from backends import BACKENDS, missing_packages
from bench import environment
from bench.report import terminal_summary
from bench.runner import RunOptions, run_suite
from bench.spec import PROFILES, SpecError, TaskSpec, builtin_tasks, load_task
from datasets import registry

FAILED = ("failed", "timeout", "interrupted")


def _backends(value: str) -> tuple[str, ...]:
    names = tuple(v.strip() for v in value.split(",") if v.strip())
    unknown = [n for n in names if n not in BACKENDS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown backend(s) {unknown or value!r} (choose from {', '.join(BACKENDS)})")
    return names


def _positive(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {n}")
    return n


def _run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--backend", type=_backends, default=tuple(BACKENDS), help="comma-separated backends (default: %(default)s)"
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
        type=Path,
        default=environment.REPO / "results",
        help="where results/<run-id>/ is created (default: %(default)s)",
    )
    p.add_argument("--repeats", type=_positive, default=1, help="runs per (task, backend) (default: 1)")
    p.add_argument("--seed", type=int, help="override every task's seed")
    p.add_argument(
        "--timeout",
        type=float,
        default=3600.0,
        help="per-run limit in seconds; a run over it is stopped and recorded as timeout",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    p_run = sub.add_parser(
        "run",
        help="run named built-in tasks or TOML files",
        description="Run the given built-in tasks (see `list`) or task TOML files.",
    )
    p_run.add_argument("tasks", nargs="+", metavar="TASK_OR_TOML")
    _run_options(p_run)
    p_list = sub.add_parser(
        "list",
        help="list built-in tasks, datasets and backends",
        description="List built-in tasks, where each dataset resolves, and which backends are installed.",
    )
    p_list.add_argument("--data-dir", help="also look for dataset files here (as `run --data-dir`)")
    return parser


def resolve_profile(requested: str) -> str:
    if requested != "auto":
        return requested
    gpus = environment.gpus()
    profile = "full" if gpus else "quick"
    print(f"profile: {profile} ({'GPU: ' + gpus[0] if gpus else 'no GPU found'}; choose with --profile)")
    return profile


def cmd_list(data_dir: str | None = None) -> int:
    print("tasks:")
    for name, path in builtin_tasks().items():
        t = load_task(path)
        print(f"  {name:24s} {t.model.arch:10s} {t.dataset.name:9s} {t.description}")
    print("datasets:")
    for name, info in registry.DATASETS.items():
        path = registry.find_file(name, data_dir)
        where = str(path) if path else ("embedded default" if info.embedded else "not found")
        print(f"  {name:24s} {where}")
    print("backends:")
    for name in BACKENDS:
        missing = missing_packages(name)
        print(f"  {name:24s} {'missing: ' + ', '.join(missing) if missing else 'installed'}")
    return 0


def not_yet_supported(task: TaskSpec) -> list[str]:
    """Spec parts that parse but that this version cannot run yet: refused, never ignored."""
    parts = []
    if task.transfer:
        parts.append("[[transfer]] targets (cross-dataset evaluation)")
    if task.explain.gradcam or task.explain.saliency:
        parts.append("explain.gradcam / explain.saliency")
    return parts


def cmd_run(task_names: list[str], args: argparse.Namespace) -> int:
    profile = resolve_profile(args.profile)
    try:
        tasks: list[TaskSpec] = [load_task(t, profile) for t in task_names]
        for t in tasks:
            if parts := not_yet_supported(t):
                raise SpecError(f"{t.source}: not supported yet by this version of bench: {', '.join(parts)}")
        registry.search_dirs(args.data_dir)  # a mistyped --data-dir fails before any work
    except (SpecError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    opts = RunOptions(
        backends=args.backend,
        data_dir=args.data_dir,
        out=args.out,
        repeats=args.repeats,
        seed=args.seed,
        timeout_s=args.timeout,
    )
    try:
        run_dir = run_suite(tasks, opts)
    except KeyboardInterrupt:
        print("\ninterrupted: finished runs are kept in records.jsonl", file=sys.stderr)
        return 130
    from bench.results import read_records, table

    df = table(read_records(run_dir))
    print(terminal_summary(df))
    print(f"\nwrote {run_dir}/ (records.jsonl, results.csv, summary.md, environment.json, plots/, logs/)")
    return 1 if df.status.isin(FAILED).any() else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "list":
        return cmd_list(args.data_dir)
    if args.command == "all":
        return cmd_run(list(builtin_tasks()), args)
    return cmd_run(args.tasks, args)
