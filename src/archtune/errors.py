"""User-facing errors: everything a user can get wrong raises ArchtuneError (CLI exit code 2)."""

from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Iterable
from typing import Any

# a longer run of non-space characters in a message (a pasted blob, a 5,000-digit number) is
# cut, so an error stays readable whatever it quotes
LONGEST_WORD = 200
_LONG_WORD = re.compile(rf"\S{{{LONGEST_WORD + 1},}}")


class ArchtuneError(Exception):
    """A problem with the user's input (spec, data, run folder, ...), explained in its message."""

    def __init__(self, message: object = "", *args: object) -> None:
        text = _LONG_WORD.sub(lambda m: m.group()[: LONGEST_WORD - 3] + "...", str(message))
        super().__init__(text, *args)


def short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters (and safe for integers too long to print)."""
    try:
        text = repr(value)
    except ValueError:  # int too long to convert to text
        return f"an integer of more than {sys.get_int_max_str_digits()} digits"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """Return ' (did you mean 'x'?)' for the closest option, or '' when nothing is close
    (options that are not text, such as a YAML key written as a number, are compared as text)."""
    lowered = {str(o).lower(): str(o) for o in options}
    match = difflib.get_close_matches(str(word).lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean '{lowered[match[0]]}'?)" if match else ""


def unknown(kind: str, word: str, options: Iterable[str], where: str = "") -> ArchtuneError:
    """Build the standard 'unknown X' error with a close-match suggestion and the allowed values."""
    opts = sorted(options)
    prefix = f"{where}: " if where else ""
    shown = word if len(word) <= 60 else word[:57] + "..."
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in shown)  # one line, always
    return ArchtuneError(
        f"{prefix}unknown {kind} '{shown}'{did_you_mean(word, opts)}; expected one of: {', '.join(opts)}"
    )
