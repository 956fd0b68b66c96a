"""Study folders (``studies/<study>/study.json`` + an Optuna storage) and their plot data.

Loading turns Optuna's trials into plain :class:`TrialRecord` rows once (the search
package's records); every plot-data
function below is pure over those rows, so tests check numbers, not pictures.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ArchtuneError
from ..search import (
    StudyInfo,
    TrialRecord,
    connect,
    directions,
    load_study,
    pareto_front,
    pareto_point,
    read_info,
    storage_for_folder,
    trial_record,
)

log = logging.getLogger(__name__)

MIN_IMPORTANCE_TRIALS = 10  # fewer complete trials: no parameter importances are shown
STATUSES = ("complete", "pruned", "failed", "invalid", "running", "waiting")


@dataclass
class ParamInfo:
    name: str
    kind: str  # "float", "int" or "categorical"
    log: bool = False
    choices: list[Any] = field(default_factory=list)


@dataclass
class StudyData:
    folder: Path
    meta: StudyInfo
    direction: str  # "maximize" or "minimize"
    trials: list[TrialRecord]
    params: dict[str, ParamInfo]
    complete: list[Any] = field(default_factory=list)  # Optuna FrozenTrials (for importances)

    @property
    def name(self) -> str:
        return self.meta.study or self.folder.name


def param_text(value: Any) -> str:
    """A parameter value as people read it: 0.1899 rather than 0.18987697514344648."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int | str | bool) or value is None:
        return str(value)
    return json.dumps(value, default=str)


def is_study(path: str | Path) -> bool:
    return (Path(path) / "study.json").is_file()


def read_meta(folder: str | Path) -> StudyInfo:
    """The folder's study.json, validated (one reader: the search package's)."""

    folder = Path(folder)
    meta = read_info(folder)
    if meta is None:
        raise ArchtuneError(f"{folder}: no study.json; not a study folder")
    return meta


def _param_info(name: str, dist: Any) -> ParamInfo:
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(dist, CategoricalDistribution):
        return ParamInfo(name, "categorical", choices=list(dist.choices))
    kind = "int" if isinstance(dist, IntDistribution) else "float"
    return ParamInfo(name, kind, log=bool(getattr(dist, "log", False)))


def load_study_data(folder: str | Path) -> StudyData:
    """Open a study folder's Optuna study and read all its trials."""

    folder = Path(folder)
    meta = read_meta(folder)
    url = storage_for_folder(folder, meta)  # the folder's own study.db, never the cwd's
    study = load_study(connect(url, must_exist=True), meta.study, url)
    trials = study.get_trials(deepcopy=False)
    params: dict[str, ParamInfo] = {}
    for t in trials:
        for name, dist in t.distributions.items():
            if name not in params:
                params[name] = _param_info(name, dist)
    direction = "minimize" if study.directions[0].name == "MINIMIZE" else "maximize"  # dev accuracy
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    return StudyData(folder, meta, direction, [trial_record(t) for t in trials], params, complete)


@dataclass
class History:
    numbers: list[int]  # complete trials
    values: list[float]
    best_so_far: list[float]
    pruned_numbers: list[int]  # pruned trials, at their last intermediate value
    pruned_values: list[float]


def history(trials: Sequence[TrialRecord], direction: str = "maximize") -> History:
    """Objective of each complete trial and the best value so far (in trial order)."""
    better = max if direction == "maximize" else min
    done = sorted((t for t in trials if t.value is not None), key=lambda t: t.number)
    best: list[float] = []
    for t in done:
        best.append(t.value if not best else better(best[-1], t.value))  # type: ignore[arg-type]
    pruned = [t for t in trials if t.status == "pruned" and t.intermediate]
    return History([t.number for t in done], [float(t.value) for t in done], best,  # type: ignore[arg-type]
                   [t.number for t in pruned],
                   [t.intermediate[max(t.intermediate)] for t in pruned])


@dataclass
class CostCurve:
    """The best objective against the CPU time spent, trial after trial (trial order)."""

    minutes: list[float]  # CPU-minutes spent once each finished trial ended (all statuses)
    best: list[float | None]  # the best complete value by then (None: none yet)


def cost_curve(trials: Sequence[TrialRecord], direction: str = "maximize") -> CostCurve:
    """What the study bought with its CPU time: each finished trial's duration (pruned, failed
    and invalid ones included) adds to the minutes; a complete one may improve the best."""
    better = max if direction == "maximize" else min
    spent, best = 0.0, None
    out = CostCurve([], [])
    for t in sorted(trials, key=lambda t: t.number):
        if t.status in ("running", "waiting"):
            continue
        spent += (t.duration_s or 0.0) / 60
        if t.value is not None and math.isfinite(t.value):
            best = t.value if best is None else better(best, t.value)
        out.minutes.append(spent)
        out.best.append(best)
    return out


@dataclass
class Front:
    """Accuracy against cost in a multi-objective study: every complete trial, and the front."""

    objectives: list[str]  # dev_accuracy, then the costs
    numbers: list[int]  # complete trials with every objective
    points: list[list[float]]  # their (accuracy, costs...)
    front: list[TrialRecord]  # the trials no other dominates, cheapest (first cost) first


