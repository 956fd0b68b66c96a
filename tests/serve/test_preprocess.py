"""Image file -> model input: the documented steps, and every way a file can be refused."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from archtune.serve.preprocess import (
    ImageError,
    InputFormat,
    load_image,
    pixels_from_json,
    to_png,
)
from tests.serve.conftest import encode

GRAY = InputFormat(1, 28, 28, "dark")
RGB = InputFormat(3, 28, 28, "dark")


def item(h: int = 28, w: int = 28, bg: int = 10, fg: int = 220) -> np.ndarray:
    """A light rectangle on a dark background (the Fashion-MNIST look)."""
    a = np.full((h, w), bg, np.uint8)
    a[h // 4:3 * h // 4, w // 3:2 * w // 3] = fg
    return a


def png_header_bomb(width: int, height: int) -> bytes:
    """A real, valid PNG of width x height black pixels: tiny on disk, huge when decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    comp = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + gray pixels
    data = b"".join(comp.compress(row) for _ in range(200)) + comp.flush()  # first rows only
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def test_model_sized_dark_image_is_used_exactly_as_training_data() -> None:
    a = np.random.default_rng(0).integers(0, 256, (28, 28)).astype(np.uint8)
    a[0, :] = a[-1, :] = a[:, 0] = a[:, -1] = 0  # dark border
    prep = load_image(encode(a), GRAY)
    np.testing.assert_array_equal(prep.pixels[0], a / np.float32(255))
    assert prep.pixels.dtype == np.float32 and prep.pixels.shape == (1, 28, 28)
    assert not prep.inverted and prep.source_format == "PNG" and prep.source_size == (28, 28)


def test_light_background_is_inverted_only_for_dark_background_models() -> None:
    a = item()
    prep = load_image(encode(255 - a), GRAY)
    assert prep.inverted
    np.testing.assert_array_equal(prep.pixels[0], a / np.float32(255))
    unknown = InputFormat(1, 28, 28, None)  # a custom data set: polarity unknown
    assert not load_image(encode(255 - a), unknown).inverted
    assert load_image(encode(a), unknown, invert="always").inverted
    assert not load_image(encode(255 - a), GRAY, invert="never").inverted


def test_aspect_ratio_kept_and_padded_with_the_background() -> None:
    a = item(56, 28, bg=30)  # tall: fits as 28 x 14, centred, padded left and right
    x = load_image(encode(a), GRAY).pixels[0] * 255
    assert np.allclose(x[:, :7], 30) and np.allclose(x[:, 21:], 30)
    inner = x[:, 7:21]
    assert inner.max() > 200 and np.allclose(inner[:, 0], 30)
    wide = load_image(encode(item(10, 40)), GRAY).pixels[0] * 255  # 40 x 10 -> 28 x 7
    assert np.allclose(wide[:10], 10) and np.allclose(wide[-10:], 10) and wide[10:18].max() > 150


def test_colour_becomes_luma_and_three_channel_models_get_colour() -> None:
    a = np.zeros((28, 28, 3), np.uint8)
    a[8:20, 8:20] = (200, 100, 50)
    x = load_image(encode(a), GRAY).pixels[0, 14, 14] * 255
    assert x == pytest.approx(0.299 * 200 + 0.587 * 100 + 0.114 * 50, abs=1)
    rgb = load_image(encode(a), RGB).pixels[:, 14, 14] * 255
    np.testing.assert_allclose(rgb, [200, 100, 50], atol=0.5)
    gray_for_rgb = load_image(encode(item()), RGB).pixels
    assert gray_for_rgb.shape == (3, 28, 28) and np.allclose(gray_for_rgb[0], gray_for_rgb[2])


@pytest.mark.parametrize("item_level", [40, 230])
def test_transparent_background_keeps_the_item_visible(item_level: int) -> None:
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[..., :3] = item_level
    rgba[6:22, 10:18, 3] = 255  # opaque item, transparent elsewhere
    x = load_image(encode(rgba), GRAY).pixels[0] * 255
    assert x[14, 14] > 200 and x[2, 2] < 30  # light item on a dark background either way


@pytest.mark.parametrize(("fmt", "mode"), [("PNG", "L"), ("PNG", "RGB"), ("PNG", "P"),
                                           ("PNG", "LA"), ("JPEG", "L"), ("JPEG", "RGB"),
                                           ("BMP", "RGB"), ("WEBP", "RGB"), ("WEBP", "RGBA")])
