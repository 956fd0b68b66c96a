"""User-facing errors: everything a user can get wrong raises ArchtuneError (CLI exit code 2)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ArchtuneError(Exception):
    """A problem with the user's input (spec, data, run folder, ...), explained in its message."""


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """Return ' (did you mean 'x'?)' for the closest option, or '' when nothing is close."""
    opts = list(options)
    lowered = {o.lower(): o for o in opts}
    match = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean '{lowered[match[0]]}'?)" if match else ""


def unknown(kind: str, word: str, options: Iterable[str], where: str = "") -> ArchtuneError:
    """Build the standard 'unknown X' error with a close-match suggestion and the allowed values."""
    opts = sorted(options)
    prefix = f"{where}: " if where else ""
    return ArchtuneError(
        f"{prefix}unknown {kind} '{word}'{did_you_mean(word, opts)}; expected one of: {', '.join(opts)}"
    )
