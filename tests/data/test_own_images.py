"""A user's own image folders: the size policy, resize modes, mixed modes, bad files, hidden and
nested files, class imbalance and the memory check."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import archtune.data.policy as policy
from archtune.data import data_shape, load_dataset
from archtune.data.images import image_to_array
from archtune.errors import ArchtuneError
from tests._cli import run_cli


def _save(path: Path, size: tuple[int, int], mode: str = "RGB", value: int = 120) -> Path:
    """An image of (height, width) with a brighter centre, in ``mode``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = size
    a = np.full((h, w, 3), value, dtype=np.uint8)
    a[h // 4:3 * h // 4, w // 4:3 * w // 4] = 250
    im = Image.fromarray(a)
    im = im.quantize(8) if mode == "P" else im.convert(mode)
    im.save(path)
    return path


def _folder(root: Path, sizes: dict[str, list[tuple[int, int]]], mode: str = "RGB") -> Path:
    for cls, sz in sizes.items():
        for i, s in enumerate(sz):
            _save(root / cls / f"{i}.png", s, mode)
    return root


def test_mixed_sizes_read_at_the_median_and_recorded(tmp_path: Path, caplog) -> None:
    root = _folder(tmp_path / "p", {"a": [(20, 30), (40, 60), (60, 90)], "b": [(30, 40), (50, 50)]})
    ds = load_dataset(str(root), test_fraction=0.4)
    assert ds.input_shape == (3, 40, 50)  # median height 40, median width 50
    assert ds.facts["size_policy"] == "median" and ds.facts["resized"] == 5
    assert ds.facts["image_size"] == [40, 50]
    assert sum("images of 5 sizes: reading all at 40x50" in r.message for r in caplog.records) == 1
    assert data_shape(str(root)) == ((3, 40, 50), 2)  # from the headers alone


def test_the_median_is_capped(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(policy, "MAX_AUTO_SIDE", 32)
    root = _folder(tmp_path / "p", {"a": [(60, 80), (64, 96)], "b": [(70, 100), (66, 90)]})
    ds = load_dataset(str(root), test_fraction=0.5)
    assert ds.input_shape == (3, 22, 32)  # median 65 x 92.5, long side to 32 keeping the aspect
    assert ds.facts["size_policy"] == "median, long side capped at 32"


def test_one_size_and_a_given_size(tmp_path: Path) -> None:
    root = _folder(tmp_path / "p", {"a": [(12, 10)] * 2, "b": [(12, 10)] * 2})
    ds = load_dataset(str(root), test_fraction=0.5)
    assert ds.input_shape == (3, 12, 10) and ds.facts["size_policy"] == "all the same"
    ds = load_dataset(str(root), test_fraction=0.5, image_size=(6, 8))
    assert ds.input_shape == (3, 6, 8) and ds.facts["resized"] == 4


def test_crop_keeps_the_centre_and_fit_pads() -> None:
    a = np.zeros((20, 40, 3), dtype=np.uint8)
    a[:, 10:30] = 200  # the centre 20 x 20 is bright, the sides dark
    im = Image.fromarray(a)
    crop, _ = image_to_array(im, 10, 10, 3, resize="crop")
    fit, _ = image_to_array(im, 10, 10, 3, resize="fit")
    assert crop.shape == fit.shape == (10, 10, 3)
    assert crop[:, 1:-1].min() >= 190 and crop.min() > 150  # the bright centre (edges resampled)
    assert fit[5].min() < 50 and fit[5, 5].min() >= 190  # whole image, sides dark
    with pytest.raises(ArchtuneError, match="resize: expected one of fit, crop"):
        image_to_array(im, 10, 10, 3, resize="stretch")


def test_resize_key_is_checked() -> None:
    from archtune.specs import spec_from_dict

    with pytest.raises(ArchtuneError, match=r"data.resize.*'crp'.*did you mean 'crop'"):
        spec_from_dict({"layers": ["Flatten", {"Dense": 2}], "data": {"resize": "crp"}})


def test_grey_and_colour_become_three_channels_once(tmp_path: Path, caplog) -> None:
    root = tmp_path / "m"
    for i, mode in enumerate(["RGB", "L", "RGBA", "P", "L", "RGB"]):
        _save(root / ("a" if i % 2 else "b") / f"{i}.png", (16, 16), mode)
    ds = load_dataset(str(root), test_fraction=0.5)
    assert ds.input_shape == (3, 16, 16)
    assert (ds.facts["grey_images"], ds.facts["colour_images"]) == (2, 4)
    assert sum("2 grey and 4 colour images" in r.message for r in caplog.records) == 1


def _bad_files(root: Path) -> dict[str, str]:
    """One bad file of each kind, and the text its line of the error has."""
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40, 3), np.uint8)).save(buf, "JPEG")
    jpeg = buf.getvalue()
    png = _save(root / "a" / "0.png", (30, 30)).read_bytes()
    files = {"a/corrupt.png": (b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, "corrupt"),
             "a/truncated.png": (png[:len(png) // 2], "truncated"),
             "b/truncated.jpg": (jpeg[:len(jpeg) // 3], "truncated"),
             "b/empty.png": (b"", "empty file"),
             "b/notes.png": (b"shopping list: eggs\n", "not a PNG, JPEG, BMP or WebP image")}
    for name, (data, _) in files.items():
        (root / name).write_bytes(data)
    return {name: why for name, (_, why) in files.items()}


def test_bad_files_listed_in_one_error(tmp_path: Path) -> None:
    root = _folder(tmp_path / "p", {"a": [(30, 30)] * 3, "b": [(30, 30)] * 3})
    bad = _bad_files(root)
    with pytest.raises(ArchtuneError) as err:
        load_dataset(str(root), test_fraction=0.5)
    text = str(err.value)
    assert f"{len(bad)} unreadable image file(s)" in text and "--skip-bad-files" in text
    for name, why in bad.items():
        line = next(li for li in text.splitlines() if li.strip().startswith(str(root / name)))
        assert why in line, line


def test_bad_files_skipped_and_recorded(tmp_path: Path) -> None:
    root = _folder(tmp_path / "p", {"a": [(30, 30)] * 3, "b": [(30, 30)] * 3})
    bad = _bad_files(root)
    ds = load_dataset(str(root), test_fraction=0.5, skip_bad_files=True)
    assert len(ds.y_train) + len(ds.y_test) == 6
    skipped = ds.facts["skipped_files"]
    assert skipped["count"] == len(bad) and len(skipped["first"]) == 5


def test_many_bad_files_are_counted(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(policy, "MAX_LISTED", 2)
    root = _folder(tmp_path / "p", {"a": [(8, 8)] * 2, "b": [(8, 8)] * 2})
    for i in range(5):
        (root / "a" / f"bad{i}.png").write_bytes(b"nope")
    with pytest.raises(ArchtuneError, match=r"5 unreadable[\s\S]*\.\.\. and 3 more"):
        load_dataset(str(root), test_fraction=0.5)


def test_hidden_ignored_nested_read(tmp_path: Path) -> None:
    root = _folder(tmp_path / "p", {"a": [(8, 8)] * 2, "b": [(8, 8)] * 2})
    (root / "a" / "._0.png").write_bytes(b"AppleDouble junk")  # macOS resource fork
    (root / ".cache").mkdir()
    (root / ".cache" / "x.png").write_bytes(b"junk")
    (root / "b" / ".thumbs").mkdir()
    (root / "b" / ".thumbs" / "t.png").write_bytes(b"junk")
    (root / "a" / "notes.txt").write_text("not an image, other extension")
    _save(root / "b" / "more" / "deep.png", (8, 8))  # a nested folder belongs to its class
    ds = load_dataset(str(root), test_fraction=0.4)
    assert ds.classes == ["a", "b"] and len(ds.y_train) + len(ds.y_test) == 5


def test_memory_check_before_reading(tmp_path: Path, monkeypatch) -> None:
    root = _folder(tmp_path / "p", {"a": [(40, 40)] * 2, "b": [(40, 40)] * 2})
    monkeypatch.setattr(policy, "available_memory", lambda: 10_000)
    monkeypatch.setattr("archtune.data.folders._read_images", lambda *a: pytest.fail("read first"))
    with pytest.raises(ArchtuneError, match=r"4 images at 40x40x3 need about 0 MB of memory .* but "
                                            r"0 MB is available; read them smaller with --image-size"):
        load_dataset(str(root), test_fraction=0.5)


def test_available_memory_reads_the_system() -> None:
    free = policy.available_memory()
    assert free is None or free > 0


def test_data_command_shows_imbalance_and_size(tmp_path: Path, capsys) -> None:
    root = _folder(tmp_path / "p", {"many": [(12, 12)] * 12, "few": [(10, 14)] * 4})
    code, out, _ = run_cli(["data", str(root), "--image-size", "8x8", "--skip-bad-files"], capsys)
    assert code == 0
    assert "class imbalance: 3.00" in out and "train.balance" in out
    assert "image size: 8x8 (given; 16 resized, fit)" in out
    balanced = _folder(tmp_path / "q", {"x": [(8, 8)] * 5, "y": [(8, 8)] * 5})
    code, out, _ = run_cli(["data", str(balanced)], capsys)
    assert "class imbalance: 1.00" in out and "train.balance" not in out
