"""Every figure of a report as files: ``--figures DIR`` writes ``<id>.png`` and ``<id>.svg``.

The report code embeds figures through :func:`archtune.report.html.figure`, which hands each
one to :func:`collect` first; inside :func:`figures_to` that writes it to the folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .figures import DPI

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass
class Sink:
    folder: Path
    written: list[Path] = field(default_factory=list)
    names: set[str] = field(default_factory=set)


_SINK: ContextVar[Sink | None] = ContextVar("archtune_figure_sink", default=None)


@contextmanager
def figures_to(folder: str | Path | None) -> Iterator[list[Path]]:
    """Within the block, every report figure is also written to ``folder`` (None: not);
    yields the list of files written, filled as the report is made."""
    if folder is None:
        yield []
        return
    sink = Sink(Path(folder))
    sink.folder.mkdir(parents=True, exist_ok=True)
    token = _SINK.set(sink)
    try:
        yield sink.written
    finally:
        _SINK.reset(token)


@contextmanager
def paused() -> Iterator[None]:
    """No figure export inside (a report written on the side, such as a study's best run)."""
    token = _SINK.set(None)
    try:
        yield
    finally:
        _SINK.reset(token)


def _name(sink: Sink, ident: str) -> str:
    base = ident.removeprefix("fig-") or "figure"
    name, i = base, 2
    while name in sink.names:
        name, i = f"{base}-{i}", i + 1
    sink.names.add(name)
    return name


def collect(fig: Figure, ident: str) -> None:
    """Write ``fig`` as ``<ident>.png`` and ``<ident>.svg`` when an export is active."""
    sink = _SINK.get()
    if sink is None:
        return

    name = _name(sink, ident)
    for ext in ("png", "svg"):
        path = sink.folder / f"{name}.{ext}"
        tmp = path.with_name(f".{path.name}.tmp")
        fig.savefig(tmp, format=ext, dpi=2 * DPI if ext == "png" else DPI)
        os.replace(tmp, path)
        sink.written.append(path)
