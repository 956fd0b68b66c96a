"""Several trained runs averaged into one model: :func:`ensemble` (``archtune ensemble RUN
RUN ...``, and ``archtune retrain STUDY --ensemble`` for a search's finalists).

The run folder it writes holds, in ``best.pt``, every member (its own spec, normalisation and
weights: :func:`archtune.training.runs.save_ensemble_checkpoint`), so evaluate, predict,
export and serve use it as any run; its forward pass returns the log of the members' mean
probabilities. Its spec, history and curves are the lead member's (the best on dev);
``metrics.json`` ``ensemble`` lists every run given (chosen or not) with its dev accuracy and
loss, ``params`` and ``flops`` are the chosen members' sums, and ``dev`` is the ensemble's
(read high: the members were chosen on that split).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._stats import accuracy_se
from .errors import ArchtuneError
from .evaluate import evaluate
from .models import EnsembleNet
from .training import Run, load_run
from .training.runs import save_ensemble_checkpoint, write_json

log = logging.getLogger(__name__)


def select_members(dev: list[float], n_dev: int, loss: list[float]) -> list[int]:
    """The runs the dev split cannot tell from the best one: dev accuracy within one binomial
    standard error of the best's (:func:`archtune._stats.accuracy_se`, the noise of one dev
    accuracy, as the finalists' verdict counts it). Best dev accuracy first (the lead), ties by lower dev loss. A
    run clearly worse on dev is left out; on a small dev split almost none is."""
    order = sorted(range(len(dev)), key=lambda i: (-dev[i], loss[i], i))
    best = dev[order[0]]
    se = accuracy_se(best, n_dev)
    return [i for i in order if dev[i] >= best - se - 1e-12]


def ensemble(runs: Sequence[Run | str | Path], run_dir: str | Path, *, keep_all: bool = False,
             labels: Sequence[dict[str, Any]] | None = None) -> Run:
    """Average trained runs into one model, written as the run folder ``run_dir``.

    The members are the runs the dev split cannot tell from the best (:func:`select_members`),
    or all of them with ``keep_all``; they must share the classes and the train/dev split (the
    same data set, ``dev_fraction`` and ``split_seed``), or the ensemble's dev accuracy would
    count images some members trained on. ``labels``: extra keys recorded per run (retrain
    --ensemble: trial and seed). Returns the loaded run; see the module docstring for its files.
    """
    if len(runs) < 2:
        raise ArchtuneError(f"an ensemble needs at least 2 runs, got {len(runs)}")
    path = Path(run_dir)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ArchtuneError(f"{path} exists and is not empty (or not a folder); choose another run "
                            "folder")
    loaded = _load_members(runs)
    devs = [run.metrics["dev"] for run in loaded]
    n_dev = min(int(d.get("n") or 0) for d in devs)
    chosen = (list(range(len(loaded))) if keep_all else
              select_members([d["accuracy"] for d in devs], n_dev, [d["loss"] for d in devs]))
    labels = labels or [{} for _ in loaded]
    members = [{**labels[i], "run": str(run.path), "chosen": i in chosen,
                "dev_accuracy": devs[i]["accuracy"], "dev_loss": devs[i]["loss"],
                "params": run.metrics.get("params"), "flops": run.metrics.get("flops"),
                "epochs_run": run.metrics.get("epochs_run"),
                "train_seconds": run.metrics.get("train_seconds")}
               for i, run in enumerate(loaded)]
    picked = [loaded[i] for i in chosen]  # in the order chosen: the lead first
    models = _write_members(path, picked)
    metrics = _metrics(picked[0], [members[i] for i in chosen], members, keep_all)
    write_json(path / "metrics.json", metrics)
    run = load_run(path, model=EnsembleNet(models).eval())  # as best.pt holds it, not read back
    ev = evaluate(run, "dev")
    metrics["dev"] = {"accuracy": ev["accuracy"], "loss": ev["loss"], "tta": ev["tta"],
                      "tta_translate": ev["tta_translate"], "n": ev["n"], "members": len(chosen)}
    write_json(path / "metrics.json", metrics)
    best = max((m["dev_accuracy"] or 0.0) for m in members)
    log.info("ensemble of %d of %d runs: dev "
             "accuracy %.2f%% (best single run %.2f%%; chosen on this dev split, so both read high)",
             len(chosen), len(members), 100 * ev["accuracy"], 100 * best)
    return load_run(path)


def _load_members(runs: Sequence[Run | str | Path]) -> list[Run]:
    """The runs, loaded and checked: distinct, the same classes and split, each with a dev
    evaluation."""
    loaded = [r if isinstance(r, Run) else load_run(r) for r in runs]
    if len({r.path.resolve() for r in loaded}) < len(loaded):
        raise ArchtuneError("a run is given twice; an ensemble's members are distinct runs")
    first = loaded[0]
    split = _split_of(first)
    for run in loaded[1:]:
        if run.classes != first.classes:
            raise ArchtuneError(f"{run.path}: its classes differ from {first.path}'s; an ensemble "
                                "needs the same classes in the same order")
        if _split_of(run) != split:
            raise ArchtuneError(
                f"{run.path}: trained on another train/dev split than {first.path} (data set, "
                f"dev_fraction, split_seed: {_split_of(run)} against {split}); the ensemble's dev "
                "accuracy would count images some members trained on")
    for run in loaded:
        dev = run.metrics.get("dev") or {}
        if not isinstance(dev.get("accuracy"), float) or not isinstance(dev.get("loss"), float):
            raise ArchtuneError(f"{run.path / 'metrics.json'}: has no dev evaluation (\"dev\") to "
                                "choose members by; was the run finished?")
    return loaded


def _write_members(path: Path, picked: list[Run]) -> list[Any]:
    """The lead member's folder copied to ``path`` (less its evaluations) and ``best.pt`` with
    every chosen member; returns the members' models."""
    lead = picked[0]
    shutil.copytree(lead.path, path, dirs_exist_ok=True)
    for stale in [*path.glob("eval_*.json"), *path.glob("confusion_*.csv")]:
        stale.unlink()  # the lead member's evaluations, not the ensemble's
    models = [run.load_model("cpu") for run in picked]
    save_ensemble_checkpoint(
        path / "best.pt", [(model, run.spec, int(run.metrics.get("best_epoch") or 0), str(run.path))
                           for model, run in zip(models, picked, strict=True)], lead.classes)
    return models


def _metrics(lead: Run, used: list[dict[str, Any]], members: list[dict[str, Any]],
             keep_all: bool) -> dict[str, Any]:
    """metrics.json of the ensemble before its dev evaluation: the lead's, with the chosen
    members' sums and the ``ensemble`` record."""
    metrics = dict(lead.metrics)
    metrics.pop("dev", None)
    metrics.update(
        params=sum(int(m["params"] or 0) for m in used),
        flops=sum(int(m["flops"] or 0) for m in used),
        train_seconds=sum(float(m["train_seconds"] or 0.0) for m in members),  # all were trained
        ensemble={"members": used + [m for m in members if not m["chosen"]],
                  "lead": str(lead.path),
                  "selection": "all runs given" if keep_all else
                  "dev accuracy within one binomial standard error of the best run's",
                  "history": "the lead member's (spec.yaml, history.csv and curves too)"})
    return metrics


def _split_of(run: Run) -> tuple[str, float, int]:
    d = run.spec.data
    return (d.dataset, d.dev_fraction, d.split_seed)
