"""An image-folder file gets the same pixels as a training image and when ``predict`` reads it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from archtune import build_model
from archtune.data import load_data
from archtune.serve.predict import Predictor
from archtune.specs import spec_from_dict


def _item(h: int, w: int, bg: int, fg: int, dtype: type = np.uint8) -> np.ndarray:
    a = np.full((h, w), bg, dtype)
    a[h // 4:3 * h // 4, w // 3:2 * w // 3] = fg
    return a


def _write_folder(root: Path) -> list[Path]:
    """Images of every kind the preprocessing handles, in the order the loader reads them."""
    rng = np.random.default_rng(0)
    rgb = np.stack([_item(30, 20, 200, 40), _item(30, 20, 180, 90), _item(30, 20, 160, 10)], -1)
    rgba = np.dstack([np.stack([_item(16, 16, 0, 230)] * 3, -1), _item(16, 16, 0, 255)])
    rotated = Image.fromarray(_item(20, 40, 10, 220))
    exif = rotated.getexif()
    exif[0x0112] = 6  # shown rotated by 90 degrees
    images = {
        "train/a/0-model-size.png": Image.fromarray(rng.integers(0, 256, (12, 10), np.uint8)),
        "train/a/1-wide-rgb.png": Image.fromarray(rgb.transpose(1, 0, 2).copy()),
        "train/a/2-transparent.png": Image.fromarray(rgba, "RGBA"),
        "train/b/0-16-bit.png": Image.fromarray(_item(24, 20, 3000, 60000, np.uint16)),
        "train/b/1-palette.png": Image.fromarray(rgb).convert("P"),
        "train/b/2-big.jpg": Image.fromarray(np.kron(_item(12, 10, 30, 200), np.ones((20, 20), np.uint8))),
        "train/b/3-rotated.jpg": rotated,
        "test/a/0.png": Image.fromarray(_item(12, 10, 0, 255)),
        "test/b/0.png": Image.fromarray(_item(12, 10, 255, 0)),
    }
    for name, im in images.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        im.save(path, exif=exif) if name.endswith("rotated.jpg") else im.save(path)
    return [root / n for n in images if n.startswith("train/")]


@pytest.mark.parametrize("channels", [1, 3])
def test_a_folder_image_gets_the_same_pixels_in_training_and_in_predict(tmp_path: Path,
                                                                        channels: int) -> None:
    files = _write_folder(tmp_path / "folder")
    spec = spec_from_dict({"input_shape": [12, 10, channels], "layers": ["Flatten", {"Dense": 2}],
                           "data": {"dataset": str(tmp_path / "folder"), "image_size": [12, 10],
                                    "channels": channels, "dev_fraction": 0.4}})
    splits = load_data(spec.data).splits
    predictor = Predictor(build_model(spec), splits.classes, spec)
    seen = 0
    for split in (splits.train, splits.dev):
        for x, source in zip(split.x, split.indices.tolist(), strict=True):
            prepared = predictor.prepare(files[source])
            assert not prepared.inverted
            assert torch.equal(torch.from_numpy(prepared.pixels), x), files[source].name
            seen += 1
    assert seen == len(files)
