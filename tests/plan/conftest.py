"""The built-in homework plan run end to end on tiny synthetic data (once per session)."""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from archtune.cli import main
from tests.conftest import CLASSES, synthetic_arrays

SEARCH_TRIALS = 12


@dataclass
class Ran:
    code: int
    out: str
    err: str


def cli(args: list[str]) -> Ran:
    """The CLI in-process (session fixtures cannot use capsys)."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(args)
        except SystemExit as exc:
            code = int(exc.code or 0)
    return Ran(code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def plan_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    xt, yt = synthetic_arrays(300, 0)
    xs, ys = synthetic_arrays(100, 2)
    rng = np.random.default_rng(3)
    ys[rng.permutation(100)[:12]] = rng.integers(0, 10, 12)  # some test labels no model can get
    path = tmp_path_factory.mktemp("plandata") / "tiny.npz"
    np.savez(path, x_train=xt, y_train=yt, x_test=xs, y_test=ys, classes=np.array(CLASSES))
    return path


def homework_args(npz: Path, plans: Path) -> list[str]:
    """`archtune plan homework` on tiny data: one epoch per model, a 12-trial search on 120
    images scored on 40 dev images, no pruning (so importances have their 10 trials)."""
    return ["-q", "plan", "homework", "--plans-dir", str(plans), "--trials", str(SEARCH_TRIALS),
            "--set", f"data.dataset={npz}", "--set", "train.epochs=1",
            "--set", "searches.cnn-grid.train_subset=120",
            "--set", "searches.cnn-grid.dev_subset=40", "--set", "searches.cnn-grid.pruner=none"]


@pytest.fixture(scope="session")
def homework(plan_npz: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Ran]:
    """(plan folder, first run's output) of the tiny homework plan."""
    plans = tmp_path_factory.mktemp("plans")
    old = os.environ.get("ARCHTUNE_THREADS")
    os.environ["ARCHTUNE_THREADS"] = "1"
    try:
        ran = cli(homework_args(plan_npz, plans))
    finally:
        if old is None:
            os.environ.pop("ARCHTUNE_THREADS")
        else:
            os.environ["ARCHTUNE_THREADS"] = old
    assert ran.code == 0, ran.out + ran.err
    return plans / "homework", ran
