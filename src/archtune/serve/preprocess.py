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
   Pillow's antialiasing when shrinking); with the run's ``data.resize: crop``, so that it
   covers H x W, and its centre is kept. An image already of the model's size is not resampled.
   H x W is the size the run was trained at (its spec's ``input_shape``, which records the size
   its image folder was read at), so a photo of any size is prepared as its training images were.
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

Image-folder training data go through the very same steps (:mod:`archtune.data.images`, without
inversion, which ``auto`` never does for such data sets), so a file predicted on gets the pixels
it would have had as a training image.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np
from PIL import Image

from ..data.images import (
    ACCEPTED_FORMATS,
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    ImageError,
    decode_image,
    draft_size,
    image_to_array,
    open_header,
    open_image,
)
from ..errors import ArchtuneError, short
from ..specs import Spec

log = logging.getLogger(__name__)

__all__ = ["ACCEPTED_FORMATS", "DEFAULT_MAX_PIXELS", "IMAGE_EXTENSIONS", "ImageError", "InputFormat",
           "PreparedImage", "decode_image", "load_image", "open_header", "open_image",
           "pixels_from_json", "prepare_image", "should_invert", "to_png"]
DARK_BACKGROUND_DATASETS = ("fashion-mnist", "mnist")
Invert = Literal["auto", "always", "never"]
INVERT_CHOICES: tuple[str, ...] = ("auto", "always", "never")


@dataclass(frozen=True)
class InputFormat:
    """What the model takes: (channels, height, width), and its training data's background."""

    channels: int
    height: int
    width: int
    background: Literal["dark"] | None = None  # None: unknown polarity (auto never inverts)
    resize: str = "fit"  # fit (keep the aspect ratio, pad) | crop (cover, keep the centre): data.resize

    @classmethod
    def from_spec(cls, spec: Spec) -> InputFormat:
        c, h, w = spec.chw
        dark = spec.data.dataset in DARK_BACKGROUND_DATASETS
        return cls(c, h, w, "dark" if dark else None, spec.data.resize)

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


def should_invert(background_level: float, fmt: InputFormat, invert: str) -> bool:
    """Whether to invert an image whose border median is ``background_level`` (0..255)."""
    if invert not in INVERT_CHOICES:
        raise ArchtuneError(f"invert: expected one of {', '.join(INVERT_CHOICES)}, got {short(invert)}")
    if invert != "auto":
        return invert == "always"
    return fmt.background == "dark" and background_level > 127.5


def prepare_image(im: Image.Image, fmt: InputFormat, *, invert: str = "auto") -> PreparedImage:
    """A decoded image -> (C, H, W) float32 in [0, 1], following the module's steps 3-7."""
    source_size, source_format = (im.width, im.height), str(im.format or "")
    a, inverted = image_to_array(im, fmt.height, fmt.width, fmt.channels, resize=fmt.resize,
                                 invert=lambda level: should_invert(level, fmt, invert))
    pixels = a.transpose(2, 0, 1) / np.float32(255.0)
    return PreparedImage(pixels.astype(np.float32), source_size, source_format, inverted)


def load_image(source: bytes | str | Path | BinaryIO | Image.Image, fmt: InputFormat, *,
               invert: str = "auto", max_pixels: int = DEFAULT_MAX_PIXELS) -> PreparedImage:
    """Open, check and decode an image file (path, bytes, file object, or an image from
    :func:`open_header`) -> :class:`PreparedImage`."""
    im = source if isinstance(source, Image.Image) else open_header(source, max_pixels=max_pixels)
    with decode_image(im, draft_size=draft_size(fmt.height, fmt.width)) as im:
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
