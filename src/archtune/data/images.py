"""One image file -> model pixels: the single preprocessing of image-folder training data and of
every image archtune predicts on (:mod:`archtune.serve.preprocess` documents the steps).

:func:`open_image` opens, checks and decodes a file (EXIF orientation applied; JPEGs decoded at
a reduced scale when much larger than the model's input); :func:`image_to_array` then brings
it to the model's height, width and channels, keeping the aspect ratio and padding with the
background level. Both are pure Pillow/NumPy (no torch).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ArchtuneError, short

ACCEPTED_FORMATS = ("PNG", "JPEG", "BMP", "WEBP")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
DEFAULT_MAX_PIXELS = 40_000_000  # 40 megapixels: any phone photo, far below a bomb
DRAFT_SCALE = 4  # a JPEG may be decoded at a reduced scale down to 4x the model's input size
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_16BIT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


class ImageError(ArchtuneError):
    """An input that cannot be used as an image; ``code`` and ``status`` classify it for HTTP."""

    def __init__(self, message: str, code: str, status: int = 422):
        super().__init__(message)
        self.code = code
        self.status = status


def open_header(source: bytes | str | Path | BinaryIO, *,
                max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open one image file and check its type and pixel count from the header; decode nothing.

    Raises :class:`ImageError` with code ``empty``, ``unsupported_image``, ``too_many_pixels``
    or ``corrupt_image``. Cheap (~50 us): a server can look at the size before deciding where
    to decode.
    """
    name = str(source) if isinstance(source, str | Path) else "image"
    if isinstance(source, bytes):
        if not source:
            raise ImageError("empty file: no image data", "empty", 400)
        source = io.BytesIO(source)
    try:
        im = Image.open(source, formats=list(ACCEPTED_FORMATS))
    except FileNotFoundError:
        raise ArchtuneError(f"{name}: no such file") from None
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not a PNG, JPEG, BMP or WebP image", "unsupported_image",
                         415) from None
    except Image.DecompressionBombError as err:  # Pillow's own guard (Image.MAX_IMAGE_PIXELS)
        found = re.search(r"\((\d+) pixels\)", str(err))  # quote the image, not Pillow's limit
        size = f"{int(found[1]):,} pixels, " if found else ""
        raise ImageError(f"{name}: {size}more than the limit of {max_pixels:,}",
                         "too_many_pixels", 413) from None
    except (OSError, ValueError, SyntaxError) as err:
        raise ImageError(f"{name}: corrupt image header ({err})", "corrupt_image") from None
    if im.width * im.height > max_pixels:
        im.close()
        raise ImageError(f"{name}: {im.width} x {im.height} pixels, more than the limit of "
                         f"{max_pixels:,}", "too_many_pixels", 413)
    return im


def decode_image(im: Image.Image, *, draft_size: tuple[int, int] | None = None) -> Image.Image:
    """Decode an image from :func:`open_header` (first frame, EXIF orientation applied).

    ``draft_size`` lets JPEG decode at a reduced scale (>= that size). Raises
    :class:`ImageError` (``corrupt_image``) for truncated or corrupt data.
    """
    name = str(getattr(im, "filename", "") or "image")
    try:
        if draft_size and im.format == "JPEG":
            im.draft("RGB" if im.mode not in ("L", "1") else "L", draft_size)
        im.load()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        im.close()
        raise ImageError(f"{name}: truncated or corrupt {im.format} image ({err})",
                         "corrupt_image") from None
    if im.getexif().get(0x0112, 1) in (None, 1):  # EXIF orientation: already upright
        return im
    upright = ImageOps.exif_transpose(im)
    if upright is None:
        return im
    upright.format = im.format
    im.close()
    return upright


def open_image(source: bytes | str | Path | BinaryIO, *, max_pixels: int = DEFAULT_MAX_PIXELS,
               draft_size: tuple[int, int] | None = None) -> Image.Image:
    """Open, check (type and pixel count from the header) and decode one image file:
    :func:`open_header` then :func:`decode_image`; raises :class:`ImageError` as they do."""
    return decode_image(open_header(source, max_pixels=max_pixels), draft_size=draft_size)


def draft_size(height: int, width: int) -> tuple[int, int]:
    """The smallest (width, height) a JPEG is decoded at for a model of this input size."""
    return (width * DRAFT_SCALE, height * DRAFT_SCALE)


