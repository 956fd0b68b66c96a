"""What the report of a plan shows, gathered from its folder once (pure reads, no drawing).

A plan folder (``archtune plan``) holds ``plan.yaml``, ``state.json``, ``runs/<name>/`` and
``studies/<name>/``; every model of the plan is a run folder, every search a study folder.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ArchtuneError
from ..evaluate import capacity_verdict, dev_result
from ..search import best_record
from ..training.runs import Run, load_run
from . import data as plot_data
from . import study as sy
from .describe import describe

log = logging.getLogger(__name__)
MIN_IMPORTANCE_TRIALS = sy.MIN_IMPORTANCE_TRIALS  # fewer complete trials: none shown


@dataclass
class PlanRun:
    name: str  # the plan's name for it
    source: str  # "run", or "search" for a search's retrained model
    run: Run
    dev: dict[str, Any]  # dev_result: the one dev accuracy and its weights
    test: dict[str, Any] | None  # eval_test.json
    verdict: dict[str, Any]
    curves: plot_data.Curves
    grads: plot_data.GradNorms | None
    text: dict[str, str]  # describe(): architecture, init, activations, ...

    @property
    def learned(self) -> bool:
        k = max(len(self.run.classes), 2)
        return self.dev["accuracy"] > 1.5 / k


@dataclass
class PlanSearch:
    name: str
    folder: Path
    study: sy.StudyData
    best: sy.TrialRecord | None
    importances: dict[str, float]
    n_complete: int
    retrained: dict[str, Any] = field(default_factory=dict)  # state of its retrain step


@dataclass
class PlanData:
    folder: Path
    name: str
    description: str
    raw: dict[str, Any]
    state: dict[str, Any]
    runs: list[PlanRun]
    searches: list[PlanSearch]
    missing: list[str] = field(default_factory=list)

    @property
    def best(self) -> PlanRun | None:
        """The model with the highest dev accuracy (the test split does not choose)."""
        return max(self.runs, key=lambda r: r.dev["accuracy"], default=None)


def _entries(raw: dict[str, Any]) -> list[tuple[str, str]]:
    runs = [(name, "run") for name in (raw.get("runs") or {})]
    searches = [(name, "search") for name, e in (raw.get("searches") or {}).items()
                if isinstance(e, dict) and e.get("retrain")]
    return runs + searches


def _plan_run(name: str, source: str, run: Run) -> PlanRun:
    k = max(len(run.classes), 1)
    return PlanRun(name, source, run, dev_result(run), run.evaluation("test"),
                   capacity_verdict(run.history_rows, 1 / k),
                   plot_data.learning_curves(run.history_rows, run.metrics),
                   plot_data.grad_norms(run.grad_norms), describe(run.spec))


def _search(name: str, folder: Path, state: dict[str, Any]) -> PlanSearch:
    sd = sy.load_study_data(folder)
    n_complete = len(sd.complete)
    imp = sy.importances(sd) if n_complete >= MIN_IMPORTANCE_TRIALS else {}
    return PlanSearch(name, folder, sd, best_record(sd.trials, sd.direction), imp, n_complete,
                      state.get("steps", {}).get(f"retrain:{name}", {}))


def load_plan_data(folder: str | Path) -> PlanData:
    """Read a plan folder: every run folder of its models, every study of its searches; what is
    not there yet is listed in ``missing``."""
    folder = Path(folder)
    try:
        raw = yaml.safe_load((folder / "plan.yaml").read_text()) or {}
        state = json.loads((folder / "state.json").read_text())
    except (OSError, yaml.YAMLError, json.JSONDecodeError) as err:
        raise ArchtuneError(f"{folder}: not a readable plan folder ({err})") from None
    out = PlanData(folder, str(raw.get("name", folder.name)), str(raw.get("description") or ""),
                   raw, state, [], [])
    for name, source in _entries(raw):
        path = folder / "runs" / name
        if not (path / "metrics.json").is_file():
            out.missing.append(f"{source} '{name}' has no model yet")
            continue
        run = load_run(path)
        if not run.history_rows:
            out.missing.append(f"{source} '{name}' has not finished an epoch")
            continue
        out.runs.append(_plan_run(name, source, run))
    for name in raw.get("searches") or {}:
        study = folder / "studies" / name
        if not (study / "study.json").is_file():
            out.missing.append(f"search '{name}' has not started")
            continue
        out.searches.append(_search(name, study, state))
    if not out.runs and not out.searches:
        raise ArchtuneError(f"{folder}: the plan has no finished run or search yet; run "
                            f"'archtune plan {folder}' first")
    return out


def summary_rows(plan: PlanData) -> list[dict[str, Any]]:
    """One row per model: the numbers of the summary table (plain values, not formatted)."""
    rows = []
    for r in plan.runs:
        m = r.run.metrics
        g = r.grads
        rows.append({"name": r.name, "spec": r.run.spec.name, "kind": r.text["architecture"][:3],
                     "params": m.get("params"), "flops": m.get("flops"),
                     "epochs": m.get("epochs_run"), "best_epoch": m.get("best_epoch"),
                     "seconds": m.get("train_seconds"), "dev": r.dev["accuracy"],
                     "weights": r.dev["weights"],
                     "test": r.test["accuracy"] if r.test else None,
                     "verdict": r.verdict["verdict"],
                     "grad_ratio": g.first_over_last if g is not None and len(g.layers) > 1
                     else math.nan})
    return rows
