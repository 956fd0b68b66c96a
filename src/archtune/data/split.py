"""Stratified, seeded train/dev splits of a data set's training part, as float tensors in [0, 1].

The test part is only produced by :func:`test_split`; training code never calls it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from numbers import Real
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from archtune.data.datasets import Dataset
from archtune.errors import ArchtuneError

log = logging.getLogger(__name__)


@dataclass(repr=False)
class Split:
    """One split: float32 images in [0, 1] (N, C, H, W), int64 labels, source indices."""

    x: torch.Tensor
    y: torch.Tensor
    indices: torch.Tensor  # indices into the source array (x_train or x_test)

    def __len__(self) -> int:
        return len(self.y)

    def __repr__(self) -> str:
        return f"Split(n={len(self.y)}, x={tuple(self.x.shape)})"


@dataclass(repr=False)
class Splits:
    """The train and dev splits of a data set's training part."""

    train: Split
    dev: Split
    classes: list[str]
    input_shape: tuple[int, int, int]
    facts: dict[str, Any] = field(default_factory=dict)  # how the data set was read (Dataset.facts)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def class_counts(self) -> dict[str, list[int]]:
        """Images per class (in class order) for each split: ``{"train": [...], "dev": [...]}``."""
        k = len(self.classes)
        return {
            name: torch.bincount(s.y, minlength=k).tolist()
            for name, s in (("train", self.train), ("dev", self.dev))
        }

    def __repr__(self) -> str:
        return (
            f"Splits(train={len(self.train)}, dev={len(self.dev)}, "
            f"classes={len(self.classes)}, input_shape={self.input_shape})"
        )


def _to_split(x: torch.Tensor, y: torch.Tensor, idx: np.ndarray) -> Split:
    it = torch.from_numpy(idx.astype(np.int64))
    return Split(x=x[it].to(torch.float32).div_(255.0), y=y[it].clone(), indices=it)


def _stratified(
    idx: np.ndarray, y: np.ndarray, *, seed: int, what: str, **size: float | int
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified ``train_test_split`` of ``idx`` (labels ``y``) -> sorted (first, second)."""
    try:
        kept, rest = train_test_split(idx, **size, stratify=y, random_state=seed)
    except ValueError as e:
        raise ArchtuneError(
            f"cannot make a stratified {what} from {len(idx)} images: {e}"
        ) from None
    return np.sort(kept), np.sort(rest)


def _train_subset(train_idx: np.ndarray, y: np.ndarray, train_subset: int, seed: int) -> np.ndarray:
    """A stratified, seeded ``train_subset``-image part of ``train_idx``, checked."""
    n_train = len(train_idx)
    k = len(np.unique(y[train_idx]))
    if (
        isinstance(train_subset, bool)
        or not isinstance(train_subset, int | np.integer)
        or not max(k, 1) <= train_subset <= n_train
    ):
        raise ArchtuneError(
            f"train_subset: got {train_subset!r}; expected an integer from {k} (the number "
            f"of classes) to {n_train} (the train split's size)"
        )
    rest = n_train - train_subset
    if rest == 0:
        return train_idx
    if rest >= k:
        return _stratified(train_idx, y[train_idx], train_size=int(train_subset), seed=seed,
                           what=f"train subset of {train_subset}")[0]
    # too few left out to stratify them: drop `rest` images at random
    drop = np.random.default_rng(seed).choice(n_train, size=rest, replace=False)
    return np.delete(train_idx, drop)


def train_split_size(n: int, dev_fraction: float) -> int:
    """Images in the train split that :func:`split_dataset` makes of ``n`` training images (the
    dev split takes ``ceil(dev_fraction * n)``, as scikit-learn's ``train_test_split``)."""
    return n - math.ceil(dev_fraction * n)


def split_dataset(
    ds: Dataset, *, dev_fraction: float = 0.2, seed: int = 0, train_subset: int | None = None
) -> Splits:
    """Split ``ds``'s training part into stratified, seeded, disjoint train and dev splits.

    ``dev_fraction`` (0 < f < 1) of the training images go to dev; ``train_subset=N`` then keeps
    a stratified N-image subset of the train part (dev unchanged; classes <= N <= train size).
    """
    if (
        isinstance(dev_fraction, bool)
        or not isinstance(dev_fraction, Real)
        or not 0 < dev_fraction < 1
    ):
        raise ArchtuneError(
            f"dev_fraction: got {dev_fraction!r}; expected a number between 0 and 1 (exclusive)"
        )
    y = ds.y_train.numpy()
    idx = np.arange(len(y))
    train_idx, dev_idx = _stratified(
        idx, y, test_size=dev_fraction, seed=seed, what=f"dev split of {dev_fraction:g}"
    )
    if train_subset is not None:
        train_idx = _train_subset(train_idx, y, train_subset, seed)
    splits = Splits(
        train=_to_split(ds.x_train, ds.y_train, train_idx),
        dev=_to_split(ds.x_train, ds.y_train, dev_idx),
        classes=list(ds.classes),
        input_shape=ds.input_shape,
        facts=dict(ds.facts),
    )
    log.info(
        "%s: train %d, dev %d (dev_fraction %g, seed %d)",
        ds.name,
        len(train_idx),
        len(dev_idx),
        dev_fraction,
        seed,
    )
    return splits


def test_split(ds: Dataset) -> Split:
    """The held-out test part of ``ds`` as a float split (for final evaluation only)."""
    return _to_split(ds.x_test, ds.y_test, np.arange(len(ds.y_test)))


test_split.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported


def channel_stats(x: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and (population) std of images (N, C, H, W).

    Float images are taken as they are (expected in [0, 1]); uint8 images are scaled by 1/255.
    """
    if x.ndim != 4 or x.shape[0] == 0:
        raise ArchtuneError(
            f"channel_stats: got images of shape {tuple(x.shape)}; expected a non-empty "
            "(N, C, H, W) tensor"
        )
    scale = 1 / 255.0 if x.dtype == torch.uint8 else 1.0
    total = torch.zeros(x.shape[1], dtype=torch.float64)
    total_sq = torch.zeros(x.shape[1], dtype=torch.float64)
    for chunk in x.split(4096):
        c = chunk.to(torch.float64) * scale
        total += c.sum(dim=(0, 2, 3))
        total_sq += c.square().sum(dim=(0, 2, 3))
    n = x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / n
    std = (total_sq / n - mean.square()).clamp_(min=0).sqrt()
    return mean.tolist(), std.tolist()
