"""Records of a study, and the one rule that picks its best trial.

:class:`StudyInfo` is what a study searches and how (its study.json and its ``archtune`` user
attribute); :class:`TrialRecord` is one trial as plain data. The functions read an
``optuna.Study``'s trials: each trial's state, counts, one row per trial, one line per trial,
the best trial (:func:`best_record` is the rule; :func:`best_trial` applies it to a study) and
the summary ``archtune best`` prints. No Optuna, storage or file access at import: the CLI,
notebooks and reports read studies through these.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._validate import check_fields
from ..errors import ArchtuneError
from ._settings import costs_of, pareto_front

if TYPE_CHECKING:
    import optuna
    import pandas as pd

# What study.json must hold (name -> type; other keys are kept as they are, in ``extra``).
STUDY_FIELDS: dict[str, Any] = {
    "study": str, "storage": str, "space": dict[str, Any], "space_hash": str, "sampler": str,
    "pruner": str, "seed": int, "direction": str, "objective": str, "created": str,
    "trials": int | None, "fraction": float | None, "train_subset": int | None,
    "epochs": int | None, "queued": int | None, "keep_runs": bool,
    "grid_size": int | None, "candidates": int | None, "max_params": int | None,
    "max_flops": float | None, "max_latency_ms": float | None, "objectives": list[str] | None}
START_POINT = "start_point"  # user attribute of a trial queued from search.start (its index there):
# a baseline, so the pruner never stops it (only the time budget does)
# Fields written even when None (their type allows it); the others are left out when unset.
_NULLABLE = ("trials", "fraction", "train_subset", "epochs", "queued", "grid_size", "candidates")
_STATE_STATUS = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed",
                 "RUNNING": "running", "WAITING": "waiting"}


@dataclass
class StudyInfo:
    """What a study searches and how (the contents of study.json, and of the study's
    ``archtune`` user attribute). ``None``: not recorded."""

    study: str
    storage: str | None = None
    space: dict[str, Any] | None = None
    space_hash: str | None = None
    sampler: str | None = None
    pruner: str | None = None
    seed: int | None = None
    direction: str | None = None
    objective: str | None = None
    created: str | None = None
    trials: int | None = None
    fraction: float | None = None
    train_subset: int | None = None
    epochs: int | None = None
    queued: int | None = None
    keep_runs: bool | None = None
    grid_size: int | None = None
    candidates: int | None = None
    max_params: int | None = None  # budgets a candidate must fit before it is trained
    max_flops: float | None = None
    max_latency_ms: float | None = None
    objectives: list[str] | None = None  # multi-objective: dev_accuracy, then costs to minimise
    extra: dict[str, Any] = field(default_factory=dict)  # other keys (archtune version, ...)

    @classmethod
    def from_dict(cls, data: dict[str, Any], study: str | None = None) -> StudyInfo:
        """From a validated mapping (``study``: the name when the mapping has none)."""
        known = {k: data[k] for k in STUDY_FIELDS if k in data}
        known.setdefault("study", study)
        return cls(**known, extra={k: v for k, v in data.items() if k not in STUDY_FIELDS})

    def to_dict(self) -> dict[str, Any]:
        """The mapping written to study.json and to the study's user attribute."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        out = {k: v for k, v in out.items() if v is not None or k in _NULLABLE}
        return out | self.extra

    def replace(self, **changes: Any) -> StudyInfo:
        return dataclasses.replace(self, **changes)


@dataclass
class TrialRecord:
    """One trial as plain data (read from Optuna once)."""

    number: int
    status: str  # complete / pruned / failed / invalid / running / waiting
    value: float | None
    params: dict[str, Any]
    intermediate: dict[int, float]
    duration_s: float | None
    attrs: dict[str, Any]


def trial_name(number: int, attrs: Mapping[str, Any]) -> str:
    """'trial 3', or 'trial 1 (start point)' for a trial queued from ``search.start``."""
    return f"trial {number}" + (" (start point)" if attrs.get(START_POINT) is not None else "")


def value_of(t: Any) -> float | None:
    """The dev accuracy an ``optuna.trial.FrozenTrial`` was told (its first objective; Optuna's
    ``.value`` raises for multi-objective studies), or None."""
    values = t.values
    return float(values[0]) if values else None


def trial_record(t: Any) -> TrialRecord:
    """The record of an ``optuna.trial.FrozenTrial``."""
    attrs = dict(t.user_attrs)
    status = attrs.get("status") or _STATE_STATUS.get(t.state.name, t.state.name.lower())
    duration = attrs.get("duration_s")
    if duration is None and t.datetime_start and t.datetime_complete:
        duration = (t.datetime_complete - t.datetime_start).total_seconds()
    value = value_of(t) if t.state.name == "COMPLETE" else None
    intermediate = {int(k): float(v) for k, v in t.intermediate_values.items()}
    return TrialRecord(t.number, str(status), value, dict(t.params),
                       intermediate or _history_values(attrs.get("history")),
                       float(duration) if duration is not None else None, attrs)


def _history_values(history: Any) -> dict[int, float]:
    """Dev accuracy by epoch from a trial's ``history`` attribute: a multi-objective trial's only
    per-epoch record (Optuna refuses ``trial.report`` there). Malformed rows are skipped."""
    out: dict[int, float] = {}
    for row in history if isinstance(history, list) else []:
        if isinstance(row, dict) and all(isinstance(row.get(k), int | float) and not isinstance(
                row.get(k), bool) for k in ("epoch", "dev_accuracy")):
            out[int(row["epoch"])] = float(row["dev_accuracy"])
    return out


