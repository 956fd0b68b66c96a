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
  Images are converted to one size (``image_size``, else the most common size) and channel
  count (``channels``, else 1 if every image is grayscale, else 3).

When a source has no test split, a stratified, seeded ``test_fraction`` of it is set aside.
"""

from __future__ import annotations

import logging
import os
import time
import zipfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Real
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from sklearn.model_selection import train_test_split

from archtune.data.idx import read_idx
from archtune.data.sources import ROLES, SOURCES, find_files, get_source, locate
from archtune.errors import ArchtuneError, did_you_mean

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


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
) -> Dataset:
    """Load a registered data set, a folder of IDX files, a ``.npz`` file or an image folder.

    ``image_size`` is (height, width); ``channels`` is 1 or 3. ``test_fraction`` and ``seed``
    set aside a stratified test split for sources without one. See the module docstring.
    """
    size = _check_size(image_size)
    if channels is not None and (isinstance(channels, bool) or channels not in (1, 3)):
        raise ArchtuneError(f"channels: got {channels!r}; expected 1 or 3")
    _check_fraction(test_fraction)
    t0 = time.perf_counter()
    name = os.fspath(name)
    if name in SOURCES:
        folder = locate(name, data_dir=data_dir, download=download)
        ds = _load_idx_folder(folder, name, list(SOURCES[name].classes), size, channels)
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
                ds = _load_idx_folder(path, path.name, None, size, channels)
            else:
                ds = _load_image_folder(path, size, channels, test_fraction, seed)
        elif path.suffix.lower() == ".npz":
            ds = _load_npz(path, size, channels, test_fraction, seed)
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


# ---------------------------------------------------------------- validation helpers


def _check_size(image_size: Sequence[int] | None) -> tuple[int, int] | None:
    if image_size is None:
        return None
    vals = list(image_size) if isinstance(image_size, list | tuple) else []
    if len(vals) != 2 or not all(
        isinstance(v, int | np.integer) and not isinstance(v, bool) and v > 0 for v in vals
    ):
        raise ArchtuneError(
            f"image_size: got {image_size!r}; expected (height, width), two positive integers"
        )
    return (int(vals[0]), int(vals[1]))


def _check_fraction(f: float) -> None:
    if isinstance(f, bool) or not isinstance(f, Real) or not 0 < f < 1:
        raise ArchtuneError(
            f"test_fraction: got {f!r}; expected a number between 0 and 1 (exclusive)"
        )


def _check_labels(y: np.ndarray, n_classes: int | None, where: str) -> np.ndarray:
    """Labels as int64 (N,); integers 0..n_classes-1."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ArchtuneError(f"{where}: labels have shape {y.shape}; expected (N,), one per image")
    if y.dtype.kind == "f" and y.size and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
        y = y.astype(np.int64)
    if y.dtype.kind not in "iu":
        raise ArchtuneError(f"{where}: labels are {y.dtype}; expected integers 0..K-1")
    y = y.astype(np.int64, copy=False)
    bad = y < 0
    if n_classes is not None:
        bad |= y >= n_classes
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        k = f"0..{n_classes - 1}" if n_classes is not None else "0..K-1 (non-negative)"
        raise ArchtuneError(
            f"{where}: label {int(y[first])} at index {first} is out of range; expected {k} "
            f"(labels span {int(y.min())}..{int(y.max())})"
        )
    return y


def _check_lengths(x: np.ndarray | torch.Tensor, y: np.ndarray, where: str) -> None:
    if len(x) != len(y):
        raise ArchtuneError(
            f"{where}: {len(x)} images but {len(y)} labels; expected one label per image"
        )


def _stratified_test_split(
    y: np.ndarray, test_fraction: float, seed: int, where: str
) -> tuple[np.ndarray, np.ndarray]:
    idx = np.arange(len(y))
    try:
        tr, te = train_test_split(idx, test_size=test_fraction, stratify=y, random_state=seed)
    except ValueError as e:
        raise ArchtuneError(
            f"{where}: cannot set aside a stratified test split of {test_fraction:g} from "
            f"{len(y)} images ({e}); add images (at least 2 per class) or provide a test split"
        ) from None
    return np.sort(tr), np.sort(te)


def _conform(x: torch.Tensor, size: tuple[int, int] | None, channels: int | None) -> torch.Tensor:
    """Resize / change channel count of a uint8 (N, C, H, W) tensor, in chunks."""
    c, h, w = x.shape[1:]
    want_c = channels or c
    want_hw = size or (h, w)
    if want_c == c and tuple(want_hw) == (h, w):
        return x
    out = torch.empty((x.shape[0], want_c, *want_hw), dtype=torch.uint8)
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    for start in range(0, x.shape[0], 4096):
        chunk = x[start : start + 4096].float()
        if want_c != c:
            chunk = chunk.expand(-1, 3, -1, -1) if want_c == 3 else (chunk * weights).sum(1, True)
        if tuple(want_hw) != (h, w):
            chunk = F.interpolate(
                chunk, size=want_hw, mode="bilinear", align_corners=False, antialias=True
            )
        out[start : start + 4096] = chunk.round_().clamp_(0, 255).to(torch.uint8)
    return out


# ---------------------------------------------------------------- IDX


