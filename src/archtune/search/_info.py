"""Typed records of a study: :class:`StudyInfo` (its study.json) and :class:`TrialRecord` (one
trial as plain data), with the one rule that picks the best trial.

Pure data: no Optuna, storage or file access at import; search, the CLI, notebooks and reports
all read studies through these types.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# What study.json must hold (name -> type; other keys are kept as they are, in ``extra``).
STUDY_FIELDS: dict[str, Any] = {
    "study": str, "storage": str, "space": dict[str, Any], "space_hash": str, "sampler": str,
    "pruner": str, "seed": int, "direction": str, "objective": str, "created": str,
    "trials": int | None, "fraction": float | None, "train_subset": int | None,
    "epochs": int | None, "queued": int | None, "keep_runs": bool,
    "grid_size": int | None, "candidates": int | None, "max_params": int | None,
    "max_flops": float | None, "max_latency_ms": float | None, "objectives": list[str] | None}
# Fields written even when None (their type allows it); the others are left out when unset.
START_POINT = "start_point"  # user attribute of a trial queued from search.start (its index there):
# a baseline, so the pruner never stops it (only the time budget does)
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
