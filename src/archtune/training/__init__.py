"""Training: optimisers, schedules, augmentation, the loop and run folders."""

from .augment import augment
from .loop import predict_log_probs, predict_logits
from .optim import lr_factor, make_optimizer, make_scheduler
from .runs import (
    Run,
    UnreadableRun,
    list_runs,
    load_checkpoint,
    load_run,
    run_html,
    save_checkpoint,
    scan_runs,
)
from .session import Session, measure
from .trainer import StopTraining, check_compatible, load_splits, train

__all__ = [
    "Run", "Session", "StopTraining", "measure", "UnreadableRun", "augment", "check_compatible", "list_runs", "load_checkpoint", "load_run",
    "load_splits", "lr_factor", "make_optimizer", "make_scheduler", "predict_log_probs",
    "predict_logits", "run_html", "save_checkpoint", "scan_runs", "train",
]
