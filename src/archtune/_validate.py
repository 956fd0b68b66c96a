"""Small validators shared by config dataclasses and layer specs."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal, get_args, get_origin

from .errors import ArchtuneError, short, unknown


def kind_of(value: Any) -> str:
    """What a value is, in words, for error messages ('a list', 'the text 'abc'', ...)."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, str):
        return f"the text {short(value)}"
    return f"{short(value)}"


def check_keys(data: dict[str, Any], allowed: typing.Iterable[str], where: str) -> None:
    """Raise for the first key of ``data`` not in ``allowed``, with a did-you-mean."""
    allowed = list(allowed)
    for key in data:
        if key not in allowed:
            raise unknown("key", str(key), allowed, where)


def coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check ``value`` against a simple type annotation; ints are accepted for floats."""
    origin = get_origin(annotation)
    if origin is Literal:
        choices = get_args(annotation)
        if value not in choices:
            raise unknown("value", str(value), [str(c) for c in choices], where)
        return value
    if origin in (types.UnionType, typing.Union):
        args = get_args(annotation)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, where)
            except ArchtuneError as err:
                errors.append(str(err))
        if len(errors) == 1:
            raise ArchtuneError(errors[0])
        options = [o for a in args if a is not type(None) for o in _describe(a)]
        expected = ", ".join(options[:-1]) + " or " + options[-1]
        raise ArchtuneError(f"{where}: expected {expected}, got {short(value)}")
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ArchtuneError(f"{where}: expected a list, got {short(value)}")
        (inner, *_) = get_args(annotation) or (Any,)
        return [coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ArchtuneError(f"{where}: expected a mapping, got {short(value)}")
        inner = (get_args(annotation) or (Any, Any))[1]
        return {k: coerce(v, inner, f"{where}.{k}") for k, v in value.items()}
    if annotation is Any:
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise ArchtuneError(f"{where}: expected true or false, got {short(value)}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ArchtuneError(f"{where}: expected an integer, got {short(value)}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ArchtuneError(f"{where}: expected a number, got {short(value)}")
        try:
            return float(value)
        except OverflowError:
            raise ArchtuneError(f"{where}: {short(value)} is too large for a number") from None
    if annotation is str:
        if not isinstance(value, str):
            raise ArchtuneError(f"{where}: expected a string, got {short(value)}")
        return value
    if dataclasses.is_dataclass(annotation):
        return from_dict(annotation, value, where)
    return value


def _describe(annotation: Any) -> list[str]:
    """The values an annotation allows, in words: ["true", "false"], ["an integer"], ..."""
    if get_origin(annotation) is Literal:
        return [str(c) for c in get_args(annotation)]
    names = {bool: ["true", "false"], int: ["an integer"], float: ["a number"], str: ["a string"]}
    return names.get(annotation, ["a list" if get_origin(annotation) in (list, tuple) else str(annotation)])


def from_dict(cls: Any, data: Any, where: str) -> Any:
    """Build dataclass ``cls`` from a dict, checking keys and types; then run its ``validate``."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ArchtuneError(f"{where}: expected a mapping of keys to values, got {kind_of(data)}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    check_keys(data, names, where)
    kwargs = {k: coerce(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if validate is not None:
        validate(where)
    return obj


def require(cond: bool, where: str, message: str) -> None:
    if not cond:
        raise ArchtuneError(f"{where}: {message}")


def check_fields(data: dict[str, Any], fields: dict[str, Any], where: str,
                 required: typing.Iterable[str] = ()) -> None:
    """Check that ``data`` (read from a file) has the ``required`` keys and that each key of
    ``fields`` present has its annotated type; other keys are left alone."""
    for key in required:
        if key not in data:
            raise ArchtuneError(f"{where}: missing '{key}'")
    for key, annotation in fields.items():
        if key in data:
            coerce(data[key], annotation, f"{where}: {key}")
