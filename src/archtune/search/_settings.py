"""Search settings (a space's ``search:`` section, overridden by arguments) and the costs they
bound or trade: budgets a candidate must fit and the objectives of accuracy against cost.

Budgets (``max_params``, ``max_flops``, ``max_latency_ms``): a candidate over budget is rejected
from its spec alone, with no training, and recorded ``invalid`` with the reason. Each limit is
also an Optuna constraint of the trial (``value / limit - 1``, <= 0 when it fits), so TPE learns
which regions of the space are over budget. Latency is measured once per architecture per
process (median of timed forward passes of one image, fp32, on this process's CPU threads).

Objectives (``objectives: [dev_accuracy, params]``): dev accuracy is maximised and each cost
(``params``, ``flops`` per image, batch-1 ``latency_ms``) minimised. A cost is known from the
spec before any training, so every trial records it first. Optuna's pruners refuse
multi-objective studies; here a trial is pruned (``pruner: median``) when its dev accuracy after
an epoch is below the median of the finished trials of *similar cost* at the same epoch: a small
model is judged against small models, not against the large ones that would always beat it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from .._validate import from_dict, kind_of, require
from ..errors import ArchtuneError, unknown

if TYPE_CHECKING:
    import optuna

    from ..specs import Spec
    from ._records import TrialRecord

log = logging.getLogger(__name__)
SAMPLERS = ("grid", "random", "tpe")
PRUNERS = ("none", "median", "sha", "hyperband")
DEFAULT_TRIALS = 20
# Settings that define a study: resuming with a different value is refused (budgets may change).
IDENTITY = ("sampler", "pruner", "seed", "fraction", "train_subset", "epochs", "max_params",
            "max_flops", "max_latency_ms", "objectives")
LIMITS = ("max_params", "max_flops", "max_latency_ms")


@dataclass
class SearchSettings:
    sampler: str = "tpe"  # grid | random | tpe (Bayesian)
    pruner: str | None = None  # none | median | sha | hyperband (default: none for grid, else median)
    trials: int | None = None  # trials to finish in the study (default: the selected grid, else 20)
    timeout: float | None = None  # seconds (per command): no new trial starts, the one in flight stops
    target: float | None = None  # stop once a trial reaches this dev accuracy (0-1)
    fraction: float | None = None  # grid: try this random share of the grid (rounded down, >= 1)
    train_subset: int | None = None  # coarse pass: each trial trains on this many images
    epochs: int | None = None  # at most this many epochs per trial during the search
    seed: int = 0  # seed of the sampler, the grid order and every trial's seed
    jobs: int | Literal["auto"] = 1  # trials at once here, each in its own process (auto: by model size)
    start: list[dict[str, Any]] | None = None  # parameters to try first (e.g. a known recipe)
    # budgets checked from the spec before training (over budget: invalid, 0 training seconds)
    max_params: int | None = None  # trainable parameters
    max_flops: float | None = None  # FLOPs of one image's forward pass
    max_latency_ms: float | None = None  # batch-1 CPU inference, fp32, measured once per architecture
    # accuracy against cost: [dev_accuracy, params | flops | latency_ms ...] or 'pareto' (= params)
    objectives: list[str] | str | None = None

    def validate(self, where: str) -> None:
        if self.sampler not in SAMPLERS:
            raise unknown("sampler", str(self.sampler), SAMPLERS, where)
        if self.pruner is not None and self.pruner not in PRUNERS:
            raise unknown("pruner", str(self.pruner), PRUNERS, where)
        require(self.trials is None or self.trials >= 1, f"{where}.trials", "must be >= 1")
        require(self.timeout is None or self.timeout > 0, f"{where}.timeout", "must be > 0 seconds")
        require(self.target is None or 0 < self.target <= 1, f"{where}.target",
                f"is a dev accuracy between 0 and 1 (e.g. 0.93 for 93%), got {self.target}")
        require(self.fraction is None or 0 < self.fraction <= 1, f"{where}.fraction",
                f"must be in (0, 1], got {self.fraction}")
        require(self.fraction is None or self.sampler == "grid", f"{where}.fraction",
                f"samples a share of a grid: use it with sampler 'grid', not '{self.sampler}'")
        require(self.train_subset is None or self.train_subset >= 1, f"{where}.train_subset",
                "must be >= 1")
        require(self.epochs is None or self.epochs >= 1, f"{where}.epochs", "must be >= 1")
        require(self.jobs == "auto" or self.jobs >= 1, f"{where}.jobs", "must be >= 1 or auto")
        for key in LIMITS:
            value = getattr(self, key)
            require(value is None or value > 0, f"{where}.{key}", f"must be > 0, got {value}")
        self.objectives = parse_objectives(self.objectives, f"{where}.objectives")
        require(self.objectives is None or self.pruner in (None, "none", "median"), f"{where}.pruner",
                f"'{self.pruner}' is Optuna's, which refuses multi-objective studies; use median "
                "(archtune's: against the trials of similar cost) or none")

    @property
    def pruner_name(self) -> str:
        if self.pruner is not None:
            return self.pruner
        return "none" if self.sampler == "grid" else "median"


def settings(section: dict[str, Any] | None, overrides: dict[str, Any] | None = None,
             where: str = "search") -> SearchSettings:
    """The ``search:`` section with ``overrides`` (None values ignored) applied, validated."""
    if section is not None and not isinstance(section, dict):
        raise ArchtuneError(f"{where}: expected a mapping of settings (sampler: tpe, trials: "
                            f"20, ...), got {kind_of(section)}")
    merged = dict(section or {})
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    merged.update(given)
    if merged.get("objectives") and "pruner" not in given and merged.get("pruner") in ("sha", "hyperband"):
        # the space's own pruner was chosen for one objective; an explicit --pruner is checked
        log.warning("%s: the space's pruner '%s' cannot judge a multi-objective study; using "
                    "median (against the trials of similar cost)", where, merged["pruner"])
        merged["pruner"] = "median"
    return from_dict(SearchSettings, merged, where)


def as_dict(s: SearchSettings) -> dict[str, Any]:
    return dataclasses.asdict(s)


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


def pareto_point(t: TrialRecord, objectives: Sequence[str]) -> list[float] | None:
    """A complete trial's (accuracy, costs...), or None when any is missing."""
    if t.value is None or not math.isfinite(t.value):
        return None
    try:
        return [t.value, *costs_of(t.attrs, objectives)]
    except ArchtuneError:
        return None


