"""Retraining a study's choice into a normal run folder: one trial once, the finalists' round
or the finalists averaged (both: :mod:`archtune.search._finalists`).

With a time budget, retrain decides by itself what it can pay for: whether a finalists' round
(when neither finalists nor seeds are given) or an ensemble (``ensemble="auto"``) would train its
runs fully, and which finalists can finish one epoch in their share at all. Every decision is
logged and kept in the run's ``search.json``.
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..config import data_config
from ..errors import ArchtuneError, short
from ..specs import spec_from_dict
from ._fidelity import strata_dim
from ._finalists import (
    EVAL_SHARE,
    check_ensemble_limits,
    choose_finalists,
    ensemble_run,
    fitting,
    top_trials,
    undertrained,
)
from ._objective import Execution
from ._records import StudyInfo, best_trial, get_trial, study_info, trial_state, value_of
from ._space import SearchSpace
from ._storage import public_url
from ._study import attach

if TYPE_CHECKING:
    import optuna

    from ..training import Run

log = logging.getLogger(__name__)
FINALISTS_SHARE = 0.5  # retrain --minutes with finalists: their round's share; the winner's run the rest
FINALISTS, SEEDS = 3, 2  # retrain's finalists' round: the top trials, each trained with this many seeds


def retrain(study: optuna.Study | str | Path, trial: int | None = None, epochs: int | None = None,
            run_dir: str | Path | None = None, *, finalists: int | None = None,
            seeds: int | None = None,
            studies_dir: str | Path = "studies", storage: str | None = None,
            runs_root: str | Path = "runs", progress: bool = False,
            execution: Execution | None = None, minutes: float | None = None,
            ensemble: bool | Literal["auto"] = False) -> Run:
    """Train a trial's spec on the full training split and full epochs (or ``epochs``) into a
    normal run folder, which also holds ``search.json`` naming the study and trial.

    By default the best trial is trained once with its seed (one full training); with ``trial``
    given, that trial. With ``finalists`` or ``seeds`` given, the finalists' round: the
    ``finalists`` best complete trials (default FINALISTS) are trained at full fidelity with
    ``seeds`` seeds each (default SEEDS) and the best mean dev accuracy wins (see
    :mod:`archtune.search._finalists`); the winner's run with its own seed is the returned run.
    ``execution``: threads, device, data_dir and experiment loggers, as for :func:`search`.
    ``minutes``: a time budget for the whole call instead of ``epochs`` (see
    :func:`archtune.train`). With several finalist runs, their round gets FINALISTS_SHARE of it
    (each run an equal share, so finalists are compared at equal time), and the winner is then
    trained again with its own seed in what is left: the returned run. ``ensemble``: the
    finalist runs (``finalists`` trials x ``seeds``) within the dev noise of the best become one
    averaged model instead, and get the whole time budget (see :mod:`archtune.search._finalists`);
    ``ensemble="auto"``: that only when each member's share of ``minutes`` is predicted to hold
    its spec's full epochs, else the best trial trained once with the whole budget (a
    finalists' round would leave its runs shorter still); search.json ``ensemble_auto`` says
    which, and why. With ``minutes``, a finalist whose runs are predicted not to finish one
    epoch in their share is left out of the round or the ensemble (the slowest first; the
    finalists' record ``left_out`` says why): a run trains at least one epoch, so it would
    overrun the budget.
    """
    from ..training.budget import check_minutes  # torch: kept out of reading a study

    check_minutes(minutes)
    if minutes is not None and epochs is not None:
        raise ArchtuneError("give epochs or minutes, not both: minutes chooses the epochs")
    if ensemble not in (True, False, "auto"):
        raise ArchtuneError(f"ensemble: expected true, false or 'auto', got {short(ensemble)}")
    if ensemble and trial is not None:
        raise ArchtuneError("give --trial or --ensemble, not both: an ensemble is of the finalists")
    job = _Retrain(*_resolve(study, studies_dir, storage), epochs=epochs, minutes=minutes,
                   run_dir=run_dir, runs_root=runs_root, progress=progress,
                   ex=execution or Execution())
    if trial is not None:
        return job.once(get_trial(job.study, trial))
    if ensemble:
        return job.ensemble(finalists or FINALISTS, seeds or SEEDS, auto=ensemble == "auto")
    return job.best(finalists, seeds)


def _resolve(study: optuna.Study | str | Path, studies_dir: str | Path, storage: str | None
             ) -> tuple[optuna.Study, StudyInfo, Path]:
    """The study, its info and its folder (where finalists are kept)."""
    if isinstance(study, str | Path):
        handle = attach(study, storage=storage, studies_dir=studies_dir)
        return handle.study, handle.info, handle.folder
    return study, study_info(study), Path(studies_dir) / study.study_name


@dataclass
class _Retrain:
    """One retrain call: the study, and how its runs are trained (what every mode shares)."""

    study: optuna.Study
    info: StudyInfo
    folder: Path  # the study's folder: finalists.json and the finalists' runs
    epochs: int | None  # the runs' epochs instead of the specs' (None: theirs)
    minutes: float | None  # or the time budget of the whole call
    run_dir: str | Path | None  # the returned run's folder (None: a new one under runs_root)
    runs_root: str | Path
    progress: bool
    ex: Execution
    _n_train: int | None = field(default=None, init=False, repr=False)  # loaded once

    # -- the modes ---------------------------------------------------------------------------

    def best(self, finalists: int | None, seeds: int | None) -> Run:
        """The best trial once (the default: one full training), or the finalists' round when
        either count is given."""
        k, n = finalists or FINALISTS, seeds or SEEDS
        if (finalists is None and seeds is None) or k * n == 1:
            return self.once(best_trial(self.study))
        return self.round(top_trials(self.study, k, self.family), n, {})

    def once(self, chosen: optuna.trial.FrozenTrial, record: dict[str, Any] | None = None,
             minutes: float | None = None, path: Path | None = None) -> Run:
        """Train ``chosen``'s spec with its own seed on the whole train split (in ``minutes``, by
        default the call's budget); ``record`` is added to search.json."""
        from ..training import train  # torch: kept out of reading a study
        from ..training.runs import write_json

        raw = chosen.user_attrs.get("spec")
        if trial_state(chosen) == "invalid" or not isinstance(raw, dict):
            why = chosen.user_attrs.get("error") or "it has no spec"
            raise ArchtuneError(f"trial {chosen.number} of study '{self.study.study_name}' cannot "
                                f"be retrained: {why}")
        raw = copy.deepcopy(raw)
        if self.epochs is not None:
            raw["train"]["epochs"] = self.epochs
        if self.ex.data_dir is not None:
            raw["data"]["data_dir"] = self.ex.data_dir
        spec = spec_from_dict(raw, source=f"study '{self.study.study_name}' trial {chosen.number}")
        if self.minutes is None and minutes is None and (kept := self._kept_run(chosen, spec)):
            return self._reuse(kept, chosen, record, path)
        ex = self.ex
        run = train(spec, run_dir=path or self._path(f"trial{chosen.number}", check=False),
                    threads=ex.threads, device=ex.device, progress=self.progress,
                    loggers=ex.loggers, mlflow_uri=ex.mlflow_uri,
                    minutes=self.minutes if minutes is None else minutes)
        write_json(run.path / "search.json", self._record(chosen) | (record or {}))
        return run

    def round(self, top: list[optuna.trial.FrozenTrial], seeds: int, record: dict[str, Any]) -> Run:
        """Choose among the ``top`` trials by mean over ``seeds``; copy the winner's own-seed run
        out (with a time budget: train the winner again in what the round left)."""
        from ..training import load_run  # torch: kept out of reading a study
        from ..training.runs import write_json

        minutes = self.minutes
        if self.run_dir is not None:
            self._path("")  # refused now, not after the round
        deadline = None if minutes is None else time.monotonic() + minutes * 60
        share = None if minutes is None else minutes * FINALISTS_SHARE
        top, left_out = self._fitting(
            top, seeds, share, "finalists", need=1,
            refusal=f"--minutes {minutes or 0:g}: no finalist can train one epoch in its share of the "
                    "round", hint="give more minutes, or --finalists 1 --seeds 1 to train the best "
                                  "trial once")
        finals = choose_finalists(self.study, self.folder, top, study_seed=self.info.seed or 0,
                                  seeds=seeds, epochs=self.epochs, execution=self.ex,
                                  progress=self.progress, minutes=share, left_out=left_out)
        w = finals.winner
        path = self._path(f"trial{w.trial}")
        chosen = get_trial(self.study, w.trial)
        record = {"finalists": finals.to_dict()} | record
        if deadline is not None:  # the winner, trained again with the rest of the budget
            left = max(deadline - time.monotonic(), 1.0) / 60
            log.info("finalists chose trial %d: training it again in the %.1f minutes left",
                     w.trial, left)
            return self.once(chosen, record, minutes=left, path=path)
        shutil.copytree(w.runs[0], path, dirs_exist_ok=True)
        write_json(path / "search.json", self._record(chosen) | record)
        return load_run(path)

    def ensemble(self, k: int, seeds: int, *, auto: bool) -> Run:
        """Average the finalist runs dev cannot tell apart; ``auto``: only when the time budget
        trains each run fully (else the best trial once)."""
        if k * seeds < 2:
            raise ArchtuneError("--ensemble needs at least 2 members: --finalists x --seeds >= 2")
        top = top_trials(self.study, k, self.family)
        record: dict[str, Any] = {}
        if auto:
            decided = self._ensemble_pays(top, seeds)
            record = {"ensemble_auto": decided}
            if not decided["ensemble"]:  # a finalists' round would leave its runs shorter still
                return self.once(best_trial(self.study), record)
        else:
            check_ensemble_limits(self.info, top, seeds)
        minutes = None if self.minutes is None else self.minutes * (1 - EVAL_SHARE)
        top, left_out = self._fitting(
            top, seeds, minutes, "--ensemble", need=-(-2 // seeds),  # 2 members at least
            refusal=f"--ensemble --minutes {self.minutes or 0:g}: too short for 2 members",
            hint="give more minutes, fewer --finalists, or '--ensemble auto'")
        path = self._path("ensemble")  # ensemble() checks it too, but after training
        finals = choose_finalists(self.study, self.folder, top, study_seed=self.info.seed or 0,
                                  seeds=seeds, epochs=self.epochs, execution=self.ex,
                                  progress=self.progress, minutes=minutes, left_out=left_out)
        return ensemble_run(finals, path, lambda trial: self._record(get_trial(self.study, trial))
                            | {"finalists": finals.to_dict(), "ensemble": True} | record)

    # -- what the modes decide from ----------------------------------------------------------

    def _ensemble_pays(self, trials: list[optuna.trial.FrozenTrial], seeds: int) -> dict[str, Any]:
        """``ensemble="auto"``'s decision: average (``{"ensemble": True}``) unless the members
        together exceed the study's budgets or the time budget leaves them under-trained
        (:func:`archtune.search._finalists.undertrained`)."""
        try:
            check_ensemble_limits(self.info, trials, seeds)
        except ArchtuneError as err:
            log.info("--ensemble auto: the best trial trained once, not an ensemble: %s", err)
            return {"ensemble": False, "why": str(err)}
        if self.minutes is None:
            return {"ensemble": True, "why": "no time budget: every member trains its full epochs"}
        why = self._undertrained(trials, seeds, self.minutes * (1 - EVAL_SHARE))
        if why is None:
            log.info("--ensemble auto: each of the %d members fits its full epochs in its share "
                     "of %.1f minutes: averaging them", len(trials) * seeds, self.minutes)
            return {"ensemble": True, "why": "every member fits its full epochs in its share"}
        log.info("--ensemble auto: the best trial trained once with the whole budget, not an "
                 "ensemble: %s", why)
        return {"ensemble": False, "why": why}

    def _undertrained(self, trials: list[optuna.trial.FrozenTrial], seeds: int,
                      minutes: float) -> str | None:
        """Why ``seeds`` runs of each of ``trials`` sharing ``minutes`` would be cut short of
        their full epochs (:func:`archtune.search._finalists.undertrained`), or None."""
        return undertrained(trials, seeds, minutes, self.n_train(trials[0]))

    def _fitting(self, trials: list[optuna.trial.FrozenTrial], seeds: int, minutes: float | None,
                 what: str, *, need: int, refusal: str,
                 hint: str) -> tuple[list[optuna.trial.FrozenTrial], list[str]]:
        """``trials`` less those whose runs cannot train one epoch in their share of ``minutes``
        (:func:`archtune.search._finalists.fitting`), and why each was left out (logged); fewer
        than ``need`` left is refused (``refusal``, the reasons, then ``hint``), before any
        training and without the warnings the error repeats."""
        if minutes is None:
            return trials, []
        rest, left_out = fitting(trials, seeds, minutes, self.n_train(trials[0]))
        if len(rest) < need:
            raise ArchtuneError(f"{refusal} ({'; '.join(left_out)}); {hint}")
        for why in left_out:
            log.warning("%s: left out %s", what, why)
        return rest, left_out

    def n_train(self, trial: optuna.trial.FrozenTrial) -> int:
        """The train split's size of ``trial``'s data set (what a retrain trains on: the study's,
        so it is loaded once)."""
        from ..data import load_data, train_split_size  # torch: kept out of reading a study

        if self._n_train is None:
            raw = trial.user_attrs["spec"].get("data") or {}
            data = load_data(data_config(raw), data_dir=self.ex.data_dir)
            self._n_train = train_split_size(len(data.dataset.y_train), data.config.dev_fraction)
        return self._n_train

    @cached_property
    def family(self) -> str | None:
        """The study's architecture-family choice (auto-space's ``arch``), if its space has one."""
        return family_choice(self.info)

    def _kept_run(self, chosen: optuna.trial.FrozenTrial, spec: Any) -> Run | None:
        """The trial's own kept run when it trained this very spec to its end (full data, full
        epochs, same seed: a search without a coarse pass, with kept runs), else None."""
        from ..specs import output_units  # torch: kept out of reading a study
        from ..training import load_run
        from ..training.trainer import as_trained

        kept = chosen.user_attrs.get("run_dir")
        if not isinstance(kept, str) or not Path(kept, "metrics.json").is_file():
            return None
        try:
            run = load_run(kept)
            wanted = as_trained(spec, output_units(run.spec), quiet=True,
                                input_shape=tuple(run.spec.input_shape))
        except ArchtuneError:
            return None
        return run if run.status == "complete" and run.spec.to_dict() == wanted.to_dict() else None

    def _reuse(self, kept: Run, chosen: optuna.trial.FrozenTrial, record: dict[str, Any] | None,
               path: Path | None) -> Run:
        """``kept`` copied out as the retrained run (nothing trained again), its dev split
        evaluated as ``evaluate`` does."""
        from ..evaluate import evaluate  # torch: kept out of reading a study
        from ..training import load_run
        from ..training.runs import write_json

        dest = path or self._path(f"trial{chosen.number}")  # never copied over another run
        shutil.copytree(kept.path, dest, dirs_exist_ok=True)
        log.info("trial %d trained this spec fully during the search: its run %s is reused, not "
                 "trained again", chosen.number, kept.path)
        write_json(dest / "search.json", self._record(chosen) | (record or {})
                   | {"reused_run": str(kept.path)})
        run = load_run(dest)
        evaluate(run, "dev", data_dir=self.ex.data_dir)  # eval_dev.json, read when asked
        return run

    def _path(self, what: str, check: bool = True) -> Path:
        """The returned run's folder: run_dir, or a new STUDY-<what>-<time> under runs_root;
        ``check``: refuse a folder that is not empty now, before any training."""
        from ..training.runs import new_run_dir  # torch: kept out of reading a study

        path = Path(self.run_dir) if self.run_dir else \
            new_run_dir(f"{self.study.study_name}-{what}", self.runs_root)
        if check and path.exists() and any(path.iterdir()):
            raise ArchtuneError(f"{path} exists and is not empty; choose another --run-dir")
        return path

    def _record(self, chosen: optuna.trial.FrozenTrial) -> dict[str, Any]:
        """search.json: the study and the trial a run was trained from."""
        return {"study": self.study.study_name, "storage": public_url(self.info.storage or ""),
                "trial": chosen.number, "params": chosen.params,
                "search_dev_accuracy": value_of(chosen),
                "fidelity": chosen.user_attrs.get("fidelity")}


def family_choice(info: StudyInfo) -> str | None:
    """The study's architecture-family choice (auto-space's ``arch``), if its space has one."""
    if not info.space:
        return None
    dim = strata_dim(SearchSpace(info.space, source="stored"))
    return None if dim is None else dim.name


_DECISIONS = {"ensemble_auto": "ensemble"}  # search.json key -> its flag


def decisions(run: Run) -> dict[str, dict[str, Any]]:
    """What retrain decided for ``run`` by itself, read once from its search.json:
    ``ensemble_auto`` (``ensemble``, ``why``: ``ensemble="auto"``), only where it decided; a run
    without search.json decided nothing."""
    path = run.path / "search.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    found: dict[str, dict[str, Any]] = {}
    for key, flag in _DECISIONS.items():
        auto = data.get(key)
        if auto is None:
            continue
        if not (isinstance(auto, dict) and isinstance(auto.get(flag), bool)
                and isinstance(auto.get("why"), str)):
            raise ArchtuneError(f"{path}: '{key}' should be a mapping with '{flag}' "
                                f"(true/false) and 'why' (text), got {short(auto)}")
        found[key] = auto
    return found
