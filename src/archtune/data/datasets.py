"""Load a data set into memory as uint8 image tensors: registered IDX sets, .npz files, image folders.

``load_dataset(name)`` accepts:

* a registered name (see :func:`list_datasets`): ``fashion-mnist``, ``mnist``; the files are
  found by :func:`archtune.data.sources.locate`;
* a folder holding the four IDX files (``train-images-idx3-ubyte[.gz]``, ...);
* a ``.npz`` file with arrays ``x_train``, ``y_train`` and optionally ``x_test``, ``y_test``
  (both or neither) and ``classes`` (strings, in label order). Images may be laid out as
  (N, H, W), (N, H, W, C) or (N, C, H, W) with C in {1, 3} (when both axis 1 and the last axis
  could be channels, channels-first is assumed); values either integers in 0..255 or floats in
  [0, 1]. Labels are integers 0..K-1 (K = number of classes, or max label + 1);
* an image folder: one sub-folder per class holding PNG/JPEG/BMP/WebP files (class names are
  the sub-folder names, sorted), or ``train/`` and ``test/`` sub-folders each laid out so.
  Images are converted to one size (``image_size``; else their size when they share one; else
  their median height and width, the long side capped at 128 pixels: :mod:`archtune.data.policy`)
  keeping their aspect ratio (``resize``: ``fit`` and pad with the border's level, or ``crop``
  the centre; a .npz or IDX data set given an ``image_size`` is resized the same way) and to one channel count (``channels``, else 1 if every image is grayscale, else
  3), exactly as ``archtune predict`` prepares a file (:mod:`archtune.data.images`). Unreadable
  files are listed in one error, or left out with ``skip_bad_files``.

When a source has no test split, a stratified, seeded ``test_fraction`` of it is set aside.
"""

from __future__ import annotations

import logging
import os
import time
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from archtune.data.checks import (
    check_fraction,
    check_labels,
    check_lengths,
    check_size,
    conform,
    stratified_test_split,
)
from archtune.data.folders import folder_shape, read_image_folder
from archtune.data.idx import read_idx
from archtune.data.images import RESIZE_MODES
from archtune.data.sources import ROLES, SOURCES, find_files, get_source, locate
from archtune.errors import ArchtuneError, did_you_mean, short

log = logging.getLogger(__name__)


@dataclass(repr=False)
class Dataset:
    """A data set held in memory: uint8 images (N, C, H, W) and int64 labels."""

    name: str
    classes: list[str]
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    source: str
    facts: dict[str, Any] = field(default_factory=dict)  # how an image folder was read (size policy, ...)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        c, h, w = self.x_train.shape[1:]
        return (int(c), int(h), int(w))

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        c, h, w = self.input_shape
        return (
            f"Dataset(name={self.name!r}, classes={self.num_classes}, input_shape=({c}, {h}, {w}), "
            f"train={len(self.y_train)}, test={len(self.y_test)}, source={self.source!r})"
        )


def list_datasets() -> list[str]:
    """Names of the registered data sets (anything else must be a path)."""
    return sorted(SOURCES)


