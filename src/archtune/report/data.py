"""Plot data of runs, computed before anything is drawn (pure: arrays and dicts in, data out).

Every figure of a report is drawn from one of these dataclasses, so tests check the numbers a
figure shows rather than its pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ArchtuneError


@dataclass
class ImageGrid:
    """Images (N, H, W) grey or (N, H, W, 3) colour, in [0, 1], each with a title."""

    images: np.ndarray
    titles: list[str]
    ncols: int
    cmap: str = "gray"
    # one (vmin, vmax) for the whole grid; None scales each image to its own range
    shared_range: tuple[float, float] | None = (0.0, 1.0)
    highlight: list[bool] = field(default_factory=list)  # titles drawn in red


@dataclass
class Curves:
    """Learning curves: per-epoch train/dev loss and accuracy, best and early-stop epochs."""

    epochs: list[int]
    train_loss: list[float]
    dev_loss: list[float]
    train_accuracy: list[float]
    dev_accuracy: list[float]
    best_epoch: int | None
    stopped_epoch: int | None  # the last epoch when early stopping ended training, else None


@dataclass
class Confusion:
    """Confusion matrix (rows: true class, columns: predicted) and its row-normalised rates."""

    classes: list[str]
    counts: np.ndarray
    rates: np.ndarray


@dataclass
class ClassScores:
    classes: list[str]
    precision: list[float]
    recall: list[float]
    f1: list[float]
    support: list[int]


@dataclass
class ClassDistribution:
    """Images per class for each split (``{"train": [...], "dev": [...], "test": [...]}``)."""

    classes: list[str]
    counts: dict[str, list[int]]


@dataclass
class GradNorms:
    """Mean per-layer weight-gradient norms per epoch (rows: epochs, columns: layers)."""

    layers: list[str]
    epochs: list[int]
    norms: np.ndarray

    @property
    def last(self) -> np.ndarray:
        return self.norms[-1]

    @property
    def first_over_last(self) -> float:
        """First layer's norm / last layer's norm at the last epoch (<< 1: vanishing)."""
        return float(self.last[0] / self.last[-1]) if self.last[-1] > 0 else math.nan


def as_images(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) floats -> (N, H, W) for one channel, (N, H, W, 3) for three."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 4:
        raise ValueError(f"expected images (N, C, H, W), got shape {x.shape}")
    return x[:, 0] if x.shape[1] == 1 else np.moveaxis(x[:, :3], 1, -1)


def learning_curves(history: Sequence[dict[str, float]], metrics: dict[str, Any]) -> Curves:
    """Curves from a run's history rows; the best epoch is the run's (else lowest dev loss)."""
    if not history:
        raise ArchtuneError("no epochs recorded: there are no learning curves yet")
    epochs = [int(h["epoch"]) for h in history]
    best = metrics.get("best_epoch")
    if best is None:
        best = epochs[int(np.nanargmin([h["dev_loss"] for h in history]))]
    stopped = epochs[-1] if metrics.get("stopped_early") else None
    return Curves(epochs, [h["train_loss"] for h in history], [h["dev_loss"] for h in history],
                  [h["train_accuracy"] for h in history], [h["dev_accuracy"] for h in history],
                  int(best), stopped)


def confusion_from_counts(counts: Sequence[Sequence[int]] | np.ndarray,
                          classes: Sequence[str]) -> Confusion:
    """Wrap a count matrix; each row is divided by its total (rows with no images stay 0)."""
    c = np.asarray(counts, dtype=np.int64)
    totals = c.sum(axis=1, keepdims=True)
    rates = np.divide(c, totals, out=np.zeros(c.shape, dtype=np.float64), where=totals > 0)
    return Confusion(list(classes), c, rates)


def confusion(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray,
              classes: Sequence[str]) -> Confusion:
    """Confusion matrix of integer labels (rows: true, columns: predicted)."""
    k = len(classes)
    yt, yp = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    counts = np.bincount(yt * k + yp, minlength=k * k).reshape(k, k)
    return confusion_from_counts(counts, classes)


def class_scores(per_class: dict[str, dict[str, float]]) -> ClassScores:
    """Per-class precision, recall, F1 and support from an evaluation's ``per_class``."""
    names = list(per_class)
    return ClassScores(names, [per_class[c]["precision"] for c in names],
                       [per_class[c]["recall"] for c in names], [per_class[c]["f1"] for c in names],
                       [int(per_class[c]["support"]) for c in names])


