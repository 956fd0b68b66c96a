"""Reading a study: one row per trial, the best trial, study summaries, and retraining."""

from __future__ import annotations

import copy
import json
import logging
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..errors import ArchtuneError
from ._info import StudyInfo, value_of
from ._records import (
    best_trial,
    counts,
    get_trial,
    trial_state,
)
from ._storage import connect, list_folders, public_url, study_info
from ._study import attach

log = logging.getLogger(__name__)
FINALISTS_SHARE = 0.5  # retrain --minutes with finalists: their round's share; the winner's run the rest
FINALISTS, SEEDS = 3, 2  # retrain's finalists' round: the top trials, each trained with this many seeds

if TYPE_CHECKING:
    import optuna

    from ..training import Run
    from ._run import Execution

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


def _resolve(study: optuna.Study | str | Path, studies_dir: str | Path, storage: str | None
             ) -> tuple[optuna.Study, StudyInfo, Path]:
    """The study, its info and its folder (where finalists are kept)."""
    if isinstance(study, str | Path):
        handle = attach(study, storage=storage, studies_dir=studies_dir)
        return handle.study, handle.info, handle.folder
    return study, study_info(study), Path(studies_dir) / study.study_name


def retrain(study: optuna.Study | str | Path, trial: int | None = None, epochs: int | None = None,
            run_dir: str | Path | None = None, *, finalists: int | None = None,
            seeds: int | None = None,
            studies_dir: str | Path = "studies", storage: str | None = None,
            runs_root: str | Path = "runs", progress: bool = False,
            execution: Execution | None = None, minutes: float | None = None,
            ensemble: bool | Literal["auto"] = False) -> Run:
    """Train a trial's spec on the full training split and full epochs (or ``epochs``) into a
    normal run folder, which also holds ``search.json`` naming the study and trial.

    With ``trial`` given, that trial is trained once with its seed. Otherwise the ``finalists``
    best complete trials (default FINALISTS) are trained at full fidelity with ``seeds`` seeds
    each (default SEEDS) and the best mean dev accuracy wins (see
    :mod:`archtune.search._finalists`; ``finalists=1, seeds=1`` is the best trial trained once);
    the winner's run with its own seed is the returned run. With ``minutes`` and neither
    ``finalists`` nor ``seeds`` given, that round runs only when each of its runs' share is
    predicted to hold its spec's full epochs (as ``ensemble="auto"`` decides), else the best trial
    is trained once with the whole budget (a round of runs cut short would rank them as a coarse
    pass does); search.json ``finalists_auto`` says which, and why.
    ``execution``: threads, device, data_dir and experiment loggers, as for :func:`search`.
    ``minutes``: a time budget for the whole call instead of ``epochs`` (see
    :func:`archtune.train`). With several finalist runs, their round gets FINALISTS_SHARE of it
    (each run an equal share, so finalists are compared at equal time), and the winner is then
    trained again with its own seed in what is left: the returned run. ``ensemble``: the
    finalist runs (``finalists`` trials x ``seeds``) within the dev noise of the best become one
    averaged model instead, and get the whole time budget (see :mod:`archtune.search._ensemble`);
    ``ensemble="auto"``: that only when each member's share of ``minutes`` is predicted to hold
    its spec's full epochs, else the best trial trained once with the whole budget (a
    finalists' round would leave its runs shorter still); search.json ``ensemble_auto`` says
    which, and why. With ``minutes``, a finalist whose runs are predicted not to finish one
    epoch in their share is left out of the round or the ensemble (the slowest first; the
    finalists' record ``left_out`` says why): a run trains at least one epoch, so it would
    overrun the budget.
    """
    from ..training.budget import check_minutes
    from ..training.runs import new_run_dir
    from ._run import Execution

    check_minutes(minutes)
    if minutes is not None and epochs is not None:
        raise ArchtuneError("give epochs or minutes, not both: minutes chooses the epochs")
    ex = execution or Execution()
    study, info, folder = _resolve(study, studies_dir, storage)
    if ensemble not in (True, False, "auto"):
        raise ArchtuneError(f"ensemble: expected true, false or 'auto', got {ensemble!r}")
    decide_round = finalists is None and seeds is None and minutes is not None and \
        trial is None and not ensemble
    finalists, seeds = finalists or FINALISTS, seeds or SEEDS
    auto: dict[str, Any] | None = None
    if decide_round:
        auto = _round_pays(study, info, finalists, seeds, float(minutes or 0), ex)
        if not auto["round"]:
            finalists = seeds = 1
    if ensemble:
        if trial is not None:
            raise ArchtuneError("give --trial or --ensemble, not both: an ensemble is of the "
                                "finalists")
        if finalists * seeds < 2:
            raise ArchtuneError("--ensemble needs at least 2 members: --finalists x --seeds >= 2")
        from ._ensemble import EVAL_SHARE, check_ensemble_limits
        from ._finalists import top_trials

        top = top_trials(study, finalists, _family(info))
        if ensemble == "auto":
            auto = _ensemble_pays(top, info, seeds, minutes, ex)
        else:
            check_ensemble_limits(info, top, seeds)
        if auto is None or auto["ensemble"]:
            rest, left_out = _fitting(top, seeds, minutes and minutes * (1 - EVAL_SHARE), ex,
                                      "--ensemble")
            if len(rest) * seeds < 2:
                raise ArchtuneError(f"--ensemble --minutes {minutes:g}: too short for 2 members "
                                    f"({'; '.join(left_out)}); give more minutes, fewer "
                                    "--finalists, or '--ensemble auto'")
            return _retrain_ensemble(study, info, folder, epochs, run_dir, rest, left_out, seeds,
                                     runs_root, progress, ex, minutes,
                                     {} if auto is None else {"ensemble_auto": auto})
        finalists = seeds = 1  # a finalists' round would leave its runs shorter still
    record = {} if auto is None else {"finalists_auto" if decide_round else "ensemble_auto": auto}
    if trial is None and (finalists > 1 or seeds > 1):
        from ._finalists import top_trials

        rest, left_out = _fitting(top_trials(study, finalists, _family(info)), seeds,
                                  minutes and minutes * FINALISTS_SHARE, ex, "finalists")
        if not rest:
            raise ArchtuneError(f"--minutes {minutes:g}: no finalist can train one epoch in its "
                                f"share of the round ({'; '.join(left_out)}); give more minutes, "
                                "or --finalists 1 --seeds 1 to train the best trial once")
        return _retrain_finalists(study, info, folder, epochs, run_dir, rest, left_out, seeds,
                                  runs_root, progress, ex, minutes, record)
    chosen = best_trial(study) if trial is None else get_trial(study, trial)
    path = Path(run_dir) if run_dir else new_run_dir(f"{study.study_name}-trial{chosen.number}",
                                                     runs_root)
    return _train_trial(study, info, chosen, path, epochs, minutes, progress, ex, record)


