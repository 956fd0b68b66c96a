"""Who watches one ``train()`` call: the caller's callbacks, the experiment loggers and, in a
notebook, the live table of epochs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._html import in_notebook
from ..callbacks import CallbackList
from ..tracking import resolve, run_loggers
from .live import EpochTable


def run_callbacks(callbacks: Sequence[Any], loggers: Any, mlflow_uri: str | None,
                  progress: bool) -> CallbackList:
    """The callbacks of one ``train()`` call: the caller's, the experiment loggers named by
    ``loggers`` ("tensorboard", "mlflow" or a :class:`archtune.tracking.Tracking`) and, with
    ``progress`` in a notebook, the live table of epochs."""
    out = list(callbacks)
    if loggers or mlflow_uri:
        out += run_loggers(resolve(loggers, mlflow_uri))
    if progress and in_notebook():
        out.append(EpochTable())
    return CallbackList(out)
