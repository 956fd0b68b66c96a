"""Reading the text files archtune is given or reads back (specs, spaces, run and study files).

Each reader gives text or data, or raises a one-line :class:`ArchtuneError` naming the file and
what is wrong: a missing or oversized file, an encoding other than UTF-8 (UTF-16/32 with a
byte-order mark are read), binary data, invalid JSON/YAML, nesting deeper than
:data:`MAX_DEPTH` (checked *before* parsing, so the parsers never recurse that deep), integers
too long to convert, and YAML aliases that expand to more than :data:`MAX_NODES` values
("billion laughs").
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from ._validate import check_fields, kind_of
from .errors import ArchtuneError

MAX_BYTES = 16 * 2**20  # larger spec, space or run files are refused
MAX_DEPTH = 64  # deepest nesting of lists and mappings (a space needs about 10)
MAX_NODES = 1_000_000  # most values a file may hold once YAML aliases are expanded
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))
_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')
_SURROGATE = re.compile("[\ud800-\udfff]")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def exists(path: str | Path) -> bool:
    """``Path.exists()``, False for a name no file can have (too long for the system)."""
    try:
        return Path(path).exists()
    except (OSError, ValueError):
        return False


def is_file(path: str | Path) -> bool:
    """``Path.is_file()``, False for a name no file can have (too long for the system)."""
    try:
        return Path(path).is_file()
    except (OSError, ValueError):
        return False


def write_text(path: str | Path, text: str, what: str = "file") -> None:
    """Write ``text`` to ``path``; one clear error when its folder is missing or not a folder."""
    try:
        Path(path).write_text(text)
    except OSError as err:
        raise ArchtuneError(f"{path}: cannot write the {what}: {err.strerror or err}") from None


def read_text(path: str | Path, what: str = "file") -> str:
    """The text of ``path``, decoded strictly (UTF-8 unless a byte-order mark says otherwise)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise ArchtuneError(f"{path}: not a file")
        if size > MAX_BYTES:
            raise ArchtuneError(f"{path}: {size:,} bytes is too large for a {what} "
                                f"(at most {MAX_BYTES:,})")
        data = path.read_bytes()
    except OSError as err:
        raise ArchtuneError(f"{path}: cannot read the {what}: {err.strerror or err}") from None
    return decode(data, str(path))


