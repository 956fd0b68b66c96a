"""Checks and conversions shared by the data set loaders (IDX, .npz, image folders)."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split

from archtune.errors import ArchtuneError


def check_size(image_size: Sequence[int] | None) -> tuple[int, int] | None:
    if image_size is None:
        return None
    vals = list(image_size) if isinstance(image_size, list | tuple) else []
    if len(vals) != 2 or not all(
        isinstance(v, int | np.integer) and not isinstance(v, bool) and v > 0 for v in vals
    ):
        raise ArchtuneError(
            f"image_size: got {image_size!r}; expected (height, width), two positive integers"
        )
    return (int(vals[0]), int(vals[1]))


def check_fraction(f: float) -> None:
    if isinstance(f, bool) or not isinstance(f, Real) or not 0 < f < 1:
        raise ArchtuneError(
            f"test_fraction: got {f!r}; expected a number between 0 and 1 (exclusive)"
        )


def check_labels(y: np.ndarray, n_classes: int | None, where: str) -> np.ndarray:
    """Labels as int64 (N,); integers 0..n_classes-1."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ArchtuneError(f"{where}: labels have shape {y.shape}; expected (N,), one per image")
    if y.dtype.kind == "f" and y.size and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
        y = y.astype(np.int64)
    if y.dtype.kind not in "iu":
        raise ArchtuneError(f"{where}: labels are {y.dtype}; expected integers 0..K-1")
    y = y.astype(np.int64, copy=False)
    bad = y < 0
    if n_classes is not None:
        bad |= y >= n_classes
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        k = f"0..{n_classes - 1}" if n_classes is not None else "0..K-1 (non-negative)"
        raise ArchtuneError(
            f"{where}: label {int(y[first])} at index {first} is out of range; expected {k} "
            f"(labels span {int(y.min())}..{int(y.max())})"
        )
    return y


def check_lengths(x: np.ndarray | torch.Tensor, y: np.ndarray, where: str) -> None:
    if len(x) != len(y):
        raise ArchtuneError(
            f"{where}: {len(x)} images but {len(y)} labels; expected one label per image"
        )


def stratified_test_split(
    y: np.ndarray, test_fraction: float, seed: int, where: str
) -> tuple[np.ndarray, np.ndarray]:
    idx = np.arange(len(y))
    try:
        tr, te = train_test_split(idx, test_size=test_fraction, stratify=y, random_state=seed)
    except ValueError as e:
        raise ArchtuneError(
            f"{where}: cannot set aside a stratified test split of {test_fraction:g} from "
            f"{len(y)} images ({e}); add images (at least 2 per class) or provide a test split"
        ) from None
    return np.sort(tr), np.sort(te)


def conform(x: torch.Tensor, size: tuple[int, int] | None, channels: int | None,
            resize: str = "fit") -> torch.Tensor:
    """Resize / change channel count of a uint8 (N, C, H, W) tensor, in chunks. A new size
    keeps the aspect ratio as an image folder's does (``resize``: ``fit`` inside and pad with
    each image's border level, or ``crop``: cover and keep the centre)."""
    c, h, w = x.shape[1:]
    want_c = channels or c
    want_hw = size or (h, w)
    if want_c == c and tuple(want_hw) == (h, w):
        return x
    out = torch.empty((x.shape[0], want_c, *want_hw), dtype=torch.uint8)
    for start in range(0, x.shape[0], 4096):
        chunk = x[start : start + 4096].float()
        if want_c != c:
            chunk = chunk.expand(-1, 3, -1, -1) if want_c == 3 else (chunk * _LUMA).sum(1, True)
        if tuple(want_hw) != (h, w):
            chunk = _resized(chunk, (int(want_hw[0]), int(want_hw[1])), resize)
        out[start : start + 4096] = chunk.round_().clamp_(0, 255).to(torch.uint8)
    return out


_LUMA = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)


def _resized(x: torch.Tensor, size: tuple[int, int], resize: str) -> torch.Tensor:
    """(N, C, h, w) floats at ``size``, the aspect ratio kept: fit and pad, or cover and crop."""
    (h, w), (H, W) = x.shape[2:], size
    scale = min(H / h, W / w) if resize == "fit" else max(H / h, W / w)
    sh, sw = (min(max(1, round(h * scale)), H), min(max(1, round(w * scale)), W)) \
        if resize == "fit" else (max(H, round(h * scale)), max(W, round(w * scale)))
    x = F.interpolate(x, size=(sh, sw), mode="bilinear", align_corners=False, antialias=True)
    top, left = abs(sh - H) // 2, abs(sw - W) // 2
    if resize != "fit":
        return x[:, :, top : top + H, left : left + W]
    luma = (x * _LUMA).sum(1) if x.shape[1] == 3 else x[:, 0]
    edge = torch.cat([luma[:, 0], luma[:, -1], luma[:, :, 0], luma[:, :, -1]], dim=1)
    level = edge.quantile(0.5, dim=1).view(-1, 1, 1, 1)  # each image's border level
    canvas = level.expand(-1, x.shape[1], H, W).clone()
    canvas[:, :, top : top + sh, left : left + sw] = x
    return canvas
