"""Argparse types for numbers in a range, shared by the commands: a bad value is the parser's one line (exit 2), in
the option's own words, before anything runs."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

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
