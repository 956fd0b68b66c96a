"""Create, resume, open and list studies, and show one.

A study is identified by its name and storage. Resuming it with a changed space or strategy
(sampler, pruner, seed, fraction, fidelity) is refused unless ``new=True`` replaces it; budgets
(trials, timeout, target, jobs) may change freely. A study is opened as a :class:`Study`: an
``optuna.Study`` (everything Optuna offers works on it) that shows itself as a card in a
notebook and answers archtune's questions directly.
"""

from __future__ import annotations

import datetime
import logging
import math
import shutil
import time
import warnings
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna

from .._html import card, pct, short, table
from .._svg import COLORS, Series, curve
from .._version import __version__
from ..errors import ArchtuneError
from ._objective import PerTrialSeed
from ._records import (
    START_POINT,
    StudyInfo,
    best_trial,
    counts,
    save_info,
    study_info,
    trial_state,
    trials_dataframe,
    value_of,
)
from ._settings import DEFAULT_TRIALS, IDENTITY, LIMITS, SearchSettings, directions
from ._space import SearchSpace, canonical_json
from ._storage import (
    SCRATCH,
    Handle,
    check_name,
    connect,
    default_storage,
    find_folder,
    list_folders,
    load_study,
    public_url,
    read_info,
    storage_for_folder,
    stored_url,
    write_info,
)

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


def _new_info(space: SearchSpace, s: SearchSettings, name: str, url: str,
              extra: dict[str, Any]) -> StudyInfo:
    return StudyInfo.from_dict({
        "study": name, "storage": public_url(url), "space": space.raw, "space_hash": space.hash,
        "sampler": s.sampler, "pruner": s.pruner_name, "seed": s.seed, "direction": "maximize",
        "objective": "dev_accuracy",
        "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "archtune": __version__, "fraction": s.fraction, "train_subset": s.train_subset,
        "epochs": s.epochs, "refined_from": None, "refine_top": None,
        **{k: getattr(s, k) for k in (*LIMITS, "objectives") if getattr(s, k) is not None}, **extra,
    })


def _identity(s: SearchSettings) -> dict[str, Any]:
    values = {k: getattr(s, k) for k in IDENTITY}
    values["pruner"] = s.pruner_name
    return values


def _check_same(info: StudyInfo, space: SearchSpace, s: SearchSettings, name: str) -> None:
    """Refuse to resume a study with a different space or strategy."""
    fix = f"; run with --new to replace study '{name}' (its trials are deleted), or use --study OTHER"
    if info.space_hash != space.hash:
        old = SearchSpace(info.space or {}, source="stored")
        before = {d.name: d.distribution_key() for d in old.dims}
        after = {d.name: d.distribution_key() for d in space.dims}
        changed = sorted(n for n in before.keys() | after.keys() if before.get(n) != after.get(n))
        what = f"dimensions {', '.join(changed[:6])}" if changed else "its fixed values"
        raise ArchtuneError(f"study '{name}' exists with a different search space ({what} changed)"
                            f"{fix}")
    for key, value in _identity(s).items():
        if getattr(info, key) != value:
            raise ArchtuneError(f"study '{name}' was created with {key} {getattr(info, key)!r}, not "
                                f"{value!r}; pass the same value to resume it{fix}")


def _enqueue(handle: Handle, candidates: list[dict[str, Any]]) -> None:
    """Put every grid candidate in the study's queue once (completing an interrupted queue)."""
    queued = {canonical_json(t.system_attrs.get("fixed_params"))
              for t in handle.study.get_trials(deepcopy=False)}
    todo = [c for c in candidates if canonical_json(c) not in queued]
    t0 = time.perf_counter()
    for params in todo:
        handle.study.enqueue_trial(params)
    handle.info.queued = len(candidates)
    save_info(handle.study, handle.info)
    log.info("queued %d grid candidates in %.1fs", len(todo), time.perf_counter() - t0)


