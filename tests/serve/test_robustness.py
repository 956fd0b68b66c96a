"""The server under hostile or unlucky conditions: non-finite numbers never reach an answer, a
client that hangs up costs one debug line, limits are quoted as configured, and every stage of
a request is timed."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import torch

from archtune.serve.app import create_app
from archtune.serve.predict import Predictor
from archtune.serve.timing import EDGES_MS, STAGES, StageTimes, stage_summary
from archtune.training import Run
from tests._cli import run_cli
from tests.serve.conftest import encode, running_server
from tests.serve.test_preprocess import png_header_bomb

ZEROS = "[" + ",".join(["[" + ",".join(["0"] * 28) + "]"] * 28) + "]"


@pytest.fixture(scope="module")
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=30) as c:
        yield c


def _post_json(client: httpx.Client, text: str) -> httpx.Response:
    return client.post("/predict", content=text.encode(),
                       headers={"content-type": "application/json"})


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e400", "9" * 400, "0",
                                   "true", '"255"'])
def test_a_non_finite_or_bad_max_value_is_422(client: httpx.Client, value: str) -> None:
    r = _post_json(client, f'{{"pixels": {ZEROS}, "max_value": {value}}}')
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "bad_pixels" and "max_value" in r.json()["detail"]


@pytest.mark.parametrize("value", ["NaN", "Infinity", "1e400", "9" * 400])
def test_a_non_finite_pixel_is_422(client: httpx.Client, value: str) -> None:
    r = _post_json(client, ZEROS.replace("0", value, 1))
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "bad_pixels"


def test_a_model_giving_nan_answers_500_never_nan(
        tiny_run: Run, server_logs: list[logging.LogRecord]) -> None:
    predictor = Predictor.from_run(tiny_run.path)
    with torch.no_grad():
        for p in predictor.model.parameters():
            p.fill_(float("nan"))
    with running_server(create_app(predictor)) as url:
        r = httpx.post(url + "/predict", content=ZEROS.encode(),
                       headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 500 and r.json()["error"] == "internal_error"
    assert "NaN" not in r.text and "null" not in r.text and "non-finite" in r.text
    errors = [r for r in server_logs if r.levelno >= logging.WARNING]
    assert len(errors) == 1 and not errors[0].exc_info  # one line, no traceback


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def server_logs() -> Iterator[list[logging.LogRecord]]:
    """Every record of uvicorn's and archtune's loggers, at debug level."""
    handler = _Records()
    loggers = [logging.getLogger(n) for n in ("uvicorn", "uvicorn.error", "archtune")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    try:
        yield handler.records
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)


def test_a_client_leaving_mid_upload_is_one_debug_line(
        tiny_run: Run, class_images: tuple, server_logs: list[logging.LogRecord]) -> None:
    with running_server(create_app(tiny_run.path)) as url:
        port = int(url.rsplit(":", 1)[1])
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                          b"Content-Length: 100000\r\n\r\n" + b"\x89PNG" + bytes(2000))
                time.sleep(0.05)  # the server is now waiting for the rest of the body
        deadline = time.monotonic() + 10
        while sum("disconnected" in r.getMessage() for r in server_logs) < 3:
            assert time.monotonic() < deadline, [r.getMessage() for r in server_logs]
            time.sleep(0.02)
        ok = httpx.post(url + "/predict", content=encode(class_images[0][1]),
                        headers={"content-type": "image/png"}, timeout=30)
    assert ok.status_code == 200
    gone = [r for r in server_logs if "disconnected" in r.getMessage()]
    assert len(gone) == 3 and all(r.levelno == logging.DEBUG for r in gone)
    assert "POST /predict" in gone[0].getMessage()
    assert not [r for r in server_logs if r.exc_info or r.levelno >= logging.WARNING]


def test_the_413_for_a_large_image_quotes_the_configured_limit(
        tiny_run: Run, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import uvicorn
    from PIL import Image

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # the CLI sets it
    assert run_cli(["serve", str(tiny_run.path), "--max-pixels", "5000000"], capsys)[0] == 0
    with running_server(seen["app"]) as url:
        for size, shown in (((20_000, 20_000), "400,000,000 pixels"),  # Pillow's guard
                            ((3_000, 2_000), "3000 x 2000 pixels")):  # ours
            r = httpx.post(url + "/predict", timeout=30,
                           files={"file": ("big.png", png_header_bomb(*size), "image/png")})
            detail = r.json()["detail"]
            assert r.status_code == 413 and r.json()["error"] == "too_many_pixels"
            assert detail == f"'big.png': {shown}, more than the limit of 5,000,000"
    assert "DecompressionBomb" not in capsys.readouterr().err


def test_every_stage_of_a_prediction_is_timed(client: httpx.Client, class_images: tuple) -> None:
    before = client.get("/stats").json()
    for i in range(3):
        r = client.post("/predict", content=encode(class_images[0][i]),
                        headers={"content-type": "image/png"})
        assert r.status_code == 200
    after = client.get("/stats").json()
    summary = stage_summary(before, after)
    for stage in ("read", "decode", "wait", "forward", "resume", "respond", "handler"):
        assert summary[stage]["count"] == 3, stage
        assert 0 < summary[stage]["mean_ms"] <= summary[stage]["p99_ms"] * 1.13, stage
    assert summary["handler"]["mean_ms"] >= summary["forward"]["mean_ms"]
    assert after["images"] - before["images"] == 3


def test_stage_histograms_percentiles() -> None:
    times = StageTimes()
    before = times.snapshot()
    for ms in [1.0] * 98 + [50.0, 900.0]:
        times.add("wait", ms / 1000)
    s = stage_summary(before, times.snapshot())["wait"]
    assert s["count"] == 100 and s["mean_ms"] == pytest.approx((98 + 50 + 900) / 100)
    assert s["p50_ms"] == 1.0 and 50 <= s["p99_ms"] < 50 * 1.13
    assert set(times.snapshot()["stages"]) == set(STAGES) and EDGES_MS[0] == 0.01
    assert np.all(np.diff(EDGES_MS) > 0)
