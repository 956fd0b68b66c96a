"""The built-in YAML files shipped in a package's ``builtin/`` folder (specs, spaces, plans)."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from functools import cache
from importlib import resources


@cache
def builtin_texts(package: str) -> dict[str, str]:
    """{file name without .yaml: its text} of ``package``'s ``builtin/`` folder."""
    return {entry.name.removesuffix(".yaml"): entry.read_text()
            for entry in resources.files(package).joinpath("builtin").iterdir()
            if entry.name.endswith(".yaml")}


def matching(names: Iterable[str], pattern: str) -> list[str]:
    """The names matching a glob pattern, sorted."""
    return sorted(n for n in names if fnmatch.fnmatch(n, pattern))
