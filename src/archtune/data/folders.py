"""Image-folder data sets: one sub-folder per class (or ``train/`` and ``test/`` so laid out).

Every file is read the way archtune reads an image to predict on (:mod:`.images`), so a model
trained on a folder sees a file's pixels exactly as ``archtune predict`` will show it that file.
"""

from __future__ import annotations

import logging
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

import archtune.data.images as images
from archtune.errors import ArchtuneError

log = logging.getLogger(__name__)

GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
_ROTATED = (5, 6, 7, 8)  # EXIF orientations that swap width and height


@dataclass
class ImageFolder:
    """uint8 images (N, C, H, W) and labels of a folder; the first ``n_train`` are ``train/``'s
    when the folder has ``train/`` and ``test/`` (else None: the caller splits)."""

    classes: list[str]
    x: np.ndarray
    y: np.ndarray
    n_train: int | None


def _class_folders(root: Path) -> list[Path]:
    if not root.is_dir():
        raise ArchtuneError(f"{root}: not a folder; expected one sub-folder per class")
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and p.suffix.lower() in images.IMAGE_EXTENSIONS
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def _scan(root: Path, classes: list[str] | None) -> tuple[list[str], list[Path], list[int]]:
    """Files and labels of an image folder; ``classes`` fixes the class list (test split)."""
    folders = _class_folders(root)
    names = [p.name for p in folders]
    if classes is None:
        if len(folders) < 2:
            raise ArchtuneError(
                f"{root}: found {len(folders)} class folder(s) ({', '.join(names) or 'none'}); "
                f"expected at least 2 sub-folders, one per class, holding images "
                f"({', '.join(images.IMAGE_EXTENSIONS)})"
            )
        classes = names
    else:
        extra = sorted(set(names) - set(classes))
        if extra:
            raise ArchtuneError(
                f"{root}: class folder(s) {', '.join(extra)} not in the training classes "
                f"({', '.join(classes)}); expected the same class folders as train/"
            )
    files: list[Path] = []
    labels: list[int] = []
    for folder in folders:
        found = _image_files(folder)
        if not found:
            raise ArchtuneError(
                f"{folder}: empty class folder; expected image files "
                f"({', '.join(images.IMAGE_EXTENSIONS)})"
            )
        files += found
        labels += [classes.index(folder.name)] * len(found)
    return classes, files, labels


def _probe(path: Path) -> tuple[tuple[int, int], str]:
    """(height, width) of an image file as it is shown (EXIF orientation applied) and its mode,
    reading only its header."""
    try:
        with Image.open(path) as im:
            rotated = im.getexif().get(0x0112, 1) in _ROTATED
            return ((im.width, im.height) if rotated else (im.height, im.width)), im.mode
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        raise ArchtuneError(
            f"{path}: unreadable image ({e}); expected a PNG/JPEG/BMP/WebP file"
        ) from None


def _read_images(files: list[Path], size: tuple[int, int], channels: int) -> np.ndarray:
    """uint8 (N, C, H, W): each file opened and prepared as :mod:`.images` prepares any image."""
    h, w = size
    out = np.empty((len(files), h, w, channels), dtype=np.uint8)
    for i, path in enumerate(files):
        try:
            draft = images.draft_size(h, w)
            with images.open_image(path, max_pixels=sys.maxsize, draft_size=draft) as im:
                out[i] = images.image_to_array(im, h, w, channels)[0]
        except images.ImageError as e:
            reason = str(e).removeprefix(f"{path}: ")
            raise ArchtuneError(
                f"{path}: unreadable image ({reason}); expected a PNG/JPEG/BMP/WebP file"
            ) from None
    return out.transpose(0, 3, 1, 2).copy()


def read_image_folder(root: Path, size: tuple[int, int] | None, channels: int | None) -> ImageFolder:
    """Read every image of a folder at one size (``size``, else the most common) and channel
    count (``channels``, else 1 if every image is grayscale, else 3)."""
    has_splits = (root / "train").is_dir() and (root / "test").is_dir()
    if has_splits:
        classes, tr_files, tr_labels = _scan(root / "train", None)
        _, te_files, te_labels = _scan(root / "test", classes)
    else:
        classes, tr_files, tr_labels = _scan(root, None)
        te_files, te_labels = [], []
    all_files = tr_files + te_files
    probes = [_probe(p) for p in all_files]
    if size is None:
        size = Counter(s for s, _ in probes).most_common(1)[0][0]
        n_other = sum(s != size for s, _ in probes)
        if n_other:
            log.warning(
                "%s: %d image(s) not %dx%d (the most common size) will be resized, keeping "
                "their aspect ratio",
                root,
                n_other,
                size[0],
                size[1],
            )
    if channels is None:
        channels = 1 if all(m in GRAY_MODES for _, m in probes) else 3
    log.info("%s: reading %d images as %d x %d x %d", root, len(all_files), channels, *size)
    x = _read_images(all_files, size, channels)
    y = np.asarray(tr_labels + te_labels, dtype=np.int64)
    return ImageFolder(classes, x, y, len(tr_files) if has_splits else None)
