"""A task's ``[knobs.NAME]`` tables held against the backend registry before anything runs (`bench run`, `all`,
`tune`, `distributed-launch`): a table for a backend that does not exist is a typo that would change nothing."""

from __future__ import annotations

import backends
from bench.core.spec import SpecError, TaskSpec


def refuse_unknown_knob_backends(tasks: list[TaskSpec]) -> None:
    """SpecError (exit 2) naming the first ``[knobs.NAME]`` table whose NAME is no registered backend."""
    for t in tasks:
        for name, _ in t.knobs:
            if name not in backends.BACKENDS:
                raise SpecError(
                    f"{t.source}: knobs.{name}: unknown backend (expected one of: {', '.join(backends.BACKENDS)})"
                )
