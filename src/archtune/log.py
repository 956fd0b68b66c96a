"""Logging setup. Library modules only log; the CLI (or a notebook user) calls ``configure``."""

from __future__ import annotations

import logging
import os
import sys

from tqdm.auto import tqdm


class _TqdmHandler(logging.StreamHandler):
    """Write log lines (to stderr) through tqdm so they do not break a progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


def configure(verbosity: int = 0) -> None:
    """verbosity -1: warnings only; 0: info; 1+: debug."""
    level = logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG
    if verbosity < 1:  # MLflow's own INFO lines (creating its tables, ...) only with -v
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    root = logging.getLogger("archtune")
    root.handlers.clear()
    handler = _TqdmHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
