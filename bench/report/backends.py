"""Which backends a report shows, in which order, under which label and colour, and against which reference.

Every table, summary section and plot lists the backends a run has in the registry's order
(``backends.BACKENDS``), labels them with the registry's ``display`` and draws each in its own
colour, the same in every figure. A run file may name a backend this checkout no longer has:
it comes after the registered ones, alphabetically, under its raw name. Ratios divide each
backend's figure by the reference backend's: the one ``--reference`` names (``bench report`` without it:
the one the run was started with, from plan.json), else the registry's first backend the run has rows of
(torch when it ran), so a run of one backend has no ratio column. Only the registry knows backend names;
nothing here spells one.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from backends import BACKENDS

if TYPE_CHECKING:  # a type only: the command line's parser reads this module, and pandas is 0.4 s of its start
    import pandas as pd

DEFAULT_REFERENCE = next(iter(BACKENDS))
COLOURS = 10  # matplotlib's default cycle, C0..C9


def ordered(names: Iterable[str]) -> list[str]:
    """``names`` without repeats, registered backends in registry order, then the others alphabetically."""
    known = list(BACKENDS)
    return sorted(set(names), key=lambda b: (known.index(b), "") if b in BACKENDS else (len(known), b))


def label(name: str) -> str:
    """The registry's short display label (e.g. "PyTorch"); the raw name for an unregistered backend."""
    info = BACKENDS.get(name)
    return getattr(info, "display", "") or name


def colour(name: str) -> str:
    """A matplotlib colour fixed per backend: the registry index; an unregistered name hashes past them."""
    if name in BACKENDS:
        return f"C{list(BACKENDS).index(name) % COLOURS}"
    spare = max(1, COLOURS - len(BACKENDS))
    return f"C{(len(BACKENDS) + zlib.crc32(name.encode()) % spare) % COLOURS}"


def ratio_name(backend: str, reference: str) -> str:
    """The ratio column of ``backend`` against the reference, in registry names (as --backend spells them)."""
    return f"{backend}/{reference}"


def reference_of(names: Iterable[str], reference: str | None = None) -> str:
    """The backend ratios divide by: ``reference`` where ``--reference`` named one (the commands refuse one the run
    has no rows of; a caller that passes one anyway gets ratio cells that say so), else the registry's first among
    ``names``, the run's rows of any status (a failed torch row still says "torch failed"). A run of ``--backend
    keras`` alone is then its own reference: no ratio column, rather than one reading "no torch row" on every line."""
    return reference or next(iter(ordered(names)), DEFAULT_REFERENCE)


def planned_reference(plan: dict[str, Any]) -> str | None:
    """The ``--reference`` a run was started with (plan.json's ``options.reference``), or None where it had none
    (an older plan, or one not naming a registered backend): ``bench report RUN`` without ``--reference`` had
    re-reported a ``--reference keras`` run against torch."""
    options = plan.get("options")
    name = options.get("reference") if isinstance(options, dict) else None
    return name if isinstance(name, str) and unknown_reference(name) is None else None


def unknown_reference(name: str) -> str | None:
    """Why ``name`` cannot be the reference (naming the known backends), or None when it can."""
    if name in BACKENDS:
        return None
    return f"unknown backend {name!r} (choose from {', '.join(BACKENDS)})"


def reference_missing(rows: pd.DataFrame, reference: str) -> str | None:
    """What a ratio cell says when the reference has no ok row among ``rows`` (None when it has one)."""
    ref = rows[rows.backend == reference]
    if (ref.status == "ok").any():
        return None
    if ref.empty:
        return f"no {reference} row"
    return f"{reference} " + "/".join(sorted(set(ref.status.astype(str))))
