"""Registry of built-in specs (YAML files in ``specs/builtin``), timm-style."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from .._builtin import builtin_texts, matching
from .._files import exists
from ..errors import ArchtuneError, did_you_mean, short
from .schema import Spec, apply_overrides, read_spec_file, spec_from_dict


@cache
def _builtin() -> dict[str, dict[str, Any]]:
    return {d["name"]: d for d in map(yaml.safe_load, builtin_texts("archtune.specs").values())}


def list_specs(pattern: str = "*") -> list[str]:
    """Names of built-in specs matching a glob pattern, e.g. ``list_specs("cnn*")``."""
    return matching(_builtin(), pattern)


def raw_spec(name_or_path: str | Path | dict[str, Any]) -> dict[str, Any]:
    """The unvalidated dict of a built-in name, a YAML/JSON file or a dict."""
    if isinstance(name_or_path, dict):
        return dict(name_or_path)
    text = str(name_or_path)
    if text in _builtin():
        return dict(_builtin()[text])
    path = Path(text)
    if path.suffix in (".yaml", ".yml", ".json") or exists(path):
        return read_spec_file(path)
    raise ArchtuneError(
        f"unknown spec {short(text)}{did_you_mean(text, _builtin())}: not a built-in spec "
        f"({', '.join(list_specs())}) nor a .yaml/.json file")


def load_spec(name_or_path: str | Path | dict[str, Any], overrides: list[str] | None = None) -> Spec:
    """Load and validate a spec from a built-in name, a YAML/JSON file or a dict.

    ``overrides`` are ``section.key=value`` strings such as ``train.lr=0.05``.
    """
    raw = raw_spec(name_or_path)
    if overrides:
        raw = apply_overrides(raw, overrides)
    source = str(name_or_path) if not isinstance(name_or_path, dict) else "spec"
    return spec_from_dict(raw, source=source)
