"""Tiny search spaces over the synthetic data set of tests/conftest.py."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import synthetic_arrays

TINY_SPACE: dict[str, Any] = {
    "name": "tiny",
    "layers": [
        {"repeat": {"int": [1, 2]}, "name": "conv", "block": [
            {"Conv2D": {"filters": {"choice": [2, 4], "name": "filters"}, "kernel_size": 3,
                        "padding": "same", "activation": "relu"}},
            {"MaxPooling2D": {"pool_size": 2}}]},
        "Flatten",
        {"Dense": {"units": 10, "activation": "softmax"}},
    ],
    "train": {
        "lr": {"float": [0.005, 0.05], "log": True},
        "optimizer": {"choice": {"sgd": {"momentum": 0.9, "nesterov": True}, "adam": {}}},
        "batch_size": 32,
        "epochs": 2,
    },
}

GRID_SPACE: dict[str, Any] = {
    "name": "grid",
    "layers": [
        {"Conv2D": {"filters": {"choice": [2, 4], "name": "filters"}, "kernel_size": 3,
                    "padding": "same", "activation": "relu"}},
        {"MaxPooling2D": {"pool_size": 4}},
        "Flatten",
        {"Dense": {"units": 10, "activation": "softmax"}},
    ],
    "train": {"lr": {"choice": [0.01, 0.02], "name": "lr"}, "batch_size": 32, "epochs": 1},
    "search": {"sampler": "grid"},
}


def space(base: dict[str, Any], npz: Path | None = None, **train: Any) -> dict[str, Any]:
    out = copy.deepcopy(base)
    out["train"].update(train)
    if npz is not None:
        out["data"] = {"dataset": str(npz)}
    return out


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny models on a shared machine: one thread per trial (and per process) is fastest."""
    monkeypatch.setenv("ARCHTUNE_THREADS", "1")


@pytest.fixture
def big_npz(tmp_path: Path) -> Path:
    """Enough synthetic images that a trial takes a few seconds (for process-level tests)."""
    xt, yt = synthetic_arrays(2000, 0)
    xs, ys = synthetic_arrays(100, 2)
    path = tmp_path / "big.npz"
    np.savez(path, x_train=xt, y_train=yt, x_test=xs, y_test=ys)
    return path


def archtune_cmd(*args: str) -> list[str]:
    """The archtune command in a fresh process (as the console script runs it)."""
    return [sys.executable, "-c", "from archtune.cli import main; main()", "-q", *args]


def run_cli(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(archtune_cmd(*args), cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def proposals(raw: dict[str, Any], sampler: str, seed: int, n: int) -> list[dict[str, Any]]:
    """The points of the first ``n`` trials of an uninterrupted search (random sampler: they do
    not depend on the trials' results)."""
    import optuna

    from archtune.search import load_space, make_sampler

    study = optuna.create_study(sampler=make_sampler(sampler, seed, n), direction="maximize")
    out = []
    for _ in range(n):
        trial = study.ask()
        load_space(raw).sample(trial)
        study.tell(trial, 0.5)
        out.append(trial.params)
    return out
