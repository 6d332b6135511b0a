"""The shell both pages share (a run's index.html, the history dashboard): one file, no network.

Everything a page needs is inside it (style, data, scripts), so it opens from disk with no
server and no CDN. Text from run files (task names, errors, notes) is untrusted: it is escaped
into HTML, and data goes into a JSON script block with ``<`` escaped, so no record can close the
block or inject markup.
"""

from __future__ import annotations

import html
import json
from typing import Any

# matplotlib's tab10, which the PNG plots use ("C0".. "C9" in bench.report.backends.colour)
TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1400px;padding:0 1.2em 3em;color:#222}
h1{font-size:1.5em}h2{margin-top:2em;border-bottom:1px solid #ddd}h3{margin-top:1.4em}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f3f3f3;cursor:pointer;white-space:nowrap}td:first-child,th:first-child{text-align:left}
tr:nth-child(even) td{background:#fafafa}.sep{background:#fff0b3!important;font-weight:600}
.overlap{color:#777}.bad{color:#b00}.small{color:#555;font-size:.9em}
.gallery{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-start}
.gallery figure{margin:0;flex:1 1 300px;max-width:100%}.gallery img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}code{background:#f3f3f3;padding:0 3px}
"""

SORT_SCRIPT = """
document.querySelectorAll('table.sortable th').forEach((th, col) => th.addEventListener('click', () => {
  const body = th.closest('table').tBodies[0], rows = Array.from(body.rows);
  const dir = th.dataset.dir === 'asc' ? -1 : 1; th.dataset.dir = dir > 0 ? 'asc' : 'desc';
  const key = r => { const c = r.cells[col]; const v = c ? (c.dataset.v ?? c.textContent) : '';
                     const n = parseFloat(v); return isNaN(n) ? v : n; };
  rows.sort((a, b) => { const x = key(a), y = key(b);
    return (typeof x === typeof y ? (x < y ? -1 : x > y ? 1 : 0) : (typeof x === 'number' ? -1 : 1)) * dir; });
  rows.forEach(r => body.appendChild(r));
}));
"""


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def json_block(element_id: str, data: Any) -> str:
    """``data`` as a JSON script block the page's script reads; ``<`` escaped so it cannot close the block."""
    text = json.dumps(data, allow_nan=False, default=str).replace("<", "\\u003c")
    return f'<script type="application/json" id="{esc(element_id)}">{text}</script>'


def page(title: str, body: str, scripts: tuple[str, ...] = ()) -> str:
    """A whole HTML document: the style, ``body`` and each script inlined."""
    inline = "".join(f"<script>{s}</script>" for s in scripts)
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>'
        f"<body>{body}{inline}</body></html>\n"
    )


def table(header: list[str], rows: list[list[tuple[str, Any, str]]], table_id: str = "", sortable: bool = True) -> str:
    """A table; each cell is (shown text, sort value or None, css class)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td{cell_attrs(v, cls)}>{esc(text)}</td>" for text, v, cls in row) + "</tr>" for row in rows
    )
    ident = f' id="{esc(table_id)}"' if table_id else ""
    kind = "sortable" if sortable else ""
    return f'<table{ident} class="{kind}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def cell_attrs(value: Any, cls: str) -> str:
    attrs = f' data-v="{esc(value)}"' if value is not None else ""
    return attrs + (f' class="{esc(cls)}"' if cls else "")
