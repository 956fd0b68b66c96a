"""HTML building blocks of the reports: escaped tables, embedded figures, one page template.

A report is a single self-contained file: figures are base64 PNGs inside ``<img>`` tags, the
only script is the small inline table sorter of ``page.html``, nothing is fetched.
"""

from __future__ import annotations

import html
import math
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Any

from .._version import __version__
from .export import collect
from .figures import png_base64

if TYPE_CHECKING:
    from matplotlib.figure import Figure


class Html(str):
    """Markup that is already safe (not escaped again)."""


@dataclass
class Section:
    id: str
    title: str
    body: str
    css: str = ""  # extra class of the <section>: "page" starts a new page when printed


def esc(value: Any) -> str:
    return value if isinstance(value, Html) else html.escape(str(value))


def num(value: Any, digits: int = 4) -> str:
    """A number for a table: ints with thousands separators, floats with ``digits`` digits."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.{digits}g}" if abs(value) < 1e-3 and value != 0 else f"{value:.{digits}f}"
    return str(value)


def pct(value: float | None, digits: int = 2) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value * 100:.{digits}f}%"


Cell = Any  # a value, Html, or (shown, sort_value)


def _cell(value: Cell) -> str:
    sort = None
    if isinstance(value, tuple):
        value, sort = value
    if sort is None and isinstance(value, int | float) and not isinstance(value, bool):
        sort = value  # sort on the raw number, not on its formatted text ("1,234")
    numeric = isinstance(sort, int | float) and not isinstance(sort, bool)
    text = esc(value) if isinstance(value, str) else esc(num(value))
    attrs = ' class="num"' if numeric else ""
    if sort is not None:
        attrs += f' data-v="{esc(sort)}"'
    return f"<td{attrs}>{text}</td>"


def table(headers: Sequence[str], rows: Iterable[Sequence[Cell]], *, id: str | None = None,
          sortable: bool = False, scroll: bool = False) -> str:
    """An HTML table; a cell may be ``(shown, sort_value)`` so sorting uses the raw number."""
    cls = ' class="sortable"' if sortable else ""
    ident = f' id="{esc(id)}"' if id else ""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "\n".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows)
    out = f"<table{ident}{cls}><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>"
    return f'<div class="scroll">{out}</div>' if scroll else out


def kv_table(items: Iterable[tuple[str, Cell]], *, id: str | None = None) -> str:
    """Two-column key/value table; each value cell gets an id ``<table id>-<key>`` for tests."""
    rows = []
    for key, value in items:
        cell = _cell(value)
        if id:
            slug = "".join(c if c.isalnum() else "-" for c in key.lower()).strip("-")
            cell = cell.replace("<td", f'<td id="{esc(id)}-{slug}"', 1)
        rows.append(f"<tr><th>{esc(key)}</th>{cell}</tr>")
    ident = f' id="{esc(id)}"' if id else ""
    return f"<table{ident}><tbody>{''.join(rows)}</tbody></table>"


def cards(items: Iterable[tuple[str, str]]) -> str:
    return '<div class="cards">' + "".join(
        f'<div class="card"><div class="k">{esc(k)}</div><div class="v">{esc(v)}</div></div>'
        for k, v in items) + "</div>"


def figure(fig: Figure, caption: str, *, id: str, alt: str | None = None) -> str:
    """Embed a matplotlib figure as a base64 PNG (the figure is closed afterwards)."""

    collect(fig, id)  # --figures DIR: also written as PNG and SVG files
    data = png_base64(fig)
    fig.clear()
    return (f'<figure id="{esc(id)}"><img alt="{esc(alt or caption)}" '
            f'src="data:image/png;base64,{data}"><figcaption>{esc(caption)}</figcaption></figure>')


def pre(text: str) -> str:
    return f"<pre>{esc(text)}</pre>"


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def details(summary: str, body: str) -> str:
    return f"<details><summary>{esc(summary)}</summary>{body}</details>"


def link(href: str, text: str) -> Html:
    return Html(f'<a href="{esc(href)}">{esc(text)}</a>')


def _section(s: Section) -> str:
    css = f' class="{esc(s.css)}"' if s.css else ""
    return f'<section id="{esc(s.id)}"{css}><h2>{esc(s.title)}</h2>\n{s.body}\n</section>'


def render_page(title: str, subtitle: str, sections: Sequence[Section]) -> str:
    """The whole page: header, table of contents and sections, from ``page.html``."""
    template = Template(resources.files("archtune.report").joinpath("page.html").read_text())
    nav = "\n".join(f'<a href="#{esc(s.id)}">{esc(s.title)}</a>' for s in sections)
    body = "\n".join(_section(s) for s in sections)
    return template.substitute(title=esc(title), subtitle=esc(subtitle), nav=nav, body=body,
                               version=esc(__version__),
                               generated=time.strftime("%Y-%m-%d %H:%M"))


def write_atomic(path: str | Path, text: str) -> Path:
    """Write text to a temp file next to ``path`` and rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
