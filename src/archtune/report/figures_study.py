"""Draw a study's plot data (:mod:`archtune.report.study`) with matplotlib.

Thousands of trials are drawn as one LineCollection or one scatter per figure, which keeps a
1,000-trial study well within a second per figure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..search import COSTS as _ATTR
from .figures import BLUE, DPI, GREY, RED, _new
from .study import CostCurve, Front, History, Parallel, SliceData


def history_axes(ax: Axes, h: History, objective: str, *, size: float = 12) -> None:
    """Every trial's value (pruned ones at their last), and the best so far, on ``ax``."""
    if h.pruned_numbers:
        ax.scatter(h.pruned_numbers, h.pruned_values, s=size * 0.8, marker="x", color=GREY,
                   alpha=0.6, label="pruned (last reported value)")
    ax.scatter(h.numbers, h.values, s=size, color=BLUE, alpha=0.75, label="complete")
    if h.numbers:
        ax.step(h.numbers, h.best_so_far, where="post", color=RED, lw=1.5, label="best so far")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial")
    ax.set_ylabel(objective)


def draw_history(h: History, objective: str, direction: str) -> Figure:
    fig = _new(8.5, 3.6)
    ax = fig.subplots()
    history_axes(ax, h, objective)
    ax.set_title(f"Optimisation history ({direction})", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def draw_cost_curve(c: CostCurve, objective: str) -> Figure:
    """The best objective so far against the CPU-minutes spent (every trial's time counts)."""
    fig = _new(8.5, 3.0)
    ax = fig.subplots()
    pts = [(m, b) for m, b in zip(c.minutes, c.best, strict=True) if b is not None]
    if pts:
        ax.step([m for m, _ in pts], [b for _, b in pts], where="post", color=RED, lw=1.5)
        ax.scatter([m for m, _ in pts], [b for _, b in pts], s=8, color=RED)
    ax.set_xlabel("CPU-minutes spent (sum of trial durations, in trial order)")
    ax.set_ylabel(f"best {objective}")
    ax.set_title("What the search bought with its CPU time", fontsize=10)
    ax.grid(alpha=0.3)
    return fig


def draw_front(f: Front) -> Figure:
    """Dev accuracy against the first cost: every complete trial, the front as a staircase."""
    cost = f.objectives[1]
    fig = _new(8.5, 3.4)
    ax = fig.subplots()
    ax.scatter([p[1] for p in f.points], [p[0] for p in f.points], s=12, color=BLUE, alpha=0.6,
               label="complete trial")
    xs = [float(t.attrs[_ATTR[cost]]) for t in f.front]
    ys = [float(t.value or 0.0) for t in f.front]
    if xs:
        ax.step(xs, ys, where="post", color=RED, lw=1.5)
        ax.scatter(xs, ys, s=24, color=RED, label="Pareto front", zorder=3)
        for t, x, y in zip(f.front, xs, ys, strict=True):
            ax.annotate(str(t.number), (x, y), textcoords="offset points", xytext=(3, -9), fontsize=7)
    if f.points and min(p[1] for p in f.points) > 0:
        ax.set_xscale("log")
    ax.set_xlabel(f"{cost} (lower is better{', log scale' if ax.get_xscale() == 'log' else ''})")
    ax.set_ylabel(f.objectives[0])
    ax.set_title(f"Accuracy against {cost}: the Pareto front", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def draw_importances(imp: dict[str, float]) -> Figure:
    names = sorted(imp, key=lambda k: imp[k])
    fig = _new(6.5, 0.35 * len(names) + 1.2)
    ax = fig.subplots()
    ax.barh(names, [imp[n] for n in names], color=BLUE)
    for i, n in enumerate(names):
        ax.text(imp[n], i, f" {imp[n]:.2f}", va="center", fontsize=8)
    ax.set_xlabel("importance (PED-ANOVA, normalised)")
    ax.set_title("Parameter importances", fontsize=10)
    ax.margins(x=0.15)
    return fig


def draw_parallel(p: Parallel) -> Figure:
    """One line per complete trial through every axis it has a value on; colour: objective."""
    from matplotlib import colormaps

    n_axes = len(p.axes)
    fig = _new(max(7.0, 1.3 * n_axes), 4.2)
    ax = fig.subplots()
    lo, hi = (float(p.values.min()), float(p.values.max())) if len(p.values) else (0.0, 1.0)
    cmap = colormaps["viridis"]
    segments, colors = [], []
    for i in np.argsort(p.values):  # the best trials are drawn last, on top
        pts = [(j, y) for j, y in enumerate(p.positions[i]) if np.isfinite(y)]
        if len(pts) > 1:
            segments.append(pts)
            colors.append(cmap((p.values[i] - lo) / (hi - lo) if hi > lo else 0.5))
    lines = LineCollection(segments, colors=colors, linewidths=0.8, alpha=0.55)
    ax.add_collection(lines)
    for j, ticks in enumerate(p.tick_labels):
        ax.axvline(j, color="black", lw=0.8)
        for y, label in ticks:
            ax.text(j + 0.04, y, label, fontsize=7, va="center", ha="left",
                    bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.7})
    ax.set_xlim(-0.2, n_axes - 0.6)
    ax.set_ylim(-0.05, 1.05)
    ax.set_xticks(range(n_axes), p.axes, rotation=20, ha="right", fontsize=8)
    ax.set_yticks([])
    ax.set_title("Parallel coordinates of complete trials (colour: objective)", fontsize=10)
    return fig


def draw_slices(slices: Sequence[SliceData], objective: str, *, ncols: int = 4) -> Figure:
    n = max(len(slices), 1)
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(3.0 * ncols, 2.6 * nrows + 0.4), dpi=DPI)  # no constrained layout: fast
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False, sharey=True)).ravel()
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.3 / nrows, top=1 - 0.55 / (2.6 * nrows),
                        wspace=0.08, hspace=0.45)
    for ax in axes[len(slices):]:
        ax.set_axis_off()
    for ax, s in zip(axes, slices, strict=False):
        ax.scatter(s.x, s.y, c=s.numbers, cmap="Blues", s=10, edgecolors="none", alpha=0.8)
        if s.info.kind == "categorical":
            labels = [_short(c) for c in s.info.choices]
            crowded = sum(len(x) for x in labels) > 18
            ax.set_xticks(range(len(labels)), labels, fontsize=7, rotation=35 if crowded else 0,
                          ha="right" if crowded else "center")
            ax.set_xlim(-0.5, len(labels) - 0.5)
        elif s.info.log:
            ax.set_xscale("log")
        else:  # at most 4 ticks, so values like 0.0125 do not run into each other
            ax.xaxis.set_major_locator(MaxNLocator(4, integer=s.info.kind == "int"))
        ax.tick_params(axis="x", labelsize=7)
        ax.set_title(s.name, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(objective)
    fig.suptitle("Slice plots: objective against each parameter (darker: later trials)",
                 fontsize=10)
    return fig


def _short(value: object) -> str:
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    return text if len(text) <= 12 else text[:11] + "~"


def draw_intermediate(curves: Sequence[tuple[int, str, list[int], list[float]]],
                      objective: str) -> Figure:
    """Per-epoch values of every trial: complete in blue, pruned in grey, failed in red."""
    fig = _new(8.5, 3.6)
    ax = fig.subplots()
    groups: dict[str, list[list[tuple[int, float]]]] = {}
    for _, status, steps, values in curves:
        groups.setdefault(status, []).append(list(zip(steps, values, strict=True)))
    style = {"complete": (BLUE, 0.35), "pruned": (GREY, 0.35), "failed": (RED, 0.5)}
    for status, segs in groups.items():
        color, alpha = style.get(status, ("#9467bd", 0.4))
        label = f"{status} ({len(segs)})"
        lines = [p for p in segs if len(p) > 1]
        if lines:
            ax.add_collection(LineCollection(lines, colors=color, linewidths=0.8, alpha=alpha,
                                             label=label))
            label = None
        ends = np.array([p[-1] for p in segs], dtype=np.float64)  # a 1-epoch trial is a point
        ax.scatter(ends[:, 0], ends[:, 1], s=9, color=color, alpha=min(1.0, alpha + 0.3),
                   label=label, zorder=3)
    ax.autoscale()
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(objective)
    ax.set_title("Intermediate values (learning curves) of every trial", fontsize=10)
    ax.grid(alpha=0.3)
    if groups:
        ax.legend(fontsize=8)
    return fig
