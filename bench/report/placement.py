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
    for r in ok:
        n = r.get("rows_beside")
        if isinstance(n, int | float) and n > 0:
            where = _text(r.get("placement")) or "the whole node"
            lines.append(
                f"- **shared node**: {r['backend']} repeat {r['repeat']} ran on {r.get('node')} ({where}) "
                f"beside {int(n)} other row(s) of this run"
            )
    return lines
