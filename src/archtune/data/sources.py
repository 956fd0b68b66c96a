"""Registered IDX data sets (Fashion-MNIST, MNIST): where to find their files, how to fetch them.

Search order of :func:`locate` for a data set ``NAME``:

1. ``data_dir`` (the folder holding the four files, or a folder with a ``NAME/`` sub-folder
   holding them); when given and the files are not there, that is an error;
2. ``$ARCHTUNE_DATA/NAME/``;
3. the cache folder ``$XDG_CACHE_HOME/archtune/datasets/NAME/`` (``~/.cache/...`` by default);
4. a download into the cache folder from the official mirrors (tried in turn), md5-checked
   and renamed into place only when complete; a failure is one line naming each mirror's
   problem (refused, HTTP error, truncated, md5 mismatch).

Each file may be present gzip-compressed (the official ``.gz`` name) or uncompressed (the
same name without ``.gz``). Local files are checked for format when read, not for md5: only
downloads are md5-checked.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from archtune.errors import ArchtuneError, unknown

log = logging.getLogger(__name__)

ROLES = ("train_images", "train_labels", "test_images", "test_labels")
ENV_VAR = "ARCHTUNE_DATA"
DOWNLOAD_TIMEOUT_S = 30.0
_CHUNK = 1 << 16

# Monkeypatchable for tests: called as urlopen(url, timeout=...) and used as a context manager
# returning a file-like response (``read(n)``, optional ``headers``).
urlopen: Callable[..., Any] = urllib.request.urlopen


@dataclass(frozen=True)
class IdxSource:
    """A data set published as four IDX files."""

    name: str
    files: dict[str, str]  # role -> official file name (.gz)
    md5: dict[str, str]  # role -> md5 of the official .gz file
    mirrors: tuple[str, ...]  # base URLs, tried in turn
    classes: tuple[str, ...]  # class names in label order
    mirror_symmetric: bool = False  # a mirrored image keeps its class (clothing yes, digits no)

    def filenames(self) -> list[str]:
        return [self.files[r] for r in ROLES]


_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


def _md5(*sums: str) -> dict[str, str]:
    """The md5 sums of the four files, in the order of _MNIST_FILES."""
    return dict(zip(_MNIST_FILES, sums, strict=True))


SOURCES: dict[str, IdxSource] = {
    "fashion-mnist": IdxSource(
        name="fashion-mnist",
        files=dict(_MNIST_FILES),
        md5=_md5("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
                 "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"),
        mirrors=(  # the project's own files on GitHub, then its S3 *website* (plain HTTP only)
            "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        ),
        classes=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        mirror_symmetric=True,
    ),
    "mnist": IdxSource(
        name="mnist",
        files=dict(_MNIST_FILES),
        md5=_md5("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
                 "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"),
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        classes=tuple(str(i) for i in range(10)),
    ),
}


def get_source(name: str) -> IdxSource:
    """The registered IDX data set ``name``; unknown names raise with a did-you-mean hint."""
    try:
        return SOURCES[name]
    except KeyError:
        raise unknown("data set", name, SOURCES) from None


def mirror_symmetric(dataset: str) -> tuple[bool, str]:
    """Whether left-right flips keep the classes of data set ``dataset`` (a registered name, a
    .npz file or an image folder), and why: only registered data sets say so; others are
    assumed not to, since a flip that changes a class (digits, letters) costs accuracy."""
    source = SOURCES.get(dataset)
    if source is None:
        return False, (f"'{dataset}' is not a registered data set known to be mirror-symmetric "
                       f"(set train.augment.hflip: true if a mirrored image keeps its class)")
    if source.mirror_symmetric:
        return True, f"a mirrored {dataset} image keeps its class"
    return False, f"a mirrored {dataset} image can change class"


def cache_dir(name: str | None = None) -> Path:
    """``$XDG_CACHE_HOME/archtune/datasets[/name]`` (``~/.cache`` when XDG_CACHE_HOME is unset)."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    root = base / "archtune" / "datasets"
    return root / name if name else root


def find_files(folder: str | os.PathLike[str], name: str) -> dict[str, Path | None]:
    """Map each role of data set ``name`` to its file in ``folder`` (``.gz`` or not), or None."""
    src = get_source(name)
    folder = Path(folder)
    found: dict[str, Path | None] = {}
    for role in ROLES:
        gz = src.files[role]
        found[role] = next(
            (p for p in (folder / gz, folder / gz.removesuffix(".gz")) if p.is_file()), None
        )
    return found


def _missing(folder: Path, name: str) -> list[str]:
    files = find_files(folder, name)
    return [SOURCES[name].files[r] for r in ROLES if files[r] is None]


def _ways(name: str) -> str:
    return (f"give --data-dir DIR (the folder holding the files), set {ENV_VAR}=DIR (files in "
            f"DIR/{name}/) or put them in {cache_dir(name)}/ (each file .gz or not)")


