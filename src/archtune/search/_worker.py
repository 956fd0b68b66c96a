"""The worker loop, and what watches it.

A worker takes a trial, runs it with a heartbeat and records it, until a budget is spent.
Several workers (processes, machines) can share a study. Grid studies take only queued
trials, which the storage hands out atomically, so every grid point runs exactly once. A trial
left running by a dead worker is failed and queued again with the same parameters: at once
when the worker ran on this machine (its process is gone), otherwise when its heartbeat stops.

Around the workers (:func:`study_hooks`): per-trial callbacks (one line per trial in a
notebook) and the experiment loggers' study-level state (the study's MLflow run). Trials may
run in other processes, so per-trial callbacks are not called by the trials: a thread of this
process watches the study and calls them, in order, for every trial that finishes while the
search runs (and once more when it ends, so none is missed).
"""

from __future__ import annotations

import datetime
import logging
import shutil
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState

from .._html import in_notebook
from .._process import is_gone as _is_dead
from .._process import this_process as this_worker
from ..errors import ArchtuneError
from ..tracking import end_study, for_study
from ._objective import RETRY_OF, TrialCallback, TrialContext, TrialResult, run_trial, trial_seed
from ._records import (
    best_record,
    best_trial,
    counted,
    trial_line,
    trial_name,
    trial_record,
    value_of,
)
from ._storage import GRACE_S, HEARTBEAT_S, SCRATCH, Handle

if TYPE_CHECKING:
    from ..tracking import Tracking

log = logging.getLogger(__name__)
WORKER = "archtune:worker"  # system attribute of a running trial: the worker running it
POLL_S = 1.0  # seconds between two looks at the study for finished trials (per-trial callbacks)


@dataclass
class Budget:
    trials: int | None = None  # finished trials the study should hold
    timeout: float | None = None  # seconds after which this worker starts no new trial and its
    # trial in flight stops after the epoch it is in (recorded as pruned, with the reason)
    target: float | None = None  # stop once the best dev accuracy reaches this


class _Heartbeat:
    """Record the trial's heartbeat every HEARTBEAT_S seconds while it runs."""

    def __init__(self, handle: Handle, trial_id: int):
        self.storage, self.trial_id = handle.storage, trial_id
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True, name="archtune-heartbeat")

    def _beat(self) -> None:
        while not self.stop.wait(HEARTBEAT_S):
            try:
                self.storage.record_heartbeat(self.trial_id)
            except Exception as err:  # the next beat may get through; the trial goes on
                log.warning("heartbeat of trial %d not recorded: %s", self.trial_id, err)

    def __enter__(self) -> _Heartbeat:
        self.storage.record_heartbeat(self.trial_id)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def _retry(handle: Handle, trial_id: int) -> None:
    """Fail a trial that did not finish and queue a copy with the same parameters."""
    try:
        if not handle.storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
            return
    except optuna.exceptions.UpdateFinishedTrialError:
        return  # another worker got there first
    callback = handle.storage.get_heartbeat_stale_trial_callback()
    frozen = handle.storage.get_trial(trial_id)
    if callback is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            callback(handle.study, frozen)
    log.warning("trial %d did not finish (its worker stopped); it runs again as a new trial",
                frozen.number)


