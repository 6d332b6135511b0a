"""The shell both pages share (a run's index.html, the history dashboard): one file, no network.

Everything a page needs is inside it (style, data, scripts), so it opens from disk with no
server and no CDN. Text from run files (task names, errors, notes) is untrusted: it is escaped
into HTML, and data goes into a JSON script block with ``<`` escaped, so no record can close the
block or inject markup.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

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
figcaption{font-size:.85em;color:#555}code{background:#f3f3f3;padding:0 3px}nav{margin:.8em 0}
.wide{overflow-x:auto;max-width:100%}
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


@dataclass
class Contents:
    """A page's contents list, filled as its parts' headings are written: it links just the parts the page has."""

    entries: list[tuple[str, str]] = field(default_factory=list)  # (id, the heading as escaped HTML)

    def heading(self, label: str, ident: str) -> str:
        """An ``<h2>`` of ``label`` (escaped HTML) listed in the contents, its id ``ident`` (with -2, -3... when
        the page has that id already)."""
        taken = {i for i, _ in self.entries}
        unique, n = ident, 1
        while unique in taken:
            n += 1
            unique = f"{ident}-{n}"
        self.entries.append((unique, label))
        return f'<h2 id="{esc(unique)}">{label}</h2>'

    def html(self) -> str:
        """The list as one line of links ("" when the page has no part)."""
        links = " · ".join(f'<a href="#{esc(i)}">{label}</a>' for i, label in self.entries)
        return f'<nav id="contents"><b>Contents</b>: {links}</nav>' if links else ""


def slug(text: str) -> str:
    """An id made of a heading's words: letters, digits and dashes only, so no heading text can break out of it."""
    return "sec-" + (re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "part")


def table(header: list[str], rows: list[list[tuple[str, Any, str]]], table_id: str = "", sortable: bool = True) -> str:
    """A table; each cell is (shown text, sort value or None, css class)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td{cell_attrs(v, cls)}>{esc(text)}</td>" for text, v, cls in row) + "</tr>" for row in rows
    )
    ident = f' id="{esc(table_id)}"' if table_id else ""
    kind = "sortable" if sortable else ""
    return scrolled(f'<table{ident} class="{kind}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>')


def scrolled(table_html: str) -> str:
    """A table in a box that scrolls sideways: a 10-class confusion matrix at 560 px, or the scaling table at
    1200, ran past the page's edge and the whole page scrolled (its text too)."""
    return f'<div class="wide">{table_html}</div>'


def cell_attrs(value: Any, cls: str) -> str:
    attrs = f' data-v="{esc(value)}"' if value is not None else ""
    return attrs + (f' class="{esc(cls)}"' if cls else "")


def figure(name: str, caption: str) -> str:
    """A plot of the run's ``plots/`` folder, linked to its file."""
    src = "plots/" + quote(name)
    return (
        f'<figure><a href="{src}"><img src="{src}" alt="{esc(caption)}" loading="eager"></a>'
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


# The Markdown that summary.md's sections write, and no more: headings, paragraphs, "- " lists, pipe tables (as
# pandas/tabulate write them), a picture alone on its line, our own <details><summary> lines, **bold** and `code`.
# Everything is escaped first: section text carries record text (errors, notes, task names) anyone can edit.
_IMAGE = re.compile(r"!\[([^\]]*)\]\(plots/([^)\s]+)\)")
_INLINE = re.compile(r"`([^`]+)`|\*\*(.+?)\*\*")
_RULE = re.compile(r"\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?")
_DETAILS = re.compile(r"<details><summary>(.*)</summary>")


def inline(text: str) -> str:
    """One line of Markdown text as escaped HTML, with its `code` and **bold** spans."""
    out, at = [], 0
    for m in _INLINE.finditer(text):
        out.append(esc(text[at : m.start()]))
        out.append(f"<code>{esc(m[1])}</code>" if m[1] is not None else f"<b>{inline(m[2])}</b>")
        at = m.end()
    return "".join(out) + esc(text[at:])


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().removeprefix("|").removesuffix("|").split("|")]


def _md_table(lines: list[str]) -> str:
    head = "".join(f"<th>{inline(c)}</th>" for c in _cells(lines[0]))
    rows = "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in _cells(line)) + "</tr>" for line in lines[2:])
    return scrolled(f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>')


def markdown_html(text: str, plots: Collection[str], shown: set[str], contents: Contents | None = None) -> str:
    """summary.md's Markdown of a section as HTML for a run's page. A picture is shown when ``plots`` (the run's
    plot files) holds it and ``shown`` (the pictures already on the page, updated here) does not: each plot once,
    and none that was not drawn; pictures one after the other go side by side. Each ``## `` heading is listed in
    ``contents`` when given."""
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    gallery: list[str] = []  # figures waiting to go side by side
    para: list[str] = []
    items: list[str] = []

    def flush() -> None:
        if para:
            out.append(f"<p>{inline(' '.join(para))}</p>")
            para.clear()
        if items:
            out.append("<ul>" + "".join(f"<li>{inline(t)}</li>" for t in items) + "</ul>")
            items.clear()

    def flush_gallery() -> None:
        if gallery:
            out.append('<div class="gallery">' + "".join(gallery) + "</div>")
            gallery.clear()

    while i < len(lines):
        line = lines[i].rstrip()
        i += 1
        if not line.strip():
            flush()
            continue
        if image := _IMAGE.fullmatch(line.strip()):
            flush()
            name = image[2]
            if name in plots and name not in shown:
                shown.add(name)
                gallery.append(figure(name, image[1]))
            continue
        flush_gallery()
        if heading := re.fullmatch(r"(#{1,6}) (.*)", line):
            flush()
            level = len(heading[1])
            if level == 2 and contents is not None:
                out.append(contents.heading(inline(heading[2]), slug(heading[2])))
            else:
                out.append(f"<h{level}>{inline(heading[2])}</h{level}>")
        elif line.startswith("|") and i < len(lines) and _RULE.fullmatch(lines[i].strip()):
            flush()
            block = [line]
            while i < len(lines) and lines[i].startswith("|"):
                block.append(lines[i])
                i += 1
            out.append(_md_table(block))
        elif details := _DETAILS.fullmatch(line):
            flush()
            out.append(f"<details><summary>{inline(details[1])}</summary>")
        elif line == "</details>":
            flush()
            out.append("</details>")
        elif line.startswith("- "):
            if para:
                flush()
            items.append(line[2:])
        elif items and line.startswith("  "):  # a list item's continuation
            items[-1] += " " + line.strip()
        else:
            if items:
                flush()
            para.append(line.strip())
    flush()
    flush_gallery()
    return "".join(out)