def _ensemble_pays(trials: list[optuna.trial.FrozenTrial], info: StudyInfo, seeds: int,
                   minutes: float | None, ex: Execution) -> dict[str, Any]:
    """``ensemble="auto"``'s decision: average (``{"ensemble": True}``) unless the members
    together exceed the study's budgets or the time budget leaves them under-trained
    (:func:`archtune.search._ensemble.undertrained`)."""
    from ._ensemble import EVAL_SHARE, check_ensemble_limits

    try:
        check_ensemble_limits(info, trials, seeds)
    except ArchtuneError as err:
        log.info("--ensemble auto: the best trial trained once, not an ensemble: %s", err)
        return {"ensemble": False, "why": str(err)}
    if minutes is None:
        return {"ensemble": True, "why": "no time budget: every member trains its full epochs"}
    why = _undertrained(trials, seeds, minutes * (1 - EVAL_SHARE), ex)
    if why is None:
        log.info("--ensemble auto: each of the %d members fits its full epochs in its share of "
                 "%.1f minutes: averaging them", len(trials) * seeds, minutes)
        return {"ensemble": True, "why": "every member fits its full epochs in its share"}
    log.info("--ensemble auto: the best trial trained once with the whole budget, not an "
             "ensemble: %s", why)
    return {"ensemble": False, "why": why}