def recover(handle: Handle) -> None:
    """Retry trials of dead workers: this machine's at once, others' when their heartbeat stops,
    and a trial that no worker claimed (its worker died right after taking it from the queue)
    after GRACE_S."""
    now = datetime.datetime.now()
    for t in handle.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = t.system_attrs.get(WORKER)
        unclaimed = worker is None and t.datetime_start is not None and \
            (now - t.datetime_start).total_seconds() > GRACE_S
        if unclaimed or _is_dead(worker):
            _retry(handle, t._trial_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(handle.study)
    _sweep_scratch(handle)


def _sweep_scratch(handle: Handle) -> None:
    """Remove the scratch run folders of trials that no worker runs: a killed worker's."""
    scratch = handle.folder / SCRATCH
    # listed before the running trials are read: a trial runs before its folder is made, so a
    # folder listed here whose trial is not running in the read after is no live trial's
    left = [p for p in scratch.iterdir() if p.is_dir()] if scratch.is_dir() else []
    if not left:
        return
    running = {str(t.number) for t in handle.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    for path in left:
        if path.name not in running:
            log.debug("removing %s: its trial is not running (its worker was killed)", path)
            shutil.rmtree(path, ignore_errors=True)


def _claim_waiting(handle: Handle) -> int | None:
    """Atomically take a queued trial (as Optuna's own queue does); None when there is none."""
    for t in handle.storage.get_all_trials(handle.study._study_id, deepcopy=False,
                                           states=(TrialState.WAITING,)):
        try:
            if handle.storage.set_trial_state_values(t._trial_id, state=TrialState.RUNNING):
                return t._trial_id
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
    return None


def next_trial(handle: Handle, grid: bool) -> optuna.Trial | None:
    """A queued trial, else (not for grids) a new one, created with this worker recorded in it
    so that a worker killed at any moment leaves no running trial that nobody can retry."""
    trial_id = _claim_waiting(handle)
    if trial_id is None and grid:
        return None
    if trial_id is None:
        template = optuna.trial.create_trial(state=TrialState.RUNNING,
                                             system_attrs={WORKER: this_worker()})
        trial_id = handle.storage.create_new_trial(handle.study._study_id, template_trial=template)
    return optuna.Trial(handle.study, trial_id)


def stop_reason(handle: Handle, budget: Budget, started: float, grid: bool) -> str | None:
    trials = handle.study.get_trials(deepcopy=False)
    done = counted(trials)
    running = sum(t.state == TrialState.RUNNING for t in trials)
    if budget.trials is not None and len(done) + running >= budget.trials:
        return f"the study has its {budget.trials} trials" + (f" ({running} still running)" if running else "")
    if budget.timeout is not None and time.monotonic() - started >= budget.timeout:
        return f"the time budget of {budget.timeout:g}s is spent"
    best = best_record([trial_record(t) for t in done if t.state == TrialState.COMPLETE])
    if budget.target is not None and best is not None and best.value >= budget.target:  # type: ignore[operator]
        return f"the target dev accuracy {budget.target:.2%} is reached ({best.value:.2%})"
    if grid and not any(t.state == TrialState.WAITING for t in trials):
        return "every grid point has been taken"
    return None


def run_worker(handle: Handle, ctx: TrialContext, budget: Budget, *, grid: bool) -> int:
    """Run trials until a budget is spent (or the grid queue is empty); returns how many ran."""
    started, ran = time.monotonic(), 0
    if budget.timeout is not None:
        ctx = replace(ctx, deadline=started + budget.timeout, timeout=budget.timeout)
    while True:
        recover(handle)  # before counting: a dead worker's trial is not running any more
        reason = stop_reason(handle, budget, started, grid)
        trial = None if reason else next_trial(handle, grid)
        if trial is None:
            log.info("worker stops: %s", reason or "every grid point has been taken")
            return ran
        _run_one(handle, ctx, trial)
        ran += 1


def _run_one(handle: Handle, ctx: TrialContext, trial: optuna.Trial) -> None:
    trial_id = trial._trial_id
    frozen = handle.storage.get_trial(trial_id)
    original = frozen.system_attrs.get(RETRY_OF, trial.number)
    worker = this_worker()
    try:  # until tell() has written its state, a stop (Ctrl-C, parent death) requeues the trial
        handle.storage.set_trial_system_attr(trial_id, WORKER, worker)
        trial.set_user_attr("worker", f"{worker['host']}:{worker['pid']}")
        trial.set_user_attr("seed", trial_seed(ctx.study_seed, original))
        with _Heartbeat(handle, trial_id):
            result = run_trial(trial, ctx, original)
        for key, value in result.attrs.items():
            trial.set_user_attr(key, value)
        # over budget: PRUNED (not FAIL) so that TPE sees its constraints and learns from it
        state = {"complete": optuna.trial.TrialState.COMPLETE,
                 "pruned": optuna.trial.TrialState.PRUNED}.get(result.state, optuna.trial.TrialState.FAIL)
        if result.attrs.get("over_budget"):
            state = optuna.trial.TrialState.PRUNED
        handle.study.tell(trial, result.told(), state=state)
    except BaseException:
        try:
            _retry(handle, trial_id)  # a no-op when tell() got through
        except Exception as err:  # keep the original error; the heartbeat will catch up
            log.warning("could not requeue trial %d: %s", trial.number, err)
        raise
    _log_result(handle, trial, result)


def _log_result(handle: Handle, trial: optuna.Trial, result: TrialResult) -> None:
    a = result.attrs
    name = trial_name(trial.number, trial.user_attrs)
    if result.state in ("invalid", "failed"):
        log.warning("%s %s: %s", name, result.state, a.get("error"))
        return
    try:
        best = best_trial(handle.study)
        best_text = f"best {value_of(best):.2%} (trial {best.number})"
    except ArchtuneError:
        best_text = "no complete trial yet"
    log.info("%s %s: dev accuracy %.2f%% after %d epochs, %.0fs | %s", name, result.state,
             100 * (a.get("dev_accuracy") or 0.0), a.get("epochs", 0), a.get("duration_s", 0.0),
             best_text)


class TrialWatcher:
    """Calls ``callbacks(study, trial)`` for each trial that finishes after it started."""

    def __init__(self, study: optuna.Study, callbacks: Sequence[TrialCallback], poll: float = POLL_S):
        self.study, self.callbacks, self.poll = study, list(callbacks), poll
        self.seen = {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}
        self.stopped = threading.Event()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._loop, daemon=True, name="archtune-trials")
        self.thread.start()

    def _loop(self) -> None:
        while not self.stopped.wait(self.poll):
            try:
                self.check()
            except Exception as err:  # a storage hiccup: the next poll tries again
                log.debug("watching trials: %s", err)

    def check(self) -> None:
        with self.lock:
            new = sorted((t for t in self.study.get_trials(deepcopy=False)
                          if t.state.is_finished() and t.number not in self.seen),
                         key=lambda t: t.number)
            for t in new:
                self.seen.add(t.number)
                for callback in self.callbacks:
                    try:
                        callback(self.study, t)
                    except Exception as err:  # a broken callback must not stop the search
                        log.warning("trial callback %s failed on trial %d: %s",
                                    getattr(callback, "__name__", callback), t.number, err)

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join()
        try:
            self.check()
        except Exception as err:  # the trials are safe in the storage; only a line is lost
            log.warning("could not read the last finished trials: %s", err)


def trial_callbacks(on_trial: TrialCallback | Sequence[TrialCallback] | None,
                    progress: bool | None) -> list[TrialCallback]:
    """The caller's callbacks, plus one printed line per trial when ``progress`` (None: in a
    notebook only; the CLI logs its own line)."""
    out = [on_trial] if callable(on_trial) else list(on_trial or [])
    if progress is None:
        progress = in_notebook()
    if progress:

        out.append(print_trial)
    return out


@contextmanager
def study_hooks(handle: Handle, tracking: Tracking | None, callbacks: Sequence[TrialCallback]
                ) -> Iterator[Tracking | None]:
    """Around running a study's trials: yields the tracking settings the trials use."""
    study_tracking = for_study(tracking, handle.name, handle.folder, handle.info.to_dict()) if tracking else None
    watcher = TrialWatcher(handle.study, callbacks) if callbacks else None
    status = "KILLED"
    try:
        yield study_tracking
        status = "FINISHED"
    finally:
        if watcher is not None:
            watcher.stop()
        if study_tracking:
            try:
                best: Any = value_of(best_trial(handle.study))
            except ArchtuneError:
                best = None
            end_study(study_tracking, best, status)


def print_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """The per-trial callback a notebook gets by default: one printed line."""
    print(trial_line(study, trial), flush=True)
