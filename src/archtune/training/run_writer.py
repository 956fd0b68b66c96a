"""The one writer of a run folder while it trains: spec.yaml, env.json, metrics.json,
history.csv, grad_norms.csv and best.pt (every file written atomically)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .._process import this_process
from ..errors import ArchtuneError
from ..models import ArchtuneNet
from ..specs import Spec
from .runs import save_checkpoint, write_csv, write_json, write_text

BEST_KEYS = ("train_loss", "train_accuracy", "dev_loss", "dev_accuracy")
FLUSH_S = 1.0  # rewrite the per-epoch files at most this often (and at every best epoch and the
# end): each rewrite lists every epoch, so thousands of sub-second epochs would otherwise spend
# a growing share of their time rewriting them


class RunWriter:
    """Owns a run folder being trained: its environment, metrics and per-epoch rows."""

    def __init__(self, path: Path, spec: Spec, env: dict[str, Any], metrics: dict[str, Any]):
        if (path / "metrics.json").exists():
            raise ArchtuneError(f"{path}: already holds a run; choose another --run-dir")
        self.path, self.spec, self.env = path, spec, env
        self.metrics: dict[str, Any] = {
            "status": "running", **metrics, "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "epochs_run": 0, "best_epoch": None, "stopped_early": False,
            "process": this_process(),  # so a run left 'running' by a killed process reads as died
        }
        self.history: list[dict[str, float]] = []
        self.grads: list[dict[str, float]] = []
        self._flushed = 0.0  # time.monotonic() of the last rewrite of the per-epoch files
        self._best_unwritten = False  # a best epoch whose row is not in history.csv yet
        path.mkdir(parents=True, exist_ok=True)
        write_text(path / "spec.yaml", spec.to_yaml())
        write_json(path / "env.json", env)
        write_json(path / "metrics.json", self.metrics)

    @classmethod
    def reopen(cls, path: Path, spec: Spec, env: dict[str, Any], metrics: dict[str, Any],
               history: list[dict[str, float]]) -> RunWriter:
        """The writer of a paused run folder, continued in a new process: its epochs after
        ``history`` (trained after the pause was saved) are dropped."""
        writer = cls.__new__(cls)
        writer.path, writer.spec, writer.env = path, spec, env
        writer.metrics = metrics | {"status": "running", "process": this_process(),
                                    "epochs_run": len(history)}
        writer.history, writer.grads = list(history), []
        writer._flushed, writer._best_unwritten = 0.0, False
        write_text(path / "spec.yaml", spec.to_yaml())
        write_json(path / "env.json", env)
        writer._flush()
        return writer

    def respec(self, spec: Spec) -> None:
        """The run's spec changed while it trains (a time budget re-planned its epochs)."""
        self.spec = spec
        write_text(self.path / "spec.yaml", spec.to_yaml())

    def update_env(self, **changes: Any) -> None:
        self.env.update(changes)
        write_json(self.path / "env.json", self.env)

    def update_metrics(self, **changes: Any) -> None:
        self.metrics.update(changes)
        write_json(self.path / "metrics.json", self.metrics)

    def best(self, model: ArchtuneNet, classes: list[str], row: dict[str, float]) -> None:
        """Record ``row``'s epoch as the best so far and checkpoint its weights."""
        save_checkpoint(self.path / "best.pt", model, self.spec, classes, int(row["epoch"]))
        self.metrics.update(best_epoch=int(row["epoch"]), best={k: row[k] for k in BEST_KEYS})
        write_json(self.path / "metrics.json", self.metrics)  # at once: the file names its checkpoint
        self._best_unwritten = True

    def epoch(self, row: dict[str, float], grad_norms: dict[str, float], seconds: float) -> None:
        """Append an epoch's row (and gradient norms); the files that list them are rewritten
        with it unless they were less than FLUSH_S ago and this is not a best epoch (a run
        killed outright loses at most that second of rows; ``finish`` writes them all)."""
        self.history.append(row)
        if grad_norms:
            self.grads.append({"epoch": row["epoch"], **grad_norms})
        self.metrics.update(epochs_run=int(row["epoch"]), train_seconds=seconds)
        if self._best_unwritten or time.monotonic() - self._flushed >= FLUSH_S:
            self._flush()

    def _flush(self) -> None:
        """Rewrite history.csv, grad_norms.csv and metrics.json (metrics last: the epochs it
        counts are in the files before it says so)."""
        if self.history:
            write_csv(self.path / "history.csv", self.history)
        if self.grads:
            write_csv(self.path / "grad_norms.csv", self.grads)
        write_json(self.path / "metrics.json", self.metrics)
        self._flushed, self._best_unwritten = time.monotonic(), False

    def finish(self, seconds: float) -> None:
        self.metrics.update(finished=time.strftime("%Y-%m-%dT%H:%M:%S"), train_seconds=seconds)
        self._flush()