def _round_pays(study: optuna.Study, info: StudyInfo, finalists: int, seeds: int,
                minutes: float, ex: Execution) -> dict[str, Any]:
    """Whether the finalists' round fits a time budget of ``minutes`` (``{"round": True}``): each
    of its runs' share (FINALISTS_SHARE of it) is predicted to hold its spec's full epochs."""
    from ._finalists import top_trials

    share = minutes * FINALISTS_SHARE
    why = _undertrained(top_trials(study, finalists, _family(info)), seeds, share, ex)
    if why is None:
        log.info("finalists: each of the %d x %d runs fits its full epochs in its share of %.1f "
                 "minutes", finalists, seeds, share)
        return {"round": True, "why": "every finalist run fits its full epochs in its share"}
    log.info("finalists: none, the best trial trained once with the whole budget: the round's "
             "%s", why)
    return {"round": False, "why": f"the round's {why}"}


def _undertrained(trials: list[optuna.trial.FrozenTrial], seeds: int, minutes: float,
                  ex: Execution) -> str | None:
    """Why ``seeds`` runs of each of ``trials`` sharing ``minutes`` would be cut short of their
    full epochs (:func:`archtune.search._ensemble.undertrained`, on the data set's train split
    size), or None."""
    from ._ensemble import undertrained

    return undertrained(trials, seeds, minutes, _n_train(trials[0], ex))


def _fitting(trials: list[optuna.trial.FrozenTrial], seeds: int, minutes: float | None,
             ex: Execution, what: str) -> tuple[list[optuna.trial.FrozenTrial], list[str]]:
    """``trials`` less those whose runs cannot train one epoch in their share of ``minutes``
    (:func:`archtune.search._ensemble.fitting`), and why each was left out (logged)."""
    from ._ensemble import fitting

    if minutes is None:
        return trials, []
    rest, left_out = fitting(trials, seeds, minutes, _n_train(trials[0], ex))
    for why in left_out:
        log.warning("%s: left out %s", what, why)
    return rest, left_out


def _n_train(trial: optuna.trial.FrozenTrial, ex: Execution) -> int:
    """The train split's size of ``trial``'s data set (what a retrain trains on)."""
    from ..config import data_config
    from ..data import load_data, train_split_size

    raw = trial.user_attrs["spec"].get("data") or {}
    data = load_data(data_config(raw), data_dir=ex.data_dir)
    return train_split_size(len(data.dataset.y_train), data.config.dev_fraction)


_DECISIONS = {"ensemble_auto": "ensemble", "finalists_auto": "round"}  # search.json key -> its flag


def decision(run: Run, key: str) -> dict[str, Any] | None:
    """What retrain decided for ``run`` by itself, from its search.json: ``ensemble_auto``
    (``ensemble``, ``why``: ``ensemble="auto"``) or ``finalists_auto`` (``round``, ``why``: a
    time budget without finalists or seeds given); None when it did not decide."""
    flag = _DECISIONS[key]
    path = run.path / "search.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    auto = data.get(key) if isinstance(data, dict) else None
    if auto is None:
        return None
    if not (isinstance(auto, dict) and isinstance(auto.get(flag), bool)
            and isinstance(auto.get("why"), str)):
        raise ArchtuneError(f"{path}: '{key}' should be a mapping with '{flag}' "
                            f"(true/false) and 'why' (text), got {auto!r}")
    return auto


def _train_trial(study: optuna.Study, info: StudyInfo, chosen: optuna.trial.FrozenTrial,
                 path: Path, epochs: int | None, minutes: float | None, progress: bool,
                 ex: Execution, record: dict[str, Any]) -> Run:
    """Train ``chosen``'s spec with its own seed on the whole train split into ``path``."""
    from ..specs import spec_from_dict
    from ..training import train
    from ..training.runs import write_json

    raw = chosen.user_attrs.get("spec")
    if trial_state(chosen) == "invalid" or not isinstance(raw, dict):
        why = chosen.user_attrs.get("error") or "it has no spec"
        raise ArchtuneError(f"trial {chosen.number} of study '{study.study_name}' cannot be "
                            f"retrained: {why}")
    raw = copy.deepcopy(raw)
    if epochs is not None:
        raw["train"]["epochs"] = epochs
    if ex.data_dir is not None:
        raw["data"]["data_dir"] = ex.data_dir
    spec = spec_from_dict(raw, source=f"study '{study.study_name}' trial {chosen.number}")
    run = train(spec, run_dir=path, threads=ex.threads, device=ex.device, progress=progress,
                loggers=ex.loggers, mlflow_uri=ex.mlflow_uri, minutes=minutes)
    write_json(run.path / "search.json", _search_record(study, info, chosen) | record)
    return run