def locate(
    name: str, data_dir: str | os.PathLike[str] | None = None, download: bool = True
) -> Path:
    """Return the folder holding the four IDX files of data set ``name``.

    See the module docstring for the search order. Raises :class:`ArchtuneError` listing the
    missing files and the ways to provide them when they cannot be found or fetched.
    """
    src = get_source(name)
    if data_dir is not None:
        d = Path(data_dir).expanduser()
        if not d.is_dir():
            raise ArchtuneError(
                f"{d}: data folder not found (--data-dir); expected a folder holding the "
                f"{name} files: {', '.join(src.filenames())}"
            )
        for cand in (d, d / name):
            if cand.is_dir() and not _missing(cand, name):
                log.info("%s: using files in %s", name, cand)
                return cand
        missing = _missing(d, name)
        raise ArchtuneError(
            f"{d}: missing {name} file(s): {', '.join(missing)} (--data-dir must be the folder "
            f"holding the files, gzip-compressed or not: {', '.join(src.filenames())})"
        )

    tried: list[str] = []
    env = os.environ.get(ENV_VAR)
    if env:
        cand = Path(env).expanduser() / name
        missing = _missing(cand, name) if cand.is_dir() else src.filenames()
        if not missing:
            log.info("%s: using files in %s (from $%s)", name, cand, ENV_VAR)
            return cand
        tried.append(f"{cand} (${ENV_VAR}) lacks {', '.join(missing)}")

    cache = cache_dir(name)
    missing = _missing(cache, name) if cache.is_dir() else src.filenames()
    if not missing:
        _warn_env(tried)
        log.info("%s: using cached files in %s", name, cache)
        return cache
    tried.append(f"the cache {cache} lacks {', '.join(missing)}")

    if download:
        try:
            download_dataset(name, cache)
            _warn_env(tried)
            return cache
        except ArchtuneError as e:
            tried.append(f"download failed: {e}")
    else:
        tried.append("download disabled")
    raise ArchtuneError(f"data set '{name}': files not found: {'; '.join(tried)}; {_ways(name)}")


def _warn_env(tried: list[str]) -> None:
    if tried and f"(${ENV_VAR})" in tried[0]:
        log.warning("%s; used the cache instead", tried[0])


def download_dataset(
    name: str,
    dest: str | os.PathLike[str] | None = None,
    *,
    mirrors: Sequence[str] | None = None,
    progress: bool = True,
) -> Path:
    """Download the files of ``name`` missing from ``dest`` (default: the cache folder).

    Each file is fetched from the mirrors in turn (``mirrors`` overrides the registered ones,
    e.g. a ``file://`` URL), md5-checked against the official sum, and written atomically.
    """
    src = get_source(name)
    dest = Path(dest) if dest is not None else cache_dir(name)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ArchtuneError(
            f"{dest}: cannot create the download folder: {e.strerror or e}"
        ) from None
    present = find_files(dest, name)
    for role in ROLES:
        if present[role] is None:
            download_file(
                src.files[role],
                src.md5[role],
                dest,
                mirrors=mirrors or src.mirrors,
                progress=progress,
            )
    return dest


def download_file(
    filename: str,
    md5: str,
    dest: Path,
    *,
    mirrors: Sequence[str],
    progress: bool = True,
) -> Path:
    """Fetch ``filename`` from the first mirror that serves it whole and with the expected md5.

    Written to a temporary file in ``dest`` and renamed into place only then; each failed
    mirror is logged at debug level, and if all fail one :class:`ArchtuneError` names each
    mirror's problem.
    """
    errors: list[str] = []
    for base in mirrors:
        url = base.rstrip("/") + "/" + filename
        try:
            return _fetch(url, filename, md5, dest, progress)
        except _MirrorError as e:
            problem = str(e)
        except urllib.error.HTTPError as e:
            problem = f"HTTP {e.code} {e.reason}"
        except urllib.error.URLError as e:
            problem = str(e.reason)
        except (OSError, ValueError, http.client.HTTPException) as e:  # timeouts, resets, ...
            problem = str(e) or type(e).__name__
        log.debug("download of %s failed: %s", url, problem)
        errors.append(f"{url}: {problem}")
    raise ArchtuneError(f"could not download {filename} ({'; '.join(errors) or 'no mirror'})")


class _MirrorError(Exception):
    """What a mirror sent was not the file: truncated, or another md5."""


def _fetch(url: str, filename: str, md5: str, dest: Path, progress: bool) -> Path:
    """Download one URL into ``dest/filename`` (atomically); raise when it is not the file."""
    log.debug("downloading %s", url)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{filename}.", suffix=".part", dir=dest)
    tmp = Path(tmp_name)
    try:
        digest, size = hashlib.md5(), 0
        with os.fdopen(fd, "wb") as out, urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as resp:
            headers = getattr(resp, "headers", None)
            length = headers.get("Content-Length") if headers is not None else None
            total = int(length) if length and str(length).isdigit() else None
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=filename,
                      disable=not progress, leave=False) as bar:
                while chunk := resp.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    bar.update(len(chunk))
        if total is not None and size != total:
            raise _MirrorError(f"truncated: got {size:,} of {total:,} bytes")
        if digest.hexdigest() != md5:
            raise _MirrorError(f"md5 mismatch (got {digest.hexdigest()}, expected {md5})")
        final = dest / filename
        os.replace(tmp, final)
        log.info("downloaded %s (%s bytes, md5 checked) from %s", final, f"{size:,}", url)
        return final
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
