"""Reading a study: study summaries and the best trial (retraining: :mod:`._retrain`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ArchtuneError
from ._info import value_of
from ._records import best_trial, counts
from ._storage import connect, list_folders, public_url, study_info
from ._study import attach

if TYPE_CHECKING:
    import optuna


def list_studies(studies_dir: str | Path = "studies", storage: str | None = None
                 ) -> list[dict[str, Any]]:
    """A summary per study: the folders under ``studies_dir``, or every study in ``storage``."""
    if storage is not None:
        names = [s.study_name for s in connect(storage).get_all_studies()]
        targets = [(n, storage) for n in names]
    else:
        targets = [(f, None) for f in list_folders(studies_dir)]
    rows = []
    for target, url in targets:
        name = target if isinstance(target, str) else target.name
        try:
            handle = attach(target, storage=url, studies_dir=studies_dir)
            study, info = handle.study, handle.info
        except ArchtuneError as err:
            rows.append({"study": name, "error": str(err)})
            continue
        row = {"study": name, "sampler": info.sampler, "pruner": info.pruner,
               "trials": info.trials, **counts(study), "created": info.created,
               "storage": public_url(info.storage or ""), "best": None, "best_trial": None}
        try:
            best = best_trial(study)
            row.update(best=value_of(best), best_trial=best.number)
        except ArchtuneError:
            pass
        rows.append(row)
    return rows


def best_summary(study: optuna.Study) -> dict[str, Any]:
    """The best trial as a plain dict: number, params and metrics (for ``archtune best``)."""
    t = best_trial(study)
    a = t.user_attrs
    keys = ("dev_accuracy", "dev_loss", "epochs", "duration_s", "params_count", "flops", "seed",
            "run_dir", "fidelity")
    out = {"study": study.study_name, "trial": t.number, "params": t.params,
           **{k: a.get(k) for k in keys}, "history": a.get("history"),
           "spec": json.loads(json.dumps(a.get("spec")))}
    objectives = study_info(study).objectives
    if objectives:  # accuracy against cost: the trials no other beats on both
        out["objectives"] = objectives
        out["front"] = front_rows(study, objectives)
    return out


def front_rows(study: optuna.Study, objectives: list[str]) -> list[dict[str, Any]]:
    """The Pareto front of a multi-objective study, cheapest first: trial, dev accuracy, costs."""
    from ._info import trial_record
    from ._pareto import costs_of, pareto_front

    front = pareto_front([trial_record(t) for t in study.get_trials(deepcopy=False)], objectives)
    return [{"trial": r.number, "dev_accuracy": r.value,
             **dict(zip(objectives[1:], costs_of(r.attrs, objectives), strict=True))} for r in front]
