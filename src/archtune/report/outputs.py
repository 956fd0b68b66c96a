"""A report with its optional outputs: the HTML page, a PDF of it (``--pdf``) and every figure
as PNG and SVG files (``--figures DIR``). Chromium is looked for before anything is written."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import export
from .pdf import find_chromium, html_to_pdf


@dataclass
class Outputs:
    html: Path
    pdf: Path | None = None
    figures: list[Path] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"report written to {self.html}"]
        if self.pdf is not None:
            out.append(f"PDF written to {self.pdf} ({pdf_pages(self.pdf)} pages)")
        if self.figures:
            pngs = [p for p in self.figures if p.suffix == ".png"]
            out.append(f"{len(pngs)} figures written to {pngs[0].parent}/ as PNG and SVG")
        return out


def pdf_pages(path: Path) -> str:
    """The page count of a PDF, read from its page tree (or '?')."""
    import re

    counts = re.findall(rb"/Type\s*/Pages\b[^>]*?/Count\s+(\d+)", path.read_bytes())
    return max(counts, key=int).decode() if counts else "?"


def write(make: Callable[[], Path], *, pdf: bool = False,
          figures: str | Path | None = None) -> Outputs:
    """Run ``make`` (which writes the HTML page and returns its path), exporting its figures to
    ``figures``, then print the page to ``<page>.pdf`` when ``pdf``."""
    if pdf:
        find_chromium()  # fail with one line before any work
    with export.figures_to(figures) as written:
        page = make()
    out = Outputs(page, figures=list(written))
    if pdf:
        out.pdf = html_to_pdf(page, page.with_suffix(".pdf"))
    return out
