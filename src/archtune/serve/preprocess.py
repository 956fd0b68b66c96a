"""Image file -> model input: the one documented way every archtune prediction sees an image.

The model's input size and channel count come from the run's spec; the normalisation
(per-channel mean/std) lives inside the model itself, so this module only produces pixels in
[0, 1], shaped (C, H, W), exactly as training tensors are. The steps, in order:

1. **Open, header only.** PNG, JPEG, BMP and WebP are accepted (anything else is refused).
   Width x height is checked against ``max_pixels`` *before* decoding, so a decompression bomb
   (e.g. a 20,000 x 20,000 PNG of a few hundred KB) is rejected without allocating it.
2. **Decode** the first frame; the EXIF orientation of photos is applied. Truncated or corrupt
   files are refused. 16-bit grayscale is scaled to 8 bits.
3. **Resize keeping the aspect ratio** so that the image fits the model's H x W (bilinear, with
   Pillow's antialiasing when shrinking, as image-folder training data are resized). An image
   already of the model's size is not resampled at all.
4. **Transparency**: pixels are composited over a matte that contrasts with the opaque part
   (black behind a light item, white behind a dark one), so a cut-out item stays visible.
5. **Channels**: colour -> grayscale with the ITU-R 601 luma weights (0.299, 0.587, 0.114), as
   the data loaders do; grayscale is repeated for a 3-channel model.
6. **Background and inversion**: the background level is the median of the resized image's
   border. Fashion-MNIST and MNIST items are light on a dark background; with ``invert="auto"``
   an image whose background is light (median > 127.5) is inverted (255 - v) for models trained
   on those data sets. For other data sets ``auto`` never inverts (their polarity is unknown):
   pass ``invert="always"`` or ``"never"`` to decide.
7. **Pad** to H x W, centred, with the background level, then scale to [0, 1] (v / 255).
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ArchtuneError
from ..specs import Spec

log = logging.getLogger(__name__)

ACCEPTED_FORMATS = ("PNG", "JPEG", "BMP", "WEBP")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
DEFAULT_MAX_PIXELS = 40_000_000  # 40 megapixels: any phone photo, far below a bomb
DARK_BACKGROUND_DATASETS = ("fashion-mnist", "mnist")
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_16BIT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")
Invert = Literal["auto", "always", "never"]
INVERT_CHOICES: tuple[str, ...] = ("auto", "always", "never")


class ImageError(ArchtuneError):
    """An input that cannot be used as an image; ``code`` and ``status`` classify it for HTTP."""

    def __init__(self, message: str, code: str, status: int = 422):
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass(frozen=True)
class InputFormat:
    """What the model takes: (channels, height, width), and its training data's background."""

    channels: int
    height: int
    width: int
    background: Literal["dark"] | None = None  # None: unknown polarity (auto never inverts)

    @classmethod
    def from_spec(cls, spec: Spec) -> InputFormat:
        c, h, w = spec.chw
        dark = spec.data.dataset in DARK_BACKGROUND_DATASETS
        return cls(c, h, w, "dark" if dark else None)

    @property
    def chw(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)


@dataclass
class PreparedImage:
    """One image as the model sees it, and what was done to get there."""

    pixels: np.ndarray  # float32 (C, H, W) in [0, 1]
    source_size: tuple[int, int]  # (width, height) of the file
    source_format: str  # PNG, JPEG, BMP or WEBP
    inverted: bool

    def to_dict(self) -> dict[str, Any]:
        return {"source_size": list(self.source_size), "source_format": self.source_format,
                "inverted": self.inverted}


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
    """Open, check (type and pixel count from the header) and decode one image file.

    :func:`open_header` then :func:`decode_image`; raises :class:`ImageError` as they do.
    """
    return decode_image(open_header(source, max_pixels=max_pixels), draft_size=draft_size)


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


def should_invert(background_level: float, fmt: InputFormat, invert: str) -> bool:
    """Whether to invert an image whose border median is ``background_level`` (0..255)."""
    if invert not in INVERT_CHOICES:
        raise ArchtuneError(f"invert: expected one of {', '.join(INVERT_CHOICES)}, got {invert!r}")
    if invert != "auto":
        return invert == "always"
    return fmt.background == "dark" and background_level > 127.5


