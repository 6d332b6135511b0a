"""Where a comparison's rows ran: summary.md's warnings when they ran on different kinds of device, or beside
other rows of the run on one node (bench.core.placement; the columns are empty in runs made before them)."""

from __future__ import annotations

from typing import Any


def _text(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


def placement_warnings(rows: list[dict[str, Any]]) -> list[str]:
    """summary.md lines for one task's rows (its comparison): mixed device kinds, rows that shared a node."""
    ok = [r for r in rows if r.get("status") == "ok"]
    lines = []
    kinds = {d for r in ok if (d := _text(r.get("device")))}
    if len(kinds) > 1:
        each = ", ".join(f"{r['backend']} repeat {r['repeat']}: {r.get('device')}" for r in ok)
        lines.append(
            f"- **different devices**: the rows of this comparison ran on {len(kinds)} kinds of device "
            f"({each}); their ratios compare the devices as much as the frameworks"
        )
    for backend in dict.fromkeys(r["backend"] for r in ok):  # repeats of one backend pooled into one figure
        mine = [r for r in ok if r["backend"] == backend]
        threads = {r.get("threads") for r in mine if isinstance(r.get("threads"), int)}
        executors = {e for r in mine if (e := _text(r.get("executor")))}
        if len(threads) > 1 or len(executors) > 1:
            each = ", ".join(f"repeat {r['repeat']}: {r.get('threads')} threads, {r.get('executor')}" for r in mine)
            lines.append(
                f"- **repeats ran differently**: {backend}'s repeats ran on different threads or executors ({each}: "
                "a run resumed elsewhere); their median and interval pool unlike measurements"
            )
    for r in ok:
        n = r.get("rows_beside")
        if isinstance(n, int | float) and n > 0:
            where = _text(r.get("placement")) or "the whole node"
            lines.append(
                f"- **shared node**: {r['backend']} repeat {r['repeat']} ran on {r.get('node')} ({where}) "
                f"beside {int(n)} other row(s) of this run"
            )
    return lines