def load_dataset(
    name: str = "fashion-mnist",
    *,
    data_dir: str | Path | None = None,
    download: bool = True,
    image_size: tuple[int, int] | None = None,
    channels: int | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
    resize: str = "fit",
    skip_bad_files: bool = False,
) -> Dataset:
    """Load a registered data set, a folder of IDX files, a ``.npz`` file or an image folder.

    ``image_size`` is (height, width); ``channels`` is 1 or 3. ``test_fraction`` and ``seed``
    set aside a stratified test split for sources without one. An image folder's images are
    brought to that size by ``resize`` (``fit`` or ``crop``); ``skip_bad_files`` leaves its
    unreadable files out (else they are listed in one error). See the module docstring.
    """
    size = _check_options(image_size, channels, test_fraction, resize)
    t0 = time.perf_counter()
    name = os.fspath(name)
    if name in SOURCES:
        folder = locate(name, data_dir=data_dir, download=download)
        ds = _load_idx_folder(folder, name, list(SOURCES[name].classes), size, channels, resize)
    else:
        path = Path(name).expanduser()
        if not path.exists():
            raise ArchtuneError(
                f"unknown data set '{name}'{did_you_mean(name, SOURCES)}: it is neither a "
                f"registered data set ({', '.join(list_datasets())}) nor an existing path "
                "(expected a .npz file or a folder of images or IDX files)"
            )
        if path.is_dir():
            if any(find_files(path, "mnist").values()):
                ds = _load_idx_folder(path, path.name, None, size, channels, resize)
            else:
                ds = _load_image_folder(path, size, channels, test_fraction, seed,
                                        resize=resize, skip_bad_files=skip_bad_files)
        elif path.suffix.lower() == ".npz":
            ds = _load_npz(path, size, channels, test_fraction, seed, resize)
        else:
            raise ArchtuneError(
                f"{path}: unsupported data file '{path.suffix}'; expected a registered data set "
                f"name ({', '.join(list_datasets())}), a .npz file, or a folder"
            )
    log.info(
        "loaded %s: %d train + %d test images %s, %d classes, in %.1fs",
        ds.name,
        len(ds.y_train),
        len(ds.y_test),
        ds.input_shape,
        ds.num_classes,
        time.perf_counter() - t0,
    )
    return ds


def _check_options(image_size: tuple[int, int] | None, channels: int | None,
                   test_fraction: float, resize: str) -> tuple[int, int] | None:
    size = check_size(image_size)
    if channels is not None and (isinstance(channels, bool) or channels not in (1, 3)):
        raise ArchtuneError(f"channels: got {short(channels)}; expected 1 or 3")
    if resize not in RESIZE_MODES:
        raise ArchtuneError(f"resize: got {short(resize)}; expected one of {', '.join(RESIZE_MODES)}")
    check_fraction(test_fraction)
    return size


def data_shape(name: str = "fashion-mnist", *, data_dir: str | Path | None = None,
               image_size: tuple[int, int] | None = None, channels: int | None = None,
               skip_bad_files: bool = False) -> tuple[tuple[int, int, int], int]:
    """(channels, height, width) that :func:`load_dataset` would give, and the number of
    classes: for an image folder from its files' headers alone (nothing decoded); other data
    sets are loaded."""
    path = Path(os.fspath(name)).expanduser()
    if name not in SOURCES and path.is_dir() and not any(find_files(path, "mnist").values()):
        _check_options(image_size, channels, 0.2, "fit")
        return folder_shape(path, check_size(image_size), channels, skip_bad_files=skip_bad_files)
    ds = load_dataset(name, data_dir=data_dir, image_size=image_size, channels=channels,
                      skip_bad_files=skip_bad_files)
    return ds.input_shape, ds.num_classes


# ---------------------------------------------------------------- IDX


def _load_idx_folder(
    folder: Path,
    name: str,
    classes: list[str] | None,
    size: tuple[int, int] | None,
    channels: int | None,
    resize: str = "fit",
) -> Dataset:
    files = find_files(folder, "mnist")  # all registered sets share the file names
    missing = [get_source("mnist").files[r] for r in ROLES if files[r] is None]
    if missing:
        raise ArchtuneError(f"{folder}: missing IDX file(s): {', '.join(missing)}")
    arrays = {}
    for role in ROLES:
        path = files[role]
        assert path is not None
        arr = read_idx(path, ndim=3 if role.endswith("images") else 1)
        if arr.dtype != np.uint8:
            raise ArchtuneError(f"{path}: IDX data is {arr.dtype}; expected uint8")
        arrays[role] = (path, arr)
    y_all = np.concatenate([arrays["train_labels"][1], arrays["test_labels"][1]])
    if classes is None:
        classes = [str(i) for i in range(int(y_all.max()) + 1 if y_all.size else 0)]
    out: dict[str, torch.Tensor] = {}
    for split in ("train", "test"):
        ipath, x = arrays[f"{split}_images"]
        lpath, y = arrays[f"{split}_labels"]
        if len(x) != len(y):
            raise ArchtuneError(
                f"{ipath}: {len(x)} images but {lpath.name} has {len(y)} labels; expected "
                f"the same count"
            )
        y = check_labels(y, len(classes), str(lpath))
        out[f"x_{split}"] = torch.from_numpy(x).unsqueeze(1)
        out[f"y_{split}"] = torch.from_numpy(y)
    if out["x_train"].shape[1:] != out["x_test"].shape[1:]:
        raise ArchtuneError(
            f"{folder}: train images are {tuple(out['x_train'].shape[2:])} but test images are "
            f"{tuple(out['x_test'].shape[2:])}; expected the same size"
        )
    if len(out["y_train"]) == 0:
        raise ArchtuneError(f"{arrays['train_images'][0]}: no training images")
    for k in ("x_train", "x_test"):
        out[k] = conform(out[k], size, channels, resize)
    return Dataset(name=name, classes=list(classes), source=str(folder.resolve()), **out)


