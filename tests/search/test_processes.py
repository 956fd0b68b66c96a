"""Searches across processes: a killed search resumes, --jobs and workers share a study through
SQLite and PostgreSQL, and no grid point ever runs twice."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from archtune._process import start_time
from archtune.search import canonical_json, connect, load_space, search

from .conftest import GRID_SPACE, TINY_SPACE, archtune_cmd, proposals, run_cli, space

PG_URL = os.environ.get("ARCHTUNE_TEST_PG_URL")


def _trials(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=connect(url)).get_trials(deepcopy=False)


def _wait_mid_trial(proc: subprocess.Popen, url: str, name: str, done: int) -> int:
    """Wait until ``done`` trials are complete and the next one has reported an epoch."""
    deadline = time.monotonic() + 120
    study = None
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the search ended before it could be killed mid-trial"
        try:
            study = study or optuna.load_study(study_name=name, storage=connect(url))
            trials = study.get_trials(deepcopy=False)
        except Exception:  # the study or its tables may not exist yet
            time.sleep(0.2)
            continue
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        running = [t for t in trials if t.state == TrialState.RUNNING and t.intermediate_values]
        if len(complete) >= done and running:
            return running[0].number
        time.sleep(0.1)
    raise AssertionError("timed out waiting for a running trial")


def test_a_killed_search_resumes_with_the_dead_trial_retried(tmp_path: Path, big_npz: Path) -> None:
    raw = space(TINY_SPACE, big_npz, epochs=12)  # a float lr: no two points alike; epochs enough
    # that the trial seen mid-way is still running when the kill lands (with 5 it once finished)
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(raw))
    args = ["search", "s.yaml", "--trials", "3", "--pruner", "none", "--sampler", "random"]
    url = f"sqlite:///{tmp_path}/studies/tiny/study.db"
    proc = subprocess.Popen(archtune_cmd(*args), cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        killed = _wait_mid_trial(proc, url, "tiny", done=1)
        before = {t.number: (t.datetime_complete, t.value) for t in _trials(url, "tiny")
                  if t.state == TrialState.COMPLETE}
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    scratch = tmp_path / "studies" / "tiny" / "scratch"
    assert [p.name for p in scratch.iterdir()] == [str(killed)]  # the dead trial's run folder
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert list(scratch.iterdir()) == []  # removed by the resumed search, as its own trials'
    trials = {t.number: t for t in _trials(url, "tiny")}
    complete = [t for t in trials.values() if t.state == TrialState.COMPLETE]
    assert len(complete) == 3  # the count asked for
    for number, (finished, value) in before.items():  # completed trials are intact
        assert (trials[number].datetime_complete, trials[number].value) == (finished, value)
    assert trials[killed].state == TrialState.FAIL
    retry = [t for t in complete if t.system_attrs.get("failed_trial") == killed]
    assert len(retry) == 1 and retry[0].params == trials[killed].params
    assert retry[0].user_attrs["seed"] == trials[killed].user_attrs["seed"]  # rerun exactly
    # the resumed process goes on with the points the uninterrupted search proposes
    points = [t.params for t in sorted(complete, key=lambda t: t.system_attrs.get("failed_trial", t.number))]
    stored = yaml.safe_load((tmp_path / "s.yaml").read_text())  # (its keys sorted)
    assert points == proposals(stored, "random", seed=0, n=3)


def _children(pid: int) -> dict[int, str | None]:
    """The processes ``pid`` started (its workers and multiprocessing's resource tracker)."""
    stats = {int(p.parent.name): p for p in Path("/proc").glob("[0-9]*/stat")}
    kids = {}
    for child, stat in stats.items():
        with contextlib.suppress(OSError):
            if stat.read_text().rsplit(")", 1)[1].split()[1] == str(pid):
                kids[child] = start_time(child)
    return kids


def _alive(procs: dict[int, str | None]) -> list[int]:
    return [pid for pid, start in procs.items() if start and start_time(pid) == start]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process tree in /proc")
def test_workers_end_when_a_parallel_search_is_killed(tmp_path: Path, big_npz: Path) -> None:
    raw = space(TINY_SPACE, big_npz, epochs=200)  # trials still running when the parent is killed
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(raw))
    args = ["search", "s.yaml", "--trials", "30", "--jobs", "2", "--pruner", "none"]
    url = f"sqlite:///{tmp_path}/studies/tiny/study.db"
    proc = subprocess.Popen(archtune_cmd(*args), cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    workers: dict[int, str | None] = {}
    try:
        deadline = time.monotonic() + 120
        while len([t for t in _trials_or_none(url) if t.state == TrialState.RUNNING
                   and t.intermediate_values]) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, "no two trials running"
            time.sleep(0.2)
        workers = _children(proc.pid)
        assert len(workers) >= 2
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while _alive(workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _alive(workers) == []  # the workers (and the resource tracker) are gone
        trials = _trials(url, "tiny")
        if any(t.state == TrialState.RUNNING for t in trials):
            # a worker that could not requeue its trial within its grace (a loaded CI machine)
            # exited at once: then the next search retries it, its worker being dead
            from archtune.search import attach
            from archtune.search import recover as _recover

            _recover(attach("tiny", studies_dir=tmp_path / "studies"))
            trials = _trials(url, "tiny")
        assert not [t for t in trials if t.state == TrialState.RUNNING]
        failed = [t for t in trials if t.state == TrialState.FAIL]
        queued = [t for t in trials if t.state == TrialState.WAITING]
        assert len(failed) == 2  # the two trials it ran, queued again with their points
        assert sorted(canonical_json(t.params) for t in failed) == \
            sorted(canonical_json(t.params) for t in queued)
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in _alive(workers):
            os.kill(pid, signal.SIGKILL)


def _trials_or_none(url: str) -> list[optuna.trial.FrozenTrial]:
    try:
        return _trials(url, "tiny")
    except Exception:  # the study or its tables may not exist yet
        return []


def test_jobs_share_a_sqlite_grid_each_point_once(tmp_path: Path, big_npz: Path) -> None:
    study = search(space(GRID_SPACE, big_npz, epochs=2), jobs=2, studies_dir=tmp_path)
    trials = study.get_trials()
    assert len(trials) == 4 and all(t.state == TrialState.COMPLETE for t in trials)
    assert len({canonical_json(t.params) for t in trials}) == 4
    workers = {t.user_attrs["worker"] for t in trials}
    assert len(workers) == 2 and str(os.getpid()) not in " ".join(workers)  # two processes


@pytest.mark.usefixtures("pg_url")  # skips without a server; fails under CI
def test_two_workers_share_a_postgres_grid_study(tmp_path: Path, big_npz: Path) -> None:
    name = f"pg-grid-{uuid.uuid4().hex[:8]}"
    raw = space(GRID_SPACE, big_npz, epochs=2)
    search(raw, storage=PG_URL, study=name, create_only=True, studies_dir=tmp_path)
    args = ["worker", name, "--storage", PG_URL, "--studies-dir", "elsewhere"]
    workers = [subprocess.Popen(archtune_cmd(*args), cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        outputs = [w.communicate(timeout=240) for w in workers]
        assert [w.returncode for w in workers] == [0, 0], outputs
        trials = _trials(PG_URL, name)
        grid = load_space(raw).grid()
        assert len(trials) == len(grid) == 4
        assert all(t.state == TrialState.COMPLETE for t in trials)
        assert sorted(canonical_json(t.params) for t in trials) == \
            sorted(canonical_json(p) for p in grid)  # every point once, nothing duplicated
        assert len({t.user_attrs["worker"] for t in trials}) == 2
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
        optuna.delete_study(study_name=name, storage=connect(PG_URL))
