"""Training to a time budget: time the run's own steps first, then plan the epochs that fit.

``train(spec, minutes=M)`` builds a throwaway copy of the run (same model, data, device,
precision, techniques), times a few optimiser steps and a dev pass on it, and trains for as many
epochs as fit in what is left of M minutes. The schedule is planned for that many epochs from the
start (one-cycle needs its length in advance), so nothing is cut short. A timing of a few
seconds can miss: this machine's epochs drift by 15% in phases of several seconds. So the run
re-plans from its own epochs, when 10%, 50% and 80% of its training time have passed
(:class:`Replanner`): the epochs that fit are counted anew and the rest of the schedule is
stretched or squeezed to them. The plan, each re-plan, and the wall time the run really took
are recorded in metrics.json (``time_budget``).
"""

from __future__ import annotations

import copy
import logging
import math
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch

from ..errors import ArchtuneError, short
from .loop import predict_log_probs, predict_logits, train_epoch

log = logging.getLogger(__name__)

MIN_TIMED_S = 3.0  # time optimiser steps for about this long (after the warm-up steps)
MAX_TIMED_STEPS = 200  # and at most this many, unless TIMED_CALLS whole epochs need more
TIMED_CALLS = 3  # short epochs: at least this many timed, their median taken
WARMUP_STEPS = 3  # untimed first steps: kernel selection, allocations
MARGIN = 0.97  # plan for this share of the seconds left: epochs vary a little
REPLAN_AT = (0.1, 0.5, 0.8)  # re-plan when these shares of the training time have passed
REPLAN_MIN_EPOCHS = 3  # and at least this many epochs have run (the first is not timed:
# it warms up and may run the bf16 check); a later re-plan times the epochs since the last
# one when there are at least this many (epochs drift: one run's last 40 were 17% slower)


@dataclass(frozen=True)
class EpochPlan:
    """How a time budget became a number of epochs (seconds are wall-clock, this machine's)."""

    budget_s: float  # the whole call's budget
    spent_s: float  # already gone when the epochs were planned: loading, building, timing
    step_s: float  # one optimiser step, measured (augmentation and weight averaging included)
    epoch_s: float  # one epoch predicted: its steps and its dev pass
    final_s: float  # the final dev evaluation predicted (fp32, the spec's test-time augmentation)
    epochs: int  # planned (at least 1)
    spec_epochs: int  # what the spec said

    @property
    def predicted_s(self) -> float:
        """The whole call's predicted wall time with the planned epochs."""
        return self.spent_s + self.epochs * self.epoch_s + self.final_s

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"predicted_s": self.predicted_s}

    def describe(self) -> str:
        return (f"time budget {self.budget_s / 60:.4g} min: {self.epoch_s:.1f}s an epoch "
                f"({self.step_s * 1000:.0f} ms a step, the dev pass included), "
                f"{self.spent_s:.1f}s spent before training -> {self.epochs} epochs "
                f"(the spec says {self.spec_epochs}), {self.predicted_s:.0f}s predicted")


class Replanner:
    """Counts the epochs that fit anew from the run's own epochs (all of them since the first,
    wall-clock: writing the run folder included), when each of REPLAN_AT's shares of the
    training time has passed; from the second on, only the epochs since the last re-plan count
    when there are REPLAN_MIN_EPOCHS of them, so a drift late in the run is seen.
    ``after_epoch`` returns the new number of epochs when it changed. ``replans`` records every
    check, for metrics.json."""

    def __init__(self, plan: EpochPlan, started: float, clock: Any = time.perf_counter):
        self.plan, self.started, self.clock = plan, started, clock
        self.epochs = plan.epochs
        self.shares = list(REPLAN_AT)  # not yet reached
        self.first_done: float | None = None  # the clock when epoch 1 ended
        self.last: tuple[int, float] | None = None  # (epoch, clock) of the last re-plan
        # (epochs are timed from epoch 1, or from the last re-plan once enough came after it)
        self.replans: list[dict[str, Any]] = []

    def after_epoch(self, epoch: int) -> int | None:
        now = self.clock()
        if epoch == 1:
            self.first_done = now
        plan, elapsed = self.plan, now - self.started
        training_s = plan.budget_s - plan.spent_s - plan.final_s
        due = [a for a in self.shares if elapsed >= plan.spent_s + a * training_s]
        if not due or epoch < REPLAN_MIN_EPOCHS or epoch >= self.epochs or self.first_done is None:
            return None
        self.shares = [a for a in self.shares if a not in due]
        last = self.last
        since, then = (last if last is not None and epoch - last[0] >= REPLAN_MIN_EPOCHS
                       else (1, self.first_done))
        self.last = (epoch, now)
        epoch_s = (now - then) / (epoch - since)
        left = MARGIN * (plan.budget_s - elapsed - plan.final_s)
        epochs = epoch + max(1, math.floor(left / epoch_s))
        self.replans.append({"epoch": epoch, "elapsed_s": elapsed, "epoch_s": epoch_s,
                             "timed_from": since, "epochs": epochs})
        log.info("time budget re-planned after epoch %d (%.0fs gone): %.2fs an epoch measured "
                 "(%.2fs planned) -> %d epochs (%d planned before)", epoch, elapsed, epoch_s,
                 plan.epoch_s, epochs, self.epochs)
        if epochs == self.epochs:
            return None
        self.epochs = epochs
        return epochs

    def to_dict(self) -> dict[str, Any]:
        """metrics.json's ``time_budget`` so far: the plan, the re-plans, the epochs trained."""
        return self.plan.to_dict() | {"replans": self.replans, "epochs_final": self.epochs}


