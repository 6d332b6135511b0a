"""``python -m bench parity TASK``: the training-parity check for a task's model, as a table of columns.

The task's model and recipe (augmentation off), the first ``--images`` training images of its data (all of them,
said in a line, where it holds fewer) and 32 test images held out, every backend from the reference's initial
weights (bench.run.parity). Per backend pair and checkpoint: the largest weight and held-out logit difference,
the fp32 bound and whether the pair is within it. A pair outside its bound with every convention aligned (the
default) exits 1, said in a last line naming the pair and the step; with some left as shipped (``--align none``)
the line says so and the command exits 0. A model whose builds are not one network, or that a backend
cannot hand over, gets a row that says so and the command still exits 0; a task or option that is wrong exits 2;
Ctrl-C stops every backend's worker, renames the check's folder ``<name>-interrupted`` and exits 130.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import backends
from bench.core.parity import ALIGNMENTS, AS_SHIPPED, CHECKPOINTS, ParityError, check_alignments
from bench.core.runfiles import RunFileError, make_folder, write_atomic
from bench.core.spec import SpecError, load_task
from bench.measure.parity import PairDiff
from bench.report.backends import label
from bench.run.argtypes import backend_names
from bench.run.parity import IMAGES, Case, CaseResult, data_case, nothing_to_compare, run_check
from bench.run.task_data import load_task_data
from datasets import registry

COLUMNS = (
    "task",
    "pair",
    "step",
    "max_weight_diff",
    "max_logit_diff",
    "bound_weight",
    "bound_logit",
    "within",
    "alignments",
    "status",
)


def add_parity_parser(sub: Any) -> None:
    p = sub.add_parser(
        "parity",
        help="train the task's model in every backend from one init and compare weights and logits",
        description="Training parity: the same initial weights, batches and order in every backend, "
        "augmentation off; the largest weight and held-out logit difference per backend pair after each "
        "checkpoint, against the fp32 rounding bound (docs/methodology.md). Exits 1 when a pair is outside its "
        "bound with every convention aligned (the default --align), naming the pair and the step in a last line.",
    )
    p.add_argument("task", metavar="TASK_OR_TOML")
    p.add_argument("--backend", type=backend_names, default=backends.names(), help="backends to compare (default: all)")
    p.add_argument("--steps", type=_steps, default=CHECKPOINTS, help="checkpoints, e.g. 1,10,100 (the default)")
    p.add_argument(
        "--images",
        type=_positive,
        default=IMAGES,
        help="training images the steps cycle over (all the task's, said in a line, where it holds fewer)",
    )
    p.add_argument(
        "--align",
        type=_alignments,
        default=tuple(ALIGNMENTS),
        help=f"conventions aligned: all (default), shipped (as the suite's rows), none, or a list of "
        f"{', '.join(ALIGNMENTS)}",
    )
    p.add_argument("--data-dir", help="look for dataset files here (as `run --data-dir`)")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("results") / "parity",
        help="parity.csv and parity.md go in a new folder under it (default: %(default)s)",
    )


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"not a whole number >= 1: {value!r}")
    return int(value)


def _steps(value: str) -> tuple[int, ...]:
    steps = tuple(_positive(v.strip()) for v in value.split(","))
    if list(steps) != sorted(set(steps)) or steps[-1] > 100_000:
        raise argparse.ArgumentTypeError(f"checkpoints must rise and stay <= 100000: {value!r}")
    return steps


def _alignments(value: str) -> tuple[str, ...]:
    """``--align``'s conventions. A value that names none (``''``, ``,``) is refused as an unknown one is: it read as
    ``none``, every convention as shipped, and exited 0 where ``--align bogus`` exits 2 (QA, 2026-12-07)."""
    named = {"all": tuple(ALIGNMENTS), "shipped": AS_SHIPPED, "none": ()}
    if value in named:
        return named[value]
    names = tuple(v.strip() for v in value.split(",") if v.strip())
    if not names:
        raise argparse.ArgumentTypeError(
            f"{value!r} names no alignment: give one of {', '.join(named)}, or a list of {', '.join(ALIGNMENTS)}"
        )
    try:
        return check_alignments(names)
    except ParityError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def task_rows(task: str, result: CaseResult, alignments: tuple[str, ...]) -> list[dict[str, Any]]:
    """The check's columns: one row per backend pair and checkpoint, or one row per reason it has none."""
    aligned = ",".join(alignments) or "none"
    rows = [
        dict.fromkeys(COLUMNS) | {"task": task, "pair": who, "alignments": aligned, "status": f"no check: {why}"}
        for who, why in result.errors.items()
    ]
    for d in result.diffs:
        rows.append(
            {
                "task": task,
                "pair": f"{label(d.a)} vs {label(d.b)}",
                "step": d.step,
                "max_weight_diff": d.weight_diff,
                "max_logit_diff": d.logit_diff,
                "bound_weight": d.bound.weight,
                "bound_logit": d.bound.logit,
                "within": d.within if d.bound.decides else None,
                "alignments": aligned,
                "status": "ok" if d.bound.decides else "undecided",
            }
        )
    return rows


