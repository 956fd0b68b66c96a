"""Predictor: run folder -> batched predictions of files, folders and arrays; the batcher."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from archtune import ArchtuneError
from archtune.serve import MicroBatcher, Predictor, predict_images
from archtune.training import Run
from tests.serve.conftest import encode, write_png


@pytest.fixture(scope="module")
def predictor(tiny_run: Run) -> Predictor:
    return Predictor.from_run(tiny_run.path, batch_size=4)


def test_predictor_reads_everything_from_the_run(predictor: Predictor, tiny_run: Run) -> None:
    assert predictor.classes == tiny_run.classes
    assert predictor.format.chw == (1, 28, 28) and predictor.format.background == "dark"
    model = tiny_run.load_model()
    assert np.allclose(predictor.model.mean.cpu(), model.mean) and float(model.std.mean()) != 1.0
    from_ckpt = Predictor.from_run(tiny_run.path / "best.pt")
    assert from_ckpt.classes == predictor.classes and from_ckpt.run is None


def test_files_and_folders_batched_in_order(predictor: Predictor, class_images: tuple,
                                            tmp_path: Path) -> None:
    x, y = class_images
    for i in range(10):
        write_png(tmp_path / f"img{i:02d}.png", x[i])
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "light.jpg").write_bytes(encode(255 - x[3], "JPEG", quality=95))
    (tmp_path / "notes.txt").write_text("not an image, not listed")
    rows = predictor.predict_files([tmp_path], top=2)  # batch_size 4: three batches
    assert [Path(r["file"]).name for r in rows] == [f"img{i:02d}.png" for i in range(10)] + [
        "light.jpg"]
    assert [r["label"] for r in rows] == [f"c{k}" for k in y[:10]] + [f"c{y[3]}"]
    assert rows[-1]["inverted"] and not rows[0]["inverted"]
    assert all(len(r["top"]) == 2 and r["top"][0]["label"] == r["label"] for r in rows)
    direct = predictor.probabilities(x[:10, None] / np.float32(255))
    for r, p in zip(rows, direct, strict=False):
        assert r["probability"] == pytest.approx(float(p.max()), abs=1e-6)


def test_bad_files_are_reported_and_the_rest_predicted(predictor: Predictor, class_images: tuple,
                                                       tmp_path: Path) -> None:
    x, y = class_images
    good = write_png(tmp_path / "good.png", x[5])
    fake = tmp_path / "fake.png"
    fake.write_text("hello")
    rows = predictor.predict_files([fake, good])
    assert rows[0]["code"] == "unsupported_image" and "error" in rows[0]
    assert rows[1]["label"] == f"c{y[5]}"
    with pytest.raises(ArchtuneError, match="no such file"):
        predictor.predict_files([tmp_path / "missing.png"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArchtuneError, match="no image files"):
        predictor.predict_files([tmp_path / "empty"])


def test_predict_function_and_top_k(tiny_run: Run, class_images: tuple, tmp_path: Path) -> None:
    x, y = class_images
    rows = predict_images(tiny_run, [write_png(tmp_path / "a.png", x[7])], top=10)
    assert len(rows[0]["top"]) == 10 and rows[0]["label"] == f"c{y[7]}"
    probs = [t["probability"] for t in rows[0]["top"]]
    assert probs == sorted(probs, reverse=True) and sum(probs) == pytest.approx(1, abs=1e-5)


def test_first_conv_activations(predictor: Predictor, class_images: tuple) -> None:
    name, maps = predictor.activations(class_images[0][0][None] / np.float32(255))
    assert name == "conv2d_0" and maps.shape == (8, 28, 28) and maps.min() >= 0  # after relu


def test_wrong_array_shape_is_an_error(predictor: Predictor) -> None:
    with pytest.raises(ArchtuneError, match="expected images of shape"):
        predictor.probabilities(np.zeros((2, 3, 28, 28), np.float32))


async def _until(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    """Poll ``condition`` (letting the event loop run) until it holds, or fail saying ``what``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds:g} s: {what}"
        await asyncio.sleep(0.001)


def test_micro_batcher_gathers_concurrent_requests() -> None:
    """Requests that arrive while the model is busy are answered by one forward pass."""
    calls: list[int] = []
    threads: set[str] = set()
    busy = threading.Event()  # the model holds its first batch until the test lets it go

    def held_double(x: np.ndarray) -> np.ndarray:
        calls.append(len(x))
        threads.add(threading.current_thread().name)
        assert busy.wait(60), "the test never let the model go"
        return x * 2

    async def main() -> list[np.ndarray]:
        batcher = MicroBatcher(held_double, max_batch=64, max_wait_ms=5)
        inputs = [np.full((1 + i % 2, 3), i, np.float32) for i in range(20)]
        try:
            first = asyncio.ensure_future(batcher.submit(inputs[0]))
            await _until(lambda: calls == [1], "the first request reached the model alone")
            rest = [asyncio.ensure_future(batcher.submit(x)) for x in inputs[1:]]
            await _until(lambda: batcher.pending == 19, "19 requests queued behind the busy model")
            busy.set()
            return await asyncio.gather(first, *rest)
        finally:
            busy.set()
            await batcher.close()

    results = asyncio.run(main())
    for i, r in enumerate(results):
        assert r.shape == (1 + i % 2, 3) and np.all(r == 2 * i)  # each got its own rows back
    assert calls == [1, 29]  # the 19 requests queued meanwhile: one forward pass of 29 rows
    assert all(name.startswith("archtune-model") for name in threads)


def test_micro_batcher_passes_errors_to_every_waiting_request() -> None:
    def boom(x: np.ndarray) -> np.ndarray:
        raise RuntimeError("model failed")

    async def main() -> list[object]:
        batcher = MicroBatcher(boom, max_wait_ms=5)
        try:
            return await asyncio.gather(*(batcher.submit(np.zeros((1, 2))) for _ in range(3)),
                                        return_exceptions=True)
        finally:
            await batcher.close()

    assert all(isinstance(r, RuntimeError) for r in asyncio.run(main()))


def test_an_mlp_has_no_activation_maps() -> None:
    from archtune import build_model, load_spec
    from archtune.serve.explain import explain_image

    spec = load_spec("mlp-small")
    predictor = Predictor(build_model(spec), [f"k{i}" for i in range(10)], spec)
    pixels = np.zeros((1, 28, 28), np.float32)
    assert predictor.activations(pixels) is None
    shown = explain_image(predictor, pixels)
    assert shown["activations"] is None and shown["input"]["width"] == 28