def pareto_front(trials: Sequence[TrialRecord], objectives: Sequence[str]) -> list[TrialRecord]:
    """The complete trials no other complete trial dominates, cheapest (first cost) first."""
    pts = [(t, p) for t in trials if (p := pareto_point(t, objectives)) is not None]
    front = [(t, p) for t, p in pts if not any(dominates(q, p) for _, q in pts)]
    return [t for t, p in sorted(front, key=lambda tp: (tp[1][1], -tp[1][0], tp[0].number))]


LATENCY_RUNS = 20  # timed forward passes (after 3 warm-up passes); the median is kept
_latency_cache: dict[str, float] = {}


@dataclass(frozen=True)
class Limits:
    max_params: int | None = None
    max_flops: float | None = None
    max_latency_ms: float | None = None

    @classmethod
    def of(cls, info: Any) -> Limits | None:
        """The limits recorded in a study's info (None when it has none)."""
        limits = cls(*(getattr(info, k, None) for k in ("max_params", "max_flops", "max_latency_ms")))
        return limits if any(v is not None for v in vars(limits).values()) else None

    def check(self, spec: Spec, params: int, flops: float) -> tuple[dict[str, float], dict[str, Any]]:
        """({constraint name: value / limit - 1}, measured values) of a candidate; the latency
        is measured only when the cheaper limits hold (an over-budget model is never built)."""
        return self.check_costs(params, flops, lambda: latency_ms(spec))

    def check_costs(self, params: int, flops: float, latency: Callable[[], float]
                    ) -> tuple[dict[str, float], dict[str, Any]]:
        """As :meth:`check`, from the costs; ``latency()`` is called only when needed."""
        constraints: dict[str, float] = {}
        measured: dict[str, Any] = {}
        if self.max_params is not None:
            constraints["params"] = params / self.max_params - 1
        if self.max_flops is not None:
            constraints["flops"] = flops / self.max_flops - 1
        if self.max_latency_ms is not None:
            if any(v > 0 for v in constraints.values()):
                constraints["latency_ms"] = 0.0  # not measured: rejected already
            else:
                measured["latency_ms"] = latency()
                constraints["latency_ms"] = measured["latency_ms"] / self.max_latency_ms - 1
        return constraints, measured

    def reason(self, constraints: dict[str, float], params: int, flops: float,
               measured: dict[str, Any]) -> str | None:
        """One line naming every limit the candidate exceeds, or None when it fits."""
        over = []
        if constraints.get("params", 0) > 0:
            over.append(f"{params:,} parameters > max_params {self.max_params:,}")
        if constraints.get("flops", 0) > 0:
            over.append(f"{flops:,.0f} FLOPs per image > max_flops {self.max_flops:,.0f}")
        if constraints.get("latency_ms", 0) > 0:
            over.append(f"batch-1 latency {measured['latency_ms']:.3g} ms > max_latency_ms "
                        f"{self.max_latency_ms:g}")
        return "over budget: " + "; ".join(over) + " (not trained)" if over else None


def architecture_key(spec: Spec) -> str:
    """What latency depends on: the layers and the input shape (not training settings)."""
    d = spec.to_dict()
    text = json.dumps({"layers": d["layers"], "input_shape": list(spec.input_shape)}, sort_keys=True,
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def latency_ms(spec: Spec) -> float:
    """Median milliseconds of a forward pass of one image, fp32, eval mode, on the CPU."""
    key = architecture_key(spec)
    if key not in _latency_cache:
        import torch

        from ..models import build_model  # torch: kept out of loading a space or the CLI

        model = build_model(spec).eval()
        h, w, c = spec.input_shape
        x = torch.zeros(1, c, h, w)
        times = []
        with torch.inference_mode():
            for i in range(3 + LATENCY_RUNS):
                t0 = time.perf_counter()
                model(x)
                if i >= 3:
                    times.append((time.perf_counter() - t0) * 1000)
        _latency_cache[key] = statistics.median(times)
    return _latency_cache[key]


def apply_constraints(trial: optuna.Trial, constraints: dict[str, float]) -> None:
    """Record the constraints in the trial, for samplers that use them (TPE)."""
    for name, value in constraints.items():
        trial.set_constraint(name, value)