def _normalise_mode(im: Image.Image) -> Image.Image:
    """One of L, LA, RGB, RGBA (16-bit and float grayscale scaled to 8 bits)."""
    if im.mode in _16BIT_MODES:
        a = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
        return Image.fromarray(np.clip(a / top * 255, 0, 255).round().astype(np.uint8))
    if im.mode in ("L", "LA", "RGB", "RGBA"):
        return im
    if im.mode == "1":
        return im.convert("L")
    has_alpha = "A" in im.getbands() or "a" in im.getbands() or "transparency" in im.info
    return im.convert("RGBA" if has_alpha else "RGB")


def _fit(im: Image.Image, height: int, width: int) -> Image.Image:
    """Resize keeping the aspect ratio so the image fits height x width."""
    if (im.height, im.width) == (height, width):
        return im
    scale = min(width / im.width, height / im.height)
    size = (max(1, min(width, round(im.width * scale))), max(1, min(height, round(im.height * scale))))
    return im.resize(size, Image.Resampling.BILINEAR)


def _cover(im: Image.Image, height: int, width: int) -> Image.Image:
    """Resize keeping the aspect ratio so the image covers height x width, then crop its centre."""
    if (im.height, im.width) == (height, width):
        return im
    scale = max(width / im.width, height / im.height)
    size = (max(width, round(im.width * scale)), max(height, round(im.height * scale)))
    if size != (im.width, im.height):
        im = im.resize(size, Image.Resampling.BILINEAR)
    left, top = (im.width - width) // 2, (im.height - height) // 2
    return im.crop((left, top, left + width, top + height))


def _composite(a: np.ndarray) -> np.ndarray:
    """(h, w, C+1) with alpha last -> (h, w, C) over a matte contrasting with the opaque pixels."""
    color, alpha = a[..., :-1], a[..., -1:] / 255.0
    opaque = alpha[..., 0] > 0.5
    luma = color @ LUMA if color.shape[-1] == 3 else color[..., 0]
    matte = 0.0 if not opaque.any() or float(luma[opaque].mean()) > 127.5 else 255.0
    return color * alpha + matte * (1.0 - alpha)


def _border_median(a: np.ndarray) -> float:
    """Median luminance of the outermost pixels of (h, w, C)."""
    g = a @ LUMA if a.shape[-1] == 3 else a[..., 0]
    edge = np.sort(np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]]))
    mid = len(edge) // 2
    return float(edge[mid] if len(edge) % 2 else (edge[mid - 1] + edge[mid]) / 2)


RESIZE_MODES = ("fit", "crop")  # data.resize: fit inside and pad, or cover and crop the centre


def image_to_array(im: Image.Image, height: int, width: int, channels: int, *,
                   invert: Callable[[float], bool] | None = None,
                   resize: str = "fit") -> tuple[np.ndarray, bool]:
    """A decoded image -> float32 (height, width, channels) of whole numbers in 0..255, and
    whether it was inverted.

    Resized keeping the aspect ratio (``resize``: ``fit`` inside height x width, or ``crop``:
    cover it and keep the centre), transparency over a contrasting matte, colour to luma (or
    grayscale repeated), then padded, centred, with the border's median level. ``invert(level)``
    decides from that background level (0..255) whether to invert (255 - v).
    """
    if resize not in RESIZE_MODES:
        raise ArchtuneError(f"resize: expected one of {', '.join(RESIZE_MODES)}, got {short(resize)}")
    shape = _cover if resize == "crop" else _fit
    small = shape(_normalise_mode(im), height, width)
    a = np.asarray(small, dtype=np.float32)
    a = a[..., None] if a.ndim == 2 else a
    if small.mode in ("LA", "RGBA"):
        a = _composite(a)
    if channels == 1 and a.shape[-1] == 3:
        a = (a @ LUMA)[..., None]
    elif channels == 3 and a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    background = _border_median(a)
    inverted = invert is not None and invert(background)
    if inverted:
        a, background = 255.0 - a, 255.0 - background
    out = np.full((height, width, channels), round(background), dtype=np.float32)
    top, left = (height - a.shape[0]) // 2, (width - a.shape[1]) // 2
    out[top:top + a.shape[0], left:left + a.shape[1]] = a
    return np.clip(np.rint(out), 0, 255), inverted
