"""Hooks into training: objects told when a run starts, after each epoch and when it ends.

Experiment loggers (:mod:`archtune.tracking`) and the notebook display
(:mod:`archtune.training.live`) are callbacks; ``train(callbacks=[...])`` takes any object with
some of these methods::

    class Callback:
        def on_train_start(self, run_dir, spec, info): ...      # info: metrics.json + env
        def on_epoch_end(self, epoch, row, grad_norms): ...     # row: the history.csv row
        def on_train_end(self, run_dir, metrics): ...           # metrics.json, status included

An exception raised by ``on_train_start`` or ``on_epoch_end`` stops training (the run folder
is finalised first), as with ``epoch_callback``; one raised by ``on_train_end`` is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .specs import Spec

log = logging.getLogger(__name__)


class Callback:
    """Base class with do-nothing hooks; subclass and override the ones you need."""

    def on_train_start(self, run_dir: Path, spec: Spec, info: dict[str, Any]) -> None:
        """The run folder exists and holds spec.yaml, env.json and metrics.json."""

    def on_epoch_end(self, epoch: int, row: dict[str, float], grad_norms: dict[str, float]) -> None:
        """After each epoch: ``row`` has epoch, lr, train/dev loss and accuracy, seconds;
        ``grad_norms`` the mean gradient norm of each layer (empty when not measured)."""

    def on_train_end(self, run_dir: Path, metrics: dict[str, Any]) -> None:
        """The run folder is final; ``metrics['status']`` is complete, interrupted or stopped."""


class CallbackList(Callback):
    """Several callbacks called in order."""

    def __init__(self, callbacks: Sequence[Any] = ()):
        self.callbacks = list(callbacks)

    def on_train_start(self, run_dir: Path, spec: Spec, info: dict[str, Any]) -> None:
        for cb in self.callbacks:
            if hasattr(cb, "on_train_start"):
                cb.on_train_start(run_dir, spec, info)

    def on_epoch_end(self, epoch: int, row: dict[str, float], grad_norms: dict[str, float]) -> None:
        for cb in self.callbacks:
            if hasattr(cb, "on_epoch_end"):
                cb.on_epoch_end(epoch, row, grad_norms)

    def on_train_end(self, run_dir: Path, metrics: dict[str, Any]) -> None:
        for cb in self.callbacks:
            if hasattr(cb, "on_train_end"):
                try:
                    cb.on_train_end(run_dir, metrics)
                except Exception as err:  # the run folder is already safe; report and go on
                    log.warning("%s at the end of the run failed: %s", type(cb).__name__, err)
