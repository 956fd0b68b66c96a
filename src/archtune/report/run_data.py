"""What a run report shows, gathered once: the run, its dev evaluation, data and model."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import to_dict
from ..data import Dataset, Splits, load_data
from ..errors import ArchtuneError
from ..evaluate import dev_result, evaluate
from ..models import ArchtuneNet
from ..training.runs import Run, load_run
from . import data as plot_data
from .html import num, pct

DataCache = dict[tuple[Any, ...], tuple[Dataset, Splits]]


@dataclass
class RunData:
    """A run plus what its report shows that must be computed (dev evaluation, data, model)."""

    run: Run
    curves: plot_data.Curves
    grads: plot_data.GradNorms | None
    dev_eval: dict[str, Any] | None = None
    test_eval: dict[str, Any] | None = None
    splits: Splits | None = None
    dataset: Dataset | None = None
    model: ArchtuneNet | None = None
    missing: list[str] = field(default_factory=list)  # why some figures are left out

    @property
    def name(self) -> str:
        return self.run.name


def require_history(run: Run) -> None:
    """Raise when a run has no epoch recorded yet (nothing to report)."""
    if not run.history_rows:
        raise ArchtuneError(
            f"{run.path}: the run has no training history yet (status '{run.status}', "
            f"{run.metrics.get('epochs_run', 0)} epochs, no rows in history.csv); "
            f"report on it after its first epoch")


def run_splits(run: Run, data_dir: str | None = None, cache: DataCache | None = None
               ) -> tuple[Dataset, Splits]:
    """The run's data set and its train/dev splits, rebuilt as training made them."""
    key = (data_dir, json.dumps(to_dict(run.spec.data), sort_keys=True))
    if cache is not None and key in cache:
        return cache[key]
    data = load_data(run.spec.data, data_dir=data_dir)
    got = data.dataset, data.splits
    if cache is not None:
        cache[key] = got
    return got


def collect(run: Run | str | Path, *, data_dir: str | None = None, device: str | None = None,
            with_data: bool = True, cache: DataCache | None = None) -> RunData:
    """Load a run and compute what its report needs; figures needing data are skipped (with a
    note) when the data set or the checkpoint cannot be read."""
    run = run if isinstance(run, Run) else load_run(run)
    require_history(run)
    rd = RunData(run, plot_data.learning_curves(run.history_rows, run.metrics), plot_data.grad_norms(run.grad_norms),
                 test_eval=run.evaluation("test"))
    if not (run.path / "best.pt").is_file():
        rd.missing.append("the run has no checkpoint (best.pt)")
        return rd
    if not with_data:
        rd.dev_eval = run.evaluation("dev")
        return rd
    try:
        rd.dataset, rd.splits = run_splits(run, data_dir, cache)
    except ArchtuneError as err:
        rd.missing.append(f"its data could not be loaded ({err})")
        rd.dev_eval = run.evaluation("dev")
        return rd
    rd.dev_eval = evaluate(run, "dev", data=rd.splits.dev, device=device, save=False)
    rd.model = run.load_model("cpu").to(memory_format=torch.contiguous_format).eval()
    return rd


def dev_accuracy(rd: RunData) -> float:
    """The run's one dev accuracy: the kept weights evaluated as ``evaluate`` does (this
    report's dev evaluation where it made one, else the number saved with the run)."""

    return float(rd.dev_eval["accuracy"]) if rd.dev_eval else float(dev_result(rd.run)["accuracy"])


def overview_cards(rd: RunData) -> list[tuple[str, str]]:
    m = rd.run.metrics
    items = [("dev accuracy", pct(dev_accuracy(rd))),
             ("best epoch", f"{m.get('best_epoch')} of {m.get('epochs_run')}"),
             ("parameters", num(m.get("params"))), ("FLOPs / image", num(m.get("flops"))),
             ("training time", f"{m.get('train_seconds', 0):.1f} s")]
    if rd.test_eval:
        items.insert(1, ("test accuracy", pct(rd.test_eval["accuracy"])))
    return items


def mistake_test_images(rd: RunData) -> np.ndarray | None:
    """Test images of the saved test evaluation's most confident mistakes (no evaluation)."""
    if rd.test_eval is None or rd.dataset is None:
        return None
    idx = [w.get("source_index", w["index"]) for w in rd.test_eval["most_confident_wrong"]]
    if not idx:
        return np.zeros((0, *rd.dataset.input_shape), dtype=np.float32)
    return rd.dataset.x_test[torch.tensor(idx)].float().div(255).numpy()
