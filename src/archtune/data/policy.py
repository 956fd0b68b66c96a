"""What an image folder is read as, decided from the files' headers before any pixel is decoded:
the size (:func:`choose_size`), the channels (:func:`choose_channels`), whether it fits in
memory (:func:`check_memory`), and the one error that lists unreadable files."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from archtune.errors import ArchtuneError

log = logging.getLogger(__name__)

MAX_AUTO_SIDE = 128  # without data.image_size, mixed sizes are read at their median, long side capped here
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
BYTES_PER_VALUE = 6  # uint8 images (twice while reading) and the float32 train/dev copy training makes
MAX_LISTED = 20  # unreadable files named in the error; the rest are counted


def choose_size(sizes: Sequence[tuple[int, int]], size: tuple[int, int] | None, root: Path, *,
                quiet: bool = False) -> tuple[tuple[int, int], dict[str, Any]]:
    """The (height, width) to read a folder at and the facts to record: ``size`` when given;
    else the images' one size; else their median height and width, scaled down (keeping that
    aspect ratio) so the long side is at most ``MAX_AUTO_SIDE``; said once unless ``quiet``."""
    policy = "given"
    if size is None and len(set(sizes)) == 1:
        size, policy = sizes[0], "all the same"
    elif size is None:
        h, w = (float(np.median([s[i] for s in sizes])) for i in (0, 1))
        scale = min(1.0, MAX_AUTO_SIDE / max(h, w))
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        policy = "median" + (f", long side capped at {MAX_AUTO_SIDE}" if scale < 1 else "")
    resized = sum(s != size for s in sizes)
    if policy.startswith("median") and not quiet:
        log.warning("%s: images of %d sizes: reading all at %dx%d (the %s; choose with "
                    "--image-size or data.image_size); %d of %d resized", root, len(set(sizes)),
                    *size, policy, resized, len(sizes))
    elif resized and not quiet:
        log.info("%s: %d of %d images resized to %dx%d", root, resized, len(sizes), *size)
    return size, {"image_size": list(size), "size_policy": policy, "resized": resized}


def choose_channels(modes: Sequence[str], channels: int | None, root: Path, *,
                    quiet: bool = False) -> tuple[int, dict[str, Any]]:
    """1 or 3 channels: ``channels`` when given, else 1 if every image is grayscale, else 3
    (grey images repeated; said once unless ``quiet``); and the facts to record."""
    grey = sum(m in GRAY_MODES for m in modes)
    if channels is None:
        channels = 1 if grey == len(modes) else 3
        if grey and channels == 3 and not quiet:
            log.warning("%s: %d grey and %d colour images: all read as 3 channels (grey "
                        "repeated; data.channels: 1 reads all as grey)", root, grey,
                        len(modes) - grey)
    return channels, {"channels": channels, "grey_images": grey, "colour_images": len(modes) - grey}


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.0f} MB"


def check_memory(root: Path, n: int, channels: int, size: tuple[int, int]) -> None:
    """Raise before reading when ``n`` images of ``size`` x ``channels`` need more memory than
    is available, saying how much and which smaller size would fit."""
    need = n * channels * size[0] * size[1] * BYTES_PER_VALUE
    free = available_memory()
    if free is None or need <= free:
        return
    side = max(8, int((free / (n * channels * BYTES_PER_VALUE)) ** 0.5))
    raise ArchtuneError(
        f"{root}: {n:,} images at {size[0]}x{size[1]}x{channels} need about {_gb(need)} of memory "
        f"(uint8 images and the float32 copy training makes) but {_gb(free)} is available; "
        f"read them smaller with --image-size (data.image_size), such as {side}x{side}")


def bad_files_error(root: Path, bad: Sequence[tuple[Path, str]]) -> ArchtuneError:
    """One error listing unreadable files (up to ``MAX_LISTED``, then a count)."""
    lines = [f"  {path}: {reason}" for path, reason in bad[:MAX_LISTED]]
    if len(bad) > MAX_LISTED:
        lines.append(f"  ... and {len(bad) - MAX_LISTED} more")
    return ArchtuneError(
        f"{root}: {len(bad)} unreadable image file(s); fix or remove them, or leave them out "
        f"with --skip-bad-files (data.skip_bad_files: true):\n" + "\n".join(lines))