# ---------------------------------------------------------------- .npz


def _npz_images(x: np.ndarray, where: str) -> np.ndarray:
    """Validate and convert one image array to uint8 (N, C, H, W)."""
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4:
        first, last = x.shape[1] in (1, 3), x.shape[3] in (1, 3)
        if last and not first:
            x = x.transpose(0, 3, 1, 2)
        elif not first:
            raise ArchtuneError(
                f"{where}: images have shape {x.shape}; expected 1 or 3 channels, laid out as "
                "(N, H, W, C) or (N, C, H, W)"
            )
    else:
        raise ArchtuneError(
            f"{where}: images have shape {x.shape}; expected (N, H, W), (N, H, W, C) or "
            "(N, C, H, W)"
        )
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    if x.dtype.kind == "f":
        if x.size and not np.all(np.isfinite(x)):
            raise ArchtuneError(f"{where}: images contain NaN or infinite values")
        if x.size and (x.min() < 0 or x.max() > 1):
            raise ArchtuneError(
                f"{where}: float images span {float(x.min()):g}..{float(x.max()):g}; expected "
                "values in [0, 1] (or uint8 0..255)"
            )
        return np.ascontiguousarray(np.round(x * 255).astype(np.uint8))
    if x.dtype.kind in "iu":
        if x.size and (x.min() < 0 or x.max() > 255):
            raise ArchtuneError(
                f"{where}: integer images span {int(x.min())}..{int(x.max())}; expected 0..255"
            )
        return np.ascontiguousarray(x.astype(np.uint8))
    raise ArchtuneError(f"{where}: images are {x.dtype}; expected uint8 0..255 or float in [0, 1]")


