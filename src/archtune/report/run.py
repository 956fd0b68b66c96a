"""The report of one run: everything measured about it gathered once, then laid out as HTML."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data import Dataset, Splits, load_dataset, split_dataset
from ..errors import ArchtuneError
from ..evaluate import capacity_verdict, evaluate
from ..models import ArchtuneNet
from ..training.runs import Run, load_run
from . import data as pd
from .html import Section, render_page, write_atomic

log = logging.getLogger(__name__)

DataCache = dict[tuple[Any, ...], tuple[Dataset, Splits]]


@dataclass
class RunData:
    """A run plus what its report shows that must be computed (dev evaluation, data, model)."""

    run: Run
    curves: pd.Curves
    grads: pd.GradNorms | None
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
    if not run.history:
        raise ArchtuneError(
            f"{run.path}: the run has no training history yet (status '{run.status}', "
            f"{run.metrics.get('epochs_run', 0)} epochs, no rows in history.csv); "
            f"report on it after its first epoch")


def run_splits(run: Run, data_dir: str | None = None, cache: DataCache | None = None
               ) -> tuple[Dataset, Splits]:
    """The run's data set and its train/dev splits, rebuilt as training made them."""
    d = run.spec.data
    key = (d.dataset, data_dir or d.data_dir, tuple(d.image_size or ()), d.channels,
           d.dev_fraction, d.split_seed, d.train_subset)
    if cache is not None and key in cache:
        return cache[key]
    ds = load_dataset(d.dataset, data_dir=data_dir or d.data_dir,
                      image_size=tuple(d.image_size) if d.image_size else None, channels=d.channels)
    got = ds, split_dataset(ds, dev_fraction=d.dev_fraction, seed=d.split_seed,
                            train_subset=d.train_subset)
    if cache is not None:
        cache[key] = got
    return got


def collect(run: Run | str | Path, *, data_dir: str | None = None, device: str | None = None,
            with_data: bool = True, cache: DataCache | None = None) -> RunData:
    """Load a run and compute what its report needs; figures needing data are skipped (with a
    note) when the data set or the checkpoint cannot be read."""
    run = run if isinstance(run, Run) else load_run(run)
    require_history(run)
    rd = RunData(run, pd.learning_curves(run.history, run.metrics), pd.grad_norms(run.grad_norms),
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
    from ..evaluate import dev_result

    return float(rd.dev_eval["accuracy"]) if rd.dev_eval else float(dev_result(rd.run)["accuracy"])


def overview_cards(rd: RunData) -> list[tuple[str, str]]:
    from .html import num, pct

    m = rd.run.metrics
    items = [("dev accuracy", pct(dev_accuracy(rd))),
             ("best epoch", f"{m.get('best_epoch')} of {m.get('epochs_run')}"),
             ("parameters", num(m.get("params"))), ("FLOPs / image", num(m.get("flops"))),
             ("training time", f"{m.get('train_seconds', 0):.1f} s")]
    if rd.test_eval:
        items.insert(1, ("test accuracy", pct(rd.test_eval["accuracy"])))
    return items


def run_report(run: Run | str | Path, output: str | Path | None = None, *,
               data_dir: str | None = None, device: str | None = None,
               images: tuple[int, ...] = (0,), sample: int = 1000) -> Path:
    """Write a self-contained HTML report of a run (default ``<run>/report.html``).

    ``images`` are dev-split indices whose activation maps are shown; ``sample`` dev images
    are searched for dead filters. Returns the report's path.
    """
    rd = collect(run, data_dir=data_dir, device=device)
    if rd.splits is not None:
        for i in images:
            from .inspect import check_image_index

            check_image_index(i, len(rd.splits.dev), "dev")
    out = Path(output) if output else rd.run.path / "report.html"
    page = render_page(f"Run report: {rd.name}", _subtitle(rd), run_sections(rd, images, sample))
    write_atomic(out, page)
    log.info("wrote %s", out)
    return out


def _subtitle(rd: RunData) -> str:
    r = rd.run
    return (f"spec '{r.spec.name}' - status {r.status} - {r.metrics.get('epochs_run', 0)} epochs - "
            f"data {r.spec.data.dataset} - run folder {r.path}")


def section_plan(rd: RunData, images: tuple[int, ...] = (0,), sample: int = 1000
                 ) -> list[tuple[str, Callable[[], Section]]]:
    """The sections of a run report, in order, as (id, builder): test metrics only when the run
    has a saved test evaluation (``archtune evaluate --split test``)."""
    from . import sections as rs

    plan: list[tuple[str, Callable[[], Section]]] = [
        ("overview", lambda: rs.overview(rd)), ("architecture", lambda: rs.architecture(rd)),
        ("config", lambda: rs.configuration(rd)), ("curves", lambda: rs.curves(rd)),
        ("capacity", lambda: rs.capacity(rd, capacity_verdict(
            rd.run.history, 1 / max(len(rd.run.classes), 1)))),
        ("dev-metrics", lambda: rs.dev_metrics(rd))]
    if rd.test_eval:
        plan.append(("test-metrics", lambda: rs.test_metrics(rd)))
    plan += [("mistakes", lambda: rs.mistakes(rd)), ("data", lambda: rs.data_views(rd)),
             ("filters", lambda: rs.filters(rd)), ("activations", lambda: rs.activations(rd, images)),
             ("dead", lambda: rs.dead(rd, sample)), ("gradients", lambda: rs.gradients(rd))]
    return plan


def run_sections(rd: RunData, images: tuple[int, ...] = (0,), sample: int = 1000) -> list[Section]:
    """Every section of a run report, built in order."""
    return [build() for _, build in section_plan(rd, images, sample)]


def mistake_test_images(rd: RunData) -> np.ndarray | None:
    """Test images of the saved test evaluation's most confident mistakes (no evaluation)."""
    if rd.test_eval is None or rd.dataset is None:
        return None
    idx = [w.get("source_index", w["index"]) for w in rd.test_eval["most_confident_wrong"]]
    if not idx:
        return np.zeros((0, *rd.dataset.input_shape), dtype=np.float32)
    return rd.dataset.x_test[torch.tensor(idx)].float().div(255).numpy()