def front_data(sd: StudyData) -> Front | None:
    """The Pareto front of a multi-objective study (None for a single-objective one)."""

    objectives = sd.meta.objectives
    if not objectives:
        return None
    pts = [(t.number, p) for t in sd.trials if (p := pareto_point(t, objectives)) is not None]
    return Front(list(objectives), [n for n, _ in pts], [p for _, p in pts],
                 pareto_front(sd.trials, objectives))


def status_summary(trials: Sequence[TrialRecord]) -> list[tuple[str, int, float]]:
    """(status, trials, CPU seconds) per status present, in a fixed order."""
    out = []
    for status in list(STATUSES) + sorted({t.status for t in trials} - set(STATUSES)):
        group = [t for t in trials if t.status == status]
        if group:
            out.append((status, len(group), float(sum(t.duration_s or 0.0 for t in group))))
    return out


def axis_values(info: ParamInfo, values: Sequence[Any]) -> np.ndarray:
    """Numeric positions of a parameter's values: category index, log10 for log scales,
    NaN where the trial has no value (conditional parameters)."""
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        if v is None:
            continue
        if info.kind == "categorical":
            out[i] = info.choices.index(v) if v in info.choices else np.nan
        else:
            out[i] = math.log10(v) if info.log and v > 0 else float(v)
    return out


@dataclass
class Parallel:
    """Parallel coordinates of complete trials: each axis scaled to [0, 1] (NaN: no value)."""

    axes: list[str]
    positions: np.ndarray  # (trials, axes)
    values: np.ndarray  # objective of each trial
    tick_labels: list[list[tuple[float, str]]]  # per axis: (position, label)


def _ticks(info: ParamInfo | None, lo: float, hi: float) -> list[tuple[float, str]]:
    span = hi - lo if hi > lo else 1.0
    if info is not None and info.kind == "categorical":
        return [((i - lo) / span, str(c)) for i, c in enumerate(info.choices)]
    out = []
    for q in (0.0, 0.5, 1.0):
        raw = lo + q * (hi - lo)
        shown = 10 ** raw if info is not None and info.log else raw
        out.append((q, f"{shown:.3g}"))
    return out


def parallel(trials: Sequence[TrialRecord], params: dict[str, ParamInfo],
             objective: str = "objective") -> Parallel:
    done = [t for t in trials if t.value is not None]
    names = list(params)
    cols, ticks = [], []
    for name in names:
        raw = axis_values(params[name], [t.params.get(name) for t in done])
        cols.append(raw)
    values = np.array([t.value for t in done], dtype=np.float64)
    cols.append(values.copy())
    infos: list[ParamInfo | None] = [params[n] for n in names] + [None]
    scaled = []
    for col, info in zip(cols, infos, strict=True):
        finite = col[np.isfinite(col)]
        if info is not None and info.kind == "categorical":
            lo, hi = 0.0, float(max(len(info.choices) - 1, 1))
        else:
            lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        span = hi - lo if hi > lo else 1.0
        scaled.append((col - lo) / span)
        ticks.append(_ticks(info, lo, hi))
    positions = np.stack(scaled, axis=1) if done else np.zeros((0, len(names) + 1))
    return Parallel(names + [objective], positions, values, ticks)


@dataclass
class SliceData:
    name: str
    info: ParamInfo
    x: np.ndarray  # axis positions (category index / value; log params as values, log axis)
    y: np.ndarray
    numbers: np.ndarray


def slices(trials: Sequence[TrialRecord], params: dict[str, ParamInfo]) -> list[SliceData]:
    """Objective against each parameter, over the complete trials that set it."""
    done = [t for t in trials if t.value is not None]
    out = []
    for name, info in params.items():
        have = [t for t in done if name in t.params]
        if info.kind == "categorical":
            x = axis_values(info, [t.params[name] for t in have])
        else:
            x = np.array([float(t.params[name]) for t in have])
        out.append(SliceData(name, info, x, np.array([t.value for t in have], dtype=np.float64),
                             np.array([t.number for t in have])))
    return out


def intermediate(trials: Sequence[TrialRecord]) -> list[tuple[int, str, list[int], list[float]]]:
    """(number, status, steps, values) of every trial that reported per-epoch values."""
    out = []
    for t in trials:
        if t.intermediate:
            steps = sorted(t.intermediate)
            out.append((t.number, t.status, steps, [t.intermediate[s] for s in steps]))
    return out


def importances(sd: StudyData) -> dict[str, float]:
    """Parameter importances from Optuna's PED-ANOVA evaluator (fast on thousands of trials);
    empty when there are too few complete trials.

    The complete trials are copied into an in-memory study first, so the storage is not read
    again.
    """
    import warnings

    import optuna
    from optuna.importance import PedAnovaImportanceEvaluator

    if len(sd.complete) < 3:
        return {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quiet = logging.getLogger("optuna")
            level = quiet.level
            quiet.setLevel(logging.WARNING)  # create_study announces itself at INFO
            try:
                memory = optuna.create_study(directions=directions(sd.meta.objectives))
            finally:
                quiet.setLevel(level)
            memory.add_trials(sd.complete)
            # of the dev accuracy (with a target, PED-ANOVA takes lower as better)
            target = (lambda t: -t.values[0]) if sd.meta.objectives else None
            got = optuna.importance.get_param_importances(
                memory, evaluator=PedAnovaImportanceEvaluator(), target=target)
    except (ValueError, RuntimeError) as err:
        log.warning("parameter importances not computed: %s", err)
        return {}
    return {k: float(v) for k, v in got.items()}
