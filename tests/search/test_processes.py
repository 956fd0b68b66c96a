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
from tests.conftest import unavailable

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


def _kill_mid_trial(proc: subprocess.Popen, url: str, name: str, done: int) -> int:
    """SIGKILL ``proc`` while a trial runs, after ``done`` complete ones; returns that trial's
    number. The process is frozen (SIGSTOP) before its study is read, so the trial read as
    running is still running when the kill lands (not finished in between). (Frozen inside a
    commit, its SQLite file is locked: the read gives up after a second and looks again.)"""
    deadline = time.monotonic() + 300
    while True:
        number = _wait_mid_trial(proc, url, name, done)
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            peek = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 1}})
            study = optuna.load_study(study_name=name, storage=peek)
            state = next(t.state for t in study.get_trials(deepcopy=False) if t.number == number)
        except Exception:  # frozen inside a write (the database locked): look again
            state = None
        if state == TrialState.RUNNING:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            return number
        os.kill(proc.pid, signal.SIGCONT)
        assert time.monotonic() < deadline, f"trial {number} kept finishing before the kill"


def test_a_killed_search_resumes_with_the_dead_trial_retried(tmp_path: Path, big_npz: Path) -> None:
    raw = space(TINY_SPACE, big_npz, epochs=5)  # a float lr: no two points alike
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(raw))
    args = ["search", "s.yaml", "--trials", "3", "--pruner", "none", "--sampler", "random"]
    url = f"sqlite:///{tmp_path}/studies/tiny/study.db"
    proc = subprocess.Popen(archtune_cmd(*args), cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        killed = _kill_mid_trial(proc, url, "tiny", done=1)
        before = {t.number: (t.datetime_complete, t.value) for t in _trials(url, "tiny")
                  if t.state == TrialState.COMPLETE}
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


def test_workers_end_when_a_parallel_search_is_killed(tmp_path: Path, big_npz: Path) -> None:
    """SIGKILL of one worker of `search --jobs 2`, then of the search: the other worker ends by
    itself (requeueing its trial), the killed one's trial is left running with its scratch
    folder, and the next worker on the study (the product's resume path) fails and requeues it
    and removes the folder: no trial running, each killed trial queued again with its point."""
    if not Path("/proc/self/stat").exists():
        unavailable("this test reads the process tree in /proc (Linux)")
    raw = space(TINY_SPACE, big_npz, epochs=200)  # trials still running when the parent is killed
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(raw))
    args = ["search", "s.yaml", "--trials", "30", "--jobs", "2", "--pruner", "none"]
    url = f"sqlite:///{tmp_path}/studies/tiny/study.db"
    proc = subprocess.Popen(archtune_cmd(*args), cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    workers: dict[int, str | None] = {}
    try:
        deadline = time.monotonic() + 120
        while len(running := [t for t in _trials_or_none(url) if t.state == TrialState.RUNNING
                              and t.intermediate_values]) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, "no two trials running"
            time.sleep(0.2)
        workers = _children(proc.pid)
        assert len(workers) >= 2
        victim = running[0]  # its worker is killed outright: it cannot requeue its trial
        victim_pid = int(victim.user_attrs["worker"].rsplit(":", 1)[1])
        assert victim_pid in workers, (victim_pid, workers)
        os.kill(victim_pid, signal.SIGKILL)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        # a worker requeues its trial within its 10 s grace, else exits at once (a loaded machine)
        deadline = time.monotonic() + 60
        while alive := _alive(workers):
            assert time.monotonic() < deadline, f"processes {alive} outlived their killed search by 60 s"
            time.sleep(0.2)
        scratch = tmp_path / "studies" / "tiny" / "scratch"
        left = [t.number for t in _trials(url, "tiny") if t.state == TrialState.RUNNING]
        assert left == [victim.number] and (scratch / str(victim.number)).is_dir(), left
        # the product's resume: a worker joining the study (its time budget spent at once, so it
        # starts no trial) first retries what the killed processes left running
        resumed = run_cli("worker", "tiny", "--timeout", "0.001", cwd=tmp_path)
        assert resumed.returncode == 0, resumed.stderr
        trials = _trials(url, "tiny")
        assert not [t for t in trials if t.state == TrialState.RUNNING]
        assert trials[victim.number].state == TrialState.FAIL
        failed = [t for t in trials if t.state == TrialState.FAIL]
        queued = [t for t in trials if t.state == TrialState.WAITING]
        assert len(failed) == 2  # the two trials it ran, queued again with their points
        assert sorted(canonical_json(t.params) for t in failed) == \
            sorted(canonical_json(t.params) for t in queued)
        assert not scratch.exists() or list(scratch.iterdir()) == []  # the killed trials' folders
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