def _npz_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a .npz file (x_train, y_train, and x_test, y_test, classes if there)."""
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise ArchtuneError(f"{path}: cannot read .npz file ({e})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ArchtuneError(
            f"{path}: not a .npz archive (a single .npy array?); expected "
            "arrays x_train, y_train[, x_test, y_test, classes]"
        )
    with npz:
        keys = set(npz.files)
        required = {"x_train", "y_train"}
        missing = sorted(required - keys)
        if missing:
            raise ArchtuneError(
                f"{path}: missing array(s) {', '.join(missing)}; expected x_train, y_train "
                f"(optional: x_test, y_test, classes); found: {', '.join(sorted(keys)) or 'none'}"
            )
        has_test = [k in keys for k in ("x_test", "y_test")]
        if any(has_test) and not all(has_test):
            lacking = "y_test" if has_test[0] else "x_test"
            raise ArchtuneError(
                f"{path}: has {'x_test' if has_test[0] else 'y_test'} but not "
                f"{lacking}; expected both or neither"
            )
        try:
            arrays = {
                k: npz[k]
                for k in ("x_train", "y_train", "x_test", "y_test", "classes")
                if k in keys
            }
        except (ValueError, OSError, zipfile.BadZipFile) as e:
            raise ArchtuneError(
                f"{path}: cannot read arrays ({e}); expected plain numeric "
                "arrays (object arrays are not loaded)"
            ) from None
    return arrays


def _npz_classes(arrays: dict[str, np.ndarray], path: Path) -> list[str] | None:
    classes: list[str] | None = None
    if "classes" in arrays:
        c = arrays["classes"]
        if c.ndim != 1 or c.dtype.kind not in "US":
            raise ArchtuneError(
                f"{path}: 'classes' is {c.dtype} {c.shape}; expected a 1-D array "
                "of class-name strings in label order"
            )
        classes = [v.decode() if isinstance(v, bytes) else str(v) for v in c.tolist()]
        if len(set(classes)) != len(classes):
            dup = [k for k, n in Counter(classes).items() if n > 1]
            raise ArchtuneError(f"{path}: duplicate class names in 'classes': {', '.join(dup)}")
    return classes


def _load_npz(
    path: Path, size: tuple[int, int] | None, channels: int | None, test_fraction: float, seed: int,
    resize: str = "fit",
) -> Dataset:
    arrays = _npz_arrays(path)
    classes = _npz_classes(arrays, path)
    k = len(classes) if classes is not None else None
    x_tr = _npz_images(arrays["x_train"], f"{path} [x_train]")
    y_tr = check_labels(arrays["y_train"], k, f"{path} [y_train]")
    check_lengths(x_tr, y_tr, f"{path} [x_train/y_train]")
    if len(y_tr) == 0:
        raise ArchtuneError(f"{path}: x_train is empty; expected at least one image per class")
    if "x_test" in arrays:
        x_te = _npz_images(arrays["x_test"], f"{path} [x_test]")
        y_te = check_labels(arrays["y_test"], k, f"{path} [y_test]")
        check_lengths(x_te, y_te, f"{path} [x_test/y_test]")
        if x_te.shape[1:] != x_tr.shape[1:]:
            raise ArchtuneError(
                f"{path}: x_test images are {x_te.shape[1:]} (C, H, W) but "
                f"x_train images are {x_tr.shape[1:]}; expected the same"
            )
    else:
        tr, te = stratified_test_split(y_tr, test_fraction, seed, str(path))
        x_tr, x_te, y_tr, y_te = x_tr[tr], x_tr[te], y_tr[tr], y_tr[te]
    if classes is None:
        n = int(max(y_tr.max(), y_te.max() if y_te.size else 0)) + 1
        classes = [str(i) for i in range(n)]
    return Dataset(
        name=path.stem,
        classes=classes,
        x_train=conform(torch.from_numpy(x_tr), size, channels, resize),
        y_train=torch.from_numpy(y_tr),
        x_test=conform(torch.from_numpy(x_te), size, channels, resize),
        y_test=torch.from_numpy(y_te),
        source=str(path.resolve()),
    )


# ---------------------------------------------------------------- image folders


def _load_image_folder(
    root: Path, size: tuple[int, int] | None, channels: int | None, test_fraction: float, seed: int,
    *, resize: str, skip_bad_files: bool,
) -> Dataset:
    folder = read_image_folder(root, size, channels, resize=resize, skip_bad_files=skip_bad_files)
    x, y = folder.x, folder.y
    if folder.n_train is not None:
        n = folder.n_train
        x_tr, y_tr, x_te, y_te = x[:n], y[:n], x[n:], y[n:]
    else:
        tr, te = stratified_test_split(y, test_fraction, seed, str(root))
        x_tr, y_tr, x_te, y_te = x[tr], y[tr], x[te], y[te]
    return Dataset(
        name=root.resolve().name,
        classes=folder.classes,
        x_train=torch.from_numpy(np.ascontiguousarray(x_tr)),
        y_train=torch.from_numpy(np.ascontiguousarray(y_tr)),
        x_test=torch.from_numpy(np.ascontiguousarray(x_te)),
        y_test=torch.from_numpy(np.ascontiguousarray(y_te)),
        source=str(root.resolve()),
        facts=folder.facts,
    )
