"""``--epochs N`` and ``--max-train N`` of ``run``, ``all``, ``tune`` and ``zoo``: a task's training length and
images from the command line (``add_recipe_options``, the one definition of both).

They override the task spec after its profile, as ``--workers`` does the [distributed] section: the spec records
which keys the command line set (``TaskSpec.flags``, kept in plan.json, so ``--resume`` runs the same and its
errors name the options), the records hold the values (``epochs``, ``n_train``: ``bench compare`` reads a difference
as a recipe row) and ``profile_changes`` names them against the full recipe, as a profile's own sizes are named.
``--budget`` sizes the same two settings to the machine, so the two are not combined: the default budget gives way
to them (``bench all`` runs unbudgeted; a tune's race keeps its share of the tune's default, its default and best
rows train the recipe as given), an explicit ``--budget`` beside them is refused. In a tune they are the recipe its
race is capped by (rung r trains at most ``min(2**r, epochs)`` epochs) and its default and best rows train.
"""

from __future__ import annotations

import argparse
import dataclasses

from bench.core.spec import MAX_EPOCHS, MAX_SUBSET, TaskSpec, spec_from_dict, with_recipe

# option -> (spec section, field): the keys of OPTIONS these two options set
KEYS = {"--epochs": ("train", "epochs"), "--max-train": ("dataset", "max_train")}


def _count(value: str, low: int, high: int) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}") from None
    if not low <= n <= high:
        raise argparse.ArgumentTypeError(f"must be an integer in {low}..{high:,}, got {n}")
    return n


def _epochs(value: str) -> int:
    return _count(value, 1, MAX_EPOCHS)


def _max_train(value: str) -> int:
    return _count(value, 0, MAX_SUBSET)


# each option: its type and help (the same metavar for both)
HELP = {
    "--epochs": (
        _epochs,
        "train every task for N epochs, overriding its spec and profile (recorded in plan.json and each row; "
        "--resume keeps it). Not with --budget, which sizes the epochs itself; `all` then runs unbudgeted, a tune "
        "races within its default budget and trains its default and best rows for N epochs",
    ),
    "--max-train": (
        _max_train,
        "train every task on a seeded subset of at most N training images (0: all of them), overriding its spec "
        "and profile (recorded as --epochs is). Not with --budget",
    ),
}


def add_recipe_options(p: argparse.ArgumentParser) -> None:
    for option, (kind, words) in HELP.items():
        p.add_argument(option, type=kind, metavar="N", help=words)


def options_given(args: argparse.Namespace) -> list[str]:
    """The recipe options the command line gave ("--epochs", "--max-train"), in that order."""
    return [o for o in KEYS if getattr(args, o[2:].replace("-", "_"), None) is not None]


def with_recipe_options(tasks: list[TaskSpec], epochs: int | None, max_train: int | None) -> list[TaskSpec]:
    """Apply --epochs / --max-train to every task, validated as the task file's values would be (SpecError); the
    task records which keys they set (``TaskSpec.flags``) and keeps ``profile_changes`` true against the full recipe."""
    values = {"--epochs": epochs, "--max-train": max_train}
    set_here = {o: v for o, v in values.items() if v is not None}
    if not set_here:
        return tasks
    keys = {f"{KEYS[o][0]}.{KEYS[o][1]}" for o in set_here}  # keys of OPTIONS: what spec_from_dict takes as flags
    out = []
    for t in tasks:
        for option, value in set_here.items():
            section, field = KEYS[option]
            t = with_recipe(t, section, **{field: value})
        t = dataclasses.replace(t, flags=tuple(sorted({*t.flags, *keys})))
        out.append(spec_from_dict(t.to_dict()))  # as a TOML file: a value the spec refuses is said now
    return out


def options_of(spec: TaskSpec) -> list[str]:
    """The recipe options that set ``spec`` (its ``flags``), as the command line spells them ("--epochs")."""
    return [o for o, (section, field) in KEYS.items() if f"{section}.{field}" in spec.flags]
