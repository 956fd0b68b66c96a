"""Property-based fuzzing of the HTTP API (FastAPI's TestClient on the app serving a tiny run):
JSON bodies (any JSON, pixel arrays of any shape and value, invalid and hostile JSON text),
multipart bodies (any number of parts, names, content types and file contents, broken
boundaries) and raw image bodies, to /predict and /explain with any query. Every answer is 2xx
or 4xx with a JSON body; never 500, never a traceback. Fixed and random parts, dropped cases
counted: see tests/_fuzz.py."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import strategies as st

from archtune.serve import create_app
from archtune.training import Run
from tests._fuzz import PARTS, run_fuzz
from tests.serve.conftest import encode
from tests.serve.test_fuzz_images import image_bytes

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20)
PIXEL = st.one_of(st.integers(-2, 300), st.floats(allow_nan=True, allow_infinity=True),
                  st.sampled_from([0, 255, 256, -1, 1e308, 10**400, True, None, "1", []]))


@st.composite
def pixel_json(draw: st.DrawFn) -> Any:
    """A pixel array of a right or nearly right shape, some values odd; maybe in an object."""
    n = draw(st.sampled_from([None, 0, 1, 2, 65]))
    h, w = draw(st.sampled_from([(28, 28), (28, 27), (1, 28), (0, 0)]))
    c = draw(st.sampled_from([None, 1, 3]))
    base = draw(st.sampled_from([0.0, 128.0, 255.0]))
    one: Any = np.full((h, w) if c is None else (h, w, c), base).tolist()
    for _ in range(draw(st.integers(0, 3))):  # a few odd values (or rows)
        if not one or not one[0]:
            break
        i = draw(st.integers(0, len(one) - 1))
        if draw(st.booleans()) and isinstance(one[i], list) and one[i]:
            one[i][draw(st.integers(0, len(one[i]) - 1))] = draw(PIXEL)
        else:
            one[i] = draw(st.sampled_from([[], [1], "row", None]))
    value: Any = one if n is None else [one] * n
    if draw(st.booleans()):
        value = {"pixels": value} | draw(st.sampled_from(
            [{}, {"max_value": 1}, {"max_value": 0}, {"max_value": -3}, {"max_value": "x"},
             {"max_value": 10**400}, {"max_value": 1e-300}, {"extra": 1}]))
    return value


def _dumps(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True, default=str).encode()


JSON_TEXT = st.one_of(
    JSON_VALUES.map(_dumps), pixel_json().map(_dumps),
    st.sampled_from([b"", b"{", b"[", b"[1,2", b"NaN", b"Infinity", b"-Infinity", b"[NaN]",
                     b'{"pixels": NaN}', b"1" * 5000, b"[" * 100_000, b'"\\ud800"', b"\xff\xfe",
                     b"null", b"true", b'{"pixels": [[1e999]]}', b'{"pixels": []}',
                     b"[" * 30 + b"]" * 30]),
    st.binary(max_size=64),
)
TYPES = st.sampled_from(["image/png", "image/jpeg", "image/webp", "image/bmp", "image/gif",
                         "application/octet-stream", "text/plain", "", "image/png; x=y",
                         "IMAGE/PNG", "application/json", "multipart/form-data"])


@st.composite
def multipart(draw: st.DrawFn) -> tuple[bytes, str]:
    """(body, content-type) of a multipart request: any number of parts, well or badly formed."""
    boundary = draw(st.sampled_from(["b0undary", "x" * 70, "with space", "é"]))
    parts = []
    for _ in range(draw(st.sampled_from([0, 1, 1, 2, 3, 65]))):
        name = draw(st.sampled_from(["file", "files", "image", "", '"quoted"', "x" * 300]))
        filename = draw(st.one_of(st.none(), st.sampled_from(
            ["a.png", "", "../../etc/passwd", "é.png", "x" * 5000, "a\r\nb.png"]),
            st.text(max_size=10)))
        disposition = f'form-data; name="{name}"' + ("" if filename is None else f'; filename="{filename}"')
        head = f"Content-Disposition: {disposition}\r\n"
        if draw(st.booleans()):
            head += f"Content-Type: {draw(TYPES)}\r\n"
        data = draw(st.one_of(image_bytes(), st.binary(max_size=32)))
        parts.append(f"--{boundary}\r\n{head}\r\n".encode("utf-8", "replace") + data + b"\r\n")
    ending = draw(st.sampled_from([f"--{boundary}--\r\n", "", f"--{boundary}", "--wrong--\r\n"]))
    body = b"".join(parts) + ending.encode("utf-8", "replace")
    kind = draw(st.sampled_from([f"multipart/form-data; boundary={boundary}",
                                 f'multipart/form-data; boundary="{boundary}"',
                                 "multipart/form-data", "multipart/form-data; boundary=",
                                 "multipart/mixed; boundary=" + boundary]))
    return body, kind


QUERY = st.dictionaries(st.sampled_from(["top", "probabilities", "x"]),
                        st.sampled_from(["0", "1", "3", "10", "1000", "1001", "-1", "nan", "true",
                                         "false", "", "9" * 5000]), max_size=2)


@st.composite
def request(draw: st.DrawFn) -> tuple[str, str, dict[str, str], bytes, str | None]:
    """(method, path, query, body, content-type)."""
    path = draw(st.sampled_from(["/predict", "/predict", "/explain"]))
    kind = draw(st.sampled_from(["json", "json", "multipart", "multipart", "image", "other"]))
    if kind == "json":
        body, ctype = draw(JSON_TEXT), draw(st.sampled_from(
            ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON"]))
    elif kind == "multipart":
        body, ctype = draw(multipart())
    elif kind == "image":
        body, ctype = draw(image_bytes()), draw(TYPES)
    else:
        body, ctype = draw(st.binary(max_size=64)), draw(st.one_of(st.none(), TYPES))
    method = draw(st.sampled_from(["POST"] * 19 + ["GET"]))
    return method, path, draw(st.one_of(st.just({}), QUERY)), body, ctype


@pytest.fixture(scope="module")
def client(tiny_run: Run) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    with TestClient(create_app(tiny_run.path)) as c:  # its server's exceptions are raised here
        yield c


def test_the_fuzzed_client_answers_a_good_request(client: Any, class_images: tuple) -> None:
    """The fuzz below asserts about answers: check first that good requests get good ones."""
    png = encode(class_images[0][3])
    assert client.post("/predict", content=png, headers={"content-type": "image/png"}).status_code == 200
    pixels = {"pixels": class_images[0][3].tolist()}
    assert client.post("/predict", json=pixels).status_code == 200
    assert client.post("/explain", files={"file": ("a.png", png, "image/png")}).status_code == 200


@pytest.mark.parametrize("part", PARTS)
def test_any_request_is_answered_with_2xx_or_4xx(part: str, client: Any,
                                                 record_property: Any) -> None:
    def check(case: tuple[str, str, dict[str, str], bytes, str | None]) -> None:
        method, path, query, body, ctype = case
        headers = {} if ctype is None else {"content-type": ctype.encode()}  # bytes: any
        answer = client.request(method, path, params=query, content=body, headers=headers)
        assert 200 <= answer.status_code < 500, (answer.status_code, answer.text[:2000], case[:3])
        assert "Traceback" not in answer.text, answer.text[:2000]
        data = answer.json()  # always JSON
        if answer.status_code >= 400 and answer.status_code not in (404, 405):
            assert isinstance(data, dict) and data.get("error") and data.get("detail"), data
        elif answer.status_code == 200:
            assert isinstance(data, dict) and "model" in data, data
            if path == "/predict":
                for row in data["predictions"]:
                    assert math.isfinite(row["probability"]), row

    run_fuzz("http-bodies", part, request(), check, examples=450, record=record_property)
