"""Shared fixtures: a tiny synthetic data set (learnable in a few epochs) and the real data folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from archtune.data import Split, Splits

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
CLASSES = [f"c{i}" for i in range(10)]


def synthetic_arrays(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """28x28 uint8 images whose class k lights a 6x6 square at a class-dependent position."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 10
    x = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for k in range(10):
        r, c = 2 + (k // 5) * 12, 2 + (k % 5) * 5
        x[y == k, r:r + 6, c:c + 4] = 230
    return x, y


def make_splits(n_train: int = 200, n_dev: int = 100) -> Splits:
    xt, yt = synthetic_arrays(n_train, 0)
    xd, yd = synthetic_arrays(n_dev, 1)

    def split(x: np.ndarray, y: np.ndarray) -> Split:
        return Split(torch.from_numpy(x).float().div(255)[:, None], torch.from_numpy(y).long(),
                     torch.arange(len(y)))

    return Splits(split(xt, yt), split(xd, yd), list(CLASSES), (1, 28, 28))


@pytest.fixture
def tiny_splits() -> Splits:
    return make_splits()


@pytest.fixture
def tiny_npz(tmp_path: Path) -> Path:
    """A .npz data set file (x_train, y_train, x_test, y_test) of synthetic images."""
    xt, yt = synthetic_arrays(300, 0)
    xs, ys = synthetic_arrays(100, 2)
    path = tmp_path / "tiny.npz"
    np.savez(path, x_train=xt, y_train=yt, x_test=xs, y_test=ys)
    return path


@pytest.fixture
def real_data(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point ARCHTUNE_DATA at ../shared/datasets (skip when it is not there)."""
    if not (SHARED / "fashion-mnist").is_dir():
        pytest.skip(f"real data not found at {SHARED}")
    monkeypatch.setenv("ARCHTUNE_DATA", str(SHARED))
    return SHARED
