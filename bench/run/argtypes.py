"""Argparse types shared by the commands (numbers in a range, thresholds, folders, files to write, backend names): a
bad value is the parser's one line (exit 2), in the option's own words, before anything runs."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import backends

N = TypeVar("N", int, float)


def in_range(value: str, cast: Callable[[str], N], low: N, high: N, not_a_number: str, out_of_range: str) -> N:
    """``value`` as ``cast`` makes it, within ``low``..``high``; else ArgumentTypeError with ``not_a_number`` or
    ``out_of_range`` (each a format string that may name ``{value}``, and the latter ``{n}``, the number read)."""
    try:
        n = cast(value)
    except ValueError:
        raise argparse.ArgumentTypeError(not_a_number.format(value=repr(value))) from None
    if not low <= n <= high:
        raise argparse.ArgumentTypeError(out_of_range.format(n=n, value=value))
    return n


def backend_names(value: str) -> tuple[str, ...]:
    """Comma-separated registry names, or ``all`` (every registered backend, in registry order)."""
    if value.strip() == "all":
        return backends.names()
    names = tuple(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))  # torch,torch: one row
    unknown = [n for n in names if n not in backends.BACKENDS]
    if unknown or not names:
        known = ", ".join(backends.names())
        raise argparse.ArgumentTypeError(f"unknown backend(s) {unknown or value!r} (choose from {known}, or all)")
    return names


def integer(value: str, low: int, high: int | None = None) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}") from None
    if n < low or (high is not None and n > high):
        raise argparse.ArgumentTypeError(
            f"must be >= {low}, got {n}" if high is None else f"must be an integer in {low}..{high}, got {n}"
        )
    return n


def output_file(value: str) -> Path:
    """A file to write: refused at parse time, before any output (a late failure would exit 1, "regression")."""
    path = Path(value)
    folder = path.absolute().parent
    if os.path.isdir(path):
        raise argparse.ArgumentTypeError(f"{path} is a directory")
    if os.path.exists(path) and not os.path.isfile(path):  # a FIFO's open would wait for a reader forever
        raise argparse.ArgumentTypeError(f"{path} is not a regular file")
    if not os.path.isdir(folder):
        raise argparse.ArgumentTypeError(f"folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise argparse.ArgumentTypeError(f"{path} cannot be written (permission denied)")
    return path


def positive(value: str) -> int:
    return integer(value, 1)


def number(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if math.isnan(x):
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}")
    return x


def seconds(value: str) -> float:
    """A time limit: finite and > 0 (0 or a negative limit would stop every run before it starts)."""
    x = number(value)
    if not 0 < x < math.inf:
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {value}")
    return x


def threshold(value: str) -> float:
    """A regression threshold: >= 0 (a negative one would flag every unchanged metric) and finite (inf turned its
    gate off without a word)."""
    x = number(value)
    if x < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    if x == math.inf:
        raise argparse.ArgumentTypeError(f"must be finite, got {value} (it would judge nothing)")
    return x


def fraction(value: str) -> float:
    """A relative threshold (0.1 = 10%), at most 1: a figure twice as slow or as large. 50 had let a figure move
    51-fold unflagged, where 50% (0.5) was meant; no guard means more than doubling."""
    x = threshold(value)
    if x > 1:
        raise argparse.ArgumentTypeError(
            f"must be a fraction in [0, 1] (0.1 = 10%), got {value}: write {x / 100:g} for {value}%"
        )
    return x


def accuracy_drop(value: str) -> float:
    """An absolute accuracy drop: accuracy is in [0, 1], so a threshold above 1 turns the gate off without a word
    (2 or inf were accepted); 1 itself is the one explicit way to leave accuracy unjudged."""
    x = threshold(value)
    if x > 1:
        raise argparse.ArgumentTypeError(
            f"must be in [0, 1]: accuracy is a fraction (0.01 = 1 point), got {value}"
            + (f"; write {x / 100:g} for {value} points" if x <= 100 else "")
        )
    return x


def folder(value: str) -> Path:
    """--out / --results: a folder; an empty one is a usage error (Path("") is the working folder: QA found
    `--out ""` writing the run and its history there)."""
    if not value.strip():
        raise argparse.ArgumentTypeError("an empty folder name (give a path; . for this folder)")
    return Path(value)
