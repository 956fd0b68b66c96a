"""HTML building blocks for notebook cards: a card with key facts, curves and tables, as
pandas and Optuna objects render themselves. Pure text in, HTML out; each class's
``_repr_html_`` builds its card from these, so this module knows none of those classes.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from html import escape
from typing import Any

from ._svg import COLORS, Series, curve

CARD = ("font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; font-size: 12px; "
        "border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 12px; margin: 2px 0; "
        "display: inline-block; max-width: 980px; background: #fff; color: #1f2328")
CELL = "padding: 1px 8px 1px 0; text-align: {align}; border: none; white-space: nowrap"
BADGE = {"complete": "#1a7f37", "running": "#9a6700", "interrupted": "#bc4c00",
         "stopped": "#bc4c00", "died": "#cf222e", "failed": "#cf222e"}


def pct(v: Any) -> str:
    return "-" if not isinstance(v, int | float) or math.isnan(v) else f"{v * 100:.2f}%"


def short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def num(v: Any, digits: int = 4) -> str:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return "-" if v is None else escape(str(v))
    if isinstance(v, int):
        return f"{v:,}"
    return "-" if math.isnan(v) else f"{v:.{digits}g}"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, bold_row: int | None = None,
          max_rows: int = 40) -> str:
    """A compact table; numbers right-aligned, the rest left; ``bold_row`` highlighted."""
    def cell(v: Any, tag: str = "td") -> str:
        right = isinstance(v, int | float) and not isinstance(v, bool)
        text = num(v) if right else escape(str(v))
        return f'<{tag} style="{CELL.format(align="right" if right else "left")}">{text}</{tag}>'

    head = "".join(cell(h, "th") for h in headers)
    body = []
    for i, row in enumerate(rows[:max_rows]):
        style = ' style="font-weight: 600"' if i == bold_row else ""
        body.append(f"<tr{style}>{''.join(cell(v) for v in row)}</tr>")
    if len(rows) > max_rows:
        body.append(f'<tr><td colspan="{len(headers)}" style="color: #666">... '
                    f'{len(rows) - max_rows} more</td></tr>')
    return (f'<table style="border-collapse: collapse; margin: 4px 0; font-size: 11px">'
            f'<thead><tr style="border-bottom: 1px solid #d0d7de">{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


def card(title: str, facts: Sequence[tuple[str, str]], *, badge: str | None = None,
         figures: Sequence[str] = (), below: Sequence[str] = ()) -> str:
    """Title (and status badge), key facts on the left, curves on the right, tables below."""
    tag = ""
    if badge:
        color = BADGE.get(badge, "#57606a")
        tag = (f' <span style="background: {color}; color: #fff; border-radius: 8px; '
               f'padding: 0 6px; font-size: 11px">{escape(badge)}</span>')
    rows = "".join(f'<tr><td style="{CELL.format(align="left")}; color: #57606a">{escape(k)}</td>'
                   f'<td style="{CELL.format(align="left")}">{v}</td></tr>' for k, v in facts)
    figs = "".join(f"<div>{f}</div>" for f in figures if f)
    return (f'<div class="archtune-card" style="{CARD}">'
            f'<div style="font-size: 13px; font-weight: 600; margin-bottom: 4px">{title}{tag}</div>'
            f'<div style="display: flex; gap: 16px; align-items: flex-start; flex-wrap: wrap">'
            f'<table style="border-collapse: collapse; font-size: 12px">{rows}</table>{figs}</div>'
            f'{"".join(below)}</div>')


def history_figures(rows: Sequence[dict[str, float]]) -> list[str]:
    """Accuracy and loss per epoch, train and dev."""
    def col(key: str) -> list[float]:
        return [float(r.get(key, math.nan)) for r in rows]

    return [curve([Series("train", col("train_accuracy"), COLORS["train"]),
                   Series("dev", col("dev_accuracy"), COLORS["dev"])], title="accuracy / epoch",
                  percent=True),
            curve([Series("train", col("train_loss"), COLORS["train"]),
                   Series("dev", col("dev_loss"), COLORS["dev"])], title="loss / epoch")]



def in_notebook() -> bool:
    """True inside a Jupyter kernel (a notebook, JupyterLab, VS Code, nbclient), not in a
    terminal IPython or plain Python."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})