def check_minutes(minutes: float | None) -> None:
    if minutes is not None and not (isinstance(minutes, int | float) and math.isfinite(minutes)
                                    and minutes > 0):
        raise ArchtuneError(f"minutes: expected a time budget > 0 minutes, got {short(minutes)}")


def epochs_that_fit(budget_s: float, spent_s: float, epoch_s: float, final_s: float) -> int:
    """Whole epochs that fit in what is left of ``budget_s`` (at least 1)."""
    left = MARGIN * (budget_s - spent_s - final_s)
    return max(1, math.floor(left / epoch_s)) if epoch_s > 0 else 1


def time_epoch(fit: Any, final_dev: bool) -> tuple[float, float, float]:
    """(seconds per optimiser step, per epoch, of the final dev evaluation) of a prepared run
    ``fit`` (a trainer ``_Fit``, used up by this: its weights and optimiser move)."""
    cfg = fit.spec.train
    n, bs = len(fit.y_train), cfg.batch_size
    flips = fit.tech.flips(1)

    def steps(k: int) -> tuple[float, int]:
        """Seconds of ``k`` steps (fewer on a small training split) and how many ran."""
        m = min(n, k * bs)
        t0 = time.perf_counter()
        train_epoch(fit.tech.train_model, fit.x_train[:m], fit.y_train[:m], cfg, fit.opt,
                    fit.sched, fit.gen, precision=fit.precision, channels_last=fit.channels_last,
                    flips=None if flips is None else flips[:m], after_step=fit.tech.after_step)
        return time.perf_counter() - t0, max(m // bs, 1)

    warm, ran = steps(min(fit.steps, WARMUP_STEPS))  # also a first guess of a step's seconds
    # one call of many steps, as an epoch is: short calls pay train_epoch's own costs each time
    chunk = max(1, min(fit.steps, MAX_TIMED_STEPS, math.ceil(MIN_TIMED_S * ran / max(warm, 1e-6))))
    # epochs shorter than that are timed whole, several times: the median of TIMED_CALLS or more
    # (a mean of two once predicted 1.73 s an epoch that took 1.35 s); a longer call: one, unless
    # the first guess was far off
    whole = chunk == fit.steps
    calls, target = (TIMED_CALLS, MIN_TIMED_S) if whole else (1, MIN_TIMED_S / 2)
    per_step: list[float] = []
    timed, counted = 0.0, 0
    while len(per_step) < calls or (counted < MAX_TIMED_STEPS and timed < target):
        seconds, ran = steps(chunk)
        per_step.append(seconds / ran)
        timed, counted = timed + seconds, counted + ran
    step_s = statistics.median(per_step)
    dev = _timed(lambda x: predict_logits(fit.tech.evaluated, x, batch_size=cfg.eval_batch_size,
                                          precision=fit.precision, channels_last=fit.channels_last),
                 fit.x_dev, calls=TIMED_CALLS)  # paid every epoch: a steady figure
    final = 0.0
    if final_dev:
        final = _timed(lambda x: predict_log_probs(fit.model, x, batch_size=cfg.eval_batch_size,
                                                   channels_last=fit.channels_last, tta=cfg.tta,
                                                   tta_translate=cfg.tta_translate), fit.x_dev,
                       images=1000)  # several views of each image: fewer suffice
    return step_s, fit.steps * step_s + dev, final


def _timed(evaluate: Any, x: torch.Tensor, images: int = 2000, calls: int = 1) -> float:
    """Seconds ``evaluate`` takes on all of ``x``, from a timed part of it (after a warm-up; the
    median of ``calls`` calls)."""
    if len(x) == 0:
        return 0.0
    part = x[:images]
    evaluate(part[:64])
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        evaluate(part)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * len(x) / len(part)


def plan_epochs(spec: Any, prepare: Any, budget_s: float, started: float, final_dev: bool,
                model: Any = None) -> EpochPlan:
    """Time a throwaway copy of the run that ``prepare(spec, model)`` sets up and plan the epochs
    that fit in ``budget_s`` counted from ``started`` (``time.perf_counter()``)."""
    long = spec.with_epochs(10_000)
    fit = prepare(long, None if model is None else copy.deepcopy(model))  # a schedule long
    step_s, epoch_s, final_s = time_epoch(fit, final_dev)  # enough for any number of steps
    del fit
    spent = time.perf_counter() - started
    epochs = epochs_that_fit(budget_s, spent, epoch_s, final_s)
    plan = EpochPlan(budget_s, spent, step_s, epoch_s, final_s, epochs, spec.train.epochs)
    if spent + epoch_s + final_s > budget_s:
        log.warning("the time budget of %.4g min is too short for one epoch (%.1fs predicted, "
                    "%.1fs already spent): training 1 epoch", budget_s / 60, epoch_s, spent)
    log.info("%s", plan.describe())
    return plan