def prepare_image(im: Image.Image, fmt: InputFormat, *, invert: str = "auto") -> PreparedImage:
    """A decoded image -> (C, H, W) float32 in [0, 1], following the module's steps 3-7."""
    source_size, source_format = (im.width, im.height), str(im.format or "")
    small = _fit(_normalise_mode(im), fmt.height, fmt.width)
    a = np.asarray(small, dtype=np.float32)
    a = a[..., None] if a.ndim == 2 else a
    if small.mode in ("LA", "RGBA"):
        a = _composite(a)
    if fmt.channels == 1 and a.shape[-1] == 3:
        a = (a @ LUMA)[..., None]
    elif fmt.channels == 3 and a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    background = _border_median(a)
    inverted = should_invert(background, fmt, invert)
    if inverted:
        a, background = 255.0 - a, 255.0 - background
    out = np.full((fmt.height, fmt.width, fmt.channels), round(background), dtype=np.float32)
    top, left = (fmt.height - a.shape[0]) // 2, (fmt.width - a.shape[1]) // 2
    out[top:top + a.shape[0], left:left + a.shape[1]] = a
    pixels = np.clip(np.rint(out), 0, 255).transpose(2, 0, 1) / np.float32(255.0)
    return PreparedImage(pixels.astype(np.float32), source_size, source_format, inverted)


def load_image(source: bytes | str | Path | BinaryIO | Image.Image, fmt: InputFormat, *,
               invert: str = "auto", max_pixels: int = DEFAULT_MAX_PIXELS) -> PreparedImage:
    """Open, check and decode an image file (path, bytes, file object, or an image from
    :func:`open_header`) -> :class:`PreparedImage`."""
    im = source if isinstance(source, Image.Image) else open_header(source, max_pixels=max_pixels)
    with decode_image(im, draft_size=(fmt.width * 4, fmt.height * 4)) as im:
        return prepare_image(im, fmt, invert=invert)


def pixels_from_json(values: Any, fmt: InputFormat, *, max_value: float = 255.0,
                     max_images: int = 256) -> np.ndarray:
    """A JSON pixel array -> float32 (N, C, H, W) in [0, 1]; taken as the model's input as is.

    Accepted shapes: one image (H, W) or (H, W, C), or several (N, H, W) or (N, H, W, C), with
    H, W, C the model's; values are numbers in [0, max_value] (255: like the raw data files).
    """
    c, h, w = fmt.chw
    try:
        a = np.asarray(values, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):  # overflow: an integer beyond float range
        raise ImageError("pixels: expected a rectangular array of numbers (nested lists)",
                         "bad_pixels") from None
    one = {(h, w, c)} | ({(h, w)} if c == 1 else set())
    if a.shape in one:
        a = a[None]
    elif not (a.ndim in (3, 4) and a.shape[0] >= 1 and a.shape[1:] in one):
        want = f"[{h}][{w}]" + (f"[{c}]" if c > 1 else "")
        raise ImageError(f"pixels: expected shape {want} for one image or [N]{want} for N images "
                         f"(the model's input), got {list(a.shape)}", "bad_shape")
    if a.shape[0] > max_images:
        raise ImageError(f"pixels: {a.shape[0]} images is more than the limit of {max_images}",
                         "too_many_images", 413)
    if not 0 < max_value < np.inf:  # NaN fails this too: no NaN may reach the model
        raise ImageError(f"pixels: max_value must be a finite positive number, got {max_value}",
                         "bad_pixels")
    if not np.isfinite(a).all() or a.min() < 0 or a.max() > max_value:
        raise ImageError(f"pixels: values must be finite numbers in [0, {max_value:g}]",
                         "bad_pixels")
    a = a.reshape(a.shape[0], h, w, c).transpose(0, 3, 1, 2) / max_value
    return np.ascontiguousarray(a, dtype=np.float32)


def to_png(pixels: np.ndarray) -> bytes:
    """PNG bytes of a (C, H, W) image in [0, 1] (what the model sees)."""
    a = np.clip(np.rint(pixels * 255), 0, 255).astype(np.uint8).transpose(1, 2, 0)
    im = Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()
