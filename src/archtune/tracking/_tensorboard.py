"""TensorBoard: one SummaryWriter per run or trial (``tensorboard --logdir runs``)."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..callbacks import Callback
from ._params import replanned_epochs, run_params

if TYPE_CHECKING:
    from ..specs import Spec

log = logging.getLogger(__name__)

# history.csv column -> TensorBoard tag
TAGS = {"train_loss": "loss/train", "dev_loss": "loss/dev", "train_accuracy": "accuracy/train",
        "dev_accuracy": "accuracy/dev", "lr": "lr", "seconds": "seconds_per_epoch"}


class TensorBoardLogger(Callback):
    """Scalars per epoch (step = epoch); at the end the hyperparameters with the final metrics.

    ``log_dir`` defaults to ``<run folder>/tensorboard``; ``hparams`` to the run's train and
    data settings (a search passes the trial's parameters).
    """

    def __init__(self, log_dir: str | Path | None = None, *,
                 hparams: dict[str, Any] | None = None):
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.hparams = hparams
        self.writer: Any = None

    def on_train_start(self, run_dir: Path, spec: Spec, info: dict[str, Any]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        folder = self.log_dir or run_dir / "tensorboard"
        self.writer = SummaryWriter(log_dir=str(folder))
        params = run_params(spec, info)
        if self.hparams is None:
            self.hparams = params
        else:
            self.hparams = {**self.hparams, "params_count": params["params_count"]}
        self.writer.add_text("run", f"run folder `{run_dir}`, spec `{spec.name}`")
        log.debug("TensorBoard events in %s", folder)

    def on_epoch_end(self, epoch: int, row: dict[str, float], grad_norms: dict[str, float]) -> None:
        if self.writer is None:
            return
        for key, tag in TAGS.items():
            if key in row:
                self.writer.add_scalar(tag, row[key], epoch)
        for layer, value in grad_norms.items():
            self.writer.add_scalar(f"grad_norm/{layer}", value, epoch)
        self.writer.flush()  # visible in a running TensorBoard at once

    def on_train_end(self, run_dir: Path, metrics: dict[str, Any]) -> None:
        if self.writer is None:
            return
        from torch.utils.tensorboard.summary import hparams

        epochs = replanned_epochs(metrics)  # the hparams carry the epochs trained, not planned
        if epochs is not None and self.hparams and "train.epochs" in self.hparams:
            self.hparams = {**self.hparams, "train.epochs": epochs}
        best = metrics.get("best") or {}
        final = {f"hparam/{k}": float(best[k]) for k in ("dev_accuracy", "dev_loss") if k in best}
        final["hparam/epochs"] = float(metrics.get("epochs_run", 0))
        final = {k: v for k, v in final.items() if not math.isnan(v)}
        exp, start, end = hparams(self.hparams or {}, final)
        writer = self.writer._get_file_writer()
        for summary in (exp, start, end):
            writer.add_summary(summary)
        step = metrics.get("epochs_run", 0)
        for key, value in final.items():
            self.writer.add_scalar(key, value, step)
        self.writer.close()
        self.writer = None