def best_record(trials: Sequence[TrialRecord], direction: str = "maximize") -> TrialRecord | None:
    """The complete trial with the best finite value, or None."""
    done = [t for t in trials if t.value is not None and math.isfinite(t.value)]
    if not done:
        return None
    pick = max if direction == "maximize" else min
    return pick(done, key=lambda t: (t.value, -t.number))  # type: ignore[arg-type, return-value]


def study_info(study: optuna.Study) -> StudyInfo:
    """The study's archtune settings (its ``archtune`` user attribute), validated."""
    info = study.user_attrs.get("archtune")
    if not isinstance(info, dict):
        raise ArchtuneError(f"study '{study.study_name}' was not made by archtune search (it has no "
                            f"archtune settings)")
    check_fields(info, STUDY_FIELDS, f"study '{study.study_name}' (its archtune settings)",
                 required=("space", "sampler", "pruner", "seed"))
    return StudyInfo.from_dict(info, study.study_name)


def save_info(study: optuna.Study, info: StudyInfo) -> None:
    """Record ``info`` as the study's archtune settings (its user attribute)."""
    study.set_user_attr("archtune", info.to_dict())


def retried_numbers(trials: list[optuna.trial.FrozenTrial]) -> dict[int, int]:
    """{number of a failed trial: number of the trial that retried it}."""
    out = {}
    for t in trials:
        for old in t.system_attrs.get("retry_history", []):
            out[old] = t.number
    return out


def counted(trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    """Finished trials that count towards the budget: not the ones a retry replaced."""
    replaced = retried_numbers(trials)
    return [t for t in trials if t.state.is_finished() and t.number not in replaced]


COLUMNS = ("number", "state", "dev_accuracy", "dev_loss", "epochs", "duration_s", "params_count",
           "flops", "seed", "run_dir", "retry_of", "retried_as", "worker", "started", "error")
PARAM = "param."  # prefix of the parameter columns
STATES = ("complete", "pruned", "failed", "invalid", "running", "waiting")


def trial_state(t: optuna.trial.FrozenTrial) -> str:
    """complete | pruned | failed | invalid | running | waiting."""
    name = t.state.name.lower()
    if t.user_attrs.get("status") == "invalid" and name in ("fail", "pruned"):
        return "invalid"  # a candidate over budget is PRUNED for Optuna, invalid for archtune
    if name == "fail":
        return "failed"
    return {"complete": "complete", "pruned": "pruned", "running": "running"}.get(name, "waiting")


def _error(t: optuna.trial.FrozenTrial, retried: dict[int, int]) -> str | None:
    if t.state.name != "FAIL" or t.user_attrs.get("status") in ("failed", "invalid"):  # their reason
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
               "dev_accuracy": a.get("dev_accuracy", value_of(t)), "dev_loss": a.get("dev_loss"),
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
    """Trials per state (``failed`` without the ``retried`` ones, which a retry replaced),
    ``done``: the finished trials that count towards the budget, and ``stopped``: the pruned
    trials that the time budget stopped."""
    trials = study.get_trials(deepcopy=False)
    replaced = retried_numbers(trials)
    out = dict.fromkeys((*STATES, "retried"), 0)
    for t in trials:
        out["retried" if t.number in replaced else trial_state(t)] += 1
    out["done"] = len(counted(trials))
    out["stopped"] = sum(1 for t in trials if t.user_attrs.get("stopped"))
    return out


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
    """The complete trial with the highest dev accuracy (the rule of :func:`best_record`)."""
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    best = best_record([trial_record(t) for t in done])
    if best is None:
        raise ArchtuneError(f"study '{study.study_name}' has no complete trial yet")
    return next(t for t in done if t.number == best.number)


def get_trial(study: optuna.Study, number: int) -> optuna.trial.FrozenTrial:
    trials = study.get_trials(deepcopy=False)
    for t in trials:
        if t.number == number:
            return t
    raise ArchtuneError(f"study '{study.study_name}' has no trial {number} (trials 0 to "
                        f"{len(trials) - 1})")


def trial_line(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> str:
    """'trial 3 complete: dev accuracy 91.20% after 2 epochs, 12s | best 91.20% (trial 3) | lr=...'."""
    a = trial.user_attrs
    state = trial_state(trial)
    name = trial_name(trial.number, a)
    if state in ("failed", "invalid"):
        head = f"{name} {state}: {a.get('error') or 'stopped before it finished'}"
    else:
        acc = a.get("dev_accuracy")
        head = (f"{name} {state}: dev accuracy "
                f"{'-' if acc is None or math.isnan(acc) else f'{acc * 100:.2f}%'} after "
                f"{a.get('epochs', len(trial.intermediate_values))} epochs, "
                f"{a.get('duration_s') or 0:.0f}s")
    try:
        best = best_trial(study)
        head += f" | best {value_of(best) * 100:.2f}% (trial {best.number})"  # type: ignore[operator]
    except ArchtuneError:
        pass
    params = "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                       for k, v in trial.params.items())
    return f"{head} | {params}" if params else head


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
    front = pareto_front([trial_record(t) for t in study.get_trials(deepcopy=False)], objectives)
    return [{"trial": r.number, "dev_accuracy": r.value,
             **dict(zip(objectives[1:], costs_of(r.attrs, objectives), strict=True))} for r in front]