def prepare_study(space: SearchSpace, s: SearchSettings, *, name: str, storage: str | None,
            studies_dir: str | Path, new: bool = False, extra: dict[str, Any] | None = None) -> Handle:
    """Create the study, or check that the existing one matches and resume it."""
    check_name(name)
    folder = Path(studies_dir) / name
    local = read_info(folder)
    url = stored_url(storage) if storage else \
        str(local and local.storage or default_storage(studies_dir, name))
    if local is not None and storage is not None and not _same_storage(storage, folder, local):
        raise ArchtuneError(f"{folder} holds study '{name}' of storage '{local.storage}', "
                            f"not '{public_url(storage)}'; choose another --study or --studies-dir")
    candidates, grid_size = space.select(s.fraction, s.seed) if s.sampler == "grid" else (None, None)
    if storage is None and local is None:
        folder.mkdir(parents=True, exist_ok=True)
    rdb = connect(storage if storage else _folder_url(folder, local, new) if local else url)
    exists = name in [x.study_name for x in rdb.get_all_studies()]
    if exists and new:
        log.warning("--new: deleting study '%s' and its %s", name, folder / "trials")
        optuna.delete_study(study_name=name, storage=rdb)
        shutil.rmtree(folder / "trials", ignore_errors=True)
        shutil.rmtree(folder / SCRATCH, ignore_errors=True)
        exists = False
    if not exists:
        info = _new_info(space, s, name, url, {
            "trials": s.trials or (len(candidates) if candidates is not None else DEFAULT_TRIALS),
            "grid_size": grid_size, "candidates": None if candidates is None else len(candidates),
            **(extra or {})})
        try:
            study = optuna.create_study(study_name=name, storage=rdb,
                                        directions=directions(s.objectives),
                                        sampler=make_sampler(s.sampler, s.seed, info.trials),
                                        pruner=make_pruner(s.pruner_name, _max_epochs(space, s),
                                                           multi=s.objectives is not None))
            save_info(study, info)
            for i, params in enumerate((s.start or []) if candidates is None else []):
                study.enqueue_trial(params, user_attrs={START_POINT: i})  # known-good points first
        except optuna.exceptions.DuplicatedStudyError:
            exists = True  # another process created it just now
    if exists:
        study = load_study(rdb, name, url)
        info = study_info(study)
        _check_same(info, space, s, name)
        if s.trials is not None and s.trials != info.trials:
            info.trials = s.trials
            save_info(study, info)
        study = _with_strategy(study, info, rdb, space)
    handle = Handle(Study.of(study), rdb, info, folder)
    if candidates is not None and info.queued != len(candidates):
        _enqueue(handle, candidates)
    write_info(folder, handle.info)
    return handle


def _folder_url(folder: Path, local: StudyInfo, new: bool) -> str:
    try:
        return storage_for_folder(folder, local, must_exist=not new)
    except ArchtuneError as err:
        raise ArchtuneError(f"{err}; run with --new to start the study again") from None


def _same_storage(storage: str, folder: Path, local: StudyInfo) -> bool:
    """Whether a --storage URL names the storage a study folder already uses."""
    if storage.startswith("sqlite:///"):
        return storage_for_folder(folder, local, must_exist=False) == stored_url(storage)
    return public_url(storage) == local.storage


def top_epochs(space: SearchSpace) -> int | None:
    """The most epochs a candidate of ``space`` trains for (None: not a fixed number)."""
    top = space.max_value("train", "epochs")
    return top if isinstance(top, int) and not isinstance(top, bool) else None


def _max_epochs(space: SearchSpace, s: SearchSettings) -> int | None:
    top = top_epochs(space)
    return s.epochs if s.epochs is not None and (top is None or s.epochs < top) else top


def pruner_for(info: StudyInfo, max_epochs: int | None) -> optuna.pruners.BasePruner:
    """The pruner of a study whose trials run at most ``max_epochs`` epochs."""
    s = SearchSettings(sampler=info.sampler, pruner=info.pruner)  # type: ignore[arg-type]
    return make_pruner(s.pruner_name, max_epochs, multi=bool(info.objectives))


def _with_strategy(study: optuna.Study, info: StudyInfo, rdb: Any,
                   space: SearchSpace) -> optuna.Study:
    """The study loaded with the sampler and pruner it was created with."""
    s = SearchSettings(sampler=info.sampler, pruner=info.pruner, seed=info.seed,  # type: ignore[arg-type]
                       epochs=info.epochs)
    return optuna.load_study(study_name=study.study_name, storage=rdb,
                             sampler=make_sampler(s.sampler, s.seed, info.trials),
                             pruner=pruner_for(info, _max_epochs(space, s)))


def attach(study: str | Path, *, storage: str | None = None,
           studies_dir: str | Path = "studies") -> Handle:
    """Open an existing study (by folder, by name under ``studies_dir``, or by name in
    ``storage``) with its sampler and pruner, ready for workers."""
    if storage is not None:
        name = str(study)
        rdb = connect(storage)
        loaded = load_study(rdb, name, storage)
        folder = Path(studies_dir) / name
    else:
        folder = find_folder(study, studies_dir)
        local = read_info(folder)
        url = storage_for_folder(folder, local)
        rdb = connect(url, must_exist=url.startswith("sqlite:///"))
        loaded = load_study(rdb, local.study if local else folder.name, url)
    info = study_info(loaded)
    space = SearchSpace(info.space or {}, source="stored")
    handle = Handle(Study.of(_with_strategy(loaded, info, rdb, space)), rdb, info, folder)
    if storage is not None and read_info(folder) is None:
        # so trials, best and retrain work from this machine too
        write_info(folder, info.replace(storage=stored_url(storage)))
    return handle


def open_study(path_or_name: str | Path, studies_dir: str | Path = "studies", *,
               storage: str | None = None) -> tuple[optuna.Study, dict[str, Any]]:
    """Open a study: its folder, its name under ``studies_dir``, or its name in ``storage``.
    Returns the Optuna study and its archtune info (the contents of study.json, as a dict;
    :attr:`Study.info` gives it as a :class:`StudyInfo`)."""
    handle = attach(path_or_name, storage=storage, studies_dir=studies_dir)
    return handle.study, handle.info.to_dict()


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


