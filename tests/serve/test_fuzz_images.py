"""Property-based fuzzing of image files: PNG, JPEG, BMP and WebP in every mode Pillow writes
(palette with transparency, 1-bit, 16-bit, CMYK, progressive, EXIF-rotated, ...), then
truncated, with bytes flipped or inserted, or with huge or zero dimensions written into the
header. The serving path (load_image, Predictor.predict_files) and the image-folder data loader
take each: an image, or one ImageError/ArchtuneError (one line; the folder loader's adds the
unreadable file on a second); never another exception. Fixed and
random parts, dropped cases counted: see tests/_fuzz.py."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import strategies as st
from PIL import Image

from archtune.data import load_dataset
from archtune.errors import ArchtuneError
from archtune.serve import Predictor, load_image
from archtune.training import Run
from tests._fuzz import PARTS, Drop, run_fuzz
from tests.serve.conftest import encode
from tests.test_fuzz_inputs import memory_cap  # noqa: F401 - a fixture used here too

# (format, mode, save options): what each format can hold
KINDS: list[tuple[str, str, dict[str, Any]]] = [
    ("PNG", "L", {}), ("PNG", "RGB", {}), ("PNG", "RGBA", {}), ("PNG", "LA", {}),
    ("PNG", "P", {}), ("PNG", "P", {"transparency": 0}), ("PNG", "1", {}), ("PNG", "I;16", {}),
    ("TIFF", "I", {}), ("PNG", "RGB", {"optimize": True}), ("PNG", "L", {"bits": 4}),
    ("JPEG", "L", {"quality": 90}), ("JPEG", "RGB", {"quality": 75}), ("JPEG", "CMYK", {}),
    ("JPEG", "RGB", {"progressive": True}), ("JPEG", "RGB", {"exif": "rotated"}),
    ("JPEG", "RGB", {"subsampling": 2}), ("BMP", "RGB", {}), ("BMP", "P", {}), ("BMP", "1", {}),
    ("WEBP", "RGB", {"quality": 50}), ("WEBP", "RGBA", {"lossless": True}),
    ("GIF", "P", {}), ("TIFF", "CMYK", {}),  # not accepted: a clear "unsupported" answer
]


def _exif_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90
    return exif.tobytes()


def image_file(kind: tuple[str, str, dict[str, Any]], pixels: np.ndarray) -> bytes:
    fmt, mode, options = kind
    options = dict(options)
    if options.get("exif") == "rotated":
        options["exif"] = _exif_rotated()
    gray = pixels if pixels.ndim == 2 else pixels[..., 0]
    if mode == "I;16":
        im = Image.fromarray(gray.astype(np.uint16) * 257)  # 16-bit grayscale
    elif mode == "I":
        im = Image.fromarray(gray.astype(np.int32) * 1000 - 50_000)  # 32-bit, negative too
    else:
        im = Image.fromarray(pixels).convert(mode)
    buf = io.BytesIO()
    im.save(buf, format=fmt, **options)
    return buf.getvalue()


def _png_size(data: bytes, width: int, height: int) -> bytes:
    """A PNG with its IHDR claiming another size (CRC recomputed, so only the size is wrong)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return data
    ihdr = struct.pack(">II", width, height) + data[24:29]
    return data[:8] + data[8:12] + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)) + data[33:]


def _jpeg_size(data: bytes, width: int, height: int) -> bytes:
    """A JPEG with its SOF marker claiming another size."""
    for marker in (b"\xff\xc0", b"\xff\xc2", b"\xff\xc1"):
        at = data.find(marker)
        if at > 0:
            return data[:at + 5] + struct.pack(">HH", height, width) + data[at + 9:]
    return data


SIZES = st.sampled_from([(0, 0), (0, 28), (1, 1), (100_000, 100_000), (65_535, 65_535),
                         (12_000, 12_000), (7_000, 7_000), (1, 10_000_000), (2**31 - 1, 1),
                         (2**32 - 1, 2**32 - 1)])


