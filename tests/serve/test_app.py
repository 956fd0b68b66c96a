"""The HTTP API, over real HTTP on loopback: good images of every kind, every bad input a
specific 4xx, and the server still serving afterwards."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.serve.conftest import encode
from tests.serve.test_preprocess import png_header_bomb


@pytest.fixture(scope="module")
def client(server: str) -> httpx.Client:
    with httpx.Client(base_url=server, timeout=30) as c:
        yield c


def _rgb(a: np.ndarray) -> np.ndarray:
    return np.stack([a, (a * 0.8).astype(np.uint8), a], axis=-1)


def _big(a: np.ndarray, size: int = 112) -> np.ndarray:
    return np.asarray(Image.fromarray(a).resize((size, size), Image.Resampling.NEAREST))


# (name, content type, encoder of a dark-background uint8 image, inverted?)
GOOD = [
    ("gray.png", "image/png", lambda a: encode(a), False),
    ("light-gray.png", "image/png", lambda a: encode(255 - a), True),
    ("colour.png", "image/png", lambda a: encode(_rgb(a)), False),
    ("light-colour-big.jpg", "image/jpeg", lambda a: encode(_rgb(255 - _big(a)), "JPEG",
                                                            quality=92), True),
    ("gray.jpg", "image/jpeg", lambda a: encode(_big(a, 84), "JPEG", quality=92), False),
    ("colour.bmp", "image/bmp", lambda a: encode(_rgb(a), "BMP"), False),
    ("light.bmp", "image/bmp", lambda a: encode(255 - a, "BMP"), True),
    ("colour.webp", "image/webp", lambda a: encode(_rgb(_big(a, 56)), "WEBP", lossless=True),
     False),
    ("alpha.png", "image/png", lambda a: encode(np.dstack([_rgb(a), np.full_like(a, 255)])), False),
    ("light-alpha.webp", "image/webp",
     lambda a: encode(np.dstack([_rgb(255 - a), np.full_like(a, 255)]), "WEBP", lossless=True),
     True),
]


@pytest.mark.parametrize(("name", "ctype", "make", "inverted"), GOOD, ids=[g[0] for g in GOOD])
def test_good_images_of_every_type(client: httpx.Client, class_images: tuple, name: str,
                                   ctype: str, make: object, inverted: bool) -> None:
    x, y = class_images
    k = 3 + len(name) % 7
    r = client.post("/predict", files={"file": (name, make(x[k]), ctype)})
    assert r.status_code == 200, r.text
    pred = r.json()["predictions"][0]
    assert pred["label"] == f"c{y[k]}" and pred["file"] == name and pred["inverted"] is inverted
    assert pred["probability"] > 0.5 and len(pred["top"]) == 3


def test_many_images_in_one_request_and_raw_body(client: httpx.Client, class_images: tuple) -> None:
    x, y = class_images
    files = [("file", (f"{i}.png", encode(x[i]), "image/png")) for i in range(10)]
    r = client.post("/predict", files=files, params={"top": 1, "probabilities": True})
    preds = r.json()["predictions"]
    assert r.status_code == 200 and [p["label"] for p in preds] == [f"c{k}" for k in y[:10]]
    assert all(len(p["top"]) == 1 and len(p["probabilities"]) == 10 for p in preds)
    raw = client.post("/predict", content=encode(x[4]), headers={"content-type": "image/png"})
    assert raw.json()["predictions"][0]["label"] == f"c{y[4]}"


def test_json_pixels(client: httpx.Client, class_images: tuple) -> None:
    x, y = class_images
    one = client.post("/predict", json=x[2].tolist())
    assert one.status_code == 200 and one.json()["predictions"][0]["label"] == f"c{y[2]}"
    many = client.post("/predict", json={"pixels": (x[:4] / 255).tolist(), "max_value": 1})
    assert [p["label"] for p in many.json()["predictions"]] == [f"c{k}" for k in y[:4]]
    assert many.json()["predictions"][0]["inverted"] is None


def _multipart(name: str, data: bytes, ctype: str = "image/png") -> dict:
    return {"files": {"file": (name, data, ctype)}}


BAD = [
    ("empty body", {"content": b"", "headers": {"content-type": "image/png"}}, 400, "empty_body"),
    ("empty file", _multipart("e.png", b""), 400, "empty"),
    ("no file part", {"data": {"note": "hi"}, "files": {"x": ("", b"", "")}}, 400, None),
    ("text named .png", _multipart("notes.png", b"just some text\n" * 20), 415,
     "unsupported_image"),
    ("truncated png", None, 422, "corrupt_image"),
    ("20000 x 20000 png", _multipart("bomb.png", png_header_bomb(20_000, 20_000)), 413,
     "too_many_pixels"),
    ("6 MB upload", _multipart("big.png", b"\x89PNG" + bytes(6 * 1024 * 1024)), 413,
     "request_too_large"),
    ("6 MB raw body", {"content": bytes(6 * 1024 * 1024), "headers": {"content-type": "image/png"}},
     413, "request_too_large"),
    ("wrong json shape", {"json": [[0, 1], [2, 3]]}, 422, "bad_shape"),
    ("json object without pixels", {"json": {"image": [1, 2]}}, 422, "bad_shape"),
    ("json not numbers", {"json": [["a"] * 28] * 28}, 422, "bad_pixels"),
    ("json out of range", {"json": [[300] * 28] * 28}, 422, "bad_pixels"),
    ("json scalar", {"json": 5}, 422, "bad_shape"),
    ("invalid json", {"content": b"[[1, 2", "headers": {"content-type": "application/json"}}, 400,
     "invalid_json"),
    ("deeply nested json", {"content": b"[" * 100_000 + b"]" * 100_000,
                            "headers": {"content-type": "application/json"}}, 400, "invalid_json"),
    ("malformed multipart", {"content": b"abc", "headers": {
        "content-type": "multipart/form-data; boundary=x"}}, 400, "bad_multipart"),
    ("text body", {"content": b"hello", "headers": {"content-type": "text/plain"}}, 415,
     "unsupported_media_type"),
    ("bad top", {"params": {"top": 0}, "json": [[0] * 28] * 28}, 422, "invalid_request"),
    ("too many images", {"files": [("f", (f"{i}.png", b"x", "image/png")) for i in range(70)]},
     413, "too_many_images"),
]


@pytest.mark.parametrize(("what", "kwargs", "status", "code"), BAD, ids=[b[0] for b in BAD])
def test_bad_inputs_get_specific_4xx_and_the_server_keeps_serving(
        client: httpx.Client, class_images: tuple, what: str, kwargs: dict | None, status: int,
        code: str | None) -> None:
    x, y = class_images
    if kwargs is None:  # truncated: half of a real PNG
        data = encode(np.random.default_rng(0).integers(0, 256, (64, 64)).astype(np.uint8))
        kwargs = _multipart("cut.png", data[: len(data) // 2])
    r = client.post("/predict", **kwargs)
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "detail"} and body["detail"]
    if code:
        assert body["error"] == code
    ok = client.post("/predict", files={"file": ("ok.png", encode(x[1]), "image/png")})
    assert ok.status_code == 200 and ok.json()["predictions"][0]["label"] == f"c{y[1]}"


def test_errors_name_the_file(client: httpx.Client, class_images: tuple) -> None:
    files = [("file", ("fine.png", encode(class_images[0][0]), "image/png")),
             ("file", ("bad.png", b"nope", "image/png"))]
    r = client.post("/predict", files=files)
    assert r.status_code == 415 and "'bad.png'" in r.json()["detail"]


def test_unknown_routes_and_methods_are_json_errors(client: httpx.Client) -> None:
    assert client.get("/nothing").json() == {"error": "not_found", "detail": "Not Found"}
    assert client.get("/predict").status_code == 405
    assert client.get("/../../etc/passwd").status_code == 404


def test_concurrent_requests_all_answered(client: httpx.Client, class_images: tuple) -> None:
    x, y = class_images
    before = client.get("/health").json()

    def one(i: int) -> str:
        r = client.post("/predict", content=encode(x[i % 20]), headers={"content-type": "image/png"})
        return r.json()["predictions"][0]["label"]

    with ThreadPoolExecutor(8) as pool:
        labels = list(pool.map(one, range(48)))
    assert labels == [f"c{y[i % 20]}" for i in range(48)]
    after = client.get("/health").json()
    assert after["images"] - before["images"] == 48
    assert after["batches"] - before["batches"] <= 48


def test_health_model_and_openapi(client: httpx.Client, tiny_run: object) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["model"] == "tiny-cnn"
    info = client.get("/model").json()
    assert info["classes"] == [f"c{i}" for i in range(10)] and info["input_shape"] == [28, 28, 1]
    assert info["run"] == "tiny-run" and "/" not in info["run"]  # a name, never a path
    assert [layer["type"] for layer in info["layers"]] == ["Conv2D", "MaxPooling2D", "Flatten",
                                                           "Dense"]
    assert info["params"] == sum(layer["params"] for layer in info["layers"]) == (9 * 8 + 8) + (14 * 14 * 8 * 10 + 10)
    assert info["metrics"]["best"]["dev_accuracy"] > 0.9
    assert info["limits"]["max_bytes"] == 5 * 1024 * 1024
    schema = client.get("/openapi.json").json()
    assert {"/predict", "/explain", "/model", "/health"} <= set(schema["paths"])
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "application/json", "image/png"} <= set(body)
    assert "415" in schema["paths"]["/predict"]["post"]["responses"]


def test_explain_gives_the_input_and_activation_maps(client: httpx.Client,
                                                     class_images: tuple) -> None:
    x, y = class_images
    r = client.post("/explain", files={"file": ("s.png", encode(255 - x[6]), "image/png")})
    data = r.json()
    assert r.status_code == 200 and data["prediction"]["label"] == f"c{y[6]}"
    assert len(data["prediction"]["probabilities"]) == 10 and data["prediction"]["inverted"]
    assert data["input"]["png"].startswith("data:image/png;base64,")
    act = data["activations"]
    assert act["layer"] == "conv2d_0" and act["shape"] == [8, 28, 28] and len(act["maps"]) == 8
    two = client.post("/explain", json=x[:2].tolist())
    assert two.status_code == 422 and two.json()["error"] == "one_image_expected"


def test_page_and_static_files(client: httpx.Client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and 'id="file"' in page.text and "static/app.js" in page.text
    assert "http" not in page.text.split("<footer>")[0].replace("http://HOST", "")  # no CDN
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/style.css").headers["content-type"].startswith("text/css")
    assert json.loads(client.get("/health").text)["status"] == "ok"
