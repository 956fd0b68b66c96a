"""What a search does beside its trials: per-trial callbacks (one line per trial in a
notebook) and the experiment loggers' study-level state (the study's MLflow run).

Trials may run in other processes, so per-trial callbacks are not called by the trials: a
thread of this process watches the study and calls them, in order, for every trial that
finishes while the search runs (and once more when it ends, so none is missed).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .._html import in_notebook
from ..errors import ArchtuneError
from ._info import value_of

if TYPE_CHECKING:
    import optuna

    from ..tracking import Tracking
    from ._storage import Handle

log = logging.getLogger(__name__)
TrialCallback = Callable[["optuna.Study", "optuna.trial.FrozenTrial"], None]
POLL_S = 1.0


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
    from ..tracking import end_study, for_study
    from ._records import best_trial

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
    from ._records import trial_line

    print(trial_line(study, trial), flush=True)