def decode(data: bytes, where: str) -> str:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError as err:
                raise ArchtuneError(f"{where}: not valid {encoding.upper()} text "
                                    f"({err.reason} at byte {err.start})") from None
    if b"\x00" in data:
        raise ArchtuneError(f"{where}: binary data (NUL bytes), not UTF-8 text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ArchtuneError(f"{where}: not UTF-8 text (byte 0x{data[err.start]:02x} at offset "
                            f"{err.start}); save the file as UTF-8") from None


def check_nesting(data: Any, where: str) -> None:
    """Refuse data nested deeper than MAX_DEPTH or holding more than MAX_NODES values
    (shared or self-referencing containers, as YAML aliases make, are counted each time), and
    text that is not Unicode (lone surrogates, which JSON's \\ud800 escapes can make)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    count = 0
    while stack:
        value, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise ArchtuneError(f"{where}: more than {MAX_NODES:,} values (YAML aliases that "
                                f"expand too far?)")
        if isinstance(value, str):
            if _SURROGATE.search(value):
                raise ArchtuneError(f"{where}: text with an unpaired surrogate escape "
                                    f"(\\ud800-\\udfff), which is not a character")
            continue
        if isinstance(value, dict):
            children: Any = [*value.keys(), *value.values()]
        elif isinstance(value, list | tuple):
            children = value
        else:
            continue
        if depth > MAX_DEPTH:
            raise ArchtuneError(f"{where}: nested deeper than {MAX_DEPTH} levels")
        stack.extend((child, depth + 1) for child in children)


def _too_deep(where: str) -> ArchtuneError:
    return ArchtuneError(f"{where}: nested deeper than {MAX_DEPTH} levels")


def _yaml_problem(err: yaml.YAMLError) -> str:
    if isinstance(err, yaml.MarkedYAMLError) and err.problem:
        mark = err.problem_mark
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        return f"{err.problem}{at}"
    return " ".join(str(err).split())


def _value_problem(err: Exception) -> str:
    if "integer string conversion" in str(err):
        return f"an integer with more than {sys.get_int_max_str_digits():,} digits"
    return " ".join(str(err).split())[:200]


def parse_yaml(text: str, where: str) -> Any:
    """YAML text to data (safe loader), depth checked on the event stream before building it."""
    try:
        depth = 0
        for event in yaml.parse(text, Loader=_LOADER):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise _too_deep(where)
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
        data = yaml.load(text, Loader=_LOADER)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as err:
        raise ArchtuneError(f"{where}: not valid YAML: {_yaml_problem(err)}") from None
    except (ValueError, OverflowError, RecursionError) as err:  # e.g. a 5,000-digit integer
        raise ArchtuneError(f"{where}: not valid YAML: {_value_problem(err)}") from None
    check_nesting(data, where)
    return data


def parse_json(text: str, where: str) -> Any:
    """JSON text to data, depth checked on the brackets before parsing."""
    depth = 0
    for match in _JSON_TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise _too_deep(where)
        elif token in "]}":
            depth -= 1
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ArchtuneError(f"{where}: not valid JSON: {err.msg} (line {err.lineno}, column "
                            f"{err.colno})") from None
    except (ValueError, RecursionError) as err:  # e.g. a 5,000-digit integer
        raise ArchtuneError(f"{where}: not valid JSON: {_value_problem(err)}") from None
    check_nesting(data, where)
    return data


def read_data(path: str | Path, what: str = "file") -> Any:
    """A JSON (``.json``) or YAML (any other suffix) file's data."""
    path = Path(path)
    text = read_text(path, what)
    return parse_json(text, str(path)) if path.suffix == ".json" else parse_yaml(text, str(path))


def read_object(path: str | Path, fields: dict[str, Any], required: tuple[str, ...] = (),
                what: str = "file") -> dict[str, Any]:
    """A JSON/YAML file holding a mapping whose ``fields`` (name -> type annotation) have the
    right types when present and whose ``required`` names are present."""
    data = read_data(path, what)
    if not isinstance(data, dict):
        raise ArchtuneError(f"{path}: expected a mapping of names to values, got {kind_of(data)}")
    check_fields(data, fields, str(path), required)
    return data


def read_numeric_csv(path: str | Path, required: tuple[str, ...] = ()) -> list[dict[str, float]]:
    """Rows of a CSV file of numbers with a header (empty cells and ``nan`` read as NaN).
    A short row (a truncated file) or text where a number belongs is an error."""
    path = Path(path)
    rows: list[dict[str, float]] = []
    reader = csv.reader(io.StringIO(read_text(path, "CSV file"), newline=""))
    try:
        header = next(reader, None)
        if header is None:
            return rows
        missing = [c for c in required if c not in header]
        if missing:
            raise ArchtuneError(f"{path}: no column {missing[0]!r} (columns: "
                                f"{', '.join(header)[:200]})")
        for line, cells in enumerate(reader, start=2):
            if cells:
                rows.append(_numbers(header, cells, f"{path}: line {line}"))
    except csv.Error as err:
        raise ArchtuneError(f"{path}: not a readable CSV file: {err}") from None
    return rows


def _numbers(header: list[str], cells: list[str], where: str) -> dict[str, float]:
    if len(cells) != len(header):
        raise ArchtuneError(f"{where} has {len(cells)} values, the header {len(header)} "
                            f"(a truncated file?)")
    row = {}
    for name, cell in zip(header, cells, strict=True):
        try:
            row[name] = float(cell) if cell.strip() else float("nan")
        except ValueError:
            raise ArchtuneError(f"{where}, column {name!r}: expected a number, got "
                                f"{cell[:40]!r}") from None
    return row
