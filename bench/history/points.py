"""One series' points (the store's rows, oldest first) as column arrays, not a DataFrame each.

A store of 19 runs holds ~3,500 series (raw and normalised). Sliced into a DataFrame per series and read
column by column (``points.value``, pandas' attribute lookup, its block manager, a Series per read), the
series took 5 s of an 8.5 s import, nearly all of it pandas' own overhead on a few rows each. Here the rows
of every series are taken column by column once, in series order (``Columns.of``), and a series is a slice
of each column (a view: nothing is copied). The arrays are read-only: a series' points are shared with the
whole store's.

A column holds what a row of the store's frame holds: floats as float64 (NaN where empty), text and the rest
as Python objects (a missing text NaN, as the frame reads it), dates as ``pd.Timestamp``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

# One row of the store, its values by column name (``bench.history.rows.SCHEMA``): a ``Points.row``, or a pandas
# row (``bench.history.failures`` keeps its rows so); ``.get`` gives None for a column the rows were read without.
Row = Mapping[str, Any]


def column_array(col: pd.Series, order: np.ndarray) -> np.ndarray:
    """A frame's column as one read-only array, its rows taken in ``order``: float64 for floats, else Python objects
    (text, bools, dates as ``pd.Timestamp``: what a row of the frame gives, so a point formats as it did)."""
    a = col.to_numpy(float) if pd.api.types.is_float_dtype(col.dtype) else col.to_numpy(object)
    a = a[order]  # a copy of its own (the frame's array is the frame's)
    a.flags.writeable = False
    return a


@dataclass(frozen=True)
class Points:
    """A series' points, oldest first: each of the store's columns as an array (``column_array``)."""

    columns: Mapping[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.columns["value"])

    def __getitem__(self, column: str) -> np.ndarray:
        """The column ("value", "run_id", ...): a float64 array for a float column, dates as ``pd.Timestamp``."""
        return self.columns[column]

    def get(self, column: str) -> np.ndarray:
        """The column, or a None per point where the rows were read without it (a frame made before it was added)."""
        if column in self.columns:
            return self.columns[column]
        return np.full(len(self), None, dtype=object)

    def row(self, i: int) -> dict[str, Any]:
        """Point ``i`` (negative from the newest) as a row: its value in each column."""
        return {c: a[i] for c, a in self.columns.items()}


@dataclass(frozen=True)
class Columns:
    """Every column of a frame as one array, its rows in series order, to be sliced into each series' points."""

    arrays: Mapping[str, np.ndarray]

    @classmethod
    def of(cls, df: pd.DataFrame, order: np.ndarray) -> Columns:
        """``df``'s columns, each taken once in ``order`` (the row numbers of every series, one after another)."""
        return cls({c: column_array(df[c], order) for c in df.columns})

    def points(self, start: int, end: int) -> Points:
        """The points of the series whose rows are ``start`` to ``end`` in series order."""
        return Points({c: a[start:end] for c, a in self.arrays.items()})