def test_every_accepted_format_and_mode(fmt: str, mode: str) -> None:
    prep = load_image(encode(item(40, 40), fmt, mode), GRAY)
    x = prep.pixels[0] * 255
    assert prep.source_format == fmt and x[14, 14] > 180 and x[1, 1] < 40


def test_16_bit_grayscale_is_scaled() -> None:
    a = item().astype(np.uint16) * 257
    prep = load_image(encode(a), GRAY)
    assert prep.pixels[0, 14, 14] == pytest.approx(220 / 255, abs=1 / 255)


def test_exif_orientation_is_applied() -> None:
    a = np.full((20, 40), 10, np.uint8)
    a[:, :10] = 220  # wide, light at its left end
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees when shown: becomes tall
    buf = io.BytesIO()
    im.save(buf, format="JPEG", exif=exif, quality=95)
    x = load_image(buf.getvalue(), GRAY).pixels[0] * 255
    assert x[:5, 14].min() > 150 and x[14, :5].max() < 40  # shown rotated: the light end on top


@pytest.mark.parametrize(("data", "code", "status"), [
    (b"", "empty", 400),
    (b"this is text, not a PNG", "unsupported_image", 415),
    (b"GIF89a" + b"\x00" * 40, "unsupported_image", 415),
])
def test_refused_inputs(data: bytes, code: str, status: int) -> None:
    with pytest.raises(ImageError) as err:
        load_image(data, GRAY)
    assert (err.value.code, err.value.status) == (code, status)


def test_gif_is_refused_even_when_valid() -> None:
    with pytest.raises(ImageError, match="not a PNG, JPEG, BMP or WebP") as err:
        load_image(encode(item(), "GIF"), GRAY)
    assert err.value.status == 415


def test_truncated_png_is_refused() -> None:
    data = encode(np.random.default_rng(1).integers(0, 256, (64, 64)).astype(np.uint8))
    with pytest.raises(ImageError, match="truncated or corrupt") as err:
        load_image(data[: len(data) // 2], GRAY)
    assert err.value.code == "corrupt_image" and err.value.status == 422


def test_decompression_bomb_is_refused_from_the_header(monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = png_header_bomb(20_000, 20_000)
    assert len(bomb) < 100_000

    def no_decoding(self: ImageFile.ImageFile) -> None:
        raise AssertionError("the image was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(ImageError, match="400,000,000 pixels, more than the limit of 40,000,000"
                       ) as err:  # Pillow's own guard caught it; the text quotes our limit only
        load_image(bomb, GRAY)
    assert "89478485" not in str(err.value) and "178956970" not in str(err.value)
    assert err.value.code == "too_many_pixels" and err.value.status == 413
    smaller = png_header_bomb(10_000, 8_000)  # below Pillow's own guard, above ours
    with pytest.raises(ImageError, match="10000 x 8000 pixels, more than the limit") as err:
        load_image(smaller, GRAY)
    assert err.value.code == "too_many_pixels"
    with pytest.raises(ImageError, match="limit of 100"):
        load_image(encode(item()), GRAY, max_pixels=100)


def test_json_pixels_shapes_and_values() -> None:
    one = np.full((28, 28), 255.0)
    assert pixels_from_json(one.tolist(), GRAY).shape == (1, 1, 28, 28)
    assert pixels_from_json(one.tolist(), GRAY).max() == 1.0
    batch = np.zeros((3, 28, 28, 1)).tolist()
    assert pixels_from_json(batch, GRAY).shape == (3, 1, 28, 28)
    rgb = np.full((28, 28, 3), 0.5).tolist()
    assert pixels_from_json(rgb, RGB, max_value=1).shape == (1, 3, 28, 28)
    for bad, code in [([[1, 2], [3, 4]], "bad_shape"), (np.zeros((28, 27)).tolist(), "bad_shape"),
                      ([[1, [2]]], "bad_pixels"), ((one + 1).tolist(), "bad_pixels"),
                      ((-one).tolist(), "bad_pixels"), (np.zeros((28, 28)).tolist(), None)]:
        if code is None:
            pixels_from_json(bad, GRAY)
            continue
        with pytest.raises(ImageError) as err:
            pixels_from_json(bad, GRAY)
        assert err.value.code == code
    with pytest.raises(ImageError) as err:
        pixels_from_json(np.zeros((5, 28, 28)).tolist(), GRAY, max_images=4)
    assert err.value.code == "too_many_images"


def test_to_png_round_trips() -> None:
    x = load_image(encode(item()), GRAY).pixels
    back = np.asarray(Image.open(io.BytesIO(to_png(x))))
    np.testing.assert_array_equal(back, item())
