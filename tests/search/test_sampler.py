"""A seeded search proposes the same points, trial for trial, however often its process is
stopped and resumed, and parallel workers do not propose the same points; a worker killed at
any moment leaves no trial that nobody retries.

The worker loop runs for real here (queue, retries, tell); only training is replaced by a
value computed from the sampled point, so each test takes a fraction of a second.
"""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path

import pytest

from archtune.search import (
    GRACE_S,
    WORKER,
    Budget,
    TrialContext,
    TrialResult,
    attach,
    canonical_json,
    load_space,
    proposal_index,
    run_worker,
    search,
    this_worker,
)
from archtune.search import next_trial as _next_trial
from archtune.search import recover as _recover

from .conftest import TINY_SPACE

TRIALS = 12


def _value(point: dict) -> float:
    """A dev accuracy that depends on the point only (so TPE sees the same finished trials)."""
    return int(hashlib.sha256(canonical_json(point).encode()).hexdigest()[:8], 16) / 2**32


@pytest.fixture
def fake_training(monkeypatch: pytest.MonkeyPatch) -> dict[int, int | None]:
    """run_trial samples the point and scores it; a trial whose number is a key here is
    interrupted (as by Ctrl-C: the worker requeues the trial and stops) after drawing that many
    of its parameters (None: all of them)."""
    interrupt: dict[int, int | None] = {}

    def run_trial(trial, ctx, original):
        if trial.number in interrupt and interrupt[trial.number] is not None:
            for dim in ctx.space.dims[:interrupt[trial.number]]:
                dim.suggest(trial)
            raise KeyboardInterrupt
        ctx.space.sample(trial)
        if trial.number in interrupt:
            raise KeyboardInterrupt
        return TrialResult("complete", _value(trial.params), {})

    monkeypatch.setattr("archtune.search._worker.run_trial", run_trial)
    return interrupt


def _run(tmp_path: Path, name: str, sampler: str, stops: list[int], interrupt: dict) -> list:
    """Run a 12-trial study, its process 'restarted' at each count of finished trials in
    ``stops`` and after each interrupted trial; returns the points of its completed trials in the order they were proposed."""
    raw = dict(TINY_SPACE, name=name)
    search(raw, sampler=sampler, seed=1, trials=TRIALS, create_only=True, studies_dir=tmp_path)
    ctx = TrialContext(load_space(raw), None, study_seed=1)  # type: ignore[arg-type]
    for stop in [*stops, TRIALS]:
        while True:
            handle = attach(name, studies_dir=tmp_path)  # a fresh process: a fresh sampler
            try:
                run_worker(handle, ctx, Budget(trials=stop), grid=False)
                break
            except KeyboardInterrupt:
                continue  # stopped mid-trial: started again
    trials = handle.study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(done) == TRIALS
    return [canonical_json(t.params) for t in sorted(done, key=lambda t: proposal_index(trials, t))]


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_a_resumed_search_proposes_the_uninterrupted_points(tmp_path: Path, sampler: str,
                                                            fake_training: dict) -> None:
    straight = _run(tmp_path, "straight", sampler, [], fake_training)
    # two trials die mid-way and are rerun after the restart: one while its point was being
    # drawn (its first parameter only), one during training
    fake_training.update({4: 1, 9: None})
    resumed = _run(tmp_path, "resumed", sampler, [3, 6, 9], fake_training)
    assert resumed == straight
    trials = attach("resumed", studies_dir=tmp_path).study.get_trials()
    failed = [t for t in trials if t.state.name == "FAIL"]
    assert [t.number for t in failed] == [4, 9] and len(failed[0].params) == 1
    retries = [t for t in trials if t.system_attrs.get("failed_trial") in (4, 9)]
    assert all(r.params.items() >= f.params.items() for r, f in zip(retries, failed, strict=True))
    assert len(set(straight)) >= TRIALS - 2  # the sequence moves on (no point proposed again)


def test_workers_sharing_a_study_propose_the_points_of_one(tmp_path: Path,
                                                          fake_training: dict) -> None:
    """Two workers (two sampler objects) taking turns on one study propose what one worker
    proposes alone: never the same point twice."""
    straight = _run(tmp_path, "straight", "random", [], fake_training)
    raw = dict(TINY_SPACE, name="two")
    search(raw, sampler="random", seed=1, trials=TRIALS, create_only=True, studies_dir=tmp_path)
    workers = [attach("two", studies_dir=tmp_path) for _ in range(2)]
    ctx = TrialContext(load_space(raw), None, study_seed=1)  # type: ignore[arg-type]
    for k in range(TRIALS):
        run_worker(workers[k % 2], ctx, Budget(trials=k + 1), grid=False)
    trials = workers[0].study.get_trials()
    assert [canonical_json(t.params) for t in trials] == straight
    assert len(set(straight)) == TRIALS


def test_a_new_trial_names_its_worker_from_the_start(tmp_path: Path) -> None:
    """A worker killed right after creating a trial leaves a trial that names it (so the next
    worker of this machine retries it at once)."""
    search(dict(TINY_SPACE), sampler="random", trials=2, create_only=True, studies_dir=tmp_path)
    handle = attach("tiny", studies_dir=tmp_path)
    trial = _next_trial(handle, grid=False)
    assert handle.storage.get_trial(trial._trial_id).system_attrs[WORKER] == this_worker()


def test_a_running_trial_no_worker_claimed_is_retried(tmp_path: Path) -> None:
    import optuna

    search(dict(TINY_SPACE), sampler="random", trials=2, create_only=True, studies_dir=tmp_path)
    handle = attach("tiny", studies_dir=tmp_path)
    old = optuna.trial.create_trial(state=optuna.trial.TrialState.RUNNING)
    old.datetime_start -= datetime.timedelta(seconds=GRACE_S + 1)
    fresh = optuna.trial.create_trial(state=optuna.trial.TrialState.RUNNING)
    for t in (old, fresh):
        handle.storage.create_new_trial(handle.study._study_id, template_trial=t)
    _recover(handle)
    assert [t.state.name for t in handle.study.get_trials()] == ["FAIL", "RUNNING", "WAITING"]
