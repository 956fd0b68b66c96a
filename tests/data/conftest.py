"""Fixtures for the data tests: tiny IDX folders and the shared real-data folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from archtune.data.idx import write_idx
from tests.conftest import require_real_data

IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def make_idx_arrays(n_train: int = 40, n_test: int = 20, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "train_images": rng.integers(0, 256, (n_train, 6, 5), dtype=np.uint8),
        "train_labels": (np.arange(n_train) % 10).astype(np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 6, 5), dtype=np.uint8),
        "test_labels": (np.arange(n_test) % 10).astype(np.uint8),
    }


@pytest.fixture
def idx_folder() -> Callable[..., dict[str, np.ndarray]]:
    """Write the four IDX files of a tiny 10-class data set into a folder; return the arrays."""

    def make(folder: Path, *, gz: bool = True, **kw: int) -> dict[str, np.ndarray]:
        folder.mkdir(parents=True, exist_ok=True)
        arrays = make_idx_arrays(**kw)
        for role, arr in arrays.items():
            write_idx(folder / (IDX_NAMES[role] + (".gz" if gz else "")), arr)
        return arrays

    return make


@pytest.fixture
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No ARCHTUNE_DATA, an empty cache under tmp_path; returns the cache's base folder."""
    monkeypatch.delenv("ARCHTUNE_DATA", raising=False)
    cache = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache


@pytest.fixture
def shared_datasets() -> Path:
    """The real data folder ($ARCHTUNE_DATA, ../shared/datasets or the cache; fails in CI)."""
    return require_real_data()
