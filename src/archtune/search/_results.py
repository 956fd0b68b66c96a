"""Reading a study: one row per trial, the best trial, study summaries, and retraining."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ArchtuneError
from ._storage import connect, list_folders, public_url, study_info
from ._study import attach, open_study
from ._worker import counted, retried_numbers

if TYPE_CHECKING:
    import optuna
    import pandas as pd

    from ..training import Run

COLUMNS = ("number", "state", "dev_accuracy", "dev_loss", "epochs", "duration_s", "params_count",
           "flops", "seed", "run_dir", "retry_of", "retried_as", "worker", "started", "error")
PARAM = "param."  # prefix of the parameter columns
STATES = ("complete", "pruned", "failed", "invalid", "running", "waiting")


def trial_state(t: optuna.trial.FrozenTrial) -> str:
    """complete | pruned | failed | invalid | running | waiting."""
    name = t.state.name.lower()
    if name == "fail":
        return "invalid" if t.user_attrs.get("status") == "invalid" else "failed"
    return {"complete": "complete", "pruned": "pruned", "running": "running"}.get(name, "waiting")


def _error(t: optuna.trial.FrozenTrial, retried: dict[int, int]) -> str | None:
    if t.state.name != "FAIL" or t.user_attrs.get("status") in ("failed", "invalid"):
        return t.user_attrs.get("error")
    again = f"; retried as trial {retried[t.number]}" if t.number in retried else ""
    return f"stopped before it finished (worker interrupted or gone){again}"


def trials_dataframe(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: state, dev accuracy and loss (best epoch), epochs run, duration,
    parameter count, FLOPs, seed, run folder, retries, worker, then ``param.<name>``."""
    import pandas as pd

    trials = study.get_trials(deepcopy=False)
    retried = retried_numbers(trials)
    names: dict[str, None] = {}
    for t in trials:
        names.update(dict.fromkeys(t.params))
    rows = []
    for t in trials:
        a = t.user_attrs
        row = {"number": t.number, "state": trial_state(t),
               "dev_accuracy": a.get("dev_accuracy", t.value), "dev_loss": a.get("dev_loss"),
               "epochs": a.get("epochs", len(t.intermediate_values)), "duration_s": a.get("duration_s"),
               "params_count": a.get("params_count"), "flops": a.get("flops"), "seed": a.get("seed"),
               "run_dir": a.get("run_dir"), "retry_of": t.system_attrs.get("failed_trial"),
               "retried_as": retried.get(t.number), "worker": a.get("worker"),
               "started": t.datetime_start, "error": _error(t, retried)}
        row.update({f"{PARAM}{n}": t.params.get(n) for n in names})
        rows.append(row)
    df = pd.DataFrame(rows, columns=[*COLUMNS, *(f"{PARAM}{n}" for n in names)])
    for col in ("epochs", "params_count", "flops", "seed", "retry_of", "retried_as"):
        df[col] = df[col].astype("Int64")  # integers, with <NA> where a trial has none
    for n in names:  # keep integers integers where a conditional parameter is missing
        df[f"{PARAM}{n}"] = pd.Series([t.params.get(n) for t in trials], dtype=object)
    return df


def counts(study: optuna.Study) -> dict[str, int]:
    """Trials per state (``failed`` without the ``retried`` ones, which a retry replaced), and
    ``done``: the finished trials that count towards the budget."""
    trials = study.get_trials(deepcopy=False)
    replaced = retried_numbers(trials)
    out = dict.fromkeys((*STATES, "retried"), 0)
    for t in trials:
        out["retried" if t.number in replaced else trial_state(t)] += 1
    out["done"] = len(counted(trials))
    return out


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
    """The complete trial with the highest dev accuracy."""
    from optuna.trial import TrialState

    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.value is not None]
    if not done:
        raise ArchtuneError(f"study '{study.study_name}' has no complete trial yet")
    return max(done, key=lambda t: (t.value, -t.number))


def get_trial(study: optuna.Study, number: int) -> optuna.trial.FrozenTrial:
    trials = study.get_trials(deepcopy=False)
    for t in trials:
        if t.number == number:
            return t
    raise ArchtuneError(f"study '{study.study_name}' has no trial {number} (trials 0 to "
                        f"{len(trials) - 1})")


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
            study, info = open_study(target, studies_dir, storage=url)
        except ArchtuneError as err:
            rows.append({"study": name, "error": str(err)})
            continue
        row = {"study": name, "sampler": info.get("sampler"), "pruner": info.get("pruner"),
               "trials": info.get("trials"), **counts(study), "created": info.get("created"),
               "storage": info.get("storage"), "best": None, "best_trial": None}
        try:
            best = best_trial(study)
            row.update(best=best.value, best_trial=best.number)
        except ArchtuneError:
            pass
        rows.append(row)
    return rows


def _resolve(study: optuna.Study | str | Path, studies_dir: str | Path, storage: str | None
             ) -> tuple[optuna.Study, dict[str, Any]]:
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
        "study": study.study_name, "storage": public_url(info.get("storage", "")),
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
