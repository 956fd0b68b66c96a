"""Figures of a plan report, sized for an A4 page (7.2 inches wide): overlaid learning curves,
the best model's confusion matrix beside its per-class F1, a search's history beside its
parameter importances."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from .data import ClassScores, Confusion, Curves
from .figures import BLUE, GREY, RED, _confusion_axes, _epoch_axis, _new
from .figures_study import history_axes
from .study import History

WIDTH = 7.2  # inches: an A4 page less its margins


def accuracy_limits(curves: dict[str, Curves], learned: dict[str, bool]) -> tuple[float, float]:
    """Y range of the dev-accuracy panel: the runs that learned, so their differences show
    (runs at chance level lie below it and say so in the legend)."""
    values = [v for name, c in curves.items() if learned.get(name, True) for v in c.dev_accuracy]
    if not values:
        return 0.0, 1.0
    lo, hi = min(values), max(values)
    pad = max(0.01, 0.05 * (hi - lo))
    return max(0.0, lo - pad), min(1.0, hi + pad)


def draw_plan_curves(curves: dict[str, Curves], learned: dict[str, bool]) -> Figure:
    """Dev accuracy and dev loss per epoch of every model (solid; at-chance models dashed)."""
    fig = _new(WIDTH, 2.6)
    ax_acc, ax_loss = fig.subplots(1, 2)
    for j, (name, c) in enumerate(curves.items()):
        ok = learned.get(name, True)
        style = {"color": f"C{j % 10}", "ls": "-" if ok else "--", "lw": 1.3, "marker": "o",
                 "ms": 2.5 if len(c.epochs) <= 40 else 0}
        label = name if ok else f"{name} (at chance, below)"
        ax_acc.plot(c.epochs, c.dev_accuracy, label=label, **style)
        ax_loss.plot(c.epochs, c.dev_loss, **style)
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax_acc.set_ylim(*accuracy_limits(curves, learned))
    last = max((max(c.epochs) for c in curves.values()), default=1)
    for ax, what in ((ax_acc, "dev accuracy"), (ax_loss, "dev loss")):
        _epoch_axis(ax)
        ax.set_xlim(0.5, last + 0.5)
        if last <= 12:
            ax.set_xticks(range(1, last + 1))
        ax.set_ylabel(what, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    ax_acc.set_title("Dev accuracy per epoch", fontsize=9)
    ax_loss.set_title("Dev loss per epoch (log scale)", fontsize=9)
    ax_loss.set_yscale("log")
    ax_loss.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax_loss.yaxis.set_minor_formatter(NullFormatter())
    fig.legend(*ax_acc.get_legend_handles_labels(), loc="outside right center", fontsize=6.5)
    return fig


def draw_best(conf: Confusion, scores: ClassScores, title: str) -> Figure:
    """The confusion matrix (counts and row shares) beside per-class precision, recall, F1."""
    fig = _new(WIDTH, 3.1)
    ax_c, ax_f = fig.subplots(1, 2, width_ratios=[1.15, 1])
    _confusion_axes(ax_c, conf, f"Confusion matrix, {title} (% of each true class)",
                    counts=False)
    y = np.arange(len(scores.classes))
    for j, (name, values, color) in enumerate((("precision", scores.precision, GREY),
                                                ("recall", scores.recall, BLUE),
                                                ("F1", scores.f1, RED))):
        ax_f.barh(y + (j - 1) * 0.27, values, 0.27, color=color, label=name)
    for i, f1 in enumerate(scores.f1):
        ax_f.text(min(f1, 1.0) + 0.01, i + 0.27, f"{f1:.2f}", va="center", fontsize=6)
    ax_f.set_yticks(y, [c[:14] for c in scores.classes], fontsize=7)
    ax_f.invert_yaxis()
    ax_f.set_xlim(0, 1.12)
    ax_f.tick_params(labelsize=7)
    ax_f.set_title("Per-class precision, recall and F1", fontsize=9)
    ax_f.grid(axis="x", alpha=0.3)
    ax_f.legend(fontsize=6.5, loc="lower left", ncols=3)
    return fig


def draw_search(h: History, importances: dict[str, float], n_complete: int, objective: str,
                *, minimum: int = 10) -> Figure:
    """The search's history (every trial, the best so far) beside its parameter importances
    (or a note when too few trials completed to rank them)."""
    fig = _new(WIDTH, 2.9)
    ax_h, ax_i = fig.subplots(1, 2, width_ratios=[1.25, 1])
    history_axes(ax_h, h, objective, size=9)
    ax_h.xaxis.label.set_fontsize(8)
    ax_h.yaxis.label.set_fontsize(8)
    ax_h.tick_params(labelsize=7)
    ax_h.set_title("Search history", fontsize=9)
    ax_h.grid(alpha=0.3)
    ax_h.legend(fontsize=6.5)
    if importances:
        names = sorted(importances, key=lambda k: importances[k])
        ax_i.barh(names, [importances[n] for n in names], color=BLUE)
        for i, n in enumerate(names):
            ax_i.text(importances[n], i, f" {importances[n]:.2f}", va="center", fontsize=6.5)
        ax_i.tick_params(labelsize=7)
        ax_i.margins(x=0.2)
        ax_i.set_title(f"Importances ({n_complete} complete trials)", fontsize=9)
    else:
        ax_i.set_axis_off()
        ax_i.text(0.5, 0.5, f"Parameter importances need at least {minimum} complete trials;\n"
                            f"this search has {n_complete}.", ha="center", va="center",
                  fontsize=8, wrap=True)
    return fig
