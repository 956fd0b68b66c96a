"""Fixtures for the serve tests: small trained runs, image files, a real server on loopback."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import archtune
from archtune.data import load_dataset, test_split
from archtune.training import Run
from tests.conftest import make_splits, real_data_dir, require_real_data, synthetic_arrays

TINY_CNN = {
    "name": "tiny-cnn",
    "input_shape": [28, 28, 1],
    "layers": [
        {"Conv2D": {"filters": 8, "kernel_size": 3, "padding": "same", "activation": "relu"}},
        {"MaxPooling2D": {"pool_size": 2}},
        {"Flatten": {}},
        {"Dense": {"units": 10, "activation": "softmax"}},
    ],
    "train": {"optimizer": "adam", "lr": 0.01, "epochs": 4, "batch_size": 32, "seed": 0},
    "data": {"standardize": True},
}


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """A small CNN trained on the synthetic squares (class k lights a square at place k).

    Its data set is 'fashion-mnist' by the spec (the default), so it expects light items on a
    dark background, as the synthetic images are.
    """
    path = tmp_path_factory.mktemp("serve") / "tiny-run"
    return archtune.train(TINY_CNN, splits=make_splits(400, 100), run_dir=path, progress=False)


@pytest.fixture(scope="session")
def class_images() -> tuple[np.ndarray, np.ndarray]:
    """Fresh synthetic images (uint8 (N, 28, 28)) and labels, one of each class first."""
    return synthetic_arrays(40, seed=7)


def real_data_available() -> bool:
    return real_data_dir() is not None


@pytest.fixture(scope="session")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """A small CNN trained briefly on real Fashion-MNIST (skips without the data; fails in CI)."""
    data = require_real_data()
    spec = {**TINY_CNN, "name": "tiny-fashion",
            "train": {**TINY_CNN["train"], "epochs": 2, "lr": 0.003},
            "data": {"dataset": "fashion-mnist", "data_dir": str(data), "train_subset": 3000,
                     "dev_fraction": 0.05, "standardize": True}}
    path = tmp_path_factory.mktemp("serve") / "real-run"
    return archtune.train(spec, run_dir=path, progress=False)


@pytest.fixture(scope="session")
def real_test_images() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The first 1,000 Fashion-MNIST test images (uint8 (N, 28, 28)), labels and class names."""
    ds = load_dataset("fashion-mnist", data_dir=str(require_real_data()))
    split = test_split(ds)
    x = (split.x[:1000, 0] * 255).round().byte().numpy()
    return x, split.y[:1000].numpy(), list(ds.classes)


def encode(a: np.ndarray, fmt: str = "PNG", mode: str | None = None, **save: object) -> bytes:
    """Encode a uint8 array (H, W) or (H, W, C) as an image file in memory."""
    im = Image.fromarray(a)
    if mode:
        im = im.convert(mode)
    buf = io.BytesIO()
    im.save(buf, format=fmt, **save)
    return buf.getvalue()


@contextmanager
def running_server(app: object) -> Iterator[str]:
    """Run an ASGI app with uvicorn on 127.0.0.1 (a free port) in a thread; yields its URL."""
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture(scope="session")
def server(tiny_run: Run) -> Iterator[str]:
    """The real app serving the tiny run over HTTP on loopback."""
    from archtune.serve.app import create_app

    with running_server(create_app(tiny_run.path)) as url:
        yield url


def write_png(path: Path, a: np.ndarray) -> Path:
    path.write_bytes(encode(a))
    return path