def make_sampler(name: str, seed: int, trials: int | None) -> optuna.samplers.BaseSampler:
    """grid studies run from Optuna's trial queue (every point enqueued once), so their sampler
    is never asked for a value; random and tpe are Optuna's samplers, seeded for each trial
    from the study seed and the trial's place (so a resumed or parallel search proposes the
    points an uninterrupted one would)."""
    if name == "grid":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "random":
        return PerTrialSeed(lambda s: optuna.samplers.RandomSampler(seed=s), seed)
    startup = max(4, min(10, (trials or DEFAULT_TRIALS) // 4))

    def tpe(s: int) -> optuna.samplers.BaseSampler:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # multivariate + group model the joint and conditional structure of a space; the
            # constant liar keeps parallel workers from proposing the same point.
            return optuna.samplers.TPESampler(seed=s, n_startup_trials=startup, multivariate=True,
                                              group=True, constant_liar=True)

    return PerTrialSeed(tpe, seed)


def make_pruner(name: str, max_epochs: int | None, multi: bool = False) -> optuna.pruners.BasePruner:
    """Pruners decide from the dev accuracy each trial reports after every epoch. A
    multi-objective study (``multi``) gets none from Optuna: its trials prune themselves
    against their cost peers (see ``_settings``)."""
    if name == "none" or multi:
        return optuna.pruners.NopPruner()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=1)
    if name == "sha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_epochs or "auto",
                                          reduction_factor=3)


class Study(optuna.Study):
    """An Optuna study made by ``archtune search``; ``Study.of(study)`` wraps any other."""

    @classmethod
    def of(cls, study: optuna.Study) -> Study:
        """The same study (same storage, sampler and pruner), as archtune's view."""
        if isinstance(study, cls):
            return study
        view = cls.__new__(cls)
        view.__dict__.update(study.__dict__)
        return view

    @property
    def info(self) -> dict[str, Any]:
        """What the study searches and how (the contents of study.json)."""
        return study_info(self)

    @property
    def counts(self) -> dict[str, int]:
        """Trials per state, and ``done``: the finished trials that count towards the budget."""
        return counts(self)

    def trials_df(self) -> pd.DataFrame:
        """One row per trial (see :func:`archtune.search.trials_dataframe`)."""
        return trials_dataframe(self)

    def __repr__(self) -> str:
        c = self.counts
        parts = ", ".join(f"{c[k]} {k}" for k in ("complete", "pruned", "failed", "invalid",
                                                     "running", "waiting") if c[k])
        try:
            b = best_trial(self)
            best = f"best dev accuracy {value_of(b) * 100:.2f}% (trial {b.number})"
        except ArchtuneError:
            best = "no complete trial yet"
        return f"<Study '{self.study_name}': {c['done']} trials done ({parts or 'none'}); {best}>"

    def _repr_html_(self) -> str:
        return study_html(self)


def study_html(study: optuna.Study) -> str:
    info = study.user_attrs.get("archtune") or {}
    c = counts(study)
    states = ", ".join(f"{c[k]} {k}" for k in ("complete", "pruned", "failed", "invalid",
                                                "running", "waiting") if c[k])
    facts = [("strategy", f"sampler {escape(str(info.get('sampler', '?')))}, pruner "
                          f"{escape(str(info.get('pruner', '?')))}, seed {info.get('seed', '?')}"),
             ("trials", f"{c['done']} of {info.get('trials') or '?'} done" + (f" ({states})" if states else ""))]
    trials = study.get_trials(deepcopy=False)
    figures = []
    try:
        best = best_trial(study)
        facts.append(("best dev", f"<b>{pct(value_of(best))}</b> (trial {best.number})"))
        facts.append(("best params", escape(", ".join(f"{k}={short(v)}" for k, v in best.params.items()))))
    except ArchtuneError:
        best = None
    values = [v if (v := value_of(t)) is not None else math.nan for t in trials]
    so_far, top = [], -math.inf
    for v in values:
        top = max(top, v) if not math.isnan(v) else top
        so_far.append(top if top > -math.inf else math.nan)
    figures.append(curve([Series("trial", values, COLORS["value"], dots=True),
                          Series("best so far", so_far, COLORS["best"])],
                         title="dev accuracy / trial", percent=True, width=280))
    ranked = sorted((t for t in trials if value_of(t) is not None), key=lambda t: -(value_of(t) or 0.0))[:5]
    names = list(dict.fromkeys(k for t in ranked for k in t.params))
    rows = [[t.number, trial_state(t), pct(value_of(t)), t.user_attrs.get("epochs", "-"),
             *[short(t.params.get(n, "-")) for n in names]] for t in ranked]
    below = [table(["trial", "state", "dev acc", "epochs", *names], rows)] if rows else []
    return card(f"Study {escape(study.study_name)}", facts, figures=figures, below=below)
