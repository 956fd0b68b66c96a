"""Image-folder data sets: one sub-folder per class (or ``train/`` and ``test/`` so laid out).

Every file is read the way archtune reads an image to predict on (:mod:`.images`), so a model
trained on a folder sees a file's pixels exactly as ``archtune predict`` will show it that file.

As Keras' ``image_dataset_from_directory``: class folders are the sub-folders (sorted), files
in folders nested inside a class folder belong to that class, and files with other extensions
are left out; so are hidden files and folders (names starting with '.', such as macOS's
``._photo.jpg``). :func:`scan_folder` reads every file's header first and lists all unreadable
files in one error (or leaves them out with ``skip_bad_files``); :mod:`.policy` decides the
size and channels before any pixel is decoded, and checks the memory they need.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import archtune.data.images as images
from archtune.data.policy import bad_files_error, check_memory, choose_channels, choose_size
from archtune.errors import ArchtuneError

log = logging.getLogger(__name__)

_ROTATED = (5, 6, 7, 8)  # EXIF orientations that swap width and height
MAX_PIXELS = 400_000_000  # a training image may be large, not absurd (a header claiming more is bad)


@dataclass
class ImageFolder:
    """uint8 images (N, C, H, W) and labels of a folder; the first ``n_train`` are ``train/``'s
    when the folder has ``train/`` and ``test/`` (else None: the caller splits). ``facts``: how
    the size, channels and unreadable files were decided (recorded in a run's metrics.json)."""

    classes: list[str]
    x: np.ndarray
    y: np.ndarray
    n_train: int | None
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass
class FolderScan:
    """The readable files of a folder (labels, header size and mode) and the bad ones."""

    classes: list[str]
    files: list[Path]
    labels: list[int]
    n_train: int | None  # files of train/ (the first ones) when the folder has train/ and test/
    sizes: list[tuple[int, int]]  # (height, width) as shown (EXIF orientation applied)
    modes: list[str]
    bad: list[tuple[Path, str]]  # (file, reason), skipped
    ignored: int  # files with other extensions


def _class_folders(root: Path) -> list[Path]:
    if not root.is_dir():
        raise ArchtuneError(f"{root}: not a folder; expected one sub-folder per class")
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _visible_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def _scan_split(root: Path, classes: list[str] | None) -> tuple[list[str], list[Path], list[int], int]:
    """Files, labels and the number of files left out (other extensions); ``classes`` fixes the
    class list (test split)."""
    folders = _class_folders(root)
    names = [p.name for p in folders]
    if classes is None:
        if len(folders) < 2:
            raise ArchtuneError(
                f"{root}: found {len(folders)} class folder(s) ({', '.join(names) or 'none'}); "
                f"expected at least 2 sub-folders, one per class, holding images "
                f"({', '.join(images.IMAGE_EXTENSIONS)})")
        classes = names
    elif extra := sorted(set(names) - set(classes)):
        raise ArchtuneError(
            f"{root}: class folder(s) {', '.join(extra)} not in the training classes "
            f"({', '.join(classes)}); expected the same class folders as train/")
    files: list[Path] = []
    labels: list[int] = []
    ignored = 0
    for folder in folders:
        visible = _visible_files(folder)
        found = [p for p in visible if p.suffix.lower() in images.IMAGE_EXTENSIONS]
        ignored += len(visible) - len(found)
        if not found:
            raise ArchtuneError(f"{folder}: empty class folder; expected image files "
                                f"({', '.join(images.IMAGE_EXTENSIONS)})")
        files += found
        labels += [classes.index(folder.name)] * len(found)
    return classes, files, labels, ignored


def _probe(path: Path) -> tuple[tuple[int, int], str] | str:
    """(height, width) of an image file as it is shown (EXIF orientation applied) and its mode,
    from its header; or why it cannot be read."""
    try:
        if path.stat().st_size == 0:
            return "empty file"
        with images.open_header(path, max_pixels=MAX_PIXELS) as im:
            rotated = im.getexif().get(0x0112, 1) in _ROTATED
            return ((im.width, im.height) if rotated else (im.height, im.width)), im.mode
    except images.ImageError as e:
        return str(e).removeprefix(f"{path}: ")
    except (OSError, ValueError, SyntaxError) as e:  # the EXIF block of a damaged header
        return f"corrupt image header ({e})"


def scan_folder(root: Path, *, skip_bad_files: bool = False) -> FolderScan:
    """Every image file of a folder with its label and header; all unreadable files in one
    error (or left out and logged with ``skip_bad_files``)."""
    has_splits = (root / "train").is_dir() and (root / "test").is_dir()
    if has_splits:
        classes, files, labels, ignored = _scan_split(root / "train", None)
        n_train: int | None = len(files)
        _, te_files, te_labels, te_ignored = _scan_split(root / "test", classes)
        files, labels, ignored = files + te_files, labels + te_labels, ignored + te_ignored
    else:
        classes, files, labels, ignored = _scan_split(root, None)
        n_train = None
    probes = [_probe(p) for p in files]
    bad = [(p, r) for p, r in zip(files, probes, strict=True) if isinstance(r, str)]
    if bad and not skip_bad_files:
        raise bad_files_error(root, bad)
    keep = [i for i, r in enumerate(probes) if not isinstance(r, str)]
    if n_train is not None:
        n_train = sum(i < n_train for i in keep)
    good = [r for r in probes if not isinstance(r, str)]
    if ignored:
        log.info("%s: %d file(s) with other extensions left out", root, ignored)
    return FolderScan(classes, [files[i] for i in keep], [labels[i] for i in keep], n_train,
                      [g[0] for g in good], [g[1] for g in good], bad, ignored)


def _read_images(files: list[Path], size: tuple[int, int], channels: int, resize: str
                 ) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """uint8 (N, C, H, W): each file opened and prepared as :mod:`.images` prepares any image;
    and the (index, reason) of files that fail to decode (their rows are left zero)."""
    h, w = size
    out = np.zeros((len(files), h, w, channels), dtype=np.uint8)
    failed: list[tuple[int, str]] = []
    draft = images.draft_size(h, w)
    for i, path in enumerate(files):
        try:
            with images.open_image(path, max_pixels=MAX_PIXELS, draft_size=draft) as im:
                out[i] = images.image_to_array(im, h, w, channels, resize=resize)[0]
        except images.ImageError as e:
            failed.append((i, str(e).removeprefix(f"{path}: ")))
    return out.transpose(0, 3, 1, 2).copy(), failed


def folder_shape(root: Path, size: tuple[int, int] | None, channels: int | None, *,
                 skip_bad_files: bool = False) -> tuple[tuple[int, int, int], int]:
    """(channels, height, width) a folder would be read at, from the headers only, and its
    number of classes."""
    scan = scan_folder(root, skip_bad_files=skip_bad_files)
    chosen, _ = choose_size(scan.sizes, size, root, quiet=True)
    return (choose_channels(scan.modes, channels, root, quiet=True)[0], *chosen), len(scan.classes)


def read_image_folder(root: Path, size: tuple[int, int] | None, channels: int | None, *,
                      resize: str = "fit", skip_bad_files: bool = False) -> ImageFolder:
    """Read every image of a folder at one size (``size``, else :func:`.policy.choose_size`'s)
    and channel count (``channels``, else 1 if every image is grayscale, else 3); ``resize``:
    ``fit`` (keep the aspect ratio, pad) or ``crop`` (cover, keep the centre)."""
    scan = scan_folder(root, skip_bad_files=skip_bad_files)
    size, size_facts = choose_size(scan.sizes, size, root)
    channels, channel_facts = choose_channels(scan.modes, channels, root)
    check_memory(root, len(scan.files), channels, size)
    log.info("%s: reading %d images as %d x %d x %d", root, len(scan.files), channels, *size)
    x, failed = _read_images(scan.files, size, channels, resize)
    bad = scan.bad + [(scan.files[i], reason) for i, reason in failed]
    if failed and not skip_bad_files:
        raise bad_files_error(root, bad)
    keep = np.setdiff1d(np.arange(len(scan.files)), [i for i, _ in failed])
    n_train = scan.n_train
    if n_train is not None:
        n_train = int((keep < n_train).sum())
    facts = {**size_facts, "resize": resize, **channel_facts}
    if bad:
        log.warning("%s: %d unreadable file(s) left out (skip_bad_files), such as %s", root,
                    len(bad), bad[0][0])
        facts["skipped_files"] = {"count": len(bad), "first": [f"{p}: {r}" for p, r in bad[:5]]}
    y = np.asarray(scan.labels, dtype=np.int64)[keep]
    return ImageFolder(scan.classes, x[keep] if failed else x, y, n_train, facts)