def case_of(task: str, data_dir: str | None, images: int) -> Case:
    spec = load_task(task, "quick", registry.DATASETS)
    return data_case(spec, load_task_data(spec, data_dir, spec.seed), images)


def refuse(why: str) -> int:
    """Bad input: one line on stderr, as every command says it (QA: this one said it on stdout), exit 2."""
    print(f"error: parity: {why}", file=sys.stderr)
    return 2


def run_parity_command(args: argparse.Namespace, echo: Callable[[str], None] = print) -> int:
    if why := nothing_to_compare(args.backend):  # QA: trained the reference twice, then an empty table
        return refuse(why)
    try:
        case = case_of(args.task, args.data_dir, args.images)
    except (SpecError, KeyError, ValueError, FileNotFoundError) as e:
        return refuse(str(e))
    try:  # --out unwritable (a file on its path, no permission): one line before any backend starts
        args.out.mkdir(parents=True, exist_ok=True)
        folder = make_folder(args.out, args.out / f"{case.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    except (OSError, RunFileError) as e:
        return refuse(f"--out {args.out}: {e.strerror if isinstance(e, OSError) and e.strerror else e}")
    # The task's data decides how many images there are (an embedded stand-in or max_train may hold fewer than
    # asked, and the user cannot know which before loading): the check runs on what there is, and says so.
    capped = (
        f"parity: --images {args.images}: {case.name}'s training data holds {len(case.x)} images: the steps cycle "
        f"over those {len(case.x)}"
        if len(case.x) < args.images
        else ""
    )
    if capped:
        echo(capped)
    try:
        result = run_check([case], args.backend, folder / "work", args.steps, args.align, echo)[case.name]
    except KeyboardInterrupt:  # as `bench run` says it; the workers are stopped (bench.run.parity.Workers)
        echo(f"\ninterrupted: parity: nothing compared; {set_apart(folder)}")
        return 130
    import pandas as pd  # here: every `bench` command builds this parser, and pandas is 0.4 s of a start

    table = pd.DataFrame(task_rows(case.name, result, args.align), columns=list(COLUMNS))
    write_atomic(folder, folder / "parity.csv", table.to_csv(index=False).encode())
    text = table.to_markdown(index=False, floatfmt=".3g")
    undecided = dict.fromkeys(f"step {d.step}: {d.bound.why_undecided()}" for d in result.diffs if not d.bound.decides)
    text += "".join(f"\n\n{why}" for why in undecided) + (f"\n\n{capped}" if capped else "")
    last, code = verdict(result, args.align)
    write_atomic(folder, folder / "parity.md", (text + (f"\n\n{last}" if last else "") + "\n").encode())
    echo(text)
    echo(f"parity: {folder}")
    if last:
        echo(last)
    return code


INTERRUPTED = "-interrupted"  # the suffix of a stopped check's folder: no parity.csv, and named so in a listing


def set_apart(folder: Path) -> str:
    """The folder of a check stopped before its table, renamed ``<name>-interrupted`` so no listing takes it for
    a finished check (the runs that finished are kept in its work/); what became of it, as the last line says."""
    done = folder.with_name(folder.name + INTERRUPTED)
    try:
        folder.rename(done)
    except OSError as e:
        return f"{folder} could not be renamed {done.name} ({e.strerror or e}): it is not a finished check"
    return f"its folder is kept as {done} (the runs that finished are in its work/)"


def verdict(result: CaseResult, alignments: tuple[str, ...]) -> tuple[str, int]:
    """The check's last line and exit status: each pair outside its bound at a step the bound decides, with the
    first such step. With every convention aligned that is a failed check (exit 1: the table's ``within`` column
    alone let a script read it as passed); with some left as shipped, apart is what is expected (exit 0)."""
    first: dict[tuple[str, str], PairDiff] = {}
    for d in result.diffs:
        if d.bound.decides and not d.within:
            first.setdefault((d.a, d.b), d)
    if not first:
        return "", 0
    pairs = "; ".join(
        f"{label(d.a)} vs {label(d.b)} from step {d.step} ({d.ratio:.3g}x the bound)" for d in first.values()
    )
    if set(alignments) == set(ALIGNMENTS):
        return f"parity: outside the fp32 bound: {pairs}", 1
    return (
        f"parity: outside the fp32 bound: {pairs}; expected with --align {','.join(alignments) or 'none'}: "
        "conventions left as each framework ships them take the trajectories apart (docs/methodology.md), "
        "so this exits 0",
        0,
    )