@st.composite
def image_bytes(draw: st.DrawFn) -> bytes:
    """An image file of any accepted kind, left whole or damaged."""
    kind = draw(st.sampled_from(KINDS))
    h, w = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    seed = draw(st.integers(0, 2**16))
    channels = draw(st.sampled_from([None, 3, 4]))
    shape = (h, w) if channels is None else (h, w, channels)
    pixels = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    if channels == 4 and kind[1] not in ("RGBA", "LA"):
        pixels = pixels[..., :3]
    data = image_file(kind, pixels)
    op = draw(st.sampled_from(["whole", "whole", "truncate", "flip", "insert", "size", "empty",
                               "head"]))
    if op == "truncate":
        return data[:draw(st.integers(0, max(len(data) - 1, 0)))]
    if op == "flip":
        out = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            at = draw(st.integers(0, len(out) - 1))
            out[at] = draw(st.integers(0, 255))
        return bytes(out)
    if op == "insert":
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.binary(min_size=1, max_size=32)) + data[at:]
    if op == "size":
        width, height = draw(SIZES)
        return _png_size(data, width, height) if kind[0] == "PNG" else \
            _jpeg_size(data, min(width, 65_535), min(height, 65_535))
    if op == "empty":
        return b""
    return data[:draw(st.integers(1, 64))] + draw(st.binary(max_size=64))  # a header, then noise


def _one_line(err: ArchtuneError) -> None:
    message = str(err)
    assert message and "\n" not in message and len(message) < 2000, message[:3000]


@pytest.fixture(scope="module")
def predictor(tiny_run: Run) -> Predictor:
    return Predictor.from_run(tiny_run.path, batch_size=4)


@pytest.mark.parametrize("part", PARTS)
def test_image_files_decode_or_fail_in_one_line(part: str, predictor: Predictor, tmp_path: Path,
                                                record_property: Any) -> None:
    """load_image (what the server and `archtune predict` use) and predict_files."""
    good = tmp_path / "good.png"
    good.write_bytes(encode(np.zeros((28, 28), np.uint8)))

    def check(data: bytes) -> None:
        try:
            prepared = load_image(data, predictor.format)
            assert prepared.pixels.shape == predictor.format.chw
            assert np.isfinite(prepared.pixels).all()
        except ArchtuneError as err:  # ImageError is one
            _one_line(err)
        path = tmp_path / "fuzz.png"
        path.write_bytes(data)
        rows = predictor.predict_files([path, good])
        assert len(rows) == 2 and "label" in rows[1], rows
        if "error" in rows[0]:
            assert rows[0]["code"] and "\n" not in rows[0]["error"], rows[0]

    run_fuzz("image-files", part, image_bytes(), check, examples=450, record=record_property)


@pytest.mark.parametrize("part", PARTS)
def test_image_folders_load_or_fail_in_one_line(part: str, tmp_path: Path,
                                                record_property: Any) -> None:
    """The image-folder data loader on a folder of two classes, one holding the fuzzed file."""
    folder = tmp_path / "folder"
    for name in ("a", "b"):
        (folder / name).mkdir(parents=True)
        for i in range(3):  # enough for the loader's stratified test split
            (folder / name / f"ok{i}.png").write_bytes(encode(np.full((28, 28), 200, np.uint8)))

    def check(args: tuple[bytes, str]) -> None:
        data, suffix = args
        for old in (folder / "b").glob("fuzz.*"):
            old.unlink()
        (folder / "b" / f"fuzz{suffix}").write_bytes(data)
        try:
            ds = load_dataset(str(folder))
        except ArchtuneError as err:  # a first line, then the unreadable files, one a line
            lines = str(err).splitlines()
            assert lines and len(lines) <= 2 and all(len(line) < 2000 for line in lines), str(err)[:3000]
            assert "unreadable" in lines[0], lines[0]  # only the fuzzed file can be at fault
            return
        except MemoryError:  # a header claiming gigapixels, decoded under the test's 1 GiB cap
            raise Drop("MemoryError under the test's address-space cap") from None
        assert len(ds.classes) == 2

    cases = st.tuples(image_bytes(), st.sampled_from([".png", ".jpg", ".bmp", ".webp"]))
    run_fuzz("image-files", part, cases, check, examples=200, record=record_property)
