"""A run trained on a folder of photos of mixed sizes and modes prepares any photo as its training
images were (size policy, resize, channels), and predict, the HTTP app and the exported ONNX
model agree on an RGB photo of another size."""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw

from archtune.data.folders import read_image_folder, scan_folder
from archtune.serve import Predictor
from archtune.serve.app import create_app
from archtune.serve.export import check_images, export_model
from archtune.specs import spec_from_dict
from archtune.training import Run, train

COLOURS = {"blue": (30, 40, 220), "green": (30, 190, 40), "red": (220, 30, 30)}
MODES = ("RGB", "L", "RGBA", "P")


def _shape(size: tuple[int, int], colour: tuple[int, int, int], k: int) -> Image.Image:
    w, h = size
    im = Image.new("RGB", size, (235, 235, 230))
    box = (w // 5, h // 5, 4 * w // 5, 4 * h // 5)
    draw = ImageDraw.Draw(im)
    draw.rectangle(box, fill=colour) if k == 1 else draw.ellipse(box, fill=colour)
    return im


def _photos(root: Path) -> Path:
    rng = random.Random(0)
    for k, (name, colour) in enumerate(COLOURS.items()):
        (root / name).mkdir(parents=True)
        for i in range(8):
            im = _shape((rng.randint(20, 60), rng.randint(20, 60)), colour, k)
            mode = MODES[i % 4]
            im = im.quantize(16) if mode == "P" else im.convert(mode)
            im.save(root / name / f"{i}.png")
    return root


@pytest.fixture(scope="module", params=["fit", "crop"])
def photo_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Run:
    tmp = tmp_path_factory.mktemp(f"photos-{request.param}")
    spec = spec_from_dict({"name": "photo-cnn", "layers": [
        {"Conv2D": {"filters": 4, "kernel_size": 3, "padding": "same", "activation": "relu"}},
        {"MaxPooling2D": 2}, {"AdaptiveAvgPooling2D": 4}, "Flatten", {"Dense": "classes"}],
        "train": {"epochs": 3, "batch_size": 4, "lr": 0.02, "precision": "fp32"},
        "data": {"dataset": str(_photos(tmp / "photos")), "standardize": True,
                 "resize": request.param}})
    return train(spec, run_dir=tmp / "run", progress=False, device="cpu")


def _photo() -> bytes:
    buf = io.BytesIO()
    _shape((97, 61), COLOURS["red"], 0).save(buf, "JPEG", quality=95)  # a size no image had
    return buf.getvalue()


def test_run_records_the_size_policy(photo_run: Run) -> None:
    data = photo_run.metrics["data"]
    h, w = data["image_size"]
    assert data["size_policy"] == "median" and data["channels"] == 3
    assert photo_run.spec.input_shape == (h, w, 3) and data["resize"] == photo_run.spec.data.resize


def test_predict_prepares_a_file_as_training_read_it(photo_run: Run) -> None:
    root = Path(photo_run.spec.data.dataset)
    h, w, c = photo_run.spec.input_shape
    folder = read_image_folder(root, (h, w), c, resize=photo_run.spec.data.resize)
    files = scan_folder(root).files
    predictor = Predictor.from_run(photo_run.path)
    for i in (0, 5, 13, 22):  # RGB, L, RGBA and P files
        pixels = predictor.prepare(files[i]).pixels
        np.testing.assert_array_equal(np.rint(pixels * 255).astype(np.uint8), folder.x[i])


def test_predict_serve_and_onnx_agree_on_a_photo(photo_run: Run, tmp_path: Path) -> None:
    predictor = Predictor.from_run(photo_run.path)
    photo = _photo()
    x = predictor.prepare(photo).pixels[None]
    assert x.shape[1:] == (3, *photo_run.spec.input_shape[:2])
    direct = predictor.probabilities(x)[0]
    rows = predictor.predict_files([_write(tmp_path / "photo.jpg", photo)], top=3)
    assert rows[0]["label"] == predictor.classes[int(direct.argmax())]
    with TestClient(create_app(predictor)) as client:
        got = client.post("/predict?probabilities=true",
                          files={"file": ("photo.jpg", photo, "image/jpeg")})
    assert got.status_code == 200, got.text
    served = got.json()["predictions"][0] if "predictions" in got.json() else got.json()
    np.testing.assert_allclose(served["probabilities"], direct, atol=1e-5)
    assert served["label"] == rows[0]["label"]
    onnx = export_model(predictor, "onnx", tmp_path / "m.onnx")
    session = ort.InferenceSession(str(onnx.path), providers=["CPUExecutionProvider"])
    probs = session.run(["probabilities"], {"image": x.astype(np.float32)})[0][0]
    np.testing.assert_allclose(probs, direct, atol=1e-4)
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["resize"] == photo_run.spec.data.resize


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_default_exports_at_any_size(tmp_path: Path) -> None:
    """The default spec pools to 7x7 from sizes 7 does not divide (42x44 -> 10x11): ONNX too."""
    from archtune.models import build_model
    from archtune.specs import load_spec

    spec = load_spec("default").for_input((42, 44, 3)).for_classes(3)
    predictor = Predictor(build_model(spec).eval(), ["a", "b", "c"], spec)
    result = export_model(predictor, "onnx", tmp_path / "default.onnx",
                          check=check_images(predictor, 8))
    assert result.ok
