"""Search dimensions: ``{choice: [...]}``, ``{int: [lo, hi], step, log}``, ``{float: [lo, hi], log}``.

A :class:`Dim` validates itself when parsed (the error names the place in the space file and
the bad value), turns into an Optuna distribution, suggests a value from a trial, and lists
its values for grid search. Parsing never imports Optuna.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ArchtuneError, short, unknown

if TYPE_CHECKING:
    import optuna

KINDS = ("choice", "int", "float")
OPTIONS = {"choice": ("name",), "int": ("name", "step", "log"), "float": ("name", "step", "log")}
GRID_LIMIT = 100_000  # the most candidates a grid may have


def is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def is_dim(value: Any) -> bool:
    """A mapping is a dimension when it has one of the keys choice, int or float."""
    return isinstance(value, dict) and any(k in value for k in KINDS)


@dataclass(frozen=True)
class Dim:
    """One searched value. ``choices`` are the parameter values Optuna sees: the values
    themselves for scalar choices, else branch labels (the mapping's keys, or 0, 1, ...)."""

    name: str
    kind: str
    where: str
    choices: tuple[Any, ...] = ()
    low: float = 0
    high: float = 0
    step: float | None = None
    log: bool = False

    def distribution(self) -> optuna.distributions.BaseDistribution:
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        if self.kind == "choice":
            return CategoricalDistribution(list(self.choices))
        if self.kind == "int":
            return IntDistribution(int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return FloatDistribution(self.low, self.high, log=self.log, step=self.step)

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1),
                                     log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def grid_values(self) -> list[Any]:
        """Every value of the dimension, in order; continuous ranges have none."""
        if self.kind == "choice":
            return list(self.choices)
        if self.kind == "float" and self.step is None:
            raise ArchtuneError(
                f"{self.where}: '{self.name}' is a continuous range, which a grid cannot list; give it "
                f"a step or make it a choice")
        n = round((self.high - self.low) / (self.step or 1))
        if n >= GRID_LIMIT:
            raise ArchtuneError(f"{self.where}: '{self.name}' has more than {GRID_LIMIT:,} values, "
                                f"more than a grid can list; use sampler random or tpe")
        if self.kind == "int":
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        return [float(f"{self.low + i * self.step:.12g}") for i in range(n + 1)]

    def distribution_key(self) -> tuple[Any, ...]:
        return (self.kind, self.choices, self.low, self.high, self.step, self.log)

    def contains(self, value: Any) -> bool:
        if self.kind == "choice":
            return any(_same(value, c) for c in self.choices)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return self.low - 1e-12 <= value <= self.high + 1e-12

    def describe(self) -> str:
        if self.kind == "choice":
            return "choice of " + ", ".join(json.dumps(c) for c in self.choices)
        extra = (f", step {self.step:g}" if self.step else "") + (", log scale" if self.log else "")
        return f"{self.kind} in [{self.low:g}, {self.high:g}]{extra}"


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _number(value: Any, integer: bool) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) if integer else isinstance(value, int | float) and math.isfinite(value)


def _choices(values: Any, where: str) -> tuple[tuple[Any, ...], list[Any] | None, bool]:
    """Return (parameter values, branch values or None, labelled)."""
    if isinstance(values, dict):
        if not values:
            raise ArchtuneError(f"{where}: empty choice; give at least one value")
        labels = tuple(values)
        bad = [k for k in labels if not isinstance(k, str)]
        if bad:
            raise ArchtuneError(f"{where}: the labels of a choice must be text, got {short(bad[0])} "
                                f"(quote it)")
        return labels, list(values.values()), True
    if not isinstance(values, list):
        raise ArchtuneError(f"{where}: 'choice' takes a list of values (or a mapping of labelled "
                            f"branches), got {short(values)}")
    if not values:
        raise ArchtuneError(f"{where}: empty choice; give at least one value")
    seen: list[str] = []
    for v in values:
        key = json.dumps([type(v).__name__, v], sort_keys=True, default=str)
        if key in seen:
            raise ArchtuneError(f"{where}: the value {json.dumps(v)} appears twice in the choice")
        seen.append(key)
    if all(is_scalar(v) for v in values):
        return tuple(values), None, False
    return tuple(range(len(values))), list(values), False


def _parses(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _range(kind: str, raw: dict[str, Any], where: str) -> tuple[float, float, float | None, bool]:
    bounds, step, log = raw[kind], raw.get("step"), raw.get("log", False)
    integer = kind == "int"
    what = "integers" if integer else "numbers"
    if not isinstance(bounds, list) or len(bounds) != 2 or not all(_number(b, integer) for b in bounds):
        hint = ""
        if isinstance(bounds, list) and any(isinstance(b, str) and _parses(b) for b in bounds):
            hint = " (YAML reads 1e-4 as text: write 1.0e-4)"
        raise ArchtuneError(f"{where}: '{kind}' takes [low, high] as two {what}, got {short(bounds)}{hint}")
    low, high = bounds
    if not low < high:
        raise ArchtuneError(f"{where}: empty range [{low}, {high}]; low must be below high")
    if not isinstance(log, bool):
        raise ArchtuneError(f"{where}.log: expected true or false, got {short(log)}")
    if log and low <= 0:
        raise ArchtuneError(f"{where}: a log-scale range must be above 0, got [{low}, {high}]")
    if step is not None:
        if not _number(step, integer) or step <= 0:
            raise ArchtuneError(f"{where}.step: expected a positive {'integer' if integer else 'number'}, "
                                f"got {short(step)}")
        if log and not (integer and step == 1):
            raise ArchtuneError(f"{where}: 'log' and 'step' cannot be combined (Optuna samples a log "
                                f"range continuously)")
        n = (high - low) / step
        if abs(n - round(n)) > 1e-9:
            raise ArchtuneError(f"{where}: the range [{low}, {high}] is not a whole number of steps "
                                f"of {step}")
    return low, high, step, log


def own_name(raw: dict[str, Any], where: str) -> str | None:
    """The ``name:`` a dimension (or repeat) gives itself, checked; None when it has none."""
    name = raw.get("name")
    if name is not None and (not isinstance(name, str) or not name or any(c.isspace() for c in name)):
        raise ArchtuneError(f"{where}.name: expected a name without spaces, got {short(name)}")
    return name


def parse_dim(raw: dict[str, Any], where: str, name: str) -> tuple[Dim, list[Any] | None, bool]:
    """Validate a dimension mapping; return (dim, branch values or None, labelled)."""
    kinds = [k for k in KINDS if k in raw]
    if len(kinds) > 1:
        raise ArchtuneError(f"{where}: a dimension has one of {', '.join(KINDS)}, not {' and '.join(kinds)}")
    kind = kinds[0]
    for key in raw:
        if key != kind and key not in OPTIONS[kind]:
            raise unknown(f"option of a '{kind}' dimension", str(key), OPTIONS[kind], where)
    if kind == "choice":
        choices, branches, labelled = _choices(raw["choice"], where)
        return Dim(name, kind, where, choices=choices), branches, labelled
    low, high, step, log = _range(kind, raw, where)
    return Dim(name, kind, where, low=low, high=high, step=step, log=log), None, False
