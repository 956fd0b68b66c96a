"""Accuracy against cost: multi-objective studies (``objectives: [dev_accuracy, params]``).

Dev accuracy is maximised and each cost (``params``, ``flops`` per image, batch-1
``latency_ms``) minimised. A cost is known from the spec before any training, so every trial
records it first. Optuna's pruners refuse multi-objective studies; here a trial is pruned
(``pruner: median``) when its dev accuracy after an epoch is below the median of the finished
trials of *similar cost* at the same epoch: a small model is judged against small models, not
against the large ones that would always beat it early.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._validate import kind_of
from ..errors import ArchtuneError, unknown

if TYPE_CHECKING:
    import optuna

    from ._info import TrialRecord

PRIMARY = "dev_accuracy"  # always the first objective (maximised)
COSTS = {"params": "params_count", "flops": "flops", "latency_ms": "latency_ms"}  # -> user attr
PARETO = [PRIMARY, "params"]  # what `--objectives pareto` means
PEER_FACTOR = 2.0  # trials within this factor of a trial's cost (its first one) are its peers
PEER_MIN = 4  # a trial is judged once this many peers have reached the same epoch
WARMUP_EPOCHS = 1  # never pruned before the end of this epoch (as the median pruner)


def parse_objectives(value: Any, where: str = "search.objectives") -> list[str] | None:
    """The objectives as a list (``dev_accuracy`` then costs), or None for a single-objective
    study. Accepts a list, ``"dev_accuracy,flops"`` or ``"pareto"`` (dev_accuracy and params)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = PARETO if value.strip() == "pareto" else [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ArchtuneError(f"{where}: expected a list such as [dev_accuracy, params], or "
                            f"'pareto', got {kind_of(value)}")
    for name in value:
        if name != PRIMARY and name not in COSTS:
            raise unknown("objective", name, [PRIMARY, *COSTS], where)
    if not value or value[0] != PRIMARY:
        raise ArchtuneError(f"{where}: the first objective must be {PRIMARY} (maximised), then "
                            f"costs to minimise ({', '.join(COSTS)}); got {value}")
    if len(set(value)) != len(value) or PRIMARY in value[1:]:
        raise ArchtuneError(f"{where}: each objective once, got {value}")
    return list(value) if len(value) > 1 else None


def directions(objectives: Sequence[str] | None) -> list[str]:
    """Optuna's study directions: accuracy up, costs down."""
    return ["maximize", *["minimize"] * (len(objectives or [PRIMARY]) - 1)]


def costs_of(attrs: dict[str, Any], objectives: Sequence[str]) -> list[float]:
    """The trial's cost objectives, from its recorded attributes."""
    out = []
    for name in objectives[1:]:
        value = attrs.get(COSTS[name])
        if value is None:
            raise ArchtuneError(f"objective {name}: the trial has no {COSTS[name]} recorded")
        out.append(float(value))
    return out


def _accuracy_at(attrs: dict[str, Any], epochs: int) -> float | None:
    history = attrs.get("history")
    if not isinstance(history, list) or len(history) < epochs:
        return None
    value = history[epochs - 1].get("dev_accuracy") if isinstance(history[epochs - 1], dict) else None
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def peer_median(trials: Sequence[optuna.trial.FrozenTrial], number: int, cost_attr: str,
                cost: float, epochs: int) -> tuple[float | None, int]:
    """(median dev accuracy after ``epochs`` epochs of the finished trials whose cost is within
    PEER_FACTOR of ``cost``, how many there were); None when fewer than PEER_MIN."""
    values = []
    for t in trials:
        if t.number == number or not t.state.is_finished() or t.user_attrs.get("status") == "invalid":
            continue
        other = t.user_attrs.get(cost_attr)
        if not isinstance(other, int | float) or other <= 0 or cost <= 0:
            continue
        if max(other / cost, cost / other) > PEER_FACTOR:
            continue
        acc = _accuracy_at(t.user_attrs, epochs)
        if acc is not None:
            values.append(acc)
    return (statistics.median(values) if len(values) >= PEER_MIN else None), len(values)


def should_prune(trial: optuna.Trial, objectives: Sequence[str], cost: float,
                 history: Sequence[dict[str, float]]) -> bool:
    """Whether a multi-objective trial stops after the epoch it just finished: below the median
    of its cost peers at that epoch (after the warm-up)."""
    epochs = len(history)
    if epochs <= WARMUP_EPOCHS:
        return False
    trials = trial.study.get_trials(deepcopy=False)
    median, _ = peer_median(trials, trial.number, COSTS[objectives[1]], cost, epochs)
    return median is not None and history[-1]["dev_accuracy"] < median


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether point a (accuracy, costs...) is at least as good as b everywhere and better
    somewhere (accuracy higher is better, costs lower)."""
    ge = a[0] >= b[0] and all(x <= y for x, y in zip(a[1:], b[1:], strict=True))
    gt = a[0] > b[0] or any(x < y for x, y in zip(a[1:], b[1:], strict=True))
    return ge and gt


def point(t: TrialRecord, objectives: Sequence[str]) -> list[float] | None:
    """A complete trial's (accuracy, costs...), or None when any is missing."""
    if t.value is None or not math.isfinite(t.value):
        return None
    try:
        return [t.value, *costs_of(t.attrs, objectives)]
    except ArchtuneError:
        return None


def pareto_front(trials: Sequence[TrialRecord], objectives: Sequence[str]) -> list[TrialRecord]:
    """The complete trials no other complete trial dominates, cheapest (first cost) first."""
    pts = [(t, p) for t in trials if (p := point(t, objectives)) is not None]
    front = [(t, p) for t, p in pts if not any(dominates(q, p) for _, q in pts)]
    return [t for t, p in sorted(front, key=lambda tp: (tp[1][1], -tp[1][0], tp[0].number))]
