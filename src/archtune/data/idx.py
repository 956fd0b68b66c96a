"""Read and write IDX files (the MNIST / Fashion-MNIST format), gzip-compressed or raw.

An IDX file is a 4-byte magic number ``0x0000TTDD`` (``TT`` the element type, ``DD`` the
number of dimensions), ``DD`` big-endian uint32 sizes, then the elements, big-endian.
Images are ``0x00000803`` (uint8, N x rows x cols) and labels ``0x00000801`` (uint8, N).
"""

from __future__ import annotations

import gzip
import logging
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from archtune.errors import ArchtuneError

log = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b"

# IDX element-type code -> big-endian numpy dtype
_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES: dict[str, int] = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}
_TYPE_NAMES = {
    0x08: "uint8",
    0x09: "int8",
    0x0B: "int16",
    0x0C: "int32",
    0x0D: "float32",
    0x0E: "float64",
}


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ArchtuneError(f"{path}: file not found (expected an IDX file)") from None
    except IsADirectoryError:
        raise ArchtuneError(f"{path}: is a folder, expected an IDX file") from None
    except OSError as e:
        raise ArchtuneError(f"{path}: cannot read file: {e.strerror or e}") from None
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise ArchtuneError(
            f"{path}: corrupt gzip data ({e}); expected a gzip-compressed IDX file "
            f"(the download may be incomplete: delete the file and fetch it again)"
        ) from None


def read_idx(path: str | os.PathLike[str], *, ndim: int | None = None) -> np.ndarray:
    """Read an IDX file (gzip-compressed or raw, detected by its first bytes) into an array.

    ``ndim``, when given, is the number of dimensions the caller expects (3 for an image file,
    1 for a label file); a file with another count is an error. The array is native-endian
    and writable. Every problem (bad magic number, truncated data, corrupt gzip, ...) raises
    :class:`ArchtuneError` naming the file.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise ArchtuneError(
            f"{path}: too short to be an IDX file ({len(data)} bytes; expected at least a "
            f"4-byte header)"
        )
    zero, type_code, dims = struct.unpack(">HBB", data[:4])
    magic = int.from_bytes(data[:4], "big")
    if zero != 0 or type_code not in _TYPES or dims == 0:
        raise ArchtuneError(
            f"{path}: not an IDX file (magic number 0x{magic:08X}; expected 0x00000803 for "
            f"images or 0x00000801 for labels)"
        )
    if ndim is not None and dims != ndim:
        what = {1: "a label file", 3: "an image file"}.get(ndim, f"{ndim}-dimensional data")
        raise ArchtuneError(
            f"{path}: IDX file has {dims} dimension(s) (magic 0x{magic:08X}); expected {what} "
            f"with {ndim} dimension(s) (magic 0x{(type_code << 8) | ndim:08X})"
        )
    header = 4 + 4 * dims
    if len(data) < header:
        raise ArchtuneError(
            f"{path}: truncated IDX header: expected {header} bytes for {dims} dimension(s), "
            f"file has {len(data)} bytes"
        )
    shape = struct.unpack(f">{dims}I", data[4:header])
    dtype = _TYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header
    if actual != expected:
        problem = "truncated" if actual < expected else "has trailing bytes"
        dims_txt = " x ".join(str(s) for s in shape)
        raise ArchtuneError(
            f"{path}: IDX file {problem}: header declares {dims_txt} {_TYPE_NAMES[type_code]} "
            f"values = {expected} data bytes ({header + expected} bytes in all, uncompressed), "
            f"but the file holds {actual} data bytes ({len(data)} bytes in all)"
        )
    arr = np.frombuffer(data, dtype=dtype, count=expected // dtype.itemsize, offset=header)
    out = arr.reshape(shape).astype(dtype.newbyteorder("="), copy=True)
    log.debug("read %s: %s %s", path, out.dtype, out.shape)
    return out


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file; gzip-compressed when ``path`` ends in ``.gz``.

    Supported element types: uint8, int8, int16, int32, float32, float64. Returns the path.
    """
    path = Path(path)
    arr = np.asarray(array)
    code = _CODES.get(arr.dtype.str[1:])
    if code is None:
        raise ArchtuneError(
            f"{path}: cannot write {arr.dtype} data as IDX; expected one of "
            f"{', '.join(_TYPE_NAMES.values())}"
        )
    if not 1 <= arr.ndim <= 255:
        raise ArchtuneError(f"{path}: cannot write a {arr.ndim}-dimensional array as IDX")
    header = struct.pack(">HBB", 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    body = np.ascontiguousarray(arr, dtype=_TYPES[code]).tobytes()
    payload = header + body
    if path.name.endswith(".gz"):
        payload = gzip.compress(payload, compresslevel=6, mtime=0)
    path.write_bytes(payload)
    return path
