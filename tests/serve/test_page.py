"""The web page in a real headless Chromium: upload a test-set image, read the prediction."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from archtune.serve import Predictor
from tests.serve.cdp import Browser
from tests.serve.conftest import encode, real_data_available, running_server, write_png

CHROMIUM = os.environ.get("ARCHTUNE_CHROMIUM")
pytestmark = pytest.mark.usefixtures("chromium")  # skips without it; fails under CI


@pytest.fixture(scope="module")
def case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
         ) -> tuple[Path, Path, str]:
    """(run folder, a PNG of a test-set image it classifies right, that image's class name).

    A Fashion-MNIST test image with a model trained on real data when the data are there;
    otherwise a synthetic image with the synthetic-data model.
    """
    folder = tmp_path_factory.mktemp("page")
    if real_data_available():
        run = request.getfixturevalue("real_run")
        x, y, classes = request.getfixturevalue("real_test_images")
    else:
        run = request.getfixturevalue("tiny_run")
        x, y = request.getfixturevalue("class_images")
        classes = run.classes
    probs = Predictor.from_run(run.path).probabilities(x[:200, None] / np.float32(255))
    right = np.flatnonzero((probs.argmax(1) == y[:200]) & (probs.max(1) > 0.6))
    i = int(right[0])
    return run.path, write_png(folder / f"test-{i}.png", x[i]), classes[int(y[i])]


@pytest.fixture(scope="module")
def page(case: tuple[Path, Path, str]) -> Iterator[Browser]:
    from archtune.serve.app import create_app

    with running_server(create_app(case[0])) as url:
        browser = Browser(str(CHROMIUM))
        try:
            browser.open(url + "/")
            browser.wait_for("document.body.dataset.state === 'ready'")
            yield browser
        finally:
            browser.close()


def _upload(page: Browser, path: Path) -> str:
    page.evaluate("document.body.dataset.state = 'waiting'")
    page.set_files("#file", [str(path)])
    return page.wait_for("['done', 'error'].includes(document.body.dataset.state) && "
                         "document.body.dataset.state")


def test_upload_a_test_image_and_read_the_prediction(page: Browser, case: tuple,
                                                     tmp_path: Path) -> None:
    _, image, label = case
    assert "parameters" in page.evaluate("document.getElementById('model-info').textContent")
    assert _upload(page, image) == "done"
    assert page.evaluate("document.getElementById('result-label').textContent") == label
    bars = page.evaluate("[...document.querySelectorAll('#bars li')].map(li => li.textContent)")
    assert len(bars) == 10 and sum(label in b for b in bars) == 1
    assert page.evaluate("document.querySelector('#bars li.top .name').textContent") == label
    assert page.wait_for("document.getElementById('model-input').naturalWidth") == 28
    assert page.evaluate("document.querySelectorAll('#maps img').length") == 8
    assert page.evaluate("getComputedStyle(document.getElementById('activations')).display") != "none"
    shots = Path(os.environ.get("ARCHTUNE_SCREENSHOTS", tmp_path))
    page.screenshot(shots / "serve-page.png")
    assert (shots / "serve-page.png").stat().st_size > 5000


def test_light_background_photo_is_shown_inverted(page: Browser, case: tuple,
                                                  tmp_path: Path) -> None:
    from PIL import Image

    _, image, label = case
    a = np.asarray(Image.open(image).resize((140, 140)))
    light = tmp_path / "light.jpg"
    light.write_bytes(encode(np.stack([255 - a] * 3, -1), "JPEG", quality=95))
    assert _upload(page, light) == "done"
    assert "inverted" in page.evaluate("document.getElementById('input-caption').textContent")


def test_a_bad_file_shows_an_error_and_the_page_keeps_working(page: Browser, case: tuple,
                                                              tmp_path: Path) -> None:
    fake = tmp_path / "fake.png"
    fake.write_text("not an image at all")
    assert _upload(page, fake) == "error"
    status = page.evaluate("document.getElementById('status').textContent")
    assert status == "'fake.png': not a PNG, JPEG, BMP or WebP image"
    assert page.evaluate("getComputedStyle(document.getElementById('result')).display") == "none"
    assert page.evaluate("getComputedStyle(document.getElementById('activations')).display") == "none"
    assert _upload(page, case[1]) == "done"
    assert page.evaluate("document.getElementById('result-label').textContent") == case[2]
