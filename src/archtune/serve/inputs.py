"""Reading prediction inputs from HTTP requests, within limits, with clear 4xx errors.

A request body is one of: ``multipart/form-data`` with one or more image files (any field
name), a raw image (``image/png``, ``image/jpeg``, ``image/bmp``, ``image/webp`` or
``application/octet-stream``), or ``application/json``: a pixel array (see
:func:`archtune.serve.preprocess.pixels_from_json`) or ``{"pixels": [...], "max_value": 255}``.
Nothing in a request is ever used as a file-system path.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request

from .predict import Predictor
from .preprocess import (
    DEFAULT_MAX_PIXELS,
    ImageError,
    PreparedImage,
    open_header,
    pixels_from_json,
)
from .timing import StageTimes

RAW_IMAGE_TYPES = ("image/png", "image/jpeg", "image/jpg", "image/bmp", "image/x-ms-bmp",
                   "image/webp", "application/octet-stream")
MAX_NAME = 200
# Images up to this size are decoded on the event loop: a 28x28 PNG takes ~0.12 ms, nearly all
# of it holding the GIL, so a worker thread would add only its hand-off (~10 ms under load).
# Larger ones (photos) are decoded in a thread, where Pillow's decoders release the GIL.
INLINE_PIXELS = 128 * 128


class ApiError(Exception):
    """A client mistake, answered with ``status`` and ``{"error": code, "detail": message}``."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 5 * 1024 * 1024  # whole request body
    max_pixels: int = DEFAULT_MAX_PIXELS  # width x height of one image, checked before decoding
    max_images: int = 64  # images in one request

    def to_dict(self) -> dict[str, int]:
        return {"max_bytes": self.max_bytes, "max_pixels": self.max_pixels,
                "max_images": self.max_images}


@dataclass
class Inputs:
    """The images of one request, as the model sees them."""

    pixels: np.ndarray  # (N, C, H, W) float32 in [0, 1]
    names: list[str | None]
    prepared: list[PreparedImage | None]  # None for JSON pixels (used as they are)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes (declared or actually sent)."""
    declared = request.headers.get("content-length", "")
    too_large = ApiError(413, "request_too_large",
                         f"request body larger than the limit of {limit:,} bytes")
    if declared.isdigit() and int(declared) > limit:
        await _drain(request, 4 * limit)  # lets the client finish sending and read the answer
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # Request.form() parses the cached body
    return body


async def _drain(request: Request, cap: int) -> None:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            return


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _form_files(request: Request, limits: Limits) -> list[tuple[str | None, bytes]]:
    too_many = ApiError(413, "too_many_images", f"more than {limits.max_images} images in one request")
    try:
        form = await request.form(max_files=limits.max_images, max_fields=limits.max_images + 16)
    except HTTPException as err:  # malformed multipart, or over max_files / max_fields
        if "too many" in str(err.detail).lower():
            raise too_many from None
        raise ApiError(400, "bad_multipart", f"malformed multipart body ({err.detail})") from None
    try:
        uploads = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
        if not uploads:
            raise ApiError(400, "no_image", "multipart body has no file part; send the image as "
                                            "a file field (e.g. curl -F file=@shoe.png)")
        if len(uploads) > limits.max_images:
            raise too_many
        return [((u.filename or "")[:MAX_NAME] or None, await u.read()) for u in uploads]
    finally:
        await form.close()


def _positive_number(value: Any) -> float:
    """``max_value`` as a finite positive float (422 for NaN, infinities, 0, text, ...)."""
    number = math.nan
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:  # an integer beyond float range
            number = math.inf
    if not 0 < number < math.inf:  # false for NaN too
        shown = json.dumps(value)[:20] if isinstance(value, int | float) else type(value).__name__
        raise ApiError(422, "bad_pixels", f"max_value must be a finite positive number, got {shown}")
    return number


def _json_pixels(body: bytes, predictor: Predictor, limits: Limits) -> np.ndarray:
    try:
        value: Any = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ApiError(400, "invalid_json", f"body is not valid JSON ({err})") from None
    except RecursionError:
        raise ApiError(400, "invalid_json", "JSON nested too deeply") from None
    except ValueError as err:  # e.g. an integer of more than 4,300 digits
        raise ApiError(400, "invalid_json", f"body is not valid JSON ({err})") from None
    max_value: Any = 255.0
    if isinstance(value, dict):
        extra = sorted(set(value) - {"pixels", "max_value"})
        if "pixels" not in value or extra:
            raise ApiError(422, "bad_shape", "expected a pixel array or an object "
                                             '{"pixels": [...], "max_value": 255}')
        value, max_value = value["pixels"], value.get("max_value", 255.0)
        max_value = _positive_number(max_value)
    if not isinstance(value, list):
        raise ApiError(422, "bad_shape", f"expected a JSON array of pixels, got {type(value).__name__}")
    return pixels_from_json(value, predictor.format, max_value=float(max_value),
                            max_images=limits.max_images)


async def read_inputs(request: Request, predictor: Predictor, limits: Limits,
                      invert: str = "auto", times: StageTimes | None = None) -> Inputs:
    """Parse, check and preprocess the images of a prediction request (raises ApiError/ImageError).

    ``times`` receives the durations of the ``read`` and ``decode`` stages.
    """
    t0 = time.perf_counter()
    body = await read_body(request, limits.max_bytes)
    t1 = time.perf_counter()
    if times is not None:
        times.add("read", t1 - t0)
    inputs = await _parse(request, body, predictor, limits, invert)
    if times is not None:
        times.add("decode", time.perf_counter() - t1)
    return inputs


async def _parse(request: Request, body: bytes, predictor: Predictor, limits: Limits,
                 invert: str) -> Inputs:
    if not body:
        raise ApiError(400, "empty_body", "empty request body; send an image file or a JSON "
                                          "pixel array")
    kind = _media_type(request)
    if kind == "application/json":
        x = _json_pixels(body, predictor, limits)
        return Inputs(x, [None] * len(x), [None] * len(x))
    if kind == "multipart/form-data":
        files = await _form_files(request, limits)
    elif kind in RAW_IMAGE_TYPES:
        files = [(None, body)]
    else:
        raise ApiError(415, "unsupported_media_type",
                       f"content type '{kind or 'none'}' not accepted; send multipart/form-data, "
                       "an image/* body or application/json")
    prepared = []
    for i, (name, data) in enumerate(files):
        try:
            im = open_header(data, max_pixels=limits.max_pixels)  # the header only
            if im.width * im.height <= INLINE_PIXELS:
                prepared.append(predictor.prepare(im, invert=invert))
            else:
                prepared.append(await run_in_threadpool(predictor.prepare, im, invert=invert))
        except ImageError as err:
            label = f"'{name}'" if name else f"image {i + 1}"
            raise ImageError(f"{label}: {str(err).removeprefix('image: ')}", err.code,
                             err.status) from None
    pixels = np.stack([p.pixels for p in prepared])
    return Inputs(pixels, [n for n, _ in files], list(prepared))