def class_distribution(classes: Sequence[str], counts: dict[str, Sequence[int]]) -> ClassDistribution:
    return ClassDistribution(list(classes), {k: [int(v) for v in vs] for k, vs in counts.items()})


def sample_grid(x: np.ndarray, y: np.ndarray, classes: Sequence[str], *, per_class: int = 3,
                seed: int = 0, max_classes: int = 20) -> ImageGrid:
    """``per_class`` random images of each class (one row shows one image of every class)."""
    rng = np.random.default_rng(seed)
    y = np.asarray(y)
    shown = list(range(min(len(classes), max_classes)))
    picks = {k: rng.permutation(np.flatnonzero(y == k))[:per_class] for k in shown}
    order, titles = [], []
    for row in range(per_class):
        for k in shown:
            if row < len(picks[k]):
                order.append(int(picks[k][row]))
                titles.append(classes[k])
    images = as_images(np.asarray(x)[order]) if order else np.zeros((0, 1, 1))
    return ImageGrid(images, titles, ncols=max(min(len(shown), 10), 1))


def mistakes_grid(x: np.ndarray, wrong: Sequence[dict[str, Any]], *, limit: int = 16) -> ImageGrid:
    """The most confidently wrong images (``x`` holds them in ``wrong``'s order)."""
    wrong = list(wrong)[:limit]
    titles = [f"true: {w['true']}\npred: {w['predicted']} ({w['probability']:.0%})" for w in wrong]
    images = as_images(np.asarray(x)[: len(wrong)]) if wrong else np.zeros((0, 1, 1))
    return ImageGrid(images, titles, ncols=min(max(len(wrong), 1), 8), highlight=[True] * len(wrong))


def filter_grid(weight: np.ndarray, input_chw: tuple[int, int, int], *, limit: int = 32,
                kind: str = "filter") -> ImageGrid:
    """First-layer weights as images, each scaled to its own range.

    ``weight`` is a Conv2D kernel (F, C, kh, kw) or, for an MLP, the first Dense layer's
    (units, C*H*W) matrix, shown at the input's shape. Colour kernels (C = 3) are shown in colour,
    others as the mean over input channels.
    """
    w = np.asarray(weight, dtype=np.float32)[:limit]
    if w.ndim == 2:
        w = w.reshape(len(w), *input_chw)
    if w.ndim != 4:
        raise ValueError(f"expected a kernel (F, C, kh, kw), got shape {w.shape}")
    w = np.moveaxis(w, 1, -1) if w.shape[1] == 3 else w.mean(axis=1)
    lo = w.reshape(len(w), -1).min(axis=1).reshape(-1, *[1] * (w.ndim - 1))
    hi = w.reshape(len(w), -1).max(axis=1).reshape(-1, *[1] * (w.ndim - 1))
    images = (w - lo) / np.maximum(hi - lo, 1e-12)
    return ImageGrid(images, [f"{kind} {i}" for i in range(len(w))], ncols=min(len(w), 8))


def grad_norms(rows: Sequence[dict[str, float]]) -> GradNorms | None:
    """Gradient norms from ``grad_norms.csv`` rows (None when nothing was recorded)."""
    if not rows:
        return None
    layers = [k for k in rows[0] if k != "epoch"]
    norms = np.array([[r[k] for k in layers] for r in rows], dtype=np.float64)
    return GradNorms(layers, [int(r["epoch"]) for r in rows], norms)


def ratio_text(g: GradNorms | None) -> str:
    """'first/last layer gradient norm' in words, e.g. '0.0019 (last layer 528x the first)'."""
    if g is None or len(g.layers) < 2:
        return "-"
    r = g.first_over_last
    if not math.isfinite(r) or r <= 0:
        return "-"
    if r < 1:
        return f"{r:.3g} (last layer {1 / r:,.0f}x the first)"
    return f"{r:.3g} (first layer {r:,.1f}x the last)"