def _search_record(study: optuna.Study, info: StudyInfo, chosen: optuna.trial.FrozenTrial
                   ) -> dict[str, Any]:
    return {"study": study.study_name, "storage": public_url(info.storage or ""),
            "trial": chosen.number, "params": chosen.params, "search_dev_accuracy": value_of(chosen),
            "fidelity": chosen.user_attrs.get("fidelity")}


def _family(info: StudyInfo) -> str | None:
    """The study's architecture-family choice (auto-space's ``arch``), if its space has one."""
    from ._fidelity import strata_dim
    from ._space import SearchSpace

    if not info.space:
        return None
    dim = strata_dim(SearchSpace(info.space, source="stored"))
    return None if dim is None else dim.name


def _retrain_finalists(study: optuna.Study, info: StudyInfo, folder: Path, epochs: int | None,
                       run_dir: str | Path | None, top: list[optuna.trial.FrozenTrial],
                       left_out: list[str], seeds: int, runs_root: str | Path,
                       progress: bool, ex: Execution, minutes: float | None,
                       extra: dict[str, Any]) -> Run:
    """Choose among the ``top`` trials by mean over seeds; copy the winner's own-seed run out
    (with a time budget: train the winner again in what the finalists' round left); ``extra`` is
    added to search.json."""
    from ..training import load_run
    from ..training.runs import new_run_dir, write_json
    from ._finalists import choose_finalists

    deadline = None if minutes is None else time.monotonic() + minutes * 60
    finals = choose_finalists(study, folder, study_seed=info.seed or 0, seeds=seeds,
                              epochs=epochs, execution=ex, progress=progress,
                              minutes=None if minutes is None else minutes * FINALISTS_SHARE,
                              trials=top, left_out=left_out)
    w = finals.winner
    path = Path(run_dir) if run_dir else new_run_dir(f"{study.study_name}-trial{w.trial}", runs_root)
    if path.exists() and any(path.iterdir()):
        raise ArchtuneError(f"{path} exists and is not empty; choose another --run-dir")
    chosen = get_trial(study, w.trial)
    if deadline is not None:  # the winner, trained again with the rest of the budget
        left = max(deadline - time.monotonic(), 1.0) / 60
        log.info("finalists chose trial %d: training it again in the %.1f minutes left",
                 w.trial, left)
        return _train_trial(study, info, chosen, path, None, left, progress, ex,
                            {"finalists": finals.to_dict()} | extra)
    shutil.copytree(w.runs[0], path, dirs_exist_ok=True)
    record = _search_record(study, info, chosen)
    write_json(path / "search.json", record | {"finalists": finals.to_dict()} | extra)
    return load_run(path)


def _retrain_ensemble(study: optuna.Study, info: StudyInfo, folder: Path, epochs: int | None,
                      run_dir: str | Path | None, top: list[optuna.trial.FrozenTrial],
                      left_out: list[str], seeds: int, runs_root: str | Path,
                      progress: bool, ex: Execution, minutes: float | None,
                      extra: dict[str, Any]) -> Run:
    """Train the ``top`` trials with ``seeds`` seeds each and average them all (the study's
    budgets are checked by the caller, before); ``extra`` is added to search.json."""
    from ..training.runs import new_run_dir
    from ._ensemble import EVAL_SHARE, ensemble_run
    from ._finalists import choose_finalists

    path = Path(run_dir) if run_dir else new_run_dir(f"{study.study_name}-ensemble", runs_root)
    if path.exists() and any(path.iterdir()):  # ensemble() checks it too, but after training
        raise ArchtuneError(f"{path} exists and is not empty; choose another --run-dir")
    finals = choose_finalists(study, folder, study_seed=info.seed or 0, seeds=seeds,
                              epochs=epochs, execution=ex, progress=progress,
                              minutes=None if minutes is None else minutes * (1 - EVAL_SHARE),
                              trials=top, left_out=left_out)
    return ensemble_run(finals, path, lambda trial: _search_record(study, info, get_trial(study, trial))
                        | {"finalists": finals.to_dict(), "ensemble": True} | extra)


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
