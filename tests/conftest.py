"""Shared fixtures: a tiny synthetic data set (learnable in a few epochs), the real data folder,
and the outside services some tests need (Chromium, PostgreSQL).

A test whose data or service is missing is skipped on a developer's machine, but under CI
(``CI=true``) it fails: CI must not pass while tests silently did not run.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import numpy as np
import pytest
import torch

from archtune.data import Split, Splits
from archtune.data.sources import cache_dir

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
CLASSES = [f"c{i}" for i in range(10)]
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
# read once, before any test changes the environment
_ENV_DATA = os.environ.get("ARCHTUNE_DATA", "").strip()


def unavailable(reason: str) -> NoReturn:
    """Skip the test (fail it under CI=true): what it needs is not there."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: a test that cannot run fails the run)", pytrace=False)
    pytest.skip(reason)


def require_module(name: str) -> ModuleType:
    """Import an optional package, or skip/fail (under CI=true) saying it is missing."""
    try:
        return importlib.import_module(name)
    except ImportError as err:
        unavailable(f"{name} is not installed ({err}); install the dev extra: pip install -e '.[dev]'")


def real_data_dir() -> Path | None:
    """The folder holding ``fashion-mnist/``: ``$ARCHTUNE_DATA`` when set (and only it), else
    ``../shared/datasets`` next to the repository, else archtune's download cache."""
    if _ENV_DATA:
        candidates = [Path(_ENV_DATA).expanduser()]
    else:
        candidates = [SHARED, cache_dir()]
    return next((c for c in candidates if (c / "fashion-mnist").is_dir()), None)


def require_real_data() -> Path:
    """:func:`real_data_dir`, or skip/fail saying where it looked."""
    found = real_data_dir()
    if found is None:
        where = f"ARCHTUNE_DATA={_ENV_DATA}" if _ENV_DATA else f"{SHARED} or {cache_dir()}"
        unavailable(f"real Fashion-MNIST not found (no fashion-mnist/ in {where}); set "
                    "ARCHTUNE_DATA to the folder holding it")
    return found


@pytest.fixture(scope="session")
def chromium() -> str:
    """The headless Chromium of ``$ARCHTUNE_CHROMIUM`` (``scripts/services.sh`` sets it)."""
    path = os.environ.get("ARCHTUNE_CHROMIUM", "").strip()
    if not path or not os.access(path, os.X_OK):
        unavailable(f"ARCHTUNE_CHROMIUM={path!r} is not an executable Chromium; "
                    'run eval "$(bash scripts/services.sh)"')
    return path


@pytest.fixture(scope="session")
def pg_url() -> str:
    """A PostgreSQL server URL from ``$ARCHTUNE_TEST_PG_URL``, checked to accept connections."""
    url = os.environ.get("ARCHTUNE_TEST_PG_URL", "").strip()
    if not url:
        unavailable('ARCHTUNE_TEST_PG_URL is not set; run eval "$(bash scripts/services.sh)"')
    try:
        import psycopg2

        psycopg2.connect(url, connect_timeout=10).close()
        problem = ""
    except Exception as err:  # missing driver or no server: say which
        problem = (str(err).strip().splitlines() or [type(err).__name__])[0]
    if problem:
        unavailable(f"cannot connect to ARCHTUNE_TEST_PG_URL={url}: {problem}")
    return url


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
    """Point ARCHTUNE_DATA at the real data folder (see :func:`require_real_data`)."""
    folder = require_real_data()
    monkeypatch.setenv("ARCHTUNE_DATA", str(folder))
    return folder


def pytest_configure(config: pytest.Config) -> None:
    """Draw the fuzz tests' seed once, before xdist starts its workers (they inherit it)."""
    from tests._fuzz import fuzz_seed

    fuzz_seed()


def pytest_report_header(config: pytest.Config) -> str:
    from tests._fuzz import SEED_ENV, fuzz_seed

    return f"fuzz seed: {fuzz_seed()} (replay the random fuzz cases with {SEED_ENV}={fuzz_seed()})"


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Cases and dropped cases of the fuzz tests, per input kind (xdist's workers' too)."""
    from tests._fuzz import SEED_ENV, fuzz_seed

    cases: dict[str, list[int]] = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            props = dict(getattr(report, "user_properties", ()) or ())
            if getattr(report, "when", "") == "call" and "fuzz_kind" in props:
                row = cases.setdefault(str(props["fuzz_kind"]), [0, 0, 0])
                row[0] += int(props["fuzz_cases"])
                row[1] += int(props["fuzz_dropped"])
                row[2] += int(props.get("fuzz_known_bugs", 0))
    if cases:
        total = sum(c for c, _, _ in cases.values())
        each = "; ".join(f"{kind} {c} ({d} dropped, {k} known bugs)"
                         for kind, (c, d, k) in sorted(cases.items()))
        terminalreporter.write_line(f"fuzz: {total} cases, seed {fuzz_seed()} ({SEED_ENV}): {each}")
