"""One trial: sample a candidate, shape-check it, train it, report each epoch, record the row.

The training loop only reports (dev accuracy per epoch through ``trial.report``); the study's
pruner decides, and a pruned trial stops after the epoch it was judged on.
"""

from __future__ import annotations

import copy
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ArchtuneError
from ._info import START_POINT

if TYPE_CHECKING:
    import optuna

    from ..data import Splits
    from ._limits import Limits
    from ._space import SearchSpace

log = logging.getLogger(__name__)


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
    objectives: list[str] | None = None  # multi-objective: dev_accuracy, then costs (see _pareto)
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
    from ..specs import infer_shapes, spec_from_dict, totals
    from ..training import check_compatible

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
        from ._limits import apply

        constraints, measured = ctx.limits.check(spec, t.params, t.flops)
        apply(trial, constraints)
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
    from ._limits import latency_ms
    from ._pareto import costs_of

    if "latency_ms" in objectives and attrs.get("latency_ms") is None:
        attrs["latency_ms"] = latency_ms(spec)
    costs = costs_of(attrs, objectives)
    attrs["objectives"] = dict(zip(objectives[1:], costs, strict=True))
    return costs


def _train(trial: optuna.Trial, spec: Any, ctx: TrialContext, cost: float | None
           ) -> tuple[str, str | None, list[dict[str, float]], str | None]:
    """(state, error, per-epoch history, kept run folder) of training one candidate. State
    ``stopped``: the time budget ran out before the last epoch (the error says after which)."""
    from ..tracking import trial_loggers
    from ..training import StopTraining, train
    from ._pareto import should_prune

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
