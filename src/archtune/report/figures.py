"""Draw the plot data of :mod:`archtune.report.data` with matplotlib.

Figures are built on ``matplotlib.figure.Figure`` (the Agg renderer, no pyplot, no GUI and no
global backend change, so a notebook's backend is left alone). Import this module lazily: it
imports matplotlib.
"""

from __future__ import annotations

import base64
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .data import ClassDistribution, ClassScores, Confusion, Curves, GradNorms, ImageGrid
from .inspect import ActivationMaps, DeadLayer, maps_grid

DPI = 100
BLUE, ORANGE, GREEN, RED, GREY = "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#7f7f7f"


def png_bytes(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def png_base64(fig: Figure) -> str:
    return base64.b64encode(png_bytes(fig)).decode("ascii")


def save_png(fig: Figure, path: str | Path) -> Path:
    """Write the figure as PNG atomically (a temp file renamed into place)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(png_bytes(fig))
    os.replace(tmp, path)
    return path


def _new(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _curve_axis(ax: Axes, ylabel: str, title: str) -> None:
    """An axis of per-epoch curves: integer epochs, its label, title and a light grid."""
    _epoch_axis(ax)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)


def _epoch_axis(ax: Axes) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")


def _mosaic(ax: Axes, grid: ImageGrid, ncols: int, fontsize: float) -> tuple[float, float]:
    """Draw every image of a grid on one axes (far faster than an axes per image); returns the
    (width, height) of the mosaic in image-width units."""
    lines = max((t.count("\n") + 1 for t in grid.titles), default=1)
    n = len(grid.images)
    h, w = grid.images.shape[1:3] if n else (1, 1)
    aspect = h / w
    band = 0.022 * fontsize * lines  # title height, in image widths
    gap = 0.08
    nrows = max(math.ceil(n / ncols), 1)
    cell_h = aspect + band + gap
    width, height = ncols * (1 + gap) - gap, nrows * cell_h
    vmin, vmax = grid.shared_range if grid.shared_range else (None, None)
    for i in range(n):
        row, col = divmod(i, ncols)
        x0, top = col * (1 + gap), height - row * cell_h - band
        ax.imshow(grid.images[i], cmap=grid.cmap, vmin=vmin, vmax=vmax, interpolation="nearest",
                  extent=(x0, x0 + 1, top - aspect, top), origin="upper")
        red = i < len(grid.highlight) and grid.highlight[i]
        ax.text(x0 + 0.5, top + 0.01, grid.titles[i], ha="center", va="bottom",
                fontsize=fontsize, color=RED if red else "black", linespacing=1.1)
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_axis_off()
    return width, height


def draw_grid(grid: ImageGrid, title: str = "", *, cell: float = 1.25) -> Figure:
    """Images in a grid with a title above each (red where ``highlight``); ``cell`` is the
    width of one image in inches."""
    ncols = max(min(grid.ncols, len(grid.images)), 1)
    return _grid_figure(grid, ncols, title, cell)


def _grid_figure(grid: ImageGrid, ncols: int, title: str, cell: float) -> Figure:
    head = 0.35 if title else 0.05
    fig = Figure(dpi=DPI)
    ax = fig.add_axes((0.01, 0.0, 0.98, 1.0))
    width, height = _mosaic(ax, grid, ncols, 7)
    fig_w, fig_h = cell * width * 1.02, cell * height + head
    fig.set_size_inches(fig_w, fig_h)
    ax.set_position((0.01, 0.0, 0.98, (fig_h - head) / fig_h))
    if title:
        fig.suptitle(title, fontsize=10, y=1 - 0.08 / fig_h)
    return fig


def draw_class_distribution(d: ClassDistribution) -> Figure:
    fig = _new(max(6.0, 0.7 * len(d.classes)), 3.4)
    ax = fig.subplots()
    x = np.arange(len(d.classes))
    width = 0.8 / max(len(d.counts), 1)
    for j, (split, counts) in enumerate(d.counts.items()):
        ax.bar(x + (j - (len(d.counts) - 1) / 2) * width, counts, width, label=split)
    ax.set_xticks(x, d.classes, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("images")
    ax.set_title("Class distribution per split", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def _mark(ax: Axes, c: Curves) -> None:
    if c.best_epoch is not None:
        ax.axvline(c.best_epoch, color=GREEN, ls="--", lw=1, label=f"best epoch {c.best_epoch}")
    if c.stopped_epoch is not None:
        ax.axvline(c.stopped_epoch, color=RED, ls=":", lw=1.2,
                   label=f"early stop (epoch {c.stopped_epoch})")


def draw_curves(c: Curves) -> Figure:
    """Loss and accuracy, train vs dev, with the best epoch and an early stop marked."""
    fig = _new(9.0, 3.4)
    ax_loss, ax_acc = fig.subplots(1, 2)
    marker = "o" if len(c.epochs) <= 30 else None
    for ax, key, label in ((ax_loss, "loss", "loss"), (ax_acc, "accuracy", "accuracy")):
        ax.plot(c.epochs, getattr(c, f"train_{key}"), color=BLUE, marker=marker, ms=3, label="train")
        ax.plot(c.epochs, getattr(c, f"dev_{key}"), color=ORANGE, marker=marker, ms=3, label="dev")
        _mark(ax, c)
        _curve_axis(ax, label, f"{label.capitalize()} per epoch")
        ax.legend(fontsize=8)
    return fig


def _confusion_axes(ax: Axes, conf: Confusion, title: str, *, annotate: bool = True,
                    counts: bool = True) -> object:
    k = len(conf.classes)
    im = ax.imshow(conf.rates, cmap="Blues", vmin=0, vmax=1)
    short = [c[:12] for c in conf.classes]
    ax.set_xticks(range(k), short, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(k), short, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    if annotate and k <= 20:
        for i in range(k):
            for j in range(k):
                rate = conf.rates[i, j]
                text = f"{conf.counts[i, j]}\n{rate:.0%}" if counts else f"{rate * 100:.0f}"
                ax.text(j, i, text, ha="center", va="center", fontsize=5.5 if k > 10 else 6.5,
                        color="white" if rate > 0.5 else "black")
    return im


def draw_confusion(conf: Confusion, title: str = "Confusion matrix") -> Figure:
    """Heat map of row-normalised rates, each cell annotated with its count and rate."""
    size = max(4.5, 0.55 * len(conf.classes) + 1.5)
    fig = _new(size + 0.8, size)
    ax = fig.subplots()
    im = _confusion_axes(ax, conf, title)
    fig.colorbar(im, ax=ax, shrink=0.8, label="share of the true class")
    return fig


def draw_confusions(confs: dict[str, Confusion], *, ncols: int = 3) -> Figure:
    """Confusion matrices side by side (rates, counts written when the classes are few)."""
    n = len(confs)
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig = _new(4.2 * ncols, 4.2 * nrows)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax in axes[n:]:
        ax.set_axis_off()
    for ax, (name, conf) in zip(axes, confs.items(), strict=False):
        _confusion_axes(ax, conf, name, annotate=len(conf.classes) <= 10 and n <= 4)
    return fig


def draw_class_scores(s: ClassScores) -> Figure:
    fig = _new(max(6.0, 0.75 * len(s.classes)), 3.4)
    ax = fig.subplots()
    x = np.arange(len(s.classes))
    for j, (name, values) in enumerate((("precision", s.precision), ("recall", s.recall),
                                        ("F1", s.f1))):
        ax.bar(x + (j - 1) * 0.27, values, 0.27, label=name)
    ax.set_xticks(x, s.classes, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_title("Per-class precision, recall and F1", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncols=3, loc="lower right")
    return fig


def bar_axis(values: Sequence[float] | np.ndarray) -> tuple[str, float, float]:
    """(scale, bottom, top) for bars of positive values: a linear axis from 0 unless they span
    more than 30x, then a log axis of whole decades, so bars of 0.9 and 1.1 look alike."""
    v = np.asarray([x for x in values if np.isfinite(x) and x > 0], dtype=np.float64)
    if not len(v):
        return "linear", 0.0, 1.0
    if v.max() / v.min() <= 30:
        return "linear", 0.0, float(v.max()) * 1.15
    lo, hi = math.floor(math.log10(v.min())), math.ceil(math.log10(v.max()))
    return "log", 10.0 ** lo, 10.0 ** max(hi, lo + 1)


def draw_grad_norms(g: GradNorms) -> Figure:
    """Per-layer gradient norms over epochs (log scale) and, at the last epoch, by depth."""
    fig = _new(9.5, 3.6)
    ax_time, ax_depth = fig.subplots(1, 2)
    colors = [_depth_color(i, len(g.layers)) for i in range(len(g.layers))]
    for j, name in enumerate(g.layers):
        ax_time.plot(g.epochs, g.norms[:, j], marker="o", ms=3, color=colors[j], label=name)
    ax_time.set_yscale("log")
    _epoch_axis(ax_time)
    ax_time.set_ylabel("mean weight-gradient norm")
    ax_time.set_title("Gradient norm per layer over training", fontsize=10)
    ax_time.legend(fontsize=7, ncols=2)
    ax_time.grid(alpha=0.3, which="both")
    scale, bottom, top = bar_axis(g.last)
    if scale == "log":
        ax_depth.set_yscale("log")
    heights = np.maximum(g.last, bottom) - (bottom if scale == "log" else 0.0)
    ax_depth.bar(range(len(g.layers)), heights, bottom=bottom if scale == "log" else 0.0,
                 color=colors)
    for i, v in enumerate(g.last):
        ax_depth.text(i, max(v, bottom), f"{v:.2g}", ha="center", va="bottom", fontsize=7)
    ax_depth.set_ylim(bottom, top * (3 if scale == "log" else 1.05))
    ax_depth.set_ylabel(f"norm ({scale} scale)")
    ax_depth.set_xticks(range(len(g.layers)), g.layers, rotation=30, ha="right", fontsize=8)
    ax_depth.set_title(f"By depth, epoch {g.epochs[-1]} (input side on the left)", fontsize=10)
    ax_depth.grid(axis="y", alpha=0.3, which="both")
    return fig


def draw_grad_profiles(profiles: dict[str, GradNorms], *,
                       size: tuple[float, float] = (7.0, 3.6)) -> Figure:
    """Last-epoch gradient norm against layer depth, one line per run (log scale)."""
    from matplotlib.ticker import MaxNLocator

    fig = _new(*size)
    ax = fig.subplots()
    for j, (name, g) in enumerate(profiles.items()):
        ax.plot(range(1, len(g.layers) + 1), g.last, marker="o", ms=4, color=f"C{j % 10}",
                ls="-" if j < 10 else "--", label=name)
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # layers are whole numbers
    ax.set_xlabel("weight layer (1 = nearest the input)")
    ax.set_ylabel("weight-gradient norm, last epoch")
    ax.set_title("Gradient norm by depth", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def _depth_color(i: int, n: int) -> tuple[float, float, float, float]:
    from matplotlib import colormaps

    return colormaps["viridis"](i / max(n - 1, 1))


def draw_dead(layers: Sequence[DeadLayer], n_images: int) -> Figure:
    """Alive and dead channels per layer (stacked bars), dead counts written on top."""
    fig = _new(max(5.0, 0.9 * len(layers) + 2), 3.4)
    ax = fig.subplots()
    names = [f"{d.name}\n({d.kind})" for d in layers]
    dead = [d.n_dead for d in layers]
    alive = [d.total - d.n_dead for d in layers]
    x = np.arange(len(layers))
    ax.bar(x, alive, color=GREEN, label="active")
    ax.bar(x, dead, bottom=alive, color=RED, label="dead (never > 0)")
    for i, d in enumerate(layers):
        ax.text(i, d.total, f"{d.n_dead}/{d.total}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, names, fontsize=8)
    ax.set_ylabel("channels")
    ax.set_title(f"Dead filters and units on {n_images:,} dev images", fontsize=10)
    ax.set_ylim(0, 1.18 * max((d.total for d in layers), default=1))
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def draw_activations(image: np.ndarray, maps: ActivationMaps, title: str, *,
                     limit: int = 32, cell: float = 1.15) -> Figure:
    """The input image beside one conv layer's feature maps (one shared colour scale)."""
    grid = maps_grid(maps, limit=limit)
    fig = Figure(dpi=DPI)
    ax_maps = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    width, height = _mosaic(ax_maps, grid, grid.ncols, 6)
    head, side = 0.4, 2.2  # inches: title band, input-image column
    fig_w, fig_h = side + cell * width * 1.02, max(cell * height, 2.0) + head
    fig.set_size_inches(fig_w, fig_h)
    ax_maps.set_position((side / fig_w, 0.0, cell * width / fig_w, cell * height / fig_h))
    ax_in = fig.add_axes((0.1 / fig_w, (fig_h - head - 1.9) / fig_h, 1.9 / fig_w, 1.7 / fig_h))
    ax_in.imshow(image, cmap="gray", vmin=0, vmax=1)
    ax_in.set_title("input", fontsize=9)
    ax_in.set_axis_off()
    fig.suptitle(title, fontsize=10, y=1 - 0.08 / fig_h)
    return fig


def draw_overlaid_curves(curves: dict[str, Curves]) -> Figure:
    """Dev (solid) and train (dashed) loss and accuracy of several runs on shared axes."""
    fig = _new(10.0, 3.8)
    ax_loss, ax_acc = fig.subplots(1, 2)
    for j, (name, c) in enumerate(curves.items()):
        color = f"C{j % 10}"
        for ax, key in ((ax_loss, "loss"), (ax_acc, "accuracy")):
            ax.plot(c.epochs, getattr(c, f"dev_{key}"), color=color, label=f"{name} dev")
            ax.plot(c.epochs, getattr(c, f"train_{key}"), color=color, ls="--", alpha=0.6)
    for ax, key in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        _curve_axis(ax, key, f"{key.capitalize()} (solid: dev, dashed: train)")
    ax_acc.legend(fontsize=7)
    return fig
