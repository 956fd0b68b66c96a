"""Who watches one ``train()`` call: the caller's callbacks, the experiment loggers and, in a
notebook, the live table of epochs (kept apart from :mod:`.callbacks`, which those import)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .callbacks import CallbackList


def run_callbacks(callbacks: Sequence[Any], loggers: Any, mlflow_uri: str | None,
                  progress: bool) -> CallbackList:
    """The callbacks of one ``train()`` call: the caller's, the experiment loggers named by
    ``loggers`` ("tensorboard", "mlflow" or a :class:`archtune.tracking.Tracking`) and, with
    ``progress`` in a notebook, the live table of epochs."""
    out = list(callbacks)
    if loggers or mlflow_uri:
        from ..tracking import resolve, run_loggers

        out += run_loggers(resolve(loggers, mlflow_uri))
    if progress:
        from ..notebook import in_notebook

        if in_notebook():
            from ..notebook.live import EpochTable

            out.append(EpochTable())
    return CallbackList(out)
