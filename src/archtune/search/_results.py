"""Reading a study: one row per trial, the best trial, study summaries, and retraining."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ArchtuneError
from ._info import StudyInfo
from ._records import (
    best_trial,
    counts,
    get_trial,
    trial_state,
)
from ._storage import connect, list_folders, public_url, study_info
from ._study import attach

if TYPE_CHECKING:
    import optuna

    from ..training import Run

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
            row.update(best=best.value, best_trial=best.number)
        except ArchtuneError:
            pass
        rows.append(row)
    return rows


def _resolve(study: optuna.Study | str | Path, studies_dir: str | Path, storage: str | None
             ) -> tuple[optuna.Study, StudyInfo]:
    if isinstance(study, str | Path):
        handle = attach(study, storage=storage, studies_dir=studies_dir)
        return handle.study, handle.info
    return study, study_info(study)


def retrain(study: optuna.Study | str | Path, trial: int | None = None, epochs: int | None = None,
            run_dir: str | Path | None = None, *, studies_dir: str | Path = "studies",
            storage: str | None = None, data_dir: str | None = None, threads: int | None = None,
            device: str | None = None, progress: bool = False, runs_root: str | Path = "runs",
            loggers: Any = None, mlflow_uri: str | None = None) -> Run:
    """Train a trial's spec (the best complete trial by default) with its seed on the full
    training split and full epochs (or ``epochs``); returns the normal run folder, which also
    holds ``search.json`` naming the study and trial. ``loggers``: as for ``train``."""
    from ..specs import spec_from_dict
    from ..training import train
    from ..training.runs import new_run_dir, write_json

    study, info = _resolve(study, studies_dir, storage)
    chosen = best_trial(study) if trial is None else get_trial(study, trial)
    raw = chosen.user_attrs.get("spec")
    if trial_state(chosen) == "invalid" or not isinstance(raw, dict):
        why = chosen.user_attrs.get("error") or "it has no spec"
        raise ArchtuneError(f"trial {chosen.number} of study '{study.study_name}' cannot be "
                            f"retrained: {why}")
    raw = copy.deepcopy(raw)
    if epochs is not None:
        raw["train"]["epochs"] = epochs
    if data_dir is not None:
        raw["data"]["data_dir"] = data_dir
    spec = spec_from_dict(raw, source=f"study '{study.study_name}' trial {chosen.number}")
    path = Path(run_dir) if run_dir else new_run_dir(f"{study.study_name}-trial{chosen.number}",
                                                     runs_root)
    run = train(spec, run_dir=path, threads=threads, device=device, progress=progress,
                loggers=loggers, mlflow_uri=mlflow_uri)
    write_json(run.path / "search.json", {
        "study": study.study_name, "storage": public_url(info.storage or ""),
        "trial": chosen.number, "params": chosen.params, "search_dev_accuracy": chosen.value,
        "fidelity": chosen.user_attrs.get("fidelity")})
    return run


def best_summary(study: optuna.Study) -> dict[str, Any]:
    """The best trial as a plain dict: number, params and metrics (for ``archtune best``)."""
    t = best_trial(study)
    a = t.user_attrs
    keys = ("dev_accuracy", "dev_loss", "epochs", "duration_s", "params_count", "flops", "seed",
            "run_dir", "fidelity")
    return {"study": study.study_name, "trial": t.number, "params": t.params,
            **{k: a.get(k) for k in keys}, "history": a.get("history"),
            "spec": json.loads(json.dumps(a.get("spec")))}