def _load_idx_folder(
    folder: Path,
    name: str,
    classes: list[str] | None,
    size: tuple[int, int] | None,
    channels: int | None,
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
        y = _check_labels(y, len(classes), str(lpath))
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
        out[k] = _conform(out[k], size, channels)
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


def _load_npz(
    path: Path, size: tuple[int, int] | None, channels: int | None, test_fraction: float, seed: int
) -> Dataset:
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

    k = len(classes) if classes is not None else None
    x_tr = _npz_images(arrays["x_train"], f"{path} [x_train]")
    y_tr = _check_labels(arrays["y_train"], k, f"{path} [y_train]")
    _check_lengths(x_tr, y_tr, f"{path} [x_train/y_train]")
    if len(y_tr) == 0:
        raise ArchtuneError(f"{path}: x_train is empty; expected at least one image per class")
    if "x_test" in arrays:
        x_te = _npz_images(arrays["x_test"], f"{path} [x_test]")
        y_te = _check_labels(arrays["y_test"], k, f"{path} [y_test]")
        _check_lengths(x_te, y_te, f"{path} [x_test/y_test]")
        if x_te.shape[1:] != x_tr.shape[1:]:
            raise ArchtuneError(
                f"{path}: x_test images are {x_te.shape[1:]} (C, H, W) but "
                f"x_train images are {x_tr.shape[1:]}; expected the same"
            )
    else:
        tr, te = _stratified_test_split(y_tr, test_fraction, seed, str(path))
        x_tr, x_te, y_tr, y_te = x_tr[tr], x_tr[te], y_tr[tr], y_tr[te]
    if classes is None:
        n = int(max(y_tr.max(), y_te.max() if y_te.size else 0)) + 1
        classes = [str(i) for i in range(n)]
    return Dataset(
        name=path.stem,
        classes=classes,
        x_train=_conform(torch.from_numpy(x_tr), size, channels),
        y_train=torch.from_numpy(y_tr),
        x_test=_conform(torch.from_numpy(x_te), size, channels),
        y_test=torch.from_numpy(y_te),
        source=str(path.resolve()),
    )


# ---------------------------------------------------------------- image folders


def _class_folders(root: Path) -> list[Path]:
    if not root.is_dir():
        raise ArchtuneError(f"{root}: not a folder; expected one sub-folder per class")
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and p.suffix.lower() in IMAGE_EXTENSIONS
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
                f"({', '.join(IMAGE_EXTENSIONS)})"
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
                f"({', '.join(IMAGE_EXTENSIONS)})"
            )
        files += found
        labels += [classes.index(folder.name)] * len(found)
    return classes, files, labels


def _probe(path: Path) -> tuple[tuple[int, int], str]:
    """(height, width) and mode of an image file, reading only its header."""
    try:
        with Image.open(path) as im:
            return (im.height, im.width), im.mode
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        raise ArchtuneError(
            f"{path}: unreadable image ({e}); expected a PNG/JPEG/BMP/WebP file"
        ) from None


def _read_images(files: list[Path], size: tuple[int, int], channels: int) -> np.ndarray:
    h, w = size
    mode = "L" if channels == 1 else "RGB"
    out = np.empty((len(files), h, w, channels), dtype=np.uint8)
    for i, path in enumerate(files):
        try:
            with Image.open(path) as im:
                im.load()
                if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F") and mode == "L":
                    a = np.asarray(im, dtype=np.float64)
                    top = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
                    im2 = Image.fromarray(np.clip(a / top * 255, 0, 255).round().astype(np.uint8))
                else:
                    im2 = im.convert(mode)
                if im2.size != (w, h):
                    im2 = im2.resize((w, h), Image.Resampling.BILINEAR)
                out[i] = np.asarray(im2, dtype=np.uint8).reshape(h, w, channels)
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
            raise ArchtuneError(
                f"{path}: unreadable image ({e}); expected a PNG/JPEG/BMP/WebP file"
            ) from None
    return out.transpose(0, 3, 1, 2).copy()


def _load_image_folder(
    root: Path, size: tuple[int, int] | None, channels: int | None, test_fraction: float, seed: int
) -> Dataset:
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
                "%s: %d image(s) not %dx%d (the most common size) will be resized",
                root,
                n_other,
                size[0],
                size[1],
            )
    if channels is None:
        channels = 1 if all(m in _GRAY_MODES for _, m in probes) else 3
    log.info("%s: reading %d images as %d x %d x %d", root, len(all_files), channels, *size)
    x = _read_images(all_files, size, channels)
    y = np.asarray(tr_labels + te_labels, dtype=np.int64)
    n_tr = len(tr_files)
    if has_splits:
        x_tr, y_tr, x_te, y_te = x[:n_tr], y[:n_tr], x[n_tr:], y[n_tr:]
    else:
        tr, te = _stratified_test_split(y, test_fraction, seed, str(root))
        x_tr, y_tr, x_te, y_te = x[tr], y[tr], x[te], y[te]
    return Dataset(
        name=root.resolve().name,
        classes=classes,
        x_train=torch.from_numpy(np.ascontiguousarray(x_tr)),
        y_train=torch.from_numpy(np.ascontiguousarray(y_tr)),
        x_test=torch.from_numpy(np.ascontiguousarray(x_te)),
        y_test=torch.from_numpy(np.ascontiguousarray(y_te)),
        source=str(root.resolve()),
    )
