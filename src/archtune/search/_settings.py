"""Search settings (a space's ``search:`` section, overridden by arguments) and the Optuna
samplers and pruners they name."""

from __future__ import annotations

import dataclasses
import logging
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from .._validate import from_dict, kind_of, require
from ..errors import ArchtuneError, unknown

if TYPE_CHECKING:
    import optuna

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
        from ._pareto import parse_objectives

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


def make_sampler(name: str, seed: int, trials: int | None) -> optuna.samplers.BaseSampler:
    """grid studies run from Optuna's trial queue (every point enqueued once), so their sampler
    is never asked for a value; random and tpe are Optuna's samplers, seeded for each trial
    from the study seed and the trial's place (so a resumed or parallel search proposes the
    points an uninterrupted one would)."""
    import optuna

    from ._sampler import PerTrialSeed

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
    against their cost peers (see ``_pareto``)."""
    import optuna

    if name == "none" or multi:
        return optuna.pruners.NopPruner()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=1)
    if name == "sha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_epochs or "auto",
                                          reduction_factor=3)
