"""One trial: what it samples, where and how it trains, what it records.

A trial samples a candidate, shape-checks it, checks its budgets, trains it reporting dev
accuracy each epoch (the study's pruner decides; a pruned trial stops after the epoch it was
judged on) and returns its row. Its seed and its proposal are fixed by the study seed and its
place: Optuna's samplers draw from one random stream per sampler object, so every new process
(a resumed search, each ``--jobs`` worker) would propose the first trials' points again;
:class:`PerTrialSeed` gives each trial a sampler seeded from the study seed and the trial's
place among the proposals, and each parameter sampled on its own a seed of its own (so a retry
whose first parameters are fixed draws the others as its original did).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import math
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna

from ..config import data_config
from ..errors import ArchtuneError
from ..specs import infer_shapes, spec_from_dict, totals
from ..specs.layers import normalize_layer
from ..tracking import resolve as resolve_loggers
from ..tracking import trial_loggers
from ._records import START_POINT
from ._settings import Limits, apply_constraints, costs_of, latency_ms, should_prune

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.study import Study
    from optuna.trial import FrozenTrial, TrialState

    from ..data import Splits
    from ..tracking import Tracking
    from ._space import SearchSpace

log = logging.getLogger(__name__)
RETRY_OF = "failed_trial"  # system attribute of Optuna's retry: the number of the trial it reruns
TrialCallback = Callable[["optuna.Study", "optuna.trial.FrozenTrial"], None]


@dataclass(frozen=True)
class Execution:
    """How this process runs a study's trials: none of it is part of the study, so each worker
    (process or machine) may choose its own."""

    threads: int | None = None  # CPU threads per trial (None: the cores divided among the jobs)
    device: str | None = None  # cpu | cuda (None: the best this machine has)
    data_dir: str | None = None  # folder holding the data set's files on this machine
    keep_runs: bool | None = None  # keep each trial's run folder in STUDY/trials/N (None: as the study)
    loggers: str | Sequence[str] | Tracking | None = None  # "tensorboard", "mlflow": every trial
    mlflow_uri: str | None = None  # MLflow tracking URI (default sqlite:///mlflow.db)
    on_trial: TrialCallback | Sequence[TrialCallback] | None = None  # (study, trial), once each
    progress: bool | None = None  # a printed line per finished trial (None: in a notebook only)

    def tracking(self) -> Tracking | None:
        return resolve_loggers(self.loggers, self.mlflow_uri) if self.loggers or self.mlflow_uri else None


def load_search_splits(space: SearchSpace, *, train_subset: int | None = None,
                       data_dir: str | None = None) -> Splits:
    """The train and dev splits of the space's data set (the test split is never read).

    ``train_subset`` is a coarse pass's "at most": on a data set whose train split is no
    larger, every trial trains on all of it (a space's 12,000 fits any data set), for more
    epochs (see :func:`coarse_epochs`)."""
    from ..data import load_data, train_split_size  # torch: kept out of loading a study

    data = load_data(data_config(space.raw.get("data")), data_dir=data_dir)
    if train_subset is not None:
        n_train = train_split_size(len(data.dataset.y_train), data.config.dev_fraction)
        if train_subset < n_train:
            data.train_subset = train_subset
        else:
            log.info("coarse pass: the train split has %d images, not more than train_subset=%d; "
                     "trials train on all of them", n_train, train_subset)
    return data.splits


def coarse_epochs(epochs: int | None, train_subset: int | None, n_train: int, *,
                  full: int | None = None) -> int | None:
    """The epoch cap of a coarse pass (``epochs`` on ``train_subset`` images) on a train split
    of ``n_train`` images. A coarse pass is a number of images seen: on a smaller data set each
    trial gets more epochs, ``ceil(epochs * train_subset / n_train)``, at most ``full`` (the
    space's own epochs). Otherwise it is ``epochs`` as given (None: no cap)."""
    if epochs is None or not train_subset or n_train <= 0 or n_train >= train_subset:
        return epochs
    scaled = math.ceil(epochs * train_subset / n_train)
    return max(epochs, min(scaled, full) if full is not None else scaled)


def check_data(space: SearchSpace, splits: Splits) -> None:
    """Fail at once when no candidate can fit the data (instead of N invalid trials)."""
    from ..data import check_fits  # torch: kept out of loading a study

    try:  # the last layer's units, unless they are searched or 'classes' (they fit any data)
        last = normalize_layer(space.raw["layers"][-1], 0)
        units = last.args["units"] if last.type == "Dense" else None
    except ArchtuneError:
        units = None
    pinned = space.raw.get("input_shape")  # absent or auto: each trial takes the data's shape
    if pinned in (None, "auto"):
        pinned = [*splits.input_shape[1:], splits.input_shape[0]]
    check_fits(splits, kind="space", name=space.name, units=units, input_shape=pinned)


def trial_seed(study_seed: int, number: int) -> int:
    """The seed of trial ``number``: fixed by the study seed, so any trial can be rerun exactly."""
    import numpy as np

    return int(np.random.SeedSequence([study_seed, number]).generate_state(1)[0] % 2**31)


@dataclass
class TrialContext:
    """What every trial of one worker shares."""

    space: SearchSpace
    splits: Splits
    study_seed: int
    epochs: int | None = None  # search fidelity: at most this many epochs
    train_subset: int | None = None  # search fidelity: the data subset in use (for the record)
    data_dir: str | None = None
    runs_dir: Path | None = None  # keep trial run folders here (trials/<number>)
    scratch_dir: Path | None = None  # else train them here (scratch/<number>), removed after the
    # trial (and by the next worker when a killed one left them); None: the system's temp folder
    threads: int | None = None
    device: str | None = None
    tracking: Any = None  # archtune.tracking.Tracking of the study, or None: no loggers
    limits: Limits | None = None  # budgets checked before training
    objectives: list[str] | None = None  # multi-objective: dev_accuracy, then costs (_settings)
    cost_pruning: bool = False  # multi-objective: prune against the trials of similar cost
    deadline: float | None = None  # time.monotonic() of the time budget: a trial then stops
    timeout: float | None = None  # that budget in seconds (for the record)


@dataclass
class TrialResult:
    state: str  # complete | pruned | failed | invalid
    value: float | None
    attrs: dict[str, Any] = field(default_factory=dict)
    costs: list[float] = field(default_factory=list)  # multi-objective: the cost objectives

    def told(self) -> float | list[float] | None:
        """What Optuna is told: the dev accuracy (with the costs in a multi-objective study)."""
        if self.state != "complete":
            return None
        return [self.value, *self.costs] if self.costs else self.value  # type: ignore[list-item]


def _fidelity(spec_dict: dict[str, Any], ctx: TrialContext) -> dict[str, Any]:
    """The spec as trained during the search: fewer epochs and a data subset when asked."""
    out = copy.deepcopy(spec_dict)
    if ctx.epochs is not None:
        out["train"]["epochs"] = min(out["train"]["epochs"], ctx.epochs)
    if ctx.train_subset is not None:
        out["data"]["train_subset"] = ctx.train_subset
    if ctx.data_dir is not None:
        out["data"]["data_dir"] = ctx.data_dir
    return out


def _summary(history: list[dict[str, float]]) -> dict[str, Any]:
    if not history:
        return {"dev_accuracy": None, "dev_loss": None, "epochs": 0}
    best = max(history, key=lambda r: r["dev_accuracy"])
    return {"dev_accuracy": best["dev_accuracy"], "dev_loss": best["dev_loss"], "epochs": len(history)}


def run_trial(trial: optuna.Trial, ctx: TrialContext, original_number: int) -> TrialResult:
    """Run one trial; only KeyboardInterrupt (and errors of the storage) escape."""
    from ..training import check_compatible  # torch: kept out of loading a study

    started = time.perf_counter()
    seed = trial_seed(ctx.study_seed, original_number)
    attrs: dict[str, Any] = {"seed": seed, "run_dir": None, "error": None, "dev_accuracy": None,
                             "dev_loss": None, "epochs": 0, "params_count": None, "flops": None,
                             "fidelity": {"epochs": ctx.epochs, "train_subset": ctx.train_subset}}
    raw = ctx.space.sample(trial)
    raw.setdefault("train", {})["seed"] = seed
    attrs["spec"] = raw
    try:
        spec = spec_from_dict(raw, source="candidate")
        spec = check_compatible(spec, ctx.splits)
    except ArchtuneError as err:
        attrs.update(status="invalid", error=str(err), duration_s=time.perf_counter() - started)
        return TrialResult("invalid", None, attrs)
    t = totals(infer_shapes(spec))
    attrs.update(spec=spec.to_dict(), params_count=t.params, flops=t.flops)
    if ctx.limits is not None:
        constraints, measured = ctx.limits.check(spec, t.params, t.flops)
        apply_constraints(trial, constraints)
        attrs.update(measured, constraints=constraints)
        reason = ctx.limits.reason(constraints, t.params, t.flops, measured)
        if reason is not None:
            attrs.update(status="invalid", error=reason, over_budget=True, train_seconds=0.0,
                         duration_s=time.perf_counter() - started)
            return TrialResult("invalid", None, attrs)
    costs = _costs(spec, attrs, ctx.objectives)
    state, error, history, run_dir = _train(trial, spec_from_dict(_fidelity(spec.to_dict(), ctx)),
                                            ctx, costs[0] if costs else None)
    if state == "stopped":  # by the time budget: pruned, with the reason kept
        state, attrs["stopped"] = "pruned", error
        error = None
    attrs.update(_summary(history), status=state, error=error, run_dir=run_dir,
                 history=history, duration_s=time.perf_counter() - started)
    value = attrs["dev_accuracy"] if state == "complete" else None
    if state == "complete" and value is None:
        attrs.update(status="failed", error="training ended before its first epoch")
        return TrialResult("failed", None, attrs)
    return TrialResult(state, value, attrs, costs)


def _has_complete(trial: optuna.Trial) -> bool:
    """Whether the trial's study holds a complete trial (so stopping this one leaves a trial to
    retrain)."""
    from optuna.trial import TrialState

    return bool(trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def _costs(spec: Any, attrs: dict[str, Any], objectives: list[str] | None) -> list[float]:
    """A multi-objective trial's costs, recorded before training (latency measured if asked)."""
    if not objectives:
        return []
    if "latency_ms" in objectives and attrs.get("latency_ms") is None:
        attrs["latency_ms"] = latency_ms(spec)
    costs = costs_of(attrs, objectives)
    attrs["objectives"] = dict(zip(objectives[1:], costs, strict=True))
    return costs


def _train(trial: optuna.Trial, spec: Any, ctx: TrialContext, cost: float | None
           ) -> tuple[str, str | None, list[dict[str, float]], str | None]:
    """(state, error, per-epoch history, kept run folder) of training one candidate. State
    ``stopped``: the time budget ran out before the last epoch (the error says after which)."""
    from ..training import StopTraining, train  # torch: kept out of loading a study

    history: list[dict[str, float]] = []
    out_of_time: list[str] = []
    warned: list[bool] = []
    baseline = trial.user_attrs.get(START_POINT) is not None  # a start point: never pruned

    def on_epoch(epoch: int, row: dict[str, float]) -> None:
        history.append({k: float(v) for k, v in row.items()})
        if ctx.objectives is None:  # Optuna's pruner decides from the reported values
            trial.report(row["dev_accuracy"], step=epoch)
            stop = trial.should_prune()  # asked even for a start point: it records the rungs
        else:  # Optuna refuses reports in multi-objective studies: judged against cost peers
            stop = ctx.cost_pruning and cost is not None and should_prune(trial, ctx.objectives, cost, history)
        if stop and baseline:
            log.debug("trial %d: a start point, so not pruned after epoch %d", trial.number, epoch)
        elif stop:
            raise StopTraining(f"pruned after epoch {epoch}")
        if ctx.deadline is not None and epoch < spec.train.epochs and time.monotonic() >= ctx.deadline:
            if _has_complete(trial):
                out_of_time.append(f"stopped after epoch {epoch} of {spec.train.epochs}: the "
                                   f"search's time budget of {ctx.timeout:g}s is spent")
                raise StopTraining(out_of_time[0])
            if not warned:
                warned.append(True)
                log.info("trial %d: the time budget is spent, but the study has no complete "
                         "trial yet: this one trains to its end", trial.number)

    keep = ctx.runs_dir is not None
    home = ctx.runs_dir if keep else ctx.scratch_dir
    if home is None:
        run_dir = Path(tempfile.mkdtemp(prefix="archtune-trial-"))
    else:
        run_dir = home / str(trial.number)
        if run_dir.exists():
            shutil.rmtree(run_dir)  # left by a worker that died during this trial number
    try:
        train(spec, splits=ctx.splits, run_dir=run_dir, progress=False, threads=ctx.threads,
              device=ctx.device, epoch_callback=on_epoch, final_dev=False,  # scored per epoch
              callbacks=trial_loggers(ctx.tracking, trial.number, trial.params))
        state, error = "complete", None
    except StopTraining:
        state, error = ("stopped", out_of_time[0]) if out_of_time else ("pruned", None)
    except ArchtuneError as err:
        state, error = "failed", str(err)
    except Exception as err:  # a trial that crashes is recorded; the search goes on
        log.debug("trial %d crashed", trial.number, exc_info=True)
        state, error = "failed", f"{type(err).__name__}: {err}"
    finally:
        if not keep:
            shutil.rmtree(run_dir, ignore_errors=True)
    return state, error, history, str(run_dir) if keep else None


def proposal_index(trials: Sequence[FrozenTrial], trial: FrozenTrial) -> int:
    """The trial's place among the study's proposals: its number, less the retries numbered
    before it (a retry reruns a dead trial's point and takes that trial's place)."""
    number = trial.system_attrs.get(RETRY_OF, trial.number)
    return number - sum(1 for t in trials if t.number < number and RETRY_OF in t.system_attrs)


def proposal_seed(study_seed: int, index: int, param: str | None = None) -> int:
    """The sampler seed of proposal ``index`` (of its parameter ``param`` when given), a stream
    apart from the trials' training seeds."""
    import numpy as np

    key = [study_seed, 104729, index]
    if param is not None:
        key.append(int.from_bytes(hashlib.sha256(param.encode()).digest()[:8], "little"))
    return int(np.random.SeedSequence(key).generate_state(1)[0] % 2**31)


class PerTrialSeed(optuna.samplers.BaseSampler):
    """Delegates to ``make(seed)`` (an Optuna sampler), built for each trial with the seed of
    its proposal index, and for each parameter it samples independently."""

    def __init__(self, make: Callable[[int], optuna.samplers.BaseSampler], seed: int):
        self._make, self._seed = make, seed
        self._current: tuple[int, int, optuna.samplers.BaseSampler] | None = None

    def _index(self, study: Study, trial: FrozenTrial) -> int:
        if self._current is None or self._current[0] != trial._trial_id:
            # all trials: a pruner may hand the sampler a filtered view of the study
            trials = study._storage.get_all_trials(study._study_id, deepcopy=False)
            index = proposal_index(trials, trial)
            self._current = (trial._trial_id, index, self._make(proposal_seed(self._seed, index)))
        return self._current[1]

    def _for(self, study: Study, trial: FrozenTrial) -> optuna.samplers.BaseSampler:
        self._index(study, trial)
        assert self._current is not None
        return self._current[2]

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial
                                    ) -> dict[str, BaseDistribution]:
        return self._for(study, trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return self._for(study, trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        seed = proposal_seed(self._seed, self._index(study, trial), param_name)
        return self._make(seed).sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._for(study, trial).before_trial(study, trial)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self._for(study, trial).after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        """Nothing to do: every trial's seed is fixed by the study seed and its index."""
