"""Small inline SVG curves for the HTML cards (no matplotlib, no JavaScript, a few KB)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

COLORS = {"train": "#1f77b4", "dev": "#ff7f0e", "best": "#2ca02c", "value": "#7f7f7f"}


@dataclass
class Series:
    label: str
    values: list[float]  # NaN or None where there is no value
    color: str
    dots: bool = False  # points instead of a line


def _finite(v: float | None) -> bool:
    return v is not None and not math.isnan(v) and not math.isinf(v)


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"


def curve(series: list[Series], *, title: str, width: int = 240, height: int = 96,
          percent: bool = False) -> str:
    """Line (or dot) plot of each series against its index (1, 2, ...); '' when empty."""
    values = [v for s in series for v in s.values if _finite(v)]
    n = max((len(s.values) for s in series), default=0)
    if not values or n == 0:
        return ""
    lo, hi = min(values), max(values)
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5 * (abs(lo) or 1), hi + 0.5 * (abs(hi) or 1)
    left, right, top, bottom = 34, 6, 16, 14
    w, h = width - left - right, height - top - bottom

    def xy(i: int, v: float) -> tuple[float, float]:
        x = left + (w * i / (n - 1) if n > 1 else w / 2)
        return x, top + h * (hi - v) / (hi - lo)

    shown = (lambda v: f"{v * 100:.1f}%") if percent else _fmt
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
             f'<text x="{left}" y="11" font-size="10" fill="#333">{escape(title)}</text>',
             f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="none" stroke="#ddd"/>',
             f'<text x="{left - 3}" y="{top + 8}" font-size="9" text-anchor="end" '
             f'fill="#666">{shown(hi)}</text>',
             f'<text x="{left - 3}" y="{top + h}" font-size="9" text-anchor="end" '
             f'fill="#666">{shown(lo)}</text>',
             f'<text x="{left + w}" y="{height - 2}" font-size="9" text-anchor="end" '
             f'fill="#666">{n}</text>']
    legend_x = left + w
    for s in reversed(series):
        points = [xy(i, v) for i, v in enumerate(s.values) if _finite(v)]
        if s.dots:
            parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2" fill="{s.color}"/>' for x, y in points]
        elif len(points) == 1:
            parts.append(f'<circle cx="{points[0][0]:.1f}" cy="{points[0][1]:.1f}" r="2.5" '
                         f'fill="{s.color}"/>')
        elif points:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{s.color}" '
                         f'stroke-width="1.5"/>')
        parts.append(f'<text x="{legend_x}" y="11" font-size="10" text-anchor="end" '
                     f'fill="{s.color}">{escape(s.label)}</text>')
        legend_x -= 7 * len(s.label) + 8
    parts.append("</svg>")
    return "".join(parts)
